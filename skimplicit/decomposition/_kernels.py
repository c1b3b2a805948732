r"""Numerical kernels of task-driven dictionary learning (module-level, jitted per shape).

Layouts (scikit-learn's): data ``X (n, p)``, dictionary ``D (k, p)`` with one atom per row,
codes ``Z (n, k)`` with ``X ~ Z D``. The code of a sample ``x`` is

.. math::

    z^*(x; D) = \operatorname*{argmin}_z \tfrac12 \|x - D^\top z\|_2^2
                + \alpha \|z\|_1 + \tfrac{\lambda_2}{2} \|z\|_2^2 ,

scikit-learn's ``sparse_encode(algorithm="lasso_cd")`` objective for ``lambda_2 = 0`` (it
divides both terms by ``p`` internally, which leaves the argmin unchanged).

* :func:`encode` solves all samples at once by coordinate descent on the Gram matrix
  ``G = D D^T`` (``O(n k)`` per coordinate, no ``p``), stopping on the largest optimality
  violation, relative to ``max |X D^T|`` (the ``alpha`` above which every code is 0).
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

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..implicit import root_vjp
from ..implicit.linear_solve import SolveInfo

__all__ = [
    "encode",
    "codes_optimality",
    "codes_vjp",
    "solve_block_cholesky",
    "BlockSolveInfo",
    "task_value_and_grad",
    "cv_value_and_grad",
    "logistic_fit",
    "bucket",
]

_FALLBACK_RIDGE = 1e-10
"""Ridge (relative to the block's mean diagonal) of a support system whose solve failed
its residual check: linearly dependent active atoms. Never added otherwise."""


def bucket(k, minimum=8):
    """Smallest ``minimum * 2**j >= k``: few distinct shapes, few compilations."""
    b = int(minimum)
    while b < k:
        b *= 2
    return b


def _soft(x, t):
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0.0)


# --------------------------------------------------------------------------------------
# Sparse coding
# --------------------------------------------------------------------------------------


def _violation(Zt, Ct, G, alpha, l2):
    """Largest optimality violation per sample (``Zt`` is ``(k, n)``)."""
    grad = G @ Zt - Ct + l2 * Zt
    v = jnp.where(Zt != 0, jnp.abs(grad + alpha * jnp.sign(Zt)),
                  jnp.maximum(jnp.abs(grad) - alpha, 0.0))
    return jnp.max(v, axis=0)


@jax.jit
def encode(X, D, alpha, l2, Z0, tol, max_iter):
    """Lasso (elastic-net) codes of every row of ``X`` by Gram coordinate descent.

    Parameters
    ----------
    X : array (n, p)
    D : array (k, p)
        Dictionary, one atom per row.
    alpha, l2 : float
        ``alpha ||z||_1 + l2 / 2 ||z||^2``.
    Z0 : array (n, k)
        Warm start.
    tol : float
        Stop when every sample's largest optimality violation is ``<= tol * max |X D^T|``.
    max_iter : int
        Maximum epochs (one pass over the ``k`` coordinates for all samples).

    Returns
    -------
    Z : array (n, k)
    n_iter : int array
        Epochs run.
    violation : array
        Final largest relative violation (``<= tol`` when converged).
    """
    G = D @ D.T
    Ct = D @ X.T  # (k, n)
    k = G.shape[0]
    dg = jnp.diag(G) + l2
    inv = jnp.where(dg > 0, 1.0 / jnp.where(dg > 0, dg, 1.0), 0.0)
    scale = jnp.maximum(jnp.max(jnp.abs(Ct)), jnp.finfo(X.dtype).tiny)

    def epoch(Zt):
        def coord(j, Zt):
            r = Ct[j] - G[j] @ Zt + G[j, j] * Zt[j]
            return Zt.at[j].set(_soft(r, alpha) * inv[j])

        return jax.lax.fori_loop(0, k, coord, Zt)

    def cond(state):
        _, v, it = state
        return (v > tol * scale) & (it < max_iter)

    def body(state):
        Zt, _, it = state
        Zt = epoch(Zt)
        return Zt, jnp.max(_violation(Zt, Ct, G, alpha, l2)), it + 1

    Zt0 = Z0.T.astype(X.dtype)
    state = (Zt0, jnp.max(_violation(Zt0, Ct, G, alpha, l2)), 0)
    Zt, v, it = jax.lax.while_loop(cond, body, state)
    return Zt.T, it, v / scale


def codes_optimality(Z, alpha, l2, D, X):
    r"""Stationarity of the codes on their supports, identity off them.

    ``F = where(Z != 0, (Z_S D - X) D^T + l2 Z + alpha sign(Z), Z)`` with the support held
    constant (the residual of :func:`skimplicit.implicit.optimality.support_stationary`
    for this problem, written out: a smaller graph to compile). ``dF/dZ`` is block
    diagonal over samples, each block ``[[G_SS + l2 I, 0], [0, I]]``: symmetric positive
    definite when the active atoms are linearly independent.
    """
    mask = jax.lax.stop_gradient(Z != 0)
    Zm = jnp.where(mask, Z, 0.0)
    g = (Zm @ D - X) @ D.T + l2 * Z
    return jnp.where(mask, g + alpha * jnp.sign(Z), Z)


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
        r = _FALLBACK_RIDGE * jnp.mean(diag, axis=1)
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


def _sample_losses(S, Y):
    """Per-sample logistic losses: binary for ``Y (n, 1)`` in {0, 1}, else multinomial."""
    if S.shape[1] == 1:
        return jnp.logaddexp(0.0, S[:, 0]) - Y[:, 0] * S[:, 0]
    return jax.nn.logsumexp(S, axis=1) - jnp.sum(Y * S, axis=1)


def _task_loss(Z, W, b, Y, sw, C):
    """``(C sum_i s_i l_i + 1/2 ||W||^2) / (C sum_i s_i)``: scikit-learn's logistic
    objective divided by ``C sum s`` (same minimizer, an O(1) scale)."""
    s_sum = jnp.sum(sw)
    losses = _sample_losses(Z @ W + b, Y)
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

_B_RIDGE = 1e-8  # makes the multinomial intercept identifiable in the tuning problem


def _logistic_objective(theta, C, Z, Y, m):
    W, b = theta
    losses = _sample_losses(Z @ W + b, Y)
    return C * jnp.sum(m * losses) + 0.5 * jnp.sum(W * W) + 0.5 * _B_RIDGE * jnp.sum(b * b)


def _logistic_F(theta, C, Z, Y, m):
    return jax.grad(_logistic_objective)(theta, C, Z, Y, m)


def logistic_fit(theta0, C, Z, Y, m, n_newton=30):
    """scikit-learn's L2 logistic regression ``C sum m_i l_i + 1/2 ||W||^2`` by damped
    Newton (dense Hessian of size ``(k + 1) K``; the intercept carries a ``1e-8`` ridge).

    Returns ``(theta, gradient_norm_ratio)``.
    """
    flat0, unravel = ravel_pytree(theta0)

    def f(v):
        return _logistic_objective(unravel(v), C, Z, Y, m)

    g_f = jax.grad(f)
    h_f = jax.hessian(f)
    steps = 0.5 ** jnp.arange(12, dtype=flat0.dtype)

    def body(_, v):
        g = g_f(v)
        H = h_f(v)
        H = 0.5 * (H + H.T)
        d = jnp.linalg.solve(H, g)
        fv = f(v)
        cand = jax.vmap(lambda t: f(v - t * d))(steps)
        # Armijo, with a few ulps of slack: near the optimum the decrease falls below the
        # rounding of f and an exact test would stall the (quadratic) convergence.
        slack = 16 * jnp.finfo(flat0.dtype).eps * jnp.abs(fv)
        ok = cand <= fv - 1e-4 * steps * (g @ d) + slack
        t = jnp.where(jnp.any(ok), steps[jnp.argmax(ok)], 0.0)
        return jnp.where(jnp.all(jnp.isfinite(d)), v - t * d, v)

    v = jax.lax.fori_loop(0, n_newton, body, flat0)
    g0 = jnp.linalg.norm(g_f(flat0))
    ratio = jnp.linalg.norm(g_f(v)) / jnp.maximum(g0, jnp.finfo(flat0.dtype).tiny)
    return unravel(v), ratio


def _dense_cholesky(matvec, b, *, ridge=None, init=None, tol=None, maxiter=None,
                    return_info=False):
    """Dense Cholesky on pytrees without host callback (vmapped over folds)."""
    del init, maxiter
    b_flat, unravel = ravel_pytree(b)
    n = b_flat.shape[0]
    tol = (1e-8 if b_flat.dtype == jnp.float64 else 1e-4) if tol is None else tol

    def mv(v):
        return ravel_pytree(matvec(unravel(v)))[0]

    A = jax.vmap(mv, out_axes=1)(jnp.eye(n, dtype=b_flat.dtype))
    if ridge is not None:
        A = A + ridge * jnp.eye(n, dtype=b_flat.dtype)
    A = 0.5 * (A + A.T)
    x = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(A, lower=True), b_flat)
    bn = jnp.linalg.norm(b_flat)
    res = jnp.linalg.norm(A @ x - b_flat) / jnp.where(bn > 0, bn, 1.0)
    ok = (res <= tol) & jnp.all(jnp.isfinite(x))
    out = unravel(x)
    return (out, SolveInfo(res, jnp.asarray(0), ok)) if return_info else out


def _val_loss(theta, Z, Y, v):
    W, b = theta
    losses = _sample_losses(Z @ W + b, Y)
    return jnp.sum(v * losses) / jnp.sum(v)


def _fold_hypergrad(theta0, C, Z, Y, m, v):
    """One fold: refit, validation loss, and its gradient in ``(C, Z)`` (implicit)."""
    theta, ratio = logistic_fit(theta0, C, Z, Y, m)
    loss, (g_theta, g_Z_direct) = jax.value_and_grad(_val_loss, argnums=(0, 1))(theta, Z, Y, v)
    (d_C, d_Z, _, _), _, info = root_vjp(_logistic_F, theta, (C, Z, Y, m), g_theta,
                                         solve=_dense_cholesky, return_info=True)
    return loss, d_C, g_Z_direct + d_Z, theta, ratio, info.success


@jax.jit
def cv_value_and_grad(alpha, C, D, X, Y, M, V, Z0, theta0, l2, tol, max_iter):
    """Mean K-fold validation log loss at ``(alpha, C)`` for a fixed dictionary, and its
    gradient in ``(alpha, C)``.

    ``M (K, n)`` and ``V (K, n)`` are the training and validation weights of each fold
    (0/1 masks; padded rows are 0 in both). The codes of all rows are computed once (they
    do not depend on the fold); each fold refits the logistic model on its training rows
    (:func:`logistic_fit`, warm-started at ``theta0``, a pytree with a leading fold axis)
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
