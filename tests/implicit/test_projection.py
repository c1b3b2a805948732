"""Tests of skimplicit.implicit.projection.

Each projection is checked against a brute-force constrained minimization (scipy SLSQP),
feasibility plus the variational inequality ``<x - z, y - z> <= 0`` for feasible ``y``,
closed forms, and its Jacobians (forward and reverse, in ``x`` and ``params``) against
central finite differences away from kinks. Numerical tests run in float64 inside
``jax.enable_x64(True)``; nothing flips the global config.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import minimize

from skimplicit.implicit import projection as Pr
from skimplicit.implicit.optimality import mirror_descent_fixed_point

D = 6


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _slsqp(x, constraints=(), bounds=None, x0=None):
    """argmin ||z - x||^2 under scipy constraints (ftol 1e-15 can stall in the line search)."""
    res = minimize(
        lambda z: 0.5 * np.sum((z - x) ** 2),
        np.zeros_like(x) if x0 is None else x0,
        jac=lambda z: z - x,
        constraints=list(constraints),
        bounds=bounds,
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    assert res.success, res.message
    return res.x


def _l1_ball_brute(x, r):
    """Split z = u - v with u, v >= 0 and sum(u + v) <= r: a smooth QP."""
    d = x.size
    res = minimize(
        lambda w: 0.5 * np.sum((w[:d] - w[d:] - x) ** 2),
        np.zeros(2 * d),
        jac=lambda w: np.concatenate([w[:d] - w[d:] - x, -(w[:d] - w[d:] - x)]),
        constraints=[
            {"type": "ineq", "fun": lambda w: r - np.sum(w), "jac": lambda w: -np.ones(2 * d)}
        ],
        bounds=[(0, None)] * (2 * d),
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    assert res.success, res.message
    return res.x[:d] - res.x[d:]


# ---------------------------------------------------------------------------
# Brute force
# ---------------------------------------------------------------------------


def test_projections_match_brute_force(x64):
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(scale=2.0, size=D)
        s = rng.uniform(0.5, 2.0)
        lo, up = -rng.uniform(0.1, 1.0, D), rng.uniform(0.1, 1.0, D)
        a, b = rng.normal(size=D), rng.normal()
        eq = lambda fun, jac: {"type": "eq", "fun": fun, "jac": jac}
        ineq = lambda fun, jac: {"type": "ineq", "fun": fun, "jac": jac}
        cases = [
            (Pr.projection_nonnegative(x), _slsqp(x, bounds=[(0, None)] * D)),
            (Pr.projection_box(x, (lo, up)), _slsqp(x, bounds=list(zip(lo, up)))),
            (
                Pr.projection_simplex(x, s),
                _slsqp(
                    x,
                    [eq(lambda z: np.sum(z) - s, lambda z: np.ones(D))],
                    bounds=[(0, None)] * D,
                    x0=np.full(D, s / D),
                ),
            ),
            (Pr.projection_l1_ball(x, s), _l1_ball_brute(x, s)),
            (
                Pr.projection_l2_ball(x, s),
                _slsqp(x, [ineq(lambda z: s**2 - z @ z, lambda z: -2 * z)]),
            ),
            (
                Pr.projection_hyperplane(x, (a, b)),
                _slsqp(x, [eq(lambda z: a @ z - b, lambda z: a)]),
            ),
        ]
        for z, ref in cases:
            np.testing.assert_allclose(np.asarray(z), ref, atol=1e-7)


def test_simplex_matches_bisection_in_higher_dimension(x64):
    """theta solves sum(max(x - theta, 0)) = s; bisection is an independent reference."""
    rng = np.random.default_rng(1)
    for d, s in [(1, 0.7), (50, 1.0), (200, 3.0)]:
        x = rng.normal(size=d)
        lo, hi = x.min() - s, x.max()
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if np.maximum(x - mid, 0).sum() > s else (lo, mid)
        np.testing.assert_allclose(Pr.projection_simplex(x, s), np.maximum(x - lo, 0), atol=1e-12)


def test_kl_projection_is_kl_argmin(x64):
    """softmax(y) * s minimizes KL(z, exp(y)) = sum z log z - z y + const on the simplex."""
    rng = np.random.default_rng(2)
    y, s = rng.normal(size=D), 1.7
    res = minimize(
        lambda z: np.sum(z * np.log(z) - z * y),
        np.full(D, s / D),
        jac=lambda z: np.log(z) + 1 - y,
        constraints=[{"type": "eq", "fun": lambda z: np.sum(z) - s, "jac": lambda z: np.ones(D)}],
        bounds=[(1e-12, None)] * D,
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    np.testing.assert_allclose(Pr.kl_projection_simplex(y, s), res.x, atol=1e-6)
    np.testing.assert_allclose(Pr.kl_projection_simplex(y), jax.nn.softmax(y), rtol=1e-15)


# ---------------------------------------------------------------------------
# Feasibility and the variational inequality
# ---------------------------------------------------------------------------


def _feasible_points(name, rng, n, params):
    if name == "nonnegative":
        return np.abs(rng.normal(size=(n, D)))
    if name == "box":
        lo, up = params
        return rng.uniform(lo, up, size=(n, D))
    if name == "simplex":  # random points and all vertices
        return np.vstack([params * rng.dirichlet(np.ones(D), n), params * np.eye(D)])
    if name == "l1_ball":
        signs = rng.choice([-1, 1], (n, D))
        y = signs * rng.dirichlet(np.ones(D), n) * rng.uniform(0, params, (n, 1))
        return np.vstack([y, params * np.eye(D), -params * np.eye(D)])
    if name == "l2_ball":
        u = rng.normal(size=(n, D))
        return params * u / np.linalg.norm(u, axis=1, keepdims=True) * rng.uniform(0, 1, (n, 1))
    raise ValueError(name)


def _is_feasible(name, z, params, tol=1e-12):
    if name == "nonnegative":
        return np.all(z >= 0)
    if name == "box":
        return np.all(z >= params[0]) and np.all(z <= params[1])
    if name == "simplex":
        return np.all(z >= 0) and abs(z.sum() - params) <= tol
    if name == "l1_ball":
        return np.abs(z).sum() <= params + tol
    if name == "l2_ball":
        return np.linalg.norm(z) <= params + tol
    raise ValueError(name)


SETS = {
    "nonnegative": (Pr.projection_nonnegative, lambda rng: None),
    "box": (Pr.projection_box, lambda rng: (-rng.uniform(0.1, 1, D), rng.uniform(0.1, 1, D))),
    "simplex": (Pr.projection_simplex, lambda rng: rng.uniform(0.5, 2)),
    "l1_ball": (Pr.projection_l1_ball, lambda rng: rng.uniform(0.5, 2)),
    "l2_ball": (Pr.projection_l2_ball, lambda rng: rng.uniform(0.5, 2)),
}


@pytest.mark.parametrize("name", list(SETS))
def test_feasibility_and_variational_inequality(x64, name):
    proj, make_params = SETS[name]
    rng = np.random.default_rng(3)
    for scale in (0.3, 3.0):  # mostly inside, mostly outside
        x = rng.normal(scale=scale, size=D)
        params = make_params(rng)
        z = np.asarray(proj(x, params))
        assert _is_feasible(name, z, params)
        y = _feasible_points(name, rng, 200, params)
        assert np.all((y - z) @ (x - z) <= 1e-12)


def test_hyperplane_is_orthogonal_projection(x64):
    rng = np.random.default_rng(4)
    x, a, b = rng.normal(size=D), rng.normal(size=D), 0.7
    z = np.asarray(Pr.projection_hyperplane(x, (a, b)))
    np.testing.assert_allclose(a @ z, b, atol=1e-12)
    # x - z is parallel to a, and any y on the plane satisfies <x - z, y - z> = 0.
    np.testing.assert_allclose(x - z, ((x - z) @ a / (a @ a)) * a, atol=1e-12)
    n = rng.normal(size=(20, D))
    y = z + n - np.outer(n @ a / (a @ a), a)
    np.testing.assert_allclose((y - z) @ (x - z), 0, atol=1e-10)


# ---------------------------------------------------------------------------
# Closed forms and edge cases
# ---------------------------------------------------------------------------


def test_closed_forms(x64):
    np.testing.assert_array_equal(Pr.projection_simplex(jnp.array([2.0, 0.5, -1.0])), [1, 0, 0])
    z = Pr.projection_simplex(jnp.array([2.0, 1.0, -1.0]), 2.0)
    np.testing.assert_array_equal(z, [1.5, 0.5, 0])
    np.testing.assert_allclose(Pr.projection_simplex(jnp.zeros(4)), 0.25)  # ties
    np.testing.assert_allclose(Pr.projection_simplex(jnp.array([5.0]), 0.3), [0.3], rtol=1e-15)
    np.testing.assert_array_equal(Pr.projection_l1_ball(jnp.array([2.0, -0.5, 1.0])), [1, 0, 0])
    np.testing.assert_array_equal(Pr.projection_l1_ball(jnp.array([-2.0, 1.0]), 2.0), [-1.5, 0.5])
    np.testing.assert_allclose(Pr.projection_l2_ball(jnp.array([3.0, 4.0]), 2.0), [1.2, 1.6])
    np.testing.assert_array_equal(Pr.projection_l2_ball(jnp.array([0.3, 0.4])), [0.3, 0.4])
    z = Pr.projection_box(jnp.array([-2.0, 0.5, 3.0]), (0.0, 1.0))
    np.testing.assert_array_equal(z, [0, 0.5, 1])
    np.testing.assert_array_equal(
        Pr.projection_hyperplane(jnp.array([1.0, 2.0]), (jnp.array([1.0, 1.0]), 1.0)), [0, 1]
    )


def test_zero_mass_and_zero_radius_are_safe(x64):
    x = jnp.array([0.3, -1.0, 2.0])
    for proj in (Pr.projection_simplex, Pr.projection_l1_ball, Pr.projection_l2_ball):
        np.testing.assert_array_equal(proj(x, 0.0), 0.0)
        jacs = jax.jit(lambda *a: (jax.jacfwd(proj, (0, 1))(*a), jax.jacrev(proj, (0, 1))(*a)))
        for J in jax.tree_util.tree_leaves(jacs(x, 0.0)):
            assert np.all(np.isfinite(J))
    # The l2 ball at x = 0 (inside): the identity, with no NaN from the norm.
    l2 = Pr.projection_l2_ball
    jacs = jax.jit(lambda *a: (jax.jacfwd(l2)(*a), jax.jacrev(l2)(*a)))
    for J in jacs(jnp.zeros(3), 1.0):
        np.testing.assert_array_equal(J, np.eye(3))


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


def test_simplex_jacobian_closed_form(x64):
    """On the support S: dz_S/dx_S = I - 11^T/|S|, dz_S/ds = 1/|S|; zero elsewhere."""
    x = jnp.array([1.5, -1.0, 0.9, 0.2, -3.0])
    z = Pr.projection_simplex(x, 1.0)
    m = np.asarray(z) > 0
    assert m.sum() == 2
    J = np.zeros((5, 5))
    J[np.ix_(m, m)] = np.eye(2) - 0.5
    for jac in (jax.jacfwd, jax.jacrev):
        Jx, Js = jax.jit(jac(Pr.projection_simplex, argnums=(0, 1)))(x, 1.0)
        np.testing.assert_allclose(Jx, J, atol=1e-15)
        np.testing.assert_allclose(Js, m / 2.0, atol=1e-15)


_rng = np.random.default_rng(5)
_x, _s = _rng.normal(scale=0.5, size=D), 1.3
_lo, _up = -np.full(D, 0.5), np.full(D, 1.0)
_a, _b = _rng.normal(size=D), 0.4
_X, _S = _rng.normal(scale=2.0, size=(3, D)), np.array([0.5, 1.0, 2.0])
_small = _x / (4 * np.abs(_x).sum())  # well inside the unit balls

# f(x, params...) and its arguments: Jacobians are checked in every argument.
JACOBIAN_CASES = {
    "simplex": (Pr.projection_simplex, (_x, _s)),
    "l1_ball": (Pr.projection_l1_ball, (_x, _s)),
    "l1_ball_inside": (Pr.projection_l1_ball, (_small, 1.0)),
    "l2_ball": (Pr.projection_l2_ball, (_x, 0.7)),
    "l2_ball_inside": (Pr.projection_l2_ball, (_small, 1.0)),
    "nonnegative": (Pr.projection_nonnegative, (_x,)),
    "box": (lambda v, lo, up: Pr.projection_box(v, (lo, up)), (_x, _lo, _up)),
    "hyperplane": (lambda v, a, b: Pr.projection_hyperplane(v, (a, b)), (_x, _a, _b)),
    "simplex_rows": (Pr.projection_simplex_rows, (_X, _S)),
    "kl_simplex_per_row_mass": (Pr.kl_projection_simplex, (_X, _S)),
    "kl_simplex_scalar_mass": (Pr.kl_projection_simplex, (_X, 2.0)),
}


def test_jacobian_points_are_away_from_kinks(x64):
    for v, s in [(_x, _s)] + list(zip(_X, _S)):
        z = np.asarray(Pr.projection_simplex(v, s))
        theta = np.max(v[z > 0] - z[z > 0])
        assert np.min(np.abs(v - theta)) > 1e-3
    assert 1 < (Pr.projection_simplex(_x, _s) > 0).sum() < D  # a nontrivial support
    assert np.abs(_x).sum() > _s + 0.1  # the l1 ball case is outside: the simplex branch
    z = np.asarray(Pr.projection_l1_ball(_x, _s))
    theta = np.max(np.abs(_x)[z != 0] - np.abs(z[z != 0]))
    assert np.min(np.abs(np.abs(_x) - theta)) > 1e-3 and 1 < (z != 0).sum() < D
    assert np.linalg.norm(_x) > 0.7 + 0.1  # the l2 ball case is outside
    assert np.min(np.abs(np.subtract.outer(_x, [-0.5, 0.0, 1.0]))) > 1e-3  # box, nonnegative


@pytest.mark.parametrize("name", list(JACOBIAN_CASES))
def test_jacobians(x64, name):
    f, args = JACOBIAN_CASES[name]
    _check_jacobians(f, *args)


# ---------------------------------------------------------------------------
# Rows, pytrees, dtypes, transformations, errors
# ---------------------------------------------------------------------------


def test_simplex_rows(x64):
    rng = np.random.default_rng(6)
    X, S = rng.normal(size=(4, D)), np.array([0.5, 1.0, 2.0, 0.0])
    Z = Pr.projection_simplex_rows(X, S)
    for x, s, z in zip(X, S, Z):
        np.testing.assert_allclose(z, Pr.projection_simplex(x, s), atol=1e-15)
    np.testing.assert_allclose(Pr.projection_simplex_rows(X).sum(axis=1), 1.0, atol=1e-12)
    X3 = rng.normal(size=(2, 3, D))
    np.testing.assert_allclose(
        Pr.projection_simplex_rows(X3),
        Pr.projection_simplex_rows(X3.reshape(6, D)).reshape(X3.shape),
    )
    Y = rng.normal(size=(3, D))
    np.testing.assert_allclose(Pr.kl_projection_simplex(Y, S[:3]).sum(axis=1), S[:3], atol=1e-12)


def test_pytrees(x64):
    tree = {"a": jnp.array([2.0, 0.5]), "b": jnp.array([[1.0, -1.0]])}
    flat = jnp.array([2.0, 0.5, 1.0, -1.0])  # dict leaves in key order: a then b
    for proj, params in [
        (Pr.projection_simplex, 1.5),
        (Pr.projection_l1_ball, 1.5),
        (Pr.projection_l2_ball, 1.5),
        (Pr.projection_hyperplane, (jnp.ones(4), 0.5)),
    ]:
        tparams = params
        if proj is Pr.projection_hyperplane:
            tparams = ({"a": jnp.ones(2), "b": jnp.ones((1, 2))}, 0.5)
        out = proj(tree, tparams)
        assert out["a"].shape == (2,) and out["b"].shape == (1, 2)
        joined = jnp.concatenate([out["a"], out["b"].ravel()])
        np.testing.assert_allclose(joined, proj(flat, params), atol=1e-15)
    out = Pr.projection_box(tree, ({"a": 0.0, "b": -0.5}, 1.0))
    np.testing.assert_array_equal(out["a"], [1.0, 0.5])
    np.testing.assert_array_equal(out["b"], [[1.0, -0.5]])
    out = Pr.kl_projection_simplex(tree)  # leaf by leaf, along the last axis
    np.testing.assert_allclose(out["a"].sum(), 1.0)
    np.testing.assert_allclose(out["b"].sum(axis=-1), [1.0])


ALL = [
    (Pr.projection_nonnegative, None),
    (Pr.projection_box, (-0.5, 0.5)),
    (Pr.projection_simplex, 1.0),
    (Pr.projection_simplex_rows, 1.0),
    (Pr.projection_l1_ball, 1.0),
    (Pr.projection_l2_ball, 1.0),
    (Pr.projection_hyperplane, (np.ones(D), 1.0)),
    (Pr.kl_projection_simplex, None),
    (Pr.kl_projection_simplex, 2.0),
]


@pytest.mark.parametrize("proj,params", ALL, ids=lambda v: getattr(v, "__name__", ""))
def test_float32_stays_float32(proj, params):
    # Only x64 mode can promote (float64 params are already float32 without it).
    with jax.enable_x64(True):
        x = jnp.asarray(np.linspace(-2, 2, D), dtype=jnp.float32)
        p64 = jax.tree_util.tree_map(np.float64, params)  # float64 params must not promote x
        for p in (params, p64):
            assert proj(x, p).dtype == jnp.float32
        assert proj(x.astype(jnp.float64), params).dtype == jnp.float64
        assert jnp.issubdtype(proj(jnp.arange(D), params).dtype, jnp.floating)


def test_jit_and_vmap(x64):
    rng = np.random.default_rng(7)
    X = jnp.asarray(rng.normal(size=(3, D)))
    Z = jax.vmap(Pr.projection_simplex)(X)
    np.testing.assert_allclose(Z, Pr.projection_simplex_rows(X), atol=1e-15)
    x = X[0]
    for proj in (Pr.projection_simplex, Pr.projection_l1_ball, Pr.projection_l2_ball):
        np.testing.assert_allclose(jax.jit(proj)(x, 1.0), proj(x, 1.0))
    radii = jnp.array([0.5, 1.0])
    out = jax.vmap(Pr.projection_l1_ball, in_axes=(None, 0))(x, radii)
    np.testing.assert_allclose(np.abs(out).sum(axis=1), radii, atol=1e-12)


def test_mirror_descent_fixed_point_with_kl_projection(x64):
    """The entropy-regularized linear problem's solution softmax(-c) is a root of F."""
    c = jnp.array([1.0, 2.0, -0.5])
    f = lambda x: x @ c + jnp.sum(x * jnp.log(x))
    F = mirror_descent_fixed_point(f, Pr.kl_projection_simplex, jnp.log, 0.5)
    np.testing.assert_allclose(F(jax.nn.softmax(-c), None), 0.0, atol=1e-15)


