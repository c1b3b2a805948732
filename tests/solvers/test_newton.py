"""Newton-CG for L2 logistic regression (binary and multinomial) against scikit-learn."""

import jax.numpy as jnp
import pytest
from sklearn.linear_model import LogisticRegression

from skimplicit.solvers import L2, Logistic, Newton, solve

pytestmark = pytest.mark.usefixtures("x64")


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_matches_sklearn(clf, rel_err, weighted, fit_intercept):
    X, y, sw = clf
    sw = sw if weighted else None
    coef, intercept, info = solve(X, y, Logistic(), L2(1 / 0.5), Newton(), sample_weight=sw,
                                  fit_intercept=fit_intercept, tol=1e-12)
    ref = LogisticRegression(C=0.5, solver="newton-cholesky", tol=1e-12,
                             fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
    assert bool(info.converged) and int(info.n_iter) < 20
    assert rel_err(coef, ref.coef_[0]) <= 1e-6
    assert abs(float(intercept) - ref.intercept_[0]) <= 1e-6 * max(1, abs(ref.intercept_[0]))


@pytest.mark.parametrize("weighted", [False, True])
def test_multinomial_matches_sklearn(multi, rel_err, weighted):
    X, y, Y, sw = multi
    sw = sw if weighted else None
    coef, intercept, info = solve(X, Y, Logistic(), L2(1 / 0.5), Newton(), sample_weight=sw,
                                  tol=1e-12)
    ref = LogisticRegression(C=0.5, solver="newton-cholesky", tol=1e-12).fit(
        X, y, sample_weight=sw)
    assert bool(info.converged)
    assert rel_err(coef, ref.coef_) <= 1e-6
    assert abs(float(jnp.sum(intercept))) <= 1e-10  # symmetric parametrization
    assert rel_err(intercept, ref.intercept_ - ref.intercept_.mean()) <= 1e-6


def test_rejects_l1(clf):
    X, y, _ = clf
    from skimplicit.solvers import L1

    with pytest.raises(TypeError, match="smooth penalty"):
        solve(X, y, Logistic(), L1(1.0), Newton())
