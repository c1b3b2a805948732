"""
ImplicitElasticNetCV against ElasticNetCV: tuning l1_ratio too
==============================================================

:class:`~sklearn.linear_model.ElasticNetCV` tunes ``alpha`` on a grid for each value of a
short list of ``l1_ratio`` values and keeps the best pair: the cost grows with the
product of the two grids, and ``l1_ratio`` is only as fine as its list.
:class:`~skimplicit.linear_model.ImplicitElasticNetCV` with ``l1_ratio="tune"`` moves
both hyperparameters at once along the hypergradient of the mean validation MSE (the
derivatives with respect to :math:`\\log\\alpha` and to ``l1_ratio`` come from one
linear solve per fold on the support), from the best points of a coarse cover.

The data: correlated features (``make_regression`` with a low effective rank), where the
best mix lies strictly between the Lasso and ridge. Both estimators get the same folds.
The figure draws the search over ``ElasticNetCV``'s grid
(:func:`~skimplicit.inspection.plot_search_trajectory`).

Set ``SKIMPLICIT_EXAMPLE_QUICK=1`` to run with a shorter list of ``l1_ratio`` values.
"""

# %%
# Data and shared folds
# ---------------------
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, ElasticNetCV
from sklearn.model_selection import KFold, cross_val_score

from skimplicit.inspection import plot_search_trajectory
from skimplicit.linear_model import ImplicitElasticNetCV

QUICK = os.environ.get("SKIMPLICIT_EXAMPLE_QUICK") == "1"
warnings.filterwarnings("ignore", category=ConvergenceWarning)

n_samples, n_features = 100, 300
X, y = make_regression(n_samples=n_samples, n_features=n_features, n_informative=50,
                       effective_rank=20, noise=20.0, random_state=0)
cv = KFold(5, shuffle=True, random_state=0)
l1_ratios = [0.1, 0.5, 0.9, 1.0] if QUICK else [0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 1.0]
print(f"{n_samples} samples x {n_features} features (effective rank 20), 5 folds")

# %%
# The grid and the hypergradient search
# -------------------------------------
# Times are of a first fit in this process (for ``ImplicitElasticNetCV``, JAX's
# compilation included).
t0 = time.perf_counter()
grid = ElasticNetCV(l1_ratio=l1_ratios, cv=cv).fit(X, y)
t_grid = time.perf_counter() - t0
grid_loss = grid.mse_path_.mean(axis=-1)  # (n_l1_ratios, n_alphas)

t0 = time.perf_counter()
reg = ImplicitElasticNetCV(l1_ratio="tune", cv=cv).fit(X, y)
t_implicit = time.perf_counter() - t0

print(f"ElasticNetCV:         alpha = {grid.alpha_:.5f}, l1_ratio = {grid.l1_ratio_:.3f}, "
      f"CV MSE {grid_loss.min():.3f}, {grid_loss.size} points, fit {t_grid:.2f} s")
print(f"ImplicitElasticNetCV: alpha = {reg.alpha_:.5f}, l1_ratio = {reg.l1_ratio_:.3f}, "
      f"CV MSE {reg.cv_loss_:.3f}, {len(reg.history_['loss'])} evaluations, "
      f"fit {t_implicit:.2f} s")
print(f"CV MSE ratio implicit / grid best: {reg.cv_loss_ / grid_loss.min():.5f}")

# %%
# An independent check: scikit-learn's ``ElasticNet``, solved to a tight tolerance,
# scores both chosen pairs on the same folds.
for name, est in [("ElasticNetCV", grid), ("ImplicitElasticNetCV", reg)]:
    model = ElasticNet(alpha=est.alpha_, l1_ratio=est.l1_ratio_, tol=1e-8, max_iter=100_000)
    mse = -cross_val_score(model, X, y, cv=cv, scoring="neg_mean_squared_error").mean()
    print(f"re-scored by sklearn.linear_model.ElasticNet: {name:20s} CV MSE {mse:.3f}")

# %%
# The search over the grid
# ------------------------
# Left: every grid point of ``ElasticNetCV`` (its alphas differ from one ``l1_ratio`` to
# the next) coloured by its CV MSE; the search's coarse cover (white circles), its steps
# (numbered) and its best point (star). Right: the best CV MSE found so far against the
# number of points evaluated, for the search (in its order) and for the grid (the best of
# all its points, a line).
ratios = np.repeat(np.asarray(l1_ratios, float)[:, None], grid.alphas_.shape[1], axis=1)
reference = {"param_alpha": grid.alphas_.ravel(), "param_l1_ratio": ratios.ravel(),
             "mean_test_score": -grid_loss.ravel()}

fig, axes = plt.subplots(1, 2, figsize=(12, 5))
fig.subplots_adjust(left=0.07, right=0.97, wspace=0.55, bottom=0.1, top=0.93)
plot_search_trajectory(reg, reference=reference, ax=axes[0])
axes[0].set_title("ElasticNetCV's grid and the search")
ax = axes[1]
losses = np.asarray(reg.history_["loss"], float)
ax.plot(np.arange(1, len(losses) + 1), np.minimum.accumulate(losses), "o-", ms=3,
        color="tab:orange", label="ImplicitElasticNetCV")
ax.axhline(grid_loss.min(), color="0.4", ls="--",
           label=f"ElasticNetCV's best of {grid_loss.size} points")
ax.set_ylim(0.995 * min(losses.min(), grid_loss.min()), 1.05 * grid_loss.min())
ax.set_xlabel("points evaluated")
ax.set_ylabel("best CV mean squared error so far")
ax.legend(fontsize=8)
ax.set_title("Cost of the search")
fig.savefig("elastic_net_cv.png", dpi=100)
plt.show()
