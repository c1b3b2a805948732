"""Model selection: the shared outer loop, the tunable protocol and HypergradSearchCV."""

from ..inspection._plot import plot_search_trajectory  # public in skimplicit.inspection
from ._outer import TuningResult, tune
from ._search import HypergradSearchCV
from ._tunable import Evaluation, Hyperparameter, TunableProblem

__all__ = [
    "tune",
    "TuningResult",
    "Evaluation",
    "Hyperparameter",
    "TunableProblem",
    "HypergradSearchCV",
    "plot_search_trajectory",
]
