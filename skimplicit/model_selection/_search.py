"""HypergradSearchCV: GridSearchCV's interface, hyperparameters tuned by hypergradients.

The search prepares per-fold data and a tunable problem, then makes one call into the
shared outer loop, :func:`skimplicit.model_selection.tune` (the loop behind
``ImplicitLassoCV`` and its siblings); it has no loop of its own.

1. **Folds without leakage.** For a :class:`~sklearn.pipeline.Pipeline`, the
   preprocessing steps (all but the last) are cloned and fitted on each training fold,
   and applied to its validation fold, giving one
   :class:`~skimplicit.tuning.FoldData` per split.
2. **A tunable problem from the final step.** A table maps the final step's class to its
   entry (:mod:`skimplicit.model_selection._registry`): scikit-learn's ``Lasso``,
   ``ElasticNet``, ``Ridge``, ``LogisticRegression`` and its smooth final steps
   (``LinearSVC``, ``LinearSVR``, ``RidgeClassifier``, ``HuberRegressor``, the GLMs,
   ``KernelRidge``, the SGD estimators) are mapped to skimplicit's inner problems with
   exactly their objective and parameters; any other final step must implement the
   tunable protocol below.
3. **Restriction to** ``param_bounds``: the hyperparameters named there are tuned within
   the given bounds (log scale for scale parameters such as ``alpha``, linear for ratios
   such as ``l1_ratio``, unless a third element says otherwise); the others are held at
   the estimator's own values.
4. ``tune`` runs; each evaluation becomes a row of ``cv_results_``; the user's pipeline,
   cloned, with the best hyperparameters set, is refit on all the data.

The tunable protocol (for third-party estimators)
-------------------------------------------------
An estimator can be the final step of a :class:`HypergradSearchCV` if it implements::

    def make_tunable_problem(self, folds, bounds):
        '''Return a tunable problem for these folds (read-only list of FoldData).'''

``folds`` is a list of :class:`~skimplicit.tuning.FoldData`
``(X_train, y_train, sw_train, X_test, y_test, sw_test)``: the already preprocessed
arrays of each split (dense float64 or scipy sparse X; sample weights as given, ones by
default; ``y`` as passed to ``fit``, float64 for regressors); ``bounds`` maps the
hyperparameters named in ``param_grid`` to ``(low, high, scale)`` (``scale`` ``None``
unless given) or ``None`` (``"auto"``): the search applies them to the problem's
``hyperparameters`` afterwards, a problem may also use them (its coarse path). The
former private name ``_make_tunable_problem(folds)`` is still understood. The returned
object implements :class:`~skimplicit.model_selection.TunableProblem`:

``hyperparameters``
    a list of :class:`~skimplicit.model_selection.Hyperparameter` (name, default bounds,
    ``"log"``/``"linear"`` scale, ``size`` for vector hyperparameters). HypergradSearchCV
    replaces the bounds and scale of the ones named in ``param_bounds``.
``loss_name``
    ``"mse"`` or ``"log_loss"`` (reported as ``neg_mean_squared_error`` /
    ``neg_log_loss``); another name is reported as ``neg_<loss_name>``.
``evaluate(params, *, precision=1.0, with_grad=True)``
    an :class:`~skimplicit.model_selection.Evaluation`: the mean over folds of the
    validation loss at ``params`` (dict name -> value, natural units), the per-fold
    losses, and (if ``with_grad``) its gradient per hyperparameter, natural units.
    ``precision`` in ``(0, 1]`` scales the inner tolerance.
``initial_points()``
    the coarse cover: points spanning the whole search interval, in a warm-started
    order (large to small penalties); the descent starts from its best basins.
``bound_hint(name, side)`` (optional)
    how to widen that bound, for the warning when the best point sits on it.
``get_warm_start()`` / ``set_warm_start(state)`` (optional)
    the inner solutions kept between evaluations, so that restarts start alike.

The hyperparameter names should be the estimator's own constructor parameters (as
``alpha`` is ``Lasso``'s): the refit then sets them with ``set_params``. Otherwise the
estimator implements ``tuned_estimator(params)`` (formerly ``_tuned_estimator``),
returning the (unfitted) estimator to refit at ``params``. skimplicit's CV estimators
implement the protocol; inside this search, their refit is their plain scikit-learn
counterpart (``Lasso``, ``ElasticNet``, ``Ridge``, ``LogisticRegression``) at the chosen
values.
"""

from __future__ import annotations

import time
import warnings
from copy import deepcopy
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import get_scorer
from sklearn.metrics._scorer import _BaseScorer, _MultimetricScorer, _PassthroughScorer
from sklearn.model_selection import check_cv
from sklearn.model_selection._search import BaseSearchCV, _yield_masked_array_for_each_param
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, get_tags, indexable
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_method_params,
    _num_samples,
    check_array,
    check_is_fitted,
    column_or_1d,
)

from ._adapters import (
    LOSS_TO_SCORING,
    parse_param_grid,
    restrict,
    score_transform,
    split_estimator,
)
from ._registry import (check_refittable, final_step, find_final_step, make_problem,
                        tuned_final_step)
from ..utils import check_fold_weights, check_sample_weight
from ..tuning import backend_context
from ..tuning._constant import tune_or_constant
from ..tuning._protocol import Evaluation
from ..tuning._select import score_points, select_best

__all__ = ["HypergradSearchCV"]

#: Scan density (points per decade) around the best point of an SGD final step (see
#: ``HypergradSearchCV._scan``); half a decade each side.
SCAN_PER_DECADE = 32


def _estimator_has(attr):
    """Delegate ``attr`` to ``best_estimator_`` (or, before fit, check ``estimator``)."""

    def check(self):
        if self.refit is False:
            raise AttributeError(
                f"This {type(self).__name__} instance was initialized with refit=False. "
                f"{attr} is available only after refitting on the best parameters."
            )
        if hasattr(self, "best_estimator_"):
            getattr(self.best_estimator_, attr)
            return True
        getattr(self.estimator, attr)
        return True

    return check


