r"""TaskDrivenDictionaryLearning: a dictionary learned for a classification task.

The inner solvers live in :mod:`skimplicit.solvers._codes`, the hypergradient kernels in
:mod:`skimplicit.decomposition._kernels`; this module holds the padded workspace, the
unsupervised initialization, the supervised phase (projected gradient with early stopping
chosen by cross-validation), the tunable problem handed to the shared outer loop
:func:`skimplicit.tuning.tune` (a :class:`~skimplicit.tuning.CVProblem`), the fit's
specification :class:`TaskDrivenSpec` (the phases on the data in its own unit) and the
estimator.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import jax
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import check_cv
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..implicit import LinearSolveWarning
from .._blas import one_blas_thread
from ..solvers._codes import encode
from ..tuning import (CVProblem, Evaluation, Hyperparameter, bucket, resolve_backend,
                      to_device, tune)
from ._kernels import cv_value_and_grad, task_value_and_grad

__all__ = ["TaskDrivenDictionaryLearning"]

_CODE_TOL = 1e-10  # relative optimality violation of the codes (exact implicit gradients)


# --------------------------------------------------------------------------------------
# Padded workspace: few compiled shapes
# --------------------------------------------------------------------------------------


class _Workspace:
    """``X``, the one-hot targets and the dictionary padded to bucketed shapes.

    Rows are padded with zeros (weight 0), features with zero columns and atoms with zero
    rows of ``D``: all exact (a zero atom has a zero code and a zero gradient).
    """

    def __init__(self, X, Y, n_components):
        n, p = X.shape
        self.n, self.p, self.k = n, p, n_components
        self.nb, self.pb, self.kb = bucket(n, 32), bucket(p, 8), bucket(n_components, 8)
        self.X = np.zeros((self.nb, self.pb))
        self.X[:n, :p] = X
        self.Y = None if Y is None else np.zeros((self.nb, Y.shape[1]))
        if Y is not None:
            self.Y[:n] = Y

    def weights(self, rows):
        w = np.zeros(self.nb)
        w[rows] = 1.0
        return w

    def pad_dict(self, D):
        out = np.zeros((self.kb, self.pb))
        out[: D.shape[0], : D.shape[1]] = D
        return out

    def pad_coef(self, W):
        """``W (k, K)`` -> ``(kb, K)``."""
        out = np.zeros((self.kb, W.shape[1]))
        out[: W.shape[0]] = W
        return out


def _encode_rows(X, D, alpha, l2, max_iter, Z0=None):
    """Codes of the rows of ``X`` (unpadded arrays in and out, padded inside)."""
    n, p = X.shape
    k = D.shape[0]
    nb, pb, kb = bucket(n, 32), bucket(p, 8), bucket(k, 8)
    Xp = np.zeros((nb, pb))
    Xp[:n, :p] = X
    Dp = np.zeros((kb, pb))
    Dp[:k, :p] = D
    Z0p = np.zeros((nb, kb))
    if Z0 is not None:
        Z0p[:n, :k] = Z0
    with jax.enable_x64(True):
        Z, n_iter, viol = encode(Xp, Dp, float(alpha), float(l2), Z0p, _CODE_TOL,
                                 int(max_iter))
        Z, viol = np.asarray(Z)[:n, :k], float(viol)
    return Z, int(n_iter), viol <= _CODE_TOL


def _project_atoms(D):
    """Each atom (row) onto the unit ball."""
    norms = np.linalg.norm(D, axis=1, keepdims=True)
    return D / np.maximum(norms, 1.0)


# --------------------------------------------------------------------------------------
# Unsupervised initialization (scikit-learn's dict_learning, with batched JAX codes)
# --------------------------------------------------------------------------------------


def unsupervised_dictionary(X, n_components, alpha, l2, *, max_iter, rng, code_max_iter,
                            tol=1e-6):
    """Alternating minimization of ``1/2 ||X - Z D||^2 + alpha ||Z||_1`` (+ ``l2``).

    scikit-learn's ``dict_learning`` scheme: SVD start (right singular vectors; random
    normalized samples for atoms beyond the rank), then codes by ``encode`` and a
    block-coordinate update of each atom projected on the unit ball; an atom no sample
    uses is replaced by a random sample. Stops when the objective decreases by less than
    ``tol`` relatively.

    Returns
    -------
    D : ndarray of shape (n_components, n_features)
    n_iter : int
    """
    n, p = X.shape
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    D = Vt[:n_components].copy()
    if D.shape[0] < n_components:
        extra = X[rng.randint(0, n, n_components - D.shape[0])] + 1e-3 * rng.randn(
            n_components - D.shape[0], p)
        D = np.vstack([D, extra])
    D = _project_atoms(D)
    Z = np.zeros((n, n_components))
    prev = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        Z, _, _ = _encode_rows(X, D, alpha, l2, code_max_iter, Z0=Z)
        R = X - Z @ D
        for j in range(n_components):
            zj = Z[:, j]
            nz = zj @ zj
            if nz < 1e-20:
                D[j] = X[rng.randint(n)]
                D[j] /= max(np.linalg.norm(D[j]), 1e-12)
                continue
            R += np.outer(zj, D[j])
            d = R.T @ zj / nz
            D[j] = d / max(1.0, np.linalg.norm(d))
            R -= np.outer(zj, D[j])
        obj = 0.5 * np.sum(R * R) + alpha * np.abs(Z).sum() + 0.5 * l2 * np.sum(Z * Z)
        if prev - obj < tol * abs(obj):
            break
        prev = obj
    return D, it


# --------------------------------------------------------------------------------------
# Supervised phase: projected gradient on (D, W, b)
# --------------------------------------------------------------------------------------


def _initial_classifier(Z, y_enc, n_classes, C, sw):
    """scikit-learn's LogisticRegression(C) on the training codes: ``W (k, K)``, ``b``."""
    rows = sw > 0
    k = Z.shape[1]
    K = 1 if n_classes == 2 else n_classes
    if len(np.unique(y_enc[rows])) != n_classes:
        # A fold without some class (tiny data): start the classifier at zero.
        return np.zeros((k, K)), np.zeros(K)
    clf = LogisticRegression(C=C, max_iter=1000, tol=1e-8).fit(Z[rows], y_enc[rows])
    return clf.coef_.T.copy(), clf.intercept_.copy()


