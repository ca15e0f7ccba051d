"""retrieval stage of mduit-loc."""
