"""Autoencoder objectives: reconstruction, latent correlation (DCCAE / CorrNet), Gaussian KL and the
product-of-experts posterior of the multimodal VAE.

The pure functions here are shared by the models of :mod:`mmfuse.models.autoencoder` (which import
this layer, never the reverse). :class:`DeepCanonicallyCorrelatedAutoencoder` (``"dccae"``) applies
the DCCAE objective to a :class:`~mmfuse.models.MultimodalModel`: its encoders are the model's
encoders and this objective owns the decoders back to the raw inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmfuse.errors import ConfigError
from mmfuse.objectives.base import Objective, paired_modalities
from mmfuse.registry import OBJECTIVES


def zero_like_graph(*tensors: Tensor) -> Tensor:
    """A scalar zero that keeps the autograd graph of ``tensors`` (``0 * sum``), for empty selections."""
    total = tensors[0].sum() * 0.0
    for t in tensors[1:]:
        total = total + t.sum() * 0.0
    return total


def reconstruction_loss(x_hat: Tensor, x: Tensor, mask: Tensor | None = None, likelihood: str = "gaussian") -> Tensor:
    """Negative log-likelihood of ``x`` under the decoder output, summed over features, averaged over present rows.

    * ``"gaussian"``: ``sum_j (x_j - x_hat_j)^2`` (unit-variance Gaussian up to a constant; the squared
      error of DCCAE, Wang et al., ICML 2015).
    * ``"bernoulli"``: ``-sum_j [x_j log s(l_j) + (1 - x_j) log(1 - s(l_j))]`` with ``x_hat = l`` the
      decoder's logits and ``s`` the sigmoid (binary cross-entropy; the image likelihood of MVAE,
      Wu & Goodman, NeurIPS 2018). Computed from logits for numerical stability.

    Inputs:
        x_hat: ``(B, ...)`` decoder output (means, or logits for Bernoulli); x: ``(B, ...)`` targets;
        mask: ``(B,)`` bool, rows to include (default all).

    Returns:
        scalar; a graph-carrying zero when no row is present.
    """
    x_hat = x_hat.reshape(x_hat.shape[0], -1)
    x = x.reshape(x.shape[0], -1).to(x_hat.dtype)
    if mask is not None:
        x_hat, x = x_hat[mask], x[mask]
    if x.shape[0] == 0:
        return zero_like_graph(x_hat)
    if likelihood == "gaussian":
        per_row = ((x - x_hat) ** 2).sum(1)
    elif likelihood == "bernoulli":
        per_row = F.binary_cross_entropy_with_logits(x_hat, x, reduction="none").sum(1)
    else:
        raise ConfigError(f"Unknown likelihood {likelihood!r}; use 'gaussian' or 'bernoulli'.")
    return per_row.mean()


def pearson_correlation_sum(za: Tensor, zb: Tensor, eps: float = 1e-8) -> Tensor:
    """Sum over dimensions of the Pearson correlation of paired codes, ``sum_d corr(za[:, d], zb[:, d])``.

    ``corr_d = sum_i (a_id - mean a_d)(b_id - mean b_d) / sqrt(sum_i (a_id - mean a_d)^2 sum_i (b_id - mean b_d)^2 +
    eps)``.
    This is the correlation term of Correlational Neural Networks (Chandar et al., Neural
    Computation 2016), a per-dimension (diagonal) simplification of the CCA term of DCCAE.

    Inputs: ``za``, ``zb``: ``(n, k)`` paired rows. Returns: scalar in ``[-k, k]`` (0 when ``n < 2``).
    """
    if za.shape[0] < 2:
        return zero_like_graph(za, zb)
    a = za - za.mean(0, keepdim=True)
    b = zb - zb.mean(0, keepdim=True)
    return ((a * b).sum(0) / torch.sqrt((a * a).sum(0) * (b * b).sum(0) + eps)).sum()


def canonical_correlation_sum(za: Tensor, zb: Tensor, ridge: float = 1e-3, top_k: int | None = None) -> Tensor:
    """Sum of the top-``k`` canonical correlations of two paired batches (the DCCAE / deep CCA correlation).

    With centred ``A (n, p)``, ``B (n, q)``: ``S_aa = A^T A/(n-1) + r I``, ``S_bb = B^T B/(n-1) + r I``,
    ``S_ab = A^T B/(n-1)``; the canonical correlations are the singular values of
    ``T = L_a^{-1} S_ab L_b^{-T}`` where ``S = L L^T`` (Cholesky). Any square-root whitening gives the same
    singular values as ``S_aa^{-1/2} S_ab S_bb^{-1/2}`` (Andrew et al., "Deep Canonical Correlation
    Analysis", ICML 2013; Wang et al., "On Deep Multi-View Representation Learning", ICML 2015); the
    Cholesky form keeps gradients finite when eigenvalues repeat (e.g. ``n < p``).

    Inputs: ``za (n, p)``, ``zb (n, q)``. Returns: scalar (0 when ``n < 2``).
    """
    n = za.shape[0]
    if n < 2:
        return zero_like_graph(za, zb)
    a = za - za.mean(0, keepdim=True)
    b = zb - zb.mean(0, keepdim=True)
    eye_a = torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
    eye_b = torch.eye(b.shape[1], dtype=b.dtype, device=b.device)
    la = torch.linalg.cholesky(a.T @ a / (n - 1) + ridge * eye_a)
    lb = torch.linalg.cholesky(b.T @ b / (n - 1) + ridge * eye_b)
    s_ab = a.T @ b / (n - 1)
    t = torch.linalg.solve_triangular(la, s_ab, upper=False)  # L_a^{-1} S_ab
    t = torch.linalg.solve_triangular(lb, t.T, upper=False).T  # ... L_b^{-T}
    sv = torch.linalg.svdvals(t)
    return sv[:top_k].sum() if top_k is not None else sv.sum()


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I)) = 1/2 sum_j (exp(logvar_j) + mu_j^2 - 1 - logvar_j)`` per row.

    (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, appendix B.)

    Inputs: ``mu``, ``logvar``: ``(B, k)``. Returns: ``(B,)``.
    """
    return 0.5 * (logvar.exp() + mu**2 - 1.0 - logvar).sum(-1)


def product_of_experts(mus: Tensor, logvars: Tensor, present: Tensor, prior: bool = True) -> tuple[Tensor, Tensor]:
    """Product of Gaussian experts over the PRESENT experts of each row (MVAE, Wu & Goodman, NeurIPS 2018).

    ``T = sum_m present_m / sigma_m^2 (+ 1 for the prior N(0, I))``, ``mu = (sum_m present_m mu_m / sigma_m^2) / T``,
    ``sigma^2 = 1 / T``. A row with no present expert gets the prior ``N(0, I)`` (without the prior its precision is
    clamped to ``1e-8``: mean 0, variance ``1e8``, never NaN).

    Inputs:
        mus, logvars: ``(M, B, k)`` expert means and log-variances; present: ``(M, B)`` bool/float.

    Returns:
        ``(mu, logvar)`` of the joint posterior, each ``(B, k)``.
    """
    w = present.to(mus.dtype)[..., None]  # (M, B, 1)
    precision = torch.exp(-logvars) * w  # (M, B, k); absent experts contribute nothing
    total = precision.sum(0)
    weighted = (precision * mus).sum(0)
    if prior:
        total = total + 1.0  # the prior expert N(0, I): precision 1, mean 0
    total = total.clamp_min(1e-8)
    return weighted / total, -torch.log(total)


@OBJECTIVES.register("dccae")
class DeepCanonicallyCorrelatedAutoencoder(Objective):
    """DCCAE on a multimodal model: ``L = -sum_{a<b} corr(f_a(x_a), f_b(x_b)) + lambda sum_m ||x_m -
    g_m(f_m(x_m))||^2``.

    Wang, Arora, Livescu & Bilmes, "On Deep Multi-View Representation Learning", ICML 2015. The
    encoders ``f_m`` are the model's encoders (``output["embeddings"]``); this objective owns the
    decoders ``g_m`` (MLP ``D_m -> hidden -> prod(input shape)``) that reconstruct the raw inputs
    ``batch["inputs"][m]``. Reconstruction uses the rows where ``m`` is present; correlation the rows
    where both modalities of a pair are present.

    Args:
        dims: encoder output sizes ``{m: D_m}`` (passed by the task builder).
        input_dims: flattened raw input size of each modality ``{m: prod(shape)}``.
        correlation: ``"cca"`` (top-k canonical correlations, DCCAE) or ``"pearson"`` (per-dimension, CorrNet;
            needs equal ``D_m``).
        recon_weight: ``lambda``. hidden: decoder width. ridge: CCA covariance ridge. top_k: canonical
        correlations kept (default all). likelihoods: ``{m: "gaussian" | "bernoulli"}`` (default gaussian).
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        input_dims: Mapping[str, int],
        correlation: str = "cca",
        recon_weight: float = 1.0,
        hidden: int = 128,
        ridge: float = 1e-3,
        top_k: int | None = None,
        likelihoods: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.modalities = paired_modalities(dims, "Objective 'dccae'")
        lacking = [m for m in self.modalities if m not in input_dims]
        if lacking:
            raise ConfigError(
                f"Objective 'dccae' option input_dims lacks {lacking}; give the flattened input size of every modality."
            )
        if correlation not in ("cca", "pearson"):
            raise ConfigError(f"Objective 'dccae' option correlation={correlation!r}; use 'cca' or 'pearson'.")
        if correlation == "pearson" and len({dims[m] for m in self.modalities}) > 1:
            raise ConfigError(
                "Objective 'dccae' with correlation='pearson' needs equal encoder out_dims; use correlation='cca'."
            )
        self.correlation, self.recon_weight, self.ridge, self.top_k = correlation, recon_weight, ridge, top_k
        self.likelihoods = {m: (likelihoods or {}).get(m, "gaussian") for m in self.modalities}
        self.decoders = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(dims[m], hidden), nn.ReLU(), nn.Linear(hidden, int(input_dims[m])))
                for m in self.modalities
            }
        )

    def terms(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Named terms ``{"correlation": sum of pair correlations, "reconstruction": sum_m recon_m}``."""
        emb, masks = output["embeddings"], output["masks"]
        recon = zero_like_graph(*(emb[m] for m in self.modalities))
        for m in self.modalities:
            recon = recon + reconstruction_loss(
                self.decoders[m](emb[m]), batch["inputs"][m], masks[m], self.likelihoods[m]
            )
        corr = zero_like_graph(*(emb[m] for m in self.modalities))
        for a, b in combinations(self.modalities, 2):
            both = masks[a] & masks[b]
            if self.correlation == "cca":
                corr = corr + canonical_correlation_sum(emb[a][both], emb[b][both], self.ridge, self.top_k)
            else:
                corr = corr + pearson_correlation_sum(emb[a][both], emb[b][both])
        return {"correlation": corr, "reconstruction": recon}

    def forward(self, output: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        """``-correlation + recon_weight * reconstruction`` (see :meth:`terms`)."""
        t = self.terms(output, batch)
        return -t["correlation"] + self.recon_weight * t["reconstruction"]
