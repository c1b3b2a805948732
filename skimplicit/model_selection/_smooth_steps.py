"""More scikit-learn final steps whose fitted model satisfies smooth optimality conditions.

* :class:`~sklearn.svm.LinearSVC` with ``loss="squared_hinge"``, ``penalty="l2"``
  (one-vs-rest) and :class:`~sklearn.svm.LinearSVR` with
  ``loss="squared_epsilon_insensitive"``: liblinear's primal objective
  ``1/2 ||w~||^2 + C sum_i s_i l_i(w~)`` where ``w~ = (w, b / intercept_scaling)`` (the
  intercept is penalized, as liblinear does) and ``l_i`` the squared hinge
  ``max(0, 1 - y_i x~_i.w~)^2`` or the squared epsilon-insensitive loss
  ``max(0, |y_i - x~_i.w~| - epsilon)^2``. The objective is piecewise quadratic and
  strictly convex: Newton's method on the active set (Keerthi & DeCoste 2005) reaches
  the exact minimizer in a few steps, and on the final active set the optimality
  condition ``(I + 2 C X_A^T S_A X_A) w = 2 C X_A^T S_A y~_A`` is smooth in ``C``:
  ``dw/dC = H^{-1} w / C``. The validation loss is the model's own: the squared hinge
  (summed over the one-vs-rest problems, averaged over the validation samples) for
  ``LinearSVC``, the mean squared error for ``LinearSVR``.
* :class:`~sklearn.linear_model.RidgeClassifier`: a ``Ridge`` on the ``{-1, 1}`` codes of
  the classes (one column per class, one for two classes), as scikit-learn fits it; the
  validation loss is the mean squared error on those codes (skimplicit's
  ``RidgeCVProblem``, exact).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ..linear_model._cv_problems import RidgeCVProblem
from ..solvers import dense
from ..solvers._host_smooth import (huber_fit, squared_svm_newton, tweedie_newton,
                                    tweedie_terms, weighted_kernel_ridge)
from ..tuning import CVProblem, Evaluation, Hyperparameter

__all__ = ["L2SVMCVProblem", "HuberCVProblem", "GLMCVProblem", "KernelRidgeCVProblem",
           "RidgeFoldGrads", "InverseC"]

def _classes(folds):
    return np.unique(np.concatenate([np.asarray(f.y_train) for f in folds]))


def _codes(y, classes):
    """``{-1, 1}`` codes, one column per class (one column, the second class, for two)."""
    y = np.asarray(y)
    if classes.size <= 2:
        return np.where(y == classes[-1], 1.0, -1.0)[:, None]
    return np.where(y[:, None] == classes[None, :], 1.0, -1.0)


class RidgeFoldGrads(RidgeCVProblem):
    """``RidgeCVProblem`` (one alpha) that also reports its per-fold gradients
    (``info["fold_grads"]``), for scorers followed through the chain rule (``r2``,
    RMSE)."""

    provides_fold_grads = True

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision, with_grad  # exact inner solve; the gradient comes at no extra cost
        loss_f, d_alpha, _, ok, res = self.fold_hypergrad(params["alpha"])
        fold_g = d_alpha.sum(axis=1)
        return CVProblem.evaluation(loss_f, {"alpha": float(fold_g.mean())}, ok.all(),
                                    linear_residual=float(res.max()),
                                    fold_grads={"alpha": fold_g})


def _augment(X, fit_intercept, intercept_scaling):
    X = dense(X)
    if fit_intercept:
        X = np.hstack([X, np.full((X.shape[0], 1), float(intercept_scaling))])
    return X


class _StepProblem(CVProblem):
    """A final step's problem: its bounds are the search's (``bounds`` of the
    hyperparameter), not an estimator parameter."""

    def bound_hint(self, name, side):
        return f"the bounds of {name!r}"


class L2SVMCVProblem(_StepProblem):
    """K-fold validation loss of liblinear's L2-regularized squared-loss SVMs, tuned in C.

    ``task="svc"``: ``LinearSVC(loss="squared_hinge")`` one-vs-rest, the validation loss
    the squared hinge summed over the binary problems; ``task="svr"``:
    ``LinearSVR(loss="squared_epsilon_insensitive")``, the validation MSE. Exact inner
    solves (active-set Newton, see the module docstring), dense features.
    """

    cover_with_grad = True  # exact solves: the gradient costs one more solve with H
    provides_fold_grads = True
    warm_state = ("_warm",)

    def __init__(self, folds, *, task="svc", epsilon=0.0, fit_intercept=True,
                 intercept_scaling=1.0, class_weight=None, bounds=None, n_cover=12):
        self.task, self.epsilon = task, float(epsilon)
        self.loss_name = "squared_hinge" if task == "svc" else "mse"
        self.folds = []
        classes = _classes(folds) if task == "svc" else None
        for f in folds:
            Xtr = _augment(f.X_train, fit_intercept, intercept_scaling)
            Xte = _augment(f.X_test, fit_intercept, intercept_scaling)
            if task == "svc":
                Ytr, Yte = _codes(f.y_train, classes), _codes(f.y_test, classes)
            else:
                Ytr = np.asarray(f.y_train, float).reshape(len(Xtr), -1)
                Yte = np.asarray(f.y_test, float).reshape(len(Xte), -1)
                if Ytr.shape[1] != 1:
                    raise ValueError("LinearSVR takes a 1-D y.")
            sw = np.asarray(f.sw_train, float)
            # One weight column per binary problem: liblinear's C per class (class_weight
            # as LinearSVC.fit computes it on the fold): every sample's class for two
            # classes; one-vs-rest, the positive class's only.
            S = np.repeat(sw[:, None], Ytr.shape[1], axis=1)
            if class_weight is not None and task == "svc":
                from sklearn.utils.class_weight import compute_class_weight

                present = np.unique(f.y_train)
                cw = compute_class_weight(class_weight, classes=present, y=f.y_train,
                                          sample_weight=sw)
                ytr = np.asarray(f.y_train)
                if classes.size == 2:
                    S *= cw[np.searchsorted(present, ytr)][:, None]
                else:
                    for j, c in enumerate(present):
                        S[:, np.searchsorted(classes, c)] *= np.where(ytr == c, cw[j], 1.0)
            self.folds.append((Xtr, Ytr, S, Xte, Yte, np.asarray(f.sw_test, float)))
        # The data's unit of C: at C = 1 / sum_i s_i ||x~_i||^2 the loss's curvature is
        # that of the penalty.
        mass = np.mean([np.sum(S.mean(axis=1) * np.sum(X * X, axis=1))
                        for X, _, S, *_ in self.folds])
        self.data_scale = 1.0 / mass if np.isfinite(mass) and mass > 0 else 1.0
        if bounds is None:
            bounds = (1e-3 * self.data_scale, 1e4 * self.data_scale)
        self.hyperparameters = [Hyperparameter("C", bounds[0], bounds[1], "log")]
        self.n_cover = n_cover
        self._warm = [None] * len(self.folds)
        # Per fold and column: the Gram matrix of the last active set (a cache: a new
        # list per copy, its entries never modified in place).
        self._grams = [[None] * Y.shape[1] for _, Y, *_ in self.folds]

    def __copy__(self):
        new = super().__copy__()
        new._grams = [list(g) for g in self._grams]
        return new

    def initial_points(self):
        hp = self.hyperparameters[0]
        return [{"C": float(c)} for c in np.geomspace(hp.lower, hp.upper, self.n_cover)]

    def _solve(self, X, y, s, C, w0, state=None):
        """``(w, cho_factor of H at the final active set, info, state)`` by active-set
        Newton (:func:`~skimplicit.solvers._host_smooth.squared_svm_newton`), ``state``
        the final active set's Gram matrix, to start the next solve of this fold from."""
        loss = "squared_hinge" if self.task == "svc" else "squared_epsilon_insensitive"
        return squared_svm_newton(X, y, C, sample_weight=s, loss=loss, epsilon=self.epsilon,
                                  init=w0, gram=state)

    def _val(self, Xte, y, t, w):
        """Validation loss of one binary problem / regression and its gradient in w."""
        r = y - Xte @ w
        if self.task == "svc":
            r = np.where(y * r > 0, r, 0.0)
        T = np.sum(t)
        return float(np.sum(t * r * r) / T), -2.0 * (Xte.T @ (t * r)) / T

    def fold_solution(self, k, C):
        """The coefficients (n_features [+ 1], n_columns) of fold ``k`` at ``C``."""
        X, Y, S = self.folds[k][:3]
        warm = self._warm[k]
        out = []
        for j in range(Y.shape[1]):
            w0 = warm[:, j] if warm is not None else np.zeros(X.shape[1])
            out.append(self._solve(X, Y[:, j], S[:, j], C, w0)[0])
        return np.column_stack(out)

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision  # exact inner solves
        C = float(params["C"])
        losses, grads, ok = [], [], True
        for k, (X, Y, S, Xte, Yte, t) in enumerate(self.folds):
            warm = self._warm[k]
            W, loss, g = np.empty((X.shape[1], Y.shape[1])), 0.0, 0.0
            for j in range(Y.shape[1]):
                w0 = warm[:, j] if warm is not None else np.zeros(X.shape[1])
                w, cho, info, st = self._solve(X, Y[:, j], S[:, j], C, w0,
                                               state=self._grams[k][j])
                self._grams[k][j] = st
                ok &= info.converged
                W[:, j] = w
                lj, gw = self._val(Xte, Yte[:, j], t, w)
                loss += lj
                if with_grad:
                    g += float(gw @ sla.cho_solve(cho, w)) / C
            self._warm[k] = W
            losses.append(loss)
            grads.append(g)
        grads = np.array(grads)
        if not with_grad:
            return self.evaluation(losses, None, ok)
        return self.evaluation(losses, {"C": float(grads.mean())}, ok,
                               fold_grads={"C": grads})


