"""Scale invariance (issue 15): the units of X, y and the sample weights change nothing but
the units of the answer.

Each case multiplies the data by ``s`` in 1e-12, 1e-6, 1e6, 1e12 (float64) and compares
with the fit on the unscaled data after the *exact rescaling* of the answer: the chosen
hyperparameters within 2 % in log scale, the CV loss within 1.001x and ``coef_`` within
the inner tolerance. What "exact rescaling" is depends on the objective (scikit-learn's,
which every estimator here reproduces):

* Lasso, ``(1 / 2n) ||y - X w||^2 + alpha ||w||_1`` (sample weights normalized to sum to
  n): ``X * s`` -> ``alpha * s``, ``coef_ / s``; ``y * s`` -> ``alpha * s``, ``coef_ * s``,
  MSE ``* s^2``; weights ``* s`` -> nothing changes.
* Elastic net with a fixed ``l1_ratio`` in (0, 1): the l1 term scales like ``X y``, the l2
  term like ``X^2``, so scaling X alone or y alone is *not* an equivalence (the same
  model would need another ``l1_ratio``). ``X`` and ``y`` both ``* s`` is one:
  ``alpha * s^2``, the same ``coef_``, MSE ``* s^2``; weights as for the Lasso.
* Ridge, ``||y - X w||^2 + alpha ||w||^2`` (weights not normalized): ``X * s`` ->
  ``alpha * s^2``, ``coef_ / s``; ``y * s`` -> the same ``alpha``, ``coef_ * s``, MSE
  ``* s^2``; weights ``* s`` -> ``alpha * s`` (the validation MSE is a weighted mean:
  unchanged).
* Logistic regression, ``C sum_i s_i l_i + penalty``: ``X * s`` -> ``C / s^2`` for the l2
  penalty, ``C / s`` for the l1 penalty (elastic net: no equivalence, as above),
  ``coef_ / s``; weights ``* s`` -> ``C / s``, the same ``coef_`` and log-loss.
* TaskDrivenDictionaryLearning (codes ``1/2 ||x - z D||^2 + alpha ||z||_1``, unit-norm
  atoms, a logistic model on the codes): ``X * s`` with the user's ``alpha * s`` and
  ``C / s^2`` -> the same dictionary, ``coef_ / s``; tuned ``alpha * s`` and ``C / s^2``,
  the same CV log-loss.
* Per-column scaling (columns alternately ``* s`` and ``/ s``: mixed 1e-12 and 1e12
  columns) is not an equivalence for any penalized model on the raw columns (the penalty
  weighs the columns' coefficients equally); it is one for a pipeline that standardizes
  first: :class:`HypergradSearchCV` over ``Pipeline(StandardScaler(), final step)`` must
  then give the same hyperparameters and CV loss.

:class:`HypergradSearchCV` is checked on its chosen hyperparameter and CV loss (its refit is
the user's estimator with the user's tolerance). The issue's own cases (default folds)
are at the end.
"""

import warnings
from functools import lru_cache

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skimplicit.decomposition import TaskDrivenDictionaryLearning
from skimplicit.linear_model import (
    ImplicitElasticNetCV,
    ImplicitLassoCV,
    ImplicitLogisticRegressionCV,
    ImplicitRidgeCV,
)
from skimplicit.model_selection import HypergradSearchCV

SCALES = (1e-12, 1e-6, 1e6, 1e12)
EXTREMES = (1e-12, 1e12)


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 50)
    y = X[:, :10] @ rng.uniform(1, 3, 10) + 5 * rng.randn(200)
    Xc = rng.randn(200, 20)
    yc = (Xc[:, 0] + 0.5 * rng.randn(200) > 0)
    return X, y, Xc, yc


X, Y, XC, YC = _data()
SW = np.random.RandomState(1).uniform(0.5, 2.0, 200)  # non-trivial weights to scale

# Inner tolerance of the comparisons of coef_ (relative to its largest entry): the
# logistic solvers' default tol is 1e-6; the Lasso / elastic-net solutions are polished
# into certified optima and ridge's are exact (Cholesky).
COEF_RTOL = 1e-6


def _check_hyper(got, ref, factor, name):
    ratio = np.asarray(got, float) / (np.asarray(ref, float) * factor)
    assert np.all(np.abs(np.log(ratio)) <= 0.02), (name, got, ref, factor)


def _check_loss(got, ref, factor):
    assert ref * factor / 1.001 <= got <= ref * factor * 1.001, (got, ref, factor)


def _check_coef(got, ref, factor):
    ref = np.asarray(ref, float)
    err = np.max(np.abs(np.asarray(got, float) / factor - ref))
    assert err <= COEF_RTOL * np.max(np.abs(ref)), err


