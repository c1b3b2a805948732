"""Where a tuning runs: the host (NumPy / SciPy solvers) or a JAX device.

Every tuner has ``backend="auto" | "host" | "jax"``: ``"auto"`` runs the host solvers
when JAX's default backend is the CPU and the JAX path on a GPU or TPU; ``"jax"`` forces
the JAX path (on the CPU too: what the equality tests run). On the JAX path the folds are
moved to the default device once per fit, in float32 when ``X`` is float32 (or
``dtype=np.float32`` is asked for), else float64.
"""

from __future__ import annotations

import contextlib
import contextvars

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

__all__ = ["BACKENDS", "backend_context", "device_dtype", "resolve_backend", "to_device"]

BACKENDS = ("auto", "host", "jax")

_BACKEND = contextvars.ContextVar("skimplicit_backend", default="auto")


@contextlib.contextmanager
def backend_context(backend):
    """Within it, ``"auto"`` (a final step's, or a problem builder's) means ``backend``:
    how ``HypergradSearchCV(backend=...)`` reaches the problems of its final step.

    Examples
    --------
    >>> from skimplicit.tuning import backend_context, resolve_backend
    >>> with backend_context("jax"):
    ...     resolve_backend("auto"), resolve_backend("host")
    ('jax', 'host')
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
    token = _BACKEND.set(backend)
    try:
        yield
    finally:
        _BACKEND.reset(token)


def resolve_backend(backend="auto"):
    """``"host"`` or ``"jax"`` for a tuner's ``backend`` parameter (``"auto"``: the
    enclosing :func:`backend_context`'s, else by JAX's default backend).

    Examples
    --------
    >>> from skimplicit.tuning import resolve_backend
    >>> resolve_backend("host"), resolve_backend("jax")
    ('host', 'jax')
    >>> resolve_backend("auto") == ("host" if jax.default_backend() == "cpu" else "jax")
    True
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
    if backend == "auto":
        backend = _BACKEND.get()
    if backend == "auto":
        return "host" if jax.default_backend() == "cpu" else "jax"
    return backend


def device_dtype(X):
    """float32 for a float32 ``X``, else float64 (the JAX path's working precision).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.tuning import device_dtype
    >>> device_dtype(np.ones(2, np.float32)), device_dtype(np.ones(2))
    (dtype('float32'), dtype('float64'))
    """
    return np.dtype(np.float32) if getattr(X, "dtype", None) == np.float32 else \
        np.dtype(np.float64)


def pad_rows(a, rows):
    """``a`` (a JAX array) zero-padded along its first axis to ``rows`` (folds stacked on
    the device: padded rows carry zero weight)."""
    return jnp.pad(a, [(0, rows - a.shape[0])] + [(0, 0)] * (a.ndim - 1))


def to_device(a, dtype):
    """``a`` (NumPy, SciPy sparse or JAX) as a dense JAX array of ``dtype`` on the default
    device. Call inside ``jax.enable_x64(True)`` for float64.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from skimplicit.tuning import to_device
    >>> with jax.enable_x64(True):
    ...     a = to_device(np.arange(3.0), np.float64)
    >>> type(a).__name__, a.dtype
    ('ArrayImpl', dtype('float64'))
    """
    if sp.issparse(a):
        a = a.toarray()
    return jax.device_put(np.asarray(a, dtype) if not isinstance(a, jax.Array)
                          else a.astype(dtype))
