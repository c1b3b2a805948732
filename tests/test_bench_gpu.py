"""``benchmarks/bench_gpu.py`` runs on the CPU backend, and its saved output is honest.

``--cpu-only --quick`` (tiny sizes) must finish in well under a minute on 2 cores and
print a table with its three sides (ours with the JAX path, ours with the host path, the
scikit-learn twin), a summary line and no path of the machine that ran it. The saved
``docs/benchmarks/bench_gpu.txt`` must say whether it ran on a GPU.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"
SAVED = ROOT / "docs" / "benchmarks" / "bench_gpu.txt"
MACHINE_PATH = re.compile(r"(^|[\s(='\"])/(home|work|tmp|root|Users|usr|opt|mnt|var|private)/",
                          re.M)


def _rows(text):
    """Data rows of the Markdown table, as lists of cells."""
    lines = text.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith("| case |"))
    head = [c.strip() for c in lines[i].strip("|").split("|")]
    assert lines[i + 1].startswith("|---")
    rows = []
    for ln in lines[i + 2:]:
        if not ln.startswith("|"):
            break
        rows.append(dict(zip(head, (c.strip() for c in ln.strip("|").split("|")))))
    return rows


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_gpu") / "out.txt"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu-only", "--quick", "--out",
                           str(out)], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, out.read_text()


def test_cpu_only_quick_table(quick_run):
    stdout, written = quick_run
    assert written.strip() == stdout.strip()  # --out holds what was printed
    rows = _rows(written)
    assert [r["side"] for r in rows] == ["twin", "ours jax f64", "ours host f64"]
    for r in rows:
        float(r["end-to-end s"])  # every side measured
        float(r["CV loss (sklearn)"])
        assert r["chosen"].startswith("alpha=")
    for r in rows[1:]:
        # compile s = first fit - second fit, shown unclamped
        first, second = float(r["end-to-end s"]), float(r["2nd fit s"])
        assert float(r["compile s"]) == pytest.approx(first - second, abs=0.011)
        float(r["ratio"]), float(r["CV ratio"])
        assert r["target"] and r["status"] == "n/a (CPU backend)"  # not a GPU figure
    assert "JAX backend: cpu" in written
    last = written.rstrip("\n").splitlines()[-1]
    assert last.startswith("summary (CPU backend, not a GPU figure")
    assert "ours jax f64" in last and "ours host f64" in last
    assert not MACHINE_PATH.search(written)


def test_cpu_only_never_writes_the_saved_output():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu-only", "--quick", "--out",
                           str(SAVED)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode != 0
    assert "only the full GPU run writes" in proc.stderr


def test_saved_output_says_whether_it_ran_on_a_gpu():
    assert SAVED.exists(), "docs/benchmarks/bench_gpu.txt is missing"
    text = SAVED.read_text()
    on_gpu = re.search(r"^JAX backend: (gpu|cuda|rocm|tpu) ", text, re.M)
    not_yet = "not yet run on a gpu" in "\n".join(text.splitlines()[:5]).lower()
    assert bool(on_gpu) != bool(not_yet), "the file must say, at its top, if it ran on a GPU"
    if on_gpu:
        assert text.rstrip("\n").splitlines()[-1].startswith("summary (")
    assert not MACHINE_PATH.search(text)
