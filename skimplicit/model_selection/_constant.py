"""A constant target: nothing to tune, one answer for every entry point.

When ``y`` takes a single value (on the samples of positive weight), every penalty gives
the same fitted model, the constant weighted mean of ``y`` (zero coefficients): the
validation loss is flat and its hypergradient zero. scikit-learn's ``LassoCV`` and
``GridSearchCV(Lasso())`` fit that constant model without error; so do skimplicit's
estimators and :class:`HypergradSearchCV`, through :func:`tune_or_constant`: instead of
a descent on a flat function (warnings about zero hypergradients, an arbitrary point),
one evaluation at the upper bounds, the strongest penalty (the simplest description of a
constant model).
"""

from __future__ import annotations

import time

import numpy as np

from ..utils import is_constant_target
from ._outer import TuningResult, tune

__all__ = ["constant_target_result", "tune_or_constant"]


def _upper_point(hp):
    upper = np.asarray(hp.upper, float)
    if hp.size is not None:
        return np.broadcast_to(upper, (hp.size,)).copy()
    return float(upper)


def constant_target_result(problem):
    """The :class:`TuningResult` of a problem whose target is constant.

    One evaluation (no hypergradient) at the upper bound of every hyperparameter.
    """
    t0 = time.perf_counter()
    params = {hp.name: _upper_point(hp) for hp in problem.hyperparameters}
    ev = problem.evaluate(params, precision=1.0, with_grad=False)
    rec = {"params": params, "evaluation": ev, "time": time.perf_counter() - t0,
           "phase": "path", "precision": 1.0, "grad_norm": np.nan, "grad_z": None}
    return TuningResult(best_params=params, best_loss=float(ev.loss), best_evaluation=ev,
                        records=[rec], n_iter=0, stop_reason="constant target")


def tune_or_constant(problem, folds, **tune_params):
    """:func:`tune`, or :func:`constant_target_result` when every training fold's target
    is constant (``folds``: the problem's list of ``FoldData``)."""
    if all(is_constant_target(f.y_train, f.sw_train) for f in folds):
        return constant_target_result(problem)
    return tune(problem, **tune_params)
