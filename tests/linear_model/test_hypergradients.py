"""Every tuner's hypergradient against central finite differences of its CV loss."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_regression
from sklearn.linear_model import ElasticNet, Lasso, Ridge
from sklearn.model_selection import KFold

from skimplicit.linear_model._cv_problems import (
    AdaptiveRidgeCVProblem,
    EnetCVProblem,
    RidgeCVProblem,
)
from skimplicit.tuning import split_folds
from skimplicit.linear_model._ridge import fit_ridge


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y, list(KFold(3, shuffle=True, random_state=0).split(X))


def _fd(f, x, h=1e-3):
    """4th-order central differences (converged at h = 1e-3 here: see
    test_hypergrad_exact.py, which checks h against h / 3)."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def _cv_mse_sklearn(est, X, y, splits, sw=None):
    losses = []
    for tr, te in splits:
        est.fit(X[tr], y[tr], sample_weight=None if sw is None else sw[tr])
        r = y[te] - est.predict(X[te])
        losses.append(np.average(r * r, weights=None if sw is None else sw[te]))
    return np.mean(losses)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
def test_enet_hypergradient_matches_finite_differences(diabetes, l1_ratio):
    X, y, splits = diabetes
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    prob = EnetCVProblem(split_folds(X, y, sw, splits), l1_ratio=l1_ratio, tune_l1_ratio=True, tol=1e-13,
                         max_iter=100000)
    alpha = 0.05
    ev = prob.evaluate({"alpha": alpha, "l1_ratio": l1_ratio}, precision=1.0)
    # The loss itself is scikit-learn's CV MSE of the same objective.
    ref = _cv_mse_sklearn(ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-13, max_iter=100000),
                          X, y, splits, sw)
    np.testing.assert_allclose(ev.loss, ref, rtol=1e-9)
    # d loss / d log alpha by central differences (the support is stable over the step).
    f = lambda la: prob.evaluate({"alpha": np.exp(la), "l1_ratio": l1_ratio}).loss  # noqa: E731
    fd = _fd(f, np.log(alpha))
    np.testing.assert_allclose(ev.grad["alpha"] * alpha, fd, rtol=1e-8)
    if l1_ratio < 1:
        g = lambda r: prob.evaluate({"alpha": alpha, "l1_ratio": r}).loss  # noqa: E731
        np.testing.assert_allclose(ev.grad["l1_ratio"], _fd(g, l1_ratio), rtol=1e-8)


def test_weighted_lasso_hypergradient_matches_finite_differences(diabetes):
    X, y, splits = diabetes
    prob = EnetCVProblem(split_folds(X, y, np.ones(len(y)), splits), alpha_per_feature=True, tol=1e-13,
                         max_iter=100000)
    alpha = np.linspace(0.02, 0.2, X.shape[1])
    ev = prob.evaluate({"alpha": alpha})
    assert ev.converged
    direction = np.random.RandomState(1).randn(X.shape[1])
    f = lambda t: prob.evaluate({"alpha": alpha * np.exp(t * direction)}).loss  # noqa: E731
    fd = _fd(f, 0.0)
    np.testing.assert_allclose(np.dot(ev.grad["alpha"] * alpha, direction), fd, rtol=1e-8)


@pytest.mark.parametrize("per_feature", [False, True])
def test_ridge_hypergradient_matches_finite_differences(diabetes, per_feature):
    X, y, splits = diabetes
    prob = RidgeCVProblem(split_folds(X, y, np.ones(len(y)), splits), alpha_per_feature=per_feature)
    alpha = np.linspace(0.1, 3.0, X.shape[1]) if per_feature else 0.7
    ev = prob.evaluate({"alpha": alpha})
    ref = np.mean([
        np.mean((y[te] - X[te] @ c - b) ** 2)
        for tr, te in splits
        for c, b in [fit_ridge(X[tr], y[tr], None, alpha, fit_intercept=True)]
    ])
    np.testing.assert_allclose(ev.loss, ref, rtol=1e-9)
    direction = np.random.RandomState(2).randn(X.shape[1]) if per_feature else 1.0
    f = lambda t: prob.evaluate({"alpha": alpha * np.exp(t * direction)}).loss  # noqa: E731
    fd = _fd(f, 0.0)
    np.testing.assert_allclose(np.sum(np.asarray(ev.grad["alpha"]) * alpha * direction), fd,
                               rtol=1e-8)


