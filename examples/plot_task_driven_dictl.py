"""
TaskDrivenDictionaryLearning: gene expression, and tuning against GridSearchCV
==============================================================================

A dictionary learned for a classification task: the sparse codes

.. math::

    z^*(x; D) = \\operatorname*{argmin}_z \\tfrac12 \\|x - D^\\top z\\|^2 + \\alpha \\|z\\|_1

feed a logistic model, and the dictionary :math:`D` is learned jointly with it by
minimizing the classification loss. The derivative of every code with respect to the
dictionary comes from implicit differentiation of the codes' optimality conditions on
their support (the sparse coding solver itself is never differentiated).

We predict distant metastasis from the expression of the 76 genes of a breast-cancer
prognostic signature (GSE7390, 198 patients), the data set of the paper's experiment.
It ships with `scikit-survival <https://scikit-survival.readthedocs.io>`_ (an optional,
GPL-licensed package that this example never imports: only its bundled ARFF file is
read). Without it, the example falls back to scikit-learn's bundled (Wisconsin) breast
cancer data, and says so.

We compare, on the same cross-validation splits:

* the *unsupervised* dictionary (``max_iter=0``: the initialization, codes ignore ``y``)
  followed by the logistic model,
* the *task-driven* dictionary, whose supervised phase is early-stopped by an internal
  5-fold cross-validation,
* L2-regularized logistic regression on the genes (``LogisticRegressionCV``).

Then, on a subset of scikit-learn's bundled digits, we compare the estimator's tuning of
the codes' penalty ``alpha`` and the classifier's ``C`` (``tune_alpha=True,
tune_C=True``: a cover of both, then hypergradient descent) with its scikit-learn twin,
``GridSearchCV`` over ``Pipeline([DictionaryLearning(...), LogisticRegression()])``, and
draw the tuning path over the grid's CV log-loss.

Set ``SKIMPLICIT_EXAMPLE_QUICK=1`` to run on smaller problems (one 2-fold split, fewer
atoms and training images, 3 tuning folds and a coarser grid).
"""

# %%
# Data
# ----
import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.io import arff
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import DictionaryLearning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import (GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold,
                                     cross_val_score, train_test_split)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skimplicit.decomposition import TaskDrivenDictionaryLearning
from skimplicit.inspection import plot_search_trajectory, plot_validation_curve

QUICK = os.environ.get("SKIMPLICIT_EXAMPLE_QUICK") == "1"


def load_data():
    spec = importlib.util.find_spec("sksurv")
    if spec is not None:
        path = (Path(spec.origin).parent / "datasets" / "data"
                / "breast_cancer_GSE7390-metastasis.arff")
        if path.exists():
            data, meta = arff.loadarff(path)
            genes = [c for c in meta.names() if c.startswith("X")]
            X = np.column_stack([data[c].astype(float) for c in genes])
            y = np.array([v in (b"1", "1") for v in data["e.tdm"]], dtype=int)
            return X, y, "GSE7390 (scikit-survival's ARFF file)"
    print("scikit-survival is not installed: falling back to scikit-learn's bundled "
          "Wisconsin breast cancer data (diagnosis, not metastasis; an easier task).")
    X, y = load_breast_cancer(return_X_y=True)
    return X, y, "Wisconsin breast cancer (scikit-learn, fallback)"


X, y, name = load_data()
print(f"{name}: {X.shape[0]} samples x {X.shape[1]} features, {y.sum()} positives")

# %%
# Models
# ------
# The same hyperparameters for both dictionaries: 20 atoms (10 in quick mode) and
# ``alpha=1`` on standardized features. ``max_iter`` caps the supervised iterations;
# the number actually used is chosen by 5-fold cross-validation on the training part.
n_components = 10 if QUICK else 20
common = dict(n_components=n_components, alpha=1.0, C=1.0, random_state=0)
models = {
    "unsupervised dictionary + logistic": lambda: make_pipeline(
        StandardScaler(), TaskDrivenDictionaryLearning(max_iter=0, cv=None, **common)),
    "task-driven dictionary": lambda: make_pipeline(
        StandardScaler(), TaskDrivenDictionaryLearning(max_iter=8 if QUICK else 15,
                                                       cv=3 if QUICK else 5, **common)),
    "L2 logistic regression": lambda: make_pipeline(
        StandardScaler(), LogisticRegressionCV(Cs=10, cv=5, scoring="roc_auc",
                                               l1_ratios=(0.0,), max_iter=1000,
                                               use_legacy_attributes=False)),
}

# %%
# Cross-validation on shared splits
# ---------------------------------
# Quick mode (``SKIMPLICIT_EXAMPLE_QUICK=1``, for continuous integration) uses one
# 2-fold split (and 3 internal folds); the full example 2 x repeated 5-fold.
cv = RepeatedStratifiedKFold(n_splits=2 if QUICK else 5, n_repeats=1 if QUICK else 2,
                             random_state=0)
