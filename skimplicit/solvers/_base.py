"""Shared pieces of the inner solvers: the status record and small array helpers.

Internally every solver works on *2-D* parameters: coefficients ``W`` of shape
``(n_features, n_outputs)``, an intercept ``b`` of shape ``(n_outputs,)``, a linear
predictor ``Z = X @ W + b`` of shape ``(n_samples, n_outputs)`` and targets ``Y`` of the same
shape (``n_outputs = 1`` for least squares and binary logistic regression, ``n_classes``
for the multinomial loss). The public functions of :mod:`skimplicit.solvers` convert to and
from scikit-learn's layouts (``coef_`` of shape ``(n_features,)`` or
``(n_classes, n_features)``) at their boundary.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["SolverInfo"]


class SolverInfo(NamedTuple):
    """Status of an inner solve (a pytree of arrays: it survives ``jit``, ``vmap``, ``scan``).

    Attributes
    ----------
    n_iter : int array
        Outer iterations: full-gradient checks of the working-set solver, iterations of
        FISTA, Newton iterations, 1 for a direct solve.
    n_inner : int array
        Inner work: coordinate-descent epochs (working-set solver), conjugate-gradient
        iterations (Newton-CG, CG ridge), 0 otherwise.
    converged : bool array
        Whether ``stop_crit <= threshold`` (and everything is finite).
    stop_crit : float array
        The stopping criterion at the returned point. Least squares with an L1 or
        elastic-net penalty: the duality gap of scikit-learn's ``ElasticNet`` (formulation
        A, or B for a pure L2 penalty), in the scaling of the objective (divided by
        ``sum(sample_weight)``). Logistic regression: the largest violation of the
        optimality conditions, ``max_j dist(-grad_j f, subdiff_j g)``, intercept included,
        in the scale of the *mean* loss (divided by ``sum(sample_weight)``; this is
        scikit-learn's ``lbfgs`` ``gtol`` meaning of ``tol``). Direct ridge solve: relative
        residual of the normal equations.
    threshold : float array
        What ``stop_crit`` was compared with: ``tol * sum_i v_i (y_i - ybar)^2`` for least
        squares (scikit-learn's ``tol * ||y_centered||^2 / n_samples``), ``tol`` otherwise.
    saturated : bool array
        Working-set solver only: the support outgrew half of the working-set size, so the
        solver fell back to block-greedy coordinate descent (still convergent, slower);
        :func:`~skimplicit.solvers.solve` then retries with a larger working set.
    """

    n_iter: Any
    n_inner: Any
    converged: Any
    stop_crit: Any
    threshold: Any
    saturated: Any


def float_dtype(*arrays):
    """Result floating dtype of ``arrays`` (float32 if none is floating)."""
    dt = jnp.result_type(*[a for a in arrays if a is not None])
    if not jnp.issubdtype(dt, jnp.floating):
        dt = jnp.result_type(float)
    return dt


def soft_threshold(x, t):
    """``sign(x) * max(|x| - t, 0)``."""
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0)


def violation(W, G, l1, l2):
    """Elementwise distance of ``-grad`` to the subdifferential of ``l1|w| + l2/2 w^2``.

    ``G`` is the gradient of the smooth (data-fit) part. For ``w != 0`` the violation is
    ``|G + l2 w + l1 sign(w)|``, for ``w == 0`` it is ``max(|G| - l1, 0)``.
    """
    g = G + l2 * W
    return jnp.where(W != 0, jnp.abs(g + l1 * jnp.sign(W)), jnp.maximum(jnp.abs(g) - l1, 0))


def select_top(score, size):
    """Indices of the (at most) ``size`` largest positive entries of ``score``.

    One sort of integer keys (the score's IEEE bit pattern, which is monotonic for
    nonnegative floats, with the index packed into the low bits; scores are compared to
    a relative precision of about ``2^-(mantissa - log2 p)``, ties broken by index). An
    integer sort is ~7x faster than :func:`jax.lax.top_k` or a float argsort on a CPU
    (0.18 ms vs 1.2 ms for 5000 entries), compiles fast and is ``vmap``-friendly.

    Returns ``(idx, n)``: ``idx`` of static shape ``(size,)`` holds the selected indices by
    decreasing score; entries ``>= n`` are padding set to ``len(score)`` (an out-of-range
    index: gathers must use ``mode='fill'``, scatters ``mode='drop'``).
    """
    p = score.shape[0]
    score = jnp.maximum(score, 0)
    bits = jnp.finfo(score.dtype).bits
    itype = jnp.int64 if bits == 64 else jnp.int32
    idx_bits = max(int(p).bit_length(), 1)
    q = jax.lax.bitcast_convert_type(score, itype) >> idx_bits
    q = jnp.where(score > 0, jnp.maximum(q, 1), 0)  # positive scores sort before zeros
    q_max = jnp.asarray((2 ** (bits - 1) - 1) >> idx_bits, itype)
    keys = ((q_max - q) << idx_bits) | jnp.arange(p, dtype=itype)
    keys = jax.lax.sort(keys)[:size]
    idx = (keys & ((1 << idx_bits) - 1)).astype(jnp.int32)
    if size > p:  # capacity beyond the number of features: padding
        idx = jnp.concatenate([idx, jnp.full((size - p,), p, jnp.int32)])
    n = jnp.minimum(jnp.sum(score > 0), size)
    idx = jnp.where(jnp.arange(size) < n, idx, p)
    return idx, n


def bucket(m, cap):
    """Smallest power of two ``>= m`` (at least 16), at most ``cap``."""
    b = 16
    while b < m:
        b *= 2
    return int(min(b, cap))


def is_traced(*trees) -> bool:
    """Whether any leaf is a tracer (inside ``jit``, ``vmap``, ``grad``...)."""
    leaves = jax.tree_util.tree_leaves(trees)
    return any(isinstance(x, jax.core.Tracer) for x in leaves)
