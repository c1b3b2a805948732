"""New smooth final steps of HypergradSearchCV: LinearSVC, LinearSVR, RidgeClassifier.

Each: the inner solve equals scikit-learn's fit, the hypergradient equals central finite
differences (the same value at two step sizes, 1e-8 relative: the inner solves are
exact), and the search's CV score is within 0.1 % of a 100-point GridSearchCV's.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import (
    GammaRegressor,
    HuberRegressor,
    Lasso,
    PoissonRegressor,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.metrics import log_loss, make_scorer, mean_tweedie_deviance
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC, LinearSVR

from skimplicit.tuning import FoldData
from skimplicit.model_selection import HypergradSearchCV
from skimplicit.model_selection._adapters import make_problem

TIGHT_SVC = dict(tol=1e-12, max_iter=100_000, dual=False)


def _folds(X, y, cv):
    return [FoldData(X[tr], y[tr], np.ones(len(tr)), X[te], y[te], np.ones(len(te)))
            for tr, te in cv.split(X, y)]


def _cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _diabetes_positive():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y / y.mean()


def _codes(est, y):
    classes = est.classes_
    if classes.size == 2:
        return np.where(y == classes[1], 1.0, -1.0)[:, None]
    return np.where(y[:, None] == classes[None, :], 1.0, -1.0)


def _neg_squared_hinge(est, X, y):
    d = est.decision_function(X).reshape(len(y), -1)
    m = np.maximum(0.0, 1.0 - _codes(est, y) * d)
    return -np.mean(np.sum(m * m, axis=1))


def _neg_code_mse(est, X, y):
    d = est.decision_function(X).reshape(len(y), -1)
    return -np.mean(np.mean((_codes(est, y) - d) ** 2, axis=1))


# name: (estimator, data, hyperparameter, points for the FD check, grid of 100, scorer,
# cv)
CASES = {
    "LinearSVC-binary": (LinearSVC(**TIGHT_SVC), _cancer, "C", [1e-3, 0.05],
                         np.geomspace(1e-4, 1e1, 100), _neg_squared_hinge,
                         StratifiedKFold(5, shuffle=True, random_state=0)),
    "LinearSVC-ovr": (LinearSVC(**TIGHT_SVC), _iris, "C", [0.01, 1.0],
                      np.geomspace(1e-3, 1e3, 100), _neg_squared_hinge,
                      StratifiedKFold(5, shuffle=True, random_state=0)),
    "LinearSVR": (LinearSVR(loss="squared_epsilon_insensitive", epsilon=0.1, **TIGHT_SVC),
                  _diabetes, "C", [1e-4, 1e-2], np.geomspace(1e-5, 1e1, 100),
                  "neg_mean_squared_error", KFold(5, shuffle=True, random_state=0)),
    "RidgeClassifier": (RidgeClassifier(), _iris, "alpha", [0.1, 10.0],
                        np.geomspace(1e-3, 1e4, 100), _neg_code_mse,
                        StratifiedKFold(5, shuffle=True, random_state=0)),
    "HuberRegressor": (HuberRegressor(), _diabetes, "alpha", [30.0, 300.0],
                       np.geomspace(1e-1, 1e4, 100), "neg_mean_squared_error",
                       KFold(5, shuffle=True, random_state=0)),
    "PoissonRegressor": (PoissonRegressor(solver="newton-cholesky", tol=1e-10,
                                          max_iter=10_000), _diabetes_positive,
                         "alpha", [0.03, 0.1], np.geomspace(1e-6, 1e0, 100),
                         "neg_mean_poisson_deviance", KFold(5, shuffle=True, random_state=0)),
    "GammaRegressor": (GammaRegressor(solver="newton-cholesky", tol=1e-10,
                                      max_iter=10_000), _diabetes_positive,
                       "alpha", [0.03, 0.1], np.geomspace(1e-6, 1e0, 100),
                       "neg_mean_gamma_deviance", KFold(5, shuffle=True, random_state=0)),
    "TweedieRegressor": (TweedieRegressor(power=1.5, link="log", solver="newton-cholesky",
                                          tol=1e-10,
                                          max_iter=10_000),
                         _diabetes_positive, "alpha", [0.03, 0.1],
                         np.geomspace(1e-6, 1e0, 100),
                         make_scorer(mean_tweedie_deviance, greater_is_better=False,
                                     power=1.5),
                         KFold(5, shuffle=True, random_state=0)),
}
# Relative steps of the finite differences: small enough for the truncation error, large
# enough for the rounding error (alpha * d loss / d alpha is 1e-3 of the loss for Huber).
STEPS = {"HuberRegressor": (1e-4, 5e-5), "PoissonRegressor": (1e-4, 5e-5),
         "GammaRegressor": (1e-4, 5e-5), "TweedieRegressor": (1e-4, 5e-5)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_inner_solve_and_hypergradient_against_finite_differences(name):
    est, data, hp, points, _, _, cv = CASES[name]
    X, y = data()
    folds = _folds(X, y, cv)
    problem = make_problem(est, folds, {})
    for v in points:
        g = problem.evaluate({hp: v}).grad[hp]

        def loss(x):
            return problem.evaluate({hp: x}, with_grad=False).loss

        fds = [(loss(v * (1 + h)) - loss(v * (1 - h))) / (2 * v * h)
               for h in STEPS.get(name, (1e-5, 3e-6))]
        for fd in fds:
            assert fd == pytest.approx(g, rel=1e-8, abs=1e-12 * abs(loss(v) / v))
    if hasattr(problem, "fold_solution"):  # the inner solve is scikit-learn's minimizer
        ref = type(est)(**{**est.get_params(), hp: points[0]}).fit(
            folds[0].X_train, folds[0].y_train)
        W = problem.fold_solution(0, points[0])
        if isinstance(W, tuple):  # GLMs: (theta, Hessian, converged)
            W = W[0][:, None]
        np.testing.assert_allclose(W[:-1].T.reshape(ref.coef_.shape), ref.coef_,
                                   rtol=1e-6, atol=1e-8)


@pytest.mark.filterwarnings("ignore:The best .* is at the .* bound:UserWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_cv_score_matches_a_100_point_grid(name):
    est, data, hp, _, grid, scorer, cv = CASES[name]
    X, y = data()
    gs = GridSearchCV(est, {hp: grid}, cv=cv, scoring=scorer).fit(X, y)
    ours = HypergradSearchCV(est, {hp: (grid[0], grid[-1])}, cv=cv).fit(X, y)
    # Our score is the loss the search followed, computed by our exact inner solve;
    # the grid's by scikit-learn's fit at tol=1e-12: the same quantity.
    assert ours.best_score_ >= gs.best_score_ * (1 + 1e-3)
    # ... and at our point scikit-learn's own fit gives that score.
    at_ours = GridSearchCV(est, {hp: [ours.best_params_[hp]]}, cv=cv, scoring=scorer)
    assert at_ours.fit(X, y).best_score_ == pytest.approx(ours.best_score_, rel=1e-6)
    assert len(ours.cv_results_["params"]) < len(grid)


def test_linear_svc_in_a_pipeline_with_a_non_differentiable_scorer():
    """accuracy: the descent follows the squared hinge, the point is chosen by accuracy
    among the evaluated points, each scored as GridSearchCV scores it."""
    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LinearSVC(**TIGHT_SVC))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    s = HypergradSearchCV(pipe, {"linearsvc__C": [1e-3, 1e-1, 10.0]}, cv=cv,
                          scoring="accuracy").fit(X, y)
    pts = [p["linearsvc__C"] for p in s.cv_results_["params"]]
    assert pts[:3] == [1e-3, 1e-1, 10.0]  # the list first, in its order
    assert len(pts) > 3 and all(1e-3 <= c <= 10.0 for c in pts)
    gs = GridSearchCV(pipe, {"linearsvc__C": pts}, cv=cv, scoring="accuracy").fit(X, y)
    np.testing.assert_allclose(s.cv_results_["mean_test_score"],
                               gs.cv_results_["mean_test_score"])
    assert s.best_index_ == gs.best_index_
    assert s.best_score_ == gs.best_score_


@pytest.mark.parametrize("est, match", [
    (LinearSVC(loss="hinge"), r"loss='hinge'.*Supported: LinearSVC\(loss='squared_hinge'"),
    (LinearSVC(penalty="l1", dual=False), "penalty='l1'"),
    (LinearSVR(), "loss='epsilon_insensitive'"),
])
def test_non_smooth_variants_are_refused_with_the_supported_list(est, match):
    X, y = _cancer()
    with pytest.raises(ValueError, match=match):
        HypergradSearchCV(est, {"C": (0.1, 1.0)}, cv=3).fit(X, y)


@pytest.mark.parametrize("est", [SVC()])
def test_unsupported_final_steps_name_the_supported_list(est):
    X, y = _cancer()
    with pytest.raises(TypeError, match="Supported final steps: Lasso, .*LinearSVC"):
        HypergradSearchCV(est, {"C": (0.1, 1.0)}, cv=3).fit(X, y)


# -- SGDRegressor / SGDClassifier (l2): the exact minimizer SGD approximates ----------------

SGD_CASES = {
    "SGDRegressor": (SGDRegressor(random_state=0), _diabetes,
                     KFold(5, shuffle=True, random_state=0), "neg_mean_squared_error"),
    "SGDClassifier": (SGDClassifier(loss="log_loss", random_state=0), _cancer,
                      StratifiedKFold(5, shuffle=True, random_state=0), "neg_log_loss"),
}


@pytest.mark.parametrize("name", sorted(SGD_CASES))
def test_sgd_problem_is_the_exact_minimizer_and_its_hypergradient(name):
    est, data, cv, _ = SGD_CASES[name]
    X, y = data()
    folds = _folds(X, y, cv)
    problem = make_problem(est, folds, {"alpha": None})
    # Steps: the truncation error is 4e-8 at 1e-4 for the classifier, whose validation
    # loss carries the inner solve's first-order error (~1e-13 relative: 1e-9 of the
    # difference at 1e-5); the ridge solve is exact.
    a, steps = (3e-3, (1e-4, 3e-5)) if name == "SGDRegressor" else (1e-3, (3e-5, 1e-5))
    ev = problem.evaluate({"alpha": a})
    # Fold 0's loss is that of the minimizer of SGD's objective: Ridge(alpha = n a) /
    # LogisticRegression(C = 1 / (n a)) on the fold.
    f, n = folds[0], len(folds[0].y_train)
    if name == "SGDRegressor":
        ref = Ridge(alpha=n * a, solver="cholesky").fit(f.X_train, f.y_train)
        loss = np.mean((ref.predict(f.X_test) - f.y_test) ** 2)
    else:
        ref = LogisticRegression(C=1.0 / (n * a), solver="newton-cholesky", tol=1e-12).fit(
            f.X_train, f.y_train)
        loss = log_loss(f.y_test, ref.predict_proba(f.X_test))
    assert ev.fold_losses[0] == pytest.approx(loss, rel=1e-7)

    def total(x):  # (the certified solves of gradient evaluations)
        return problem.evaluate({"alpha": x}).loss

    for h in steps:
        fd = (total(a * (1 + h)) - total(a * (1 - h))) / (2 * a * h)
        assert fd == pytest.approx(ev.grad["alpha"], rel=1e-8)


@pytest.mark.parametrize("name", sorted(SGD_CASES))
def test_sgd_points_are_selected_by_sgds_own_cv_scores(name):
    """The refit is SGD's, which stops short of the minimizer: every evaluated point is
    scored as GridSearchCV scores it (SGD refit on each fold), and the best is chosen."""
    est, data, cv, scoring = SGD_CASES[name]
    X, y = data()
    s = HypergradSearchCV(est, {"alpha": (1e-5, 1e1)}, cv=cv, scoring=scoring).fit(X, y)
    pts = [p["alpha"] for p in s.cv_results_["params"]]
    gs = GridSearchCV(est, {"alpha": pts}, cv=cv, scoring=scoring).fit(X, y)
    np.testing.assert_allclose(s.cv_results_["mean_test_score"],
                               gs.cv_results_["mean_test_score"], rtol=1e-12)
    assert s.best_index_ == gs.best_index_ and type(s.best_estimator_) is type(est)
    assert s.best_estimator_.alpha == pts[s.best_index_]


def test_sgd_scan_around_the_best_point():
    """SGD's CV score is rough in alpha: after the descent, the half decade around the
    best scored point is scanned at 32 points a decade, scored as GridSearchCV scores a
    point. On breast_cancer the selected CV log-loss is then within 0.1 % of a 100-point
    grid's (it was 0.9 % above before the scan)."""
    est, data, cv, scoring = SGD_CASES["SGDClassifier"]
    X, y = data()
    s = HypergradSearchCV(est, {"alpha": (1e-5, 1e1)}, cv=cv, scoring=scoring).fit(X, y)
    res = s.cv_results_
    scan = np.asarray(res["phase"]) == "scan"
    alphas = np.array([p["alpha"] for p in res["params"]])
    assert 16 <= scan.sum() <= 32 and scan[-scan.sum():].all()  # after the descent's rows
    assert np.isnan(res["hypergradient_alpha"][scan]).all()
    assert len(np.unique(alphas)) == len(alphas)
    # the scan's centre: the best of the descent's points by SGD's own scores
    centre = alphas[~scan][np.argmax(res["mean_test_score"][~scan])]
    steps = np.log10(alphas[scan] / centre) * 32
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    assert np.abs(steps).max() <= 16
    assert s.best_index_ == np.argmax(res["mean_test_score"])
    grid = GridSearchCV(est, {"alpha": np.logspace(-5, 1, 100)}, cv=cv,
                        scoring=scoring).fit(X, y)
    assert -s.best_score_ <= 1.001 * -grid.best_score_


