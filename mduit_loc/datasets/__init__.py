"""datasets stage of mduit-loc."""
