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

from ..implicit import optimality, root_vjp
from ..implicit.linear_solve import solve_cg, solve_cholesky

__all__ = ["bucket", "enet_support_hypergrad", "ridge_hypergrad"]


def bucket(k, minimum=16):
    """Smallest ``minimum * 2**j`` that holds ``k`` (few shapes: few compilations)."""
    b = minimum
    while b < k:
        b *= 2
    return b


def _enet_support_F(w, params, n_train, X, y):
    """Elastic-net stationarity on the support, identity off it.

    ``where(w != 0, X^T (X w - y) / n + alpha (rho sign(w) + (1 - rho) w), w)``: the
    residual of :func:`skimplicit.implicit.optimality.support_stationary` for the elastic
    net, written out (no nested autodiff: a smaller graph, a faster compilation).
    Its Jacobian in ``w`` is ``[[X_S^T X_S / n + alpha (1 - rho), 0], [0, I]]``: SPD.
    """
    alpha, l1_ratio = params
    mask = jax.lax.stop_gradient(w != 0)
    wm = jnp.where(mask, w, 0.0)
    grad = X.T @ (X @ wm - y) / n_train
    pen = alpha * (l1_ratio * jnp.sign(w) + (1.0 - l1_ratio) * w)
    return jnp.where(mask, grad + pen, w)


def _val_mse(w, X, y, sw):
    r = y - X @ w
    return jnp.sum(sw * r * r) / jnp.sum(sw)


def _enet_one_fold(X, y, n_train, Xt, yt, swt, w, alpha, l1_ratio, solve):
    loss, g = jax.value_and_grad(_val_mse)(w, Xt, yt, swt)
    args = ((alpha, l1_ratio), n_train, X, y)
    # A relative ridge of 1e-10 keeps a singular support system (more active features
    # than the rank of X_S, e.g. duplicated rows) solvable; on well-posed systems it moves
    # the hypergradient by ~1e-10 relative. The residual check still reports failures.
    ridge = 1e-10 * (jnp.sum(X * X) / n_train / X.shape[1] + jnp.mean(alpha))
    lin = partial(solve_cholesky if solve == "cholesky" else solve_cg, ridge=ridge)
    (dparams, *_), _, info = root_vjp(_enet_support_F, w, args, g, solve=lin,
                                      return_info=True)
    d_alpha, d_l1 = dparams
    return loss, d_alpha, d_l1, info.success, info.residual


@partial(jax.jit, static_argnames=("solve",))
def enet_support_hypergrad(X, y, n_train, Xt, yt, swt, w, alpha, l1_ratio, solve="cholesky"):
    """Validation MSE and its gradient w.r.t. per-support-coordinate alphas and l1_ratio.

    Shapes (K folds, n rows, k support coordinates, m test rows): ``X (K, n, k)`` the
    centered, sqrt-weight-scaled training columns of the support; ``y (K, n)``;
    ``n_train (K,)``; ``Xt (K, m, k)`` and ``yt (K, m)`` the test rows centered with the
    training means; ``swt (K, m)`` test weights; ``w (K, k)`` the solution on the support;
    ``alpha (K, k)`` the alpha of each support coordinate; ``l1_ratio (K,)``.

    Returns per fold: ``loss``, ``d loss / d alpha_S (K, k)``, ``d loss / d l1_ratio``,
    and the linear solve's success flag and relative residual.
    """
    return jax.vmap(partial(_enet_one_fold, solve=solve))(
        X, y, n_train, Xt, yt, swt, w, alpha, l1_ratio
    )


def _ridge_train_loss(w, alpha, X, y):
    r = y - X @ w
    return jnp.vdot(r, r) + jnp.sum(alpha[:, None] * w * w) if w.ndim == 2 else \
        jnp.vdot(r, r) + jnp.sum(alpha * w * w)


_RIDGE_F = optimality.stationary(_ridge_train_loss)


def _ridge_one_fold(X, y, Xt, yt, swt, alpha):
    # Ridge: ||y - X w||^2 + sum_j alpha_j w_j^2 (scikit-learn's scaling), solved through the
    # smaller Gram matrix; the hypergradient by implicit differentiation of stationarity.
    n, p = X.shape
    if p <= n:
        G = X.T @ X + jnp.diag(alpha)
        w = jnp.linalg.solve(G, X.T @ y)
    else:
        # w = D^-1 X^T (X D^-1 X^T + I)^-1 y with D = diag(alpha) (push-through identity).
        Xd = X / alpha
        K = Xd @ X.T + jnp.eye(n, dtype=X.dtype)
        w = Xd.T @ jnp.linalg.solve(K, y)

    def val(w):
        r = yt - Xt @ w
        r2 = r * r if r.ndim == 1 else jnp.sum(r * r, axis=1) / r.shape[1]
        return jnp.sum(swt * r2) / jnp.sum(swt)

    loss, g = jax.value_and_grad(val)(w)
    (d_alpha, *_), _, info = root_vjp(_RIDGE_F, w, (alpha, X, y), g, solve=solve_cg,
                                      return_info=True)
    return loss, d_alpha, w, info.success, info.residual


@jax.jit
def ridge_hypergrad(X, y, Xt, yt, swt, alpha):
    """Ridge per fold: validation MSE, its gradient w.r.t. ``alpha (K, p)``, the solution.

    ``X (K, n, p)`` centered and sqrt-weight-scaled training data (zero padded rows),
    ``y (K, n)`` or ``(K, n, t)``, ``Xt (K, m, p)``, ``yt``, ``swt (K, m)``.
    """
    return jax.vmap(_ridge_one_fold)(X, y, Xt, yt, swt, alpha)


def as_numpy(*arrays):
    return tuple(np.asarray(a) for a in arrays)
