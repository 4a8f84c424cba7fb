"""Free text: MiniLM sentence embeddings (384-d, frozen, cached) -> ``mlp``; or, with ``encoder: minilm``,
token ids -> the fine-tuned ``minilm`` encoder."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmfuse.tabular import readers as R
from mmfuse.tabular.kinds.base import COLUMN_KINDS, ColumnKind
from mmfuse.tabular.kinds.context import Context

EMBED_DIM = 384  # MiniLM-L6 sentence embeddings


@COLUMN_KINDS.register("text")
class TextKind(ColumnKind):
    """One text column; empty cells are absent."""

    name = "text"
    options = frozenset({"encoder", "out_dim", "max_length"})
    encoders = ("minilm_frozen", "minilm")
    sizes = ("dim", "max_length")

    def fit(self, ctx: Context, columns: list[str], options: dict[str, Any]) -> dict[str, Any]:
        if self.encoder_name(options) == "minilm":  # fine-tuned: token ids
            return self.new_state(columns, options, max_length=int(options.get("max_length", 64)))
        return self.new_state(columns, options, dim=EMBED_DIM)  # frozen: cached sentence embeddings

    def transform(self, ctx: Context, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        col = state["columns"][0]
        texts: dict[int, str] = {}
        for j, cell in enumerate(ctx.part[col].tolist()):
            try:
                texts[j] = R.clean_text(cell)
            except R.ReadIssue as exc:
                ctx.issue(j, col, str(exc))
        n, js = len(ctx), sorted(texts)
        mask = np.zeros(n, bool)
        mask[js] = True
        if state["encoder"] == "minilm":
            from mmfuse.encoders.pretrained import tokenize

            ids = np.zeros((n, state["max_length"]), np.int64)  # (N, L) token ids, 0 = padding
            if js:
                ids[js] = tokenize([texts[j] for j in js], state["max_length"])
            return ids, mask
        from mmfuse.encoders.pretrained import embed_texts, text_encoder_version

        x = np.zeros((n, EMBED_DIM), np.float32)
        if js:
            strings = [texts[j] for j in js]
            x[js], _ = ctx.encoded(
                text_encoder_version(),
                [R.digest(s) for s in strings],
                strings.__getitem__,
                lambda batch, device: embed_texts(batch, progress=False, device=device),
                (EMBED_DIM,),
                f"MiniLM {col}",
                batch_size=64,
            )
        return x, mask

    def encoder(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["encoder"] == "minilm":
            return {"name": "minilm", "out_dim": state["out_dim"], "trainable": True}
        return super().encoder(state)
