"""HypergradSearchCV over the smooth final steps of issue 20 against GridSearchCV.

For each final step, on a bundled or generated data set (standardized in a pipeline,
5 folds): ``HypergradSearchCV(pipe, {hp: (low, high)})`` against ``GridSearchCV`` over
100 log-spaced values of the same interval (KernelRidge: a 20 x 20 grid of ``alpha`` x
``gamma``), both scored by the final step's loss (the squared hinge for ``LinearSVC``,
the MSE of the {-1, 1} codes for ``RidgeClassifier``, the deviance for the GLMs).
SGD's CV score is rough in ``alpha``, so its steps run on more data sets: seven binary
ones for ``SGDClassifier(loss="log_loss")`` (breast_cancer, wine and iris one class
against the rest, digits below 5, four generated), two for ``SGDRegressor``.

Each side runs in a fresh process (imports excluded, JIT compilation included);
HypergradSearchCV fits twice there: ``compile`` is the first fit's time minus the
second's. Our chosen point is re-scored by GridSearchCV itself (a one-point grid: the
final step's own fit), so both losses are scikit-learn's. Targets (issue 20): CV loss
<= 1.001 x the grid's; time <= 0.1 x the grid's where the grid takes >= 10 s.

Usage: ``python benchmarks/bench_final_steps.py [--only NAME,...]``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, run_fresh, time_twice  # noqa: E402


def _neg_squared_hinge(est, X, y):
    d = est.decision_function(X).reshape(len(y), -1)
    classes = est.classes_
    codes = (np.where(y == classes[-1], 1.0, -1.0)[:, None] if classes.size == 2
             else np.where(y[:, None] == classes[None, :], 1.0, -1.0))
    m = np.maximum(0.0, 1.0 - codes * d)
    return -np.mean(np.sum(m * m, axis=1))


def _neg_code_mse(est, X, y):
    d = est.decision_function(X).reshape(len(y), -1)
    classes = est.classes_
    codes = (np.where(y == classes[-1], 1.0, -1.0)[:, None] if classes.size == 2
             else np.where(y[:, None] == classes[None, :], 1.0, -1.0))
    return -np.mean(np.mean((codes - d) ** 2, axis=1))


def case(name):
    """``(X, y, pipeline, {hp: (lo, hi)}, scoring, cv)``."""
    from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits, load_iris,
                                  load_wine, make_classification, make_friedman1)
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import (GammaRegressor, HuberRegressor, LogisticRegression,
                                      PoissonRegressor, RidgeClassifier, SGDClassifier,
                                      SGDRegressor, TweedieRegressor)
    from sklearn.metrics import make_scorer, mean_tweedie_deviance
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC, LinearSVR

    kf, skf = KFold(5, shuffle=True, random_state=0), StratifiedKFold(5, shuffle=True,
                                                                      random_state=0)
    Xd, yd = load_diabetes(return_X_y=True)
    Xc, yc = load_breast_cancer(return_X_y=True)
    glm = dict(solver="newton-cholesky", tol=1e-10, max_iter=10_000)
    svc = dict(tol=1e-12, max_iter=100_000, dual=False)
    cases = {
        "LinearSVC/breast_cancer": (Xc, yc, LinearSVC(**svc), {"C": (1e-4, 1e1)},
                                    _neg_squared_hinge, skf),
        "LinearSVC/20000x200": (*make_classification(20000, 200, n_informative=30,
                                                     random_state=0),
                                LinearSVC(**svc), {"C": (1e-5, 1e1)},
                                _neg_squared_hinge, skf),
        "LinearSVR/diabetes": (Xd, yd, LinearSVR(loss="squared_epsilon_insensitive",
                                                 epsilon=0.0, **svc),
                               {"C": (1e-4, 1e2)}, "neg_mean_squared_error", kf),
        "RidgeClassifier/iris": (*load_iris(return_X_y=True), RidgeClassifier(),
                                 {"alpha": (1e-3, 1e4)}, _neg_code_mse, skf),
        "HuberRegressor/diabetes": (Xd, yd, HuberRegressor(max_iter=10_000),
                                    {"alpha": (1e-1, 1e4)}, "neg_mean_squared_error", kf),
        "PoissonRegressor/diabetes": (Xd, yd, PoissonRegressor(**glm), {"alpha": (1e-6, 1e0)},
                                      "neg_mean_poisson_deviance", kf),
        "GammaRegressor/diabetes": (Xd, yd, GammaRegressor(**glm), {"alpha": (1e-6, 1e0)},
                                    "neg_mean_gamma_deviance", kf),
        "TweedieRegressor(1.5)/diabetes": (
            Xd, yd, TweedieRegressor(power=1.5, link="log", **glm), {"alpha": (1e-6, 1e0)},
            make_scorer(mean_tweedie_deviance, greater_is_better=False, power=1.5), kf),
        "KernelRidge(rbf)/diabetes": (Xd, yd, KernelRidge(kernel="rbf"),
                                      {"alpha": (1e-4, 1e2), "gamma": (1e-4, 1e1)},
                                      "neg_mean_squared_error", kf),
        "KernelRidge(rbf)/friedman1-1500": (
            *make_friedman1(1500, noise=1.0, random_state=0), KernelRidge(kernel="rbf"),
            {"alpha": (1e-5, 1e2), "gamma": (1e-4, 1e1)}, "neg_mean_squared_error", kf),
        "SGDRegressor/diabetes": (Xd, yd, SGDRegressor(random_state=0), {"alpha": (1e-5, 1e1)},
                                  "neg_mean_squared_error", kf),
        "SGDClassifier(log)/breast_cancer": (Xc, yc, SGDClassifier(loss="log_loss",
                                                                    random_state=0),
                                             {"alpha": (1e-5, 1e1)}, "neg_log_loss", skf),
        "LogisticRegression(brier)/breast_cancer": (
            Xc, yc, LogisticRegression(solver="newton-cholesky", tol=1e-12),
            {"C": (1e-4, 1e4)}, "neg_brier_score", skf),
    }
    # SGD's CV score is rough in alpha (HypergradSearchCV scans around its best point):
    # more binary data sets for SGDClassifier, one regression more for SGDRegressor.
    sgd_log = SGDClassifier(loss="log_loss", random_state=0)
    Xi, yi = load_iris(return_X_y=True)
    Xw, yw = load_wine(return_X_y=True)
    Xg, yg = load_digits(return_X_y=True)
    binary = {"wine-1": (Xw, (yw == 1).astype(int)), "iris-1": (Xi, (yi == 1).astype(int)),
              "digits<5": (Xg, (yg < 5).astype(int))}
    binary.update({f"classif800-s{s}": make_classification(
        800, 20, n_informative=8, flip_y=0.1, random_state=s) for s in range(4)})
    for k, (Xb, yb) in binary.items():
        cases[f"SGDClassifier(log)/{k}"] = (Xb, yb, sgd_log, {"alpha": (1e-5, 1e1)},
                                            "neg_log_loss", skf)
    cases["SGDRegressor/friedman1-1500"] = (*make_friedman1(1500, noise=1.0, random_state=0),
                                            SGDRegressor(random_state=0),
                                            {"alpha": (1e-5, 1e1)},
                                            "neg_mean_squared_error", kf)
    X, y, final, space, scoring, cv = cases[name]
    pipe = make_pipeline(StandardScaler(), final)
    prefix = pipe.steps[-1][0] + "__"
    return X, y, pipe, {prefix + k: v for k, v in space.items()}, scoring, cv


def worker(kind, name):
    from sklearn.model_selection import GridSearchCV

    from skimplicit.model_selection import HypergradSearchCV

    X, y, pipe, space, scoring, cv = case(name)
    warnings.simplefilter("ignore")
    if kind == "ours":
        # The final step's own loss: scoring=None follows it (no refits); the callables
        # above are that loss, for GridSearchCV and the re-scoring.
        own = None if callable(scoring) and scoring in (_neg_squared_hinge,
                                                        _neg_code_mse) else scoring

        def fit():
            return HypergradSearchCV(pipe, {k: tuple(v) for k, v in space.items()}, cv=cv,
                                     scoring=own).fit(X, y)
        fresh, warm, est = time_twice(fit)
        point = {k: float(v) for k, v in est.best_params_.items()}
        rescored = GridSearchCV(pipe, {k: [v] for k, v in point.items()}, cv=cv,
                                scoring=scoring).fit(X, y).best_score_
        return dict(time=fresh, compile=max(fresh - warm, 0.0), score=float(rescored),
                    point=point, n_points=len(est.cv_results_["params"]))
    n = 20 if len(space) == 2 else 100
    grid = {k: np.geomspace(lo, hi, n) for k, (lo, hi) in space.items()}
    t = time.perf_counter()
    gs = GridSearchCV(pipe, grid, cv=cv, scoring=scoring).fit(X, y)
    return dict(time=time.perf_counter() - t, score=float(gs.best_score_),
                point={k: float(v) for k, v in gs.best_params_.items()},
                n_points=len(gs.cv_results_["params"]))


NAMES = ["LinearSVC/breast_cancer", "LinearSVC/20000x200", "LinearSVR/diabetes",
         "RidgeClassifier/iris", "HuberRegressor/diabetes", "PoissonRegressor/diabetes",
         "GammaRegressor/diabetes", "TweedieRegressor(1.5)/diabetes",
         "KernelRidge(rbf)/diabetes", "KernelRidge(rbf)/friedman1-1500",
         "SGDRegressor/diabetes", "SGDClassifier(log)/breast_cancer",
         "LogisticRegression(brier)/breast_cancer",
         "SGDRegressor/friedman1-1500", "SGDClassifier(log)/wine-1", "SGDClassifier(log)/iris-1",
         "SGDClassifier(log)/digits<5"] + [f"SGDClassifier(log)/classif800-s{s}"
                                           for s in range(4)]


def _fmt(point):
    return " ".join(f"{k.split('__')[-1]}={v:.4g}" for k, v in point.items())


def main(argv):
    only = None
    if "--only" in argv:
        only = argv[argv.index("--only") + 1].split(",")
    header("bench_final_steps: HypergradSearchCV's smooth final steps vs GridSearchCV")
    print(f"{'final step / data':40s} {'loss ours':>11s} {'loss grid':>11s} {'ratio':>8s} "
          f"{'t ours':>7s} {'compile':>7s} {'t grid':>7s} {'t ratio':>7s} {'pts':>4s}  "
          f"points (ours | grid)")
    met_loss, met_time, rows = 0, 0, 0
    script = os.path.abspath(__file__)
    for name in NAMES:
        if only and not any(k in name for k in only):
            continue
        ours = run_fresh(script, "ours", name)
        grid = run_fresh(script, "grid", name)
        lo, lg = -ours["score"], -grid["score"]
        ratio = lo / lg
        tr = ours["time"] / grid["time"]
        ok_loss = ratio <= 1.001
        ok_time = grid["time"] < 10 or tr <= 0.1
        met_loss += ok_loss
        met_time += ok_time
        rows += 1
        flag = "" if ok_loss and ok_time else "  <-- " + " ".join(
            w for w, ok in (("loss", ok_loss), ("time", ok_time)) if not ok)
        print(f"{name:40s} {lo:11.5g} {lg:11.5g} {ratio:8.5f} {ours['time']:7.2f} "
              f"{ours['compile']:7.2f} {grid['time']:7.2f} {tr:7.3f} {ours['n_points']:4d}  "
              f"{_fmt(ours['point'])} | {_fmt(grid['point'])}{flag}", flush=True)
    print(f"SUMMARY: {rows} final steps; CV loss <= 1.001 x the grid's on {met_loss}/{rows}; "
          f"time <= 0.1 x the grid's where it takes >= 10 s on {met_time}/{rows}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3])))
    else:
        main(sys.argv[1:])
