"""Model directories: weights as safetensors + JSON metadata, written crash-safely, loaded without pickle.

Layout of a model directory::

    model.safetensors   # state dict of the model (MultimodalModel, or a multi-task model when ModelConfig.tasks is set)
    config.json         # {"model": ModelConfig, "train": TrainConfig, ...extra JSON metadata}
    summary.txt         # short human-readable summary
    mmfuse.json         # manifest: format version, mmfuse version, size + SHA-256 of every file above

Folders are written by :func:`mmfuse.files.write_dir` (staged in a temporary sibling, manifest last,
swapped in atomically; an existing output is replaced only with ``overwrite``), and a folder is loaded
only after :func:`mmfuse.files.read_manifest` has checked every file it lists, so an interrupted
save never loads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from mmfuse.config import ModelConfig, from_dict
from mmfuse.errors import ConfigError, DataError, MmfuseError
from mmfuse.files import read_manifest, write_dir
from mmfuse.models.builder import build_model

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
SUMMARY = "summary.txt"
OBJECTIVES_FILE = "objectives.safetensors"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    return obj


def save_model_dir(
    path: str | Path,
    model: nn.Module,
    meta: Mapping[str, Any],
    summary: str = "",
    objectives: nn.Module | None = None,
    extra_files: Mapping[str, bytes | str] | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
) -> Path:
    """Save ``model`` and ``meta`` (must contain ``"model"``: the ModelConfig as a dict) to folder ``path``.

    ``overwrite`` and ``inputs`` follow :func:`mmfuse.files.check_output_dir` (an earlier model there is
    replaced only with ``overwrite``; an input is never written over).

    Objectives that own parameters (projections, a learnable temperature, a discriminator) are saved to
    ``objectives.safetensors`` so that e.g. a shared-subspace projection can be used for retrieval later.
    """
    from safetensors.torch import save

    if "model" not in meta:
        raise ValueError("meta must hold the model config under 'model'")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    cfg = meta["model"]
    tasks = f", tasks={sorted(cfg['tasks'])} ({cfg.get('sharing', 'hard')} sharing)" if cfg.get("tasks") else ""
    files: dict[str, bytes | str] = {
        WEIGHTS: save(state),
        CONFIG: json.dumps(_jsonable(meta), indent=2, sort_keys=True),
        **dict(extra_files or {}),
        SUMMARY: summary
        or f"mmfuse model: fusion={cfg.get('fusion')}, modalities={sorted(cfg.get('encoders', {}))}{tasks}\n",
    }
    if objectives is not None and len(objectives.state_dict()):
        files[OBJECTIVES_FILE] = save({k: v.detach().cpu().contiguous() for k, v in objectives.state_dict().items()})
    return write_dir(path, files, kind="model", overwrite=overwrite, inputs=inputs)


def read_config(path: str | Path) -> dict[str, Any]:
    """``config.json`` of a model folder whose manifest checks out, validated enough to rebuild the model.

    Raises:
        DataError: one sentence naming the folder or file and what to do.
    """
    path = Path(path)
    read_manifest(path, "model")
    try:
        meta = json.loads((path / CONFIG).read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
            raise ValueError("no 'model' section")
        from_dict(ModelConfig, meta["model"])
    except (OSError, ValueError, TypeError, ConfigError) as exc:
        raise DataError(
            f"{str(path / CONFIG)!r} does not describe a model ({str(exc)[:100]}); write "
            f"the folder again with 'mmfuse fit' or 'mmfuse train'."
        ) from None
    return meta


def build_saved_model(path: str | Path, meta: dict[str, Any]) -> nn.Module:
    """``build_model`` of a saved config; a config that cannot be built (e.g. it names an encoder weight file that
    is missing, tampered or pickled) is one sentence naming the folder, not the library's own report."""
    try:
        return build_model(from_dict(ModelConfig, meta["model"]))
    except MmfuseError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch, safetensors and pickle raise many types for a bad file
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"The model in {str(path)!r} cannot be built from its config.json ({type(exc).__name__}: {first}); "
            "check the encoder files it names, or write the folder again with 'mmfuse fit' or 'mmfuse train'."
        ) from None


def load_state(model: nn.Module, weights: Path) -> None:
    """Load safetensors ``weights`` into ``model``; a file that does not fit is one sentence, not torch's report."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights))
        model.load_state_dict(state)
    except (RuntimeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{str(weights)!r} does not fit the model its config.json describes ({first}); "
            f"write the folder again with 'mmfuse fit' or 'mmfuse train'."
        ) from None


def load_objectives(path: str | Path) -> dict[str, Any]:
    """Rebuild the run's objectives (``{term: module}``) with their saved parameters, from a model directory."""
    from mmfuse.models.builder import build_encoders
    from mmfuse.training.task import objectives_for

    path = Path(path)
    meta = read_config(path)
    dims = {m: int(e.out_dim) for m, e in build_encoders(meta["model"]["encoders"]).items()}
    built = objectives_for(from_dict(ModelConfig, meta["model"]), meta.get("train", {}).get("objectives", {}), dims)
    modules = nn.ModuleDict({k: o for k, (o, _) in built.items()})
    if (path / OBJECTIVES_FILE).is_file():
        load_state(modules, path / OBJECTIVES_FILE)
    return dict(modules.eval().items())


def load_model_dir(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from ``config.json`` and load ``model.safetensors`` (no pickle involved), after the
    manifest check of :func:`mmfuse.files.read_manifest`."""
    path = Path(path)
    meta = read_config(path)
    model = build_saved_model(path, meta)
    load_state(model, path / WEIGHTS)
    model.eval()
    return model, meta
