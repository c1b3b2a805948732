"""From a pipeline and its ``param_grid`` to the problem :class:`HypergradSearchCV` tunes.

:func:`split_estimator` separates the preprocessing from the final step;
:func:`parse_param_grid` reads GridSearchCV's ``param_grid`` as bounds and coarse starts;
the final step's tunable problem comes from its entry in the table of
:mod:`skimplicit.model_selection._registry` (:func:`make_problem`).
:class:`SearchProblem` then restricts a problem to the hyperparameters named in
``param_grid`` (the others are held at the estimator's own values), with the user's
bounds and scales, and turns a failed evaluation into ``error_score``.
"""

from __future__ import annotations

import copy
import itertools
import time
import warnings
from numbers import Real

import numpy as np
from sklearn.exceptions import FitFailedWarning
from sklearn.pipeline import Pipeline

from .._blas import one_blas_thread
from ..tuning import Evaluation, Hyperparameter
from ._registry import make_problem, reject_unknown

__all__ = [
    "split_estimator",
    "parse_param_grid",
    "make_problem",
    "restrict",
    "SearchProblem",
    "score_transform",
    "LOSS_TO_SCORING",
]

# The differentiable validation losses and the scikit-learn scorer that reports each.
LOSS_TO_SCORING = {"mse": "neg_mean_squared_error", "log_loss": "neg_log_loss",
                   "brier": "neg_brier_score",
                   "mean_poisson_deviance": "neg_mean_poisson_deviance",
                   "mean_gamma_deviance": "neg_mean_gamma_deviance"}


def split_estimator(estimator):
    """``(preprocessing, final_step, prefix)`` of a Pipeline or a bare estimator.

    ``preprocessing`` is the pipeline without its last step (``None`` if there is none);
    ``prefix`` is what GridSearchCV-style parameter names of the final step start with
    (``"lasso__"``; ``""`` for a bare estimator).
    """
    if isinstance(estimator, Pipeline):
        name, final = estimator.steps[-1]
        if final is None or (isinstance(final, str) and final == "passthrough"):
            raise ValueError("The pipeline's final step is 'passthrough': nothing to tune.")
        if isinstance(final, Pipeline):
            raise ValueError(
                "Nested pipelines are not supported: flatten the pipeline so that the "
                "tuned estimator is the last step of the outer one."
            )
        pre = estimator[:-1] if len(estimator.steps) > 1 else None
        return pre, final, name + "__"
    return None, estimator, ""


