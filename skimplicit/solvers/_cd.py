r"""Working-set coordinate descent (prox-Newton for non-quadratic datafits).

Solves ``min_{W, b} f(X W + b) + l1 ||W||_1 + l2/2 ||W||^2`` for the datafits of
:mod:`~skimplicit.solvers._datafits`, with work that scales with the working set, not with
``n_features``:

1. **Gradient check** (the only full pass over ``X``): ``G = X^T (v * dloss(Z))``, the
   stopping criterion (duality gap or optimality violation, see
   :class:`~skimplicit.solvers.SolverInfo`) and a score per feature, the distance of
   ``-G_j`` to the subdifferential (the optimality violation).
2. **Working set**: the ``ws_size`` (static) highest-scoring features, the current
   support always first. Selection is sort-free (bisection on a threshold).
3. **Subproblem**: gather ``X_ws`` (``n x ws_size``), form the Hessian-weighted Gram
   ``X_ws^T diag(h) X_ws`` (``ws_size x ws_size``, times ``n_classes^2`` blocks for the
   multinomial loss), eliminate the intercept exactly (Schur complement; this is weighted
   centering for least squares), and run coordinate-descent epochs on the Gram matrix
   (``O(ws_size)`` per coordinate) until the subproblem's violation falls below
   ``inner_tol_ratio`` times the outer one.
4. **Step**: exact for least squares (the quadratic model *is* the objective); Armijo
   backtracking on the true objective for the logistic losses (prox-Newton, Lee, Sun and
   Saunders 2014). Then back to 1.

No matrix larger than ``n x ws_size`` or ``ws_size x ws_size`` is formed, and
``ws_size <= max_ws_size(p) < p`` whenever ``p > 2000``: **no** ``p x p`` **matrix** exists
in this kernel (checked on the jaxpr in ``tests/solvers/test_cd.py``).

The kernel is a pure function of arrays with static ``datafit``, ``ws_size``,
``fit_intercept`` and ``stop_if_saturated``: ``jit``-compiled once per
(shape, dtype, static options) and ``vmap``-able over folds (sample-weight masks) and
penalties. :func:`~skimplicit.solvers.solve` picks ``ws_size`` (doubling it when the
support outgrows it) when called on concrete arrays.

References
----------
Massias, Gramfort, Salmon (2018), "Celer: a fast solver for the Lasso with dual
extrapolation", ICML. Bertrand, Klopfenstein, Massias et al. (2022), "Beyond L1: faster and
better sparse models with skglm", NeurIPS. Lee, Sun, Saunders (2014), "Proximal Newton-type
methods for minimizing composite functions", SIAM J. Optim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp

from ._base import SolverInfo, bucket, max_ws_size, select_top, soft_threshold, violation

__all__ = ["CD", "cd_kernel", "default_ws_cap"]


@dataclass(frozen=True)
class CD:
    """Working-set coordinate descent (prox-Newton for the logistic losses).

    The default solver on CPU for L1 / elastic-net problems (see
    :func:`~skimplicit.solvers.select_solver`). A hashable configuration, static under
    ``jit``.

    Parameters
    ----------
    ws_size : int or None, default=None
        Capacity of the working set (static: one compilation per value; see
        :func:`cd_kernel`). The working set in use grows inside the kernel with the
        support (``max(64, 2 nnz)`` features), so the capacity only bounds it. ``None``:
        :func:`default_ws_cap` (about ``4 n / 3``, a power of two, within a memory budget);
        on concrete arrays :func:`~skimplicit.solvers.solve` doubles it if the support
        outgrows 3/4 of it (under tracing the kernel then continues as block-greedy
        coordinate descent, still convergent). Never more than ``max_ws_size(p) < p`` for
        ``p > 2000``.
    max_epochs : int, default=1000
        Cap on coordinate-descent epochs per subproblem.
    inner_tol_ratio : float, default=1e-3
        A subproblem stops when its largest optimality violation is below this fraction
        of the outer one. Small values make the outer loop (one pass over ``X`` each)
        converge in 2-4 iterations; inner epochs on the Gram matrix are cheap.
    """

    ws_size: Optional[int] = None
    max_epochs: int = 1000
    inner_tol_ratio: float = 1e-3

    default_max_iter = 100


def _grads(X, Y, v, Z, datafit):
    gZ = v[:, None] * datafit.dloss(Z, Y)  # (n, K)
    GW = (gZ.T @ X).T  # (p, K); vector-matrix product: XLA's fast layout on CPU
    return GW, jnp.sum(gZ, axis=0)


def stop_threshold(Y, v, tol, datafit, fit_intercept):
    """What the stopping criterion is compared with (see :class:`SolverInfo`).

    Least squares: ``tol * sum_i v_i (y_i - ybar)^2``, scikit-learn's ``tol *
    ||y_centered||^2`` in the ``1 / sum(s)`` scaling. Logistic: ``tol``.
    """
    if datafit.is_quadratic:
        ybar = (v @ Y[:, 0]) / jnp.sum(v) if fit_intercept else 0.0
        return tol * jnp.sum(v * (Y[:, 0] - ybar) ** 2)
    return jnp.asarray(tol, Y.dtype)


def stop_criterion(Y, v, sw, W, Z, GW, Gb, l1, l2, datafit, fit_intercept):
    """Stopping criterion at ``(W, b)`` given ``Z = X W + b`` and the datafit gradient.

    Least squares: scikit-learn's ``ElasticNet`` duality gap (formulation A; B when
    ``l1 == 0``) in the ``1 / sum(s)`` scaling, at the residual with the optimal
    intercept. Logistic: the largest optimality violation (intercept included) of the mean
    loss, i.e. divided by ``sum(s)``.
    """
    if datafit.is_quadratic:
        r = Y[:, 0] - Z[:, 0]
        w = W[:, 0]
        XtR = -GW[:, 0]  # X^T (v r)
        if fit_intercept:
            ybar = (v @ Y[:, 0]) / jnp.sum(v)
        else:
            ybar = 0.0
        # one fused reduction over samples, one over features
        Rn2, Ry = jnp.sum(v * jnp.stack([r * r, r * (Y[:, 0] - ybar)]), axis=1)
        XtA = XtR - l2 * w
        wl1, wl2, xtr2 = jnp.sum(jnp.stack([jnp.abs(w), w * w, XtR * XtR]), axis=1)
        dn = jnp.max(jnp.abs(XtA))
        primal = 0.5 * (Rn2 + l2 * wl2) + l1 * wl1
        scale = jnp.where(dn > l1, l1 / jnp.where(dn > 0, dn, 1.0), 1.0)
        gap_a = primal - (-0.5 * scale**2 * (Rn2 + l2 * wl2) + scale * Ry)
        safe_l2 = jnp.where(l2 > 0, l2, 1.0)
        gap_b = jnp.where(l2 > 0, Rn2 + 0.5 * l2 * wl2 - Ry + xtr2 / (2 * safe_l2), jnp.inf)
        return jnp.where(l1 > 0, gap_a, gap_b)
    viol = jnp.max(violation(W, GW, l1, l2))
    if fit_intercept:
        viol = jnp.maximum(viol, jnp.max(jnp.abs(Gb)))
    return viol / jnp.sum(sw)


def _intercept_solve(hbb, rhs):
    """``pinv(hbb) @ rhs`` for the ``K x K`` intercept Hessian (singular for softmax)."""
    K = hbb.shape[0]
    if K == 1:
        return rhs / jnp.where(hbb[0, 0] > 0, hbb[0, 0], 1.0)
    evals, evecs = jnp.linalg.eigh(hbb)
    cut = jnp.finfo(hbb.dtype).eps * K * jnp.max(jnp.abs(evals))
    inv = jnp.where(evals > cut, 1.0 / jnp.where(evals > cut, evals, 1.0), 0.0)
    return evecs @ (inv[:, None] * (evecs.T @ rhs) if rhs.ndim == 2 else inv * (evecs.T @ rhs))


def _cd_epochs(gram, g, u0, l1, l2, n_valid, tol_in, max_epochs):
    """CD epochs on ``g.d + 1/2 d^T gram d + l1|u0 + d| + l2/2 (u0 + d)^2``.

    Returns ``(u, epochs)`` with ``u = u0 + d``. Coordinates ``>= n_valid`` are padding.
    """
    m = g.shape[0]
    valid = jnp.arange(m) < n_valid

    def sub_violation(u, q):
        return jnp.max(jnp.where(valid, violation(u, g + q, l1, l2), 0.0))

    def coord(c, uq):
        u, q = uq
        row = gram[c]
        gcc = row[c]
        uc = u[c]
        z = gcc * uc - (g[c] + q[c])
        new = soft_threshold(z, l1) / jnp.where(gcc + l2 > 0, gcc + l2, 1.0)
        new = jnp.where(gcc > 0, new, uc)
        q = q + row * (new - uc)
        return u.at[c].set(new), q

    def cond(state):
        _, _, e, viol = state
        return (e < max_epochs) & (viol > tol_in)

    def body(state):
        u, q, e, _ = state
        u, q = jax.lax.fori_loop(0, n_valid, coord, (u, q))
        return u, q, e + 1, sub_violation(u, q)

    q0 = jnp.zeros_like(g)
    u, _, e, _ = jax.lax.while_loop(cond, body, (u0, q0, 0, sub_violation(u0, q0)))
    return u, e


def default_ws_cap(n_samples, n_features, n_outputs=1, itemsize=8, budget=2**28):
    """Static working-set capacity used when :class:`CD` has ``ws_size=None``.

    A least-squares (or logistic) L1 solution has at most ``n_samples`` nonzeros
    (generically), so ``4 n / 3`` rounded up to a power of two leaves room for new features;
    at least 128 (or ``p``), at most :func:`~skimplicit.solvers._base.max_ws_size` ``(p)``, and small
    enough for the ``(cap K)^2`` Gram buffer and the ``cap x n`` gathered columns to fit in
    ``budget`` bytes.
    """
    cap = bucket(max(128, -(-4 * n_samples // 3)), max_ws_size(n_features))
    while cap > 64 and ((cap * n_outputs) ** 2 + cap * n_samples) * itemsize > budget:
        cap //= 2
    return int(min(cap, n_features))


def cd_kernel(X, Y, sw, l1, l2, W0, b0, tol, max_iter, *, datafit, ws_size, fit_intercept,
              stop_if_saturated=False, max_epochs=1000, inner_tol_ratio=1e-3, block=32):
    """Working-set CD on internal layouts (see the module docstring).

    Parameters
    ----------
    X : (n, p) array
    Y : (n, K) array
        Targets as returned by ``datafit.prepare_y``.
    sw : (n,) array
        Sample weights (0/1 fold masks allowed).
    l1, l2 : scalars
        Penalty ``l1 ||W||_1 + l2 / 2 ||W||^2``.
    W0 : (p, K) array
    b0 : (K,) array
        Warm start. For least squares ``b0`` is ignored (the intercept is eliminated).
    tol : scalar
        See :class:`~skimplicit.solvers.SolverInfo` for its meaning.
    max_iter : int scalar
        Cap on outer iterations (full-gradient checks).
    datafit : static
    ws_size : static int
        Capacity of the working set (its buffers are ``ws_size x n`` and
        ``(ws_size K)^2``). The working set actually used grows with the support,
        ``min(ws_size, max(64, 2 nnz))`` features, and the Gram work is done on the
        ``block x block`` blocks it covers only, so a large capacity costs memory, not time.
    fit_intercept, stop_if_saturated : static bool
        ``stop_if_saturated``: return as soon as the support exceeds ``3/4 ws_size``.
    max_epochs, inner_tol_ratio : static
        See :class:`CD`.
    block : static int
        Block size of the Gram computation.

    Returns
    -------
    W : (p, K) array
    b : (K,) array
    info : SolverInfo
    """
    n, p = X.shape
    K = Y.shape[1]
    dtype = X.dtype
    if datafit.is_quadratic and K != 1:
        raise ValueError("Quadratic supports one target; vmap over targets for more.")
    cap = int(min(ws_size, p))
    B = int(min(block, cap))
    cap_pad = -(-cap // B) * B  # capacity rounded up to whole blocks
    BK = B * K
    ws_min = min(64, cap)
    v = datafit.sample_scale(sw)
    l1 = jnp.asarray(l1, dtype)
    l2 = jnp.asarray(l2, dtype)
    rows = jnp.arange(cap_pad)

    XW = X @ W0
    if not fit_intercept:
        b = jnp.zeros((K,), dtype)
    elif datafit.is_quadratic:
        b = (v @ (Y - XW)) / jnp.sum(v)
    else:
        b = b0
    Z = XW + b

    def support_size(W):
        return jnp.sum(jnp.any(W != 0, axis=1))

    def is_saturated(W):
        return (4 * support_size(W) > 3 * cap) & (cap < p)


    def penalty(U):
        return l1 * jnp.sum(jnp.abs(U)) + 0.5 * l2 * jnp.sum(U * U)

    def update(W, b, Z, GW, Gb, XwT, gram):
        score = jnp.sum(violation(W, GW, l1, l2), axis=1)  # (p,)
        supp = jnp.any(W != 0, axis=1)
        top = jnp.max(score)
        # The support goes first while it fits; a saturated working set (support larger
        # than 3/4 of the capacity) is filled by largest violation only: greedy block
        # coordinate descent, which keeps making progress.
        first = supp & ~is_saturated(W)
        idx, nws = select_top(jnp.where(first, score + 1 + top, score), cap_pad)
        k_eff = jnp.clip(2 * support_size(W), ws_min, cap)
        nws = jnp.minimum(nws, k_eff)
        valid = rows < nws
        idx = jnp.where(valid, idx, p)
        nb = (nws + B - 1) // B

        def gather(I, XwT):
            blk = jax.lax.dynamic_slice(idx, (I * B,), (B,))
            cols = jnp.take(X, blk, axis=1, mode="fill", fill_value=0)  # (n, B)
            return jax.lax.dynamic_update_slice(XwT, cols.T, (I * B, 0))

        XwT = jax.lax.fori_loop(0, nb, gather, XwT)
        # Rows of XwT beyond nws are stale (earlier iterations) but finite, and only ever
        # multiplied by zeros (D, delta vanish there) or read for unused coordinates.
        Ww = jnp.take(W, idx, axis=0, mode="fill", fill_value=0)  # (cap_pad, K)
        gw = jnp.take(GW, idx, axis=0, mode="fill", fill_value=0)
        H = v[:, None, None] * datafit.d2loss(Z, Y)  # (n, K, K)
        if K == 1:
            hwb = (XwT @ H[:, 0, 0])[:, None]  # (cap_pad, 1)
        else:
            hwb = jnp.einsum("jn,nab->jab", XwT, H).reshape(cap_pad * K, K)
        hbb = jnp.sum(H, axis=0)
        g = gw.reshape(-1)
        if fit_intercept:
            Pg = _intercept_solve(hbb, Gb)  # (K,)
            Phwb = _intercept_solve(hbb, hwb.T)  # (K, cap_pad K)
            g = g - hwb @ Pg

        def gram_block(t, gram):
            I, J = t // nb, t % nb
            XI = jax.lax.dynamic_slice(XwT, (I * B, 0), (B, n))
            XJ = jax.lax.dynamic_slice(XwT, (J * B, 0), (B, n))
            if K == 1:
                G = (XI * H[:, 0, 0]) @ XJ.T
            else:
                G = jnp.einsum("jn,nab,ln->jalb", XI, H, XJ).reshape(BK, BK)
            if fit_intercept:
                G = G - jax.lax.dynamic_slice(hwb, (I * BK, 0), (BK, K)) @ \
                    jax.lax.dynamic_slice(Phwb, (0, J * BK), (K, BK))
            return jax.lax.dynamic_update_slice(gram, G, (I * BK, J * BK))

        gram = jax.lax.fori_loop(0, nb * nb, gram_block, gram)

        u0 = Ww.reshape(-1)
        u, epochs = _cd_epochs(gram, g, u0, l1, l2, nws * K, inner_tol_ratio * top,
                               max_epochs)
        delta = u - u0
        D = delta.reshape(cap_pad, K)
        db = -(Pg + Phwb @ delta) if fit_intercept else jnp.zeros((K,), dtype)
        dZ = (D.T @ XwT).T + db  # vector-matrix form: XLA CPU's fast layout

        if datafit.is_quadratic:
            t = jnp.ones((), dtype)
        else:
            F0 = datafit.loss(Z, Y, v) + penalty(Ww)
            dec = jnp.sum(gw * D) + jnp.sum(Gb * db) + penalty(Ww + D) - penalty(Ww)
            # Near the optimum F changes by less than its rounding error: accept a full
            # step whose change is within that noise (else Armijo stalls at ~1e-11).
            noise = 64 * jnp.finfo(dtype).eps * jnp.abs(F0)

            def ls_cond(ts):
                t, k = ts
                F = datafit.loss(Z + t * dZ, Y, v) + penalty(Ww + t * D)
                ok = (F <= F0 + 1e-4 * t * dec) | ((k == 0) & (F <= F0 + noise))
                return (k < 40) & ~ok

            t, _ = jax.lax.while_loop(ls_cond, lambda ts: (0.5 * ts[0], ts[1] + 1),
                                      (jnp.ones((), dtype), 0))
        W = W.at[idx].set(Ww + t * D, mode="drop")
        return W, b + t * db, Z + t * dZ, epochs, XwT, gram

    def body(state):
        W, b, Z, GW, Gb, it, n_inner, _, _, XwT, gram = state
        W, b, Z, epochs, XwT, gram = update(W, b, Z, GW, Gb, XwT, gram)
        GW, Gb = _grads(X, Y, v, Z, datafit)  # the only full pass over X
        crit = stop_criterion(Y, v, sw, W, Z, GW, Gb, l1, l2, datafit, fit_intercept)
        return W, b, Z, GW, Gb, it + 1, n_inner + epochs, crit, is_saturated(W), XwT, gram

    def cond(state):
        it, crit, sat = state[5], state[7], state[8]
        go = (it < max_iter) & ~(crit <= thr) & ((it == 0) | jnp.isfinite(crit))
        if stop_if_saturated:
            go = go & ~sat
        return go

    # The loop always makes at least one update (the criterion starts at +inf): this
    # keeps a single copy of the check in the compiled program and the working-set
    # buffers carried (updated in place) without a conditional around the update.
    thr = stop_threshold(Y, v, tol, datafit, fit_intercept)
    GW, Gb = _grads(X, Y, v, Z, datafit)
    inf = jnp.asarray(jnp.inf, dtype)
    XwT0 = jnp.zeros((cap_pad, n), dtype)
    gram0 = jnp.zeros((cap_pad * K, cap_pad * K), dtype)
    state = (W0, b, Z, GW, Gb, 0, 0, inf, is_saturated(W0), XwT0, gram0)
    W, b, Z, _, _, it, n_inner, crit, sat, _, _ = jax.lax.while_loop(cond, body, state)
    info = SolverInfo(it, n_inner, (crit <= thr) & jnp.isfinite(crit), crit, thr, sat)
    return W, b, info
