"""ImplicitLogisticRegressionCV against scikit-learn's LogisticRegressionCV.

Run: ``python benchmarks/bench_logistic.py`` (about 10
minutes on 2 cores, most of it scikit-learn's saga).

* Synthetic ``A``: make_classification(n_samples=2000, n_features=500, n_informative=30,
  random_state=0); ``B``: make_classification(n_samples=5000, n_features=100,
  n_informative=10, weights=[0.94], random_state=0). 75/25 split, standardized on the
  training part, the same StratifiedKFold(5, shuffle=True, random_state=0) on both sides.
  l2: against LogisticRegressionCV(Cs=20, scoring="neg_log_loss", l1_ratios=[0.0],
  use_legacy_attributes=False); l1: against LogisticRegressionCV(Cs=20, l1_ratios=[1.0],
  solver="saga", ...). Targets: time <= 0.5x, CV log-loss <= 1.001x.
* breast_cancer and digits (l2): CV log-loss <= 1.001x; times reported (no ratio target).

Measured 2026-11-26 (second session) on the 2-core machine at load 1.5-1.8, default BLAS
threads, fresh-process time ratio ours / scikit-learn (CV log-loss ratio in brackets);
the full output of the last run is docs/benchmarks/bench_logistic.txt:

==================  ================  ============  ==========================
problem             last run          run before    two earlier runs (kernel
                                      (same         not compiled ahead; then
                                      scheme)       traced in a thread)
==================  ================  ============  ==========================
A l2 / lbfgs        0.110x (0.9993)   0.091x        0.085x, 0.094x
B l2 / lbfgs        0.462x (0.9984)   0.500x        0.79x, 0.65x
A l1 / saga         0.029x (0.9715)   0.029x        0.046x, 0.033x
B l1 / saga         0.296x (0.9997)   0.231x        0.35x, 0.19x
breast_cancer l2    0.74x (0.9903)    0.45x         0.94x, 0.84x
digits l2           1.79x (0.9994)    2.05x         1.49x, 1.25x
==================  ================  ============  ==========================

One compilation per fit. B l2 is compile-bound: a warm fit takes 0.2-0.3 s, the first
one 0.6-0.8 s, of which about 0.3 s is JAX's tracing (half of it JAX's one-time start in
a process) and the rest XLA; the all-column kernel is now traced before the coarse path
and compiled in a background thread while the path runs, which hides the XLA part. Its
0.5x target is met in the two runs since, without margin (scikit-learn's own time moved
from 0.94 to 1.55 s between runs on this machine). scikit-learn's lbfgs with two OpenBLAS threads loses up to 10x on a
loaded machine; ours runs its host solvers on one BLAS thread.

"CV log-loss" is re-evaluated by scikit-learn's LogisticRegression at each method's chosen
C on the same folds (lbfgs at tol 1e-8 for l2, saga at tol 1e-6 for l1). Times: "fresh" =
the first fit in a fresh process (JIT compilation included, imports not), "warm" = a second
fit in the same process, "compile" = fresh - warm; scikit-learn fits once (nothing to
compile). "cpu" is the fresh fit's process CPU time (all threads), shown because the
machine is shared: wall-clock ratios move with the load, printed in the header.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import header, run_fresh  # noqa: E402


def data(name):
    from sklearn.datasets import load_breast_cancer, load_digits, make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "A":
        X, y = make_classification(n_samples=2000, n_features=500, n_informative=30,
                                   random_state=0)
    elif name == "B":
        X, y = make_classification(n_samples=5000, n_features=100, n_informative=10,
                                   weights=[0.94], random_state=0)
    elif name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
    else:
        X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), ytr, yte


def make(method, cv):
    from sklearn.linear_model import LogisticRegressionCV

    from skimplicit.linear_model import ImplicitLogisticRegressionCV

    grid = dict(Cs=20, cv=cv, scoring="neg_log_loss", use_legacy_attributes=False)
    return {
        "Implicit l2": lambda: ImplicitLogisticRegressionCV(cv=cv),
        "LRCV l2 (lbfgs)": lambda: LogisticRegressionCV(l1_ratios=[0.0], **grid),
        "Implicit l1": lambda: ImplicitLogisticRegressionCV(cv=cv, l1_ratio=1.0),
        "LRCV l1 (saga)": lambda: LogisticRegressionCV(l1_ratios=[1.0], solver="saga", **grid),
    }[method]()


def worker(method, dataset):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.simplefilter("ignore", FutureWarning)
    Xtr, Xte, ytr, yte = data(dataset)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    ours = method.startswith("Implicit")
    if ours:
        from skimplicit.linear_model import _logistic_problem as lp

        n0 = lp.logistic_hypergrad._cache_size()
    t, c = time.perf_counter(), time.process_time()
    est = make(method, cv).fit(Xtr, ytr)
    fresh, cpu = time.perf_counter() - t, time.process_time() - c
    warm, compiles, n_outer = None, 0, 0
    if ours:
        compiles = lp.logistic_hypergrad._cache_size() - n0
        n_outer = len(est.history_["loss"])
        t = time.perf_counter()
        make(method, cv).fit(Xtr, ytr)
        warm = time.perf_counter() - t
    C = float(np.ravel(est.C_)[0])
    l1 = float(np.ravel(est.l1_ratio_)[0]) if np.ndim(est.l1_ratio_) else float(est.l1_ratio_)
    ref = (LogisticRegression(C=C, tol=1e-8, max_iter=10000) if l1 == 0 else
           LogisticRegression(C=C, l1_ratio=1.0, solver="saga", tol=1e-6, max_iter=20000))
    cv_loss = -cross_val_score(ref, Xtr, ytr, cv=cv, scoring="neg_log_loss").mean()
    test_loss = log_loss(yte, est.predict_proba(Xte))
    print(json.dumps({
        "fresh": fresh, "warm": warm, "cpu": cpu, "C": C, "cv_loss": cv_loss,
        "test_loss": test_loss, "n_evals": n_outer, "compiles": compiles,
        "nnz": int(np.count_nonzero(est.coef_)),
    }))


def main():
    header("bench_logistic: ImplicitLogisticRegressionCV vs LogisticRegressionCV")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print()
    script = __file__
    rows, checks = [], []

    def pair(dataset, ours, twin, time_target):
        a = run_fresh(script, ours, dataset)
        b = run_fresh(script, twin, dataset)
        rows.extend([(dataset, ours, a), (dataset, twin, b)])
        checks.append((dataset, ours, twin, a["fresh"] / b["fresh"], a["cpu"] / b["cpu"],
                       time_target, a["cv_loss"] / b["cv_loss"]))

    pair("A", "Implicit l2", "LRCV l2 (lbfgs)", 0.5)
    pair("B", "Implicit l2", "LRCV l2 (lbfgs)", 0.5)
    pair("A", "Implicit l1", "LRCV l1 (saga)", 0.5)
    pair("B", "Implicit l1", "LRCV l1 (saga)", 0.5)
    pair("breast_cancer", "Implicit l2", "LRCV l2 (lbfgs)", None)
    pair("digits", "Implicit l2", "LRCV l2 (lbfgs)", None)

    print("| data | method | fresh s | warm s | compile s | cpu s | compilations | C | "
          "CV log-loss | test log-loss | nonzeros | evaluations |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for dataset, name, r in rows:
        warm = "-" if r["warm"] is None else f"{r['warm']:.2f}"
        comp = "-" if r["warm"] is None else f"{max(r['fresh'] - r['warm'], 0):.2f}"
        print(f"| {dataset} | {name} | {r['fresh']:.2f} | {warm} | {comp} | {r['cpu']:.2f} | "
              f"{r['compiles'] if r['warm'] is not None else '-'} | {r['C']:.4g} | "
              f"{r['cv_loss']:.5f} | {r['test_loss']:.5f} | {r['nnz']} | "
              f"{r['n_evals'] or '-'} |")
    print()
    print("| data | ours vs twin | time ratio (fresh, wall) | cpu ratio | target | "
          "CV log-loss ratio | target |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for dataset, ours, twin, t_ratio, c_ratio, t_target, l_ratio in checks:
        t_ok = t_target is None or t_ratio <= t_target
        l_ok = l_ratio <= 1.001
        ok &= t_ok and l_ok
        target = f"<= {t_target} {'ok' if t_ok else 'MISSED'}" if t_target else "reported"
        print(f"| {dataset} | {ours} / {twin} | {t_ratio:.3f} | {c_ratio:.3f} | {target} | "
              f"{l_ratio:.5f} | <= 1.001 {'ok' if l_ok else 'MISSED'} |")
    print()
    parts = [f"{d} {o.split()[1]} time {t:.2f}x (cpu {c:.2f}x) CV {ll:.4f}x"
             for d, o, _, t, c, _, ll in checks]
    print(f"summary: {'; '.join(parts)}; all targets {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:])
    else:
        main()
