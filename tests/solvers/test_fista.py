"""FISTA (fixed step 1/L, adaptive restart): agreement with scikit-learn, restart, float32."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet as SkElasticNet
from sklearn.linear_model import Lasso, LogisticRegression

from skimplicit.solvers import FISTA, L1, ElasticNet, Logistic, Quadratic, solve
from skimplicit.solvers._datafits import global_lipschitz

pytestmark = pytest.mark.usefixtures("x64")


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_least_squares_matches_sklearn(reg, rel_err, l1_ratio, weighted):
    X, y, sw, amax = reg
    sw = sw if weighted else None
    alpha = amax / 10
    pen = L1(alpha) if l1_ratio == 1 else ElasticNet(alpha, l1_ratio)
    coef, intercept, info = solve(X, y, Quadratic(), pen, FISTA(), sample_weight=sw,
                                  tol=1e-15, max_iter=20000)
    kw = {} if l1_ratio == 1 else {"l1_ratio": l1_ratio}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = (Lasso if l1_ratio == 1 else SkElasticNet)(
            alpha=alpha, tol=1e-15, max_iter=100000, **kw).fit(X, y, sample_weight=sw)
    assert bool(info.converged)
    assert rel_err(coef, ref.coef_) <= 1e-6
    assert abs(float(intercept) - ref.intercept_) <= 1e-6 * max(1.0, abs(ref.intercept_))


def test_binary_l1_logistic_matches_sklearn(clf, rel_err):
    X, y, sw = clf
    coef, intercept, info = solve(X, y, Logistic(), L1(2.0), FISTA(), sample_weight=sw,
                                  tol=1e-11, max_iter=50000)
    ref = LogisticRegression(C=0.5, l1_ratio=1.0, solver="saga", tol=1e-12,
                             max_iter=100000).fit(X, y, sample_weight=sw)
    assert bool(info.converged)
    assert rel_err(coef, ref.coef_[0]) <= 1e-6
    assert abs(float(intercept) - ref.intercept_[0]) <= 1e-6 * max(1, abs(ref.intercept_[0]))


def test_lipschitz_is_an_upper_bound(reg):
    """1/L is a valid step: L >= the largest eigenvalue of X_c^T V X_c (and close to it)."""
    X, y, sw, _ = reg
    v = sw / sw.sum()
    Xc = X - v @ X
    lam = np.linalg.eigvalsh((Xc.T * v) @ Xc)[-1]
    L = float(global_lipschitz(jnp.asarray(X), jnp.asarray(v), Quadratic(), 1, True, 30))
    assert lam <= L <= 1.05 * lam


def test_restart_helps(reg):
    X, y, _, amax = reg
    its = {}
    for restart in [True, False]:
        _, _, info = solve(X, y, Quadratic(), L1(amax / 20), FISTA(restart=restart),
                           tol=1e-10, max_iter=20000)
        assert bool(info.converged)
        its[restart] = int(info.n_iter)
    assert its[True] < its[False]


def test_float32(reg, rel_err):
    X, y, _, amax = reg
    c64, _, _ = solve(X, y, Quadratic(), L1(amax / 10), FISTA(), tol=1e-10, max_iter=20000)
    with jax.enable_x64(False):
        c32, _, info = solve(X.astype(np.float32), y.astype(np.float32), Quadratic(),
                             L1(np.float32(amax / 10)), FISTA(), tol=1e-5, max_iter=20000)
    assert c32.dtype == jnp.float32 and bool(info.converged)
    assert rel_err(c32, c64) <= 1e-3