def parse_param_grid(param_grid, prefix, final):
    """``(bounds, starts, fixed)`` from GridSearchCV's ``param_grid``.

    Keys are GridSearchCV-style (``"lasso__alpha"``). A value is read as:

    * a list (or 1-D array, range) of numbers with at least two distinct values: the
      hyperparameter is tuned within ``[min, max]`` and these values are the coarse
      cover the descent starts from (evaluated first, in the given order, repeats
      dropped);
    * a list of one value (or of one repeated value): the hyperparameter is held there
      (as a one-point grid), whatever its type;
    * a tuple ``(low, high)`` or ``(low, high, "log" | "linear")``: tuned within it;
    * ``"auto"`` (or ``None``): tuned within the problem's own bounds.

    Returns ``bounds`` (final-step name -> ``(low, high, scale or None)`` or ``None``),
    ``starts`` (final-step name -> list of floats, for the list entries) and ``fixed``
    (GridSearchCV-style key -> value, to ``set_params`` on the estimator).
    """
    if isinstance(param_grid, (list, tuple)) and len(param_grid) == 1 and isinstance(
            param_grid[0], dict):
        param_grid = param_grid[0]
    if not isinstance(param_grid, dict):
        raise TypeError(
            "param_grid must be a dict (or a list holding one dict) mapping the final "
            f"step's hyperparameters to a list, (low, high) or 'auto'; got {param_grid!r}."
        )
    bounds, starts, fixed = {}, {}, {}
    for key, value in param_grid.items():
        if not isinstance(key, str):
            raise ValueError(f"param_grid keys must be strings; got {key!r}.")
        is_grid = isinstance(value, (list, np.ndarray, range))
        if is_grid:
            values = list(np.asarray(value, dtype=object).ravel()) if isinstance(
                value, np.ndarray) else list(value)
            if isinstance(value, np.ndarray) and value.ndim > 1:
                raise ValueError(
                    f"Parameter grid for parameter {key!r} needs to be a list or a numpy "
                    f"array, but got {value!r} (of dimension {value.ndim}) instead.")
            if not values:
                raise ValueError(
                    f"Parameter grid for parameter {key!r} need to be a non-empty "
                    f"sequence, got: {value!r}")
            distinct = []
            for v in values:
                if not any(v is d or (type(v) is type(d) and _equal(v, d)) or
                           (_is_number(v) and _is_number(d) and float(v) == float(d))
                           for d in distinct):
                    distinct.append(v)
            if len(distinct) == 1:
                fixed[key] = distinct[0]
                continue
        in_final = key.startswith(prefix) and "__" not in key[len(prefix):]
        if not in_final:
            where = f"the final step ('{prefix[:-2]}')" if prefix else "the estimator"
            raise ValueError(
                f"param_grid key {key!r} does not name a hyperparameter of {where}: only "
                f"the final step's hyperparameters are tuned by hypergradients (its keys "
                f"start with {prefix!r} and contain no further '__'); other parameters "
                "take a list of one value. Tune them with GridSearchCV around this search."
            )
        name = key[len(prefix):]
        if is_grid:
            if not all(_is_number(v) for v in distinct):
                raise ValueError(
                    f"param_grid[{key!r}] lists several values that are not all numbers "
                    f"({distinct!r}): HypergradSearchCV tunes continuous hyperparameters "
                    "(a list of numbers, (low, high) or 'auto'); give one value to hold a "
                    "categorical parameter, or use GridSearchCV over it."
                )
            pts = [float(v) for v in distinct]
            if not all(np.isfinite(pts)):
                raise ValueError(f"param_grid[{key!r}] (the bounds and starts) must hold "
                                 f"finite numbers; got {pts}.")
            bounds[name] = (min(pts), max(pts), None)
            starts[name] = pts
            continue
        if value is None or (isinstance(value, str) and value == "auto"):
            bounds[name] = None
            continue
        items = tuple(value) if isinstance(value, tuple) else ()
        if len(items) not in (2, 3):
            raise ValueError(
                f"param_grid[{key!r}] must be a list of numbers (the interval and coarse "
                f"starts), (low, high), (low, high, 'log'|'linear') or 'auto'; got {value!r}."
            )
        lo, hi = items[:2]
        scale = items[2] if len(items) == 3 else None
        if not all(_is_number(b) for b in (lo, hi)):
            raise ValueError(f"param_grid[{key!r}] bounds must be numbers; got {value!r}.")
        lo, hi = float(lo), float(hi)
        if not (np.isfinite(lo) and np.isfinite(hi)) or not lo < hi:
            raise ValueError(
                f"The bounds (low, high) in param_grid[{key!r}] must satisfy low < high "
                f"(finite); got ({lo}, {hi})."
            )
        if scale is not None and scale not in ("log", "linear"):
            raise ValueError(
                f"The scale of param_grid[{key!r}] must be 'log' or 'linear'; got {scale!r}."
            )
        bounds[name] = (lo, hi, scale)
    del final
    return bounds, starts, fixed


def _is_number(v):
    return isinstance(v, (Real, np.number)) and not isinstance(v, (bool, np.bool_))


def _equal(a, b):
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays, estimators: compared by identity above
        return False


def _fixed_value(final, name):
    """The estimator's own numeric value of hyperparameter ``name``, or None."""
    params = final.get_params(deep=False)
    if name not in params:
        return None
    v = params[name]
    if isinstance(v, Real) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, np.ndarray) and v.dtype.kind in "fiu":
        return v.astype(float)
    return None


