"""The task-driven dictionary learning example runs (quick mode), without scikit-survival,
and compares the tuning of alpha and C with GridSearchCV over the scikit-learn pipeline."""

import importlib.util
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).parents[1] / "examples" / "plot_task_driven_dictl.py"


@pytest.mark.slow
def test_example_runs_without_scikit_survival(monkeypatch, capsys, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    monkeypatch.setenv("SKIMPLICIT_EXAMPLE_QUICK", "1")
    monkeypatch.chdir(tmp_path)  # where the example saves its figure
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):  # as if scikit-survival were not installed
        return None if name == "sksurv" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    ns = runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "falling back to scikit-learn's bundled" in out
    assert ns["X"].shape == (569, 30)
    # every method ran on every split and the task-driven model is fitted
    assert all(len(v) == 2 for v in ns["aucs"].values())
    assert ns["last_tddl"].cv_val_loss_ is not None

    # Tuning alpha and C against GridSearchCV over DictionaryLearning + LogisticRegression.
    assert (tmp_path / "task_driven_dictl.png").stat().st_size > 0
    tddl, grid = ns["tddl"], ns["grid"]
    history = tddl.history_
    assert {"alpha", "C"} <= set(history)
    # The reported CV log-loss is the best evaluated point, at the chosen alpha_ and C_ ...
    best = int(np.argmin(history["loss"]))
    assert tddl.tuning_result_.best_loss == history["loss"][best]
    assert tddl.alpha_ == history["alpha"][best] and tddl.C_ == history["C"][best]
    assert 1e-3 * ns["alpha_max"] * 0.999 <= tddl.alpha_ <= 0.95 * ns["alpha_max"] * 1.001
    # ... the grid spans the same alpha interval, and both are printed with their times.
    alphas = ns["param_grid"]["dictionarylearning__transform_alpha"]
    assert np.isclose(alphas.min(), 1e-3 * ns["alpha_max"])
    assert np.isclose(alphas.max(), 0.95 * ns["alpha_max"])
    assert re.search(r"GridSearchCV: +alpha = \S+, C = \S+, CV log-loss \S+, \d+ points, "
                     r"fit \S+ s", out)
    assert re.search(r"TaskDrivenDictionaryLearning: alpha = \S+, C = \S+, CV log-loss \S+, "
                     r"\d+ evaluations, fit \S+ s", out)
    # The twin's re-score of its own choice is its best CV score (same folds, same pipeline).
    rescored = float(re.search(r"re-scored by the twin pipeline: GridSearchCV +CV log-loss "
                               r"(\S+)", out).group(1))
    assert abs(rescored + grid.best_score_) < 1e-4
    # Both models classify the held-out digits well, with comparable log-losses.
    for name in ("GridSearchCV", "TaskDrivenDictionaryLearning"):
        acc = float(re.search(rf"held-out test: {name} +log-loss \S+, accuracy (\S+)",
                              out).group(1))
        assert acc >= 0.9, (name, acc)
    assert ns["ratio"] <= 1.5
    import matplotlib.pyplot as plt

    plt.close("all")