def test_no_scan_where_the_refit_is_the_minimizer():
    X, y = _cancer()
    s = HypergradSearchCV(LinearSVC(dual=False), {"C": (1e-3, 1e1)}, cv=3,
                          scoring="accuracy").fit(X, y)
    assert "scan" not in set(s.cv_results_["phase"])


@pytest.mark.parametrize("est, match", [
    (SGDClassifier(), "loss='hinge'"),
    (SGDClassifier(loss="log_loss", penalty="l1"), "penalty='l1'"),
    (SGDRegressor(penalty="elasticnet"), "penalty='elasticnet'"),
    (SGDRegressor(early_stopping=True), "early_stopping=True"),
])
def test_non_smooth_sgd_is_refused(est, match):
    X, y = _cancer()
    with pytest.raises(ValueError, match=match + r".*Supported: SGD"):
        HypergradSearchCV(est, {"alpha": (1e-4, 1.0)}, cv=3).fit(X, y)


def test_multiclass_sgd_classifier_is_refused():
    X, y = _iris()
    with pytest.raises(ValueError, match="3 classes"):
        HypergradSearchCV(SGDClassifier(loss="log_loss"), {"alpha": (1e-4, 1.0)},
                          cv=3).fit(X, y)


def test_subclass_that_keeps_fit_is_accepted():
    class NoScore(LinearSVC):
        @property
        def score(self):
            raise AttributeError

    class OwnFit(Lasso):
        def fit(self, X, y, sample_weight=None):  # may change the objective
            return super().fit(X, y, sample_weight=sample_weight)

    X, y = _cancer()
    s = HypergradSearchCV(NoScore(), {"C": [0.1, 1.0]}, cv=3, scoring="accuracy")
    assert s.fit(X, y).best_params_["C"] > 0
    with pytest.raises(TypeError, match="cannot tune OwnFit"):
        HypergradSearchCV(OwnFit(), {"alpha": (0.1, 1.0)}, cv=3).fit(X, y)


