"""Model selection: HypergradSearchCV (and, re-exported from :mod:`skimplicit.tuning`, the
shared outer loop and the tunable protocol)."""

from ..inspection._plot import plot_search_trajectory  # public in skimplicit.inspection
from ..tuning import (Evaluation, FoldData, Hyperparameter, TunableProblem, TuningResult,
                      split_folds, tune)
from ._search import HypergradSearchCV

__all__ = [
    "tune",
    "TuningResult",
    "Evaluation",
    "Hyperparameter",
    "TunableProblem",
    "FoldData",
    "split_folds",
    "HypergradSearchCV",
    "plot_search_trajectory",
]