aucs = {m: [] for m in models}
times = {m: [] for m in models}
last_tddl = None
for train, test in cv.split(X, y):
    for m, make in models.items():
        t = time.perf_counter()
        model = make().fit(X[train], y[train])
        times[m].append(time.perf_counter() - t)
        aucs[m].append(roc_auc_score(y[test], model.decision_function(X[test])))
        if m == "task-driven dictionary":
            last_tddl = model[-1]

for m in models:
    print(f"{m:38s} AUC {np.mean(aucs[m]):.3f} +- {np.std(aucs[m]):.3f}   "
          f"fit {np.mean(times[m]):.2f} s")

# %%
# Early stopping of the supervised phase
# --------------------------------------
# On a few hundred samples the dictionary can fit the training labels: the training
# objective keeps decreasing while the validation log loss (averaged over the internal
# folds) turns up after a few iterations. The final fit runs the iteration count at the
# minimum of the validation curve.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
ax = axes[0]
ax.plot(last_tddl.cv_val_loss_, "o-", label="validation log loss (internal CV)")
ax.axvline(last_tddl.n_supervised_iter_, color="k", ls=":",
           label=f"chosen: {last_tddl.n_supervised_iter_} iterations")
ax.set_xlabel("supervised iterations")
ax.set_ylabel("mean log loss")
ax.legend(fontsize=8)
ax.set_title("Early stopping by cross-validation")

ax = axes[1]
names = list(models)
ax.boxplot([aucs[m] for m in names])
ax.set_xticks(range(1, len(names) + 1), [m.replace(" + ", "\n+ ").replace(" dict", "\ndict")
                                         for m in names], fontsize=8)
ax.set_ylabel("test AUC")
ax.set_title(name.split(" (")[0])
fig.tight_layout()

# %%
# The atoms move towards the labels
# ---------------------------------
# Each atom's change between the unsupervised initialization and the task-driven
# dictionary, next to the magnitude of its weight in the classifier.
change = np.linalg.norm(last_tddl.components_ - last_tddl.init_components_, axis=1)
weight = np.abs(last_tddl.coef_).max(axis=0)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.scatter(weight, change)
ax.set_xlabel("|classifier weight| of the atom")
ax.set_ylabel("||d_j - d_j(init)||")
ax.set_title("Supervised change of each atom")
fig.tight_layout()

# %%
# Tuning ``alpha`` and ``C`` against ``GridSearchCV``
# ---------------------------------------------------
# Three digits that are easy to confuse (3, 5, 8), pixels scaled to [0, 1], a training
# part for both tuners and a test part neither sees. Both learn the dictionary without
# the labels with the same penalty (``TaskDrivenDictionaryLearning``'s ``"auto"`` value,
# 0.1 x the median image norm) and the same number of alternations, then tune the codes'
# penalty and ``C`` on the same folds (5; 3 in quick mode) by the validation log-loss.
# ``TaskDrivenDictionaryLearning(max_iter=0)`` skips the supervised phase: its final model
# is the twin's (a dictionary learned without labels, a logistic model on the codes).
digits = load_digits()
keep = np.isin(digits.target, [3, 5, 8])
X_train, X_test, y_train, y_test = train_test_split(
    digits.data[keep] / 16, digits.target[keep], train_size=240 if QUICK else 360,
    stratify=digits.target[keep], random_state=0)
n_atoms, n_alternations = (8, 10) if QUICK else (12, 30)
alpha0 = 0.1 * np.median(np.linalg.norm(X_train, axis=1))
folds = StratifiedKFold(3 if QUICK else 5, shuffle=True, random_state=0)
print(f"digits 3, 5, 8: {len(y_train)} training and {len(y_test)} test images of 64 "
      f"pixels, {n_atoms} atoms, dictionary alpha {alpha0:.4f}")

t0 = time.perf_counter()
tddl = TaskDrivenDictionaryLearning(
    n_atoms, alpha=alpha0, max_iter=0, cv=folds, tune_alpha=True, tune_C=True,
    init_max_iter=n_alternations, random_state=0).fit(X_train, y_train)
t_tddl = time.perf_counter() - t0

