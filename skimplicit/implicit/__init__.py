"""The implicit-differentiation core (knows nothing of scikit-learn).

* :func:`custom_root`, :func:`custom_fixed_point`: make any solver differentiable.
* :func:`root_vjp`, :func:`root_jvp`: the reverse- and forward-mode products directly.
* :mod:`~skimplicit.implicit.linear_solve`: matrix-free linear solvers.
* :mod:`~skimplicit.implicit.optimality`: optimality mappings ``F(x, *args) = 0``.
* :mod:`~skimplicit.implicit.prox`, :mod:`~skimplicit.implicit.projection`: building blocks.
"""

from . import linear_solve, optimality, projection, prox
from ._implicit_diff import (
    custom_fixed_point,
    custom_root,
    default_solve_for,
    root_jvp,
    root_vjp,
)
from .linear_solve import LinearSolveWarning, SolveInfo

__all__ = [
    "custom_root",
    "custom_fixed_point",
    "root_vjp",
    "root_jvp",
    "default_solve_for",
    "LinearSolveWarning",
    "SolveInfo",
    "linear_solve",
    "optimality",
    "prox",
    "projection",
]
