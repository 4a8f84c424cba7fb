"""Data: the multimodal dataset contract, built-in real datasets and table loading."""
