"""Behaviour of the gradient-tuned regressors as a scikit-learn user sees it."""

import pickle
import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_diabetes, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso, LassoCV, Ridge, RidgeCV
from sklearn.model_selection import GroupKFold, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skimplicit.linear_model import ImplicitElasticNetCV, ImplicitLassoCV, ImplicitRidgeCV


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


CV = KFold(5, shuffle=True, random_state=0)


def _cv_mse(est, X, y):
    return -cross_val_score(est, X, y, cv=CV, scoring="neg_mean_squared_error").mean()


def test_lasso_matches_or_beats_lassocv(diabetes):
    X, y = diabetes
    ours = ImplicitLassoCV(cv=CV).fit(X, y)
    grid = LassoCV(cv=CV).fit(X, y)
    tight = dict(tol=1e-10, max_iter=100000)
    assert _cv_mse(Lasso(alpha=ours.alpha_, **tight), X, y) <= 1.001 * _cv_mse(
        Lasso(alpha=grid.alpha_, **tight), X, y)
    # The fitted model is scikit-learn's Lasso at alpha_ (same objective, refit on all data).
    ref = Lasso(alpha=ours.alpha_).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-8)
    np.testing.assert_allclose(ours.predict(X[:5]), ref.predict(X[:5]), rtol=1e-6)
    # Fitted attributes of the LassoCV vocabulary.
    assert ours.mse_path_.shape == (len(ours.alphas_), 5)
    assert np.all(np.diff(ours.alphas_) <= 0)
    np.testing.assert_allclose(ours.cv_loss_, ours.mse_path_.mean(axis=1).min(), rtol=1e-12)
    h = ours.history_
    assert len({len(v) for v in h.values()}) == 1
    assert {"alpha", "grad_alpha", "loss", "time"} <= set(h)
    assert ours.n_iter_ > 0 and ours.dual_gap_ >= 0 and ours.n_outer_iter_ >= 1


def test_elastic_net_tunes_both(diabetes):
    X, y = diabetes
    est = ImplicitElasticNetCV(cv=CV, l1_ratio="tune").fit(X, y)
    assert 0 < est.l1_ratio_ <= 1 and est.alpha_ > 0
    assert np.isfinite(est.history_["grad_l1_ratio"][-1])
    ref = ElasticNet(alpha=est.alpha_, l1_ratio=est.l1_ratio_).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    fixed = ImplicitElasticNetCV(cv=CV, l1_ratio=0.3).fit(X, y)
    assert fixed.l1_ratio_ == 0.3 and "l1_ratio" not in fixed.history_


def test_ridge_matches_or_beats_ridgecv_and_multioutput(diabetes):
    X, y = diabetes
    ours = ImplicitRidgeCV(cv=CV).fit(X, y)
    grid = RidgeCV(alphas=np.logspace(-3, 3, 50), cv=CV).fit(X, y)
    assert _cv_mse(Ridge(alpha=ours.alpha_), X, y) <= 1.001 * _cv_mse(Ridge(alpha=grid.alpha_), X, y)
    Y = np.c_[y, 0.5 * y + X[:, 0]]
    multi = ImplicitRidgeCV(cv=3).fit(X, Y)
    assert multi.coef_.shape == (2, X.shape[1]) and multi.predict(X).shape == (len(y), 2)
    np.testing.assert_allclose(multi.coef_, Ridge(alpha=multi.alpha_).fit(X, Y).coef_, rtol=1e-8)


