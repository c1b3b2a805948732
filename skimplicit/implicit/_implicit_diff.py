"""Implicit differentiation of roots and fixed points.

At a solution ``x*(theta)`` of ``F(x, theta) = 0`` the implicit function theorem gives

    dF/dx . dx* = - dF/dtheta . dtheta.

* Forward mode (JVP): solve ``(dF/dx) v = -(dF/dtheta) t``.
* Reverse mode (VJP): solve ``(dF/dx)^T u = -c``, then return ``u^T dF/dtheta``.

Both are matrix-free: ``dF/dx v`` is a JVP of ``F`` in ``x``, ``(dF/dx)^T u`` a VJP.
:func:`custom_root` installs the forward rule as a :func:`jax.custom_jvp` whose linear
solve is a :func:`jax.lax.custom_linear_solve`; JAX transposes it for reverse mode, so
``grad``, ``jacrev``, ``jacfwd`` and ``hessian`` all work, under ``jit`` and ``vmap``.
The solver itself is never differentiated: it may be a black box (``jax.pure_callback``).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import tree_util as tu

from .linear_solve import solve_gmres

__all__ = ["custom_root", "custom_fixed_point", "root_vjp", "root_jvp", "default_solve_for"]


def default_solve_for(optimality_fun) -> Callable:
    """Linear solver used for ``optimality_fun`` when none is given.

    Mappings built by :mod:`skimplicit.implicit.optimality` carry a ``default_solve``
    attribute (CG for symmetric positive definite systems, GMRES otherwise); any other
    function gets :func:`~skimplicit.implicit.linear_solve.solve_gmres`, which needs no
    symmetry.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit import default_solve_for, optimality
    >>> F = optimality.stationary(lambda x, lam: jnp.sum(x ** 2) + lam * jnp.sum(x))
    >>> default_solve_for(F).__name__, default_solve_for(lambda x, lam: x - lam).__name__
    ('solve_cg', 'solve_gmres')
    """
    return getattr(optimality_fun, "default_solve", solve_gmres)


def _neg(tree):
    return tu.tree_map(jnp.negative, tree)


def _x_matvec(optimality_fun, sol, args):
    """``v -> dF/dx (sol, args) v``."""

    def matvec(v):
        return jax.jvp(lambda x: optimality_fun(x, *args), (sol,), (v,))[1]

    return matvec


def root_vjp(optimality_fun, sol, args, cotangent, solve=None, *, init=None,
             return_info=False):
    """Vector-Jacobian product of a root ``sol`` of ``optimality_fun(x, *args) = 0``.

    Parameters
    ----------
    optimality_fun : callable
        ``F(x, *args)``, zero at ``sol``; returns a pytree shaped like ``x``.
    sol : pytree
        The solution.
    args : tuple
        The arguments of ``F`` after ``x``.
    cotangent : pytree shaped like ``sol``
        Typically the gradient of an outer loss at ``sol``.
    solve : callable, optional
        A linear solver of :mod:`skimplicit.implicit.linear_solve`; default
        :func:`default_solve_for` ``(optimality_fun)``.
    init : pytree, optional
        Warm start of the linear system (the ``u`` of the previous call).
    return_info : bool, default=False
        Also return ``(u, info)``: the linear system's solution (to warm-start the next
        call) and its :class:`~skimplicit.implicit.linear_solve.SolveInfo`.

    Returns
    -------
    vjps : tuple
        One cotangent per element of ``args`` (``c^T dx*/d args[i]``); with
        ``return_info``, ``(vjps, u, info)``.

    Examples
    --------
    Ridge: ``x*(lam) = (A^T A + lam I)^-1 A^T b`` is the root of ``grad f``.

    >>> import jax, jax.numpy as jnp
    >>> from skimplicit.implicit import root_vjp, optimality
    >>> A = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]]); b = jnp.array([1.0, 0.0, 2.0])
    >>> f = lambda x, lam: 0.5 * jnp.sum((A @ x - b) ** 2) + 0.5 * lam * x @ x
    >>> lam = 1.0
    >>> x = jnp.linalg.solve(A.T @ A + lam * jnp.eye(2), A.T @ b)
    >>> (g,) = root_vjp(optimality.stationary(f), x, (lam,), jnp.ones(2))
    >>> ref = jax.grad(lambda l: jnp.linalg.solve(A.T @ A + l * jnp.eye(2), A.T @ b).sum())(lam)
    >>> bool(jnp.allclose(g, ref, rtol=1e-4))
    True
    """
    solve = default_solve_for(optimality_fun) if solve is None else solve
    # (dF/dx)^T as a function: the VJP in x.
    _, vjp_x = jax.vjp(lambda x: optimality_fun(x, *args), sol)

    def rmatvec(u):
        return vjp_x(u)[0]

    out = solve(rmatvec, _neg(cotangent), init=init, return_info=return_info)
    u, info = out if return_info else (out, None)
    _, vjp_args = jax.vjp(lambda *a: optimality_fun(sol, *a), *args)
    vjps = vjp_args(u)
    if return_info:
        return vjps, u, info
    return vjps


def root_jvp(optimality_fun, sol, args, tangents, solve=None, *, init=None,
             return_info=False):
    """Jacobian-vector product of a root: the tangent of ``sol`` along ``tangents``.

    Solves ``dF/dx v = -dF/dargs . tangents`` (forward mode, cheap for a few
    hyperparameters). Parameters are those of :func:`root_vjp` with ``tangents`` (one
    per element of ``args``) in place of ``cotangent``.

    Returns
    -------
    v : pytree shaped like ``sol`` (and ``info`` with ``return_info``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit import root_jvp, optimality
    >>> f = lambda x, lam: 0.5 * jnp.sum((x - 1.0) ** 2) + 0.5 * lam * x @ x
    >>> x = jnp.full(3, 1.0 / 3.0)  # root at lam = 2: x = 1 / (1 + lam)
    >>> v = root_jvp(optimality.stationary(f), x, (2.0,), (1.0,))
    >>> bool(jnp.allclose(v, -1.0 / 9.0))
    True
    """
    solve = default_solve_for(optimality_fun) if solve is None else solve
    _, rhs = jax.jvp(lambda *a: optimality_fun(sol, *a), tuple(args), tuple(tangents))
    matvec = _x_matvec(optimality_fun, sol, args)
    return solve(matvec, _neg(rhs), init=init, return_info=return_info)


def _zero_tangent(x):
    x = jnp.asarray(x) if not hasattr(x, "dtype") else x
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(np.shape(x), dtype=jax.dtypes.float0)


def custom_root(optimality_fun, *, solve=None, has_aux=False):
    """Make a root-finding solver differentiable by implicit differentiation.

    Decorates ``solver(init, *args) -> x`` (or ``(x, aux)`` with ``has_aux=True``)
    where ``optimality_fun(x, *args) == 0`` at the returned ``x``. The result is
    differentiable in every positional argument after ``init`` (pytrees allowed), in
    forward and reverse mode (``jax.jvp``, ``jacfwd``, ``hessian``, ``grad``, ``vjp``,
    ``jacrev``), under ``jit`` and ``vmap``. Only ``x`` is differentiated; ``init`` and
    ``aux`` get zero derivatives. The solver is never traced for differentiation, so it
    may be any code, e.g. scikit-learn or scipy through :func:`jax.pure_callback`.

    Positional arguments only: everything the solution depends on must be passed as an
    argument (a closed-over array would be treated as a constant).

    A black-box solver under a scoped ``jax.enable_x64(True)``: give
    ``jax.pure_callback`` ``vmap_method="broadcast_all"`` (or "expand_dims") rather than
    "sequential". XLA may run a sequential callback on a worker thread where the scoped
    x64 setting is not active; JAX then hands the callback float32 arrays and rejects its
    float64 result ("Incorrect output dtype").

    Parameters
    ----------
    optimality_fun : callable
        ``F(x, *args)``, zero at the solution, with ``args`` exactly the solver's
        arguments after ``init``.
    solve : callable, optional
        Linear solver (see :mod:`skimplicit.implicit.linear_solve`); default
        :func:`default_solve_for` ``(optimality_fun)``.
    has_aux : bool, default=False
        Whether the solver returns ``(x, aux)``.

    Returns
    -------
    decorator : callable

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from skimplicit.implicit import custom_root, optimality
    >>> f = lambda x, lam: 0.5 * jnp.sum((x - 1.0) ** 2) + 0.5 * lam * jnp.sum(x ** 2)
    >>> @custom_root(optimality.stationary(f))
    ... def ridge_solver(init, lam):
    ...     return jnp.ones(3) / (1.0 + lam)
    >>> float(jax.grad(lambda lam: ridge_solver(None, lam).sum())(1.0))
    -0.75
    >>> float(jax.jacfwd(lambda lam: ridge_solver(None, lam).sum())(1.0))
    -0.75
    """
    if not callable(optimality_fun):
        raise TypeError("optimality_fun must be callable")
    linear_solve = default_solve_for(optimality_fun) if solve is None else solve

    def decorator(solver):
        @functools.wraps(solver)
        def wrapped(init, *args):
            @jax.custom_jvp
            def run(init, *args):
                return solver(init, *args)

            @run.defjvp
            def run_jvp(primals, tangents):
                init, *args = primals
                _, *targs = tangents
                # Call ``run`` (not ``solver``): the rule's own derivatives (second order:
                # ``hessian``, ``jacfwd(grad)``) then go through implicit differentiation
                # again instead of through the solver, which may be a non-differentiable
                # black box (``pure_callback``) or a ``while_loop``.
                out = run(init, *args)
                x = out[0] if has_aux else out
                _, rhs = jax.jvp(lambda *a: optimality_fun(x, *a), tuple(args), tuple(targs))
                matvec = _x_matvec(optimality_fun, x, args)

                def fwd_solve(mv, b):
                    return linear_solve(mv, b)

                xdot = jax.lax.custom_linear_solve(
                    matvec, _neg(rhs), solve=fwd_solve, transpose_solve=fwd_solve
                )
                if has_aux:
                    return out, (xdot, tu.tree_map(_zero_tangent, out[1]))
                return out, xdot

            return run(init, *args)

        return wrapped

    return decorator


def custom_fixed_point(fixed_point_fun, *, solve=None, has_aux=False):
    """Make a fixed-point solver differentiable: ``x = T(x, *args)`` at the solution.

    Equivalent to :func:`custom_root` with ``F(x, *args) = T(x, *args) - x``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from skimplicit.implicit import custom_fixed_point
    >>> T = lambda x, a: 0.5 * x + a  # fixed point x = 2 a
    >>> @custom_fixed_point(T)
    ... def iterate(init, a):
    ...     return jax.lax.fori_loop(0, 100, lambda i, x: T(x, a), init)
    >>> float(jax.grad(lambda a: iterate(jnp.zeros(()), a))(1.0))
    2.0
    """

    def optimality_fun(x, *args):
        return tu.tree_map(jnp.subtract, fixed_point_fun(x, *args), x)

    return custom_root(optimality_fun, solve=solve, has_aux=has_aux)
