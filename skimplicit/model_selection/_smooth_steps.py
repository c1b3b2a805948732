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
import scipy.sparse as sp
from sklearn.linear_model import RidgeClassifier
from sklearn.svm import LinearSVC, LinearSVR

from ..linear_model._cv_problems import RidgeCVProblem
from ._tunable import Evaluation, Hyperparameter

__all__ = ["SMOOTH_FINAL_STEPS", "smooth_problem", "L2SVMCVProblem"]

# class -> the condition under which it is supported (for the error message).
SMOOTH_FINAL_STEPS = {
    LinearSVC: "loss='squared_hinge', penalty='l2', multi_class='ovr'",
    LinearSVR: "loss='squared_epsilon_insensitive'",
    RidgeClassifier: "",
}


def _reject_unknown(bounds, names, final):
    unknown = sorted(set(bounds) - names)
    if unknown:
        raise ValueError(
            f"{type(final).__name__} has no tunable hyperparameter {unknown}; "
            f"tunable by hypergradients: {sorted(names)}."
        )


def _unsupported(final, what):
    raise ValueError(
        f"{type(final).__name__} with {what} is not supported by HypergradSearchCV: its "
        "fitted model has no smooth optimality conditions. Supported: "
        f"{type(final).__name__}({SMOOTH_FINAL_STEPS[type(final)] or ''}); use GridSearchCV "
        "otherwise."
    )


def smooth_problem(final, folds, bounds, kind):
    """The tunable problem of one of :data:`SMOOTH_FINAL_STEPS` on ``folds``."""
    if kind is LinearSVC:
        _reject_unknown(bounds, {"C"}, final)
        if final.loss != "squared_hinge":
            _unsupported(final, f"loss={final.loss!r}")
        if final.penalty != "l2":
            _unsupported(final, f"penalty={final.penalty!r}")
        if final.multi_class != "ovr":
            _unsupported(final, f"multi_class={final.multi_class!r}")
        if final.class_weight is not None:
            raise ValueError("LinearSVC(class_weight=...) is not supported by "
                             "HypergradSearchCV yet: pass sample weights instead.")
        return L2SVMCVProblem(folds, task="svc", fit_intercept=final.fit_intercept,
                              intercept_scaling=final.intercept_scaling,
                              bounds=_pair(bounds.get("C")))
    if kind is LinearSVR:
        _reject_unknown(bounds, {"C"}, final)
        if final.loss != "squared_epsilon_insensitive":
            _unsupported(final, f"loss={final.loss!r}")
        return L2SVMCVProblem(folds, task="svr", epsilon=final.epsilon,
                              fit_intercept=final.fit_intercept,
                              intercept_scaling=final.intercept_scaling,
                              bounds=_pair(bounds.get("C")))
    if kind is RidgeClassifier:
        _reject_unknown(bounds, {"alpha"}, final)
        if final.class_weight is not None:
            raise ValueError("RidgeClassifier(class_weight=...) is not supported by "
                             "HypergradSearchCV yet: pass sample weights instead.")
        if final.positive:
            raise ValueError("RidgeClassifier(positive=True) is not supported.")
        return _ridge_classifier_problem(final, folds, _pair(bounds.get("alpha")))
    raise AssertionError(kind)  # pragma: no cover


def _pair(spec):
    return None if spec is None else spec[:2]


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
        return Evaluation(
            loss=float(loss_f.mean()), grad={"alpha": float(fold_g.mean())},
            fold_losses=loss_f, converged=bool(ok.all()),
            info={"linear_residual": float(res.max()), "fold_grads": {"alpha": fold_g}},
        )


def _ridge_classifier_problem(final, folds, bounds):
    classes = _classes(folds)
    enc = []
    for f in folds:
        ytr, yte = _codes(f.y_train, classes), _codes(f.y_test, classes)
        if ytr.shape[1] == 1:
            ytr, yte = ytr[:, 0], yte[:, 0]
        enc.append(f._replace(y_train=ytr, y_test=yte))
    problem = RidgeCVProblem(enc, fit_intercept=final.fit_intercept, bounds=bounds)
    problem.loss_name = "squared_error_of_class_codes"
    return problem


def _dense(X):
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=float)


def _augment(X, fit_intercept, intercept_scaling):
    X = _dense(X)
    if fit_intercept:
        X = np.hstack([X, np.full((X.shape[0], 1), float(intercept_scaling))])
    return X


