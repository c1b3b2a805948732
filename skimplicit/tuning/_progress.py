"""What a user sees while :func:`~skimplicit.model_selection.tune` runs.

:class:`Progress` is handed to the outer loop's recorder. It

* writes a header (what is tuned, in the user's names, the folds, the budget) before the
  first evaluation, one line per evaluation (search point, CV loss, projected
  hypergradient, progress against ``max_outer_iter`` and ``max_time``) and a summary line
  (best point, CV loss, stop reason); ``verbose >= 2`` adds the inner solver's detail
  (``Evaluation.info``);
* prints them to stdout when ``verbose > 0`` (as scikit-learn does) and sends the same
  records to the ``logging.getLogger("skimplicit")`` logger (INFO; the inner detail at
  DEBUG) whatever ``verbose`` is, for users who route logging;
* holds the time budget within an evaluation: while a problem evaluates, :func:`check_time`
  (called by inner solvers between folds or rounds) raises :class:`TimeUp` once
  ``max_time`` has passed and a finite loss is already known;
* lets :func:`skimplicit.inspection.check_hypergradient` capture the problem an estimator
  builds (:func:`capture_problem`), so that it is rebuilt exactly as ``fit`` builds it.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time

import numpy as np

__all__ = ["Progress", "TimeUp", "check_time", "capture_problem", "logger"]

logger = logging.getLogger("skimplicit")

# The deadline (perf_counter seconds) of the evaluation running now, if any.
_DEADLINE = contextvars.ContextVar("skimplicit_deadline", default=None)
# Set by capture_problem: tune() hands its problem over instead of running.
_CAPTURE = contextvars.ContextVar("skimplicit_capture", default=False)


class TimeUp(BaseException):
    """``max_time`` ran out inside an evaluation (a BaseException, as KeyboardInterrupt:
    the problems' ``except Exception`` handlers, e.g. ``error_score``, let it through)."""


class _Captured(BaseException):
    def __init__(self, problem):
        super().__init__("problem captured")
        self.problem = problem


def check_time():
    """Raise :class:`TimeUp` when the running evaluation's deadline has passed.

    Cheap (one context-variable lookup); inner solvers call it between folds or rounds.
    """
    deadline = _DEADLINE.get()
    if deadline is not None and time.perf_counter() > deadline:
        raise TimeUp()


@contextlib.contextmanager
def capture_problem():
    """Within this block, :func:`tune` raises ``_Captured(problem)`` instead of running."""
    token = _CAPTURE.set(True)
    try:
        yield
    finally:
        _CAPTURE.reset(token)


def display_prefix(problem):
    """What the user's names of ``problem``'s hyperparameters start with (``"lasso__"``)."""
    return getattr(problem, "display_prefix", "")


def _num(v):
    v = np.asarray(v, float)
    if v.ndim == 0:
        return f"{float(v):.4g}"
    return f"[{v.size} values, mean {v.mean():.3g}]"


def _info_text(info):
    parts = []
    for k, v in info.items():
        if isinstance(v, (list, tuple, np.ndarray)) and np.size(v) and np.ndim(v) == 1:
            vals = list(np.asarray(v).ravel())
            if len(vals) > 8:
                vals = vals[:8] + ["..."]
            parts.append(f"{k}=[" + ", ".join(
                x if isinstance(x, str) else _short(x) for x in vals) + "]")
        else:
            parts.append(f"{k}={_short(v)}")
    return ", ".join(parts) if parts else "(no detail)"


def _short(v):
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.3g}"
    s = str(v)
    return s if len(s) <= 60 else s[:57] + "..."


