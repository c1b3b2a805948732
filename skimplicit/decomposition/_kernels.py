r"""Numerical kernels of task-driven dictionary learning (module-level, jitted per shape).

Layouts and the codes' objective are those of :mod:`skimplicit.solvers._codes` (data
``X (n, p)``, dictionary ``D (k, p)`` with one atom per row, codes ``Z (n, k)``, each the
lasso / elastic-net code of its sample).

* The inner solvers are in :mod:`skimplicit.solvers._codes`: ``encode`` (the codes of
  all samples by Gram coordinate descent) and ``logistic_fit`` (the logistic model on
  the codes, damped Newton).
* :func:`codes_vjp` is the reverse-mode derivative of the codes: implicit differentiation
  (:func:`skimplicit.implicit.root_vjp`) of the stationarity conditions restricted to each
  sample's support, :func:`codes_optimality`, whose Jacobian is block diagonal (one
  ``k x k`` block per sample, ``G_SS + lambda_2 I`` on the support and the identity off it);
  :func:`solve_block_cholesky` materializes the ``n`` blocks with ``k`` batched matrix
  products and solves them by batched Cholesky. The cotangent of ``D`` is one matrix
  product over samples (no ``n x k x p`` intermediate).
* :func:`task_value_and_grad`: the classification objective and its gradient with respect
  to the dictionary and the classifier. :func:`cv_value_and_grad`: the K-fold validation
  log loss of a logistic model refitted on the codes (damped Newton), and its
  hypergradient with respect to ``alpha`` and ``C``, for the shared outer loop.

All shapes may be padded (zero rows of ``X`` with zero weight, zero features, zero atoms):
padding is exact (a zero atom has a zero code and a zero gradient).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..implicit import optimality, root_vjp
from ..implicit.linear_solve import solve_cholesky
from ..solvers._codes import encode, logistic_fit, logistic_objective, sample_losses
from ..tuning._kernel import FALLBACK_RIDGE

__all__ = [
    "codes_optimality",
    "codes_vjp",
    "solve_block_cholesky",
    "BlockSolveInfo",
    "task_value_and_grad",
    "cv_value_and_grad",
]


# --------------------------------------------------------------------------------------
# Implicit derivative of the codes
# --------------------------------------------------------------------------------------


def _codes_datafit_grad(Zm, l2, D, X):
    """The gradient of the codes' datafit ``||Z D - X||^2 / 2 + l2 ||Z||^2 / 2`` at the
    support-masked codes, written out."""
    return (Zm @ D - X) @ D.T + l2 * Zm


codes_optimality = optimality.support_stationary(
    None, lambda Z, alpha: alpha * jnp.sign(Z), grad=_codes_datafit_grad)
codes_optimality.__doc__ = r"""Stationarity of the codes on their supports, identity off them.

    ``F(Z, alpha, l2, D, X) = where(Z != 0, (Z_S D - X) D^T + l2 Z + alpha sign(Z), Z)``
    with the support held constant: :func:`skimplicit.implicit.optimality.support_stationary`
    with the datafit's gradient written out (a smaller graph to compile). ``dF/dZ`` is
    block diagonal over samples, each block ``[[G_SS + l2 I, 0], [0, I]]``: symmetric
    positive definite when the active atoms are linearly independent.
    """


class BlockSolveInfo(NamedTuple):
    """:class:`~skimplicit.implicit.linear_solve.SolveInfo` plus ``n_ridged``: the
    blocks solved with the fallback ridge (singular blocks)."""

    residual: Any
    iterations: Any
    success: Any
    n_ridged: Any


def solve_block_cholesky(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None,
                         return_info=False):
    """Solve ``(A + ridge I) x = b`` for ``A`` block diagonal over the rows of ``b (n, k)``.

    The signature of :mod:`skimplicit.implicit.linear_solve`. ``matvec`` must not mix rows
    (true of :func:`codes_optimality`'s Jacobian): ``k`` calls on the unit matrices
    ``E_j`` (ones in column ``j``) give column ``j`` of every block at once, then ``n``
    Cholesky solves of size ``k``. A block whose solve fails its residual check (singular:
    linearly dependent active atoms) is solved again with a ridge of ``1e-10`` x its mean
    diagonal; the others are solved as they are (no ridge). No host callback (it would
    run once per sample under ``vmap``): the caller reads ``info``, a
    :class:`BlockSolveInfo` (relative residual of the worst block, success when ``<= tol``
    and finite, the number of blocks that needed the ridge) and warns.
    """
    del init, maxiter
    n, k = b.shape
    tol = (1e-8 if b.dtype == jnp.float64 else 1e-4) if tol is None else tol
    E = jnp.broadcast_to(jnp.eye(k, dtype=b.dtype)[:, None, :], (k, n, k))
    cols = jax.vmap(matvec)(E)  # cols[j, i, :] = A_i[:, j]
    A = jnp.transpose(cols, (1, 2, 0))  # (n, k, k)
    eye = jnp.eye(k, dtype=b.dtype)
    if ridge is not None:
        A = A + ridge * eye
    A = 0.5 * (A + jnp.swapaxes(A, 1, 2))
    bn = jnp.linalg.norm(b, axis=1)
    bn = jnp.where(bn > 0, bn, 1.0)

    diag = jnp.diagonal(A, axis1=1, axis2=2)

    def blocks(A, pivot_floor):
        L = jnp.linalg.cholesky(A)
        x = jax.vmap(lambda Li, bi: jax.scipy.linalg.cho_solve((Li, True), bi))(L, b)
        res = jnp.linalg.norm(jnp.einsum("nij,nj->ni", A, x) - b, axis=1) / bn
        # A vanishing pivot (lambda_min <= L_ii^2): singular, even when the residual
        # passes (a consistent system, with a null-space component decided by rounding).
        piv = jnp.min(jnp.diagonal(L, axis1=1, axis2=2) ** 2, axis=1)
        ok = jnp.all(jnp.isfinite(x), axis=1) & (piv > pivot_floor)
        return x, jnp.where(ok, res, jnp.inf)

    x, res = blocks(A, 1e3 * jnp.finfo(b.dtype).eps * jnp.max(diag, axis=1))
    failed = ~(res <= tol)

    def with_ridge(_):
        r = FALLBACK_RIDGE * jnp.mean(diag, axis=1)
        x2, res2 = blocks(A + r[:, None, None] * eye, -1.0)
        return jnp.where(failed[:, None], x2, x), jnp.where(failed, res2, res)

    x, res = jax.lax.cond(jnp.any(failed), with_ridge, lambda _: (x, res), None)
    res_max = jnp.max(res)
    ok = (res_max <= tol) & jnp.all(jnp.isfinite(x))
    if return_info:
        return x, BlockSolveInfo(res_max, jnp.asarray(0), ok, jnp.sum(failed))
    return x


def codes_vjp(Z, alpha, l2, D, X, gZ):
    """``gZ^T dZ*/d(alpha, l2, D)`` by implicit differentiation on the supports.

    Returns ``(d_alpha, d_l2, d_D, info)``, ``info`` a :class:`BlockSolveInfo`:
    ``info.n_ridged > 0`` when support systems were singular (atoms active together that
    are linearly dependent) and solved with the fallback ridge; ``info.success`` is
    ``False`` when even that failed.
    """
    (d_alpha, d_l2, d_D, _), _, info = root_vjp(
        codes_optimality, Z, (alpha, l2, D, X), gZ, solve=solve_block_cholesky,
        return_info=True)
    return d_alpha, d_l2, d_D, info


# --------------------------------------------------------------------------------------
# The classification objective on the codes
# --------------------------------------------------------------------------------------


def _task_loss(Z, W, b, Y, sw, C):
    """``(C sum_i s_i l_i + 1/2 ||W||^2) / (C sum_i s_i)``: scikit-learn's logistic
    objective divided by ``C sum s`` (same minimizer, an O(1) scale)."""
    s_sum = jnp.sum(sw)
    losses = sample_losses(Z @ W + b, Y)
    return jnp.sum(sw * losses) / s_sum + 0.5 * jnp.sum(W * W) / (C * s_sum), losses


@jax.jit
def task_value_and_grad(D, W, b, X, Y, sw, Z0, alpha, l2, C, tol, max_iter):
    """Objective of the supervised phase and its gradient in ``(D, W, b)``.

    ``J(D, W, b) = (C sum_i s_i l(y_i, z*(x_i; D) W + b) + 1/2 ||W||^2) / (C sum_i s_i)``
    with ``W (k, K)`` (``K = 1`` binary), ``b (K,)``. The gradient in ``D`` goes through
    the codes by :func:`codes_vjp`.

    Returns
    -------
    value, (g_D, g_W, g_b), aux
        ``aux = (Z, losses, n_iter, violation, linear_ok, n_ridged)``: the codes (warm
        start of the next call), every row's loss (the validation rows have ``sw = 0``),
        the coding solver's epochs and final violation, whether every support system
        solved, and how many needed the fallback ridge (singular).
    """
    Z, n_iter, viol = encode(X, D, alpha, l2, Z0, tol, max_iter)
    (value, losses), (gZ, gW, gb) = jax.value_and_grad(_task_loss, argnums=(0, 1, 2),
                                                        has_aux=True)(Z, W, b, Y, sw, C)
    _, _, gD, info = codes_vjp(Z, alpha, l2, D, X, gZ)
    return value, (gD, gW, gb), (Z, losses, n_iter, viol, info.success, info.n_ridged)


# --------------------------------------------------------------------------------------
# K-fold validation loss of a logistic model on fixed-dictionary codes (for tuning)
# --------------------------------------------------------------------------------------


_logistic_F = optimality.stationary(logistic_objective)


# The refit's stationarity system, (k + 1) K unknowns: dense Cholesky. tol=1e-9: a solve
# succeeds when its relative residual is <= 10 tol = 1e-8.
_CHOLESKY = functools.partial(solve_cholesky, tol=1e-9)


def _val_loss(theta, Z, Y, v):
    W, b = theta
    losses = sample_losses(Z @ W + b, Y)
    return jnp.sum(v * losses) / jnp.sum(v)


def _fold_hypergrad(theta0, C, Z, Y, m, v):
    """One fold: refit, validation loss, and its gradient in ``(C, Z)`` (implicit)."""
    theta, ratio = logistic_fit(theta0, C, Z, Y, m)
    loss, (g_theta, g_Z_direct) = jax.value_and_grad(_val_loss, argnums=(0, 1))(theta, Z, Y, v)
    (d_C, d_Z, _, _), _, info = root_vjp(_logistic_F, theta, (C, Z, Y, m), g_theta,
                                         solve=_CHOLESKY, return_info=True)
    return loss, d_C, g_Z_direct + d_Z, theta, ratio, info.success


@jax.jit
def cv_value_and_grad(alpha, C, D, X, Y, M, V, Z0, theta0, l2, tol, max_iter):
    """Mean K-fold validation log loss at ``(alpha, C)`` for a fixed dictionary, and its
    gradient in ``(alpha, C)``.

    ``M (K, n)`` and ``V (K, n)`` are the training and validation weights of each fold
    (0/1 masks; padded rows are 0 in both). The codes of all rows are computed once (they
    do not depend on the fold); each fold refits the logistic model on its training rows
    (``logistic_fit``, warm-started at ``theta0``, a pytree with a leading fold axis)
    and the hypergradient chains two implicit differentiations: the logistic model's
    stationarity (in ``C`` and the codes) and the codes' support stationarity (in
    ``alpha``).

    Returns
    -------
    loss, fold_losses, d_alpha, d_C, aux
        ``aux = (Z, theta, newton_ratio, codes_violation, linear_ok, n_ridged)``
        (``n_ridged``: the codes' support systems solved with the fallback ridge).
    """
    Z, _, viol = encode(X, D, alpha, l2, Z0, tol, max_iter)
    K = M.shape[0]
    losses, d_C, g_Z, theta, ratio, ok = jax.vmap(
        _fold_hypergrad, in_axes=(0, None, None, None, 0, 0))(theta0, C, Z, Y, M, V)
    d_alpha, _, _, info = codes_vjp(Z, alpha, l2, D, X, jnp.sum(g_Z, axis=0) / K)
    linear_ok = jnp.all(ok) & info.success
    return (jnp.mean(losses), losses, d_alpha, jnp.mean(d_C),
            (Z, theta, jnp.max(ratio), viol, linear_ok, info.n_ridged))
