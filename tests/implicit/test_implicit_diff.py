"""Tests of ``custom_root`` / ``custom_fixed_point`` / ``root_vjp`` / ``root_jvp``.

Every derivative is checked against a closed form and/or central finite differences of
an independent solver (numpy, scipy or scikit-learn). float64 unless a test says
otherwise (the ``x64`` fixture of ``tests/conftest.py``).

Functions under test are jitted: op-by-op (eager) differentiation of these programs
compiles every primitive separately and is 5-10x slower here.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from sklearn.linear_model import ElasticNet, Lasso

from skimplicit.implicit import (
    LinearSolveWarning,
    custom_fixed_point,
    custom_root,
    optimality,
    root_jvp,
    root_vjp,
)
from skimplicit.implicit.linear_solve import solve_cg, solve_lu
from skimplicit.implicit.projection import (
    kl_projection_simplex,
    projection_box,
    projection_nonnegative,
)
from skimplicit.implicit.prox import prox_elastic_net, prox_lasso

pytestmark = pytest.mark.usefixtures("x64")


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# ======================================================================================
# Ridge: closed form ``w = (X^T X + diag(lam))^-1 X^T y``
# ======================================================================================

_rng = np.random.default_rng(0)
X_R = _rng.standard_normal((40, 8))
Y_R = X_R @ _rng.standard_normal(8) + 0.3 * _rng.standard_normal(40)
XV_R = _rng.standard_normal((25, 8))
YV_R = XV_R @ _rng.standard_normal(8) + 0.3 * _rng.standard_normal(25)


def ridge_objective(w, lam, X, y):
    """0.5 ||X w - y||^2 + 0.5 sum_j lam_j w_j^2 (``lam`` scalar or per feature)."""
    return 0.5 * jnp.sum((X @ w - y) ** 2) + 0.5 * jnp.sum(lam * w**2)


def _np_ridge(lam, X, y):
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (X.shape[1],))
    return np.linalg.solve(X.T @ X + np.diag(lam), X.T @ y)


@custom_root(optimality.stationary(ridge_objective))
def ridge_jax(init, lam, X, y):
    """A JAX solver (dense solve); only the implicit rule is differentiated."""
    del init
    lam = jnp.broadcast_to(lam, (X.shape[1],))
    return jnp.linalg.solve(X.T @ X + jnp.diag(lam), X.T @ y)


def _np_ridge_callback(lam, X, y):
    return _np_ridge(lam, np.asarray(X), np.asarray(y)).astype(X.dtype)


@custom_root(optimality.stationary(ridge_objective))
def ridge_black_box(init, lam, X, y):
    """The same solver as an opaque numpy call: JAX cannot differentiate through it."""
    del init
    out = jax.ShapeDtypeStruct((X.shape[1],), X.dtype)
    return jax.pure_callback(_np_ridge_callback, out, lam, X, y)


def _ridge_jacobian_closed_form(lam, X, y):
    """dw/dlam_j = -M^-1 e_j w_j, M = X^T X + diag(lam); scalar lam: -M^-1 w."""
    w = _np_ridge(lam, X, y)
    M = X.T @ X + np.diag(np.broadcast_to(lam, (X.shape[1],)))
    if np.ndim(lam) == 0:
        return -np.linalg.solve(M, w)
    return -np.linalg.solve(M, np.diag(w))


# Module-level jitted transforms, shared by several tests: compiling dominates the run
# time, so each test compiles as few programs as it can (one per dtype and shape).
@jax.jit
def ridge_jacobians(lam, X, y):
    """(jacrev, jacfwd) of the ridge solution with respect to the penalty."""
    return (jax.jacrev(ridge_jax, argnums=1)(None, lam, X, y),
            jax.jacfwd(ridge_jax, argnums=1)(None, lam, X, y))


@pytest.mark.parametrize("penalty", ["scalar", "per_feature"])
def test_ridge_jacobian_matches_closed_form(penalty):
    lam = 2.5 if penalty == "scalar" else np.linspace(0.5, 4.0, X_R.shape[1])
    J_ref = _ridge_jacobian_closed_form(lam, X_R, Y_R)
    for J in ridge_jacobians(jnp.asarray(lam), X_R, Y_R):  # jacrev, jacfwd
        assert J.shape == J_ref.shape
        assert J.dtype == jnp.float64
        assert _rel(J, J_ref) <= 1e-10


def _ridge_val_loss_np(theta):
    """Held-out 0.5 * MSE as a function of log-penalties, one per half of the features."""
    lam = np.repeat(np.exp(theta), X_R.shape[1] // 2)
    w = _np_ridge(lam, X_R, Y_R)
    return 0.5 * np.mean((XV_R @ w - YV_R) ** 2)


def _ridge_val_loss(theta, solver):
    lam = jnp.repeat(jnp.exp(theta), X_R.shape[1] // 2)
    w = solver(None, lam, X_R, Y_R)
    return 0.5 * jnp.mean((XV_R @ w - YV_R) ** 2)


def _fd_hessian(f, theta, h):
    """Second-order central differences of the values of ``f`` (no derivative used)."""
    d = len(theta)
    H = np.empty((d, d))
    E = np.eye(d) * h
    for i in range(d):
        for j in range(d):
            H[i, j] = (
                f(theta + E[i] + E[j]) - f(theta + E[i] - E[j])
                - f(theta - E[i] + E[j]) + f(theta - E[i] - E[j])
            ) / (4 * h * h)
    return H


def test_ridge_hessian_of_held_out_loss_matches_finite_differences():
    """Second order through a black-box (numpy) solver: only the implicit rule is
    differentiated, twice (the solver itself cannot be differentiated at all)."""
    theta = np.log(np.array([0.7, 3.0]))
    loss = lambda t: _ridge_val_loss(t, ridge_black_box)  # noqa: E731
    # jax.hessian is forward-over-reverse; reverse-over-reverse must agree with it.
    hessians = jax.jit(lambda t: (jax.hessian(loss)(t), jax.jacrev(jax.grad(loss))(t)))
    H, H_rr = hessians(theta)
    # Measured: 1e-7 relative (FD truncation ~h^2; rounding eps / h^2 ~ 1e-10).
    H_fd = _fd_hessian(_ridge_val_loss_np, theta, 1e-3)
    assert _rel(H, H_fd) <= 1e-6
    np.testing.assert_allclose(H_rr, H, rtol=1e-9)


# ======================================================================================
# A black-box (scipy) solver through jax.pure_callback, with and without aux
# ======================================================================================

_rng = np.random.default_rng(1)
X_LOG = _rng.standard_normal((50, 5))
Y_LOG = np.where(X_LOG @ _rng.standard_normal(5) + 0.5 * _rng.standard_normal(50) > 0, 1.0, -1.0)
XV_LOG = _rng.standard_normal((30, 5))
YV_LOG = np.where(XV_LOG[:, 0] > 0, 1.0, -1.0)


def logreg_objective(w, lam, X, y):
    """mean_i log(1 + exp(-y_i x_i.w)) + lam / 2 ||w||^2 (A depends on w)."""
    return jnp.mean(jnp.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * jnp.sum(w**2)


def _scipy_logreg(lam, X, y):
    """L2 logistic regression by scipy's trust-region Newton method, ~1e-13 gradient."""
    lam, X, y = float(lam), np.asarray(X, np.float64), np.asarray(y, np.float64)
    n = X.shape[0]

    def fun(w):
        z = y * (X @ w)
        return np.mean(np.logaddexp(0, -z)) + 0.5 * lam * w @ w

    def grad(w):
        z = y * (X @ w)
        return -X.T @ (y * scipy.special.expit(-z)) / n + lam * w

    def hess(w):
        s = scipy.special.expit(y * (X @ w))
        return (X.T * (s * (1 - s))) @ X / n + lam * np.eye(X.shape[1])

    res = scipy.optimize.minimize(
        fun, np.zeros(X.shape[1]), jac=grad, hess=hess, method="trust-exact",
        options={"gtol": 1e-13},
    )
    return res.x, res.nit, np.linalg.norm(grad(res.x)), hess(res.x)