# -- the estimators -------------------------------------------------------------------
# name: (estimator, hyperparameter attribute, data at scale s -> (X, y, sample_weight),
#        s -> (factor of the hyperparameter, of the CV loss, of coef_), scales)
CASES = {
    "lasso-X": (ImplicitLassoCV(cv=3), "alpha_", lambda s: (X * s, Y, None),
                lambda s: (s, 1.0, 1 / s), SCALES),
    "lasso-y": (ImplicitLassoCV(cv=3), "alpha_", lambda s: (X, Y * s, None),
                lambda s: (s, s * s, s), SCALES),
    "lasso-weights": (ImplicitLassoCV(cv=3), "alpha_", lambda s: (X, Y, SW * s),
                      lambda s: (1.0, 1.0, 1.0), EXTREMES),
    "enet-Xy": (ImplicitElasticNetCV(cv=3, l1_ratio="tune"), "alpha_", lambda s: (X * s, Y * s, None),
                lambda s: (s * s, s * s, 1.0), SCALES),
    "enet-fixed-Xy": (ImplicitElasticNetCV(cv=3, l1_ratio=0.5), "alpha_",
                      lambda s: (X * s, Y * s, None), lambda s: (s * s, s * s, 1.0), EXTREMES),
    "enet-weights": (ImplicitElasticNetCV(cv=3, l1_ratio="tune"), "alpha_", lambda s: (X, Y, SW * s),
                     lambda s: (1.0, 1.0, 1.0), EXTREMES),
    "ridge-X": (ImplicitRidgeCV(cv=3), "alpha_", lambda s: (X * s, Y, None),
                lambda s: (s * s, 1.0, 1 / s), SCALES),
    "ridge-y": (ImplicitRidgeCV(cv=3), "alpha_", lambda s: (X, Y * s, None),
                lambda s: (1.0, s * s, s), EXTREMES),
    "ridge-weights": (ImplicitRidgeCV(cv=3), "alpha_", lambda s: (X, Y, SW * s),
                      lambda s: (s, 1.0, 1.0), EXTREMES),
    "ridge-adaptive-X": (ImplicitRidgeCV(cv=3, alpha_per_feature=True), "alpha_scale_",
                         lambda s: (X * s, Y, None), lambda s: (s * s, 1.0, 1 / s), EXTREMES),
    "logistic-l2-X": (ImplicitLogisticRegressionCV(cv=3), "C_", lambda s: (XC * s, YC, None),
                      lambda s: (1 / s**2, 1.0, 1 / s), SCALES),
    "logistic-l1-X": (ImplicitLogisticRegressionCV(cv=3, l1_ratio=1.0), "C_",
                      lambda s: (XC * s, YC, None), lambda s: (1 / s, 1.0, 1 / s), SCALES),
    "logistic-l2-weights": (ImplicitLogisticRegressionCV(cv=3), "C_",
                            lambda s: (XC, YC, SW * s), lambda s: (1 / s, 1.0, 1.0), EXTREMES),
    "logistic-enet-weights": (ImplicitLogisticRegressionCV(cv=3, l1_ratio=0.5), "C_",
                              lambda s: (XC, YC, SW * s), lambda s: (1 / s, 1.0, 1.0),
                              EXTREMES),
}


@lru_cache(maxsize=None)
def _fit(name, s):
    est, _, data, _, _ = CASES[name]
    Xs, ys, sw = data(s)
    return clone(est).fit(Xs, ys, sample_weight=sw)


@pytest.mark.parametrize("name, s", [(n, s) for n, c in CASES.items() for s in c[4]])
def test_estimator_scale_invariance(name, s):
    _, hp, _, factors, _ = CASES[name]
    ref, got = _fit(name, 1.0), _fit(name, s)
    f_hp, f_loss, f_coef = factors(s)
    _check_hyper(getattr(got, hp), getattr(ref, hp), f_hp, hp)
    _check_loss(got.cv_loss_, ref.cv_loss_, f_loss)
    _check_coef(got.coef_, ref.coef_, f_coef)
    if hasattr(ref, "l1_ratio_"):
        assert abs(got.l1_ratio_ - ref.l1_ratio_) <= 0.02 * ref.l1_ratio_


# -- HypergradSearchCV ---------------------------------------------------------------------
def _columns(s):
    """Columns alternately multiplied by s and 1 / s (mixed units)."""
    return np.where(np.arange(X.shape[1]) % 2 == 0, s, 1.0 / s)


