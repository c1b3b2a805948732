"""Batched hypergradient kernels of the linear models (module-level, jitted once per shape).

Each kernel is vmapped over a leading fold axis; arrays are padded to bucketed shapes
(:func:`bucket`) so that successive outer steps reuse compiled code. Padding is exact:
padded rows of the training data are zero, padded test rows have zero weight, padded
support coordinates have a zero coefficient (identity rows of the system).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jax.flatten_util import ravel_pytree

from ..implicit import optimality, root_vjp
from ..tuning._kernel import Kernel, t_matmul
from ..implicit.linear_solve import _finish, _flatten_problem, default_tol, solve_cg

__all__ = ["enet_gram_hypergrad", "enet_support_hypergrad", "ridge_hypergrad"]


def fold_map(fun, *args):
    """``jax.vmap(fun)(*args)`` computed one fold after the other (``jax.lax.map``): the
    same values, with one fold's temporaries alive at a time instead of all folds'. The
    support systems are dense ``k x k`` matrices: vmapped, their copies (the system, its
    symmetrized copy, its factor) took ~160 MB for 5 folds at ``k = 1000``."""
    return jax.lax.map(lambda a: fun(*a), args)


def _enet_penalty_grad(w, params):
    """``alpha (rho sign(w) + (1 - rho) w)``, ``params = (alpha, l1_ratio)``."""
    alpha, l1_ratio = params
    return alpha * (l1_ratio * jnp.sign(w) + (1.0 - l1_ratio) * w)


# Elastic-net stationarity on the support, identity off it:
# ``where(w != 0, X^T (X w - y) / n + alpha (rho sign(w) + (1 - rho) w), w)``, the
# residual of :func:`skimplicit.implicit.optimality.support_stationary` with the datafit's
# gradient written out (no nested autodiff: a smaller graph, a faster compilation).
# Its Jacobian in ``w`` is ``[[X_S^T X_S / n + alpha (1 - rho), 0], [0, I]]``: SPD.
_enet_support_F = optimality.support_stationary(
    None, _enet_penalty_grad, grad=lambda w, n_train, X, y: t_matmul(X, X @ w - y) / n_train)

# The same stationarity in the support's sufficient statistics: ``G = X_S^T X_S / n``,
# ``b = X_S^T y / n`` (``O(k^2)`` per product instead of ``O(n k)``, for folds with many
# more rows than support coordinates).
_enet_gram_F = optimality.support_stationary(
    None, _enet_penalty_grad, grad=lambda w, G, b: G @ w - b)


def _val_mse(w, X, y, sw):
    r = y - X @ w
    return jnp.sum(sw * r * r) / jnp.sum(sw)


def _support_scale(sq_norm, w, alpha, l1_ratio):
    """The mean diagonal of the active block of the system:
    ``(||X_S||_F^2 / n + sum_S alpha (1 - rho)) / |S|`` (``sq_norm = ||X_S||_F^2 / n``,
    or the trace of the support's Gram matrix); padding excluded."""
    active = w != 0
    diag = sq_norm + jnp.sum(jnp.where(active, alpha * (1.0 - l1_ratio), 0.0))
    return diag / jnp.maximum(jnp.sum(active), 1)


_PIVOT_RTOL = 1e3 * np.finfo(np.float64).eps


def _cholesky_singular_fails(matvec, b, *, ridge=None, pivot_floor=-1.0, matrix=None,
                             init=None, tol=None, maxiter=None, return_info=False):
    """:func:`~skimplicit.implicit.linear_solve.solve_cholesky`, failing (a non-finite
    result, hence a failed residual check) on a numerically singular system: a pivot
    ``L_ii^2 <= pivot_floor`` (``lambda_min <= L_ii^2``).

    ``matrix``: the system's matrix when the caller has it (symmetric, without the ridge:
    only its lower triangle is read); else it is assembled from ``k`` products with
    ``matvec`` and symmetrized.

    A singular but consistent system can pass the residual check with an arbitrary
    null-space component, which rounding decides (a weighted problem and its
    repeated-rows twin then get different per-feature hypergradients); failing sends it
    to the ridge fallback, which is the same for both.
    """
    del init, maxiter
    mv, b_flat, _, unravel = _flatten_problem(matvec, b, ridge, None)
    tol = default_tol(b_flat.dtype) if tol is None else tol
    if matrix is None:
        A = jax.vmap(mv, out_axes=1)(jnp.eye(b_flat.size, dtype=b_flat.dtype))
        A = 0.5 * (A + A.T)  # (products with the identity: symmetric up to rounding)
    else:
        # The caller's symmetric matrix of ``matvec`` (its residual still checked with
        # matvec), the ridge added on its diagonal only; the factorization reads its lower
        # triangle, so no symmetrized copy. Each k x k pass counts, as the kernels compile
        # unoptimized (see tuning._kernel): the Gram kernel, 5 folds, median call 40 -> 34
        # ms at k = 500 and 156 -> 138 ms at k = 1000 without these passes.
        A = matrix if ridge is None else _add_diagonal(matrix, ridge)
    L = jax.lax.linalg.cholesky(A, symmetrize_input=False)
    x = jax.scipy.linalg.cho_solve((L, True), b_flat)
    x = jnp.where(jnp.min(jnp.diag(L) ** 2) <= pivot_floor, jnp.nan, x)
    return _finish("solve_cholesky", mv, b_flat, x, 0, tol, unravel, return_info)


def _support_vjp_of(F, args, g, w, alpha, l1_ratio, ridge, scale, solve, matrix=None):
    """The gradient in ``(alpha, l1_ratio)`` of a loss whose gradient in ``w`` is ``g``,
    through ``F(w, (alpha, l1_ratio), *args) = 0``; with the solve's success and
    residual. ``matrix``: the system's matrix (``dF/dw``, symmetric), for the Cholesky
    solve."""
    # No ridge on the support system unless the caller asks for one (``ridge > 0``): a
    # ridge of 1e-10 x the mean diagonal moved the Lasso hypergradient of the diabetes
    # data by up to 5e-7 relative (folds whose hypergradients cancel in the mean). The
    # caller retries with a ridge only where this solve fails its residual check (a
    # singular support system, e.g. duplicated columns both active) and reports it.
    # A pivot below 1e3 eps x the mean active diagonal (``scale``): singular (see
    # _cholesky_singular_fails); not checked again once ridged.
    floor = jnp.where(ridge == 0, _PIVOT_RTOL * scale, -1.0)
    lin = (partial(_cholesky_singular_fails, ridge=ridge * scale, pivot_floor=floor,
                   matrix=matrix)
           if solve == "cholesky" else partial(solve_cg, ridge=ridge * scale))
    (dparams, *_), _, info = root_vjp(F, w, ((alpha, l1_ratio), *args), g, solve=lin,
                                      return_info=True)
    d_alpha, d_l1 = dparams
    return d_alpha, d_l1, info.success, info.residual


def _enet_one_fold(X, y, n_train, Xt, yt, swt, w, alpha, l1_ratio, ridge, solve):
    scale = _support_scale(jnp.sum(X * X) / n_train, w, alpha, l1_ratio)
    loss, g = jax.value_and_grad(_val_mse)(w, Xt, yt, swt)
    # The Cholesky solve's matrix from one product X^T X (assembled from k products with
    # the identity, it took two: X V, then X^T of that, and a symmetrizing pass).
    matrix = (_enet_gram_matrix(t_matmul(X, X) / n_train, w, alpha, l1_ratio)
              if solve == "cholesky" else None)
    return (loss, *_support_vjp_of(_enet_support_F, (n_train, X, y), g, w, alpha, l1_ratio,
                                   ridge, scale, solve, matrix=matrix))


def _enet_gram_one_fold(G, b, g, w, alpha, l1_ratio, ridge, solve):
    # (padded coordinates have zero rows and columns in G)
    scale = _support_scale(jnp.trace(G), w, alpha, l1_ratio)
    return _support_vjp_of(_enet_gram_F, (G, b), g, w, alpha, l1_ratio, ridge, scale, solve,
                           matrix=_enet_gram_matrix(G, w, alpha, l1_ratio))


def _enet_gram_matrix(G, w, alpha, l1_ratio):
    """``dF/dw`` of ``_enet_gram_F`` read from ``G``: ``G + alpha (1 - rho)`` on the active
    block, the identity elsewhere (tested against autodiff). Assembled from ``k`` products
    with the identity instead, it cost ``k^3`` (0.3 s a call for 5 folds at ``k = 1000``,
    most of the kernel); the solve's residual is still checked with autodiff's products."""
    active = w != 0
    return _add_diagonal(jnp.where(active[:, None] & active[None, :], G, 0.0),
                         jnp.where(active, alpha * (1.0 - l1_ratio), 1.0))


def _add_diagonal(A, d):
    """``A + diag(d)`` (``d`` a vector or a scalar) without forming ``diag(d)``."""
    i = jnp.arange(A.shape[0])
    return A.at[i, i].add(d)


def _enet_gram_hypergrad(G, b, g, w, alpha, l1_ratio, ridge, solve="cholesky"):
    """:func:`_enet_support_hypergrad` from each fold's support Gram matrix ``G (K, k, k)``
    (``X_S^T X_S / n``, zero-padded) and ``b (K, k)`` (``X_S^T y / n``) instead of its
    columns, and from the validation loss's gradient ``g (K, k)`` on the support
    (computed by the caller, with the loss, from the test rows: the test columns never
    enter the kernel): ``O(k^3)`` instead of ``O(n k^2)`` per fold. Returns per fold
    ``d loss / d alpha_S (K, k)``, ``d loss / d l1_ratio``, the solve's success flag and
    relative residual."""
    return fold_map(partial(_enet_gram_one_fold, solve=solve),
                    G, b, g, w, alpha, l1_ratio, ridge)


def _enet_support_hypergrad(X, y, n_train, Xt, yt, swt, w, alpha, l1_ratio, ridge,
                            solve="cholesky"):
    """Validation MSE and its gradient w.r.t. per-support-coordinate alphas and l1_ratio.

    Shapes (K folds, n rows, k support coordinates, m test rows): ``X (K, n, k)`` the
    centered, sqrt-weight-scaled training columns of the support; ``y (K, n)``;
    ``n_train (K,)``; ``Xt (K, m, k)`` and ``yt (K, m)`` the test rows centered with the
    training means; ``swt (K, m)`` test weights; ``w (K, k)`` the solution on the support;
    ``alpha (K, k)`` the alpha of each support coordinate; ``l1_ratio (K,)``;
    ``ridge (K,)`` a relative ridge added to the support system (0: none, the exact
    system; a fallback for singular systems, relative to its mean diagonal).

    Returns per fold: ``loss``, ``d loss / d alpha_S (K, k)``, ``d loss / d l1_ratio``,
    and the linear solve's success flag and relative residual.
    """
    return jax.vmap(partial(_enet_one_fold, solve=solve))(
        X, y, n_train, Xt, yt, swt, w, alpha, l1_ratio, ridge
    )


enet_support_hypergrad = Kernel(_enet_support_hypergrad, static_argnames=("solve",))
enet_gram_hypergrad = Kernel(_enet_gram_hypergrad, static_argnames=("solve",))


def _ridge_train_loss(w, alpha, X, y):
    r = y - X @ w
    return jnp.vdot(r, r) + jnp.sum(alpha[:, None] * w * w) if w.ndim == 2 else \
        jnp.vdot(r, r) + jnp.sum(alpha * w * w)


_RIDGE_F = optimality.stationary(_ridge_train_loss)


def _factored_solve(inverse):
    """A solver of :mod:`~skimplicit.implicit.linear_solve`'s signature that applies
    ``inverse`` (a factorization of the system, computed once), refines once, and checks
    the residual like the others (``SolveInfo``, a warning on failure)."""

    def solve(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None,
              return_info=False):
        del init, maxiter
        mv, b_flat, _, unravel = _flatten_problem(matvec, b, ridge, None)
        tol = default_tol(b_flat.dtype) if tol is None else tol

        def inv(v):
            return ravel_pytree(inverse(unravel(v)))[0]

        x = inv(b_flat)
        x = x + inv(b_flat - mv(x))  # one step of iterative refinement
        return _finish("solve_cholesky", mv, b_flat, x, 1, tol, unravel, return_info)

    return solve


def _ridge_one_fold(X, y, Xt, yt, swt, alpha):
    # Ridge: ||y - X w||^2 + sum_j alpha_j w_j^2 (scikit-learn's scaling), solved through the
    # smaller Gram matrix; the hypergradient by implicit differentiation of stationarity,
    # whose system 2 (X^T X + diag(alpha)) is solved with the same Cholesky factor (exact:
    # a conjugate gradient at its default relative tolerance of 1e-10 left errors of up to
    # 5e-11 x the condition number in the hypergradient).
    n, p = X.shape

    def col(a, b):  # alpha_j scaling row j of b (p,) or (p, t)
        return (a * b.T).T

    if p <= n:
        fac = jax.scipy.linalg.cho_factor(X.T @ X + jnp.diag(alpha), lower=True)

        def inverse(b):  # (X^T X + D)^-1 b
            return jax.scipy.linalg.cho_solve(fac, b)
    else:
        # (X^T X + D)^-1 = D^-1 - D^-1 X^T (X D^-1 X^T + I)^-1 X D^-1 (Woodbury).
        Xd = X / alpha
        fac = jax.scipy.linalg.cho_factor(Xd @ X.T + jnp.eye(n, dtype=X.dtype), lower=True)

        def inverse(b):
            return col(1.0 / alpha, b) - Xd.T @ jax.scipy.linalg.cho_solve(fac, Xd @ b)

    if p <= n:
        w = inverse(X.T @ y)
    else:  # w = D^-1 X^T (X D^-1 X^T + I)^-1 y (push-through: no cancellation)
        w = Xd.T @ jax.scipy.linalg.cho_solve(fac, y)

    def val(w):
        r = yt - Xt @ w
        r2 = r * r if r.ndim == 1 else jnp.sum(r * r, axis=1) / r.shape[1]
        return jnp.sum(swt * r2) / jnp.sum(swt)

    loss, g = jax.value_and_grad(val)(w)
    # The system of _RIDGE_F is 2 (X^T X + D).
    solve = _factored_solve(lambda b: 0.5 * inverse(b))
    (d_alpha, *_), _, info = root_vjp(_RIDGE_F, w, (alpha, X, y), g, solve=solve,
                                      return_info=True)
    return loss, d_alpha, w, info.success, info.residual


def _ridge_hypergrad(X, y, Xt, yt, swt, alpha):
    """Ridge per fold: validation MSE, its gradient w.r.t. ``alpha (K, p)``, the solution.

    ``X (K, n, p)`` centered and sqrt-weight-scaled training data (zero padded rows),
    ``y (K, n)`` or ``(K, n, t)``, ``Xt (K, m, p)``, ``yt``, ``swt (K, m)``.
    """
    return jax.vmap(_ridge_one_fold)(X, y, Xt, yt, swt, alpha)


ridge_hypergrad = Kernel(_ridge_hypergrad)
