"""
=============================================================
Tuning a pipeline by hypergradients instead of a grid search
=============================================================

:class:`~skimplicit.model_selection.HypergradSearchCV` takes the same pipeline as
:class:`~sklearn.model_selection.GridSearchCV`, but bounds instead of a grid. It follows
the gradient of the cross-validation loss with respect to the final step's
hyperparameters (obtained by implicit differentiation of the Lasso's optimality
conditions on each fold): after a coarse cover of the interval it descends to a minimum
between grid points, and the number of points it evaluates does not grow as the product
of the axes when it tunes several hyperparameters. The counts and times printed below
say how many points each evaluated here and what a point cost (on a small grid the search
can evaluate more points than the grid; its points are warm-started, with one linear
solve per fold for every derivative).

Here the pipeline expands the diabetes data with degree-2 polynomial features (65
features), standardizes them (on each training fold: no leakage), and fits a Lasso, then
an elastic net. The helper :func:`~skimplicit.model_selection.plot_search_trajectory`
draws the points the search evaluated over the grid's CV curve.

Set ``SKIMPLICIT_EXAMPLE_QUICK=1`` to run on smaller grids.
"""

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from skimplicit.implicit import LinearSolveWarning
from skimplicit.model_selection import HypergradSearchCV, plot_search_trajectory

QUICK = os.environ.get("SKIMPLICIT_EXAMPLE_QUICK") == "1"
# The grid's smallest alphas do not converge at scikit-learn's default max_iter: quiet.
warnings.filterwarnings("ignore", category=ConvergenceWarning)
# The sex column (x1) takes two values, so its square x1^2 is an affine function of it:
# standardized, the two columns are the same. When the Lasso keeps both, the
# hypergradient's support system is singular and is solved with a tiny ridge, with a
# LinearSolveWarning each time: quiet as well.
warnings.filterwarnings("ignore", category=LinearSolveWarning)
X, y = load_diabetes(return_X_y=True)
cv = KFold(5, shuffle=True, random_state=0)
pipe = make_pipeline(PolynomialFeatures(2, include_bias=False), StandardScaler(), Lasso())

# %%
# One hyperparameter: the Lasso's alpha
# -------------------------------------
# The grid and the search get the same folds and the same score (the negative MSE).
alphas = np.logspace(-2, 1.5, 12 if QUICK else 40)

t0 = time.perf_counter()
grid = GridSearchCV(pipe, {"lasso__alpha": alphas}, cv=cv,
                    scoring="neg_mean_squared_error").fit(X, y)
t_grid = time.perf_counter() - t0

t0 = time.perf_counter()
search = HypergradSearchCV(pipe, {"lasso__alpha": (alphas[0], alphas[-1])}, cv=cv).fit(X, y)
t_search = time.perf_counter() - t0

print(f"GridSearchCV:      {len(alphas):3d} points, {t_grid:5.2f} s, "
      f"best CV MSE {-grid.best_score_:.1f} at alpha={grid.best_params_['lasso__alpha']:.4f}")
print(f"HypergradSearchCV: {len(search.cv_results_['params']):3d} points, {t_search:5.2f} s "
      f"(JIT compilation included), best CV MSE {-search.best_score_:.1f} at "
      f"alpha={search.best_params_['lasso__alpha']:.4f}")

# %%
# The first points are a short warm-started path from strong to weak regularization
# (open circles); the descent then moves alpha along the hypergradient (numbered dots)
# to a minimum between the grid's points.
ax = plot_search_trajectory(search, reference=grid)
ax.set_title("Lasso: CV curve (grid) and the hypergradient search")
plt.tight_layout()

# %%
# Every evaluated point is a row of ``cv_results_``, as in GridSearchCV, with the
# hypergradient of the CV loss added.
df = pd.DataFrame(search.cv_results_)
print(df[["param_lasso__alpha", "mean_test_score", "rank_test_score",
          "hypergradient_lasso__alpha", "phase"]].to_string())

# %%
# Two hyperparameters: the elastic net's alpha and l1_ratio
# ---------------------------------------------------------
# A grid over both grows as the product of its axes; the hypergradient search covers the
# interval of alpha at a few values of l1_ratio and descends in both (each point with one
# linear solve per fold for both derivatives).
enet = make_pipeline(PolynomialFeatures(2, include_bias=False), StandardScaler(),
                     ElasticNet(max_iter=5000))
l1_ratios = np.linspace(0.1, 1.0, 4 if QUICK else 10)
enet_alphas = np.logspace(-2, 1.5, 8 if QUICK else 25)

t0 = time.perf_counter()
grid2 = GridSearchCV(enet, {"elasticnet__alpha": enet_alphas, "elasticnet__l1_ratio": l1_ratios},
                     cv=cv, scoring="neg_mean_squared_error").fit(X, y)
t_grid2 = time.perf_counter() - t0

t0 = time.perf_counter()
search2 = HypergradSearchCV(enet, {"elasticnet__alpha": (enet_alphas[0], enet_alphas[-1]),
                                   "elasticnet__l1_ratio": (l1_ratios[0], 1.0)}, cv=cv).fit(X, y)
t_search2 = time.perf_counter() - t0

print(f"GridSearchCV:      {len(grid2.cv_results_['params']):3d} points, {t_grid2:5.2f} s, "
      f"best CV MSE {-grid2.best_score_:.1f} at {grid2.best_params_}")
print(f"HypergradSearchCV: {len(search2.cv_results_['params']):3d} points, {t_search2:5.2f} s, "
      f"best CV MSE {-search2.best_score_:.1f} at "
      f"{ {k: round(v, 4) for k, v in search2.best_params_.items()} }")

n_grid, n_search = len(grid2.cv_results_["params"]), len(search2.cv_results_["params"])
ratio = t_search2 / t_grid2
per_point = (t_search2 / n_search) / (t_grid2 / n_grid)
print(f"The search evaluated {n_search} points ({'more' if n_search > n_grid else 'fewer'} "
      f"than the grid's {n_grid}) in {ratio:.2f}x the grid's time, "
      f"{1000 * t_search2 / n_search:.0f} ms a point against the grid's "
      f"{1000 * t_grid2 / n_grid:.0f} ms ({'cheaper' if per_point < 1 else 'dearer'}); "
      f"CV MSE ratio search / grid: {-search2.best_score_ / -grid2.best_score_:.4f}")

# %%
ax = plot_search_trajectory(search2, reference=grid2)
ax.set_title("Elastic net: CV MSE (grid, filled) and the hypergradient search")
plt.tight_layout()
ax.figure.savefig("search_pipeline.png", dpi=100)

# %%
# The refit model is a plain scikit-learn pipeline at the chosen point:
print(search2.best_estimator_)
plt.show()