def _logreg_callback(lam, X, y):
    w, nit, gnorm, _ = _scipy_logreg(lam, X, y)
    return w.astype(X.dtype), np.asarray(nit, np.int64), np.asarray(gnorm, X.dtype)


def _logreg_shapes(X):
    return (
        jax.ShapeDtypeStruct((X.shape[1],), X.dtype),
        jax.ShapeDtypeStruct((), jnp.int64),
        jax.ShapeDtypeStruct((), X.dtype),
    )


@custom_root(optimality.stationary(logreg_objective))
def logreg_black_box(init, lam, X, y):
    del init
    w, _, _ = jax.pure_callback(_logreg_callback, _logreg_shapes(X), lam, X, y)
    return w


@custom_root(optimality.stationary(logreg_objective), has_aux=True)
def logreg_black_box_aux(init, lam, X, y):
    del init
    w, nit, gnorm = jax.pure_callback(_logreg_callback, _logreg_shapes(X), lam, X, y)
    return w, {"n_iter": nit, "grad_norm": gnorm}


logreg_jacfwd = jax.jit(jax.jacfwd(logreg_black_box, argnums=1))


def _logreg_val_loss_np(lam, X):
    w = _scipy_logreg(lam, X, Y_LOG)[0]
    return np.mean(np.logaddexp(0, -YV_LOG * (XV_LOG @ w)))


def _logreg_val_loss(lam, X):
    w = logreg_black_box(None, lam, X, Y_LOG)
    return jnp.mean(jnp.logaddexp(0.0, -YV_LOG * (XV_LOG @ w)))


# Reverse mode, with respect to the penalty and to the training data at once.
logreg_val_grads = jax.jit(jax.grad(_logreg_val_loss, argnums=(0, 1)))


