r"""Inner solvers: jit-compiled, vmap-able over folds and hyperparameters, warm-startable.

Problems are ``min_{coef, intercept} datafit(X coef + intercept) + penalty(coef)``, built
from three independent pieces (as in skglm):

* **datafit** (static): :class:`Quadratic` (``Lasso``/``ElasticNet`` scaling
  ``1/(2 sum s) sum s_i r_i^2``) or :class:`Logistic` (``LogisticRegression``'s *sum* of
  losses; binary for 1-D ``y`` in {0, 1}, multinomial for one-hot ``Y``).
* **penalty** (a pytree: its ``alpha``/``l1_ratio`` are traced, batchable, differentiable):
  :class:`L1`, :class:`L2` (``alpha/2 ||w||^2``), :class:`ElasticNet` (scikit-learn's
  parametrization). scikit-learn's ``Ridge(alpha)`` is ``L2(alpha / sum(s))``,
  ``LogisticRegression(C)`` is ``alpha = 1 / C``.
* **solver** (static configuration):

  ================  =====================================  ==============================
  solver            problems                               when (measured, see below)
  ================  =====================================  ==============================
  :class:`CD`       L1 / elastic-net (any datafit)         CPU default for L1/EN: working
                                                           sets, cost ~ active set, not p;
                                                           natively batched over folds
  :class:`FISTA`    same                                   accelerators, big dense batches
  :class:`Newton`   L2 penalty (logistic)                  L2 logistic regression
  :class:`Direct`   Quadratic + L2 (ridge)                 ridge (Cholesky / CG)
  :class:`SklearnCD`  Quadratic + L1 / EN                  black-box scikit-learn CD via
                                                           ``pure_callback`` (reference)
  ================  =====================================  ==============================

Entry points (all return ``(coef, intercept, info)`` with ``info`` a :class:`SolverInfo`:
``n_iter``, ``n_inner``, ``converged``, ``stop_crit`` (duality gap for least squares),
``threshold``, ``saturated``):

* :func:`solve`: one problem. :func:`solve_folds`: K weight vectors (fold masks) in one
  vmapped call. :func:`solve_path`: warm-started path over penalties (``lax.scan``) for all
  folds (``vmap``). :func:`solve_ridge`: scikit-learn's ``Ridge`` parametrization,
  multi-output.
* :func:`implicit_solve`: :func:`solve` made differentiable in the penalty, ``X``, ``y`` and
  ``sample_weight`` by :func:`~skimplicit.implicit.custom_root` with :func:`optimality`.
* :func:`alpha_max`, :func:`objective`, :func:`select_solver` (``solver=None`` uses it).
* Host (NumPy / SciPy, nothing to compile) logistic regression, what the logistic
  estimators run: :func:`solve_logistic` (Newton-CG for ``L2``, split L-BFGS-B and an
  active-set polish for ``L1`` / ``ElasticNet``; a :class:`HostSolverInfo`),
  :func:`fit_logistic` (the same on arrays), :func:`refine_logistic` (module
  ``_host_logistic``).
* Host least squares (NumPy / SciPy, scikit-learn's compiled coordinate descent), what
  the Lasso / elastic-net estimators run: :class:`LeastSquaresFold` (a training fold
  prepared once: centered, sqrt-weight-scaled), :func:`enet_cd` (working sets, the full
  Gram matrix, per-feature alphas by rescaling), :func:`solve_enet_host` (the descent and
  the certified active-set polish, a :class:`HostSolverInfo`), :class:`HostCD`,
  :func:`ridge_dual_solve` (module ``_host_cd``).
* Host solvers of the smooth final steps of ``HypergradSearchCV`` (exact, warm-started,
  a :class:`HostSolverInfo`): :func:`squared_svm_newton` (liblinear's squared hinge /
  squared epsilon-insensitive primal, active-set Newton with a Gram cache),
  :func:`huber_fit` (``HuberRegressor``, Newton on ``(w, b, sigma)``),
  :func:`tweedie_newton` (Poisson / Gamma / Tweedie, log link) and
  :func:`weighted_kernel_ridge` (``KernelRidge``'s weighted Cholesky solve) (module
  ``_host_smooth``).
* Device least squares (the estimators' ``backend="jax"`` path): :func:`quadratic_fista`
  (K centered training folds as Gram matrices or scaled designs, FISTA in lock step,
  scikit-learn's duality gap), :func:`fold_matvec`, :func:`fold_lipschitz`,
  :func:`enet_gap` (module ``_quadratic``).
* Simplex-constrained problems (the multiclass SVM dual): :func:`mirror_descent_simplex`,
  :func:`projected_gradient_simplex`, :func:`block_cd_multiclass_svm` (module
  ``_simplex``).

Batching: problems that share ``X`` (K folds as 0/1 ``sample_weight`` masks, several
penalties) run in one call of :func:`solve_folds` / :func:`solve_path`, where their full
gradients are one matrix product with ``X``. The CD kernel is batched natively (its inner
loops share their indices across problems); the dense solvers are ``vmap``-ed. Every kernel
also works under a user's own :func:`jax.vmap` / :func:`jax.jit`.

Speed is measured by ``benchmarks/bench_solvers.py`` (n = 667, p = 5000, 2-core CPU,
against scikit-learn) and ``benchmarks/bench_gpu.py``; the solver choice of
:func:`select_solver` follows those measurements.

Examples
--------
>>> import jax, numpy as np
>>> from skimplicit.solvers import solve_path, Quadratic, L1, CD
>>> rng = np.random.RandomState(0)
>>> X = rng.randn(40, 100); y = X[:, :3] @ np.array([1.0, -2.0, 1.5]) + 0.1 * rng.randn(40)
>>> masks = np.ones((2, 40)); masks[0, :20] = masks[1, 20:] = 0       # two folds
>>> with jax.enable_x64(True):
...     coef, intercept, info = solve_path(X, y, Quadratic(), L1(np.array([0.5, 0.1])),
...                                        CD(), sample_weights=masks)
>>> coef.shape, bool(info.converged.all())
((2, 2, 100), True)
"""

