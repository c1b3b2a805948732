r"""Batched elastic-net least squares on an accelerator, in sufficient statistics.

K training folds, each centered and weighted (the intercept eliminated), are held on the
device either as their Gram matrices ``G_k = X_k^T S_k X_k / n_k`` (``gram=True``, when
``p <= n``: a product costs ``p^2``) or as their scaled designs ``A_k = S_k^{1/2} X_k /
sqrt(n_k)`` (``gram=False``, ``p > n``: two products of ``n p``), with ``c_k = X_k^T S_k
y_k / n_k`` and ``yy_k = y_k^T S_k y_k / n_k``. Every fold's problem is then

``min_w 1/2 w^T G w - c^T w + 1/2 yy + sum_j l1_j |w_j| + sum_j l2_j / 2 w_j^2``

(scikit-learn's ``ElasticNet`` objective: ``l1 = alpha l1_ratio``, ``l2 = alpha (1 -
l1_ratio)``), solved for all folds in lock step by FISTA with adaptive restart: each
iteration is one batched matrix product, the shape accelerators like. It stops at
scikit-learn's duality gap, ``gap <= tol yy``. The estimators' JAX path
(``backend="jax"``) runs it; :func:`quadratic_fista` is jittable and differentiable-free
(the hypergradient is implicit, see :mod:`skimplicit.linear_model._device`).

The stopping threshold is ``tol * min(yy, P(w))`` with ``P`` the primal objective: at
least as strict as scikit-learn's ``tol * yy``, and relative to the objective where it is
much smaller than ``yy`` (``p > n``, a near-perfect training fit), where scikit-learn's
threshold let a solution of a 1.8 times larger ``alpha`` pass as converged (its
validation loss 8 % off), a warm start that coordinate descent's full sweeps move but
FISTA's stopping test does not.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ._base import SolverInfo, soft_threshold

__all__ = ["fold_matvec", "fold_lipschitz", "enet_gap", "quadratic_fista"]


def fold_matvec(A, V, gram):
    """``G_k V_k`` for every fold: ``A (K, p, p)`` Gram matrices or ``(K, n, p)`` factors,
    ``V (K, p)`` or ``(K, B, p)`` (``B`` problems a fold: one matrix product with
    ``A_k``, about the memory traffic of one).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import fold_matvec
    >>> A = np.arange(12.0).reshape(1, 4, 3)          # one fold's factor, n = 4, p = 3
    >>> v = np.ones((1, 3))
    >>> np.allclose(fold_matvec(A, v, gram=False), (A[0].T @ A[0] @ v[0])[None])
    True
    """
    if gram:
        return jnp.einsum("kij,k...j->k...i", A, V)
    return jnp.einsum("kni,k...n->k...i", A, jnp.einsum("knj,k...j->k...n", A, V))


def fold_lipschitz(A, gram, n_power=50):
    """Largest eigenvalue of each ``G_k`` (power iteration, times 1.02): ``(K,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import fold_lipschitz
    >>> G = np.diag([1.0, 3.0])[None]
    >>> round(float(fold_lipschitz(G, gram=True)[0]), 2)
    3.06
    """
    K, p = A.shape[0], A.shape[-1]
    v0 = jnp.ones((K, p), A.dtype) / jnp.sqrt(p)

    def step(v, _):
        u = fold_matvec(A, v, gram)
        return u / jnp.maximum(jnp.linalg.norm(u, axis=1, keepdims=True), 1e-30), None

    v, _ = jax.lax.scan(step, v0, None, length=n_power)
    return 1.02 * jnp.sum(v * fold_matvec(A, v, gram), axis=1)


def enet_gap(W, GW, c, yy, l1, l2, positive=False):
    """scikit-learn's elastic-net duality gap of each problem (``W``, ``GW = G W``, ``c``,
    ``l1``, ``l2``: ``(..., p)``; ``yy``: ``(...)``), in the objective's scaling, and the
    primal objective: ``(gap, primal)``, each ``(...)``.

    Examples
    --------
    At the solution of ``min 1/2 w^2 - w + |w|`` (``w = 0``) the gap is 0:

    >>> import numpy as np
    >>> from skimplicit.solvers import enet_gap
    >>> one = np.ones((1, 1))
    >>> gap, primal = enet_gap(0 * one, 0 * one, one, np.ones(1), one, 0 * one)
    >>> float(gap[0]), float(primal[0])
    (0.0, 0.5)
    """
    XtR = c - GW
    R2 = jnp.maximum(yy - 2 * jnp.sum(c * W, -1) + jnp.sum(W * GW, -1), 0.0)
    Rty = yy - jnp.sum(c * W, -1)
    dual = XtR - l2 * W
    dual = jnp.maximum(dual, 0.0) if positive else jnp.abs(dual)
    dual_norm = jnp.max(dual / jnp.maximum(l1, jnp.finfo(W.dtype).tiny), axis=-1)
    const = 1.0 / jnp.maximum(dual_norm, 1.0)
    l1_norm, l2_norm = jnp.sum(l1 * jnp.abs(W), -1), jnp.sum(l2 * W * W, -1)
    gap = 0.5 * R2 * (1 + const ** 2) + l1_norm - const * Rty + 0.5 * (1 + const ** 2) * l2_norm
    return gap, 0.5 * R2 + l1_norm + 0.5 * l2_norm


@partial(jax.jit, static_argnames=("gram", "positive", "check_every"))
def quadratic_fista(A, c, yy, L, l1, l2, W0, tol, max_iter, *, gram, positive=False,
                    check_every=10):
    """Solve the K folds' elastic nets (module docstring) from ``W0 (K, p)``.

    Parameters
    ----------
    A : array of shape (K, p, p) or (K, n, p)
        Gram matrices (``gram=True``) or scaled centered designs.
    c, yy : arrays of shape (K, p) and (K,)
    L : array of shape (K,)
        Upper bounds of the largest eigenvalues of the ``G_k`` (:func:`fold_lipschitz`).
    l1, l2 : arrays of shape (K, p) or (K, B, p)
        Per-coordinate penalties (``B`` problems a fold, e.g. a cover of penalties).
    W0 : array of shape (K, p) or (K, B, p)
        Warm start.
    tol : float
        Stop a fold when its duality gap is ``<= tol * min(yy, primal objective)``.
    max_iter : int
        Iterations (rounded up to a multiple of ``check_every``).

    Returns
    -------
    W : array of shape (K, p) or (K, B, p)
    info : SolverInfo with arrays of shape (K,) or (K, B)

    Examples
    --------
    scikit-learn's ``ElasticNet`` on two folds of one data set:

    >>> import jax, numpy as np
    >>> from sklearn.linear_model import ElasticNet
    >>> from skimplicit.solvers import fold_lipschitz, quadratic_fista
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(80, 6); y = X[:, 0] - X[:, 1] + 0.1 * rng.randn(80)
    >>> parts = [(X[:40], y[:40]), (X[40:], y[40:])]
    >>> with jax.enable_x64(True):
    ...     Xc = [x - x.mean(0) for x, _ in parts]; yc = [t - t.mean() for _, t in parts]
    ...     G = np.stack([x.T @ x / 40 for x in Xc]); c = np.stack([x.T @ t / 40 for x, t in zip(Xc, yc)])
    ...     yy = np.array([t @ t / 40 for t in yc])
    ...     l1, l2 = np.full((2, 6), 0.05), np.full((2, 6), 0.05)
    ...     W, info = quadratic_fista(G, c, yy, fold_lipschitz(G, True), l1, l2,
    ...                               np.zeros((2, 6)), 1e-10, 10000, gram=True)
    >>> ref = ElasticNet(alpha=0.1, l1_ratio=0.5, tol=1e-10).fit(*parts[1])
    >>> bool(np.allclose(W[1], ref.coef_, atol=1e-6)), info.converged.tolist()
    (True, [True, True])
    """
    if W0.ndim == 3:  # B problems a fold: c, yy, L broadcast over them
        c, yy, L = c[:, None], yy[:, None], L[:, None]
    step = 1.0 / (L + jnp.max(l2, axis=-1))

    def prox(V, G_V, t):
        Z = V - t[..., None] * (G_V - c + l2 * V)
        Z = soft_threshold(Z, t[..., None] * l1)
        return jnp.maximum(Z, 0.0) if positive else Z

    def iteration(_, s):
        W, Y, tk, done = s
        W_new = prox(Y, fold_matvec(A, Y, gram), step)
        restart = jnp.sum((Y - W_new) * (W_new - W), axis=-1) > 0
        t_new = jnp.where(restart, 1.0, 0.5 * (1 + jnp.sqrt(1 + 4 * tk * tk)))
        mom = jnp.where(restart, 0.0, (tk - 1) / t_new)
        Y_new = W_new + mom[..., None] * (W_new - W)
        keep = done[..., None]
        return (jnp.where(keep, W, W_new), jnp.where(keep, Y, Y_new),
                jnp.where(done, tk, t_new), done)

    def gap_of(W):
        """``(gap, threshold)``."""
        gap, primal = enet_gap(W, fold_matvec(A, W, gram), c, yy, l1, l2, positive)
        return gap, tol * jnp.minimum(yy, primal)

    def body(state):
        W, Y, tk, it, (gap, threshold) = state
        W, Y, tk, _ = jax.lax.fori_loop(0, check_every, iteration,
                                        (W, Y, tk, gap <= threshold))
        return W, Y, tk, it + check_every, gap_of(W)

    def cond(state):
        _, _, _, it, (gap, threshold) = state
        return (it < max_iter) & jnp.any(~(gap <= threshold))

    shape = W0.shape[:-1]
    ones = jnp.ones(shape, W0.dtype)
    W, _, _, it, (gap, threshold) = jax.lax.while_loop(
        cond, body, (W0, W0, ones, jnp.asarray(0, jnp.int32), gap_of(W0)))
    converged = (gap <= threshold) & jnp.all(jnp.isfinite(W), axis=-1)
    zeros = jnp.zeros(shape, jnp.int32)
    return W, SolverInfo(n_iter=zeros + it, n_inner=zeros, converged=converged,
                         stop_crit=gap, threshold=threshold,
                         saturated=jnp.zeros(shape, bool))
