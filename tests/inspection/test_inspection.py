"""skimplicit.inspection on every tuner: plots (Agg) readable at bounds, hypergradient check."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso, LassoCV
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skimplicit.decomposition import TaskDrivenDictionaryLearning
from skimplicit.inspection import (
    check_hypergradient,
    plot_search_trajectory,
    plot_validation_curve,
)
from skimplicit.linear_model import (
    ImplicitElasticNetCV,
    ImplicitLassoCV,
    ImplicitLogisticRegressionCV,
    ImplicitRidgeCV,
)
from skimplicit.model_selection import HypergradSearchCV

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


@pytest.fixture(scope="module")
def blobs():
    return make_classification(200, 10, n_informative=4, random_state=0)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


# Every kind of tuner, fitted once; tight inner tolerances for the hypergradient check.
# ``*_bound``: the optimum (alpha ~ 0.1 on diabetes) lies below the lower bound 1.
TUNERS = {
    "lasso": lambda d, b: (ImplicitLassoCV(cv=3, tol=1e-10), *d),
    "enet": lambda d, b: (ImplicitElasticNetCV(cv=3, l1_ratio="tune", tol=1e-10), *d),
    "ridge": lambda d, b: (ImplicitRidgeCV(cv=3), *d),
    "logistic": lambda d, b: (ImplicitLogisticRegressionCV(cv=3, tol=1e-10), *b),
    "search_1d_bound": lambda d, b: (
        HypergradSearchCV(Lasso(tol=1e-12, max_iter=10000), {"alpha": (1.0, 10.0)}, cv=3), *d),
    "search_2d_bound": lambda d, b: (
        HypergradSearchCV(make_pipeline(StandardScaler(), ElasticNet(tol=1e-12, max_iter=10000)),
                          {"elasticnet__alpha": (1.0, 10.0),
                           "elasticnet__l1_ratio": (0.1, 1.0)}, cv=3), *d),
    "tddl": lambda d, b: (
        TaskDrivenDictionaryLearning(n_components=5, alpha=0.5, tune_alpha=True, max_iter=0,
                                     cv=3, max_outer_iter=3, random_state=0), *b),
}


@pytest.fixture(scope="module")
def fitted(diabetes, blobs):
    cache = {}

    def get(name):
        if name not in cache:
            est, X, y = TUNERS[name](diabetes, blobs)
            cache[name] = (_fit(est, X, y), X, y)
        return cache[name]

    return get


def _assert_readable(ax):
    """Markers within the limits, step numbers inside the axes, legend off the data."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    assert legend is not None
    assert not box.overlaps(legend.get_window_extent(renderer))
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    n_markers = 0
    for line in ax.get_lines():
        if line.get_marker() in (None, "None", "", " "):
            continue
        x = np.asarray(line.get_xdata(), float)
        y = np.asarray(line.get_ydata(), float)
        n_markers += x.size
        # Strictly inside: a marker on an extreme point (a bound) is drawn whole.
        assert np.all((x > x0) & (x < x1)), (line.get_label(), x, (x0, x1))
        assert np.all((y > y0) & (y < y1)), (line.get_label(), y, (y0, y1))
    assert n_markers > 0
    for text in ax.texts:
        t = text.get_window_extent(renderer)
        assert box.x0 - 0.5 <= t.x0 and t.x1 <= box.x1 + 0.5, text.get_text()
        assert box.y0 - 0.5 <= t.y0 and t.y1 <= box.y1 + 0.5, text.get_text()


def _counts(est):
    """(points evaluated, hypergradient steps, points with a hypergradient) as drawn:
    a search's ``cv_results_`` has one row per distinct point (a descent's start is its
    cover row), the other tuners' ``history_`` one per evaluation."""
    if hasattr(est, "cv_results_"):
        res = est.cv_results_
        grads = np.column_stack([np.asarray(v, float) for k, v in res.items()
                                 if k.startswith("hypergradient_")])
        return (len(res["params"]), int(np.sum(res["phase"] != "path")),
                int(np.sum(np.all(np.isfinite(grads), axis=1))))
    recs = est.tuning_result_.records
    return (len(recs), est.tuning_result_.n_iter,
            sum(r["evaluation"].grad is not None for r in recs))


