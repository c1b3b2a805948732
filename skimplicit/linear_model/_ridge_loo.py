"""Exact leave-one-out error of ridge regression and its hypergradient (``RidgeCV(cv=None)``).

For the ridge fit on all the data (centered, weights folded in as ``sqrt(sw)`` row
scaling, an unpenalized intercept), the leave-one-out residual of sample ``i`` is
``e_i / (1 - h_ii)``: ``e`` the residual of the fit on all the data and ``h_ii`` the
diagonal of its hat matrix (intercept included, ``sw_i / sum(sw)``), exactly as
scikit-learn's ``RidgeCV`` computes it. With one alpha, one SVD of the scaled design
``X_c = U S V^T`` serves every alpha: ``H = U diag(s^2 / (s^2 + alpha)) U^T``; with one alpha
per feature, a Cholesky factorization of the smaller Gram matrix per evaluation. The
hypergradient is the derivative of that closed form, differentiated by JAX (exact, no
inner solver to converge).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..tuning import CVProblem, to_device
from ..tuning._protocol import Evaluation, Hyperparameter
from ..tuning._kernel import Kernel

__all__ = ["RidgeLOOProblem", "loo_ridge_svd", "loo_ridge_gram"]

# What the loss of the leave-one-out residuals is (``RidgeCV``'s ``scoring``):
# "weighted": scikit-learn's default (scoring=None), the mean of the squared residuals in
# the sqrt-weight-scaled space (sw_i e_i^2); "mse": the plain mean squared error
# (neg_mean_squared_error); "r2": 1 - R^2 averaged over targets; "rmse": the root mean
# squared error averaged over targets.
KINDS = ("weighted", "mse", "r2", "rmse")


def _loss_of(looe, inv_sqrt_sw, y_var, kind):
    """(loss, per-sample losses) of the scaled leave-one-out residuals ``looe (n, t)``."""
    if kind == "weighted":
        per = jnp.mean(looe * looe, axis=1)
        return jnp.mean(per), per
    e = looe * inv_sqrt_sw[:, None]
    sq = e * e
    per = jnp.mean(sq, axis=1)
    mse_t = jnp.mean(sq, axis=0)
    if kind == "mse":
        return jnp.mean(per), per
    if kind == "r2":
        return jnp.mean(mse_t / y_var), per
    return jnp.mean(jnp.sqrt(mse_t)), per  # rmse


def _loo_svd(log_alpha, U, s2, UTy, r_perp, q, lev0, inv_sqrt_sw, y_var, kind):
    def fun(la):
        alpha = jnp.exp(la)
        shrink = alpha / (s2 + alpha)  # 1 - s^2 / (s^2 + alpha)
        r = r_perp + U @ (shrink[:, None] * UTy)  # (I - H) y, H on the range of X
        d = q + (U * U) @ shrink - lev0  # diag(I - H)
        looe = r / d[:, None]
        loss, per = _loss_of(looe, inv_sqrt_sw, y_var, kind)
        return loss, (per, looe)

    (loss, (per, looe)), g = jax.value_and_grad(fun, has_aux=True)(log_alpha)
    return loss, g, per, looe


def _loo_gram(log_alpha, X, y, lev0, inv_sqrt_sw, y_var, kind):
    n, p = X.shape

    def fun(la):
        alpha = jnp.exp(la)
        if p <= n:
            fac = jax.scipy.linalg.cho_factor(X.T @ X + jnp.diag(alpha), lower=True)
            B = jax.scipy.linalg.cho_solve(fac, X.T)  # (p, n)
            w = B @ y
            r = y - X @ w
            d = 1.0 - jnp.sum(X * B.T, axis=1) - lev0
        else:  # I - H_X = (I + X D^-1 X^T)^-1 (push-through)
            Xd = X / alpha
            fac = jax.scipy.linalg.cho_factor(Xd @ X.T + jnp.eye(n, dtype=X.dtype), lower=True)
            Kinv = jax.scipy.linalg.cho_solve(fac, jnp.eye(n, dtype=X.dtype))
            r = Kinv @ y
            w = Xd.T @ r
            d = jnp.diag(Kinv) - lev0
        looe = r / d[:, None]
        loss, per = _loss_of(looe, inv_sqrt_sw, y_var, kind)
        return loss, (per, looe, w)

    (loss, (per, looe, w)), g = jax.value_and_grad(fun, has_aux=True)(log_alpha)
    return loss, g, per, looe, w


loo_ridge_svd = Kernel(_loo_svd, static_argnames=("kind",))
loo_ridge_gram = Kernel(_loo_gram, static_argnames=("kind",))


class RidgeLOOProblem(CVProblem):
    """Exact leave-one-out loss of scikit-learn's ``Ridge`` objective on all the data.

    ``||sqrt(sw) (y - X w - b)||^2 + sum_j alpha_j w_j^2``; the loss is a function of the
    leave-one-out residuals (``kind``, see ``KINDS``), its gradient with respect to
    ``log alpha`` exact (JAX). ``fold_losses`` are the per-sample losses (one "fold" per
    sample); ``info["looe"]`` the scaled leave-one-out residuals ``(n, n_targets)``.
    The interface of :class:`~skimplicit.linear_model._cv_problems.RidgeCVProblem`
    (``fold_hypergrad``, ``cover_alphas``, ``data_scale``) lets
    :class:`~skimplicit.linear_model._cv_problems.AdaptiveRidgeCVProblem` wrap it (one
    "fold": the whole data). The loss is not the mean of the per-sample losses for every
    ``kind`` (``r2``, ``rmse``): its :class:`~skimplicit.tuning.Evaluation` is built here.
    """

    cover_with_grad = True
    COVER_PER_DECADE = 2
    COVER_MAX = 41

    def __init__(self, X, y, sample_weight, *, fit_intercept=True, alpha_per_feature=False,
                 bounds=None, starts=None, kind="weighted"):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}.")
        X = X.toarray() if sp.issparse(X) else np.asarray(X, float)
        y = np.asarray(y, float)
        self.multi = y.ndim == 2
        y2 = y if self.multi else y[:, None]
        sw = np.asarray(sample_weight, float)
        self.n_samples, self.n_features = X.shape
        if fit_intercept:
            self.x_mean = sw @ X / sw.sum()
            self.y_mean = sw @ y2 / sw.sum()
        else:
            self.x_mean = np.zeros(self.n_features)
            self.y_mean = np.zeros(y2.shape[1])
        self.sqrt_sw = np.sqrt(sw)
        self.Xc = (X - self.x_mean) * self.sqrt_sw[:, None]
        self.yc = (y2 - self.y_mean) * self.sqrt_sw[:, None]
        self.y2 = y2
        self.lev0 = sw / sw.sum() if fit_intercept else np.zeros_like(sw)
        self.inv_sqrt_sw = np.where(self.sqrt_sw > 0, 1.0 / np.maximum(self.sqrt_sw, 1e-300), 0.0)
        yv = np.var(y2, axis=0)  # R^2's denominator per target (unweighted, as the scorer)
        self.y_var = np.where(yv > 0, yv, 1.0)
        self.kind = kind
        self.alpha_per_feature = alpha_per_feature
        self.folds = [None]  # one "fold" for AdaptiveRidgeCVProblem
        self.fit_intercept = fit_intercept
        # The data's own unit of alpha (RidgeCVProblem.gram_scale on all the data).
        scale = np.sum(self.Xc ** 2) / max(self.n_features, 1)
        self.data_scale = float(scale) if np.isfinite(scale) and scale > 0 else 1.0
        if bounds is None:
            bounds = (1e-6 * self.data_scale, 1e6 * self.data_scale)
        size = self.n_features if alpha_per_feature else None
        self.hyperparameters = [Hyperparameter("alpha", bounds[0], bounds[1], "log", size)]
        self.starts = None if starts is None else np.sort(np.asarray(starts, float))[::-1]
        if not alpha_per_feature:  # one SVD for every alpha
            U, s, _ = np.linalg.svd(self.Xc, full_matrices=False)
            tiny = s > s.max(initial=0.0) * max(self.Xc.shape) * np.finfo(float).eps
            U, s = U[:, tiny], s[tiny]
            self.U, self.s2 = U, s * s
            self.UTy = U.T @ self.yc
            self.r_perp = self.yc - U @ self.UTy
            self.q = np.clip(1.0 - np.sum(U * U, axis=1), 0.0, None)

    # -- the outer loop's protocol -------------------------------------------------------
    def cover_alphas(self):
        """The user's alphas, else the interval log-spaced (``COVER_PER_DECADE`` a decade),
        strong to weak."""
        hp = self.hyperparameters[0]
        lo, hi = float(np.min(hp.lower)), float(np.max(hp.upper))
        if self.starts is not None:
            return np.clip(self.starts, lo, hi)
        n = int(np.clip(np.ceil(np.log10(hi / lo) * self.COVER_PER_DECADE) + 1, 2,
                        self.COVER_MAX))
        return np.clip(np.geomspace(hi, lo, n), lo, hi)

    def initial_points(self):
        return [{"alpha": float(a) if not self.alpha_per_feature
                 else np.full(self.n_features, a)} for a in self.cover_alphas()]

    def bound_hint(self, name, side):
        return "the estimator parameter `alphas` (or `bounds`)"

    _SVD_ARRAYS = ("U", "s2", "UTy", "r_perp", "q", "lev0", "inv_sqrt_sw", "y_var")
    _GRAM_ARRAYS = ("Xc", "yc", "lev0", "inv_sqrt_sw", "y_var")
    _device = None

    def to_device(self, dtype):
        """Move the kernels' arrays to JAX's default device once, in ``dtype`` (the
        estimators' ``backend="jax"``)."""
        names = set(self._GRAM_ARRAYS) | (set() if self.alpha_per_feature
                                           else set(self._SVD_ARRAYS))
        with jax.enable_x64(True):
            self._device = {n: to_device(getattr(self, n), dtype) for n in names}
        self._device_dtype = np.dtype(dtype)

    def _args(self, names, log_alpha):
        if self._device is None:
            return (log_alpha, *(getattr(self, n) for n in names))
        return (np.asarray(log_alpha, self._device_dtype), *(self._device[n] for n in names))

    def _kernel(self, alpha):
        with jax.enable_x64(True):
            if np.ndim(alpha) == 0 and not self.alpha_per_feature:
                loss, g, per, looe = loo_ridge_svd(
                    *self._args(self._SVD_ARRAYS, np.log(float(alpha))), kind=self.kind)
                return float(loss), float(g), np.asarray(per), np.asarray(looe), None
        return self._kernel_vec(np.broadcast_to(np.asarray(alpha, float), (self.n_features,)))

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision, with_grad  # exact; the gradient comes at no extra cost
        alpha = params["alpha"]
        loss, g_log, per, looe, _ = self._kernel(alpha)
        grad = np.asarray(g_log) / np.asarray(alpha, float)  # d loss / d alpha
        ok = bool(np.isfinite(loss) and np.all(np.isfinite(grad)))
        return Evaluation(loss=loss, grad={"alpha": grad if self.alpha_per_feature
                                           else float(grad)},
                          fold_losses=per, converged=ok, info={"looe": looe})

    def fold_hypergrad(self, alpha):
        """As :meth:`RidgeCVProblem.fold_hypergrad`, one "fold" (all the data): loss
        ``(1,)``, gradient w.r.t. ``alpha (1, p)``, solution ``(1, p, n_targets)``."""
        a = np.asarray(alpha, float)
        a = np.broadcast_to(a.reshape(-1, self.n_features)[0] if a.ndim else a,
                            (self.n_features,))
        loss, g_log, _, _, w = self._kernel_vec(a)
        return (np.array([loss]), (g_log / a)[None], w[None], np.array([True]),
                np.zeros(1))

    def _kernel_vec(self, a):
        with jax.enable_x64(True):
            loss, g, per, looe, w = loo_ridge_gram(*self._args(self._GRAM_ARRAYS, np.log(a)),
                                                   kind=self.kind)
        return float(loss), np.asarray(g), np.asarray(per), np.asarray(looe), np.asarray(w)

    # -- what the estimator reads ---------------------------------------------------------
    def predictions(self, looe):
        """Leave-one-out predictions in the data's units from scaled residuals ``looe``."""
        pred = self.y2 - looe * self.inv_sqrt_sw[:, None]
        return pred if self.multi else pred[:, 0]

    def squared_errors(self, looe):
        """scikit-learn's ``cv_results_`` without a scorer: the squared scaled residuals."""
        sq = looe * looe
        return sq if self.multi else sq[:, 0]
