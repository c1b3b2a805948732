"""bench_gpu: the tuners on an accelerator (JAX path) against their scikit-learn twins.

Usage::

    python benchmarks/bench_gpu.py                  # on a GPU/TPU machine; writes
                                                    # docs/benchmarks/bench_gpu.txt (<= 8 min)
    python benchmarks/bench_gpu.py --cpu-only       # the CPU backend, 667 x 5000 Lasso,
    python benchmarks/bench_gpu.py --cpu-only --out FILE   # ... also written to FILE
    python benchmarks/bench_gpu.py --cpu-only --quick      # tiny sizes (the test's run)
    python benchmarks/bench_gpu.py --budget 300     # stop starting new runs after 300 s

Cases (issue 21), data standardized, ``random_state=0``, the same ``KFold(5)`` splits on
both sides (``cv=KFold(5)``, no shuffle):

1. ``ImplicitLassoCV(backend="jax")`` vs ``LassoCV(alphas=100, n_jobs=-1)``,
   ``make_regression(20000, 5000, n_informative=50, noise=20)``;
2. ``ImplicitLogisticRegressionCV(backend="jax")`` vs ``LogisticRegressionCV(Cs=20,
   scoring="neg_log_loss", n_jobs=-1)``, ``make_classification(20000, 5000,
   n_informative=30)``;
3. ``ImplicitElasticNetCV(l1_ratio="tune", backend="jax")`` vs ``ElasticNetCV(l1_ratio=[.1,
   .5, .7, .9, .95, .99, 1], alphas=100, n_jobs=-1)``, ``make_regression(100000, 1000,
   n_informative=50, noise=20)``.

Our side runs in float64 and in float32 (``X.astype(float32)``, ``y`` unchanged), the twin
once in float64. ``--cpu-only`` runs on JAX's CPU backend (``JAX_PLATFORMS=cpu``) one case,
the 667 x 5000 Lasso, with three sides: ours ``backend="jax"``, ours ``backend="host"`` and
``LassoCV(alphas=100, n_jobs=-1)``, so that both our paths are reported side by side; it
prints, and writes only where ``--out`` says (never ``docs/benchmarks/bench_gpu.txt``).
``--quick`` shrinks every case to a few hundred samples (a smoke run; it never writes the
docs file either).

What is measured, per side, each in a FRESH Python process (imports and data creation
excluded; JAX's persistent compilation cache off, so every JIT compilation is paid):

* end-to-end ``fit`` seconds of the first fit in that process (compile included), and its
  ratio to the twin's (ours / twin: 0.05 is 20x faster);
* compile seconds, shown apart: the first fit minus a second identical fit (a fresh
  estimator with the same parameters on the same data) in the same process, whose
  compiled code is then cached. The twin is fitted once (it compiles nothing);
* the chosen hyperparameters, and the CV loss at that point re-scored by scikit-learn on
  the same 5 folds (``Lasso``/``ElasticNet(alpha, l1_ratio, tol=1e-8)`` MSE,
  ``LogisticRegression(C, solver="newton-cholesky", tol=1e-8)`` log-loss) in float64,
  and its ratio to the twin's;
* peak device memory (``jax.devices()[0].memory_stats()["peak_bytes_in_use"]`` after both
  fits; "n/a" where the device does not report it, e.g. the CPU) and the device's name.

Targets (issue 21, on a GPU): ``ImplicitLassoCV`` >= 20x faster than ``LassoCV``,
``ImplicitLogisticRegressionCV`` >= 10x faster than ``LogisticRegressionCV``,
``ImplicitElasticNetCV`` >= 20x faster than ``ElasticNetCV``, each with CV loss within
1.001x; printed with each row (MET / NOT MET) and summed up in the last line. On the CPU
backend they are printed for reference and not assessed.

Without ``--cpu-only`` on a machine whose JAX backend is the CPU the script measures
nothing: it says that no accelerator was found and exits with status 3. ``--budget``
(seconds, default 480) bounds the whole run: a run still going when it is spent is
stopped, and the runs not yet started are reported as skipped.

Until the estimators have a ``backend`` parameter, "ours" is their default (host) path
and the output says so in its header and device column.

Status: written without a GPU at hand; ``docs/benchmarks/bench_gpu.txt`` says at its top
whether the saved output comes from a GPU.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, str(ROOT))  # this checkout's skimplicit, installed or not
from _common import run_fresh  # noqa: E402

DOCS_OUT = ROOT / "docs" / "benchmarks" / "bench_gpu.txt"
L1_RATIOS = [0.1, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0]
# (model, n, p): the sizes, and the --quick ones (seconds on 2 CPU cores).
CASES = [("lasso", 20000, 5000), ("logistic", 20000, 5000), ("enet", 100000, 1000)]
QUICK_CASES = [("lasso", 200, 400), ("logistic", 300, 100), ("enet", 1000, 50)]
CPU_CASE, QUICK_CPU_CASE = ("lasso", 667, 5000), ("lasso", 100, 300)
# Largest time ratio ours / twin (1 / the speedup) and CV-loss ratio (issue 21).
TIME_TARGET = {"lasso": 0.05, "logistic": 0.1, "enet": 0.05}
CV_TARGET = 1.001
OURS_NAME = {"lasso": "ImplicitLassoCV", "logistic": "ImplicitLogisticRegressionCV",
             "enet": "ImplicitElasticNetCV"}
TWIN_NAME = {"lasso": "LassoCV(alphas=100, n_jobs=-1)",
             "logistic": 'LogisticRegressionCV(Cs=20, scoring="neg_log_loss", n_jobs=-1)',
             "enet": "ElasticNetCV(l1_ratio=[.1,.5,.7,.9,.95,.99,1], alphas=100, n_jobs=-1)"}
ACCELERATORS = ("gpu", "cuda", "rocm", "tpu")


# -- Worker side (each call in a fresh process) --------------------------------------------
def _data(model, n, p, cache):
    """Standardized float64 ``X`` and ``y``, made once and kept as .npy files in ``cache``."""
    import numpy as np

    stem = os.path.join(cache, f"{model}_{n}x{p}")
    if os.path.exists(stem + "_y.npy"):
        return np.load(stem + "_X.npy"), np.load(stem + "_y.npy")
    from sklearn.datasets import make_classification, make_regression
    from sklearn.preprocessing import StandardScaler

    if model == "logistic":
        X, y = make_classification(n, p, n_informative=30, random_state=0)
    else:
        X, y = make_regression(n, p, n_informative=50, noise=20, random_state=0)
    X = np.ascontiguousarray(StandardScaler().fit_transform(X))
    for name, a in (("_X", X), ("_y", y)):
        np.save(stem + name + ".tmp.npy", a)
        os.replace(stem + name + ".tmp.npy", stem + name + ".npy")
    return X, y


def _cv():
    from sklearn.model_selection import KFold

    return KFold(5)


def _twin(model):
    from sklearn.linear_model import ElasticNetCV, LassoCV, LogisticRegressionCV

    if model == "lasso":
        return LassoCV(alphas=100, cv=_cv(), n_jobs=-1)
    if model == "enet":
        return ElasticNetCV(l1_ratio=L1_RATIOS, alphas=100, cv=_cv(), n_jobs=-1)
    return LogisticRegressionCV(Cs=20, scoring="neg_log_loss", cv=_cv(), n_jobs=-1)


def _ours(model, backend):
    """Our estimator with ``backend`` where it has that parameter: ``(est, has_param)``."""
    from skimplicit.linear_model import (ImplicitElasticNetCV, ImplicitLassoCV,
                                         ImplicitLogisticRegressionCV)

    est = {"lasso": ImplicitLassoCV, "logistic": ImplicitLogisticRegressionCV,
           "enet": lambda: ImplicitElasticNetCV(l1_ratio="tune")}[model]()
    has = "backend" in est.get_params()
    est.set_params(cv=_cv(), **({"backend": backend} if has else {}))
    return est, has


def _point(model, est):
    import numpy as np

    if model == "logistic":
        return {"C": float(np.ravel(est.C_)[0])}
    if model == "enet":
        return {"alpha": float(est.alpha_), "l1_ratio": float(est.l1_ratio_)}
    return {"alpha": float(est.alpha_)}


def _timed_fit(est, X, y):
    gc.collect()
    t0 = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - t0


def _device(backend, has_param):
    """(device name, peak device bytes or None) of the JAX default device."""
    import jax

    dev = jax.devices()[0]
    try:
        stats = dev.memory_stats() or {}
    except Exception:  # noqa: BLE001  (backends without memory statistics)
        stats = {}
    peak = stats.get("peak_bytes_in_use")
    if backend == "jax" and has_param:
        return f"{dev.platform}: {dev.device_kind}", peak
    where = "" if has_param else ", no backend parameter"
    return f"CPU host solvers (JAX on {dev.platform}{where})", peak


def work_fit(model, n, p, side, dtype, cache):
    """One side of one case: timings, chosen point, device."""
    import numpy as np

    warnings.simplefilter("ignore")
    X, y = _data(model, int(n), int(p), cache)
    if dtype == "float32":
        X = X.astype(np.float32)
    if side == "twin":
        est = _twin(model)
        out = {"seconds": _timed_fit(est, X, y), "warm": None,
               "device": f"CPU x {os.cpu_count()} (scikit-learn, n_jobs=-1)", "peak": None}
    else:
        est, has = _ours(model, side)
        first = _timed_fit(est, X, y)
        warm = _timed_fit(_ours(model, side)[0], X, y)
        device, peak = _device(side, has)
        out = {"seconds": first, "warm": warm, "device": device, "peak": peak,
               "has_backend": has}
    out["point"] = _point(model, est)
    return out


def work_score(model, n, p, cache, points):
    """scikit-learn's 5-fold CV loss (MSE or log-loss) at each point, float64."""
    from sklearn.linear_model import ElasticNet, LogisticRegression
    from sklearn.model_selection import cross_val_score

    warnings.simplefilter("ignore")
    n, p = int(n), int(p)
    X, y = _data(model, n, p, cache)
    losses, seen = [], {}
    for pt in json.loads(points):
        key = json.dumps(pt, sort_keys=True)
        if key not in seen:
            if model == "logistic":
                # Newton-Cholesky: a few Newton steps to tol (lbfgs at tol=1e-8 takes
                # thousands of iterations at large C on 20000 x 5000).
                est = LogisticRegression(C=pt["C"], tol=1e-8, max_iter=1000,
                                         solver="newton-cholesky")
                scoring = "neg_log_loss"
            else:
                est = ElasticNet(alpha=pt["alpha"], l1_ratio=pt.get("l1_ratio", 1.0),
                                 tol=1e-8, max_iter=100000, precompute=n >= 4 * p)
                scoring = "neg_mean_squared_error"
            seen[key] = -float(cross_val_score(est, X, y, cv=_cv(), scoring=scoring,
                                               n_jobs=-1).mean())
        losses.append(seen[key])
    return {"cv": losses}


