"""``python -m skimplicit``: the main job on embedded data.

Tunes :class:`~skimplicit.linear_model.ImplicitLassoCV` and
:class:`~skimplicit.linear_model.ImplicitElasticNetCV` next to scikit-learn's ``LassoCV``,
``ElasticNetCV`` and ``GridSearchCV(Lasso)`` on scikit-learn's bundled diabetes data
(with 200 added noise features, so that the penalty matters), with the same folds for
everyone, and prints a table of fit time, CV MSE (re-evaluated by scikit-learn at the
chosen point on the same folds) and test MSE.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def _data(seed=0, n_noise=200):
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    rng = np.random.RandomState(seed)
    X = np.hstack([X, rng.randn(X.shape[0], n_noise) * X.std()])
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), ytr, yte


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skimplicit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import ElasticNet, ElasticNetCV, Lasso, LassoCV
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

    from skimplicit.linear_model import ImplicitElasticNetCV, ImplicitLassoCV

    Xtr, Xte, ytr, yte = _data(args.seed)
    cv = KFold(5, shuffle=True, random_state=args.seed)
    amax = np.abs(Xtr.T @ (ytr - ytr.mean())).max() / len(ytr)
    l1_ratios = [0.1, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0]
    methods = {
        "ImplicitLassoCV": lambda: ImplicitLassoCV(cv=cv),
        "LassoCV(alphas=100)": lambda: LassoCV(alphas=100, cv=cv),
        "GridSearchCV(Lasso, 100 alphas)": lambda: GridSearchCV(
            Lasso(), {"alpha": amax * np.logspace(0, -3, 100)}, cv=cv,
            scoring="neg_mean_squared_error"),
        "ImplicitElasticNetCV(l1_ratio='tune')": lambda: ImplicitElasticNetCV(l1_ratio="tune", cv=cv),
        "ElasticNetCV(7 l1_ratios, alphas=100)": lambda: ElasticNetCV(
            l1_ratio=l1_ratios, alphas=100, cv=cv),
    }
    print(f"diabetes + 200 noise features: train {Xtr.shape}, test {Xte.shape}, 5-fold CV")
    print()
    print("| method | fit s | alpha | l1_ratio | CV MSE | test MSE |")
    print("|---|---|---|---|---|---|")
    for name, make in methods.items():
        est = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t = time.perf_counter()
            est.fit(Xtr, ytr)
            dt = time.perf_counter() - t
        if hasattr(est, "best_params_"):
            alpha, l1 = est.best_params_["alpha"], 1.0
        else:
            alpha, l1 = float(np.mean(est.alpha_)), float(getattr(est, "l1_ratio_", 1.0))
        ref = ElasticNet(alpha=alpha, l1_ratio=l1) if l1 < 1 else Lasso(alpha=alpha)
        cv_mse = -cross_val_score(ref, Xtr, ytr, cv=cv, scoring="neg_mean_squared_error").mean()
        test_mse = float(np.mean((est.predict(Xte) - yte) ** 2))
        print(f"| {name} | {dt:.2f} | {alpha:.4g} | {l1:.3g} | {cv_mse:.2f} | {test_mse:.2f} |")
    print()
    print("CV MSE re-evaluated by scikit-learn at each chosen point on the same folds; "
          "fit times include JAX compilation for the Implicit* estimators.")


if __name__ == "__main__":
    main()
