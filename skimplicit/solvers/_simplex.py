r"""Solvers for smooth problems on a product of simplices (one simplex per row).

Each row of ``x`` (shape ``(n_rows, n_cols)``) lies on the probability simplex:

.. math::

    \min_{x \in \Delta^{n_{\text{rows}}}} f(x, *\text{args}), \qquad
    \Delta = \{z \in \mathbb{R}^{n_{\text{cols}}} : z \geq 0, \textstyle\sum_j z_j = 1\}.

* :func:`mirror_descent_simplex`: entropic mirror descent (exponentiated gradient),
  iterated in log space so that no entry underflows to zero.
* :func:`projected_gradient_simplex`: projected gradient, optionally accelerated
  (FISTA with adaptive restart).
* :func:`block_cd_multiclass_svm`: exact block coordinate descent (one row at a time) for
  the multiclass linear SVM dual :func:`multiclass_svm_dual`.

Every solver is a module-level :func:`jax.jit` kernel taking its data as arguments (the
objective ``fun`` is a static argument: pass a module-level function so that compiled
code is reused), warm-starts from ``init``, works under :func:`jax.vmap`, and returns
``(x, info)`` with ``info`` a :class:`~skimplicit.solvers.SolverInfo` whose ``stop_crit``
is the largest change of an entry in the last iteration (the fixed-point residual
``max |T(x) - x|`` of the solver's own map ``T``), compared with ``tol``. The solvers are
not meant to be differentiated through: wrap them with
:func:`~skimplicit.implicit.custom_root` and the mirror-descent or projected-gradient
fixed point of :mod:`skimplicit.implicit.optimality` (see the Examples of
:func:`mirror_descent_simplex`).

Which to use (measured on the multiclass SVM dual of 200 digits, float64, CPU)
-----------------------------------------------------------------------------
* Accelerated projected gradient is the fastest here (tolerance 1e-10 in ~2200
  iterations, ~0.3 s); block coordinate descent needs ~2800 epochs (~1.4 s: one
  ``fori_loop`` step per sample); mirror descent is far slower when the solution lies on
  the simplex's faces (an entry of size ``b`` moves by ``O(b)`` per step): 20000 iterations
  leave an error of ~1e-2.
* For differentiation, the projected-gradient fixed point is the robust choice. The
  mirror-descent fixed point gives the same derivative at an accurate solution, but its
  Jacobian contracts by only ``O(b)`` along a support entry of size ``b``: a tiny positive
  entry (1e-6) makes the linear system ill-conditioned (GMRES stalls).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..implicit.projection import projection_simplex_rows
from ._base import SolverInfo

__all__ = [
    "mirror_descent_simplex",
    "projected_gradient_simplex",
    "block_cd_multiclass_svm",
    "multiclass_svm_dual",
    "multiclass_svm_dual_coef",
    "entropy_mirror_map",
]


def _float_init(init):
    init = jnp.asarray(init)
    if not jnp.issubdtype(init.dtype, jnp.floating):
        init = init.astype(jnp.result_type(float))
    if init.ndim != 2:
        raise ValueError(f"init must be a 2-D array (one simplex per row); got shape {init.shape}.")
    return init


def _log_floor(dtype):
    # Entries are kept >= sqrt(tiny) (1e-154 in float64, 1e-19 in float32): far below any
    # tolerance, yet 1 / x and log(x) stay finite, so the mirror-descent fixed point can be
    # differentiated at the returned point.
    return 0.5 * jnp.log(jnp.finfo(dtype).tiny)


def _resolve_tol(tol, dtype):
    if tol is None:
        tol = 1e-8 if jnp.finfo(dtype).bits >= 64 else 1e-5
    return jnp.asarray(tol, dtype)


def _info(k, err, x, tol):
    converged = (err <= tol) & jnp.all(jnp.isfinite(x))
    k = jnp.asarray(k)
    return SolverInfo(n_iter=k, n_inner=jnp.zeros_like(k), converged=converged,
                      stop_crit=err, threshold=tol, saturated=jnp.zeros((), bool))


def entropy_mirror_map(x):
    r"""Gradient of the negative entropy, floored so that zero entries stay finite.

    ``log(max(x, sqrt(tiny)))``: the ``mapping_fun`` to pass, with
    :func:`~skimplicit.implicit.projection.kl_projection_simplex`, to
    :func:`~skimplicit.implicit.optimality.mirror_descent_fixed_point`. The gradient of
    :math:`\sum_j x_j \log x_j` is :math:`\log x + 1`; the constant is dropped because the
    softmax is invariant to it. Plain ``jnp.log`` gives ``nan`` derivatives at an exact
    zero (a solution from :func:`projected_gradient_simplex` or
    :func:`block_cd_multiclass_svm`); the floor gives those coordinates a zero
    derivative, which is the right one for an inactive entry.

    Parameters
    ----------
    x : array
        Point of the simplex (or of a product of simplices).

    Returns
    -------
    y : array
        The dual (log-space) point.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import entropy_mirror_map
    >>> bool(jnp.isfinite(entropy_mirror_map(jnp.array([0.0, 1.0]))).all())
    True
    """
    return jnp.log(jnp.maximum(x, jnp.exp(_log_floor(x.dtype))))


# --------------------------------------------------------------------------------------
# Generic solvers: f(x, *args) with x on a product of simplices
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("maxiter",))
def mirror_descent_simplex(fun, init, *args, step, maxiter=1000, tol=None):
    r"""Entropic mirror descent on a product of simplices.

    Minimizes ``fun(x, *args)`` over matrices ``x`` whose rows lie on the probability
    simplex, by the exponentiated-gradient update (one softmax per row)

    .. math::

        x^{t+1} = \operatorname{softmax}\big(\log x^t - \text{step} \cdot
        \nabla f(x^t)\big),

    the iteration whose fixed point is
    :func:`~skimplicit.implicit.optimality.mirror_descent_fixed_point` with
    :func:`~skimplicit.implicit.projection.kl_projection_simplex` and
    :func:`entropy_mirror_map`. It runs in log space: entries below ``sqrt(tiny)``
    (``1e-154`` in float64) are held there, never rounded to zero.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> scalar``, smooth; static (pass a module-level function, so
        that the compiled kernel is reused across calls).
    init : array of shape (n_rows, n_cols)
        Warm start, each row on the simplex. A zero entry can never become positive
        under multiplicative updates, so entries are floored at ``sqrt(tiny)``: warm-start
        from a mixture such as ``0.99 * x + 0.01 / n_cols`` when ``x`` has exact zeros.
    *args
        Data passed to ``fun`` (traced: new values do not recompile).
    step : float
        Step size. ``1 / L`` with ``L`` the largest eigenvalue of the Hessian is always
        safe (the negative entropy is 1-strongly convex on the simplex and its Hessian
        ``diag(1 / x)`` dominates the identity); larger steps are often faster.
    maxiter : int, default=1000
        Iteration cap (static).
    tol : float, optional
        Stop when no entry changes by more than ``tol`` in one iteration; default
        ``1e-8`` in float64, ``1e-5`` in float32.

    Returns
    -------
    x : array of shape (n_rows, n_cols)
        The last iterate, rows on the simplex, all entries positive.
    info : SolverInfo
        ``n_iter``, ``converged``, and ``stop_crit``: the largest change of an entry in
        the last iteration.

    References
    ----------
    Beck and Teboulle, "Mirror descent and nonlinear projected subgradient methods for
    convex optimization", Operations Research Letters, 2003.

    Blondel et al., "Efficient and Modular Implicit Differentiation", NeurIPS 2022
    (the mirror-descent fixed point).

    Examples
    --------
    Entropy-regularized linear objective, whose solution is ``softmax(-c)`` per row, and
    its derivative through the mirror-descent fixed point:

    >>> import jax, jax.numpy as jnp
    >>> from skimplicit.implicit import custom_root, optimality
    >>> from skimplicit.implicit.projection import kl_projection_simplex
    >>> from skimplicit.solvers import mirror_descent_simplex, entropy_mirror_map
    >>> def f(x, c):
    ...     return jnp.sum(x * c) + jnp.sum(x * jnp.log(x))
    >>> F = optimality.mirror_descent_fixed_point(f, kl_projection_simplex,
    ...                                           entropy_mirror_map, 0.5)
    >>> @custom_root(F, has_aux=True)
    ... def solve(init, proj_params, c):
    ...     return mirror_descent_simplex(f, init, c, step=0.5, tol=1e-7)
    >>> c = jnp.array([[1.0, 2.0, 3.0]])
    >>> x, info = solve(jnp.full((1, 3), 1 / 3), None, c)
    >>> bool(info.converged), bool(jnp.allclose(x, jax.nn.softmax(-c), atol=1e-5))
    (True, True)
    >>> g = jax.grad(lambda c: solve(jnp.full((1, 3), 1 / 3), None, c)[0][0, 0])(c)
    >>> ref = jax.grad(lambda c: jax.nn.softmax(-c)[0, 0])(c)
    >>> bool(jnp.allclose(g, ref, atol=1e-4))
    True
    """
    x0 = _float_init(init)
    dtype = x0.dtype
    floor = _log_floor(dtype)
    step = jnp.asarray(step, dtype)
    tol = _resolve_tol(tol, dtype)
    grad = jax.grad(fun)

    def update(z):
        z = z - step * grad(jnp.exp(z), *args).astype(dtype)
        return jnp.maximum(jax.nn.log_softmax(z, axis=-1), floor)

    def cond(state):
        _, err, k = state
        return (k < maxiter) & (err > tol)

    def body(state):
        z, _, k = state
        z_new = update(z)
        err = jnp.max(jnp.abs(jnp.exp(z_new) - jnp.exp(z)))
        return z_new, jnp.where(jnp.isfinite(err), err, -jnp.inf), k + 1

    # Renormalize the (floored) init in log space so that the first iterate is on the simplex.
    z0 = jnp.maximum(jax.nn.log_softmax(jnp.log(jnp.maximum(x0, jnp.exp(floor))), axis=-1), floor)
    z, err, k = jax.lax.while_loop(cond, body, (z0, jnp.asarray(jnp.inf, dtype), 0))
    x = jnp.exp(z)
    err = jnp.where(err == -jnp.inf, jnp.nan, err)
    return x, _info(k, err, x, tol)


@functools.partial(
    jax.jit, static_argnums=(0,), static_argnames=("maxiter", "acceleration")
)
def projected_gradient_simplex(fun, init, *args, step, maxiter=1000, tol=None,
                               acceleration=True):
    r"""Projected gradient on a product of simplices (row-wise Euclidean projection).

    Minimizes ``fun(x, *args)`` over matrices ``x`` whose rows lie on the probability
    simplex by

    .. math::

        x^{t+1} = P_{\Delta}\big(y^t - \text{step} \cdot \nabla f(y^t)\big),

    with ``y^t = x^t`` (plain projected gradient) or, with ``acceleration``, Nesterov's
    extrapolation ``y^t = x^t + \frac{t_k - 1}{t_{k+1}} (x^t - x^{t-1})`` restarted
    whenever it points uphill (O'Donoghue and Candès, 2015). Its fixed point is
    :func:`~skimplicit.implicit.optimality.projected_grad_fixed_point` with
    :func:`~skimplicit.implicit.projection.projection_simplex_rows`.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> scalar``, smooth; static (pass a module-level function).
    init : array of shape (n_rows, n_cols)
        Warm start (projected onto the simplex first, so any matrix is accepted).
    *args
        Data passed to ``fun``.
    step : float
        Step size, at most ``1 / L`` with ``L`` the Lipschitz constant of ``grad fun``.
    maxiter : int, default=1000
        Iteration cap (static).
    tol : float, optional
        Stop when the projected-gradient step moves no entry by more than ``tol``:
        ``max |P(y - step grad f(y)) - y| <= tol``; default ``1e-8`` in float64,
        ``1e-5`` in float32.
    acceleration : bool, default=True
        Nesterov extrapolation with adaptive restart (static).

    Returns
    -------
    x : array of shape (n_rows, n_cols)
        The last iterate, rows on the simplex (exact zeros allowed).
    info : SolverInfo
        ``stop_crit`` is ``max |P(y - step grad f(y)) - y|`` at the last iteration.

    References
    ----------
    Beck and Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear
    inverse problems", SIAM J. Imaging Sciences, 2009.

    O'Donoghue and Candès, "Adaptive restart for accelerated gradient schemes",
    Foundations of Computational Mathematics, 2015.

    Examples
    --------
    Euclidean projection of a point onto the simplex as an optimization problem:

    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import projected_gradient_simplex
    >>> def f(x, c):
    ...     return 0.5 * jnp.sum((x - c) ** 2)
    >>> c = jnp.array([[0.8, 0.6, -1.0]])
    >>> x, info = projected_gradient_simplex(f, jnp.full((1, 3), 1 / 3), c, step=0.5)
    >>> bool(jnp.allclose(x, jnp.array([[0.6, 0.4, 0.0]]), atol=1e-4)), bool(info.converged)
    (True, True)
    """
    x0 = projection_simplex_rows(_float_init(init))
    dtype = x0.dtype
    step = jnp.asarray(step, dtype)
    tol = _resolve_tol(tol, dtype)
    grad = jax.grad(fun)

    def pg_step(y):
        return projection_simplex_rows(y - step * grad(y, *args).astype(dtype))

    def cond(state):
        _, _, _, err, k = state
        return (k < maxiter) & (err > tol)

    def body(state):
        x, y, t, _, k = state
        x_new = pg_step(y)
        err = jnp.max(jnp.abs(x_new - y))
        if acceleration:
            # Restart (y = x, t = 1) when the step direction opposes the momentum.
            restart = jnp.vdot(y - x_new, x_new - x) > 0
            t_new = jnp.where(restart, 1.0, 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t)))
            y_new = jnp.where(restart, x_new, x_new + ((t - 1.0) / t_new) * (x_new - x))
            t_new = t_new.astype(dtype)
        else:
            t_new, y_new = t, x_new
        err = jnp.where(jnp.isfinite(err), err, -jnp.inf)
        return x_new, y_new, t_new, err, k + 1

    one = jnp.ones((), dtype)
    state = (x0, x0, one, jnp.asarray(jnp.inf, dtype), 0)
    x, _, _, err, k = jax.lax.while_loop(cond, body, state)
    err = jnp.where(err == -jnp.inf, jnp.nan, err)
    return x, _info(k, err, x, tol)


# --------------------------------------------------------------------------------------
# Multiclass linear SVM (Crammer-Singer) dual
# --------------------------------------------------------------------------------------


def multiclass_svm_dual(beta, X, Y, alpha):
    r"""Dual objective of the multiclass linear SVM (Crammer and Singer), scaled by ``alpha``.

    The primal, with one-hot labels ``Y`` of shape ``(n_samples, n_classes)``, is

    .. math::

        \min_W \sum_{i=1}^n \max_k \big[1 - Y_{ik} + x_i^\top w_k - x_i^\top w_{y_i}\big]
        + \frac{\alpha}{2} \|W\|_F^2,

    i.e. :class:`sklearn.svm.LinearSVC` with ``multi_class="crammer_singer"``,
    ``loss="hinge"``, ``C = 1 / alpha`` and ``fit_intercept=False``. Its dual, multiplied
    by ``alpha`` (which leaves the solution unchanged and makes the Lipschitz constant
    ``||X||_2^2`` independent of ``alpha``), is

    .. math::

        \min_{\beta \in \Delta^n} \; \frac{1}{2} \|X^\top (Y - \beta)\|_F^2
        + \alpha \langle \beta, Y \rangle,

    one simplex per sample, and ``W = X^T (Y - beta) / alpha``
    (:func:`multiclass_svm_dual_coef`).

    Parameters
    ----------
    beta : array of shape (n_samples, n_classes)
        Dual variables, rows on the simplex.
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_classes)
        One-hot labels.
    alpha : float
        Regularization strength (``1 / C``).

    Returns
    -------
    value : scalar

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import multiclass_svm_dual
    >>> X = jnp.array([[1.0, 0.0], [0.0, 1.0]]); Y = jnp.eye(2)
    >>> float(multiclass_svm_dual(Y, X, Y, 1.0))  # beta = Y: W = 0
    2.0
    """
    V = X.T @ (Y - beta)
    return 0.5 * jnp.sum(V * V) + alpha * jnp.vdot(beta, Y)


def multiclass_svm_dual_coef(beta, X, Y, alpha):
    """Primal coefficients ``W = X^T (Y - beta) / alpha`` of :func:`multiclass_svm_dual`.

    Returns
    -------
    W : array of shape (n_features, n_classes)
        Decision function ``X @ W`` (``LinearSVC.coef_.T``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import multiclass_svm_dual_coef
    >>> multiclass_svm_dual_coef(jnp.full((2, 2), 0.5), jnp.eye(2), jnp.eye(2), 2.0)
    Array([[ 0.25, -0.25],
           [-0.25,  0.25]], dtype=float32)
    """
    return X.T @ (Y - beta) / alpha


@functools.partial(jax.jit, static_argnames=("maxiter",))
def block_cd_multiclass_svm(init, X, Y, alpha, *, maxiter=1000, tol=None):
    r"""Block coordinate descent for the multiclass linear SVM dual, one sample at a time.

    Minimizes :func:`multiclass_svm_dual`. The block of sample ``i`` has Hessian
    ``||x_i||^2 I``, so the projected step

    .. math::

        \beta_i \leftarrow P_{\Delta}\Big(\beta_i - \frac{\alpha Y_i - x_i^\top V}
        {\|x_i\|^2}\Big), \qquad V = X^\top (Y - \beta),

    minimizes the objective exactly in that block; ``V`` is updated in ``O(p k)``, so an
    epoch over the samples costs about one gradient evaluation. Cyclic order.

    Parameters
    ----------
    init : array of shape (n_samples, n_classes)
        Warm start (projected onto the simplex first).
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_classes)
        One-hot labels.
    alpha : float
        Regularization strength (``1 / C``).
    maxiter : int, default=1000
        Cap on the number of epochs (static).
    tol : float, optional
        Stop when an epoch changes no entry by more than ``tol``; default ``1e-8`` in
        float64, ``1e-5`` in float32.

    Returns
    -------
    beta : array of shape (n_samples, n_classes)
    info : SolverInfo
        ``n_iter`` counts epochs; ``stop_crit`` is the largest change of an entry in the
        last epoch.

    References
    ----------
    Crammer and Singer, "On the algorithmic implementation of multiclass kernel-based
    vector machines", JMLR, 2001.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import block_cd_multiclass_svm, multiclass_svm_dual_coef
    >>> X = jnp.array([[1.0, 0.2], [0.1, 1.0], [-1.0, -1.0]]); Y = jnp.eye(3)
    >>> beta, info = block_cd_multiclass_svm(jnp.full((3, 3), 1 / 3), X, Y, 1.0)
    >>> bool(info.converged), multiclass_svm_dual_coef(beta, X, Y, 1.0).shape
    (True, (2, 3))
    """
    beta0 = projection_simplex_rows(_float_init(init))
    dtype = beta0.dtype
    X = jnp.asarray(X, dtype)
    Y = jnp.asarray(Y, dtype)
    alpha = jnp.asarray(alpha, dtype)
    tol = _resolve_tol(tol, dtype)
    sq_norms = jnp.sum(X * X, axis=1)
    # A zero row has a constant block objective up to alpha <beta_i, Y_i>: take a unit step.
    inv_L = jnp.where(sq_norms > 0, 1.0 / jnp.where(sq_norms > 0, sq_norms, 1.0), 1.0)

    def row_update(i, carry):
        beta, V, err = carry
        x_i = X[i]
        b_i = beta[i]
        g_i = alpha * Y[i] - x_i @ V
        b_new = projection_simplex_rows((b_i - inv_L[i] * g_i)[None, :])[0]
        V = V + jnp.outer(x_i, b_i - b_new)
        return beta.at[i].set(b_new), V, jnp.maximum(err, jnp.max(jnp.abs(b_new - b_i)))

    def cond(state):
        _, _, err, k = state
        return (k < maxiter) & (err > tol)

    def body(state):
        beta, V, _, k = state
        beta, V, err = jax.lax.fori_loop(0, beta.shape[0], row_update,
                                         (beta, V, jnp.zeros((), dtype)))
        err = jnp.where(jnp.isfinite(err), err, -jnp.inf)
        return beta, V, err, k + 1

    V0 = X.T @ (Y - beta0)
    state = (beta0, V0, jnp.asarray(jnp.inf, dtype), 0)
    beta, _, err, k = jax.lax.while_loop(cond, body, state)
    err = jnp.where(err == -jnp.inf, jnp.nan, err)
    return beta, _info(k, err, beta, tol)
