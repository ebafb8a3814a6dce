"""hookstream_dev."""
