"""The problem base: what every K-fold tunable problem of the estimators shares.

A model's problem is a small spec on top of :class:`CVProblem`: its hyperparameters, its
coarse cover (:meth:`~CVProblem.initial_points`), an inner solve per fold (a solver of
:mod:`skimplicit.solvers`) and a batched hypergradient :class:`~skimplicit.tuning.Kernel`
in :meth:`~CVProblem.evaluate`. The base keeps the warm starts (restored by the outer loop
before each restart, copied with the problem for threads), the bound hints, the
``Evaluation`` assembly and a store of evaluated points for nearest-point warm starts.
"""

from __future__ import annotations

import copy

import numpy as np

from ..utils._threads import map_threads
from ._protocol import Evaluation, estimator_bound_hint

__all__ = ["CVProblem", "WarmStarts"]


def _copied(value):
    """A list, tuple or dict copied one level deep (its elements are replaced, never
    modified in place, by the problems); anything else as it is."""
    if isinstance(value, (list, tuple, dict)):
        return copy.copy(value)
    if isinstance(value, WarmStarts):
        return value.copy()
    return value


class WarmStarts:
    """Inner solutions of the evaluated points, the newest ``maxlen`` kept, looked up by
    the nearest point (not the last one: a line search that backtracks, or a descent
    that returns near an earlier point, starts close).

    ``key`` is a flat array of search coordinates (e.g. ``log alpha`` and ``l1_ratio``);
    the distance is the largest coordinate difference.

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.tuning import WarmStarts
    >>> store = WarmStarts()
    >>> store.add(np.log([1.0]), "solution at 1")
    >>> store.add(np.log([0.01]), "solution at 0.01")
    >>> value, dist = store.nearest(np.log([0.5]))
    >>> value, round(dist, 3)
    ('solution at 1', 0.693)
    """

    def __init__(self, maxlen=64):
        self.maxlen = int(maxlen)
        self._items = []

    def copy(self):
        new = WarmStarts(self.maxlen)
        new._items = list(self._items)
        return new

    def __len__(self):
        return len(self._items)

    def add(self, key, value):
        self._items.append((np.asarray(key, float).ravel(), value))
        del self._items[: -self.maxlen]

    def nearest(self, key, distance=None):
        """``(value, distance)`` of the stored point nearest to ``key`` (``(None, inf)``
        when empty); ``distance(a, b)`` overrides the largest coordinate difference."""
        if not self._items:
            return None, np.inf
        key = np.asarray(key, float).ravel()
        if distance is None:
            dist = [float(np.max(np.abs(key - k))) for k, _ in self._items]
        else:
            dist = [float(distance(key, k)) for k, _ in self._items]
        i = int(np.argmin(dist))
        return self._items[i][1], dist[i]


class CVProblem:
    """Base class of K-fold tunable problems (see :class:`~skimplicit.tuning.TunableProblem`).

    Subclasses set ``hyperparameters`` and ``loss_name``, implement
    :meth:`initial_points` and :meth:`evaluate`, and list in ``warm_state`` the names of
    the attributes that hold their warm starts (lists, tuples, dicts or
    :class:`WarmStarts`, replaced rather than modified in place): the base then gives
    :meth:`get_warm_start`, :meth:`set_warm_start` and ``copy.copy`` (a copy whose warm
    starts are its own, for threads). :meth:`evaluation` assembles an
    :class:`~skimplicit.tuning.Evaluation` from per-fold losses.

    Examples
    --------
    >>> import copy
    >>> import numpy as np
    >>> from skimplicit.tuning import CVProblem, Hyperparameter, tune
    >>> class Quadratic(CVProblem):
    ...     '''Two "folds" whose losses are (log alpha - log c)^2, c = 0.1 and 1.'''
    ...     warm_state = ("_seen",)
    ...     def __init__(self):
    ...         self.hyperparameters = [Hyperparameter("alpha", 1e-4, 1e2)]
    ...         self._seen = []
    ...     def initial_points(self):
    ...         return [{"alpha": a} for a in (10.0, 1.0, 0.01)]
    ...     def evaluate(self, params, *, precision=1.0, with_grad=True):
    ...         a = params["alpha"]
    ...         self._seen = self._seen + [a]
    ...         z = np.log(a) - np.log([0.1, 1.0])
    ...         grad = {"alpha": float(np.mean(2 * z / a))} if with_grad else None
    ...         return self.evaluation(z ** 2, grad, n_seen=len(self._seen))
    >>> p = Quadratic()
    >>> round(tune(p).best_params["alpha"], 4)  # the geometric mean of 0.1 and 1
    0.3162
    >>> q = copy.copy(p); q._seen is p._seen
    False
    """

    loss_name = "mse"
    cover_with_grad = False
    warm_state = ()
    fold_jobs = None
    """Threads over the folds in :meth:`map_folds` (joblib's ``n_jobs``; :func:`tune` sets
    it to its ``n_jobs`` while it evaluates one point at a time)."""

    def map_folds(self, fn, n_folds):
        """``[fn(i) for i in range(n_folds)]``, on up to :attr:`fold_jobs` threads
        (the host solvers spend their time in compiled code that releases the GIL); the
        same results whatever the number of threads (each fold's work is its own)."""
        return map_threads(fn, range(n_folds), self.fold_jobs)

    COVER_FAR = 0.06
    """A cover point more than this fraction above the cover's best loss so far is "far"
    (:meth:`far_from_best`): the host problems first try the point after a far one at a
    looser inner tolerance, and keep that solve when the point is far too (its loss only
    has to rank it below the best). 6 %: :func:`~skimplicit.tuning.tune` descends from the
    cover's minima within 5 % of its best (``basin_tol``), plus a margin for the try's
    error."""

    def far_from_best(self, loss, best):
        """Whether ``loss`` is more than :attr:`COVER_FAR` above ``best`` (a finite one)."""
        return bool(np.isfinite(best) and loss > (1.0 + self.COVER_FAR) * best)

    def keep_first_try(self, converged, n_iter, loss, best):
        """Whether a looser first try at a cover point is kept: every fold's solve
        converged and moved (``n_iter > 0``: a warm start that passes the looser test
        unchanged would give the previous point's loss, a false plateau), and the point's
        ``loss`` is far from ``best`` too (:meth:`far_from_best`)."""
        return (all(converged) and min(n_iter) > 0
                and self.far_from_best(loss, best))

    def get_warm_start(self):
        return tuple(_copied(getattr(self, name)) for name in self.warm_state)

    def set_warm_start(self, state):
        for name, value in zip(self.warm_state, state):
            setattr(self, name, _copied(value))

    def __copy__(self):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        for name in self.warm_state:  # the copy's own warm starts (copied once)
            setattr(new, name, _copied(getattr(self, name)))
        return new

    def bound_hint(self, name, side):
        """How to widen a bound (see :func:`~skimplicit.tuning.tune`): the estimator
        parameter ``bounds`` (or ``l1_ratio_bounds``; ``None`` at ``l1_ratio = 1``)."""
        return estimator_bound_hint(name, side, getattr(self, "l1_ratio_bounds", (0.0, 1.0)))

    @staticmethod
    def evaluation(fold_losses, grad=None, converged=True, **info):
        """The :class:`~skimplicit.tuning.Evaluation` of per-fold losses (their mean is
        the loss); ``info`` as keyword arguments."""
        fold_losses = np.asarray(fold_losses, float)
        return Evaluation(loss=float(fold_losses.mean()), grad=grad, fold_losses=fold_losses,
                          converged=bool(converged), info=info)
