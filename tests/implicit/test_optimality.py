"""Tests of the optimality mappings of ``skimplicit.implicit.optimality``.

Each residual ``F`` is checked against a closed form: zero at the known solution,
the predicted value elsewhere, the same roots for every admissible step, and the
documented default linear solver. float64 (the ``x64`` fixture of ``tests/conftest.py``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import Lasso

from skimplicit.implicit import default_solve_for, optimality, root_jvp
from skimplicit.implicit.linear_solve import solve_cg, solve_gmres
from skimplicit.implicit.projection import (
    kl_projection_simplex,
    projection_box,
    projection_nonnegative,
)
from skimplicit.implicit.prox import prox_elastic_net, prox_lasso

pytestmark = pytest.mark.usefixtures("x64")

_rng = np.random.default_rng(0)
V = _rng.standard_normal(8) * 2.0


def _soft(v, t):
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


def test_default_solvers_are_documented_ones():
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    assert optimality.stationary(f).default_solve is solve_cg
    assert optimality.support_stationary(f, lambda x, a: a * jnp.sign(x)).default_solve is solve_cg
    assert optimality.kkt(lambda x, p: f(x)).default_solve is solve_gmres
    assert optimality.prox_grad_fixed_point(f, prox_lasso, 1.0).default_solve is solve_gmres
    F = optimality.projected_grad_fixed_point(f, projection_box, 1.0)
    assert F.default_solve is solve_gmres
    F = optimality.mirror_descent_fixed_point(f, kl_projection_simplex, jnp.log, 1.0)
    assert F.default_solve is solve_gmres
    assert default_solve_for(optimality.stationary(f)) is solve_cg
    assert default_solve_for(lambda x: x) is solve_gmres  # any other function


def test_stationary_is_the_gradient_on_pytrees():
    B = _rng.standard_normal((5, 5))
    Q = B @ B.T + np.eye(5)
    c = _rng.standard_normal(5)

    def fun(x, Q, c):
        # A pytree variable: the quadratic in the concatenation of its leaves.
        z = jnp.concatenate([x["a"], x["b"]])
        return 0.5 * z @ Q @ z + c @ z

    F = jax.jit(optimality.stationary(fun))
    x = {"a": _rng.standard_normal(2), "b": _rng.standard_normal(3)}
    out = F(x, Q, c)
    expected = Q @ np.concatenate([x["a"], x["b"]]) + c
    assert set(out) == {"a", "b"}
    np.testing.assert_allclose(np.concatenate([out["a"], out["b"]]), expected, rtol=1e-12)
    # Zero at the minimizer -Q^-1 c.
    x_star = -np.linalg.solve(Q, c)
    out = F({"a": x_star[:2], "b": x_star[2:]}, Q, c)
    np.testing.assert_allclose(np.concatenate([out["a"], out["b"]]), 0.0, atol=1e-12)


def _half_sq(x, v):
    return 0.5 * jnp.sum((x - v) ** 2)  # L = 1: admissible steps are (0, 2)


@jax.jit
def _prox_grad_residuals(x, alpha, v):
    """prox-grad residuals of 0.5 ||x - v||^2 + alpha ||x||_1 at several steps."""
    return jnp.stack([
        optimality.prox_grad_fixed_point(_half_sq, prox_lasso, step)(x, alpha, v)
        for step in (0.3, 1.0, 1.7)
    ])


def test_prox_grad_fixed_point_lasso_closed_form():
    alpha = 0.8
    x_star = _soft(V, alpha)  # the minimizer: soft thresholding
    assert (x_star == 0).any() and (x_star != 0).any()
    # Zero at the solution, for every step in (0, 2 / L).
    np.testing.assert_allclose(_prox_grad_residuals(x_star, alpha, V), 0.0, atol=1e-15)
    # Elsewhere, exactly prox(x - step (x - v)) - x.
    x = _rng.standard_normal(8)
    for step, r in zip((0.3, 1.0, 1.7), _prox_grad_residuals(x, alpha, V)):
        np.testing.assert_allclose(r, _soft(x - step * (x - V), step * alpha) - x, rtol=1e-12)
        assert np.abs(r).max() > 1e-3


def test_prox_grad_fixed_point_elastic_net_closed_form():
    l1, l2 = 0.8, 0.5
    # argmin 0.5 ||x - v||^2 + l1 ||x||_1 + l2 / 2 ||x||^2 = soft(v, l1) / (1 + l2).
    x_star = _soft(V, l1) / (1 + l2)
    for step in (0.3, 1.0):  # L = 1 (the l2 term is in the prox)
        F = optimality.prox_grad_fixed_point(_half_sq, prox_elastic_net, step)
        np.testing.assert_allclose(F(x_star, (l1, l2), V), 0.0, atol=1e-15)
        x = x_star + 0.1
        expected = _soft(x - step * (x - V), step * l1) / (1 + step * l2) - x
        np.testing.assert_allclose(F(x, (l1, l2), V), expected, rtol=1e-12)


# A Lasso problem in scikit-learn's scaling, solved by scikit-learn.
_rng2 = np.random.default_rng(1)
N_L, P_L = 50, 12
X_L = _rng2.standard_normal((N_L, P_L))
Y_L = X_L[:, :4] @ np.array([1.5, -2.0, 1.0, 0.7]) + 0.3 * _rng2.standard_normal(N_L)
ALPHA_L = 0.15 * np.max(np.abs(X_L.T @ Y_L)) / N_L
W_L = Lasso(alpha=ALPHA_L, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X_L, Y_L).coef_
STEP_L = N_L / np.linalg.norm(X_L, 2) ** 2


def lsq_datafit(w, X, y):
    """(1 / 2n) ||y - X w||^2, scikit-learn's Lasso datafit."""
    return 0.5 * jnp.mean((y - X @ w) ** 2)


