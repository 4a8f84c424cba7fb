"""Model directories: weights as safetensors + JSON metadata, written atomically, loaded without pickle.

Layout of a model directory::

    model.safetensors   # state dict of the model (MultimodalModel, or a multi-task model when ModelConfig.tasks is set)
    config.json         # {"model": ModelConfig, "train": TrainConfig, ...extra JSON metadata}
    summary.txt         # short human-readable summary

A save first writes everything into a sibling temporary directory and then renames it into place,
so a crash never leaves a half-written model directory that loads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from mmfuse.config import ModelConfig, from_dict
from mmfuse.errors import DataError
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


def write_atomic_dir(path: str | Path, files: Mapping[str, bytes | str]) -> Path:
    """Write ``{name: content}`` into directory ``path`` atomically (temp dir + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    umask = os.umask(0)  # read the umask (os has no getter)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; give it the permissions of a normal folder
    try:
        for name, content in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            (target.write_bytes if isinstance(content, bytes) else target.write_text)(content)
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def save_model_dir(
    path: str | Path,
    model: nn.Module,
    meta: Mapping[str, Any],
    summary: str = "",
    objectives: nn.Module | None = None,
    extra_files: Mapping[str, bytes | str] | None = None,
) -> Path:
    """Save ``model`` and ``meta`` (must contain ``"model"``: the ModelConfig as a dict) to ``path`` atomically.

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
        SUMMARY: summary or f"mmfuse model: fusion={cfg.get('fusion')}, modalities={sorted(cfg.get('encoders', {}))}{tasks}\n",
    }
    if objectives is not None and len(objectives.state_dict()):
        files[OBJECTIVES_FILE] = save({k: v.detach().cpu().contiguous() for k, v in objectives.state_dict().items()})
    return write_atomic_dir(path, files)


def load_objectives(path: str | Path) -> dict[str, Any]:
    """Rebuild the run's objectives (``{term: module}``) with their saved parameters, from a model directory."""
    from safetensors.torch import load_file

    from mmfuse.models.builder import build_encoders
    from mmfuse.training.task import objectives_for

    path = Path(path)
    meta = json.loads((path / CONFIG).read_text())
    dims = {m: int(e.out_dim) for m, e in build_encoders(meta["model"]["encoders"]).items()}
    built = objectives_for(from_dict(ModelConfig, meta["model"]), meta.get("train", {}).get("objectives", {}), dims)
    modules = nn.ModuleDict({k: o for k, (o, _) in built.items()})
    if (path / OBJECTIVES_FILE).is_file():
        modules.load_state_dict(load_file(str(path / OBJECTIVES_FILE)))
    return dict(modules.eval().items())


def load_model_dir(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from ``config.json`` and load ``model.safetensors`` (no pickle involved)."""
    from safetensors.torch import load_file

    path = Path(path)
    cfg_file, weights = path / CONFIG, path / WEIGHTS
    if not cfg_file.is_file() or not weights.is_file():
        raise DataError(f"{str(path)!r} is not an mmfuse model directory (needs {CONFIG} and {WEIGHTS}); pass the folder written by 'mmfuse fit' or 'mmfuse train'.")
    meta = json.loads(cfg_file.read_text())
    model = build_model(from_dict(ModelConfig, meta["model"]))
    model.load_state_dict(load_file(str(weights)))
    model.eval()
    return model, meta
