r"""Proximal operators.

Every operator here has the signature ``prox_xxx(x, params=None, scaling=1.0)`` and
returns

.. math::

    \operatorname{prox}_{\text{scaling} \cdot g}(x)
    = \operatorname*{argmin}_z \; \frac{1}{2} \|z - x\|_2^2
      + \text{scaling} \cdot g(z; \text{params}),

with ``g`` stated once, in each docstring, with its exact scaling (the factor
:math:`\frac{1}{2}` in front of the squared distance is the only one shared by all).
Solvers pass their step size as ``scaling``: a proximal-gradient step is
``prox(x - step * grad, params, step)``.

Conventions
-----------
* ``x`` is a pytree; the operator is applied leaf by leaf.
* ``params`` (each component of a tuple ``params``) is a scalar, an array broadcast
  against every leaf of ``x``, or a pytree with the structure of ``x`` (one value per
  leaf).
* The output has the dtype of ``x`` (integer leaves become the default float dtype):
  ``params`` and ``scaling`` are cast to it, so a float32 ``x`` is never promoted.
* Every operator is differentiable in ``x`` and ``params`` (``jax.jvp``, ``jax.grad``,
  ``jax.jacfwd``, ``jax.jacrev``) and works under ``jax.jit`` and ``jax.vmap``. At kinks
  (e.g. ``|x_i| = scaling * alpha`` for the Lasso) the derivative returned is one element
  of the generalized Jacobian.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import tree_util as tu

__all__ = [
    "prox_none",
    "prox_lasso",
    "prox_nonnegative_lasso",
    "prox_elastic_net",
    "prox_ridge",
    "prox_group_lasso",
    "make_prox_from_projection",
]


# ---------------------------------------------------------------------------
# Helpers (shared with projection.py)
# ---------------------------------------------------------------------------


def _as_float(x):
    """``x`` as a JAX array of a floating dtype (its own if already floating)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _per_leaf(p, treedef, name):
    """Split ``p`` into one value per leaf of a pytree whose structure is ``treedef``.

    ``p`` is either one scalar/array shared by all leaves, or a pytree with the
    structure ``treedef``.
    """
    pdef = tu.tree_structure(p)
    if pdef == treedef:
        return treedef.flatten_up_to(p)
    if p is not None and tu.treedef_is_leaf(pdef):
        return [p] * treedef.num_leaves
    raise ValueError(
        f"{name} must be a scalar, an array broadcastable against each leaf of x, or a "
        f"pytree with the structure of x ({treedef}); got a pytree with structure {pdef}."
    )


def _map_leaves(fun, x, *params, names=()):
    """``tree_map(fun, x, *params)`` where each ``params[i]`` is shared or per-leaf.

    ``fun(leaf, *leaf_params)`` receives the leaf as a float array and its parameters
    cast to the leaf's dtype.
    """
    leaves, treedef = tu.tree_flatten(x)
    names = tuple(names) + tuple(f"params[{i}]" for i in range(len(names), len(params)))
    per_leaf = [_per_leaf(p, treedef, n) for p, n in zip(params, names)]
    out = []
    for i, leaf in enumerate(leaves):
        leaf = _as_float(leaf)
        ps = [jnp.asarray(pl[i], dtype=leaf.dtype) for pl in per_leaf]
        out.append(fun(leaf, *ps))
    return tu.tree_unflatten(treedef, out)


def _require(params, fun_name, what):
    if params is None:
        raise ValueError(f"{fun_name} needs params: {what}.")


def _soft_threshold(x, t):
    """``sign(x) * max(|x| - t, 0)`` for ``t >= 0``, written so that zeros are ``+0.``."""
    return x - jnp.clip(x, -t, t)


# ---------------------------------------------------------------------------
# Proximal operators
# ---------------------------------------------------------------------------


def prox_none(x, params=None, scaling=1.0):
    r"""Proximal operator of the zero function: the identity.

    .. math::

        g(z) = 0, \qquad \operatorname{prox}(x) = x.

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : None
        Ignored.
    scaling : float, default=1.0
        Ignored.

    Returns
    -------
    pytree of arrays
        ``x`` (as JAX arrays; integer leaves become the default float dtype).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.prox import prox_none
    >>> prox_none(jnp.array([1.0, -2.0]))
    Array([ 1., -2.], dtype=float32)
    """
    del params, scaling
    return _map_leaves(lambda xi: xi, x)