def _search_has_score(self):
    """``score`` is available with a scorer (as GridSearchCV), else if the estimator has it."""
    if self.scoring is not None:
        if self.refit is False:
            return _estimator_has("score")(self)
        return True
    return _estimator_has("score")(self)


def _scorer_name(scoring):
    """The name of the differentiable-loss scorer ``scoring`` stands for, else ``None``.

    ``None`` for ``scoring=None`` too (the final step's loss, see the caller).
    """
    if isinstance(scoring, str):
        return scoring if scoring in LOSS_TO_SCORING.values() else None
    if isinstance(scoring, _BaseScorer):
        for name in LOSS_TO_SCORING.values():
            ref = get_scorer(name)
            if (getattr(scoring, "_score_func", None) is ref._score_func
                    and scoring._sign == ref._sign and not scoring._kwargs
                    and scoring._response_method == ref._response_method):
                return name
    return None


def _fold_data(pre, X, y, train, test, pre_params, sw, sw_score):
    """Preprocess one split: fit ``pre`` on the training part, apply it to the test part."""
    from ..tuning import FoldData

    X_tr, X_te = _safe_indexing(X, train), _safe_indexing(X, test)
    y_tr, y_te = y[train], y[test]
    if pre is not None:
        pre = clone(pre)
        X_tr = pre.fit_transform(X_tr, y_tr, **_check_method_params(X, pre_params, train))
        X_te = pre.transform(X_te)
    kw = dict(accept_sparse=("csr", "csc"), dtype=(np.float64, np.float32),
              accept_large_sparse=False)
    X_tr = check_array(X_tr, **kw).astype(np.float64, copy=False)
    X_te = check_array(X_te, **kw).astype(np.float64, copy=False)
    sw_tr = np.ones(len(train)) if sw is None else np.asarray(sw, float)[train]
    sw_te = np.ones(len(test)) if sw_score is None else np.asarray(sw_score, float)[test]
    return FoldData(X_tr, y_tr, sw_tr, X_te, y_te, sw_te)


def _one_point_result(problem):
    """A one-row :class:`TuningResult`: every hyperparameter held (a one-point grid)."""
    from ..tuning import TuningResult

    ev = problem.evaluate({}, precision=1.0, with_grad=False)
    rec = {"params": {}, "evaluation": ev, "time": 0.0, "phase": "fixed", "precision": 1.0,
           "grad_norm": np.nan, "grad_z": None}
    return TuningResult(best_params={}, best_loss=float(ev.loss), best_evaluation=ev,
                        records=[rec], n_iter=0, stop_reason="nothing to tune")


def _point_key(params):
    """A point's identity: its values to 12 significant digits (a descent's start,
    ``exp(log(alpha))``, can differ from the cover's ``alpha`` in the last bit)."""
    return tuple((k, tuple(f"{x:.12g}" for x in np.ravel(np.asarray(v, float))))
                 for k, v in sorted(params.items()))


def _scan_record(point, prefix):
    """The record of a scan point (see ``HypergradSearchCV._scan``): scored by the
    estimator's refits only; the problem was not solved there (phase ``"scan"``, no
    hypergradient, no inner precision)."""
    params = {k[len(prefix):]: v for k, v in point.items() if k.startswith(prefix)}
    ev = Evaluation(loss=np.nan, grad=None, fold_losses=np.array([np.nan]), converged=True,
                    info={"scan": True})
    return {"params": params, "evaluation": ev, "phase": "scan", "precision": np.nan}


def _dedupe(records, best_evaluation):
    """The records without repeats of a point, and the row of ``best_evaluation``.

    A descent starting at a cover point evaluates it again (with its hypergradient, which
    the cover may not compute): that point keeps its first row, which takes the
    hypergradient of the repeat.
    """
    rows, seen, best = [], {}, 0
    for r in records:
        key = _point_key(r["params"])
        if key in seen:
            i = seen[key]
            first = rows[i]
            if first["evaluation"].grad is None and r["evaluation"].grad is not None:
                ev = first["evaluation"]
                rows[i] = dict(first, evaluation=type(ev)(
                    loss=ev.loss, grad=r["evaluation"].grad, fold_losses=ev.fold_losses,
                    converged=ev.converged, info=ev.info))
            if r["evaluation"] is best_evaluation:
                best = i
            continue
        seen[key] = len(rows)
        if r["evaluation"] is best_evaluation:
            best = len(rows)
        rows.append(r)
    return rows, best


def results_metrics(results):
    """The metric names of a multi-metric ``cv_results_`` (``mean_test_<name>`` keys)."""
    return {k[len("mean_test_"):] for k in results if k.startswith("mean_test_")}


def _rank(scores):
    """GridSearchCV's ranks: 1 is best, ties share the lower rank, NaN last."""
    if np.all(np.isnan(scores)):
        return np.ones(len(scores), dtype=np.int32)
    filled = np.nan_to_num(scores, nan=np.nanmin(scores) - 1)
    return rankdata(-filled, method="min").astype(np.int32)


def _column(values):
    """A float column, or an object column of arrays for vector hyperparameters."""
    if all(np.ndim(v) == 0 for v in values):
        return np.array(values, dtype=float)
    arr = np.empty(len(values), dtype=object)
    arr[:] = [np.asarray(v, float) for v in values]
    return arr


