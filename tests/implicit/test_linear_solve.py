"""Tests of the matrix-free linear solvers of ``skimplicit.implicit.linear_solve``.

Each solver is checked against ``numpy.linalg.solve`` at its default tolerance, with a
ridge term, on a pytree right-hand side, warm-started, in float32, and failing (a
failure must be reported, never silent). The last tests measure what the default
tolerances give where it matters: hypergradients.

float64 unless a test says otherwise (the ``x64`` fixture of ``tests/conftest.py``).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from sklearn.linear_model import Lasso

from skimplicit.implicit import LinearSolveWarning, optimality, root_vjp
from skimplicit.implicit.linear_solve import (
    default_tol,
    solve_bicgstab,
    solve_cg,
    solve_cholesky,
    solve_gmres,
    solve_lu,
    solve_normal_cg,
)
from skimplicit.implicit.prox import prox_lasso

pytestmark = pytest.mark.usefixtures("x64")

SOLVERS = {
    "cg": solve_cg,
    "normal_cg": solve_normal_cg,
    # A Krylov basis smaller than n, so that restarts (and warm starts) are exercised.
    "gmres": functools.partial(solve_gmres, restart=5),
    "bicgstab": solve_bicgstab,
    "lu": solve_lu,
    "cholesky": solve_cholesky,
}
SPD_ONLY = {"cg", "cholesky"}
KRYLOV = ["cg", "normal_cg", "gmres", "bicgstab"]

N = 12
_rng = np.random.default_rng(0)
_B = _rng.standard_normal((3 * N, N))
A_SPD = _B.T @ _B / (3 * N) + 0.5 * np.eye(N)  # cond ~ 10
A_GEN = 2.0 * np.eye(N) + 0.3 * _rng.standard_normal((N, N))  # nonsymmetric, cond ~ 4
B_VEC = _rng.standard_normal(N)


def _matrix(name):
    return A_SPD if name in SPD_ONLY else A_GEN


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@functools.cache
def _run(name):
    """One compiled program per solver (and dtype): plain, ridge and pytree solves."""
    solve = SOLVERS[name]

    @jax.jit
    def run(A, b, init):
        x, info = solve(lambda v: A @ v, b, init=init, return_info=True)
        x_ridge = solve(lambda v: A @ v, b, ridge=0.5)
        # The same system with b as a pytree {"a": (4,), "b": (2, 4)}.
        b_tree = {"a": b[:4], "b": b[4:].reshape(2, 4)}
        _, unravel = ravel_pytree(b_tree)
        x_tree = solve(lambda v: unravel(A @ ravel_pytree(v)[0]), b_tree)
        return x, info, x_ridge, x_tree

    return run


@pytest.mark.parametrize("name", list(SOLVERS))
def test_solver_matches_numpy(name):
    A = _matrix(name)
    x, info, x_ridge, x_tree = _run(name)(A, B_VEC, np.zeros(N))
    x_ref = np.linalg.solve(A, B_VEC)
    tol = default_tol(jnp.float64)
    assert tol == 1e-10
    # The residual reported is the true one, and meets the default tolerance.
    residual = np.linalg.norm(A @ np.asarray(x) - B_VEC) / np.linalg.norm(B_VEC)
    np.testing.assert_allclose(info.residual, residual, rtol=1e-3, atol=1e-13)
    assert bool(info.success) and residual <= 10 * tol
    assert _rel(x, x_ref) <= np.linalg.cond(A) * 10 * tol
    assert _rel(x_ridge, np.linalg.solve(A + 0.5 * np.eye(N), B_VEC)) <= 1e-8
    assert set(x_tree) == {"a", "b"} and x_tree["b"].shape == (2, 4)
    assert _rel(np.concatenate([x_tree["a"], x_tree["b"].ravel()]), x_ref) <= 1e-8
    if name in KRYLOV:
        assert 0 < int(info.iterations)
    else:
        assert int(info.iterations) == 0


@pytest.mark.parametrize("name", KRYLOV)
def test_warm_start_reduces_iterations(name):
    A = _matrix(name)
    run = _run(name)
    x0, info0, _, _ = run(A, B_VEC, np.zeros(N))
    # Warm-started at the solution: nothing left to do.
    _, info_same, _, _ = run(A, B_VEC, x0)
    assert int(info_same.iterations) == 0 and bool(info_same.success)
    # The next outer step's system: a slightly different right-hand side.
    b1 = B_VEC + 1e-6 * np.random.default_rng(1).standard_normal(N)
    x_cold, info_cold, _, _ = run(A, b1, np.zeros(N))
    x_warm, info_warm, _, _ = run(A, b1, x0)
    assert bool(info_cold.success) and bool(info_warm.success)
    x_ref = np.linalg.solve(A, b1)
    assert _rel(x_warm, x_ref) <= 1e-8 and _rel(x_cold, x_ref) <= 1e-8
    if name == "normal_cg":
        # CG on A^T A (cond 14) to 1e-12 needs more than n = 12 iterations from either
        # start, so finite termination at n bounds both runs here (measured: 12 and 12).
        assert int(info_warm.iterations) <= int(info_cold.iterations)
    else:
        # Measured: cg 12 -> 7, bicgstab 11 -> 6, gmres(restart=5) 30 -> 15.
        assert int(info_warm.iterations) < int(info_cold.iterations)


@pytest.mark.parametrize("name", list(SOLVERS))
def test_float32_follows_dtype(name):
    """float32 in, float32 out; default tolerance 1e-5, so 1e-4 relative error with
    cond <= 10 (float32 eps is 1.2e-7)."""
    solve = SOLVERS[name]
    with jax.enable_x64(False):
        A = _matrix(name).astype(np.float32)
        b = B_VEC.astype(np.float32)
        x, info = jax.jit(lambda A, b: solve(lambda v: A @ v, b, return_info=True))(A, b)
        assert x.dtype == jnp.float32 and info.residual.dtype == jnp.float32
        assert default_tol(jnp.float32) == 1e-5
        assert bool(info.success)
        assert _rel(x, np.linalg.solve(_matrix(name), B_VEC)) <= 1e-4


@pytest.mark.parametrize("name", list(SOLVERS))
def test_failed_solve_is_reported_and_warns(name):
    """Called directly (not jitted): a failure returns success False and warns."""
    if name in KRYLOV:
        A, kw = _matrix(name), {"maxiter": 2}  # far too few iterations
    elif name == "lu":
        A, kw = np.ones((N, N)), {}  # singular
    else:
        A, kw = A_GEN + A_GEN.T - 4 * np.eye(N), {}  # symmetric indefinite: no Cholesky
    if name == "cholesky":
        assert np.linalg.eigvalsh(A).min() < 0
    with pytest.warns(LinearSolveWarning, match="did not converge"):
        x, info = SOLVERS[name](lambda v: A @ v, B_VEC, return_info=True, **kw)
    assert not bool(info.success)
    assert not float(info.residual) <= 1e-3  # large, or nan for a broken factorization
    if name in KRYLOV:
        assert int(info.iterations) <= 2 * 5  # gmres counts whole restart cycles
        # Not the zero initial guess: the partial iterate is returned, with its status.
        assert np.linalg.norm(x) > 0


# ======================================================================================
# Default tolerances and hypergradients (float64)
# ======================================================================================
#
# Two well-conditioned problems, large enough that the Krylov solvers stop on their
# tolerance (fewer iterations than unknowns), not by finite termination:
#
# * ridge, 0.5 ||X w - y||^2 + lam / 2 ||w||^2 with n = 150, p = 60, lam = 50
#   (cond(X^T X + lam I) = 6.1): the stationarity system (symmetric positive definite);
# * Lasso, (1 / 2n) ||y - X w||^2 + alpha ||w||_1 with n = 120, p = 60, 25 informative
#   features, alpha = alpha_max / 20 (25 active, cond(X_S^T X_S / n) = 6.6): the
#   nonsymmetric prox-grad system (GMRES, BiCGSTAB, normal CG, LU) or the symmetric
#   support system (CG, Cholesky).
#
# Hypergradient: of the held-out MSE, with respect to lam (ridge) or log alpha (Lasso),
# in reverse mode (``root_vjp``), against its closed form.

DEFAULT_SOLVERS = {
    "cg": solve_cg,
    "normal_cg": solve_normal_cg,
    "gmres": solve_gmres,
    "bicgstab": solve_bicgstab,
    "lu": solve_lu,
    "cholesky": solve_cholesky,
}

_rng = np.random.default_rng(2)
X_R = _rng.standard_normal((150, 60))
Y_R = X_R @ _rng.standard_normal(60) + 0.3 * _rng.standard_normal(150)
XV_R = _rng.standard_normal((50, 60))
YV_R = XV_R @ _rng.standard_normal(60)
LAM_R = 50.0
M_R = X_R.T @ X_R + LAM_R * np.eye(60)
W_R = np.linalg.solve(M_R, X_R.T @ Y_R)
COT_R = 2.0 / len(YV_R) * XV_R.T @ (XV_R @ W_R - YV_R)  # d MSE / dw


def ridge_objective(w, lam, X, y):
    return 0.5 * jnp.sum((X @ w - y) ** 2) + 0.5 * lam * jnp.sum(w**2)


_rng = np.random.default_rng(3)
N_L, P_L = 120, 60
X_L = _rng.standard_normal((N_L, P_L))
_w_true = np.zeros(P_L)
_w_true[:25] = _rng.standard_normal(25)
Y_L = X_L @ _w_true + 0.5 * _rng.standard_normal(N_L)
XV_L = _rng.standard_normal((40, P_L))
YV_L = XV_L @ _w_true
ALPHA_L = 0.05 * np.max(np.abs(X_L.T @ Y_L)) / N_L
W_L = Lasso(alpha=ALPHA_L, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X_L, Y_L).coef_
COT_L = -2.0 / len(YV_L) * XV_L.T @ (YV_L - XV_L @ W_L)


def lsq_datafit(w, X, y):
    return 0.5 * jnp.mean((y - X @ w) ** 2)


def _hypergradient_closed_form(problem):
    if problem == "ridge":
        return COT_R @ -np.linalg.solve(M_R, W_R)  # dw/dlam = -M^-1 w
    S = W_L != 0
    XS = X_L[:, S]
    J = np.zeros(P_L)  # dw/dlog(alpha) = -alpha (X_S^T X_S / n)^-1 sign(w_S) on S
    J[S] = -ALPHA_L * np.linalg.solve(XS.T @ XS / N_L, np.sign(W_L[S]))
    return COT_L @ J


@functools.partial(jax.jit, static_argnums=(0, 1))
def hypergradient(problem, name, w, cot, hyper, X, y):
    if problem == "ridge":
        F = optimality.stationary(ridge_objective)
    elif name in SPD_ONLY:
        F = optimality.support_stationary(lsq_datafit, lambda x, a: a * jnp.sign(x))
    else:
        step = N_L / np.linalg.norm(X_L, 2) ** 2
        F = optimality.prox_grad_fixed_point(lsq_datafit, prox_lasso, step)
    solve = DEFAULT_SOLVERS[name]  # default tolerance and maxiter
    (g, _, _), _, info = root_vjp(F, w, (hyper, X, y), cot, solve=solve, return_info=True)
    return g, info


@pytest.mark.parametrize(
    "problem, name",
    [("ridge", "cg"), ("ridge", "cholesky"), ("ridge", "lu")]
    + [("lasso", name) for name in SOLVERS],
)
def test_default_tolerance_gives_accurate_hypergradients(problem, name):
    """<= 1e-8 relative hypergradient error at each solver's default tolerance
    (measured: 1e-11 or better)."""
    if problem == "ridge":
        g, info = hypergradient(problem, name, W_R, COT_R, LAM_R, X_R, Y_R)
    else:
        assert (W_L != 0).sum() == 25
        g, info = hypergradient(problem, name, W_L, COT_L, ALPHA_L, X_L, Y_L)
        g = g * ALPHA_L  # d/dlog(alpha) = alpha d/dalpha
    assert bool(info.success)
    if name in KRYLOV:
        assert int(info.iterations) < 60  # stopped by the tolerance, not at n steps
    assert _rel(g, _hypergradient_closed_form(problem)) <= 1e-8
