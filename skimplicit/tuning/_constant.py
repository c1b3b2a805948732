"""Nothing to tune: one answer for every entry point.

When ``y`` takes a single value (on the samples of positive weight), or no feature varies,
every penalty gives the same fitted model, the constant weighted mean of ``y`` (zero
coefficients): the validation loss is flat and its hypergradient zero. scikit-learn's
``LassoCV`` and ``GridSearchCV(Lasso())`` fit that constant model without error; so do
skimplicit's estimators and :class:`HypergradSearchCV`, through :func:`tune_or_constant`:
instead of a descent on a flat function (warnings about zero hypergradients, an arbitrary
point), one evaluation at the strongest penalty within the bounds (the upper bound of
``alpha``, the lower one of ``C``): the simplest description of a constant model.
"""

from __future__ import annotations

import time

import numpy as np

from ..utils import nothing_to_tune
from ._outer import TuningResult, tune

__all__ = ["constant_target_result", "tune_or_constant"]


# Inverse penalties (larger: weaker): their strongest value is the lower bound.
_INVERSE_PENALTIES = {"C"}


def _upper_point(hp):
    """The strongest penalty in the bounds (the upper bound, the lower one for ``C``)."""
    upper = np.asarray(hp.lower if hp.name in _INVERSE_PENALTIES else hp.upper, float)
    if hp.size is not None:
        return np.broadcast_to(upper, (hp.size,)).copy()
    return float(upper)


def constant_target_result(problem):
    """The :class:`TuningResult` of a problem whose target is constant.

    One evaluation (no hypergradient) at the strongest penalty within the bounds: the
    upper bound of every hyperparameter (the lower one for ``C``, an inverse penalty).
    """
    t0 = time.perf_counter()
    params = {hp.name: _upper_point(hp) for hp in problem.hyperparameters}
    ev = problem.evaluate(params, precision=1.0, with_grad=False)
    rec = {"params": params, "evaluation": ev, "time": time.perf_counter() - t0,
           "phase": "path", "precision": 1.0, "grad_norm": np.nan, "grad_z": None}
    return TuningResult(best_params=params, best_loss=float(ev.loss), best_evaluation=ev,
                        records=[rec], n_iter=0, stop_reason="constant target")


def tune_or_constant(problem, folds, *, fit_intercept=True, **tune_params):
    """:func:`tune`, or :func:`constant_target_result` when on every training fold each
    penalty fits the same constant model (see :func:`skimplicit.utils.nothing_to_tune`:
    a constant target, or no varying feature). ``folds``: the problem's ``FoldData``; a
    problem that checked its folds as it was built says so in ``constant_folds`` (one
    flag per fold), and the folds are not read again."""
    flags = getattr(problem, "constant_folds", None)
    if flags is None:
        flags = [nothing_to_tune(f.X_train, f.y_train, f.sw_train, fit_intercept=fit_intercept)
                 for f in folds]
    if all(flags):
        return constant_target_result(problem)
    return tune(problem, **tune_params)