def work_probe():
    import jax

    import skimplicit
    dev = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": f"{dev.platform}: {dev.device_kind}",
            "count": len(jax.devices()), "jax": jax.__version__,
            "skimplicit": skimplicit.__version__,
            "no_backend": [OURS_NAME[m] for m in OURS_NAME if not _ours(m, "jax")[1]]}


def worker(kind, *args):
    fn = {"fit": work_fit, "score": work_score, "probe": work_probe}[kind]
    print(json.dumps(fn(*args)))


# -- Driver ---------------------------------------------------------------------------------
_PATH = re.compile(r"(?<![\w.])/(?:[\w.+-]+/)+")


def _reason(exc):
    """One line saying why a worker gave no result, without the machine's paths."""
    if isinstance(exc, subprocess.TimeoutExpired):
        return "stopped: budget spent"
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return "failed: " + _PATH.sub("", lines[-1] if lines else type(exc).__name__)[:120]


class Budget:
    def __init__(self, seconds):
        self.t0, self.seconds = time.perf_counter(), seconds

    def elapsed(self):
        return time.perf_counter() - self.t0

    def left(self):
        return self.seconds - self.elapsed()

    def run(self, *args):
        """``run_fresh(script, *args)`` within what is left: (result, None) or (None, why)."""
        left = self.left()
        if left < 1:
            return None, "skipped: budget spent"
        try:
            return run_fresh(os.path.abspath(__file__), *args, timeout=left), None
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            return None, _reason(exc)