class Progress:
    """Reports one :func:`tune` run (see the module docstring).

    Parameters
    ----------
    problem : TunableProblem
    hps : list of Hyperparameter
    verbose : int
    max_outer_iter, n_restarts : int
    max_time : float or None
    t0 : float
        ``time.perf_counter()`` at the start of the run.
    """

    def __init__(self, problem, hps, *, verbose, max_outer_iter, n_restarts, max_time, t0):
        if _CAPTURE.get():
            raise _Captured(problem)
        self.verbose = int(verbose or 0)
        self.hps = list(hps)
        self.prefix = display_prefix(problem)
        self.loss_name = getattr(problem, "loss_name", "loss")
        self.max_outer_iter, self.n_restarts = max_outer_iter, n_restarts
        self.max_time, self.t0 = max_time, t0
        self.n_records, self.best_loss = 0, np.inf
        self.header_done = False
        lo = [np.ravel(hp.search_bounds())[0::2] for hp in self.hps]
        hi = [np.ravel(hp.search_bounds())[1::2] for hp in self.hps]
        self._lo, self._hi = np.concatenate(lo), np.concatenate(hi)

    def __bool__(self):  # the recorder's ``if self.verbose`` stays meaningful
        return True

    # -- output ----------------------------------------------------------------------------
    def _emit(self, text, level=logging.INFO, min_verbose=1):
        if self.verbose >= min_verbose:
            print("[skimplicit] " + text, flush=True)
        if logger.isEnabledFor(level):
            logger.log(level, text)

    def _wanted(self, min_verbose=1, level=logging.INFO):
        return self.verbose >= min_verbose or logger.isEnabledFor(level)

    def name(self, hp):
        return self.prefix + hp.name

    def header(self, n_folds):
        what = ", ".join(
            f"{self.name(hp)}{'' if hp.size is None else f' ({hp.size} values)'} in "
            f"[{_num(np.min(hp.lower))}, {_num(np.max(hp.upper))}] ({hp.scale})"
            for hp in self.hps)
        budget = (f"{self.max_outer_iter} evaluations per start after the coarse path, "
                  f"{self.n_restarts} start{'s' if self.n_restarts > 1 else ''}")
        budget += ", no time limit" if self.max_time is None else f", max_time {self.max_time:g} s"
        self._emit(f"tuning {what} | {n_folds}-fold CV {self.loss_name} | budget: {budget}")
        self.header_done = True

    # -- the recorder's hooks ---------------------------------------------------------------
    def evaluate(self, problem, params, precision, with_grad):
        """``problem.evaluate`` under the time budget (raises :class:`TimeUp`)."""
        deadline = None
        if self.max_time is not None and np.isfinite(self.best_loss):
            deadline = self.t0 + self.max_time
        token = _DEADLINE.set(deadline)
        try:
            return problem.evaluate(params, precision=precision, with_grad=with_grad)
        finally:
            _DEADLINE.reset(token)

    def projected_grad_norm(self, rec):
        """Norm of the hypergradient in search coordinates, components pushing against a
        bound they sit on set to zero (``nan`` without a gradient)."""
        gz = np.asarray(rec.get("grad_z", ()), float)
        if rec["evaluation"].grad is None or gz.size != self._lo.size:
            return np.nan
        z = np.concatenate([hp.to_search(rec["params"][hp.name]) for hp in self.hps])
        tol = 1e-9 * np.maximum(1.0, np.abs(z))
        pinned = ((z <= self._lo + tol) & (gz > 0)) | ((z >= self._hi - tol) & (gz < 0))
        return float(np.linalg.norm(np.where(pinned, 0.0, gz)))

    def record(self, rec, n_eval):
        """One evaluation recorded (``n_eval``: its number within its start)."""
        ev = rec["evaluation"]
        self.n_records += 1
        if np.isfinite(ev.loss):
            self.best_loss = min(self.best_loss, float(ev.loss))
        rec["projected_grad_norm"] = self.projected_grad_norm(rec)
        if not self._wanted():
            return
        if not self.header_done:
            self.header(np.size(ev.fold_losses))
        shown = ", ".join(f"{self.name(hp)}={_num(rec['params'][hp.name])}" for hp in self.hps)
        g = rec["projected_grad_norm"]
        grad = "-" if not np.isfinite(g) else f"{g:.3g}"
        if rec["phase"] == "path":
            where = f"path  {n_eval:3d}"
        else:
            where = f"{rec['phase']} step {n_eval:3d}/{self.max_outer_iter}"
        elapsed = f"{rec['time']:.2f}"
        elapsed += " s" if self.max_time is None else f"/{self.max_time:g} s"
        ok = "" if ev.converged else " | inner not converged"
        self._emit(f"{where} | {shown} | cv {self.loss_name} {ev.loss:.6g} | "
                   f"|proj grad| {grad:>8s} | {elapsed}{ok}")
        if self._wanted(2, logging.DEBUG):
            self._emit(f"    inner: precision {rec['precision']:.3g}, {_info_text(ev.info)}",
                       level=logging.DEBUG, min_verbose=2)

    def summary(self, result):
        """The final line: best point, CV loss, stop reason, evaluations and time."""
        if not self._wanted():
            return
        best = ", ".join(f"{self.name(hp)}={_num(result.best_params[hp.name])}"
                         for hp in self.hps)
        n = len(result.records)
        elapsed = time.perf_counter() - self.t0
        self._emit(f"done: best {best} | cv {self.loss_name} {result.best_loss:.6g} | "
                   f"{n} evaluations ({n - result.n_iter} path, {result.n_iter} steps) in "
                   f"{elapsed:.2f} s | stop: {result.stop_reason}")
