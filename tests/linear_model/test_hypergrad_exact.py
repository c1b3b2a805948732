"""Hypergradients exact to 1e-8 relative at the estimators' default inner tolerances.

Each tuner's hypergradient is compared with finite differences of the same CV loss (same
folds, the problem's own inner solve at a tight tolerance) that are shown to be converged:
4th-order central differences at steps ``h`` and ``h / 3`` agree to 1e-9 relative. Where
the inner solve is exact (the Lasso / elastic net after the certified polish, ridge's
direct solve, logistic l1 after its polish and l2 after its Newton refinement) the
hypergradient must match to 1e-8 at the default tolerance. A singular support system
(duplicated active columns) is solved with the fallback ridge, and that is reported.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, make_regression
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from skimplicit.implicit import LinearSolveWarning
from skimplicit.linear_model._cv_problems import (
    AdaptiveRidgeCVProblem,
    EnetCVProblem,
    RidgeCVProblem,
)
from skimplicit.linear_model._hypergrad import enet_support_hypergrad
from skimplicit.tuning import FoldData, split_folds
from skimplicit.tuning._kernel import FALLBACK_RIDGE
from skimplicit.linear_model._logistic_problem import LogisticCVProblem
from skimplicit.model_selection._adapters import make_problem, restrict
from skimplicit.model_selection._search import _fold_data

RTOL = 1e-8  # the hypergradient against converged finite differences
FD_AGREE = 1e-9  # 4th-order differences at h and h / 3: converged well below RTOL


def _fd4(f, x, h):
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def converged_fd(f, x=0.0, h=1e-3):
    """The derivative of ``f`` at ``x``, asserted converged (steps ``h`` and ``h / 3``)."""
    d1, d2 = _fd4(f, x, h), _fd4(f, x, h / 3)
    assert abs(d1 - d2) <= FD_AGREE * abs(d2), (d1, d2)
    return d2


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y, list(KFold(3, shuffle=True, random_state=0).split(X))


def _tight(prob, params):
    """CV loss by the problem's own inner solve at 1e-9 x its tolerance (no gradient)."""
    return prob.evaluate(params, precision=1e-9, with_grad=False).loss


# -- Lasso / elastic net: exact after the certified polish, at the default tol=1e-4 -------


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
def test_lasso_exact_at_default_tol(diabetes, alpha):
    """The issue's measurement: 1.9e-7, 4.6e-7, 3.1e-8 relative before (ridge 1e-10)."""
    X, y, splits = diabetes
    prob = EnetCVProblem(split_folds(X, y, np.ones(len(y)), splits))  # tol=1e-4
    ev = prob.evaluate({"alpha": alpha})
    assert all(ev.info["exact"]) and ev.converged
    assert ev.info["ridge"] == [0.0, 0.0, 0.0]
    fd = converged_fd(lambda t: _tight(prob, {"alpha": alpha * np.exp(t)}))
    np.testing.assert_allclose(ev.grad["alpha"] * alpha, fd, rtol=RTOL)


def test_enet_alpha_and_l1_ratio_exact_weighted(diabetes):
    X, y, splits = diabetes
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    prob = EnetCVProblem(split_folds(X, y, sw, splits), l1_ratio=0.6, tune_l1_ratio=True)
    p = {"alpha": 0.05, "l1_ratio": 0.6}
    ev = prob.evaluate(p)
    assert all(ev.info["exact"]) and ev.converged
    fa = converged_fd(lambda t: _tight(prob, {**p, "alpha": 0.05 * np.exp(t)}))
    fr = converged_fd(lambda t: _tight(prob, {**p, "l1_ratio": 0.6 + t}))
    np.testing.assert_allclose(ev.grad["alpha"] * 0.05, fa, rtol=RTOL)
    np.testing.assert_allclose(ev.grad["l1_ratio"], fr, rtol=RTOL)


def test_weighted_lasso_exact(diabetes):
    X, y, splits = diabetes
    prob = EnetCVProblem(split_folds(X, y, np.ones(len(y)), splits), alpha_per_feature=True)
    alpha = np.linspace(0.02, 0.2, X.shape[1])
    ev = prob.evaluate({"alpha": alpha})
    assert all(ev.info["exact"])
    d = np.random.RandomState(1).randn(X.shape[1])
    fd = converged_fd(lambda t: _tight(prob, {"alpha": alpha * np.exp(t * d)}))
    np.testing.assert_allclose(np.dot(ev.grad["alpha"] * alpha, d), fd, rtol=RTOL)


