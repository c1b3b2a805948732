"""Helpers shared by the benchmark scripts: fresh-process timing and a header.

Each method runs in a fresh Python process (what a user pays: imports excluded, JIT
compilation included). The worker fits twice: the first fit is the "fresh" time, the
second (same process, compiled code cached) the "warm" time; their difference is shown
as compile time.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time


def header(title):
    import jax
    import numpy
    import sklearn

    import skimplicit

    print(f"# {title}")
    print(
        f"date {time.strftime('%Y-%m-%d')}, {platform.machine()} x {os.cpu_count()} cores, "
        f"python {platform.python_version()}, numpy {numpy.__version__}, scikit-learn "
        f"{sklearn.__version__}, jax {jax.__version__}, skimplicit {skimplicit.__version__}, "
        f"float64 inside the estimators; JAX_COMPILATION_CACHE_DIR="
        f"{os.environ.get('JAX_COMPILATION_CACHE_DIR', 'unset')}"
    )
    print()


def run_fresh(script, *args, timeout=1800):
    """Run ``script --worker args...`` in a fresh process; return its JSON result."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [sys.executable, script, "--worker", *map(str, args)], capture_output=True,
        text=True, timeout=timeout, env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_twice(fit):
    """(fresh seconds, warm seconds, result of the first fit)."""
    t = time.perf_counter()
    est = fit()
    fresh = time.perf_counter() - t
    t = time.perf_counter()
    fit()
    warm = time.perf_counter() - t
    return fresh, warm, est