def test_black_box_solver_grad_and_jacfwd():
    lam = 0.05
    w, _, _, H = _scipy_logreg(lam, X_LOG, Y_LOG)
    J_ref = -np.linalg.solve(H, w)  # dw/dlam = -H^-1 w
    assert _rel(logreg_jacfwd(None, lam, X_LOG, Y_LOG), J_ref) <= 1e-9

    g_lam, g_X = logreg_val_grads(lam, X_LOG)
    h = 1e-5 * lam
    fd = (_logreg_val_loss_np(lam + h, X_LOG) - _logreg_val_loss_np(lam - h, X_LOG)) / (2 * h)
    assert abs(g_lam - fd) <= 1e-6 * abs(fd)
    # Gradients with respect to the data also flow (every arg is differentiable).
    for i, j in [(3, 2), (17, 0)]:
        E = np.zeros_like(X_LOG)
        E[i, j] = 1e-5
        fd = (_logreg_val_loss_np(lam, X_LOG + E) - _logreg_val_loss_np(lam, X_LOG - E)) / 2e-5
        assert abs(g_X[i, j] - fd) <= 1e-6 * abs(fd)


def test_black_box_solver_has_aux_passes_aux_through_undifferentiated():
    lam = 0.05
    _, nit, gnorm, _ = _scipy_logreg(lam, X_LOG, Y_LOG)

    def f(lam):
        return logreg_black_box_aux(None, lam, X_LOG, Y_LOG)

    def loss(lam):
        w, aux = f(lam)
        return jnp.mean(jnp.logaddexp(0.0, -YV_LOG * (XV_LOG @ w))), aux

    @jax.jit
    def forward_and_reverse(lam):
        return jax.jvp(f, (lam,), (1.0,)), jax.grad(loss, has_aux=True)(lam)

    ((w, aux), (w_dot, aux_dot)), (g, aux2) = forward_and_reverse(lam)
    assert int(aux["n_iter"]) == nit
    assert aux["n_iter"].dtype == jnp.int64
    np.testing.assert_allclose(aux["grad_norm"], gnorm)
    assert float(aux_dot["grad_norm"]) == 0.0  # aux is not differentiated
    assert aux_dot["n_iter"].dtype == jax.dtypes.float0
    # ... while the solution is, in both modes, and the aux is returned alongside.
    np.testing.assert_allclose(w_dot, logreg_jacfwd(None, lam, X_LOG, Y_LOG), rtol=1e-12)
    assert int(aux2["n_iter"]) == nit
    np.testing.assert_allclose(g, logreg_val_grads(lam, X_LOG)[0], rtol=1e-12)


# ======================================================================================
# Lasso and elastic net: scikit-learn as the black-box inner solver
# ======================================================================================

_rng = np.random.default_rng(2)
N_L, P_L = 60, 15
X_L = _rng.standard_normal((N_L, P_L))
_w_true = np.zeros(P_L)
_w_true[:5] = [2.0, -1.5, 1.0, 0.5, -0.8]
Y_L = X_L @ _w_true + 0.5 * _rng.standard_normal(N_L)
XV_L = _rng.standard_normal((40, P_L))
YV_L = XV_L @ _w_true + 0.5 * _rng.standard_normal(40)
ALPHA_MAX_L = np.max(np.abs(X_L.T @ Y_L)) / N_L
STEP_L = N_L / np.linalg.norm(X_L, 2) ** 2  # 1 / L for the datafit below


def lsq_datafit(w, X, y):
    """scikit-learn's Lasso / ElasticNet datafit: (1 / 2n) ||y - X w||^2."""
    return 0.5 * jnp.mean((y - X @ w) ** 2)


def _sk_fit(alpha, l1_ratio, X, y):
    """scikit-learn's coordinate descent, fitted tightly (float64 coefficients to ~1e-13;
    float32 data is fitted in float32 by scikit-learn, to its attainable 1e-7)."""
    tol = 1e-12 if np.asarray(X).dtype == np.float64 else 1e-7
    kw = dict(alpha=float(alpha), fit_intercept=False, tol=tol, max_iter=100_000)
    l1_ratio = float(l1_ratio)
    model = Lasso(**kw) if l1_ratio == 1.0 else ElasticNet(l1_ratio=l1_ratio, **kw)
    return model.fit(np.asarray(X), np.asarray(y)).coef_.astype(X.dtype)


# Callbacks are vmapped with vmap_method="broadcast_all" (every argument gets the batch
# axis; the callback loops in numpy). Not "sequential": it runs the callback inside a
# lax.map loop, which XLA may execute on a worker thread where the scoped
# ``jax.enable_x64(True)`` is not active; JAX then converts the float64 arguments to
# float32 and rejects the float64 result ("Incorrect output dtype"), as observed here
# with jax 0.10.2 on the vmapped Lasso program below.
def _sk_lasso_callback(alpha, X, y):
    if np.ndim(X) == 3:  # vmapped: one fit per batch element
        return np.stack([_sk_fit(a, 1.0, Xi, yi) for a, Xi, yi in zip(alpha, X, y)])
    return _sk_fit(alpha, 1.0, X, y)