def _fmt_point(pt):
    return ", ".join(f"{k}={v:.4g}" for k, v in pt.items())


def _sides(cpu_only):
    """(label, backend or "twin", dtype) in the order they run."""
    if cpu_only:
        return [("twin", "twin", "float64"), ("ours jax f64", "jax", "float64"),
                ("ours host f64", "host", "float64")]
    return [("twin", "twin", "float64"), ("ours f64", "jax", "float64"),
            ("ours f32", "jax", "float32")]


def _estimator_label(model, backend, res):
    if backend == "twin":
        return TWIN_NAME[model]
    has = res is None or res.get("has_backend", True)
    params = (['l1_ratio="tune"'] if model == "enet" else []) + (
        [f'backend="{backend}"'] if has else [])
    return f"{OURS_NAME[model]}({', '.join(params)})" + (
        "" if has else " [no backend parameter: host path]")


def run_case(model, n, p, cpu_only, budget, cache, emit):
    """Run every side of one case, re-score the chosen points, print the rows."""
    sides = _sides(cpu_only)
    res = {}
    for label, backend, dtype in sides:
        res[label] = budget.run("fit", model, n, p, backend, dtype, cache)
        print(f"  ({model} {n}x{p} {label}: "
              + (f"{res[label][0]['seconds']:.2f} s" if res[label][0] else res[label][1])
              + f", {budget.elapsed():.0f} s elapsed)", file=sys.stderr, flush=True)
    done = [label for label, _, _ in sides if res[label][0] is not None]
    cv, why_cv = {}, "skipped"
    if done:
        got, why = budget.run("score", model, n, p, cache,
                              json.dumps([res[lb][0]["point"] for lb in done]))
        if got is not None:
            cv = dict(zip(done, got["cv"]))
        else:
            why_cv = why.split(":")[0]
    twin = res["twin"][0]
    verdicts = []
    for label, backend, dtype in sides:
        r, why = res[label]
        target = "" if backend == "twin" else (
            f"time <= {TIME_TARGET[model]} ({1 / TIME_TARGET[model]:.0f}x), CV <= {CV_TARGET}")
        est = _estimator_label(model, backend, r)
        if r is None:
            emit(f"| {model} | {n}x{p} | {label} | {est} | {why} | | | | | | | | | {target} "
                 "| not measured |")
            verdicts.append((label, None, None, "not measured"))
            continue
        # Unclamped: a negative value means the second fit was the slower (noise, load).
        second, compile_s = ("", "") if r["warm"] is None else (
            f"{r['warm']:.2f}", f"{r['seconds'] - r['warm']:.2f}")
        ratio = r["seconds"] / twin["seconds"] if twin and backend != "twin" else None
        loss = cv.get(label)
        cv_ratio = loss / cv["twin"] if loss is not None and "twin" in cv else None
        peak = "n/a" if r["peak"] is None else f"{r['peak'] / 2**20:.0f}"
        if backend == "twin":
            status = "reference"
        elif cpu_only:
            status = "n/a (CPU backend)"
        elif ratio is None or cv_ratio is None:
            status = "NOT MET (incomplete)"
        else:
            status = ("MET" if ratio <= TIME_TARGET[model] and cv_ratio <= CV_TARGET
                      else "NOT MET")
        verdicts.append((label, ratio, cv_ratio, status))
        emit(f"| {model} | {n}x{p} | {label} | {est} | {r['seconds']:.2f} | {second} | "
             f"{compile_s} | "
             + ("" if ratio is None else f"{ratio:.3f}") + f" | {_fmt_point(r['point'])} | "
             + (why_cv if loss is None else f"{loss:.6g}") + " | "
             + ("" if cv_ratio is None else f"{cv_ratio:.5f}")
             + f" | {peak} | {r['device']} | {target} | {status} |")
    return twin, verdicts


