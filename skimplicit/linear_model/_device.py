"""The linear models' tunable problems on a JAX device (``backend="jax"``).

The folds are moved to the device once per fit (float32 or float64); each evaluation is
one compiled program that solves all K folds' inner problems, warm-started from the
nearest evaluated point, and returns their validation losses with the hypergradient.

Elastic net (:class:`DeviceEnetProblem`): each training fold is centered and weighted
(the intercept eliminated) and held as its Gram matrix (``p <= n``) or its scaled design
(``p > n``), see :mod:`skimplicit.solvers._quadratic`. In the program:

1. FISTA on all folds in lock step to scikit-learn's duality gap
   (:func:`~skimplicit.solvers.quadratic_fista`);
2. a polish: on each fold's support ``S`` with signs ``s``, the stationarity
   ``(G_SS + l2) w_S = c_S - l1 s`` solved by CG; kept where its signs agree and its
   duality gap is smaller (then exact to the CG tolerance, as the host path's certified
   polish);
3. the hypergradient: ``(G_SS + l2) u_S = d loss / d w_S`` by CG (matrix-free, masked to
   the support: the same operator as the polish, warm-started from the previous outer
   step's ``u``), then ``d loss / d alpha_j = -u_j (rho s_j + (1 - rho) w_j)`` and
   ``d loss / d rho = -sum_j u_j alpha_j (s_j - w_j)``.

A fold whose system fails its residual check (a singular support system) is solved again
with a ridge of :data:`~skimplicit.tuning.FALLBACK_RIDGE` times its mean diagonal and a
``LinearSolveWarning``, as on the host.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..implicit.linear_solve import _cg_loop, default_tol, solve_cg
from ..solvers import enet_gap, fold_lipschitz, fold_matvec, quadratic_fista
from ..tuning import CVProblem, to_device
from ..tuning._kernel import solve_with_fallback
from ..tuning._device import pad_rows
from ..tuning._progress import check_time
from ..utils import nothing_to_tune
from ._cv_problems import EnetSearchSpace

__all__ = ["DeviceEnetProblem", "device_folds"]


@partial(jax.jit, static_argnames=("fit_intercept", "normalize_weights"))
def _center_fold(Xtr, ytr, sw, Xte, yte, *, fit_intercept, normalize_weights):
    """One fold on the device: ``A = S^{1/2} X_c / sqrt(n)``, ``ys``, and the test rows
    centered with the training means."""
    n = Xtr.shape[0]
    s = sw * (n / jnp.sum(sw)) if normalize_weights else sw
    if fit_intercept:
        x_mean, y_mean = s @ Xtr / jnp.sum(s), jnp.sum(s * ytr) / jnp.sum(s)
    else:
        x_mean, y_mean = jnp.zeros(Xtr.shape[1], Xtr.dtype), jnp.zeros((), Xtr.dtype)
    r = jnp.sqrt(s / n)
    return ((Xtr - x_mean) * r[:, None], (ytr - y_mean) * r, Xte - x_mean, yte - y_mean)


def device_folds(folds, fit_intercept, dtype, gram=None, normalize_weights=True):
    """The folds on the device, in one pass over them (each read once, moved there once
    and prepared there): a training part centered and sqrt-weight scaled (``A =
    S^{1/2} X_c / sqrt(n)``, ``ys = S^{1/2} y_c / sqrt(n)``: ``G = A^T A``), a test part
    centered with the training means.

    Returns ``(op (K, p, p) or (K, n, p), c (K, p), yy (K,), Xt (K, m, p), yt (K, m),
    swt (K, m), gram, constant)``: ``op`` the Gram matrices ``A^T A`` when ``gram``
    (default: ``p <=`` the first fold's rows), else the factors ``A`` zero-padded to the
    longest fold; test rows zero-padded with weight 0; ``constant``: whether each fold
    has nothing to tune (:func:`~skimplicit.utils.nothing_to_tune`).
    """
    ops, cs, yys, tests, constant = [], [], [], [], []
    with jax.enable_x64(True), jax.default_matmul_precision("highest"):
        for d in folds:
            Xtr, ytr, sw, Xte, yte, swte = d
            constant.append(nothing_to_tune(Xtr, ytr, sw, fit_intercept=fit_intercept))
            if gram is None:
                gram = Xtr.shape[1] <= Xtr.shape[0]
            A, ys, Xt, yt = _center_fold(
                *(to_device(a, dtype) for a in (Xtr, ytr, sw, Xte, yte)),
                fit_intercept=fit_intercept, normalize_weights=normalize_weights)
            del d, Xtr, Xte
            ops.append(A.T @ A if gram else A)
            cs.append(A.T @ ys)
            yys.append(ys @ ys)
            tests.append((Xt, yt, to_device(swte, dtype)))
            del A
        n = max(a.shape[0] for a in ops)
        m = max(t[0].shape[0] for t in tests)
        op = jnp.stack(ops if gram else [pad_rows(a, n) for a in ops])
        del ops
        Xt, yt, swt = (jnp.stack([pad_rows(t[i], m) for t in tests]) for i in range(3))
        return op, jnp.stack(cs), jnp.stack(yys), Xt, yt, swt, gram, constant


def _support_solve(A, mask, l2, ridge, B, U0, gram, tol=None, polish=False):
    """CG on ``(G_SS + l2 + ridge) u_S = b_S`` (identity off the support) for each of the
    ``(K, B)`` problems: ``A (K, ...)`` per fold, the others ``(K, B, p)`` (``ridge``:
    ``(K, B)``). ``polish``: the plain CG loop, at most 1000 iterations and no
    ``LinearSolveWarning`` (a polish that fails is checked and discarded by its caller);
    returns ``(x, None)`` then."""

    def one(A_k, m, l2_, r, b, u):
        def op(v):
            mv = m * v
            Gv = A_k @ mv if gram else A_k.T @ (A_k @ mv)
            return m * (Gv + (l2_ + r) * mv) + (1 - m) * v
        if polish:
            x, _ = _cg_loop(op, m * b, m * u, tol, 1000)
            return x, None
        return solve_cg(op, m * b, init=m * u, tol=tol, return_info=True)

    per_fold = jax.vmap(one, in_axes=(None, 0, 0, 0, 0, 0))
    return jax.vmap(per_fold)(A, mask, l2, ridge, B, U0)


@partial(jax.jit, static_argnames=("gram", "positive", "with_grad"))
def _enet_eval(A, c, yy, L, Xt, yt, swt, alpha, rho, W0, U0, ridge, tol, max_iter, *,
               gram, positive, with_grad):
    """One evaluation of ``B`` points on all ``K`` folds (module docstring): ``alpha``,
    ``W0``, ``U0`` ``(K, B, p)``, ``rho`` and ``ridge`` ``(K, B)``."""
    l1 = alpha * rho[..., None]
    l2 = alpha * (1 - rho)[..., None]
    W, info = quadratic_fista(A, c, yy, L, l1, l2, W0, tol, max_iter, gram=gram,
                              positive=positive)
    # Polish on the support (exact when the support and signs are right), to near machine
    # precision: the polished solution is the exact one.
    mask = (W != 0).astype(W.dtype)
    sgn = jnp.sign(W)
    eps = jnp.finfo(W.dtype).eps
    cb = jnp.broadcast_to(c[:, None], W.shape)
    Wp, _ = _support_solve(A, mask, l2, jnp.zeros_like(ridge), cb - l1 * sgn, W, gram,
                           tol=min(default_tol(W.dtype), 1e3 * float(eps)), polish=True)
    Wp = Wp * mask
    gap = info.stop_crit
    gap_p, _ = enet_gap(Wp, fold_matvec(A, Wp, gram), cb, yy[:, None], l1, l2, positive)
    ok = jnp.all(jnp.where(mask > 0, jnp.sign(Wp) == sgn, True), axis=-1) & (
        (gap_p <= gap) | (gap_p <= info.threshold))
    W = jnp.where(ok[..., None], Wp, W)
    info = info._replace(stop_crit=jnp.where(ok, gap_p, gap),
                         converged=info.converged | (ok & (gap_p <= info.threshold)))
    R = yt[:, None] - jnp.einsum("kmp,kbp->kbm", Xt, W)
    sws = jnp.sum(swt, axis=1)[:, None]
    loss = jnp.sum(swt[:, None] * R * R, axis=-1) / sws
    if not with_grad:
        return W, info, loss, ok
    g = -2 * jnp.einsum("kmp,kbm->kbp", Xt, swt[:, None] * R) / sws[..., None]
    # The ridge of a singular system, relative to the mean diagonal of its support block.
    diag = (jnp.einsum("kii->ki", A) if gram else jnp.sum(A * A, axis=1))[:, None]
    size = jnp.maximum(jnp.sum(mask, axis=-1), 1)
    scale = jnp.sum(mask * (diag + l2), axis=-1) / size
    U, lin = _support_solve(A, mask, l2, ridge * scale, g, U0, gram)
    sgn = jnp.sign(W)
    d_alpha = -U * (rho[..., None] * sgn + (1 - rho)[..., None] * W)
    d_rho = -jnp.sum(U * alpha * (sgn - W), axis=-1)
    return W, info, loss, ok, d_alpha, d_rho, U, lin.success, lin.residual


class DeviceEnetProblem(EnetSearchSpace, CVProblem):
    """:class:`~skimplicit.linear_model._cv_problems.EnetCVProblem` on a JAX device.

    The same objective, search space, cover and warm starts by nearest point; the inner
    solves, the polish and the hypergradient of all folds in one compiled program per
    evaluation (module docstring). ``dtype``: float32 or float64 on the device.
    ``max_iter`` counts FISTA iterations (default ``20 x`` the estimator's CD epochs).
    """

    warm_state = ("_solutions", "_u0")

    def __init__(self, folds, *, fit_intercept=True, l1_ratio=1.0, tune_l1_ratio=False,
                 alpha_per_feature=False, positive=False, tol=1e-4, max_iter=20000,
                 bounds=None, l1_ratio_bounds=(0.01, 1.0), starts=None, eps=None,
                 dtype=np.float64):
        self.fit_intercept, self.positive = fit_intercept, positive
        self.tol, self.max_iter = tol, int(max_iter)
        self.dtype = np.dtype(dtype)
        (self._A, self._c, self._yy, self._Xt, self._yt, self._swt, self.gram,
         self._constant) = device_folds(folds, fit_intercept, self.dtype)
        self._n_folds, self.n_features = self._c.shape
        with jax.enable_x64(True), jax.default_matmul_precision("highest"):
            self._L = fold_lipschitz(self._A, self.gram)
        alpha_maxes = np.max(np.abs(np.asarray(self._c, float)), axis=1)
        self._set_space(alpha_maxes.tolist(), self._constant, l1_ratio=l1_ratio,
                        tune_l1_ratio=tune_l1_ratio, alpha_per_feature=alpha_per_feature,
                        bounds=bounds, l1_ratio_bounds=l1_ratio_bounds, starts=starts,
                        eps=eps)
        self._u0 = None

    # The cover in one call (all its points x all folds in one FISTA, each iteration one
    # matrix product per fold: on an accelerator about the time of one point's matrix-
    # vector product) where it pays: not on a CPU, whose time grows with the points.
    batch_cover = None

    @property
    def evaluate_cover(self):
        """``evaluate_cover(points, precision=, with_grad=)`` on an accelerator (the outer
        loop then evaluates the cover at once), else ``None`` (point by point, warm-started
        along the path)."""
        batched = self.batch_cover if self.batch_cover is not None else \
            jax.default_backend() != "cpu"
        return self._evaluate_points if batched else None

    def _warm_start(self, alpha_vec, l1_ratio):
        """The stored fold solutions ``(K, p)`` nearest to the point, or None."""
        W, dist = self._solutions.nearest(np.r_[np.log(alpha_vec), l1_ratio], self._distance)
        return W, dist

    def _remember(self, alpha_vec, l1_ratio, coefs):
        self._solutions.add(np.r_[np.log(alpha_vec), l1_ratio], coefs)

    def _run(self, alphas, rhos, tol, with_grad, ridge):
        """The compiled evaluation of ``B`` points: ``alphas (B, p)``, ``rhos (B,)``,
        ``ridge (K, B)``."""
        K, p, B = self._n_folds, self.n_features, len(rhos)
        starts = [self._warm_start(a, r)[0] for a, r in zip(alphas, rhos)]
        # (float32 products in float32: not TF32, whose 10-bit mantissa the solver and the
        # hypergradient would inherit)
        with jax.enable_x64(True), jax.default_matmul_precision("highest"):
            dt = self.dtype
            zero = jnp.zeros((K, p), dt)
            W0 = jnp.stack([zero if w is None else w for w in starts], axis=1)
            U0 = jnp.zeros((K, B, p), dt) if self._u0 is None or B > 1 else self._u0[:, None]
            alpha = jnp.broadcast_to(jnp.asarray(alphas, dt)[None], (K, B, p))
            rho = jnp.broadcast_to(jnp.asarray(rhos, dt)[None], (K, B))
            # float32: a duality gap below ~1e-6 of the objective is rounding.
            tol = max(tol, 1e-6) if dt == np.float32 else tol
            out = _enet_eval(self._A, self._c, self._yy, self._L, self._Xt, self._yt,
                             self._swt, alpha, rho, W0, U0, jnp.asarray(ridge, dt),
                             jnp.asarray(tol, dt), self.max_iter, gram=self.gram,
                             positive=self.positive, with_grad=with_grad)
            return jax.block_until_ready(out)

    def _point(self, params):
        alpha = np.broadcast_to(np.asarray(params["alpha"], float), (self.n_features,))
        return alpha, float(params.get("l1_ratio", self.l1_ratio))

    def _evaluate_points(self, points, *, precision=1.0, with_grad=False):
        """The cover's points in one compiled call (no gradient: the cover ranks values)."""
        check_time()
        pts = [self._point(p) for p in points]
        alphas, rhos = np.array([a for a, _ in pts]), np.array([r for _, r in pts])
        W, info, loss, ok = self._run(alphas, rhos, self.tol * precision, False,
                                      np.zeros((self._n_folds, len(pts))))
        loss, ok = np.asarray(loss, float), np.asarray(ok)
        conv, iters = np.asarray(info.converged), np.asarray(info.n_iter)
        support = np.count_nonzero(np.asarray(W), axis=-1)
        out = []
        for b, (a, r) in enumerate(pts):
            self._remember(a, r, W[:, b])
            out.append(self.evaluation(loss[:, b], None, conv[:, b].all(),
                                       n_iter=iters[:, b].tolist(), exact=ok[:, b].tolist(),
                                       support_size=support[:, b].tolist()))
        return out

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        alpha_vec, l1_ratio = self._point(params)
        tol = self.tol * precision
        K = self._n_folds
        check_time()
        if not with_grad:
            return self._evaluate_points([params], precision=precision)[0]
        def point(ridge):  # this point's program; a relative ridge per fold (K,)
            W, info, loss, exact, d_alpha, d_rho, U, ok, res = self._run(
                alpha_vec[None], [l1_ratio], tol, True, np.asarray(ridge)[:, None])
            return tuple(a[:, 0] for a in (W, info.converged, info.n_iter, loss, exact,
                                           d_alpha, d_rho, U, ok, res))

        # A fold whose support system fails its residual check: again with a ridge
        # there, reported (as on the host).
        W, conv, n_iter, loss, exact, d_alpha, d_rho, U, ok, res, ridge = solve_with_fallback(
            point, (), {}, K, "support system")
        self._remember(alpha_vec, l1_ratio, W)
        self._u0 = U
        g = d_alpha.astype(float).mean(axis=0)
        grad = {"alpha": g if self.alpha_per_feature else float(g.sum())}
        if self.tune_l1_ratio:
            grad["l1_ratio"] = float(d_rho.astype(float).mean())
        return self.evaluation(
            loss.astype(float), grad, bool(conv.all()) and bool(ok.all()),
            n_iter=n_iter.tolist(), exact=exact.tolist(),
            support_size=np.count_nonzero(W, axis=-1).tolist(),
            linear_residual=float(np.max(res)), ridge=ridge)
