"""hookstream_dispatcher."""