def _supervised_phase(ws, D0, y_enc, n_classes, *, alpha, l2, C, train, val, n_iter, tol,
                      code_max_iter, verbose=0, label=""):
    """Projected gradient with Armijo backtracking on ``J(D, W, b)`` (train rows).

    Every iterate's validation log loss is recorded when ``val`` rows are given (the codes
    of all rows come with each objective evaluation, so it costs nothing).

    Returns
    -------
    params : tuple (D, W, b), padded
    history : dict of lists ``loss`` (training objective) and ``val_loss`` (per iterate,
        iterate 0 included), ``step``; ``n_iter`` the iterations run; ``ok`` flags.
    """
    sw = ws.weights(train)
    vw = ws.weights(val) if val is not None else None
    Dp = ws.pad_dict(D0)
    Z0, _, _ = _encode_rows(ws.X[: ws.n, : ws.p], D0, alpha, l2, code_max_iter)
    W, b = _initial_classifier(Z0, y_enc, n_classes, C, sw[: ws.n])
    P = [Dp, ws.pad_coef(W), b]
    Zc = np.zeros((ws.nb, ws.kb))
    Zc[: ws.n, : ws.k] = Z0
    hist = {"loss": [], "val_loss": [], "step": [], "n_iter": 0,
            "codes_converged": True, "linear_ok": True, "n_ridged": 0}

    def evaluate(P, Zc):
        with jax.enable_x64(True):
            val_, grads, aux = task_value_and_grad(
                P[0], P[1], P[2], ws.X, ws.Y, sw, Zc, float(alpha), float(l2), float(C),
                _CODE_TOL, int(code_max_iter))
            Z, losses, _, viol, ok, n_ridged = aux
            out = (float(val_), [np.asarray(g) for g in grads], np.asarray(Z),
                   np.asarray(losses), float(viol) <= _CODE_TOL, bool(ok))
        hist["codes_converged"] &= out[4]
        hist["linear_ok"] &= out[5]
        hist["n_ridged"] += int(n_ridged)  # singular support systems (fallback ridge)
        return out

    def record(f, losses, step):
        hist["loss"].append(f)
        hist["step"].append(step)
        if vw is not None:
            hist["val_loss"].append(float(np.sum(vw * losses) / np.sum(vw)))

    f, g, Zc, losses, _, _ = evaluate(P, Zc)
    record(f, losses, 0.0)
    step = 1.0
    for it in range(n_iter):
        while True:
            Pn = [_project_atoms(P[0] - step * g[0]), P[1] - step * g[1], P[2] - step * g[2]]
            fn, gn, Zn, ln, _, _ = evaluate(Pn, Zc)
            decrease = sum(float(np.sum(gi * (a - c))) for gi, a, c in zip(g, P, Pn))
            if (np.isfinite(fn) and fn <= f - 0.5 * decrease) or step < 1e-10:
                break
            step *= 0.5
        if step < 1e-10:  # no descent step left: a (local) stationary point
            break
        rel = (f - fn) / max(abs(f), np.finfo(float).tiny)
        P, f, g, Zc = Pn, fn, gn, Zn
        hist["n_iter"] = it + 1
        record(f, ln, step)
        if verbose > 1:
            print(f"[TaskDrivenDictionaryLearning{label}] iter {it + 1:3d} objective "
                  f"{f:.6g} step {step:.3g}" + (f" val log loss {hist['val_loss'][-1]:.6g}"
                                               if vw is not None else ""), flush=True)
        if rel < tol:
            break
        step *= 1.5
    return P, hist


