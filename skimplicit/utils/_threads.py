"""Folds on threads: a thread map that keeps the caller's context, and warning capture
that stays right when the folds' solvers run on several threads at once.

``warnings.catch_warnings`` changes process-wide state: two threads capturing at once
lose or swap each other's warnings (a fold's ``ConvergenceWarning`` reported by another
fold, or by none). Inside :func:`map_threads` each worker's :func:`capture_warnings`
collects what its own thread raised, through one hook that :func:`map_threads` installs
(from the calling thread) for the duration of the map.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

from joblib import effective_n_jobs

__all__ = ["capture_warnings", "map_threads"]

_LOCAL = threading.local()


@contextlib.contextmanager
def capture_warnings():
    """The warnings raised in this block by this thread, as a list of
    ``warnings.WarningMessage`` (every category, ``"always"``; none is shown), as
    ``warnings.catch_warnings(record=True)`` with ``simplefilter("always")`` would give,
    but right on the workers of :func:`map_threads` too."""
    if getattr(_LOCAL, "routed", False):
        caught, previous = [], getattr(_LOCAL, "sink", None)
        _LOCAL.sink = caught
        try:
            yield caught
        finally:
            _LOCAL.sink = previous
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def map_threads(fn, items, n_jobs=None):
    """``[fn(x) for x in items]`` on up to ``n_jobs`` threads (joblib's meaning: ``None``
    one, ``-1`` all cores), in order; each call sees the caller's context variables (a
    deadline, for instance) and its warnings reach :func:`capture_warnings` of its own
    thread. Worth it when ``fn`` spends its time in compiled code that releases the GIL
    (scikit-learn's coordinate descent, BLAS). An exception is raised here, the first
    item's first."""
    items = list(items)
    jobs = min(effective_n_jobs(n_jobs), len(items))
    if jobs <= 1:
        return [fn(x) for x in items]

    def run(x):
        _LOCAL.routed = True
        try:
            return fn(x)
        finally:
            _LOCAL.routed = False

    def route(message, category, filename, lineno, file=None, line=None):
        sink = getattr(_LOCAL, "sink", None)
        if sink is None:  # not inside a capture: shown as it would have been
            return shown(message, category, filename, lineno, file, line)
        sink.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
        return None

    with warnings.catch_warnings():
        shown = warnings.showwarning
        warnings.simplefilter("always")
        warnings.showwarning = route
        with ThreadPoolExecutor(jobs, thread_name_prefix="skimplicit-fold") as pool:
            futures = [pool.submit(contextvars.copy_context().run, run, x) for x in items]
            return [f.result() for f in futures]
