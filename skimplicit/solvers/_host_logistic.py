r"""Host (NumPy / SciPy) inner solvers of scikit-learn's ``LogisticRegression`` objective.

With ``alpha_k = 1 / C_k`` (one per column of ``W``) and ``rho = l1_ratio``,

.. math::
    \min_{W, b} \; \sum_i s_i \, \ell(y_i, x_i^\top W + b)
    + \sum_k \alpha_k \Big(\rho \|W_k\|_1 + \frac{1 - \rho}{2} \|W_k\|_2^2\Big),

``l`` the binary logistic loss (one column, for class 1) or the multinomial loss
(``n_classes`` columns, intercept with mean zero). Nothing to compile; warm-started; the
stopping test is scikit-learn's meaning of ``tol`` (largest gradient entry of the mean-loss
objective) for standardized columns (see :func:`column_scales`).

* ``l1_ratio = 0``: truncated Newton (Newton-CG with Hessian-vector products, Armijo
  steps; exact steps with the formed Hessian on large, narrow, binary dense folds, see
  :data:`DIRECT_NEWTON_MAX`), warm-started: two or three Newton steps per outer step
  reach ``1e-8``.
* ``l1_ratio > 0``: scipy's L-BFGS-B on the split ``W = W+ - W-`` (the bounds ``W+-`` >= 0
  make the zeros exact), then an active-set Newton polish on the support with the signs
  fixed (machine-precision solutions, hence hypergradients; kept only if it does not
  increase the optimality violation).

Chosen by measurement (one training fold, warm start from ``C / 1.3 .. C / 2``, tolerance
1e-8, CPU seconds with one BLAS thread on a shared 2-core machine):

=============================  =========  ===================  ==========  ==========
fold                           this       scikit-learn         sklearn     sklearn
                               module     ``newton-cg``        ``lbfgs``   ``saga``
=============================  =========  ===================  ==========  ==========
3000 x 100, l2                 4.9 ms     13.3 ms              8.2 ms
1200 x 500, l2                 12.3 ms    32.9 ms              13.6 ms
1078 x 64, 10 classes, l2      28 ms      34 ms                80 ms
1200 x 500, l1                 23 ms                                       minutes (*)
=============================  =========  ===================  ==========  ==========

(*) ``LogisticRegressionCV(solver="saga", Cs=20)`` took 215 s on that problem. The JAX
working-set solvers of :mod:`skimplicit.solvers` (vmapped over the 5 folds) spent
4.8 s compiling, then 1.0 to 1.7 s per evaluation on the l1 problem.

Entry points: :func:`solve_logistic` (penalty objects of :mod:`skimplicit.solvers`, a
:class:`~skimplicit.solvers.HostSolverInfo` status) and :func:`fit_logistic` (the same solve on arrays),
:func:`refine_logistic` (a few more Newton steps on an l2 solution), data scales
:func:`c_min`, :func:`c_ridge`, :func:`column_scales`, and the array helpers
(:func:`one_hot`, :func:`host_matrix`, :func:`log_loss_terms`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit

from .._blas import one_blas_thread
from ._host_cd import HostSolverInfo
from ._penalties import L1, L2, ElasticNet

__all__ = [
    "solve_logistic",
    "fit_logistic",
    "refine_logistic",
    "kkt_violation",
    "one_hot",
    "host_matrix",
    "log_loss_terms",
    "decision_values",
    "probabilities",
    "intercept_at_zero",
    "c_min",
    "c_ridge",
    "column_moments",
    "column_scales",
    "REFINE_TOL",
]

REFINE_TOL = 1e-13
"""Gradient tolerance (scikit-learn's meaning) of the Newton steps that make an l2
solution exact before its hypergradient."""


def one_hot(y_enc, n_classes):
    """Targets as columns: ``(n, 1)`` for binary (class 1 is positive), else one-hot."""
    y_enc = np.asarray(y_enc)
    if n_classes == 2:
        return (y_enc == 1).astype(float)[:, None]
    return (y_enc[:, None] == np.arange(n_classes)[None, :]).astype(float)


def _logsumexp(Z):
    """Row-wise ``log(sum(exp(Z)))`` (scipy's array-API version costs ~0.3 ms a call)."""
    m = Z.max(axis=1)
    return m + np.log(np.exp(Z - m[:, None]).sum(axis=1))


def decision_values(X, W, b):
    """The logits ``X W + b`` as a dense ``(n, K)`` array (``X`` dense or sparse)."""
    Z = X @ W
    return np.asarray(Z) + b


def probabilities(Z):
    """Probabilities of the logits ``Z``: the sigmoid of one column (binary: class 1), else
    the softmax of each row."""
    if Z.shape[1] == 1:
        return expit(Z)
    return np.exp(Z - _logsumexp(Z)[:, None])


def log_loss_terms(Z, Y):
    """Per-sample log-loss ``l(y_i, z_i)`` (binary: one column of logits)."""
    if Z.shape[1] == 1:
        z, y = Z[:, 0], Y[:, 0]
        return np.logaddexp(0.0, z) - y * z
    return _logsumexp(Z) - np.sum(Y * Z, axis=1)


def _loss_grad(W, b, X, Y, sw, fit_intercept):
    """``sum_i s_i l_i``, its gradients in ``W`` and ``b``, and the probabilities."""
    Z = decision_values(X, W, b)
    loss = float(np.dot(sw, log_loss_terms(Z, Y)))
    P = probabilities(Z)
    R = (P - Y) * sw[:, None]
    GW = np.asarray(X.T @ R)
    gb = R.sum(axis=0) if fit_intercept else np.zeros_like(b)
    return loss, GW, gb, P


def intercept_at_zero(Y, sw):
    """Optimal intercept with ``W = 0``: the log-odds (multinomial: centered log-freqs)."""
    freq = np.clip((sw @ Y) / sw.sum(), 1e-12, 1 - 1e-12)
    if Y.shape[1] == 1:
        return np.log(freq) - np.log1p(-freq)
    logf = np.log(freq)
    return logf - logf.mean()


def c_min(X, Y, sw, fit_intercept):
    """``1 / ||X^T (s * (P0 - Y))||_inf`` at ``W = 0`` (``P0``: the intercept's fit).

    With an L1 penalty ``rho * ||W||_1`` the solution is ``W = 0`` exactly for
    ``C <= rho * c_min``; for any penalty it is the scale where coefficients become O(1).
    """
    b0 = intercept_at_zero(Y, sw) if fit_intercept else np.zeros(Y.shape[1])
    P0 = probabilities(np.broadcast_to(b0, Y.shape))
    G = np.asarray(X.T @ ((P0 - Y) * sw[:, None]))
    g = float(np.max(np.abs(G))) if G.size else 0.0
    return 1.0 / g if g > 0 else np.inf


def column_moments(X, sw, fit_intercept):
    """Weighted second moment of each column (centered when ``fit_intercept``) and the
    uncentered one."""
    w = sw / sw.sum()
    if sp.issparse(X):
        ms = np.asarray(X.multiply(X).T @ w).ravel()
        mean = np.asarray(X.T @ w).ravel()
    else:
        # By blocks of rows: no temporary the size of X (whose first touch of fresh
        # memory cost more than the arithmetic: 30 ms for a 1600 x 5000 fold, 5 ms so).
        ms = np.zeros(X.shape[1])
        step = max(1, 2 ** 16 // max(X.shape[1], 1))
        for s in range(0, X.shape[0], step):
            B = X[s:s + step]
            ms += w[s:s + step] @ (B * B)
        mean = X.T @ w
    ms = np.maximum(ms, 0.0)
    var = np.maximum(ms - mean * mean, 0.0) if fit_intercept else ms
    return var, ms


def c_ridge(X, Y, sw, fit_intercept):
    """``1 / (2 lambda)``, ``lambda`` the mean eigenvalue of the loss's Hessian in ``W`` at
    ``W = 0`` (the intercept's fit; the intercept eliminated): the ``C`` at which the l2
    penalty ``||W||^2 / (2 C)`` weighs about as much as the loss's curvature.

    At ``W = 0`` every sample has the same probabilities ``p0``, so
    ``lambda = mean_k p0_k (1 - p0_k) * sum(s) * mean_j var_j`` (weighted column variances).
    Scaling ``X`` by ``a`` scales it by ``1 / a^2``, as the l2 optimum; the sample weights
    by ``c``: ``1 / c``. On standardized data it is close to ``c_min`` (:func:`c_min`, the
    l1 scale, which moves like ``1 / a``). ``inf`` when ``X`` has no variation.
    """
    b0 = intercept_at_zero(Y, sw) if fit_intercept else np.zeros(Y.shape[1])
    P0 = probabilities(np.broadcast_to(b0, (1, Y.shape[1])))[0]
    pq = float(np.mean(P0 * (1.0 - P0)))
    var, _ = column_moments(X, sw, fit_intercept)
    lam = pq * float(sw.sum()) * float(np.mean(var)) if var.size else 0.0
    return 1.0 / (2.0 * lam) if lam > 0 and np.isfinite(lam) else np.inf


def column_scales(X, sw, fit_intercept):
    """The data's own unit of each column: its weighted standard deviation (``(p, 1)``).

    The inner solvers work in the coordinates ``V = W * scale`` (the coefficients of the
    standardized columns): their stopping tests (scikit-learn's meaning of ``tol``, the
    largest gradient entry of the mean-loss objective, on standardized data) and their
    conditioning are then the same whatever the units of each column. Centered when an
    intercept is fitted (the intercept absorbs the mean); a column without variation
    takes its root mean square, an all-zero column the unit 1.
    """
    var, ms = column_moments(X, sw, fit_intercept)
    # Rounding leaves ~1e-16 ms in the variance of a constant column: use its rms there.
    scale = np.sqrt(np.where(var > 1e-12 * ms, var, ms))
    scale[~(np.isfinite(scale) & (scale > 0))] = 1.0
    return scale[:, None]


def _hess_matvec(X, P, sw, binary, fit_intercept):
    """``(V, vb) -> Hessian of sum_i s_i l_i`` applied to the direction ``(V, vb)``."""
    if binary:
        D = (sw * P[:, 0] * (1.0 - P[:, 0]))[:, None]

        def hv(V, vb):
            M = D * (np.asarray(X @ V) + vb)
            return np.asarray(X.T @ M), (M.sum(axis=0) if fit_intercept else 0.0 * vb)
    else:
        def hv(V, vb):
            dZ = np.asarray(X @ V) + vb
            PZ = P * dZ
            M = (PZ - P * PZ.sum(axis=1, keepdims=True)) * sw[:, None]
            return np.asarray(X.T @ M), (M.sum(axis=0) if fit_intercept else 0.0 * vb)
    return hv


DIRECT_NEWTON_MAX = 128
"""Binary l2 problems on dense folds with at most this many columns, at least four times
as many rows and at least :data:`DIRECT_NEWTON_MIN_ENTRIES` entries take exact Newton
steps (the Hessian formed and factored) instead of conjugate-gradient ones. Forming it
costs ``n p^2`` flops; a Hessian-vector product reads the fold twice, and a truncated step
takes five or six of them (the tight solves before a hypergradient ~20). Measured on one
BLAS thread, in a fit's Newton solves: 40000 x 100 folds 7.1 s against 11.1 s with CG;
16000 x 200: 9.2 s against 7.9 s."""

DIRECT_NEWTON_MIN_ENTRIES = 2 ** 21
"""Folds smaller than this (16 MB of float64) stay in the processor's caches, where a
Hessian-vector product runs at the speed of arithmetic, not of memory: there the
conjugate gradient is the cheaper step (3000 x 100 folds: 0.46-0.52 s a warm fit with
CG steps, 0.66-0.69 s with exact ones)."""


def _uses_direct_newton(X, K, mask):
    n, p = X.shape
    return (K == 1 and mask is None and not sp.issparse(X) and p <= DIRECT_NEWTON_MAX
            and n >= 4 * p and n * p >= DIRECT_NEWTON_MIN_ENTRIES)


def _direct_newton_step(X, P, sw, l2, gW, gb, d, fit_intercept):
    """The exact Newton step ``(dV, db)`` of a binary l2 problem in the coordinates
    ``V = W * d`` (``gW`` the gradient in them): the Hessian
    ``[[X^T D X + l2 I, X^T D 1], [1^T D X, 1^T D 1]]`` (``D = s p (1 - p)``) scaled to
    ``V`` and solved by Cholesky. ``None`` when it is not positive definite."""
    D = sw * P[:, 0] * (1.0 - P[:, 0])
    r = np.sqrt(D)
    p = X.shape[1]
    # X^T D X by blocks of rows (in cache; no weighted copy of X: its first touch of
    # fresh memory cost a fifth of the step at 40000 x 100).
    H, hb = np.zeros((p, p)), np.zeros(p)
    block = max(1, 2 ** 18 // max(p, 1))
    for s in range(0, X.shape[0], block):
        B = X[s:s + block] * r[s:s + block, None]
        H += B.T @ B
        hb += B.T @ r[s:s + block]
    dd = np.broadcast_to(np.asarray(d, float).reshape(-1), (p,))
    H /= np.outer(dd, dd)
    H[np.diag_indices_from(H)] += float(l2[0]) / (dd * dd)
    g = -gW[:, 0]
    if fit_intercept:
        hb = hb / dd
        H = np.block([[H, hb[:, None]], [hb[None, :], np.array([[D.sum()]])]])
        g = np.r_[g, -gb]
    try:
        step = sla.cho_solve(sla.cho_factor(H, lower=True, check_finite=False), g,
                             check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    if not np.all(np.isfinite(step)):
        return None
    return step[:p, None], (step[p:] if fit_intercept else np.zeros_like(gb))


COV_PRECOND_MAX = 256
"""Binary l2 folds with at most this many columns and at least four times as many rows
precondition their conjugate gradient with ``c [X 1]^T S [X 1] + diag(l2, 0)`` (``S`` the
sample weights, ``c`` the mean curvature ``s p (1 - p) / s``) when the caller keeps the
fold's :func:`fold_moments`: the Hessian with its curvature averaged, factored at every
Newton step in ``O(p^3)``, against the diagonal otherwise (:func:`_cg_step`)."""


def fold_moments(X, sw):
    """``[X 1]^T diag(sw) [X 1]`` (``(p + 1, p + 1)``, dense ``X``) by blocks of rows: the
    fold's weighted second moments, kept by callers across solves (see
    :data:`COV_PRECOND_MAX`)."""
    p = X.shape[1]
    A = np.zeros((p + 1, p + 1))
    block = max(1, 2 ** 18 // max(p, 1))
    for s in range(0, X.shape[0], block):
        B = np.concatenate([X[s:s + block], np.ones((min(block, X.shape[0] - s), 1))], axis=1)
        A += B.T @ (B * sw[s:s + block, None])
    return A


COV_PRECOND_MIN_ENTRIES = 2 ** 16
"""Folds with fewer entries keep the diagonal preconditioner: there a Hessian-vector
product costs less than a triangular solve's overhead (breast cancer, 455 x 30 folds:
0.24 s a warm fit with the moments' preconditioner, 0.18 s without; 4000 x 100 folds:
0.38 s against 0.45 s)."""


def uses_cov_precond(X, K):
    """Whether :func:`_newton_cg` takes a fold's :func:`fold_moments` (see
    :data:`COV_PRECOND_MAX` and :data:`COV_PRECOND_MIN_ENTRIES`)."""
    n, p = X.shape
    return (K == 1 and not sp.issparse(X) and p <= COV_PRECOND_MAX and n >= 4 * p
            and n * p >= COV_PRECOND_MIN_ENTRIES)


def _cov_precond(cov, P, sw, l2, d, fit_intercept, limit_threads=True):
    """The preconditioner of :data:`COV_PRECOND_MAX` in ``V = W * d``: ``(rW, rb) ->
    M^-1 (rW, rb)``; None when ``M`` is not positive definite. ``limit_threads``: its
    factorization and solves on one BLAS thread (folds that keep the library's threads;
    the others run on one already, and entering the limit costs more than a small
    solve)."""
    p = cov.shape[0] - 1
    c = float(sw @ (P[:, 0] * (1.0 - P[:, 0]))) / float(sw.sum())
    dd = np.ones(p) if np.ndim(d) == 0 else np.asarray(d, float).reshape(-1)
    e = np.r_[1.0 / dd, 1.0]
    M = c * cov * np.outer(e, e)
    M[np.arange(p), np.arange(p)] += float(l2[0]) / (dd * dd)
    if not fit_intercept:
        M = M[:p, :p]
    # (one BLAS thread: small factorizations between the fold's long products ran 10-60x
    # slower on two, 19 ms a 201 x 201 Cholesky)
    try:
        with one_blas_thread(limit_threads):
            fac = sla.cho_factor(M, lower=True, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    if not np.all(np.isfinite(fac[0])):
        return None

    def apply(rW, rb):
        with one_blas_thread(limit_threads):
            z = sla.cho_solve(fac, np.r_[rW[:, 0], rb] if fit_intercept else rW[:, 0],
                              check_finite=False)
        return z[:p, None], (z[p:] if fit_intercept else 0.0 * rb)

    return apply


def _cg_step(X, P, sw, l2, gW, gb, d, m, binary, fit_intercept, swsum, max_cg,
             precond=None):
    """The truncated Newton step ``(dV, db)`` in ``V = W * d``: preconditioned conjugate
    gradient on ``H d = -g`` with products by the Hessian (:func:`_hess_matvec`), to the
    Eisenstat-Walker forcing term; ``precond`` (``(rW, rb) -> (zW, zb)``) replaces its
    diagonal preconditioner."""
    hv = _hess_matvec(X, P, sw, binary, fit_intercept)
    # Jacobi-like preconditioner in V: the loss's curvature per output (the columns
    # are standardized in V) plus the penalty's, l2 / d^2 (orders of magnitude apart
    # across columns when their units differ).
    # The same for every class (a class-dependent scaling would move the multinomial
    # intercept along its free direction (1, ..., 1)).
    curv = float(np.mean(sw @ (P * (1.0 - P))))
    curv = curv if curv > 0 else 1.0
    MW = curv + l2 / (d * d) * np.ones_like(gW)
    MW = np.where(MW > 0, MW, 1.0)
    Mb = curv
    gnorm = np.sqrt(np.sum(gW * gW) + np.sum(gb * gb))
    eta = min(0.5, np.sqrt(gnorm / swsum)) * gnorm
    dW, db = np.zeros_like(gW), np.zeros_like(gb)
    rW, rb = -gW, -gb
    if precond is None:
        def precond(rW, rb):
            return rW / MW, rb / Mb
    zW, zb = precond(rW, rb)
    pW, pb = zW.copy(), zb.copy()
    rz = float(np.sum(rW * zW) + np.sum(rb * zb))
    for _ in range(max_cg):
        HW, Hb = hv(pW / d * m, pb)
        HW = (HW + l2 * (pW / d)) * m / d
        pHp = float(np.sum(pW * HW) + np.sum(pb * Hb))
        if pHp <= 1e-300 * rz:  # flat direction (pure L1 polish): stop here
            if not np.any(dW) and not np.any(db):
                dW, db = pW, pb
            break
        a = rz / pHp
        dW += a * pW
        db += a * pb
        rW -= a * HW
        rb -= a * Hb
        if np.sqrt(float(np.sum(rW * rW) + np.sum(rb * rb))) <= eta:
            break
        zW, zb = precond(rW, rb)
        rz_new = float(np.sum(rW * zW) + np.sum(rb * zb))
        pW = zW + (rz_new / rz) * pW
        pb = zb + (rz_new / rz) * pb
        rz = rz_new
    return dW, db


def _newton_cg(X, Y, sw, l2, W, b, *, tol, max_iter, fit_intercept, mask=None, lin=None,
               col_scale=None, cov=None):
    """Truncated Newton on ``sum s l + sum_k l2_k / 2 ||W_k||^2 + <lin, W>`` (its steps by
    :func:`_cg_step`, or exact ones by :func:`_direct_newton_step` where
    :func:`_uses_direct_newton`).

    ``l2`` has shape ``(K,)`` (one per column of ``W``). With ``mask``, entries of ``W``
    off the mask stay 0 (a Newton polish on a fixed support with ``lin = alpha rho sign``).
    The conjugate gradient and the stopping test work in the coordinates
    ``V = W * col_scale`` (``(p, 1)``, see :func:`column_scales`; the identity if None):
    stops when the largest gradient entry in them is ``<= tol * sum(s)`` (scikit-learn's
    ``newton-cg`` criterion on its mean-loss scaling, for standardized columns). ``cov``:
    the fold's :func:`fold_moments` where :func:`uses_cov_precond` (binary, no ``mask``):
    its preconditioner (:data:`COV_PRECOND_MAX`) instead of exact steps or the diagonal.
    Returns ``(W, b, n_iter, ok)``.
    """
    binary = Y.shape[1] == 1
    d = 1.0 if col_scale is None else col_scale
    swsum = float(sw.sum())
    lin = 0.0 if lin is None else lin
    m = 1.0 if mask is None else mask
    n_free = W.size if mask is None else int(np.count_nonzero(mask))
    max_cg = max(20, 2 * (n_free + b.size))
    cov = cov if (cov is not None and mask is None and uses_cov_precond(X, Y.shape[1])) \
        else None
    direct = cov is None and _uses_direct_newton(X, Y.shape[1], mask)

    def value(W, b):
        loss, GW, gb, P = _loss_grad(W, b, X, Y, sw, fit_intercept)
        f = loss + 0.5 * float(np.sum(l2 * W * W)) + float(np.sum(lin * W))
        return f, (GW + l2 * W + lin) * m, gb, P

    f, gW, gb, P = value(W, b)
    gW = gW / d  # the gradient in V = W * d
    best = (np.inf, W, b)  # the iterate with the smallest gradient (returned on failure:
    # at the floating-point floor, e.g. C ~ 1e7 c_scale on separable data, steps wander)
    for it in range(max_iter + 1):
        gmax = max(float(np.max(np.abs(gW), initial=0.0)), float(np.max(np.abs(gb), initial=0.0)))
        if gmax <= tol * swsum:
            return W, b, it, True
        if gmax < best[0]:
            best = (gmax, W, b)
        if it == max_iter or not np.isfinite(f):
            break
        step = (_direct_newton_step(X, P, sw, l2, gW, gb, d, fit_intercept)
                if direct else None)
        if step is not None:
            dW, db = step
        else:
            pre = None if cov is None else _cov_precond(
                cov, P, sw, l2, d, fit_intercept, _library_threads(X, 1, cov))
            dW, db = _cg_step(X, P, sw, l2, gW, gb, d, m, binary, fit_intercept, swsum,
                              max_cg, precond=pre)
        gnorm = np.sqrt(np.sum(gW * gW) + np.sum(gb * gb))
        slope = float(np.sum(gW * dW) + np.sum(gb * db))
        if slope >= 0:
            break
        dW = dW / d  # back to W's units
        t = 1.0
        while True:
            f2, gW2, gb2, P2 = value(W + t * dW, b + t * db)
            gW2 = gW2 / d
            if f2 <= f + 1e-4 * t * slope:
                break
            # Near the solution the decrease (~ |g|^2 / h) falls below the rounding of
            # ``f`` (a sum of n terms, each ~ its weight): accept a full Newton step that
            # shrinks the gradient.
            if (t == 1.0 and abs(f2 - f) <= 1e-12 * max(swsum, abs(f))
                    and np.sum(gW2 * gW2) + np.sum(gb2 * gb2) < gnorm ** 2):
                break
            if t < 1e-10:
                # No decrease along a descent direction: the floating-point floor.
                return best[1], best[2], it, best[0] <= max(tol, 1e-10) * swsum
            t *= 0.5
        W, b, f, gW, gb, P = W + t * dW, b + t * db, f2, gW2, gb2, P2
    return best[1], best[2], it, False


def newton_cg_gram(K, X, y, sw, l2, a, b, *, tol, max_iter, fit_intercept=True,
                   col_scale=None):
    """Truncated Newton on a binary l2 problem with more columns than rows, in the
    coordinates of its rows: ``W = X^T a`` (the solution of
    ``sum_i s_i l(y_i, x_i^T W + b) + l2 / 2 ||W||^2`` lies in the row space of ``X``, as
    every Newton iterate from such a start).

    ``K = X X^T (n, n)`` (the fold's Gram matrix), ``X (n, p)`` dense, ``y (n,)`` labels in
    {0, 1}, ``sw (n,)``, ``a (n,)`` and ``b`` the start. The logits are ``K a + b``; a
    conjugate-gradient iteration costs one product with ``K`` (``n^2``) instead of two
    with ``X`` (``2 n p``), and the line search none. The stopping test is
    :func:`_newton_cg`'s (the largest entry of the gradient ``X^T g`` in
    ``V = W * col_scale``, ``<= tol * sum(s)``); its product with ``X^T`` is made only where
    the bounds from ``||X^T g||^2 = g^T K g`` do not decide it. The conjugate gradient is
    :func:`_cg_step`'s without its diagonal preconditioner (which would leave the row
    space): for columns of comparable scales. Returns ``(a, b, W (p,), n_iter, ok)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers._host_logistic import newton_cg_gram, _newton_cg, one_hot
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(30, 80); y = (X[:, 0] + rng.randn(30) > 0).astype(float)
    >>> a, b, W, n_iter, ok = newton_cg_gram(X @ X.T, X, y, np.ones(30), 2.0, np.zeros(30),
    ...                                      0.0, tol=1e-12, max_iter=50)
    >>> W2, b2, _, _ = _newton_cg(X, one_hot(y.astype(int), 2), np.ones(30), np.array([2.0]),
    ...                           np.zeros((80, 1)), np.zeros(1), tol=1e-12, max_iter=50,
    ...                           fit_intercept=True)
    >>> bool(ok), bool(np.allclose(W, W2[:, 0], rtol=0, atol=1e-10))
    (True, True)
    """
    d = np.ones(X.shape[1]) if col_scale is None else np.asarray(col_scale, float).ravel()
    a, b, l2 = np.array(a, float), float(np.ravel(b)[0]), float(np.ravel(l2)[0])
    swsum = float(sw.sum())
    max_cg = max(20, 2 * (a.size + 1))

    def state(a, b, Ka):
        Z = Ka + b
        terms = np.logaddexp(0.0, Z) - y * Z
        f = float(sw @ terms) + 0.5 * l2 * float(a @ Ka)
        P = expit(Z)
        return f, P

    def gradient(a, P):
        g = sw * (P - y) + l2 * a  # the gradient in W is X^T g
        gb = float(np.sum(sw * (P - y))) if fit_intercept else 0.0
        return g, gb

    def gmax_of(g, gb):  # the stopping test's quantity (one product with X^T)
        return max(float(np.max(np.abs((X.T @ g) / d), initial=0.0)), abs(gb))

    Ka = K @ a
    f, P = state(a, b, Ka)
    best = (np.inf, a, b, None, None)
    lo, hi = 1.0 / (np.sqrt(d.size) * d.max()), 1.0 / d.min()
    for it in range(max_iter + 1):
        g, gb = gradient(a, P)
        Kg = K @ g
        gW2 = max(float(g @ Kg), 0.0)  # ||X^T g||^2
        # ||X^T g / d||_inf lies in [lo, hi] ||X^T g||: the product with X^T only when
        # those bounds do not decide the test.
        bound = tol * swsum
        if abs(gb) > bound or lo * np.sqrt(gW2) > bound:
            converged = False
        elif hi * np.sqrt(gW2) <= bound:
            converged = True
        else:
            converged = gmax_of(g, gb) <= bound
        if converged:
            return a, b, X.T @ a, it, True
        if gW2 + gb * gb < best[0]:  # (the smallest gradient, in W's norm)
            best = (gW2 + gb * gb, a, b, g, gb)
        if it == max_iter or not np.isfinite(f):
            break
        # Conjugate gradient on H (dW, db) = -(gW, gb) with dW = X^T c, in the inner
        # product <(c, beta), (c', beta')> = c^T K c' + beta beta' (W's, in coefficients).
        Dw = sw * P * (1.0 - P)
        gnorm = np.sqrt(gW2 + gb * gb)
        eta = min(0.5, np.sqrt(gnorm / swsum)) * gnorm
        c, beta, Kc = np.zeros_like(a), 0.0, np.zeros_like(a)
        rc, rb, Kr = -g, -gb, -Kg
        pc, pb, Kp = rc.copy(), rb, Kr.copy()
        rr = gnorm * gnorm
        for _ in range(max_cg):
            u = Dw * (Kp + pb)
            Hc, Hb = u + l2 * pc, (float(u.sum()) if fit_intercept else 0.0)
            pHp = float(Kp @ Hc) + pb * Hb
            if pHp <= 1e-300 * rr:
                if not np.any(c) and beta == 0.0:
                    c, beta, Kc = pc, pb, Kp
                break
            t = rr / pHp
            c, beta, Kc = c + t * pc, beta + t * pb, Kc + t * Kp
            KH = K @ Hc
            rc, rb, Kr = rc - t * Hc, rb - t * Hb, Kr - t * KH
            rr_new = float(rc @ Kr) + rb * rb
            if np.sqrt(max(rr_new, 0.0)) <= eta:
                break
            pc, pb, Kp = rc + (rr_new / rr) * pc, rb + (rr_new / rr) * pb, \
                Kr + (rr_new / rr) * Kp
            rr = rr_new
        slope = float(Kg @ c) + gb * beta
        if slope >= 0:
            break
        dZ = Kc + beta
        t = 1.0
        while True:
            a2, b2 = a + t * c, b + t * beta
            Z2 = Ka + b + t * dZ
            f2 = float(sw @ (np.logaddexp(0.0, Z2) - y * Z2)) + 0.5 * l2 * float(
                a2 @ (Ka + t * Kc))
            if f2 <= f + 1e-4 * t * slope:
                break
            if t == 1.0 and abs(f2 - f) <= 1e-12 * max(swsum, abs(f)):
                # Near the solution (see _newton_cg): a full step that shrinks the gradient.
                g2, gb2 = gradient(a2, expit(Z2))
                if float(g2 @ (K @ g2)) + gb2 * gb2 < gnorm ** 2:
                    break
            if t < 1e-10:  # the floating-point floor: the best iterate, if it passes
                ok = gmax_of(best[3], best[4]) <= max(tol, 1e-10) * swsum
                return best[1], best[2], X.T @ best[1], it, ok
            t *= 0.5
        a, b = a2, b2
        Ka = K @ a  # (recomputed, not updated: the objective stays exact)
        f, P = state(a, b, Ka)
    return best[1], best[2], X.T @ best[1], it, False


def _lbfgsb_enet(X, Y, sw, l1, l2, W, b, *, tol, max_iter, fit_intercept, col_scale=None):
    """scipy's L-BFGS-B on ``W = W+ - W-`` with ``W+-`` >= 0 (exact zeros).

    The variables are ``V+- = W+- * col_scale`` (see :func:`column_scales`), so that the
    gradient test ``gtol = tol`` and the conditioning do not depend on the columns' units.
    """
    p, K = W.shape
    pk = p * K
    swsum = float(sw.sum())
    d = np.ones((p, 1)) if col_scale is None else col_scale

    def fun(u):
        Vp = u[:pk].reshape(p, K)
        Vm = u[pk:2 * pk].reshape(p, K)
        Wd = (Vp - Vm) / d
        bb = u[2 * pk:]
        loss, GW, gb, _ = _loss_grad(Wd, bb, X, Y, sw, fit_intercept)
        f = loss + float(np.sum(l1 * (Vp + Vm) / d)) + 0.5 * float(np.sum(l2 * Wd * Wd))
        G = GW + l2 * Wd
        g = np.concatenate([((G + l1) / d).ravel(), ((l1 - G) / d).ravel(), gb])
        return f / swsum, g / swsum

    u0 = np.concatenate([(np.maximum(W, 0) * d).ravel(), (np.maximum(-W, 0) * d).ravel(), b])
    bounds = [(0.0, None)] * (2 * pk) + [(None, None) if fit_intercept else (0.0, 0.0)] * K
    res = minimize(fun, u0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-16, "maxls": 50})
    u = res.x
    W = (u[:pk].reshape(p, K) - u[pk:2 * pk].reshape(p, K)) / d
    return W, u[2 * pk:].copy(), int(res.nit), bool(res.success)


def kkt_violation(W, b, X, Y, sw, l1, l2, fit_intercept, col_scale=None):
    """Largest violation of the optimality conditions, divided by ``sum(s)`` (in the
    standardized coordinates ``W * col_scale``, see :func:`column_scales`)."""
    _, GW, gb, _ = _loss_grad(W, b, X, Y, sw, fit_intercept)
    G = GW + l2 * W
    on = W != 0
    v = np.where(on, np.abs(G + l1 * np.sign(W)), np.maximum(np.abs(G) - l1, 0.0))
    if col_scale is not None:
        v = v / col_scale
    return max(float(np.max(v, initial=0.0)), float(np.max(np.abs(gb), initial=0.0))) / sw.sum()


LIBRARY_THREADS_MIN_ENTRIES = 2 ** 21
"""Folds with at least this many entries (``n p K``; 16 MB of float64, beyond the
caches, as :data:`DIRECT_NEWTON_MIN_ENTRIES`) keep the BLAS library's threads in the host
solves (see :func:`_library_threads`)."""


def _library_threads(X, K, cov=None):
    """Whether a fold's solves keep the library's BLAS threads, else run on one.

    The inner solvers make thousands of matrix-vector products of a few milliseconds at
    most: a second BLAS thread gains little, and when the machine is oversubscribed its
    spin-waits cost more than the products (measured on a loaded 2-core machine, l1 fit of
    a 1500 x 500 problem: 48 s with OpenBLAS's 2 threads, 4 s with one). Folds of at least
    :data:`LIBRARY_THREADS_MIN_ENTRIES` keep the library's setting (it was ``n p K > 1e7``
    before), except those that take exact Newton steps (:func:`_uses_direct_newton`, when
    no ``cov`` replaces them). Measured in fresh processes, the second of two fits, three
    alternating runs each: at 20000 x 200 (16000 x 200 folds, conjugate-gradient steps)
    7.3-8.3 s with one thread, 4.8-5.3 s with the library's two; at 50000 x 100 (exact
    steps) 8.0-8.3 s with one, 7.6-10.9 s with two (erratic: the background compilation
    of the hypergradient kernel competes for the cores).
    """
    if _uses_direct_newton(X, K, None) and not (cov is not None and uses_cov_precond(X, K)):
        return False
    return X.shape[0] * X.shape[1] * K >= LIBRARY_THREADS_MIN_ENTRIES


def _one_blas_thread(X, K, cov=None):
    """Context: one BLAS thread for a fold's solves, unless :func:`_library_threads`."""
    return one_blas_thread(not _library_threads(X, K, cov))


def fit_logistic(X, Y, sw, alpha, l1_ratio, W0=None, b0=None, *, tol=1e-4, max_iter=1000,
                 fit_intercept=True, polish=True, refine=False, col_scale=None, cov=None):
    """Minimize ``sum_i s_i l_i + sum_k alpha_k (rho ||W_k||_1 + (1 - rho)/2 ||W_k||^2)``.

    ``X`` dense or sparse ``(n, p)``, ``Y`` from :func:`one_hot` ``(n, K)`` (``K = 1``
    binary), ``alpha`` of shape ``(K,)`` (``1 / C``), ``rho = l1_ratio``. ``tol``:
    scikit-learn's meaning (largest entry of the gradient of its mean-loss objective) for
    standardized columns (see :func:`column_scales`). ``polish=False`` skips the
    active-set Newton polish of l1 / elastic-net solutions (when only a validation loss
    is needed); ``refine=True`` (the final refit) adds up to five Newton steps past
    ``tol`` to l2 solutions. ``col_scale``: :func:`column_scales` of ``(X, sw,
    fit_intercept)`` when the caller keeps it (one pass over ``X`` saved a solve);
    ``cov``: :func:`fold_moments` of ``(X, sw)`` when the caller keeps it (used by l2
    solves where :func:`uses_cov_precond`).
    Returns ``(W (p, K), b (K,), n_iter, converged)``; :func:`solve_logistic` is the
    same solve with penalty objects and a status record.

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import fit_logistic
    >>> from skimplicit.solvers._host_logistic import one_hot
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(60, 5); y = (X[:, 0] + 0.5 * rng.randn(60) > 0).astype(int)
    >>> W, b, n_iter, converged = fit_logistic(X, one_hot(y, 2), np.ones(60), [1.0], 0.0,
    ...                                        tol=1e-10)
    >>> W.shape, b.shape, converged
    ((5, 1), (1,), True)
    """
    with _one_blas_thread(X, Y.shape[1], cov):
        return _fit_logistic(X, Y, sw, alpha, l1_ratio, W0, b0, tol=tol, max_iter=max_iter,
                             fit_intercept=fit_intercept, polish=polish, refine=refine,
                             col_scale=col_scale, cov=cov)


def _fit_logistic(X, Y, sw, alpha, l1_ratio, W0, b0, *, tol, max_iter, fit_intercept, polish,
                  refine=False, col_scale=None, cov=None):
    p, K = X.shape[1], Y.shape[1]
    alpha = np.broadcast_to(np.asarray(alpha, float), (K,))
    rho = float(l1_ratio)
    if W0 is None:
        W0 = np.zeros((p, K))
        b0 = intercept_at_zero(Y, sw) if fit_intercept else np.zeros(K)
    W0, b0 = np.array(W0, float), np.array(b0, float)
    d = column_scales(X, sw, fit_intercept) if col_scale is None else col_scale
    if rho == 0.0:
        W, b, n_iter, ok = _newton_cg(X, Y, sw, alpha, W0, b0, tol=tol, max_iter=max_iter,
                                      fit_intercept=fit_intercept, col_scale=d, cov=cov)
        if ok and n_iter == 0 and not np.any(W):
            # An l2 solution is exactly zero only where the loss's gradient is: a zero
            # start passing the gradient test (a tiny gradient relative to sum(s), e.g.
            # class weights 1000 : 1e-4) takes Newton steps at tol / 1000 anyway, else
            # the model, hence the validation loss, would be the same at every C.
            W, b, it2, _ = _newton_cg(X, Y, sw, alpha, W, b, tol=tol * 1e-3, max_iter=3,
                                      fit_intercept=fit_intercept, col_scale=d, cov=cov)
            n_iter += it2
        if refine and ok:
            # Newton converges quadratically: up to 5 more steps at REFINE_TOL make the
            # model exact to rounding. The gradient test alone leaves an error of
            # tol / lambda_min in W, 1e-6 relative at C ~ 3000 with tol=1e-10, enough for
            # weighted and repeated-row versions of one problem to differ (tol / 1000 was
            # not enough either: 2e-6 in the decision function at C ~ 1e4, tol=1e-4).
            W, b, it2, _ = _newton_cg(X, Y, sw, alpha, W, b, tol=min(tol * 1e-3, REFINE_TOL),
                                      max_iter=5, fit_intercept=fit_intercept, col_scale=d,
                                      cov=cov)
            n_iter += it2
        if K > 1 and np.all(alpha == alpha[0]):
            W, b = _center_classes(W, b, 0.0, alpha[0])
        return W, b, n_iter, ok
    l1, l2 = alpha * rho, alpha * (1.0 - rho)
    W, b, n_iter, ok = _lbfgsb_enet(X, Y, sw, l1, l2, W0, b0, tol=tol, max_iter=max_iter,
                                    fit_intercept=fit_intercept, col_scale=d)
    if polish:
        W, b, it2 = _polish(X, Y, sw, l1, l2, W, b, tol, fit_intercept, col_scale=d)
        n_iter += it2
    if K > 1 and np.all(alpha == alpha[0]):
        W, b = _center_classes(W, b, l1[0], l2[0])
    if not ok:
        ok = kkt_violation(W, b, X, Y, sw, l1, l2, fit_intercept, d) <= tol
    return W, b, n_iter, bool(ok)


def _center_classes(W, b, l1, l2):
    """The multinomial solution's free direction fixed at the penalty's minimum.

    The multinomial loss is invariant to adding one number ``s_j`` to every class's
    coefficient of feature ``j`` (and one number to every intercept): the exact optimum
    has ``s_j = argmin_s sum_k l1 |W_jk - s| + l2 / 2 (W_jk - s)^2`` equal to 0 (the
    penalty's minimum along that direction; ``b``: mean zero, the symmetric choice).
    Applying that shift is exact and lowers the objective; an inexact solve at large C,
    where only the weak penalty pins the direction, would otherwise leave it arbitrary
    (two solves of one problem, e.g. weighted and repeated rows, would differ along it).
    ``l2`` only: the mean over classes; ``l1`` only: the median (the midpoint of the
    middle two for an even number of classes); both: the 1-D convex minimum, found among
    the breakpoints ``W_jk`` and each linear piece's stationary point.
    """
    if l1 == 0.0:
        s = W.mean(axis=1)
    elif l2 == 0.0:
        s = np.median(W, axis=1)
    else:
        K = W.shape[1]
        m = np.arange(K + 1)  # number of W_jk below s on each piece
        stat = (W.sum(axis=1, keepdims=True) - l1 * (2 * m - K) / l2) / K
        cand = np.concatenate([W, stat], axis=1)  # (p, 2K + 1)
        dev = W[:, None, :] - cand[:, :, None]
        f = l1 * np.abs(dev).sum(axis=2) + 0.5 * l2 * (dev ** 2).sum(axis=2)
        s = cand[np.arange(W.shape[0]), np.argmin(f, axis=1)]
    return W - s[:, None], b - b.mean()


def _polish(X, Y, sw, l1, l2, W, b, tol, fit_intercept, max_rounds=6, col_scale=None):
    """Active-set Newton after L-BFGS-B: the support's smooth problem, signs fixed.

    Each round solves the problem restricted to the support with ``sign(W)`` fixed by
    Newton-CG to machine precision (hypergradients need accurate solutions, and L-BFGS-B
    may stop on its relative-decrease test); coefficients whose sign flips leave the
    support, zeros that violate ``|G_j| <= l1`` enter it. The result is kept only if its
    optimality violation is not larger than L-BFGS-B's.
    """
    viol = kkt_violation(W, b, X, Y, sw, l1, l2, fit_intercept, col_scale)
    n_iter = 0
    Wc, bc = W, b
    sign = np.sign(W)
    for _ in range(max_rounds):
        mask = sign != 0
        if not mask.any():
            break
        Wp, bp, it, _ = _newton_cg(X, Y, sw, l2, np.where(mask, Wc, 0.0), bc,
                                   tol=min(tol, 1e-10) * 1e-2, max_iter=20,
                                   fit_intercept=fit_intercept, mask=mask, lin=l1 * sign,
                                   col_scale=col_scale)
        n_iter += it
        flipped = mask & (np.sign(Wp) != sign)
        if flipped.any():
            sign = np.where(flipped, 0.0, sign)
            Wc, bc = np.where(flipped, 0.0, Wc), bc
            continue
        _, GW, _, _ = _loss_grad(Wp, bp, X, Y, sw, fit_intercept)
        G = GW + l2 * Wp
        entering = ~mask & (np.abs(G) > l1 * (1 + 1e-12))
        if entering.any():
            sign = np.where(entering, -np.sign(G), sign)
            Wc, bc = Wp, bp
            continue
        if kkt_violation(Wp, bp, X, Y, sw, l1, l2, fit_intercept, col_scale) <= viol:
            W, b = Wp, bp
        break
    return W, b, n_iter



def host_matrix(X):
    """``X`` for the host solvers: CSR if sparse (and not small or dense-ish), else dense.

    scipy's sparse products cost tens of microseconds each whatever the size, and the
    inner solvers make thousands: small matrices (``n p <= 5e4``) and moderately sized
    ones with a density of 5 % or more (``n p <= 2e6``) are densified.
    """
    if sp.issparse(X):
        size = X.shape[0] * X.shape[1]
        if size <= 50_000 or (size <= 2_000_000 and 20 * X.nnz >= size):
            return X.toarray()
        return X.tocsr()
    return np.asarray(X, float)


def _alpha_rho(penalty):
    """``(alpha, l1_ratio)`` of an :class:`~skimplicit.solvers.L1`, ``L2`` or
    ``ElasticNet`` penalty (``alpha`` a scalar or one per column of ``W``)."""
    if isinstance(penalty, L2):
        return penalty.alpha, 0.0
    if isinstance(penalty, L1):
        return penalty.alpha, 1.0
    if isinstance(penalty, ElasticNet):
        return penalty.alpha, penalty.l1_ratio
    raise TypeError(f"penalty must be L1, L2 or ElasticNet; got {type(penalty).__name__}.")


def solve_logistic(X, Y, penalty, *, sample_weight=None, init=None, tol=1e-4, max_iter=1000,
                   fit_intercept=True, polish=True, refine=False, col_scale=None, cov=None):
    """Host inner solve of ``LogisticRegression``'s objective: the logistic datafit (binary
    for one column of ``Y``, multinomial for one-hot ``Y``) times an ``L2`` (Newton-CG),
    ``L1`` or ``ElasticNet`` penalty (split L-BFGS-B and an active-set Newton polish).

    Parameters
    ----------
    X : array or sparse matrix of shape (n_samples, n_features)
        See :func:`host_matrix` for the fastest layout.
    Y : ndarray of shape (n_samples, K)
        Targets from :func:`one_hot` (``K = 1``: binary, class 1 positive).
    penalty : L1, L2 or ElasticNet
        ``alpha = 1 / C`` (a scalar, or one per column of ``Y``); scikit-learn's
        ``LogisticRegression(C, l1_ratio)`` is ``ElasticNet(1 / C, l1_ratio)``.
    sample_weight : ndarray of shape (n_samples,), default=None (ones)
    init : (W, b) or None
        Warm start; ``None``: ``W = 0`` and the intercept's own optimum.
    tol : float
        scikit-learn's meaning (largest gradient entry of the mean-loss objective) for
        standardized columns (see :func:`column_scales`).
    max_iter : int
    fit_intercept, polish, refine : bool
        See :func:`fit_logistic`.
    col_scale : ndarray of shape (n_features, 1), default=None
        :func:`column_scales` of the data, when the caller keeps it across solves
        (default: computed, one pass over ``X``).
    cov : ndarray of shape (n_features + 1, n_features + 1), default=None
        :func:`fold_moments` of the data, when the caller keeps it across solves: the
        preconditioner of binary l2 solves where :func:`uses_cov_precond`.

    Returns
    -------
    W : ndarray of shape (n_features, K)
    b : ndarray of shape (K,)
    info : HostSolverInfo
        ``converged``: the gradient test of Newton-CG; L-BFGS-B's success, or else an
        optimality violation (:func:`kkt_violation`) ``<= tol``. ``n_iter``: Newton
        iterations, or L-BFGS-B's plus the polish's Newton iterations. ``exact``: False
        (nothing certifies the solution to rounding error; the polish and ``refine``
        bring it there in practice).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import L1, L2, solve_logistic
    >>> from skimplicit.solvers._host_logistic import one_hot
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(80, 10); y = (X[:, 0] - X[:, 1] + 0.5 * rng.randn(80) > 0).astype(int)
    >>> W, b, info = solve_logistic(X, one_hot(y, 2), L1(1 / 0.5), tol=1e-10)
    >>> info.converged, int(np.count_nonzero(W)) < 10
    (True, True)
    >>> W2, b2, info2 = solve_logistic(X, one_hot(y, 2), L2(1.0), init=(W, b), max_iter=0)
    >>> info2.converged
    False
    """
    alpha, rho = _alpha_rho(penalty)
    sw = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    W0, b0 = (None, None) if init is None else init
    W, b, n_iter, ok = fit_logistic(X, Y, sw, alpha, rho, W0, b0, tol=tol, max_iter=max_iter,
                                    fit_intercept=fit_intercept, polish=polish, refine=refine,
                                    col_scale=col_scale, cov=cov)
    return W, b, HostSolverInfo(converged=bool(ok), n_iter=int(n_iter), exact=False)


def refine_logistic(X, Y, sample_weight, alpha, W, b, *, fit_intercept=True, tol=REFINE_TOL,
                    max_iter=3, cov=None):
    """Up to ``max_iter`` more Newton steps on an l2 solution (``alpha = 1 / C``), in the
    raw coordinates (no column scaling), to the gradient tolerance ``tol`` (default
    :data:`REFINE_TOL`): Newton converges quadratically, so an l2 solution becomes exact
    to rounding before its hypergradient. ``cov``: as :func:`solve_logistic`'s. Returns
    ``(W, b, n_iter)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import fit_logistic, refine_logistic
    >>> from skimplicit.solvers._host_logistic import kkt_violation, one_hot
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(60, 5); Y = one_hot((X[:, 0] > 0).astype(int), 2); sw = np.ones(60)
    >>> W, b, _, _ = fit_logistic(X, Y, sw, [1.0], 0.0, tol=1e-4)
    >>> W, b, n_iter = refine_logistic(X, Y, sw, np.array([1.0]), W, b)
    >>> bool(kkt_violation(W, b, X, Y, sw, 0.0, 1.0, True) < 1e-13)
    True
    """
    with _one_blas_thread(X, Y.shape[1], cov):  # (as fit_logistic)
        return _refine_logistic(X, Y, sample_weight, alpha, W, b, fit_intercept, tol,
                                max_iter, cov)


def _refine_logistic(X, Y, sample_weight, alpha, W, b, fit_intercept, tol, max_iter, cov):
    W, b, n_iter, _ = _newton_cg(X, Y, sample_weight, alpha, W, b, tol=tol,
                                 max_iter=max_iter, fit_intercept=fit_intercept, cov=cov)
    if n_iter == 0 and max_iter > 0 and Y.shape[1] == 1:
        # Already passing the test: one more step anyway. Its conjugate gradient runs to
        # a forcing term ~ |g|^1.5, so the gradient falls to rounding; a solve that
        # stopped just under the test (e.g. 1e-13 sum(s), an error of ~1e-13 in the
        # validation loss) is otherwise left there, which finite differences see.
        # (Binary only: a multinomial step would also move the intercepts along their
        # free direction, which the solvers fix by centering.)
        W, b, n_iter, _ = _newton_cg(X, Y, sample_weight, alpha, W, b, tol=0.0, max_iter=1,
                                     fit_intercept=fit_intercept, cov=cov)
    return W, b, n_iter
