"""solve_folds / solve_path / vmap against separate solves; alpha_max; checks; black box."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import Lasso

from skimplicit.solvers import (
    CD,
    FISTA,
    L1,
    L2,
    Direct,
    ElasticNet,
    Logistic,
    Newton,
    Quadratic,
    SklearnCD,
    alpha_max,
    select_solver,
    solve,
    solve_folds,
    solve_path,
)

pytestmark = pytest.mark.usefixtures("x64")


def _masks(n, k=3):
    masks = np.ones((k, n))
    for i, test in enumerate(np.array_split(np.arange(n), k)):
        masks[i, test] = 0
    return masks


@pytest.mark.parametrize("solver", [CD(), FISTA(), SklearnCD()], ids=lambda s: type(s).__name__)
def test_folds_equal_separate_solves(reg, solver):
    X, y, _, amax = reg
    masks = _masks(len(y))
    alphas = amax * np.array([0.2, 0.1, 0.15])  # one alpha per fold
    coef, intercept, info = solve_folds(X, y, Quadratic(), L1(alphas), solver,
                                        sample_weights=masks, tol=1e-14, max_iter=20000)
    assert coef.shape == (3, 100) and info.converged.shape == (3,)
    assert bool(jnp.all(info.converged))
    for k in range(3):
        c, b, _ = solve(X, y, Quadratic(), L1(alphas[k]), solver, sample_weight=masks[k],
                        tol=1e-14, max_iter=20000)
        np.testing.assert_allclose(coef[k], c, atol=1e-8 * np.abs(c).max())
        np.testing.assert_allclose(intercept[k], b, rtol=1e-8)


def test_logistic_folds_equal_separate_solves(clf):
    X, y, _ = clf
    masks = _masks(len(y))
    coef, intercept, info = solve_folds(X, y, Logistic(), L1(2.0), CD(),
                                        sample_weights=masks, tol=1e-12)
    assert bool(jnp.all(info.converged))
    for k in range(3):
        c, b, _ = solve(X, y, Logistic(), L1(2.0), CD(), sample_weight=masks[k], tol=1e-12)
        np.testing.assert_allclose(coef[k], c, atol=1e-8 * np.abs(c).max())
        np.testing.assert_allclose(intercept[k], b, rtol=1e-8)


def test_path_equals_sequential_warm_starts(reg):
    X, y, _, amax = reg
    masks = _masks(len(y), 2)
    alphas = amax * np.array([0.5, 0.2, 0.05])
    pens = ElasticNet(alphas, 0.7)
    coef, intercept, info = solve_path(X, y, Quadratic(), pens, CD(), sample_weights=masks,
                                       tol=1e-14)
    assert coef.shape == (2, 3, 100) and info.n_iter.shape == (2, 3)
    assert bool(jnp.all(info.converged))
    for k in range(2):
        for j, a in enumerate(alphas):
            c, _, _ = solve(X, y, Quadratic(), ElasticNet(a, 0.7), CD(),
                            sample_weight=masks[k], tol=1e-14)
            np.testing.assert_allclose(coef[k, j], c, atol=1e-8 * np.abs(c).max())


def test_vmap_over_folds_and_hyperparameters(reg):
    """A user's own jax.vmap over (sample_weight, alpha) pairs equals separate fits."""
    X, y, _, amax = reg
    masks = _masks(len(y), 2)
    alphas = amax * jnp.array([0.3, 0.1])
    fit = jax.vmap(lambda sw, a: solve(X, y, Quadratic(), L1(a), CD(), sample_weight=sw,
                                       tol=1e-14)[0])
    coefs = fit(masks, alphas)
    for k in range(2):
        keep = masks[k] > 0
        ref = Lasso(alpha=float(alphas[k]), tol=1e-15, max_iter=100000).fit(
            X[keep], y[keep]).coef_
        np.testing.assert_allclose(coefs[k], ref, atol=1e-7 * np.abs(ref).max())


def test_alpha_max(reg, clf):
    X, y, sw, amax = reg
    np.testing.assert_allclose(alpha_max(X, y, Quadratic()), amax, rtol=1e-12)
    np.testing.assert_allclose(alpha_max(X, y, Quadratic(), 0.5), 2 * amax, rtol=1e-12)
    am = float(alpha_max(X, y, Quadratic(), sample_weight=sw))
    assert not np.any(Lasso(alpha=am).fit(X, y, sample_weight=sw).coef_)
    assert np.any(Lasso(alpha=0.99 * am, tol=1e-10).fit(X, y, sample_weight=sw).coef_)
    Xc, yc, _ = clf
    am = float(alpha_max(Xc, yc, Logistic()))
    assert not np.any(solve(Xc, yc, Logistic(), L1(am), CD(), tol=1e-10)[0])
    assert np.any(solve(Xc, yc, Logistic(), L1(0.99 * am), CD(), tol=1e-10)[0])


def test_select_solver():
    assert isinstance(select_solver(Quadratic(), L1(1.0), 10, 10, platform="cpu"), CD)
    assert isinstance(select_solver(Logistic(), L1(1.0), 10, 10, platform="gpu"), FISTA)
    assert isinstance(select_solver(Quadratic(), L2(1.0), 10, 10), Direct)
    assert isinstance(select_solver(Logistic(), L2(1.0), 10, 10), Newton)


def test_input_errors(reg, clf):
    X, y, _, _ = reg
    with pytest.raises(ValueError, match="1-D y"):
        solve(X, np.stack([y, y], 1), Quadratic(), L1(1.0))
    with pytest.raises(TypeError, match="Direct solves ridge"):
        solve(X, (y > 0).astype(float), Logistic(), L2(1.0), Direct())
    with pytest.raises(TypeError, match="SklearnCD"):
        solve(X, (y > 0).astype(float), Logistic(), L1(1.0), SklearnCD())
    with pytest.raises(ValueError, match="n_folds, n_samples"):
        solve_folds(X, y, Quadratic(), L1(1.0), sample_weights=np.ones(len(y)))