@pytest.mark.parametrize("name", list(TUNERS))
def test_plot_search_trajectory_every_tuner(fitted, name):
    est, X, y = fitted(name)
    ax = plot_search_trajectory(est)
    _assert_readable(ax)
    n_eval, n_steps, _ = _counts(est)
    assert len(ax.texts) == n_steps  # one number per hypergradient step
    plotted = sum(len(line.get_xdata()) for line in ax.get_lines())
    assert plotted == n_eval + 1  # every evaluation, and the best again as a star
    expected = ["alpha", "C"] if name == "tddl" else None
    if expected:
        assert ax.get_xlabel() in expected
    plt.close("all")


def test_plot_search_trajectory_bound_cases(fitted):
    # 1-D: the best point sits on the lower bound, drawn inside the axes.
    est, _, _ = fitted("search_1d_bound")
    assert est.best_params_["alpha"] == pytest.approx(1.0)
    ax = plot_search_trajectory(est)
    assert ax.get_xlim()[0] < 1.0
    plt.close("all")
    # 2-D: alpha pinned at its lower bound; a reference surface under the trajectory.
    est, X, y = fitted("search_2d_bound")
    assert est.best_params_["elasticnet__alpha"] == pytest.approx(1.0)
    grid = GridSearchCV(est.estimator, {"elasticnet__alpha": np.logspace(0, 1, 4),
                                        "elasticnet__l1_ratio": [0.1, 0.55, 1.0]},
                        cv=3, scoring="neg_mean_squared_error").fit(X, y)
    ax = plot_search_trajectory(est, reference=grid)
    _assert_readable(ax)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert len(ax.figure.axes) == 2  # the colour bar
    plt.close("all")


def test_plot_search_trajectory_old_import_and_errors(fitted):
    from skimplicit.model_selection import plot_search_trajectory as old

    assert old is plot_search_trajectory
    est, _, _ = fitted("lasso")
    with pytest.raises(ValueError, match="not a tuned scalar"):
        plot_search_trajectory(est, params="beta")
    with pytest.raises(ValueError, match="no tuning history"):
        plot_search_trajectory(ImplicitLassoCV())
    X, y = load_diabetes(return_X_y=True)
    vec = _fit(ImplicitLassoCV(alpha_per_feature=True, cv=3, max_outer_iter=2), X[:, :5], y)
    with pytest.raises(ValueError, match="vector"):
        plot_search_trajectory(vec)


@pytest.mark.parametrize("name", list(TUNERS))
def test_plot_validation_curve_every_tuner(fitted, name):
    est, X, y = fitted(name)
    grid = None
    if name == "lasso":
        grid = LassoCV(cv=3).fit(X, y)
    elif name in ("ridge", "logistic", "tddl"):
        x = np.sort(np.ravel(est.history_[list(est.history_)[0]]))
        grid = (x, np.linspace(1.0, 2.0, x.size) * est.history_["loss"].min())
    ax = plot_validation_curve(est, grid=grid)
    _assert_readable(ax)
    tangents = ax.collections[0].get_segments()
    assert len(tangents) == _counts(est)[2]
    labels = [line.get_label() for line in ax.get_lines()]
    assert ("grid (twin)" in labels) == (grid is not None)
    plt.close("all")


