"""Tests of skimplicit.implicit.prox.

Each operator is checked against (i) a brute-force minimization of its stated objective
``1/2 ||z - x||^2 + scaling * g(z; params)``, (ii) the optimality condition
``x - z in scaling * dg(z)``, (iii) closed forms, and its Jacobians (forward and reverse,
in ``x`` and ``params``) against central finite differences away from kinks. Numerical
tests run in float64 inside ``jax.enable_x64(True)``; nothing flips the global config.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import minimize, minimize_scalar

from skimplicit.implicit import prox as P
from skimplicit.implicit.projection import projection_box, projection_l2_ball, projection_simplex

D = 6


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------------------
# Reference objectives: g as stated in the docstrings, per coordinate (numpy).
# ---------------------------------------------------------------------------

# name -> (prox, params as a function of per-coordinate arrays (p1, p2), coordinate-wise
#          g_i(z) taking (z, p1_i, p2_i), lower bound of the domain)
SEPARABLE = {
    "lasso": (P.prox_lasso, lambda p1, p2: p1, lambda z, a, _: a * abs(z), -np.inf),
    "nonnegative_lasso": (P.prox_nonnegative_lasso, lambda p1, p2: p1, lambda z, a, _: a * z, 0.0),
    "elastic_net": (
        P.prox_elastic_net,
        lambda p1, p2: (p1, p2),
        lambda z, l1, l2: l1 * abs(z) + 0.5 * l2 * z**2,
        -np.inf,
    ),
    "ridge": (P.prox_ridge, lambda p1, p2: p1, lambda z, lam, _: 0.5 * lam * z**2, -np.inf),
}


def _brute_separable(x, p1, p2, scaling, g, lower):
    """Coordinate-wise bounded Brent search of 1/2 (z - x_i)^2 + scaling * g_i(z)."""
    out = []
    for xi, a, b in zip(x, p1, p2):
        bound = abs(xi) + 1.0  # |prox(x)_i| <= |x_i| for all these g
        lo = max(lower, -bound)
        res = minimize_scalar(
            lambda z: 0.5 * (z - xi) ** 2 + scaling * g(z, a, b),
            bounds=(lo, bound),
            method="bounded",
            options={"xatol": 1e-12, "maxiter": 2000},
        )
        out.append(res.x)
    return np.array(out)


def _random_params(rng, scalar):
    if scalar:
        return np.full(D, rng.uniform(0.2, 1.5)), np.full(D, rng.uniform(0.2, 1.5))
    return rng.uniform(0.2, 1.5, D), rng.uniform(0.2, 1.5, D)


@pytest.mark.parametrize("name", list(SEPARABLE))
@pytest.mark.parametrize("scalar_params", [True, False])
@pytest.mark.parametrize("scaling", [1.0, 0.3])
def test_separable_prox_matches_brute_force(x64, name, scalar_params, scaling):
    prox, make_params, g, lower = SEPARABLE[name]
    rng = np.random.default_rng(0)
    x = rng.normal(scale=2.0, size=D)
    p1, p2 = _random_params(rng, scalar_params)
    if scalar_params:  # pass genuine scalars, not constant arrays
        params = make_params(float(p1[0]), float(p2[0]))
    else:
        params = make_params(p1, p2)
    z = np.asarray(prox(jnp.asarray(x), params, scaling))
    ref = _brute_separable(x, p1, p2, scaling, g, lower)
    np.testing.assert_allclose(z, ref, atol=1e-7)
    # And z is at least as good as the reference for the stated objective.
    obj = lambda v: 0.5 * np.sum((v - x) ** 2) + scaling * sum(
        g(vi, a, b) for vi, a, b in zip(v, p1, p2)
    )
    assert obj(z) <= obj(ref) + 1e-12


def _lasso_subgrad_ok(r, z, t, tol=1e-10):
    """``r in t * d|z|`` coordinate-wise."""
    on = z != 0
    return np.all(np.abs(r[on] - t[on] * np.sign(z[on])) <= tol) and np.all(
        np.abs(r[~on]) <= t[~on] + tol
    )


def test_prox_optimality_conditions(x64):
    """``x - z in scaling * dg(z)`` (zero is in the subdifferential of the prox objective)."""
    rng = np.random.default_rng(1)
    s = 0.7
    for _ in range(5):
        x = rng.normal(scale=2.0, size=D)
        a, l2 = rng.uniform(0.2, 1.5, D), rng.uniform(0.2, 1.5, D)
        t = s * a
        z = np.asarray(P.prox_lasso(x, a, s))
        assert _lasso_subgrad_ok(x - z, z, t)
        z = np.asarray(P.prox_elastic_net(x, (a, l2), s))
        assert _lasso_subgrad_ok(x - z - s * l2 * z, z, t)
        z = np.asarray(P.prox_nonnegative_lasso(x, a, s))
        r = x - z - t  # must lie in the normal cone of {z >= 0} at z
        assert np.all(z >= 0)
        assert np.all(np.abs(r[z > 0]) <= 1e-12) and np.all(r[z == 0] <= 1e-12)
        z = np.asarray(P.prox_ridge(x, a, s))
        np.testing.assert_allclose(x - z, s * a * z, atol=1e-12)


def test_group_lasso_matches_brute_force_and_optimality(x64):
    rng = np.random.default_rng(2)
    for alpha, scaling in [(0.5, 1.0), (1.3, 0.7), (10.0, 1.0)]:
        x = rng.normal(size=D)
        c = scaling * alpha
        z = np.asarray(P.prox_group_lasso(jnp.asarray(x), alpha, scaling))
        # Optimality: x - z = c z / ||z|| if z != 0, else ||x|| <= c.
        if np.linalg.norm(z) > 0:
            np.testing.assert_allclose(x - z, c * z / np.linalg.norm(z), atol=1e-12)
        else:
            assert np.linalg.norm(x) <= c
        # Brute force: epigraph form min 1/2 ||v - x||^2 + c t s.t. t^2 >= ||v||^2, t >= 0.
        res = minimize(
            lambda w: 0.5 * np.sum((w[:-1] - x) ** 2) + c * w[-1],
            np.append(x, np.linalg.norm(x)),
            jac=lambda w: np.append(w[:-1] - x, c),
            constraints=[{"type": "ineq", "fun": lambda w: w[-1] ** 2 - w[:-1] @ w[:-1]}],
            bounds=[(None, None)] * D + [(0, None)],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        obj = lambda v: 0.5 * np.sum((v - x) ** 2) + c * np.linalg.norm(v)
        np.testing.assert_allclose(z, res.x[:-1], atol=1e-5)
        assert obj(z) <= obj(res.x[:-1]) + 1e-12


# ---------------------------------------------------------------------------
# Closed forms and documented scalings
# ---------------------------------------------------------------------------


def test_closed_forms(x64):
    x = jnp.array([3.0, 0.5, -2.0, -0.25])
    np.testing.assert_array_equal(P.prox_lasso(x, 1.0), [2.0, 0.0, -1.0, 0.0])
    np.testing.assert_array_equal(P.prox_lasso(x, 1.0, 0.5), [2.5, 0.0, -1.5, 0.0])
    np.testing.assert_array_equal(P.prox_nonnegative_lasso(x, 1.0), [2.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(P.prox_elastic_net(x, (1.0, 1.0)), [1.0, 0.0, -0.5, 0.0])
    np.testing.assert_array_equal(P.prox_none(x), x)
    np.testing.assert_array_equal(P.prox_group_lasso(jnp.array([3.0, 4.0]), 2.5), [1.5, 2.0])
    # Per-coordinate alpha.
    np.testing.assert_allclose(P.prox_lasso(x, jnp.array([1.0, 0.0, 3.0, 0.0])), [2, 0.5, 0, -0.25])


def test_ridge_scaling_has_one_half(x64):
    """g = (lam / 2) ||z||^2: the prox is x / (1 + s lam), not x / (1 + 2 s lam)."""
    x, lam, s = jnp.array([1.0, -3.0]), 0.8, 0.5
    z = P.prox_ridge(x, lam, s)
    np.testing.assert_allclose(z, x / (1 + s * lam), rtol=1e-15)
    grad_obj = jax.grad(lambda v: 0.5 * jnp.sum((v - x) ** 2) + s * 0.5 * lam * v @ v)(z)
    np.testing.assert_allclose(grad_obj, 0.0, atol=1e-15)
    assert not np.allclose(z, x / (1 + 2 * s * lam))


def test_elastic_net_reduces_to_lasso_and_ridge(x64):
    x = jnp.asarray(np.random.default_rng(3).normal(size=D))
    np.testing.assert_allclose(P.prox_elastic_net(x, (0.7, 0.0), 0.3), P.prox_lasso(x, 0.7, 0.3))
    np.testing.assert_allclose(P.prox_elastic_net(x, (0.0, 0.7), 0.3), P.prox_ridge(x, 0.7, 0.3))


def test_elastic_net_matches_sklearn_parametrization(x64):
    """The Notes' mapping (alpha, l1_ratio) -> (alpha l1_ratio, alpha (1 - l1_ratio)).

    With X = sqrt(n) I, ElasticNet's objective is 1/2 ||w - X^T y / n||^2 + penalty + const,
    so its solution is prox_elastic_net(X^T y / n).
    """
    from sklearn.linear_model import ElasticNet

    n = D
    rng = np.random.default_rng(4)
    X, y = np.sqrt(n) * np.eye(n), rng.normal(size=n)
    alpha, l1_ratio = 0.4, 0.3
    enet = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-14)
    coef = enet.fit(X, y).coef_
    z = P.prox_elastic_net(X.T @ y / n, (alpha * l1_ratio, alpha * (1 - l1_ratio)))
    np.testing.assert_allclose(z, coef, atol=1e-10)


def test_make_prox_from_projection(x64):
    prox = P.make_prox_from_projection(projection_box)
    x = jnp.array([-2.0, 0.5, 3.0])
    for s in (0.1, 1.0, 7.0):
        np.testing.assert_array_equal(prox(x, (0.0, 1.0), s), projection_box(x, (0.0, 1.0)))
    prox_simplex = P.make_prox_from_projection(projection_simplex)
    np.testing.assert_allclose(prox_simplex(x), projection_simplex(x))
    assert "projection_box" in prox.__name__


# ---------------------------------------------------------------------------
# Jacobians vs finite differences (away from kinks)
# ---------------------------------------------------------------------------


def _check_jacobians(f, *args, eps=1e-6, atol=1e-7):
    """jacfwd and jacrev of ``f`` in every argument vs central differences (float64).

    One jitted function computes all three, so each case costs a single compilation.
    """
    args = tuple(jnp.asarray(a, dtype=jnp.float64) for a in args)
    argnums = tuple(range(len(args)))

    def fd(args, i):
        v = args[i]
        E = eps * jnp.eye(v.size, dtype=v.dtype).reshape((v.size,) + v.shape)
        g = jax.vmap(lambda w: f(*args[:i], w, *args[i + 1 :]))
        cols = (g(v + E) - g(v - E)) / (2 * eps)  # (v.size,) + out_shape
        return jnp.moveaxis(cols, 0, -1).reshape(cols.shape[1:] + v.shape)

    @jax.jit
    def all_jacobians(*args):
        return (
            jax.jacfwd(f, argnums)(*args),
            jax.jacrev(f, argnums)(*args),
            tuple(fd(args, i) for i in argnums),
        )

    fwd, rev, ref = all_jacobians(*args)
    for i in argnums:
        np.testing.assert_allclose(fwd[i], ref[i], atol=atol, err_msg=f"jacfwd, argument {i}")
        np.testing.assert_allclose(rev[i], ref[i], atol=atol, err_msg=f"jacrev, argument {i}")


def _away_from_kinks(rng, t):
    """Points whose |x_i| - t_i is at least 0.2 away from 0, half zeroed, half kept."""
    offset = rng.uniform(0.2, 1.0, D) * np.where(np.arange(D) % 2 == 0, 1.0, -1.0)
    return rng.choice([-1.0, 1.0], D) * np.maximum(t + offset, 0.05)


def test_jacobians_separable(x64):
    rng = np.random.default_rng(5)
    s = 0.8
    a = rng.uniform(0.5, 1.5, D)
    l2 = rng.uniform(0.2, 1.5, D)
    x = _away_from_kinks(rng, s * a)
    assert np.all(np.abs(np.abs(x) - s * a) > 0.04)
    xn = np.abs(x)  # nonnegative lasso's kink is at x_i = s a_i: same margins on |x|
    # f(x, params..., scaling): Jacobians in every argument, scaling included.
    cases = [
        (P.prox_lasso, (x, a, s)),
        (P.prox_lasso, (x, a[0], s)),  # scalar alpha
        (P.prox_nonnegative_lasso, (xn, a, s)),
        (lambda v, l1, l2, s: P.prox_elastic_net(v, (l1, l2), s), (x, a, l2, s)),
        (P.prox_ridge, (x, l2, s)),
        (P.prox_none, (x,)),
    ]
    for f, args in cases:
        _check_jacobians(f, *args)
    # Sanity: the lasso's Jacobian in x is the support mask.
    J = jax.jacfwd(lambda v: P.prox_lasso(v, a, s))(jnp.asarray(x))
    np.testing.assert_array_equal(np.diag(J), np.abs(x) > s * a)


@pytest.mark.parametrize("alpha", [0.5, 5.0])  # active (shrunk) and zeroed group
def test_jacobians_group_lasso(x64, alpha):
    rng = np.random.default_rng(6)
    x = rng.normal(size=D)
    s = 0.9
    assert abs(np.linalg.norm(x) - s * alpha) > 0.1
    _check_jacobians(P.prox_group_lasso, x, alpha, s)
    _check_jacobians(P.prox_group_lasso, x.reshape(2, 3), alpha, s)


def test_group_lasso_safe_at_zero(x64):
    x = jnp.zeros(D)
    assert np.all(P.prox_group_lasso(x, 1.0) == 0)
    for jac in (jax.jacfwd, jax.jacrev):
        Jx, Ja = jax.jit(jac(P.prox_group_lasso, argnums=(0, 1)))(x, 1.0)
        assert np.all(np.isfinite(Jx)) and np.all(np.isfinite(Ja))
        np.testing.assert_array_equal(Jx, 0.0)
        np.testing.assert_array_equal(Ja, 0.0)
    # alpha = 0 at x = 0: still finite (and the identity's value).
    g = jax.grad(lambda v: jnp.sum(P.prox_group_lasso(v, 0.0)))(x)
    assert np.all(np.isfinite(g))
    g = jax.grad(lambda a: jnp.sum(P.prox_group_lasso(x, a)))(0.0)
    assert np.isfinite(g)


# ---------------------------------------------------------------------------
# dtypes, pytrees, transformations, errors
# ---------------------------------------------------------------------------

ALL = [
    (P.prox_none, None),
    (P.prox_lasso, 0.5),
    (P.prox_nonnegative_lasso, 0.5),
    (P.prox_elastic_net, (0.5, 0.3)),
    (P.prox_ridge, 0.5),
    (P.prox_group_lasso, 0.5),
]


@pytest.mark.parametrize("prox,params", ALL, ids=lambda v: getattr(v, "__name__", ""))
def test_float32_stays_float32(prox, params):
    # Only x64 mode can promote (float64 params are already float32 without it).
    with jax.enable_x64(True):
        x = jnp.asarray(np.linspace(-2, 2, D), dtype=jnp.float32)
        # float64 numpy params (what an x64 estimator passes) must not promote x.
        p64 = jax.tree_util.tree_map(np.float64, params)
        for p in (params, p64):
            assert prox(x, p, np.float64(0.7)).dtype == jnp.float32
        assert prox(x.astype(jnp.float64), params).dtype == jnp.float64
        # Integer input becomes the default float dtype.
        assert jnp.issubdtype(prox(jnp.arange(3), params).dtype, jnp.floating)


def test_pytrees_and_per_leaf_params(x64):
    x = {"w": jnp.array([3.0, -0.5]), "b": jnp.array(2.0)}
    out = P.prox_lasso(x, 1.0)
    assert set(out) == {"w", "b"}
    np.testing.assert_array_equal(out["w"], [2.0, 0.0])
    np.testing.assert_array_equal(out["b"], 1.0)
    out = P.prox_lasso(x, {"w": 0.0, "b": 3.0})  # one alpha per leaf
    np.testing.assert_array_equal(out["w"], x["w"])
    np.testing.assert_array_equal(out["b"], 0.0)
    out = P.prox_elastic_net((x["w"], x["b"]), ((1.0, 0.0), 1.0))
    np.testing.assert_array_equal(out[0], [1.0, 0.0])
    np.testing.assert_array_equal(out[1], 1.0)  # soft(2, 0) / (1 + 1)
    # Group lasso: each leaf is its own group.
    out = P.prox_group_lasso([jnp.array([3.0, 4.0]), jnp.array([0.3, 0.4])], 1.0)
    np.testing.assert_allclose(out[0], [2.4, 3.2])
    np.testing.assert_array_equal(out[1], 0.0)
    total = lambda a: sum(jnp.sum(v) for v in jax.tree_util.tree_leaves(P.prox_lasso(x, a)))
    g = jax.grad(total)(0.4)
    np.testing.assert_allclose(g, -1.0)  # d/dalpha: -1 for 3.0 and 2.0, +1 for -0.5


def test_jit_and_vmap(x64):
    x = jnp.asarray(np.random.default_rng(7).normal(size=D))
    alphas = jnp.array([0.1, 0.5, 1.0])
    batched = jax.vmap(P.prox_lasso, in_axes=(None, 0))(x, alphas)
    for a, z in zip(alphas, batched):
        np.testing.assert_allclose(z, P.prox_lasso(x, a))
    for prox, params in [(P.prox_group_lasso, 0.5), (P.prox_elastic_net, (0.5, 0.2))]:
        np.testing.assert_allclose(jax.jit(prox)(x, params, 0.5), prox(x, params, 0.5))


def test_errors():
    x = jnp.ones(3)
    with pytest.raises(ValueError, match="prox_lasso needs params"):
        P.prox_lasso(x, None)
    with pytest.raises(ValueError, match="one scalar alpha per leaf"):
        P.prox_group_lasso(x, jnp.ones(3))
    with pytest.raises(ValueError, match="structure of x"):
        P.prox_lasso({"a": x, "b": x}, {"a": 1.0})


# ---------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
vec = arrays(np.float64, D, elements=finite)
positive = st.floats(0.0, 5.0, allow_nan=False)
scalings = st.floats(0.01, 3.0, allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(x=vec, alpha=positive, s=scalings)
def test_moreau_decompositions(x, alpha, s):
    """x = prox_{s g}(x) + proj onto the dual-norm ball of radius s alpha."""
    with jax.enable_x64(True):
        t = s * alpha
        np.testing.assert_allclose(
            P.prox_lasso(x, alpha, s) + projection_box(x, (-t, t)), x, atol=1e-12
        )
        np.testing.assert_allclose(
            P.prox_group_lasso(x, alpha, s) + projection_l2_ball(x, t), x, atol=1e-10
        )


@settings(max_examples=30, deadline=None)
@given(x=vec, y=vec, alpha=positive, l2=positive, s=scalings)
def test_firm_nonexpansiveness(x, y, alpha, l2, s):
    """||P x - P y||^2 <= <P x - P y, x - y> for the prox of any convex g."""
    with jax.enable_x64(True):
        for prox, params in [
            (P.prox_lasso, alpha),
            (P.prox_nonnegative_lasso, alpha),
            (P.prox_elastic_net, (alpha, l2)),
            (P.prox_ridge, l2),
            (P.prox_group_lasso, alpha),
        ]:
            d = np.asarray(prox(x, params, s)) - np.asarray(prox(y, params, s))
            assert d @ d <= d @ (x - y) + 1e-9