def restrict(problem, final, bounds, *, error_score="raise", starts=None, allow_empty=False):
    """:class:`SearchProblem` tuning the hyperparameters in ``bounds`` (others held).

    A hyperparameter of ``problem`` not named in ``bounds`` is held at the estimator's
    own numeric value when it has one, and tuned within the problem's own bounds
    otherwise (skimplicit's CV estimators, which have no such parameter).
    """
    own = {hp.name: hp for hp in problem.hyperparameters}
    reject_unknown(bounds, own, final)
    tuned, fixed, new_all = [], {}, []
    for hp in problem.hyperparameters:
        if hp.name in bounds:
            spec = bounds[hp.name]
            if spec is not None:
                lo, hi, scale = spec
                hp = Hyperparameter(hp.name, lo, hi, scale or hp.scale, hp.size)
            tuned.append(hp)
        else:
            value = _fixed_value(final, hp.name)
            if value is None:
                tuned.append(hp)
            else:
                fixed[hp.name] = value
        new_all.append(hp)
    if not tuned and not allow_empty:
        raise ValueError(
            "param_grid names no hyperparameter to tune; tunable by hypergradients: "
            f"{sorted(own)}."
        )
    # The problem's own path clips to its first hyperparameter's bounds: keep them in sync.
    problem.hyperparameters = new_all
    return SearchProblem(problem, tuned, fixed, error_score=error_score, starts=starts)


class SearchProblem:
    """A tunable problem restricted to some hyperparameters, with failures as scores.

    Implements the tunable protocol itself, so :func:`~skimplicit.model_selection.tune`
    runs it unchanged. ``evaluate`` adds ``info["eval_time"]`` (seconds) and, when an
    evaluation raises and ``error_score`` is not ``"raise"``, returns an infinite loss
    (which the outer loop steps back from) with ``info["failed"]`` set.

    Each evaluation runs with BLAS limited to one thread (in whichever process runs it,
    joblib and dask workers included): the inner solves are many small and moderate BLAS
    calls (``X^T r`` of working sets, support columns) where threads gain little, while
    OpenBLAS's spin-waiting threads cost several times the work on a busy machine
    (measured on the 667 x 5000 Lasso pipeline of ``bench_search.py`` with a load of 5
    on 2 cores: 13-28 s with the default threads, 3.7-4.3 s with one). JAX's own
    threads are not affected.
    """

    def __init__(self, problem, hyperparameters, fixed, *, error_score="raise", starts=None,
                 transform=None):
        self.problem = problem
        self.transform = transform
        self.starts = dict(starts or {})
        self.hyperparameters = list(hyperparameters)
        self.fixed = dict(fixed)
        self.loss_name = getattr(problem, "loss_name", "loss")
        self.error_score = error_score

    def __copy__(self):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.problem = copy.copy(self.problem)  # warm starts of restarts stay apart
        return new

    def get_warm_start(self):
        f = getattr(self.problem, "get_warm_start", None)
        return None if f is None else f()

    def set_warm_start(self, state):
        f = getattr(self.problem, "set_warm_start", None)
        if f is not None:
            f(state)

    def bound_hint(self, name, side):
        """How to widen a bound: ``param_grid`` (none at a natural limit of the problem,
        such as ``l1_ratio = 1``)."""
        inner = getattr(self.problem, "bound_hint", None)
        if inner is not None and inner(name, side) is None:
            return None
        return f"its entry in `param_grid` (the {side} end)"

    @property
    def cover_with_grad(self):
        return bool(getattr(self.problem, "cover_with_grad", False))

    def _clip(self, hp, value):
        v = np.clip(np.asarray(value, float), hp.lower, hp.upper)
        return float(v) if hp.size is None else np.broadcast_to(v, (hp.size,)).copy()

    def _default(self, hp, q):
        lo, hi = np.asarray(hp.lower, float), np.asarray(hp.upper, float)
        v = np.exp((1 - q) * np.log(lo) + q * np.log(hi)) if hp.scale == "log" else (1 - q) * lo + q * hi
        return self._clip(hp, v)

    def initial_points(self):
        """The problem's path, restricted and clipped to the bounds, without repeats.

        A generator, consumed one point at a time by the outer loop, so that an adaptive
        path (one that stops past its best) still sees each loss before the next point.
        If fewer than two distinct points come out (e.g. only ``l1_ratio`` is tuned while
        the path moves ``alpha``), points spread over the bounds follow.
        """
        seen = set()

        def new(q):
            key = np.round(np.concatenate(
                [hp.to_search(q[hp.name]) for hp in self.hyperparameters]), 10).tobytes()
            if key in seen:
                return False
            seen.add(key)
            return True

        listed = [hp for hp in self.hyperparameters if hp.name in self.starts]
        if listed:
            # param_grid lists: their values (GridSearchCV's order: keys sorted, the last
            # varying fastest) are the cover; a hyperparameter given as an interval sits
            # at its middle.
            listed = sorted(listed, key=lambda hp: hp.name)
            for combo in itertools.product(*[self.starts[hp.name] for hp in listed]):
                q = {hp.name: self._default(hp, 0.5) for hp in self.hyperparameters}
                q.update({hp.name: self._clip(hp, v) for hp, v in zip(listed, combo)})
                if new(q):
                    yield q
            return
        for p in self.problem.initial_points():
            q = {hp.name: self._clip(hp, p[hp.name]) if hp.name in p else self._default(hp, 0.5)
                 for hp in self.hyperparameters}
            if new(q):
                yield q
        if len(seen) < 2:
            for t in (0.9, 0.7, 0.5, 0.3, 0.1):
                q = {hp.name: self._default(hp, t) for hp in self.hyperparameters}
                if new(q):
                    yield q

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        t0 = time.perf_counter()
        try:
            with one_blas_thread():
                ev = self.problem.evaluate({**self.fixed, **params}, precision=precision,
                                           with_grad=with_grad)
        except Exception as exc:  # noqa: BLE001 - reported as error_score, as GridSearchCV
            if isinstance(self.error_score, str):
                raise
            warnings.warn(
                f"Evaluating the validation loss at {params} failed; its score is set to "
                f"error_score={self.error_score}. The error was: {exc!r}",
                FitFailedWarning, stacklevel=2,
            )
            return Evaluation(loss=np.inf, grad=None, fold_losses=np.array([np.inf]),
                              converged=False,
                              info={"failed": repr(exc), "eval_time": time.perf_counter() - t0})
        grad = None if ev.grad is None else {k: ev.grad[k] for k in params}
        info = dict(ev.info)
        info["eval_time"] = time.perf_counter() - t0
        fold_losses = np.asarray(ev.fold_losses, float)
        loss = ev.loss
        if self.transform is not None:
            fold_losses, dfold = self.transform(fold_losses)
            loss = float(fold_losses.mean())
            if grad is not None:  # the chain rule, fold by fold
                fg = info["fold_grads"]
                grad = {k: np.tensordot(dfold, np.asarray(fg[k], float), axes=(0, 0))
                        / dfold.size for k in grad}
                grad = {k: float(v) if np.ndim(v) == 0 else v for k, v in grad.items()}
        return Evaluation(loss=loss, grad=grad, fold_losses=fold_losses,
                          converged=ev.converged, info=info)


