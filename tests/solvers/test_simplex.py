"""Tests of skimplicit/solvers/_simplex.py: simplex-constrained solvers and the SVM dual.

Truths pinned: the Crammer-Singer duality gap (primal recomputed by hand), scikit-learn's
``LinearSVC(multi_class="crammer_singer")``, closed forms (softmax, Euclidean projection),
fixed-point residuals, and hypergradients through both fixed points against central finite
differences. One small problem (30 x 5, 3 classes) and fixed static arguments throughout, so
that compiled kernels are reused across tests.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.svm import LinearSVC

from skimplicit.implicit import custom_root, optimality
from skimplicit.implicit.linear_solve import solve_gmres
from skimplicit.implicit.projection import (
    kl_projection_simplex,
    projection_simplex_rows,
)
from skimplicit.solvers import (
    block_cd_multiclass_svm,
    entropy_mirror_map,
    mirror_descent_simplex,
    multiclass_svm_dual,
    multiclass_svm_dual_coef,
    projected_gradient_simplex,
)

pytestmark = pytest.mark.usefixtures("x64")

N, P, K = 30, 5, 3
MAXITER = 20_000


@functools.lru_cache(maxsize=None)
def _data():
    X, y = make_classification(n_samples=N, n_features=P, n_informative=3, n_classes=K,
                               random_state=0)
    return X, y, np.eye(K)[y]


def _step(X):
    return 1.0 / np.linalg.norm(X, 2) ** 2


def _solve(name, init, X, Y, alpha, tol=1e-12, step=None):
    step = _step(X) if step is None else step
    if name == "mirror_descent":
        return mirror_descent_simplex(multiclass_svm_dual, init, X, Y, alpha, step=10 * step,
                                      maxiter=MAXITER, tol=tol)
    if name == "projected_gradient":
        return projected_gradient_simplex(multiclass_svm_dual, init, X, Y, alpha, step=step,
                                          maxiter=MAXITER, tol=tol)
    return block_cd_multiclass_svm(init, X, Y, alpha, maxiter=MAXITER, tol=tol)


SOLVERS = ["mirror_descent", "projected_gradient", "block_cd"]


def _primal(W, X, Y, alpha):
    """Crammer-Singer primal: sum_i max_k (1 - Y_ik + s_ik - s_iy) + alpha/2 ||W||^2."""
    s = X @ W
    return np.sum(np.max(1 - Y + s, axis=1) - np.sum(s * Y, axis=1)) + 0.5 * alpha * np.sum(W**2)


@pytest.mark.parametrize("solver", SOLVERS)
def test_svm_dual_gap_and_liblinear(solver):
    X, y, Y = _data()
    alpha = 1.0
    beta, info = _solve(solver, jnp.full((N, K), 1.0 / K), X, Y, alpha, tol=1e-10)
    beta = np.asarray(beta)
    assert bool(info.converged) and int(info.n_iter) < MAXITER
    np.testing.assert_allclose(beta.sum(axis=1), 1.0, atol=1e-12)
    assert beta.min() >= 0
    W = np.asarray(multiclass_svm_dual_coef(beta, X, Y, alpha))
    # Dual (max form) = n - (scaled dual objective) / alpha; strong duality closes the gap.
    dual = N - float(multiclass_svm_dual(beta, X, Y, alpha)) / alpha
    primal = _primal(W, X, Y, alpha)
    assert 0 <= primal - dual <= 1e-7 * primal
    svc = LinearSVC(multi_class="crammer_singer", C=1 / alpha, fit_intercept=False, tol=1e-12,
                    max_iter=1_000_000).fit(X, y)
    np.testing.assert_allclose(W, svc.coef_.T, atol=1e-6)


def test_fixed_point_residuals_vanish_at_the_solution():
    X, _, Y = _data()
    step = _step(X)
    beta_pg, _ = _solve("projected_gradient", jnp.full((N, K), 1.0 / K), X, Y, 1.0)
    beta_md, _ = _solve("mirror_descent", jnp.full((N, K), 1.0 / K), X, Y, 1.0)
    F_pg = optimality.projected_grad_fixed_point(multiclass_svm_dual, projection_simplex_rows, step)
    F_md = optimality.mirror_descent_fixed_point(multiclass_svm_dual, kl_projection_simplex,
                                                 entropy_mirror_map, step)
    assert float(jnp.max(jnp.abs(F_pg(beta_pg, 1.0, X, Y, 1.0)))) < 1e-10
    assert float(jnp.max(jnp.abs(F_md(beta_md, 1.0, X, Y, 1.0)))) < 1e-8
    # The two solvers reach the same (unique) solution, and the entropy map is finite at
    # the projected-gradient solution's exact zeros.
    assert (np.asarray(beta_pg) == 0).any()
    np.testing.assert_allclose(beta_md, beta_pg, atol=1e-7)
    assert float(jnp.max(jnp.abs(F_md(beta_pg, 1.0, X, Y, 1.0)))) < 1e-10


def _entropic(x, c):
    return jnp.sum(x * c) + jnp.sum(x * jnp.log(x))


def _euclidean(x, c):
    return 0.5 * jnp.sum((x - c) ** 2)


def test_closed_forms():
    c = jnp.asarray(np.random.RandomState(0).randn(6, 4))
    x, info = mirror_descent_simplex(_entropic, jnp.full((6, 4), 0.25), c, step=0.5, tol=1e-12)
    assert bool(info.converged)
    np.testing.assert_allclose(x, jax.nn.softmax(-c, axis=-1), atol=1e-10)
    x, info = projected_gradient_simplex(_euclidean, jnp.full((6, 4), 0.25), c, step=0.5,
                                         tol=1e-12)
    assert bool(info.converged)
    np.testing.assert_allclose(x, projection_simplex_rows(c), atol=1e-10)


@pytest.mark.parametrize("solver", SOLVERS)
def test_warm_start_from_the_solution_stops_at_once(solver):
    X, _, Y = _data()
    beta, info = _solve(solver, jnp.full((N, K), 1.0 / K), X, Y, 1.0)
    beta2, info2 = _solve(solver, beta, X, Y, 1.0, tol=1e-10)
    assert int(info.n_iter) > 50
    assert int(info2.n_iter) <= 2 and bool(info2.converged)
    np.testing.assert_allclose(beta2, beta, atol=1e-10)


@pytest.mark.parametrize("solver", SOLVERS)
def test_vmap_over_alpha_matches_a_loop(solver):
    X, _, Y = _data()
    alphas = jnp.array([0.5, 1.0, 8.0])
    init = jnp.full((N, K), 1.0 / K)
    batched, info = jax.vmap(lambda a: _solve(solver, init, X, Y, a, tol=1e-10))(alphas)
    assert info.n_iter.shape == (3,) and bool(info.converged.all())
    assert len(set(np.asarray(info.n_iter).tolist())) > 1  # each element stopped on its own
    for i, a in enumerate(alphas):
        single, _ = _solve(solver, init, X, Y, a, tol=1e-10)
        np.testing.assert_allclose(batched[i], single, atol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_default_tolerance(solver):
    X, _, Y = _data()
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    beta, info = _solve(solver, jnp.full((N, K), 1.0 / K, jnp.float32), X32, Y32, 1.0, tol=None)
    assert beta.dtype == jnp.float32
    assert bool(info.converged)
    assert float(info.threshold) == pytest.approx(1e-5)
    ref, _ = _solve(solver, jnp.full((N, K), 1.0 / K), X, Y, 1.0)
    W32 = multiclass_svm_dual_coef(beta, X32, Y32, 1.0)
    W64 = multiclass_svm_dual_coef(ref, X, Y, 1.0)
    assert float(jnp.max(jnp.abs(W32 - W64))) < 1e-2 * float(jnp.max(jnp.abs(W64)))


def test_failures_are_reported():
    X, _, Y = _data()
    init = jnp.full((N, K), 1.0 / K)
    _, info = projected_gradient_simplex(multiclass_svm_dual, init, X, Y, 1.0, step=_step(X),
                                         maxiter=5, tol=1e-12)
    assert not bool(info.converged) and int(info.n_iter) == 5 and float(info.stop_crit) > 1e-12
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    for solver in SOLVERS:
        x, info = _solve(solver, init, X_nan, Y, 1.0, step=_step(X))
        assert not bool(info.converged), solver
        assert int(info.n_iter) < MAXITER, solver  # stops at once instead of spinning
    with pytest.raises(ValueError, match="2-D"):
        mirror_descent_simplex(_entropic, jnp.ones(3) / 3, jnp.zeros(3), step=0.5)


def test_new_data_does_not_recompile():
    X, _, Y = _data()
    init = jnp.full((N, K), 1.0 / K)
    _solve("projected_gradient", init, X, Y, 1.0)
    n0 = projected_gradient_simplex._cache_size()
    _solve("projected_gradient", init, X + 1.0, Y, 3.0)
    assert projected_gradient_simplex._cache_size() == n0


# ---- hypergradients -------------------------------------------------------------------


def _val_loss(beta, alpha, X, Y, X_val, Y_val):
    """Smooth validation loss: squared error of the scores against one-hot labels."""
    return 0.5 * jnp.mean((X_val @ multiclass_svm_dual_coef(beta, X, Y, alpha) - Y_val) ** 2)


def _svm_val_split():
    X_all, _, Y_all = _data()
    return X_all[:20], Y_all[:20], X_all[20:], Y_all[20:]


@functools.lru_cache(maxsize=None)
def _svm_fd(alpha, h=1e-4):
    """Central finite difference of the validation loss, tight block-CD solves."""
    X, Y, X_val, Y_val = _svm_val_split()
    init = jnp.full((20, K), 1.0 / K)

    def outer(a):
        beta, _ = block_cd_multiclass_svm(init, X, Y, a, maxiter=MAXITER, tol=1e-14)
        return float(_val_loss(beta, a, X, Y, X_val, Y_val))

    return (outer(alpha + h) - outer(alpha - h)) / (2 * h)


@pytest.mark.parametrize("mapping", ["mirror_descent", "projected_gradient"])
@pytest.mark.parametrize("solver", ["projected_gradient", "block_cd"])
def test_svm_hypergradient_matches_finite_differences(solver, mapping):
    # (Mirror descent does not converge on this SVM within MAXITER: it is checked on the
    # entropy-regularized problem below.)
    X, Y, X_val, Y_val = _svm_val_split()
    init = jnp.full((20, K), 1.0 / K)
    step = _step(X)
    if mapping == "mirror_descent":
        F = optimality.mirror_descent_fixed_point(multiclass_svm_dual, kl_projection_simplex,
                                                  entropy_mirror_map, 10 * step)
    else:
        F = optimality.projected_grad_fixed_point(multiclass_svm_dual, projection_simplex_rows,
                                                  step)

    @custom_root(F, solve=functools.partial(solve_gmres, restart=40, tol=1e-12), has_aux=True)
    def solve(init, radius, X, Y, alpha):
        return _solve(solver, init, X, Y, alpha, step=step)

    def outer(alpha):
        beta, _ = solve(init, 1.0, X, Y, alpha)
        return _val_loss(beta, alpha, X, Y, X_val, Y_val)

    alpha = 2.0  # at alpha = 1 the model does not depend on alpha (hard-margin regime)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed linear solve would warn
        g = float(jax.jit(jax.grad(outer))(alpha))
    assert abs(g) > 1e-2
    assert g == pytest.approx(_svm_fd(alpha), rel=1e-6)


def test_entropy_problem_hypergradient_through_mirror_descent():
    c = jnp.asarray(np.random.RandomState(1).randn(2, 4))
    F = optimality.mirror_descent_fixed_point(_entropic, kl_projection_simplex, entropy_mirror_map,
                                              0.5)

    @custom_root(F, solve=functools.partial(solve_gmres, restart=40), has_aux=True)
    def solve(init, radius, c):
        return mirror_descent_simplex(_entropic, init, c, step=0.5, tol=1e-12)

    w = jnp.arange(8.0).reshape(2, 4)

    def outer(c):
        return jnp.sum(w * solve(jnp.full((2, 4), 0.25), 1.0, c)[0])

    g = jax.jit(jax.grad(outer))(c)
    np.testing.assert_allclose(g, jax.grad(lambda c: jnp.sum(w * jax.nn.softmax(-c, -1)))(c),
                               atol=1e-9)
    e = jnp.zeros_like(c).at[1, 2].set(1e-5)
    fd = (jax.jit(outer)(c + e) - jax.jit(outer)(c - e)) / 2e-5
    assert float(g[1, 2]) == pytest.approx(float(fd), rel=1e-6)
