"""The tunable protocol: what a problem implements to be tuned by :func:`tune`.

A *tunable problem* owns the data, the cross-validation folds and the inner solver of one
model family. It exposes:

``hyperparameters``
    a list of :class:`Hyperparameter` (name, bounds, ``"log"``/``"linear"`` scale, size).
``evaluate(params, *, precision=1.0, with_grad=True) -> Evaluation``
    the mean validation loss over the folds at ``params`` (a dict name -> float or array,
    in natural units) and its gradient with respect to each hyperparameter (natural
    units), computed by implicit differentiation (``with_grad=False``: the loss alone,
    ``grad=None``, as for the coarse path); ``precision`` in ``(0, 1]`` asks for
    a relative inner accuracy (the outer loop tightens it over its steps, as in
    Pedregosa's HOAG). The problem keeps its own warm starts (inner solutions, linear
    systems, supports) between calls.
``initial_points()``
    the coarse cover: a list (a batch) of points spanning the whole search interval,
    ordered so that evaluating them in turn is a warm-started path (from strong to weak
    regularization), or a generator consumed one point at a time (it may adapt to the
    losses it has seen). The outer loop clips every point to the bounds and descends
    from the cover's best basins.
``loss_name``
    what the loss is (``"mse"``, ``"log_loss"``), for messages and ``cv_results_``.

Optional: ``cover_with_grad`` (evaluate the cover with hypergradients, where they come
at no extra cost), ``evaluate_cover(points, *, precision, with_grad)`` (evaluate the
cover's batch in one call, returning one :class:`Evaluation` per point) and
``bound_hint(name, side)`` (how the user widens that bound, for the warning issued when
the best point sits on it; ``None`` for a natural limit such as ``l1_ratio = 1``).

That is all :func:`tune` needs; :class:`~skimplicit.tuning.CVProblem` is a base class
that provides the optional parts. An estimator becomes tunable by
:class:`~skimplicit.model_selection.HypergradSearchCV` by implementing
``make_tunable_problem(folds, bounds)`` (``folds``: one :class:`FoldData` per split;
``bounds``: the search's interval per hyperparameter of ``param_grid``) returning such a
problem, and ``tuned_estimator(params)`` when its hyperparameters are not constructor
parameters; skimplicit's estimators do (see the user guide, "Making a new estimator
tunable").
"""

from __future__ import annotations

from collections.abc import Sequence

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..utils._rows import row_range