def test_ridge_per_feature_refit_is_exact(diabetes):
    X, y = diabetes
    est = ImplicitRidgeCV(cv=3, alpha_per_feature=True, max_outer_iter=10).fit(X, y)
    assert est.alpha_.shape == (X.shape[1],)
    # The adaptive family, weights from the one-alpha solution on all the data.
    assert 0.0 <= est.gamma_ <= 2.0 and est.alpha_scale_ > 0
    w = Ridge(alpha=est._base_alpha).fit(X, y).coef_
    np.testing.assert_allclose(
        est.alpha_, est.alpha_scale_ * (np.mean(np.abs(w)) / np.abs(w)) ** est.gamma_, rtol=1e-8)
    # Stationarity of ||y - Xw - b||^2 + sum alpha_j w_j^2 at the refit.
    Xc, yc = X - X.mean(0), y - y.mean()
    grad = -2 * Xc.T @ (yc - Xc @ est.coef_) + 2 * est.alpha_ * est.coef_
    assert np.max(np.abs(grad)) < 1e-6 * np.max(np.abs(Xc.T @ yc))


def test_weighted_lasso_refit_is_exact():
    X, y = make_regression(80, 12, n_informative=4, noise=5, random_state=0)
    est = ImplicitLassoCV(cv=3, alpha_per_feature=True, max_outer_iter=8, tol=1e-10).fit(X, y)
    assert est.alpha_.shape == (12,)
    Xc, yc = X - X.mean(0), y - y.mean()
    grad = Xc.T @ (yc - Xc @ est.coef_) / len(y)
    on = est.coef_ != 0
    np.testing.assert_allclose(grad[on], est.alpha_[on] * np.sign(est.coef_[on]), rtol=1e-5)
    assert np.all(np.abs(grad[~on]) <= est.alpha_[~on] * (1 + 1e-6))


def test_sample_weight_sparse_and_float32(diabetes):
    X, y = diabetes
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    dense = ImplicitLassoCV(cv=3, alpha_init=0.05, max_outer_iter=3).fit(X, y, sample_weight=sw)
    sparse = ImplicitLassoCV(cv=3, alpha_init=0.05, max_outer_iter=3).fit(
        sp.csr_matrix(X), y, sample_weight=sw)
    np.testing.assert_allclose(dense.alpha_, sparse.alpha_, rtol=1e-5)
    np.testing.assert_allclose(dense.coef_, sparse.coef_, rtol=1e-4, atol=1e-6)
    f32 = ImplicitLassoCV(cv=3, alpha_init=0.05, max_outer_iter=3).fit(
        X.astype(np.float32), y.astype(np.float32), sample_weight=sw)
    np.testing.assert_allclose(f32.alpha_, dense.alpha_, rtol=1e-3)
    assert f32.predict(X.astype(np.float32)).shape == (len(y),)


def test_pipeline_clone_pickle_and_parallel_cross_val(diabetes):
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), ImplicitLassoCV(cv=3, max_outer_iter=5))
    pipe.fit(X, y)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(again.predict(X), pipe.predict(X))
    c = clone(pipe)
    assert not hasattr(c[-1], "coef_")
    scores = cross_val_score(pipe, X, y, cv=3, n_jobs=2)
    np.testing.assert_allclose(scores, cross_val_score(pipe, X, y, cv=3, n_jobs=1))


def test_groups_are_routed_to_the_splitter(diabetes):
    """As scikit-learn's CV estimators: ``groups`` (any fit parameter) needs metadata
    routing; with it, it reaches the splitter."""
    from sklearn import config_context

    X, y = diabetes
    groups = np.arange(len(y)) % 4
    with pytest.raises(ValueError, match="only supported if enable_metadata_routing=True"):
        ImplicitLassoCV(cv=GroupKFold(4), max_outer_iter=3).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="only supported if enable_metadata_routing=True"):
        ImplicitLassoCV(cv=3).fit(X, y, foo=1)
    with config_context(enable_metadata_routing=True):
        est = ImplicitLassoCV(cv=GroupKFold(4), max_outer_iter=3).fit(X, y, groups=groups)
    assert est.mse_path_.shape[1] == 4


