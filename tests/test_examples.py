"""Run the examples end to end (reduced sizes) and check what they print.

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


def grid_range(text):
    match = re.search(r"grid range: \[(\S+), (\S+)\]", text)
    assert match, text
    return float(match.group(1)), float(match.group(2))


def test_lasso_cv(tmp_path):
    out = run_example("plot_lasso_cv.py", tmp_path)
    assert (tmp_path / "lasso_cv.png").stat().st_size > 0
    # The search's CV MSE is within 0.1 % of LassoCV's best grid point (same folds) ...
    assert number(r"CV MSE ratio implicit / grid best: (\S+)", out) <= 1.001
    # ... its alpha inside the grid's range, and scikit-learn's Lasso re-scores it alike.
    lo, hi = grid_range(out)
    assert lo <= number(r"ImplicitLassoCV: alpha = (\S+),", out) <= hi
    cv_mse = number(r"ImplicitLassoCV: alpha = \S+, CV MSE (\S+),", out)
    rescored = number(r"re-scored by \S+ ImplicitLassoCV +CV MSE (\S+)", out)
    assert abs(rescored - cv_mse) <= 1e-4 * cv_mse


def test_elastic_net_cv(tmp_path):
    out = run_example("plot_elastic_net_cv.py", tmp_path)
    assert (tmp_path / "elastic_net_cv.png").stat().st_size > 0
    assert number(r"CV MSE ratio implicit / grid best: (\S+)", out) <= 1.001
    # l1_ratio moved off the list's values to an interior mix, with far fewer points.
    assert 0.05 < number(r"ImplicitElasticNetCV: alpha = \S+, l1_ratio = (\S+),", out) < 0.95
    assert (number(r"(\d+) evaluations", out)
            < number(r"ElasticNetCV: .* (\d+) points", out) / 4)
    cv_mse = number(r"ImplicitElasticNetCV: alpha = .*CV MSE (\S+),", out)
    rescored = number(r"re-scored by \S+ ImplicitElasticNetCV +CV MSE (\S+)", out)
    assert abs(rescored - cv_mse) <= 1e-4 * cv_mse


def test_ridge_cv(tmp_path):
    out = run_example("plot_ridge_cv.py", tmp_path)
    assert (tmp_path / "ridge_cv.png").stat().st_size > 0
    # One alpha: the leave-one-out minimum is at or below RidgeCV's best grid point ...
    assert number(r"LOO MSE ratio implicit / grid best: (\S+)", out) <= 1.0
    lo, hi = grid_range(out)
    assert lo <= number(r"ImplicitRidgeCV +alpha = (\S+):", out) <= hi
    # ... and one alpha per feature goes lower than any single alpha can.
    assert number(r"LOO MSE ratio alpha_per_feature / grid best: (\S+)", out) < 0.98


def test_logistic_cv(tmp_path):
    out = run_example("plot_logistic_cv.py", tmp_path)
    assert (tmp_path / "logistic_cv.png").stat().st_size > 0
    assert number(r"l2: CV log-loss ratio implicit / grid best: (\S+)", out) <= 1.001
    lo, hi = grid_range(out)
    assert lo <= number(r"l2: ImplicitLogisticRegressionCV: C = (\S+),", out) <= hi
    # scikit-learn's LogisticRegression re-scores the chosen C as the tuner reported it.
    cv_loss = number(r"l2: ImplicitLogisticRegressionCV: C = \S+, CV log-loss (\S+),", out)
    rescored = number(r"re-scored by \S+ ImplicitLogisticRegressionCV +CV log-loss (\S+)", out)
    assert abs(rescored - cv_loss) <= 2e-5


def test_search_pipeline(tmp_path):
    out = run_example("plot_search_pipeline.py", tmp_path)
    assert (tmp_path / "search_pipeline.png").stat().st_size > 0
    lines = [line for line in out.splitlines() if "best CV MSE" in line]
    grid1, search1, grid2, search2 = (number(r"best CV MSE (\S+)", line) for line in lines)
    # HypergradSearchCV's best is within 0.1 % of GridSearchCV's, with one and with two
    # hyperparameters. (Not asserted: fewer points than the grid; at the quick sizes the
    # two-parameter search evaluates more points than the 4 x 8 grid.)
    assert search1 <= 1.001 * grid1
    assert search2 <= 1.001 * grid2
    # The summary's words follow its numbers (no claim the run does not bear out).
    m = re.search(r"The search evaluated (\d+) points \((more|fewer) than the grid's (\d+)\) "
                  r"in \S+x the grid's time, (\d+) ms a point against the grid's (\d+) ms "
                  r"\((cheaper|dearer)\)", out)
    assert m, out
    n_search, n_grid = int(m.group(1)), int(m.group(3))
    assert m.group(2) == ("more" if n_search > n_grid else "fewer")
    ms_search, ms_grid = int(m.group(4)), int(m.group(5))  # rounded to the ms
    assert (ms_search <= ms_grid) if m.group(6) == "cheaper" else (ms_search >= ms_grid)
