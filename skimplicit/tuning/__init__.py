"""The tuning layer: the tunable protocol and the one outer loop, below every estimator.

An estimator (or a third party's) builds a *tunable problem* from its folds
(:class:`FoldData`) and hands it to :func:`tune`; the problem reports the CV loss and its
hypergradient at a point as an :class:`Evaluation`. :class:`Kernel` compiles the
problems' batched hypergradient kernels (fast on CPU, ahead of time in the background); :func:`resolve_backend` says
where a tuning runs (``backend="auto" | "host" | "jax"``).
Imports point down only: ``linear_model``, ``decomposition`` and ``model_selection`` use
this package, which uses ``solvers`` and ``implicit``, never the other way round.
"""

from ._device import BACKENDS, backend_context, device_dtype, resolve_backend, to_device
from ._kernel import Kernel, bucket, pad_stack, solve_with_fallback
from ._outer import TuningResult, tune
from ._problem import CVProblem, WarmStarts
from ._protocol import (Evaluation, FoldData, Hyperparameter, TunableProblem,
                        estimator_bound_hint, split_folds)

__all__ = [
    "tune",
    "TuningResult",
    "Evaluation",
    "Hyperparameter",
    "TunableProblem",
    "FoldData",
    "CVProblem",
    "WarmStarts",
    "split_folds",
    "Kernel",
    "bucket",
    "pad_stack",
    "solve_with_fallback",
    "estimator_bound_hint",
    "BACKENDS",
    "resolve_backend",
    "backend_context",
    "device_dtype",
    "to_device",
]
