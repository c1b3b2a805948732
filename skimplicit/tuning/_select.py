"""Selecting a point by the user's scorer among the points a hypergradient search evaluated.

A hypergradient follows a differentiable validation loss (the model's own: MSE,
log-loss, squared hinge). A non-differentiable scorer (``accuracy``, ``roc_auc``, ``f1``,
a callable, several metrics) has none; the search then follows the model's loss, and the
point is chosen *by the user's scorer among the evaluated points*: each point is refit on
every training fold and scored exactly as :class:`~sklearn.model_selection.GridSearchCV`
scores a grid point (scikit-learn's ``_fit_and_score``: the same scorers, metadata
routing, ``error_score``, ``return_train_score``, verbose lines), and the best row is
chosen by GridSearchCV's rule (``refit`` as a metric name or a callable).

:func:`score_points` and :func:`select_best` are the one implementation of this rule in
skimplicit (for :class:`HypergradSearchCV`; the CV estimators' ``scoring`` use the same).
"""

from __future__ import annotations

import warnings
from itertools import product

from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection._search import BaseSearchCV
from sklearn.model_selection._validation import (
    _fit_and_score,
    _insert_error_scores,
    _warn_or_raise_about_fit_failures,
)

__all__ = ["score_points", "select_best"]


def score_points(search, estimator, X, y, splits, points, scorers, *, fit_params=None,
                 score_params=None, extend=None):
    """GridSearchCV's ``cv_results_`` (scores, times, params) of ``points`` on ``splits``.

    Parameters
    ----------
    search : estimator
        The search object (its ``n_jobs``, ``pre_dispatch``, ``verbose``,
        ``error_score``, ``return_train_score``, ``scoring`` are read).
    estimator : estimator
        Unfitted; cloned and set to each point.
    X, y : indexable
    splits : list of (train, test) index arrays
    points : list of dict
        GridSearchCV-style parameter names -> values.
    scorers : scorer, callable or _MultimetricScorer
        As ``BaseSearchCV._get_scorers`` returns.
    fit_params, score_params : dict
        Routed fit and score metadata (split per fold by ``_fit_and_score``).
    extend : callable, optional
        ``extend(results) -> list of dict``: more points to score, chosen from the
        results of ``points`` (a scan around their best); the returned results then hold
        ``points`` followed by these (their ``params``).

    Returns
    -------
    results : dict
        GridSearchCV's keys for these points (``BaseSearchCV._format_results``).
    multimetric : bool
        Whether the scorer returned several metrics.
    """
    n_splits = len(splits)
    kw = dict(scorer=scorers, fit_params=fit_params or {}, score_params=score_params or {},
              return_train_score=search.return_train_score, return_n_test_samples=True,
              return_times=True, return_parameters=False, error_score=search.error_score,
              verbose=search.verbose)

    def fit_and_score(pts):
        if search.verbose > 0:
            print(f"Scoring {n_splits} folds for each of {len(pts)} evaluated points, "
                  f"totalling {n_splits * len(pts)} fits")
        parallel = Parallel(n_jobs=search.n_jobs, pre_dispatch=search.pre_dispatch)
        with parallel:
            out = parallel(
                delayed(_fit_and_score)(
                    clone(estimator), X, y, train=train, test=test, parameters=params,
                    split_progress=(s, n_splits), candidate_progress=(c, len(pts)), **kw)
                for (c, params), (s, (train, test)) in product(enumerate(pts),
                                                               enumerate(splits))
            )
        _warn_or_raise_about_fit_failures(out, search.error_score)
        if callable(search.scoring):
            _insert_error_scores(out, search.error_score)
        return out

    points = list(points)
    out = fit_and_score(points)
    if extend is not None:
        with warnings.catch_warnings():  # (the final formatting below warns)
            warnings.simplefilter("ignore")
            more = list(extend(BaseSearchCV._format_results(search, points, n_splits, out)))
        if more:
            out = out + fit_and_score(more)
            points = points + more
    results = BaseSearchCV._format_results(search, points, n_splits, out)
    multimetric = isinstance(out[0]["test_scores"], dict)
    return results, multimetric


def select_best(refit, refit_metric, results):
    """GridSearchCV's best row: ``refit(results)`` if callable (checked), else the best
    rank of ``mean_test_<refit_metric>`` (the first of ties)."""
    return int(BaseSearchCV._select_best_index(refit, refit_metric, results))