def _sk_enet_callback(params, X, y):
    if np.ndim(X) == 3:
        return np.stack([_sk_enet_callback((l1, l2), Xi, yi)
                         for l1, l2, Xi, yi in zip(*params, X, y)])
    l1, l2 = float(params[0]), float(params[1])
    alpha = l1 + l2
    return _sk_fit(alpha, l1 / alpha, X, y)


# The pattern a new user writes: an optimality mapping, and any solver returning its root.
@custom_root(optimality.prox_grad_fixed_point(lsq_datafit, prox_lasso, STEP_L))
def sk_lasso(init, alpha, X, y):
    del init
    out = jax.ShapeDtypeStruct(X.shape[1:], X.dtype)
    return jax.pure_callback(_sk_lasso_callback, out, alpha, X, y, vmap_method="broadcast_all")


@custom_root(optimality.prox_grad_fixed_point(lsq_datafit, prox_elastic_net, STEP_L))
def sk_enet(init, params, X, y):
    del init
    out = jax.ShapeDtypeStruct(X.shape[1:], X.dtype)
    return jax.pure_callback(_sk_enet_callback, out, params, X, y, vmap_method="broadcast_all")


def _l1_grad(w, alpha):
    return alpha * jnp.sign(w)


def _enet_grad(w, params):
    return params[0] * jnp.sign(w) + params[1] * w


@custom_root(optimality.support_stationary(lsq_datafit, _l1_grad), solve=solve_cg)
def sk_lasso_support(init, alpha, X, y):
    del init
    out = jax.ShapeDtypeStruct(X.shape[1:], X.dtype)
    return jax.pure_callback(_sk_lasso_callback, out, alpha, X, y, vmap_method="broadcast_all")


@custom_root(optimality.support_stationary(lsq_datafit, _enet_grad), solve=solve_cg)
def sk_enet_support(init, params, X, y):
    del init
    out = jax.ShapeDtypeStruct(X.shape[1:], X.dtype)
    return jax.pure_callback(_sk_enet_callback, out, params, X, y, vmap_method="broadcast_all")


def _enet_params(log_alpha, l1_ratio):
    alpha = jnp.exp(log_alpha)
    return alpha * l1_ratio, alpha * (1.0 - l1_ratio)


def _sk_solution(log_alpha, l1_ratio, support, X, y):
    if l1_ratio == 1.0:
        return (sk_lasso_support if support else sk_lasso)(None, jnp.exp(log_alpha), X, y)
    params = _enet_params(log_alpha, l1_ratio)
    return (sk_enet_support if support else sk_enet)(None, params, X, y)


def _val_mse(log_alpha, l1_ratio, support, X, y, Xv, yv):
    w = _sk_solution(log_alpha, l1_ratio, support, X, y)
    return jnp.mean((yv - Xv @ w) ** 2)


@functools.partial(jax.jit, static_argnums=(1,))
def lasso_enet_derivatives(log_alpha, l1_ratio, X, y, Xv, yv):
    """The held-out MSE as a function of log alpha and its hypergradient in reverse mode
    through the full prox-grad system (GMRES); the solution and its tangent in forward
    mode through the support-restricted system (CG)."""
    val, g_full = jax.value_and_grad(_val_mse)(log_alpha, l1_ratio, False, X, y, Xv, yv)
    w, J_supp = jax.jvp(lambda t: _sk_solution(t, l1_ratio, True, X, y), (log_alpha,), (1.0,))
    return val, g_full, w, J_supp


# The Lasso hypergradient alone, through either system (for the vmap and float32 tests).
lasso_val_grad = jax.jit(jax.value_and_grad(_val_mse), static_argnums=(1, 2))


def _val_mse_np(log_alpha, l1_ratio):
    w = _sk_fit(np.exp(log_alpha), l1_ratio, X_L, Y_L)
    return np.mean((YV_L - XV_L @ w) ** 2), w


def _assert_away_from_kinks(log_alpha, l1_ratio, h):
    """The FD check is only meaningful where the support is stable over the step."""
    alpha = np.exp(log_alpha)
    _, w = _val_mse_np(log_alpha, l1_ratio)
    S = w != 0
    grad = X_L.T @ (Y_L - X_L @ w) / N_L  # |grad_j| = alpha * l1_ratio off the support at kinks
    assert 0 < S.sum() < P_L
    assert np.max(np.abs(grad[~S])) <= 0.95 * alpha * l1_ratio  # margin from entering
    assert np.min(np.abs(w[S])) >= 0.01  # margin from leaving
    for t in (log_alpha - h, log_alpha + h):
        assert np.array_equal(_val_mse_np(t, l1_ratio)[1] != 0, S)


def _fd_val_mse(log_alpha, l1_ratio, h=1e-4):
    """Central differences of the held-out MSE of scikit-learn's fits, in log alpha."""
    return (_val_mse_np(log_alpha + h, l1_ratio)[0]
            - _val_mse_np(log_alpha - h, l1_ratio)[0]) / (2 * h)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.6], ids=["lasso", "enet"])
