"""Layers point one way: lower layers never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mmfuse"
# rank of each top-level module/package; an import may only go to the same or a lower rank
RANK = {
    "errors": 0,
    "registry": 0,
    "contract": 0,
    "config": 0,
    "files": 0,
    "tasks": 0,
    "quiet": 0,
    "encoders": 1,
    "fusion": 1,
    "objectives": 1,
    "heads": 1,
    "representation": 1,
    "models": 2,
    "data": 3,
    "tabular": 3,
    "training": 4,
    "evaluation": 5,
    "predictor": 6,
    "export": 6,
    "benchmarks": 6,
    "retrieval": 6,
    "cli": 7,
}


def layer_of(module: str) -> str:
    return module.split(".")[1] if module.startswith("mmfuse.") else ""


def test_imports_point_down():
    bad = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        own = rel.parts[0].removesuffix(".py")
        if own in ("__init__", "__main__"):
            continue
        assert own in RANK, f"add {own!r} to RANK in tests/test_layering.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                layer = layer_of(t)
                if layer and layer in RANK and RANK[layer] > RANK[own]:
                    bad.append(f"{rel} imports {t}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_registries_load_without_heavy_optional_dependencies():
    """Building every registry imports no optional/heavy package (they are imported where used)."""
    import subprocess
    import sys

    code = (
        "import sys, mmfuse, mmfuse.registry as r\n"
        "for reg in (r.ENCODERS, r.FUSIONS, r.OBJECTIVES, r.HEADS): reg.list()\n"
        "heavy = [m for m in ('transformers', 'sentence_transformers', 'efficientnet_lite_pytorch', "
        "'librosa', 'lightning', 'matplotlib', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
