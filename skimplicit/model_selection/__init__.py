"""Model selection: the shared outer loop, the tunable protocol and HypergradSearchCV."""

from ._outer import TuningResult, tune
from ._tunable import Evaluation, Hyperparameter, TunableProblem

__all__ = ["tune", "TuningResult", "Evaluation", "Hyperparameter", "TunableProblem"]
