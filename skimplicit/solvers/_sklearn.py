r"""scikit-learn's compiled coordinate descent as a black-box inner solver.

The paper's point: implicit differentiation needs only the solution, so any solver will do.
:class:`SklearnCD` runs ``sklearn.linear_model.ElasticNet`` (Cython coordinate descent with
gap-safe screening) on the host through :func:`jax.pure_callback`, warm-started from
``init``, with samples of weight 0 removed (exact). The result is then certified in JAX:
``info.stop_crit`` is the same duality gap as the JAX solvers report, computed at the
returned point. Under :func:`jax.vmap` the callback runs sequentially, one problem at a
time; under :func:`~skimplicit.implicit.custom_root` JAX differentiates the optimality
conditions, never the callback.

Least squares only (``Quadratic`` with ``L1`` or ``ElasticNet``), on the CPU host.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._base import SolverInfo
from ._cd import _grads, stop_criterion, stop_threshold

__all__ = ["SklearnCD", "sklearn_kernel"]


@dataclass(frozen=True)
class SklearnCD:
    """scikit-learn's ``ElasticNet`` coordinate descent through :func:`jax.pure_callback`.

    ``max_iter`` counts scikit-learn's epochs (default 1000, as in scikit-learn); ``tol`` has
    scikit-learn's meaning (which is also that of the JAX solvers here).
    """

    default_max_iter = 1000


def _host_fit(X, y, sw, l1, l2, w0, tol, max_iter, fit_intercept):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import ElasticNet

    X = np.asarray(X)
    y = np.asarray(y)
    sw = np.asarray(sw)
    l1 = float(l1)
    l2 = float(l2)
    alpha = l1 + l2
    est = ElasticNet(alpha=alpha, l1_ratio=l1 / alpha if alpha > 0 else 1.0,
                     fit_intercept=bool(fit_intercept), tol=float(tol),
                     max_iter=int(max_iter), warm_start=True)
    est.coef_ = np.array(w0, dtype=X.dtype)
    if np.all(sw == 1):
        Xk, yk, swk = X, y, None
    else:
        keep = sw > 0
        Xk, yk, swk = X[keep], y[keep], sw[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xk, yk, sample_weight=swk)
    return (np.asarray(est.coef_, X.dtype), np.asarray(est.intercept_, X.dtype),
            np.asarray(est.n_iter_, np.int32))


def sklearn_kernel(X, Y, sw, l1, l2, W0, b0, tol, max_iter, *, datafit, fit_intercept):
    """Black-box least squares; arguments and returns as :func:`~._cd.cd_kernel`."""
    del b0
    if not datafit.is_quadratic:
        raise TypeError("SklearnCD solves least squares (Quadratic) only.")
    n, p = X.shape
    dtype = X.dtype
    w0 = W0[:, 0]
    shapes = (jax.ShapeDtypeStruct((p,), dtype), jax.ShapeDtypeStruct((), dtype),
              jax.ShapeDtypeStruct((), jnp.int32))
    coef, b, n_iter = jax.pure_callback(
        lambda *a: _host_fit(*a, fit_intercept), shapes, X, Y[:, 0], sw,
        jnp.asarray(l1, dtype), jnp.asarray(l2, dtype), w0, jnp.asarray(tol, dtype),
        max_iter, vmap_method="sequential")
    W = coef[:, None]
    b = b[None] if fit_intercept else jnp.zeros((1,), dtype)
    v = datafit.sample_scale(sw)
    Z = X @ W + b
    GW, Gb = _grads(X, Y, v, Z, datafit)
    crit = stop_criterion(Y, v, sw, W, Z, GW, Gb, jnp.asarray(l1, dtype),
                          jnp.asarray(l2, dtype), datafit, fit_intercept)
    thr = stop_threshold(Y, v, tol, datafit, fit_intercept)
    # scikit-learn's own test is gap <= tol ||y||^2 on its rescaled data: the same number up
    # to rounding, so allow a relative slack of 1e-6 when certifying it here.
    converged = (crit <= thr * (1 + 1e-6)) & jnp.isfinite(crit)
    info = SolverInfo(n_iter, 0, converged, crit, thr, False)
    return W, b, info
