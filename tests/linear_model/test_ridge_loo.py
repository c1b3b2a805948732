"""ImplicitRidgeCV(cv=None): the exact leave-one-out error and its hypergradient.

The leave-one-out residuals equal refits without each sample (intercept and weights
included) and scikit-learn's ``RidgeCV`` ``cv_results_``; the hypergradient (JAX, through
one SVD, or a Cholesky factorization with one alpha per feature) equals converged
finite differences to 1e-8 relative.
"""

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import mean_squared_error, r2_score, root_mean_squared_error

from skimplicit.linear_model import ImplicitRidgeCV
from skimplicit.linear_model._ridge_loo import KINDS, RidgeLOOProblem

RTOL = 1e-8
FD_AGREE = 1e-9


def _data(n, p, targets=1, seed=0):
    X, y = make_regression(n_samples=n, n_features=p, n_targets=targets, noise=5.0,
                           bias=3.0, random_state=seed)
    sw = np.random.RandomState(seed).uniform(0.5, 2.0, n)
    return X, y, sw


@pytest.mark.filterwarnings("ignore:The best alpha is at the lower bound")
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("shape", [(30, 8, 1), (12, 20, 3)])
def test_loo_residuals_are_refits_without_each_sample(fit_intercept, shape):
    X, y, sw = _data(*shape)
    alpha = 2.5
    prob = RidgeLOOProblem(X, y, sw, fit_intercept=fit_intercept)
    looe = prob.evaluate({"alpha": alpha}).info["looe"]
    y2 = y.reshape(len(y), -1)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        m = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="svd").fit(
            X[keep], y[keep], sample_weight=sw[keep])
        e = (y2[i] - np.ravel(m.predict(X[i : i + 1]))) * np.sqrt(sw[i])
        np.testing.assert_allclose(looe[i], e, rtol=1e-9, atol=1e-9 * np.abs(y).max())
    # Per alpha, the same numbers as RidgeCV's own leave-one-out (cv_results_).
    alphas = [0.1, 2.5, 40.0]
    ours = ImplicitRidgeCV(alphas=alphas, store_cv_results=True,
                           fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
    ref = RidgeCV(alphas=alphas, store_cv_results=True, fit_intercept=fit_intercept).fit(
        X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.cv_results_, ref.cv_results_, rtol=1e-8,
                               atol=1e-10 * np.max(ref.cv_results_))


def _fd4(f, x, h):
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def _check_fd(loss, grad, z0, direction):
    """d loss(z0 + t direction) / dt at 0 by converged 4th-order differences."""
    def f(t):
        return loss(z0 + t * direction)

    fd1, fd2 = _fd4(f, 0.0, 1e-3), _fd4(f, 0.0, 1e-3 / 3)
    assert abs(fd1 - fd2) <= FD_AGREE * abs(fd2)  # the differences are converged
    np.testing.assert_allclose(np.dot(grad, direction), fd2, rtol=RTOL)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(40, 10, 1), (15, 30, 2)])
def test_loo_hypergradient_matches_finite_differences(kind, shape):
    X, y, sw = _data(*shape, seed=1)
    prob = RidgeLOOProblem(X, y, sw, kind=kind)
    alpha = 0.3 * prob.data_scale

    def loss(z):
        return prob.evaluate({"alpha": float(np.exp(z[0]))}).loss

    ev = prob.evaluate({"alpha": alpha})
    _check_fd(loss, np.array([ev.grad["alpha"] * alpha]), np.array([np.log(alpha)]),
              np.array([1.0]))


@pytest.mark.parametrize("shape", [(40, 10, 1), (15, 30, 2)])
def test_loo_hypergradient_per_feature_matches_finite_differences(shape):
    X, y, sw = _data(*shape, seed=2)
    prob = RidgeLOOProblem(X, y, sw, alpha_per_feature=True)
    rng = np.random.RandomState(0)
    a = prob.data_scale * np.exp(rng.uniform(-2, 1, X.shape[1]))

    def loss(z):
        return prob.evaluate({"alpha": np.exp(z)}).loss

    ev = prob.evaluate({"alpha": a})
    d = rng.randn(X.shape[1])
    _check_fd(loss, ev.grad["alpha"] * a, np.log(a), d / np.linalg.norm(d))
    # The one-alpha closed form (SVD) and the per-feature one (Cholesky) agree.
    one = RidgeLOOProblem(X, y, sw)
    e1 = one.evaluate({"alpha": float(a[0])})
    ev = prob.evaluate({"alpha": np.full(X.shape[1], a[0])})
    np.testing.assert_allclose(ev.loss, e1.loss, rtol=1e-10)
    np.testing.assert_allclose(np.sum(ev.grad["alpha"]), e1.grad["alpha"], rtol=1e-8)


def test_ridgecv_loo_matches_dense_grid_and_per_target():
    X, y, _ = _data(50, 12, targets=3, seed=3)
    y = y * np.array([1.0, 10.0, 0.1])
    grid = np.geomspace(1e-3, 1e4, 4000)
    ours = ImplicitRidgeCV(alpha_per_target=True).fit(X, y)
    ref = RidgeCV(alphas=grid, alpha_per_target=True).fit(X, y)
    # The continuous minimum sits within one step of the dense grid's best point.
    np.testing.assert_allclose(ours.alpha_, ref.alpha_, rtol=5e-3)
    assert np.all(ours.best_score_ >= ref.best_score_ - 1e-12 * np.abs(ref.best_score_))
    for t in range(3):
        alone = ImplicitRidgeCV().fit(X, y[:, t])
        assert alone.alpha_ == ours.alpha_[t]
    np.testing.assert_allclose(ours.coef_, Ridge(alpha=ours.alpha_).fit(X, y).coef_,
                               rtol=1e-8)


def test_ridgecv_loo_per_feature_and_scorers():
    X, y, sw = _data(60, 15, targets=2, seed=4)
    one = ImplicitRidgeCV().fit(X, y, sample_weight=sw)
    fam = ImplicitRidgeCV(alpha_per_feature=True).fit(X, y, sample_weight=sw)
    # The family contains the one-alpha model (gamma = 0): its leave-one-out loss is
    # not higher.
    assert fam.alpha_.shape == (15,) and 0 <= fam.gamma_ <= 2
    assert fam.cv_loss_ <= one.cv_loss_ * (1 + 1e-10)
    # Chain-rule scorers: best_score_ is the scorer's value at alpha_ and no evaluated
    # alpha scores better.
    metrics = {"r2": r2_score,
               "neg_root_mean_squared_error": lambda a, b: -root_mean_squared_error(a, b),
               "neg_mean_squared_error": lambda a, b: -mean_squared_error(a, b)}
    for scoring, metric in metrics.items():
        est = ImplicitRidgeCV(scoring=scoring, store_cv_results=True).fit(X, y)
        preds = est.cv_results_  # LOO predictions, (n, targets, n_alphas)
        scores = [metric(y, preds[..., k]) for k in range(preds.shape[-1])]
        assert est.best_score_ >= max(scores) - 1e-12 * abs(max(scores))
