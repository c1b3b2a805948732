"""ImplicitLogisticRegressionCV."""

from __future__ import annotations

import inspect
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.metrics import get_scorer, get_scorer_names, make_scorer
from sklearn.model_selection import check_cv
from sklearn.utils._metadata_requests import _raise_for_params
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_method_params, validate_data

from ..tuning._constant import tune_or_constant
from ..tuning._outer import TuningResult
from ..tuning._protocol import Evaluation, Hyperparameter
from ..utils import (check_fold_classes, check_fold_weights, check_sample_weight,
                     merge_duplicate_rows)
from ..utils._rows import fold_views, merge_rows_of, unique_rows
from ._base import OUTER_LOOP_CONSTRAINTS, check_bounds
from ..tuning import FoldData, device_dtype, resolve_backend
from ..solvers._host_logistic import fit_logistic, host_matrix, one_hot
from ._device_logistic import DeviceLogisticProblem, device_unsupported
from ._logistic_problem import LogisticCVProblem, encode_folds

__all__ = ["ImplicitLogisticRegressionCV"]

_TOL_FLOOR = 1e-13
_SOLVERS = ("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga")
# Scorings whose loss is differentiable in the model: tuned through the chain rule.
_DIFFERENTIABLE = {"neg_log_loss": "log_loss", "neg_brier_score": "brier"}


def _is_number(v):
    return isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v)


def _check_solver(solver, penalty, dual):
    """scikit-learn's errors for a solver that does not support the penalty or ``dual``
    (the same messages as ``LogisticRegressionCV``; every solver name is accepted
    otherwise: the inner solver is chosen by the penalty)."""
    if solver not in ("liblinear", "saga") and penalty != "l2":
        raise ValueError(
            f"Solver {solver} supports only 'l2' or None penalties, got {penalty} penalty."
        )
    if solver != "liblinear" and dual:
        raise ValueError(f"Solver {solver} supports only dual=False, got dual={dual}")
    if penalty == "elasticnet" and solver != "saga":
        raise ValueError(
            f"Only 'saga' solver supports elasticnet penalty, got solver={solver}."
        )
    if dual and penalty != "l2":
        raise ValueError(
            "Unsupported set of arguments: The combination of penalty='l1' and "
            "loss='logistic_regression' are not supported when dual=True"
        )


def _embed(W, b, fit_intercept):
    """A fold's solution as a row of ``coefs_paths_``: ``(K, n_features [+ 1])``."""
    coef = np.asarray(W, float).T
    if fit_intercept:
        coef = np.hstack([coef, _centered(b)[:, None]])
    return coef


def _centered(b):
    """A multinomial intercept with mean zero (scikit-learn's symmetric parametrization;
    the softmax does not see its mean, which Newton steps at rounding level can move)."""
    b = np.array(b, float)
    if b.size > 1 and np.all(np.isfinite(b)):
        b -= b.mean()
    return b


def _fit_present(X, y_enc, sw, present, n_classes, C, rho, state, est):
    """One training fold at ``(C, rho)`` when it may miss classes (the grid path).

    A class without training samples has no finite optimum with an intercept: it is
    fitted in the limit, probability 0 (intercept ``-inf``, coefficients 0), the other
    classes by the problem on the classes present (a single class present: probability 1
    for it). Without an intercept the penalty keeps every class finite: the problem is
    solved as it is. Returns ``(state, n_iter, coef)`` (``coef`` as :func:`_embed`).
    """
    p = X.shape[1]
    K = 1 if n_classes == 2 else n_classes
    kw = dict(tol=est._tol(), max_iter=est.max_iter, fit_intercept=est.fit_intercept)
    W0, b0 = state if state is not None else (None, None)
    if present.size == n_classes or not est.fit_intercept:
        Y = one_hot(y_enc, n_classes)
        W, b, it, _ = fit_logistic(X, Y, sw, np.full(K, 1.0 / C), rho, W0, b0, **kw)
        return (W, b), it, _embed(W, b, est.fit_intercept)
    W = np.zeros((p, K))
    b = np.full(K, -np.inf)
    if present.size == 1:
        if n_classes == 2:
            b[0] = np.inf if present[0] == 1 else -np.inf
        else:
            b[present[0]] = 0.0
        return None, 0, _embed(W, b, True)
    Y = (np.searchsorted(present, y_enc)[:, None] == np.arange(present.size)).astype(float)
    Wp, bp, it, _ = fit_logistic(X, Y, sw, np.full(present.size, 1.0 / C), rho, W0, b0, **kw)
    W[:, present] = Wp
    b[present] = bp
    return (Wp, bp), it, _embed(W, b, True)


class _Recording:
    """A tunable problem (host or device) recording each fold's solution in
    ``info["coefs"]`` (for ``coefs_paths_`` and the user's scorer) and taking the user's
    ``Cs`` as its cover."""

    def __init__(self, folds, *, cover=None, hints=None, **kwargs):
        super().__init__(folds, **kwargs)
        self._cover = cover
        self._hints = hints or {}

    def bound_hint(self, name, side):
        """The parameter that set the bound (``Cs``, ``l1_ratios``), else the default."""
        hint = super().bound_hint(name, side)
        if hint is None or name not in self._hints:
            return hint
        return self._hints[name]

    def initial_points(self):
        if self._cover is None:
            return super().initial_points()
        return [dict(p) for p in self._cover]

    def evaluate(self, params, **kwargs):
        ev = super().evaluate(params, **kwargs)
        ev.info["coefs"] = [(np.array(W, float), np.array(b, float))
                            for W, b in zip(self._W, self._b)]
        return ev


class _RecordingProblem(_Recording, LogisticCVProblem):
    """The host problem, recording (see :class:`_Recording`)."""


class _RecordingDeviceProblem(_Recording, DeviceLogisticProblem):
    """The device problem (``backend="jax"``), recording (see :class:`_Recording`)."""


