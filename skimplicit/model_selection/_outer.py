"""The one outer loop shared by every tuner of skimplicit.

:func:`tune` minimizes a :class:`~skimplicit.model_selection.TunableProblem`'s validation
loss over its hyperparameters:

1. **Start.** Without an explicit start, evaluate the problem's short warm-started coarse
   path (``initial_points``) and start from its best point (restarts take the next best
   local minima of the path, then random points). This handles the non-convex validation
   curve and the dead zone above ``alpha_max`` (the problems' bounds exclude it).
2. **Steps.** In search coordinates (log for scale parameters, linear for ratios), within
   the bounds, fed the hypergradient: with one hyperparameter, a bracketed line search
   between the path's neighbours of the start (:func:`_bracketed_1d`: secant or quadratic
   steps, a 2 % wide bracket or a predicted gain below ``outer_tol`` ends it); with
   several, scipy's L-BFGS-B, its first step scaled to 0.5 in search coordinates. Both
   only accept decreases, which keeps warm starts useful and is robust to kinks.
3. **Inexact inner solves.** The inner accuracy requested (``precision``) shrinks
   geometrically over the steps (HOAG's schedule): early steps are cheap, late ones exact.
4. **Stopping.** no relative improvement of the best loss larger than ``outer_tol`` over 3
   evaluations, a step below 1e-4 in search coordinates, ``max_outer_iter`` evaluations
   per start, or ``max_time`` seconds overall.
5. **Nothing lost.** Every evaluation is recorded; the best point seen is returned also
   when the budget runs out, an evaluation fails, or the user interrupts (Ctrl-C).
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _progress
from ._tunable import Evaluation

__all__ = ["tune", "TuningResult"]


class _Stop(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass
class TuningResult:
    """Outcome of :func:`tune`.

    Attributes
    ----------
    best_params : dict
        Hyperparameters with the lowest validation loss seen (natural units).
    best_loss : float
    best_evaluation : Evaluation
    records : list of dict
        One per evaluation: ``params``, ``evaluation``, ``time`` (seconds since start),
        ``phase`` (``"path"``, ``"start k"``), ``precision``.
    n_iter : int
        Number of evaluations after the coarse path (outer steps).
    stop_reason : str

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.model_selection import Evaluation, Hyperparameter, tune
    >>> class Toy:  # validation loss (log(alpha) - log(0.1))**2
    ...     hyperparameters = [Hyperparameter("alpha", 1e-4, 1e2)]
    ...     loss_name = "mse"
    ...     def initial_points(self):
    ...         return [{"alpha": a} for a in (10.0, 1.0, 0.01)]
    ...     def evaluate(self, params, *, precision=1.0, with_grad=True):
    ...         z = np.log(params["alpha"] / 0.1)
    ...         grad = {"alpha": 2 * z / params["alpha"]} if with_grad else None
    ...         return Evaluation(loss=z ** 2, grad=grad, fold_losses=np.array([z ** 2]))
    >>> result = tune(Toy())
    >>> [r["phase"] for r in result.records][:3]
    ['path', 'path', 'path']
    >>> history = result.history(Toy.hyperparameters)
    >>> len(history["alpha"]) == len(result.records), bool(result.best_loss < 1e-8)
    (True, True)
    """

    best_params: dict
    best_loss: float
    best_evaluation: Evaluation
    records: list = field(default_factory=list)
    n_iter: int = 0
    stop_reason: str = ""
    hyperparameters: list = field(default_factory=list)

    def history(self, hyperparameters) -> dict:
        """Equal-length arrays, one entry per evaluation (the ``history_`` attribute)."""
        h = {}
        for hp in hyperparameters:
            h[hp.name] = np.array([np.asarray(r["params"][hp.name], float) for r in self.records])
        for hp in hyperparameters:
            h["grad_" + hp.name] = np.array([
                np.full(np.shape(r["params"][hp.name]), np.nan) if r["evaluation"].grad is None
                else np.asarray(r["evaluation"].grad[hp.name], float)
                for r in self.records
            ])
        h["loss"] = np.array([r["evaluation"].loss for r in self.records])
        h["loss_std"] = np.array([np.std(r["evaluation"].fold_losses) for r in self.records])
        h["grad_norm"] = np.array([r["grad_norm"] for r in self.records])
        h["time"] = np.array([r["time"] for r in self.records])
        h["precision"] = np.array([r["precision"] for r in self.records])
        h["converged"] = np.array([r["evaluation"].converged for r in self.records])
        h["phase"] = np.array([r["phase"] for r in self.records])
        return h


class _Recorder:
    """Evaluates the problem, records everything, keeps the best, enforces the budgets."""

    def __init__(self, problem, hps, t0, max_time, verbose, phase):
        self.problem, self.hps, self.t0 = problem, hps, t0
        self.max_time, self.verbose, self.phase = max_time, verbose, phase
        self.records, self.best = [], None
        self.n_eval = 0

    def params_from_z(self, z):
        out, i = {}, 0
        for hp in self.hps:
            out[hp.name] = hp.from_search(z[i : i + hp.n_values])
            i += hp.n_values
        return out

    def grad_z(self, params, ev):
        if ev.grad is None:
            return np.full(sum(hp.n_values for hp in self.hps), np.nan)
        return np.concatenate(
            [hp.grad_to_search(params[hp.name], ev.grad[hp.name]) for hp in self.hps]
        )

    def __call__(self, params, precision, with_grad=True):
        try:  # ``self.verbose``: the run's _progress.Progress (time budget, reporting)
            ev = self.verbose.evaluate(self.problem, params, precision, with_grad)
        except _progress.TimeUp:
            raise _Stop("max_time") from None
        self.n_eval += 1
        gz = self.grad_z(params, ev)
        rec = {
            "params": params,
            "evaluation": ev,
            "time": time.perf_counter() - self.t0,
            "phase": self.phase,
            "precision": precision,
            "grad_norm": float(np.linalg.norm(gz)) if ev.grad is not None else np.nan,
            "grad_z": gz,
        }
        self.records.append(rec)
        if np.isfinite(ev.loss) and (self.best is None or ev.loss < self.best["evaluation"].loss):
            self.best = rec
        self.verbose.record(rec, self.n_eval)
        if self.max_time is not None and rec["time"] > self.max_time:
            raise _Stop("max_time")
        return ev, gz


def _descend(problem, hps, z0, bounds, *, max_outer_iter, outer_tol, max_time, t0,
             verbose, phase, precision0, known=None, bracket=None, first_step=0.5):
    """One descent from ``z0``; returns the recorder (records, best, stop reason).

    ``known`` is the ``(loss, grad_z)`` already evaluated at ``z0`` (a path point), if any;
    ``bracket`` the path's neighbours of ``z0`` (see :func:`_start_points`). One search
    coordinate: :func:`_bracketed_1d`; several: L-BFGS-B.
    """
    rec = _Recorder(problem, hps, t0, max_time, verbose, phase)
    stall = {"best": np.inf if known is None else known[0], "since": 0}
    n_steps = {"k": 0}
    cache = {} if known is None else {np.asarray(z0, float).tobytes(): known}

    def fun(z):
        key = np.asarray(z, float).tobytes()
        if key in cache:  # L-BFGS-B re-evaluates its starting point
            return cache[key]
        if stall.get("z") is not None and np.max(np.abs(z - stall["z"])) < 1e-4:
            raise _Stop("small step")
        stall["z"] = np.array(z, float)
        precision = max(1e-2, precision0 * 0.5 ** n_steps["k"])
        n_steps["k"] += 1
        params = rec.params_from_z(z)
        ev, gz = rec(params, precision)
        if not np.isfinite(ev.loss):
            # Let the line search back off: an infinite value is rejected by L-BFGS-B.
            return 1e300, np.zeros_like(z)
        if not np.all(np.isfinite(gz)):
            raise _Stop("non-finite hypergradient")
        if ev.loss < stall["best"] * (1 - outer_tol) - 1e-300:
            stall["best"], stall["since"] = ev.loss, 0
        else:
            stall["since"] += 1
            if stall["since"] >= 3:
                raise _Stop("stalled")
        if n_steps["k"] >= max_outer_iter:
            raise _Stop("max_outer_iter")
        cache.clear()
        cache[key] = (ev.loss, gz)
        return ev.loss, gz

    reason = "converged"
    try:
        # A start with an exactly zero hypergradient (empty support, dead zone) would make
        # L-BFGS-B stop at once: probe towards less regularization first.
        loss0, g0 = fun(z0)
        if not np.any(g0):
            z_probe = np.clip(
                z0 - np.array([1.0 if hp.scale == "log" else 0.0 for hp in hps for _ in range(hp.n_values)]),
                [b[0] for b in bounds], [b[1] for b in bounds],
            )
            loss1, g1 = fun(z_probe)
            if not np.any(g1):
                return rec, "zero hypergradient"
            if loss1 < loss0:
                z0, loss0, g0, bracket = z_probe, loss1, g1, None
        if z0.size == 1:
            _bracketed_1d(fun, float(z0[0]), float(loss0), float(np.asarray(g0)[0]),
                          bounds[0], bracket, first_step, max_outer_iter, outer_tol)
            return rec, "converged"
        # L-BFGS-B's first trial step on a boxed problem is -grad itself: scale the loss so
        # that it moves ``first_step`` in search coordinates (a factor e^0.5 in alpha),
        # large enough to matter, small enough to keep the warm starts useful. Its own
        # stopping tests are then off (the stall test above decides, in loss units).
        g = np.array(fun(z0)[1], float)
        lo_b = np.array([b[0] for b in bounds])
        hi_b = np.array([b[1] for b in bounds])
        g[((z0 <= lo_b) & (g > 0)) | ((z0 >= hi_b) & (g < 0))] = 0.0  # blocked by a bound
        gnorm = np.linalg.norm(g)
        scale = gnorm / first_step if gnorm > 0 else 1.0
        res = minimize(
            lambda z: _scaled(fun(z), scale), z0, jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxfun": max_outer_iter, "maxiter": max_outer_iter, "ftol": 1e-12,
                     "gtol": 1e-10, "maxls": 10},
        )
        reason = "converged" if res.success else f"l-bfgs-b: {res.message}"
    except _Stop as stop:
        reason = stop.reason
    except KeyboardInterrupt:
        reason = "interrupted"
    return rec, reason


# Width in search coordinates under which the one-dimensional descent stops: 2 % in alpha,
# 3.5 times finer than LassoCV's default grid (100 alphas over 3 decades: 7 % apart).
XTOL_1D = 0.02


def _bracketed_1d(fun, x, fx, gx, bounds, bracket, first_step, max_iter, pred_tol,
                  xtol=XTOL_1D):
    """Minimize along one search coordinate with values and derivatives (``fun(z)``).

    A safeguarded line-search "zoom": the best point ``x`` (value ``fx``, derivative
    ``gx``) sits inside a bracket whose two ends are worse points of the coarse path (or
    the bounds, value unknown). The derivative's sign says which side holds the
    minimum; the trial point there is the secant root of the derivative when that end's
    derivative has the other sign, else the minimizer of the quadratic through ``fx``,
    ``gx`` and that end's value, else a step of ``first_step``; it is kept within 10-90 %
    of the side. A better trial becomes ``x`` (the old ``x`` an end); a worse one becomes
    the end (an end kept twice has its derivative halved: Illinois' rule against the
    one-sided crawl of the secant on kinked curves). Kinks and non-convexity cost
    steps, never a worse answer. Stops when the side to search is shorter than ``xtol``
    (:data:`XTOL_1D`), when the model's predicted decrease is below ``pred_tol |fx|``,
    at a zero derivative, or when ``fun`` stops the run (stall, budget).
    """
    nan = float("nan")
    lo = [bounds[0], np.inf, nan]  # [z, f, g] of each end (f = inf: not evaluated)
    hi = [bounds[1], np.inf, nan]
    if bracket is not None:
        for end, known in zip((lo, hi), bracket):
            if known is not None:
                end[:] = [known[0], known[1], nan]
    kept = None
    for _ in range(max_iter):
        if gx == 0:
            return
        end = lo if gx > 0 else hi
        d = end[0] - x
        if abs(d) < xtol:
            return
        u = None
        if np.isfinite(end[2]) and np.sign(end[2]) != np.sign(gx):
            if kept is end:  # Illinois: an end kept twice counts half (no one-sided crawl)
                end[2] *= 0.5
            u = x - gx * d / (end[2] - gx)  # secant root of the derivative
            curvature = (end[2] - gx) / d
        elif np.isfinite(end[1]):
            c = (end[1] - fx - gx * d) / (d * d)  # quadratic through fx, gx and f(end)
            u = x - gx / (2 * c) if c > 0 else None
            curvature = 2 * c
        if u is not None and gx * gx / (2 * curvature) < pred_tol * abs(fx):
            return  # the model's predicted decrease is below outer_tol
        if not np.isfinite(end[1]):
            # Towards a bound (its value unknown): the model's step, at most first_step,
            # at least onto the bound when closer (a monotone loss ends there).
            step = first_step if u is None else min(max((u - x) / d, 0.1) * abs(d), first_step)
            u = x + np.sign(d) * min(step, abs(d))
        else:
            t = 0.5 if u is None else np.clip((u - x) / d, 0.1, 0.9)
            u = x + max(t * abs(d), min(xtol, abs(d) / 2)) * np.sign(d)
        fu, gu = fun(np.array([u]))
        gu = float(np.asarray(gu)[0])
        if fu < fx:
            far = hi if end is lo else lo  # the old best closes the other side
            far[:] = [x, fx, gx]
            x, fx, gx = u, fu, gu
            kept = end
        else:
            end[:] = [u, fu, gu]
            kept = None


def _scaled(out, scale):
    loss, g = out
    return loss / scale, g / scale


def _start_points(path_records, hps, bounds, n_restarts, rng):
    """Best path point first, then the path's other local minima, then random points.

    Returns ``(z, known, bracket)`` triples, ``known`` being the path's ``(loss, grad_z)``
    there and, with one search coordinate, ``bracket`` the nearest path points below and
    above ``z`` as ``(z, loss)`` (``None`` where there is none).
    """
    zs, known = [], []
    if path_records:
        losses = np.array([r["evaluation"].loss for r in path_records])
        order = np.argsort(losses)
        local = [
            i for i in order
            if (i == 0 or losses[i] <= losses[i - 1]) and (i == len(losses) - 1 or losses[i] <= losses[i + 1])
        ]
        ranked = local + [i for i in order if i not in local]
        for i in ranked[:n_restarts]:
            r = path_records[i]
            zs.append(np.concatenate([hp.to_search(r["params"][hp.name]) for hp in hps]))
            finite = np.all(np.isfinite(r["grad_z"]))
            known.append((r["evaluation"].loss, r["grad_z"]) if finite else None)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    while len(zs) < n_restarts:
        zs.append(rng.uniform(lo, hi))
        known.append(None)
    pts = []
    if lo.size == 1:
        for r in path_records:
            if np.isfinite(r["evaluation"].loss):
                z = float(hps[0].to_search(r["params"][hps[0].name])[0])
                pts.append((z, float(r["evaluation"].loss)))
    out = []
    for z, kn in zip(zs, known):
        zc = np.clip(z, lo, hi)
        bracket = None
        if any(abs(q[0] - zc[0]) < 1e-12 for q in pts):  # a path point: its neighbours
            below = [q for q in pts if q[0] < zc[0]]
            above = [q for q in pts if q[0] > zc[0]]
            bracket = (max(below) if below else None, min(above) if above else None)
        out.append((zc, kn if np.array_equal(zc, z) else None, bracket))
    return out


def _run_start(problem, hps, start, bounds, kw, phase):
    z0, known, bracket = start
    rec, reason = _descend(problem, hps, z0, bounds, phase=phase, known=known,
                           bracket=bracket, **kw)
    return rec.records, reason, rec.n_eval


def tune(problem, *, init=None, max_outer_iter=30, outer_tol=1e-4, n_restarts=1,
         max_time=None, verbose=0, random_state=None, n_jobs=None):
    """Minimize a tunable problem's validation loss by hypergradient descent.

    Parameters
    ----------
    problem : TunableProblem
        See :mod:`skimplicit.model_selection._tunable`.
    init : dict or None
        Starting hyperparameters (natural units). ``None`` evaluates the problem's coarse
        path first and starts from its best point.
    max_outer_iter : int, default=30
        Evaluations (each one inner solve per fold and one linear solve) per start, after
        the coarse path.
    outer_tol : float, default=1e-4
        Relative decrease of the validation loss under which the descent stops.
    n_restarts : int, default=1
        Number of starts (the first is the best path point; then the path's other local
        minima; then uniform random points in the search box).
    max_time : float or None
        Wall-clock budget in seconds, checked after each evaluation and, once a finite
        loss is known, within an evaluation where the inner solver allows (between
        folds: :func:`~skimplicit.model_selection._progress.check_time`); the evaluation
        cut short is dropped.
    verbose : int, default=0
        > 0: a header (what is tuned, folds, budget), one line per evaluation and a
        summary line on stdout; >= 2 adds the inner solver's detail. The same records go
        to the ``logging.getLogger("skimplicit")`` logger whatever ``verbose`` is (see
        :mod:`~skimplicit.model_selection._progress`).
    random_state : int, RandomState or None
        For random restart points.
    n_jobs : int or None
        Restarts run through joblib (any backend, e.g. dask); results do not depend on it,
        since every start begins from the same saved warm-start state.

    Returns
    -------
    result : TuningResult

    Examples
    --------
    A toy problem whose validation loss is ``(log(alpha) - log(0.1))**2`` (see
    :class:`~skimplicit.model_selection.TunableProblem` for the protocol):

    >>> import numpy as np
    >>> from skimplicit.model_selection import Evaluation, Hyperparameter, tune
    >>> class Toy:
    ...     hyperparameters = [Hyperparameter("alpha", 1e-4, 1e2)]
    ...     loss_name = "mse"
    ...     def initial_points(self):  # a coarse path, strong to weak regularization
    ...         return [{"alpha": a} for a in (10.0, 1.0, 0.01)]
    ...     def evaluate(self, params, *, precision=1.0, with_grad=True):
    ...         z = np.log(params["alpha"] / 0.1)
    ...         grad = {"alpha": 2 * z / params["alpha"]} if with_grad else None
    ...         return Evaluation(loss=z ** 2, grad=grad, fold_losses=np.array([z ** 2]))
    >>> result = tune(Toy())
    >>> round(result.best_params["alpha"], 6)
    0.1
    """
    hps = list(problem.hyperparameters)
    bounds = [b for hp in hps for b in hp.search_bounds()]
    t0 = time.perf_counter()
    rng = check_random_state(random_state)
    progress = _progress.Progress(problem, hps, verbose=verbose, max_outer_iter=max_outer_iter,
                                  n_restarts=n_restarts, max_time=max_time, t0=t0)
    kw = dict(max_outer_iter=max_outer_iter, outer_tol=outer_tol, max_time=max_time, t0=t0,
              verbose=progress, precision0=1.0)

    records, reasons, stop = [], [], None
    path_rec = _Recorder(problem, hps, t0, max_time, progress, "path")
    try:
        if init is None:
            # ``initial_points`` may be a generator that adapts to the losses it sees.
            for params in problem.initial_points():
                path_rec(params, 1.0, with_grad=False)
            starts = _start_points(path_rec.records, hps, bounds, n_restarts, rng)
        else:
            z = np.concatenate([hp.to_search(init[hp.name]) for hp in hps])
            starts = _start_points([], hps, bounds, n_restarts - 1, rng)
            starts.insert(0, (np.clip(z, [b[0] for b in bounds], [b[1] for b in bounds]), None,
                              None))
    except _Stop as s:
        stop, starts = s.reason, []
    except KeyboardInterrupt:
        stop, starts = "interrupted", []
    records.extend(path_rec.records)

    if starts:
        warm = problem.get_warm_start() if hasattr(problem, "get_warm_start") else None

        def job(k, start):
            prob = problem
            if k > 0 or n_jobs not in (None, 1):
                prob = copy.copy(problem)
                if warm is not None:
                    prob.set_warm_start(copy.deepcopy(warm))
            return _run_start(prob, hps, start, bounds, kw, f"start {k}")

        if n_restarts > 1 and n_jobs not in (None, 1):
            outs = Parallel(n_jobs=n_jobs)(delayed(job)(k, st) for k, st in enumerate(starts))
        else:
            outs = []
            for k, st in enumerate(starts):
                if stop in ("max_time", "interrupted"):
                    break
                out = job(k, st)
                outs.append(out)
                if out[1] in ("max_time", "interrupted"):
                    stop = out[1]
        for recs, reason, _ in outs:
            records.extend(recs)
            reasons.append(reason)

    finite = [r for r in records if np.isfinite(r["evaluation"].loss)]
    if not finite:
        raise ValueError(
            "Every evaluation of the validation loss failed (non-finite). Check the input "
            "data (scale, constant features) and the bounds."
        )
    best = min(finite, key=lambda r: r["evaluation"].loss)
    stop_reason = stop or ("; ".join(sorted(set(reasons))) if reasons else "path only")
    if stop == "interrupted":
        warnings.warn(
            "Tuning interrupted: returning the best point seen so far.", UserWarning,
            stacklevel=2,
        )
    if not best["evaluation"].converged:
        warnings.warn(
            "At the selected hyperparameters an inner solve or the linear system of the "
            "hypergradient did not reach its tolerance; increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=2,
        )
    if "non-finite hypergradient" in stop_reason:
        warnings.warn(
            "The hypergradient was not finite (singular system?): the descent stopped at "
            "the best point seen so far.", ConvergenceWarning, stacklevel=2,
        )
    if "zero hypergradient" in stop_reason:
        warnings.warn(
            "The hypergradient was exactly zero at the start and after a probe step "
            "(every solution empty?): the returned point comes from the coarse path only.",
            UserWarning,
            stacklevel=2,
        )
    n_iter = sum(1 for r in records if r["phase"] != "path")
    result = TuningResult(
        best_params=best["params"], best_loss=float(best["evaluation"].loss),
        best_evaluation=best["evaluation"], records=records, n_iter=n_iter,
        stop_reason=stop_reason, hyperparameters=hps,
    )
    progress.summary(result)
    return result