# --------------------------------------------------------------------------------------
# Tunable problem (for the shared outer loop)
# --------------------------------------------------------------------------------------


class CodesLogisticCVProblem(CVProblem):
    """K-fold validation log loss of logistic regression on the codes of a fixed dictionary.

    Hyperparameters: ``alpha`` (the codes' L1 penalty) and/or ``C`` (the classifier's),
    both on a log scale. Each evaluation computes the codes of all samples once (they do
    not depend on the fold), refits the logistic model of every fold (damped Newton,
    warm-started) and returns the mean validation log loss with its hypergradient, by
    implicit differentiation of the logistic stationarity and of the codes' support
    stationarity (:func:`~skimplicit.decomposition._kernels.cv_value_and_grad`).
    """

    loss_name = "log_loss"
    warm_state = ("_codes", "_theta")  # codes of all rows, each fold's (W, b)

    def __init__(self, ws, D, folds, *, alpha, C, tune_alpha, tune_C, l2, code_max_iter,
                 C_bounds=(1e-4, 1e4), x_unit=1.0):
        # ``ws`` holds X / x_unit (the data in its own unit, see TaskDrivenDictionaryLearning
        # .fit); the hyperparameters are in the units of X: alpha = x_unit * alpha_unit,
        # C = C_unit / x_unit^2 (the codes scale like X, the classifier's C like 1 / X^2).
        # ``C_bounds`` and the path's C grid are in the unit system.
        self.x_unit = float(x_unit)
        self.ws, self.l2, self.code_max_iter = ws, float(l2), int(code_max_iter)
        self.D = ws.pad_dict(D)
        K = len(folds)
        self.M = np.stack([ws.weights(tr) for tr, _ in folds])
        self.V = np.stack([ws.weights(te) for _, te in folds])
        C_all = np.abs(ws.X[: ws.n] @ self.D.T)
        self.alpha_max = float(C_all.max()) * self.x_unit
        if self.alpha_max <= 0:
            raise ValueError("Every sample is orthogonal to the dictionary: nothing to tune.")
        self.alpha0, self.C0 = float(alpha), float(C)
        self.tune_alpha, self.tune_C = tune_alpha, tune_C
        self.hyperparameters = []
        if tune_alpha:
            self.hyperparameters.append(
                Hyperparameter("alpha", 1e-3 * self.alpha_max, 0.95 * self.alpha_max, "log"))
        if tune_C:
            self.hyperparameters.append(Hyperparameter(
                "C", C_bounds[0] / self.x_unit ** 2, C_bounds[1] / self.x_unit ** 2, "log"))
        n_out = ws.Y.shape[1]
        self._codes = np.zeros((ws.nb, ws.kb))
        self._theta = (np.zeros((K, ws.kb, n_out)), np.zeros((K, n_out)))
        self._data = (ws.X, ws.Y)
        self._on_device = False

    def to_device(self):
        """Move the data, the dictionary and the fold weights to JAX's default device once
        (``backend="jax"``); the codes and the folds' classifiers then stay there between
        evaluations (float64)."""
        with jax.enable_x64(True):
            self._data = tuple(to_device(a, np.float64) for a in self._data)
            self.D, self.M, self.V = (to_device(a, np.float64) for a in (self.D, self.M, self.V))
        self._on_device = True

    def bound_hint(self, name, side):
        """No warning at a bound: ``alpha``'s are fixed fractions of ``alpha_max`` (above
        it every code is empty) and ``C``'s are not an estimator parameter."""
        return None

    def initial_points(self):
        # Warm-started paths: alpha decreasing (codes densify), C increasing. Tuned jointly,
        # a small grid: at a fixed C too large for the data, every alpha but the
        # near-empty codes overfits and the path alone would start on that plateau.
        Cs = [self.C0]
        if self.tune_C:
            grid = np.logspace(-3, 2, 6) if not self.tune_alpha else np.logspace(-2, 1, 4)
            Cs = np.unique(np.r_[grid / self.x_unit ** 2, self.C0])
        alphas = [self.alpha0]
        if self.tune_alpha:
            lo, hi = self.hyperparameters[0].lower, self.hyperparameters[0].upper
            grid = self.alpha_max * np.array([0.5, 0.25, 0.1, 0.05, 0.02, 0.01])
            alphas = np.unique(np.clip(np.r_[grid, self.alpha0], lo, hi))[::-1]
        pts = []
        for C in Cs:
            for a in alphas:
                p = {}
                if self.tune_alpha:
                    p["alpha"] = float(a)
                if self.tune_C:
                    p["C"] = float(C)
                pts.append(p)
        return pts

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision  # codes and refits are solved to full accuracy (cheap here)
        u = self.x_unit
        alpha = float(params.get("alpha", self.alpha0)) / u  # in the unit system
        C = float(params.get("C", self.C0)) * u * u
        with jax.enable_x64(True):
            loss, fold_losses, d_alpha, d_C, aux = cv_value_and_grad(
                alpha, C, self.D, *self._data, self.M, self.V, self._codes, self._theta,
                self.l2, _CODE_TOL, self.code_max_iter)
            Z, theta, ratio, viol, ok, n_ridged = aux
            n_ridged = int(n_ridged)
            loss, fold_losses = float(loss), np.asarray(fold_losses)
            d_alpha, d_C = float(d_alpha) / u, float(d_C) * u * u  # back to X's units
            if self._on_device:  # (kept on the device: the next evaluation's warm start)
                self._codes, self._theta = Z, tuple(theta)
            else:
                self._codes, self._theta = np.asarray(Z), tuple(np.asarray(t) for t in theta)
            converged = bool(ok) and float(viol) <= _CODE_TOL and float(ratio) <= 1e-6
        grad = None
        if with_grad:
            grad = {}
            if self.tune_alpha:
                grad["alpha"] = d_alpha
            if self.tune_C:
                grad["C"] = d_C
        if n_ridged and with_grad:
            warnings.warn(
                f"{n_ridged} support system(s) of the codes' implicit gradient are singular "
                "(linearly dependent active atoms): solved with a ridge of 1e-10 x their "
                "mean diagonal; the hypergradient in alpha is approximate.",
                LinearSolveWarning, stacklevel=2)
        # (not self.evaluation: the loss is the kernel's mean over folds, summed in XLA's
        # order, not NumPy's: the last bit differs)
        return Evaluation(loss=loss, grad=grad, fold_losses=fold_losses, converged=converged,
                          info={"newton_gradient_ratio": float(ratio),
                                "ridged_systems": n_ridged})


