"""ImplicitRidgeCV."""

from __future__ import annotations

import time
import warnings
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.utils import check_scalar
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import ImplicitLinearModelCV, check_bounds
from ._cv_problems import AdaptiveRidgeCVProblem, RidgeCVProblem
from ._ridge_loo import RidgeLOOProblem

__all__ = ["ImplicitRidgeCV"]


# Scorers whose leave-one-out value is a differentiable function of the residuals: tuned
# through the chain rule (RidgeLOOProblem's ``kind``). Any other scorer: the hypergradient
# of the MSE, and the point chosen by the scorer among the evaluated ones.
_LOO_KIND = {None: "weighted", "neg_mean_squared_error": "mse", "r2": "r2",
             "neg_root_mean_squared_error": "rmse"}


class _Predicted(RegressorMixin, BaseEstimator):
    """Scores given predictions with a scorer: ``scorer(_Predicted(), pred, y)``."""

    def fit(self, X, y=None):  # pragma: no cover - never fitted
        return self

    def predict(self, X):
        return X


def fit_ridge(X, y, sample_weight, alpha, *, fit_intercept, per_target=False):
    """scikit-learn's Ridge at ``alpha`` (a scalar, one per feature, or one per target
    with ``per_target``).

    Per-feature alphas are exact by rescaling columns: with ``w_j = v_j / sqrt(alpha_j)``,
    ``sum_j alpha_j w_j^2 = ||v||^2``, i.e. ``Ridge(alpha=1)`` on ``X diag(alpha)^-1/2``.
    """
    if sp.issparse(X):
        # The tuning solved dense systems exactly; refit the same way (scikit-learn's
        # sparse solvers are iterative at tol=1e-4).
        X = X.toarray()
    if np.ndim(alpha) and not per_target:
        scale = 1.0 / np.sqrt(np.asarray(alpha, float))
        Xs = X * scale
        est = Ridge(alpha=1.0, fit_intercept=fit_intercept).fit(Xs, y, sample_weight=sample_weight)
        return est.coef_ * scale, est.intercept_
    # The SVD solver: exact also at the regularization limits (alpha -> 0: least squares
    # of minimum norm), as RidgeCV's own refit through its decomposition.
    est = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="svd").fit(
        X, y, sample_weight=sample_weight)
    return est.coef_, est.intercept_


