"""A small retrieval-augmented answerer: keyword retrieval over docs/, then one model call."""
