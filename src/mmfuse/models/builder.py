"""Build a :class:`MultimodalModel` from a :class:`~mmfuse.config.ModelConfig` through the registries."""

from __future__ import annotations

from mmfuse.config import ModelConfig
from mmfuse.errors import ConfigError
from mmfuse.models.missing import MissingTokens, ModalityDropout
from mmfuse.models.multimodal import MultimodalModel
from mmfuse.registry import ENCODERS, FUSIONS, HEADS


def build_encoders(spec: dict[str, dict]) -> dict:
    """``{modality: {"name": ..., **params}}`` -> ``{modality: encoder}``."""
    encoders = {}
    for m in sorted(spec):
        params = dict(spec[m])
        if "name" not in params:
            raise ConfigError(f"Encoder config of modality {m!r} has no 'name'; choose one of {ENCODERS.list()}.")
        encoders[m] = ENCODERS.build(params.pop("name"), **params)
    return encoders


def build_model(cfg: ModelConfig) -> MultimodalModel:
    """Build encoders, fusion, head(s) and missing-modality modules named in ``cfg``."""
    if not cfg.encoders:
        raise ConfigError("ModelConfig.encoders is empty; give at least one modality.")
    encoders = build_encoders(cfg.encoders)
    dims = {m: int(e.out_dim) for m, e in encoders.items()}
    fusion_cls = FUSIONS.get(cfg.fusion)
    decision = bool(getattr(fusion_cls, "decision_level", False))
    out_dim = cfg.num_outputs if decision else cfg.hidden
    extra = dict(cfg.fusion_params)
    if decision:
        extra.setdefault("task", cfg.task)
    fusion = FUSIONS.build(cfg.fusion, dims=dims, out_dim=out_dim, **extra)
    head = None if decision else HEADS.build(cfg.head, in_dim=fusion.out_dim, out_dim=cfg.num_outputs, **cfg.head_params)
    unimodal = None
    if cfg.unimodal_heads:
        unimodal = {m: HEADS.build("linear", in_dim=d, out_dim=cfg.num_outputs) for m, d in dims.items()}
    tokens = MissingTokens(dims) if cfg.missing_token else None
    rates = cfg.modality_dropout
    dropout = ModalityDropout(rates, sorted(dims)) if (rates if isinstance(rates, (int, float)) else any(rates.values())) else None
    return MultimodalModel(encoders, fusion, head, unimodal, tokens, dropout)
