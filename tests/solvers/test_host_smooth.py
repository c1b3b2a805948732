"""Host solvers of the smooth final steps against scikit-learn's own fits."""

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (
    GammaRegressor,
    HuberRegressor,
    PoissonRegressor,
    TweedieRegressor,
)
from sklearn.linear_model._huber import _huber_loss_and_gradient
from sklearn.svm import LinearSVC, LinearSVR

from skimplicit.solvers._host_smooth import (
    huber_fit,
    huber_newton,
    squared_svm_newton,
    tweedie_newton,
    weighted_kernel_ridge,
)


def _weights(n, seed=1):
    return np.random.RandomState(seed).randint(1, 4, n).astype(float)


def _augment(X, scaling):
    return np.hstack([X, np.full((len(X), 1), scaling)])


def _svm_grad(X, y, sw, C, w, eps=None):
    """Gradient of liblinear's primal at ``w`` (squared hinge, or squared
    epsilon-insensitive with ``eps``)."""
    r = y - X @ w
    m = np.where(y * r > 0, r, 0.0) if eps is None else np.where(
        np.abs(r) > eps, r - eps * np.sign(r), 0.0)
    return w - 2 * C * X.T @ (sw * m)


def test_squared_hinge_matches_linear_svc():
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    sw, C, scaling = _weights(120), 0.3, 2.0
    ref = LinearSVC(loss="squared_hinge", dual=False, C=C, tol=1e-14, max_iter=100_000,
                    intercept_scaling=scaling).fit(X, y, sample_weight=sw)
    codes = np.where(y == 1, 1.0, -1.0)
    w, cho, info, gram = squared_svm_newton(_augment(X, scaling), codes, C, sample_weight=sw)
    assert info.converged and info.exact
    # exact (liblinear's trust-region Newton stops at ~1e-7 relative)
    assert np.max(np.abs(_svm_grad(_augment(X, scaling), codes, sw, C, w))) < 1e-12
    np.testing.assert_allclose(w[:-1], ref.coef_[0], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(w[-1] * scaling, ref.intercept_[0], rtol=1e-6, atol=1e-8)
    # warm start and Gram cache from another C: the same minimizer
    w2, _, info2, _ = squared_svm_newton(_augment(X, scaling), codes, 1.5 * C,
                                         sample_weight=sw, init=w, gram=gram)
    w3, _, _, _ = squared_svm_newton(_augment(X, scaling), codes, 1.5 * C, sample_weight=sw)
    assert info2.converged
    np.testing.assert_allclose(w2, w3, rtol=1e-10, atol=1e-12)


def test_squared_epsilon_insensitive_matches_linear_svr():
    X, y = make_regression(n_samples=100, n_features=5, noise=5.0, random_state=0)
    y = y / np.std(y)
    sw, C, eps = _weights(100), 2.0, 0.2
    ref = LinearSVR(loss="squared_epsilon_insensitive", dual=False, C=C, epsilon=eps,
                    tol=1e-14, max_iter=100_000).fit(X, y, sample_weight=sw)
    w, _, info, _ = squared_svm_newton(_augment(X, 1.0), y, C, sample_weight=sw,
                                       loss="squared_epsilon_insensitive", epsilon=eps)
    assert info.converged
    assert np.max(np.abs(_svm_grad(_augment(X, 1.0), y, sw, C, w, eps))) < 1e-12
    np.testing.assert_allclose(w[:-1], ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(w[-1], ref.intercept_[0], rtol=1e-6, atol=1e-8)


def test_squared_svm_not_converged_at_small_max_iter():
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    codes = np.where(y == 1, 1.0, -1.0)
    _, _, info, _ = squared_svm_newton(_augment(X, 1.0), codes, 0.3,
                                       sample_weight=np.ones(120), max_iter=1)
    assert not info.converged and not info.exact and info.n_iter == 1
    with pytest.raises(ValueError, match="Unknown loss"):
        squared_svm_newton(X, codes, 1.0, sample_weight=np.ones(120), loss="hinge")


def _huber_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 4))
    y = X @ [1.0, -2.0, 0.5, 0.0] + 0.5 + rng.standard_t(2, 150)
    return X, y, _weights(150)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_huber_matches_huber_regressor(fit_intercept):
    X, y, sw = _huber_data()
    alpha = 0.3
    ref = HuberRegressor(alpha=alpha, epsilon=1.5, fit_intercept=fit_intercept, tol=1e-14,
                         max_iter=100_000).fit(X, y, sample_weight=sw)
    theta, sigma, info = huber_fit(X, y, alpha, sample_weight=sw, epsilon=1.5,
                                   fit_intercept=fit_intercept)
    assert info.converged
    # scikit-learn's own objective: its gradient vanishes at our solution (its L-BFGS-B
    # stops at a relative decrease of ~1e-9, ~1e-4 from the minimizer in the coefficients)
    ours = np.append(theta, sigma)
    theirs = np.append(ref.coef_, [ref.intercept_, ref.scale_] if fit_intercept
                       else [ref.scale_])
    f_ours, g_ours = _huber_loss_and_gradient(ours, X, y, 1.5, alpha, sw)
    f_theirs, _ = _huber_loss_and_gradient(theirs, X, y, 1.5, alpha, sw)
    assert f_ours <= f_theirs and np.max(np.abs(g_ours)) < 1e-9 * f_ours
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4)
    # warm-started at another alpha: Newton alone, the same minimizer as a cold start
    t2, s2, info2 = huber_fit(X, y, 2 * alpha, sample_weight=sw, epsilon=1.5,
                              fit_intercept=fit_intercept, init=(theta, sigma))
    t3, s3, _ = huber_fit(X, y, 2 * alpha, sample_weight=sw, epsilon=1.5,
                          fit_intercept=fit_intercept)
    assert info2.converged
    np.testing.assert_allclose(t2, t3, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(s2, s3, rtol=1e-8)


def test_huber_not_converged_at_small_max_iter():
    X, y, sw = _huber_data()
    m = HuberRegressor(alpha=0.3).fit(X, y, sample_weight=sw)
    theta0 = np.append(m.coef_, m.intercept_)
    _, _, info = huber_newton(X, y, 0.3, theta0, 2.0 * m.scale_, sample_weight=sw,
                              max_iter=1)
    assert not info.converged
    _, _, info = huber_fit(X, y, 0.3, sample_weight=sw, max_iter=1)
    assert not info.converged


def _count_data(positive):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4)) / 2
    mu = np.exp(X @ [0.5, -0.3, 0.2, 0.0] + 0.3)
    y = rng.gamma(2.0, mu / 2.0) if positive else rng.poisson(mu).astype(float)
    return X, y, _weights(200)


