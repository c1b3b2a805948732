"""Run the paper's three examples end to end (reduced sizes) and check what they print.

Each example runs in a fresh process with ``SKIMPLICIT_EXAMPLE_QUICK=1`` (the examples read
it to shrink their loops) and matplotlib's Agg backend, in a temporary directory where it
saves its figure. Together they take about 40 s of CPU on a 2-core machine.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.slow


def run_example(name, tmp_path):
    env = dict(os.environ, SKIMPLICIT_EXAMPLE_QUICK="1", MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in:\n{text}"
    return float(match.group(1))


def test_jacobian_precision(tmp_path):
    out = run_example("plot_jacobian_precision.py", tmp_path)
    assert (tmp_path / "jacobian_precision.png").stat().st_size > 0
    # The implicit Jacobian error is on or below the theorem's bound ...
    assert number(r"implicit error / bound: min \S+, max (\S+)", out) <= 1.02
    # ... and, at the last iteration shown, well below the unrolled one.
    last = out.strip().splitlines()[-2]
    assert number(r"unrolled / implicit = (\S+)", last) > 2


def test_dataset_distillation(tmp_path):
    out = run_example("plot_dataset_distillation.py", tmp_path)
    assert (tmp_path / "dataset_distillation.png").stat().st_size > 0
    means = number(r"class-mean images (\S+),", out)
    distilled = number(r"distilled images (\S+),", out)
    assert distilled >= means + 0.02
    assert distilled >= 0.93
    assert number(r"training loss \S+ -> (\S+)", out) < number(r"training loss (\S+) ->", out)


def test_svm_hyperparameter(tmp_path):
    out = run_example("plot_svm_hyperparameter.py", tmp_path)
    assert (tmp_path / "svm_hyperparameter.png").stat().st_size > 0
    # Accurate solutions (projected gradient, block CD) through both fixed points agree with
    # finite differences (themselves accurate to ~1e-5 on the piecewise-linear hinge loss).
    for solver in ["projected gradient", "block coordinate descent"]:
        line = next(line for line in out.splitlines() if line.strip().startswith(solver + ":"))
        errors = [float(e) for e in re.findall(r"rel\. err (\S+)\)", line)]
        assert len(errors) == 2 and max(errors) < 1e-4, line
    assert number(r"max \|W - LinearSVC coef_\.T\| = (\S+)", out) < 1e-5
    tuned = number(r"validation hinge (\S+);", out)
    assert tuned <= 1.01 * number(r"best on the grid (\S+) at", out)


def test_check_hypergradient(tmp_path):
    out = run_example("plot_check_hypergradient.py", tmp_path)
    assert (tmp_path / "check_hypergradient.png").stat().st_size > 0
    # skimplicit's tuners: their hypergradients agree with finite differences ...
    for name in ("ImplicitLassoCV", "ImplicitRidgeCV", "ImplicitLogisticRegressionCV"):
        assert number(name + r" .*relative error (\S+)", out) < 1e-5
    # ... and with an inexact inner solver the error shrinks linearly with its tolerance.
    assert 0.8 < number(r"slope of log\(error\) against log\(tol\): (\S+)", out) < 1.3
    assert number(r"tol 1e-09: relative error (\S+)", out) < 1e-7