def prox_lasso(x, params, scaling=1.0):
    r"""Proximal operator of the L1 norm: soft thresholding.

    .. math::

        g(z; \alpha) = \sum_i \alpha_i |z_i|
        \quad (= \alpha \|z\|_1 \text{ for a scalar } \alpha),

        \operatorname{prox}(x)_i = \operatorname{sign}(x_i)
        \max(|x_i| - \text{scaling} \cdot \alpha_i, 0).

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : float, array or pytree
        ``alpha >= 0``: a scalar, per-coordinate weights broadcast against ``x``, or a
        pytree shaped like ``x``.
    scaling : float, default=1.0
        Multiplies ``g`` (the step size of a proximal-gradient step).

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``.

    See Also
    --------
    prox_nonnegative_lasso : The same penalty restricted to ``z >= 0``.
    prox_elastic_net : Adds a squared L2 term.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.prox import prox_lasso
    >>> prox_lasso(jnp.array([3.0, 0.5, -2.0]), 1.0)
    Array([ 2.,  0., -1.], dtype=float32)
    >>> prox_lasso(jnp.array([3.0, 0.5, -2.0]), 1.0, scaling=0.5)
    Array([ 2.5,  0. , -1.5], dtype=float32)
    """
    _require(params, "prox_lasso", "alpha, the L1 strength")

    def leaf(xi, alpha, s):
        return _soft_threshold(xi, s * alpha)

    return _map_leaves(leaf, x, params, scaling, names=("params (alpha)", "scaling"))


def prox_nonnegative_lasso(x, params, scaling=1.0):
    r"""Proximal operator of the L1 norm restricted to the nonnegative orthant.

    .. math::

        g(z; \alpha) = \sum_i \alpha_i z_i + \iota_{\{z \geq 0\}}(z)
        \quad (= \alpha \|z\|_1 \text{ on } z \geq 0),

        \operatorname{prox}(x)_i = \max(x_i - \text{scaling} \cdot \alpha_i, 0),

    where :math:`\iota_C` is 0 on :math:`C` and :math:`+\infty` outside.

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : float, array or pytree
        ``alpha >= 0`` (scalar, per-coordinate array, or pytree shaped like ``x``).
    scaling : float, default=1.0
        Multiplies ``g``.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``, nonnegative.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.prox import prox_nonnegative_lasso
    >>> prox_nonnegative_lasso(jnp.array([3.0, 0.5, -2.0]), 1.0)
    Array([2., 0., 0.], dtype=float32)
    """
    _require(params, "prox_nonnegative_lasso", "alpha, the L1 strength")

    def leaf(xi, alpha, s):
        return jnp.maximum(xi - s * alpha, 0)

    return _map_leaves(leaf, x, params, scaling, names=("params (alpha)", "scaling"))


def prox_elastic_net(x, params, scaling=1.0):
    r"""Proximal operator of the elastic-net penalty.

    .. math::

        g(z; \lambda_1, \lambda_2) = \lambda_1 \|z\|_1
        + \frac{\lambda_2}{2} \|z\|_2^2,

        \operatorname{prox}(x) = \frac{\operatorname{sign}(x)
        \max(|x| - \text{scaling} \cdot \lambda_1, 0)}
        {1 + \text{scaling} \cdot \lambda_2}.

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : tuple (l1reg, l2reg)
        ``l1reg`` (:math:`\lambda_1 \geq 0`) and ``l2reg`` (:math:`\lambda_2 \geq 0`),
        each a scalar, a per-coordinate array or a pytree shaped like ``x``. Note the
        :math:`\frac{1}{2}` in front of ``l2reg``.
    scaling : float, default=1.0
        Multiplies ``g``.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``.

    Notes
    -----
    scikit-learn's ``ElasticNet(alpha, l1_ratio)`` penalty
    ``alpha * l1_ratio * ||w||_1 + 0.5 * alpha * (1 - l1_ratio) * ||w||_2^2`` is
    ``params = (alpha * l1_ratio, alpha * (1 - l1_ratio))``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.prox import prox_elastic_net
    >>> prox_elastic_net(jnp.array([3.0, 0.5, -2.0]), (1.0, 1.0))
    Array([ 1. ,  0. , -0.5], dtype=float32)
    """
    _require(params, "prox_elastic_net", "the tuple (l1reg, l2reg)")
    l1reg, l2reg = params

    def leaf(xi, l1, l2, s):
        return _soft_threshold(xi, s * l1) / (1 + s * l2)

    return _map_leaves(
        leaf, x, l1reg, l2reg, scaling, names=("params[0] (l1reg)", "params[1] (l2reg)", "scaling")
    )