def test_lasso_generated_p_larger_than_n_exact():
    X, y = make_regression(60, 150, n_informative=8, noise=1.0, random_state=0)
    splits = list(KFold(3, shuffle=True, random_state=0).split(X))
    prob = EnetCVProblem(split_folds(X, y, np.ones(len(y)), splits))
    alpha = 0.05 * prob.alpha_max_l1
    ev = prob.evaluate({"alpha": alpha})
    assert all(ev.info["exact"])
    fd = converged_fd(lambda t: _tight(prob, {"alpha": alpha * np.exp(t)}))
    np.testing.assert_allclose(ev.grad["alpha"] * alpha, fd, rtol=RTOL)


# -- Ridge: direct solve ------------------------------------------------------------------


@pytest.mark.parametrize("per_feature", [False, True])
def test_ridge_exact(diabetes, per_feature):
    X, y, splits = diabetes
    prob = RidgeCVProblem(split_folds(X, y, np.ones(len(y)), splits),
                          alpha_per_feature=per_feature)
    alpha = 0.3 * np.linspace(0.5, 2.0, X.shape[1]) if per_feature else 0.3
    d = np.random.RandomState(2).randn(X.shape[1]) if per_feature else 1.0
    ev = prob.evaluate({"alpha": alpha})
    fd = converged_fd(lambda t: prob.evaluate({"alpha": alpha * np.exp(t * d)}).loss)
    np.testing.assert_allclose(np.sum(np.asarray(ev.grad["alpha"]) * alpha * d), fd, rtol=RTOL)


@pytest.mark.parametrize("alpha", [1.0, 100.0])
def test_ridge_exact_p_larger_than_n(alpha):
    """The Woodbury branch (p > n); with CG at tol 1e-10: 5e-11 relative at alpha=100."""
    X, y = make_regression(40, 80, noise=1.0, random_state=0)
    splits = list(KFold(3, shuffle=True, random_state=0).split(X))
    prob = RidgeCVProblem(split_folds(X, y, np.ones(len(y)), splits))
    ev = prob.evaluate({"alpha": alpha})
    assert ev.converged and ev.info["linear_residual"] < 1e-12
    fd = converged_fd(lambda t: prob.evaluate({"alpha": alpha * np.exp(t)}).loss)
    np.testing.assert_allclose(ev.grad["alpha"] * alpha, fd, rtol=RTOL)


@pytest.mark.parametrize("multi_output", [False, True])
def test_adaptive_ridge_exact(diabetes, multi_output):
    X, y, splits = diabetes
    if multi_output:
        y = np.c_[y, 0.5 * y + 30 * X[:, 2]]
    prob = AdaptiveRidgeCVProblem(split_folds(X, y, np.ones(len(y)), splits))
    prob.set_base(0.3)
    ev = prob.evaluate({"alpha": 0.8, "gamma": 1.3})
    fa = converged_fd(lambda t: prob.evaluate({"alpha": 0.8 * np.exp(t), "gamma": 1.3}).loss)
    fg = converged_fd(lambda t: prob.evaluate({"alpha": 0.8, "gamma": 1.3 + t}).loss)
    np.testing.assert_allclose(ev.grad["alpha"] * 0.8, fa, rtol=RTOL)
    np.testing.assert_allclose(ev.grad["gamma"], fg, rtol=RTOL)


# -- Logistic: l1 polished, l2 refined by Newton; default tol=1e-4 -------------------------


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:300]), y[:300]


def _logistic_folds(X, y, sw=None, sw_train=None):
    sw = np.ones(len(y)) if sw is None else sw
    sw_train = sw if sw_train is None else sw_train
    splits = StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)
    return [FoldData(X[tr], y[tr], sw_train[tr], X[te], y[te], sw[te]) for tr, te in splits]


LOGISTIC = {
    # name: (dataset, l1_ratio, tune l1_ratio, C per class, C, fit_intercept, weights)
    "binary-l2-weights": ("cancer", 0.0, False, False, 0.3, True, True),
    "binary-l2-no-intercept": ("cancer", 0.0, False, False, 0.3, False, False),
    "binary-l1": ("cancer", 1.0, False, False, 0.5, True, False),
    "binary-enet-tuned": ("cancer", 0.5, True, False, 0.5, True, True),
    "multinomial-l2": ("digits", 0.0, False, False, 0.1, True, False),
    "multinomial-l2-per-class": ("digits", 0.0, False, True, 0.3, True, False),
}


