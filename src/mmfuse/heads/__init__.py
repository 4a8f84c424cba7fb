"""Prediction heads: ``(B, D) -> (B, num_outputs)``. Registered in :data:`mmfuse.registry.HEADS`."""