def test_errors():
    x = jnp.ones(3)
    with pytest.raises(ValueError, match="projection_box needs params"):
        Pr.projection_box(x, None)
    with pytest.raises(ValueError, match="projection_hyperplane needs params"):
        Pr.projection_hyperplane(x, None)
    with pytest.raises(ValueError, match="must be a scalar"):
        Pr.projection_simplex(x, jnp.ones(3))
    with pytest.raises(ValueError, match="at least one axis"):
        Pr.projection_simplex_rows(jnp.array(1.0))


# ---------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------

vec = arrays(np.float64, D, elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False))
radius = st.floats(0.0, 5.0, allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(x=vec, y=vec, r=radius)
def test_projection_properties(x, y, r):
    """Feasible, idempotent, firmly nonexpansive; the simplex meets the VI at every vertex."""
    with jax.enable_x64(True):
        for proj, name in [
            (Pr.projection_simplex, "simplex"),
            (Pr.projection_l1_ball, "l1_ball"),
            (Pr.projection_l2_ball, "l2_ball"),
        ]:
            zx, zy = np.asarray(proj(x, r)), np.asarray(proj(y, r))
            assert _is_feasible(name, zx, r, tol=1e-9)
            np.testing.assert_allclose(proj(zx, r), zx, atol=1e-9)
            d = zx - zy
            assert d @ d <= d @ (x - y) + 1e-9
        z = np.asarray(Pr.projection_simplex(x, r))
        assert np.all((r * np.eye(D) - z) @ (x - z) <= 1e-9)
