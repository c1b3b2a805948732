"""Shared machinery of the gradient-tuned linear models.

An estimator here is: data validation + a tunable problem (``make_tunable_problem``) +
one call into :func:`skimplicit.model_selection.tune` + a refit (``_refit``). Everything
else (folds, history, attributes, routing of ``groups``) lives once, in this base class.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from ..tuning._constant import constant_target_result, tune_or_constant
from ..utils import check_fold_weights, check_sample_weight
from ..tuning import device_dtype, resolve_backend, split_folds

__all__ = ["ImplicitLinearModelCV", "OUTER_LOOP_CONSTRAINTS"]

# The outer-loop parameters, named the same in every tuner of the project.
OUTER_LOOP_CONSTRAINTS = {
    "max_outer_iter": [Interval(Integral, 1, None, closed="left")],
    "outer_tol": [Interval(Real, 0, None, closed="left")],
    "n_restarts": [Interval(Integral, 1, None, closed="left")],
    "max_time": [Interval(Real, 0, None, closed="neither"), None],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
    "n_jobs": [Integral, None],
}


def check_bounds(bounds, name="bounds"):
    """Validate a ``(low, high)`` pair of positive finite numbers, or ``"auto"``."""
    if isinstance(bounds, str) and bounds == "auto":
        return None
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 'auto' or a pair (low, high); got {bounds!r}.")
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi <= lo:
        raise ValueError(
            f"{name} must satisfy 0 < low < high (finite); got ({lo}, {hi})."
        )
    return lo, hi


class ImplicitLinearModelCV(RegressorMixin, BaseEstimator):
    """Base class: a linear regressor whose regularization is tuned by hypergradients.

    Subclasses implement ``make_tunable_problem(folds)`` (folds: a list of
    :class:`~skimplicit.tuning.FoldData`), ``_refit`` and
    ``_store_params`` (a few lines each).
    """

    _parameter_constraints: dict = {
        "fit_intercept": ["boolean"],
        "cv": ["cv_object"],
        "alpha_init": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "bounds": [StrOptions({"auto"}), tuple, list],
        "alpha_per_feature": ["boolean"],
        "copy_X": ["boolean"],
        "backend": [StrOptions({"auto", "host", "jax"})],
        **OUTER_LOOP_CONSTRAINTS,
    }

    _multi_output = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = self._multi_output
        return tags

    # -- the one fit ---------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, **params):
        """Tune the regularization by hypergradient descent on the K-fold CV loss, then refit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
        **params : dict
            ``groups`` for a group splitter (routed as in ``LassoCV``).

        Returns
        -------
        self : object
        """
        X, y = validate_data(
            self, X, y, accept_sparse=["csc", "csr"], dtype=[np.float64, np.float32],
            accept_large_sparse=False,
            multi_output=self._multi_output, y_numeric=True, copy=False,
        )
        # The JAX path works in the user's precision (float32 stays float32).
        self._device_dtype = device_dtype(X)
        X = X.astype(np.float64, copy=False)
        if sp.issparse(X):
            X = X.tocsc()
        y = np.asarray(y, dtype=np.float64)
        if not self._multi_output and y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        # scikit-learn's refits see None (not ones) when no weights are given.
        self._sw_given = sample_weight is not None and not np.isscalar(sample_weight)
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        if _routing_enabled():
            routed = process_routing(self, "fit", **params)
            groups = routed.splitter.split.get("groups")
        else:
            # As scikit-learn's CV estimators: ``groups`` (any parameter) needs routing.
            _raise_for_params(params, self, "fit")
            groups = None
        splits = self._splits(X, y, groups)
        check_fold_weights(splits, sample_weight)
        # (lazily made: a problem built in one pass holds one fold's copy of X at a time)
        folds = split_folds(X, y, sample_weight, splits, lazy=True)
        self._check_and_prepare(X, y, sample_weight)
        # One problem, or one per value of a discrete hyperparameter (a list of l1_ratio):
        # each tuned by the outer loop, the best kept.
        problems = self._make_tunable_problems(folds)
        results = [self._tune(problem, folds) for problem in problems]
        best = int(np.argmin([r.best_loss for r in results]))
        problem, result = problems[best], results[best]
        self.tuning_result_ = result
        self.history_ = result.history(problem.hyperparameters)
        self.n_outer_iter_ = result.n_iter
        self.cv_loss_ = result.best_loss
        self.cv_loss_std_ = float(np.std(result.best_evaluation.fold_losses))
        self._store_params(result.best_params, result)
        if len(results) > 1 or getattr(self, "_always_store_results", False):
            self._problems = problems
            self._store_results(results, best)
        # The refit needs none of the problems' fold data (copies of X's rows, Gram
        # matrices): freed before it, so that the peak memory is the larger of the two,
        # not their sum.
        self.__dict__.pop("_problems", None)
        # (what the refit may reuse: the whole data's Gram matrix from the folds' sums)
        self._refit_gram = getattr(problem, "refit_gram", None)
        del problems, problem, folds  # (the lazy folds: their prepared folds go too)
        try:
            self._refit(X, y, sample_weight)
        finally:
            self.__dict__.pop("_refit_gram", None)
        return self

    def _splits(self, X, y, groups):
        """The ``(train, test)`` index pairs of ``cv``."""
        return list(check_cv(self.cv).split(X, y, groups))

    def _check_and_prepare(self, X, y, sample_weight):
        """Validation that needs the data (subclasses), before the problems are built."""

    def make_tunable_problem(self, folds, bounds=None):
        """The tunable problem of this estimator's settings on ``folds`` (the tunable
        protocol: :class:`~skimplicit.model_selection.HypergradSearchCV` calls it with
        this estimator as a final step, and ``fit`` with its own folds).

        Parameters
        ----------
        folds : list of :class:`~skimplicit.tuning.FoldData`
        bounds : dict or None, default=None
            Not used: the search restricts the problem to its ``param_grid``.

        Returns
        -------
        problem : :class:`~skimplicit.tuning.CVProblem`
        """
        raise NotImplementedError

    def _make_tunable_problems(self, folds):
        return [self.make_tunable_problem(folds)]

    def _on_device(self, folds):
        """``(True, dtype)`` when the tuning runs on the JAX path (``backend``), with its
        working dtype: the user's X's in ``fit`` (float32 stays float32), else the
        folds'."""
        if resolve_backend(getattr(self, "backend", "auto")) != "jax":
            return False, None
        dtype = getattr(self, "_device_dtype", None)
        return True, dtype if dtype is not None or folds is None else device_dtype(
            folds[0].X_train)

    def _store_results(self, results, best):
        """Attributes over several tuned problems (subclasses)."""

    def _tune(self, problem, folds):
        """The outer loop on ``problem``; one evaluation when its search space is a point
        (``alphas`` of one value, ``eps=1``), as for a target with nothing to tune."""
        if all(np.all(np.asarray(hp.lower) == np.asarray(hp.upper))
               for hp in problem.hyperparameters):
            result = constant_target_result(problem)
            result.stop_reason = "a single point"
            return result
        # Nothing to tune (a constant y, no varying feature): one evaluation at the
        # strongest penalty in the bounds (every penalty fits the same constant model),
        # as HypergradSearchCV does.
        return tune_or_constant(
            problem, folds, fit_intercept=getattr(self, "fit_intercept", True),
            init=self._init_point(problem),
            max_outer_iter=self.max_outer_iter,
            outer_tol=self.outer_tol, n_restarts=self.n_restarts, max_time=self.max_time,
            verbose=self.verbose, random_state=self.random_state, n_jobs=self.n_jobs,
        )

    def _init_point(self, problem):
        if isinstance(self.alpha_init, str):
            return None
        return {hp.name: (self.alpha_init if hp.name == "alpha" else self._default_init(hp))
                for hp in problem.hyperparameters}

    def _default_init(self, hp):
        return np.sqrt(hp.lower * hp.upper) if hp.scale == "log" else 0.5 * (hp.lower + hp.upper)

    @staticmethod
    def _path_records(result, names=("alpha",)):
        """The evaluated points, one per distinct point (the tightest inner precision,
        then the lowest loss, of repeated evaluations), by decreasing mean alpha."""
        best = {}
        for r in result.records:
            # (equal to 12 digits: a point clipped to a bound from two sides)
            key = tuple(np.round(np.concatenate([
                np.ravel(np.log(np.asarray(r["params"][n], float)) if n == "alpha"
                         else np.asarray(r["params"][n], float))
                for n in names if n in r["params"]]), 12))
            rank = (r["precision"], r["evaluation"].loss)
            if key not in best or rank < best[key][0]:
                best[key] = (rank, r)
        return sorted((r for _, r in best.values()),
                      key=lambda r: (-float(np.mean(r["params"]["alpha"])),
                                     r["evaluation"].loss))

    def _path_attributes(self, result, names=("alpha",)):
        """``alphas_`` and ``mse_path_``: the points evaluated and their per-fold losses
        (see :meth:`_path_records`)."""
        recs = self._path_records(result, names)
        self.alphas_ = np.array([np.asarray(r["params"]["alpha"], float) for r in recs])
        self.mse_path_ = np.array([r["evaluation"].fold_losses for r in recs])
        return recs

    # -- prediction ----------------------------------------------------------------------
    def _decision_function(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                          dtype=[np.float64, np.float32])
        return X @ self.coef_.T + self.intercept_

    def predict(self, X):
        """Predict with the refitted linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        return np.asarray(self._decision_function(X))

    # -- metadata routing ----------------------------------------------------------------
    def get_metadata_routing(self):
        """Route ``groups`` to the CV splitter (as ``LassoCV`` does); ``sample_weight`` is
        consumed by ``fit`` (requested with ``set_fit_request``).

        Returns
        -------
        routing : MetadataRouter
        """
        router = MetadataRouter(owner=self).add_self_request(self).add(
            splitter=check_cv(self.cv),
            method_mapping=MethodMapping().add(caller="fit", callee="split"),
        )
        return router