class HuberCVProblem(_StepProblem):
    """K-fold validation MSE of scikit-learn's ``HuberRegressor``, tuned in ``alpha``.

    The inner problem is scikit-learn's own, jointly in the coefficients ``w``, the
    intercept ``b`` and the scale ``sigma``: ``sum_i s_i (sigma + H_eps(r_i / sigma)
    sigma) + alpha ||w||^2``, ``r_i = y_i - x_i.w - b``, solved by ``HuberRegressor``
    itself (L-BFGS-B, at ``tol=1e-12``, warm-started per fold). On the inliers
    (``|r_i| < eps sigma``) the objective is ``r_i^2 / sigma``, on the outliers linear:
    its Hessian in ``(w, b, sigma)`` is ``sum_inliers s_i 2 / sigma^3 (sigma x~_i, r_i)
    (sigma x~_i, r_i)^T + 2 alpha I_w``, and ``d(w, b, sigma)/d alpha = -H^{-1} (2 w, 0,
    0)``. The validation loss is the mean squared error of the predictions (as for the
    other regressors).
    """

    loss_name = "mse"
    cover_with_grad = True
    provides_fold_grads = True

    def __init__(self, folds, *, epsilon=1.35, fit_intercept=True, bounds=None,
                 tol=1e-12, n_cover=12):
        self.epsilon, self.fit_intercept, self.tol = float(epsilon), fit_intercept, tol
        self.folds = [(dense(f.X_train), np.asarray(f.y_train, float),
                       np.asarray(f.sw_train, float), dense(f.X_test),
                       np.asarray(f.y_test, float), np.asarray(f.sw_test, float))
                      for f in folds]
        if any(np.ndim(f[1]) != 1 for f in self.folds):
            raise ValueError("HuberRegressor takes a 1-D y.")
        # alpha sits next to sum_i s_i x_i x_i^T / sigma: the data's unit, sigma ~ std(y).
        scale = np.mean([np.sum(s * np.sum((X - X.mean(0)) ** 2, axis=1))
                         / max(np.std(y), 1e-300) for X, y, s, *_ in self.folds])
        scale /= max(self.folds[0][0].shape[1], 1)
        self.data_scale = float(scale) if np.isfinite(scale) and scale > 0 else 1.0
        if bounds is None:
            bounds = (1e-6 * self.data_scale, 1e2 * self.data_scale)
        self.hyperparameters = [Hyperparameter("alpha", bounds[0], bounds[1], "log")]
        self.n_cover = n_cover
        self._models = [None] * len(self.folds)

    # (no get/set_warm_start: a start's copy goes on from the models it was copied with)
    def __copy__(self):
        new = super().__copy__()
        new._models = list(self._models)  # tuples of arrays, never modified in place
        return new

    def initial_points(self):
        hp = self.hyperparameters[0]
        return [{"alpha": float(a)} for a in np.geomspace(hp.upper, hp.lower, self.n_cover)]

    def fold_model(self, k, alpha):
        """Fold ``k``'s ``(theta, sigma, converged)`` at ``alpha``: Newton from the last
        solution of this fold, or from scikit-learn's own fit the first time (or if
        Newton fails)."""
        X, y, s = self.folds[k][:3]
        theta, sigma, info = huber_fit(X, y, alpha, sample_weight=s, epsilon=self.epsilon,
                                       fit_intercept=self.fit_intercept,
                                       init=self._models[k])
        self._models[k] = (theta, sigma)
        return theta, sigma, info.converged

    def _hypergrad(self, k, theta, sigma, alpha):
        X, y, s, Xte, yte, t = self.folds[k]
        nw = X.shape[1]
        w, b = theta[:nw], (theta[nw] if self.fit_intercept else 0.0)
        r = y - X @ w - b
        inl = np.abs(r) < self.epsilon * sigma
        Xt = np.hstack([X, np.ones((len(X), 1))]) if self.fit_intercept else X
        p = Xt.shape[1]
        # (sigma x~_i, r_i) per inlier: the rank-one Hessian of r_i^2 / sigma in (theta, sigma).
        V = np.hstack([sigma * Xt[inl], r[inl][:, None]])
        H = (V.T * (2.0 * s[inl] / sigma ** 3)) @ V
        H[np.arange(X.shape[1]), np.arange(X.shape[1])] += 2.0 * alpha
        rhs = np.zeros(p + 1)
        rhs[: X.shape[1]] = 2.0 * w
        dtheta = -np.linalg.solve(H, rhs)[:p]
        Xte_t = np.hstack([Xte, np.ones((len(Xte), 1))]) if self.fit_intercept else Xte
        rte = yte - Xte @ w - b
        T = np.sum(t)
        loss = float(np.sum(t * rte * rte) / T)
        grad = float((-2.0 * (Xte_t.T @ (t * rte)) / T) @ dtheta)
        return loss, grad

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision, with_grad  # the gradient costs one small linear solve per fold
        alpha = float(params["alpha"])
        losses, grads, ok = [], [], True
        for k in range(len(self.folds)):
            theta, sigma, conv = self.fold_model(k, alpha)
            ok &= conv
            loss, g = self._hypergrad(k, theta, sigma, alpha)
            losses.append(loss)
            grads.append(g)
        grads = np.array(grads)
        return self.evaluation(losses, {"alpha": float(grads.mean())}, ok,
                               fold_grads={"alpha": grads})


