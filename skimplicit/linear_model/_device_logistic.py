r"""``ImplicitLogisticRegressionCV``'s tunable problem on a JAX device (``backend="jax"``).

The same objective, search space (bounds of ``C`` from the folds' own scales, coarse
cover, growth of the automatic upper bound: :class:`~._logistic_problem.
LogisticSearchSpace`) and hypergradient units as the host problem
(:class:`~._logistic_problem.LogisticCVProblem`); the inner solves on the device. The
folds are stacked, zero-padded to the longest one (padded rows of weight 0, exact) and
moved to the device once per fit, in float32 or float64. Each evaluation is one compiled
program over all K folds (vmapped):

1. the inner solve, warm-started from the nearest evaluated point: Newton-CG
   (:func:`~skimplicit.solvers._newton.newton_kernel`) for the l2 penalty; FISTA
   (:func:`~skimplicit.solvers._fista.fista_kernel`) for l1 / elastic net, then a
   Newton polish on its support with its signs fixed (the stationarity of the smooth
   problem ``f(W, b) + l1 s^T W + l2/2 ||W||^2`` on the support, Hessian-vector products
   by ``jax.jvp`` of the gradient), kept where the signs agree and the optimality
   violation is smaller (then exact to rounding, as the host path's certified polish);
2. the validation loss and its hypergradient: the host path's kernel function
   (:func:`~._logistic_problem.logistic_hypergrad`: implicit differentiation of the
   stationarity restricted to the support, conjugate gradient warm-started from the
   previous outer step's solution), traced into the same program, then ``d loss / d C
   = -alpha^2 d loss / d alpha`` (``alpha = 1 / C``), as the host problem reports it.

A fold whose linear system fails its residual check is solved again with a ridge and a
``LinearSolveWarning`` (:func:`~skimplicit.tuning._kernel.solve_with_fallback`).

Accuracy in float32: the inner tolerance is floored at 1e-5 (largest optimality
violation of the mean loss), the l1 polish runs to 10 eps and the linear system to 1e-5
relative residual (accepted up to 1e-3). Measured on the standardized breast-cancer data
(5 folds): l1 validation losses within 1e-6 to 1e-5 relative of float64's and
hypergradients within 1e-5 to 5e-5 where the polish is accepted; at larger ``C`` a fold
whose float32 polish is rejected keeps FISTA's solution (losses 1e-4, hypergradients
several % off). The tuned ``C``: 8e-5 (l2) and 1.2 % (l1) in log scale from float64's,
CV losses within 5e-5 relative.

Not on the device (the estimator falls back to the host problem with a
``UserWarning``): ``C_per_class=True``, and sparse folds too large to densify.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..implicit.linear_solve import _cg_loop, default_tol
from ..solvers._cd import _grads, stop_criterion
from ..solvers._datafits import Logistic
from ..solvers._fista import fista_kernel
from ..solvers._host_logistic import host_matrix, one_hot
from ..solvers._newton import newton_kernel
from ..tuning import CVProblem, WarmStarts, to_device
from ..tuning._kernel import Kernel, solve_with_fallback
from ..tuning._device import pad_rows
from ..tuning._progress import check_time
from ._logistic_problem import (_ACCEPT_RESIDUAL, _MAX_DENSE_ENTRIES, LogisticSearchSpace,
                                _logistic_hypergrad, _validation_loss)

__all__ = ["DeviceLogisticProblem", "device_unsupported"]

_DATAFIT = Logistic()


def device_unsupported(folds, C_per_class=False):
    """Why the device path cannot take these folds and settings (a sentence), or None."""
    if C_per_class:
        return "C_per_class=True (one penalty per class) is not implemented on the JAX path"
    X0 = folds[0].X_train
    if sp.issparse(X0):
        F = len(folds)
        n = max(f.X_train.shape[0] for f in folds) + max(f.X_test.shape[0] for f in folds)
        if F * n * X0.shape[1] > _MAX_DENSE_ENTRIES:
            return ("sparse folds too large to densify on the device (the JAX path holds "
                    "dense folds)")
    return None


def _polish(X, Y, sw, l1, l2, W, b, tol, *, fit_intercept, max_steps=8):
    """Newton on the support of ``W`` with its signs fixed (one fold; module docstring).

    The smooth objective ``sum_i s_i l(x_i W + b) + l1 sgn^T W + l2/2 ||W||^2`` over the
    support's coefficients (and ``b``); each step's system by conjugate gradient with
    Hessian-vector products from ``jax.jvp`` of the gradient, the step halved until the
    objective decreases. Stops when the largest gradient entry of the mean loss is below
    ``tol``. Returns the polished ``(W, b)``.
    """
    mask = (W != 0).astype(W.dtype)
    sgn = jnp.sign(W)
    p, K = W.shape
    size = p * K
    vsum = jnp.sum(sw)

    def split(theta):
        return theta[:size].reshape(p, K), theta[size:]

    def scores(theta):
        Wt, bt = split(theta)
        Z = X @ (mask * Wt)
        return Z + bt if fit_intercept else Z

    def objective(theta):
        Wt, _ = split(theta)
        Wm = mask * Wt
        return (_DATAFIT.loss(scores(theta), Y, sw) + jnp.sum(l1 * sgn * Wm)
                + 0.5 * l2 * jnp.sum(Wm * Wm))

    def gradient(theta):
        Wt, _ = split(theta)
        GW, Gb = _grads(X, Y, sw, scores(theta), _DATAFIT)
        gW = mask * (GW + l1 * sgn + l2 * (mask * Wt))
        gb = Gb if fit_intercept else jnp.zeros_like(Gb)
        return jnp.concatenate([gW.ravel(), gb])

    def body(state):
        theta, k, _ = state
        g = gradient(theta)

        def hvp(v):
            return jax.jvp(gradient, (theta,), (v,))[1]

        cg_tol = 1e-3 * default_tol(theta.dtype) ** 0.5
        d, _ = _cg_loop(hvp, -g, jnp.zeros_like(g), cg_tol, 4 * size + 100)
        F0, slope = objective(theta), jnp.dot(g, d)
        noise = 64 * jnp.finfo(theta.dtype).eps * jnp.abs(F0)

        def ls_cond(ts):
            t, j = ts
            Ft = objective(theta + t * d)
            ok = (Ft <= F0 + 1e-4 * t * slope) | ((j == 0) & (Ft <= F0 + noise))
            return (j < 30) & ~ok

        t, _ = jax.lax.while_loop(ls_cond, lambda ts: (0.5 * ts[0], ts[1] + 1),
                                  (jnp.ones((), theta.dtype), 0))
        theta = theta + t * d
        crit = jnp.max(jnp.abs(gradient(theta))) / vsum
        return theta, k + 1, crit

    def cond(state):
        _, k, crit = state
        return (k < max_steps) & (crit > tol) & jnp.isfinite(crit)

    theta0 = jnp.concatenate([W.ravel(), b])
    crit0 = jnp.max(jnp.abs(gradient(theta0))) / vsum
    theta, _, _ = jax.lax.while_loop(cond, body, (theta0, 0, crit0))
    Wp, bp = split(theta)
    return mask * Wp, bp


def _inner(X, Y, sw, alpha, rho, W0, b0, tol, max_iter, *, smooth, fit_intercept):
    """All folds' inner solutions ``(W, b, n_iter, converged, exact)`` (module docstring);
    ``alpha``, ``rho`` ``(F,)``."""
    l1, l2 = alpha * rho, alpha * (1 - rho)
    kw = dict(datafit=_DATAFIT, fit_intercept=fit_intercept)
    if smooth:
        solve = jax.vmap(partial(newton_kernel, **kw),
                         in_axes=(0, 0, 0, 0, 0, 0, 0, None, None))
        W, b, info = solve(X, Y, sw, l1, l2, W0, b0, tol, max_iter)
        return W, b, info.n_iter, info.converged, info.converged
    solve = jax.vmap(partial(fista_kernel, **kw), in_axes=(0, 0, 0, 0, 0, 0, 0, None, None))
    W, b, info = solve(X, Y, sw, l1, l2, W0, b0, tol, max_iter)
    # The polish, to near rounding: where the support and signs are right, the exact
    # solution (the hypergradient's error is otherwise linear in the inner tolerance).
    # (float32: to 10 eps; at 1e3 eps = 1.2e-4 validation losses were 8e-4 relative off
    # float64's on the breast-cancer data)
    eps = float(jnp.finfo(W.dtype).eps)
    polish = jax.vmap(partial(_polish, fit_intercept=fit_intercept),
                      in_axes=(0, 0, 0, 0, 0, 0, 0, None))
    Wp, bp = polish(X, Y, sw, l1, l2, W, b, (10 if W.dtype == jnp.float32 else 1e3) * eps)

    def crit(W_, b_):
        Z = jnp.einsum("fnp,fpk->fnk", X, W_)
        if fit_intercept:
            Z = Z + b_[:, None]
        GW, Gb = jax.vmap(partial(_grads, datafit=_DATAFIT))(X, Y, sw, Z)
        return jax.vmap(partial(stop_criterion, datafit=_DATAFIT,
                                fit_intercept=fit_intercept))(Y, sw, sw, W_, Z, GW, Gb, l1, l2)

    c0, cp = crit(W, b), crit(Wp, bp)
    signs = jnp.all((W == 0) | (jnp.sign(Wp) == jnp.sign(W)), axis=(1, 2))
    ok = signs & jnp.isfinite(cp) & ((cp <= c0) | (cp <= tol))
    W = jnp.where(ok[:, None, None], Wp, W)
    b = jnp.where(ok[:, None], bp, b)
    converged = info.converged | (ok & (cp <= tol))
    return W, b, info.n_iter, converged, ok


def _device_loss_fn(X, Y, sw, Xt, Yt, swt, alpha, rho, W0, b0, tol, max_iter, *, binary,
                 fit_intercept, smooth, loss):
    """All folds' inner solves and validation losses (no hypergradient)."""
    W, b, n_iter, conv, exact = _inner(X, Y, sw, alpha, rho, W0, b0, tol, max_iter,
                                       smooth=smooth, fit_intercept=fit_intercept)
    val = jax.vmap(partial(_validation_loss, binary=binary, fit_intercept=fit_intercept,
                           loss=loss))((W, b), Xt, Yt, swt)
    return W, b, n_iter, conv, exact, val


