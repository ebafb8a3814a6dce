"""hookstream_janitor."""
