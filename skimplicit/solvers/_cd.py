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
3. **Subproblem**: gather the working-set columns ``X_ws`` (``n x ws``, block by block,
   only the blocks in use), and run coordinate-descent epochs on the quadratic model of
   the objective there (the objective itself for least squares; the second-order model
   with the loss curvature ``h`` for the logistic losses), with the intercept eliminated
   exactly by centering the columns in the metric ``h`` (implicitly: a rank-one shift per
   column, never a centered copy). Each coordinate costs ``O(n)`` (``O(n K^2)`` for the
   multinomial loss): the model residual is updated in place, and no working-set Gram
   matrix is formed (one-output sweeps take 8 coordinates per step with their 8 x 8 Gram
   block, which gives the same iterates with fewer loop steps).
   Epochs stop when every pre-update violation of an epoch is below ``inner_tol_ratio``
   times the outer one.
4. **Step**: exact for least squares (the quadratic model *is* the objective); Armijo
   backtracking on the true objective for the logistic losses (prox-Newton, Lee, Sun and
   Saunders 2014). Then back to 1.

The largest arrays are ``X`` itself and the gathered columns (``n x ws_size`` per
problem, ``ws_size <= p``); there is no Gram or Hessian matrix of the working set, and
**no** ``p x p`` **matrix** anywhere (checked on the jaxpr at ``p = 20000`` in
``tests/solvers/test_cd.py``).

Problems sharing ``X`` (folds as 0/1 sample-weight masks, hyperparameters) are batched
*natively* along a leading axis: every dynamic index of the inner loops (block,
coordinate) is shared by the problems, so buffers are updated in place and the full
gradients of all problems are one matrix product with ``X``.

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

from ._base import SolverInfo, bucket, select_top, soft_threshold, violation

__all__ = ["CD", "cd_kernel", "default_ws_cap"]

