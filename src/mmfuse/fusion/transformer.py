"""Transformer fusions on one token per modality: single-stream self-attention and cross-modal attention."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmfuse.errors import ConfigError
from mmfuse.fusion._common import check_positive, present_embeddings
from mmfuse.fusion.base import Fusion
from mmfuse.registry import FUSIONS


def _check_width(method: str, d_model: int, num_heads: int) -> None:
    check_positive(method, d_model=d_model, num_heads=num_heads)
    if d_model % num_heads:
        raise ConfigError(f"Fusion {method!r} option d_model={d_model} must be divisible by num_heads={num_heads}.")


class _ModalityTokens(nn.Module):
    """``t_m = P_m z_m + e_m``: each embedding projected to ``d_model`` plus a learned modality-type embedding."""

    def __init__(self, dims: Mapping[str, int], d_model: int) -> None:
        super().__init__()
        self.proj = nn.ModuleDict({m: nn.Linear(d, d_model) for m, d in dims.items()})
        self.type_embedding = nn.Parameter(0.02 * torch.randn(len(dims), d_model))

    def forward(self, zs: list[Tensor]) -> Tensor:
        tokens = torch.stack([self.proj[m](z) for m, z in zip(self.proj, zs)], dim=1)  # (B, M, d)
        return tokens + self.type_embedding


@FUSIONS.register("self_attention")
class SelfAttentionFusion(Fusion):
    """Single-stream transformer over one token per modality plus a learned fusion ([CLS]) token.

    Tokens ``x = [c; P_1 z_1 + e_1; ...; P_M z_M + e_M]`` (``e_m`` learned modality-type embeddings,
    ``c`` a learned fusion token) go through a ``TransformerEncoder`` whose ``src_key_padding_mask``
    hides the absent modalities (so a padded token is exactly as if it were removed); the output is
    the projection of the final fusion token, ``z = W h_c + b``. The fusion token is never masked, so
    a sample with no modality still has a finite output.

    References: Vaswani et al., "Attention is all you need", NeurIPS 2017; single-stream multimodal
    transformers such as Li et al., "VisualBERT", 2019 and the fusion tokens of Nagrani et al.,
    "Attention bottlenecks for multimodal fusion", NeurIPS 2021.

    Args:
        dims: ``{modality: D_m}``.
        out_dim: size of the fused representation.
        d_model: token width; num_heads: attention heads (must divide ``d_model``);
        num_layers: encoder layers; dropout: dropout inside the layers; ffn_mult: feed-forward width / ``d_model``.

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool.

    Returns:
        ``(B, out_dim)``.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        out_dim: int,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 1,
        dropout: float = 0.0,
        ffn_mult: int = 2,
    ) -> None:
        super().__init__(dims, out_dim)
        _check_width("self_attention", d_model, num_heads)
        check_positive("self_attention", out_dim=out_dim, num_layers=num_layers, ffn_mult=ffn_mult)
        self.tokens = _ModalityTokens(self.dims, d_model)
        self.fusion_token = nn.Parameter(0.02 * torch.randn(1, 1, d_model))
        layer = nn.TransformerEncoderLayer(d_model, num_heads, ffn_mult * d_model, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, self.out_dim)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        zs, present = present_embeddings(self, embeddings, masks)
        tokens = self.tokens(zs)  # (B, M, d)
        x = torch.cat([self.fusion_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)  # (B, 1 + M, d)
        padding = torch.cat([torch.zeros_like(present[:, :1]), ~present], dim=1)  # True = hidden
        h = self.encoder(x, src_key_padding_mask=padding)
        return self.out(h[:, 0])


@FUSIONS.register("cross_attention")
class CrossAttentionFusion(Fusion):
    """Cross-modal attention: each modality's token attends to the other modalities' tokens.

    With tokens ``t_m = P_m z_m + e_m``, for each target modality ``m`` (own parameters per target)::

        a_m = MultiheadAttention(q = t_m, k = v = {t_k : k != m, k present})   (0 if no other k is present)
        x_m = LayerNorm(t_m + a_m);   y_m = LayerNorm(x_m + FFN(x_m))
        z   = W mean_{m present} y_m + b                                       (z = b if none is present)

    i.e. one cross-modal transformer block per target modality whose keys are all the other
    modalities at once. With a single modality there is no key: the cross-attention is skipped
    (``a_m = 0``) and the block reduces to the residual FFN.

    References: Tsai et al., "Multimodal Transformer for unaligned multimodal language sequences"
    (MulT), ACL 2019; Tan & Bansal, "LXMERT: learning cross-modality encoder representations from
    transformers", EMNLP 2019.

    Args:
        dims: ``{modality: D_m}``.
        out_dim: size of the fused representation.
        d_model: token width; num_heads: attention heads (must divide ``d_model``);
        dropout: dropout in attention and FFN; ffn_mult: feed-forward width / ``d_model``.

    Inputs:
        embeddings: ``{m: (B, D_m)}``; masks: ``{m: (B,)}`` bool.

    Returns:
        ``(B, out_dim)``.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        out_dim: int,
        d_model: int = 64,
        num_heads: int = 4,
        dropout: float = 0.0,
        ffn_mult: int = 2,
    ) -> None:
        super().__init__(dims, out_dim)
        _check_width("cross_attention", d_model, num_heads)
        check_positive("cross_attention", out_dim=out_dim, ffn_mult=ffn_mult)
        self.tokens = _ModalityTokens(self.dims, d_model)
        names = self.modalities
        if len(names) > 1:
            self.cross = nn.ModuleDict(
                {m: nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True) for m in names}
            )
        self.norm1 = nn.ModuleDict({m: nn.LayerNorm(d_model) for m in names})
        self.ffn = nn.ModuleDict(
            {
                m: nn.Sequential(
                    nn.Linear(d_model, ffn_mult * d_model),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                    nn.Linear(ffn_mult * d_model, d_model),
                )
                for m in names
            }
        )
        self.norm2 = nn.ModuleDict({m: nn.LayerNorm(d_model) for m in names})
        self.out = nn.Linear(d_model, self.out_dim)

    def cross_attend(self, tokens: Tensor, present: Tensor) -> Tensor:
        """Cross-modal attention outputs ``a`` ``(B, M, d)``; ``a_m = 0`` where no other modality is present.

        Inputs:
            tokens: ``(B, M, d)``; present: ``(B, M)`` bool.
        """
        if len(self.modalities) == 1:
            return torch.zeros_like(tokens)
        outs = []
        for i, m in enumerate(self.modalities):
            others = [j for j in range(len(self.modalities)) if j != i]
            keys = tokens[:, others]  # (B, M - 1, d)
            has_key = present[:, others].any(dim=1)  # (B,)
            # a sample with no other modality attends to all keys (finite, no NaN) and is zeroed after
            hidden = ~present[:, others] & has_key[:, None]
            a, _ = self.cross[m](
                tokens[:, i : i + 1], keys, keys, key_padding_mask=hidden, need_weights=False
            )  # (B, 1, d)
            outs.append(torch.where(has_key[:, None, None], a, torch.zeros_like(a)))
        return torch.cat(outs, dim=1)

    def forward(self, embeddings: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        zs, present = present_embeddings(self, embeddings, masks)
        tokens = self.tokens(zs)  # (B, M, d)
        attended = self.cross_attend(tokens, present)
        ys = []
        for i, m in enumerate(self.modalities):
            x = self.norm1[m](tokens[:, i] + attended[:, i])
            ys.append(self.norm2[m](x + self.ffn[m](x)))
        y = torch.stack(ys, dim=1)  # (B, M, d)
        keep = present.to(y.dtype)[:, :, None]
        pooled = (keep * y).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)  # mean over present modalities
        return self.out(pooled)
