"""Closed-form ridge: primal / dual Cholesky, CG beyond the memory budget, multi-output."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from skimplicit.solvers import L2, Direct, Quadratic, solve, solve_ridge
from skimplicit.solvers._ridge import ridge_method

pytestmark = pytest.mark.usefixtures("x64")


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", ["tall", "wide"])
@pytest.mark.parametrize("max_gram_bytes", [2**28, 64])
def test_matches_sklearn(reg, rel_err, shape, weighted, max_gram_bytes):
    X, y, sw, _ = reg
    if shape == "tall":
        X = X[:, :25]
    sw = sw if weighted else None
    method = ridge_method(*X.shape, 8, max_gram_bytes)
    assert method == ("cg" if max_gram_bytes == 64 else
                      "primal" if shape == "tall" else "dual")
    coef, intercept, info = solve_ridge(X, y, 3.0, sample_weight=sw, tol=1e-12,
                                        max_gram_bytes=max_gram_bytes)
    ref = Ridge(alpha=3.0, solver="cholesky").fit(X, y, sample_weight=sw)
    assert bool(info.converged)
    assert rel_err(coef, ref.coef_) <= 1e-8
    assert abs(float(intercept) - ref.intercept_) <= 1e-8 * max(1, abs(ref.intercept_))


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_multi_output_per_target_alpha(reg, rel_err, fit_intercept):
    X, y, sw, _ = reg
    Y = np.stack([y, -2 * y + X[:, 0], X[:, 1] + 1.0], axis=1)
    alphas = np.array([0.5, 3.0, 10.0])
    coef, intercept, info = solve_ridge(X, Y, alphas, sample_weight=sw,
                                        fit_intercept=fit_intercept)
    ref = Ridge(alpha=alphas, fit_intercept=fit_intercept).fit(X, Y, sample_weight=sw)
    assert coef.shape == (3, 100) and bool(info.converged)
    assert rel_err(coef, ref.coef_) <= 1e-8
    np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-8, atol=1e-12)


def test_generic_interface_is_ridge(reg, rel_err):
    """``Quadratic + L2(alpha / sum(s))`` with :class:`Direct` is scikit-learn's Ridge."""
    X, y, sw, _ = reg
    coef, _, _ = solve(X, y, Quadratic(), L2(3.0 / sw.sum()), Direct(), sample_weight=sw)
    assert rel_err(coef, Ridge(alpha=3.0).fit(X, y, sample_weight=sw).coef_) <= 1e-8