__all__ = ["Hyperparameter", "Evaluation", "FoldData", "TunableProblem", "split_folds",
           "estimator_bound_hint"]


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter searched by the outer loop.

    Parameters
    ----------
    name : str
        Key in the ``params`` dict.
    lower, upper : float or ndarray
        Bounds in natural units (``0 < lower < upper`` for ``scale="log"``).
    scale : {"log", "linear"}, default="log"
        The outer loop steps in ``log(value)`` or in ``value``.
    size : int or None, default=None
        ``None`` for a scalar, else the length of a vector hyperparameter (one alpha per
        feature, one C per class).

    Examples
    --------
    >>> from skimplicit.model_selection import Hyperparameter
    >>> hp = Hyperparameter("alpha", 1e-3, 10.0)  # searched in log scale
    >>> hp.to_search(0.1)
    array([-2.30258509])
    >>> round(hp.from_search(hp.to_search(0.1)), 12)
    0.1
    >>> hp.grad_to_search(0.1, 2.0)  # d loss / d log(alpha) = alpha * d loss / d alpha
    array([0.2])
    """

    name: str
    lower: Any
    upper: Any
    scale: str = "log"
    size: int | None = None

    def __post_init__(self):
        if self.scale not in ("log", "linear"):
            raise ValueError(f"scale must be 'log' or 'linear', got {self.scale!r}")
        lo, hi = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError(f"Bounds of {self.name!r} must be finite, got ({self.lower}, {self.upper}).")
        if np.any(lo > hi):
            raise ValueError(
                f"Invalid bounds for {self.name!r}: lower {self.lower} > upper {self.upper}."
            )
        if self.scale == "log" and np.any(lo <= 0):
            raise ValueError(
                f"Bounds of {self.name!r} must be positive for a log-scale search, got "
                f"({self.lower}, {self.upper})."
            )

    @property
    def n_values(self) -> int:
        return 1 if self.size is None else int(self.size)

    def _vec(self, v):
        return np.broadcast_to(np.asarray(v, float), (self.n_values,)).copy()

    def to_search(self, value) -> np.ndarray:
        """Natural value -> flat search coordinates."""
        v = self._vec(value)
        return np.log(v) if self.scale == "log" else v

    def from_search(self, z):
        """Flat search coordinates -> natural value (float for a scalar)."""
        z = np.asarray(z, float)
        v = np.exp(z) if self.scale == "log" else z
        # exp(log(lower)) can round one ulp outside the bounds: the value stays inside.
        v = np.clip(v, self._vec(self.lower), self._vec(self.upper))
        return float(v[0]) if self.size is None else v.copy()

    def grad_to_search(self, value, grad) -> np.ndarray:
        """Chain rule: gradient in natural units -> gradient in search coordinates."""
        g = self._vec(grad)
        return g * self._vec(value) if self.scale == "log" else g

    def search_bounds(self) -> list[tuple[float, float]]:
        lo, hi = self.to_search(self.lower), self.to_search(self.upper)
        return list(zip(lo.tolist(), hi.tolist()))


@dataclass
class Evaluation:
    """What a tunable problem returns at one hyperparameter point.

    Attributes
    ----------
    loss : float
        Mean validation loss over the folds.
    grad : dict or None
        Gradient of ``loss`` per hyperparameter name, in natural units (same shapes as
        the values); ``None`` when not asked for.
    fold_losses : ndarray of shape (n_folds,)
        Per-fold validation losses (``cv_loss_std_``, ``mse_path_``).
    converged : bool
        Whether every inner solve and linear system reached its tolerance.
    info : dict
        Anything else worth recording (inner iterations, support sizes, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.model_selection import Evaluation
    >>> ev = Evaluation(loss=2.0, grad={"alpha": -0.5}, fold_losses=np.array([1.5, 2.5]))
    >>> ev.loss, ev.grad["alpha"], ev.converged
    (2.0, -0.5, True)
    """

    loss: float
    grad: dict | None
    fold_losses: np.ndarray
    converged: bool = True
    info: dict = field(default_factory=dict)


@runtime_checkable
class TunableProblem(Protocol):
    """Structural type of a tunable problem (see the module docstring).

    Examples
    --------
    A toy problem whose validation loss is ``(log(alpha) - log(0.1))**2``:

    >>> import numpy as np
    >>> from skimplicit.model_selection import Evaluation, Hyperparameter, TunableProblem
    >>> class Toy:
    ...     hyperparameters = [Hyperparameter("alpha", 1e-4, 1e2)]
    ...     loss_name = "mse"
    ...     def initial_points(self):
    ...         return [{"alpha": a} for a in (10.0, 1.0, 0.01)]
    ...     def evaluate(self, params, *, precision=1.0, with_grad=True):
    ...         z = np.log(params["alpha"] / 0.1)
    ...         grad = {"alpha": 2 * z / params["alpha"]} if with_grad else None
    ...         return Evaluation(loss=z ** 2, grad=grad, fold_losses=np.array([z ** 2]))
    >>> isinstance(Toy(), TunableProblem)
    True
    """

    hyperparameters: list
    loss_name: str

    def evaluate(self, params: dict, *, precision: float = 1.0,
                 with_grad: bool = True) -> Evaluation: ...

    def initial_points(self) -> list: ...


def estimator_bound_hint(name, side, l1_ratio_bounds=(0.0, 1.0)):
    """``bound_hint`` of the estimators' problems: the parameter that widens a bound of
    ``alpha``/``C`` (``bounds``) or of ``l1_ratio`` (``l1_ratio_bounds``; ``None`` at
    ``l1_ratio = 1``, a natural limit, not a bound to widen)."""
    if name == "l1_ratio":
        return None if side == "upper" and l1_ratio_bounds[1] >= 1 else \
            "the estimator parameter `l1_ratio_bounds`"
    return "the estimator parameter `bounds`"


class FoldData(NamedTuple):
    """One cross-validation fold as arrays (already preprocessed, for pipelines).

    ``X_train``/``X_test`` dense or sparse; ``sw_*`` the raw sample weights. A tunable
    problem is built from a list of them, one per split (see :func:`split_folds`).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.tuning import split_folds
    >>> X, y, sw = np.arange(12.0).reshape(6, 2), np.arange(6.0), np.ones(6)
    >>> folds = split_folds(X, y, sw, [([0, 1, 2, 3], [4, 5]), ([2, 3, 4, 5], [0, 1])])
    >>> folds[0].X_train.shape, folds[0].y_test
    ((4, 2), array([4., 5.]))
    """

    X_train: Any
    y_train: np.ndarray
    sw_train: np.ndarray
    X_test: Any
    y_test: np.ndarray
    sw_test: np.ndarray


def split_folds(X, y, sample_weight, cv_splits, lazy=False):
    """``FoldData`` of each ``(train, test)`` index pair.

    ``lazy=True``: a sequence that makes each fold's arrays when it is read (a fresh copy
    each time, nothing kept), so that a problem built in one pass over it holds one
    fold's copy of ``X`` at a time, not ``K`` (the estimators' peak memory).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.tuning import split_folds
    >>> X, y, sw = np.arange(12.0).reshape(6, 2), np.arange(6.0), np.ones(6)
    >>> folds = split_folds(X, y, sw, [([0, 1, 2, 3], [4, 5])], lazy=True)
    >>> len(folds), folds[0].y_test
    (1, array([4., 5.]))
    """
    folds = _LazyFolds(X, y, sample_weight, list(cv_splits))
    return folds if lazy else list(folds)


class _LazyFolds(Sequence):
    """The folds of ``split_folds(..., lazy=True)``: made when read, never kept."""

    def __init__(self, X, y, sample_weight, splits):
        self._data, self._splits = (X, y, sample_weight), splits

    def __len__(self):
        return len(self._splits)

    @property
    def source(self):
        """``(X, y, sample_weight, splits)``: the data the folds are read from."""
        return (*self._data, self._splits)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        X, y, sw = self._data
        tr, te = self._splits[i]
        return FoldData(take_rows(X, tr), y[tr], sw[tr], take_rows(X, te), y[te], sw[te])


def take_rows(X, rows):
    """``X[rows]``; a view of ``X`` (no copy) when ``X`` is a NumPy array and ``rows`` an
    increasing run of consecutive indices (a test fold of an unshuffled ``KFold``, and
    the training rows of its first and last folds). The folds' consumers never write in
    their arrays.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(12.0).reshape(6, 2)
    >>> np.shares_memory(take_rows(X, [2, 3, 4]), X), np.shares_memory(take_rows(X, [0, 2]), X)
    (True, False)
    """
    span = row_range(rows) if isinstance(X, np.ndarray) else None
    return X[span[0]:span[1]] if span is not None else X[np.asarray(rows)]