_BLOCK = 8  # coordinates per step of the K = 1 sweeps (divides the gather block, 32)


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
        :func:`default_ws_cap` (all features when the gathered columns fit in 256 MB, else
        about ``4 n / 3``); on concrete arrays :func:`~skimplicit.solvers.solve` doubles it
        if the support outgrows 3/4 of it (under tracing the kernel then continues as
        block-greedy coordinate descent, still convergent).
    max_epochs : int, default=1000
        Cap on coordinate-descent epochs per subproblem.
    inner_tol_ratio : float, default=0.1
        A subproblem stops when its largest optimality violation is below this fraction
        of the outer one (each outer iteration is one pass over ``X``).
    """

    ws_size: Optional[int] = None
    max_epochs: int = 1000
    inner_tol_ratio: float = 0.1

    default_max_iter = 100


def _grads(X, Y, v, Z, datafit):
    """Datafit gradient: ``GW = X^T (v * dloss(Z))`` (``(..., p, K)``) and ``Gb``.

    Written as ``(v * dloss)^T @ X``, the layout XLA's CPU backend runs fastest (a product
    with ``X^T`` on the right is up to 10x slower there), and with leading batch axes it
    is a single matrix product with ``X``, shared by all problems.
    """
    gZ = v[..., None] * datafit.dloss(Z, Y)  # (..., n, K)
    GW = jnp.swapaxes(jnp.swapaxes(gZ, -1, -2) @ X, -1, -2)
    return GW, jnp.sum(gZ, axis=-2)


def stop_threshold(Y, v, tol, datafit, fit_intercept):
    """What the stopping criterion is compared with (see :class:`SolverInfo`).

    Least squares: ``tol * sum_i v_i (y_i - ybar)^2``, scikit-learn's ``tol *
    ||y_centered||^2`` in the ``1 / sum(s)`` scaling. Logistic: ``tol``. ``v`` may have
    leading batch axes.
    """
    if datafit.is_quadratic:
        y = Y[:, 0]
        ybar = (v @ y) / jnp.sum(v, axis=-1) if fit_intercept else jnp.zeros(v.shape[:-1])
        return tol * jnp.sum(v * (y - ybar[..., None]) ** 2, axis=-1)
    return jnp.broadcast_to(jnp.asarray(tol, Y.dtype), v.shape[:-1])


def stop_criterion(Y, v, sw, W, Z, GW, Gb, l1, l2, datafit, fit_intercept):
    """Stopping criterion at ``(W, b)`` given ``Z = X W + b`` and the datafit gradient.

    Least squares: scikit-learn's ``ElasticNet`` duality gap (formulation A; B when
    ``l1 == 0``) in the ``1 / sum(s)`` scaling, at the residual with the optimal
    intercept. Logistic: the largest optimality violation (intercept included) of the mean
    loss, i.e. divided by ``sum(s)``. Arrays may have leading batch axes (``l1``, ``l2``
    then have those axes).
    """
    if datafit.is_quadratic:
        r = Y[:, 0] - Z[..., 0]
        w = W[..., 0]
        XtR = -GW[..., 0]  # X^T (v r)
        if fit_intercept:
            ybar = (v @ Y[:, 0]) / jnp.sum(v, axis=-1)
        else:
            ybar = jnp.zeros(v.shape[:-1], v.dtype)
        yc = Y[:, 0] - ybar[..., None]
        Rn2 = jnp.sum(v * r * r, axis=-1)
        Ry = jnp.sum(v * r * yc, axis=-1)
        XtA = XtR - l2[..., None] * w
        wl1 = jnp.sum(jnp.abs(w), axis=-1)
        wl2 = jnp.sum(w * w, axis=-1)
        xtr2 = jnp.sum(XtR * XtR, axis=-1)
        dn = jnp.max(jnp.abs(XtA), axis=-1)
        primal = 0.5 * (Rn2 + l2 * wl2) + l1 * wl1
        scale = jnp.where(dn > l1, l1 / jnp.where(dn > 0, dn, 1.0), 1.0)
        gap_a = primal - (-0.5 * scale**2 * (Rn2 + l2 * wl2) + scale * Ry)
        safe_l2 = jnp.where(l2 > 0, l2, 1.0)
        gap_b = jnp.where(l2 > 0, Rn2 + 0.5 * l2 * wl2 - Ry + xtr2 / (2 * safe_l2), jnp.inf)
        return jnp.where(l1 > 0, gap_a, gap_b)
    viol = jnp.max(violation(W, GW, l1[..., None, None], l2[..., None, None]), axis=(-2, -1))
    if fit_intercept:
        viol = jnp.maximum(viol, jnp.max(jnp.abs(Gb), axis=-1))
    return viol / jnp.sum(sw, axis=-1)


def _intercept_solve(hbb, rhs):
    """``pinv(hbb) @ rhs`` for the batched ``K x K`` intercept Hessians (singular for
    softmax): ``hbb`` of shape ``(F, K, K)``, ``rhs`` of shape ``(F, K)`` or ``(F, K, m)``."""
    K = hbb.shape[-1]
    vec = rhs.ndim == 2
    R = rhs[..., None] if vec else rhs
    if K == 1:
        h = hbb[:, 0, 0]
        out = R / jnp.where(h > 0, h, 1.0)[:, None, None]
    else:
        evals, evecs = jnp.linalg.eigh(hbb)
        cut = jnp.finfo(hbb.dtype).eps * K * jnp.max(jnp.abs(evals), axis=-1, keepdims=True)
        inv = jnp.where(evals > cut, 1.0 / jnp.where(evals > cut, evals, 1.0), 0.0)
        out = evecs @ (inv[..., None] * (jnp.swapaxes(evecs, -1, -2) @ R))
    return out[..., 0] if vec else out


def _cd_epochs(XwT, H, M, Lc, g, U0, l1, l2, n_valid, tol_in, max_epochs):
    """Coordinate descent on the quadratic model of the working set, batched.

    Minimizes over ``D`` (``(F, ws, K)``) ``g.D + 1/2 sum_i s_i^T H_i s_i + l1 |U0 + D| +
    l2/2 |U0 + D|^2`` with ``s = sum_{c,a} D_ca xt_ca``, where ``xt_ca = X_c e_a - 1 M_ca``
    are the working-set columns centered in the metric ``H`` (this eliminates the
    intercept exactly; ``M = 0`` without intercept). Only the curvature-weighted model
    residual ``R = H s`` is updated in place, so each
    coordinate reads and writes ``O(n)`` numbers (``O(n K^2)`` work for the multinomial
    loss); no working-set Gram matrix is formed. ``Lc`` holds the coordinate curvatures
    ``xt_ca^T H xt_ca``.

    The coordinate index is shared by the ``F`` problems (dynamic slices); a problem whose
    epoch left every pre-update violation below its ``tol_in`` stops changing. Returns
    ``(U, epochs (F,), R)``.
    """
    F, m, K = U0.shape
    n = XwT.shape[2]
    j_max = jnp.max(n_valid) * K
    # Per-coordinate scalars packed together: one dynamic slice per step.
    packed = jnp.stack([g.reshape(F, m * K), Lc.reshape(F, m * K)], axis=2)  # (F, mK, 2)
    Mf = M.reshape(F, m * K, K)
    u_flat = U0.reshape(F, m * K)
    hdiag = H[:, :, 0, 0] if K == 1 else None

    def coord(j, carry):
        U, R, act, viol = carry
        c = j // K
        x = jax.lax.dynamic_index_in_dim(XwT, c, axis=1, keepdims=False)  # (F, n)
        gl = jax.lax.dynamic_index_in_dim(packed, j, axis=1, keepdims=False)  # (F, 2)
        mj = jax.lax.dynamic_index_in_dim(Mf, j, axis=1, keepdims=False)  # (F, K)
        uj = jax.lax.dynamic_index_in_dim(U, j, axis=1, keepdims=False)
        gj, Lj = gl[:, 0], gl[:, 1]
        if K == 1:
            grad = gj + jnp.sum(x * R, axis=1)
        else:
            a = j % K
            Ra = jax.lax.dynamic_index_in_dim(R, a, axis=2, keepdims=False)
            grad = gj + jnp.sum(x * Ra, axis=1)
        new = soft_threshold(Lj * uj - grad, l1) / jnp.where(Lj + l2 > 0, Lj + l2, 1.0)
        ok = (Lj > 0) & act & (c < n_valid)
        new = jnp.where(ok, new, uj)
        viol = jnp.maximum(viol, jnp.where(ok, violation(uj, grad, l1, l2), 0.0))
        d = new - uj
        if K == 1:
            R = R + d[:, None] * hdiag * (x - mj)  # x - mj: the centered column
        else:
            ea = jax.nn.one_hot(j % K, K, dtype=x.dtype)
            col = x[:, :, None] * ea - mj[:, None, :]  # (F, n, K)
            R = R + d[:, None, None] * jnp.einsum("fnab,fnb->fna", H, col)
        U = jax.lax.dynamic_update_index_in_dim(U, new, j, axis=1)
        return U, R, act, viol

    def coord_block(jb, carry):
        # K = 1: _BLOCK consecutive coordinates per step. Their exact sequential updates
        # only need the block's small Gram matrix G (in the metric H): grad_b = grad0_b +
        # sum_{i<b} G_bi delta_i. Same iterates as one coordinate at a time, with a
        # quarter of the loop steps and one read of the block's columns.
        U, R, act, viol = carry
        c0 = jb * _BLOCK
        x = jax.lax.dynamic_slice_in_dim(XwT, c0, _BLOCK, axis=1)  # (F, B, n)
        gl = jax.lax.dynamic_slice_in_dim(packed, c0, _BLOCK, axis=1)  # (F, B, 2)
        mj = jax.lax.dynamic_slice_in_dim(Mf, c0, _BLOCK, axis=1)[:, :, 0]  # (F, B)
        u = jax.lax.dynamic_slice_in_dim(U, c0, _BLOCK, axis=1)  # (F, B)
        hx = hdiag[:, None, :] * (x - mj[:, :, None])  # H times the centered columns
        grad0 = gl[:, :, 0] + jnp.einsum("fbn,fn->fb", x, R)
        G = jnp.einsum("fbn,fcn->fbc", x, hx)  # x^T H xt = xt^T H xt (sum H xt = 0)
        deltas = []
        for b in range(_BLOCK):
            grad = grad0[:, b]
            for i, d in enumerate(deltas):
                grad = grad + G[:, b, i] * d
            Lj, uj = gl[:, b, 1], u[:, b]
            new = soft_threshold(Lj * uj - grad, l1) / jnp.where(Lj + l2 > 0, Lj + l2, 1.0)
            ok = (Lj > 0) & act & (c0 + b < n_valid)
            new = jnp.where(ok, new, uj)
            viol = jnp.maximum(viol, jnp.where(ok, violation(uj, grad, l1, l2), 0.0))
            deltas.append(new - uj)
        delta = jnp.stack(deltas, axis=1)  # (F, B)
        R = R + jnp.einsum("fb,fbn->fn", delta, hx)
        U = jax.lax.dynamic_update_slice_in_dim(U, u + delta, c0, axis=1)
        return U, R, act, viol

    def cond(state):
        _, _, e, viol = state
        return jnp.any((e < max_epochs) & (viol > tol_in))

    def body(state):
        U, R, e, viol = state
        act = (e < max_epochs) & (viol > tol_in)
        zero = jnp.zeros_like(viol)
        if K == 1:
            n_blocks = (j_max + _BLOCK - 1) // _BLOCK
            U, R, _, ep_viol = jax.lax.fori_loop(0, n_blocks, coord_block,
                                                 (U, R, act, zero))
        else:
            U, R, _, ep_viol = jax.lax.fori_loop(0, j_max, coord, (U, R, act, zero))
        return U, R, e + act, jnp.where(act, ep_viol, viol)

    R0 = jnp.zeros((F, n) if K == 1 else (F, n, K), U0.dtype)
    e0 = jnp.zeros((F,), jnp.int32)
    inf = jnp.full((F,), jnp.inf, U0.dtype)
    U, R, e, _ = jax.lax.while_loop(cond, body, (u_flat, R0, e0, inf))
    return U.reshape(F, m, K), e, R


def _blocks(cap, block=32):
    """Gather block size and padded capacity (whole gather blocks of whole CD blocks)."""
    B = -(-int(min(block, cap)) // _BLOCK) * _BLOCK
    return B, -(-int(cap) // B) * B


def buffer_shape(n_problems, ws_size, n_samples, block=32):
    """Shape of the column storage that :func:`cd_kernel` takes as ``buffer``."""
    return (n_problems, _blocks(ws_size, block)[1], n_samples)


def default_ws_cap(n_samples, n_features, n_problems=1, itemsize=8, budget=2**28):
    """Static working-set capacity used when :class:`CD` has ``ws_size=None``.

    All features when the gathered-column buffer (``n_problems x p x n`` numbers) fits in
    ``budget`` bytes: the working set then grows freely inside one compiled kernel. Else
    ``4 n / 3`` rounded up to a power of two (an L1 solution has at most ``n`` nonzeros,
    generically; elastic-net ones may have more, and the solver then doubles the
    capacity), at least 128 and at most ``p``.
    """
    if n_problems * n_features * n_samples * itemsize <= budget:
        return int(n_features)
    cap = bucket(max(128, -(-4 * n_samples // 3)), n_features)
    while cap > 128 and n_problems * cap * n_samples * itemsize > budget:
        cap //= 2
    return int(min(cap, n_features))


def cd_kernel(X, Y, SW, L1, L2, W0, b0, tol, max_iter, *, datafit, ws_size, fit_intercept,
              stop_if_saturated=False, max_epochs=1000, inner_tol_ratio=0.1, block=32,
              buffer=None):
    """Working-set CD for a batch of ``F`` problems sharing ``X`` and ``Y``.

    Natively batched (rather than :func:`jax.vmap`-ed) so that every dynamic index in the
    inner loops (block, coordinate) is shared by the problems: the working-set buffers are
    then updated in place. Under ``vmap`` those indices would become per-problem scatters
    (measured 50x slower on a CPU). The kernel is still ``vmap``-able (e.g. over a
    hyperparameter axis), just slower that way.

    Parameters
    ----------
    X : (n, p) array
    Y : (n, K) array
        Targets as returned by ``datafit.prepare_y``.
    SW : (F, n) array
        Sample weights per problem (0/1 fold masks allowed).
    L1, L2 : (F,) arrays
        Penalty ``l1 ||W||_1 + l2 / 2 ||W||^2`` per problem.
    W0 : (F, p, K) array
    b0 : (F, K) array
        Warm starts. For least squares ``b0`` is ignored (the intercept is eliminated).
    tol : scalar
        See :class:`~skimplicit.solvers.SolverInfo` for its meaning.
    max_iter : int scalar
        Cap on outer iterations (full-gradient checks) per problem.
    datafit : static
    ws_size : static int
        Capacity of the working set (buffer ``F x ws_size x n``). The working set actually
        used grows with the support, ``min(ws_size, max(64, 2 nnz))`` features, and only
        the blocks in use are gathered and swept, so a large capacity costs memory, not
        time.
    fit_intercept, stop_if_saturated : static bool
        ``stop_if_saturated``: a problem stops as soon as its support exceeds
        ``3/4 ws_size`` (:func:`~skimplicit.solvers.solve` then retries larger).
    max_epochs, inner_tol_ratio : static
        See :class:`CD`.
    block : static int
        Block size of the column gathers.
    buffer : array of shape ``buffer_shape(F, ws_size, n)``, optional
        Storage for the gathered columns, to reuse across calls (a path carries it instead
        of zero-filling a new one per penalty). Its content is irrelevant.

    Returns
    -------
    W : (F, p, K) array
    b : (F, K) array
    info : SolverInfo of (F,) arrays
    buffer : array
        Only when ``buffer`` was given: the storage, to pass to the next call.
    """
    n, p = X.shape
    K = Y.shape[1]
    F = SW.shape[0]
    dtype = X.dtype
    if datafit.is_quadratic and K != 1:
        raise ValueError("Quadratic supports one target; vmap over targets for more.")
    cap = int(min(ws_size, p))
    B, cap_pad = _blocks(cap, block)
    ws_min = min(64, cap)
    V = datafit.sample_scale(SW)  # (F, n)
    L1 = jnp.asarray(L1, dtype)
    L2 = jnp.asarray(L2, dtype)
    rows = jnp.arange(cap_pad)
    fidx = jnp.arange(F)[:, None]

    XW = jnp.einsum("np,fpk->fnk", X, W0)
    if not fit_intercept:
        b = jnp.zeros((F, K), dtype)
    elif datafit.is_quadratic:
        b = jnp.einsum("fn,fnk->fk", V, Y - XW) / jnp.sum(V, axis=1, keepdims=True)
    else:
        b = b0
    Z = XW + b[:, None, :]

    def support_size(W):
        return jnp.sum(jnp.any(W != 0, axis=2), axis=1)  # (F,)

    def is_saturated(W):
        return (4 * support_size(W) > 3 * cap) & (cap < p)

    def penalty(U):  # U (F, m, K)
        return L1 * jnp.sum(jnp.abs(U), axis=(1, 2)) + 0.5 * L2 * jnp.sum(U * U, axis=(1, 2))

    def update(W, b, Z, GW, Gb, XwT, active):
        score = jnp.sum(violation(W, GW, L1[:, None, None], L2[:, None, None]), axis=2)
        supp = jnp.any(W != 0, axis=2)
        top = jnp.max(score, axis=1, keepdims=True)
        # The support goes first while it fits; a saturated working set (support larger
        # than 3/4 of the capacity) is filled by largest violation only: greedy block
        # coordinate descent, which keeps making progress.
        first = supp & ~is_saturated(W)[:, None]
        idx, nws = jax.vmap(select_top, in_axes=(0, None))(
            jnp.where(first, score + 1 + top, score), cap_pad)
        nws = jnp.minimum(nws, jnp.clip(2 * support_size(W), ws_min, cap))
        nws = jnp.where(active, nws, 0)
        valid = rows < nws[:, None]
        idx = jnp.where(valid, idx, p)
        nb = (jnp.max(nws) + B - 1) // B  # shared by the problems

        H = V[:, :, None, None] * datafit.d2loss(Z, Y)  # (F, n, K, K)
        diagH = jnp.diagonal(H, axis1=2, axis2=3)  # (F, n, K)

        # Gather the working-set columns block by block (only the blocks in use), with
        # their curvatures and intercept cross terms: all work is O(F nws n).
        def gather(I, carry):
            XwT, Lc, HW = carry
            blk = jax.lax.dynamic_slice_in_dim(idx, I * B, B, axis=1)  # (F, B)
            cols = jnp.transpose(jnp.take(X, blk, axis=1, mode="fill", fill_value=0),
                                 (1, 2, 0))  # (F, B, n)
            XwT = jax.lax.dynamic_update_slice_in_dim(XwT, cols, I * B, axis=1)
            Lc = jax.lax.dynamic_update_slice_in_dim(
                Lc, jnp.einsum("fcn,fna->fca", cols * cols, diagH), I * B, axis=1)
            if fit_intercept:
                HW = jax.lax.dynamic_update_slice_in_dim(
                    HW, jnp.einsum("fcn,fnab->fcab", cols, H), I * B, axis=1)
            return XwT, Lc, HW

        Lc0 = jnp.zeros((F, cap_pad, K), dtype)
        HW0 = jnp.zeros((F, cap_pad, K, K), dtype)
        XwT, Lc, hwb = jax.lax.fori_loop(0, nb, gather, (XwT, Lc0, HW0))
        # Rows of XwT in the gathered blocks but beyond a problem's nws hold zeros (padding
        # gathers fill 0); rows beyond the blocks are stale from earlier iterations but
        # finite, and never read for a valid coordinate.
        Ww = jnp.take_along_axis(W, idx[:, :, None], axis=1, mode="fill", fill_value=0)
        gw = jnp.take_along_axis(GW, idx[:, :, None], axis=1, mode="fill", fill_value=0)
        if fit_intercept:
            P = _intercept_solve(jnp.sum(H, axis=1), jnp.broadcast_to(
                jnp.eye(K, dtype=dtype), (F, K, K)))  # pinv of the intercept Hessian
            M = jnp.einsum("fdb,fcab->fcad", P, hwb)  # centering shifts (F, cap, K, K)
            Pg = jnp.einsum("fdb,fb->fd", P, Gb)
            g = gw - jnp.einsum("fcab,fb->fca", hwb, Pg)
            Lc = Lc - jnp.einsum("fcab,fcab->fca", M, hwb)
        else:
            M = HW0
            g = gw
        U, epochs, R = _cd_epochs(XwT, H, M, Lc, g, Ww, L1, L2, nws,
                                  inner_tol_ratio * top[:, 0], max_epochs)
        D = U - Ww  # zero beyond nws

        if datafit.is_quadratic:
            # R = v * s: recover s where v > 0 (a weight-0 sample's Z is never used).
            S = jnp.where(V > 0, R / jnp.where(V > 0, V, 1.0), 0.0)[:, :, None]
        else:
            # Model residual s = sum_c D_c (X_c - M_c), block by block.
            def accumulate(I, S):
                XI = jax.lax.dynamic_slice_in_dim(XwT, I * B, B, axis=1)
                DI = jax.lax.dynamic_slice_in_dim(D, I * B, B, axis=1)
                MI = jax.lax.dynamic_slice_in_dim(M, I * B, B, axis=1)
                return S + jnp.einsum("fcn,fca->fna", XI, DI) - \
                    jnp.einsum("fcab,fca->fb", MI, DI)[:, None, :]

            S = jax.lax.fori_loop(0, nb, accumulate, jnp.zeros((F, n, K), dtype))
        if fit_intercept:
            db = -(Pg + jnp.einsum("fcad,fca->fd", M, D))
            dZ = S - Pg[:, None, :]
        else:
            db = jnp.zeros((F, K), dtype)
            dZ = S

        if datafit.is_quadratic:
            t = jnp.ones((F,), dtype)
        else:
            F0 = datafit.loss(Z, Y, V) + penalty(Ww)
            dec = (jnp.sum(gw * D, axis=(1, 2)) + jnp.sum(Gb * db, axis=1)
                   + penalty(Ww + D) - penalty(Ww))
            # Near the optimum F changes by less than its rounding error: accept a full
            # step whose change is within that noise (else Armijo stalls at ~1e-11).
            noise = 64 * jnp.finfo(dtype).eps * jnp.abs(F0)

            def accepted(t, k):
                Ft = datafit.loss(Z + t[:, None, None] * dZ, Y, V) + penalty(
                    Ww + t[:, None, None] * D)
                return (Ft <= F0 + 1e-4 * t * dec) | ((k == 0) & (Ft <= F0 + noise))

            def ls_cond(ts):
                t, k, ok = ts
                return (k < 40) & ~jnp.all(ok)

            def ls_body(ts):
                t, k, ok = ts
                t = jnp.where(ok, t, 0.5 * t)
                return t, k + 1, ok | accepted(t, k + 1)

            t0 = jnp.ones((F,), dtype)
            t, _, _ = jax.lax.while_loop(ls_cond, ls_body, (t0, 0, accepted(t0, 0)))
        t = jnp.where(active, t, 0.0)
        W = W.at[fidx, idx].set(Ww + t[:, None, None] * D, mode="drop")
        return (W, b + t[:, None] * db, Z + t[:, None, None] * dZ, jnp.where(active, epochs, 0),
                XwT)

    def still_going(it, crit, sat):
        go = (it < max_iter) & ~(crit <= thr) & ((it == 0) | jnp.isfinite(crit))
        if stop_if_saturated:
            go = go & ~sat
        return go

    def body(state):
        W, b, Z, GW, Gb, it, n_inner, crit, sat, XwT = state
        active = still_going(it, crit, sat)
        W, b, Z, epochs, XwT = update(W, b, Z, GW, Gb, XwT, active)
        GW, Gb = _grads(X, Y, V, Z, datafit)  # the only full pass over X (all problems)
        crit = jnp.where(active, stop_criterion(Y, V, SW, W, Z, GW, Gb, L1, L2, datafit,
                                                fit_intercept), crit)
        return W, b, Z, GW, Gb, it + active, n_inner + epochs, crit, is_saturated(W), XwT

    def cond(state):
        return jnp.any(still_going(state[5], state[7], state[8]))

    # The loop always makes at least one update (the criterion starts at +inf): this
    # keeps a single copy of the check in the compiled program and the working-set
    # buffers carried (updated in place) without a conditional around the update.
    thr = stop_threshold(Y, V, tol, datafit, fit_intercept)
    GW, Gb = _grads(X, Y, V, Z, datafit)
    crit0 = jnp.full((F,), jnp.inf, dtype)
    XwT0 = jnp.zeros((F, cap_pad, n), dtype) if buffer is None else buffer
    it0 = jnp.zeros((F,), jnp.int32)
    state = (W0, b, Z, GW, Gb, it0, it0, crit0, is_saturated(W0), XwT0)
    W, b, Z, _, _, it, n_inner, crit, sat, XwT = jax.lax.while_loop(cond, body, state)
    info = SolverInfo(it, n_inner, (crit <= thr) & jnp.isfinite(crit), crit, thr, sat)
    if buffer is not None:
        return W, b, info, XwT
    return W, b, info
