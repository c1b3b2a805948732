"""The one outer loop shared by every tuner of skimplicit.

:func:`tune` minimizes a :class:`~skimplicit.model_selection.TunableProblem`'s validation
loss over its hyperparameters, globally first, locally then:

1. **Cover.** Evaluate the problem's coarse cover (``initial_points``): a batch of points
   spanning the whole search interval, ordered from strong to weak regularization so
   that evaluating them in turn is a warm-started path (a problem may evaluate the batch
   itself, ``evaluate_cover``). Each point gives the loss and, where the problem says
   it is cheap (``cover_with_grad``), the hypergradient. Points are clipped to the
   bounds. The cover never stops early: real validation curves have several basins.
2. **Basins.** The cover's local minima (and, with hypergradients, the intervals where
   the derivative changes sign from negative to positive) are the basins; the best
   ``n_basins`` whose cover loss is within ``basin_tol`` of the best are each descended
   (more starts with ``n_restarts``: next best cover points, then random points). Flat
   points (zero solution, zero hypergradient, the same loss as a neighbour) are not
   starts; a user's start (``init``) in a flat region is left for the cover.
3. **Descent.** In search coordinates (log for scale parameters, linear for ratios),
   within the bounds, fed the hypergradient: with one hyperparameter, a bracketed line
   search between the cover's neighbours of the start (:func:`_bracketed_1d`); with
   several, scipy's L-BFGS-B, its first step scaled to 0.5 in search coordinates. Both
   only accept decreases, which keeps warm starts useful and is robust to kinks. Inner
   solves tighten geometrically over the steps (HOAG's schedule).
4. **Stopping, scale-invariant.** In log-hyperparameter space and relative to the loss:
   the bracket narrower than 2 %, or the largest decrease a linear or quadratic model
   predicts over the rest of the bracket (``|d loss / d z| * width``) below
   ``outer_tol * loss``; no relative improvement larger than ``outer_tol`` over 3
   evaluations; ``max_outer_iter`` evaluations per start; ``max_time`` seconds overall.
   A best point on a bound is reported (warning naming the bound and how to widen it;
   ``stop_reason`` "at upper bound of ..."), never as "converged".
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
from ._protocol import Evaluation

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
        return self.record(params, ev, precision)

    def record(self, params, ev, precision):
        """Record an evaluation made elsewhere (a batch of the cover); ``(ev, grad_z)``."""
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
                  xtol=XTOL_1D, n_probes=2):
    """Minimize along one search coordinate with values and derivatives (``fun(z)``).

    A safeguarded line-search "zoom": the best point ``x`` (value ``fx``, derivative
    ``gx``) sits inside a bracket whose two ends are worse points of the coarse path (or
    the bounds, value unknown). The derivative's sign says which side holds the
    minimum; the trial point there is the secant root of the derivative when that end's
    derivative has the other sign, else the minimizer of the quadratic through ``fx``,
    ``gx`` and that end's value, else a step of ``first_step`` (towards a bound, whose
    value is unknown, doubled after each better step of that kind); it is kept within
    10-90 % of the side. A better trial becomes ``x`` (the old ``x`` an end); a worse one becomes
    the end (an end kept twice has its derivative halved: Illinois' rule against the
    one-sided crawl of the secant on kinked curves). Kinks and non-convexity cost
    steps, never a worse answer. Stops when the side to search is shorter than ``xtol``
    (:data:`XTOL_1D`), when the model's predicted decrease, or the linear decrease
    ``|gx| * |d|`` over the whole side, is below ``pred_tol |fx|`` (scale-invariant: in
    log-hyperparameter space, relative to the loss), at a zero derivative, or when ``fun`` stops the run (stall, budget).
    """
    nan = float("nan")
    lo = [bounds[0], np.inf, nan]  # [z, f, g] of each end (f = inf: not evaluated)
    hi = [bounds[1], np.inf, nan]
    if bracket is not None:
        for end, known in zip((lo, hi), bracket):
            if known is not None:
                end[:] = [known[0], known[1], nan]
    kept = None
    reach = first_step  # the longest step towards a bound (unknown value) now allowed
    probes = n_probes
    seen = [(x, fx, gx)] + [(e[0], e[1], e[2]) for e in (lo, hi)]
    while True:
        for _ in range(max_iter):
            if gx == 0:
                break
            end = lo if gx > 0 else hi
            d = end[0] - x
            if abs(d) < xtol:
                break
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
                break  # the model's predicted decrease is below outer_tol
            if abs(gx) * abs(d) < pred_tol * abs(fx):
                break  # even a linear decrease over the whole side is below outer_tol
            if not np.isfinite(end[1]):
                # Towards a bound (its value unknown): the model's step, at most first_step,
                # at least onto the bound when closer (a monotone loss ends there).
                # Each better step of this kind doubles the next (a monotone loss, e.g.
                # ~ 1/C on nearly separable data, is crossed in log-many steps).
                step = reach if u is None else min(max((u - x) / d, 0.1) * abs(d), reach)
                u = x + np.sign(d) * min(step, abs(d))
                towards_bound = True
            else:
                t = 0.5 if u is None else np.clip((u - x) / d, 0.1, 0.9)
                u = x + max(t * abs(d), min(xtol, abs(d) / 2)) * np.sign(d)
                towards_bound = False
            fu, gu = fun(np.array([u]))
            gu = float(np.asarray(gu)[0])
            seen.append((u, fu, gu))
            if towards_bound:
                reach = 2 * reach if fu < fx else first_step
            if fu < fx:
                far = hi if end is lo else lo  # the old best closes the other side
                far[:] = [x, fx, gx]
                x, fx, gx = u, fu, gu
                kept = end
            else:
                end[:] = [u, fu, gu]
                kept = None
        # Kinked (Lasso) curves have local minima inside one bracket of the cover: probe
        # the middle of the widest gap between the points known (bracket ends included),
        # and zoom again from there, between its neighbours, if it is better.
        if probes <= 0:
            return
        probes -= 1
        known = sorted({(q[0], q[1], q[2]) for q in seen if np.isfinite(q[1])})
        gaps = [(b[0] - a[0], a, b) for a, b in zip(known, known[1:])]
        if not gaps:
            return
        width, a, b = max(gaps)
        if width <= 4 * xtol:
            return
        u = 0.5 * (a[0] + b[0])
        fu, gu = fun(np.array([u]))
        gu = float(np.asarray(gu)[0])
        seen.append((u, fu, gu))
        if fu < fx:
            x, fx, gx = u, fu, gu
            lo[:] = list(a)
            hi[:] = list(b)
        kept = None


def _scaled(out, scale):
    loss, g = out
    return loss / scale, g / scale


def _z_of(hps, params):
    return np.concatenate([hp.to_search(params[hp.name]) for hp in hps])


def _is_flat(loss, gz, bounds, outer_tol):
    """Whether a point is in a flat region: a known hypergradient so small that a linear
    model over the whole search box changes the loss by less than ``outer_tol`` of it
    (an exactly zero one: empty solutions, the dead zone of the Lasso)."""
    gz = np.asarray(gz, float)
    if not np.all(np.isfinite(gz)) or not np.isfinite(loss):
        return False
    width = np.array([b[1] - b[0] for b in bounds])
    return float(np.sum(np.abs(gz) * width)) <= outer_tol * abs(loss)


def _evaluate_cover(problem, rec, hps, bounds, with_grad):
    """Evaluate the problem's cover (``initial_points``), every point clipped to the bounds.

    A list is a batch: a problem with ``evaluate_cover(points, precision=, with_grad=)``
    evaluates it at once (one call, e.g. on an accelerator), else point by point in its
    order (a warm-started path). A generator is consumed one point at a time (it may adapt
    to the losses it has seen, e.g. to set weights at the end).
    """
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])

    def clip(params):
        z = _z_of(hps, params)
        zc = np.clip(z, lo, hi)
        if np.array_equal(z, zc):
            return params
        out = dict(params)
        out.update(rec.params_from_z(zc))
        return out

    points = problem.initial_points()
    batch = getattr(problem, "evaluate_cover", None)
    if isinstance(points, (list, tuple)) and batch is not None:
        points = [clip(p) for p in points]
        for params, ev in zip(points, batch(points, precision=1.0, with_grad=with_grad)):
            rec.record(params, ev, 1.0)
        return
    for params in points:
        rec(clip(params), 1.0, with_grad=with_grad)


def _cover_starts(records, hps, bounds, outer_tol, n_basins, basin_tol):
    """Start candidates from the cover: ``(z, known, bracket, loss)``, best first.

    With one search coordinate the records are sorted along it: a basin is a local
    minimum of the loss (not a flat point, whose loss equals a neighbour's exactly, and
    not a flat region, see :func:`_is_flat`), or, with hypergradients, the better end of
    an interval where the derivative goes from negative to positive. ``bracket`` holds
    the neighbouring cover points ``(z, loss)``. With several coordinates, the local
    minima along the cover's order. The best candidate comes first; then the others
    whose loss is within ``basin_tol`` (relative) of the best, at most ``n_basins`` in
    all; then (``extra``) the remaining candidates and cover points, best first.
    """
    recs = [r for r in records if np.isfinite(r["evaluation"].loss)]
    if not recs:
        return [], []
    one_d = len(bounds) == 1
    zs = [_z_of(hps, r["params"]) for r in recs]
    if one_d:
        order = np.argsort([z[0] for z in zs], kind="stable")
        recs, zs = [recs[i] for i in order], [zs[i] for i in order]
    L = np.array([r["evaluation"].loss for r in recs])
    G = [r["grad_z"] for r in recs]
    n = len(recs)

    def flat(i):
        same = (i > 0 and L[i] == L[i - 1]) or (i < n - 1 and L[i] == L[i + 1])
        return same or _is_flat(L[i], G[i], bounds, outer_tol)

    cand = set()
    for i in range(n):
        if (i == 0 or L[i] <= L[i - 1]) and (i == n - 1 or L[i] <= L[i + 1]) and not flat(i):
            cand.add(i)
    if one_d:
        for i in range(n - 1):
            g0, g1 = G[i][0], G[i + 1][0]
            if np.isfinite(g0) and np.isfinite(g1) and g0 < 0 < g1:
                j = i if L[i] <= L[i + 1] else i + 1
                if not flat(j):
                    cand.add(j)
    ranked = sorted(cand, key=lambda i: L[i])
    if not ranked:  # every point flat: the best one (the caller checks for a flat box)
        ranked = [int(np.argmin(L))]
    best = L[ranked[0]]
    chosen = [i for i in ranked if L[i] <= best + basin_tol * abs(best)][:max(1, n_basins)]
    extra = [i for i in ranked if i not in chosen]
    extra += [i for i in np.argsort(L, kind="stable") if i not in chosen and i not in extra
              and not flat(i)]

    def start(i):
        kn = (L[i], G[i]) if np.all(np.isfinite(G[i])) else None
        bracket = None
        if one_d:
            bracket = ((float(zs[i - 1][0]), float(L[i - 1])) if i > 0 else None,
                       (float(zs[i + 1][0]), float(L[i + 1])) if i < n - 1 else None)
        return (zs[i], kn, bracket, L[i])

    return [start(i) for i in chosen], [start(int(i)) for i in extra]


def _run_start(problem, hps, start, bounds, kw, phase):
    z0, known, bracket = start[:3]
    rec, reason = _descend(problem, hps, z0, bounds, phase=phase, known=known,
                           bracket=bracket, **kw)
    return rec.records, reason, rec.n_eval


def _bound_hint(problem, hp, side):
    """How to widen ``hp``'s bound (``problem.bound_hint``), or ``None`` for a natural
    limit (``l1_ratio = 1``) that needs no warning."""
    hint = getattr(problem, "bound_hint", None)
    if hint is not None:
        return hint(hp.name, side)
    return f"the bounds of {hp.name!r}"


def _at_bounds(problem, hps, params):
    """``(name, side, value, hint)`` of each scalar hyperparameter on one of its bounds."""
    out = []
    for hp in hps:
        if hp.size is not None:
            continue  # one value per feature or class: bounds are routinely active
        z = float(hp.to_search(params[hp.name])[0])
        (lo, hi), = hp.search_bounds()
        tol = 1e-9 * max(1.0, abs(lo), abs(hi))
        for side, b, bound in (("lower", lo, hp.lower), ("upper", hi, hp.upper)):
            if abs(z - b) <= tol:
                hint = _bound_hint(problem, hp, side)
                if hint is not None:
                    out.append((hp.name, side, float(np.min(bound) if side == "lower"
                                                           else np.max(bound)), hint))
    return out


def tune(problem, *, init=None, max_outer_iter=30, outer_tol=1e-4, n_restarts=1,
         max_time=None, verbose=0, random_state=None, n_jobs=None, n_basins=3,
         basin_tol=0.05):
    """Minimize a tunable problem's validation loss by hypergradient descent.

    Parameters
    ----------
    problem : TunableProblem
        See :mod:`skimplicit.tuning._protocol`.
    init : dict or None
        Starting hyperparameters (natural units), clipped to the bounds. ``None``
        evaluates the problem's coarse cover first and descends from its best basins. A
        start in a flat region (zero hypergradient: an empty model) is left: the cover
        runs and the descent starts from its basins.
    max_outer_iter : int, default=30
        Evaluations (each one inner solve per fold and one linear solve) per start, after
        the coarse cover.
    outer_tol : float, default=1e-4
        Relative decrease of the validation loss under which the descent stops.
    n_restarts : int, default=1
        Least number of starts: the cover's basins (see ``n_basins``), then its next best
        points, then uniform random points in the search box.
    max_time : float or None
        Wall-clock budget in seconds, checked after each evaluation and, once a finite
        loss is known, within an evaluation where the inner solver allows (between
        folds: :func:`~skimplicit.tuning._progress.check_time`); the evaluation
        cut short is dropped.
    verbose : int, default=0
        > 0: a header (what is tuned, folds, budget), one line per evaluation and a
        summary line on stdout; >= 2 adds the inner solver's detail. The same records go
        to the ``logging.getLogger("skimplicit")`` logger whatever ``verbose`` is (see
        :mod:`~skimplicit.tuning._progress`).
    random_state : int, RandomState or None
        For random restart points.
    n_jobs : int or None
        Starts run through joblib (any backend, e.g. dask); results do not depend on it,
        since every start begins from the same saved warm-start state. A problem with a
        ``fold_jobs`` attribute (:class:`~skimplicit.tuning.CVProblem`) gets ``n_jobs``
        there: its folds run on that many threads while one point is evaluated at a time
        (the cover, a single start); the problem's own setting is restored on return.
    n_basins : int, default=3
        Most basins of the cover descended (besides ``n_restarts``).
    basin_tol : float, default=0.05
        A basin other than the best is descended when its cover loss is within this
        relative distance of the best cover loss.

    Returns
    -------
    result : TuningResult

    Raises
    ------
    ValueError
        When every evaluation failed, or when the loss is the same at every point of the
        cover and at the start (the bounds hold only a flat region: nothing to tune).

    Examples
    --------
    A toy problem whose validation loss is ``(log(alpha) - log(0.1))**2`` (see
    :class:`~skimplicit.model_selection.TunableProblem` for the protocol):

    >>> import numpy as np
    >>> from skimplicit.model_selection import Evaluation, Hyperparameter, tune
    >>> class Toy:
    ...     hyperparameters = [Hyperparameter("alpha", 1e-4, 1e2)]
    ...     loss_name = "mse"
    ...     def initial_points(self):  # a coarse cover, strong to weak regularization
    ...         return [{"alpha": a} for a in (100.0, 10.0, 1.0, 0.01, 1e-4)]
    ...     def evaluate(self, params, *, precision=1.0, with_grad=True):
    ...         z = np.log(params["alpha"] / 0.1)
    ...         grad = {"alpha": 2 * z / params["alpha"]} if with_grad else None
    ...         return Evaluation(loss=z ** 2, grad=grad, fold_losses=np.array([z ** 2]))
    >>> result = tune(Toy())
    >>> round(result.best_params["alpha"], 6)
    0.1
    """
    if not hasattr(problem, "fold_jobs"):
        return _tune(problem, init, max_outer_iter, outer_tol, n_restarts, max_time, verbose,
                     random_state, n_jobs, n_basins, basin_tol)
    # (CVProblem: its folds on n_jobs threads during this tuning; the caller's setting
    # is restored after it)
    previous, problem.fold_jobs = problem.fold_jobs, n_jobs
    try:
        return _tune(problem, init, max_outer_iter, outer_tol, n_restarts, max_time, verbose,
                     random_state, n_jobs, n_basins, basin_tol)
    finally:
        problem.fold_jobs = previous


def _tune(problem, init, max_outer_iter, outer_tol, n_restarts, max_time, verbose,
          random_state, n_jobs, n_basins, basin_tol):
    """:func:`tune`'s body (``problem.fold_jobs`` set by the caller)."""
    hps = list(problem.hyperparameters)
    bounds = [b for hp in hps for b in hp.search_bounds()]
    lo_b = np.array([b[0] for b in bounds])
    hi_b = np.array([b[1] for b in bounds])
    t0 = time.perf_counter()
    rng = check_random_state(random_state)
    progress = _progress.Progress(problem, hps, verbose=verbose, max_outer_iter=max_outer_iter,
                                  n_restarts=n_restarts, max_time=max_time, t0=t0)
    kw = dict(max_outer_iter=max_outer_iter, outer_tol=outer_tol, max_time=max_time, t0=t0,
              verbose=progress, precision0=1.0)
    cover_grad = bool(getattr(problem, "cover_with_grad", False))

    records, reasons, stop = [], [], None
    starts, init_flat = [], False
    init_rec = _Recorder(problem, hps, t0, max_time, progress, "start 0")
    path_rec = _Recorder(problem, hps, t0, max_time, progress, "path")
    try:
        if init is not None:
            z = np.clip(_z_of(hps, init), lo_b, hi_b)
            ev, gz = init_rec(init_rec.params_from_z(z), 1.0)
            init_flat = _is_flat(ev.loss, gz, bounds, outer_tol)
            if not init_flat:
                known = (ev.loss, gz) if np.isfinite(ev.loss) else None
                starts = [(z, known, None, ev.loss)]
        if init is None or init_flat:
            # No start, or one in a flat region: cover the whole interval.
            _evaluate_cover(problem, path_rec, hps, bounds, cover_grad)
            cover = path_rec.records + (init_rec.records if init_flat else [])
            _check_not_flat(problem, hps, cover)
            chosen, extra = _cover_starts(path_rec.records, hps, bounds, outer_tol,
                                          n_basins, basin_tol)
            starts = chosen + extra[: max(0, n_restarts - len(chosen))]
        while len(starts) < n_restarts:
            starts.append((rng.uniform(lo_b, hi_b), None, None, np.inf))
    except _Stop as s:
        stop, starts = s.reason, []
    except KeyboardInterrupt:
        stop, starts = "interrupted", []
    records.extend(path_rec.records)
    # A start kept opens its descent's records ("start 0"); a flat one precedes the cover.
    init_opens = init is not None and not init_flat and bool(starts)
    if not init_opens:
        records[:0] = init_rec.records

    if starts:
        warm = problem.get_warm_start() if hasattr(problem, "get_warm_start") else None

        parallel = len(starts) > 1 and n_jobs not in (None, 1)

        def job(k, start):
            prob = problem
            if k > 0 or n_jobs not in (None, 1):
                prob = copy.copy(problem)
                if warm is not None:
                    prob.set_warm_start(copy.deepcopy(warm))
                if parallel and hasattr(prob, "fold_jobs"):
                    prob.fold_jobs = None  # (the starts take the n_jobs workers)
            return _run_start(prob, hps, start, bounds, kw, f"start {k}")

        if parallel:
            outs = Parallel(n_jobs=n_jobs)(delayed(job)(k, st) for k, st in enumerate(starts))
        else:
            outs = []
            # (every chosen basin is descended, as in parallel: results never depend
            # on n_jobs)
            for k, st in enumerate(starts):
                if stop in ("max_time", "interrupted"):
                    break
                out = job(k, st)
                outs.append(out)
                if out[1] in ("max_time", "interrupted"):
                    stop = out[1]
        if init_opens:
            if outs:
                outs[0] = (init_rec.records + outs[0][0],) + tuple(outs[0][1:])
            else:
                records.extend(init_rec.records)
        for recs, reason, _ in outs:
            records.extend(recs)
            reasons.append(reason)

    # Data-derived bounds that the best point presses against (still improving outwards)
    # grow, and a descent continues from that point (see :func:`_grow_bounds`).
    k = len(starts)
    while stop not in ("max_time", "interrupted") and _grow_bounds(problem, hps, records,
                                                                    outer_tol):
        hps = list(problem.hyperparameters)
        bounds = [b for hp in hps for b in hp.search_bounds()]
        best = min((r for r in records if np.isfinite(r["evaluation"].loss)),
                   key=lambda r: r["evaluation"].loss)
        z, gz, loss = _z_of(hps, best["params"]), best["grad_z"], best["evaluation"].loss
        known = (loss, gz) if np.all(np.isfinite(gz)) else None
        try:
            recs, reason, _ = _run_start(problem, hps, (z, known, None, loss), bounds, kw,
                                         f"start {k}")
        except KeyboardInterrupt:
            stop, recs, reason = "interrupted", [], "interrupted"
        k += 1
        records.extend(recs)
        reasons.append(reason)
        if reason in ("max_time", "interrupted"):
            stop = reason

    finite = [r for r in records if np.isfinite(r["evaluation"].loss)]
    if not finite:
        raise ValueError(
            "Every evaluation of the validation loss failed (non-finite). Check the input "
            "data (scale, constant features) and the bounds."
        )
    best = min(finite, key=lambda r: r["evaluation"].loss)
    stop_reason = stop or ("; ".join(sorted(set(reasons))) if reasons else "path only")
    at_bounds = _at_bounds(problem, hps, best["params"])
    if at_bounds and stop is None:
        others = [r for r in sorted(set(reasons)) if r != "converged"]
        stop_reason = "; ".join(
            [f"at {side} bound of {name} ({value:.4g})" for name, side, value, _ in at_bounds]
            + others)
    for name, side, value, hint in at_bounds:
        warnings.warn(
            f"The best {name} is at the {side} bound of its search interval ({value:.4g}): "
            f"the validation loss may keep decreasing beyond it. To search further, widen "
            f"{hint}.", UserWarning, stacklevel=2,
        )
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
            "The hypergradient was exactly zero at the start of a descent and after a probe "
            "step (every solution empty?): that descent stopped; the returned point is the "
            f"best of the {len(finite)} points evaluated.",
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