@pytest.mark.parametrize("multi_output", [False, True])
def test_adaptive_ridge_hypergradient_matches_finite_differences(diabetes, multi_output):
    """alpha_j = alpha (m / |w_j|)^gamma with per-fold weights: d/d alpha and d/d gamma."""
    X, y, splits = diabetes
    if multi_output:
        y = np.c_[y, 0.5 * y + 30 * X[:, 2]]
    prob = AdaptiveRidgeCVProblem(split_folds(X, y, np.ones(len(y)), splits))
    prob.set_base(0.3)
    assert np.ptp(prob.log_weights) > 1.0  # the weights differ across features
    params = {"alpha": 0.8, "gamma": 1.3}
    ev = prob.evaluate(params)
    # The loss is the plain per-feature ridge CV loss at the family's per-fold alphas.
    ref = np.mean([
        np.mean((y[te] - X[te] @ np.asarray(c).T - b) ** 2)
        for (tr, te), lw in zip(splits, prob.log_weights)
        for c, b in [fit_ridge(X[tr], y[tr], None, 0.8 * np.exp(1.3 * lw), fit_intercept=True)]
    ])
    np.testing.assert_allclose(ev.loss, ref, rtol=1e-9)
    fa = lambda t: prob.evaluate({"alpha": 0.8 * np.exp(t), "gamma": 1.3}).loss  # noqa: E731
    fg = lambda t: prob.evaluate({"alpha": 0.8, "gamma": 1.3 + t}).loss  # noqa: E731
    np.testing.assert_allclose(ev.grad["alpha"] * 0.8, _fd(fa, 0.0), rtol=1e-8)
    np.testing.assert_allclose(ev.grad["gamma"], _fd(fg, 0.0), rtol=1e-8)


def test_ridge_multioutput_loss_matches_sklearn():
    X, y = make_regression(60, 8, n_targets=3, noise=1.0, random_state=0)
    splits = list(KFold(3).split(X))
    prob = RidgeCVProblem(split_folds(X, y, np.ones(len(y)), splits))
    ev = prob.evaluate({"alpha": 2.0})
    ref = np.mean([np.mean((y[te] - Ridge(alpha=2.0).fit(X[tr], y[tr]).predict(X[te])) ** 2)
                   for tr, te in splits])
    np.testing.assert_allclose(ev.loss, ref, rtol=1e-9)


def test_lasso_loss_and_support_agree_with_sklearn_sparse(diabetes):
    import scipy.sparse as sp

    X, y, splits = diabetes
    Xs = sp.csc_matrix(np.where(np.abs(X) > 0.02, X, 0.0))
    prob = EnetCVProblem(split_folds(Xs, y, np.ones(len(y)), splits), tol=1e-12, max_iter=100000)
    ev = prob.evaluate({"alpha": 0.1})
    ref = _cv_mse_sklearn(Lasso(alpha=0.1, tol=1e-12, max_iter=100000), Xs, y, splits)
    np.testing.assert_allclose(ev.loss, ref, rtol=1e-8)
    f = lambda la: prob.evaluate({"alpha": np.exp(la)}).loss  # noqa: E731
    np.testing.assert_allclose(ev.grad["alpha"] * 0.1, _fd(f, np.log(0.1)), rtol=1e-8)


@pytest.mark.parametrize("per_feature", [False, True])
def test_working_set_solver_p_much_larger_than_n(per_feature):
    # p > 2 max(n, 100): the inner solver runs coordinate descent on working sets.
    X, y = make_regression(60, 400, n_informative=8, noise=1.0, random_state=0)
    splits = list(KFold(3, shuffle=True, random_state=0).split(X))
    prob = EnetCVProblem(split_folds(X, y, np.ones(len(y)), splits), tol=1e-12,
                         max_iter=100000, alpha_per_feature=per_feature)
    amax = prob.alpha_max_l1
    alpha = 0.05 * amax * (np.linspace(0.5, 1.5, 400) if per_feature else 1.0)
    ev = prob.evaluate({"alpha": alpha})
    assert ev.converged
    if not per_feature:
        ref = _cv_mse_sklearn(Lasso(alpha=alpha, tol=1e-12, max_iter=100000), X, y, splits)
        np.testing.assert_allclose(ev.loss, ref, rtol=1e-8)
    direction = np.random.RandomState(3).randn(400) if per_feature else 1.0
    f = lambda t: prob.evaluate({"alpha": alpha * np.exp(t * direction)}).loss  # noqa: E731
    # (400 alphas moved at once: a small step keeps every support)
    np.testing.assert_allclose(np.sum(np.asarray(ev.grad["alpha"]) * alpha * direction),
                               _fd(f, 0.0, 1e-5), rtol=1e-8)
