"""ImplicitLassoCV / ImplicitElasticNetCV / ImplicitRidgeCV against scikit-learn's CV twins.

Run: ``python benchmarks/bench_regression.py`` (about 3 minutes on 2 cores).

* Synthetic p >> n: make_regression(667, 5000, n_informative=50, noise=20, seed 0),
  75/25 split, standardized on the training part, the same KFold(5, shuffle, seed 0) on
  both sides. Targets: ImplicitLassoCV <= 0.5x LassoCV(alphas=100) time, ImplicitElasticNetCV
  <= 0.1x ElasticNetCV(7 l1_ratios, alphas=100) time, CV MSE (re-evaluated by scikit-learn
  at the chosen point on the same folds) <= 1.001x the twin's.
* diabetes: CV MSE <= 1.001x (no time ratio: the baselines take < 0.3 s).
* Per-feature ridge: X ~ N(0, 1), n=300, p=100, coef 5 (0-9), 0.5 (10-49), 0 (50-99), noise
  sd 5, seeds 0-4, 200 test samples: ImplicitRidgeCV(alpha_per_feature=True) mean test MSE
  <= 0.95x RidgeCV(alphas=logspace(-3, 3, 50))'s; one-alpha ImplicitRidgeCV CV MSE <= 1.001x.

Times: "fresh" = first fit in a fresh process (JIT compilation included, imports not),
"compile" = fresh - warm (second fit in the same process).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import header, run_fresh, time_twice  # noqa: E402

L1_RATIOS = [0.1, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0]


def data(name, seed=0):
    from sklearn.datasets import load_diabetes, make_regression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "synthetic":
        X, y = make_regression(n_samples=667, n_features=5000, n_informative=50, noise=20,
                               random_state=0)
    elif name == "diabetes":
        X, y = load_diabetes(return_X_y=True)
    elif name == "ridge_pf":
        rng = np.random.RandomState(seed)
        coef = np.r_[np.full(10, 5.0), np.full(40, 0.5), np.zeros(50)]
        X = rng.randn(500, 100)
        y = X @ coef + 5 * rng.randn(500)
        return X[:300], X[300:], y[:300], y[300:]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), ytr, yte


def make(method, cv):
    from sklearn.linear_model import ElasticNetCV, LassoCV, RidgeCV

    from skimplicit.linear_model import ImplicitElasticNetCV, ImplicitLassoCV, ImplicitRidgeCV

    return {
        "ImplicitLassoCV": lambda: ImplicitLassoCV(cv=cv),
        "LassoCV": lambda: LassoCV(alphas=100, cv=cv),
        "ImplicitElasticNetCV": lambda: ImplicitElasticNetCV(l1_ratio="tune", cv=cv),
        "ElasticNetCV": lambda: ElasticNetCV(l1_ratio=L1_RATIOS, alphas=100, cv=cv),
        "ImplicitRidgeCV": lambda: ImplicitRidgeCV(cv=cv),
        "ImplicitRidgeCV(per-feature)": lambda: ImplicitRidgeCV(cv=cv, alpha_per_feature=True),
        "RidgeCV": lambda: RidgeCV(alphas=np.logspace(-3, 3, 50), cv=cv),
    }[method]()


def worker(method, dataset, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import ElasticNet, Lasso, Ridge
    from sklearn.model_selection import KFold, cross_val_score

    import skimplicit.linear_model  # noqa: F401 - imports are not timed (either side)

    warnings.simplefilter("ignore", ConvergenceWarning)
    Xtr, Xte, ytr, yte = data(dataset, int(seed))
    cv = KFold(5, shuffle=True, random_state=0)
    fresh, warm, est = time_twice(lambda: make(method, cv).fit(Xtr, ytr))
    alpha = est.alpha_
    l1 = float(getattr(est, "l1_ratio_", 1.0))
    if np.ndim(alpha):
        cv_mse = float(est.cv_loss_)  # per-feature alphas: no scikit-learn twin to re-evaluate
    else:
        ref = (Ridge(alpha=alpha) if "Ridge" in method
               else ElasticNet(alpha=alpha, l1_ratio=l1) if l1 < 1 else Lasso(alpha=alpha))
        ref.set_params(**({"tol": 1e-8, "max_iter": 100000} if "Ridge" not in method else {}))
        cv_mse = -cross_val_score(ref, Xtr, ytr, cv=cv, scoring="neg_mean_squared_error").mean()
    test_mse = float(np.mean((est.predict(Xte) - yte) ** 2))
    print(json.dumps({
        "fresh": fresh, "warm": warm, "alpha": float(np.mean(alpha)), "l1_ratio": l1,
        "cv_mse": cv_mse, "test_mse": test_mse,
        "n_outer": int(getattr(est, "n_outer_iter_", 0)),
    }))


def main():
    header("bench_regression: hypergradient-tuned regressors vs scikit-learn CV")
    script = __file__
    rows, checks = [], []

    def pair(dataset, ours, twin, time_target, seed=0):
        a = run_fresh(script, ours, dataset, seed)
        b = run_fresh(script, twin, dataset, seed)
        t_ratio = a["fresh"] / b["fresh"]
        mse_ratio = a["cv_mse"] / b["cv_mse"]
        for name, r in ((ours, a), (twin, b)):
            rows.append((dataset, name, r))
        checks.append((dataset, ours, twin, t_ratio, time_target, mse_ratio))
        return a, b

    pair("synthetic", "ImplicitLassoCV", "LassoCV", 0.5)
    pair("synthetic", "ImplicitElasticNetCV", "ElasticNetCV", 0.1)
    pair("diabetes", "ImplicitLassoCV", "LassoCV", None)
    pair("diabetes", "ImplicitElasticNetCV", "ElasticNetCV", None)
    pair("diabetes", "ImplicitRidgeCV", "RidgeCV", None)

    print("| data | method | fresh s | warm s | compile s | alpha | l1_ratio | CV MSE | test MSE | outer iters |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dataset, name, r in rows:
        print(f"| {dataset} | {name} | {r['fresh']:.2f} | {r['warm']:.2f} | "
              f"{max(r['fresh'] - r['warm'], 0):.2f} | {r['alpha']:.4g} | {r['l1_ratio']:.3g} | "
              f"{r['cv_mse']:.2f} | {r['test_mse']:.2f} | {r['n_outer']} |")
    print()
    print("| data | ours vs twin | time ratio (fresh) | target | CV MSE ratio | target |")
    print("|---|---|---|---|---|---|")
    ok = True
    for dataset, ours, twin, t_ratio, t_target, mse_ratio in checks:
        t_ok = t_target is None or t_ratio <= t_target
        m_ok = mse_ratio <= 1.001
        ok &= t_ok and m_ok
        print(f"| {dataset} | {ours} / {twin} | {t_ratio:.3f} | "
              f"{'<= ' + str(t_target) if t_target else 'reported'} {'ok' if t_ok else 'MISSED'} | "
              f"{mse_ratio:.5f} | <= 1.001 {'ok' if m_ok else 'MISSED'} |")

    # Per-feature ridge, seeds 0-4.
    print()
    print("| seed | RidgeCV test MSE | ImplicitRidgeCV(per-feature) test MSE | ratio | fresh s (ours / RidgeCV) |")
    print("|---|---|---|---|---|")
    ratios = []
    for seed in range(5):
        a = run_fresh(script, "ImplicitRidgeCV(per-feature)", "ridge_pf", seed)
        b = run_fresh(script, "RidgeCV", "ridge_pf", seed)
        ratios.append(a["test_mse"] / b["test_mse"])
        print(f"| {seed} | {b['test_mse']:.2f} | {a['test_mse']:.2f} | {ratios[-1]:.3f} | "
              f"{a['fresh']:.2f} / {b['fresh']:.2f} |")
    pf = float(np.mean(ratios))
    pf_ok = pf <= 0.95
    ok &= pf_ok
    print(f"mean test-MSE ratio per-feature ridge / RidgeCV: {pf:.3f} (target <= 0.95: "
          f"{'ok' if pf_ok else 'MISSED'})")
    print()
    lasso = checks[0]
    enet = checks[1]
    print(f"summary: synthetic lasso time {lasso[3]:.2f}x, CV MSE {lasso[5]:.4f}x; enet time "
          f"{enet[3]:.3f}x, CV MSE {enet[5]:.4f}x; per-feature ridge test MSE {pf:.3f}x; "
          f"all targets {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:])
    else:
        main()
