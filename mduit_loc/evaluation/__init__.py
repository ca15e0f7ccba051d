"""evaluation stage of mduit-loc."""
