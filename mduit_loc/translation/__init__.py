"""translation stage of mduit-loc."""
