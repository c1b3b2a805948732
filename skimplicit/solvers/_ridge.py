r"""Ridge regression in closed form: Cholesky on the smaller Gram matrix, CG beyond a budget.

Solves, for each target ``t`` (columns of ``Y``),

.. math::

    \min_{w, b} \frac{1}{2} \sum_i v_i (y_{it} - x_i^\top w - b)^2
    + \frac{\lambda_t}{2} \|w\|_2^2, \qquad v = s / \textstyle\sum_i s_i,

which is scikit-learn's ``Ridge(alpha)`` (``sum_i s_i (y_i - x_i w - b)^2 + alpha ||w||^2``)
with ``lambda = alpha / sum(s)``: use :func:`solve_ridge` for scikit-learn's ``alpha``.

* ``n_features <= n_samples``: primal, ``(X_c^T V X_c + lambda I) w = X_c^T V y``
  (``p x p`` Gram, one Cholesky per distinct ``lambda``).
* ``n_features > n_samples``: dual, ``w = A^T (A A^T + lambda I)^{-1} c`` with
  ``A = V^{1/2} X_c`` (``n x n`` Gram). ``X X^T`` does not depend on the fold, so under
  :func:`jax.vmap` over fold masks it is computed once; each fold adds rank-two centering
  terms. Samples of weight 0 drop out exactly.
* Gram larger than ``max_gram_bytes``: conjugate gradient on the primal system, matrix-free
  (two products with ``X`` per iteration), warm-started from ``init``.

``X_c`` is ``X`` centered with the weights when ``fit_intercept`` (never materialized).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from ._base import SolverInfo

__all__ = ["Direct", "ridge_kernel"]


@dataclass(frozen=True)
class Direct:
    """Closed-form ridge (least squares with an ``L2`` penalty only).

    Parameters
    ----------
    max_gram_bytes : int, default=2**28
        Largest Gram matrix (``min(n, p)^2 * itemsize``) factorized; beyond it, CG.
    """

    max_gram_bytes: int = 2**28

    default_max_iter = 1000


def ridge_method(n_samples, n_features, itemsize, max_gram_bytes):
    """``'primal'``, ``'dual'`` (Cholesky on the smaller Gram) or ``'cg'``."""
    m = min(n_samples, n_features)
    if m * m * itemsize > max_gram_bytes:
        return "cg"
    return "primal" if n_features <= n_samples else "dual"


def ridge_kernel(X, Y, sw, l2, W0, tol, max_iter, *, fit_intercept, max_gram_bytes=2**28):
    """Ridge for ``Y`` of shape ``(n, T)`` and ``l2`` scalar or ``(T,)``.

    Returns ``(W (p, T), b (T,), info)``; ``info.stop_crit`` is the relative residual of
    the normal equations (largest over targets), compared with ``tol``; ``n_iter`` is 1 for
    a factorization, the CG iterations otherwise.
    """
    n, p = X.shape
    T = Y.shape[1]
    dtype = X.dtype
    v = sw / jnp.sum(sw)
    l2 = jnp.broadcast_to(jnp.asarray(l2, dtype), (T,))
    if fit_intercept:
        xbar = v @ X
        ybar = v @ Y
    else:
        xbar = jnp.zeros((p,), dtype)
        ybar = jnp.zeros((T,), dtype)
    Yc = Y - ybar
    rhs = (((v[:, None] * Yc).T) @ X).T  # X_c^T V y_c = X^T V y_c (sum v y_c = 0)

    def center(Z):
        return Z - (v @ Z) if fit_intercept else Z

    def normal_op(W, lam):  # (X_c^T V X_c + lam) W for W (p, T)
        return ((v[:, None] * center(X @ W)).T @ X).T + lam * W

    method = ridge_method(n, p, jnp.dtype(dtype).itemsize, max_gram_bytes)
    if method == "primal":
        G = (X.T * v) @ X
        if fit_intercept:
            G = G - jnp.outer(xbar, xbar)

        def one(lam, r):
            c = jsl.cho_factor(G + lam * jnp.eye(p, dtype=dtype))
            return jsl.cho_solve(c, r)

        W = jax.vmap(one, in_axes=(0, 1), out_axes=1)(l2, rhs)
        it = 1
    elif method == "dual":
        M = X @ X.T
        sv = jnp.sqrt(v)
        if fit_intercept:
            m = M @ v
            s = v @ m
            M = M - m[:, None] - m[None, :] + s
        A2 = sv[:, None] * M * sv[None, :]
        C = sv[:, None] * Yc

        def one(lam, c):
            f = jsl.cho_factor(A2 + lam * jnp.eye(n, dtype=dtype))
            return jsl.cho_solve(f, c)

        alpha = jax.vmap(one, in_axes=(0, 1), out_axes=1)(l2, C)  # (n, T)
        sa = sv[:, None] * alpha
        W = (sa.T @ X).T - xbar[:, None] * jnp.sum(sa, axis=0)
        it = 1
    else:
        W_init = W0
        rhs_norm2 = jnp.sum(rhs**2, axis=0)
        atol2 = (0.5 * tol) ** 2 * rhs_norm2  # recursive residual; true one checked below

        def cg_cond(s):
            _, _, _, rr, k = s
            return jnp.any(rr > atol2) & (k < max_iter)

        def cg_body(s):
            W, r, q, rr, k = s
            Aq = normal_op(q, l2)
            a = rr / jnp.where(jnp.sum(q * Aq, 0) > 0, jnp.sum(q * Aq, 0), 1.0)
            W = W + a * q
            r = r - a * Aq
            rr_new = jnp.sum(r * r, 0)
            q = r + (rr_new / jnp.where(rr > 0, rr, 1.0)) * q
            return W, r, q, rr_new, k + 1

        r0 = rhs - normal_op(W_init, l2)
        W, _, _, _, it = jax.lax.while_loop(
            cg_cond, cg_body, (W_init, r0, r0, jnp.sum(r0 * r0, 0), 0))
    b = ybar - xbar @ W
    res = normal_op(W, l2) - rhs
    rel = jnp.sqrt(jnp.sum(res**2, 0) / jnp.where(jnp.sum(rhs**2, 0) > 0,
                                                    jnp.sum(rhs**2, 0), 1.0))
    crit = jnp.max(rel)
    thr = jnp.asarray(tol, dtype)
    info = SolverInfo(it, 0, (crit <= thr) & jnp.isfinite(crit), crit, thr, False)
    return W, b, info