def score_transform(scoring, problem, folds):
    """``(transform, offset)`` following ``scoring`` through the chain rule, or ``None``.

    For ``r2`` and ``neg_root_mean_squared_error`` on a problem whose loss is the
    validation MSE of a single-output regressor and which reports per-fold gradients
    (``info["fold_grads"]``, see ``provides_fold_grads``): the fold score is a function
    of the fold's MSE, ``1 - mse_k / v_k`` (``v_k`` the test fold's weighted variance of
    ``y``) or ``-sqrt(mse_k)``. ``transform(fold_mse) -> (fold_loss, d fold_loss / d
    fold_mse)``; the score is ``offset - fold_loss``.
    """
    if scoring not in ("r2", "neg_root_mean_squared_error"):
        return None
    if getattr(problem, "loss_name", None) != "mse" or not getattr(
            problem, "provides_fold_grads", False):
        return None
    if any(np.ndim(f.y_test) != 1 for f in folds):
        return None
    if scoring == "neg_root_mean_squared_error":
        def rmse(m):
            r = np.sqrt(m)
            return r, 0.5 / np.where(r > 0, r, np.inf)
        return rmse, 0.0
    v = []
    for f in folds:
        y, w = np.asarray(f.y_test, float), np.asarray(f.sw_test, float)
        mean = np.average(y, weights=w)
        v.append(np.average((y - mean) ** 2, weights=w))
    v = np.array(v)
    if not np.all(v > 0):
        return None

    def r2(m):
        return m / v, 1.0 / v
    return r2, 1.0
