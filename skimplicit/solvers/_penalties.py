r"""Separable penalties ``g(coef)`` in scikit-learn's parametrization.

Every penalty here is ``g(w) = l1 * ||w||_1 + l2 / 2 * ||w||_2^2`` (summed over all entries
of ``coef``; the intercept is never penalized) for some ``(l1, l2)``:

==========================  ============================  ==============================
penalty                     ``l1``                        ``l2``
==========================  ============================  ==============================
:class:`L1` ``(alpha)``     ``alpha``                     0
:class:`L2` ``(alpha)``     0                             ``alpha``
:class:`ElasticNet`         ``alpha * l1_ratio``          ``alpha * (1 - l1_ratio)``
==========================  ============================  ==============================

scikit-learn correspondences (with the datafits of :mod:`skimplicit.solvers`):
``Lasso(alpha)`` is ``Quadratic + L1(alpha)``; ``ElasticNet(alpha, l1_ratio)`` is
``Quadratic + ElasticNet(alpha, l1_ratio)``; ``Ridge(alpha)`` is ``Quadratic +
L2(alpha / sum(sample_weight))``; ``LogisticRegression(C, l1_ratio)`` is ``Logistic +
ElasticNet(1 / C, l1_ratio)`` (``L2(1 / C)`` for ``l1_ratio=0``, ``L1(1 / C)`` for 1).

A penalty is a :class:`~typing.NamedTuple` of arrays, hence a pytree: its hyperparameters
are *traced* (no recompilation when they change), can be batched by :func:`jax.vmap`
(``L1(alphas)`` with ``in_axes=L1(0)``), scanned over (:func:`~skimplicit.solvers.solve_path`)
and differentiated. Only its *type* is static.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from ._base import soft_threshold, violation

__all__ = ["L1", "L2", "ElasticNet"]


class _Separable:
    """Methods shared by the penalties (need the properties ``l1`` and ``l2``)."""

    __slots__ = ()

    def value(self, coef):
        """``l1 * sum|coef| + l2 / 2 * sum coef^2``."""
        return self.l1 * jnp.sum(jnp.abs(coef)) + 0.5 * self.l2 * jnp.sum(coef**2)

    def grad(self, coef):
        """Gradient where differentiable (``coef != 0`` for the L1 part):
        ``l1 * sign(coef) + l2 * coef``. This is the ``penalty_grad`` of
        :func:`skimplicit.implicit.optimality.support_stationary`."""
        return self.l1 * jnp.sign(coef) + self.l2 * coef

    def prox(self, coef, step=1.0):
        """``argmin_z 1/2 ||z - coef||^2 + step * g(z)``:
        ``soft_threshold(coef, step * l1) / (1 + step * l2)``."""
        return soft_threshold(coef, step * self.l1) / (1 + step * self.l2)

    def subdiff_distance(self, coef, grad):
        """Elementwise distance of ``-grad`` (a gradient of the datafit) to ``dg(coef)``:
        zero everywhere iff ``coef`` is optimal."""
        return violation(coef, grad, self.l1, self.l2)

    def alpha_max(self, grad0):
        """Smallest ``alpha`` whose solution is ``coef = 0`` (inf without an L1 part).

        ``grad0`` is the datafit gradient at ``coef = 0`` with the optimal intercept
        (see :func:`skimplicit.solvers.alpha_max`): ``max|grad0| / l1_ratio``.
        """
        return jnp.max(jnp.abs(grad0)) / self._l1_fraction()

    @property
    def is_smooth(self):
        """Whether ``g`` is differentiable (no L1 part by construction)."""
        return False


class _AlphaFields(NamedTuple):
    alpha: Any


class _EnetFields(NamedTuple):
    alpha: Any
    l1_ratio: Any


class L1(_AlphaFields, _Separable):
    r"""Lasso penalty ``alpha * ||coef||_1``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import L1
    >>> pen = L1(1.0)
    >>> float(pen.value(jnp.array([1.0, -2.0])))
    3.0
    >>> pen.prox(jnp.array([3.0, 0.5, -2.0]))
    Array([ 2.,  0., -1.], dtype=float32)
    """

    __slots__ = ()

    @property
    def l1(self):
        return self.alpha

    @property
    def l2(self):
        return jnp.zeros_like(jnp.asarray(self.alpha))

    def _l1_fraction(self):
        return 1.0


class L2(_AlphaFields, _Separable):
    r"""Ridge penalty ``alpha / 2 * ||coef||_2^2`` (note the 1/2).

    ``Ridge(alpha)`` of scikit-learn (unscaled sum of squares) is
    ``Quadratic + L2(alpha / sum(sample_weight))``; ``LogisticRegression(C)`` is
    ``Logistic + L2(1 / C)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import L2
    >>> float(L2(2.0).value(jnp.array([1.0, -2.0])))
    5.0
    """

    __slots__ = ()

    @property
    def l1(self):
        return jnp.zeros_like(jnp.asarray(self.alpha))

    @property
    def l2(self):
        return self.alpha

    def alpha_max(self, grad0):
        """Infinite: no finite ``alpha`` makes a ridge solution exactly zero."""
        return jnp.full_like(jnp.max(jnp.abs(grad0)), jnp.inf)

    @property
    def is_smooth(self):
        return True


class ElasticNet(_EnetFields, _Separable):
    r"""Elastic-net penalty, scikit-learn's parametrization.

    .. math::

        g(w) = \alpha \rho \|w\|_1 + \frac{\alpha (1 - \rho)}{2} \|w\|_2^2,
        \qquad \rho = \text{l1\_ratio}.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import ElasticNet
    >>> pen = ElasticNet(1.0, 0.5)
    >>> float(pen.value(jnp.array([2.0])))   # 0.5 * 2 + 0.25 * 4
    2.0
    """

    __slots__ = ()

    @property
    def l1(self):
        return self.alpha * self.l1_ratio

    @property
    def l2(self):
        return self.alpha * (1 - self.l1_ratio)

    def _l1_fraction(self):
        return self.l1_ratio
