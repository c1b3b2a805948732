"""HypergradSearchCV keeps GridSearchCV's contract (issue 20): param_grid lists, any
scorer, refit by name or callable, return_train_score, deterministic cv_results_ with
GridSearchCV's keys and one row per point."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skimplicit.model_selection import HypergradSearchCV

CV = KFold(5, shuffle=True, random_state=0)
SCV = StratifiedKFold(5, shuffle=True, random_state=0)
pytestmark = pytest.mark.filterwarnings(
    "ignore:The best .* is at the .* bound:UserWarning")


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:300], y[:300]


def _no_time(res):
    return {k: v for k, v in res.items() if not k.endswith("_time")}


def _lasso():
    return make_pipeline(StandardScaler(), Lasso(tol=1e-10, max_iter=100_000))


def test_list_is_interval_and_coarse_starts(diabetes):
    X, y = diabetes
    grid = [1.0, 0.01, 0.1]
    s = HypergradSearchCV(_lasso(), {"lasso__alpha": grid}, cv=CV).fit(X, y)
    alphas = [p["lasso__alpha"] for p in s.cv_results_["params"]]
    assert alphas[:3] == grid  # evaluated first, in the given order
    assert len(alphas) > 3 and min(alphas) >= 0.01 and max(alphas) <= 1.0
    assert s.search_space_["lasso__alpha"][:2] == (0.01, 1.0)
    assert len({f"{a:.12g}" for a in alphas}) == len(alphas)  # no duplicate rows


def test_cv_results_deterministic_and_with_grid_search_keys(diabetes):
    X, y = diabetes
    kw = dict(cv=CV, return_train_score=True)
    a = HypergradSearchCV(_lasso(), {"lasso__alpha": (1e-3, 1.0)}, **kw).fit(X, y)
    b = HypergradSearchCV(_lasso(), {"lasso__alpha": (1e-3, 1.0)}, **kw).fit(X, y)
    np.testing.assert_equal(_no_time(a.cv_results_), _no_time(b.cv_results_))
    gs = GridSearchCV(_lasso(), {"lasso__alpha": [0.1, 1.0]}, **kw).fit(X, y)
    assert set(gs.cv_results_) <= set(a.cv_results_)
    for k in ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"):
        assert np.all(a.cv_results_[k] >= 0)


def test_one_value_lists_are_held(diabetes):
    X, y = diabetes
    s = HypergradSearchCV(_lasso(), {"lasso__alpha": [0.3], "lasso__fit_intercept": [True]},
                          cv=CV).fit(X, y)
    gs = GridSearchCV(_lasso(), {"lasso__alpha": [0.3], "lasso__fit_intercept": [True]},
                      cv=CV, scoring="neg_mean_squared_error").fit(X, y)
    assert s.cv_results_["params"] == gs.cv_results_["params"]
    np.testing.assert_allclose(s.cv_results_["mean_test_score"],
                               gs.cv_results_["mean_test_score"], rtol=1e-8)
    assert s.best_estimator_[-1].alpha == 0.3


@pytest.mark.parametrize("scoring", ["r2", "neg_root_mean_squared_error",
                                     "neg_median_absolute_error"])
def test_other_scorers_select_among_the_evaluated_points(diabetes, scoring):
    X, y = diabetes
    s = HypergradSearchCV(_lasso(), {"lasso__alpha": [1e-3, 0.1, 3.0]}, cv=CV,
                          scoring=scoring).fit(X, y)
    pts = [p["lasso__alpha"] for p in s.cv_results_["params"]]
    gs = GridSearchCV(_lasso(), {"lasso__alpha": pts}, cv=CV, scoring=scoring).fit(X, y)
    np.testing.assert_allclose(s.cv_results_["mean_test_score"],
                               gs.cv_results_["mean_test_score"], rtol=1e-10)
    assert s.best_index_ == gs.best_index_
    assert s.best_params_ == gs.best_params_
    assert s.score(X, y) == pytest.approx(gs.score(X, y))


def test_multimetric_refit_by_name_and_callable(cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    scoring = {"acc": "accuracy", "auc": "roc_auc"}
    s = HypergradSearchCV(pipe, {"logisticregression__C": [0.01, 1.0, 100.0]}, cv=SCV,
                          scoring=scoring, refit="auc").fit(X, y)
    assert s.multimetric_ and set(s.scorer_) == {"acc", "auc"}
    for name in scoring:
        assert f"mean_test_{name}" in s.cv_results_ and f"rank_test_{name}" in s.cv_results_
    assert s.best_index_ == int(np.argmax(s.cv_results_["mean_test_auc"]))
    assert s.best_score_ == s.cv_results_["mean_test_auc"][s.best_index_]
    assert s.score(X, y) == pytest.approx(s.scorer_["auc"](s.best_estimator_, X, y))

    c = HypergradSearchCV(pipe, {"logisticregression__C": [0.01, 1.0, 100.0]}, cv=SCV,
                          scoring=scoring,
                          refit=lambda r: int(np.argmin(r["mean_test_acc"]))).fit(X, y)
    assert c.best_index_ == int(np.argmin(c.cv_results_["mean_test_acc"]))
    assert not hasattr(c, "best_score_")
    with pytest.raises(ValueError, match="refit must be set to a scorer key"):
        HypergradSearchCV(pipe, {"logisticregression__C": [0.1, 1.0]}, cv=SCV,
                          scoring=scoring, refit=True).fit(X, y)


def test_loss_scorer_with_train_scores_matches_grid_search_at_the_same_points(diabetes):
    X, y = diabetes
    s = HypergradSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha":
                          (1e-2, 1e3)}, cv=CV, return_train_score=True).fit(X, y)
    pts = [p["ridge__alpha"] for p in s.cv_results_["params"]]
    gs = GridSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": pts},
                      cv=CV, scoring="neg_mean_squared_error",
                      return_train_score=True).fit(X, y)
    for k in ("mean_test_score", "mean_train_score", "split3_train_score"):
        np.testing.assert_allclose(s.cv_results_[k], gs.cv_results_[k], rtol=1e-8)
    assert s.best_index_ == gs.best_index_


def test_error_score_and_pre_dispatch_are_accepted(diabetes):
    X, y = diabetes
    s = HypergradSearchCV(_lasso(), {"lasso__alpha": [0.1, 1.0]}, cv=CV, scoring="r2",
                          error_score=-1.0, pre_dispatch=2).fit(X, y)
    assert s.get_params()["pre_dispatch"] == 2
    assert np.all(s.cv_results_["mean_test_score"] > -1.0)


@pytest.mark.parametrize("scoring", ["r2", "neg_root_mean_squared_error"])
def test_r2_and_rmse_followed_through_the_chain_rule(diabetes, scoring):
    """Ridge reports per-fold hypergradients: r2 and the RMSE are the loss followed
    (their hypergradient is the chain rule's, checked against finite differences of
    GridSearchCV's own scores), not a selection among points."""
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), Ridge())
    s = HypergradSearchCV(pipe, {"ridge__alpha": [0.1, 10.0, 1000.0]}, cv=CV,
                          scoring=scoring).fit(X, y)
    res = s.cv_results_
    pts = [p["ridge__alpha"] for p in res["params"]]
    gs = GridSearchCV(pipe, {"ridge__alpha": pts}, cv=CV, scoring=scoring).fit(X, y)
    np.testing.assert_allclose(res["mean_test_score"], gs.cv_results_["mean_test_score"],
                               rtol=1e-9)
    assert s.best_index_ == gs.best_index_
    i = int(np.flatnonzero(np.isfinite(res["hypergradient_ridge__alpha"]))[-1])
    a, g = pts[i], res["hypergradient_ridge__alpha"][i]

    def score(x):
        return GridSearchCV(pipe, {"ridge__alpha": [x]}, cv=CV,
                            scoring=scoring).fit(X, y).best_score_

    for h in (1e-4, 3e-5):
        fd = -(score(a * (1 + h)) - score(a * (1 - h))) / (2 * a * h)
        assert fd == pytest.approx(g, rel=1e-8)


