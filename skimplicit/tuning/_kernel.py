"""Compiled hypergradient kernels: the pieces every tunable problem shares.

:class:`Kernel` jits a batched (vmapped over folds) kernel so that it compiles fast on
CPU and can compile ahead in the background; :func:`bucket` and :func:`pad_stack` keep
the number of compiled shapes small (padding is exact when padded rows carry zero weight
and padded coordinates a zero coefficient); :func:`solve_with_fallback` retries the
folds whose linear system was singular with a small ridge and says so.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from ..implicit import LinearSolveWarning

__all__ = ["FALLBACK_RIDGE", "Kernel", "aligned_zeros", "bucket", "pad_stack",
           "solve_with_fallback", "t_matmul"]


def bucket(k, minimum=16, per_octave=1):
    """Smallest ``minimum * 2**j`` (or also ``1.5 * minimum * 2**j`` with ``per_octave=2``)
    that holds ``k``: few shapes, few compilations; two per octave pad by 50 % at most."""
    b = minimum
    while b < k:
        if per_octave == 2 and 3 * b // 2 >= k:
            return 3 * b // 2
        b *= 2
    return b


def pad_stack(arrays, shape):
    """Stack ``arrays`` along a new leading axis, each zero-padded to ``shape``; in a
    64-byte aligned buffer (:func:`aligned_zeros`), which a kernel call reads in place on
    the CPU instead of copying it (5 folds of 1600 x 1024: 32 ms a call)."""
    out = aligned_zeros((len(arrays),) + tuple(shape))
    for i, a in enumerate(arrays):
        out[(i,) + tuple(slice(0, s) for s in np.shape(a))] = a
    return out


_ALIGN = 64  # (bytes)


def aligned_zeros(shape):
    """A zeroed float64 NumPy array whose data starts on a 64-byte boundary (NumPy's own
    start on 16), which ``jax.device_put`` hands to the CPU runtime in place instead of
    copying it. For a kernel's largest constant input: its copy and the original were
    both alive during the kernel's first call (the logistic rows kernel's ``X`` at
    2000 x 5000, 2048 x 5120 padded: 84 MB more at that point).

    Examples
    --------
    >>> import jax, numpy as np
    >>> a = aligned_zeros((3, 4)); a[1] = 2.0
    >>> a.ctypes.data % 64, float(a.sum())
    (0, 8.0)
    >>> with jax.enable_x64(True):
    ...     d = jax.device_put(a)
    >>> bool(np.shares_memory(np.asarray(d), a)) == (jax.default_backend() == "cpu")
    True
    """
    size = int(np.prod(shape)) * 8
    raw = np.zeros(size + _ALIGN, np.uint8)
    start = (-raw.ctypes.data) % _ALIGN
    return raw[start:start + size].view(np.float64).reshape(shape)


def t_matmul(X, R):
    """``X^T R`` for a dense ``X (n, k)`` as one ``dot_general`` contracting the rows:
    ``X.T @ R`` made XLA copy ``X``'s transpose (an ``n x k`` temporary, batched over
    the folds inside ``vmap``: at 20000 x 200 most of the logistic kernel's 47 MB of
    temporaries). Other operands (sparse ``X``): ``X.T @ R``."""
    if not isinstance(X, jax.Array):  # (tracers are jax.Arrays; BCOO matrices are not)
        return X.T @ R
    return jax.lax.dot_general(X, R, (((0,), (0,)), ((), ())))


FALLBACK_RIDGE = 1e-10
"""Relative ridge of a hypergradient system that failed its residual check (singular)."""


def solve_with_fallback(kernel, args, kwargs, n_folds, what="linear system",
                        max_residual=None):
    """``kernel(*args, ridge, **kwargs)`` without ridge; again, with
    :data:`FALLBACK_RIDGE` on the failed folds only, when a fold's solve fails (a
    singular system: a vanishing Cholesky pivot, or a failed residual check), reported
    by a ``LinearSolveWarning``.

    The kernel returns ``(..., success, residual)``. With ``max_residual``, a fold fails
    only when its residual exceeds it (a solve asked for a tighter tolerance than it must
    meet), and ``success`` is that test. Returns the outputs as NumPy arrays followed by
    the relative ridge used on each fold (a list, zeros when none was needed): callers
    put it in ``Evaluation.info["ridge"]``.
    """

    def run(ridge):
        out = [np.asarray(o) for o in kernel(*args, ridge, **kwargs)]
        if max_residual is not None:
            out[-2] = out[-1] <= max_residual  # (False when NaN)
        return out

    ridge = np.zeros(n_folds)
    with jax.enable_x64(True):
        with warnings.catch_warnings():
            # A failed solve is retried below and reported there (once, with its cause).
            warnings.simplefilter("ignore", LinearSolveWarning)
            out = run(ridge)
        failed = ~out[-2]
        if failed.any():
            ridge = np.where(failed, FALLBACK_RIDGE, 0.0)
            out2 = run(ridge)
            out = [np.where(failed.reshape((-1,) + (1,) * (a.ndim - 1)), b, a)
                   for a, b in zip(out, out2)]
            warnings.warn(
                f"The hypergradient's {what} is singular on fold(s) "
                f"{np.flatnonzero(failed).tolist()} (a vanishing pivot, or a failed residual "
                f"check): "
                f"solved with a ridge of {FALLBACK_RIDGE:g} x its mean diagonal, relative "
                f"residual now {float(np.max(out[-1][failed])):.3g}. The hypergradient is "
                "approximate (e.g. duplicated or collinear active features).",
                LinearSolveWarning, stacklevel=3)
    return (*out, ridge.tolist())


# On CPU, compilation is most of a small fit's time: XLA's backend optimizations and its
# fusion emitters cost 4x the compile time for no faster kernel here (5 folds of 400 x 512:
# compile 0.8 s -> 0.2 s; the call 0.06 s either way).
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


_EXECUTOR = []


def _executor():
    if not _EXECUTOR:
        from concurrent.futures import ThreadPoolExecutor

        _EXECUTOR.append(ThreadPoolExecutor(1, thread_name_prefix="skimplicit-compile"))
    return _EXECUTOR[0]


def _struct(a):
    # (not ``getattr(a, "dtype", np.result_type(a))``: the default is evaluated eagerly, and
    # ``np.result_type`` of a JAX array raises JAX's DeprecationWarning)
    dtype = a.dtype if hasattr(a, "dtype") else np.result_type(a)
    return jax.ShapeDtypeStruct(np.shape(a), np.dtype(dtype))


def _signature(args, kwargs):
    """Hashable shapes, dtypes and tree structure of ``args`` (pytrees), and the static
    ``kwargs``."""
    leaves, tree = jax.tree_util.tree_flatten(args)
    return (str(tree), tuple((np.shape(a), _struct(a).dtype.str) for a in leaves),
            tuple(sorted(kwargs.items())))


class Kernel:
    """A jitted kernel that compiles fast on CPU and can compile ahead, in the background.

    * Calls go through ``jax.jit(fun, compiler_options=_FAST_COMPILE)`` on CPU (plain
      ``jax.jit`` elsewhere, or when this XLA rejects the options).
    * :meth:`prefetch` traces and lowers for given shapes, then compiles in a background
      thread; a later call with those shapes uses that executable. The tuners call it
      before their coarse path (host work, one BLAS thread) runs, so that the first
      hypergradient does not wait for XLA: on 2 cores its compilation is hidden.
    """

    def __init__(self, fun, static_argnames=()):
        self.__wrapped__ = fun
        self.__doc__ = fun.__doc__
        self._plain = jax.jit(fun, static_argnames=static_argnames)
        self._fast = jax.jit(fun, static_argnames=static_argnames,
                             compiler_options=_FAST_COMPILE)
        self._use_fast = True
        self._ahead = {}

    def _jitted(self):
        return self._fast if self._use_fast and jax.default_backend() == "cpu" else self._plain

    def _with_fallback(self, action):
        """``action(jitted)``; again with the plain jit when this XLA rejects the options."""
        try:
            return action(self._jitted())
        except Exception as exc:
            if not (self._use_fast and "compile option" in str(exc)):
                raise
            self._use_fast = False
            return action(self._plain)

    def __call__(self, *args, **kwargs):
        future = self._ahead.get(_signature(args, kwargs)) if self._ahead else None
        if future is not None:
            try:
                return future.result()(*args)
            except Exception:  # noqa: BLE001 - compile again below, errors surface there
                pass
        return self._with_fallback(lambda jitted: jitted(*args, **kwargs))

    def prefetch(self, *args, **kwargs):
        """Trace and lower for the shapes and dtypes of ``args`` (arrays or
        ``jax.ShapeDtypeStruct`` objects, with the caller's x64 setting), compile in a background
        thread. Returns once the compilation is submitted."""
        key = _signature(args, kwargs)
        if key in self._ahead or len(self._ahead) >= 32:
            return
        self._cancel_pending()  # only the latest request waits its turn
        structs = jax.tree_util.tree_map(_struct, args)
        # Tracing and lowering are Python: here (a thread holding the GIL would slow the
        # caller's Python as much); XLA's compilation releases it: in the background.
        lowered = self._with_fallback(lambda jitted: jitted.lower(*structs, **kwargs))
        self._ahead[key] = _executor().submit(lowered.compile)

    def prefetch_all(self, arg_sets, supersede=False, **kwargs):
        """:meth:`prefetch` for each tuple of ``arg_sets`` (``jax.ShapeDtypeStruct``
        objects, with the caller's x64 setting), tracing included, all in the background
        thread, in order; none cancels another. For shapes a problem will likely meet
        (its bucketed sizes) while its host work runs, which on 2 cores is mostly in
        compiled code that releases the GIL. ``supersede``: first cancel the requests
        for other shapes not started yet (a guess that replaces the previous ones; a
        queued request for a shape asked for again keeps its place)."""
        if supersede:
            self._cancel_pending(keep={_signature(a, kwargs) for a in arg_sets})
        x64 = jax.dtypes.canonicalize_dtype(np.float64) == np.float64

        def compile_for(structs):
            with jax.enable_x64(x64):
                lowered = self._with_fallback(lambda jitted: jitted.lower(*structs, **kwargs))
            return lowered.compile()

        for args in arg_sets:
            key = _signature(args, kwargs)
            if key in self._ahead or len(self._ahead) >= 32:
                continue
            self._ahead[key] = _executor().submit(compile_for, args)

    def _cancel_pending(self, keep=()):
        """Drop the compilations requested ahead that have not started yet (but those of
        the signatures in ``keep``)."""
        for k, fut in list(self._ahead.items()):
            if k not in keep and fut.cancel():
                del self._ahead[k]

    def _cache_size(self):
        """Compilations so far (calls and prefetches)."""
        return self._fast._cache_size() + self._plain._cache_size() + len(self._ahead)