@pytest.mark.parametrize("Est", [ImplicitLassoCV, ImplicitElasticNetCV, ImplicitRidgeCV])
def test_metadata_routing_of_sample_weight_and_groups(diabetes, Est):
    """With routing on: sample_weight requested by fit, groups to the inner splitter."""
    from sklearn import config_context
    from sklearn.model_selection import cross_validate

    X, y = diabetes
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    groups = np.arange(len(y)) % 4
    with config_context(enable_metadata_routing=True):
        est = Est(cv=GroupKFold(4), max_outer_iter=3).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=True)
        out = cross_validate(est, X, y, cv=2, params={"sample_weight": sw, "groups": groups},
                             return_estimator=True)
        assert np.all(out["test_score"] > 0.3)
        assert out["estimator"][0].mse_path_.shape[1] == 4
        # The weights reach fit: the same split without them gives another model.
        plain = Est(cv=GroupKFold(4), max_outer_iter=3).fit(X[:221], y[:221],
                                                            groups=groups[:221])
        weighted = Est(cv=GroupKFold(4), max_outer_iter=3).set_fit_request(
            sample_weight=True).fit(X[:221], y[:221], sample_weight=sw[:221],
                                    groups=groups[:221])
        assert not np.allclose(plain.coef_, weighted.coef_)


@pytest.mark.parametrize("Est", [ImplicitLassoCV, ImplicitElasticNetCV, ImplicitRidgeCV])
def test_bad_input_errors(diabetes, Est):
    X, y = diabetes
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Est(cv=3).fit(Xn, y)
    Xi = X.copy()
    Xi[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        Est(cv=3).fit(Xi, y)
    with pytest.raises(ValueError, match="0 sample"):
        Est(cv=3).fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="n_samples=1"):
        Est(cv=3).fit(X[:1], y[:1])
    # A constant y is not an error (as LassoCV): the constant model (see test_hostile.py).
    const = Est(cv=3).fit(X, np.ones(len(y)))
    assert np.all(const.coef_ == 0) and const.intercept_ == 1.0
    with pytest.raises(ValueError, match="bounds"):
        Est(cv=3, bounds=(1.0, 0.1)).fit(X, y)
    with pytest.raises(ValueError, match="bounds"):
        Est(cv=3, bounds=(-1.0, 1.0)).fit(X, y)
    with pytest.raises(ValueError):
        Est(cv=3).fit(X, np.array(["a"] * len(y)))
    est = Est(cv=3, max_outer_iter=2).fit(X, y)
    with pytest.raises(ValueError, match=re.escape("X has 3 features")):
        est.predict(X[:, :3])


def test_non_convergence_warns(diabetes):
    X, y = diabetes
    with pytest.warns(ConvergenceWarning):
        ImplicitLassoCV(cv=3, max_iter=1, max_outer_iter=2, tol=1e-12).fit(X, y)


def test_verbose_prints_one_line_per_step(diabetes, capsys):
    X, y = diabetes
    est = ImplicitLassoCV(cv=3, verbose=1, max_outer_iter=4).fit(X, y)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[skimplicit]")]
    # A header, one line per evaluation, a summary (tests/model_selection/test_progress.py).
    assert len(lines) == len(est.history_["loss"]) + 2
    assert all("cv mse" in ln and "|proj grad|" in ln for ln in lines[1:-1])


def test_max_time_keeps_the_best_point(diabetes):
    X, y = diabetes
    est = ImplicitLassoCV(cv=3, max_time=1e-9).fit(X, y)
    assert est.tuning_result_.stop_reason == "max_time"
    assert len(est.history_["loss"]) == 1 and np.isfinite(est.cv_loss_)
    assert est.cv_loss_ == est.history_["loss"].min()


def test_restarts_are_reproducible_and_never_worse(diabetes):
    X, y = diabetes
    one = ImplicitLassoCV(cv=3, max_outer_iter=5).fit(X, y)
    three = ImplicitLassoCV(cv=3, max_outer_iter=5, n_restarts=3, random_state=0).fit(X, y)
    again = ImplicitLassoCV(cv=3, max_outer_iter=5, n_restarts=3, random_state=0).fit(X, y)
    assert three.cv_loss_ <= one.cv_loss_ + 1e-9
    assert three.alpha_ == again.alpha_