def test_brier_score_followed_for_logistic_regression(cancer):
    """neg_brier_score with a LogisticRegression final step is the loss followed (its
    hypergradient against finite differences of GridSearchCV's own scores), and the
    search is within 0.1 % of a 100-point grid."""
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(
        solver="newton-cholesky", tol=1e-12, max_iter=1000))
    s = HypergradSearchCV(pipe, {"logisticregression__C": (1e-3, 1e3)}, cv=SCV,
                          scoring="neg_brier_score").fit(X, y)
    assert s.tuning_result_.stop_reason == "converged"
    res = s.cv_results_
    pts = [p["logisticregression__C"] for p in res["params"]]
    gs = GridSearchCV(pipe, {"logisticregression__C": pts}, cv=SCV,
                      scoring="neg_brier_score").fit(X, y)
    # The coarse path's points are cheap solves (to the final step's tol; here far
    # from the optimum, C >= 10); the best point is certified.
    np.testing.assert_allclose(res["mean_test_score"], gs.cv_results_["mean_test_score"],
                               rtol=1e-5)
    b = s.best_index_
    assert res["mean_test_score"][b] == pytest.approx(gs.cv_results_["mean_test_score"][b],
                                                      rel=1e-9)
    i = int(np.flatnonzero(np.isfinite(res["hypergradient_logisticregression__C"]))[-1])
    c, g = pts[i], res["hypergradient_logisticregression__C"][i]

    def score(x):
        return GridSearchCV(pipe, {"logisticregression__C": [x]}, cv=SCV,
                            scoring="neg_brier_score").fit(X, y).best_score_

    for h in (1e-4, 3e-5):
        fd = -(score(c * (1 + h)) - score(c * (1 - h))) / (2 * c * h)
        assert fd == pytest.approx(g, rel=1e-8)
    grid = GridSearchCV(pipe, {"logisticregression__C": np.logspace(-3, 3, 100)}, cv=SCV,
                        scoring="neg_brier_score").fit(X, y)
    assert s.best_score_ >= grid.best_score_ - 1e-3 * abs(grid.best_score_)


