"""What a fit prints and logs (verbose, the 'skimplicit' logger) and the time budget."""

import logging
import re
import time

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_regression
from sklearn.linear_model import Lasso

from skimplicit.linear_model import ImplicitElasticNetCV, ImplicitLassoCV
from skimplicit.linear_model._cv_problems import EnetCVProblem
from skimplicit.tuning import split_folds
from skimplicit.model_selection import Evaluation, HypergradSearchCV, Hyperparameter, tune
from skimplicit.tuning import _progress


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


def _lines(text):
    return [line for line in text.splitlines() if line.startswith("[skimplicit]")]


def test_verbose_header_lines_and_summary(diabetes, capsys):
    X, y = diabetes
    est = ImplicitElasticNetCV(cv=3, l1_ratio="tune", verbose=1, max_time=100).fit(X, y)
    lines = _lines(capsys.readouterr().out)
    result = est.tuning_result_
    header, *evals, summary = lines
    # Header: what is tuned (names, bounds, scales), the folds, the budget.
    assert re.match(r"\[skimplicit\] tuning alpha in \[\S+, \S+\] \(log\), "
                    r"l1_ratio in \[0\.01, 1\] \(linear\) \| 3-fold CV mse \| budget: "
                    r"30 evaluations per start after the coarse path, 1 start, "
                    r"max_time 100 s$", header), header
    # One line per evaluation, no 'nan' (path rows show '-'), progress against the budget.
    assert len(evals) == len(result.records)
    assert not any("nan" in line for line in lines)
    for line, rec in zip(evals, result.records):
        if rec["phase"] == "path":
            assert "|proj grad|        - |" in line
        else:
            assert re.search(r"start \d+ step +\d+/30 ", line), line  # one per basin
        assert f"alpha={rec['params']['alpha']:.4g}" in line
        assert re.search(r"\| \d+\.\d\d/100 s$", line), line
    # Summary: best point, CV loss, stop reason.
    assert summary.startswith(f"[skimplicit] done: best alpha={est.alpha_:.4g}, "
                              f"l1_ratio={est.l1_ratio_:.4g} | cv mse {est.cv_loss_:.6g} |")
    assert summary.endswith(f"stop: {result.stop_reason}")
    assert f"{len(result.records)} evaluations ({len(result.records) - result.n_iter} path, " \
           f"{result.n_iter} steps)" in summary


def test_verbose_2_adds_inner_detail(diabetes, capsys):
    X, y = diabetes
    ImplicitLassoCV(cv=3, verbose=1).fit(X, y)
    out1 = capsys.readouterr().out
    est = ImplicitLassoCV(cv=3, verbose=2).fit(X, y)
    out2 = capsys.readouterr().out
    assert "inner:" not in out1
    inner = [line for line in _lines(out2) if "inner:" in line]
    assert len(inner) == len(est.tuning_result_.records)
    assert all("support_size=[" in line and "precision" in line for line in inner)
    est0 = ImplicitLassoCV(cv=3).fit(X, y)
    assert capsys.readouterr().out == ""
    assert est0.alpha_ == est.alpha_  # reporting changes nothing


def test_search_prints_its_cv_results_names_and_pinned_gradient(diabetes, capsys):
    X, y = diabetes
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # The optimum (alpha ~ 0.2 here) lies below the lower bound: alpha ends pinned at 1,
    # where the hypergradient pushes against the bound and the projected one is zero.
    search = HypergradSearchCV(make_pipeline(StandardScaler(), Lasso()),
                               {"lasso__alpha": (1.0, 10.0)}, cv=3, verbose=1).fit(X, y)
    lines = _lines(capsys.readouterr().out)
    assert "tuning lasso__alpha in [1, 10] (log)" in lines[0]
    assert all("lasso__alpha=" in line for line in lines[1:])
    assert "alpha=" not in lines[1].replace("lasso__alpha=", "")
    pinned = [r for r in search.tuning_result_.records
              if r["phase"] != "path" and r["params"]["alpha"] == 1.0]
    assert pinned and all(r["grad_z"][0] > 0 for r in pinned)
    assert all(r["projected_grad_norm"] == 0 for r in pinned)
    free = [r for r in search.tuning_result_.records
            if r["phase"] != "path" and r["params"]["alpha"] > 1.0]
    assert all(r["projected_grad_norm"] == pytest.approx(abs(r["grad_z"][0])) for r in free)
    idx = [i for i, r in enumerate(search.tuning_result_.records) if r in pinned]
    assert all("|proj grad|        0 |" in lines[1 + i] for i in idx)


