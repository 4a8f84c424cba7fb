from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmfuse.errors import ConfigError
from mmfuse.representation import (
    CCA,
    KernelCCA,
    center_kernel,
    cka,
    gaussian_kernel,
    get_kernel,
    hsic,
    kernel_alignment,
    linear_kernel,
    modality_relatedness,
    polynomial_kernel,
)


def test_gaussian_kernel_known_values_and_median_heuristic():
    X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    K = gaussian_kernel(X, sigma=1.0)
    expected = torch.tensor(
        [
            [1.0, math.exp(-0.5), math.exp(-2.0)],
            [math.exp(-0.5), 1.0, math.exp(-2.5)],
            [math.exp(-2.0), math.exp(-2.5), 1.0],
        ]
    )
    torch.testing.assert_close(K, expected)
    # pairwise distances 1, 2, sqrt(5): median 2, so sigma = 2
    torch.testing.assert_close(gaussian_kernel(X), torch.exp(-(torch.cdist(X, X) ** 2) / 8.0))


def test_kernels_match_sklearn_and_accept_numpy():
    from sklearn.metrics.pairwise import polynomial_kernel as sk_poly
    from sklearn.metrics.pairwise import rbf_kernel

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    np.testing.assert_allclose(linear_kernel(X, Y).numpy(), X @ Y.T, atol=1e-12)
    np.testing.assert_allclose(
        polynomial_kernel(X, Y, degree=2, coef0=0.5).numpy(), sk_poly(X, Y, degree=2, coef0=0.5), atol=1e-12
    )
    np.testing.assert_allclose(
        gaussian_kernel(X, Y, sigma=0.7).numpy(), rbf_kernel(X, Y, gamma=1 / (2 * 0.7**2)), atol=1e-12
    )
    assert (
        gaussian_kernel(X).dtype == torch.float64 and linear_kernel(np.arange(6).reshape(3, 2)).dtype == torch.float32
    )
    with pytest.raises(ConfigError, match="Unknown kernel 'rbff'"):
        get_kernel("rbff")


def test_hsic_matches_the_trace_formula():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    K, L = gaussian_kernel(X, sigma=1.0).numpy(), linear_kernel(Y).numpy()
    H = np.eye(7) - np.ones((7, 7)) / 7
    assert float(hsic(K, L)) == pytest.approx(np.trace(K @ H @ L @ H) / 36, rel=1e-10)
    np.testing.assert_allclose(center_kernel(K).numpy(), H @ K @ H, atol=1e-12)


def test_cka_invariances_of_linear_cka():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 5))
    Y = X @ rng.normal(size=(5, 4)) + 0.5 * rng.normal(size=(40, 4))
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    lin = linear_kernel
    assert float(cka(lin(X), lin(X))) == pytest.approx(1.0, abs=1e-12)
    base = float(cka(lin(X), lin(Y)))
    assert 0.2 < base < 1.0
    assert float(cka(lin(3.7 * X), lin(Y))) == pytest.approx(base, abs=1e-12)  # isotropic scaling
    assert float(cka(lin(X @ Q), lin(Y))) == pytest.approx(base, abs=1e-12)  # orthogonal transform
    assert float(cka(lin(X + 5.0), lin(Y))) == pytest.approx(base, abs=1e-12)  # translation
    # but not invariant to an anisotropic (non-orthogonal) linear map
    assert abs(float(cka(lin(X * np.array([10.0, 1, 1, 1, 1])), lin(Y))) - base) > 1e-3
    # centred alignment is CKA; uncentred alignment of I and 11^T is 2 / (sqrt(2) * 2)
    assert float(kernel_alignment(lin(X), lin(Y), centered=True)) == pytest.approx(base, abs=1e-12)
    assert float(kernel_alignment(np.eye(2), np.ones((2, 2)))) == pytest.approx(1 / math.sqrt(2))


def test_modality_relatedness_orders_related_above_independent():
    rng = np.random.default_rng(3)
    Za = rng.normal(size=(100, 6))
    related = modality_relatedness(Za, Za @ rng.normal(size=(6, 3)) + 0.1 * rng.normal(size=(100, 3)))
    independent = modality_relatedness(Za, rng.normal(size=(100, 3)))
    assert isinstance(related, float) and related > 0.5 > independent >= 0.0
    assert modality_relatedness(Za, Za, kernel="gaussian") == pytest.approx(1.0)


def test_kernel_cca_with_linear_kernel_equals_linear_cca():
    rng = np.random.default_rng(4)
    n = 200
    s = rng.normal(size=(n, 2))
    Xa = s @ rng.normal(size=(2, 5)) + rng.normal(size=(n, 5))
    Xb = s @ rng.normal(size=(2, 4)) + rng.normal(size=(n, 4))
    # small regularisation on both sides: correlations agree to ~1e-2
    small = KernelCCA(3, kernel="linear", reg=1e-2).fit(Xa, Xb).canonical_correlations_
    np.testing.assert_allclose(small, CCA(3, reg=0.0).fit(Xa, Xb).canonical_correlations_, atol=1e-2)
    # matched regularisation (Gram ridge = (n - 1) * covariance ridge): identical solution
    r = 0.05
    kcca, cca = KernelCCA(3, kernel="linear", reg=r * (n - 1)).fit(Xa, Xb), CCA(3, reg=r).fit(Xa, Xb)
    np.testing.assert_allclose(kcca.canonical_correlations_, cca.canonical_correlations_, atol=1e-10)
    new_a, new_b = rng.normal(size=(10, 5)), rng.normal(size=(10, 4))
    (ka, kb), (ca, cb) = kcca.transform(new_a, new_b), cca.transform(new_a, new_b)
    sign = np.sign((ka * ca).sum(0))
    np.testing.assert_allclose(ka * sign, ca, atol=1e-8)
    np.testing.assert_allclose(kb * sign, cb, atol=1e-8)


def test_gaussian_kernel_cca_finds_a_nonlinear_relation_that_generalises():
    rng = np.random.default_rng(5)

    def views(n):
        t = rng.uniform(-1, 1, size=n)
        return np.c_[t, rng.normal(size=n)], np.c_[t**2 + 0.05 * rng.normal(size=n), rng.normal(size=n)]

    Xa, Xb = views(300)
    assert CCA(1, reg=0.0).fit(Xa, Xb).canonical_correlations_[0] < 0.3  # invisible to linear CCA
    kcca = KernelCCA(1, kernel="gaussian", reg=0.1).fit(Xa, Xb)
    assert kcca.canonical_correlations_[0] > 0.9
    assert kcca.kernel_params_a_["sigma"] > 0
    ta, tb = kcca.transform(*views(200))
    assert np.corrcoef(ta[:, 0], tb[:, 0])[0, 1] > 0.9  # held-out samples
    with pytest.raises(ConfigError, match="reg"):
        KernelCCA(reg=0.0).fit(Xa, Xb)