@pytest.mark.parametrize("data", [_cancer, _iris])
@pytest.mark.parametrize("cw", ["balanced", "dict"])
def test_class_weight_as_the_final_steps_fit_uses_it(data, cw):
    """LinearSVC: liblinear's C per class (one-vs-rest: the positive class's weight);
    RidgeClassifier: sample weights times the class weights; each fold's model is
    scikit-learn's fit on that fold."""
    X, y = data()
    X, y = X[::2], y[::2]
    classes = np.unique(y)
    if cw == "dict":
        cw = {c: w for c, w in zip(classes, (3.0, 0.5, 1.5))}
    folds = _folds(X, y, StratifiedKFold(3, shuffle=True, random_state=0))
    f = folds[0]
    svc = LinearSVC(class_weight=cw, **TIGHT_SVC)
    W = make_problem(svc, folds, {}).fold_solution(0, 0.3)
    ref = LinearSVC(class_weight=cw, C=0.3, **TIGHT_SVC).fit(f.X_train, f.y_train)
    np.testing.assert_allclose(W[:-1].T.reshape(ref.coef_.shape), ref.coef_, atol=1e-6)
    np.testing.assert_allclose(W[-1], ref.intercept_, atol=1e-6)
    rc = RidgeClassifier(class_weight=cw)
    ev = make_problem(rc, folds, {}).evaluate({"alpha": 2.0})
    ref = RidgeClassifier(alpha=2.0, class_weight=cw).fit(f.X_train, f.y_train)
    assert -ev.fold_losses[0] == pytest.approx(_neg_code_mse(ref, f.X_test, f.y_test),
                                               rel=1e-9)


def test_sgd_classifier_class_weight():
    X, y = _cancer()
    folds = _folds(X, y, StratifiedKFold(5, shuffle=True, random_state=0))
    problem = make_problem(SGDClassifier(loss="log_loss", class_weight="balanced"), folds,
                           {"alpha": None})
    a, f = 1e-3, folds[0]
    ref = LogisticRegression(C=1.0 / (len(f.y_train) * a), class_weight="balanced",
                             solver="newton-cholesky", tol=1e-12).fit(f.X_train, f.y_train)
    loss = log_loss(f.y_test, ref.predict_proba(f.X_test))
    assert problem.evaluate({"alpha": a}).fold_losses[0] == pytest.approx(loss, rel=1e-7)
