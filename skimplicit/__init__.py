"""skimplicit: scikit-learn estimators tuned by implicit differentiation in JAX.

Sub-packages
------------
implicit
    The core: ``custom_root``, ``custom_fixed_point``, ``root_vjp``, ``root_jvp``,
    matrix-free linear solvers, optimality mappings, proximal operators and projections.
solvers
    Jit-able, vmap-able, warm-startable inner solvers.
linear_model, decomposition, model_selection
    The estimators.
inspection
    Plots of a fitted tuner's search and a hypergradient checker.
"""

__version__ = "0.1.0.dev0"