def test_lasso_enet_hypergradient_matches_sklearn_finite_differences(l1_ratio):
    log_alpha = np.log(0.1 * ALPHA_MAX_L / l1_ratio)
    alpha = np.exp(log_alpha)
    _assert_away_from_kinks(log_alpha, l1_ratio, h=1e-4)
    fd = _fd_val_mse(log_alpha, l1_ratio, h=1e-4)

    val, g_full, w, J_supp = lasso_enet_derivatives(log_alpha, l1_ratio, X_L, Y_L, XV_L, YV_L)
    np.testing.assert_allclose(val, _val_mse_np(log_alpha, l1_ratio)[0], rtol=1e-12)
    # Chain rule on the support system's tangent: dMSE/dw . dw/dlog(alpha).
    g_supp = -2.0 / len(YV_L) * (YV_L - XV_L @ w) @ (XV_L @ J_supp)
    assert abs(g_full - fd) <= 1e-6 * abs(fd)
    assert abs(g_supp - fd) <= 1e-6 * abs(fd)
    # The support-restricted (CG) and full prox-grad (GMRES) systems agree far below FD.
    assert abs(g_full - g_supp) <= 1e-9 * abs(g_full)

    # The whole tangent dw/dlog(alpha) vs the closed form on the support S:
    # (X_S^T X_S / n + alpha (1 - r) I) w_S = X_S^T y / n - alpha r sign(w_S).
    S = np.asarray(w) != 0
    XS = X_L[:, S]
    M = XS.T @ XS / N_L + alpha * (1 - l1_ratio) * np.eye(S.sum())
    J_ref = np.zeros(P_L)
    J_ref[S] = -alpha * np.linalg.solve(M, l1_ratio * np.sign(w[S]) + (1 - l1_ratio) * w[S])
    assert _rel(J_supp, J_ref) <= 1e-9
    assert np.all(np.asarray(J_supp)[~S] == 0)


# ======================================================================================
# KKT of an equality-constrained QP, mirror descent on the simplex, projected gradient
# ======================================================================================


def _central_fd_jacobian(f, x, h):
    """Jacobian of a numpy function ``f`` (any array shapes) by central differences."""
    x = np.asarray(x, dtype=np.float64)
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    return np.stack(cols, axis=-1).reshape(np.shape(f(x)) + x.shape)


_rng = np.random.default_rng(3)
_B = _rng.standard_normal((6, 4))
Q_KKT = _B.T @ _B + 0.5 * np.eye(4)
C_KKT = _rng.standard_normal(4)
E_KKT = _rng.standard_normal((2, 4))
D_KKT = _rng.standard_normal(2)


def qp_objective(x, obj_params):
    Q, c = obj_params
    return 0.5 * x @ Q @ x + c @ x


def qp_eq(x, eq_params):
    E, d = eq_params
    return E @ x - d


def _np_eq_qp(Q, c, E, d):
    """Closed form: [[sym(Q), E^T], [E, 0]] [x; nu] = [-c; d]."""
    Qs = 0.5 * (Q + Q.T)  # the gradient of 0.5 x^T Q x is sym(Q) x
    m, p = E.shape
    K = np.block([[Qs, E.T], [E, np.zeros((m, m))]])
    sol = np.linalg.solve(K, np.concatenate([-c, d]))
    return sol[:p], sol[p:]


@custom_root(optimality.kkt(qp_objective, qp_eq))
def eq_qp_solver(init, obj_params, eq_params):
    del init
    Q, c = obj_params
    E, d = eq_params
    m, p = E.shape
    K = jnp.block([[0.5 * (Q + Q.T), E.T], [E, jnp.zeros((m, m))]])
    sol = jnp.linalg.solve(K, jnp.concatenate([-c, d]))
    return sol[:p], sol[p:], None


def test_kkt_equality_qp_jacobian_matches_finite_differences():
    obj_params, eq_params = (Q_KKT, C_KKT), (E_KKT, D_KKT)

    def primal(o, e):
        return eq_qp_solver(None, o, e)[0]

    @jax.jit
    def solve_and_jacobians(o, e):
        # Reverse mode (the forward rule transposed: GMRES on the transposed saddle system).
        return eq_qp_solver(None, o, e), jax.jacrev(primal, argnums=(0, 1))(o, e)

    (x, nu, none), ((JQ, Jc), (JE, Jd)) = solve_and_jacobians(obj_params, eq_params)
    x_ref, nu_ref = _np_eq_qp(Q_KKT, C_KKT, E_KKT, D_KKT)
    np.testing.assert_allclose(x, x_ref, rtol=1e-12)
    np.testing.assert_allclose(nu, nu_ref, rtol=1e-12)
    assert none is None
    h = 1e-6
    refs = {
        "Q": (JQ, _central_fd_jacobian(lambda Q: _np_eq_qp(Q, C_KKT, E_KKT, D_KKT)[0], Q_KKT, h)),
        "c": (Jc, _central_fd_jacobian(lambda c: _np_eq_qp(Q_KKT, c, E_KKT, D_KKT)[0], C_KKT, h)),
        "E": (JE, _central_fd_jacobian(lambda E: _np_eq_qp(Q_KKT, C_KKT, E, D_KKT)[0], E_KKT, h)),
        "d": (Jd, _central_fd_jacobian(lambda d: _np_eq_qp(Q_KKT, C_KKT, E_KKT, d)[0], D_KKT, h)),
    }
    for name, (J, J_fd) in refs.items():
        assert J.shape == J_fd.shape, name
        assert _rel(J, J_fd) <= 1e-7, name