def test_validation_curve_tangent_slope(fitted):
    # The tangent's slope in the axis's coordinates is d loss / d log10(alpha).
    est, _, _ = fitted("lasso")
    ax = plot_validation_curve(est)
    (seg, *_) = ax.collections[0].get_segments()
    rec = next(r for r in est.tuning_result_.records if r["evaluation"].grad is not None)
    alpha, g = rec["params"]["alpha"], rec["evaluation"].grad["alpha"]
    slope = (seg[1, 1] - seg[0, 1]) / (np.log10(seg[1, 0]) - np.log10(seg[0, 0]))
    np.testing.assert_allclose(slope, g * alpha * np.log(10), rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(seg[0, 0] * seg[1, 0]), alpha, rtol=1e-10)
    plt.close("all")


# Where the check is made away from the chosen point: the elastic nets end near
# l1_ratio = 1, where the CV loss bends so sharply in l1_ratio (one-sided slopes -1400 at
# a step of 1e-3, -27 in the limit) that finite differences do not converge to 1e-6 at
# any step (``fd_agreement`` says so); at l1_ratio = 0.6 they do. search_2d_bound keeps
# alpha on its lower bound (one-sided differences there).
# ImplicitRidgeCV converges its minimum to rounding error (a secant search on the exact
# hypergradient): there the hypergradient is 0 and a relative error means nothing.
CHECK_AT = {"enet": {"alpha": 0.05, "l1_ratio": 0.6}, "ridge": {"alpha": 1.0},
            "search_2d_bound": {"alpha": 1.0, "l1_ratio": 0.6}}


@pytest.mark.parametrize("name", list(TUNERS))
def test_check_hypergradient_every_tuner(fitted, name):
    est, X, y = fitted(name)
    # The codes of dictionary learning are solved to a relative 1e-10: larger steps keep
    # that noise out of the differences (Richardson removes the truncation error).
    h = 1e-2 if name == "tddl" else 1e-4
    check = check_hypergradient(est, X, y, h=h, params=CHECK_AT.get(name))
    assert check.relative_error < 1e-6, check
    assert check.fd_agreement < 1e-3, check
    assert np.all(check.implicit != 0)
    expected = CHECK_AT.get(name, est.tuning_result_.best_params)
    for k, v in check.params.items():
        np.testing.assert_allclose(v, expected[k], rtol=1e-12)


def test_check_hypergradient_unfitted_and_vector(diabetes, monkeypatch):
    X, y = diabetes
    # Not fitted: fitted first. One alpha per feature: random directions.
    est = ImplicitLassoCV(cv=3, tol=1e-10, alpha_per_feature=True, max_outer_iter=3)
    check = check_hypergradient(est, X[:, :8], y, n_directions=2)
    assert check.directions.shape == (2, 8)
    assert check.relative_error < 1e-6
    sw = np.random.RandomState(0).uniform(0.5, 2, len(y))
    check = check_hypergradient(ImplicitRidgeCV(cv=3), X, y, sample_weight=sw,
                                params={"alpha": 1.0})
    assert check.relative_error < 1e-6
    # A wrong hypergradient is caught: 1 % off gives a relative error of 1 %.
    lasso = _fit(ImplicitLassoCV(cv=3, tol=1e-10), X, y)
    good = check_hypergradient(lasso, X, y, params={"alpha": 0.5})
    assert good.relative_error < 1e-6
    from skimplicit.linear_model._cv_problems import EnetCVProblem

    evaluate = EnetCVProblem.evaluate

    def off_by_one_percent(self, params, **kw):
        ev = evaluate(self, params, **kw)
        if ev.grad is not None:
            ev.grad = {k: 1.01 * v for k, v in ev.grad.items()}
        return ev

    monkeypatch.setattr(EnetCVProblem, "evaluate", off_by_one_percent)
    bad = check_hypergradient(lasso, X, y, params={"alpha": 0.5})
    assert bad.relative_error == pytest.approx(0.01, rel=1e-3)
    with pytest.raises(ValueError, match="did not tune"):
        check_hypergradient(TaskDrivenDictionaryLearning(n_components=3, max_iter=0, cv=None,
                                                         init_max_iter=2, random_state=0),
                            *make_classification(60, 4, random_state=0))
