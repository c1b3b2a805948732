"""HypergradSearchCV as a GridSearchCV user sees it: pipelines, routing, results, contract."""

import pickle

import numpy as np
import pytest
from joblib import parallel_config
from sklearn import config_context
from sklearn.base import BaseEstimator, RegressorMixin, clone, is_classifier
from sklearn.datasets import load_diabetes, load_iris, make_classification, make_regression
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    StratifiedKFold,
    cross_validate,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.utils.estimator_checks import parametrize_with_checks

from skimplicit.linear_model import ImplicitLassoCV, ImplicitLogisticRegressionCV
from skimplicit.linear_model._cv_problems import RidgeCVProblem
from skimplicit.model_selection import HypergradSearchCV, plot_search_trajectory

CV = KFold(5, shuffle=True, random_state=0)
TIGHT = dict(tol=1e-10, max_iter=100_000)


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


@pytest.fixture(scope="module")
def lasso_search(diabetes):
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), Lasso(**TIGHT))
    return HypergradSearchCV(pipe, {"lasso__alpha": (1e-3, 10.0)}, cv=CV).fit(X, y)


def _split_scores(search, i):
    return np.array([search.cv_results_[f"split{k}_test_score"][i]
                     for k in range(search.n_splits_)])


def _cv_split_scores(est, X, y, cv=CV, **kw):
    out = cross_validate(est, X, y, cv=cv, scoring="neg_mean_squared_error", **kw)
    return out["test_score"]


def test_pipeline_lasso_no_leakage_and_matches_grid(lasso_search, diabetes):
    X, y = diabetes
    s = lasso_search
    alpha = s.best_params_["lasso__alpha"]
    pipe = make_pipeline(StandardScaler(), Lasso(alpha=alpha, **TIGHT))
    # Each fold's score is scikit-learn's own pipeline CV score at that point: the scaler
    # was fitted on the training fold only.
    proper = _cv_split_scores(pipe, X, y)
    np.testing.assert_allclose(_split_scores(s, s.best_index_), proper, rtol=1e-7)
    assert s.best_score_ == pytest.approx(proper.mean(), rel=1e-7)
    # Scaling once on all the data (leakage) gives measurably different fold scores.
    leaky = _cv_split_scores(Lasso(alpha=alpha, **TIGHT), StandardScaler().fit_transform(X), y)
    assert np.max(np.abs(leaky - proper) / np.abs(proper)) > 1e-5
    # As good as GridSearchCV over 30 alphas on the same folds and scoring (within 0.1 %).
    grid = GridSearchCV(make_pipeline(StandardScaler(), Lasso()),
                        {"lasso__alpha": np.logspace(-3, 1, 30)}, cv=CV,
                        scoring="neg_mean_squared_error").fit(X, y)
    assert s.best_score_ >= grid.best_score_ * 1.001
    # best_estimator_: a plain clone of the pipeline, best params set, refit on all data.
    best = s.best_estimator_
    assert isinstance(best, Pipeline) and type(best[-1]) is Lasso
    assert best[-1].alpha == alpha and best[-1].tol == TIGHT["tol"]
    ref = clone(pipe).fit(X, y)
    np.testing.assert_allclose(s.predict(X[:7]), ref.predict(X[:7]), rtol=1e-10)
    assert s.score(X, y) == pytest.approx(ref.score(X, y))  # scoring=None: R², as GridSearchCV
    assert s.refit_time_ > 0 and s.n_splits_ == 5 and s.multimetric_ is False
    assert s.scorer_ is get_scorer("neg_mean_squared_error") or repr(s.scorer_) == repr(
        get_scorer("neg_mean_squared_error"))
    assert s.n_features_in_ == X.shape[1]