def entropic_objective(x, c, tau):
    """<x, c> + tau sum_j x_j log x_j on the simplex; minimizer softmax(-c / tau)."""
    return x @ c + tau * jnp.sum(x * jnp.log(x))


_MD_STEP = 0.25


@custom_root(
    optimality.mirror_descent_fixed_point(
        entropic_objective, kl_projection_simplex, jnp.log, _MD_STEP
    )
)
def mirror_descent_solver(init, proj_params, c, tau):
    """Exponentiated gradient: x <- softmax(log x - step grad), contraction 1 - step tau."""

    def body(_, x):
        g = jax.grad(entropic_objective)(x, c, tau)
        return kl_projection_simplex(jnp.log(x) - _MD_STEP * g, proj_params)

    return jax.lax.fori_loop(0, 200, body, init)


def test_mirror_descent_simplex_jacobian_matches_finite_differences():
    rng = np.random.default_rng(4)
    c, tau = rng.standard_normal(5), 0.7
    init = np.full(5, 0.2)

    def closed_form(c, tau):
        z = -c / tau
        e = np.exp(z - z.max())
        return e / e.sum()

    @jax.jit
    def solve_and_jacobians(init, c, tau):
        return (mirror_descent_solver(init, None, c, tau),
                jax.jacfwd(mirror_descent_solver, argnums=(2, 3))(init, None, c, tau))

    x, (Jc, Jtau) = solve_and_jacobians(init, c, tau)
    np.testing.assert_allclose(x, closed_form(c, tau), rtol=1e-12)
    Jc_fd = _central_fd_jacobian(lambda c: closed_form(c, tau), c, 1e-6)
    Jtau_fd = _central_fd_jacobian(lambda t: closed_form(c, t), np.float64(tau), 1e-6)
    assert _rel(Jc, Jc_fd) <= 1e-8
    assert _rel(Jtau, Jtau_fd) <= 1e-8


_rng = np.random.default_rng(5)
A_PG = _rng.standard_normal((30, 6))
B_PG = A_PG @ np.array([1.5, -1.0, 0.3, 2.5, -0.2, 0.8]) + 0.1 * _rng.standard_normal(30)
STEP_PG = 1.0 / np.linalg.norm(A_PG, 2) ** 2


def lsq_half(x, A, b):
    return 0.5 * jnp.sum((A @ x - b) ** 2)


def _bvls(lower, upper, A, b):
    """scipy's bounded-variable least squares (active set: exact up to round-off)."""
    res = scipy.optimize.lsq_linear(
        np.asarray(A), np.asarray(b), bounds=(np.asarray(lower), np.asarray(upper)),
        method="bvls", tol=1e-15,
    )
    return res.x.astype(A.dtype)


@custom_root(optimality.projected_grad_fixed_point(lsq_half, projection_box, STEP_PG))
def box_lsq(init, bounds, A, b):
    del init
    out = jax.ShapeDtypeStruct(A.shape[1:], A.dtype)
    lower, upper = bounds
    return jax.pure_callback(_bvls, out, lower, upper, A, b)


@custom_fixed_point(
    lambda x, params, A, b: projection_nonnegative(x - STEP_PG * jax.grad(lsq_half)(x, A, b))
)
def nnls_pg(init, params, A, b):
    """Projected gradient, 3000 fixed iterations (converged to ~1e-15 here)."""
    del params

    def body(_, x):
        return projection_nonnegative(x - STEP_PG * jax.grad(lsq_half)(x, A, b))

    return jax.lax.fori_loop(0, 3000, body, init)