def _grow_bounds(problem, hps, records, outer_tol):
    """Grow the bounds the best point sits on, where the problem allows it.

    A problem may derive a bound from the data (e.g. the largest ``C`` of a logistic
    regression, in units of the data's curvature): on nearly separable data the
    validation loss can keep falling beyond it. ``problem.extend_bound(name, side)``
    widens such a bound (returns whether it did; a bound the user set is never moved).
    It is asked when the best point is on the bound and the hypergradient there points
    outwards with a predicted gain over one decade above ``outer_tol`` of the loss (or is
    unknown). Returns whether a bound grew.
    """
    extend = getattr(problem, "extend_bound", None)
    finite = [r for r in records if np.isfinite(r["evaluation"].loss)]
    if extend is None or not finite:
        return False
    best = min(finite, key=lambda r: r["evaluation"].loss)
    offsets = np.cumsum([0] + [hp.n_values for hp in hps])
    index = {hp.name: offsets[i] for i, hp in enumerate(hps)}
    loss, gz = best["evaluation"].loss, np.asarray(best["grad_z"], float)
    grown = False
    for name, side, _, _ in _at_bounds(problem, hps, best["params"]):
        g = gz[index[name]]
        gain = (-g if side == "upper" else g) * np.log(10.0)  # predicted, one decade out
        if np.isfinite(g) and gain <= outer_tol * abs(loss):
            continue
        grown |= bool(extend(name, side))
    return grown