def test_cv_results_load_into_a_dataframe(lasso_search):
    pd = pytest.importorskip("pandas")
    s = lasso_search
    df = pd.DataFrame(s.cv_results_)
    # One row per distinct point evaluated: a descent starting at a cover point does not
    # add a row (its hypergradient goes to the cover point's row).
    first = {}
    for r in s.tuning_result_.records:
        first.setdefault(f"{r['params']['alpha']:.12g}", r)
    assert len(df) == len(first) < len(s.tuning_result_.records)
    assert df["param_lasso__alpha"].is_unique
    for col in ["params", "param_lasso__alpha", "split0_test_score", "split4_test_score",
                "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time",
                "std_fit_time", "mean_score_time", "std_score_time",
                "hypergradient_lasso__alpha", "phase"]:
        assert col in df
    assert not any(k.endswith("elapsed_time") for k in df)
    assert df.loc[s.best_index_, "rank_test_score"] == 1
    assert df["mean_test_score"].max() == s.best_score_
    splits = df[[f"split{k}_test_score" for k in range(5)]].to_numpy()
    np.testing.assert_allclose(splits.mean(axis=1), df["mean_test_score"], rtol=1e-12)
    np.testing.assert_allclose(-df["mean_test_score"],
                               [r["evaluation"].loss for r in first.values()])
    on_path = df["phase"] == "path"
    assert on_path.any() and (~on_path).any()
    # On the cover, a hypergradient only where a descent started (at most 3 basins).
    assert 1 <= np.isfinite(df.loc[on_path, "hypergradient_lasso__alpha"]).sum() <= 3
    assert np.isfinite(df.loc[~on_path, "hypergradient_lasso__alpha"]).all()
    assert all(set(p) == {"lasso__alpha"} for p in df["params"])
    assert (df["mean_fit_time"] > 0).all()