def _l1_grad(w, alpha):
    return alpha * jnp.sign(w)


F_FULL = optimality.prox_grad_fixed_point(lsq_datafit, prox_lasso, STEP_L)
F_SUPP = optimality.support_stationary(lsq_datafit, _l1_grad)


@jax.jit
def _lasso_residuals_and_tangents(w, alpha, X, y):
    tangents = (1.0, jnp.zeros_like(X), jnp.zeros_like(y))
    return (
        F_FULL(w, alpha, X, y),
        F_SUPP(w, alpha, X, y),
        jax.jacfwd(F_SUPP)(w, alpha, X, y),
        root_jvp(F_FULL, w, (alpha, X, y), tangents),  # GMRES, nonsymmetric
        root_jvp(F_SUPP, w, (alpha, X, y), tangents),  # CG, symmetric positive definite
    )


def test_lasso_residuals_and_support_system_equal_prox_grad_derivative():
    S = W_L != 0
    assert 0 < S.sum() < P_L
    r_full, r_supp, dF_supp, v_full, v_supp = _lasso_residuals_and_tangents(
        W_L, ALPHA_L, X_L, Y_L
    )
    # Both residuals vanish at scikit-learn's solution (coordinate descent to 1e-12).
    assert np.abs(r_full).max() <= 1e-10
    assert np.abs(r_supp).max() <= 1e-10
    # dF/dx of the support system: [[X_S^T X_S / n, 0], [0, I]], symmetric positive definite.
    expected = np.eye(P_L)
    expected[np.ix_(S, S)] = X_L[:, S].T @ X_L[:, S] / N_L
    np.testing.assert_allclose(dF_supp, expected, rtol=1e-12, atol=1e-15)
    # The same derivative dw/dalpha as the prox-grad fixed point, and the closed form:
    # w_S = (X_S^T X_S / n)^-1 (X_S^T y / n - alpha sign(w_S)).
    v_ref = np.zeros(P_L)
    v_ref[S] = -np.linalg.solve(expected[np.ix_(S, S)], np.sign(W_L[S]))
    np.testing.assert_allclose(v_supp, v_ref, rtol=1e-9)
    np.testing.assert_allclose(v_full, v_ref, rtol=1e-9)
    assert np.all(np.asarray(v_full)[~S] == 0)


def test_kkt_residual_closed_form():
    # Equality: min 0.5 x^T Q x + c^T x s.t. E x = d (closed form from the KKT matrix).
    B = _rng.standard_normal((6, 4))
    Q, c = B.T @ B + np.eye(4), _rng.standard_normal(4)
    E, d = _rng.standard_normal((2, 4)), _rng.standard_normal(2)
    K = np.block([[Q, E.T], [E, np.zeros((2, 2))]])
    sol = np.linalg.solve(K, np.concatenate([-c, d]))
    x, nu = sol[:4], sol[4:]
    F = optimality.kkt(lambda x, p: 0.5 * x @ p[0] @ x + p[1] @ x, lambda x, p: p[0] @ x - p[1])
    stat, eq, ineq = F((x, nu, None), (Q, c), (E, d))
    np.testing.assert_allclose(stat, 0.0, atol=1e-12)
    np.testing.assert_allclose(eq, 0.0, atol=1e-12)
    assert ineq is None
    # Off the solution: the stationarity and feasibility residuals themselves.
    stat, eq, _ = F((x + 1.0, nu, None), (Q, c), (E, d))
    np.testing.assert_allclose(stat, Q @ (x + 1.0) + c + E.T @ nu, rtol=1e-12)
    np.testing.assert_allclose(eq, E @ (x + 1.0) - d, rtol=1e-12)

    # Inequality: min 0.5 ||x - v||^2 s.t. x <= u; x = min(v, u), dual = max(v - u, 0).
    u = np.zeros(8)
    F = optimality.kkt(_half_sq, None, lambda x, u: x - u)
    x, lam = np.minimum(V, u), np.maximum(V - u, 0.0)
    stat, eq, slack = F((x, None, lam), V, None, u)
    assert eq is None
    np.testing.assert_allclose(stat, 0.0, atol=1e-15)
    np.testing.assert_allclose(slack, 0.0, atol=1e-15)  # complementary slackness
    _, _, slack = F((x - 1.0, None, lam), V, None, u)
    np.testing.assert_allclose(slack, lam * (x - 1.0 - u), rtol=1e-12)