def _device_eval_fn(X, Y, sw, Xt, Yt, swt, alpha, rho, W0, b0, tol, max_iter, uW, ub, ridge,
                 *, binary, fit_intercept, smooth, loss, solve_tol):
    """All folds' inner solves, validation losses and hypergradients in ``alpha`` and
    ``rho`` (``(F, K)`` and ``(F,)``), the system's solutions ``(uW, ub)`` (the next warm
    start), its success and residual last (for :func:`solve_with_fallback`)."""
    W, b, n_iter, conv, exact = _inner(X, Y, sw, alpha, rho, W0, b0, tol, max_iter,
                                       smooth=smooth, fit_intercept=fit_intercept)
    K = Y.shape[-1]
    ridge = ridge.astype(X.dtype)
    val, d_alpha, d_rho, uW, ub, success, res = _logistic_hypergrad(
        X, Y, sw, Xt, Yt, swt, W, b, jnp.broadcast_to(alpha[:, None], (alpha.shape[0], K)),
        rho, uW, ub, ridge, binary=binary, fit_intercept=fit_intercept, solve="cg",
        loss=loss, solve_tol=solve_tol)
    return W, b, n_iter, conv, exact, val, d_alpha, d_rho, uW, ub, success, res


# Compiled fast on CPU (XLA options of :class:`~skimplicit.tuning._kernel.Kernel`), the
# hypergradient's program ahead, in the background, while the coarse cover runs.
_device_loss = Kernel(_device_loss_fn, static_argnames=("binary", "fit_intercept", "smooth",
                                                        "loss"))