@pytest.mark.parametrize("case", list(LOGISTIC))
def test_logistic_exact_at_default_tol(case, request):
    """Before: 3e-11 at tol 1e-13 (ridge 1e-12, CG 1e-10); at the default tol the l2
    hypergradients were off by 7.5e-8 to 6.5e-6 (inexact Newton solve)."""
    name, rho, tune_rho, per_class, C, fit_intercept, weights = LOGISTIC[case]
    X, y = request.getfixturevalue(name)
    sw = swc = None
    if weights:
        sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
        swc = sw * np.where(y == 1, 2.0, 1.0)
    prob = LogisticCVProblem(_logistic_folds(X, y, sw, swc), n_classes=len(np.unique(y)),
                             l1_ratio=rho, tune_l1_ratio=tune_rho, C_per_class=per_class,
                             fit_intercept=fit_intercept)  # tol=1e-4
    K = prob.K
    C = np.linspace(0.5, 1.5, K) * C if per_class else C
    p = {"C": C, "l1_ratio": rho} if tune_rho else {"C": C}
    ev = prob.evaluate(p)
    assert ev.converged and ev.info["ridge"] == [0.0] * 3
    d = np.random.RandomState(1).randn(K) if per_class else 1.0
    fd = converged_fd(lambda t: _tight(prob, {**p, "C": C * np.exp(t * d)}))
    np.testing.assert_allclose(np.sum(np.asarray(ev.grad["C"]) * C * d), fd, rtol=RTOL)
    if tune_rho:
        fr = converged_fd(lambda t: _tight(prob, {**p, "l1_ratio": rho + t}))
        np.testing.assert_allclose(ev.grad["l1_ratio"], fr, rtol=RTOL)


# -- HypergradSearchCV's problems (preprocessed folds, scikit-learn's final steps) --------


SEARCH = {
    "lasso": (Lasso(), {"alpha": None}, {"alpha": 0.05}),
    "enet": (ElasticNet(l1_ratio=0.7), {"alpha": None, "l1_ratio": None},
             {"alpha": 0.05, "l1_ratio": 0.7}),
    "ridge": (Ridge(), {"alpha": None}, {"alpha": 2.0}),
    "logistic": (LogisticRegression(), {"C": None}, {"C": 0.3}),
}


@pytest.mark.parametrize("case", list(SEARCH))
def test_search_problem_exact(diabetes, cancer, case):
    final, bounds, params = SEARCH[case]
    if case == "logistic":
        X, y = cancer
        splits = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    else:
        X, y, splits = diabetes
    # The folds as HypergradSearchCV builds them: a scaler fitted on each training part.
    folds = [_fold_data(StandardScaler(), X, y, tr, te, {}, None, None) for tr, te in splits]
    prob = restrict(make_problem(final, folds, bounds), final, bounds)
    ev = prob.evaluate(params)
    assert ev.converged
    for name, value in params.items():
        if name == "l1_ratio":
            fd = converged_fd(lambda t: _tight(prob, {**params, name: value + t}))
            np.testing.assert_allclose(ev.grad[name], fd, rtol=RTOL)
        else:
            fd = converged_fd(lambda t: _tight(prob, {**params, name: value * np.exp(t)}))
            np.testing.assert_allclose(ev.grad[name] * value, fd, rtol=RTOL)


# -- Singular support systems: the fallback ridge, reported --------------------------------


def test_duplicated_column_lasso_uses_the_reported_fallback(diabetes):
    """Both copies of a duplicated column active: the support system is singular (the
    solution's split between the copies is free, the CV loss is not)."""
    X, y, splits = diabetes
    X = np.c_[X, X[:, 2]]
    prob = EnetCVProblem(split_folds(X, y, np.ones(len(y)), splits), tol=1e-12,
                         max_iter=100000)
    alpha = 0.05
    with pytest.warns(LinearSolveWarning, match="singular"):
        ev = prob.evaluate({"alpha": alpha})
    sols, _ = prob.get_warm_start()[0].nearest(np.r_[np.log(np.full(11, alpha)), 1.0])
    assert all(np.count_nonzero(s[[2, 10]]) == 2 for s in sols)  # both copies active
    assert ev.info["ridge"] == [FALLBACK_RIDGE] * 3
    assert ev.converged and ev.info["linear_residual"] < 1e-10
    # The scalar-alpha hypergradient is defined (the duplicated coordinates share their
    # sign and their cotangent): the ridged solve approximates it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinearSolveWarning)
        fd = converged_fd(lambda t: _tight(prob, {"alpha": alpha * np.exp(t)}))
    np.testing.assert_allclose(ev.grad["alpha"] * alpha, fd, rtol=1e-6)