# --------------------------------------------------------------------------------------
# The fit's specification: the phases on the data in its own unit
# --------------------------------------------------------------------------------------


def resolved_alpha(X, alpha):
    """``alpha``, or for ``"auto"`` 0.1 x the median sample norm (1 when it is 0)."""
    if isinstance(alpha, str):  # "auto": 0.1 x the median sample norm
        norm = float(np.median(np.linalg.norm(X, axis=1)))
        return 0.1 * norm if norm > 0 else 1.0
    return float(alpha)


def _phase_ok(h):
    """Whether a supervised phase's codes converged and its support systems solved."""
    return h["codes_converged"] and h["linear_ok"] and not h["n_ridged"]


class TaskDrivenSpec:
    """One fit of :class:`TaskDrivenDictionaryLearning` on validated data.

    Everything runs on ``X / u``, ``u`` the root mean square of ``X`` (the data's own
    unit), with ``alpha / u`` and ``C u^2``: the same model (codes scale like X, C like
    1 / X^2), while the unsupervised start, the supervised phase's steps and the solvers'
    tolerances see data of unit scale whatever the units of X. Results are converted
    back. Building the spec runs the initialization (``dict_init``, or the unsupervised
    dictionary) and splits the folds; :meth:`tuning_problem` is the tunable problem of
    ``alpha`` / ``C`` at the initial dictionary; :meth:`supervised_fit` the supervised
    phase with early stopping, returning the fitted attributes.
    """

    def __init__(self, est, X, y, y_enc, n_classes):
        n, p = X.shape
        self.k = k = p if est.n_components is None else int(est.n_components)
        self.p, self.y_enc, self.n_classes = p, y_enc, n_classes
        Y = (y_enc[:, None] == np.arange(n_classes)).astype(float) if n_classes > 2 else \
            y_enc[:, None].astype(float)
        self.rng = check_random_state(est.random_state)
        self.l2 = l2 = float(est.ridge_alpha)
        self.code_max_iter, self.verbose = est.transform_max_iter, est.verbose
        self.alpha = resolved_alpha(X, est.alpha)
        u = float(np.sqrt(np.mean(X * X)))
        self.u = u = u if np.isfinite(u) and u > 0 else 1.0
        Xu = X / u
        self.ws = _Workspace(Xu, Y, k)
        if est.dict_init is not None:
            D0 = check_array(est.dict_init, dtype=np.float64)
            if D0.shape != (k, p):
                raise ValueError(f"dict_init must have shape (n_components, n_features) = "
                                 f"{(k, p)}, got {D0.shape}.")
            self.D0, self.n_init = _project_atoms(D0.copy()), 0
        else:
            self.D0, self.n_init = unsupervised_dictionary(
                Xu, k, self.alpha / u, l2, max_iter=est.init_max_iter, rng=self.rng,
                code_max_iter=self.code_max_iter)
        if self.verbose:
            print(f"[TaskDrivenDictionaryLearning] initialization: {self.n_init} "
                  "alternations", flush=True)
        self.folds = None
        if est.cv is not None or est.tune_alpha or est.tune_C:
            cv = check_cv(5 if est.cv is None else est.cv, y, classifier=True)
            self.folds = list(cv.split(X, y))

    def tuning_problem(self, C, tune_alpha, tune_C):
        """The :class:`CodesLogisticCVProblem` of ``alpha`` and/or ``C`` (X's units) on
        the codes of the initial dictionary."""
        return CodesLogisticCVProblem(
            self.ws, self.D0, self.folds, alpha=self.alpha, C=C, tune_alpha=tune_alpha,
            tune_C=tune_C, l2=self.l2, code_max_iter=self.code_max_iter, x_unit=self.u)

    def supervised_fit(self, alpha, C, *, max_iter, tol, early_stopping):
        """The supervised phase at ``(alpha, C)`` (X's units) on all rows, for the number
        of iterations that minimizes the mean validation loss over the folds with
        ``early_stopping`` (``max_iter`` without). Returns the fitted attributes."""
        ws, u = self.ws, self.u
        common = dict(alpha=alpha / u, l2=self.l2, C=C * u * u, tol=tol,
                      code_max_iter=self.code_max_iter, verbose=self.verbose)
        n_sup, cv_val_loss, converged = max_iter, None, True
        if early_stopping and max_iter > 0:
            curves = []
            for f, (tr, te) in enumerate(self.folds):
                _, h = _supervised_phase(ws, self.D0, self.y_enc, self.n_classes, train=tr,
                                         val=te, n_iter=max_iter, label=f" fold {f}", **common)
                converged &= _phase_ok(h)
                c = np.asarray(h["val_loss"])
                # A fold that stopped early keeps its last value.
                curves.append(np.r_[c, np.full(max_iter + 1 - c.size, c[-1])])
            cv_val_loss = np.mean(curves, axis=0)
            n_sup = int(np.argmin(cv_val_loss))
        P, h = _supervised_phase(ws, self.D0, self.y_enc, self.n_classes,
                                 train=np.arange(ws.n), val=None, n_iter=n_sup, **common)
        converged &= _phase_ok(h)
        if not converged:
            warnings.warn(
                "A sparse coding did not reach its tolerance or a support system of the "
                "implicit gradient was singular (linearly dependent active atoms); the "
                "gradients may be inaccurate. Increase transform_max_iter or set "
                "ridge_alpha > 0.", ConvergenceWarning, stacklevel=2)
        k, p = self.k, self.p
        if self.verbose:
            print(f"[TaskDrivenDictionaryLearning] supervised phase: {int(h['n_iter'])}"
                  f" iterations (alpha={alpha:.4g}, C={C:.4g})", flush=True)
        return {
            "components_": P[0][:k, :p].copy(),
            "coef_": P[1][:k].T / u,  # codes of X are u times those of X / u
            "intercept_": np.asarray(P[2], float).copy(),
            "n_supervised_iter_": int(h["n_iter"]),
            "n_iter_": int(self.n_init + int(h["n_iter"])),
            "loss_curve_": [f / (u * u) for f in h["loss"]],  # the objective in X's units
            "cv_val_loss_": cv_val_loss,
        }


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------