from ._api import (
    alpha_max,
    implicit_solve,
    objective,
    optimality,
    select_solver,
    solve,
    solve_folds,
    solve_path,
    solve_ridge,
)
from ._base import SolverInfo
from ._cd import CD, cd_kernel
from ._datafits import Logistic, Quadratic, global_lipschitz
from ._fista import FISTA, fista_kernel
from ._host_cd import (
    HostCD,
    HostSolverInfo,
    LeastSquaresFold,
    dense,
    enet_cd,
    fold_train_sums,
    ridge_dual_solve,
    solve_enet_host,
    uses_dual_ridge,
    uses_full_gram,
    uses_working_sets,
)
from ._host_logistic import fit_logistic, refine_logistic, solve_logistic
from ._host_smooth import huber_fit, squared_svm_newton, tweedie_newton, weighted_kernel_ridge
from ._newton import Newton, newton_kernel
from ._penalties import L1, L2, ElasticNet
from ._ridge import Direct, ridge_kernel
from ._simplex import (
    block_cd_multiclass_svm,
    entropy_mirror_map,
    mirror_descent_simplex,
    multiclass_svm_dual,
    multiclass_svm_dual_coef,
    projected_gradient_simplex,
)
from ._quadratic import enet_gap, fold_lipschitz, fold_matvec, quadratic_fista
from ._sklearn import SklearnCD, sklearn_kernel

__all__ = [
    "solve",
    "solve_folds",
    "solve_path",
    "solve_ridge",
    "implicit_solve",
    "optimality",
    "objective",
    "alpha_max",
    "select_solver",
    "SolverInfo",
    "Quadratic",
    "Logistic",
    "L1",
    "L2",
    "ElasticNet",
    "CD",
    "FISTA",
    "Newton",
    "Direct",
    "SklearnCD",
    "global_lipschitz",
    "cd_kernel",
    "fista_kernel",
    "newton_kernel",
    "ridge_kernel",
    "sklearn_kernel",
    "HostCD",
    "HostSolverInfo",
    "LeastSquaresFold",
    "enet_cd",
    "fold_train_sums",
    "solve_enet_host",
    "squared_svm_newton",
    "huber_fit",
    "tweedie_newton",
    "weighted_kernel_ridge",
    "ridge_dual_solve",
    "dense",
    "uses_working_sets",
    "uses_full_gram",
    "uses_dual_ridge",
    "mirror_descent_simplex",
    "projected_gradient_simplex",
    "block_cd_multiclass_svm",
    "multiclass_svm_dual",
    "multiclass_svm_dual_coef",
    "entropy_mirror_map",
    "solve_logistic",
    "fit_logistic",
    "refine_logistic",
    "fold_matvec",
    "fold_lipschitz",
    "enet_gap",
    "quadratic_fista",
]