def _fd(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def _fd4(f, x, h):
    """Fourth-order central differences."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def test_elastic_net_two_hyperparameters_hypergradient_matches_finite_differences():
    # Correlated features: the best l1_ratio is inside (0, 1), not at the Lasso.
    X, y = make_regression(n_samples=120, n_features=40, n_informative=30, effective_rank=8,
                           noise=5.0, random_state=0)
    tight = dict(tol=1e-12, max_iter=1_000_000)
    cv = KFold(4, shuffle=True, random_state=1)
    s = HypergradSearchCV(make_pipeline(StandardScaler(), ElasticNet(**tight)),
                          {"elasticnet__alpha": (1e-3, 10.0), "elasticnet__l1_ratio": (0.05, 1.0)},
                          cv=cv, max_outer_iter=6).fit(X, y)
    res = s.cv_results_
    rs = np.asarray(res["param_elasticnet__l1_ratio"], float)
    # A descent step strictly inside the bounds (the best point may sit on the lower one).
    inside = np.flatnonzero((res["phase"] != "path") & (rs > 0.06) & (rs < 0.99))
    i = int(inside[-1])
    a, r = res["param_elasticnet__alpha"][i], res["param_elasticnet__l1_ratio"][i]
    assert s.best_params_["elasticnet__l1_ratio"] < 0.99

    def cv_loss(alpha, l1_ratio):
        pipe = make_pipeline(StandardScaler(), ElasticNet(alpha=alpha, l1_ratio=l1_ratio, **tight))
        return -_cv_split_scores(pipe, X, y, cv=cv).mean()

    assert -res["mean_test_score"][i] == pytest.approx(cv_loss(a, r), rel=1e-9)
    ga = _fd(lambda t: cv_loss(t, r), a, 1e-5 * a)
    gr = _fd(lambda t: cv_loss(a, t), r, 1e-5)
    np.testing.assert_allclose(res["hypergradient_elasticnet__alpha"][i], ga, rtol=1e-4)
    np.testing.assert_allclose(res["hypergradient_elasticnet__l1_ratio"][i], gr, rtol=1e-4)


def test_ridge_multi_output_pipeline_and_hypergradient(diabetes):
    X, y = diabetes
    Y = np.c_[y, np.sqrt(np.abs(y - y.mean()))]
    s = HypergradSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": (1e-3, 1e3)},
                          cv=CV, scoring="neg_mean_squared_error").fit(X, Y)
    alpha = s.best_params_["ridge__alpha"]

    def cv_loss(a):
        return -_cv_split_scores(make_pipeline(StandardScaler(), Ridge(alpha=a)), X, Y).mean()

    assert -s.best_score_ == pytest.approx(cv_loss(alpha), rel=1e-10)
    # (the ridge cover has hypergradients too: the first record that has one)
    i = int(np.flatnonzero(np.isfinite(
        np.asarray(s.cv_results_["hypergradient_ridge__alpha"], float)))[0])
    a = s.cv_results_["param_ridge__alpha"][i]
    np.testing.assert_allclose(s.cv_results_["hypergradient_ridge__alpha"][i],
                               _fd(cv_loss, a, 1e-4 * a), rtol=1e-6)
    assert s.predict(X[:3]).shape == (3, 2)
    # Ridge's CV curve is smooth here: the minimum is interior and flat.
    assert abs(_fd(cv_loss, alpha, 1e-3 * alpha)) * alpha < 1e-3 * cv_loss(alpha)


def test_groups_and_sample_weight_are_routed_as_in_gridsearchcv(diabetes):
    X, y = diabetes
    rng = np.random.RandomState(0)
    w = rng.uniform(0.5, 2.0, len(y))
    groups = np.arange(len(y)) % 7
    gkf = GroupKFold(3)
    pipe = make_pipeline(StandardScaler(), Lasso(**TIGHT))
    s = HypergradSearchCV(pipe, {"lasso__alpha": (1e-2, 10.0)}, cv=gkf, max_outer_iter=5)
    s.fit(X, y, groups=groups, lasso__sample_weight=w)
    best = clone(pipe).set_params(**s.best_params_)
    ref = cross_validate(best, X, y, cv=gkf, groups=groups, scoring="neg_mean_squared_error",
                         params={"lasso__sample_weight": w})["test_score"]
    np.testing.assert_allclose(_split_scores(s, s.best_index_), ref, rtol=1e-7)
    refit = clone(best).fit(X, y, lasso__sample_weight=w)
    np.testing.assert_allclose(s.predict(X[:5]), refit.predict(X[:5]), rtol=1e-9)

    # A bare estimator's sample_weight also weights the validation scores, as GridSearchCV.
    s2 = HypergradSearchCV(Lasso(**TIGHT), {"alpha": (1e-2, 10.0)}, cv=CV, max_outer_iter=5)
    s2.fit(X, y, sample_weight=w)
    grid = GridSearchCV(Lasso(**TIGHT), {"alpha": [s2.best_params_["alpha"]]}, cv=CV,
                        scoring="neg_mean_squared_error").fit(X, y, sample_weight=w)
    np.testing.assert_allclose(s2.best_score_, grid.best_score_, rtol=1e-7)
    np.testing.assert_allclose(s2.predict(X[:5]), grid.predict(X[:5]), rtol=1e-9)  # refit weighted

    # With metadata routing: the requests decide, the scorer's included.
    with config_context(enable_metadata_routing=True):
        scorer = get_scorer("neg_mean_squared_error").set_score_request(sample_weight=True)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=True),
                             Lasso(**TIGHT).set_fit_request(sample_weight=True))
        s3 = HypergradSearchCV(pipe, {"lasso__alpha": (1e-2, 10.0)}, cv=gkf, scoring=scorer,
                               max_outer_iter=5).fit(X, y, groups=groups, sample_weight=w)
        best = clone(pipe).set_params(**s3.best_params_)
        ref = cross_validate(best, X, y, cv=gkf, scoring=scorer,
                             params={"groups": groups, "sample_weight": w})["test_score"]
    np.testing.assert_allclose(_split_scores(s3, s3.best_index_), ref, rtol=1e-7)


def test_skimplicit_estimator_as_final_step(diabetes, lasso_search):
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), ImplicitLassoCV(**TIGHT))
    s = HypergradSearchCV(pipe, {"implicitlassocv__alpha": (1e-3, 10.0)}, cv=CV).fit(X, y)
    # The same problem as scikit-learn's Lasso with the same settings: the same search.
    assert s.best_params_["implicitlassocv__alpha"] == pytest.approx(
        lasso_search.best_params_["lasso__alpha"], rel=1e-8)
    final = s.best_estimator_[-1]
    assert type(final) is Lasso and final.alpha == s.best_params_["implicitlassocv__alpha"]


class _FlakyRidgeProblem(RidgeCVProblem):
    def evaluate(self, params, **kw):
        if params["alpha"] > 100:
            raise RuntimeError("boom")
        return super().evaluate(params, **kw)


class ThirdPartyRidge(RegressorMixin, BaseEstimator):
    """A third-party estimator made tunable by the documented protocol."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def fit(self, X, y):
        self.ridge_ = Ridge(alpha=self.alpha).fit(X, y)
        self.n_features_in_ = self.ridge_.n_features_in_
        return self

    def predict(self, X):
        return self.ridge_.predict(X)

    def _make_tunable_problem(self, folds):
        return _FlakyRidgeProblem(folds)


def test_third_party_protocol_and_error_score(diabetes):
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), ThirdPartyRidge())
    bounds = {"thirdpartyridge__alpha": (1e-2, 1e3)}
    with pytest.warns(FitFailedWarning, match="boom"):
        s = HypergradSearchCV(pipe, bounds, cv=CV).fit(X, y)
    scores = s.cv_results_["mean_test_score"]
    failed = s.cv_results_["param_thirdpartyridge__alpha"] > 100
    assert failed.any() and np.all(np.isnan(scores[failed]))
    assert np.all(np.isfinite(scores[~failed]))
    assert s.cv_results_["rank_test_score"][failed].min() > (~failed).sum() - 1
    alpha = s.best_params_["thirdpartyridge__alpha"]
    assert alpha <= 100
    ref = -_cv_split_scores(make_pipeline(StandardScaler(), Ridge(alpha=alpha)), X, y).mean()
    assert -s.best_score_ == pytest.approx(ref, rel=1e-10)
    assert isinstance(s.best_estimator_[-1], ThirdPartyRidge)
    assert s.best_estimator_[-1].alpha == alpha
    with pytest.raises(RuntimeError, match="boom"):
        HypergradSearchCV(pipe, bounds, cv=CV, error_score="raise").fit(X, y)