class TaskDrivenDictionaryLearning(ClassNamePrefixFeaturesOutMixin, ClassifierMixin,
                                   TransformerMixin, BaseEstimator):
    r"""Dictionary learned jointly with a logistic model on its sparse codes.

    Task-driven dictionary learning (Mairal, Bach and Ponce, 2012), with the derivative of
    each code with respect to the dictionary obtained by implicit differentiation (Blondel
    et al., 2022). The code of a sample :math:`x \in \mathbb{R}^p` under the dictionary
    :math:`D \in \mathbb{R}^{k \times p}` (atoms as rows, each of norm at most 1) is

    .. math::

        z^*(x; D) = \operatorname*{argmin}_{z \in \mathbb{R}^k}
            \tfrac12 \|x - D^\top z\|_2^2 + \alpha \|z\|_1
            + \tfrac{\lambda_2}{2} \|z\|_2^2

    (:math:`\lambda_2` = ``ridge_alpha``; with ``ridge_alpha=0`` these are exactly the
    codes of :func:`sklearn.decomposition.sparse_encode` with ``algorithm="lasso_cd"`` and
    the same ``alpha``, whose ``alpha / n_features`` internal scaling leaves the argmin
    unchanged). The dictionary and a binary or multinomial logistic model
    :math:`(W, b)` on the codes minimize scikit-learn's ``LogisticRegression`` objective

    .. math::

        C \sum_{i=1}^n \ell\big(y_i, W^\top z^*(x_i; D) + b\big) + \tfrac12 \|W\|_F^2
        \quad \text{s.t. } \|d_j\|_2 \le 1 .

    The gradient in :math:`D` goes through the codes by implicit differentiation of their
    optimality conditions on each sample's support (a :math:`k \times k` system per
    sample, all samples batched in one JAX call), so the sparse coding solver (a batched
    coordinate descent on the Gram matrix :math:`D D^\top`) is never differentiated.

    Fitting has three phases:

    1. **Initialization**: an unsupervised dictionary (scikit-learn's ``dict_learning``
       scheme with ``init_max_iter`` alternations) or ``dict_init``; the classifier is
       then ``LogisticRegression(C)`` on its codes.
    2. **Tuning** (optional, ``tune_alpha`` / ``tune_C``): the K-fold validation log loss
       of the logistic model refitted on the codes of the initial dictionary is minimized
       over ``alpha`` and/or ``C`` by hypergradient descent in the shared outer loop
       :func:`skimplicit.tuning.tune`: a small coarse cover (``alpha`` from 0.5 to 0.01
       times ``alpha_max``, the largest correlation of a sample with an atom; ``C`` on a
       log grid), then descents from its best basins, within ``[1e-3, 0.95] *
       alpha_max`` and ``[1e-4, 1e4]`` for ``C`` (in the data's unit, see below).
    3. **Supervised phase**: projected gradient with Armijo backtracking on the objective
       above, from the initialization. With ``cv`` set, the number of iterations is chosen
       by cross-validation (*early stopping*): the phase runs on each training fold, the
       validation log loss is averaged over folds at every iteration, and the final fit on
       all data runs the iteration count minimizing it (0 keeps the initialization). On
       small data this matters: the full minimization fits the training labels through
       the dictionary and generalizes worse.

    ``alpha`` is in the units of X and ``C`` in those of ``1 / X^2`` (the codes scale like
    X): X multiplied by ``s`` with ``alpha * s`` and ``C / s^2`` is the same model, and
    the fit gives the same dictionary, ``coef_ / s`` and the same losses (every phase runs
    on X divided by its root mean square, with the hyperparameters converted; the
    tuning's ``C`` range and start grid are relative to that unit).

    Parameters
    ----------
    n_components : int, default=None
        Number of atoms :math:`k`; ``None`` uses ``n_features``.
    alpha : float or "auto", default="auto"
        L1 penalty of the codes (with ``tune_alpha``, one more point of the tuning's
        coarse cover). ``"auto"``: 0.1
        times the median norm of the samples, a scale-free choice (an atom aligned with
        a typical sample correlates with it by that norm, so codes stay sparse without
        vanishing, on 2 standardized features as on 64 raw pixel intensities).
    ridge_alpha : float, default=0.0
        L2 penalty :math:`\lambda_2` of the codes (elastic-net codes; > 0 makes the codes
        unique and better conditioned when atoms are nearly collinear).
    C : float, default=1.0
        Inverse regularization of the logistic model, as in
        :class:`~sklearn.linear_model.LogisticRegression` (with ``tune_C``, one more point
        of the tuning's coarse cover).
    max_iter : int, default=30
        Maximum iterations of the supervised phase (on each fold and in the final fit).
    tol : float, default=1e-6
        The supervised phase stops when an iteration decreases the objective by less than
        ``tol`` relatively.
    cv : int, cross-validation generator or iterable, default=5
        Folds (stratified for an int) for early stopping and for tuning. ``None``: no
        early stopping (the supervised phase runs up to ``max_iter``; tuning then uses 5
        folds).
    tune_alpha : bool, default=False
        Tune ``alpha`` by hypergradient descent on the K-fold validation log loss (phase 2).
    tune_C : bool, default=False
        Tune ``C`` likewise (jointly with ``alpha`` when both are set).
    max_outer_iter : int, default=10
        Hypergradient evaluations per start of the tuning, after its coarse cover (see
        :func:`~skimplicit.tuning.tune`).
    init_max_iter : int, default=30
        Alternations of the unsupervised initialization (ignored with ``dict_init``).
    dict_init : array-like of shape (n_components, n_features), default=None
        Initial dictionary (atoms are projected on the unit ball).
    transform_alpha : float, default=None
        L1 penalty of the codes returned by :meth:`transform`; ``None`` uses ``alpha_``.
        The classifier always uses ``alpha_``.
    transform_max_iter : int, default=1000
        Maximum coordinate-descent epochs of every sparse coding.
    random_state : int, RandomState instance or None, default=None
        Atoms beyond the data's rank and replacements of unused atoms in the
        initialization, and random restarts of the tuning. The fit is deterministic for
        a fixed ``random_state`` (and an int ``cv`` is not shuffled).
    verbose : int, default=0
        1: one line per phase (and per tuning step); 2: one line per iteration.
    backend : {"auto", "host", "jax"}, default="auto"
        Where the tuning (``tune_alpha`` / ``tune_C``) runs: its evaluations are one
        compiled JAX program each (codes, the folds' classifiers, the hypergradient);
        ``"jax"`` runs them on JAX's default device with the data moved there once,
        ``"host"`` on the CPU device; ``"auto"``: ``"host"`` when JAX's default backend is
        the CPU, ``"jax"`` on a GPU or TPU. float64 on both.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned dictionary (atoms as rows, norms at most 1).
    coef_ : ndarray of shape (1, n_components) or (n_classes, n_components)
        Logistic model on the codes (scikit-learn's layout).
    intercept_ : ndarray of shape (1,) or (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    alpha_ : float
        L1 penalty of the codes used by the classifier (tuned, ``alpha``, or its "auto" value).
    C_ : float
        Inverse regularization used (tuned or ``C``).
    init_components_ : ndarray of shape (n_components, n_features)
        The initial (unsupervised) dictionary.
    n_iter_ : int
        Iterations run in the final fit: initialization alternations plus supervised
        iterations.
    n_supervised_iter_ : int
        Supervised iterations of the final fit (the early-stopping choice with ``cv``).
    cv_val_loss_ : ndarray of shape (n_iterations + 1,) or None
        Mean validation log loss over the folds after each supervised iteration
        (iteration 0 is the initialization); ``None`` without ``cv``.
    loss_curve_ : list of float
        Objective (divided by ``C n``) after each iteration of the final supervised phase.
    tuning_result_, history_ : TuningResult, dict
        Set when ``alpha`` or ``C`` is tuned (see :func:`~skimplicit.tuning.tune`).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has feature names that are all strings.

    See Also
    --------
    sklearn.decomposition.DictionaryLearning : Unsupervised dictionary (codes ignore ``y``).
    sklearn.decomposition.sparse_encode : The same codes for a given dictionary.
    sklearn.linear_model.LogisticRegression : The classifier, here on learned codes.

    Notes
    -----
    Compared with ``make_pipeline(DictionaryLearning(...), LogisticRegressionCV())``, the
    dictionary here is adapted to the labels. Only the supervised phase knows ``y``; its
    early stopping and the tuning use the same folds of the training data. Hyperparameter
    tuning holds the dictionary at its initialization (the hypergradient is exact for that
    fixed dictionary; differentiating through the whole supervised phase would require
    its exact convergence, which early stopping deliberately avoids). Sample weights are
    not supported. Compilation: arrays are padded to power-of-two shapes, so refits of
    similar sizes reuse the compiled kernels.

    References
    ----------
    J. Mairal, F. Bach, J. Ponce (2012). Task-driven dictionary learning. IEEE TPAMI 34(4).
    M. Blondel, Q. Berthet, M. Cuturi, R. Frostig, S. Hoyer, F. Llinares-López,
    F. Pedregosa, J.-P. Vert (2022). Efficient and modular implicit differentiation.
    NeurIPS.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skimplicit.decomposition import TaskDrivenDictionaryLearning
    >>> X, y = make_classification(n_samples=60, n_features=8, random_state=0)
    >>> clf = TaskDrivenDictionaryLearning(n_components=4, alpha=0.1, max_iter=5,
    ...                                    random_state=0).fit(X, y)
    >>> clf.components_.shape, clf.transform(X).shape
    ((4, 8), (60, 4))
    >>> bool(clf.score(X, y) > 0.8)
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "ridge_alpha": [Interval(Real, 0, None, closed="left")],
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "cv": ["cv_object", None],
        "tune_alpha": ["boolean"],
        "tune_C": ["boolean"],
        "max_outer_iter": [Interval(Integral, 1, None, closed="left")],
        "init_max_iter": [Interval(Integral, 0, None, closed="left")],
        "dict_init": ["array-like", None],
        "transform_alpha": [Interval(Real, 0, None, closed="left"), None],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "backend": [StrOptions({"auto", "host", "jax"})],
    }

    def __init__(self, n_components=None, *, alpha="auto", ridge_alpha=0.0, C=1.0, max_iter=30,
                 tol=1e-6, cv=5, tune_alpha=False, tune_C=False, max_outer_iter=10,
                 init_max_iter=30, dict_init=None, transform_alpha=None,
                 transform_max_iter=1000, random_state=None, verbose=0, backend="auto"):
        self.backend = backend
        self.n_components = n_components
        self.alpha = alpha
        self.ridge_alpha = ridge_alpha
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.tune_alpha = tune_alpha
        self.tune_C = tune_C
        self.max_outer_iter = max_outer_iter
        self.init_max_iter = init_max_iter
        self.dict_init = dict_init
        self.transform_alpha = transform_alpha
        self.transform_max_iter = transform_max_iter
        self.random_state = random_state
        self.verbose = verbose

    # -- fit -----------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn the dictionary and the classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : object
        """
        # Many small host-side solves (codes, the initial LogisticRegression) beside XLA:
        # one BLAS thread (see skimplicit._blas; 2x faster on a loaded 2-core machine).
        with one_blas_thread():
            X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
            check_classification_targets(y)
            le = LabelEncoder().fit(y)
            self.classes_ = le.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    "TaskDrivenDictionaryLearning needs samples of at least 2 classes in the "
                    f"data, but the data contains only one class: {self.classes_[0]!r}.")
            spec = TaskDrivenSpec(self, np.asarray(X, dtype=np.float64), y, le.transform(y),
                                  len(self.classes_))
            self.init_components_, self._x_unit = spec.D0.copy(), spec.u
            self.alpha_, self.C_ = spec.alpha, float(self.C)
            if self.tune_alpha or self.tune_C:  # the shared outer loop
                on_device = resolve_backend(self.backend) == "jax"
                with jax.default_device(None if on_device else jax.devices("cpu")[0]):
                    problem = spec.tuning_problem(self.C, self.tune_alpha, self.tune_C)
                    if on_device:
                        problem.to_device()
                    result = tune(problem, max_outer_iter=self.max_outer_iter,
                                  verbose=self.verbose, random_state=spec.rng)
                self.tuning_result_ = result
                self.history_ = result.history(problem.hyperparameters)
                self.alpha_ = float(result.best_params.get("alpha", self.alpha_))
                self.C_ = float(result.best_params.get("C", self.C_))
            fitted = spec.supervised_fit(self.alpha_, self.C_, max_iter=self.max_iter,
                                         tol=self.tol, early_stopping=self.cv is not None)
        for name, value in fitted.items():
            setattr(self, name, value)
        return self

    # -- codes and predictions -----------------------------------------------------------
    def _codes(self, X, alpha):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Z, _, ok = _encode_rows(np.asarray(X, np.float64), self.components_, alpha,
                                self.ridge_alpha, self.transform_max_iter)
        if not ok:
            warnings.warn("Sparse coding did not converge; increase transform_max_iter.",
                          ConvergenceWarning, stacklevel=3)
        return Z

    def transform(self, X):
        """Sparse codes of ``X`` under the learned dictionary (at ``transform_alpha``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        alpha = self.alpha_ if self.transform_alpha is None else self.transform_alpha
        return self._codes(X, alpha)

    def decision_function(self, X):
        """Logistic scores of the codes (at ``alpha_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        S = self._codes(X, self.alpha_) @ self.coef_.T + self.intercept_
        return S[:, 0] if S.shape[1] == 1 else S

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        S = self.decision_function(X)
        if S.ndim == 1:
            p1 = 1.0 / (1.0 + np.exp(-S))
            return np.column_stack([1.0 - p1, p1])
        S = S - S.max(axis=1, keepdims=True)
        E = np.exp(S)
        return E / E.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        S = self.decision_function(X)
        if S.ndim == 1:
            return np.column_stack([-np.logaddexp(0.0, S), -np.logaddexp(0.0, -S)])
        m = S.max(axis=1, keepdims=True)
        return S - m - np.log(np.exp(S - m).sum(axis=1, keepdims=True))

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        S = self.decision_function(X)
        idx = (S > 0).astype(int) if S.ndim == 1 else S.argmax(axis=1)
        return self.classes_[idx]

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