def _columns_c(s):
    return np.where(np.arange(XC.shape[1]) % 2 == 0, s, 1.0 / s)


CVR = KFold(3, shuffle=True, random_state=0)
CVC = StratifiedKFold(3, shuffle=True, random_state=0)

# name: (estimator, param_bounds, cv, data at scale s -> (X, y), s -> (factor of the tuned
#        hyperparameter, of the CV loss), scales)
SEARCHES = {
    "lasso-y": (Lasso(), {"alpha": "auto"}, CVR, lambda s: (X, Y * s),
                lambda s: (s, s * s), SCALES),
    "lasso-X": (Lasso(), {"alpha": "auto"}, CVR, lambda s: (X * s, Y),
                lambda s: (s, 1.0), EXTREMES),
    "scaled-lasso-columns": (make_pipeline(StandardScaler(), Lasso()), {"lasso__alpha": "auto"},
                             CVR, lambda s: (X * _columns(s), Y), lambda s: (1.0, 1.0),
                             (1e6, 1e12)),
    "enet-Xy": (ElasticNet(l1_ratio=0.5), {"alpha": "auto"}, CVR,
                lambda s: (X * s, Y * s), lambda s: (s * s, s * s), SCALES),
    "ridge-X": (Ridge(), {"alpha": "auto"}, CVR, lambda s: (X * s, Y),
                lambda s: (s * s, 1.0), SCALES),
    "ridge-y": (Ridge(), {"alpha": "auto"}, CVR, lambda s: (X, Y * s),
                lambda s: (1.0, s * s), EXTREMES),
    "scaled-ridge-columns": (make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": "auto"},
                             CVR, lambda s: (X * _columns(s), Y), lambda s: (1.0, 1.0),
                             (1e6, 1e12)),
    "logistic-X": (LogisticRegression(), {"C": "auto"}, CVC, lambda s: (XC * s, YC),
                   lambda s: (1 / s**2, 1.0), SCALES),
    "logistic-l1-X": (LogisticRegression(l1_ratio=1.0, solver="saga"), {"C": "auto"}, CVC,
                      lambda s: (XC * s, YC), lambda s: (1 / s, 1.0), EXTREMES),
    "scaled-logistic-columns": (make_pipeline(StandardScaler(), LogisticRegression()),
                                {"logisticregression__C": "auto"}, CVC,
                                lambda s: (XC * _columns_c(s), YC), lambda s: (1.0, 1.0),
                                (1e6, 1e12)),
}


@lru_cache(maxsize=None)
def _search(name, s):
    est, bounds, cv, data, _, _ = SEARCHES[name]
    Xs, ys = data(s)
    return HypergradSearchCV(clone(est), bounds, cv=cv, refit=False).fit(Xs, ys)


@pytest.mark.parametrize("name, s", [(n, s) for n, c in SEARCHES.items() for s in c[5]])
def test_search_scale_invariance(name, s):
    _, bounds, _, _, factors, _ = SEARCHES[name]
    ref, got = _search(name, 1.0), _search(name, s)
    f_hp, f_loss = factors(s)
    (key,) = bounds
    _check_hyper(got.best_params_[key], ref.best_params_[key], f_hp, key)
    # best_score_ is the negated CV loss (neg MSE, neg log-loss).
    _check_loss(-got.best_score_, -ref.best_score_, f_loss)


# -- the issue's cases (default folds) -------------------------------------------------------
@lru_cache(maxsize=None)
def _logistic_default(s):
    return ImplicitLogisticRegressionCV().fit(XC * s, YC)


@pytest.mark.parametrize("s", SCALES)
def test_issue_logistic_default(s):
    ref, got = _logistic_default(1.0), _logistic_default(s)
    _check_loss(got.cv_loss_, ref.cv_loss_, 1.0)
    _check_hyper(got.C_, ref.C_, 1 / s**2, "C_")
    _check_coef(got.coef_, ref.coef_, 1 / s)
    # Not the do-nothing model: clearly below the log-loss of the class frequencies.
    p = YC.mean()
    assert got.cv_loss_ < 0.8 * -(p * np.log(p) + (1 - p) * np.log(1 - p))


def test_issue_ridge_tiny_X():
    ref = ImplicitRidgeCV().fit(X, Y)
    got = ImplicitRidgeCV().fit(X * 1e-12, Y)
    assert got.cv_loss_ < np.var(Y)
    _check_loss(got.cv_loss_, ref.cv_loss_, 1.0)
    _check_hyper(got.alpha_, ref.alpha_, 1e-24, "alpha_")