def test_enet_kernel_singular_support_fails_without_ridge():
    """The kernel itself: no ridge unless asked; a singular system fails the residual
    check without it and solves with it."""
    import jax

    rng = np.random.RandomState(0)
    n, k = 30, 4
    X = rng.randn(n, k)
    X[:, 3] = X[:, 1]
    w = np.array([1.0, 0.5, -0.3, 0.5])
    y = X @ w + rng.randn(n)
    Xt, yt = rng.randn(10, k), rng.randn(10)
    Xt[:, 3] = Xt[:, 1]  # (the test rows duplicate it too: a consistent system)
    args = [a[None] for a in (X, y, np.array(float(n)), Xt, yt, np.ones(10), w,
                              np.full(k, 0.1), np.array(1.0))]
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", LinearSolveWarning)
        *_, ok0, _ = enet_support_hypergrad(*args, np.zeros(1))
        *_, ok1, res1 = enet_support_hypergrad(*args, np.full(1, FALLBACK_RIDGE))
    assert not bool(ok0[0])
    assert bool(ok1[0]) and float(res1[0]) < 1e-10


def test_gram_kernel_matrix_is_the_jacobian():
    """The Gram kernel factors a matrix read from G, the column kernel one read from
    X^T X / n: each is autodiff's Jacobian of its support stationarity in w (active block
    G + alpha (1 - rho), identity elsewhere, padded coordinates included)."""
    import jax

    from skimplicit.linear_model._hypergrad import (_enet_gram_F, _enet_gram_matrix,
                                                    _enet_support_F)
    from skimplicit.tuning._kernel import t_matmul

    rng = np.random.RandomState(1)
    k = 7
    Z = rng.randn(20, k)
    Z[:, 5:] = 0.0  # padded coordinates: zero rows and columns of G
    G, b = Z.T @ Z / 20, rng.randn(k)
    w = rng.randn(k)
    w[[1, 5, 6]] = 0.0
    alpha = rng.uniform(0.1, 1.0, k)
    with jax.enable_x64(True):
        for rho in (1.0, 0.3):
            J = jax.jacfwd(lambda v: _enet_gram_F(v, (alpha, rho), G, b))(w)
            np.testing.assert_array_equal(np.asarray(_enet_gram_matrix(G, w, alpha, rho)),
                                          np.asarray(J))
            # The column kernel's matrix, from X^T X / n: the Jacobian of the support
            # stationarity in its columns, up to the products' rounding.
            J = jax.jacfwd(lambda v: _enet_support_F(v, (alpha, rho), 20.0, Z, Z @ b))(w)
            np.testing.assert_allclose(
                np.asarray(_enet_gram_matrix(t_matmul(Z, Z) / 20.0, w, alpha, rho)),
                np.asarray(J), rtol=1e-13, atol=1e-15)


def test_gram_kernel_equals_the_column_kernel():
    """The support hypergradient from X_S^T X_S / n (folds with many rows) and from the
    columns X_S: the same loss and gradients (padded coordinates included)."""
    import jax

    from skimplicit.linear_model._hypergrad import (enet_gram_hypergrad,
                                                    enet_support_hypergrad)

    rng = np.random.RandomState(0)
    K, n, m, k = 3, 200, 60, 16
    X = rng.randn(K, n, k)
    X[:, :, 12:] = 0.0  # padded columns
    y = rng.randn(K, n)
    Xt, yt = rng.randn(K, m, k), rng.randn(K, m)
    Xt[:, :, 12:] = 0.0
    swt = rng.uniform(0.5, 2.0, (K, m))
    w = rng.randn(K, k)
    w[:, 9:] = 0.0  # 9 active coordinates
    alpha, rho = rng.uniform(0.05, 0.2, (K, k)), np.array([1.0, 0.5, 0.9])
    ntr = np.full(K, float(n))
    with jax.enable_x64(True):
        a = enet_support_hypergrad(X, y, ntr, Xt, yt, swt, w, alpha, rho, np.zeros(K))
        G = np.einsum("kni,knj->kij", X, X) / n
        b = np.einsum("kni,kn->ki", X, y) / n
        # The Gram kernel takes the validation loss's gradient on the support (the
        # caller's, from the test rows).
        r = yt - np.einsum("kmj,kj->km", Xt, w)
        grad = -2 * np.einsum("kmj,km->kj", Xt, swt * r) / swt.sum(axis=1)[:, None]
        g = enet_gram_hypergrad(G, b, grad, w, alpha, rho, np.zeros(K))
    for u, v in zip(a[1:3], g[:2]):
        np.testing.assert_allclose(np.asarray(v), np.asarray(u), rtol=1e-10, atol=1e-14)
    assert np.all(np.asarray(g[2]))
