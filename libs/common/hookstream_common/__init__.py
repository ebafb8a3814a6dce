"""hookstream_common."""
