"""Fusion methods: ``{modality: (B, D_m)}`` + masks -> ``(B, D_out)``. Registered in :data:`mmfuse.registry.FUSIONS`."""
