"""Every Python snippet of the README runs, in order, as a reader would paste them (in a scratch folder)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_snippets_run(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMFUSE_DATA_DIR", str(data_dir))
    blocks = snippets()
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the README is ours
    assert (tmp_path / "models" / "lmf" / "mmfuse.json").is_file()
    # the configs of the last snippet build and train-ready, not only parse
    from mmfuse.models.builder import build_encoders, build_model
    from mmfuse.training.task import objectives_for

    build_model(namespace["multi"])
    cfg = namespace["cfg"].__class__(**{**namespace["cfg"].to_dict(), "unimodal_heads": True})
    dims = {m: int(e.out_dim) for m, e in build_encoders(cfg.encoders).items()}
    assert sorted(objectives_for(cfg, namespace["train"].objectives, dims)) == ["aux", "clip", "task"]