def _check_not_flat(problem, hps, records):
    """Raise when every point evaluated has the same loss and no known slope: the bounds
    hold a flat region only (e.g. every model empty), nothing to tune."""
    losses = np.array([r["evaluation"].loss for r in records])
    losses = losses[np.isfinite(losses)]
    if losses.size < 2 or np.max(np.abs(losses)) <= 1e-9:
        return  # (a perfect fit everywhere, e.g. a single class: nothing to improve)
    # Only an empty model at every point is surely flat: a nonzero one whose loss does
    # not move is an inner tolerance matter (e.g. class weights 1000 : 1e-4, whose minor
    # classes hardly count in the gradient test), not a reason to refuse the fit.
    sizes = [r["evaluation"].info.get("support_size") for r in records
             if isinstance(getattr(r["evaluation"], "info", None), dict)]
    if any(s is not None and np.any(np.asarray(s) > 0) for s in sizes):
        return
    grads = [r["grad_z"] for r in records]
    if np.ptp(losses) <= 1e-12 * np.max(np.abs(losses)) and not any(
            np.any(np.isfinite(g) & (g != 0)) for g in grads):
        where = ", ".join(f"{hp.name} in [{np.min(hp.lower):.4g}, {np.max(hp.upper):.4g}]"
                          for hp in hps)
        hint = _bound_hint(problem, hps[0], "lower") or f"the bounds of {hps[0].name!r}"
        raise ValueError(
            f"The validation loss is the same ({losses[0]:.6g}) at every point evaluated "
            f"over the search interval ({where}): the model does not change there (every "
            f"coefficient zero?), so there is nothing to tune. Move {hint} to where the "
            "loss changes."
        )
