"""
ImplicitLassoCV against LassoCV
===============================

:class:`~skimplicit.linear_model.ImplicitLassoCV` is a drop-in for scikit-learn's
:class:`~sklearn.linear_model.LassoCV`: the same objective on each training fold, the same
folds, the same mean validation MSE. ``LassoCV`` evaluates that MSE on a fixed grid of
100 alphas (a warm-started path from ``alpha_max`` down to ``alpha_max / 1000``) and keeps
the best grid point. ``ImplicitLassoCV`` evaluates a coarse cover of the same interval
(4 points a decade), then follows the *hypergradient* (the derivative of the validation
MSE with respect to :math:`\\log\\alpha`, by implicit differentiation of the Lasso's
optimality conditions on each fold's support) to a minimum between grid points.

The data: more features than samples (``make_regression``, 10 informative features),
the regime the Lasso is for. The figure draws the points ``ImplicitLassoCV`` evaluated,
with each hypergradient as a tangent, over ``LassoCV``'s grid curve
(:func:`~skimplicit.inspection.plot_validation_curve`).

Set ``SKIMPLICIT_EXAMPLE_QUICK=1`` to run on a smaller problem.
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
from sklearn.linear_model import Lasso, LassoCV
from sklearn.model_selection import KFold, cross_val_score

from skimplicit.inspection import plot_validation_curve
from skimplicit.linear_model import ImplicitLassoCV

QUICK = os.environ.get("SKIMPLICIT_EXAMPLE_QUICK") == "1"
# LassoCV's smallest alphas may stop at max_iter on p > n data: quiet.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

n_samples, n_features = (100, 300) if QUICK else (200, 1000)
X, y = make_regression(n_samples=n_samples, n_features=n_features, n_informative=10,
                       noise=100.0, random_state=0)
cv = KFold(5, shuffle=True, random_state=0)
print(f"{n_samples} samples x {n_features} features, 5 folds")

# %%
# The grid and the hypergradient search
# -------------------------------------
# Both get the same folds. Times are of a first fit in this process (for
# ``ImplicitLassoCV``, JAX's compilation included, from its persistent cache if set).
t0 = time.perf_counter()
grid = LassoCV(cv=cv).fit(X, y)
t_grid = time.perf_counter() - t0
grid_loss = grid.mse_path_.mean(axis=1)

t0 = time.perf_counter()
reg = ImplicitLassoCV(cv=cv).fit(X, y)
t_implicit = time.perf_counter() - t0

print(f"LassoCV:         alpha = {grid.alpha_:.4f}, CV MSE {grid_loss.min():.2f}, "
      f"{len(grid.alphas_)} alphas, fit {t_grid:.2f} s")
print(f"ImplicitLassoCV: alpha = {reg.alpha_:.4f}, CV MSE {reg.cv_loss_:.2f}, "
      f"{len(reg.history_['loss'])} evaluations, fit {t_implicit:.2f} s")
print(f"CV MSE ratio implicit / grid best: {reg.cv_loss_ / grid_loss.min():.5f}")
print(f"grid range: [{grid.alphas_.min():.4g}, {grid.alphas_.max():.4g}]")

# %%
# An independent check: scikit-learn's own ``Lasso``, solved to a tight tolerance, scores
# both chosen alphas on the same folds.
for name, alpha in [("LassoCV", grid.alpha_), ("ImplicitLassoCV", reg.alpha_)]:
    mse = -cross_val_score(Lasso(alpha=alpha, tol=1e-8, max_iter=100_000), X, y, cv=cv,
                           scoring="neg_mean_squared_error").mean()
    print(f"re-scored by sklearn.linear_model.Lasso: {name:15s} CV MSE {mse:.2f}")

# %%
# Once compiled, a second fit of the same shapes costs only the solves:
t0 = time.perf_counter()
ImplicitLassoCV(cv=cv).fit(X, y)
print(f"ImplicitLassoCV second fit: {time.perf_counter() - t0:.2f} s")

# %%
# The tuning path over the grid's curve
# -------------------------------------
# Open circles: the coarse cover; dots: the hypergradient steps; green segments: the
# slope each hypergradient implies (they follow the grid's curve); star: the chosen alpha.
# Below, a zoom on the minimum: the Lasso's CV curve is only piecewise smooth (its slope
# jumps where a fold's support changes), so the search stops at a local minimum of the
# curve, which may sit a fraction of a percent above the grid's best point.
fig, axes = plt.subplots(2, 1, figsize=(7, 7.5))
fig.subplots_adjust(left=0.12, right=0.70, hspace=0.35, top=0.95, bottom=0.08)
plot_validation_curve(reg, grid=grid, ax=axes[0])
axes[0].set_title("LassoCV's grid curve, ImplicitLassoCV's path")
ax = plot_validation_curve(reg, grid=grid, ax=axes[1], tangent_length=0.015)
lo, hi = reg.alpha_ / 2, reg.alpha_ * 2
ax.set_xlim(lo, hi)
near = np.concatenate([grid_loss[(grid.alphas_ > lo) & (grid.alphas_ < hi)],
                       reg.history_["loss"][(reg.history_["alpha"] > lo)
                                            & (reg.history_["alpha"] < hi)]])
span = near.max() - near.min()
ax.set_ylim(near.min() - 0.1 * span, near.max() + 0.1 * span)
ax.set_title("Near the minimum")
fig.savefig("lasso_cv.png", dpi=100)
plt.show()
