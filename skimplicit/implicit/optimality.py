"""Optimality mappings: factories returning a residual ``F`` with ``F(x*, *args) = 0``.

Each returned ``F`` is meant for :func:`~skimplicit.implicit.custom_root` or
:func:`~skimplicit.implicit.root_vjp`, and carries a ``default_solve`` attribute naming the
linear solver that suits its Jacobian ``dF/dx``:

=================================  =================================  ===============
mapping                            ``dF/dx`` at the solution          default solve
=================================  =================================  ===============
:func:`stationary`                 Hessian: symmetric, PD if convex   ``solve_cg``
:func:`support_stationary`         Hessian on the support, I off it   ``solve_cg``
:func:`kkt`                        symmetric indefinite (saddle)      ``solve_gmres``
:func:`prox_grad_fixed_point`      ``D (I - step H) - I``, general    ``solve_gmres``
:func:`projected_grad_fixed_point` ``D (I - step H) - I``, general    ``solve_gmres``
:func:`mirror_descent_fixed_point` general                            ``solve_gmres``
=================================  =================================  ===============
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import tree_util as tu

from .linear_solve import solve_cg, solve_gmres

__all__ = [
    "stationary",
    "support_stationary",
    "kkt",
    "prox_grad_fixed_point",
    "projected_grad_fixed_point",
    "mirror_descent_fixed_point",
]


def _with_solve(F, solve, doc):
    F.default_solve = solve
    F.__doc__ = doc
    return F


def _axpy(a, x, y):
    """``a * x + y`` on pytrees."""
    return tu.tree_map(lambda xi, yi: a * xi + yi, x, y)


def stationary(fun):
    """Stationarity of a smooth objective: ``F(x, *args) = grad_x fun(x, *args)``.

    ``dF/dx`` is the Hessian, symmetric (and positive definite for a strongly convex
    ``fun``): the default linear solver is conjugate gradient.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.optimality import stationary
    >>> F = stationary(lambda x, lam: 0.5 * jnp.sum((x - 1) ** 2) + 0.5 * lam * x @ x)
    >>> F(jnp.full(2, 0.5), 1.0)
    Array([0., 0.], dtype=float32)
    """
    grad = jax.grad(fun)

    def F(x, *args):
        return grad(x, *args)

    return _with_solve(F, solve_cg, "F(x, *args) = grad_x fun(x, *args).")


def support_stationary(fun, penalty_grad, *, grad=None):
    """Stationarity restricted to the support of a sparse solution (L1-type problems).

    For ``min_x fun(x, *fun_args) + g(x; penalty_params)`` with ``g`` separable and smooth
    away from zero (Lasso: ``g = alpha ||x||_1``, ``penalty_grad(x, alpha) = alpha *
    sign(x)``), the solution's nonzero set ``S`` is locally constant and::

        F(x, penalty_params, *fun_args) = where(m, grad fun(m * x) + penalty_grad(x, p), x)

    with ``m = (x != 0)`` held constant. ``dF/dx = [[H_SS, 0], [0, I]]`` is symmetric
    positive definite whenever ``H_SS`` is, unlike the proximal-gradient fixed point whose
    Jacobian is nonsymmetric and singular-looking off the support; it yields the same
    derivative as :func:`prox_grad_fixed_point` (tested) with conjugate gradient.
    Valid away from kinks (no coordinate with ``|grad_j| = alpha`` at ``x_j = 0``).

    ``grad(x, *fun_args)``, when given, is ``grad fun`` written out (``fun`` may then be
    ``None``): the same mapping without nested autodiff, a smaller graph that compiles
    faster inside a hypergradient kernel (the linear models' support kernels use it with
    ``X^T (X x - y) / n``, or with ``G x - b`` on a Gram matrix).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.optimality import support_stationary
    >>> f = lambda x: 0.5 * jnp.sum((x - jnp.array([3.0, 0.5])) ** 2)
    >>> F = support_stationary(f, lambda x, alpha: alpha * jnp.sign(x))
    >>> F(jnp.array([2.0, 0.0]), 1.0)  # soft-thresholding of (3, 0.5) at 1
    Array([0., 0.], dtype=float32)
    >>> G = support_stationary(None, lambda x, alpha: alpha * jnp.sign(x),
    ...                        grad=lambda x: x - jnp.array([3.0, 0.5]))
    >>> G(jnp.array([2.0, 0.0]), 1.0)
    Array([0., 0.], dtype=float32)
    """
    if grad is None:
        grad = jax.grad(fun)

    def F(x, penalty_params, *fun_args):
        mask = tu.tree_map(lambda xi: jax.lax.stop_gradient(xi != 0), x)
        xm = tu.tree_map(lambda mi, xi: jnp.where(mi, xi, 0), mask, x)
        g = grad(xm, *fun_args)
        pg = penalty_grad(x, penalty_params)
        return tu.tree_map(lambda mi, gi, pi, xi: jnp.where(mi, gi + pi, xi), mask, g, pg, x)

    return _with_solve(F, solve_cg, support_stationary.__doc__.split("\n\n")[0])


def kkt(obj_fun, eq_fun=None, ineq_fun=None):
    """Karush-Kuhn-Tucker conditions of ``min obj(x)`` subject to ``eq(x) = 0, ineq(x) <= 0``.

    Returns ``F((primal, dual_eq, dual_ineq), obj_params, eq_params, ineq_params)`` made of

    * stationarity: ``grad obj + J_eq^T dual_eq + J_ineq^T dual_ineq`` (as VJPs),
    * primal feasibility: ``eq(primal, eq_params)``,
    * complementary slackness: ``dual_ineq * ineq(primal, ineq_params)``.

    Absent constraints have ``None`` duals and ``None`` residuals. The Jacobian is a
    symmetric-indefinite saddle-point matrix (nonsymmetric with inequalities): GMRES.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.optimality import kkt
    >>> F = kkt(lambda x, p: 0.5 * x @ x, lambda x, p: jnp.sum(x) - p)
    >>> F((jnp.array([0.5, 0.5]), jnp.array(-0.5), None), None, 1.0, None)[0]
    Array([0., 0.], dtype=float32)
    """
    obj_grad = jax.grad(obj_fun)

    def F(x, obj_params, eq_params=None, ineq_params=None):
        primal, dual_eq, dual_ineq = x
        stat = obj_grad(primal, obj_params)
        eq_res = ineq_res = None
        if eq_fun is not None:
            eq_res, vjp_eq = jax.vjp(lambda z: eq_fun(z, eq_params), primal)
            stat = tu.tree_map(jnp.add, stat, vjp_eq(dual_eq)[0])
        if ineq_fun is not None:
            ineq_val, vjp_ineq = jax.vjp(lambda z: ineq_fun(z, ineq_params), primal)
            stat = tu.tree_map(jnp.add, stat, vjp_ineq(dual_ineq)[0])
            ineq_res = tu.tree_map(jnp.multiply, dual_ineq, ineq_val)
        return stat, eq_res, ineq_res

    return _with_solve(F, solve_gmres, kkt.__doc__.split("\n\n")[0])


def prox_grad_fixed_point(fun, prox, step):
    """Proximal-gradient fixed point of ``min_x fun(x, *fun_args) + g(x; prox_params)``.

    ``F(x, prox_params, *fun_args) = prox(x - step * grad fun(x, *fun_args), prox_params,
    step) - x`` where ``prox(v, params, scaling)`` is a proximal operator of
    :mod:`skimplicit.implicit.prox`. Any ``step`` in ``(0, 2/L)`` has the same roots; for
    L1 problems prefer :func:`support_stationary` (symmetric, better conditioned).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.optimality import prox_grad_fixed_point
    >>> from skimplicit.implicit.prox import prox_lasso
    >>> f = lambda x: 0.5 * jnp.sum((x - jnp.array([3.0, 0.5])) ** 2)
    >>> F = prox_grad_fixed_point(f, prox_lasso, 1.0)
    >>> F(jnp.array([2.0, 0.0]), 1.0)
    Array([0., 0.], dtype=float32)
    """
    grad = jax.grad(fun)

    def F(x, prox_params, *fun_args):
        y = _axpy(-step, grad(x, *fun_args), x)
        return tu.tree_map(jnp.subtract, prox(y, prox_params, step), x)

    return _with_solve(F, solve_gmres, prox_grad_fixed_point.__doc__.split("\n\n")[0])


def projected_grad_fixed_point(fun, projection, step):
    """Projected-gradient fixed point of ``min_{x in C(proj_params)} fun(x, *fun_args)``.

    ``F(x, proj_params, *fun_args) = projection(x - step * grad fun(x, *fun_args),
    proj_params) - x`` with ``projection(v, params)`` from
    :mod:`skimplicit.implicit.projection`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.optimality import projected_grad_fixed_point
    >>> from skimplicit.implicit.projection import projection_nonnegative
    >>> f = lambda x: 0.5 * jnp.sum((x - jnp.array([1.0, -1.0])) ** 2)
    >>> F = projected_grad_fixed_point(f, lambda v, p: projection_nonnegative(v), 0.5)
    >>> F(jnp.array([1.0, 0.0]), None)
    Array([0., 0.], dtype=float32)
    """
    grad = jax.grad(fun)

    def F(x, proj_params, *fun_args):
        y = _axpy(-step, grad(x, *fun_args), x)
        return tu.tree_map(jnp.subtract, projection(y, proj_params), x)

    return _with_solve(F, solve_gmres, projected_grad_fixed_point.__doc__.split("\n\n")[0])


def mirror_descent_fixed_point(fun, projection, mapping_fun, step):
    """Mirror-descent fixed point of ``min_{x in C(proj_params)} fun(x, *fun_args)``.

    With a mirror map ``phi`` whose gradient is ``mapping_fun = grad phi`` and the Bregman
    projection ``projection(y, proj_params) = argmin_{z in C} D_phi(z, grad phi^*(y))``
    taking a dual-space point::

        F(x, proj_params, *fun_args) = projection(mapping_fun(x) - step * grad fun(x),
                                                  proj_params) - x

    For the simplex with the entropy, ``mapping_fun = jnp.log`` and ``projection`` is a
    softmax (:func:`~skimplicit.implicit.projection.kl_projection_simplex`), the
    exponentiated-gradient update; the solution must lie in the simplex's relative
    interior (true for entropy-regularized problems).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.optimality import mirror_descent_fixed_point
    >>> from skimplicit.implicit.projection import kl_projection_simplex
    >>> c = jnp.array([1.0, 2.0])
    >>> f = lambda x: x @ c + jnp.sum(x * jnp.log(x))  # solution softmax(-c)
    >>> F = mirror_descent_fixed_point(f, kl_projection_simplex, jnp.log, 0.5)
    >>> x = jnp.exp(-c) / jnp.exp(-c).sum()
    >>> bool(jnp.allclose(F(x, None), 0.0, atol=1e-6))
    True
    """
    grad = jax.grad(fun)

    def F(x, proj_params, *fun_args):
        y = _axpy(-step, grad(x, *fun_args), tu.tree_map(mapping_fun, x))
        return tu.tree_map(jnp.subtract, projection(y, proj_params), x)

    return _with_solve(F, solve_gmres, mirror_descent_fixed_point.__doc__.split("\n\n")[0])