class L2SVMCVProblem:
    """K-fold validation loss of liblinear's L2-regularized squared-loss SVMs, tuned in C.

    ``task="svc"``: ``LinearSVC(loss="squared_hinge")`` one-vs-rest, the validation loss
    the squared hinge summed over the binary problems; ``task="svr"``:
    ``LinearSVR(loss="squared_epsilon_insensitive")``, the validation MSE. Exact inner
    solves (active-set Newton, see the module docstring), dense features.
    """

    cover_with_grad = True  # exact solves: the gradient costs one more solve with H
    provides_fold_grads = True

    def __init__(self, folds, *, task="svc", epsilon=0.0, fit_intercept=True,
                 intercept_scaling=1.0, bounds=None, n_cover=12):
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
            self.folds.append((Xtr, Ytr, np.asarray(f.sw_train, float), Xte, Yte,
                               np.asarray(f.sw_test, float)))
        # The data's unit of C: at C = 1 / sum_i s_i ||x~_i||^2 the loss's curvature is
        # that of the penalty.
        mass = np.mean([np.sum(s * np.sum(X * X, axis=1)) for X, _, s, *_ in self.folds])
        self.data_scale = 1.0 / mass if np.isfinite(mass) and mass > 0 else 1.0
        if bounds is None:
            bounds = (1e-3 * self.data_scale, 1e4 * self.data_scale)
        self.hyperparameters = [Hyperparameter("C", bounds[0], bounds[1], "log")]
        self.n_cover = n_cover
        self._warm = [None] * len(self.folds)

    def get_warm_start(self):
        return [None if w is None else w.copy() for w in self._warm]

    def set_warm_start(self, state):
        self._warm = [None if w is None else np.array(w) for w in state]

    def initial_points(self):
        hp = self.hyperparameters[0]
        return [{"C": float(c)} for c in np.geomspace(hp.lower, hp.upper, self.n_cover)]

    def bound_hint(self, name, side):
        return f"the bounds of {name!r}"

    # -- inner solve ---------------------------------------------------------------------
    def _active(self, y, r):
        if self.task == "svc":
            act = y * r > 0
            return act, y
        act = np.abs(r) > self.epsilon
        return act, y - self.epsilon * np.sign(r)

    def _objective(self, X, y, s, C, w):
        r = y - X @ w
        m = np.maximum(0.0, y * r) if self.task == "svc" else np.maximum(
            0.0, np.abs(r) - self.epsilon)
        return 0.5 * w @ w + C * np.sum(s * m * m)

    def _pattern(self, y, w, X):
        r = y - X @ w
        act, yt = self._active(y, r)
        key = act if self.task == "svc" else np.where(act, np.sign(r), 0.0)
        return act, yt, key

    def _solve(self, X, y, s, C, w, max_iter=200):
        """Active-set Newton: ``(w, cho_factor of H at the final active set, converged)``.

        Each step minimizes the quadratic that equals the objective on the current
        active set (and signs); when its minimizer has the same active set it is the
        exact minimizer. Otherwise a backtracking step along it (the objective is convex).
        """
        p = X.shape[1]
        f = self._objective(X, y, s, C, w)
        cho = None
        for _ in range(max_iter):
            act, yt, key = self._pattern(y, w, X)
            XA, sA = X[act], s[act]
            cho = sla.cho_factor(np.eye(p) + 2.0 * C * (XA.T * sA) @ XA)
            w_new = sla.cho_solve(cho, 2.0 * C * (XA.T @ (sA * yt[act])))
            if np.array_equal(self._pattern(y, w_new, X)[2], key):
                return w_new, cho, True
            d, step = w_new - w, 1.0
            while True:
                f_new = self._objective(X, y, s, C, w + step * d)
                if f_new <= f or step < 1e-12:
                    break
                step *= 0.5
            w, f = w + step * d, f_new
        return w, cho, False

    def _val(self, Xte, y, t, w):
        """Validation loss of one binary problem / regression and its gradient in w."""
        r = y - Xte @ w
        if self.task == "svc":
            r = np.where(y * r > 0, r, 0.0)
        T = np.sum(t)
        return float(np.sum(t * r * r) / T), -2.0 * (Xte.T @ (t * r)) / T

    def fold_solution(self, k, C):
        """The coefficients (n_features [+ 1], n_columns) of fold ``k`` at ``C``."""
        X, Y, s = self.folds[k][:3]
        warm = self._warm[k]
        out = []
        for j in range(Y.shape[1]):
            w0 = warm[:, j] if warm is not None else np.zeros(X.shape[1])
            out.append(self._solve(X, Y[:, j], s, C, w0)[0])
        return np.column_stack(out)

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision  # exact inner solves
        C = float(params["C"])
        losses, grads, ok = [], [], True
        for k, (X, Y, s, Xte, Yte, t) in enumerate(self.folds):
            warm = self._warm[k]
            W, loss, g = np.empty((X.shape[1], Y.shape[1])), 0.0, 0.0
            for j in range(Y.shape[1]):
                w0 = warm[:, j] if warm is not None else np.zeros(X.shape[1])
                w, cho, conv = self._solve(X, Y[:, j], s, C, w0)
                ok &= conv
                W[:, j] = w
                lj, gw = self._val(Xte, Yte[:, j], t, w)
                loss += lj
                if with_grad:
                    g += float(gw @ sla.cho_solve(cho, w)) / C
            self._warm[k] = W
            losses.append(loss)
            grads.append(g)
        losses, grads = np.array(losses), np.array(grads)
        return Evaluation(
            loss=float(losses.mean()),
            grad={"C": float(grads.mean())} if with_grad else None,
            fold_losses=losses, converged=bool(ok),
            info={"fold_grads": {"C": grads}} if with_grad else {},
        )
