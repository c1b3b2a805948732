"""Working-set coordinate descent: agreement with scikit-learn, warm starts, no p x p."""

import warnings

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet as SkElasticNet
from sklearn.linear_model import Lasso, LogisticRegression

from skimplicit.solvers import (
    CD,
    L1,
    L2,
    ElasticNet,
    Logistic,
    Quadratic,
    alpha_max,
    objective,
    solve,
)
from skimplicit.solvers._api import _solve_jit

pytestmark = pytest.mark.usefixtures("x64")

TIGHT = 1e-15  # gap <= 1e-15 ||y_c||^2 / n: coefficients exact to ~1e-8


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_least_squares_matches_sklearn(reg, rel_err, l1_ratio, weighted, fit_intercept):
    X, y, sw, amax = reg
    sw = sw if weighted else None
    alpha = amax / 10
    pen = L1(alpha) if l1_ratio == 1 else ElasticNet(alpha, l1_ratio)
    coef, intercept, info = solve(X, y, Quadratic(), pen, CD(), sample_weight=sw,
                                  fit_intercept=fit_intercept, tol=TIGHT)
    Est = Lasso if l1_ratio == 1 else SkElasticNet
    kw = {} if l1_ratio == 1 else {"l1_ratio": l1_ratio}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = Est(alpha=alpha, fit_intercept=fit_intercept, tol=1e-15, max_iter=100000,
                  **kw).fit(X, y, sample_weight=sw)
    assert bool(info.converged)
    assert info.stop_crit <= info.threshold
    assert rel_err(coef, ref.coef_) <= 1e-6
    assert abs(float(intercept) - ref.intercept_) <= 1e-6 * max(1.0, abs(ref.intercept_))
    assert np.array_equal(coef != 0, ref.coef_ != 0)


def test_gap_is_sklearn_scaled(reg):
    """At sklearn's default tol our gap test agrees with sklearn's (same tol meaning)."""
    X, y, _, amax = reg
    coef, _, info = solve(X, y, Quadratic(), L1(amax / 10), CD(), tol=1e-4)
    yc = y - y.mean()
    np.testing.assert_allclose(info.threshold, 1e-4 * yc @ yc / len(y), rtol=1e-12)
    # The gap bounds the suboptimality.
    ref = Lasso(alpha=amax / 10, tol=1e-14, max_iter=100000).fit(X, y)
    p_ours = objective(coef, y.mean() - X.mean(0) @ coef, X, y, Quadratic(), L1(amax / 10))
    p_ref = objective(ref.coef_, ref.intercept_, X, y, Quadratic(), L1(amax / 10))
    assert 0 <= float(p_ours - p_ref) <= float(info.stop_crit) * (1 + 1e-8)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_binary_logistic_matches_sklearn(clf, rel_err, penalty, weighted):
    X, y, sw = clf
    sw = sw if weighted else None
    C = 0.5
    pen = L1(1 / C) if penalty == "l1" else L2(1 / C)
    coef, intercept, info = solve(X, y, Logistic(), pen, CD(), sample_weight=sw, tol=1e-12)
    solver = "saga" if penalty == "l1" else "newton-cholesky"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression(C=C, l1_ratio=1.0 if penalty == "l1" else 0.0,
                                 solver=solver, tol=1e-12, max_iter=100000).fit(
            X, y, sample_weight=sw)
    assert bool(info.converged)
    assert rel_err(coef, ref.coef_[0]) <= 1e-6
    assert abs(float(intercept) - ref.intercept_[0]) <= 1e-6 * max(1, abs(ref.intercept_[0]))


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_multinomial_logistic_matches_sklearn(multi, rel_err, penalty):
    X, y, Y, sw = multi
    C = 0.5
    pen = L1(1 / C) if penalty == "l1" else L2(1 / C)
    coef, intercept, info = solve(X, Y, Logistic(), pen, CD(), sample_weight=sw, tol=1e-12)
    solver = "saga" if penalty == "l1" else "newton-cholesky"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression(C=C, l1_ratio=1.0 if penalty == "l1" else 0.0,
                                 solver=solver, tol=1e-12, max_iter=100000).fit(
            X, y, sample_weight=sw)
    assert bool(info.converged)
    assert coef.shape == (3, 10) and intercept.shape == (3,)
    assert rel_err(coef, ref.coef_) <= 1e-6
    # The intercept is defined up to a constant: compare the symmetric (mean-zero) ones.
    assert abs(float(jnp.sum(intercept))) <= 1e-10
    assert rel_err(intercept, ref.intercept_ - ref.intercept_.mean()) <= 1e-6