class ImplicitRidgeCV(ImplicitLinearModelCV):
    r"""Ridge regression with its penalty tuned by hypergradient descent.

    A drop-in for :class:`sklearn.linear_model.RidgeCV`: scikit-learn's
    :class:`~sklearn.linear_model.Ridge` objective

    .. math::
        \|y - X w - b\|_2^2 + \sum_j \alpha_j w_j^2,

    with one ``alpha`` shared by all features (or one per feature,
    ``alpha_per_feature=True``; or one per target, ``alpha_per_target=True``), chosen to
    minimize the cross-validation error: with ``cv=None`` the exact leave-one-out error
    as ``RidgeCV`` computes it (``e_i / (1 - h_ii)`` through one SVD of the scaled design,
    weighted as scikit-learn does), otherwise the K-fold validation MSE (each fold solved
    exactly, all folds in one batched JAX call). The hypergradient is exact (JAX), and
    fed to the shared outer loop (:func:`skimplicit.tuning.tune`): a coarse cover of the
    whole interval of alpha, 2 points a decade from strong to weak (with its
    hypergradients, which come at no extra cost), then, from its best basins, a
    bracketed line search in log alpha (L-BFGS-B for ``alpha_per_feature``'s two
    hyperparameters); a last safeguarded secant search on the hypergradient then
    converges the one-alpha minimum to rounding error. With K folds, a data-derived
    lower bound on which the best point sits is lowered by ``10^1.5`` (at most twice)
    when the hypergradient predicts a gain there.

    Parameters
    ----------
    alphas : 'auto', array-like of float or float, default='auto'
        'auto' (the one deliberate difference from ``RidgeCV``, whose default is the grid
        ``(0.1, 1.0, 10.0)``): the interval ``[1e-6, 1e6]`` times the data's own scale
        (the mean squared centered, weighted column norm), so that rescaling X or the
        weights rescales the chosen alpha and nothing else. A list sets the interval to
        ``[min, max]`` of its positive values, evaluated first (the outer loop's starts);
        a float, a single alpha.
    fit_intercept : bool, default=True
    scoring : str, callable or None, default=None
        ``None``: with ``cv=None``, scikit-learn's weighted mean squared leave-one-out
        error; with K folds, the validation MSE (``RidgeCV`` selects by R^2 there; its
        ``best_score_`` is reported as R^2 as well). ``'neg_mean_squared_error'``,
        ``'r2'`` and ``'neg_root_mean_squared_error'`` are differentiable functions of
        the leave-one-out residuals: tuned through the chain rule. Any other scorer:
        the hypergradient of the MSE, then the point with the best score among the
        evaluated alphas.
    cv : int, cross-validation generator or iterable, default=None
        ``None``: exact leave-one-out (as ``RidgeCV``); else K-fold as in ``RidgeCV``.
    gcv_mode : {'auto', 'svd', 'eigen'} or None, default=None
        Accepted as in ``RidgeCV`` (an SVD of the scaled design serves every mode: the
        same leave-one-out errors); 'svd' with a sparse X warns as scikit-learn does.
    store_cv_results : bool, default=False
        With ``cv=None``: keep ``cv_results_``.
    alpha_per_target : bool, default=False
        With ``cv=None`` and several targets: one alpha per target, each tuned on its own
        leave-one-out error (exactly as a fit on that target alone).
    alpha_init : 'auto' or float, default='auto'
        Starting alpha; 'auto': descents from the best basins of the coarse cover.
    bounds : 'auto' or (float, float), default='auto'
        An explicit search interval of alpha (overrides the one of ``alphas``).
    alpha_per_feature : bool, default=False
        One alpha per feature from the adaptive family
        ``alpha_j = alpha * (mean(|w|) / |w_j|) ** gamma``, ``w`` the one-alpha ridge solution
        at the coarse path's best point (recomputed on each training fold, on all the data
        for ``cv=None`` and the refit), ``gamma`` in ``[0, 2]``. ``alpha`` and ``gamma`` are
        tuned with the hypergradient with respect to every ``alpha_j`` chained through
        the family. Tuning the ``n_features`` alphas freely minimizes the CV loss further
        but overfits the folds (measured: CV MSE 35 % lower, test MSE not lower than
        ``RidgeCV``'s); the family's two hyperparameters do not.
    max_outer_iter, outer_tol, n_restarts, max_time, verbose, random_state, n_jobs :
        The shared outer-loop parameters (see :class:`ImplicitLassoCV`).
    copy_X : bool, default=True
        Accepted for compatibility; X is never modified.
    backend : {"auto", "host", "jax"}, default="auto"
        Where the tuning runs. The ridge problems are JAX kernels on either path;
        ``"jax"`` moves the folds (or the leave-one-out factors) to JAX's default device
        once per fit (float32 when ``X`` is float32), ``"host"`` keeps them in NumPy;
        ``"auto"``: ``"host"`` on a CPU backend, ``"jax"`` on a GPU or TPU.

    Attributes
    ----------
    alpha_ : float or ndarray of shape (n_features,) or (n_targets,)
    best_score_ : float or ndarray of shape (n_targets,)
        The score at ``alpha_`` (``scoring``; ``None``: the negative mean squared
        leave-one-out error, or the mean R^2 over the K folds).
    cv_results_ : ndarray of shape (n_samples, n_alphas) or (n_samples, n_targets, n_alphas)
        With ``store_cv_results=True``: per sample, the squared leave-one-out error
        (``scoring=None``) or the leave-one-out prediction, at each alpha of
        ``cv_results_alphas_``: the ``alphas`` given (in their order), else the alphas
        evaluated (decreasing).
    cv_results_alphas_ : ndarray of shape (n_alphas,)
    alpha_scale_, gamma_ : float
        With ``alpha_per_feature=True``: the family's tuned ``alpha`` and ``gamma``
        (``alphas_`` and ``history_["alpha"]`` then hold ``alpha``).
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    alphas_, mse_path_ : ndarray
        The alphas evaluated (decreasing) and their per-fold losses (with ``cv=None``,
        per-sample: ``mse_path_`` of shape (n_alphas, n_samples)).
    n_outer_iter_, cv_loss_, cv_loss_std_, history_, tuning_result_, \
n_features_in_, feature_names_in_ :
        As in :class:`ImplicitLassoCV`.

    See Also
    --------
    sklearn.linear_model.RidgeCV : grid search with efficient leave-one-out.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skimplicit.linear_model import ImplicitRidgeCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = ImplicitRidgeCV().fit(X, y)  # exact leave-one-out
    >>> bool(reg.alpha_ > 0), reg.coef_.shape
    (True, (10,))
    """

    _multi_output = True
    _always_store_results = True

    _parameter_constraints: dict = {
        **ImplicitLinearModelCV._parameter_constraints,
        "alphas": [StrOptions({"auto"}), "array-like", Interval(Real, 0, None, closed="neither")],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "gcv_mode": [StrOptions({"auto", "svd", "eigen"}), None],
        "store_cv_results": ["boolean"],
        "alpha_per_target": ["boolean"],
    }

    def __init__(self, alphas="auto", *, fit_intercept=True, scoring=None, cv=None,
                 gcv_mode=None, store_cv_results=False, alpha_per_target=False,
                 alpha_init="auto", bounds="auto", alpha_per_feature=False, max_outer_iter=30,
                 outer_tol=1e-4, n_restarts=1, max_time=None, verbose=0, random_state=None,
                 n_jobs=None, copy_X=True, backend="auto"):
        self.backend = backend
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.cv = cv
        self.gcv_mode = gcv_mode
        self.store_cv_results = store_cv_results
        self.alpha_per_target = alpha_per_target
        self.alpha_init = alpha_init
        self.bounds = bounds
        self.alpha_per_feature = alpha_per_feature
        self.max_outer_iter = max_outer_iter
        self.outer_tol = outer_tol
        self.n_restarts = n_restarts
        self.max_time = max_time
        self.verbose = verbose
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.copy_X = copy_X

    # -- validation and problem specification ----------------------------------------------
    def _check_alphas(self):
        """``(alphas given in order or None, positive starts decreasing or None)``, checked
        as ``RidgeCV`` does (``> 0`` with ``cv=None``, ``>= 0`` otherwise)."""
        if isinstance(self.alphas, str):
            return None, None
        kw = dict(target_type=Real, min_val=0.0,
                  include_boundaries="neither" if self.cv is None else "left")
        if np.ndim(self.alphas) == 0:
            given = [float(check_scalar(self.alphas, "alphas", **kw))]
        else:
            given = list(self.alphas)
            if len(given) == 1:
                check_scalar(given[0], "alphas", **kw)
            else:
                for index, alpha in enumerate(given):
                    check_scalar(alpha, f"alphas[{index}]", **kw)
            given = [float(a) for a in given]
        pos = np.unique([a for a in given if a > 0])[::-1]
        if pos.size == 0:
            raise ValueError(f"alphas must contain a positive value; got {self.alphas!r}.")
        return given, pos

    def _check_and_prepare(self, X, y, sample_weight):
        self._given, self._starts = self._check_alphas()
        if self.cv is not None:
            if self.store_cv_results:
                raise ValueError("cv!=None and store_cv_results=True are incompatible")
            if self.alpha_per_target:
                raise ValueError("cv!=None and alpha_per_target=True are incompatible")
        elif self.gcv_mode == "svd" and sp.issparse(X):
            warnings.warn(
                "The 'svd' mode is not supported for sparse X: the leave-one-out errors "
                "are computed from the densified design (scikit-learn 1.11 will raise).",
                FutureWarning, stacklevel=4)
        self._full = (X, y, sample_weight)
        if self.scoring is None:
            self._scorer = None
        else:
            self._scorer = check_scoring(Ridge(), scoring=self.scoring)

    def _splits(self, X, y, groups):
        if self.cv is not None:
            return super()._splits(X, y, groups)
        idx = np.arange(X.shape[0])  # leave-one-out on all the data: one pseudo-fold
        return [(idx, idx)]

    def _interval(self):
        b = check_bounds(self.bounds)
        if b is None and self._starts is not None:
            b = (float(self._starts[-1]), float(self._starts[0]))
        return b

    def _kind(self, y=None):
        """The leave-one-out loss of ``scoring`` (see ``_LOO_KIND``), reduced to the
        simplest equivalent one: with one target, R^2 and the RMSE are monotone in the
        MSE; without weights, the MSE is scikit-learn's default loss (the same numbers,
        so a target tuned alone or among several gets the same alpha)."""
        kind = _LOO_KIND.get(self.scoring, "mse") if isinstance(self.scoring, str) or \
            self.scoring is None else "mse"
        if y is not None and (y.ndim == 1 or y.shape[1] == 1) and kind in ("r2", "rmse"):
            kind = "mse"
        if kind == "mse" and not self._sw_given:
            kind = "weighted"
        return kind

    def _loo_problem(self, y, alpha_per_feature=False):
        X, _, sw = self._full
        problem = RidgeLOOProblem(X, y, sw, fit_intercept=self.fit_intercept,
                                  alpha_per_feature=alpha_per_feature,
                                  bounds=self._interval(), starts=self._starts,
                                  kind=self._kind(y))
        on_device, dtype = self._on_device(None)
        if on_device:
            problem.to_device(dtype)
        return problem

    def _make_tunable_problems(self, folds):
        if self.cv is None:
            y = self._full[1]
            if self.alpha_per_target and y.ndim == 2 and y.shape[1] > 1:
                if self.alpha_per_feature:
                    raise ValueError(
                        "alpha_per_feature=True and alpha_per_target=True are incompatible.")
                return [self._loo_problem(y[:, t]) for t in range(y.shape[1])]
            if self.alpha_per_feature:
                inner = self._loo_problem(y, alpha_per_feature=True)
                return [AdaptiveRidgeCVProblem(None, inner=inner)]
            return [self._loo_problem(y)]
        return [self.make_tunable_problem(folds)]

    def make_tunable_problem(self, folds, bounds=None):
        self._given, self._starts = self._check_alphas()
        b = self._interval()
        if self.alpha_per_feature:
            return AdaptiveRidgeCVProblem(folds, fit_intercept=self.fit_intercept, bounds=b)
        problem = RidgeCVProblem(folds, fit_intercept=self.fit_intercept, bounds=b,
                                 starts=self._starts)
        on_device, dtype = self._on_device(folds)
        if on_device:
            problem.to_device(dtype)
        return problem

    def _tune(self, problem, folds):
        result = super()._tune(problem, folds)
        if isinstance(problem, (RidgeLOOProblem, RidgeCVProblem)) and \
                not getattr(problem, "alpha_per_feature", False):
            # The polish is a continuation of the outer loop: it honours its budgets (no
            # polish after a stop on max_outer_iter, max_time or an interrupt).
            stopped = any(r in result.stop_reason
                          for r in ("max_outer_iter", "max_time", "interrupted"))
            if not stopped:
                spent = max((r["time"] for r in result.records), default=0.0)
                _secant_polish(problem, result, max_iter=min(40, self.max_outer_iter),
                               max_time=None if self.max_time is None
                               else self.max_time - spent)
        return result

    # -- attributes ---------------------------------------------------------------------
    def _store_params(self, best, result):
        self.alpha_ = best["alpha"]
        if self.alpha_per_feature:
            self.gamma_ = float(best["gamma"])
            self.alpha_scale_ = float(best["alpha"])
            # The refit computes its weights at the same one-alpha point as the folds.
            self._base_alpha = result.best_evaluation.info["base_alpha"]
        self._path_attributes(result)

    def _store_results(self, results, best):
        """``alpha_`` per target, ``best_score_``, ``cv_results_``; the choice by a
        non-differentiable scorer among the evaluated points."""
        problems = self._problems_of(results)
        per_target = len(results) > 1
        chosen = []
        for problem, result in zip(problems, results):
            alpha = result.best_params["alpha"]
            if self._scorer is not None and self.scoring not in _LOO_KIND and \
                    not self.alpha_per_feature:
                # Any other scorer: its best among the evaluated points (a local version of
                # "select by the user's scorer", see the report); ties go to the first of
                # the alphas given, as in RidgeCV's grid.
                pts = [r["params"]["alpha"] for r in self._path_records(result)]
                if self._given is not None:
                    given = [a for a in self._given if a in pts]
                    pts = given + [a for a in pts if a not in given]
                scores = [self._score_at(problem, a) for a in pts]
                alpha = pts[int(np.nanargmax(scores))]
            chosen.append(alpha)
        if not self.alpha_per_feature:
            self.alpha_ = np.array(chosen, float) if per_target else chosen[0]
        if self.alpha_per_feature:
            score = self._score_at(problems[0], None)
            self.best_score_ = score
        elif per_target:
            self.best_score_ = np.array([self._score_at(p, a) for p, a in zip(problems, chosen)])
        else:
            self.best_score_ = self._score_at(problems[0], chosen[0])
        if self.store_cv_results and self.cv is None and not self.alpha_per_feature:
            self._cv_results(problems, results)

    def _problems_of(self, results):
        return self._problems

    def _score_at(self, problem, alpha):
        """The score of ``scoring`` at ``alpha`` (as ``RidgeCV``'s ``best_score_``)."""
        if alpha is None:  # adaptive family: the loss at the best point
            return -float(self.cv_loss_)
        if isinstance(problem, RidgeLOOProblem):
            ev = problem.evaluate({"alpha": alpha})
            looe = ev.info["looe"]
            if self._scorer is None:
                return -float(np.mean(looe * looe))
            pred = problem.predictions(looe)
            y = problem.y2 if problem.multi else problem.y2[:, 0]
            return float(self._scorer(_Predicted(), pred, y))
        scorer = self._scorer if self._scorer is not None else check_scoring(Ridge())
        preds = problem.fold_predictions(alpha)
        scores = []
        for f, pred in zip(problem.folds, preds):
            y = f.y_test
            scores.append(float(scorer(_Predicted(), pred, y)))
        return float(np.mean(scores))

    def _cv_results(self, problems, results):
        if self._given is not None:
            cols = np.asarray(self._given, float)
        else:
            cols = np.array(sorted({float(r["params"]["alpha"]) for res in results
                                    for r in res.records}, reverse=True))
        out = []
        for problem in problems:
            per = []
            for a in cols:
                looe = problem.evaluate({"alpha": a}).info["looe"]
                per.append(problem.squared_errors(looe) if self._scorer is None
                           else problem.predictions(looe))
            out.append(np.stack(per, axis=-1))  # (n[, t], n_cols)
        res = out[0] if len(out) == 1 else np.stack(out, axis=1)  # per target: (n, t, k)
        self.cv_results_, self.cv_results_alphas_ = res, cols

    def _refit(self, X, y, sample_weight):
        if self.alpha_per_feature:
            # alpha_j = alpha_scale_ (m / |w_j|)^gamma_ with w the one-alpha ridge solution
            # on all the data at the coarse path's best point (as on each fold); a best
            # point on the path itself has gamma_ = 0 and no weights yet.
            lw = np.zeros(X.shape[1])
            if self._base_alpha is not None:
                w, _ = fit_ridge(X, y, sample_weight, self._base_alpha,
                                 fit_intercept=self.fit_intercept)
                w = np.asarray(w, float).reshape(-1, X.shape[1]).T  # (p, targets)
                lw = AdaptiveRidgeCVProblem.weights(w[None])[0]
            self.alpha_ = AdaptiveRidgeCVProblem.family(self.alpha_scale_, self.gamma_, lw)
        per_target = not self.alpha_per_feature and np.ndim(self.alpha_) > 0
        self.coef_, self.intercept_ = fit_ridge(
            X, y, sample_weight if self._sw_given else None, self.alpha_,
            fit_intercept=self.fit_intercept, per_target=per_target)
        for name in ("_full", "_problems"):
            self.__dict__.pop(name, None)


