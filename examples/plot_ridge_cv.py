"""
ImplicitRidgeCV against RidgeCV, and one alpha per feature
==========================================================

:class:`~sklearn.linear_model.RidgeCV` computes the exact leave-one-out error of ridge
regression for every alpha of a grid (one SVD serves them all) and keeps the best grid
point. :class:`~skimplicit.linear_model.ImplicitRidgeCV` minimizes the same
leave-one-out error continuously: the hypergradient of the error with respect to
:math:`\\log\\alpha` (exact, by JAX through the SVD formula) moves alpha from the best
point of a coarse cover to the minimum.

It also goes where a grid cannot: ``alpha_per_feature=True`` gives each feature its own
penalty from an adaptive family, :math:`\\alpha_j = \\alpha\\,(\\overline{|w|} /
|w_j|)^\\gamma`, and tunes :math:`\\alpha` and :math:`\\gamma` together by the chain
rule through all the :math:`\\alpha_j` (a grid over 65 alphas is out of the question).

The data: the diabetes data expanded with degree-2 polynomial features (65
standardized features), a quarter held out to see how much of a lower leave-one-out
error carries over to unseen data (the selection itself, tuned on the leave-one-out
error, fits it a little: expect the test gains to be smaller).

Set ``SKIMPLICIT_EXAMPLE_QUICK=1`` to run with a coarser grid for ``RidgeCV``.
"""

# %%
# Data
# ----
import os
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from skimplicit.inspection import plot_search_trajectory, plot_validation_curve
from skimplicit.linear_model import ImplicitRidgeCV

QUICK = os.environ.get("SKIMPLICIT_EXAMPLE_QUICK") == "1"

X, y = load_diabetes(return_X_y=True)
X = make_pipeline(PolynomialFeatures(2, include_bias=False), StandardScaler()).fit_transform(X)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
print(f"{X_train.shape[0]} training samples x {X.shape[1]} features, "
      f"{X_test.shape[0]} test samples")

# %%
# The grid, the search, and one alpha per feature
# -----------------------------------------------
# All three select by the exact leave-one-out error (``cv=None``). Times are of a first
# fit in this process (JAX's compilation included for the implicit ones).
# The grid spans the interval ImplicitRidgeCV searches by default on these data.
alphas = np.logspace(-4, 9, 27 if QUICK else 131)
results = {}
for name, make in [
    ("RidgeCV", lambda: RidgeCV(alphas=alphas, store_cv_results=True)),
    ("ImplicitRidgeCV", lambda: ImplicitRidgeCV()),
    ("ImplicitRidgeCV(alpha_per_feature)", lambda: ImplicitRidgeCV(alpha_per_feature=True)),
]:
    t0 = time.perf_counter()
    est = make().fit(X_train, y_train)
    fit_time = time.perf_counter() - t0
    loo = -est.best_score_  # the mean squared leave-one-out error, for all three
    test = mean_squared_error(y_test, est.predict(X_test))
    results[name] = est
    alpha = (f"alpha = {est.alpha_:.3f}" if np.ndim(est.alpha_) == 0 else
             f"alpha = {est.alpha_scale_:.3f}, gamma = {est.gamma_:.2f} "
             f"(alpha_j in [{est.alpha_.min():.3g}, {est.alpha_.max():.3g}])")
    print(f"{name:35s} {alpha}: LOO MSE {loo:.2f}, test MSE {test:.2f}, fit {fit_time:.2f} s")

grid, reg, per_feature = results.values()
grid_loss = grid.cv_results_.mean(axis=0)  # squared LOO errors, mean over samples
print(f"LOO MSE ratio implicit / grid best: {reg.cv_loss_ / grid_loss.min():.6f}")
print(f"LOO MSE ratio alpha_per_feature / grid best: "
      f"{per_feature.cv_loss_ / grid_loss.min():.4f}")
print(f"grid range: [{alphas.min():.4g}, {alphas.max():.4g}]")

# %%
# The tuning paths
# ----------------
# Left: the leave-one-out MSE along alpha, ``RidgeCV``'s grid (a line) under the points
# ``ImplicitRidgeCV`` evaluated, with each hypergradient as a tangent. Right: the search
# of ``alpha_per_feature=True`` in the plane of the family's two hyperparameters (its
# loss at each point is printed above; there is no grid to compare with).
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
fig.subplots_adjust(left=0.06, right=0.86, wspace=0.65, bottom=0.13, top=0.92)
plot_validation_curve(reg, grid=(alphas, grid_loss), ax=axes[0])
axes[0].set_title("RidgeCV's grid, ImplicitRidgeCV's path")
axes[0].set_ylabel("leave-one-out mean squared error")
plot_search_trajectory(per_feature, ax=axes[1])
axes[1].set_title("alpha_per_feature=True: (alpha, gamma)")
fig.savefig("ridge_cv.png", dpi=100)
plt.show()