@pytest.mark.parametrize(
    "estimator, bounds, kw, err, match",
    [
        (make_pipeline(StandardScaler(), Lasso()),
         {"standardscaler__with_mean": (0, 1)}, {}, ValueError, "final step"),
        (Lasso(), {"beta": (1e-3, 1.0)}, {}, ValueError, "no tunable hyperparameter"),
        (Lasso(), {"alpha": (1.0,)}, {}, ValueError, "must be"),
        (Lasso(), {"alpha": (1.0, 0.1)}, {}, ValueError, "low < high"),
        (Lasso(), {"alpha": (0.1, 1.0, "cubic")}, {}, ValueError, "'log' or 'linear'"),
        (ElasticNet(), {"l1_ratio": (0.0, 1.0)}, {}, ValueError, r"\(0, 1\]"),
        (Lasso(), {"alpha": [0.1, "a"]}, {}, ValueError, "not all numbers"),
        (Lasso(), {"alpha": []}, {}, ValueError, "non-empty"),
        (SVR(), {"C": (0.1, 1.0)}, {}, TypeError, "tunable protocol"),
        (ImplicitLassoCV(alpha_per_feature=True), {}, {}, TypeError, "per feature"),
    ],
)
def test_clear_errors(diabetes, estimator, bounds, kw, err, match):
    X, y = diabetes
    with pytest.raises(err, match=match):
        HypergradSearchCV(estimator, bounds, cv=3, max_outer_iter=2, **kw).fit(X[:60], y[:60])


def _log_loss_cv(pipe, X, y, cv):
    return -cross_validate(pipe, X, y, cv=cv, scoring="neg_log_loss")["test_score"].mean()


