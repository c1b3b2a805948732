"""ImplicitLogisticRegressionCV."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from ..model_selection._constant import tune_or_constant
from ..utils import check_fold_classes, check_fold_weights, check_sample_weight
from ._base import OUTER_LOOP_CONSTRAINTS, check_bounds
from ._cv_problems import FoldData
from ._logistic_problem import (
    LogisticCVProblem,
    encode_folds,
    fit_logistic,
    host_matrix,
    one_hot,
)

__all__ = ["ImplicitLogisticRegressionCV"]


class ImplicitLogisticRegressionCV(LinearClassifierMixin, BaseEstimator):
    r"""Logistic regression with ``C`` (and ``l1_ratio``) tuned by hypergradient descent.

    A drop-in for :class:`sklearn.linear_model.LogisticRegressionCV` (scikit-learn >= 1.8
    vocabulary: ``l1_ratio`` chooses the penalty). On each training fold and in the final
    refit it minimizes scikit-learn's ``LogisticRegression`` objective

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
    log-loss, weighted by the test samples' ``sample_weight``. Instead of a grid, the
    gradient of that loss with respect to :math:`\log C` (and :math:`\rho`) is obtained by
    implicit differentiation of each fold's optimality conditions on its support, all
    folds in one batched JAX call, and fed to the shared outer loop
    (:func:`skimplicit.model_selection.tune`): a warm-started cover of the whole interval
    of ``C`` upwards, then descents from its best basins in log space.

    Parameters
    ----------
    l1_ratio : float in [0, 1] or 'tune', default=0.0
        0: l2 penalty, 1: l1, in between: elastic net; 'tune' tunes it with ``C``
        (within ``l1_ratio_bounds``, starting from 0.5).
    C_init : 'auto', float or array-like of shape (n_classes,), default='auto'
        Starting ``C``; 'auto' starts from the best point of the coarse path.
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
        ``1 / X^2``, as the l2 optimum), both the largest over the training folds.
    l1_ratio_bounds : (float, float), default=(0.05, 1.0)
        Search interval of ``l1_ratio`` when tuned.
    fit_intercept : bool, default=True
    class_weight : dict or 'balanced', default=None
        Weights of the classes in the training loss (as in ``LogisticRegressionCV``,
        'balanced' computed once on the whole ``y``); the validation loss is weighted by
        ``sample_weight`` only.
    cv : int, cross-validation generator or iterable, default=None
        ``None``: 5-fold ``StratifiedKFold``; an int: that many stratified folds.
    max_iter : int, default=1000
        Iteration cap of the inner solver (Newton steps for ``l1_ratio=0``, L-BFGS-B
        iterations otherwise).
    tol : float, default=1e-6
        Inner tolerance of the final refit, with scikit-learn's meaning (largest entry of
        the gradient of its mean-loss objective) on standardized columns: the solvers
        work with the coefficients of the columns divided by their (weighted) standard
        deviations, so the tolerance means the same whatever the units of each column
        (scikit-learn's absolute test stops at once on data scaled by 1e-6, and almost
        never on data scaled by 1e6); during tuning, inner solves use
        ``min(tol, 1e-6)``, tightened over the outer steps. Tighter than scikit-learn's
        default 1e-4 (at which coefficients can be off by percents), since Newton's
        method gets there in one or two more steps.
    n_jobs : int, default=None
        Restarts run in parallel through joblib.
    verbose : int, default=0
        One line per evaluation of the CV loss when > 0.
    random_state : int, RandomState instance or None, default=None
        For random restarts.
    max_outer_iter : int, default=30
        Hypergradient evaluations per start after the coarse path.
    outer_tol : float, default=1e-4
        Relative decrease of the CV loss under which the descent stops.
    n_restarts : int, default=1
        Least number of starts: the coarse cover's best basins (up to 3 within 5 % of
        the best are always descended), then its next best points, then random points.
    max_time : float, default=None
        Time budget in seconds; the best point seen is kept.

    Attributes
    ----------
    C_ : float or ndarray of shape (n_classes,)
        The chosen ``C`` (an array with ``C_per_class=True``).
    l1_ratio_ : float
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    n_iter_ : ndarray of shape (1,)
        Inner iterations of the final refit.
    n_outer_iter_ : int
        Hypergradient evaluations after the coarse path.
    cv_loss_, cv_loss_std_ : float
        Mean and standard deviation over the folds of the held-out log-loss at ``C_``.
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
    minimum of the CV log-loss, usually reached with fewer inner solves, each warm-started
    and restricted to the relevant range of ``C``. Inner solves run on the host (Newton-CG
    for the l2 penalty; L-BFGS-B on the split ``W+ - W-`` then a Newton polish on the
    support otherwise; one BLAS thread for folds of moderate size), the hypergradient
    in JAX (float64), compiled once per fit (folds padded to bucketed shapes).

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
    >>> bool(clf.score(X, y) > 0.95)
    True
    >>> clf[-1].coef_.shape
    (1, 30)
    """

    _parameter_constraints: dict = {
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), StrOptions({"tune"})],
        "C_init": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"),
                   "array-like"],
        "C_per_class": ["boolean"],
        "bounds": [StrOptions({"auto"}), tuple, list],
        "l1_ratio_bounds": [tuple, list],
        "fit_intercept": ["boolean"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "cv": ["cv_object"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        **OUTER_LOOP_CONSTRAINTS,
    }

    def __init__(self, *, l1_ratio=0.0, C_init="auto", C_per_class=False, bounds="auto",
                 l1_ratio_bounds=(0.05, 1.0), fit_intercept=True, class_weight=None, cv=None,
                 max_iter=1000, tol=1e-6, n_jobs=None, verbose=0, random_state=None,
                 max_outer_iter=30, outer_tol=1e-4, n_restarts=1, max_time=None):
        self.l1_ratio = l1_ratio
        self.C_init = C_init
        self.C_per_class = C_per_class
        self.bounds = bounds
        self.l1_ratio_bounds = l1_ratio_bounds
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.cv = cv
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state
        self.max_outer_iter = max_outer_iter
        self.outer_tol = outer_tol
        self.n_restarts = n_restarts
        self.max_time = max_time

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- fit ---------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, **params):
        """Tune ``C`` by hypergradient descent on the K-fold CV log-loss, then refit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (strings or integers), at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
        **params : dict
            ``groups`` for a group splitter.

        Returns
        -------
        self : object
        """
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32])
        check_classification_targets(y)
        X = X.astype(np.float64, copy=False)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_[0]!r}."
            )
        tuned = isinstance(self.l1_ratio, str)
        if self.C_per_class and n_classes == 2:
            raise ValueError(
                "C_per_class=True needs at least 3 classes: a binary problem has a single "
                "coefficient vector (only the sum of two per-class Cs would matter)."
            )
        lo, hi = (float(b) for b in self.l1_ratio_bounds)
        if not 0 < lo < hi <= 1:
            raise ValueError(
                f"l1_ratio_bounds must satisfy 0 < low < high <= 1; got {self.l1_ratio_bounds}."
            )
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        sw_train = sample_weight
        if self.class_weight is not None:
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y,
                                      sample_weight=sample_weight)
            sw_train = sample_weight * cw[y_enc]
        self._check_weights(sw_train, y_enc, "the data")
        if _routing_enabled():
            groups = process_routing(self, "fit", **params).splitter.split.get("groups")
        else:
            unknown = set(params) - {"groups"}
            if unknown:
                raise TypeError(f"fit() got unexpected keyword arguments {sorted(unknown)}")
            groups = params.get("groups")
        cv = check_cv(self.cv, y, classifier=True)
        splits = list(cv.split(X, y, groups))
        check_fold_weights(splits, sample_weight)
        folds = []
        for i, (tr, te) in enumerate(splits):
            self._check_weights(sw_train[tr], y_enc[tr], f"training fold {i}")
            folds.append(FoldData(X[tr], y_enc[tr], sw_train[tr], X[te], y_enc[te],
                                  sample_weight[te]))
        problem = LogisticCVProblem(
            folds, n_classes=n_classes, fit_intercept=self.fit_intercept,
            l1_ratio=0.5 if tuned else float(self.l1_ratio), tune_l1_ratio=tuned,
            C_per_class=self.C_per_class, tol=self.tol, max_iter=self.max_iter,
            bounds=check_bounds(self.bounds), l1_ratio_bounds=(lo, hi),
        )
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
            if tuned:
                init["l1_ratio"] = 0.5
        # No varying feature: one evaluation (every C fits the same intercept-only model).
        result = tune_or_constant(
            problem, folds, fit_intercept=self.fit_intercept, init=init,
            max_outer_iter=self.max_outer_iter, outer_tol=self.outer_tol,
            n_restarts=self.n_restarts, max_time=self.max_time, verbose=self.verbose,
            random_state=self.random_state, n_jobs=self.n_jobs,
        )
        self.tuning_result_ = result
        self.history_ = result.history(problem.hyperparameters)
        self.n_outer_iter_ = result.n_iter
        self.cv_loss_ = result.best_loss
        self.cv_loss_std_ = float(np.std(result.best_evaluation.fold_losses))
        best = result.best_params
        self.C_ = (np.asarray(best["C"], float).copy() if self.C_per_class
                   else float(best["C"]))
        self.l1_ratio_ = float(best.get("l1_ratio", problem.l1_ratio))
        self._refit(X, y_enc, sw_train, n_classes)
        return self

    # -- the tunable protocol (HypergradSearchCV with this estimator as a final step) -----
    def _make_tunable_problem(self, folds):
        """The CV log-loss of this estimator's settings on given folds (labels as given)."""
        tuned = isinstance(self.l1_ratio, str)
        encoded, classes = encode_folds(folds, self.class_weight)
        if self.C_per_class and classes.size == 2:
            raise ValueError("C_per_class=True needs at least 3 classes.")
        return LogisticCVProblem(
            encoded, n_classes=classes.size, fit_intercept=self.fit_intercept,
            l1_ratio=0.5 if tuned else float(self.l1_ratio), tune_l1_ratio=tuned,
            C_per_class=self.C_per_class, tol=self.tol,
            max_iter=self.max_iter, bounds=check_bounds(self.bounds),
            l1_ratio_bounds=tuple(float(b) for b in self.l1_ratio_bounds),
        )

    def _tuned_estimator(self, params):
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
        l1 = float(params.get("l1_ratio", 0.5 if isinstance(self.l1_ratio, str)
                              else self.l1_ratio))
        return LogisticRegression(C=float(C), l1_ratio=l1, solver="lbfgs" if l1 == 0 else "saga",
                                  fit_intercept=self.fit_intercept, class_weight=self.class_weight,
                                  tol=self.tol, max_iter=max(self.max_iter, 1000))

    def _check_weights(self, sw, y_enc, where):
        """Every class needs samples of positive weight (else its intercept is -inf)."""
        check_fold_classes(y_enc, sw, np.arange(len(self.classes_)), where,
                           labels=self.classes_)

    def _refit(self, X, y_enc, sw, n_classes):
        Y = one_hot(y_enc, n_classes)
        alpha = 1.0 / np.broadcast_to(np.asarray(self.C_, float), (Y.shape[1],))
        W, b, n_iter, ok = fit_logistic(host_matrix(X), Y, sw, alpha, self.l1_ratio_,
                                        tol=self.tol, max_iter=self.max_iter,
                                        fit_intercept=self.fit_intercept, refine=True)
        if not ok:
            warnings.warn(
                f"The final refit at C={self.C_} did not converge in max_iter="
                f"{self.max_iter} iterations; increase max_iter or scale the data.",
                ConvergenceWarning, stacklevel=3,
            )
        self.coef_ = np.ascontiguousarray(W.T)
        self.intercept_ = b.copy() if self.fit_intercept else np.zeros(Y.shape[1])
        self.n_iter_ = np.array([n_iter], dtype=np.int32)

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

    # -- metadata routing ----------------------------------------------------------------
    def get_metadata_routing(self):
        """Route ``groups`` to the CV splitter; ``sample_weight`` is consumed by ``fit``.

        Returns
        -------
        routing : MetadataRouter
        """
        router = MetadataRouter(owner=self).add_self_request(self).add(
            splitter=check_cv(self.cv, classifier=True),
            method_mapping=MethodMapping().add(caller="fit", callee="split"),
        )
        return router
