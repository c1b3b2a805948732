"""Inspection of a fitted tuner: plots of its search and a hypergradient checker.

* :func:`plot_search_trajectory`: the evaluated points over a reference CV curve (1-D) or
  CV surface (2-D);
* :func:`plot_validation_curve`: the CV loss along one hyperparameter at the evaluated
  points, with their hypergradients drawn as tangents, over a twin's grid curve;
* :func:`check_hypergradient`: the implicit hypergradient at the chosen point against
  finite differences of the CV loss.

Every function reads any skimplicit tuner: the ``Implicit*CV`` estimators,
:class:`~skimplicit.model_selection.HypergradSearchCV` and
:class:`~skimplicit.decomposition.TaskDrivenDictionaryLearning`.
"""

from ._check import HypergradientCheck, check_hypergradient
from ._plot import plot_search_trajectory, plot_validation_curve

__all__ = [
    "plot_search_trajectory",
    "plot_validation_curve",
    "check_hypergradient",
    "HypergradientCheck",
]