# scikit-learn's newton-cg, asked for tol=1e-12 for the reference values, reports line
# searches failing at machine precision (its solution is converged: FD agree to 1e-8).
@pytest.mark.filterwarnings("ignore:The line search algorithm did not converge")
@pytest.mark.filterwarnings("ignore:Line Search failed")
def test_logistic_regression_multinomial_string_labels_hypergradient():
    X, y = load_iris(return_X_y=True)
    y = np.array(["setosa", "versicolor", "virginica"])[y]
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    tight = dict(solver="newton-cg", tol=1e-12, max_iter=10_000)  # FD needs tol 1e-12
    pipe = make_pipeline(StandardScaler(), LogisticRegression(**tight))
    s = HypergradSearchCV(pipe, {"logisticregression__C": (1e-2, 1e2)}, cv=cv).fit(X, y)
    assert s.scorer_._score_func.__name__ == "log_loss" and is_classifier(s)
    C = s.best_params_["logisticregression__C"]

    def cv_loss(c):
        return _log_loss_cv(clone(pipe).set_params(logisticregression__C=c), X, y, cv)

    assert -s.best_score_ == pytest.approx(cv_loss(C), rel=1e-7)
    i = int(np.flatnonzero(s.cv_results_["phase"] != "path")[0])
    c = s.cv_results_["param_logisticregression__C"][i]
    # Fourth-order differences at two steps, converged (they agree): near the best C the
    # derivative is small (~1e-6) and a second-order step of 1e-4 C was off by 2e-5
    # (its truncation and the solves' noise).
    fds = [_fd4(cv_loss, c, r * c) for r in (4e-4, 2e-4)]
    np.testing.assert_allclose(fds[0], fds[1], rtol=1e-7)
    np.testing.assert_allclose(s.cv_results_["hypergradient_logisticregression__C"][i],
                               fds[1], rtol=1e-6)
    grid = GridSearchCV(pipe, {"logisticregression__C": np.logspace(-2, 2, 20)}, cv=cv,
                        scoring="neg_log_loss").fit(X, y)
    assert s.best_score_ >= grid.best_score_ * 1.001
    assert list(s.classes_) == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(s.predict_proba(X[:3]),
                               clone(pipe).set_params(**s.best_params_).fit(X, y)
                               .predict_proba(X[:3]), rtol=1e-6)
    assert s.decision_function(X[:3]).shape == (3, 3)


def test_logistic_regression_binary_class_weight_matches_cross_validation():
    X, y = make_classification(n_samples=150, n_features=8, weights=[0.8], random_state=0)
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(
        class_weight="balanced", solver="newton-cg", tol=1e-10, max_iter=10_000))
    s = HypergradSearchCV(pipe, {"logisticregression__C": (1e-3, 1e2)}, cv=cv).fit(X, y)
    best = clone(pipe).set_params(**s.best_params_)
    ref = cross_validate(best, X, y, cv=cv, scoring="neg_log_loss")["test_score"]
    np.testing.assert_allclose(_split_scores(s, s.best_index_), ref, rtol=1e-7)
    with pytest.raises(ValueError, match="liblinear"):
        HypergradSearchCV(LogisticRegression(solver="liblinear"), {"C": (0.1, 1.0)},
                          cv=3).fit(X, y)


