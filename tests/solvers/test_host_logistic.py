"""Host logistic solvers (skimplicit.solvers._host_logistic) against scikit-learn's
``LogisticRegression`` at tight tolerances: l2 (Newton-CG), l1 and elastic net (split
L-BFGS-B and the active-set polish), binary and multinomial, weighted, warm-started."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from skimplicit.solvers import (L1, L2, ElasticNet, HostSolverInfo, fit_logistic,
                                solve_logistic)
from skimplicit.solvers._host_logistic import kkt_violation, one_hot, refine_logistic

C = 0.5
PENALTIES = {"l2": (0.0, "newton-cholesky"), "l1": (1.0, "saga"), "enet": (0.5, "saga")}


def _penalty(rho, C=C):
    if rho == 0.0:
        return L2(1 / C)
    if rho == 1.0:
        return L1(1 / C)
    return ElasticNet(1 / C, rho)


def _sklearn(X, y, sw, rho, solver, C=C, fit_intercept=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=C, l1_ratio=rho, solver=solver, tol=1e-10,
                                  max_iter=100000, fit_intercept=fit_intercept).fit(
            X, y, sample_weight=sw)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("penalty", list(PENALTIES))
def test_binary_matches_sklearn(clf, rel_err, penalty, weighted):
    X, y, sw = clf
    sw = sw if weighted else np.ones(len(y))
    rho, solver = PENALTIES[penalty]
    W, b, info = solve_logistic(X, one_hot(y.astype(int), 2), _penalty(rho),
                                sample_weight=sw, tol=1e-10)
    ref = _sklearn(X, y, sw, rho, solver)
    assert isinstance(info, HostSolverInfo) and info.converged and info.n_iter > 0
    assert W.shape == (30, 1) and b.shape == (1,)
    assert rel_err(W[:, 0], ref.coef_[0]) <= 1e-6
    assert abs(b[0] - ref.intercept_[0]) <= 1e-6 * max(1.0, abs(ref.intercept_[0]))
    if rho > 0:  # the same support, exact zeros
        np.testing.assert_array_equal(W[:, 0] != 0, np.abs(ref.coef_[0]) > 1e-8)


def test_binary_l1_matches_liblinear_without_intercept(clf, rel_err):
    # liblinear penalizes its intercept: compared without one.
    X, y, sw = clf
    W, b, info = solve_logistic(X, one_hot(y.astype(int), 2), L1(1 / C), sample_weight=sw,
                                tol=1e-10, fit_intercept=False)
    ref = _sklearn(X, y, sw, 1.0, "liblinear", fit_intercept=False)
    assert info.converged and b[0] == 0.0
    assert rel_err(W[:, 0], ref.coef_[0]) <= 1e-6


@pytest.mark.parametrize("penalty", list(PENALTIES))
def test_multinomial_matches_sklearn(multi, rel_err, penalty):
    X, y, Y, sw = multi
    rho, solver = PENALTIES[penalty]
    W, b, info = solve_logistic(X, Y, _penalty(rho), sample_weight=sw, tol=1e-10)
    ref = _sklearn(X, y, sw, rho, "lbfgs" if rho == 0 else solver)
    assert info.converged
    assert W.shape == (10, 3) and b.shape == (3,)
    assert rel_err(W.T, ref.coef_) <= 1e-6
    # The intercept is defined up to a constant: compare the symmetric (mean-zero) ones.
    assert abs(b.sum()) <= 1e-10
    assert rel_err(b, ref.intercept_ - ref.intercept_.mean()) <= 1e-6


@pytest.mark.parametrize("penalty", list(PENALTIES))
def test_warm_start(multi, rel_err, penalty):
    """From the solution at a nearby C (as along a path): the solution at C (as
    scikit-learn's), in fewer iterations than from zero; from the solution itself, none."""
    X, y, Y, sw = multi
    rho, solver = PENALTIES[penalty]
    W0, b0, _ = solve_logistic(X, Y, _penalty(rho, C / 1.1), sample_weight=sw, tol=1e-10)
    W, b, warm = solve_logistic(X, Y, _penalty(rho), sample_weight=sw, init=(W0, b0),
                                tol=1e-10)
    _, _, cold = solve_logistic(X, Y, _penalty(rho), sample_weight=sw, tol=1e-10)
    ref = _sklearn(X, y, sw, rho, "lbfgs" if rho == 0 else solver)
    assert warm.converged and warm.n_iter < cold.n_iter
    assert rel_err(W.T, ref.coef_) <= 1e-6
    # The warm start is not modified in place.
    assert not np.array_equal(W0, W)
    _, _, again = solve_logistic(X, Y, _penalty(rho), sample_weight=sw, init=(W, b),
                                 tol=1e-10)
    assert again.converged and again.n_iter == 0


@pytest.mark.parametrize("rho", [0.0, 1.0])
def test_not_converged_when_max_iter_is_too_small(clf, rho):
    X, y, sw = clf
    Y = one_hot(y.astype(int), 2)
    _, _, info = solve_logistic(X, Y, _penalty(rho, C=100.0), sample_weight=sw, tol=1e-10,
                                max_iter=1, polish=False)
    assert not info.converged and info.n_iter == 1
    _, _, info = solve_logistic(X, Y, _penalty(rho, C=100.0), sample_weight=sw, tol=1e-10)
    assert info.converged


def test_solve_logistic_is_fit_logistic(multi):
    """The penalty objects map to (alpha, l1_ratio) exactly: the same bits."""
    X, _, Y, sw = multi
    for pen, rho in [(L2(2.0), 0.0), (L1(2.0), 1.0), (ElasticNet(2.0, 0.3), 0.3)]:
        W, b, info = solve_logistic(X, Y, pen, sample_weight=sw, tol=1e-8)
        W2, b2, n_iter, ok = fit_logistic(X, Y, sw, np.full(3, 2.0), rho, tol=1e-8)
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
        assert (info.n_iter, info.converged) == (n_iter, ok)
    with pytest.raises(TypeError, match="L1, L2 or ElasticNet"):
        solve_logistic(X, Y, "l2")


def test_refine_makes_l2_exact(clf):
    X, y, sw = clf
    Y = one_hot(y.astype(int), 2)
    alpha = np.array([1 / C])
    W, b, _, _ = fit_logistic(X, Y, sw, alpha, 0.0, tol=1e-4)
    assert kkt_violation(W, b, X, Y, sw, 0.0, alpha, True) > 1e-10
    W, b, n_iter = refine_logistic(X, Y, sw, alpha, W, b)
    assert 0 < n_iter <= 3
    assert kkt_violation(W, b, X, Y, sw, 0.0, alpha, True) <= 1e-13


def test_column_scales_given_by_the_caller_are_used_and_kept_per_fold(monkeypatch):
    """``col_scale``: the same solve as without it; the CV problem computes each fold's
    column scales once, not at every solve (a pass over and a copy of the fold)."""
    from sklearn.datasets import load_breast_cancer

    from skimplicit.linear_model import ImplicitLogisticRegressionCV
    from skimplicit.solvers import _host_logistic
    from skimplicit.solvers._host_logistic import column_scales

    X, y = load_breast_cancer(return_X_y=True)
    Y, sw = one_hot(y, 2), np.ones(len(y))
    d = column_scales(X, sw, True)
    for pen in (L2(1.0), ElasticNet(1.0, 0.5)):
        a = solve_logistic(X, Y, pen, tol=1e-8)
        b = solve_logistic(X, Y, pen, tol=1e-8, col_scale=d)
        np.testing.assert_array_equal(a[0], b[0])
    calls = []
    orig = _host_logistic.column_moments
    monkeypatch.setattr(_host_logistic, "column_moments",
                        lambda *a, **k: calls.append(1) or orig(*a, **k))
    est = ImplicitLogisticRegressionCV(cv=3).fit(X, y)
    n_solves = 3 * len(est.history_)
    # Per fold: c_ridge's and column_scales' (once); the refit's column_scales.
    assert n_solves > 20 and len(calls) == 2 * 3 + 1


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_direct_newton_steps_on_tall_binary_data(monkeypatch, rel_err, fit_intercept):
    """n >= 4 p, p <= DIRECT_NEWTON_MAX, n p >= DIRECT_NEWTON_MIN_ENTRIES: exact Newton
    steps (the Hessian formed and factored), no Hessian-vector product; the same solution
    as the conjugate-gradient steps and as scikit-learn, in fewer iterations; columns in
    mixed units."""
    from sklearn.datasets import make_classification

    from skimplicit.solvers import _host_logistic as H

    X, y = make_classification(400, 20, n_informative=6, random_state=1)
    X = X * np.logspace(-3, 3, 20)  # (the step is solved in standardized coordinates)
    sw = np.random.RandomState(0).uniform(0.5, 2.0, 400)
    Y = one_hot(y, 2)
    alpha = np.array([1 / C])
    products = []
    orig = H._hess_matvec
    monkeypatch.setattr(H, "_hess_matvec", lambda *a: products.append(1) or orig(*a))
    assert not H._uses_direct_newton(X, 1, None)  # (a fold that stays in the caches)
    monkeypatch.setattr(H, "DIRECT_NEWTON_MIN_ENTRIES", 400 * 20)
    assert H._uses_direct_newton(X, 1, None)
    W, b, n_direct, ok = fit_logistic(X, Y, sw, alpha, 0.0, tol=1e-12,
                                      fit_intercept=fit_intercept)
    assert ok and not products
    monkeypatch.setattr(H, "DIRECT_NEWTON_MAX", 0)
    Wc, bc, n_cg, ok_cg = fit_logistic(X, Y, sw, alpha, 0.0, tol=1e-12,
                                       fit_intercept=fit_intercept)
    assert ok_cg and products and n_direct < n_cg
    assert rel_err(W, Wc) < 1e-10 and rel_err(b, bc) < 1e-10
    assert kkt_violation(W, b, X, Y, sw, 0.0, alpha, fit_intercept) <= 1e-12
    ref = _sklearn(X, y, sw, 0.0, "newton-cholesky", fit_intercept=fit_intercept)
    assert rel_err(W[:, 0], ref.coef_[0]) < 1e-6


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_newton_cg_gram_is_the_l2_solve_in_row_coordinates(rel_err, fit_intercept):
    """p >= 2 n: the solve in row coordinates (W = X^T a, products with the Gram matrix)
    reaches the l2 solution of the column solver and of scikit-learn, with weights; warm
    started from a neighbour C it takes fewer iterations; max_iter=0 is not converged."""
    from sklearn.datasets import make_classification

    from skimplicit.solvers._host_logistic import _newton_cg, column_scales, newton_cg_gram

    X, y = make_classification(60, 200, n_informative=8, random_state=2)
    sw = np.random.RandomState(0).uniform(0.5, 2.0, 60)
    yf, K, d = y.astype(float), X @ X.T, column_scales(X, sw, fit_intercept)
    a, b, W, n_cold, ok = newton_cg_gram(K, X, yf, sw, 1 / C, np.zeros(60), 0.0, tol=1e-12,
                                         max_iter=100, fit_intercept=fit_intercept,
                                         col_scale=d)
    assert ok
    np.testing.assert_allclose(X.T @ a, W, rtol=1e-12, atol=1e-15)
    Wc, bc, _, ok_c = _newton_cg(X, one_hot(y, 2), sw, np.array([1 / C]), np.zeros((200, 1)),
                                 np.zeros(1), tol=1e-12, max_iter=100,
                                 fit_intercept=fit_intercept, col_scale=d)
    assert ok_c and rel_err(W, Wc[:, 0]) < 1e-9 and abs(b - bc[0]) < 1e-9 * max(1, abs(b))
    if not fit_intercept:
        assert b == 0.0
    ref = _sklearn(X, y, sw, 0.0, "newton-cholesky", fit_intercept=fit_intercept)
    assert rel_err(W, ref.coef_[0]) < 1e-6
    *_, n_warm, ok_w = newton_cg_gram(K, X, yf, sw, 1 / (1.3 * C), a, b, tol=1e-12,
                                      max_iter=100, fit_intercept=fit_intercept, col_scale=d)
    assert ok_w and n_warm < n_cold
    assert not newton_cg_gram(K, X, yf, sw, 1 / C, np.zeros(60), 0.0, tol=1e-12, max_iter=0,
                              fit_intercept=fit_intercept)[-1]


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_cov_preconditioner_on_tall_binary_data(monkeypatch, rel_err, fit_intercept):
    """n >= 4 p, p <= COV_PRECOND_MAX, the fold's moments given (fold_moments): the
    conjugate gradient preconditioned by them reaches the solution of the diagonal one
    and of scikit-learn, with fewer Hessian-vector products; weights, columns in mixed
    units and uncentered columns; no exact steps; refine_logistic takes them too."""
    from sklearn.datasets import make_classification

    from skimplicit.solvers import _host_logistic as H

    X, y = make_classification(400, 20, n_informative=6, random_state=1)
    X = X * np.logspace(-3, 3, 20) + np.linspace(-5, 5, 20)
    sw = np.random.RandomState(0).uniform(0.5, 2.0, 400)
    Y, alpha = one_hot(y, 2), np.array([1 / C])
    products = []
    orig = H._hess_matvec
    monkeypatch.setattr(H, "_hess_matvec", lambda *a: products.append(1) or orig(*a))
    monkeypatch.setattr(H, "_direct_newton_step", None)  # (never taken here)
    assert not H.uses_cov_precond(X, 1)  # (a small fold: the diagonal is cheaper)
    monkeypatch.setattr(H, "COV_PRECOND_MIN_ENTRIES", 400 * 20)
    assert H.uses_cov_precond(X, 1) and not H.uses_cov_precond(X[:60], 1)
    cov = H.fold_moments(X, sw)
    Xa = np.c_[X, np.ones(400)]
    np.testing.assert_allclose(cov, Xa.T @ (Xa * sw[:, None]), rtol=1e-12)
    W, b, _, ok = fit_logistic(X, Y, sw, alpha, 0.0, tol=1e-12, fit_intercept=fit_intercept,
                               cov=cov)
    n_pre, products[:] = len(products), []
    Wd, bd, _, ok_d = fit_logistic(X, Y, sw, alpha, 0.0, tol=1e-12,
                                   fit_intercept=fit_intercept)
    assert ok and ok_d and n_pre < len(products)
    assert rel_err(W, Wd) < 1e-9 and rel_err(b, bd) < 1e-9
    assert kkt_violation(W, b, X, Y, sw, 0.0, alpha, fit_intercept) <= 1e-12
    ref = _sklearn(X, y, sw, 0.0, "newton-cholesky", fit_intercept=fit_intercept)
    assert rel_err(W[:, 0], ref.coef_[0]) < 1e-6
    W2, b2, _ = refine_logistic(X, Y, sw, alpha, Wd * (1 + 1e-6), bd, cov=cov,
                                fit_intercept=fit_intercept)
    assert kkt_violation(W2, b2, X, Y, sw, 0.0, alpha, fit_intercept) <= 1e-13
