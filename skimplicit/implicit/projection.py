r"""Euclidean (and one Bregman) projections onto convex sets.

Every projection here has the signature ``projection_xxx(x, params=None)`` and returns

.. math::

    \operatorname*{argmin}_{z \in C(\text{params})} \|z - x\|_2^2,

the set :math:`C` being stated in each docstring. The exception,
:func:`kl_projection_simplex`, is the Kullback-Leibler projection used by mirror descent
(:func:`~skimplicit.implicit.optimality.mirror_descent_fixed_point`).

Conventions
-----------
* ``x`` is a pytree. Separable sets (:func:`projection_nonnegative`,
  :func:`projection_box`) act leaf by leaf; the others treat the whole pytree as one
  vector (the concatenation of its leaves): the simplex, the balls and the hyperplane
  constrain all leaves jointly. :func:`projection_simplex_rows` and
  :func:`kl_projection_simplex` act along the last axis of each array.
* The output has the structure and dtype of ``x`` (integer leaves become the default
  float dtype); ``params`` are cast to that dtype, so a float32 ``x`` is never promoted.
* Every projection is differentiable in ``x`` and ``params`` (``jax.jacfwd``,
  ``jax.jacrev``) and works under ``jax.jit`` and ``jax.vmap``. The simplex projection
  carries a :func:`jax.custom_jvp` with its closed-form Jacobian on the support. On the
  boundary of a face (a kink) the derivative is one element of the generalized Jacobian.
* A projection is the proximal operator of the set's indicator:
  :func:`~skimplicit.implicit.prox.make_prox_from_projection` adapts one to the ``prox``
  signature.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import tree_util as tu
from jax.flatten_util import ravel_pytree

from .prox import _as_float, _map_leaves, _per_leaf

__all__ = [
    "projection_nonnegative",
    "projection_box",
    "projection_simplex",
    "projection_simplex_rows",
    "projection_l1_ball",
    "projection_l2_ball",
    "projection_hyperplane",
    "kl_projection_simplex",
]


def _ravel(x):
    """Flatten a pytree (leaves cast to float) into one vector, and the inverse map."""
    return ravel_pytree(tu.tree_map(_as_float, x))


# ---------------------------------------------------------------------------
# Separable sets
# ---------------------------------------------------------------------------


def projection_nonnegative(x, params=None):
    r"""Projection onto the nonnegative orthant.

    .. math::

        C = \{z : z \geq 0\}, \qquad \operatorname{proj}(x) = \max(x, 0).

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : None
        Ignored.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.projection import projection_nonnegative
    >>> projection_nonnegative(jnp.array([1.5, -1.0, 0.0]))
    Array([1.5, 0. , 0. ], dtype=float32)
    """
    del params
    return _map_leaves(lambda xi: jnp.maximum(xi, 0), x)


def projection_box(x, params):
    r"""Projection onto a box.

    .. math::

        C(l, u) = \{z : l \leq z \leq u\}, \qquad \operatorname{proj}(x) = \min(\max(x, l), u).

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : tuple (lower, upper)
        Bounds with ``lower <= upper``, each a scalar, an array broadcast against ``x``,
        or a pytree shaped like ``x``.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.projection import projection_box
    >>> projection_box(jnp.array([-2.0, 0.5, 3.0]), (0.0, 1.0))
    Array([0. , 0.5, 1. ], dtype=float32)
    """
    if params is None:
        raise ValueError("projection_box needs params=(lower, upper).")
    lower, upper = params
    return _map_leaves(
        lambda xi, lo, up: jnp.minimum(jnp.maximum(xi, lo), up),
        x,
        lower,
        upper,
        names=("params[0] (lower)", "params[1] (upper)"),
    )


# ---------------------------------------------------------------------------
# Simplex
# ---------------------------------------------------------------------------


@jax.custom_jvp
def _simplex_vec(v, scale):
    """Projection of a 1-D ``v`` onto ``{z >= 0, sum z = scale}`` (Held et al.; sort-based)."""
    d = v.shape[0]
    u = jnp.sort(v)[::-1]
    cssv = jnp.cumsum(u) - scale
    ind = jnp.arange(1, d + 1, dtype=v.dtype)
    # The support size rho is the number of j with u_j > (sum_{i<=j} u_i - scale) / j;
    # at least 1 (0 only when scale = 0, where theta = u_1 gives z = 0).
    rho = jnp.maximum(jnp.count_nonzero(u * ind > cssv), 1)
    theta = cssv[rho - 1] / rho.astype(v.dtype)
    return jnp.maximum(v - theta, 0)


@_simplex_vec.defjvp
def _simplex_vec_jvp(primals, tangents):
    # On the support S (|S| = k): z_S = v_S - (sum(v_S) - scale) / k, z elsewhere 0, so
    # dz = m * (dv - (sum(m * dv) - dscale) / k) with m the support mask.
    v, scale = primals
    dv, dscale = tangents
    z = _simplex_vec(v, scale)
    m = (z > 0).astype(v.dtype)
    k = jnp.maximum(jnp.sum(m), 1)
    dz = m * (dv - (jnp.sum(m * dv) - dscale) / k)
    return z, dz


# Compiled once per shape and dtype: eager calls then cost one dispatch, not one per
# primitive (inside an outer jit this is inlined).
_simplex_vec_jit = jax.jit(_simplex_vec)


def _scalar_param(p, dtype, fun_name, what):
    p = jnp.asarray(p, dtype=dtype)
    if p.ndim != 0:
        raise ValueError(f"{fun_name}: params ({what}) must be a scalar; got shape {p.shape}.")
    return p


def projection_simplex(x, params=1.0):
    r"""Projection onto the simplex of total mass ``params``.

    .. math::

        C(s) = \{z : z \geq 0, \textstyle\sum_i z_i = s\}, \qquad
        \operatorname{proj}(x) = \max(x - \theta, 0),

    with :math:`\theta` such that the output sums to :math:`s`. The whole pytree is one
    vector: all its leaves together sum to ``s``.

    Parameters
    ----------
    x : pytree of arrays
        Input point (a 2-D array is projected as a whole; see
        :func:`projection_simplex_rows` for one projection per row).
    params : float, default=1.0
        The total mass ``s >= 0``.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``.

    Notes
    -----
    Sort-based, :math:`O(d \log d)` (Held, Wolfe and Crowder, 1974; Condat, 2016). The
    derivative is the closed form on the support :math:`S = \{i : z_i > 0\}`,
    :math:`\partial z_S / \partial x_S = I - \mathbf{1}\mathbf{1}^\top / |S|` and
    :math:`\partial z_S / \partial s = \mathbf{1} / |S|`, zero off the support
    (a :func:`jax.custom_jvp`, as in optax).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.projection import projection_simplex
    >>> projection_simplex(jnp.array([2.0, 0.5, -1.0]))
    Array([1., 0., 0.], dtype=float32)
    >>> projection_simplex(jnp.array([2.0, 1.0, -1.0]), 2.0)
    Array([1.5, 0.5, 0. ], dtype=float32)
    """
    flat, unravel = _ravel(x)
    scale = _scalar_param(params, flat.dtype, "projection_simplex", "total mass")
    return unravel(_simplex_vec_jit(flat, scale))


_simplex_rows_jit = jax.jit(jax.vmap(_simplex_vec))


def projection_simplex_rows(x, params=1.0):
    r"""Row-wise projection onto the simplex: each row (last axis) sums to ``params``.

    .. math::

        C(s) = \{Z : Z \geq 0, \textstyle\sum_j Z_{ij} = s_i \text{ for every row } i\}.

    The rows are projected independently (a ``jax.vmap`` of the kernel of
    :func:`projection_simplex`, with the same custom derivative).

    Parameters
    ----------
    x : array of shape (n_rows, d)
        Input; more leading axes are allowed, the simplex is along the last axis.
    params : float or array of shape (n_rows,), default=1.0
        The mass ``s_i >= 0`` of each row (broadcast against ``x.shape[:-1]``).

    Returns
    -------
    array
        Same shape and dtype as ``x``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.projection import projection_simplex_rows
    >>> projection_simplex_rows(jnp.array([[2.0, 0.5], [0.25, 0.25]]))
    Array([[1. , 0. ],
           [0.5, 0.5]], dtype=float32)
    """
    x = _as_float(x)
    if x.ndim < 1:
        raise ValueError("projection_simplex_rows needs an array with at least one axis.")
    batch, d = x.shape[:-1], x.shape[-1]
    scale = jnp.broadcast_to(jnp.asarray(params, dtype=x.dtype), batch)
    out = _simplex_rows_jit(x.reshape(-1, d), scale.reshape(-1))
    return out.reshape(x.shape)


def kl_projection_simplex(y, params=None):
    r"""Kullback-Leibler projection onto the simplex: a softmax along the last axis.

    For a dual (log-space) point ``y``,

    .. math::

        \operatorname*{argmin}_{z \geq 0, \; \sum_j z_j = s}
        \operatorname{KL}(z, e^{y})
        = s \cdot \operatorname{softmax}(y),
        \qquad \operatorname{KL}(z, w) = \sum_j z_j \log \frac{z_j}{w_j} - z_j + w_j,

    the Bregman projection of the entropy mirror map: with ``mapping_fun=jnp.log`` in
    :func:`~skimplicit.implicit.optimality.mirror_descent_fixed_point` it gives the
    exponentiated-gradient update.

    Parameters
    ----------
    y : pytree of arrays
        Dual point; every leaf is normalized along its last axis (each row of a 2-D
        array separately, unlike :func:`projection_simplex`, which treats its input as
        one vector).
    params : None, float or array, default=None
        The total mass ``s > 0`` of each slice (``None`` means 1); an array is one mass
        per slice, of shape ``y.shape[:-1]``.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``y``, positive.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.projection import kl_projection_simplex
    >>> kl_projection_simplex(jnp.zeros(2))
    Array([0.5, 0.5], dtype=float32)
    >>> z = kl_projection_simplex(jnp.log(jnp.array([1.0, 3.0])), 2.0)
    >>> bool(jnp.allclose(z, jnp.array([0.5, 1.5])))
    True
    """
    def leaf(yi, s=None):
        z = jax.nn.softmax(yi, axis=-1)
        if s is None:
            return z
        return z * s.reshape(s.shape + (1,) * min(s.ndim, 1))

    if params is None:
        return _map_leaves(leaf, y)
    return _map_leaves(leaf, y, params, names=("params (total mass)",))


# ---------------------------------------------------------------------------
# Balls and hyperplanes (the whole pytree is one vector)
# ---------------------------------------------------------------------------


def projection_l1_ball(x, params=1.0):
    r"""Projection onto the L1 ball of radius ``params``.

    .. math::

        C(r) = \{z : \|z\|_1 \leq r\}, \qquad
        \operatorname{proj}(x) = \begin{cases} x & \text{if } \|x\|_1 \leq r, \\
        \operatorname{sign}(x) \, \operatorname{proj}_{\Delta(r)}(|x|) & \text{otherwise,}
        \end{cases}

    where :math:`\Delta(r)` is the simplex of mass :math:`r`
    (:func:`projection_simplex`). The whole pytree is one vector.

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : float, default=1.0
        The radius ``r >= 0``.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.projection import projection_l1_ball
    >>> projection_l1_ball(jnp.array([2.0, 0.5, 1.0]))
    Array([1., 0., 0.], dtype=float32)
    >>> projection_l1_ball(jnp.array([0.25, 0.5]))  # inside: unchanged
    Array([0.25, 0.5 ], dtype=float32)
    """
    flat, unravel = _ravel(x)
    radius = _scalar_param(params, flat.dtype, "projection_l1_ball", "radius")
    return unravel(_l1_ball_vec(flat, radius))


@jax.jit
def _l1_ball_vec(v, radius):
    absv = jnp.abs(v)
    outside = jnp.sum(absv) > radius
    return jnp.where(outside, jnp.sign(v) * _simplex_vec(absv, radius), v)


def _tree_sum(tree):
    return sum(jnp.sum(leaf) for leaf in tu.tree_leaves(tree))


def projection_l2_ball(x, params=1.0):
    r"""Projection onto the Euclidean ball of radius ``params``.

    .. math::

        C(r) = \{z : \|z\|_2 \leq r\}, \qquad
        \operatorname{proj}(x) = \min\left(1, \frac{r}{\|x\|_2}\right) x.

    The norm is taken over the whole pytree.

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : float, default=1.0
        The radius ``r >= 0``.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``. Finite derivatives everywhere, ``x = 0``
        included.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.projection import projection_l2_ball
    >>> projection_l2_ball(jnp.array([3.0, 4.0]))
    Array([0.6, 0.8], dtype=float32)
    """
    x = tu.tree_map(_as_float, x)
    leaves = tu.tree_leaves(x)
    dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)
    radius = _scalar_param(params, dtype, "projection_l2_ball", "radius")
    sq = _tree_sum(tu.tree_map(lambda xi: jnp.sum(xi * xi), x))
    # Outside the ball sq > r^2 >= 0, so the square root and the division are safe.
    outside = sq > radius**2
    norm = jnp.sqrt(jnp.where(outside, sq, 1))
    factor = jnp.where(outside, radius / norm, 1)
    return tu.tree_map(lambda xi: (factor * xi).astype(xi.dtype), x)


def projection_hyperplane(x, params):
    r"""Projection onto the hyperplane ``{z : <a, z> = b}``.

    .. math::

        C(a, b) = \{z : \langle a, z \rangle = b\}, \qquad
        \operatorname{proj}(x) = x - \frac{\langle a, x \rangle - b}{\|a\|_2^2} \, a.

    The inner product is over the whole pytree.

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : tuple (a, b)
        ``a`` (nonzero): an array broadcast against ``x`` or a pytree shaped like ``x``;
        ``b``: a scalar.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.projection import projection_hyperplane
    >>> projection_hyperplane(jnp.array([1.0, 2.0]), (jnp.array([1.0, 1.0]), 1.0))
    Array([0., 1.], dtype=float32)
    """
    if params is None:
        raise ValueError("projection_hyperplane needs params=(a, b).")
    a, b = params
    x = tu.tree_map(_as_float, x)
    leaves, treedef = tu.tree_flatten(x)
    a_leaves = [
        jnp.broadcast_to(jnp.asarray(ai, dtype=xi.dtype), xi.shape)
        for ai, xi in zip(_per_leaf(a, treedef, "params[0] (a)"), leaves)
    ]
    dtype = jnp.result_type(*leaves)
    b = _scalar_param(b, dtype, "projection_hyperplane", "b, the offset")
    ax = sum(jnp.vdot(ai, xi) for ai, xi in zip(a_leaves, leaves))
    aa = sum(jnp.vdot(ai, ai) for ai in a_leaves)
    coef = (ax - b) / aa
    out = [(xi - coef * ai).astype(xi.dtype) for ai, xi in zip(a_leaves, leaves)]
    return tu.tree_unflatten(treedef, out)