def prox_ridge(x, params, scaling=1.0):
    r"""Proximal operator of the squared L2 norm (with a factor one half).

    .. math::

        g(z; \lambda) = \frac{\lambda}{2} \|z\|_2^2,
        \qquad
        \operatorname{prox}(x) = \frac{x}{1 + \text{scaling} \cdot \lambda}.

    Parameters
    ----------
    x : pytree of arrays
        Input point.
    params : float, array or pytree
        ``l2reg`` (:math:`\lambda \geq 0`), scalar, per-coordinate array or pytree
        shaped like ``x``. The penalty is :math:`\frac{\lambda}{2}\|z\|^2`, not
        :math:`\lambda \|z\|^2`.
    scaling : float, default=1.0
        Multiplies ``g``.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.prox import prox_ridge
    >>> prox_ridge(jnp.array([3.0, -2.0]), 1.0)  # x / (1 + 1 * 1)
    Array([ 1.5, -1. ], dtype=float32)
    """
    _require(params, "prox_ridge", "l2reg, the ridge strength")

    def leaf(xi, l2, s):
        return xi / (1 + s * l2)

    return _map_leaves(leaf, x, params, scaling, names=("params (l2reg)", "scaling"))


def _safe_norm(x):
    """Euclidean norm of a whole array with a finite (zero) derivative at ``x = 0``."""
    sq = jnp.sum(x * x)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1)), 0)


def _block_shrink_factor(norm, t):
    """``max(1 - t / norm, 0)`` with finite value and derivatives everywhere."""
    active = norm > t
    safe = jnp.where(active, norm, 1)
    return jnp.where(active, 1 - t / safe, 0)


def prox_group_lasso(x, params, scaling=1.0):
    r"""Proximal operator of the (unsquared) L2 norm: block soft thresholding.

    Each leaf of ``x`` is one group:

    .. math::

        g(z; \alpha) = \alpha \|z\|_2,
        \qquad
        \operatorname{prox}(x) = \max\left(1 - \frac{\text{scaling} \cdot \alpha}
        {\|x\|_2}, 0\right) x.

    Parameters
    ----------
    x : pytree of arrays
        Input point; each leaf is a group and is shrunk as a whole.
    params : float or pytree of floats
        ``alpha >= 0``: one scalar, or one scalar per leaf (a pytree shaped like ``x``).
    scaling : float, default=1.0
        Multiplies ``g``.

    Returns
    -------
    pytree of arrays
        Same structure and dtype as ``x``.

    Notes
    -----
    Safe at ``x = 0`` (and whenever the group is zeroed): value and derivatives are
    finite, with zero derivative in ``x`` and ``params`` there. For several groups in
    one array, pass a list of groups or ``jax.vmap`` over them.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.prox import prox_group_lasso
    >>> prox_group_lasso(jnp.array([3.0, 4.0]), 2.5)  # norm 5 -> 2.5
    Array([1.5, 2. ], dtype=float32)
    >>> prox_group_lasso(jnp.array([3.0, 4.0]), 6.0)
    Array([0., 0.], dtype=float32)
    """
    _require(params, "prox_group_lasso", "alpha, the group-lasso strength")

    def leaf(xi, alpha, s):
        if jnp.ndim(alpha) != 0:
            raise ValueError(
                "prox_group_lasso takes one scalar alpha per leaf (group); got an array "
                f"of shape {jnp.shape(alpha)}."
            )
        return _block_shrink_factor(_safe_norm(xi), s * alpha) * xi

    return _map_leaves(leaf, x, params, scaling, names=("params (alpha)", "scaling"))


def make_prox_from_projection(projection):
    r"""Proximal operator of an indicator function, from the projection onto its set.

    .. math::

        g(z; \theta) = \iota_{C(\theta)}(z),
        \qquad
        \operatorname{prox}(x) = \operatorname*{argmin}_{z \in C(\theta)}
        \|z - x\|_2^2 = \text{projection}(x, \theta),

    for every ``scaling > 0`` (a scaled indicator is the same indicator).

    Parameters
    ----------
    projection : callable
        ``projection(x, params)``, e.g. from :mod:`skimplicit.implicit.projection`.

    Returns
    -------
    callable
        ``prox(x, params=None, scaling=1.0)``; ``scaling`` is ignored, and
        ``params=None`` calls ``projection(x)`` so that the projection's own default
        applies (e.g. the unit simplex).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.implicit.prox import make_prox_from_projection
    >>> from skimplicit.implicit.projection import projection_box
    >>> prox = make_prox_from_projection(projection_box)
    >>> prox(jnp.array([-2.0, 0.5, 3.0]), (0.0, 1.0), 0.1)
    Array([0. , 0.5, 1. ], dtype=float32)
    """

    def prox(x, params=None, scaling=1.0):
        del scaling
        return projection(x) if params is None else projection(x, params)

    name = getattr(projection, "__name__", "projection")
    prox.__name__ = f"prox_from_{name}"
    prox.__doc__ = f"Proximal operator of the indicator of the set of ``{name}``."
    return prox
