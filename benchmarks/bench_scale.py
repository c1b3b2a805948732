"""Scale-free fits (issue 15): the issue's cases at X * s, their CV loss and fit time.

Run: ``python benchmarks/bench_scale.py`` (a minute on 2 cores). For each estimator, a
warm-up fit at ``s = 1`` (JIT compilation), then for each scale the median wall time of
``--repeat`` fits (default 5) in this process, the CV loss (the issue: 0.333 at every
scale for the logistic model) and the chosen hyperparameter in the units of ``s = 1``.
The issue's target: the fit at ``s = 1e12`` takes no more than 2x the time at ``s = 1``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from _common import header


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 50)
    y = X[:, :10] @ rng.uniform(1, 3, 10) + 5 * rng.randn(200)
    Xc = rng.randn(200, 20)
    yc = (Xc[:, 0] + 0.5 * rng.randn(200) > 0)
    return X, y, Xc, yc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    from skimplicit.linear_model import ImplicitLogisticRegressionCV, ImplicitRidgeCV
    from skimplicit.model_selection import HypergradSearchCV

    X, y, Xc, yc = _data()
    cases = [
        ("ImplicitLogisticRegressionCV()", lambda s: ImplicitLogisticRegressionCV().fit(Xc * s, yc),
         lambda m, s: (m.cv_loss_, m.C_ * s**2)),
        ("ImplicitLogisticRegressionCV(l1_ratio=1)",
         lambda s: ImplicitLogisticRegressionCV(l1_ratio=1.0).fit(Xc * s, yc),
         lambda m, s: (m.cv_loss_, m.C_ * s)),
        ("HypergradSearchCV(LogisticRegression(), C auto)",
         lambda s: HypergradSearchCV(LogisticRegression(), {"C": "auto"}, cv=5,
                                     refit=False).fit(Xc * s, yc),
         lambda m, s: (-m.best_score_, m.best_params_["C"] * s**2)),
        ("ImplicitRidgeCV()", lambda s: ImplicitRidgeCV().fit(X * s, y),
         lambda m, s: (m.cv_loss_, m.alpha_ / s**2)),
    ]
    header("Scale-free fits: the issue's data at X * s")
    print(f"median of {args.repeat} warm fits; hyperparameter in the units of s = 1\n")
    print("| estimator | s | CV loss | C or alpha (s = 1 units) | time (s) "
          "| time / time at s = 1 |")
    print("|---|---|---|---|---|---|")
    for name, fit, report in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit(1.0)  # compile
            t1 = None
            for s in (1.0, 1e-12, 1e-6, 1e6, 1e12):
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    m = fit(s)
                    times.append(time.perf_counter() - t)
                med = float(np.median(times))
                t1 = med if s == 1.0 else t1
                loss, hp = report(m, s)
                print(f"| {name} | {s:g} | {loss:.6f} | {hp:.6g} | {med:.3f} | {med / t1:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
