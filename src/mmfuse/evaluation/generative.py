"""Measures of generated samples: the Fréchet distance between two sets of features."""

from __future__ import annotations

import warnings

import numpy as np

from mmfuse.errors import DataError


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID when the features are Inception's).

    ``d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` with the sample means ``mu`` and covariances
    ``S`` (Dowson & Landau, J. Multivariate Anal. 1982; Heusel et al., "GANs Trained by a Two Time-Scale Update
    Rule Converge to a Local Nash Equilibrium", NeurIPS 2017). The matrix square root is ``scipy.linalg.sqrtm``;
    its negligible imaginary part (round-off) is dropped, and a singular product is offset by ``1e-6 I`` as in
    pytorch-fid.

    Inputs: ``a (N, D)``, ``b (M, D)`` with ``N, M >= 2``. Returns: ``d^2 >= 0`` (0 for identical sets).
    """
    from scipy.linalg import sqrtm

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise DataError(
            f"The Fréchet distance compares two (N, D) feature sets with the same D and N >= 2; got {a.shape} "
            f"and {b.shape}."
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():  # a singular product (e.g. a dead ReLU feature) is handled below
        warnings.simplefilter("ignore")
        root = sqrtm(s_a @ s_b)
        if not np.isfinite(root).all():  # offset the diagonals, as pytorch-fid does
            eye = np.eye(len(s_a)) * 1e-6
            root = sqrtm((s_a + eye) @ (s_b + eye))
    root = np.real(root)
    d2 = float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2.0 * root))
    return max(d2, 0.0)