class GLMCVProblem(_StepProblem):
    """K-fold validation deviance of scikit-learn's Poisson / Gamma / Tweedie regressors
    (log link, ``power >= 1``), tuned in ``alpha``.

    The inner problem is scikit-learn's: ``1 / (2 sum_i s_i) sum_i s_i d(y_i, mu_i) +
    alpha / 2 ||w||^2``, ``mu = exp(X w + b)``, ``d`` the unit Tweedie deviance of the
    power (1: Poisson, 2: Gamma), convex for ``1 <= power <= 2``; solved exactly by
    Newton's method with a line search (warm-started per fold). ``d(w, b)/d alpha =
    -H^{-1} (w, 0)``. The validation loss is the model's own: the mean deviance of the
    held-out fold (scikit-learn's ``mean_tweedie_deviance``).
    """

    cover_with_grad = True
    provides_fold_grads = True
    warm_state = ("_warm",)

    def __init__(self, folds, *, power=1.0, fit_intercept=True, bounds=None, n_cover=12):
        self.power, self.fit_intercept = float(power), fit_intercept
        self.loss_name = {1.0: "mean_poisson_deviance", 2.0: "mean_gamma_deviance"}.get(
            self.power, f"mean_tweedie_deviance_power_{self.power:g}")
        self.folds = []
        for f in folds:
            y, yt = np.asarray(f.y_train, float), np.asarray(f.y_test, float)
            for v in (y, yt):
                if np.ndim(v) != 1:
                    raise ValueError("Poisson, Gamma and Tweedie regressors take a 1-D y.")
                if np.any(v < 0) or (self.power >= 2 and np.any(v <= 0)):
                    raise ValueError(
                        f"Some value(s) of y are out of the valid range of the Tweedie "
                        f"deviance of power {self.power:g} (y >= 0, y > 0 from power 2).")
            Xtr, Xte = dense(f.X_train), dense(f.X_test)
            if fit_intercept:
                Xtr = np.hstack([Xtr, np.ones((len(Xtr), 1))])
                Xte = np.hstack([Xte, np.ones((len(Xte), 1))])
            s = np.asarray(f.sw_train, float)
            self.folds.append((Xtr, y, s / s.sum(), Xte, yt, np.asarray(f.sw_test, float)))
        self.n_features = folds[0].X_train.shape[1]
        # alpha sits next to X^T diag(d'') X / 2 ~ the mean of y's variance function:
        # its scale is mean(x^2) * mean(y)^(2 - power).
        ybar = np.mean([np.average(y, weights=s) for _, y, s, *_ in self.folds])
        xx = np.mean([np.sum(s[:, None] * X[:, : self.n_features] ** 2) / max(
            self.n_features, 1) for X, _, s, *_ in self.folds])
        scale = xx * max(ybar, 1e-300) ** (2 - self.power)
        self.data_scale = float(scale) if np.isfinite(scale) and scale > 0 else 1.0
        if bounds is None:
            bounds = (1e-6 * self.data_scale, 1e2 * self.data_scale)
        self.hyperparameters = [Hyperparameter("alpha", bounds[0], bounds[1], "log")]
        self.n_cover = n_cover
        self._warm = [None] * len(self.folds)

    def initial_points(self):
        hp = self.hyperparameters[0]
        return [{"alpha": float(a)} for a in np.geomspace(hp.upper, hp.lower, self.n_cover)]

    def deviance(self, y, eta):
        """scikit-learn's unit Tweedie deviance of the power (log link)."""
        p, mu = self.power, np.exp(eta)
        if p == 1:
            return 2 * (np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0) - y + mu)
        if p == 2:
            return 2 * (np.log(mu / y) + y / mu - 1)
        return 2 * (np.maximum(y, 0) ** (2 - p) / ((1 - p) * (2 - p))
                    - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))

    def fold_solution(self, k, alpha, max_iter=200):
        """``(theta, H, converged)`` of fold ``k`` at ``alpha`` (Newton, warm-started)."""
        X, y, s = self.folds[k][:3]
        theta, H, info = tweedie_newton(X, y, alpha, sample_weight=s, power=self.power,
                                        fit_intercept=self.fit_intercept,
                                        init=self._warm[k], max_iter=max_iter)
        self._warm[k] = theta
        return theta, H, info.converged

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision, with_grad  # exact solves; the gradient is one more linear solve
        alpha = float(params["alpha"])
        nw = self.n_features
        losses, grads, ok = [], [], True
        for k, (X, y, s, Xte, yte, t) in enumerate(self.folds):
            theta, H, conv = self.fold_solution(k, alpha)
            ok &= conv
            eta = Xte @ theta
            T = np.sum(t)
            losses.append(float(np.sum(t * self.deviance(yte, eta)) / T))
            _, d1, _ = tweedie_terms(yte, eta, self.power)
            rhs = np.zeros_like(theta)
            rhs[:nw] = theta[:nw]
            grads.append(float((Xte.T @ (t * d1) / T) @ -np.linalg.solve(H, rhs)))
        grads = np.array(grads)
        return self.evaluation(losses, {"alpha": float(grads.mean())}, ok,
                               fold_grads={"alpha": grads})


