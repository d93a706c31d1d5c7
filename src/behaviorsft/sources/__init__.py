"""Source material for synthetic cases: dataset importers and the clinical knowledge base."""
