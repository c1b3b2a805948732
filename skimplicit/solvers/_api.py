r"""Public entry points: one problem, K folds in one call, a warm-started path.

All three take scikit-learn layouts and return ``(coef, intercept, info)``:

* ``X``: ``(n_samples, n_features)``, float32 or float64 (everything runs in ``X``'s
  floating dtype; call inside ``with jax.enable_x64(True):`` for float64).
* ``y``: ``(n_samples,)`` for :class:`Quadratic` and binary :class:`Logistic` (0/1);
  one-hot ``(n_samples, n_classes)`` for the multinomial :class:`Logistic`.
* ``coef``: ``(n_features,)``, or ``(n_classes, n_features)`` (multinomial);
  ``intercept``: ``()`` or ``(n_classes,)``; ``info``: :class:`SolverInfo`.
  :func:`solve_folds` adds a leading fold axis, :func:`solve_path` a fold axis and an alpha
  axis (``(n_folds, n_alphas, ...)``).
* ``init``: ``(coef, intercept)`` warm start (for least squares only ``coef`` matters: the
  intercept is eliminated).
* ``sample_weight``: ``(n_samples,)`` nonnegative; 0/1 masks select a fold exactly.

The numerical kernels are module-level :func:`jax.jit` functions; static (compile-time)
options are the datafit, the solver configuration, ``fit_intercept`` and whether ``init`` is
given. Hyperparameters (the penalty's fields), ``tol`` and ``max_iter`` are traced: changing
them never recompiles. Every entry point works under :func:`jax.jit`, :func:`jax.vmap`
(folds, hyperparameters) and :func:`~skimplicit.implicit.custom_root`
(:func:`implicit_solve` does the wiring, with :func:`optimality`).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._blas import one_blas_thread
from ..implicit import custom_root
from ..implicit.linear_solve import solve_cg
from ._base import bucket, is_traced
from ._cd import CD, buffer_shape, cd_kernel, default_ws_cap
from ._host_cd import HostCD
from ._datafits import Logistic, Quadratic
from ._fista import FISTA, fista_kernel
from ._newton import Newton, newton_kernel
from ._penalties import L1, L2, ElasticNet
from ._ridge import Direct, ridge_kernel
from ._sklearn import SklearnCD, sklearn_kernel

__all__ = [
    "solve",
    "solve_folds",
    "solve_path",
    "solve_ridge",
    "select_solver",
    "alpha_max",
    "objective",
    "optimality",
    "implicit_solve",
]

_STATIC = ("datafit", "solver", "fit_intercept", "stop_if_saturated")


def _check_pair(datafit, penalty, solver):
    if not isinstance(datafit, (Quadratic, Logistic)):
        raise TypeError(f"datafit must be Quadratic() or Logistic(), got {datafit!r}")
    if not isinstance(penalty, (L1, L2, ElasticNet)):
        raise TypeError(f"penalty must be L1, L2 or ElasticNet, got {type(penalty)}")
    if isinstance(solver, (Newton, Direct)) and not isinstance(penalty, L2):
        raise TypeError(f"{type(solver).__name__} needs a smooth penalty (L2), got "
                        f"{type(penalty).__name__}; use CD or FISTA.")
    if isinstance(solver, Direct) and not datafit.is_quadratic:
        raise TypeError("Direct solves ridge (Quadratic + L2); use Newton for Logistic.")
    if isinstance(solver, SklearnCD) and not datafit.is_quadratic:
        raise TypeError("SklearnCD solves least squares (Quadratic) only.")
    if not isinstance(solver, (CD, FISTA, Newton, Direct, SklearnCD)):
        raise TypeError(f"unknown solver {solver!r}")


def _one(X, Y, sw, l1, l2, W0, b0, tol, max_iter, *, datafit, solver, fit_intercept):
    """One problem with a non-CD solver on internal layouts (dispatch on the type)."""
    common = dict(datafit=datafit, fit_intercept=fit_intercept)
    if isinstance(solver, FISTA):
        return fista_kernel(X, Y, sw, l1, l2, W0, b0, tol, max_iter,
                            check_every=solver.check_every, n_power=solver.n_power,
                            restart=solver.restart, **common)
    if isinstance(solver, Newton):
        return newton_kernel(X, Y, sw, l1, l2, W0, b0, tol, max_iter, max_cg=solver.max_cg,
                             **common)
    if isinstance(solver, Direct):
        return ridge_kernel(X, Y, sw, l2, W0, tol, max_iter, fit_intercept=fit_intercept,
                            max_gram_bytes=solver.max_gram_bytes)
    return sklearn_kernel(X, Y, sw, l1, l2, W0, b0, tol, max_iter, **common)


def _cd_capacity(solver, X, n_problems):
    n, p = X.shape
    ws = solver.ws_size
    if ws is None:
        ws = default_ws_cap(n, p, n_problems, jnp.dtype(X.dtype).itemsize)
    return min(int(ws), p)


def _public(W, b):
    """Internal ``W (..., p, K)``, ``b (..., K)`` -> scikit-learn layouts: ``(..., p)`` and
    ``(...)`` for one output, ``(..., K, p)`` and ``(..., K)`` for the multinomial loss."""
    if W.shape[-1] == 1:
        return W[..., 0], b[..., 0]
    # Multinomial: the intercept is defined up to a constant; return the symmetric one.
    return jnp.swapaxes(W, -1, -2), b - jnp.mean(b, axis=-1, keepdims=True)


def _batched(X, Y, SW, l1, l2, W0, b0, b0_auto, tol, max_iter, *, datafit, solver,
             fit_intercept, stop_if_saturated=False, buffer=None):
    """``F`` problems sharing ``X``: ``SW (F, n)``, ``l1``/``l2`` ``(F,)``, ``W0 (F, p, K)``,
    ``b0 (F, K)``; where ``b0_auto`` (``(F,)``) is set, a logistic intercept starts at its
    optimum for zero coefficients. CD is natively batched (see :func:`cd_kernel`;
    ``buffer`` is its reusable column storage); the other solvers are dense and batch well
    under :func:`jax.vmap` (their products with ``X`` become matrix products). The penalty
    arrives as its ``(l1, l2)`` pair, so L1, L2 and ElasticNet share one compiled program.
    """
    if fit_intercept and not datafit.is_quadratic:
        b_star = datafit.intercept0(Y, datafit.sample_scale(SW))
        b0 = jnp.where(b0_auto[:, None], b_star, b0)
    if isinstance(solver, CD):
        return cd_kernel(X, Y, SW, l1, l2, W0, b0, tol, max_iter,
                         ws_size=_cd_capacity(solver, X, SW.shape[0]), datafit=datafit,
                         fit_intercept=fit_intercept, stop_if_saturated=stop_if_saturated,
                         max_epochs=solver.max_epochs, inner_tol_ratio=solver.inner_tol_ratio,
                         buffer=buffer)
    one = functools.partial(_one, datafit=datafit, solver=solver, fit_intercept=fit_intercept)
    return jax.vmap(one, in_axes=(None, None, 0, 0, 0, 0, 0, None, None))(
        X, Y, SW, l1, l2, W0, b0, tol, max_iter)


def _kernel(X, Y, sw, l1, l2, W0, b0, b0_auto, tol, max_iter, **static):
    """One problem (a batch of one); returns ``(coef, intercept, info)``, public layouts."""
    W, b, info = _batched(X, Y, sw[None], l1[None], l2[None], W0[None], b0[None],
                          b0_auto[None], tol, max_iter, **static)
    return (*_public(W[0], b[0]), jax.tree_util.tree_map(lambda a: a[0], info))


def _folds(X, Y, SW, l1, l2, W0, b0, b0_auto, tol, max_iter, **static):
    W, b, info = _batched(X, Y, SW, l1, l2, W0, b0, b0_auto, tol, max_iter, **static)
    return (*_public(W, b), info)


_solve_jit = jax.jit(_kernel, static_argnames=_STATIC)
_folds_jit = jax.jit(_folds, static_argnames=_STATIC)


def _path(X, Y, SW, l1s, l2s, W0, b0, b0_auto, tol, max_iter, **static):
    """``scan`` over the penalties (axis 1 of ``l1s``/``l2s``), batched over problems.

    CD carries its column storage from one penalty to the next.
    """
    solver, datafit = static["solver"], static["datafit"]
    if static["fit_intercept"] and not datafit.is_quadratic:
        b0 = jnp.where(b0_auto[:, None], datafit.intercept0(Y, datafit.sample_scale(SW)), b0)
    no_auto = jnp.zeros_like(b0_auto)
    if isinstance(solver, CD):
        cap = _cd_capacity(solver, X, SW.shape[0])
        buf = jnp.zeros(buffer_shape(SW.shape[0], cap, X.shape[0]), X.dtype)

        def step(carry, l12):
            W, b, buf = carry
            W, b, info, buf = _batched(X, Y, SW, l12[0], l12[1], W, b, no_auto, tol,
                                       max_iter, buffer=buf, **static)
            return (W, b, buf), (*_public(W, b), info)

        _, out = jax.lax.scan(step, (W0, b0, buf), (l1s.T, l2s.T))
    else:

        def step(carry, l12):
            W, b = carry
            W, b, info = _batched(X, Y, SW, l12[0], l12[1], W, b, no_auto, tol, max_iter,
                                  **static)
            return (W, b), (*_public(W, b), info)

        _, out = jax.lax.scan(step, (W0, b0), (l1s.T, l2s.T))
    return jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), out)


_path_jit = jax.jit(_path, static_argnames=_STATIC)


# --------------------------------------------------------------------------------------
# Layout helpers
# --------------------------------------------------------------------------------------


def _xp(*trees):
    """:mod:`numpy` for host data (no JAX dispatch, nothing to compile), :mod:`jax.numpy`
    as soon as one leaf is a JAX array or a tracer."""
    leaves = jax.tree_util.tree_leaves(trees)
    return jnp if any(isinstance(a, (jax.Array, jax.core.Tracer)) for a in leaves) else np


def _prepare(X, y, datafit, sample_weight, batch_shape=()):
    """Validated ``X``, ``Y (n, K)`` and weights ``(*batch, n)`` in one floating dtype."""
    xp = _xp(X, y, sample_weight)
    dtype = jax.dtypes.canonicalize_dtype(np.result_type(np.dtype(X.dtype) if hasattr(
        X, "dtype") else np.asarray(X).dtype, np.float32))
    X = xp.asarray(X, dtype)
    y = xp.asarray(y)
    if datafit.is_quadratic and y.ndim != 1:
        raise ValueError("Quadratic expects a 1-D y (vmap over targets for several).")
    Y = (y[:, None] if y.ndim == 1 else y).astype(dtype)
    n = X.shape[0]
    if Y.shape[0] != n:
        raise ValueError(f"X has {n} samples, y has {Y.shape[0]}")
    if sample_weight is None:
        sw = xp.ones(batch_shape + (n,), dtype)
    else:
        sw = xp.broadcast_to(xp.asarray(sample_weight, dtype), batch_shape + (n,))
    return X, Y, sw


def _init_internal(init, p, K, dtype, batch_shape, multinomial, xp):
    """``init`` -> ``(W0 (*batch, p, K), b0 (*batch, K), b0_auto (*batch,))``.

    Without ``init``: zero coefficients, and ``b0_auto`` set so that the kernel starts the
    logistic intercept at its optimum for zero coefficients (computed inside the compiled
    program, so that cold and warm starts share it).
    """
    if init is None:
        return (xp.zeros(batch_shape + (p, K), dtype), xp.zeros(batch_shape + (K,), dtype),
                xp.ones(batch_shape, bool))
    coef, intercept = init
    xp = _xp(coef, intercept) if xp is np else xp
    coef = xp.asarray(coef, dtype)
    W = xp.swapaxes(coef, -1, -2) if multinomial else coef[..., None]
    W = xp.broadcast_to(W, batch_shape + (p, K))
    b = xp.asarray(0.0 if intercept is None else intercept, dtype)
    b = xp.broadcast_to(b[..., None] if not multinomial else b, batch_shape + (K,))
    return W, b, xp.zeros(batch_shape, bool)


def _l1_l2(penalty, dtype, shape):
    xp = _xp(penalty)
    return (xp.broadcast_to(xp.asarray(penalty.l1, dtype), shape),
            xp.broadcast_to(xp.asarray(penalty.l2, dtype), shape))


def _resolve(solver, datafit, penalty, n, p, n_problems, max_iter):
    if solver is None:
        solver = select_solver(datafit, penalty, n, p, n_problems=n_problems)
    _check_pair(datafit, penalty, solver)
    if max_iter is None:
        max_iter = solver.default_max_iter
    return solver, max_iter


def _blas_single_thread(solver, traced):
    """One BLAS thread around kernels that call LAPACK (the Cholesky of :class:`Direct`).

    jaxlib's LAPACK runs on the OpenBLAS bundled with scipy, whose own thread pool fights
    XLA's for the cores: on the 2-core CI machine a 5-fold ridge path measured 0.4 s with
    one BLAS thread and 2-36 s (erratic) with two. Only on concrete calls (a traced call
    runs later, outside this context).
    """
    return one_blas_thread(not traced and isinstance(solver, Direct))


def _grow(run, solver, X, W0, traced):
    """Run ``run(solver, stop_if_saturated, init)`` (``init=None``: the caller's start).

    For ``CD(ws_size=None)`` on concrete arrays, double the working-set capacity, warm
    started from the last result, while the support of some problem outgrows it.
    """
    if not isinstance(solver, CD) or solver.ws_size is not None or traced:
        with _blas_single_thread(solver, traced):
            out = run(solver, False, None)
            return out if traced else jax.block_until_ready(out)  # finish inside
    n, p = X.shape
    n_problems = int(np.prod(np.shape(W0)[:-2])) if np.ndim(W0) > 2 else 1
    size = default_ws_cap(n, p, n_problems, np.dtype(X.dtype).itemsize)
    nnz0 = int(np.max(np.sum(np.any(np.asarray(W0) != 0, axis=-1), axis=-1)))
    size = max(size, bucket(4 * nnz0 // 3 + 2, p))
    init = None
    while True:
        coef, intercept, info = run(dataclasses.replace(solver, ws_size=size), size < p, init)
        retry = np.asarray(info.saturated) & ~np.asarray(info.converged)
        if size >= p or not retry.any():
            return coef, intercept, info
        size = bucket(2 * size, p)
        init = (coef, intercept)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def select_solver(datafit, penalty, n_samples, n_features, n_problems=1, platform=None, *,
                  host=False):
    """The solver to use for a problem, chosen by measurement (``benchmarks/bench_solvers.py``).

    JAX solvers (``host=False``, the default):

    * ``L2`` penalty: :class:`Direct` (least squares) or :class:`Newton` (logistic).
    * ``L1`` / ``ElasticNet`` on an accelerator: :class:`FISTA` (dense batched products).
    * ``L1`` / ``ElasticNet`` on a CPU: :class:`CD` (working sets). Measured on 667 x 5000
      (2-core CPU, ``benchmarks/bench_solvers.py``): a single Lasso fit at
      ``alpha_max / 20`` took 0.57x scikit-learn's time, 5 folds x 10 alphas 0.36x its
      warm-started loop, L1 logistic regression 0.22x (single) and 0.08x (batch) of
      ``liblinear``; FISTA was 5.5x (single) and 1.1x (batch) slower than scikit-learn
      there, and :class:`SklearnCD` (the same Cython solver behind ``pure_callback``)
      1.25x. Exception: dense elastic-net solutions (``l1_ratio=0.5`` at ``alpha_max /
      20`` has 2744 nonzeros of 5000), where CD took 4.2x (single) and 3.8x (batch)
      scikit-learn's time; pass ``solver=SklearnCD()`` for those single fits.
      :class:`SklearnCD` is never chosen automatically.

    Host solvers (``host=True``, NumPy / SciPy on the CPU; what the estimators' tuning runs
    per fold, warm-started from one evaluation to the next; least squares only):

    * ``L1`` / ``ElasticNet``: :class:`HostCD` (scikit-learn's compiled coordinate
      descent) and the certified active-set polish, always on the host. By data shape
      (one fold, ``n`` rows, ``p`` features):

      * dense, ``p > 2 max(n, 100)`` (:func:`uses_working_sets`): working sets, CD on the
        support and the worst violators of the optimality conditions;
      * dense, ``n >= 2p`` and ``p <= 2048`` (:func:`uses_full_gram`): CD on the fold's
        full Gram matrix, ``O(p^2)`` a sweep, computed once per fold;
      * dense, in between, ``p >= 1000``: working sets from a sparse start (a cold one,
        or a warm start with at most ``p / 8`` nonzeros) while the support and the
        violators stay under ``p / 4``; CD on all columns otherwise;
      * sparse: CD on the sparse columns;
      * a linear system in ``k > n`` columns with an l2 term (:func:`uses_dual_ridge`):
        Woodbury's identity, one ``n x n`` factorization (the polish).
    * ``L2`` (ridge): :class:`Direct`, exact (the tuning's batched solve, in the primal
      for ``p <= n``, in the dual for ``p > n``).

    Parameters
    ----------
    datafit, penalty : objects of :mod:`skimplicit.solvers`
    n_samples, n_features, n_problems : int
        Problem size and number of problems batched together (folds x hyperparameters).
    platform : str, optional
        ``'cpu'``, ``'gpu'``, ``'tpu'``; default :func:`jax.default_backend`.
    host : bool, default=False
        The host solver of a least-squares problem (the table above); the host logistic
        solvers (:func:`solve_logistic`) choose their method from the penalty.

    Returns
    -------
    solver : CD, FISTA, Newton, Direct or HostCD

    Examples
    --------
    >>> from skimplicit.solvers import select_solver, Quadratic, L1, L2
    >>> select_solver(Quadratic(), L1(0.1), 100, 5000, platform="cpu")
    CD(ws_size=None, max_epochs=1000, inner_tol_ratio=0.1)
    >>> select_solver(Quadratic(), L1(0.1), 100, 5000, platform="gpu")
    FISTA(check_every=10, n_power=30, restart=True)
    >>> select_solver(Quadratic(), L2(1.0), 100, 5000)
    Direct(max_gram_bytes=268435456)
    >>> select_solver(Quadratic(), L1(0.1), 100, 5000, host=True)
    HostCD(max_iter=1000, precompute=False, positive=False)
    """
    del n_samples, n_features, n_problems
    if host:
        if not datafit.is_quadratic:
            raise ValueError("host=True selects least-squares solvers; the host logistic "
                             "solvers are solve_logistic / fit_logistic.")
        return Direct() if isinstance(penalty, L2) else HostCD()
    platform = jax.default_backend() if platform is None else platform
    if isinstance(penalty, L2):
        return Direct() if datafit.is_quadratic else Newton()
    if platform != "cpu":
        return FISTA()
    return CD()


def solve(X, y, datafit, penalty, solver=None, *, sample_weight=None, init=None,
          fit_intercept=True, tol=1e-4, max_iter=None):
    r"""Solve ``min_{coef, b} datafit(X coef + b) + penalty(coef)`` for one problem.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,) or (n_samples, n_classes)
        See the module docstring (1-D for least squares and binary logistic, one-hot for
        multinomial).
    datafit : Quadratic or Logistic
        Static.
    penalty : L1, L2 or ElasticNet
        Traced fields (``alpha``, ``l1_ratio``).
    solver : CD, FISTA, Newton, Direct or SklearnCD, optional
        Static. Default :func:`select_solver`.
    sample_weight : array of shape (n_samples,), optional
        Nonnegative weights (0/1 fold masks are exact).
    init : tuple (coef, intercept), optional
        Warm start.
    fit_intercept : bool, default=True
        Static. The intercept is never penalized.
    tol : float, default=1e-4
        scikit-learn's meaning: least squares stop at a duality gap ``<= tol *
        ||y - ybar||^2 / n`` (weighted); logistic at a largest optimality violation of the
        mean loss ``<= tol``. See :class:`SolverInfo`.
    max_iter : int, optional
        Outer iterations (solver-specific default: ``solver.default_max_iter``).

    Returns
    -------
    coef : array of shape (n_features,) or (n_classes, n_features)
    intercept : array of shape () or (n_classes,)
    info : SolverInfo

    Examples
    --------
    scikit-learn's ``Lasso(alpha=0.1)``:

    >>> import jax, numpy as np
    >>> from sklearn.linear_model import Lasso
    >>> from skimplicit.solvers import solve, Quadratic, L1
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(50, 20); y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.randn(50)
    >>> with jax.enable_x64(True):
    ...     coef, intercept, info = solve(X, y, Quadratic(), L1(0.1), tol=1e-10)
    >>> ref = Lasso(alpha=0.1, tol=1e-10).fit(X, y)
    >>> bool(np.allclose(coef, ref.coef_, atol=1e-8)), bool(info.converged)
    (True, True)
    """
    X, Y, sw = _prepare(X, y, datafit, sample_weight)
    n, p = X.shape
    K = Y.shape[1]
    solver, max_iter = _resolve(solver, datafit, penalty, n, p, 1, max_iter)
    xp = _xp(X, Y, sw, penalty)
    W0, b0, auto = _init_internal(init, p, K, X.dtype, (), K > 1, xp)
    l1, l2 = _l1_l2(penalty, X.dtype, ())
    traced = is_traced(X, Y, sw, l1, l2, W0, b0, tol, max_iter)

    def run(solver, stop_if_saturated, restart):
        W, b, a = (W0, b0, auto) if restart is None else _init_internal(
            restart, p, K, X.dtype, (), K > 1, jnp)
        return _solve_jit(X, Y, sw, l1, l2, W, b, a, tol, max_iter, datafit=datafit,
                          solver=solver, fit_intercept=fit_intercept,
                          stop_if_saturated=stop_if_saturated)

    return _grow(run, solver, X, W0, traced)


def solve_folds(X, y, datafit, penalty, solver=None, *, sample_weights, init=None,
                fit_intercept=True, tol=1e-4, max_iter=None):
    r"""Solve K problems sharing ``X`` and ``y`` in one vmapped call (K folds, or K weights).

    Parameters
    ----------
    X, y, datafit, solver, fit_intercept, tol, max_iter
        As in :func:`solve`.
    penalty : L1, L2 or ElasticNet
        Fields scalar (shared) or of shape ``(n_folds,)`` (one per fold, e.g. ``alpha``
        clipped below each fold's ``alpha_max``).
    sample_weights : array of shape (n_folds, n_samples)
        One weight vector per problem; a fold is a 0/1 mask of its training samples.
    init : tuple (coef, intercept), optional
        Shared, or with a leading ``n_folds`` axis.

    Returns
    -------
    coef : array of shape (n_folds, n_features) or (n_folds, n_classes, n_features)
    intercept : array of shape (n_folds,) or (n_folds, n_classes)
    info : SolverInfo with arrays of shape (n_folds,)

    Notes
    -----
    One call runs all folds in lock step (the matrix products over folds become one
    product with ``X``), until the last one converges; converged folds stop changing.
    For :class:`CD` with ``ws_size=None`` the working-set size is shared by the folds and
    grown for all when any fold's support outgrows it.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from skimplicit.solvers import solve_folds, Quadratic, L1
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(60, 30); y = X[:, 0] + 0.1 * rng.randn(60)
    >>> masks = np.ones((3, 60)); masks[0, :20] = masks[1, 20:40] = masks[2, 40:] = 0
    >>> with jax.enable_x64(True):
    ...     coef, intercept, info = solve_folds(X, y, Quadratic(), L1(0.05),
    ...                                         sample_weights=masks)
    >>> coef.shape, info.converged.tolist()
    ((3, 30), [True, True, True])
    """
    if np.ndim(sample_weights) != 2:
        raise ValueError("sample_weights must have shape (n_folds, n_samples)")
    F = np.shape(sample_weights)[0]
    X, Y, SW = _prepare(X, y, datafit, sample_weights, (F,))
    n, p = X.shape
    K = Y.shape[1]
    solver, max_iter = _resolve(solver, datafit, penalty, n, p, F, max_iter)
    xp = _xp(X, Y, SW, penalty)
    l1, l2 = _l1_l2(penalty, X.dtype, (F,))
    W0, b0, auto = _init_internal(init, p, K, X.dtype, (F,), K > 1, xp)
    traced = is_traced(X, Y, SW, l1, l2, W0, b0, tol, max_iter)

    def run(solver, stop_if_saturated, restart):
        W, b, a = (W0, b0, auto) if restart is None else _init_internal(
            restart, p, K, X.dtype, (F,), K > 1, jnp)
        return _folds_jit(X, Y, SW, l1, l2, W, b, a, tol, max_iter, datafit=datafit,
                          solver=solver, fit_intercept=fit_intercept,
                          stop_if_saturated=stop_if_saturated)

    return _grow(run, solver, X, W0, traced)


def solve_path(X, y, datafit, penalties, solver=None, *, sample_weights=None, init=None,
               fit_intercept=True, tol=1e-4, max_iter=None):
    r"""Warm-started path over a sequence of penalties, all folds at once.

    ``lax.scan`` over the penalties (each solve starts from the previous solution), inside
    ``vmap`` over the folds.

    Parameters
    ----------
    X, y, datafit, solver, fit_intercept, tol, max_iter
        As in :func:`solve`.
    penalties : L1, L2 or ElasticNet
        Fields of shape ``(n_alphas,)`` (shared by the folds) or ``(n_folds, n_alphas)``.
        Order them as the path should run (usually decreasing ``alpha``).
    sample_weights : array of shape (n_folds, n_samples), optional
        Fold masks. ``None``: a single problem (no fold axis in the outputs).
    init : tuple (coef, intercept), optional
        Warm start of the first penalty (shared, or with a leading fold axis).

    Returns
    -------
    coef : array of shape (n_folds, n_alphas, n_features) (or (n_folds, n_alphas,
        n_classes, n_features)); without ``sample_weights`` the fold axis is absent.
    intercept : array of shape (n_folds, n_alphas) (or (..., n_classes))
    info : SolverInfo with arrays of shape (n_folds, n_alphas)

    Examples
    --------
    >>> import jax, numpy as np
    >>> from skimplicit.solvers import solve_path, Quadratic, L1
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(60, 30); y = X[:, 0] + 0.1 * rng.randn(60)
    >>> with jax.enable_x64(True):
    ...     coef, _, info = solve_path(X, y, Quadratic(), L1(np.array([0.5, 0.1, 0.01])))
    >>> coef.shape, np.count_nonzero(np.asarray(coef), axis=1).tolist()
    ((3, 30), [1, 1, 11])
    """
    single = sample_weights is None
    if single:
        sample_weights = np.ones((1, np.shape(X)[0]))
    if np.ndim(sample_weights) != 2:
        raise ValueError("sample_weights must have shape (n_folds, n_samples)")
    F = np.shape(sample_weights)[0]
    X, Y, SW = _prepare(X, y, datafit, sample_weights, (F,))
    n, p = X.shape
    K = Y.shape[1]
    A = np.shape(jax.tree_util.tree_leaves(penalties)[0])[-1]
    solver, max_iter = _resolve(solver, datafit, penalties, n, p, F * A, max_iter)
    xp = _xp(X, Y, SW, penalties)
    l1s, l2s = _l1_l2(penalties, X.dtype, (F, A))
    W0, b0, auto = _init_internal(init, p, K, X.dtype, (F,), K > 1, xp)
    traced = is_traced(X, Y, SW, l1s, l2s, W0, b0, tol, max_iter)

    def run(solver, stop_if_saturated, restart):
        # A retry restarts the whole path from the original start with the larger size.
        return _path_jit(X, Y, SW, l1s, l2s, W0, b0, auto, tol, max_iter, datafit=datafit,
                         solver=solver, fit_intercept=fit_intercept,
                         stop_if_saturated=stop_if_saturated)

    coef, intercept, info = _grow(run, solver, X, W0, traced)
    if single:
        coef, intercept = coef[0], intercept[0]
        info = jax.tree_util.tree_map(lambda a: a[0], info)
    return coef, intercept, info


def solve_ridge(X, y, alpha, *, sample_weight=None, fit_intercept=True, tol=1e-4,
                max_iter=1000, max_gram_bytes=2**28):
    r"""scikit-learn's ``Ridge``: Cholesky on the smaller Gram matrix, CG beyond a budget.

    .. math::

        \min_{w, b} \sum_i s_i (y_i - x_i^\top w - b)^2 + \alpha \|w\|_2^2

    (unscaled, as scikit-learn), for each column of ``y``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,) or (n_samples, n_targets)
    alpha : float or array of shape (n_targets,)
    sample_weight : array of shape (n_samples,), optional
    fit_intercept : bool, default=True
    tol, max_iter : float, int
        Used by the CG branch (Gram larger than ``max_gram_bytes``); ``info.converged``
        always reports a relative normal-equation residual ``<= tol``.
    max_gram_bytes : int, default=2**28
        Static. See :class:`Direct`.

    Returns
    -------
    coef : array of shape (n_features,) or (n_targets, n_features)
    intercept : array of shape () or (n_targets,)
    info : SolverInfo

    Examples
    --------
    >>> import jax, numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skimplicit.solvers import solve_ridge
    >>> rng = np.random.RandomState(0); X = rng.randn(30, 50); y = rng.randn(30)
    >>> with jax.enable_x64(True):
    ...     coef, intercept, info = solve_ridge(X, y, 2.0)
    >>> bool(np.allclose(coef, Ridge(alpha=2.0).fit(X, y).coef_, atol=1e-10))
    True
    """
    X = jnp.asarray(X)
    dtype = jnp.result_type(X.dtype, jnp.float32)
    X = X.astype(dtype)
    y = jnp.asarray(y, dtype)
    Y = y[:, None] if y.ndim == 1 else y
    n = X.shape[0]
    sw = jnp.ones(n, dtype) if sample_weight is None else jnp.asarray(sample_weight, dtype)
    l2 = jnp.asarray(alpha, dtype) / jnp.sum(sw)
    traced = is_traced(X, y, sw, l2)
    with _blas_single_thread(Direct(), traced):
        out = _ridge_jit(X, Y, sw, l2, jnp.zeros((X.shape[1], Y.shape[1]), dtype), tol,
                         max_iter, fit_intercept=fit_intercept, max_gram_bytes=max_gram_bytes)
        W, b, info = out if traced else jax.block_until_ready(out)  # finish inside
    if y.ndim == 1:
        return W[:, 0], b[0], info
    return W.T, b, info


_ridge_jit = jax.jit(ridge_kernel, static_argnames=("fit_intercept", "max_gram_bytes"))


def alpha_max(X, y, datafit, l1_ratio=1.0, *, sample_weight=None, fit_intercept=True):
    r"""Smallest ``alpha`` for which ``coef = 0`` solves the L1 / elastic-net problem.

    ``max_j |grad_j f(0, b*)| / l1_ratio`` with ``b*`` the optimal intercept at
    ``coef = 0``: ``||X_c^T V (y - ybar)||_inf / l1_ratio`` for :class:`Quadratic`
    (scikit-learn's ``alpha_max`` of ``LassoCV``), ``||X^T S (y - p*)||_inf`` for
    :class:`Logistic` (so ``C_min = 1 / alpha_max``). Jit- and vmap-able (vmap over
    ``sample_weight`` for per-fold values).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import alpha_max, Quadratic
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]); y = np.array([1.0, 2.0, 4.0])
    >>> float(alpha_max(X, y, Quadratic()))   # max |X_c^T (y - ybar)| / n
    0.4444...
    """
    X, Y, sw = _prepare(X, y, datafit, sample_weight)
    return _alpha_max_jit(X, Y, sw, datafit=datafit, fit_intercept=fit_intercept) / l1_ratio


def _alpha_max(X, Y, sw, *, datafit, fit_intercept):
    v = datafit.sample_scale(sw)
    b = datafit.intercept0(Y, v) if fit_intercept else jnp.zeros((Y.shape[1],), X.dtype)
    gZ = v[:, None] * datafit.dloss(jnp.zeros_like(Y) + b, Y)
    return jnp.max(jnp.abs(gZ.T @ X))


_alpha_max_jit = jax.jit(_alpha_max, static_argnames=("datafit", "fit_intercept"))


def objective(coef, intercept, X, y, datafit, penalty, sample_weight=None):
    """``datafit.value(X, y, coef, intercept, sample_weight) + penalty.value(coef)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import objective, Quadratic, L1
    >>> X = np.eye(2); y = np.array([1.0, 3.0])
    >>> float(objective(np.array([1.0, 0.0]), 0.0, X, y, Quadratic(), L1(1.0)))
    3.25
    """
    return datafit.value(X, y, coef, intercept, sample_weight) + penalty.value(
        jnp.asarray(coef))


def optimality(datafit, fit_intercept=True):
    r"""Optimality mapping for :func:`~skimplicit.implicit.custom_root`.

    Returns ``F(params, penalty, X, y, sample_weight)`` with ``params = (coef,
    intercept)``, zero at a solution of ``datafit + penalty``:

    * ``L2`` penalty: stationarity, ``F = grad objective``.
    * ``L1`` / ``ElasticNet``: stationarity on the support (coefficients equal to 0 stay
      0, ``F_j = coef_j`` there), as
      :func:`skimplicit.implicit.optimality.support_stationary`: its Jacobian is
      symmetric positive definite, so the default linear solver is conjugate gradient.
      Valid away from kinks.
    * The intercept row is ``grad_b f`` (or ``intercept`` itself without
      ``fit_intercept``); for the multinomial loss ``grad_b f + mean(intercept)``, which
      selects the symmetric intercept (mean 0, what the solvers return) and keeps ``dF/dx``
      nonsingular.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import optimality, Quadratic, L1
    >>> F = optimality(Quadratic(), fit_intercept=False)
    >>> X = jnp.eye(2); y = jnp.array([3.0, 0.5])
    >>> F((jnp.array([2.0, 0.0]), 0.0), L1(0.5), X, y, None)[0]  # lasso solution
    Array([0., 0.], dtype=float32)
    """

    def F(params, penalty, X, y, sample_weight):
        coef, intercept = params

        def smooth(coef, intercept):
            return datafit.value(X, y, coef, intercept, sample_weight)

        if isinstance(penalty, L2):
            g_coef, g_b = jax.grad(smooth, argnums=(0, 1))(coef, intercept)
            F_coef = g_coef + penalty.grad(coef)
        else:
            # Off the support the row is the identity and the smooth gradient sees 0 there.
            mask = jax.lax.stop_gradient(coef != 0)
            g_coef, g_b = jax.grad(smooth, argnums=(0, 1))(jnp.where(mask, coef, 0),
                                                            intercept)
            F_coef = jnp.where(mask, g_coef + penalty.grad(coef), coef)
        if not fit_intercept:
            F_b = intercept
        elif jnp.ndim(intercept) == 1:
            # Multinomial: fix the gauge (adding a constant to every class intercept
            # changes nothing) with mean(b) = 0, which makes dF/dx nonsingular.
            F_b = g_b + jnp.mean(intercept)
        else:
            F_b = g_b
        return F_coef, F_b

    F.default_solve = solve_cg
    return F


def implicit_solve(X, y, datafit, penalty, solver=None, *, sample_weight=None, init=None,
                   fit_intercept=True, tol=1e-8, max_iter=None, linear_solve=None):
    r""":func:`solve`, differentiable in ``penalty``, ``X``, ``y`` and ``sample_weight``.

    The solver runs as a black box under :func:`~skimplicit.implicit.custom_root` with the
    mapping :func:`optimality`; derivatives (``grad``, ``jacfwd``, ``hessian``...) come
    from the implicit function theorem. The error of the derivative is linear in the inner
    error: keep ``tol`` tight (default 1e-8).

    Returns
    -------
    coef, intercept : arrays (as :func:`solve`)

    Examples
    --------
    d coef / d alpha of a Lasso (on the support: ``-(X_S^T X_S / n)^{-1} sign(coef_S)``):

    >>> import jax, jax.numpy as jnp, numpy as np
    >>> from skimplicit.solvers import implicit_solve, Quadratic, L1
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(50, 5); y = X @ np.array([1.0, -2.0, 0, 0, 0.5])
    >>> with jax.enable_x64(True):
    ...     def fit(alpha):
    ...         return implicit_solve(X, y, Quadratic(), L1(alpha), tol=1e-12)[0]
    ...     J = jax.jacfwd(fit)(0.1)
    ...     c = fit(0.1); S = np.flatnonzero(c)
    ...     Xc = X[:, S] - X[:, S].mean(0)
    ...     ref = -np.linalg.solve(Xc.T @ Xc / 50, np.sign(c[S]))
    >>> bool(np.allclose(J[S], ref, rtol=1e-6))
    True
    """
    F = optimality(datafit, fit_intercept)
    p = np.shape(X)[1]
    multinomial = np.ndim(y) == 2
    coef_shape = (np.shape(y)[1], p) if multinomial else (p,)
    b_shape = coef_shape[:1] if multinomial else ()
    n_coef = int(np.prod(coef_shape))

    # custom_root works on one flat vector: with a (coef, intercept) pytree, an output
    # block whose right-hand side does not depend on the differentiated arguments (the
    # intercept row when differentiating in alpha) trips jax.lax.custom_linear_solve's
    # transpose rule.
    def unflat(x):
        return x[:n_coef].reshape(coef_shape), x[n_coef:].reshape(b_shape)

    def flat(coef, b):
        return jnp.concatenate([jnp.ravel(coef), jnp.ravel(b)])

    def F_flat(x, penalty, X, y, sample_weight):
        return flat(*F(unflat(x), penalty, X, y, sample_weight))

    F_flat.default_solve = F.default_solve

    def run(init, penalty, X, y, sample_weight):
        coef, intercept, _ = solve(X, y, datafit, penalty, solver,
                                   sample_weight=sample_weight,
                                   init=None if init is None else unflat(init),
                                   fit_intercept=fit_intercept, tol=tol, max_iter=max_iter)
        return flat(coef, intercept)

    init_flat = None if init is None else flat(*init)
    x = custom_root(F_flat, solve=linear_solve)(run)(init_flat, penalty, X, y,
                                                      sample_weight)
    return unflat(x)
