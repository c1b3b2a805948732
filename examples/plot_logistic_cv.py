"""
ImplicitLogisticRegressionCV against LogisticRegressionCV
=========================================================

:class:`~sklearn.linear_model.LogisticRegressionCV` fits every fold at every ``C`` of a
grid and keeps the ``C`` with the best mean score.
:class:`~skimplicit.linear_model.ImplicitLogisticRegressionCV` minimizes the same mean
held-out log-loss over a continuous ``C``: after a warm-started cover of the interval,
the hypergradient (the derivative of the held-out log-loss with respect to
:math:`\\log C`, by implicit differentiation of each fold's optimality conditions, all
folds in one batched JAX call) leads to the minimum between grid points.

The data: scikit-learn's breast cancer data (569 samples, 30 standardized features),
5 stratified folds shared by both. First the l2 penalty (``LogisticRegressionCV``'s
default solver, lbfgs), then, in the full-size run, the l1 penalty (``saga`` for
scikit-learn; skimplicit solves it with its own active-set solver whatever ``solver``
says). The figure draws the points the search evaluated, with each hypergradient as a
tangent, over the grid's curve (:func:`~skimplicit.inspection.plot_validation_curve`).

Set ``SKIMPLICIT_EXAMPLE_QUICK=1`` to run the l2 penalty only, on a coarser grid.
"""

# %%
# Data and shared folds
# ---------------------
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.preprocessing import StandardScaler

from skimplicit.inspection import plot_validation_curve
from skimplicit.linear_model import ImplicitLogisticRegressionCV

QUICK = os.environ.get("SKIMPLICIT_EXAMPLE_QUICK") == "1"
# saga stops at max_iter at the grid's largest C values: quiet.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
cv = StratifiedKFold(5, shuffle=True, random_state=0)
penalties = {"l2": (np.logspace(-3, 2, 10 if QUICK else 20), dict(l1_ratios=(0.0,)))}
if not QUICK:  # saga is slow: a shorter grid (below C = 0.01 every coefficient is 0)
    penalties["l1"] = (np.logspace(-2, 2, 12), dict(l1_ratios=(1.0,), solver="saga"))

# %%
# The grid and the hypergradient search
# -------------------------------------
# Both score by the held-out log-loss (``scoring="neg_log_loss"``, the default of
# ``ImplicitLogisticRegressionCV``). Times are of a first fit in this process (JAX's
# compilation included for the implicit one).
fitted = {}
for penalty, (Cs, params) in penalties.items():
    t0 = time.perf_counter()
    grid = LogisticRegressionCV(Cs=Cs, cv=cv, scoring="neg_log_loss", max_iter=1000,
                                use_legacy_attributes=False, **params).fit(X, y)
    t_grid = time.perf_counter() - t0
    grid_loss = -grid.scores_.mean(axis=(0, 1))  # (n_folds, 1, n_Cs) -> (n_Cs,)

    t0 = time.perf_counter()
    clf = ImplicitLogisticRegressionCV(cv=cv, **params).fit(X, y)
    t_implicit = time.perf_counter() - t0
    fitted[penalty] = grid, clf

    print(f"{penalty}: LogisticRegressionCV:         C = {grid.C_:.4f}, CV log-loss "
          f"{grid_loss.min():.5f}, {len(Cs)} Cs, fit {t_grid:.2f} s")
    print(f"{penalty}: ImplicitLogisticRegressionCV: C = {clf.C_:.4f}, CV log-loss "
          f"{clf.cv_loss_:.5f}, {len(clf.history_['loss'])} evaluations, "
          f"fit {t_implicit:.2f} s")
    print(f"{penalty}: CV log-loss ratio implicit / grid best: "
          f"{clf.cv_loss_ / grid_loss.min():.5f}")
    print(f"{penalty}: grid range: [{Cs.min():.4g}, {Cs.max():.4g}]")

# %%
# An independent check of the l2 case: scikit-learn's ``LogisticRegression`` (lbfgs, to a
# tight tolerance) scores both chosen ``C`` on the same folds. (In the l1 case, part of
# the grid's higher loss is ``saga`` stopping at ``max_iter``, with a
# ``ConvergenceWarning`` silenced above.)
grid, clf = fitted["l2"]
for name, C in [("LogisticRegressionCV", grid.C_), ("ImplicitLogisticRegressionCV", clf.C_)]:
    loss = -cross_val_score(LogisticRegression(C=C, tol=1e-10, max_iter=10_000), X, y, cv=cv,
                            scoring="neg_log_loss").mean()
    print(f"re-scored by sklearn.linear_model.LogisticRegression: {name:28s} "
          f"CV log-loss {loss:.5f}")

# %%
# The tuning paths over the grid's curves
# ---------------------------------------
# Open circles: the coarse cover; dots: the hypergradient steps; green segments: the
# slope each hypergradient implies; star: the chosen ``C``. The grid curve is the mean
# over the folds of ``LogisticRegressionCV``'s ``scores_``. With the l1 penalty, the grid's
# curve at large ``C`` lies below the search's points: there ``saga`` stops at
# ``max_iter`` far from the solution (an early stopping that regularizes), while
# skimplicit's inner solves converge.
height = 4.0 * len(fitted)
fig, axes = plt.subplots(len(fitted), 1, figsize=(7, height), squeeze=False)
fig.subplots_adjust(left=0.12, right=0.68, hspace=0.45, top=1 - 0.35 / height,
                    bottom=0.6 / height)
for ax, (penalty, (grid, clf)) in zip(axes[:, 0], fitted.items()):
    plot_validation_curve(clf, grid=grid, ax=ax)
    ax.set_title(f"{penalty} penalty")
fig.savefig("logistic_cv.png", dpi=100)
plt.show()
