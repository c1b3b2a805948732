"""Host (NumPy / SciPy) inner solvers of scikit-learn's smooth, piecewise-smooth models.

Exact minimizers, warm-startable, each with a :class:`~skimplicit.solvers.HostSolverInfo`
status (``exact`` = ``converged``: a converged solve is the minimizer to rounding error):

* :func:`squared_svm_newton`: liblinear's L2-regularized squared hinge / squared
  epsilon-insensitive primal, ``1/2 ||w||^2 + C sum_i s_i l_i(w)``, by Newton's method on
  the active set (Keerthi & DeCoste 2005), the active set's Gram matrix updated by rows;
* :func:`huber_newton` / :func:`huber_fit`: ``HuberRegressor``'s joint objective in
  ``(w, b, sigma)``, Newton on the inlier set (``huber_fit`` starts from scikit-learn's own
  fit when it has no warm start, or when Newton fails from it);
* :func:`tweedie_newton`: the log-link Tweedie GLMs (Poisson, Gamma, Tweedie with
  ``power >= 1``), Newton with a backtracking line search;
* :func:`weighted_kernel_ridge`: ``KernelRidge``'s weighted dual solve (one Cholesky
  factorization).

They serve the final steps of :class:`~skimplicit.model_selection.HypergradSearchCV`,
whose hypergradients reuse the factorizations and Hessians they return.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg as sla

from ._host_cd import HostSolverInfo

__all__ = ["squared_svm_newton", "huber_newton", "huber_fit", "tweedie_terms",
           "tweedie_newton", "weighted_kernel_ridge"]


def _info(n_iter, converged):
    return HostSolverInfo(converged=bool(converged), n_iter=int(n_iter),
                          exact=bool(converged))


# -- squared hinge / squared epsilon-insensitive (liblinear's L2-loss SVMs) ---------------

def _svm_objective(X, y, s, C, w, hinge, epsilon):
    r = y - X @ w
    m = np.maximum(0.0, y * r) if hinge else np.maximum(0.0, np.abs(r) - epsilon)
    return 0.5 * w @ w + C * np.sum(s * m * m)


def _svm_pattern(X, y, w, hinge, epsilon):
    """The active rows (1) of the squared hinge; the signs (+-1) of the active residuals
    of the epsilon-insensitive loss (0 inactive)."""
    r = y - X @ w
    if hinge:
        return (y * r > 0).astype(float)
    act = np.abs(r) > epsilon
    return np.where(act, np.sign(r), 0.0).astype(float)


def _svm_gram(X, s, y, key, state, hinge, epsilon):
    """``(key, M, v, n_updates)``: ``M = X_A^T S X_A`` and ``v = X_A^T S y~_A`` on the
    active rows of ``key`` (``y~ = y - epsilon key`` for the SVR). From ``state`` (another
    pattern's) by the rows whose pattern changed, when they are fewer than half the active
    rows (``O(changed p^2)`` instead of ``O(active p^2)``); afresh otherwise, and every 64
    updates (rounding does not accumulate)."""
    def parts(rows, k):
        Xr, sr = X[rows], s[rows]
        yr = y[rows] if hinge else y[rows] - epsilon * k[rows]
        return (Xr.T * sr) @ Xr, Xr.T @ (sr * yr)

    act = key != 0
    if state is not None:
        old, M, v, n_up = state
        changed = np.flatnonzero(old != key)
        if n_up < 64 and 2 * changed.size < max(int(act.sum()), 1):
            leave = changed[old[changed] != 0]
            enter = changed[key[changed] != 0]
            if leave.size:
                dM, dv = parts(leave, old)
                M, v = M - dM, v - dv
            if enter.size:
                dM, dv = parts(enter, key)
                M, v = M + dM, v + dv
            return key, M, v, n_up + 1
    M, v = parts(np.flatnonzero(act), key)
    return key, M, v, 0


def squared_svm_newton(X, y, C, *, sample_weight, loss="squared_hinge", epsilon=0.0,
                       init=None, max_iter=200, gram=None):
    """Exact minimizer of ``1/2 ||w||^2 + C sum_i s_i l_i(w)`` (liblinear's primal).

    ``l_i`` is the squared hinge ``max(0, 1 - y_i x_i.w)^2`` (``y`` in ``{-1, 1}``) or the
    squared epsilon-insensitive loss ``max(0, |y_i - x_i.w| - epsilon)^2``. An intercept
    is a column of ``X`` (liblinear's ``intercept_scaling``, penalized as it does).

    Active-set Newton: each step minimizes the quadratic that equals the objective on the
    current active set (and signs); when its minimizer has the same active set it is the
    exact minimizer. Otherwise a backtracking step along it (the objective is convex).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    C : float
    sample_weight : ndarray of shape (n_samples,)
    loss : {"squared_hinge", "squared_epsilon_insensitive"}
    epsilon : float
    init : ndarray of shape (n_features,) or None
        Warm start (zeros if None).
    max_iter : int
    gram : tuple or None
        The ``gram`` returned by a previous call on the same ``X``, ``y`` and weights (any
        ``C``): the active set's Gram matrix is updated from it by the rows that changed.

    Returns
    -------
    w : ndarray of shape (n_features,)
    cho : tuple
        ``scipy.linalg.cho_factor`` of the Hessian ``I + 2 C X_A^T S X_A`` at the final
        active set (``None`` if ``max_iter = 0``).
    info : HostSolverInfo
        Converged when a Newton step keeps the active set (the exact minimizer).
    gram : tuple
        The final active set's Gram matrix, for the next call.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import LinearSVC
    >>> from skimplicit.solvers import squared_svm_newton
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(80, 3); y = np.where(X[:, 0] + 0.5 * rng.randn(80) > 0, 1.0, -1.0)
    >>> Xa = np.hstack([X, np.ones((80, 1))])  # intercept_scaling = 1
    >>> w, cho, info, gram = squared_svm_newton(Xa, y, 0.5, sample_weight=np.ones(80))
    >>> ref = LinearSVC(C=0.5, dual=False, tol=1e-12).fit(X, y)
    >>> bool(info.converged), bool(np.allclose(w[:3], ref.coef_[0], rtol=1e-5))
    (True, True)
    """
    hinge = loss == "squared_hinge"
    if not hinge and loss != "squared_epsilon_insensitive":
        raise ValueError(f"Unknown loss {loss!r}.")
    s, state = sample_weight, gram
    p = X.shape[1]
    w = np.zeros(p) if init is None else init
    f = _svm_objective(X, y, s, C, w, hinge, epsilon)
    cho = None
    for it in range(max_iter):
        key = _svm_pattern(X, y, w, hinge, epsilon)
        state = _svm_gram(X, s, y, key, state, hinge, epsilon)
        _, M, v, _ = state
        cho = sla.cho_factor(np.eye(p) + 2.0 * C * M)
        w_new = sla.cho_solve(cho, 2.0 * C * v)
        if np.array_equal(_svm_pattern(X, y, w_new, hinge, epsilon), key):
            return w_new, cho, _info(it + 1, True), state
        d, step = w_new - w, 1.0
        while True:
            f_new = _svm_objective(X, y, s, C, w + step * d, hinge, epsilon)
            if f_new <= f or step < 1e-12:
                break
            step *= 0.5
        w, f = w + step * d, f_new
    return w, cho, _info(max_iter, False), state


# -- Huber ----------------------------------------------------------------------------------

def _huber_parts(Xt, y, s, nw, theta, sigma, alpha, epsilon):
    """Objective, gradient and Hessian in ``(theta, sigma)`` on the current inlier set
    (``theta = (w, b)``, ``Xt`` the features and, with an intercept, a column of ones)."""
    p = Xt.shape[1]
    r = y - Xt @ theta
    inl = np.abs(r) < epsilon * sigma
    out = ~inl
    w = theta[:nw]
    f = (np.sum(s) * sigma + np.sum(s[inl] * r[inl] ** 2) / sigma
         + np.sum(s[out] * (2 * epsilon * np.abs(r[out]) - sigma * epsilon ** 2))
         + alpha * w @ w)
    g = np.empty(p + 1)
    g[:p] = (-2.0 * Xt[inl].T @ (s[inl] * r[inl]) / sigma
             - 2.0 * epsilon * Xt[out].T @ (s[out] * np.sign(r[out])))
    g[:nw] += 2.0 * alpha * w
    g[p] = (np.sum(s) - np.sum(s[inl] * r[inl] ** 2) / sigma ** 2
            - epsilon ** 2 * np.sum(s[out]))
    V = np.hstack([sigma * Xt[inl], r[inl][:, None]])
    H = (V.T * (2.0 * s[inl] / sigma ** 3)) @ V
    H[np.arange(nw), np.arange(nw)] += 2.0 * alpha
    return f, g, H


def _with_intercept(X, fit_intercept):
    return np.hstack([X, np.ones((len(X), 1))]) if fit_intercept else X


def huber_newton(X, y, alpha, theta, sigma, *, sample_weight, epsilon=1.35,
                 fit_intercept=True, tol=1e-30, max_iter=100):
    """Newton steps to the exact minimizer of ``HuberRegressor``'s objective
    ``sum_i s_i (sigma + H_eps(r_i / sigma) sigma) + alpha ||w||^2``, ``r_i = y_i - x_i.w
    - b``, from ``(theta, sigma)`` (``theta = (w, b)``, or ``w`` without intercept).

    scikit-learn's L-BFGS-B stops at a relative decrease of ~1e-9: on a fixed inlier set
    the objective is smooth and Newton converges quadratically; the line search keeps it
    decreasing across changes of the set. Converged when the Newton decrement (the
    predicted decrease, invariant to the data's scale) is at most ``tol * max(1, |f|)``
    (the gradient vanishes to rounding), or when no decrease is left at rounding level
    with a decrement of at most ``1e-12 max(1, |f|)``.

    Returns
    -------
    theta : ndarray, sigma : float, info : HostSolverInfo
    """
    s, nw = sample_weight, X.shape[1]
    Xt = _with_intercept(X, fit_intercept)
    f, g, H = _huber_parts(Xt, y, s, nw, theta, sigma, alpha, epsilon)
    for it in range(max_iter):
        try:
            d = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return theta, sigma, _info(it, False)
        # Newton decrement: the predicted decrease, invariant to the data's scale.
        decrement = float(-g @ d)
        if decrement <= tol * max(1.0, abs(f)):
            return theta, sigma, _info(it, True)
        step = 1.0
        while step >= 1e-12:
            th2, sg2 = theta + step * d[:-1], sigma + step * d[-1]
            if sg2 > 0:
                f2, g2, H2 = _huber_parts(Xt, y, s, nw, th2, sg2, alpha, epsilon)
                if f2 <= f + 1e-15 * abs(f):
                    break
            step *= 0.5
        else:  # no decrease left at rounding level
            return theta, sigma, _info(it, decrement <= 1e-12 * max(1.0, abs(f)))
        theta, sigma, f, g, H = th2, sg2, f2, g2, H2
    return theta, sigma, _info(max_iter, False)


def huber_fit(X, y, alpha, *, sample_weight, epsilon=1.35, fit_intercept=True, init=None,
              tol=1e-30, max_iter=100):
    """``HuberRegressor``'s exact minimizer: :func:`huber_newton` from ``init = (theta,
    sigma)``, or from scikit-learn's own fit (L-BFGS-B) when ``init`` is None or Newton
    fails from it.

    Returns
    -------
    theta : ndarray, sigma : float, info : HostSolverInfo

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import HuberRegressor
    >>> from skimplicit.solvers import huber_fit
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 3)); y = X @ [1.0, -2.0, 0.5] + rng.standard_t(2, 60)
    >>> theta, sigma, info = huber_fit(X, y, 0.1, sample_weight=np.ones(60))
    >>> ref = HuberRegressor(alpha=0.1, tol=1e-12, max_iter=10_000).fit(X, y)
    >>> bool(info.converged), bool(np.allclose(theta[:3], ref.coef_, rtol=1e-5))
    (True, True)
    """
    if init is not None:
        theta, sigma, info = huber_newton(X, y, alpha, init[0], init[1],
                                          sample_weight=sample_weight, epsilon=epsilon,
                                          fit_intercept=fit_intercept, tol=tol,
                                          max_iter=max_iter)
        if info.converged:
            return theta, sigma, info
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import HuberRegressor

    m = HuberRegressor(epsilon=epsilon, fit_intercept=fit_intercept, alpha=alpha,
                       max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y, sample_weight=sample_weight)
    theta = np.append(m.coef_, m.intercept_) if fit_intercept else m.coef_.copy()
    return huber_newton(X, y, alpha, theta, float(m.scale_), sample_weight=sample_weight,
                        epsilon=epsilon, fit_intercept=fit_intercept, tol=tol,
                        max_iter=max_iter)


# -- Tweedie GLMs, log link -----------------------------------------------------------------

def tweedie_terms(y, eta, power):
    """Unit Tweedie deviance of ``power`` (up to terms in ``y`` alone) and its first two
    derivatives in ``eta = log(mu)``."""
    p = power
    mu = np.exp(eta)
    if p == 1:
        f = 2 * (mu - y * eta)
    elif p == 2:
        f = 2 * (eta + y / mu)
    else:
        f = 2 * (-y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))
    d1 = 2 * (mu ** (2 - p) - y * mu ** (1 - p))
    d2 = 2 * ((2 - p) * mu ** (2 - p) - (1 - p) * y * mu ** (1 - p))
    return f, d1, d2


def _tweedie_parts(X, y, s, nw, theta, alpha, power):
    eta = X @ theta
    f, d1, d2 = tweedie_terms(y, eta, power)
    w = theta[:nw]
    F = 0.5 * np.sum(s * f) + 0.5 * alpha * w @ w
    g = 0.5 * X.T @ (s * d1)
    g[:nw] += alpha * w
    H = 0.5 * (X.T * (s * d2)) @ X
    H[np.arange(nw), np.arange(nw)] += alpha
    return F, g, H


def tweedie_newton(X, y, alpha, *, sample_weight, power=1.0, fit_intercept=True,
                   init=None, tol=1e-30, max_iter=200):
    """Exact minimizer of ``1/2 sum_i s_i d(y_i, mu_i) + alpha / 2 ||w||^2``, ``mu =
    exp(X theta)``, ``d`` the unit Tweedie deviance of ``power`` (1: Poisson, 2: Gamma;
    convex for ``1 <= power <= 2``): scikit-learn's GLM objective when ``s`` sums to one.

    With ``fit_intercept`` the last column of ``X`` is the intercept's (ones; not
    penalized). Newton's method with a backtracking line search from ``init`` (zeros and
    the intercept ``log(sum_i s_i y_i)`` if None); converged when the Newton decrement is
    at most ``tol * max(1, |F|)``, or when no decrease is left at rounding level with a
    decrement of at most ``1e-12 max(1, |F|)``.

    Returns
    -------
    theta : ndarray of shape (n_columns,)
    H : ndarray
        The Hessian at ``theta``.
    info : HostSolverInfo

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import PoissonRegressor
    >>> from skimplicit.solvers import tweedie_newton
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(100, 3) / 2; y = rng.poisson(np.exp(X @ [0.5, -0.3, 0.2])).astype(float)
    >>> Xa = np.hstack([X, np.ones((100, 1))])
    >>> theta, H, info = tweedie_newton(Xa, y, 0.1, sample_weight=np.full(100, 1 / 100))
    >>> ref = PoissonRegressor(alpha=0.1, solver="newton-cholesky", tol=1e-12).fit(X, y)
    >>> bool(info.converged), bool(np.allclose(theta[:3], ref.coef_, rtol=1e-6))
    (True, True)
    """
    s = sample_weight
    nw = X.shape[1] - 1 if fit_intercept else X.shape[1]
    theta = init
    if theta is None:
        theta = np.zeros(X.shape[1])
        if fit_intercept:
            theta[-1] = np.log(max(np.sum(s * y), 1e-300))
    F, g, H = _tweedie_parts(X, y, s, nw, theta, alpha, power)
    ok, n_iter = False, max_iter
    for it in range(max_iter):
        d = -np.linalg.solve(H, g)
        decrement = float(-g @ d)
        if decrement <= tol * max(1.0, abs(F)):
            ok, n_iter = True, it
            break
        step = 1.0
        while step >= 1e-12:
            th2 = theta + step * d
            F2, g2, H2 = _tweedie_parts(X, y, s, nw, th2, alpha, power)
            if np.isfinite(F2) and F2 <= F + 1e-15 * abs(F):
                break
            step *= 0.5
        else:
            ok, n_iter = decrement <= 1e-12 * max(1.0, abs(F)), it
            break
        theta, F, g, H = th2, F2, g2, H2
    return theta, H, _info(n_iter, ok)


# -- KernelRidge ----------------------------------------------------------------------------

def weighted_kernel_ridge(K, y, alpha, *, sample_weight):
    """``KernelRidge``'s dual coefficients, solved as scikit-learn solves them: with ``S``
    the weights, ``M = S^1/2 K S^1/2 + alpha I``, ``c = S^1/2 c'``, ``M c' = S^1/2 y`` (one
    Cholesky factorization; exact).

    Returns
    -------
    c : ndarray of shape (n_samples, n_targets)
    cp : ndarray of shape (n_samples, n_targets)
        ``c'``.
    factor : tuple
        ``scipy.linalg.cho_factor`` of ``M`` (for more solves with it).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_ridge import KernelRidge
    >>> from skimplicit.solvers import weighted_kernel_ridge
    >>> rng = np.random.RandomState(0)
    >>> X, y, s = rng.randn(30, 2), rng.randn(30), rng.randint(1, 3, 30).astype(float)
    >>> c, cp, factor = weighted_kernel_ridge(X @ X.T, y, 0.5, sample_weight=s)
    >>> ref = KernelRidge(alpha=0.5).fit(X, y, sample_weight=s)
    >>> bool(np.allclose(c[:, 0], ref.dual_coef_))
    True
    """
    r = np.sqrt(sample_weight)
    M = r[:, None] * K * r[None, :]
    M[np.diag_indices_from(M)] += alpha
    factor = sla.cho_factor(M, lower=True, check_finite=False)
    y2 = y.reshape(len(y), -1)
    cp = sla.cho_solve(factor, r[:, None] * y2, check_finite=False)
    c = r[:, None] * cp
    return c, cp, factor