def test_projected_grad_fixed_point_closed_form():
    # min 0.5 ||x - v||^2 over x >= 0 and over the box [lo, hi]: clipping.
    lo, hi = -0.5 * np.ones(8), np.linspace(0.2, 1.5, 8)
    for step in (0.5, 1.0, 1.9):
        F_nn = optimality.projected_grad_fixed_point(
            _half_sq, lambda y, p: projection_nonnegative(y), step
        )
        np.testing.assert_allclose(F_nn(np.maximum(V, 0.0), None, V), 0.0, atol=1e-15)
        F_box = optimality.projected_grad_fixed_point(_half_sq, projection_box, step)
        x_star = np.clip(V, lo, hi)
        assert (x_star == lo).any() and (x_star == hi).any()
        np.testing.assert_allclose(F_box(x_star, (lo, hi), V), 0.0, atol=1e-15)
        x = np.zeros(8)
        np.testing.assert_allclose(
            F_box(x, (lo, hi), V), np.clip(x - step * (x - V), lo, hi) - x, rtol=1e-12
        )


def test_mirror_descent_fixed_point_closed_form():
    # min <x, c> + tau sum x log x over the simplex: softmax(-c / tau), for every step.
    c, tau = _rng.standard_normal(6), 0.6

    def fun(x, c, tau):
        return x @ c + tau * jnp.sum(x * jnp.log(x))

    z = np.exp(-c / tau - np.max(-c / tau))
    x_star = z / z.sum()
    for step in (0.1, 1.0, 1.0 / tau):
        F = optimality.mirror_descent_fixed_point(fun, kl_projection_simplex, jnp.log, step)
        np.testing.assert_allclose(F(x_star, None, c, tau), 0.0, atol=1e-15)
        x = np.full(6, 1.0 / 6.0)
        y = np.log(x) - step * (c + tau * (np.log(x) + 1.0))
        expected = np.exp(y - y.max()) / np.exp(y - y.max()).sum() - x
        np.testing.assert_allclose(F(x, None, c, tau), expected, rtol=1e-12)
        assert np.abs(expected).max() > 1e-3


def test_support_stationary_with_a_written_out_gradient_is_the_same_mapping():
    """``grad=`` (no nested autodiff) gives the autodiff mapping, zero at the closed-form
    elastic-net solution of an orthonormal design (soft-thresholding, then shrinkage)."""
    import jax
    import jax.numpy as jnp

    from skimplicit.implicit.optimality import support_stationary

    with jax.enable_x64(True):
        rng = np.random.RandomState(0)
        Q, _ = np.linalg.qr(rng.randn(30, 6))
        n = 30
        X = jnp.asarray(Q * np.sqrt(n))  # X^T X / n = I
        y = jnp.asarray(rng.randn(n) * 3)
        alpha, rho = 0.4, 0.7
        pen = lambda w, p: p[0] * (p[1] * jnp.sign(w) + (1 - p[1]) * w)  # noqa: E731
        F_auto = support_stationary(lambda w, X, y: 0.5 * jnp.sum((X @ w - y) ** 2) / n, pen)
        F_written = support_stationary(None, pen, grad=lambda w, X, y: X.T @ (X @ w - y) / n)
        z = X.T @ y / n
        w_star = jnp.sign(z) * jnp.maximum(jnp.abs(z) - alpha * rho, 0) / (1 + alpha * (1 - rho))
        assert int(jnp.sum(w_star != 0)) not in (0, 6)  # a proper support
        np.testing.assert_allclose(F_written(w_star, (alpha, rho), X, y), 0, atol=1e-12)
        w = jnp.asarray(rng.randn(6)).at[0].set(0.0)
        np.testing.assert_allclose(F_written(w, (alpha, rho), X, y),
                                   F_auto(w, (alpha, rho), X, y), rtol=1e-12, atol=1e-14)