# %%
# The twin: the dictionary is learned once per training fold and grid value of the codes'
# penalty (``transform_alpha``; the pipeline's cache reuses it across the values of
# ``C``), over the same interval as the tuner's (``[1e-3, 0.95]`` times the largest
# correlation of an image with an atom), and ``C`` over the span of the tuner's cover.
# One BLAS thread: many small fits (as
# ``TaskDrivenDictionaryLearning`` does inside).
alpha_max = np.abs(X_train @ tddl.init_components_.T).max()
twin = Pipeline([
    ("dictionarylearning", DictionaryLearning(
        n_atoms, alpha=alpha0, max_iter=n_alternations, fit_algorithm="cd",
        transform_algorithm="lasso_cd", random_state=0)),
    ("logisticregression", LogisticRegression(max_iter=1000)),
], memory=tempfile.mkdtemp())
param_grid = {
    "dictionarylearning__transform_alpha": alpha_max * np.logspace(-3, np.log10(0.95),
                                                                    4 if QUICK else 10),
    "logisticregression__C": np.logspace(-2, 3, 6 if QUICK else 11),
}
t0 = time.perf_counter()
with threadpool_limits(1):
    grid = GridSearchCV(twin, param_grid, cv=folds, scoring="neg_log_loss").fit(X_train,
                                                                              y_train)
t_grid = time.perf_counter() - t0
grid_alpha = grid.best_params_["dictionarylearning__transform_alpha"]
grid_C = grid.best_params_["logisticregression__C"]
print(f"GridSearchCV:                 alpha = {grid_alpha:.4f}, C = {grid_C:.4g}, CV "
      f"log-loss {-grid.best_score_:.4f}, {len(grid.cv_results_['params'])} points, "
      f"fit {t_grid:.2f} s")
print(f"TaskDrivenDictionaryLearning: alpha = {tddl.alpha_:.4f}, C = {tddl.C_:.4g}, CV "
      f"log-loss {tddl.tuning_result_.best_loss:.4f}, {len(tddl.history_['loss'])} "
      f"evaluations, fit {t_tddl:.2f} s (JAX's compilation included)")

# %%
# The two CV log-losses are not the same quantity. The tuner holds one dictionary,
# learned from every training image (the validation folds' images included, not their
# labels), while the twin learns a dictionary on each training fold; the initializations
# differ too. Scored the twin's way (same folds, scikit-learn's pipeline), both chosen
# points, then on the test images:
with threadpool_limits(1):
    for name, a, C in [("GridSearchCV", grid_alpha, grid_C),
                       ("TaskDrivenDictionaryLearning", tddl.alpha_, tddl.C_)]:
        twin.set_params(dictionarylearning__transform_alpha=a, logisticregression__C=C)
        loss = -cross_val_score(twin, X_train, y_train, cv=folds,
                                scoring="neg_log_loss").mean()
        print(f"re-scored by the twin pipeline: {name:28s} CV log-loss {loss:.4f}")
test_loss = {}
for name, model in [("GridSearchCV", grid), ("TaskDrivenDictionaryLearning", tddl)]:
    test_loss[name] = log_loss(y_test, model.predict_proba(X_test))
    print(f"held-out test: {name:28s} log-loss {test_loss[name]:.4f}, accuracy "
          f"{accuracy_score(y_test, model.predict(X_test)):.3f}")
shutil.rmtree(twin.memory, ignore_errors=True)  # the pipeline's cache of dictionaries
ratio = test_loss["TaskDrivenDictionaryLearning"] / test_loss["GridSearchCV"]
print(f"test log-loss ratio tuner / grid: {ratio:.3f} ("
      f"{'lower' if ratio < 1 else 'higher'} for the tuner), with "
      f"{len(tddl.history_['loss'])} evaluations against the grid's "
      f"{len(grid.cv_results_['params'])} points in {t_tddl / t_grid:.2f}x its time")

# %%
# The tuning path over the grid
# -----------------------------
# Top: the twin's CV log-loss over its grid (filled contours), the tuner's cover (open
# circles), its hypergradient steps (numbered) and its choice (star). Bottom: the CV
# log-loss against ``C``, the twin's curve at its best ``alpha`` and the tuner's points
# (a projection: ``alpha`` varies between them), each with the slope its hypergradient
# implies. The tuner's losses lie below the twin's curve, for the reasons above.
res = grid.cv_results_
grid_alphas = np.asarray(res["param_dictionarylearning__transform_alpha"], float)
grid_Cs = np.asarray(res["param_logisticregression__C"], float)
reference = {"param_alpha": grid_alphas, "param_C": grid_Cs,
             "mean_test_score": res["mean_test_score"]}
at_best = np.isclose(grid_alphas, grid_alpha)
fig, axes = plt.subplots(2, 1, figsize=(7, 8.8))
fig.subplots_adjust(left=0.12, right=0.68, hspace=0.35, top=0.96, bottom=0.06)
plot_search_trajectory(tddl, reference=reference, params=["alpha", "C"], ax=axes[0])
axes[0].set_title("GridSearchCV's CV log-loss, the tuner's path")
plot_validation_curve(tddl, param="C", ax=axes[1],
                      grid=(grid_Cs[at_best], -res["mean_test_score"][at_best]))
axes[1].set_title(f"Against C (twin at alpha = {grid_alpha:.3g})")
fig.savefig("task_driven_dictl.png", dpi=100)
plt.show()