def test_implicit_logistic_regression_cv_as_final_step():
    """skimplicit's logistic tuner implements the protocol: the same search as scikit-learn's
    LogisticRegression with the same settings, a plain LogisticRegression refit."""
    X, y = make_classification(n_samples=150, n_features=8, weights=[0.7], random_state=0)
    y = np.array(["no", "yes"])[y]
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    ours = make_pipeline(StandardScaler(), ImplicitLogisticRegressionCV(
        class_weight="balanced", tol=1e-10, max_iter=10_000))
    theirs = make_pipeline(StandardScaler(), LogisticRegression(
        class_weight="balanced", solver="newton-cg", tol=1e-10, max_iter=10_000))
    a = HypergradSearchCV(ours, {"implicitlogisticregressioncv__C": (1e-3, 1e2)}, cv=cv).fit(X, y)
    b = HypergradSearchCV(theirs, {"logisticregression__C": (1e-3, 1e2)}, cv=cv).fit(X, y)
    assert a.best_params_["implicitlogisticregressioncv__C"] == pytest.approx(
        b.best_params_["logisticregression__C"], rel=1e-8)
    final = a.best_estimator_[-1]
    assert type(final) is LogisticRegression
    assert final.C == a.best_params_["implicitlogisticregressioncv__C"]
    assert list(a.classes_) == ["no", "yes"]
    best = clone(theirs).set_params(logisticregression__C=final.C)
    ref = cross_validate(best, X, y, cv=cv, scoring="neg_log_loss")["test_score"]
    np.testing.assert_allclose(_split_scores(a, a.best_index_), ref, rtol=1e-7)


def test_restarts_in_threads_equal_sequential(diabetes):
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), ElasticNet(**TIGHT))
    bounds = {"elasticnet__alpha": (1e-3, 10.0), "elasticnet__l1_ratio": (0.1, 1.0)}
    kw = dict(cv=CV, n_restarts=2, max_outer_iter=4, random_state=0)
    seq = HypergradSearchCV(pipe, bounds, n_jobs=1, **kw).fit(X, y)
    with parallel_config(backend="threading"):
        par = HypergradSearchCV(pipe, bounds, n_jobs=2, **kw).fit(X, y)
    assert {"path", "start 0", "start 1"} <= set(seq.cv_results_["phase"])
    np.testing.assert_array_equal(seq.cv_results_["mean_test_score"],
                                  par.cv_results_["mean_test_score"])
    assert seq.best_params_ == par.best_params_


def test_clone_pickle_and_delegation(lasso_search, diabetes):
    X, y = diabetes
    s = pickle.loads(pickle.dumps(lasso_search))
    np.testing.assert_array_equal(s.predict(X[:4]), lasso_search.predict(X[:4]))
    c = clone(lasso_search)
    assert not hasattr(c, "best_estimator_")
    assert c.get_params()["param_grid"] == {"lasso__alpha": (1e-3, 10.0)}
    assert not hasattr(s, "predict_proba") and not hasattr(s, "decision_function")
    # transform delegates to the refit pipeline (here: the fitted scaler + Lasso has none).
    scaled = HypergradSearchCV(StandardScaler(), {}, cv=3)
    assert hasattr(scaled, "transform")
    no_refit = HypergradSearchCV(Lasso(), {"alpha": "auto"}, cv=3, refit=False,
                                 max_outer_iter=2).fit(X, y)
    assert not hasattr(no_refit, "predict") and no_refit.best_params_["alpha"] > 0


def test_plot_search_trajectory(lasso_search, diabetes):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = diabetes
    grid = GridSearchCV(make_pipeline(StandardScaler(), Lasso()),
                        {"lasso__alpha": np.logspace(-3, 1, 8)}, cv=CV,
                        scoring="neg_mean_squared_error").fit(X, y)
    ax = plot_search_trajectory(lasso_search, reference=grid)
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "CV mean squared error"
    n_points = sum(len(line.get_xdata()) for line in ax.get_lines())
    assert n_points == 8 + len(lasso_search.cv_results_["params"]) + 1
    with pytest.raises(ValueError, match="not a tuned"):
        plot_search_trajectory(lasso_search, params="lasso__beta")
    plt.close("all")


# -- scikit-learn's estimator contract, as sklearn runs it for GridSearchCV ----------------
FAST = dict(cv=3, max_outer_iter=4)


# A regressor and a classifier (Ridge passes too, but compiles a kernel per data shape:
# it costs a minute more; its behaviour is covered above).
@parametrize_with_checks([
    HypergradSearchCV(Lasso(), {"alpha": "auto"}, **FAST),
    HypergradSearchCV(LogisticRegression(), {"C": (1e-2, 1e2)}, **FAST),
])
def test_sklearn_contract(estimator, check):
    check(estimator)
