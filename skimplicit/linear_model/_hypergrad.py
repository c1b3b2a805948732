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

__all__ = ["Kernel", "bucket", "enet_support_hypergrad", "ridge_hypergrad"]


def bucket(k, minimum=16, per_octave=1):
    """Smallest ``minimum * 2**j`` (or also ``1.5 * minimum * 2**j`` with ``per_octave=2``)
    that holds ``k``: few shapes, few compilations; two per octave pad by 50 % at most."""
    b = minimum
    while b < k:
        if per_octave == 2 and 3 * b // 2 >= k:
            return 3 * b // 2
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
    # Relative to the system's own diagonal, X^T X / n + alpha (1 - rho): the l1 part of
    # alpha is not in it and has other units (it scales like X y, the Gram like X^2).
    ridge = 1e-10 * (jnp.sum(X * X) / n_train / X.shape[1]
                     + jnp.mean(alpha) * (1.0 - l1_ratio))
    lin = partial(solve_cholesky if solve == "cholesky" else solve_cg, ridge=ridge)
    (dparams, *_), _, info = root_vjp(_enet_support_F, w, args, g, solve=lin,
                                      return_info=True)
    d_alpha, d_l1 = dparams
    return loss, d_alpha, d_l1, info.success, info.residual


def _enet_support_hypergrad(X, y, n_train, Xt, yt, swt, w, alpha, l1_ratio, solve="cholesky"):
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


# On CPU, compilation is most of a small fit's time: XLA's backend optimizations and its
# fusion emitters cost 4x the compile time for no faster kernel here (5 folds of 400 x 512:
# compile 0.8 s -> 0.2 s; the call 0.06 s either way).
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


_EXECUTOR = []


def _executor():
    if not _EXECUTOR:
        from concurrent.futures import ThreadPoolExecutor

        _EXECUTOR.append(ThreadPoolExecutor(1, thread_name_prefix="skimplicit-compile"))
    return _EXECUTOR[0]


def _struct(a):
    return jax.ShapeDtypeStruct(np.shape(a), np.dtype(getattr(a, "dtype", np.result_type(a))))


def _signature(args, kwargs):
    """Hashable shapes, dtypes and tree structure of ``args`` (pytrees), and the static
    ``kwargs``."""
    leaves, tree = jax.tree_util.tree_flatten(args)
    return (str(tree), tuple((np.shape(a), _struct(a).dtype.str) for a in leaves),
            tuple(sorted(kwargs.items())))


class Kernel:
    """A jitted kernel that compiles fast on CPU and can compile ahead, in the background.

    * Calls go through ``jax.jit(fun, compiler_options=_FAST_COMPILE)`` on CPU (plain
      ``jax.jit`` elsewhere, or when this XLA rejects the options).
    * :meth:`prefetch` traces and lowers for given shapes, then compiles in a background
      thread; a later call with those shapes uses that executable. The tuners call it
      before their coarse path (host work, one BLAS thread) runs, so that the first
      hypergradient does not wait for XLA: on 2 cores its compilation is hidden.
    """

    def __init__(self, fun, static_argnames=()):
        self.__wrapped__ = fun
        self.__doc__ = fun.__doc__
        self._plain = jax.jit(fun, static_argnames=static_argnames)
        self._fast = jax.jit(fun, static_argnames=static_argnames,
                             compiler_options=_FAST_COMPILE)
        self._use_fast = True
        self._ahead = {}

    def _jitted(self):
        return self._fast if self._use_fast and jax.default_backend() == "cpu" else self._plain

    def _with_fallback(self, action):
        """``action(jitted)``; again with the plain jit when this XLA rejects the options."""
        try:
            return action(self._jitted())
        except Exception as exc:
            if not (self._use_fast and "compile option" in str(exc)):
                raise
            self._use_fast = False
            return action(self._plain)

    def __call__(self, *args, **kwargs):
        future = self._ahead.get(_signature(args, kwargs)) if self._ahead else None
        if future is not None:
            try:
                return future.result()(*args)
            except Exception:  # noqa: BLE001 - compile again below, errors surface there
                pass
        return self._with_fallback(lambda jitted: jitted(*args, **kwargs))

    def prefetch(self, *args, **kwargs):
        """Trace and lower for the shapes and dtypes of ``args`` (arrays or
        ``ShapeDtypeStruct``s, with the caller's x64 setting), compile in a background
        thread. Returns once the compilation is submitted."""
        key = _signature(args, kwargs)
        if key in self._ahead or len(self._ahead) >= 32:
            return
        for k, fut in list(self._ahead.items()):  # only the latest request waits its turn
            if fut.cancel():
                del self._ahead[k]
        structs = jax.tree_util.tree_map(_struct, args)
        # Tracing and lowering are Python: here (a thread holding the GIL would slow the
        # caller's Python as much); XLA's compilation releases it: in the background.
        lowered = self._with_fallback(lambda jitted: jitted.lower(*structs, **kwargs))
        self._ahead[key] = _executor().submit(lowered.compile)

    def _cache_size(self):
        """Compilations so far (calls and prefetches)."""
        return self._fast._cache_size() + self._plain._cache_size() + len(self._ahead)


enet_support_hypergrad = Kernel(_enet_support_hypergrad, static_argnames=("solve",))


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


def _ridge_hypergrad(X, y, Xt, yt, swt, alpha):
    """Ridge per fold: validation MSE, its gradient w.r.t. ``alpha (K, p)``, the solution.

    ``X (K, n, p)`` centered and sqrt-weight-scaled training data (zero padded rows),
    ``y (K, n)`` or ``(K, n, t)``, ``Xt (K, m, p)``, ``yt``, ``swt (K, m)``.
    """
    return jax.vmap(_ridge_one_fold)(X, y, Xt, yt, swt, alpha)


ridge_hypergrad = Kernel(_ridge_hypergrad)


def as_numpy(*arrays):
    return tuple(np.asarray(a) for a in arrays)
