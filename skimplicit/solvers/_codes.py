r"""Inner solvers of task-driven dictionary learning: sparse codes and a small logistic model.

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
  Not :class:`~skimplicit.solvers.CD`: that one solves one problem over the columns of
  ``X`` with working sets; here every sample is a ``k``-dimensional problem sharing ``G``.
* :func:`logistic_fit`: scikit-learn's L2 logistic regression on few features (the codes)
  by damped Newton with a dense Hessian, jit- and vmap-able (one fit per fold). Not
  :class:`~skimplicit.solvers.Newton` (Newton-CG on ``X``, another stopping rule, no
  ridge on the intercept): results would change.

All shapes may be padded (zero rows of ``X`` with zero weight, zero features, zero atoms):
padding is exact (a zero atom has a zero code and a zero gradient).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._base import soft_threshold, violation

__all__ = ["encode", "logistic_fit", "logistic_objective", "sample_losses", "B_RIDGE"]


# --------------------------------------------------------------------------------------
# Sparse coding
# --------------------------------------------------------------------------------------


def _violation(Zt, Ct, G, alpha, l2):
    """Largest optimality violation per sample (``Zt`` is ``(k, n)``)."""
    return jnp.max(violation(Zt, G @ Zt - Ct, alpha, l2), axis=0)


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
            return Zt.at[j].set(soft_threshold(r, alpha) * inv[j])

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


# --------------------------------------------------------------------------------------
# L2 logistic regression on the codes (damped Newton, dense Hessian)
# --------------------------------------------------------------------------------------

B_RIDGE = 1e-8  # makes the multinomial intercept identifiable in the tuning problem


def sample_losses(S, Y):
    """Per-sample logistic losses: binary for ``Y (n, 1)`` in {0, 1}, else multinomial."""
    if S.shape[1] == 1:
        return jnp.logaddexp(0.0, S[:, 0]) - Y[:, 0] * S[:, 0]
    return jax.nn.logsumexp(S, axis=1) - jnp.sum(Y * S, axis=1)


def logistic_objective(theta, C, Z, Y, m):
    """``C sum_i m_i l_i + 1/2 ||W||^2 + 1e-8 / 2 ||b||^2`` at ``theta = (W, b)``."""
    W, b = theta
    losses = sample_losses(Z @ W + b, Y)
    return C * jnp.sum(m * losses) + 0.5 * jnp.sum(W * W) + 0.5 * B_RIDGE * jnp.sum(b * b)


def logistic_fit(theta0, C, Z, Y, m, n_newton=30):
    """scikit-learn's L2 logistic regression ``C sum m_i l_i + 1/2 ||W||^2`` by damped
    Newton (dense Hessian of size ``(k + 1) K``; the intercept carries a ``1e-8`` ridge).

    Returns ``(theta, gradient_norm_ratio)``.
    """
    flat0, unravel = ravel_pytree(theta0)

    def f(v):
        return logistic_objective(unravel(v), C, Z, Y, m)

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
