"""Source material for synthetic cases: the packaged clinical knowledge base and its loader."""