def _secant_polish(problem, result, max_iter=40, max_time=None):
    """Converge a one-alpha minimum of an exact, smooth problem to rounding error.

    The outer loop stops within about 2 % in ``log alpha``; from its best point, a
    safeguarded secant (Illinois) search on ``d loss / d log alpha`` between the nearest
    evaluated points where it changes sign (none: nothing to do, e.g. a best point on a
    bound), within ``max_iter`` evaluations and ``max_time`` seconds. Its evaluations are
    recorded (phase "polish", counted as outer steps); the best point is replaced only
    by a lower loss. The best point is then stationary to
    rounding error: a finite-difference check of the hypergradient is meaningful away
    from it (``check_hypergradient(..., params=...)``), not at it.
    """
    hp = problem.hyperparameters[0]
    recs = [r for r in result.records
            if r["evaluation"].grad is not None and np.isfinite(r["evaluation"].loss)]
    if not recs or hp.size is not None:
        return
    z = np.array([np.log(float(r["params"]["alpha"])) for r in recs])
    g = np.array([float(r["evaluation"].grad["alpha"]) * float(r["params"]["alpha"])
                  for r in recs])
    zb = np.log(float(result.best_params["alpha"]))
    left = (z <= zb) & (g < 0)
    right = (z >= zb) & (g > 0)
    if not left.any() or not right.any():
        return
    ia = np.flatnonzero(left)[np.argmax(z[left])]
    ib = np.flatnonzero(right)[np.argmin(z[right])]
    a, ga, b, gb = z[ia], g[ia], z[ib], g[ib]
    t0 = time.perf_counter()
    side = 0
    for _ in range(max_iter):
        if b - a <= 1e-13 * max(1.0, abs(a)):
            break
        if max_time is not None and time.perf_counter() - t0 > max_time:
            break
        c = b - gb * (b - a) / (gb - ga)
        if not a < c < b:
            c = 0.5 * (a + b)
        alpha = float(np.exp(c))
        params = {"alpha": alpha}
        ev = problem.evaluate(params)
        gc = float(ev.grad["alpha"]) * alpha
        result.records.append({"params": params, "evaluation": ev,
                               "time": time.perf_counter() - t0, "phase": "polish",
                               "precision": 1.0, "grad_norm": abs(gc),
                               "grad_z": np.array([gc])})
        result.n_iter += 1  # an outer step (n_outer_iter_, the trajectory's numbering)
        if np.isfinite(ev.loss) and ev.loss <= result.best_loss:
            result.best_params, result.best_loss, result.best_evaluation = params, ev.loss, ev
        if not np.isfinite(gc) or gc == 0:
            break
        if gc < 0:
            a, ga = c, gc
            if side == -1:
                gb *= 0.5
            side = -1
        else:
            b, gb = c, gc
            if side == 1:
                ga *= 0.5
            side = 1
