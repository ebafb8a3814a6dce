"""hookstream_matcher."""
