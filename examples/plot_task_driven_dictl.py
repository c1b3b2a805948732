"""
Task-driven dictionary learning on gene expression
==================================================

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
"""

# %%
# Data
# ----
import importlib.util
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.io import arff
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skimplicit.decomposition import TaskDrivenDictionaryLearning

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
plt.show()
