"""Small config dataclasses, loadable from YAML/JSON files and plain dicts, saved beside every model."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mmfuse.errors import ConfigError

C = TypeVar("C")


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build dataclass ``cls`` from ``data``; unknown keys name the option and list valid ones, and a value of the
    wrong type (``hidden: "big"``) names the option and the type its annotation asks for."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"Unknown {cls.__name__} option(s) {unknown}; valid options: {sorted(names)}.")
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        allowed = _allowed_types(hints[key])
        if allowed and not _is_instance(value, allowed):
            want = " or ".join(sorted(t.__name__ if t is not type(None) else "null" for t in allowed))
            raise ConfigError(
                f"{cls.__name__} option {key!r} is {value!r} ({type(value).__name__}); it must be {want}."
            )
    return cls(**data)


def _allowed_types(hint: Any) -> tuple[type, ...]:
    """The plain types a field annotation admits (``()`` when it admits anything, e.g. ``Any``)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_allowed_types(a) for a in typing.get_args(hint)]
        return () if any(not p for p in parts) else tuple(t for p in parts for t in p)
    if origin is not None:
        return (origin,) if isinstance(origin, type) else ()
    return (hint,) if isinstance(hint, type) and hint is not Any else ()


def _is_instance(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and float in allowed:
        return True
    return isinstance(value, allowed)


def load_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file into a dict, with a clear error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} does not exist; check the path.")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - re-raised as a user error
        raise ConfigError(f"Config file {str(path)!r} is not valid YAML/JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {str(path)!r} must hold a mapping at the top level.")
    return data


@dataclass
class ModelConfig:
    """What to build: encoders per modality, a fusion method, a head, missing-modality handling."""

    encoders: dict[str, dict[str, Any]]  # modality -> {"name": registered encoder, **its parameters}
    num_outputs: int = 0  # classes (classification), targets (regression) or labels (multi-label); unused with `tasks`
    task: str = "classification"  # "classification" | "regression" | "multilabel"; unused with `tasks`
    fusion: str = "concat"  # registered fusion name (see `mmfuse list`)
    fusion_params: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments of the fusion
    hidden: int = 64  # fused representation size of feature-level fusions
    head: str = "linear"  # registered head applied after a feature-level fusion
    head_params: dict[str, Any] = field(default_factory=dict)
    unimodal_heads: bool = False  # one extra head per modality (auxiliary losses, contribution reports)
    missing_token: bool = False  # replace absent embeddings by a learned token instead of zeros
    modality_dropout: float | dict[str, float] = 0.0  # training-time probability of dropping a modality
    # generative imputers of absent embeddings, trained after the model (mmfuse.training.imputation):
    # strategy ("gan" | "vae") -> its parameters; `missing` strategies at predict time are zero, token and these
    imputers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # multi-task: task name -> {"task": kind, "num_outputs": n (default 1 for regression), "weight": w (default 1)};
    # empty = one task described by `task` / `num_outputs`. The targets of a batch are then {task name: tensor}.
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    sharing: str = (
        "hard"  # multi-task only: "hard" (one trunk, a head per task) | "soft" (a trunk per task, tied by a penalty)
    )
    sharing_weight: float = 1e-3  # soft sharing only: weight of the parameter-distance penalty
    # an ensemble (mmfuse.models.ensemble): one entry per member, {"weight": w, "model": ModelConfig as a dict} or
    # {"weight": w, "linear": {"modalities": [...], "in_features": D, "num_outputs": K}}; empty = one model
    members: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainConfig:
    """How to train: optimiser, objectives, stopping, and the Lightning hardware options."""

    objectives: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # name -> {"weight": w, **params}; empty = task default
    max_epochs: int = 10  # upper bound; early stopping on the validation metric usually ends sooner
    batch_size: int = 128
    lr: float = 2e-3  # AdamW learning rate (the peak rate of a schedule)
    lr_schedule: str = "constant"  # "constant" | "onecycle" | "cosine", stepped per batch (mmfuse.training.task)
    weight_decay: float = 1e-4
    # a fine-tuned pretrained backbone (MiniLM, EfficientNet) learns at lr x this: discriminative fine-tuning
    # (Howard & Ruder, ACL 2018), so a head-sized learning rate does not wash out the pretrained weights
    backbone_lr_scale: float = 0.05
    patience: int = 3  # epochs without validation improvement before stopping
    seed: int = 0  # seeds Python, NumPy, torch and the dataloader workers
    deterministic: bool = True  # torch deterministic algorithms (CPU runs are then bit-reproducible)
    accelerator: str = "cpu"  # passed to lightning.Trainer
    devices: int | str = 1  # passed to lightning.Trainer (e.g. 2 with strategy="ddp")
    strategy: str = "auto"  # passed to lightning.Trainer ("ddp", "ddp_spawn", ...)
    num_nodes: int = 1  # passed to lightning.Trainer
    # passed to lightning.Trainer ("bf16-mixed", ...); "auto": bf16-mixed + channels-last for a convolutional model on a
    # CPU with native bf16, else 32-true (mmfuse.training.precision)
    precision: str = "32-true"
    num_workers: int = 0  # dataloader worker processes
    progress_bar: bool = True
    limit_train_batches: float | int = 1.0  # passed to lightning.Trainer (smoke runs)
    max_time: float | None = None  # seconds; training stops (keeping the best checkpoint) after this
    monitor: str | None = (
        # validation metric for early stopping/best checkpoint ("loss" or a task metric); None = the task's default
        None
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