# -- KernelRidge ---------------------------------------------------------------------------

_GAMMA_KERNELS = {"rbf": "sqeuclidean", "laplacian": "manhattan"}


class KernelRidgeCVProblem(_StepProblem):
    """K-fold validation MSE of scikit-learn's ``KernelRidge``, tuned in ``alpha`` and,
    for the ``rbf`` and ``laplacian`` kernels, ``gamma``.

    The inner problem is scikit-learn's, solved as it solves it: with ``S`` the training
    weights, ``M = S^1/2 K S^1/2 + alpha I``, the dual coefficients are ``c = S^1/2 c'``,
    ``M c' = S^1/2 y`` (one Cholesky factorization; exact). The kernels are
    ``K = exp(-gamma D)`` with ``D`` the squared Euclidean (rbf) or Manhattan (laplacian)
    distances, so ``dK/dgamma = -D o K``. Implicit differentiation of ``M c' = S^1/2 y``:
    with ``g`` the validation loss's gradient in the held-out predictions ``K_te c`` and
    ``v = M^{-1} S^1/2 K_te^T g`` (one more solve with the same factor),
    ``dL/dalpha = -v.c'`` and ``dL/dgamma = g.(dK_te/dgamma) c - (S^1/2 v).(dK/dgamma) c``.

    ``alpha`` 'auto': ``[1e-6, 1e3]`` times the mean eigenvalue of the weighted kernel
    (``mean(s_i K_ii)``). ``gamma`` 'auto': ``[1e-3, 1e2] / median(D)`` (the median
    heuristic's scale). Any other kernel (or a callable): ``alpha`` only.
    """

    loss_name = "mse"
    cover_with_grad = True
    provides_fold_grads = True

    def __init__(self, folds, *, kernel="linear", gamma=None, degree=3, coef0=1,
                 kernel_params=None, tune_gamma=False, bounds=None, gamma_bounds=None,
                 n_cover=5):
        from sklearn.metrics.pairwise import pairwise_distances, pairwise_kernels

        self.tune_gamma = bool(tune_gamma)
        if self.tune_gamma and kernel not in _GAMMA_KERNELS:
            raise ValueError(
                f"KernelRidge(kernel={kernel!r}): gamma is tunable by HypergradSearchCV for "
                f"the kernels {sorted(_GAMMA_KERNELS)} only; tune alpha alone, or use "
                "GridSearchCV.")
        self.kernel = kernel
        self.folds = []
        for f in folds:
            Xtr, Xte = f.X_train, f.X_test
            y, yt = np.asarray(f.y_train, float), np.asarray(f.y_test, float)
            s, t = np.asarray(f.sw_train, float), np.asarray(f.sw_test, float)
            if kernel in _GAMMA_KERNELS:
                metric = _GAMMA_KERNELS[kernel]
                D = pairwise_distances(Xtr, metric=metric)
                Dte = pairwise_distances(Xte, Xtr, metric=metric)
                self.folds.append(dict(D=D, Dte=Dte, y=y, yt=yt, s=s, t=t))
            else:
                params = {"gamma": gamma, "degree": degree, "coef0": coef0} \
                    if not callable(kernel) else {}
                params.update(kernel_params or {})
                K = pairwise_kernels(Xtr, metric=kernel, filter_params=True, **params)
                Kte = pairwise_kernels(Xte, Xtr, metric=kernel, filter_params=True, **params)
                self.folds.append(dict(K=K, Kte=Kte, y=y, yt=yt, s=s, t=t))
        n_features = folds[0].X_train.shape[1]
        self.gamma = float(1.0 / n_features if gamma is None else gamma)
        if self.tune_gamma:
            med = np.median([np.median(f["D"][np.triu_indices_from(f["D"], 1)])
                             for f in self.folds])
            med = med if np.isfinite(med) and med > 0 else 1.0
            gamma_bounds = gamma_bounds or (1e-3 / med, 1e2 / med)
        unit = np.mean([np.mean(f["s"] * self._diag(f)) for f in self.folds])
        unit = float(unit) if np.isfinite(unit) and unit > 0 else 1.0
        bounds = bounds or (1e-6 * unit, 1e3 * unit)
        self.hyperparameters = [Hyperparameter("alpha", bounds[0], bounds[1], "log")]
        if self.tune_gamma:
            self.hyperparameters.append(
                Hyperparameter("gamma", gamma_bounds[0], gamma_bounds[1], "log"))
        self.n_cover = n_cover

    def _diag(self, f):
        return np.ones(len(f["y"])) if "D" in f else np.diag(f["K"])

    def initial_points(self):
        """A coarse grid, strong regularization first (``n_cover`` values per tuned
        hyperparameter)."""
        a = self.hyperparameters[0]
        alphas = np.geomspace(a.upper, a.lower, self.n_cover)
        if not self.tune_gamma:
            return [{"alpha": float(v)} for v in alphas]
        g = self.hyperparameters[1]
        gammas = np.geomspace(g.lower, g.upper, self.n_cover)
        return [{"alpha": float(v), "gamma": float(w)} for v in alphas for w in gammas]

    def _fold(self, f, alpha, gamma):
        if "D" in f:
            K, Kte = np.exp(-gamma * f["D"]), np.exp(-gamma * f["Dte"])
        else:
            K, Kte = f["K"], f["Kte"]
        y, yt, s, t = f["y"], f["yt"], f["s"], f["t"]
        c, cp, factor = weighted_kernel_ridge(K, y, alpha, sample_weight=s)
        r = np.sqrt(s)
        res = Kte @ c - yt.reshape(len(yt), -1)
        denom = float(np.sum(t)) * c.shape[1]
        loss = float(np.sum(t[:, None] * res * res) / denom)
        g = 2.0 * t[:, None] * res / denom
        v = sla.cho_solve(factor, r[:, None] * (Kte.T @ g), check_finite=False)
        grads = {"alpha": float(-np.sum(v * cp))}
        if "D" in f:
            dK_c = (f["D"] * K) @ c  # -(dK/dgamma) c
            dKte_c = (f["Dte"] * Kte) @ c
            grads["gamma"] = float(-np.sum(g * dKte_c) + np.sum((r[:, None] * v) * dK_c))
        return loss, grads

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision, with_grad  # exact solves; the gradient costs one more solve per fold
        alpha = float(params["alpha"])
        gamma = float(params.get("gamma", self.gamma))
        out = [self._fold(f, alpha, gamma) for f in self.folds]
        losses = np.array([o[0] for o in out])
        names = ["alpha"] + (["gamma"] if self.tune_gamma else [])
        fold_grads = {n: np.array([o[1][n] for o in out]) for n in names}
        return self.evaluation(losses, {n: float(v.mean()) for n, v in fold_grads.items()},
                               fold_grads=fold_grads)


