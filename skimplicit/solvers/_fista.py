r"""Accelerated proximal gradient (FISTA) with a fixed step and adaptive restart.

Solves ``min_{W, b} f(X W + b) + l1 ||W||_1 + l2/2 ||W||^2`` over all features at once:
each iteration is two dense products (``X @ W`` and ``X^T @ G``), which batch into matrix
products under :func:`jax.vmap` (folds x hyperparameters), the shape accelerators like.
On a CPU with ``p >> n`` prefer :class:`~skimplicit.solvers.CD` (working sets).

* Step ``1 / L`` with ``L`` the Lipschitz constant of ``grad f`` from a matrix-free power
  iteration (:func:`~skimplicit.solvers._datafits.global_lipschitz`, times 1.02). No line
  search: a fixed step converges where backtracking stalled (see the background notes).
* Adaptive restart (O'Donoghue and Candes 2015, gradient scheme): momentum is reset when
  ``(y_k - x_{k+1}) . (x_{k+1} - x_k) > 0``.
* Least squares with an intercept: ``b`` is eliminated exactly (``b(W)`` is the weighted
  mean of ``y - X W``), so the iteration runs on the weighted-centered problem. Logistic:
  ``b`` is a free (unpenalized) variable of the gradient step.
* Stopping every ``check_every`` iterations at the current iterate ``x_k``, with the
  criterion of :class:`~skimplicit.solvers.SolverInfo` (duality gap for least squares;
  one extra product with ``X^T`` per check).

References
----------
Beck and Teboulle (2009), "A fast iterative shrinkage-thresholding algorithm for linear
inverse problems", SIAM J. Imaging Sci. O'Donoghue and Candes (2015), "Adaptive restart
for accelerated gradient schemes", Found. Comput. Math.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ._base import SolverInfo, soft_threshold
from ._cd import _grads, stop_criterion, stop_threshold
from ._datafits import global_lipschitz

__all__ = ["FISTA", "fista_kernel"]


@dataclass(frozen=True)
class FISTA:
    """FISTA with step ``1 / L`` (power iteration) and adaptive restart.

    The solver for accelerators and for large batches of dense problems. A hashable
    configuration, static under ``jit``.

    Parameters
    ----------
    check_every : int, default=10
        Iterations between two evaluations of the stopping criterion.
    n_power : int, default=30
        Power iterations for ``L`` (each one product with ``X`` and one with ``X^T``).
    restart : bool, default=True
        Adaptive (gradient) restart of the momentum.
    """

    check_every: int = 10
    n_power: int = 30
    restart: bool = True

    default_max_iter = 10000


def fista_kernel(X, Y, sw, l1, l2, W0, b0, tol, max_iter, *, datafit, fit_intercept,
                 check_every=10, n_power=30, restart=True):
    """FISTA on internal layouts; arguments and returns as :func:`~._cd.cd_kernel`.

    ``max_iter`` counts iterations (rounded up to a multiple of ``check_every``).
    """
    n, p = X.shape
    K = Y.shape[1]
    dtype = X.dtype
    v = datafit.sample_scale(sw)
    vsum = jnp.sum(v)
    l1 = jnp.asarray(l1, dtype)
    l2 = jnp.asarray(l2, dtype)
    elim = datafit.is_quadratic and fit_intercept
    free_b = fit_intercept and not datafit.is_quadratic
    step = 1.0 / global_lipschitz(X, v, datafit, K, fit_intercept, n_power)
    thr = stop_threshold(Y, v, tol, datafit, fit_intercept)

    def predict(W, b):
        XW = X @ W
        if elim:
            b = (v @ (Y - XW)) / vsum
        elif not fit_intercept:
            b = jnp.zeros((K,), dtype)
        return XW + b, b

    def crit_at(W, Z):
        GW, Gb = _grads(X, Y, v, Z, datafit)
        return stop_criterion(Y, v, sw, W, Z, GW, Gb, l1, l2, datafit, fit_intercept)

    def iteration(_, s):
        W, b, Z, Wp, bp, Zp, t = s
        t_next = 0.5 * (1 + jnp.sqrt(1 + 4 * t * t))
        beta = (t - 1) / t_next
        Wy, by, Zy = W + beta * (W - Wp), b + beta * (b - bp), Z + beta * (Z - Zp)
        GW, Gb = _grads(X, Y, v, Zy, datafit)
        Wn = soft_threshold(Wy - step * GW, step * l1) / (1 + step * l2)
        bn = by - step * Gb if free_b else b
        Zn, bn = predict(Wn, bn)
        if restart:
            prod = jnp.sum((Wy - Wn) * (Wn - W))
            if free_b:
                prod = prod + jnp.sum((by - bn) * (bn - b))
            reset = prod > 0
            t_next = jnp.where(reset, 1.0, t_next)
        # After a restart the next extrapolation uses beta = 0 (t_next = 1).
        return Wn, bn, Zn, W, b, Z, t_next

    def body(state):
        s, it, _ = state
        s = jax.lax.fori_loop(0, check_every, iteration, s)
        return s, it + check_every, crit_at(s[0], s[2])

    def cond(state):
        _, it, crit = state
        return (it < max_iter) & (crit > thr) & jnp.isfinite(crit)

    Z0, b0 = predict(W0, b0)
    one = jnp.ones((), dtype)
    s0 = (W0, b0, Z0, W0, b0, Z0, one)
    (W, b, *_), it, crit = jax.lax.while_loop(cond, body, (s0, 0, crit_at(W0, Z0)))
    info = SolverInfo(it, 0, (crit <= thr) & jnp.isfinite(crit), crit, thr, False)
    return W, b, info