class HypergradSearchCV(MetaEstimatorMixin, BaseEstimator):
    r"""Tune a pipeline's final-step hyperparameters by hypergradient descent on K-fold CV.

    A drop-in for :class:`~sklearn.model_selection.GridSearchCV`:
    ``GridSearchCV(pipe, {"lasso__alpha": alphas})`` becomes
    ``HypergradSearchCV(pipe, {"lasso__alpha": alphas})``, where the list ``alphas`` is
    read as the interval ``[min, max]`` searched and the coarse starts of the descent
    (or give ``(1e-3, 1e1)``). Instead of refitting the
    pipeline at every grid point, the gradient of the mean validation loss with respect
    to the hyperparameters (the *hypergradient*) is computed by implicit differentiation
    of the final step's optimality conditions, for all folds in one batched JAX call, and
    followed by the shared outer loop (:func:`~skimplicit.tuning.tune`: a warm-started
    coarse cover of the whole search space, then a descent from its best basins, a
    bracketed line search for one hyperparameter, L-BFGS-B for several, in log scale for
    scale parameters). Several
    hyperparameters are tuned at once at the cost of one.

    The final step keeps scikit-learn's objective on each training fold. For
    :class:`~sklearn.linear_model.Lasso` / :class:`~sklearn.linear_model.ElasticNet`:

    .. math::
        \frac{1}{2 n} \|y - X w - b\|_2^2 + \alpha \rho \|w\|_1
        + \frac{\alpha (1 - \rho)}{2} \|w\|_2^2, \qquad \rho = \text{l1\_ratio}

    (:math:`\rho = 1` for the Lasso), for :class:`~sklearn.linear_model.Ridge`
    :math:`\|y - X w - b\|_2^2 + \alpha \|w\|_2^2`, and for
    :class:`~sklearn.linear_model.LogisticRegression` (binary or multinomial)
    :math:`C \sum_i s_i \ell(y_i, x_i^\top W + b) + \rho \|W\|_1 + \frac{1 - \rho}{2}
    \|W\|_2^2` (:math:`s_i` sample times class weights). The validation loss is the mean
    over folds of the held-out MSE or log-loss (weighted by the test sample weights when
    they are routed to the scorer).

    Parameters
    ----------
    estimator : estimator object
        A :class:`~sklearn.pipeline.Pipeline` or a bare estimator whose final step is
        scikit-learn's ``Lasso``, ``ElasticNet``, ``Ridge`` or ``LogisticRegression``
        (any solver but ``liblinear``, which penalizes the intercept), ``LinearSVC``
        (``loss="squared_hinge"``), ``LinearSVR`` (``loss="squared_epsilon_insensitive"``),
        ``RidgeClassifier``, ``HuberRegressor``, ``PoissonRegressor``,
        ``GammaRegressor``, ``TweedieRegressor`` (``power >= 1``, log link),
        ``KernelRidge`` (``alpha``; ``gamma`` for the ``rbf`` and ``laplacian`` kernels),
        ``SGDRegressor(loss="squared_error")`` and binary
        ``SGDClassifier(loss="log_loss")`` with ``penalty="l2"`` (tuned on the exact
        minimizer SGD approximates, the point selected by SGD's own CV scores) (a
        subclass that overrides neither ``fit`` nor the prediction
        methods counts as its parent), or any estimator implementing the tunable protocol
        (see Notes); skimplicit's CV estimators do. Others raise a ``TypeError`` naming
        this list.
    param_grid : dict (or a list of one dict)
        GridSearchCV's second argument, GridSearchCV-style names of the final step's
        hyperparameters mapped to:

        * a **list** (or 1-D array) of numbers: the hyperparameter is tuned within
          ``[min, max]`` of the list, and the list's values are the coarse cover the
          descent starts from (evaluated first, in the given order, repeats dropped;
          several lists: their product, in GridSearchCV's order);
        * a list of **one** value (of any type, for any parameter of the pipeline): held
          there, as a one-point grid;
        * a tuple ``(low, high)`` or ``(low, high, "log" | "linear")``: tuned within it,
          from the problem's own coarse cover;
        * ``"auto"``: the problem's own bounds (for scikit-learn's Lasso ``0.9 * [1e-4,
          1] * alpha_max``, the smallest ``alpha_max`` of the training folds; for
          skimplicit's ImplicitLassoCV / ImplicitElasticNetCV ``[eps, 1] * alpha_max``
          with their ``eps``, or their ``alphas`` / ``bounds`` when given).

        e.g. ``{"elasticnet__alpha": (1e-4, 1e1), "elasticnet__l1_ratio": (0.01, 1.0)}``
        or ``{"logisticregression__C": [1e-3, 1e-1, 1e1, 1e3]}``. ``alpha`` and ``C`` are
        searched in log scale and ``l1_ratio`` in linear scale unless a third element
        says otherwise. The final step's hyperparameters not named here keep the
        estimator's values. Above ``alpha_max`` every Lasso solution is zero and the
        hypergradient vanishes: ``"auto"`` excludes that dead zone.
    cv : int, cross-validation generator or iterable, default=5
        As in GridSearchCV (an int is a ``(Stratified)KFold``).
    scoring : None, str, callable, list, tuple or dict, default=None
        ``None``: the final step's differentiable loss, reported as its scikit-learn
        scorer (``neg_mean_squared_error`` for least-squares regressors,
        ``neg_log_loss`` for logistic regression; ``neg_squared_hinge`` for
        ``LinearSVC``, whose ``scorer_`` is then ``None``). The matching strings or
        scorers (e.g. one with ``set_score_request(sample_weight=True)``) are the loss
        followed. ``neg_brier_score`` with a ``LogisticRegression`` final step: the
        Brier score is the validation loss followed (chain rule through the predicted
        probabilities). ``r2`` and ``neg_root_mean_squared_error`` with a single-output
        ``Ridge``, ``LinearSVR``, ``HuberRegressor`` or ``KernelRidge`` (problems with
        per-fold hypergradients of the validation MSE): the fold MSEs' transforms are
        followed through the chain rule; with other final steps they select as below.
        **Any other scoring** (``accuracy``, ``roc_auc``, a callable, several metrics as
        in GridSearchCV): the hypergradient follows the final step's own loss, and the
        point is selected by the user's scorer among the evaluated points, each refit on
        every training fold and scored exactly as GridSearchCV scores a grid point
        (``refit`` names the metric that selects).
    max_outer_iter : int, default=30
        Hypergradient evaluations per start after the coarse cover.
    outer_tol : float, default=1e-4
        Relative decrease of the CV loss under which the descent stops.
    n_restarts : int, default=1
        Least number of starts: the coarse cover's best basins (up to 3 within 5 % of the
        best are always descended), then its next best points, then random points.
    max_time : float, default=None
        Time budget in seconds; the best point seen is kept.
    n_jobs : int, default=None
        Restarts run through joblib (any backend: loky, threading, dask), and so does the
        per-fold preprocessing; the folds of a Lasso or elastic-net final step are solved
        on this many threads; the result does not depend on it.
    refit : bool, str or callable, default=True
        Refit the estimator at the best point on all the data (``best_estimator_``). As
        in GridSearchCV: a metric name for multi-metric ``scoring``; a callable takes
        ``cv_results_`` and returns ``best_index_`` (``best_score_`` is then not set).
    verbose : int, default=0
        One printed line per evaluation when > 0.
    random_state : int, RandomState instance or None, default=None
        For random restart points.
    error_score : 'raise' or float, default=np.nan
        Score of an evaluation that raises (with a ``FitFailedWarning``); the descent
        steps back from it. ``'raise'`` re-raises.
    return_train_score : bool, default=False
        Add GridSearchCV's ``split<k>_train_<metric>``, ``mean_train_<metric>`` and
        ``std_train_<metric>`` (each evaluated point refit on every training fold).
    pre_dispatch : int or str, default="2*n_jobs"
        As in GridSearchCV, for the refits that score the evaluated points.
    backend : {"auto", "host", "jax"}, default="auto"
        Where the tuning of a ``Lasso``, ``ElasticNet``, ``Ridge`` or
        ``LogisticRegression`` final step (or of skimplicit's own, whose ``backend`` is
        ``"auto"``) runs: ``"jax"`` solves all folds and the hypergradient in one compiled
        JAX program per evaluation on JAX's default device (the folds moved there once),
        ``"host"`` on NumPy / SciPy solvers; ``"auto"``: ``"host"`` on a CPU backend,
        ``"jax"`` on a GPU or TPU. The other final steps run on the host. The
        preprocessing and the refits run on the host.

    Attributes
    ----------
    cv_results_ : dict of numpy (masked) ndarrays
        One row per distinct evaluated point, in evaluation order (a descent starting
        at a cover point adds no row: its hypergradient goes to that row); loads into a
        :class:`pandas.DataFrame`; deterministic apart from the ``*_time`` keys. Keys as
        GridSearchCV: ``params``, ``param_<name>``, ``split<k>_test_<metric>``,
        ``mean_test_<metric>``, ``std_test_<metric>``, ``rank_test_<metric>``
        (``<metric>`` is ``score`` for one metric), the ``*_train_*`` keys with
        ``return_train_score``, ``mean_fit_time``, ``std_fit_time``,
        ``mean_score_time``, ``std_score_time`` (for the loss followed, without refits:
        the evaluation's wall time per fold, inner solves, hypergradient and scoring
        together, as the fit time; score times 0); and ``hypergradient_<name>`` (the
        gradient of the mean validation *loss* followed with respect to the
        hyperparameter in natural units; NaN where none was computed), ``phase``
        (``"path"``, ``"start k"``, ``"fixed"``, ``"scan"``: an SGD step's points around
        its best, scored by SGD's refits only), ``inner_precision`` and ``converged``.
    best_index_ : int
        Row of ``cv_results_`` with the best mean test score.
    best_params_ : dict
        Hyperparameters (GridSearchCV-style names) at ``best_index_``.
    best_score_ : float
        Mean cross-validated score at ``best_index_`` (e.g. the negative MSE).
    best_estimator_ : estimator
        A clone of ``estimator`` with ``best_params_`` set, refit on all the data (only
        with ``refit``): a plain scikit-learn pipeline. A skimplicit CV estimator as the
        final step is replaced by its scikit-learn counterpart at the chosen values.
    refit_time_ : float
        Seconds of the refit.
    n_splits_ : int
    scorer_ : scorer
        The scorer the test scores are reported in.
    multimetric_ : bool
        Whether ``scoring`` holds several metrics.
    tuning_result_ : TuningResult
        The outer loop's full record.
    search_space_ : dict
        For each tuned hyperparameter: ``(lower, upper, scale, is_vector)``, the bounds
        used (``"auto"`` resolved) and the search scale.
    n_features_in_, feature_names_in_, classes_ :
        Those of ``best_estimator_``.

    See Also
    --------
    sklearn.model_selection.GridSearchCV : the exhaustive twin (any scorer, any
        parameter, one fit per grid point and fold).
    skimplicit.linear_model.ImplicitLassoCV : the same machinery for one estimator,
        without a pipeline.
    skimplicit.tuning.tune : the outer loop.
    skimplicit.inspection.plot_search_trajectory : draw the evaluated points over a
        CV curve.

    Notes
    -----
    **How the result differs from GridSearchCV.** The chosen point is a local minimum of
    the CV loss (descended from the best basins of a coarse cover of the whole search
    space), not the best of a grid: usually equal or better on the CV score, with far
    fewer inner solves; a non-convex CV curve can hold a better basin, which
    ``n_restarts`` explores. Only the final step's hyperparameters are tuned (the
    gradient flows through the final step only).

    **Non-differentiable scorers.** With ``scoring="accuracy"`` (or ``roc_auc``, a
    callable, several metrics; ``r2`` with ``Lasso`` or ``ElasticNet``) the descent
    follows the final step's own loss and the chosen point is the best *by the user's
    scorer among the evaluated points* (the coarse starts and the descent's steps), each
    refit on every training fold as GridSearchCV does: its score is GridSearchCV's score
    at that point, and the refits cost one GridSearchCV fit per evaluated point and
    fold.

    **score.** With ``scoring=None``, :meth:`score` is ``best_estimator_.score`` (R² or
    accuracy), as in GridSearchCV; ``best_score_`` and ``cv_results_`` hold the
    differentiable loss the search followed (``scorer_``).

    **The tunable protocol.** A third-party final step implements
    ``make_tunable_problem(folds, bounds) -> TunableProblem`` (see
    :class:`~skimplicit.tuning.TunableProblem` and the user guide, :ref:`tunable`); if
    the problem's hyperparameter names are not its constructor parameters, it also
    implements ``tuned_estimator(params)`` returning the estimator to refit.

    **Parallelism and JAX.** Restarts (``n_restarts > 1``) and the per-fold
    preprocessing run through joblib; use a process backend that does not fork a process
    where JAX runs: loky (the default), or dask (``with
    joblib.parallel_config(backend="dask")`` with a ``dask.distributed.Client``), never
    ``"multiprocessing"``, which forks and can deadlock once JAX has started. Each worker
    process imports JAX and compiles the hypergradient kernels once (seconds): share a
    persistent compilation cache by exporting, before the workers start,
    ``JAX_COMPILATION_CACHE_DIR=/some/shared/dir`` and
    ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0`` (workers inherit the environment; on
    a multi-machine dask cluster, set them in the workers' environment and point them to
    a shared file system). To avoid oversubscription (each process running XLA and BLAS
    with every core), cap the threads per worker: ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``
    and ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` (or
    ``threadpoolctl.threadpool_limits``), e.g. ``1`` when there are as many workers as
    cores; loky already limits BLAS threads in its workers. Each evaluation of the
    validation loss runs with BLAS limited to one thread anyway (in every process):
    its many small BLAS calls gain little from threads, and spin-waiting BLAS threads
    cost several times the work on a busy machine.

    References
    ----------
    Blondel et al., "Efficient and Modular Implicit Differentiation", NeurIPS 2022.
    Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016.
    Bertrand et al., "Implicit differentiation of Lasso-type models for hyperparameter
    optimization", ICML 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import ElasticNet
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skimplicit.model_selection import HypergradSearchCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), ElasticNet())
    >>> search = HypergradSearchCV(
    ...     pipe, {"elasticnet__alpha": (1e-3, 10.0), "elasticnet__l1_ratio": (0.1, 1.0)},
    ...     cv=3).fit(X, y)
    >>> sorted(search.best_params_)
    ['elasticnet__alpha', 'elasticnet__l1_ratio']
    >>> bool(search.best_score_ < 0)  # a negative MSE
    True
    >>> search.best_estimator_.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"])],
        "param_grid": [dict, list],
        "cv": ["cv_object"],
        "scoring": [str, callable, list, tuple, dict, None],
        "max_outer_iter": [Interval(Integral, 1, None, closed="left")],
        "outer_tol": [Interval(Real, 0, None, closed="left")],
        "n_restarts": [Interval(Integral, 1, None, closed="left")],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "n_jobs": [Integral, None],
        "refit": ["boolean", str, callable],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "error_score": [StrOptions({"raise"}), Real],
        "return_train_score": ["boolean"],
        "pre_dispatch": [Integral, str],
        "backend": [StrOptions({"auto", "host", "jax"})],
    }

    def __init__(self, estimator, param_grid, *, cv=5, scoring=None, max_outer_iter=30,
                 outer_tol=1e-4, n_restarts=1, max_time=None, n_jobs=None, refit=True,
                 verbose=0, random_state=None, error_score=np.nan, return_train_score=False,
                 pre_dispatch="2*n_jobs", backend="auto"):
        self.backend = backend
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.scoring = scoring
        self.max_outer_iter = max_outer_iter
        self.outer_tol = outer_tol
        self.n_restarts = n_restarts
        self.max_time = max_time
        self.n_jobs = n_jobs
        self.refit = refit
        self.verbose = verbose
        self.random_state = random_state
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.pre_dispatch = pre_dispatch

    # GridSearchCV's own scorer handling (the same checks and messages).
    _get_scorers = BaseSearchCV._get_scorers
    _check_refit_for_multimetric = BaseSearchCV._check_refit_for_multimetric
    _check_scorers_accept_sample_weight = BaseSearchCV._check_scorers_accept_sample_weight

    # -- tags --------------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = deepcopy(sub.classifier_tags)
        tags.regressor_tags = deepcopy(sub.regressor_tags)
        tags.input_tags.pairwise = sub.input_tags.pairwise
        tags.input_tags.sparse = sub.input_tags.sparse
        tags.target_tags.required = True
        tags.target_tags.multi_output = (
            sub.target_tags.multi_output and not self._single_output_final()
        )
        return tags

    def _single_output_final(self):
        try:
            final = split_estimator(self.estimator)[1]
        except ValueError:
            return False
        step = find_final_step(final)
        return step is not None and step.single_output

    # -- fit -----------------------------------------------------------------------------
    def _validate_y(self, y, final):
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        if is_classifier(final):
            y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            return y
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim == 2 and self._single_output_final():
            if y.shape[1] != 1:
                raise ValueError(
                    f"{type(final).__name__} as the final step of {name} takes a 1-D y; "
                    "for several targets use Ridge."
                )
            y = column_or_1d(y, warn=True)
        return y

    def _routed_params(self, params, pre, final, prefix, select_mode=False):
        """``(groups, pre_params, final_params, estimator_fit_params, score_params)``."""
        if _routing_enabled():
            routed = process_routing(self, "fit", **params)
            groups = routed.splitter.split.get("groups")
            est_params = dict(routed.estimator.fit)
            score_params = dict(routed.scorer.score)
            if isinstance(self.estimator, Pipeline):
                by_step = process_routing(self.estimator, "fit", **est_params)
                final_params = dict(by_step[prefix[:-2]].fit)
                used = (pre.get_metadata_routing().consumes("fit_transform", set(est_params))
                        if pre is not None else set())
                pre_params = {k: v for k, v in est_params.items() if k in used}
            else:
                final_params, pre_params = dict(est_params), {}
        else:
            est_params = dict(params)
            groups = est_params.pop("groups", None)
            # As GridSearchCV: a plain sample_weight also weights the validation scores
            # (of a user's scorer, if it accepts them; a warning otherwise).
            score_params = ({"sample_weight": est_params["sample_weight"]}
                            if est_params.get("sample_weight") is not None else {})
            if (score_params and select_mode
                    and not BaseSearchCV._check_scorers_accept_sample_weight(self)):
                score_params = {}
            if prefix:
                final_params = {k[len(prefix):]: v for k, v in est_params.items()
                                if k.startswith(prefix)}
                pre_params = {k: v for k, v in est_params.items() if not k.startswith(prefix)}
            else:
                final_params, pre_params = dict(est_params), {}
        return groups, pre_params, final_params, est_params, score_params

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, **params):
        """Tune the final step's hyperparameters on K-fold CV, then refit on all data.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Anything the pipeline's first step accepts.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        **params : dict of str -> object
            As in GridSearchCV: ``groups`` goes to the CV splitter; the rest to the
            estimator's ``fit`` (``"lasso__sample_weight"`` for a pipeline,
            ``sample_weight`` for a bare estimator, which then also weights the
            validation scores); with metadata routing enabled, routed by the requests.
            The final step accepts ``sample_weight`` only.

        Returns
        -------
        self : object
        """
        # GridSearchCV's scorer checks first (an estimator without ``score`` and
        # scoring=None, a multi-metric scoring without a valid ``refit``).
        scorers, refit_metric = BaseSearchCV._get_scorers(self)
        estimator = clone(self.estimator)
        pre, final, prefix = split_estimator(estimator)
        final_step(final)  # the explanatory TypeError for a step it cannot tune
        bounds, starts, fixed = parse_param_grid(self.param_grid, prefix, final)
        if fixed:  # one-value lists: held there, as a one-point grid
            estimator.set_params(**fixed)
            pre, final, prefix = split_estimator(estimator)
        loss_scoring = _scorer_name(self.scoring)
        # r2 and the RMSE: followed through the chain rule where the problem allows it.
        chain = isinstance(self.scoring, str) and self.scoring in (
            "r2", "neg_root_mean_squared_error")
        select_mode = self.scoring is not None and loss_scoring is None and not chain
        X, y = indexable(X, self._validate_y(y, final))
        splits, folds, est_params, score_params = self._folds(
            X, y, _check_method_params(X, params=params), pre, final, prefix, select_mode)
        with backend_context(self.backend):
            problem = make_problem(final, folds, bounds, loss_scoring)
        default = LOSS_TO_SCORING.get(problem.loss_name, f"neg_{problem.loss_name}")
        # Selected among the points: a differentiable scorer of another loss, or a refit
        # (SGD) that only approximates the problem's minimizer (its own CV scores).
        select_mode = select_mode or (loss_scoring is not None and loss_scoring != default) \
            or bool(getattr(problem, "approximate_refit", False))
        transform, self._score_offset = None, 0.0
        if chain:
            found = score_transform(self.scoring, problem, folds)
            if found is None:
                select_mode = True  # no per-fold gradients: selected among the points
            else:
                transform, self._score_offset = found
        search_problem = restrict(problem, final, bounds, error_score=self.error_score,
                                  starts=starts, allow_empty=True)
        search_problem.transform = transform
        search_problem.display_prefix = prefix  # verbose output in cv_results_' names
        check_refittable(final, search_problem.hyperparameters)
        result = self._tune(search_problem, folds, final)
        records, best_rec = _dedupe(result.records, result.best_evaluation)
        points = [{**fixed, **{prefix + k: (v.copy() if np.ndim(v) else float(v))
                               for k, v in r["params"].items()}} for r in records]
        if select_mode or self.return_train_score:
            # Every evaluated point refit on each training fold and scored by the user's
            # scorer(s), exactly as GridSearchCV scores a grid point.
            if not select_mode and transform is None:
                scorers = get_scorer(default) if default in LOSS_TO_SCORING.values() \
                    else scorers
            results, self.multimetric_ = score_points(
                self, estimator, X, y, splits, points, scorers, fit_params=dict(est_params),
                score_params=score_params, extend=self._scan(problem, search_problem, prefix,
                                                             refit_metric))
            records = records + [_scan_record(p, prefix) for p in results["params"][len(records):]]
            if not select_mode:  # the test scores the search followed
                self._loss_scores(results, records)
        else:
            results = self._format_results(records, search_problem, prefix, points)
            self.multimetric_ = False
        if callable(self.scoring) and self.multimetric_:
            BaseSearchCV._check_refit_for_multimetric(self, results_metrics(results))
            refit_metric = self.refit
        self._add_search_columns(results, records, search_problem, prefix)
        self.cv_results_ = results
        self._select(results, best_rec, refit_metric, select_mode, scorers, transform, default)
        if self.refit:
            self._refit_best(estimator, prefix, fixed, X, y, est_params)
        return self

    def _scan(self, problem, search_problem, prefix, refit_metric):
        """For a final step whose refit only approximates the problem's minimizer (SGD,
        ``problem.approximate_refit``): ``extend`` for :func:`score_points`, the scan
        around the best scored point (else None).

        SGD's CV score is a rough function of ``alpha`` (its learning rate and stopping
        depend on it), with bumps of about 1 % between neighbouring values: the
        hypergradient of the exact minimizer finds the region, and the points
        ``best * 10**(k / SCAN_PER_DECADE)``, ``0 < |k| <= SCAN_PER_DECADE / 2`` (within
        half a decade, twice a 100-point grid's density over six decades), inside the
        bounds and not already scored, are scored the same way.
        """
        hps = search_problem.hyperparameters
        one_log = len(hps) == 1 and hps[0].size is None and hps[0].scale == "log"
        if not (getattr(problem, "approximate_refit", False) and one_log) or (
                refit_metric is False and not callable(self.refit)):
            return None
        hp, key = hps[0], prefix + hps[0].name
        refit = self.refit if callable(self.refit) else True

        def extend(results):
            if not callable(refit) and f"mean_test_{refit_metric}" not in results:
                return []  # a callable's several metrics: refit's check comes later
            params = results["params"]
            best = params[select_best(refit, refit_metric, results)]
            lo, hi = float(hp.lower), float(hp.upper)
            seen = np.log10([float(p[key]) for p in params])
            out = []
            for k in range(-SCAN_PER_DECADE // 2, SCAN_PER_DECADE // 2 + 1):
                v = float(np.clip(float(best[key]) * 10.0 ** (k / SCAN_PER_DECADE), lo, hi))
                if np.min(np.abs(seen - np.log10(v))) > 1e-9:
                    seen = np.append(seen, np.log10(v))
                    out.append({**best, key: v})
            return out

        return extend

    def _folds(self, X, y, params, pre, final, prefix, select_mode):
        """The splits and each fold's data through the pipeline's other steps (fitted on
        its training part), with the routed parameters, after GridSearchCV's checks and
        the estimators' weight checks (skimplicit.utils): the training weights of the
        final step and the weights of the validation loss."""
        groups, pre_params, final_params, est_params, score_params = self._routed_params(
            params, pre, final, prefix, select_mode)
        sw = final_params.pop("sample_weight", None)
        n_samples = _num_samples(X)
        if sw is not None:
            sw = check_sample_weight(sw, n_samples)
        loss_sw = None if select_mode else score_params.get("sample_weight")
        if loss_sw is not None:
            loss_sw = score_params["sample_weight"] = check_sample_weight(
                loss_sw, n_samples, name="sample_weight (of the validation score)")
        if final_params:
            raise ValueError(
                f"Fit parameters {sorted(final_params)} of the final step are not supported "
                "by HypergradSearchCV (only sample_weight)."
            )
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self.n_splits_ = cv.get_n_splits(X, y, groups)
        splits = list(cv.split(X, y, groups))
        if len(splits) != self.n_splits_:
            raise ValueError(
                f"cv.split and cv.get_n_splits return inconsistent results: expected "
                f"{self.n_splits_} splits, got {len(splits)}."
            )
        ones = np.ones(n_samples)
        check_fold_weights(splits, ones if sw is None else sw,
                           ones if loss_sw is None else loss_sw)
        folds = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_data)(pre, X, y, tr, te, pre_params, sw, loss_sw)
            for tr, te in splits
        )
        return splits, folds, est_params, score_params

    def _tune(self, search_problem, folds, final):
        """The one call into the shared outer loop (``tuning_result_``,
        ``search_space_``)."""
        if search_problem.hyperparameters:
            # Nothing to tune (a constant target, no varying feature): one evaluation at
            # the strongest penalty in the bounds, as the estimators do.
            result = tune_or_constant(
                search_problem, folds,
                fit_intercept=(getattr(final, "fit_intercept", True)
                               and not is_classifier(final)),
                max_outer_iter=self.max_outer_iter, outer_tol=self.outer_tol,
                n_restarts=self.n_restarts, max_time=self.max_time, verbose=self.verbose,
                random_state=self.random_state, n_jobs=self.n_jobs,
            )
        else:  # every hyperparameter held (one-value lists): a one-point grid
            result = _one_point_result(search_problem)
        self.tuning_result_ = result
        prefix = search_problem.display_prefix
        self.search_space_ = {
            prefix + hp.name: (hp.lower, hp.upper, hp.scale, hp.size is not None)
            for hp in search_problem.hyperparameters
        }
        return result

    def _select(self, results, best_rec, refit_metric, select_mode, scorers, transform,
                default):
        """``best_index_``, ``best_score_``, ``best_params_`` and ``scorer_``: the
        descent's best point, or the scorer's (``refit``) among the evaluated ones."""
        if self.refit or not self.multimetric_:
            if not select_mode and self.refit is True:
                self.best_index_ = best_rec
            else:
                self.best_index_ = select_best(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = float(results[f"mean_test_{refit_metric}"][self.best_index_])
            self.best_params_ = dict(results["params"][self.best_index_])
        if select_mode:
            self.scorer_ = scorers._scorers if isinstance(scorers, _MultimetricScorer) \
                else scorers
        elif isinstance(self.scoring, _BaseScorer) or transform is not None:
            self.scorer_ = scorers
        else:
            self.scorer_ = get_scorer(default) if default in LOSS_TO_SCORING.values() else None
        self._select_mode = select_mode

    def _refit_best(self, estimator, prefix, fixed, X, y, est_params):
        """``best_estimator_``: the final step at the best point, refit on all data."""
        best = clone(estimator)
        natural = {k[len(prefix):]: v for k, v in self.best_params_.items() if k not in fixed}
        step = tuned_final_step(split_estimator(best)[1], natural)
        best = best.set_params(**{prefix[:-2]: step}) if prefix else step
        t0 = time.perf_counter()
        best.fit(X, y, **est_params)
        self.refit_time_ = float(time.perf_counter() - t0)
        self.best_estimator_ = best
        if hasattr(best, "feature_names_in_"):
            self.feature_names_in_ = best.feature_names_in_

    def _loss_scores(self, results, records):
        """Test scores of the loss the search followed (the refits gave the train ones)."""
        n, K = len(records), self.n_splits_
        scores = np.full((n, K), np.nan)
        for i, r in enumerate(records):
            ev = r["evaluation"]
            scores[i] = self.error_score if ev.info.get("failed") else (
                getattr(self, "_score_offset", 0.0) - np.asarray(ev.fold_losses, float))
        for k in range(K):
            results[f"split{k}_test_score"] = scores[:, k]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            results["mean_test_score"] = scores.mean(axis=1)
            results["std_test_score"] = scores.std(axis=1)
        results["rank_test_score"] = _rank(results["mean_test_score"])

    def _format_results(self, records, problem, prefix, points):
        """GridSearchCV's keys from the evaluations (no refit): test scores are minus the
        fold losses; the fit time is the evaluation's per fold (inner solves,
        hypergradient and scoring together), the score time 0."""
        n = len(records)
        out = {}
        eval_time = np.array([r["evaluation"].info.get("eval_time", np.nan) for r in records])
        out["mean_fit_time"] = eval_time / self.n_splits_
        out["std_fit_time"] = np.zeros(n)
        out["mean_score_time"] = np.zeros(n)
        out["std_score_time"] = np.zeros(n)
        for param, ma in _yield_masked_array_for_each_param(points):
            out[param] = ma
        out["params"] = points
        self._loss_scores(out, records)
        return out

    def _add_search_columns(self, out, records, problem, prefix):
        """skimplicit's own columns: the hypergradient per tuned hyperparameter (of the
        loss followed, NaN where none was computed), the phase, the inner precision and
        whether the evaluation converged."""
        for hp in problem.hyperparameters:
            grads = []
            for r in records:
                g = r["evaluation"].grad
                grads.append(np.full(np.shape(r["params"][hp.name]), np.nan) if g is None
                             else np.asarray(g[hp.name], float))
            out[f"hypergradient_{prefix}{hp.name}"] = _column(grads)
        out["phase"] = np.array([r["phase"] for r in records], dtype=object)
        out["inner_precision"] = np.array([r["precision"] for r in records], float)
        out["converged"] = np.array([bool(r["evaluation"].converged) for r in records])

    # -- delegation ----------------------------------------------------------------------
    def _check_fitted(self, attr):
        check_is_fitted(self)
        if not hasattr(self, "best_estimator_"):
            raise AttributeError(f"{attr} is only available with refit=True.")

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Call ``predict`` on the refit best estimator.

        Parameters
        ----------
        X : indexable of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        self._check_fitted("predict")
        return self.best_estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Call ``predict_proba`` on the refit best estimator.

        Parameters
        ----------
        X : indexable of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        self._check_fitted("predict_proba")
        return self.best_estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Call ``predict_log_proba`` on the refit best estimator.

        Parameters
        ----------
        X : indexable of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        self._check_fitted("predict_log_proba")
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Call ``decision_function`` on the refit best estimator.

        Parameters
        ----------
        X : indexable of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray
        """
        self._check_fitted("decision_function")
        return self.best_estimator_.decision_function(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X):
        """Call ``transform`` on the refit best estimator.

        Parameters
        ----------
        X : indexable of shape (n_samples, n_features)

        Returns
        -------
        Xt : array-like
        """
        self._check_fitted("transform")
        return self.best_estimator_.transform(X)

    @available_if(_estimator_has("inverse_transform"))
    def inverse_transform(self, X):
        """Call ``inverse_transform`` on the refit best estimator.

        Parameters
        ----------
        X : indexable

        Returns
        -------
        X_original : array-like
        """
        self._check_fitted("inverse_transform")
        return self.best_estimator_.inverse_transform(X)

    @available_if(_estimator_has("score_samples"))
    def score_samples(self, X):
        """Call ``score_samples`` on the refit best estimator.

        Parameters
        ----------
        X : indexable of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        self._check_fitted("score_samples")
        return self.best_estimator_.score_samples(X)

    @available_if(_search_has_score)
    def score(self, X, y=None, **params):
        """Score of the refit best estimator on ``(X, y)``.

        With ``scoring=None``, ``best_estimator_.score`` (R² for regressors, accuracy for
        classifiers), as in GridSearchCV; otherwise ``scorer_`` (e.g. the negative MSE).

        Parameters
        ----------
        X : indexable of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        **params : dict
            Passed to the scorer (with metadata routing enabled).

        Returns
        -------
        score : float
        """
        self._check_fitted("score")
        _raise_for_params(params, self, "score")
        score_params = (process_routing(self, "score", **params).scorer["score"]
                        if _routing_enabled() else {})
        if getattr(self, "_select_mode", False):  # as GridSearchCV.score
            if isinstance(self.scorer_, dict):
                scorer = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
                return scorer(self.best_estimator_, X, y, **score_params)
            score = self.scorer_(self.best_estimator_, X, y, **score_params)
            return score[self.refit] if self.multimetric_ else score
        return self._scorer_for_routing()(self.best_estimator_, X, y, **score_params)

    @property
    def classes_(self):
        """Class labels of the refit best estimator (classifiers)."""
        _estimator_has("classes_")(self)
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self):
        """Number of features seen by the refit best estimator."""
        try:
            check_is_fitted(self)
        except NotFittedError as exc:
            raise AttributeError(
                f"{type(self).__name__} object has no n_features_in_ attribute."
            ) from exc
        return self.best_estimator_.n_features_in_

    @property
    def feature_names_in_(self):
        """Feature names seen by the refit best estimator (when X had them)."""
        try:
            check_is_fitted(self)
        except NotFittedError as exc:
            raise AttributeError(
                f"{type(self).__name__} object has no feature_names_in_ attribute."
            ) from exc
        return self.best_estimator_.feature_names_in_

    # -- metadata routing ----------------------------------------------------------------
    def _scorer_for_routing(self):
        if self.scoring is None:
            return _PassthroughScorer(self.estimator)
        if isinstance(self.scoring, (list, tuple, set, dict)):
            return BaseSearchCV._get_scorers(self)[0]
        return get_scorer(self.scoring) if isinstance(self.scoring, str) else self.scoring

    def get_metadata_routing(self):
        """Route fit parameters to the estimator, the scorer and the CV splitter.

        As :meth:`sklearn.model_selection.GridSearchCV.get_metadata_routing`; test sample
        weights routed to the scorer weight the validation loss.

        Returns
        -------
        routing : MetadataRouter
        """
        router = MetadataRouter(owner=self)
        router.add(estimator=self.estimator,
                   method_mapping=MethodMapping().add(caller="fit", callee="fit"))
        router.add(scorer=self._scorer_for_routing(),
                   method_mapping=MethodMapping().add(caller="score", callee="score")
                   .add(caller="fit", callee="score"))
        router.add(splitter=check_cv(self.cv),
                   method_mapping=MethodMapping().add(caller="fit", callee="split"))
        return router