@pytest.mark.parametrize("est,power", [
    (PoissonRegressor, 1.0), (GammaRegressor, 2.0),
    (lambda **kw: TweedieRegressor(power=1.5, link="log", **kw), 1.5)])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_tweedie_newton_matches_glms(est, power, fit_intercept):
    X, y, sw = _count_data(power >= 2)
    alpha = 0.05
    ref = est(alpha=alpha, fit_intercept=fit_intercept, solver="newton-cholesky",
              tol=1e-14, max_iter=10_000).fit(X, y, sample_weight=sw)
    Xa = np.hstack([X, np.ones((len(X), 1))]) if fit_intercept else X
    theta, H, info = tweedie_newton(Xa, y, alpha, sample_weight=sw / sw.sum(), power=power,
                                    fit_intercept=fit_intercept)
    assert info.converged and H.shape == (Xa.shape[1],) * 2
    np.testing.assert_allclose(theta[:4], ref.coef_, rtol=1e-8, atol=1e-10)
    if fit_intercept:
        np.testing.assert_allclose(theta[4], ref.intercept_, rtol=1e-8, atol=1e-10)
    warm, _, info_w = tweedie_newton(Xa, y, 2 * alpha, sample_weight=sw / sw.sum(),
                                     power=power, fit_intercept=fit_intercept, init=theta)
    cold, _, info_c = tweedie_newton(Xa, y, 2 * alpha, sample_weight=sw / sw.sum(),
                                     power=power, fit_intercept=fit_intercept)
    assert info_w.converged and info_w.n_iter <= info_c.n_iter
    np.testing.assert_allclose(warm, cold, rtol=1e-10, atol=1e-12)


def test_tweedie_newton_not_converged_at_small_max_iter():
    X, y, sw = _count_data(False)
    Xa = np.hstack([X, np.ones((len(X), 1))])
    _, _, info = tweedie_newton(Xa, y, 0.05, sample_weight=sw / sw.sum(), max_iter=1)
    assert not info.converged and info.n_iter == 1


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_weighted_kernel_ridge_matches_kernel_ridge(kernel):
    from sklearn.metrics.pairwise import pairwise_kernels

    X, y = make_regression(n_samples=80, n_features=5, noise=3.0, random_state=0)
    sw = _weights(80)
    ref = KernelRidge(alpha=0.7, kernel=kernel, gamma=0.1).fit(X, y, sample_weight=sw)
    K = pairwise_kernels(X, metric=kernel, filter_params=True, gamma=0.1)
    c, cp, factor = weighted_kernel_ridge(K, y, 0.7, sample_weight=sw)
    np.testing.assert_allclose(c[:, 0], ref.dual_coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c, np.sqrt(sw)[:, None] * cp)
    assert factor[0].shape == (80, 80)