_device_eval = Kernel(_device_eval_fn, static_argnames=("binary", "fit_intercept", "smooth",
                                                        "loss", "solve_tol"))


class DeviceLogisticProblem(LogisticSearchSpace, CVProblem):
    """:class:`~._logistic_problem.LogisticCVProblem` on a JAX device.

    The same objective, search space, cover and hypergradient units; warm starts from the
    nearest evaluated point; all folds' inner solves and hypergradients in one compiled
    program per evaluation (module docstring). ``dtype``: float32 or float64 on the
    device. ``max_iter``: the estimator's (Newton steps for l2; FISTA, for l1 / elastic
    net, runs up to 20 x as many iterations). ``C_per_class`` is not supported (see
    :func:`device_unsupported`: ``NotImplementedError``).
    """

    warm_state = ("_solutions", "_u", "_W", "_b")

    def __init__(self, folds, *, n_classes, fit_intercept=True, l1_ratio=0.0,
                 tune_l1_ratio=False, C_per_class=False, tol=1e-4, max_iter=1000,
                 bounds=None, l1_ratio_bounds=(0.05, 1.0), path_step=10 ** 0.5,
                 max_path=25, loss="log_loss", dtype=np.float64):
        reason = device_unsupported(folds, C_per_class)
        if reason is not None:
            raise NotImplementedError(reason)
        self.n_folds = len(folds)
        self.dtype = np.dtype(dtype)
        # The search space from the host arrays (the same bounds as the host problem),
        # then the folds stacked and moved to the device once.
        Ys = [one_hot(f.y_train, int(n_classes)) for f in folds]
        sws = [np.asarray(f.sw_train, float) for f in folds]
        Xs = [host_matrix(f.X_train) for f in folds]
        self._set_space(list(zip(Xs, Ys, sws)), n_classes=n_classes,
                        fit_intercept=fit_intercept, l1_ratio=l1_ratio,
                        tune_l1_ratio=tune_l1_ratio, C_per_class=C_per_class, tol=tol,
                        max_iter=max_iter, bounds=bounds, l1_ratio_bounds=l1_ratio_bounds,
                        path_step=path_step, max_path=max_path, loss=loss)
        self.n_features = Xs[0].shape[1]
        n = max(X.shape[0] for X in Xs)
        m = max(f.X_test.shape[0] for f in folds)
        dt = self.dtype
        with jax.enable_x64(True):
            def stack(arrays, rows):
                return jnp.stack([pad_rows(to_device(a, dt), rows) for a in arrays])
            self._X = stack(Xs, n)
            self._Y = stack(Ys, n)
            self._sw = stack(sws, n)
            self._Xt = stack([f.X_test for f in folds], m)
            self._Yt = stack([one_hot(f.y_test, self.n_classes) for f in folds], m)
            self._swt = stack([np.asarray(f.sw_test, float) for f in folds], m)
            # Cold starts: zero coefficients, the intercept at the log-odds.
            self._b_cold = (jax.vmap(_DATAFIT.intercept0)(self._Y, self._sw)
                            if fit_intercept else jnp.zeros((self.n_folds, self.K), dt))
        self._solutions = WarmStarts()
        self._u = None
        self._W = [None] * self.n_folds
        self._b = [None] * self.n_folds
        self._path_losses = []
        self._prefetch()

    def _smooth(self, rho):
        return rho == 0.0 and not self.tune_l1_ratio

    def _static(self, smooth, with_grad):
        kw = dict(binary=self.binary, fit_intercept=self.fit_intercept, smooth=smooth,
                  loss=self.loss)
        if with_grad:
            # float32: a relative residual of 1e-5 (1e-12 is below its rounding).
            kw["solve_tol"] = default_tol(self.dtype) if self.dtype == np.float32 else 1e-12
        return kw

    def _prefetch(self):
        """The hypergradient's program has one signature per fit, known now: compiled in
        the background while the cover (the other program) runs."""
        F, p, K, dt = self.n_folds, self.n_features, self.K, self.dtype
        smooth = self._smooth(self.l1_ratio)

        def st(*shape, dtype=dt):
            return jax.ShapeDtypeStruct(shape, np.dtype(dtype))

        with jax.enable_x64(True), jax.default_matmul_precision("highest"):
            data = (self._X, self._Y, self._sw, self._Xt, self._Yt, self._swt)
            _device_eval.prefetch(*data, st(F), st(F), st(F, p, K), st(F, K), st(),
                                  st(dtype=np.int64), st(F, p, K), st(F, K),
                                  st(F, dtype=np.float64), **self._static(smooth, True))

    def _key(self, C, rho):
        return np.r_[np.log(np.ravel(C)), rho]

    def _run(self, C, rho, precision, with_grad):
        alpha = float(1.0 / np.ravel(np.asarray(C, float))[0])
        dt, F, p, K = self.dtype, self.n_folds, self.n_features, self.K
        f32 = dt == np.float32
        # The host's tolerances: path points at min(tol, 1e-6) * precision; exact
        # solutions for hypergradients (Newton: to near rounding; l1: the polish).
        tol = min(self.tol, 1e-6) * precision
        smooth = self._smooth(rho)
        if smooth:
            # Newton converges quadratically: a tighter tolerance costs a step or two.
            # Path points too (their values steer the line search): at 1e-6 the raw
            # gradient test left validation losses 2e-5 (4 % at C = 1e4 c_scale) off the
            # exact ones on 300 digits, where the host's standardized test is exact to 6e-7,
            # and the tuned C 3 % apart.
            tol = min(tol, 1e-12 if with_grad else 1e-10)
        # float32: an optimality violation below ~1e-5 of the mean loss is rounding.
        tol = max(tol, 1e-5) if f32 else tol
        max_iter = self.max_iter if smooth else 20 * self.max_iter
        start, _ = self._solutions.nearest(self._key(C, rho))
        kw = self._static(smooth, with_grad)
        with jax.enable_x64(True), jax.default_matmul_precision("highest"):
            W0, b0 = start if start is not None else (jnp.zeros((F, p, K), dt), self._b_cold)
            args = (self._X, self._Y, self._sw, self._Xt, self._Yt, self._swt,
                    jnp.full((F,), alpha, dt), jnp.full((F,), rho, dt), W0, b0,
                    jnp.asarray(tol, dt), max_iter)
            if not with_grad:
                return [np.asarray(o) for o in _device_loss(*args, **kw)], None
            u = self._u if self._u is not None else (jnp.zeros((F, p, K), dt),
                                                     jnp.zeros((F, K), dt))
            out = solve_with_fallback(
                _device_eval, args + tuple(u), kw, F, "linear system",
                max_residual=1e-3 if f32 else _ACCEPT_RESIDUAL)
            return out[:-1], out[-1]

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        C = params["C"]
        rho = float(params.get("l1_ratio", self.l1_ratio))
        check_time()
        out, ridge = self._run(C, rho, precision, with_grad)
        W, b, n_iter, conv, exact, val = out[:6]
        self._solutions.add(self._key(C, rho), (W, b))
        self._W = [W[f] for f in range(self.n_folds)]
        self._b = [b[f] for f in range(self.n_folds)]
        info = {"n_iter": np.asarray(n_iter).tolist(),
                "support_size": [int(np.count_nonzero(w)) for w in self._W],
                "exact": np.asarray(exact).tolist()}
        if not with_grad:
            self._path_losses.append(float(np.mean(val)))
            return self.evaluation(val, None, bool(np.all(conv)), **info)
        d_alpha, d_rho, uW, ub, ok, res = out[6:]
        self._u = (uW, ub)
        alpha = self._alpha(C)
        # d loss / d C_k = -alpha_k^2 d loss / d alpha_k (alpha = 1 / C), mean over folds.
        g_C = -np.asarray(d_alpha, float).mean(axis=0) * alpha ** 2
        grad = {"C": float(g_C.sum())}
        if self.tune_l1_ratio:
            grad["l1_ratio"] = float(np.mean(d_rho))
        info["linear_residual"] = float(np.max(res))
        info["ridge"] = ridge
        return self.evaluation(val, grad, bool(np.all(conv)) and bool(np.all(ok)), **info)
