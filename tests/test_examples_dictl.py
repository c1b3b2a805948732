"""The task-driven dictionary learning example runs (quick mode), without scikit-survival."""

import importlib.util
import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[1] / "examples" / "plot_task_driven_dictl.py"


@pytest.mark.slow
def test_example_runs_without_scikit_survival(monkeypatch, capsys):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    monkeypatch.setenv("SKIMPLICIT_EXAMPLE_QUICK", "1")
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
    import matplotlib.pyplot as plt

    plt.close("all")