def test_ridge_constant_X_has_a_unit():
    """No variation in X: every alpha gives coef_ = 0 (the bounds take the unit 1.0, no
    division by a zero scale)."""
    Xz = np.ones((60, 3))
    with warnings.catch_warnings():
        # (a flat CV loss: the outer loop may say so; not what is checked here)
        warnings.simplefilter("ignore", UserWarning)
        reg = ImplicitRidgeCV(cv=3).fit(Xz, Y[:60])
    assert np.all(reg.coef_ == 0)
    assert 0 < reg.alpha_ < np.inf
    np.testing.assert_allclose(reg.intercept_, Y[:60].mean())


# -- TaskDrivenDictionaryLearning ------------------------------------------------------------
@lru_cache(maxsize=None)
def _dictionary(s):
    est = TaskDrivenDictionaryLearning(8, alpha=0.5 * s, C=1.0 / s**2, max_iter=5, cv=3,
                                       tune_alpha=True, tune_C=True, max_outer_iter=3,
                                       random_state=0)
    return est.fit(XC * s, YC)


@pytest.mark.parametrize("s", EXTREMES)
def test_dictionary_learning_scale_invariance(s):
    ref, got = _dictionary(1.0), _dictionary(s)
    _check_hyper(got.alpha_, ref.alpha_, s, "alpha_")
    _check_hyper(got.C_, ref.C_, 1 / s**2, "C_")
    _check_loss(got.tuning_result_.best_loss, ref.tuning_result_.best_loss, 1.0)
    _check_loss(got.cv_val_loss_.min(), ref.cv_val_loss_.min(), 1.0)
    assert got.n_supervised_iter_ == ref.n_supervised_iter_
    _check_coef(got.components_, ref.components_, 1.0)
    _check_coef(got.coef_, ref.coef_, 1 / s)


# -- mixed column units (not an equivalence: the inner solves must still converge) ------------
@pytest.mark.parametrize("est, data", [
    (ImplicitLassoCV(cv=3), "regression"),
    (ImplicitRidgeCV(cv=3), "regression"),
    (ImplicitLogisticRegressionCV(cv=3), "classification"),
    (ImplicitLogisticRegressionCV(cv=3, l1_ratio=1.0), "classification"),
])
def test_mixed_column_units_converge(est, data):
    """Columns at 1e-12 and 1e12 side by side: the inner solvers work in standardized
    coordinates (preconditioned), so every solve converges and nothing warns."""
    A, b = (X, Y) if data == "regression" else (XC, YC)
    A = A * np.where(np.arange(A.shape[1]) % 2 == 0, 1e-12, 1e12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.filterwarnings("error", message=".*inner solve.*")
        m = clone(est).fit(A, b)
    assert np.all(m.history_["converged"])
    assert np.isfinite(m.cv_loss_)


# -- sparse input: the same units as dense ------------------------------------------------------
def test_sparse_column_units_and_hypergradient():
    """Column scales and the l2 unit of C are the same for sparse and dense X, and the
    hypergradient on sparse folds (kept sparse: COO in the kernel) is scale-free."""
    import scipy.sparse as sp

    from skimplicit.tuning import FoldData
    from skimplicit.linear_model._logistic_problem import LogisticCVProblem
    from skimplicit.solvers._host_logistic import c_ridge, column_scales, one_hot

    A = sp.random(600, 200, density=0.02, random_state=0, format="csr")
    b = (np.asarray(A[:, :5].sum(axis=1)).ravel() + 0.05 * np.random.RandomState(0).randn(600)
         > 0.02).astype(int)
    w = np.random.RandomState(2).uniform(0.5, 2, 600)
    np.testing.assert_allclose(column_scales(A, w, True), column_scales(A.toarray(), w, True),
                               rtol=1e-10)
    Yb = one_hot(b, 2)
    np.testing.assert_allclose(c_ridge(A, Yb, w, True), c_ridge(A.toarray(), Yb, w, True),
                               rtol=1e-10)

    def evaluate(s):
        folds = [FoldData(A[tr] * s, b[tr], w[tr], A[te] * s, b[te], w[te])
                 for tr, te in StratifiedKFold(3).split(np.zeros(600), b)]
        problem = LogisticCVProblem(folds, n_classes=2, l1_ratio=0.0, tol=1e-8)
        assert sp.issparse(problem.X[0])  # the sparse kernel path
        C = 30.0 * problem.c_ridge
        ev = problem.evaluate({"C": C})
        return ev.loss, ev.grad["C"] * C

    (l1, g1), (l2, g2) = evaluate(1.0), evaluate(1e9)
    assert abs(l2 / l1 - 1) <= 1e-8
    assert abs(g2 - g1) <= 1e-6 * abs(g1)
