"""hookstream_api."""
