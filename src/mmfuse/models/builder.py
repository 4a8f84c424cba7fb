"""Build a model from a :class:`~mmfuse.config.ModelConfig` through the registries.

One task gives a :class:`MultimodalModel`; ``ModelConfig.tasks`` gives a
:class:`~mmfuse.models.multitask.HardSharingModel` or :class:`~mmfuse.models.multitask.SoftSharingModel`
(``ModelConfig.sharing``) with one head per task.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mmfuse.config import ModelConfig, from_dict
from mmfuse.errors import ConfigError
from mmfuse.models.imputation import build_imputer
from mmfuse.models.missing import MissingTokens, ModalityDropout
from mmfuse.models.multimodal import MultimodalModel
from mmfuse.models.multitask import HardSharingModel, SoftSharingModel
from mmfuse.registry import ENCODERS, FUSIONS, HEADS
from mmfuse.tasks import TASK_KINDS, task_kind

SHARING = ("hard", "soft")
_TASK_KEYS = ("task", "num_outputs", "weight")


def build_encoders(spec: dict[str, dict]) -> dict:
    """``{modality: {"name": ..., **params}}`` -> ``{modality: encoder}``."""
    encoders = {}
    for m in sorted(spec):
        params = dict(spec[m])
        if "name" not in params:
            raise ConfigError(f"Encoder config of modality {m!r} has no 'name'; choose one of {ENCODERS.list()}.")
        encoders[m] = ENCODERS.build(params.pop("name"), **params)
    return encoders


def task_specs(cfg: ModelConfig) -> dict[str, dict[str, Any]]:
    """``cfg.tasks`` checked and completed: ``{task: {"task": kind, "num_outputs": n, "weight": w}}`` (sorted; ``{}``
    for one task)."""
    if not cfg.tasks:
        return {}
    if cfg.sharing not in SHARING:
        raise ConfigError(f"ModelConfig.sharing is {cfg.sharing!r}; use one of {SHARING}.")
    specs = {}
    for name in sorted(cfg.tasks):
        spec = dict(cfg.tasks[name])
        unknown = sorted(set(spec) - set(_TASK_KEYS))
        if unknown:
            raise ConfigError(
                f"ModelConfig.tasks[{name!r}] has unknown key(s) {unknown}; valid keys: {list(_TASK_KEYS)}."
            )
        kind = spec.get("task")
        if kind not in TASK_KINDS:
            raise ConfigError(f"ModelConfig.tasks[{name!r}] has task kind {kind!r}; use one of {list(TASK_KINDS)}.")
        n = spec.get("num_outputs", 1 if task_kind(kind).target == "values" else None)
        if not isinstance(n, int) or n < 1:
            raise ConfigError(
                f"ModelConfig.tasks[{name!r}] needs 'num_outputs', a positive integer (classes, "
                f"targets or labels); got {n!r}."
            )
        specs[name] = {"task": kind, "num_outputs": n, "weight": float(spec.get("weight", 1.0))}
    return specs


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build encoders, fusion, head(s) and missing-modality modules named in ``cfg`` (an
    :class:`~mmfuse.models.ensemble.Ensemble` when ``cfg.members`` is set)."""
    if cfg.members:
        return build_ensemble(cfg)
    if not cfg.encoders:
        raise ConfigError("ModelConfig.encoders is empty; give at least one modality.")
    tasks = task_specs(cfg)
    if not tasks and cfg.num_outputs < 1:
        raise ConfigError(
            f"ModelConfig.num_outputs is {cfg.num_outputs}; give the number of classes, "
            f"targets or labels (or 'tasks' for a multi-task model)."
        )
    encoders = build_encoders(cfg.encoders)
    dims = {m: int(e.out_dim) for m, e in encoders.items()}
    fusion_cls = FUSIONS.get(cfg.fusion)
    decision = bool(getattr(fusion_cls, "decision_level", False))
    if tasks and decision:
        raise ConfigError(
            f"Fusion {cfg.fusion!r} is decision-level (it predicts directly); a multi-task "
            f"model needs a feature-level fusion."
        )
    out_dim = cfg.num_outputs if decision else cfg.hidden
    extra = dict(cfg.fusion_params)
    if decision:
        extra.setdefault("task", cfg.task)
    fusion = FUSIONS.build(cfg.fusion, dims=dims, out_dim=out_dim, **extra)
    tokens = MissingTokens(dims) if cfg.missing_token else None
    rates = cfg.modality_dropout
    dropout = (
        ModalityDropout(rates, sorted(dims))
        if (rates if isinstance(rates, (int, float)) else any(rates.values()))
        else None
    )
    if tasks and cfg.imputers:
        raise ConfigError("ModelConfig.imputers is not supported with 'tasks'; impute with a single-task model.")
    if tasks:
        if cfg.unimodal_heads:
            raise ConfigError(
                "ModelConfig.unimodal_heads is not supported with 'tasks'; turn it off for a multi-task model."
            )
        heads = {
            t: HEADS.build(cfg.head, in_dim=fusion.out_dim, out_dim=s["num_outputs"], **cfg.head_params)
            for t, s in tasks.items()
        }
        weights = {t: s["weight"] for t, s in tasks.items()}
        if cfg.sharing == "soft":
            return SoftSharingModel.from_modules(
                encoders,
                fusion,
                heads,
                task_weights=weights,
                penalty_weight=cfg.sharing_weight,
                missing_tokens=tokens,
                modality_dropout=dropout,
            )
        return HardSharingModel(
            encoders, fusion, heads, task_weights=weights, missing_tokens=tokens, modality_dropout=dropout
        )
    head = (
        None if decision else HEADS.build(cfg.head, in_dim=fusion.out_dim, out_dim=cfg.num_outputs, **cfg.head_params)
    )
    unimodal = None
    if cfg.unimodal_heads:
        unimodal = {m: HEADS.build("linear", in_dim=d, out_dim=cfg.num_outputs) for m, d in dims.items()}
    imputers = {k: build_imputer(k, dims, **dict(p)) for k, p in sorted(cfg.imputers.items())}
    return MultimodalModel(encoders, fusion, head, unimodal, tokens, dropout, imputers)


def build_ensemble(cfg: ModelConfig) -> nn.Module:
    """The :class:`~mmfuse.models.ensemble.Ensemble` that ``cfg.members`` describes (weights not yet loaded)."""
    from mmfuse.models.ensemble import Ensemble, LinearModel

    members: list[nn.Module] = []
    for i, entry in enumerate(cfg.members):
        if not isinstance(entry, dict) or ("model" in entry) == ("linear" in entry):
            raise ConfigError(f"ModelConfig.members[{i}] must hold exactly one of 'model' or 'linear', and 'weight'.")
        if "model" in entry:
            members.append(build_model(from_dict(ModelConfig, dict(entry["model"]))))
        else:
            lin = dict(entry["linear"])
            members.append(LinearModel(list(lin["modalities"]), int(lin["in_features"]), int(lin["num_outputs"])))
    return Ensemble(members, [float(e.get("weight", 1.0)) for e in cfg.members], cfg.task)