class InverseC(_StepProblem):
    """A problem tuned in ``C``, exposed in ``alpha = 1 / C`` (SGD's parametrization):
    ``dL/dalpha = -C^2 dL/dC``."""

    def __init__(self, problem):
        self.problem = problem
        self.loss_name = problem.loss_name
        self.cover_with_grad = bool(getattr(problem, "cover_with_grad", False))

    @staticmethod
    def _flip(hp):
        if hp.name != "C":
            return hp
        return Hyperparameter("alpha", 1.0 / hp.upper, 1.0 / hp.lower, hp.scale, hp.size)

    @property
    def hyperparameters(self):
        return [self._flip(hp) for hp in self.problem.hyperparameters]

    @hyperparameters.setter
    def hyperparameters(self, hps):
        self.problem.hyperparameters = [
            Hyperparameter("C", 1.0 / hp.upper, 1.0 / hp.lower, hp.scale, hp.size)
            if hp.name == "alpha" else hp for hp in hps]

    def __copy__(self):
        import copy

        return InverseC(copy.copy(self.problem))

    def get_warm_start(self):
        return self.problem.get_warm_start()

    def set_warm_start(self, state):
        self.problem.set_warm_start(state)

    def initial_points(self):
        for p in self.problem.initial_points():
            q = dict(p)
            q["alpha"] = 1.0 / q.pop("C")
            yield q

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        q = dict(params)
        C = 1.0 / q.pop("alpha")
        ev = self.problem.evaluate({"C": C, **q}, precision=precision, with_grad=with_grad)
        if ev.grad is None:
            return ev
        grad = dict(ev.grad)
        grad["alpha"] = -C * C * grad.pop("C")
        return Evaluation(loss=ev.loss, grad=grad, fold_losses=ev.fold_losses,
                          converged=ev.converged, info=ev.info)
