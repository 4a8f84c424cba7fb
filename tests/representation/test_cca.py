from __future__ import annotations

import numpy as np
import pytest

from mmfuse.errors import ConfigError, DataError
from mmfuse.representation import CCA, GCCA


def planted(n: int = 300, dims=(5, 4), latent: int = 2, seed: int = 0, noise: float = 1.0):
    """Views sharing ``latent`` Gaussian factors plus independent noise; also returns the factors."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, latent))
    views = [s @ rng.normal(size=(latent, d)) + noise * rng.normal(size=(n, d)) for d in dims]
    return views, s


def corr(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def test_cca_matches_sklearn_canonical_correlations():
    from sklearn.cross_decomposition import CCA as SkCCA

    (Xa, Xb), _ = planted()
    ours = CCA(n_components=3, reg=0.0).fit(Xa, Xb)
    sk = SkCCA(n_components=3, scale=False, max_iter=5000, tol=1e-12).fit(Xa, Xb)
    xs, ys = sk.transform(Xa, Xb)
    sk_rho = [abs(corr(xs[:, i], ys[:, i])) for i in range(3)]
    np.testing.assert_allclose(ours.canonical_correlations_, sk_rho, atol=1e-6)
    assert ours.canonical_correlations_[0] > 0.5  # the planted signal is found
    # the canonical variates realise the reported correlations and are whitened within each view
    za, zb = ours.transform(Xa, Xb)
    np.testing.assert_allclose([corr(za[:, i], zb[:, i]) for i in range(3)], ours.canonical_correlations_, atol=1e-10)
    np.testing.assert_allclose(np.cov(za.T), np.eye(3), atol=1e-10)


def test_cca_shapes_determinism_and_params():
    (Xa, Xb), _ = planted(n=50)
    a = CCA(n_components=2).fit(Xa, Xb)
    b = CCA(n_components=2).fit(Xa.copy(), Xb.copy())
    za, zb = a.fit_transform(Xa, Xb)
    assert za.shape == (50, 2) and zb.shape == (50, 2) and a.transform(Xa).shape == (50, 2)
    np.testing.assert_array_equal(a.weights_a_, b.weights_a_)
    assert a.get_params() == {"n_components": 2, "reg": 1e-6}
    assert a.set_params(reg=0.5).reg == 0.5
    from sklearn.base import clone

    assert clone(a).get_params() == a.get_params() and not hasattr(clone(a), "weights_a_")


def test_cca_regularisation_shrinks_correlations_when_n_below_d():
    rng = np.random.default_rng(1)
    Xa, Xb = rng.normal(size=(10, 20)), rng.normal(size=(10, 20))
    assert CCA(1, reg=1e-10).fit(Xa, Xb).canonical_correlations_[0] > 0.999  # spurious, as expected
    assert CCA(1, reg=1.0).fit(Xa, Xb).canonical_correlations_[0] < 0.9


def test_cca_user_errors():
    (Xa, Xb), _ = planted(n=20)
    with pytest.raises(ConfigError, match="n_components"):
        CCA(n_components=9).fit(Xa, Xb)
    with pytest.raises(DataError, match="different numbers of rows"):
        CCA().fit(Xa, Xb[:5])
    with pytest.raises(ConfigError, match="not fitted"):
        CCA().transform(Xa)
    bad = Xa.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        CCA().fit(bad, Xb)


def test_gcca_two_views_reduces_to_cca():
    (Xa, Xb), _ = planted(seed=3)
    cca = CCA(n_components=3, reg=0.0).fit(Xa, Xb)
    gcca = GCCA(n_components=3, reg=0.0).fit([Xa, Xb])
    # eigenvalues of P_a + P_b are 1 + rho_i
    np.testing.assert_allclose(gcca.eigenvalues_ - 1.0, cca.canonical_correlations_, atol=1e-8)
    ga, gb = gcca.transform([Xa, Xb])
    ca, cb = cca.transform(Xa, Xb)
    for i in range(3):
        assert corr(ga[:, i], gb[:, i]) == pytest.approx(cca.canonical_correlations_[i], abs=1e-8)
        assert abs(corr(ga[:, i], ca[:, i])) == pytest.approx(1.0, abs=1e-8)  # same direction
        assert abs(corr(gb[:, i], cb[:, i])) == pytest.approx(1.0, abs=1e-8)


def test_gcca_recovers_a_factor_shared_by_three_views():
    views, s = planted(n=400, dims=(6, 5, 8), latent=1, seed=4, noise=1.0)
    gcca = GCCA(n_components=2, reg=1e-3).fit(views)
    assert gcca.shared_.shape == (400, 2)
    np.testing.assert_allclose(gcca.shared_.T @ gcca.shared_, np.eye(2), atol=1e-10)
    assert abs(corr(gcca.shared_[:, 0], s[:, 0])) > 0.95
    assert 1.0 < gcca.eigenvalues_[0] <= 3.0 and gcca.eigenvalues_[0] > gcca.eigenvalues_[1]
    zs = gcca.transform([views[0], None, views[2]])
    assert zs[1] is None and abs(corr(zs[0][:, 0], zs[2][:, 0])) > 0.8
    with pytest.raises(ConfigError, match="at least 2 views"):
        GCCA().fit([views[0]])
