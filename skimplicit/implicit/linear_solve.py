"""Matrix-free linear solvers sharing one signature.

Every solver is ``solve(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None,
return_info=False)`` and solves ``(A + ridge * I) x = b`` where ``matvec(v) = A v``.
``b`` (and ``init``) may be any pytree; ``matvec`` maps that pytree to itself.

A solve that does not reach its tolerance is never silent:

* called directly with ``return_info=True`` it returns ``(x, info)`` where ``info`` is a
  :class:`SolveInfo` (relative residual, iterations, success flag) that the caller reads;
* in every case (also under ``jit``, ``vmap`` and inside :func:`custom_root`), a failed
  solve emits a :class:`LinearSolveWarning` through :func:`jax.debug.callback`.

Default tolerances are relative to ``||b||``: ``1e-10`` in float64 and ``1e-5`` in float32,
which give hypergradients accurate to ``<= 1e-8`` relative in float64 on well-conditioned
problems (see ``tests/implicit/test_linear_solve.py``).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap
from jax.flatten_util import ravel_pytree

__all__ = [
    "LinearSolveWarning",
    "SolveInfo",
    "solve_cg",
    "solve_normal_cg",
    "solve_gmres",
    "solve_bicgstab",
    "solve_lu",
    "solve_cholesky",
    "default_tol",
]


class LinearSolveWarning(RuntimeWarning):
    """A linear system behind a (hyper)gradient was not solved to its tolerance.

    The returned derivative is then inaccurate. What to try: a larger ``maxiter``, a
    ``ridge`` term, restricting an L1 problem to its support, float64, or a tighter inner
    solve (an inexact inner solution makes the system inconsistent).

    Examples
    --------
    One conjugate-gradient iteration cannot solve a system with three distinct
    eigenvalues:

    >>> import warnings
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.linear_solve import LinearSolveWarning, solve_cg
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     x = solve_cg(lambda v: jnp.array([1.0, 10.0, 100.0]) * v, jnp.ones(3), maxiter=1)
    >>> [w.category.__name__ for w in caught]
    ['LinearSolveWarning']
    """


class SolveInfo(NamedTuple):
    """Status of a linear solve.

    Attributes
    ----------
    residual : array
        Relative residual ``||(A + ridge I) x - b|| / ||b||`` at the returned ``x``.
    iterations : array
        Iterations used (``0`` for direct solvers).
    success : array of bool
        Whether ``residual <= tol`` (and the result is finite).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.linear_solve import solve_cg
    >>> x, info = solve_cg(lambda v: jnp.array([1.0, 2.0, 3.0]) * v, jnp.ones(3),
    ...                    return_info=True)
    >>> bool(info.success), bool(info.residual <= 1e-5), int(info.iterations) <= 3
    (True, True, True)
    """

    residual: Any
    iterations: Any
    success: Any


def default_tol(dtype) -> float:
    """Default relative tolerance for a floating dtype: 1e-10 (float64) or 1e-5 (float32).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.linear_solve import default_tol
    >>> default_tol(jnp.float32), default_tol(jnp.float64)
    (1e-05, 1e-10)
    """
    return 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-5


# --------------------------------------------------------------------------------------
# Helpers shared by every solver
# --------------------------------------------------------------------------------------


def _flatten_problem(matvec, b, ridge, init):
    """Ravel pytrees so that every solver works on one flat vector."""
    b_flat, unravel = ravel_pytree(b)
    dtype = b_flat.dtype

    def mv(v):
        out = ravel_pytree(matvec(unravel(v)))[0].astype(dtype)
        if ridge is not None:
            out = out + ridge * v
        return out

    x0 = jnp.zeros_like(b_flat) if init is None else ravel_pytree(init)[0].astype(dtype)
    return mv, b_flat, x0, unravel


def _warn_on_failure(name_id, success, residual, iterations):
    success = np.asarray(success)
    name = _NAMES[int(np.ravel(np.asarray(name_id))[0])]
    if not success.all():
        residual = np.asarray(residual)
        warnings.warn(
            f"{name} did not converge: relative residual {np.max(residual):.3g} after "
            f"{np.max(np.asarray(iterations))} iterations. The derivative is inaccurate; try a "
            "larger maxiter, a ridge term, restricting to the support of an L1 problem, "
            "float64, or a tighter inner solve.",
            LinearSolveWarning,
            stacklevel=2,
        )


@functools.partial(custom_vmap)
def _report(name_id, success, res, iterations):
    """Warn (on the host) about failed solves: one callback for a whole vmapped batch.

    ``jax.debug.callback`` alone is unrolled once per batch element under ``vmap``
    (compile time and memory growing with the batch); this ``custom_vmap`` rule calls it
    once with the batched arrays instead.
    """
    jax.debug.callback(_warn_on_failure, name_id, success, res, iterations)
    return success


@_report.def_vmap
def _report_vmap(axis_size, in_batched, name_id, success, res, iterations):
    def full(x, batched):
        return x if batched else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x))

    args = [full(a, bt) for a, bt in zip((name_id, success, res, iterations), in_batched)]
    return _report(*args), True


_NAMES = ("solve_cg", "solve_normal_cg", "solve_gmres", "solve_bicgstab", "solve_lu",
          "solve_cholesky")


def _finish(name, mv, b, x, iterations, tol, unravel, return_info):
    b_norm = jnp.linalg.norm(b)
    res = jnp.linalg.norm(mv(x) - b) / jnp.where(b_norm > 0, b_norm, 1.0)
    success = (res <= tol * 10) & jnp.all(jnp.isfinite(x))
    # A relative residual within 10x of tol counts as success: Krylov methods test a
    # recursively updated residual, which drifts from the true one by a few ulps.
    sg = jax.lax.stop_gradient
    _report(jnp.asarray(_NAMES.index(name)), sg(success), sg(res), sg(jnp.asarray(iterations)))
    out = unravel(x)
    if return_info:
        return out, SolveInfo(res, jnp.asarray(iterations), success)
    return out


def _resolve(b_flat, tol, maxiter, default_maxiter):
    tol = default_tol(b_flat.dtype) if tol is None else tol
    maxiter = default_maxiter if maxiter is None else int(maxiter)
    return tol, maxiter


def _krylov_maxiter(n):
    return int(min(max(10 * n, 100), 20000))


# --------------------------------------------------------------------------------------
# Krylov solvers
# --------------------------------------------------------------------------------------


def _cg_loop(mv, b, x0, tol, maxiter):
    b_norm = jnp.linalg.norm(b)
    atol2 = (tol * b_norm) ** 2
    r0 = b - mv(x0)
    state = (x0, r0, r0, jnp.vdot(r0, r0), 0)

    def cond(state):
        _, _, _, rr, k = state
        return (rr > atol2) & (k < maxiter) & jnp.isfinite(rr)

    def body(state):
        x, r, p, rr, k = state
        Ap = mv(p)
        pAp = jnp.vdot(p, Ap)
        alpha = rr / jnp.where(pAp != 0, pAp, 1.0)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = jnp.vdot(r, r)
        p = r + (rr_new / jnp.where(rr != 0, rr, 1.0)) * p
        return x, r, p, rr_new, k + 1

    x, _, _, _, k = jax.lax.while_loop(cond, body, state)
    return x, k


def solve_cg(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None, return_info=False):
    """Conjugate gradient for symmetric positive (semi-)definite ``A``.

    Matrix-free: only ``matvec`` is called, once per iteration.

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` on pytrees shaped like ``b``; ``A`` must be symmetric positive definite
        (plus ``ridge``).
    b : pytree of arrays
        Right-hand side.
    ridge : float, optional
        Solve ``(A + ridge I) x = b`` instead.
    init : pytree, optional
        Warm start (e.g. the previous outer step's solution).
    tol : float, optional
        Relative residual tolerance; default :func:`default_tol` of ``b``'s dtype.
    maxiter : int, optional
        Iteration cap; default ``min(max(10 n, 100), 20000)``.
    return_info : bool, default=False
        Also return a :class:`SolveInfo`.

    Returns
    -------
    x : pytree
        The solution (and ``info`` when ``return_info``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.linear_solve import solve_cg
    >>> A = jnp.array([[4.0, 1.0], [1.0, 3.0]])
    >>> x = solve_cg(lambda v: A @ v, jnp.array([1.0, 2.0]))
    >>> bool(jnp.allclose(A @ x, jnp.array([1.0, 2.0]), atol=1e-4))
    True
    """
    mv, b_flat, x0, unravel = _flatten_problem(matvec, b, ridge, init)
    tol, maxiter = _resolve(b_flat, tol, maxiter, _krylov_maxiter(b_flat.size))
    x, k = _cg_loop(mv, b_flat, x0, tol, maxiter)
    return _finish("solve_cg", mv, b_flat, x, k, tol, unravel, return_info)


def solve_normal_cg(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None,
                    return_info=False):
    """Conjugate gradient on the normal equations ``A^T A x = A^T b``.

    Works for any nonsingular ``A`` (``A^T v`` comes from :func:`jax.linear_transpose`),
    at the price of squaring the condition number. ``ridge`` is applied to ``A`` (not to
    ``A^T A``), so the solution is that of ``(A + ridge I) x = b``.

    Parameters and returns are those of :func:`solve_cg`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.linear_solve import solve_normal_cg
    >>> A = jnp.array([[2.0, 1.0], [0.0, 3.0]])
    >>> x = solve_normal_cg(lambda v: A @ v, jnp.array([1.0, 2.0]))
    >>> bool(jnp.allclose(A @ x, jnp.array([1.0, 2.0]), atol=1e-4))
    True
    """
    mv, b_flat, x0, unravel = _flatten_problem(matvec, b, ridge, init)
    tol, maxiter = _resolve(b_flat, tol, maxiter, _krylov_maxiter(b_flat.size))
    mvT = jax.linear_transpose(mv, b_flat)

    def normal_mv(v):
        return mvT(mv(v))[0]

    rhs = mvT(b_flat)[0]
    # The stopping test is on the normal residual; scale tol so that the residual of the
    # original system is what ends up below tol (||A^T r|| <= ||A|| ||r||).
    x, k = _cg_loop(normal_mv, rhs, x0, tol * 1e-2, maxiter)
    return _finish("solve_normal_cg", mv, b_flat, x, k, tol, unravel, return_info)


def solve_gmres(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None,
                restart=30, return_info=False):
    """Restarted GMRES (modified Gram-Schmidt) for general nonsingular ``A``.

    Matrix-free. ``restart`` is the Krylov subspace size per cycle and ``maxiter`` the
    total number of matvecs.

    Parameters and returns are those of :func:`solve_cg`, plus ``restart``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.linear_solve import solve_gmres
    >>> A = jnp.array([[2.0, 1.0], [-1.0, 3.0]])
    >>> x = solve_gmres(lambda v: A @ v, jnp.array([1.0, 2.0]))
    >>> bool(jnp.allclose(A @ x, jnp.array([1.0, 2.0]), atol=1e-4))
    True
    """
    mv, b_flat, x0, unravel = _flatten_problem(matvec, b, ridge, init)
    n = b_flat.size
    tol, maxiter = _resolve(b_flat, tol, maxiter, _krylov_maxiter(n))
    m = int(min(restart, n))
    dtype = b_flat.dtype
    b_norm = jnp.linalg.norm(b_flat)
    atol = tol * b_norm

    def cycle(x):
        r = b_flat - mv(x)
        beta = jnp.linalg.norm(r)
        V = jnp.zeros((m + 1, n), dtype).at[0].set(r / jnp.where(beta > 0, beta, 1.0))
        H = jnp.zeros((m + 1, m), dtype)

        def arnoldi(j, carry):
            V, H = carry
            w = mv(V[j])
            # Two passes of classical Gram-Schmidt against the basis (stable, vectorized);
            # rows beyond j are still zero so they contribute nothing.
            h = V @ w
            w = w - V.T @ h
            h2 = V @ w
            w = w - V.T @ h2
            h = h + h2
            hn = jnp.linalg.norm(w)
            h = h.at[j + 1].set(hn)
            V = V.at[j + 1].set(w / jnp.where(hn > 0, hn, 1.0))
            H = H.at[:, j].set(h[: m + 1])
            return V, H

        V, H = jax.lax.fori_loop(0, m, arnoldi, (V, H))
        # The small least-squares problem min ||H y - beta e1||; restart <= 40 keeps it
        # cheap (the SVD behind lstsq is 20-40x slower on CPU beyond m ~ 44).
        e1 = jnp.zeros(m + 1, dtype).at[0].set(beta)
        y, *_ = jnp.linalg.lstsq(H, e1)
        return x + V[:m].T @ y

    def cond(state):
        x, res, k = state
        return (res > atol) & (k < maxiter) & jnp.isfinite(res)

    def body(state):
        x, _, k = state
        x = cycle(x)
        return x, jnp.linalg.norm(b_flat - mv(x)), k + m

    res0 = jnp.linalg.norm(b_flat - mv(x0))
    x, _, k = jax.lax.while_loop(cond, body, (x0, res0, 0))
    return _finish("solve_gmres", mv, b_flat, x, k, tol, unravel, return_info)


def solve_bicgstab(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None,
                   return_info=False):
    """BiCGSTAB for general nonsingular ``A`` (two matvecs per iteration, short memory).

    Parameters and returns are those of :func:`solve_cg`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.linear_solve import solve_bicgstab
    >>> A = jnp.array([[2.0, 1.0], [-1.0, 3.0]])
    >>> x = solve_bicgstab(lambda v: A @ v, jnp.array([1.0, 2.0]))
    >>> bool(jnp.allclose(A @ x, jnp.array([1.0, 2.0]), atol=1e-4))
    True
    """
    mv, b_flat, x0, unravel = _flatten_problem(matvec, b, ridge, init)
    tol, maxiter = _resolve(b_flat, tol, maxiter, _krylov_maxiter(b_flat.size))
    b_norm = jnp.linalg.norm(b_flat)
    atol = tol * b_norm
    r0 = b_flat - mv(x0)
    one = jnp.ones((), b_flat.dtype)

    def safe(d):
        return jnp.where(d != 0, d, jnp.finfo(b_flat.dtype).tiny)

    def cond(state):
        x, r, *_, k = state
        rn = jnp.linalg.norm(r)
        return (rn > atol) & (k < maxiter) & jnp.isfinite(rn)

    def body(state):
        x, r, rhat, p, v, rho, alpha, omega, k = state
        rho_new = jnp.vdot(rhat, r)
        beta = (rho_new / safe(rho)) * (alpha / safe(omega))
        p = r + beta * (p - omega * v)
        v = mv(p)
        alpha = rho_new / safe(jnp.vdot(rhat, v))
        s = r - alpha * v
        t = mv(s)
        omega = jnp.vdot(t, s) / safe(jnp.vdot(t, t))
        x = x + alpha * p + omega * s
        r = s - omega * t
        return x, r, rhat, p, v, rho_new, alpha, omega, k + 1

    zeros = jnp.zeros_like(b_flat)
    state = (x0, r0, r0, zeros, zeros, one, one, one, 0)
    x, *_, k = jax.lax.while_loop(cond, body, state)
    return _finish("solve_bicgstab", mv, b_flat, x, k, tol, unravel, return_info)


# --------------------------------------------------------------------------------------
# Dense solvers (materialize A by n matvecs: for small systems only)
# --------------------------------------------------------------------------------------


def _materialize(mv, b_flat):
    return jax.vmap(mv, out_axes=1)(jnp.eye(b_flat.size, dtype=b_flat.dtype))


def solve_lu(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None, return_info=False):
    """Dense LU solve. Materializes ``A`` with ``n`` matvecs: for small systems.

    ``init`` and ``maxiter`` are accepted for a uniform signature and ignored.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.linear_solve import solve_lu
    >>> A = jnp.array([[2.0, 1.0], [-1.0, 3.0]])
    >>> x = solve_lu(lambda v: A @ v, jnp.array([1.0, 2.0]))
    >>> bool(jnp.allclose(A @ x, jnp.array([1.0, 2.0]), atol=1e-4))
    True
    """
    del init, maxiter
    mv, b_flat, _, unravel = _flatten_problem(matvec, b, ridge, None)
    tol = default_tol(b_flat.dtype) if tol is None else tol
    x = jnp.linalg.solve(_materialize(mv, b_flat), b_flat)
    return _finish("solve_lu", mv, b_flat, x, 0, tol, unravel, return_info)


def solve_cholesky(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None,
                   return_info=False):
    """Dense Cholesky solve for symmetric positive definite ``A`` (materializes ``A``).

    A matrix that is not positive definite gives a non-finite factor, reported as a
    failed solve (never a silent answer).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.linear_solve import solve_cholesky
    >>> A = jnp.array([[4.0, 1.0], [1.0, 3.0]])
    >>> x = solve_cholesky(lambda v: A @ v, jnp.array([1.0, 2.0]))
    >>> bool(jnp.allclose(A @ x, jnp.array([1.0, 2.0]), atol=1e-4))
    True
    """
    del init, maxiter
    mv, b_flat, _, unravel = _flatten_problem(matvec, b, ridge, None)
    tol = default_tol(b_flat.dtype) if tol is None else tol
    A = _materialize(mv, b_flat)
    A = 0.5 * (A + A.T)
    c = jax.scipy.linalg.cho_factor(A, lower=True)
    x = jax.scipy.linalg.cho_solve(c, b_flat)
    return _finish("solve_cholesky", mv, b_flat, x, 0, tol, unravel, return_info)


SOLVERS: dict[str, Callable] = {
    "cg": solve_cg,
    "normal_cg": solve_normal_cg,
    "gmres": solve_gmres,
    "bicgstab": solve_bicgstab,
    "lu": solve_lu,
    "cholesky": solve_cholesky,
}