def test_projected_gradient_box_qp_jacobian_matches_finite_differences():
    lower = np.full(6, -0.5)
    upper = np.array([1.0, 2.0, 2.0, 2.0, 2.0, 0.5])
    F = optimality.projected_grad_fixed_point(lsq_half, projection_box, STEP_PG)

    @jax.jit
    def solve_and_jacobians(bounds, b):
        x = box_lsq(None, bounds, A_PG, b)
        return x, F(x, bounds, A_PG, b), jax.jacrev(box_lsq, argnums=(1, 3))(None, bounds, A_PG, b)

    x, residual, ((J_lo, J_up), J_b) = solve_and_jacobians((lower, upper), B_PG)
    x = np.asarray(x)
    at_lower, at_upper = x == lower, x == upper
    free = ~(at_lower | at_upper)
    assert at_lower.any() and at_upper.any() and free.any()  # all three cases present
    np.testing.assert_allclose(residual, 0.0, atol=1e-12)
    h = 1e-6
    J_lo_fd = _central_fd_jacobian(lambda lo: _bvls(lo, upper, A_PG, B_PG), lower, h)
    J_up_fd = _central_fd_jacobian(lambda up: _bvls(lower, up, A_PG, B_PG), upper, h)
    J_b_fd = _central_fd_jacobian(lambda b: _bvls(lower, upper, A_PG, b), B_PG, h)
    assert _rel(J_lo, J_lo_fd) <= 1e-7
    assert _rel(J_up, J_up_fd) <= 1e-7
    assert _rel(J_b, J_b_fd) <= 1e-7
    # The active coordinates follow their bounds exactly.
    np.testing.assert_allclose(np.diag(J_up)[at_upper], 1.0)
    np.testing.assert_allclose(np.diag(J_lo)[at_lower], 1.0)


def test_projected_gradient_nonnegative_qp_via_custom_fixed_point():
    solve_and_jacobian = jax.jit(
        lambda b: (nnls_pg(jnp.zeros(6), None, A_PG, b),
                   jax.jacrev(nnls_pg, argnums=3)(jnp.zeros(6), None, A_PG, b))
    )
    x, J = solve_and_jacobian(B_PG)
    x = np.asarray(x)
    x_ref = _bvls(np.zeros(6), np.full(6, np.inf), A_PG, B_PG)
    np.testing.assert_allclose(x, x_ref, atol=1e-12)
    assert (x == 0).any() and (x > 0).any()
    J_fd = _central_fd_jacobian(
        lambda b: _bvls(np.zeros(6), np.full(6, np.inf), A_PG, b), B_PG, 1e-6
    )
    assert _rel(J, J_fd) <= 1e-7


# ======================================================================================
# The paper's theorem: Jacobian error is linear in the inner error (A depends on x)
# ======================================================================================


def test_jacobian_error_is_linear_in_inner_error_logistic_regression():
    lam = 0.05
    F = optimality.stationary(logreg_objective)
    w_star = _scipy_logreg(lam, X_LOG, Y_LOG)[0]

    # Inexact solutions: the iterates of gradient descent (step 1 / L) from zero (numpy).
    n = X_LOG.shape[0]
    L = np.linalg.norm(X_LOG, 2) ** 2 / (4 * n) + lam
    w, ws = np.zeros(X_LOG.shape[1]), []
    for _ in range(400):
        z = Y_LOG * (X_LOG @ w)
        w = w - (-X_LOG.T @ (Y_LOG * scipy.special.expit(-z)) / n + lam * w) / L
        ws.append(w)
    ws = np.array(ws)
    inner_err = np.linalg.norm(ws - w_star, axis=1)
    keep = (inner_err >= 1e-8) & (inner_err <= 1e-2)
    ws, inner_err = ws[keep], inner_err[keep]
    assert inner_err.max() / inner_err.min() >= 1e4  # several decades

    @jax.jit
    def jacobians(ws, lam, X, y):
        # dw/dlam at each w, with A and B evaluated there. Dense LU: the linear solve adds
        # no error of its own, only the inexact w enters.
        def jvp(w):
            tangents = (1.0, jnp.zeros_like(X), jnp.zeros_like(y))
            return root_jvp(F, w, (lam, X, y), tangents, solve=solve_lu)

        return jax.vmap(jvp)(ws)

    Js = np.asarray(jacobians(np.vstack([w_star, ws]), lam, X_LOG, Y_LOG))
    jac_err = np.linalg.norm(Js[1:] - Js[0], axis=1)
    slope = np.polyfit(np.log(inner_err), np.log(jac_err), 1)[0]
    assert 0.8 <= slope <= 1.2, slope


# ======================================================================================
# vmap, jit, float32, and failures that must not be silent
# ======================================================================================


def test_vmap_and_jit_over_hyperparameters_match_loop_and_finite_differences():
    """A batch of Lasso alphas through the scikit-learn black box
    (vmap_method="broadcast_all") and the support-restricted system (a batched CG
    while-loop), jitted, against a loop of single jitted calls and FD."""
    log_alphas = np.log(ALPHA_MAX_L * np.array([0.05, 0.1, 0.2]))
    batched = jax.jit(jax.vmap(lasso_val_grad, in_axes=(0, None, None, None, None, None, None)),
                      static_argnums=(1, 2))
    vals, grads = batched(log_alphas, 1.0, True, X_L, Y_L, XV_L, YV_L)
    for t, v, g in zip(log_alphas, vals, grads):
        v1, g1 = lasso_val_grad(t, 1.0, True, X_L, Y_L, XV_L, YV_L)
        np.testing.assert_allclose([v, g], [v1, g1], rtol=1e-12)
        _assert_away_from_kinks(t, 1.0, h=1e-4)
        assert abs(g - _fd_val_mse(t, 1.0)) <= 1e-6 * abs(g)