def _summary(results, cpu_only, device, elapsed):
    parts, met, counted = [], 0, 0
    for model, twin, verdicts in results:
        items = []
        for label, ratio, cv_ratio, status in verdicts:
            if label == "twin":
                continue
            counted += 1
            met += status == "MET"
            if ratio is None or cv_ratio is None:
                items.append(f"{label} {status}")
                continue
            speed = (f"{1 / ratio:.1f}x faster" if ratio <= 1 else f"{ratio:.1f}x slower")
            items.append(f"{label}{'' if cpu_only else ' ' + status}: {speed} (time ratio "
                         f"{ratio:.3f}), CV ratio {cv_ratio:.5f}")
        tw = "twin not measured" if twin is None else f"twin {twin['seconds']:.2f} s"
        parts.append(f"{model}: {tw}; " + "; ".join(items))
    if cpu_only:
        return ("summary (CPU backend, not a GPU figure; GPU targets not assessed): "
                + " | ".join(parts) + f" | total {elapsed:.0f} s")
    return (f"summary ({device}): {met}/{counted} of our rows MET their targets | "
            + " | ".join(parts) + f" | total {elapsed:.0f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu-only", action="store_true",
                    help="JAX's CPU backend, the 667 x 5000 Lasso: ours jax / ours host / LassoCV")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--budget", type=float, default=480.0,
                    help="seconds for the whole run; later runs are skipped (default 480)")
    ap.add_argument("--out", default=None,
                    help="also write the output here (default: docs/benchmarks/bench_gpu.txt "
                         "for the full GPU run, nowhere otherwise)")
    args = ap.parse_args()
    budget = Budget(args.budget)
    full = not (args.cpu_only or args.quick)
    out = Path(args.out) if args.out else (DOCS_OUT if full else None)
    if out is not None and not full and out.resolve() == DOCS_OUT.resolve():
        ap.error("only the full GPU run writes docs/benchmarks/bench_gpu.txt")

    env_notes = []
    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
    os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"  # every compilation is paid
    if args.cpu_only:
        os.environ["JAX_PLATFORMS"] = "cpu"
    # The probe runs in its own process: initializing a GPU here would hold its memory.
    probe, why = budget.run("probe")
    if probe is None:
        print(f"bench_gpu: the JAX probe gave no result ({why})", file=sys.stderr)
        return 2
    if not args.cpu_only and probe["backend"] not in ACCELERATORS:
        print(f"bench_gpu: no accelerator found (JAX's default backend is "
              f"{probe['backend']}): nothing measured, no file written. Run "
              "`python benchmarks/bench_gpu.py --cpu-only` for the CPU-backend figures.",
              file=sys.stderr)
        return 3
    if args.cpu_only:
        cases = [QUICK_CPU_CASE if args.quick else CPU_CASE]
    else:
        cases = QUICK_CASES if args.quick else CASES
    lacking = [OURS_NAME[m] for m in dict.fromkeys(c[0] for c in cases)
               if OURS_NAME[m] in probe["no_backend"]]
    if lacking:
        env_notes.append(f"NOTE: {', '.join(lacking)} ha"
                         f"{'ve' if len(lacking) > 1 else 's'} no `backend` "
                         "parameter in this version: its 'ours' rows ran the default (host) "
                         "path, not the JAX path.")

    import numpy
    import sklearn

    lines = []

    def emit(line=""):
        lines.append(line)
        print(line, flush=True)

    mode = ("--cpu-only" if args.cpu_only else "accelerator") + (" --quick" if args.quick else "")
    emit(f"# bench_gpu: the tuners on {'the CPU backend' if args.cpu_only else 'an accelerator'}"
         " (JAX path) vs their scikit-learn twins")
    emit(f"date {time.strftime('%Y-%m-%d')}, {platform.machine()} x {os.cpu_count()} cores, "
         f"load {os.getloadavg()[0]:.1f}; python {platform.python_version()}, numpy "
         f"{numpy.__version__}, scikit-learn {sklearn.__version__}, jax {probe['jax']}, "
         f"skimplicit {probe['skimplicit']}")
    emit(f"JAX backend: {probe['backend']} ({probe['device']}, {probe['count']} device(s)); "
         f"mode {mode}; budget {args.budget:.0f} s")
    emit("Each side in a fresh process (imports and data creation excluded), JAX's persistent "
         "compilation cache off. 'end-to-end s' is the first fit, JIT compilation included; "
         "'compile s' is the first fit minus a second identical fit in the same process "
         "('2nd fit s'; compiled code cached; negative = noise); "
         "'ratio' is ours / twin of end-to-end seconds (0.05 = 20x faster). CV loss: "
         "scikit-learn's Lasso/ElasticNet MSE or LogisticRegression log-loss (tol=1e-8) at "
         "each side's chosen point on the same KFold(5) splits, float64. f32: X.astype(float32).")
    for note in env_notes:
        emit(note)
    emit()
    emit("| case | n x p | side | estimator | end-to-end s | 2nd fit s | compile s | ratio | "
         "chosen | "
         "CV loss (sklearn) | CV ratio | peak device MiB | device | target | status |")
    emit("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as cache:
        for model, n, p in cases:
            twin, verdicts = run_case(model, n, p, args.cpu_only, budget, cache, emit)
            results.append((model, twin, verdicts))
    emit()
    emit(_summary(results, args.cpu_only, probe["device"], budget.elapsed()))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:])
    else:
        sys.exit(main())
