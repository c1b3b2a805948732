"""ImplicitLassoCV and ImplicitElasticNetCV."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import ImplicitLinearModelCV, check_bounds
from ._cv_problems import EnetCVProblem

__all__ = ["ImplicitLassoCV", "ImplicitElasticNetCV"]


def fit_enet(X, y, sample_weight, alpha, l1_ratio, *, fit_intercept, positive, tol, max_iter):
    """scikit-learn's ElasticNet at ``alpha`` (a scalar or one per feature: weighted Lasso).

    Per-feature alphas are exact by rescaling columns: with ``w_j = (a / alpha_j) v_j`` and
    ``a = min alpha``, ``sum_j alpha_j |w_j| = a ||v||_1`` (l1_ratio = 1 only).
    """
    scale = None
    a = alpha
    if np.ndim(alpha):
        a = float(np.min(alpha))
        scale = a / np.asarray(alpha, float)
        X = X @ sp.diags(scale) if sp.issparse(X) else X * scale
    est = ElasticNet(alpha=a, l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                     positive=positive, tol=tol, max_iter=max_iter)
    est.fit(X, y, sample_weight=sample_weight)
    coef = est.coef_ * scale if scale is not None else est.coef_
    return coef, est.intercept_, est.n_iter_, est.dual_gap_


class _EnetTunerMixin:
    """What ImplicitLassoCV and ImplicitElasticNetCV share beyond the base class."""

    def _refit(self, X, y, sample_weight):
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConvergenceWarning)
            self.coef_, self.intercept_, self.n_iter_, self.dual_gap_ = fit_enet(
                X, y, sample_weight, self.alpha_, self.l1_ratio_,
                fit_intercept=self.fit_intercept, positive=self.positive, tol=self.tol,
                max_iter=self.max_iter,
            )


class ImplicitLassoCV(_EnetTunerMixin, ImplicitLinearModelCV):
    r"""Lasso with its ``alpha`` tuned by hypergradient descent on the K-fold CV error.

    A drop-in for :class:`sklearn.linear_model.LassoCV`: the same objective on each
    training fold and in the final refit,

    .. math::
        \frac{1}{2 n} \|y - X w - b\|_2^2 + \alpha \|w\|_1

    (or :math:`\sum_j \alpha_j |w_j|` with ``alpha_per_feature=True``), with ``alpha``
    chosen to minimize the mean validation MSE over the folds. Instead of a grid, the
    validation error's gradient with respect to :math:`\log\alpha` (the *hypergradient*) is
    obtained by implicit differentiation of the Lasso's optimality conditions on each
    fold's support (one small linear solve for all folds, batched in JAX), and fed to the
    shared outer loop (:func:`skimplicit.model_selection.tune`): a short warm-started
    coarse path, then L-BFGS-B in log space. The inner solver is scikit-learn's coordinate
    descent, warm-started between outer steps.

    Parameters
    ----------
    fit_intercept : bool, default=True
    precompute : 'auto', bool or array-like, default='auto'
        Accepted for compatibility with :class:`~sklearn.linear_model.LassoCV`; the
        inner solver chooses by itself.
    max_iter : int, default=1000
        Maximum epochs of the inner coordinate descent.
    tol : float, default=1e-4
        Inner tolerance (scikit-learn's duality-gap meaning) of the final refit; during
        tuning, inner solves use ``min(tol, 1e-6)``, tightened over the outer steps.
    copy_X : bool, default=True
        Accepted for compatibility; X is never modified.
    cv : int, cross-validation generator or iterable, default=None
        As in :class:`~sklearn.linear_model.LassoCV` (``None``: 5-fold ``KFold``).
    verbose : int, default=0
        One line per outer step when > 0.
    n_jobs : int, default=None
        Restarts run in parallel through joblib.
    positive : bool, default=False
        Force nonnegative coefficients.
    random_state : int, RandomState instance or None, default=None
        For random restarts.
    alpha_init : 'auto' or float, default='auto'
        Starting alpha; 'auto' starts from the best point of a 4-value warm-started
        path from ``alpha_max`` down to ``alpha_max / 100``.
    bounds : 'auto' or (float, float), default='auto'
        Search interval of alpha; 'auto' is ``[1e-4, 0.9] * alpha_max`` where
        ``alpha_max`` is the smallest over the training folds (above it every fold's
        solution is 0 and the hypergradient vanishes).
    max_outer_iter : int, default=30
        Hypergradient evaluations per start after the coarse path.
    outer_tol : float, default=1e-4
        Relative decrease of the CV loss under which the descent stops.
    n_restarts : int, default=1
        Least number of starts: the coarse cover's best basins (up to 3 within 5 % of
        the best are always descended), then its next best points, then random points.
    max_time : float, default=None
        Time budget in seconds; the best point seen is kept.
    alpha_per_feature : bool, default=False
        Tune one alpha per feature (the weighted Lasso), with one linear solve per
        hypergradient whatever their number.
    selection : {'cyclic'}, default='cyclic'
        Accepted for compatibility (the inner solver is cyclic).

    Attributes
    ----------
    alpha_ : float or ndarray of shape (n_features,)
        The chosen penalty.
    l1_ratio_ : float
        Always 1.0 (for API compatibility with the elastic net).
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
        Inner iterations of the final refit.
    dual_gap_ : float
        Duality gap of the final refit.
    n_outer_iter_ : int
        Hypergradient evaluations after the coarse path.
    cv_loss_, cv_loss_std_ : float
        Mean and standard deviation over folds of the validation MSE at ``alpha_``.
    history_ : dict of ndarray
        One entry per evaluation: ``alpha``, ``grad_alpha``, ``loss``, ``loss_std``,
        ``grad_norm``, ``time``, ``precision``, ``converged``, ``phase``.
    alphas_ : ndarray
        Alphas visited (coarse path and descent), in decreasing order.
    mse_path_ : ndarray of shape (n_alphas, n_folds)
        Validation MSE per fold at ``alphas_``, as in ``LassoCV``.
    tuning_result_ : TuningResult
        The outer loop's full record.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    sklearn.linear_model.LassoCV : the grid twin (warm-started path over a fixed grid).
    ImplicitElasticNetCV : tunes ``l1_ratio`` as well.
    skimplicit.model_selection.HypergradSearchCV : the same machinery for pipelines.

    Notes
    -----
    Unlike ``LassoCV``, the chosen alpha is not restricted to a grid: it is a local
    minimum of the CV error (from the best start of a coarse path), usually at or below
    the grid's best value, found with far fewer inner solves.

    References
    ----------
    Blondel et al., "Efficient and Modular Implicit Differentiation", NeurIPS 2022.
    Bertrand et al., "Implicit differentiation of Lasso-type models for hyperparameter
    optimization", ICML 2020. Pedregosa, "Hyperparameter optimization with approximate
    gradient", ICML 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skimplicit.linear_model import ImplicitLassoCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = ImplicitLassoCV(cv=3).fit(X, y)
    >>> bool(0 < reg.alpha_ < 1)
    True
    >>> reg.coef_.shape
    (10,)
    """

    _parameter_constraints: dict = {
        **ImplicitLinearModelCV._parameter_constraints,
        "precompute": ["boolean", StrOptions({"auto"}), "array-like"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "positive": ["boolean"],
        "selection": [StrOptions({"cyclic"})],
    }

    def __init__(self, *, fit_intercept=True, precompute="auto", max_iter=1000, tol=1e-4,
                 copy_X=True, cv=None, verbose=0, n_jobs=None, positive=False,
                 random_state=None, alpha_init="auto", bounds="auto", max_outer_iter=30,
                 outer_tol=1e-4, n_restarts=1, max_time=None, alpha_per_feature=False,
                 selection="cyclic"):
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.copy_X = copy_X
        self.cv = cv
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.positive = positive
        self.random_state = random_state
        self.alpha_init = alpha_init
        self.bounds = bounds
        self.max_outer_iter = max_outer_iter
        self.outer_tol = outer_tol
        self.n_restarts = n_restarts
        self.max_time = max_time
        self.alpha_per_feature = alpha_per_feature
        self.selection = selection

    def _make_tunable_problem(self, folds):
        return EnetCVProblem(
            folds, fit_intercept=self.fit_intercept, l1_ratio=1.0,
            alpha_per_feature=self.alpha_per_feature, positive=self.positive, tol=self.tol,
            max_iter=self.max_iter, bounds=check_bounds(self.bounds),
        )

    def _store_params(self, best, result):
        self.alpha_ = best["alpha"]
        self.l1_ratio_ = 1.0
        self._path_attributes(result)


class ImplicitElasticNetCV(_EnetTunerMixin, ImplicitLinearModelCV):
    r"""Elastic net with ``alpha`` and ``l1_ratio`` tuned by hypergradient descent.

    A drop-in for :class:`sklearn.linear_model.ElasticNetCV` with scikit-learn's
    objective on each training fold and in the refit,

    .. math::
        \frac{1}{2 n} \|y - X w - b\|_2^2 + \alpha \rho \|w\|_1
        + \frac{\alpha (1 - \rho)}{2} \|w\|_2^2, \qquad \rho = \text{l1\_ratio},

    where both :math:`\log\alpha` and :math:`\rho` are moved by the hypergradient of
    the mean validation MSE (one batched linear solve on the folds' supports per step),
    instead of a grid of ``l1_ratio`` values times a path of alphas.

    Parameters
    ----------
    l1_ratio : 'tune' or float in (0, 1], default='tune'
        A float fixes the mix (only alpha is tuned).
    l1_ratio_bounds : (float, float), default=(0.01, 1.0)
        Search interval of ``l1_ratio`` when tuned (linear scale).
    fit_intercept, precompute, max_iter, tol, copy_X, cv, verbose, n_jobs, positive, \
random_state, alpha_init, bounds, max_outer_iter, outer_tol, n_restarts, max_time, \
selection :
        As in :class:`ImplicitLassoCV` ('auto' bounds of alpha: ``[1e-4, 0.9 / rho_min]
        * alpha_max`` with ``alpha_max`` computed for ``l1_ratio = 1``).

    Attributes
    ----------
    alpha_ : float
    l1_ratio_ : float
    coef_, intercept_, n_iter_, dual_gap_, n_outer_iter_, cv_loss_, cv_loss_std_, \
history_, alphas_, mse_path_, tuning_result_, n_features_in_, feature_names_in_ :
        As in :class:`ImplicitLassoCV`; ``history_`` also holds ``l1_ratio`` and
        ``grad_l1_ratio``, and ``l1_ratios_`` the l1_ratio of each row of ``alphas_``.

    See Also
    --------
    sklearn.linear_model.ElasticNetCV : the grid twin.
    ImplicitLassoCV : ``l1_ratio = 1``.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skimplicit.linear_model import ImplicitElasticNetCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = ImplicitElasticNetCV(cv=3).fit(X, y)
    >>> bool(0 < reg.l1_ratio_ <= 1)
    True
    """

    _parameter_constraints: dict = {
        **ImplicitLassoCV._parameter_constraints,
        "l1_ratio": [StrOptions({"tune"}), Interval(Real, 0, 1, closed="right")],
        "l1_ratio_bounds": [tuple, list],
    }

    def __init__(self, *, l1_ratio="tune", l1_ratio_bounds=(0.01, 1.0), fit_intercept=True,
                 precompute="auto", max_iter=1000, tol=1e-4, copy_X=True, cv=None, verbose=0,
                 n_jobs=None, positive=False, random_state=None, alpha_init="auto",
                 bounds="auto", max_outer_iter=30, outer_tol=1e-4, n_restarts=1,
                 max_time=None, selection="cyclic"):
        self.l1_ratio = l1_ratio
        self.l1_ratio_bounds = l1_ratio_bounds
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.copy_X = copy_X
        self.cv = cv
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.positive = positive
        self.random_state = random_state
        self.alpha_init = alpha_init
        self.bounds = bounds
        self.max_outer_iter = max_outer_iter
        self.outer_tol = outer_tol
        self.n_restarts = n_restarts
        self.max_time = max_time
        self.selection = selection

    def _make_tunable_problem(self, folds):
        tuned = isinstance(self.l1_ratio, str)
        lo, hi = (float(b) for b in self.l1_ratio_bounds)
        if not 0 < lo < hi <= 1:
            raise ValueError(
                f"l1_ratio_bounds must satisfy 0 < low < high <= 1; got {self.l1_ratio_bounds}."
            )
        return EnetCVProblem(
            folds, fit_intercept=self.fit_intercept,
            l1_ratio=0.7 if tuned else self.l1_ratio, tune_l1_ratio=tuned,
            positive=self.positive, tol=self.tol, max_iter=self.max_iter,
            bounds=check_bounds(self.bounds), l1_ratio_bounds=(lo, hi),
        )

    def _default_init(self, hp):
        return 0.7 if hp.name == "l1_ratio" else super()._default_init(hp)

    def _store_params(self, best, result):
        self.alpha_ = best["alpha"]
        self.l1_ratio_ = float(best.get("l1_ratio", self.l1_ratio))
        self._path_attributes(result)
        recs = sorted(result.records, key=lambda r: -float(np.mean(r["params"]["alpha"])))
        self.l1_ratios_ = np.array(
            [float(r["params"].get("l1_ratio", self.l1_ratio_)) for r in recs]
        )