def test_logger_records(diabetes, caplog, capsys):
    X, y = diabetes
    with caplog.at_level(logging.INFO, logger="skimplicit"):
        est = ImplicitLassoCV(cv=3).fit(X, y)  # verbose=0: nothing printed, all logged
    assert capsys.readouterr().out == ""
    records = [r for r in caplog.records if r.name == "skimplicit"]
    assert all(r.levelno == logging.INFO for r in records)
    assert len(records) == len(est.tuning_result_.records) + 2
    assert records[0].getMessage().startswith("tuning alpha in [")
    assert records[-1].getMessage().startswith("done: best alpha=")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="skimplicit"):
        ImplicitLassoCV(cv=3).fit(X, y)
    debug = [r for r in caplog.records if r.name == "skimplicit" and r.levelno == logging.DEBUG]
    assert len(debug) == len(est.tuning_result_.records)
    assert debug[0].getMessage().lstrip().startswith("inner: precision")


class _SlowFolds:
    """A toy problem of 8 'folds', each a short sleep; counts the folds each
    evaluation ran, and calls the deadline check between folds as the real problems do."""

    hyperparameters = [Hyperparameter("alpha", 1e-4, 1e2)]
    loss_name = "mse"

    def __init__(self, fold_seconds):
        self.fold_seconds = fold_seconds
        self.folds_run = []

    def initial_points(self):
        return [{"alpha": a} for a in (10.0, 1.0, 0.01)]

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        self.folds_run.append(0)
        for _ in range(8):
            _progress.check_time()
            time.sleep(self.fold_seconds)
            self.folds_run[-1] += 1
        z = np.log(params["alpha"] / 0.1)
        grad = {"alpha": 2 * z / params["alpha"]} if with_grad else None
        return Evaluation(loss=z ** 2, grad=grad, fold_losses=np.full(8, z ** 2))


def test_max_time_within_an_evaluation():
    # 8 folds of 50 ms: an evaluation takes 0.4 s; a budget of 0.6 s ends inside the
    # second one, which is dropped (never recorded) after fewer than its 8 folds.
    problem = _SlowFolds(0.05)
    result = tune(problem, max_time=0.6)
    assert result.stop_reason == "max_time"
    assert problem.folds_run[-1] < 8
    assert len(result.records) == len(problem.folds_run) - 1
    # No budget: every evaluation runs its 8 folds.
    problem = _SlowFolds(0.0)
    tune(problem, max_outer_iter=3)
    assert set(problem.folds_run) == {8}


def test_max_time_first_evaluation_always_completes():
    # A finite loss is needed to return anything: the first evaluation is not cut.
    problem = _SlowFolds(0.01)
    result = tune(problem, max_time=1e-3)
    assert result.stop_reason == "max_time"
    assert problem.folds_run == [8]
    assert len(result.records) == 1


def test_enet_problem_checks_the_deadline_between_folds():
    X, y = make_regression(60, 300, n_informative=5, random_state=0)
    splits = [(np.arange(20, 60), np.arange(20)), (np.arange(40), np.arange(40, 60))]
    problem = EnetCVProblem(split_folds(X, y, np.ones(60), splits))
    token = _progress._DEADLINE.set(time.perf_counter() - 1.0)  # already past
    try:
        with pytest.raises(_progress.TimeUp):
            problem.evaluate({"alpha": 1.0})
    finally:
        _progress._DEADLINE.reset(token)
    assert np.isfinite(problem.evaluate({"alpha": 1.0}).loss)  # no deadline: runs


def test_max_time_on_a_lasso_fit():
    # The case scaled down (667 x 5000 -> 200 x 2000, half the time it needs):
    # the tuning stops on the budget, having run fewer evaluations than without it.
    X, y = make_regression(200, 2000, n_informative=20, noise=20, random_state=0)
    ImplicitLassoCV(cv=3, tol=1e-8).fit(X, y)  # compiles the kernels
    full = ImplicitLassoCV(cv=3, tol=1e-8).fit(X, y).tuning_result_
    budget = 0.5 * full.records[-1]["time"]
    cut = ImplicitLassoCV(cv=3, tol=1e-8, max_time=budget).fit(X, y).tuning_result_
    assert cut.stop_reason == "max_time"
    assert len(cut.records) < len(full.records)
