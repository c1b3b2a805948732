"""ImplicitLogisticRegressionCV as a drop-in for LogisticRegressionCV (issue 19):
scikit-learn's parameters, scorings and fitted attributes. scikit-learn's own tests run
in tests/compat/test_compat_logistic.py."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, get_scorer, log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from skimplicit.linear_model import ImplicitLogisticRegressionCV
from skimplicit.tuning import FoldData
from skimplicit.linear_model._logistic_problem import LogisticCVProblem

FAST = dict(cv=3, max_outer_iter=4)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X[:, :10]), y


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _folds(X, y, k=3):
    out = []
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=0).split(X, y):
        out.append(FoldData(X[tr], y[tr], np.ones(len(tr)), X[te], y[te], np.ones(len(te))))
    return out


@pytest.mark.parametrize("data, l1_ratio", [("cancer", 0.0), ("cancer", 0.5), ("iris", 0.0)])
def test_brier_hypergradient_matches_finite_differences(data, l1_ratio, request):
    X, y = request.getfixturevalue(data)
    prob = LogisticCVProblem(_folds(X, y), n_classes=len(np.unique(y)), l1_ratio=l1_ratio,
                             tol=1e-13, loss="brier")
    C = 0.3
    ev = prob.evaluate({"C": C})
    f = lambda t: prob.evaluate({"C": C * np.exp(t)}, with_grad=False).loss  # noqa: E731
    # Converged central differences (the same at two steps) from inner solves at 1e-13
    # (at 1e-10 their error, ~1e-11 on the loss, moved a step of 1e-4 by up to 5e-5).
    for h in (1e-4, 1e-5):
        fd = (f(h) - f(-h)) / (2 * h)
        np.testing.assert_allclose(ev.grad["C"] * C, fd, rtol=1e-8)
    if l1_ratio == 0.0:
        # The loss is scikit-learn's Brier score (as its neg_brier_score scorer has it).
        f0 = _folds(X, y)[0]
        lr = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(f0.X_train, f0.y_train)
        sk = -get_scorer("neg_brier_score")(lr, f0.X_test, f0.y_test)
        np.testing.assert_allclose(ev.fold_losses[0], sk, rtol=1e-6)


def test_defaults_no_future_warning_and_brier_scores(cancer):
    X, y = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = ImplicitLogisticRegressionCV(**FAST).fit(X, y)
    assert isinstance(est.C_, float) and est.l1_ratio_ == 0.0
    n = est.Cs_.size
    assert est.scores_.shape == (3, 1, n) and est.n_iter_.shape == (3, 1, n)
    assert est.coefs_paths_.shape == (3, 1, n, 1, X.shape[1] + 1)
    assert np.all(np.diff(est.Cs_) > 0) and est.C_ in est.Cs_
    # scores_ are scikit-learn's neg_log_loss of the fold models in coefs_paths_.
    folds = list(StratifiedKFold(3).split(X, y))
    j = n // 2
    lr = LogisticRegression().fit(X[:20], y[:20])
    lr.coef_ = est.coefs_paths_[1, 0, j, :, :-1]
    lr.intercept_ = est.coefs_paths_[1, 0, j, :, -1]
    te = folds[1][1]
    np.testing.assert_allclose(est.scores_[1, 0, j], -log_loss(y[te], lr.predict_proba(X[te])),
                               rtol=1e-8)
    assert est.score(X, y) == pytest.approx(-log_loss(y, est.predict_proba(X)))
    brier = ImplicitLogisticRegressionCV(scoring="neg_brier_score", **FAST).fit(X, y)
    j = int(np.argmax(brier.scores_.sum(axis=(0, 1))))
    assert brier.C_ == brier.Cs_[j]
    lr.coef_ = brier.coefs_paths_[1, 0, j, :, :-1]
    lr.intercept_ = brier.coefs_paths_[1, 0, j, :, -1]
    np.testing.assert_allclose(brier.scores_[1, 0, j],
                               -brier_score_loss(y[te], lr.predict_proba(X[te])[:, 1]),
                               rtol=1e-8)


@pytest.mark.parametrize("scoring", ["accuracy", "roc_auc"])
def test_other_scorer_selects_among_evaluated_points(cancer, scoring):
    X, y = cancer
    est = ImplicitLogisticRegressionCV(scoring=scoring, **FAST).fit(X, y)
    ref = ImplicitLogisticRegressionCV(**FAST).fit(X, y)
    # The same descent (the log-loss hypergradient), the same points ...
    np.testing.assert_allclose(est.Cs_, ref.Cs_)
    # ... the point chosen by the user's scorer: the first best of its mean fold score.
    mean = est.scores_[:, 0, :].mean(axis=0)
    assert est.C_ == est.Cs_[int(np.argmax(mean))]
    scorer = get_scorer(scoring)
    tr, te = list(StratifiedKFold(3).split(X, y))[2]
    lr = LogisticRegression().fit(X[:20], y[:20])
    lr.coef_ = est.coefs_paths_[2, 0, 3, :, :-1]
    lr.intercept_ = est.coefs_paths_[2, 0, 3, :, -1]
    np.testing.assert_allclose(est.scores_[2, 0, 3], scorer(lr, X[te], y[te]))
    assert est.score(X, y) == pytest.approx(scorer(est, X, y))


def test_Cs_list_is_the_interval_and_the_starts(cancer):
    X, y = cancer
    Cs = [0.01, 0.1, 1.0]
    est = ImplicitLogisticRegressionCV(Cs=Cs, **FAST).fit(X, y)
    assert set(Cs) <= set(est.Cs_.tolist())
    assert 0.01 <= est.C_ <= 1.0 and est.Cs_.min() == 0.01 and est.Cs_.max() == 1.0
    one = ImplicitLogisticRegressionCV(Cs=[0.5], **FAST).fit(X, y)
    assert one.C_ == 0.5 and one.Cs_.tolist() == [0.5]
    lr = LogisticRegression(C=0.5, solver="newton-cg", tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(one.coef_, lr.coef_, rtol=1e-6)


def test_several_l1_ratios_tuned_over_their_range(cancer):
    X, y = cancer
    est = ImplicitLogisticRegressionCV(l1_ratios=[0.2, 0.8], Cs=[0.1, 1.0], solver="saga",
                                       **FAST).fit(X, y)
    assert 0.2 <= est.l1_ratio_ <= 0.8 and 0.1 <= est.C_ <= 1.0
    n = est.Cs_.size
    # One column per evaluated point: Cs_[j], l1_ratios_[j] its coordinates.
    assert est.l1_ratios_.shape == (n,) and est.scores_.shape == (3, 1, n)
    for C in (0.1, 1.0):
        for r in (0.2, 0.8):
            assert np.any((est.Cs_ == C) & (est.l1_ratios_ == r))
    j = int(np.argmax(est.scores_.sum(axis=(0, 1))))
    assert (est.C_, est.l1_ratio_) == (est.Cs_[j], est.l1_ratios_[j])


def test_legacy_layout_holds_the_same_numbers(iris):
    X, y = iris
    new = ImplicitLogisticRegressionCV(**FAST).fit(X, y)
    old = ImplicitLogisticRegressionCV(use_legacy_attributes=True, **FAST).fit(X, y)
    n = new.Cs_.size
    assert old.C_.shape == (3,) and np.all(old.C_ == new.C_)
    assert old.l1_ratio_.shape == (3,)
    for k, cls in enumerate(old.classes_):
        assert old.coefs_paths_[cls].shape == (3, n, 1, X.shape[1] + 1)
        np.testing.assert_array_equal(old.coefs_paths_[cls][:, :, 0],
                                      new.coefs_paths_[:, 0, :, k])
        np.testing.assert_array_equal(old.scores_[cls][:, :, 0], new.scores_[:, 0])
    assert old.n_iter_.shape == (1, 3, n, 1)
    np.testing.assert_allclose(new.intercept_.sum(), 0.0, atol=1e-10)


def test_refit_false_averages_the_folds_best(cancer):
    X, y = cancer
    est = ImplicitLogisticRegressionCV(refit=False, **FAST).fit(X, y)
    best = np.argmax(est.scores_[:, 0, :], axis=1)
    np.testing.assert_allclose(est.C_, np.mean(est.Cs_[best]))
    w = np.mean([est.coefs_paths_[f, 0, j] for f, j in enumerate(best)], axis=0)
    np.testing.assert_allclose(est.coef_, w[:, :-1])
    np.testing.assert_allclose(est.intercept_, w[:, -1])


def test_scikit_learn_errors_and_deprecations(iris):
    X, y = iris
    with pytest.raises(ValueError, match="does not support multiclass"):
        ImplicitLogisticRegressionCV(solver="liblinear").fit(X, y)
    with pytest.raises(ValueError, match="supports only 'l2'"):
        ImplicitLogisticRegressionCV(l1_ratios=(1,)).fit(X, y)
    with pytest.raises(ValueError, match="dual=False"):
        ImplicitLogisticRegressionCV(dual=True).fit(X, y)
    with pytest.warns(FutureWarning, match="'penalty' was deprecated"):
        est = ImplicitLogisticRegressionCV(penalty="l1", solver="saga", l1_ratios=None,
                                           **FAST).fit(X, y)
    assert est.l1_ratio_ == 1.0
    # Our own l1_ratio overrides l1_ratios and picks the inner solver itself.
    assert ImplicitLogisticRegressionCV(l1_ratio=1.0, **FAST).fit(X, y).l1_ratio_ == 1.0


def test_fold_missing_a_class_scored_or_refused():
    X = np.arange(6.0)[:, None]
    y = np.array(["a", "a", "b", "b", "c", "c"])
    from sklearn.model_selection import KFold

    est = ImplicitLogisticRegressionCV(cv=KFold(3), scoring="accuracy").fit(X, y)
    assert np.all(est.scores_ == 0.0)  # each test fold holds the class its training misses
    # The log-loss too: the missing class is fitted probability 0 (its limit), which
    # log_loss clips at the float epsilon, as it clips scikit-learn's tiny probability.
    est = ImplicitLogisticRegressionCV(cv=KFold(3), Cs=4).fit(X, y)
    np.testing.assert_allclose(est.scores_, np.log(np.finfo(float).eps), rtol=1e-12)
    assert est.tuning_result_.stop_reason == "grid" and est.Cs_.size == 4
