"""Batched inner solves on an accelerator: 5 folds x 8 alphas in one call.

Usage::

    python benchmarks/bench_gpu.py              # auto: accelerator part if one is found
    python benchmarks/bench_gpu.py --cpu-only   # CPU only, reduced sizes (a smoke run)
    python benchmarks/bench_gpu.py --part cpu   # only the CPU baselines, full size

Problem (issue 3): ``make_regression(n_samples=20000, n_features=5000, n_informative=50,
noise=20, random_state=0)``, ``X`` standardized; 5 folds (0/1 sample-weight masks over the
shared ``X``) x 8 alphas from ``alpha_max / 2`` to ``alpha_max / 100``; Lasso at
scikit-learn's default ``tol`` (1e-4, duality gap), float32 and float64.

* **accelerator part** (runs only where ``jax.default_backend()`` is ``gpu``/``tpu``, or on
  the CPU with ``--cpu-only``): FISTA, the dense solver that suits accelerators, on all 40
  problems in one ``vmap``-ed call (:func:`~skimplicit.solvers.solve_folds` with 40 weight
  vectors) and as a warm-started path (:func:`~skimplicit.solvers.solve_path`: ``scan``
  over the 8 alphas, ``vmap`` over the 5 folds); the working-set CD path for comparison.
* **CPU part** (the machine without accelerator): scikit-learn's loop of 40 ``Lasso``
  fits (``warm_start=True`` along the alphas) and the JAX CD path on the CPU.

``--cpu-only`` shrinks the problem to ``n=2000, p=500`` unless ``--n``/``--p`` are given, so
that the whole script proves itself in a minute on a laptop. Columns as in
``bench_solvers.py``: warm ``fit s``, ``compile s`` (first call minus warm), worst
``gap / threshold`` over the problems, and how many converged.

Status: the accelerator part has **not** run on a GPU yet (no GPU was available when it
was written); the figures in the project notes come from ``--cpu-only``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # measure real compilations

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.datasets import make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import Lasso  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skimplicit.solvers import (  # noqa: E402
    CD,
    FISTA,
    L1,
    Quadratic,
    alpha_max,
    solve_folds,
    solve_path,
)

warnings.simplefilter("ignore", ConvergenceWarning)


def bench(fn, repeat=1):
    """``(first_s, warm_s, out)``: first call (compile included), best warm call."""
    gc.collect()
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    warm = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        warm = min(warm, time.perf_counter() - t0)
    return first, warm, out


def quality(info):
    ratio = np.asarray(info.stop_crit) / np.asarray(info.threshold)
    return float(np.max(ratio)), int(np.sum(np.asarray(info.converged))), ratio.size


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpu-only", action="store_true",
                        help="run the accelerator part on the CPU, reduced sizes")
    parser.add_argument("--part", choices=["auto", "accel", "cpu", "all"], default="auto")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--p", type=int, default=None)
    parser.add_argument("--max-iter", type=int, default=20000, help="FISTA iterations")
    args = parser.parse_args()

    if args.cpu_only:
        jax.config.update("jax_platforms", "cpu")  # before any backend is initialized
    backend = jax.default_backend()
    has_accel = backend in ("gpu", "tpu", "cuda", "rocm")
    small = args.cpu_only or (not has_accel and args.part in ("auto", "accel"))
    n = args.n or (2000 if small else 20000)
    p = args.p or (500 if small else 5000)
    part = args.part
    if part == "auto":
        part = "all" if (has_accel or args.cpu_only) else "cpu"
    run_accel = part in ("accel", "all") and (has_accel or args.cpu_only)
    run_cpu = part in ("cpu", "all")
    if part == "accel" and not run_accel:
        print("no accelerator found: use --cpu-only for a reduced CPU run")
        return

    X, y = make_regression(n_samples=n, n_features=p, n_informative=50, noise=20,
                           random_state=0)
    X = StandardScaler().fit_transform(X)
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    masks = np.zeros((5, n))
    for k, (tr, _) in enumerate(folds):
        masks[k, tr] = 1
    amax = np.max(np.abs(X.T @ (y - y.mean()))) / n
    alphas = np.geomspace(amax / 2, amax / 100, 8)

    devices = ", ".join(str(d) for d in jax.devices())
    print("# bench_gpu: 5 folds x 8 alphas of Lasso in one call")
    print(f"backend {backend} ({devices}); {platform.machine()} {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; jax {jax.__version__}, scikit-learn "
          f"{sklearn.__version__}; n={n}, p={p}; parts: "
          f"{'accelerator ' if run_accel else ''}{'cpu' if run_cpu else ''}"
          f"{' (accelerator part on the CPU: --cpu-only, reduced sizes)' if args.cpu_only else ''}")
    if not has_accel:
        print("NOTE: no GPU/TPU in this run; accelerator figures below are CPU figures.")
    print()
    rows = []

    def add(name, dtype, first, warm, info):
        worst, ok, total = quality(info)
        rows.append((name, dtype, warm, first - warm, worst, f"{ok}/{total}"))
        print(f"  done {name} {dtype}: warm {warm:.3f} s, compile {first - warm:.2f} s",
              flush=True)

    if run_accel:
        for dtype in ["float32", "float64"]:
            with jax.enable_x64(dtype == "float64"):
                Xd = jnp.asarray(X, dtype)
                yd = jnp.asarray(y, dtype)
                # 40 independent problems: weights repeated per alpha, one alpha each.
                sw40 = jnp.asarray(np.repeat(masks, 8, axis=0), dtype)
                al40 = jnp.asarray(np.tile(alphas, 5), dtype)
                first, warm, out = bench(lambda: solve_folds(
                    Xd, yd, Quadratic(), L1(al40), FISTA(), sample_weights=sw40,
                    max_iter=args.max_iter))
                add("FISTA, 40 problems vmapped", dtype, first, warm, out[2])
                first, warm, out = bench(lambda: solve_path(
                    Xd, yd, Quadratic(), L1(jnp.asarray(alphas, dtype)), FISTA(),
                    sample_weights=jnp.asarray(masks, dtype), max_iter=args.max_iter))
                add("FISTA path (scan alphas, vmap folds)", dtype, first, warm, out[2])
                if dtype == "float64" or not has_accel:
                    first, warm, out = bench(lambda: solve_path(
                        Xd, yd, Quadratic(), L1(jnp.asarray(alphas, dtype)), CD(),
                        sample_weights=jnp.asarray(masks, dtype)))
                    add("CD path (working sets)", dtype, first, warm, out[2])

    sk_time = None
    if run_cpu:
        with jax.enable_x64(True), jax.default_device(jax.devices("cpu")[0]):
            Xd, yd = jnp.asarray(X), jnp.asarray(y)
            first, warm, out = bench(lambda: solve_path(
                Xd, yd, Quadratic(), L1(alphas), CD(), sample_weights=masks))
            add("CPU: CD path (working sets)", "float64", first, warm, out[2])
        t0 = time.perf_counter()
        for tr, _ in folds:
            est = Lasso(alpha=alphas[0], warm_start=True)
            for a in alphas:
                est.set_params(alpha=a).fit(X[tr], y[tr])
        sk_time = time.perf_counter() - t0
        rows.append(("CPU: scikit-learn loop of 40 Lasso fits", "float64", sk_time, 0.0,
                     np.nan, "40/40"))

    print()
    print("| method | dtype | fit s | compile s | worst gap/threshold | converged |")
    print("|---|---|---:|---:|---:|---|")
    for name, dtype, warm, comp, worst, ok in rows:
        print(f"| {name} | {dtype} | {warm:.3f} | {comp:.2f} | {worst:.2g} | {ok} |")
    print()
    best = min((r for r in rows if not r[0].startswith("CPU: scikit")), key=lambda r: r[2],
               default=None)
    where = "accelerator" if has_accel else "CPU (no accelerator in this run)"
    if best is not None and sk_time is not None:
        print(f"summary: fastest JAX batch {best[0]} ({best[1]}) {best[2]:.3f} s on {where} vs "
              f"scikit-learn loop {sk_time:.3f} s (ratio {best[2] / sk_time:.2f}); n={n}, p={p}")
    elif best is not None:
        print(f"summary: fastest JAX batch {best[0]} ({best[1]}) {best[2]:.3f} s on {where}; "
              f"n={n}, p={p}")
    else:
        print(f"summary: scikit-learn loop {sk_time:.3f} s; n={n}, p={p}")


if __name__ == "__main__":
    main()