def test_float32_lasso_hypergradient():
    """float32 end to end (x64 off; scikit-learn fits float32 data in float32 too),
    against the float64 finite differences. Tolerance 2e-5 relative: the float32 default
    linear-solve tolerance (1e-5) times cond(X_S^T X_S / n) = 1.7 on the support, float32
    eps being 1.2e-7. Measured: 1e-7 (prox-grad system, GMRES), 3e-7 (support, CG)."""
    log_alpha = np.log(0.1 * ALPHA_MAX_L)
    fd = _fd_val_mse(log_alpha, 1.0)
    with jax.enable_x64(False):
        args = [a.astype(np.float32) for a in (X_L, Y_L, XV_L, YV_L)]
        for support in (False, True):
            _, g = lasso_val_grad(np.float32(log_alpha), 1.0, support, *args)
            assert g.dtype == jnp.float32
            assert abs(g - fd) <= 2e-5 * abs(fd)


def _singular_F(x, theta):
    """dF/dx = diag(1, 2, 0): singular; the third coordinate is undetermined."""
    return jnp.array([1.0, 2.0, 0.0]) * x - theta


@pytest.mark.parametrize("solve", [None, solve_cg, solve_lu], ids=["default", "cg", "lu"])
def test_singular_system_is_reported_not_silent(solve):
    x, theta = jnp.zeros(3), jnp.zeros(3)
    cot = jnp.ones(3)  # has a component in the null space of (dF/dx)^T

    @custom_root(_singular_F, solve=solve)
    def solver(init, theta):
        return jnp.array([1.0, 0.5, 0.0]) * theta

    @jax.jit
    def derivatives(x, theta, cot):
        _, _, info_vjp = root_vjp(_singular_F, x, (theta,), cot, solve=solve, return_info=True)
        _, info_jvp = root_jvp(_singular_F, x, (theta,), (cot,), solve=solve, return_info=True)
        # Inside custom_root there is no status to return: the warning is the report.
        g = jax.grad(lambda t: solver(None, t).sum())(theta)
        return info_vjp, info_jvp, g

    # Each failed solve warns through jax.debug.callback, also under jit.
    with pytest.warns(LinearSolveWarning, match="did not converge") as record:
        info_vjp, info_jvp, _ = jax.block_until_ready(derivatives(x, theta, cot))
    assert sum(issubclass(r.category, LinearSolveWarning) for r in record) >= 3
    # The status is returned, for estimators to read.
    for info in (info_vjp, info_jvp):
        assert not bool(info.success)
        assert not float(info.residual) <= 1e-3  # large, or nan for a broken factorization


def test_well_posed_system_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinearSolveWarning)
        J = jax.block_until_ready(ridge_jacobians(2.5, X_R, Y_R))
        _, _, info = jax.jit(
            lambda w, args, c: root_vjp(
                optimality.stationary(ridge_objective), w, args, c, return_info=True
            )
        )(_np_ridge(2.5, X_R, Y_R), (2.5, X_R, Y_R), np.ones(8))
    assert bool(info.success)
    assert np.isfinite(np.asarray(J)).all()


def test_root_vjp_and_root_jvp_match_closed_form_and_warm_start():
    lam = np.linspace(0.5, 4.0, 8)
    F = optimality.stationary(ridge_objective)
    w = _np_ridge(lam, X_R, Y_R)
    args = (lam, X_R, Y_R)
    cot = XV_R.T @ (XV_R @ w - YV_R) / len(YV_R)
    J_ref = _ridge_jacobian_closed_form(lam, X_R, Y_R)

    vjp = jax.jit(lambda w, args, c, u0: root_vjp(F, w, args, c, init=u0, return_info=True))
    (g_lam, g_X, g_y), u, info = vjp(w, args, cot, np.zeros(8))
    assert bool(info.success)
    np.testing.assert_allclose(g_lam, cot @ J_ref, rtol=1e-10)
    assert g_X.shape == X_R.shape and g_y.shape == Y_R.shape
    # Warm start from the previous linear-system solution: fewer iterations.
    (g_lam2, _, _), _, info2 = vjp(w, args, cot, u)
    assert int(info2.iterations) < int(info.iterations)
    np.testing.assert_allclose(g_lam2, g_lam, rtol=1e-10)

    @jax.jit
    def jvp_and_tree_vjp(w, args, t, c):
        v = root_jvp(F, w, args, (t, jnp.zeros_like(args[1]), jnp.zeros_like(args[2])))
        # root_vjp returns one cotangent per arg, also for pytree args.
        F_tree = lambda w, p, X, y: F(w, p["lam"], X, y)  # noqa: E731
        g_tree = root_vjp(F_tree, w, ({"lam": args[0]},) + args[1:], c, solve=solve_lu)
        return v, g_tree

    t = np.arange(8.0)
    v, (g_tree, _, _) = jvp_and_tree_vjp(w, args, t, cot)
    np.testing.assert_allclose(v, J_ref @ t, rtol=1e-10)
    np.testing.assert_allclose(g_tree["lam"], g_lam, rtol=1e-9)
