"""mduit-loc: visual localization under changing appearance with MDUIT."""

__version__ = "0.1.0"