def test_skimplicit_final_step_keeps_its_eps_and_refuses_a_list_of_l1_ratio(diabetes):
    """``"auto"`` bounds of an ImplicitLassoCV / ImplicitElasticNetCV final step are its
    own ``[eps, 1] * alpha_max`` (alpha_max of the smallest training fold); a list of
    l1_ratio values (a grid of separate problems) is refused before any tuning, with
    what to do instead (it used to tune at the first value and fail in the refit)."""
    from skimplicit.linear_model import ImplicitElasticNetCV, ImplicitLassoCV
    from skimplicit.tuning import split_folds

    X, y = diabetes
    cv = KFold(3, shuffle=True, random_state=0)
    for eps in (1e-2, 1e-4):
        s = HypergradSearchCV(ImplicitLassoCV(eps=eps), {"alpha": "auto"}, cv=cv).fit(X, y)
        (hp,) = s.tuning_result_.hyperparameters
        folds = split_folds(X, y, np.ones(len(y)), list(cv.split(X)))
        Xc = [d.X_train - d.X_train.mean(0) for d in folds]
        amax = min(np.max(np.abs(x.T @ (d.y_train - d.y_train.mean()))) / len(d.y_train)
                   for x, d in zip(Xc, folds))
        np.testing.assert_allclose([hp.lower, hp.upper], [eps * amax, amax], rtol=1e-10)
        assert hp.lower <= s.best_params_["alpha"] <= hp.upper
    with pytest.raises(ValueError, match="list of l1_ratio.*l1_ratio='tune'"):
        HypergradSearchCV(ImplicitElasticNetCV(l1_ratio=[0.2, 0.8]), {"alpha": (1e-3, 1.0)},
                          cv=3).fit(X, y)