class ImplicitLogisticRegressionCV(LinearClassifierMixin, BaseEstimator):
    r"""Logistic regression with ``C`` (and ``l1_ratio``) tuned by hypergradient descent.

    A drop-in for :class:`sklearn.linear_model.LogisticRegressionCV`. On each training
    fold and in the final refit it minimizes scikit-learn's ``LogisticRegression`` objective

    .. math::
        C \sum_i s_i \, \ell(y_i, x_i^\top W + b)
        + \rho \|W\|_1 + \frac{1 - \rho}{2} \|W\|_2^2, \qquad \rho = \text{l1\_ratio},

    with :math:`s_i` the sample weight times the class weight, :math:`\ell` the binary
    logistic loss (one coefficient vector, for ``classes_[1]``) or the multinomial loss
    (one vector per class, scikit-learn's symmetric parametrization: the intercept has
    mean zero), and the intercept :math:`b` not penalized. With ``C_per_class=True``
    (three classes or more) each class has its own :math:`C_k`; the objective is then

    .. math::
        \sum_i s_i \, \ell(y_i, x_i^\top W + b)
        + \sum_k \frac{1}{C_k} \Big(\rho \|W_k\|_1 + \frac{1 - \rho}{2} \|W_k\|_2^2\Big),

    which for equal :math:`C_k = C` is the one above divided by :math:`C`.

    ``C`` is chosen to minimize the mean over the (stratified) folds of the held-out
    log-loss (or Brier score), weighted by the test samples' ``sample_weight``. Instead of
    a grid, the gradient of that loss with respect to :math:`\log C` (and :math:`\rho`)
    is obtained by implicit differentiation of each fold's optimality conditions on its
    support, all folds in one batched JAX call, and fed to the shared outer loop
    (:func:`skimplicit.tuning.tune`): a warm-started cover of the whole interval of ``C``
    in half-decade steps from the lower bound up, then, from its best basins, a
    bracketed line search in :math:`\log C` (L-BFGS-B when several hyperparameters are
    tuned: ``l1_ratio``, or one ``C`` per class).

    Every parameter of scikit-learn 1.9's ``LogisticRegressionCV`` is accepted, with the
    defaults scikit-learn moves to after its deprecations and no ``FutureWarning``; the
    differences are listed in the user guide ("Differences from scikit-learn").

    Parameters
    ----------
    Cs : int or array-like of float, default=10
        An int sets the interval of ``C`` only: the automatic one (see ``bounds``), not
        scikit-learn's fixed grid ``logspace(-4, 4, Cs)`` (used only when a training fold
        misses a class, see below). A list sets the interval ``[min(Cs), max(Cs)]``
        (unless ``bounds`` is given) and its points are the coarse cover evaluated before
        the descents; a single value is evaluated as it is (nothing to tune).
    l1_ratios : array-like of float in [0, 1], default=(0.0,)
        One value fixes the penalty's mix (0: l2, 1: l1, in between: elastic net);
        several are tuned continuously over ``[min, max]`` together with ``C`` (the listed
        values are coarse starts when ``Cs`` is a list). ``None`` (deprecated, with
        scikit-learn's ``FutureWarning``) is l2.
    fit_intercept : bool, default=True
    cv : int, cross-validation generator or iterable, default=None
        ``None``: 5-fold ``StratifiedKFold``; an int: that many stratified folds.
    dual : bool, default=False
        scikit-learn's errors for the solvers and penalties without a dual; ``dual=True``
        (liblinear, l2) solves the primal problem, whose solution is the same.
    penalty : {'l1', 'l2', 'elasticnet'}, default='deprecated'
        Deprecated as in scikit-learn (a ``FutureWarning``): use ``l1_ratios``.
    scoring : str, callable or None, default='neg_log_loss'
        ``'neg_log_loss'`` and ``'neg_brier_score'`` are tuned through their
        hypergradients (chain rule). Any other scorer (a string such as ``'accuracy'`` or
        ``'roc_auc'``, a callable ``scorer(estimator, X, y)``, ``None`` for accuracy) is
        not differentiable: the descent follows the log-loss hypergradient and the point
        is then selected by this scorer among the points evaluated (each fold's model
        scored as ``LogisticRegressionCV`` scores it). Also used by :meth:`score`.
    solver : {'lbfgs', 'liblinear', 'newton-cg', 'newton-cholesky', 'sag', 'saga'}, \
default='lbfgs'
        Accepted with scikit-learn's errors for the penalties (``l1_ratios``) and
        ``dual`` it does not support, and for ``liblinear`` with three classes or more;
        the inner solver is then chosen by the penalty (Newton-CG for l2, L-BFGS-B with
        an active-set Newton polish otherwise). Ignored when ``l1_ratio`` is set.
    tol : float, default=1e-6
        Inner tolerance of the final refit, with scikit-learn's meaning (largest entry of
        the gradient of its mean-loss objective) on standardized columns: the solvers
        work with the coefficients of the columns divided by their (weighted) standard
        deviations, so the tolerance means the same whatever the units of each column
        (scikit-learn's absolute test stops at once on data scaled by 1e-6, and almost
        never on data scaled by 1e6); during tuning, inner solves use
        ``min(tol, 1e-6)``, tightened over the outer steps (down to a hundredth of it),
        except on the coarse path's points after one more than 6 % above the path's best
        loss: those are first solved at 100 times that (at most 1e-4), and kept so when
        they are that far too. Tighter than scikit-learn's
        default 1e-4 (at which coefficients can be off by percents), since Newton's
        method gets there in one or two more steps. Values below 1e-13 (under the
        rounding of the gradient) act as 1e-13.
    max_iter : int, default=1000
        Iteration cap of the inner solver (Newton steps for l2, L-BFGS-B iterations
        otherwise).
    class_weight : dict or 'balanced', default=None
        Weights of the classes in the training loss (as in ``LogisticRegressionCV``,
        'balanced' computed once on the whole ``y``); the validation loss is weighted by
        ``sample_weight`` only.
    n_jobs : int, default=None
        Restarts run in parallel through joblib.
    verbose : int, default=0
        One line per evaluation of the CV loss when > 0.
    refit : bool, default=True
        True: refit on the whole data at the point of best mean score. False, as
        scikit-learn: each fold's best point, ``coef_`` the mean of their fold models,
        ``C_`` and ``l1_ratio_`` the means of their values.
    intercept_scaling : float, default=1.0
        Validated as in scikit-learn; unused: the intercept is never penalized
        (liblinear's synthetic feature penalizes it).
    random_state : int, RandomState instance or None, default=None
        For random restarts.
    use_legacy_attributes : bool, default=False
        The layout of ``C_``, ``l1_ratio_``, ``scores_``, ``coefs_paths_`` and ``n_iter_``:
        scikit-learn's new one (False) or its legacy one (True: per-class dicts and
        arrays of ``C_`` repeated).
    l1_ratio : float in [0, 1], 'tune' or None, default=None
        skimplicit's own vocabulary, overriding ``l1_ratios`` (and ``solver``): a fixed
        mix, or 'tune' to tune it within ``l1_ratio_bounds`` starting from 0.5.
    C_init : 'auto', float or array-like of shape (n_classes,), default='auto'
        Starting ``C``; 'auto': descents from the best basins of the coarse cover.
    C_per_class : bool, default=False
        One ``C`` per class (multinomial problems only: a binary problem has one
        coefficient vector).
    bounds : 'auto' or (float, float), default='auto'
        Search interval of ``C``, in the data's own units (rescaling X or the sample
        weights rescales it as it rescales the optimum). 'auto': ``[1e-3, 1e4] * c_l2``
        for the l2 penalty, ``[1.05, 1e4] * c_min`` for the l1 penalty and ``[1.05 rho_max
        c_min, 1e4 max(c_min, c_l2)]`` for the elastic net, where ``c_min = 1 / ||X^T (s
        (p_0 - y))||_inf`` is the ``C`` below which the l1 solution is zero (scikit-learn's
        ``l1_min_c``; it scales like ``1 / X``) and ``c_l2 = 1 / (2 lambda)``, ``lambda``
        the mean eigenvalue of the loss's Hessian at the origin (it scales like
        ``1 / X^2``, as the l2 optimum), both the largest over the training folds. When
        the best point sits on this automatic upper bound and its hypergradient predicts
        a gain beyond it (nearly separable data), the bound grows by ``10^1.5``, at most
        twice (not when ``l1_ratio`` is tuned); a bound given here never moves.
    l1_ratio_bounds : (float, float), default=(0.05, 1.0)
        Search interval of ``l1_ratio`` when ``l1_ratio='tune'``.
    max_outer_iter : int, default=30
        Hypergradient evaluations per start after the coarse cover.
    outer_tol : float, default=1e-4
        Relative decrease of the CV loss under which the descent stops.
    n_restarts : int, default=1
        Least number of starts: the coarse cover's best basins (up to 3 within 5 % of
        the best are always descended), then its next best points, then random points.
    max_time : float, default=None
        Time budget in seconds; the best point seen is kept.
    backend : {"auto", "host", "jax"}, default="auto"
        Where the tuning runs. ``"host"``: NumPy / SciPy inner solvers per fold, the
        hypergradient in JAX; ``"jax"``: all folds' inner solves (Newton-CG for l2; FISTA
        then a Newton polish on the support for l1 and elastic net) and the hypergradient
        in one compiled JAX program per evaluation on JAX's default device, the folds
        moved there once (float32 when ``X`` is float32: inner tolerance floored at 1e-5;
        measured, the tuned ``C`` within 1.2 % of float64's, see
        :mod:`~skimplicit.linear_model._device_logistic`); ``"auto"``: ``"host"`` when JAX's default
        backend is the CPU, ``"jax"`` on a GPU or TPU. ``C_per_class=True`` and sparse
        data too large to densify run on the host (with a ``UserWarning``). The refit
        runs on the host. See the user guide's "Accelerators" page.

    Attributes
    ----------
    C_ : float or ndarray of shape (n_classes,)
        The chosen ``C`` (an array with ``C_per_class=True``; with
        ``use_legacy_attributes=True``, of shape (1,) or (n_classes,), repeated).
    l1_ratio_ : float or ndarray
        The chosen ``l1_ratio`` (legacy layout: repeated as ``C_``).
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    Cs_ : ndarray of shape (n_points,)
        The values of ``C`` evaluated, increasing (``(n_points, n_classes)`` with
        ``C_per_class=True``).
    l1_ratios_ : ndarray of shape (1,) or (n_points,)
        The fixed ``l1_ratio`` (``[None]`` for ``l1_ratios=None``), or, when it is tuned,
        the ``l1_ratio`` of each evaluated point (``Cs_[j], l1_ratios_[j]``: point ``j``).
    scores_ : ndarray of shape (n_folds, 1, n_points) or dict
        The score of each fold's model at each point (``-`` the loss for the
        differentiable scorings). Legacy: a dict over ``classes_`` (``classes_[1]`` only
        for binary problems) of ``(n_folds, n_points, 1)`` arrays, ``(n_folds, n_points)``
        for ``l1_ratios=None``.
    coefs_paths_ : ndarray of shape (n_folds, 1, n_points, n_classes or 1, n_dof) or dict
        Each fold's coefficients (intercept last) at each point. Legacy: a dict over the
        classes of ``(n_folds, n_points, 1, n_dof)`` arrays (without the third axis for
        ``l1_ratios=None``).
    n_iter_ : ndarray of shape (n_folds, 1, n_points)
        Inner iterations of each fold at each point (legacy: ``(1, n_folds, n_points, 1)``).
    n_iter_refit_ : int
        Inner iterations of the final refit.
    n_outer_iter_ : int
        Hypergradient evaluations after the coarse path.
    cv_loss_, cv_loss_std_ : float
        Mean and standard deviation over the folds of the held-out loss (log-loss, or
        Brier score) at ``C_``.
    history_ : dict of ndarray
        One entry per evaluation: ``C``, ``grad_C``, (``l1_ratio``, ``grad_l1_ratio``),
        ``loss``, ``loss_std``, ``grad_norm``, ``time``, ``precision``, ``converged``,
        ``phase``.
    tuning_result_ : TuningResult
        The outer loop's full record.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    sklearn.linear_model.LogisticRegressionCV : The grid twin (a path of ``Cs`` values
        per fold, best mean score).
    sklearn.linear_model.LogisticRegression : The model refitted at ``C_``.
    ImplicitLassoCV : The same machinery for the Lasso.

    Notes
    -----
    Unlike ``LogisticRegressionCV``, ``C_`` is not restricted to a grid: it is a local
    minimum of the CV log-loss, descended from the best basins of the coarse cover, each
    fold's inner solve warm-started from its previous solution. On the host path
    (``backend="host"``, the default on a CPU) inner solves run on the host (Newton-CG
    for the l2 penalty; L-BFGS-B on the split ``W+ - W-`` then a Newton polish on the
    support otherwise; one BLAS thread for folds of moderate size), the hypergradient
    in JAX (float64), compiled once per fit (folds padded to bucketed shapes). On the JAX
    path both run in one compiled program per evaluation (see ``backend``).

    A training fold without samples of some class is scored as scikit-learn scores it,
    by the scorer, the missing class fitted in the limit (probability 0, intercept
    ``-inf``; ``neg_log_loss`` clips it at the float epsilon, as ``log_loss`` does), over
    the grid of ``Cs`` (an int: ``logspace(-4, 4, Cs)``) and ``l1_ratios``, without a
    descent.

    References
    ----------
    Blondel et al., "Efficient and Modular Implicit Differentiation", NeurIPS 2022.
    Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016.
    Bertrand et al., "Implicit differentiation for fast hyperparameter selection in
    non-smooth convex learning", JMLR 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skimplicit.linear_model import ImplicitLogisticRegressionCV
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), ImplicitLogisticRegressionCV(cv=3)).fit(X, y)
    >>> bool(clf.score(X, y) > -0.1)  # scoring: neg_log_loss, as LogisticRegressionCV
    True
    >>> clf[-1].coef_.shape
    (1, 30)
    """

    _parameter_constraints: dict = {
        "Cs": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "l1_ratios": ["array-like", None],
        "fit_intercept": ["boolean"],
        "cv": ["cv_object"],
        "dual": ["boolean"],
        "penalty": [StrOptions({"l1", "l2", "elasticnet"}), Hidden(StrOptions({"deprecated"}))],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "solver": [StrOptions(set(_SOLVERS))],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "refit": ["boolean"],
        "intercept_scaling": [Interval(Real, 0, None, closed="neither")],
        "use_legacy_attributes": ["boolean"],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), StrOptions({"tune"}), None],
        "C_init": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"),
                   "array-like"],
        "C_per_class": ["boolean"],
        "bounds": [StrOptions({"auto"}), tuple, list],
        "l1_ratio_bounds": [tuple, list],
        "backend": [StrOptions({"auto", "host", "jax"})],
        **OUTER_LOOP_CONSTRAINTS,
    }

    def __init__(self, *, Cs=10, l1_ratios=(0.0,), fit_intercept=True, cv=None, dual=False,
                 penalty="deprecated", scoring="neg_log_loss", solver="lbfgs", tol=1e-6,
                 max_iter=1000, class_weight=None, n_jobs=None, verbose=0, refit=True,
                 intercept_scaling=1.0, random_state=None, use_legacy_attributes=False,
                 l1_ratio=None, C_init="auto", C_per_class=False, bounds="auto",
                 l1_ratio_bounds=(0.05, 1.0), max_outer_iter=30, outer_tol=1e-4,
                 n_restarts=1, max_time=None, backend="auto"):
        self.Cs = Cs
        self.l1_ratios = l1_ratios
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.dual = dual
        self.penalty = penalty
        self.scoring = scoring
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.refit = refit
        self.intercept_scaling = intercept_scaling
        self.random_state = random_state
        self.use_legacy_attributes = use_legacy_attributes
        self.l1_ratio = l1_ratio
        self.C_init = C_init
        self.C_per_class = C_per_class
        self.bounds = bounds
        self.l1_ratio_bounds = l1_ratio_bounds
        self.max_outer_iter = max_outer_iter
        self.outer_tol = outer_tol
        self.n_restarts = n_restarts
        self.max_time = max_time
        self.backend = backend

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- parameters -----------------------------------------------------------------------
    def _l1_spec(self, warn=True):
        """The penalty's mix: ``(rhos, tuned, (low, high), l1_ratios_none, penalty)``.

        ``rhos``: the listed values (coarse starts when tuned); ``tuned``: whether
        ``l1_ratio`` is tuned within ``(low, high)``. scikit-learn's checks, warnings and
        errors (``penalty``, ``l1_ratios``, ``solver``, ``dual``), unless our own
        ``l1_ratio`` is set (it overrides ``l1_ratios`` and ignores ``solver``).
        """
        l1_ratios = self.l1_ratios
        if self.penalty == "deprecated":
            if l1_ratios is None and warn:
                warnings.warn(
                    "'l1_ratios=None' was deprecated in version 1.8 and will trigger an "
                    "error in 1.10. Use an array-like with values in [0, 1] instead.",
                    FutureWarning, stacklevel=3,
                )
            vals = None if l1_ratios is None else np.asarray(l1_ratios, dtype=object).ravel()
            if vals is None or (vals.size and all(_is_number(v) and v == 0 for v in vals)):
                penalty = "l2"
            elif vals.size and all(_is_number(v) and v == 1 for v in vals):
                penalty = "l1"
            else:
                penalty = "elasticnet"
        else:
            penalty = self.penalty
            if warn:
                warnings.warn(
                    "'penalty' was deprecated in version 1.8 and will be removed in 1.10. To "
                    "avoid this warning, leave 'penalty' set to its default value and use "
                    "'l1_ratios' and 'Cs' instead. Use l1_ratios=(0,) instead of "
                    "penalty='l2', l1_ratios=(1,) instead of penalty='l1', l1_ratios set "
                    "to floats between 0 and 1 instead of penalty='elasticnet', and "
                    "Cs=(np.inf,) instead of penalty=None.",
                    FutureWarning, stacklevel=3,
                )
        if self.l1_ratio is None:
            _check_solver(self.solver, penalty, self.dual)
        if penalty == "elasticnet":
            vals = [] if l1_ratios is None else list(np.asarray(l1_ratios, dtype=object).ravel())
            if not vals or not all(_is_number(v) and 0 <= v <= 1 for v in vals):
                raise ValueError(
                    "l1_ratios must be an array-like of numbers between 0 and 1; got "
                    f"(l1_ratios={l1_ratios!r})"
                )
            rhos = sorted({float(v) for v in vals})
        else:
            if l1_ratios is not None and self.penalty != "deprecated" and warn:
                warnings.warn("l1_ratios parameter is only used when penalty is "
                              f"'elasticnet'. Got (penalty={penalty})", stacklevel=3)
            rhos = [1.0 if penalty == "l1" else 0.0]
        if self.l1_ratio is not None:  # our own vocabulary
            if isinstance(self.l1_ratio, str):
                lo, hi = (float(b) for b in self.l1_ratio_bounds)
                if not 0 < lo < hi <= 1:
                    raise ValueError("l1_ratio_bounds must satisfy 0 < low < high <= 1; got "
                                     f"{self.l1_ratio_bounds}.")
                return [0.5], True, (lo, hi), l1_ratios is None, penalty
            rhos = [float(self.l1_ratio)]
        if len(rhos) == 1:
            return rhos, False, None, l1_ratios is None, penalty
        return rhos, True, (rhos[0], rhos[-1]), False, penalty

    def _Cs_list(self):
        """``None`` (an int: the automatic interval) or the sorted distinct values."""
        if isinstance(self.Cs, Integral):
            return None
        Cs = np.unique(np.asarray(self.Cs, dtype=float).ravel())
        if Cs.size == 0 or not np.all(np.isfinite(Cs)) or np.any(Cs <= 0):
            raise ValueError(
                "Cs must be an int or a non-empty list of positive finite floats (C=inf, "
                f"no penalty, has no cross-validation to do); got Cs={self.Cs!r}."
            )
        return Cs

    def _loss(self):
        """The problem's validation loss for a differentiable scoring, else None."""
        return _DIFFERENTIABLE.get(self.scoring) if isinstance(self.scoring, str) else None

    def _tol(self):
        """``tol``, floored at 1e-13: below it the gradient test is under the rounding of
        the gradient (a sum over the samples), which no solver can pass."""
        return max(float(self.tol), _TOL_FLOOR)

    def _get_scorer(self):
        """The scorer of ``scoring`` (accuracy for ``None``), as ``LogisticRegressionCV``."""
        return get_scorer(self.scoring if self.scoring is not None else "accuracy")

    # -- fit ---------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, **params):
        """Tune ``C`` (and ``l1_ratio``) by hypergradient descent on the K-fold CV loss,
        select the point by ``scoring`` among those evaluated, then refit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (strings or integers), at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
        **params : dict
            ``groups`` for a group splitter; with metadata routing enabled, parameters
            of the splitter and of the scorer.

        Returns
        -------
        self : object
        """
        _raise_for_params(params, self, "fit", allow={"groups"})
        rhos, tune_rho, rho_bounds, l1_none, penalty = self._l1_spec()
        Cs_list = self._Cs_list()
        X, y, y_enc, n_classes = self._validate_data_and_classes(X, y)
        sample_weight_in = sample_weight
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        sw_train = sample_weight
        if self.class_weight is not None:
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y,
                                      sample_weight=sample_weight)
            sw_train = sample_weight * cw[y_enc]
        self._check_weights(sw_train, y_enc, "the data")
        groups, self._score_params = self._route(params, sample_weight_in, sample_weight)
        splits = list(check_cv(self.cv, y, classifier=True).split(X, y, groups))
        check_fold_weights(splits, sample_weight)
        loss = self._loss()
        # A training fold missing a class: the grid path (see _fit_present), every fold
        # scored by the scorer as LogisticRegressionCV scores it (the log-loss clips the
        # probability 0 of the missing class at the float epsilon, as log_loss does).
        missing = [i for i, (tr, _) in enumerate(splits)
                   if not np.isin(np.arange(n_classes), y_enc[tr][sw_train[tr] > 0]).all()]
        if missing or (Cs_list is not None and Cs_list.size == 1):
            points, folds_out = self._grid(X, y, y_enc, sw_train, sample_weight, splits,
                                           Cs_list, rhos, tune_rho, n_classes)
            self._result_from_grid(points, folds_out, tune_rho)
        else:
            # Repeated rows merged into weights (canonical order): weights and repeated
            # rows give the same fit exactly, also where the problem is ill-conditioned.
            folds, rows = self._merged_folds(X, y_enc, sw_train, sample_weight, splits)
            problem = self._make_problem(folds, Cs_list, rhos, tune_rho, rho_bounds,
                                         n_classes, loss, rows)
            # No varying feature: one evaluation (every C fits the same intercept-only
            # model).
            result = tune_or_constant(
                problem, folds, fit_intercept=self.fit_intercept, init=self._init(problem),
                max_outer_iter=self.max_outer_iter, outer_tol=self.outer_tol,
                n_restarts=self.n_restarts, max_time=self.max_time, verbose=self.verbose,
                random_state=self.random_state, n_jobs=self.n_jobs,
            )
            self._store_points(result, problem, X, y, splits, loss)
            # The refit needs none of the problem's fold data: freed before it (the peak
            # memory is then the larger of the two, not their sum).
            del folds, rows, problem, result
        self._select_and_refit(X, y, y_enc, sw_train, splits, n_classes, tune_rho, l1_none,
                               penalty)
        del self._score_params
        return self

    def _validate_data_and_classes(self, X, y):
        """Validated ``X`` (float64), ``y``, its codes and the number of classes
        (``classes_`` set); scikit-learn's errors for one class, liblinear multiclass,
        ``C_per_class`` on two classes and a ``class_weight`` dict of unknown labels."""
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32])
        check_classification_targets(y)
        # The JAX path works in the user's precision (float32 stays float32).
        self._device_dtype = device_dtype(X)
        X = X.astype(np.float64, copy=False)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_[0]!r}."
            )
        if self.l1_ratio is None and self.solver == "liblinear" and n_classes > 2:
            raise ValueError(
                "The 'liblinear' solver does not support multiclass classification (n_classes "
                ">= 3). Use another solver (ImplicitLogisticRegressionCV fits the multinomial "
                "loss with any of them) or wrap it in a OneVsRestClassifier."
            )
        if self.C_per_class and n_classes == 2:
            raise ValueError(
                "C_per_class=True needs at least 3 classes: a binary problem has a single "
                "coefficient vector (only the sum of two per-class Cs would matter)."
            )
        if isinstance(self.class_weight, dict) and not set(self.class_weight) <= set(
                self.classes_.tolist()):
            raise ValueError(
                "The given class_weight dict must have the class labels as keys; "
                f"classes={self.classes_} but key={self.class_weight.keys()}"
            )
        return X, y, y_enc, n_classes

    def _route(self, params, sample_weight_in, sample_weight):
        """``groups`` for the splitter and the scorer's parameters."""
        if _routing_enabled():
            routed = process_routing(self, "fit", sample_weight=sample_weight_in, **params)
            return (routed.splitter.split.get("groups"),
                    dict(routed.scorer.score) if "scorer" in routed else {})
        return params.get("groups"), ({"sample_weight": sample_weight}
                                      if sample_weight_in is not None else {})

    @staticmethod
    def _merged_folds(X, y_enc, sw_train, sample_weight, splits):
        """The folds with repeated rows merged into weights, in a canonical order
        (:func:`~skimplicit.utils.merge_duplicate_rows`; with
        :func:`~skimplicit.utils._rows.fold_views`, a training fold's rows are the other
        test folds' in theirs, one after another), and, for dense ``X``, the problem's
        ``rows``: every fold's rows as rows of the data set's distinct rows
        (:func:`~skimplicit.utils._rows.unique_rows`), which the hypergradient kernel reads once
        for all folds."""
        if sp.issparse(X):
            return [FoldData(*merge_duplicate_rows(X[tr], y_enc[tr], sw_train[tr])[:3],
                             *merge_duplicate_rows(X[te], y_enc[te], sample_weight[te])[:3])
                    for tr, te in splits], None
        # Dense: the data set's rows grouped once; each fold merged from the groups
        # (the same arrays as merge_duplicate_rows of the fold, one copy of its rows),
        # or, when the test sets partition them (K-fold), every fold's rows as views of
        # one array holding (2 - 2 / K) copies of them (fold_views: the folds' copies
        # were most of the fit's memory, 5 copies of X at 20000 x 200).
        first, inverse = unique_rows(X, y_enc, sample_weight)
        views = fold_views(X, y_enc, sw_train, sample_weight, splits, first, inverse)
        if views is not None:
            folds, train_rows, test_rows = views
            return ([FoldData(*f) for f in folds],
                    (X, y_enc, first, train_rows, test_rows))
        folds, train_rows, test_rows = [], [], []
        for tr, te in splits:
            Xa, ya, wa, _, ia = merge_rows_of(X, y_enc, sw_train, tr, first, inverse)
            Xb, yb, wb, _, ib = merge_rows_of(X, y_enc, sample_weight, te, first, inverse)
            folds.append(FoldData(Xa, ya, wa, Xb, yb, wb))
            train_rows.append(ia)
            test_rows.append(ib)
        return folds, (X, y_enc, first, train_rows, test_rows)

    def _make_problem(self, folds, Cs_list, rhos, tune_rho, rho_bounds, n_classes, loss,
                      rows=None):
        """The problem specification: the folds' penalized multinomial (or binary)
        log-loss, tuned over ``C`` (and ``l1_ratio``), its cover from ``Cs`` when it is a
        list, the bound hints naming the parameters that set the interval. The followed
        loss is the log-loss when ``scoring`` is not differentiable."""
        bounds = check_bounds(self.bounds)
        cover = None
        if Cs_list is not None:
            if bounds is None:
                bounds = (float(Cs_list[0]), float(Cs_list[-1]))
            cover = [{"C": float(C), **({"l1_ratio": r} if tune_rho else {})}
                     for C in Cs_list for r in (rhos if tune_rho else [None])]
            if self.C_per_class:
                K = n_classes
                cover = [{**p, "C": np.full(K, p["C"])} for p in cover]
        lo_hi = rho_bounds if tune_rho else (0.05, 1.0)
        hints = {}
        if Cs_list is not None and self.bounds == "auto":
            hints["C"] = "the estimator parameter `Cs` (its smallest and largest values)"
        if tune_rho and self.l1_ratio is None:
            hints["l1_ratio"] = ("the estimator parameter `l1_ratios` (its smallest and "
                                 "largest values)")
        dtype = self._device_problem(folds, getattr(self, "_device_dtype", None))
        cls, kw = ((_RecordingProblem, {"rows": rows}) if dtype is None else
                   (_RecordingDeviceProblem, {"dtype": dtype}))
        problem = cls(
            folds, cover=cover, hints=hints, n_classes=n_classes, fit_intercept=self.fit_intercept,
            l1_ratio=(float(np.clip(0.5, *lo_hi)) if tune_rho else rhos[0]),
            tune_l1_ratio=tune_rho, C_per_class=self.C_per_class, tol=self._tol(),
            max_iter=self.max_iter, bounds=bounds, l1_ratio_bounds=lo_hi,
            loss=loss or "log_loss", **kw,
        )
        return problem

    def _device_problem(self, folds, dtype=None):
        """The working dtype when the tuning runs on the JAX path (``backend``): ``dtype``
        (the user's X's in ``fit``), else the folds'; None for the host path, also when
        the device path does not support the settings (with a ``UserWarning`` naming
        why)."""
        if resolve_backend(self.backend) != "jax":
            return None
        reason = device_unsupported(folds, self.C_per_class)
        if reason is not None:
            warnings.warn(f"ImplicitLogisticRegressionCV: {reason}; the tuning runs on the "
                          "host.", UserWarning, stacklevel=4)
            return None
        return dtype if dtype is not None else device_dtype(folds[0].X_train)

    def _init(self, problem):
        """The descent's start from ``C_init`` (``None``: the cover's best point)."""
        init = None
        if not (isinstance(self.C_init, str) and self.C_init == "auto"):
            C0 = np.asarray(self.C_init, float)
            if C0.ndim > 1 or (C0.ndim == 1 and C0.size != problem.hyperparameters[0].n_values):
                raise ValueError(f"C_init must be a float or have shape ({problem.K},); got "
                                 f"shape {C0.shape}.")
            if np.any(C0 <= 0) or not np.all(np.isfinite(C0)):
                raise ValueError(f"C_init must be positive and finite; got {self.C_init}.")
            init = {"C": np.broadcast_to(C0, (problem.K,)).copy() if self.C_per_class
                    else float(C0.ravel()[0])}
            if problem.tune_l1_ratio:
                init["l1_ratio"] = problem.l1_ratio
        return init

    def _store_points(self, result, problem, X, y, splits, loss):
        """Every evaluated point once, with its fold solutions and scores, in
        ``self._points``; the tuning attributes."""
        self.tuning_result_ = result
        self.history_ = result.history(problem.hyperparameters)
        self.n_outer_iter_ = result.n_iter
        # Every evaluated point once (the last evaluation of a point repeated), sorted by
        # C (then l1_ratio), as scikit-learn's Cs_.
        by_key = {}
        for r in result.records:
            ev = r["evaluation"]
            if "coefs" not in ev.info or not np.isfinite(ev.loss):
                continue
            C = np.asarray(r["params"]["C"], float)
            rho = float(r["params"].get("l1_ratio", problem.l1_ratio))
            by_key[(tuple(np.atleast_1d(C)), rho)] = (C, rho, ev)
        points = [by_key[k] for k in sorted(by_key)]
        coefs = [[_embed(W, b, self.fit_intercept) for W, b in ev.info["coefs"]]
                 for _, _, ev in points]
        if loss is not None:
            scores = [-np.asarray(ev.fold_losses, float) for _, _, ev in points]
        else:
            # Fold by fold, C increasing within a fold: the order in which
            # LogisticRegressionCV calls the scorer. (The test rows copied only here: a
            # copy of X, the fit's peak memory at 2000 x 5000.)
            X_tests = [X[te] for _, te in splits]
            y_tests = [y[te] for _, te in splits]
            scorer = self._labelled_scorer(self._get_scorer())
            by_fold = [[self._score(scorer, coefs[j][f], X, X_tests[f], y_tests[f], te)
                        for j in range(len(points))] for f, (_, te) in enumerate(splits)]
            scores = list(np.array(by_fold, float).T)
        self._points = [dict(C=C, l1_ratio=rho, coefs=coefs[j],
                             n_iter=np.asarray(ev.info["n_iter"]), scores=scores[j],
                             loss=np.asarray(ev.fold_losses, float))
                        for j, (C, rho, ev) in enumerate(points)]

    def _score(self, scorer, coef, X, X_test, y_test, test):
        """The user's scorer on one fold's model, as ``_log_reg_scoring_path`` calls it
        (every class known to the model, ``labels`` passed to scorers that take it)."""
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression()
        model.classes_ = self.classes_
        model.coef_ = coef[:, :-1] if self.fit_intercept else coef
        model.intercept_ = coef[:, -1] if self.fit_intercept else np.zeros(coef.shape[0])
        kw = _check_method_params(X, params=self._score_params, indices=test)
        return float(scorer(model, X_test, y_test, **kw))

    def _labelled_scorer(self, scorer):
        func = getattr(scorer, "_score_func", None)
        if func is None:
            return scorer
        sig = inspect.signature(func).parameters
        if "labels" not in sig:
            return scorer
        kw = {}
        if len(self.classes_) <= 2 and "pos_label" in sig:
            kw["pos_label"] = self.classes_[-1]
        return make_scorer(func, greater_is_better=scorer._sign == 1,
                           response_method=scorer._response_method, labels=self.classes_,
                           **kw, **getattr(scorer, "_kwargs", {}))

    def _grid(self, X, y, y_enc, sw_train, sample_weight, splits, Cs_list, rhos, tune_rho,
              n_classes):
        """No interval to descend (a single ``C``) or a training fold missing a class:
        every point of the grid ``Cs x l1_ratios`` solved on each fold, scored by the
        scorer. An int ``Cs`` is scikit-learn's grid ``logspace(-4, 4, Cs)``."""
        Cs = np.logspace(-4, 4, self.Cs) if Cs_list is None else Cs_list
        Xh = host_matrix(X)
        points = [(float(C), float(r)) for C in Cs for r in rhos]
        out = [[None] * len(splits) for _ in points]
        for f, (tr, te) in enumerate(splits):
            present = np.flatnonzero(np.isin(np.arange(n_classes),
                                             y_enc[tr][sw_train[tr] > 0]))
            Xtr, state = Xh[tr], None
            for j, (C, rho) in enumerate(points):
                state, it, coef = _fit_present(Xtr, y_enc[tr], sw_train[tr], present,
                                               n_classes, C, rho, state, self)
                out[j][f] = (coef, it)
        self._points = []
        X_tests = [X[te] for _, te in splits]
        y_tests = [y[te] for _, te in splits]
        loss = self._loss()
        scorer = self._labelled_scorer(self._get_scorer())
        # (the tuning loss's values, for cv_loss_, when the scorer is another one)
        loss_scorer = self._labelled_scorer(get_scorer("neg_log_loss"))
        for j, (C, rho) in enumerate(points):
            coefs = [out[j][f][0] for f in range(len(splits))]
            scores = np.array([self._score(scorer, coefs[f], X, X_tests[f], y_tests[f], te)
                               for f, (_, te) in enumerate(splits)])
            fold_loss = -scores if loss is not None else -np.array(
                [self._score(loss_scorer, coefs[f], X, X_tests[f], y_tests[f], te)
                 for f, (_, te) in enumerate(splits)])
            self._points.append(dict(
                C=np.full(n_classes, C) if self.C_per_class else np.asarray(C),
                l1_ratio=rho, coefs=coefs,
                n_iter=np.array([out[j][f][1] for f in range(len(splits))]), scores=scores,
                loss=fold_loss))
        return points, out

    def _result_from_grid(self, points, folds_out, tune_rho):
        """``tuning_result_`` and ``history_`` of a grid evaluation (phase 'grid')."""
        hps = [Hyperparameter("C", min(p[0] for p in points), max(p[0] for p in points),
                              "log", len(self.classes_) if self.C_per_class else None)]
        if tune_rho:
            hps.append(Hyperparameter("l1_ratio", min(p[1] for p in points),
                                      max(p[1] for p in points), "linear"))
        records = []
        for pt in self._points:
            params = {"C": pt["C"] if self.C_per_class else float(pt["C"])}
            if tune_rho:
                params["l1_ratio"] = pt["l1_ratio"]
            ev = Evaluation(loss=float(np.mean(pt["loss"])), grad=None, fold_losses=pt["loss"],
                            converged=True, info={"n_iter": list(pt["n_iter"])})
            records.append({"params": params, "evaluation": ev, "time": 0.0, "phase": "grid",
                            "precision": 1.0, "grad_norm": np.nan, "grad_z": None})
        best = min(records, key=lambda r: r["evaluation"].loss)
        result = TuningResult(best_params=best["params"], best_loss=best["evaluation"].loss,
                              best_evaluation=best["evaluation"], records=records, n_iter=0,
                              stop_reason="grid", hyperparameters=hps)
        self.tuning_result_ = result
        self.history_ = result.history(hps)
        self.n_outer_iter_ = 0

    def _select_and_refit(self, X, y, y_enc, sw_train, splits, n_classes, tune_rho, l1_none,
                          penalty):
        """Choose the point (the best mean score; with ``refit=False`` each fold's best,
        averaged, as ``LogisticRegressionCV``), refit, and set the fitted attributes."""
        pts = self._points
        scores = np.array([p["scores"] for p in pts])  # (n_points, n_folds)
        n_folds = len(splits)
        if self.refit:
            j = int(np.argmax(scores.sum(axis=1)))  # the first best, C ascending
            self.C_ = (np.asarray(pts[j]["C"], float).copy() if self.C_per_class
                       else float(np.asarray(pts[j]["C"]).ravel()[0]))
            self.l1_ratio_ = float(pts[j]["l1_ratio"])
            chosen = [j]
            self._refit(X, y_enc, sw_train, n_classes)
        else:
            best = np.argmax(scores, axis=0)  # per fold
            chosen = list(best)
            w = np.mean([pts[j]["coefs"][f] for f, j in enumerate(best)], axis=0)
            self.coef_ = np.ascontiguousarray(w[:, :-1] if self.fit_intercept else w)
            self.intercept_ = (w[:, -1].copy() if self.fit_intercept
                               else np.zeros(w.shape[0]))
            Cmean = np.mean([np.asarray(pts[j]["C"], float) for j in best], axis=0)
            self.C_ = Cmean.copy() if self.C_per_class else float(np.ravel(Cmean)[0])
            self.l1_ratio_ = float(np.mean([pts[j]["l1_ratio"] for j in best]))
            self.n_iter_refit_ = 0
        losses = np.mean([pts[j]["loss"] for j in chosen], axis=0)
        self.cv_loss_ = float(np.mean(losses))
        self.cv_loss_std_ = float(np.std(pts[chosen[0]]["loss"]))
        # -- scikit-learn's attributes over the evaluated points ---------------------------
        n_pts = len(pts)
        self.Cs_ = np.array([np.asarray(p["C"], float) if self.C_per_class
                             else float(np.asarray(p["C"]).ravel()[0]) for p in pts])
        K = 1 if n_classes == 2 else n_classes
        paths = np.array([[p["coefs"][f] for p in pts] for f in range(n_folds)])
        sc = scores.T  # (n_folds, n_points)
        n_iter = np.array([p["n_iter"] for p in pts]).T
        if tune_rho:
            # Points off a product grid: one column per evaluated point, l1_ratios_[j]
            # and Cs_[j] its coordinates (a single l1_ratio row).
            self.l1_ratios_ = np.array([p["l1_ratio"] for p in pts])
        else:
            self.l1_ratios_ = np.array([None] if l1_none else [pts[0]["l1_ratio"]],
                                       dtype=object if l1_none else float)
        paths = paths.reshape(n_folds, 1, n_pts, K, -1)
        sc = sc.reshape(n_folds, 1, n_pts)
        n_iter = n_iter.reshape(n_folds, 1, n_pts)
        if not self.use_legacy_attributes:
            self.coefs_paths_ = paths
            self.scores_ = sc
            self.n_iter_ = n_iter
            if l1_none and not tune_rho:
                self.l1_ratio_ = 1.0 if penalty == "l1" else 0.0
            return
        keys = self.classes_[1:] if n_classes == 2 else self.classes_
        legacy_paths = np.moveaxis(paths, (0, 1, 2, 3), (1, 3, 2, 0))  # (K, F, n, 1, dof)
        legacy_scores = np.swapaxes(sc, 1, 2)  # (F, n, 1)
        legacy_iter = np.swapaxes(n_iter, 1, 2)[None]  # (1, F, n, 1)
        if l1_none and not tune_rho:
            legacy_paths = legacy_paths[:, :, :, 0]
            legacy_scores = legacy_scores[:, :, 0]
            legacy_iter = legacy_iter[..., 0]
        self.coefs_paths_ = dict(zip(keys, legacy_paths))
        self.scores_ = {k: legacy_scores.copy() for k in keys}
        self.n_iter_ = legacy_iter
        self.C_ = np.tile(np.atleast_1d(self.C_), 1 if self.C_per_class else K)
        self.l1_ratio_ = np.full(K, self.l1_ratio_)

    # -- the tunable protocol (HypergradSearchCV with this estimator as a final step) -----
    def make_tunable_problem(self, folds, bounds=None):
        """The CV loss of this estimator's settings on given folds (labels as given): the
        log-loss, or the Brier score with ``scoring='neg_brier_score'`` (the tunable
        protocol; ``bounds`` is not used: the search restricts the problem to its
        ``param_grid``)."""
        rhos, tuned, rho_bounds, _, _ = self._l1_spec(warn=False)
        encoded, classes = encode_folds(folds, self.class_weight)
        if self.C_per_class and classes.size == 2:
            raise ValueError("C_per_class=True needs at least 3 classes.")
        lo_hi = rho_bounds if tuned else (0.05, 1.0)
        dtype = self._device_problem(encoded)
        cls, kw = ((LogisticCVProblem, {}) if dtype is None else
                   (DeviceLogisticProblem, {"dtype": dtype}))
        return cls(
            encoded, n_classes=classes.size, fit_intercept=self.fit_intercept,
            l1_ratio=float(np.clip(0.5, *lo_hi)) if tuned else rhos[0], tune_l1_ratio=tuned,
            C_per_class=self.C_per_class, tol=self._tol(),
            max_iter=self.max_iter, bounds=check_bounds(self.bounds),
            l1_ratio_bounds=lo_hi, loss=self._loss() or "log_loss", **kw,
        )

    def tuned_estimator(self, params):
        """scikit-learn's ``LogisticRegression`` at the tuned ``C`` (and ``l1_ratio``): the
        same objective, refit as a plain scikit-learn step."""
        from sklearn.linear_model import LogisticRegression

        C = np.asarray(params["C"], float)
        if C.ndim:
            raise TypeError(
                "ImplicitLogisticRegressionCV with C_per_class=True has no plain "
                "scikit-learn counterpart to refit: use it directly rather than inside "
                "HypergradSearchCV."
            )
        rhos, tuned, rho_bounds, _, _ = self._l1_spec(warn=False)
        l1 = float(params.get("l1_ratio", np.clip(0.5, *rho_bounds) if tuned else rhos[0]))
        return LogisticRegression(C=float(C), l1_ratio=l1, solver="lbfgs" if l1 == 0 else "saga",
                                  fit_intercept=self.fit_intercept, class_weight=self.class_weight,
                                  tol=self.tol, max_iter=max(self.max_iter, 1000))

    def _check_weights(self, sw, y_enc, where):
        """Every class needs samples of positive weight (else its intercept is -inf)."""
        check_fold_classes(y_enc, sw, np.arange(len(self.classes_)), where,
                           labels=self.classes_)

    def _refit(self, X, y_enc, sw, n_classes):
        X, y_enc, sw, _ = merge_duplicate_rows(X, y_enc, sw)  # (as the folds, see _tune)
        Y = one_hot(y_enc, n_classes)
        alpha = 1.0 / np.broadcast_to(np.asarray(self.C_, float), (Y.shape[1],))
        W, b, n_iter, ok = fit_logistic(host_matrix(X), Y, sw, alpha, self.l1_ratio_,
                                        tol=self._tol(), max_iter=self.max_iter,
                                        fit_intercept=self.fit_intercept, refine=True)
        if not ok:
            warnings.warn(
                f"The final refit at C={self.C_} did not converge in max_iter="
                f"{self.max_iter} iterations; increase max_iter or scale the data.",
                ConvergenceWarning, stacklevel=3,
            )
        self.coef_ = np.ascontiguousarray(W.T)
        self.intercept_ = _centered(b) if self.fit_intercept else np.zeros(Y.shape[1])
        self.n_iter_refit_ = int(n_iter)

    # -- prediction ----------------------------------------------------------------------
    def predict_proba(self, X):
        """Probability of each class (sigmoid for binary, softmax for multinomial).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns ordered as ``classes_``.
        """
        d = self.decision_function(X)
        if d.ndim == 1:
            p = expit(d)
            return np.column_stack([1.0 - p, p])
        return softmax(d, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (computed stably).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        d = self.decision_function(X)
        if d.ndim == 1:
            return np.column_stack([log_expit(-d), log_expit(d)])
        return log_softmax(d, axis=1)

    def score(self, X, y, sample_weight=None, **score_params):
        """Score with ``scoring`` on the given data, as ``LogisticRegressionCV.score``
        (``neg_log_loss`` by default; accuracy for ``scoring=None``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        **score_params : dict
            Parameters of the scorer (metadata routing enabled only).

        Returns
        -------
        score : float
        """
        _raise_for_params(score_params, self, "score")
        if sample_weight is not None:
            score_params["sample_weight"] = sample_weight
        scorer = self._get_scorer()
        if _routing_enabled() and self._loss() is None:
            # What the scorer requests, as LogisticRegressionCV routes it (anything else:
            # scikit-learn's TypeError, "not routed to any object").
            router = MetadataRouter(owner=self).add(
                scorer=scorer, method_mapping=MethodMapping().add(caller="score",
                                                                  callee="score"))
            router.validate_metadata(params=score_params, method="score")
            kwargs = router.route_params(params=score_params, caller="score").scorer.score
        else:
            kwargs = ({"sample_weight": score_params["sample_weight"]}
                      if score_params.get("sample_weight") is not None else {})
        return scorer(self, X, y, **kwargs)

    # -- metadata routing ----------------------------------------------------------------
    def get_metadata_routing(self):
        """Route ``groups`` to the CV splitter; ``sample_weight`` is consumed by ``fit``.

        A ``scoring`` other than the differentiable ``neg_log_loss`` and
        ``neg_brier_score`` (whose held-out losses are weighted by ``sample_weight``, as
        the tuning loss) is routed as in ``LogisticRegressionCV``: its requests decide
        what reaches it in ``fit`` and ``score``.

        Returns
        -------
        routing : MetadataRouter
        """
        router = MetadataRouter(owner=self).add_self_request(self).add(
            splitter=check_cv(self.cv, classifier=True),
            method_mapping=MethodMapping().add(caller="fit", callee="split"),
        )
        if self._loss() is None:
            router.add(scorer=self._get_scorer(),
                       method_mapping=MethodMapping().add(caller="score", callee="score")
                       .add(caller="fit", callee="score"))
        return router