def test_float32(reg, rel_err):
    X, y, _, amax = reg
    c64, b64, _ = solve(X, y, Quadratic(), L1(amax / 10), CD(), tol=1e-10)
    with jax.enable_x64(False):
        c32, b32, info = solve(X.astype(np.float32), y.astype(np.float32), Quadratic(),
                               L1(np.float32(amax / 10)), CD(), tol=1e-5)
    assert c32.dtype == jnp.float32 and bool(info.converged)
    assert rel_err(c32, c64) <= 1e-3


def test_warm_start_reduces_work(reg):
    X, y, _, amax = reg
    pen0, pen1 = L1(amax / 8), L1(amax / 10)
    c0, b0, _ = solve(X, y, Quadratic(), pen0, CD(), tol=1e-10)
    _, _, cold = solve(X, y, Quadratic(), pen1, CD(), tol=1e-10)
    _, _, warm = solve(X, y, Quadratic(), pen1, CD(), init=(c0, b0), tol=1e-10)
    assert bool(warm.converged) and bool(cold.converged)
    assert int(warm.n_inner) < int(cold.n_inner)
    assert int(warm.n_iter) <= int(cold.n_iter)


def test_block_greedy_when_working_set_is_too_small(reg, rel_err):
    """A working set smaller than the support (forced under jit) still converges."""
    X, y, _, amax = reg

    @jax.jit
    def fit(X, y, alpha):
        return solve(X, y, Quadratic(), L1(alpha), CD(ws_size=8), tol=1e-12,
                     max_iter=500)

    coef, _, info = fit(X, y, amax / 30)
    ref = Lasso(alpha=amax / 30, tol=1e-14, max_iter=100000).fit(X, y)
    assert (ref.coef_ != 0).sum() > 6  # more than 3/4 of the working set
    assert bool(info.saturated) and bool(info.converged)
    assert rel_err(coef, ref.coef_) <= 1e-5


def _max_square_dim(jaxpr):
    """Largest m such that some value in ``jaxpr`` has two axes of length >= m."""
    best = 0

    def visit(jp):
        nonlocal best
        for eqn in jp.eqns:
            for var in list(eqn.outvars) + list(eqn.invars):
                shape = getattr(getattr(var, "aval", None), "shape", ())
                if len(shape) >= 2:
                    best = max(best, sorted(shape)[-2])
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jaxpr)
    return best


def test_no_p_by_p_matrix_when_p_large(rel_err):
    """p = 20000, n = 60: no value of the compiled L1 solvers has two axes of length p.

    Checked on the traced program (every intermediate, loops included, with the largest
    working set, all p features): no intermediate has two axes longer than n (a p x p
    matrix would be 3.2 GB). Then the solver runs at that size.
    """
    rng = np.random.RandomState(0)
    n, p = 60, 20000
    X = rng.randn(n, p)
    y = X[:, :5] @ np.arange(1.0, 6.0) + 0.1 * rng.randn(n)
    Xj, Yj, sw = jnp.asarray(X), jnp.asarray(y)[:, None], jnp.ones(n)
    W0, b0 = jnp.zeros((p, 1)), jnp.zeros(1)
    for datafit, Y in [(Quadratic(), Yj), (Logistic(), (Yj > 0).astype(float))]:
        jaxpr = jax.make_jaxpr(
            lambda X, Y, sw, W0, b0: _solve_jit(
                X, Y, sw, 0.1, 0.0, W0, b0, False, 1e-6, 100, datafit=datafit,
                solver=CD(ws_size=p), fit_intercept=True))(Xj, Y, sw, W0, b0)
        assert _max_square_dim(jaxpr.jaxpr) <= n
    alpha = float(alpha_max(X, y, Quadratic())) / 5
    coef, _, info = solve(X, y, Quadratic(), L1(alpha), CD(), tol=1e-10)
    ref = Lasso(alpha=alpha, tol=1e-12).fit(X, y)
    assert bool(info.converged) and rel_err(coef, ref.coef_) <= 1e-4
