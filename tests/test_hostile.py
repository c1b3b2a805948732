"""Hostile input (../shared/notes/hostile.md) for every estimator and HypergradSearchCV.

Each case ends in the right answer, a scikit-learn-style ``ValueError`` naming the cause,
or a documented warning: never a silent wrong answer, a hang, a JAX traceback or a
changed global state. The reference answer is the same fit on clean data, or a
scikit-learn grid on the same folds (:func:`grid_loss`). The "scale" family of the
catalogue is in ``tests/test_scale_invariance.py``.

The estimators (``ESTIMATORS``): ImplicitLassoCV, ImplicitElasticNetCV, ImplicitRidgeCV,
ImplicitLogisticRegressionCV, TaskDrivenDictionaryLearning, and HypergradSearchCV over
``Pipeline(StandardScaler(), Lasso())`` and over ``LogisticRegression()``. The input
arrays are read-only: an estimator that writes into its input fails.
"""

import os
import pickle
import warnings

import jax
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    Lasso,
    LassoCV,
    LogisticRegression,
    Ridge,
)
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

from skimplicit.decomposition import TaskDrivenDictionaryLearning
from skimplicit.linear_model import (
    ImplicitElasticNetCV,
    ImplicitLassoCV,
    ImplicitLogisticRegressionCV,
    ImplicitRidgeCV,
)
from skimplicit.model_selection import HypergradSearchCV
from skimplicit.utils import check_fold_weights, check_sample_weight, nothing_to_tune


def _frozen(a):
    a = np.asarray(a)
    a.flags.writeable = False
    return a


# The data of issue 14.
_rng = np.random.RandomState(0)
X = _frozen(_rng.randn(200, 50))
y = _frozen(X[:, :10] @ _rng.uniform(1, 3, 10) + 5 * _rng.randn(200))
Xc = _frozen(_rng.randn(200, 20))
yc = _frozen(Xc[:, 0] + 0.5 * _rng.randn(200) > 0)

DICTL = dict(n_components=4, alpha=0.3, max_iter=3, init_max_iter=5, max_outer_iter=3,
             random_state=0, cv=3, tune_C=True)
# name -> (factory(**final_step_params), is_classifier)
ESTIMATORS = {
    "lasso": (lambda **kw: ImplicitLassoCV(cv=3, **kw), False),
    "enet": (lambda **kw: ImplicitElasticNetCV(cv=3, l1_ratio="tune", **kw), False),
    "ridge": (lambda **kw: ImplicitRidgeCV(cv=3, **kw), False),
    "search_lasso": (lambda **kw: HypergradSearchCV(
        make_pipeline(StandardScaler(), Lasso(**kw)), {"lasso__alpha": "auto"}, cv=3), False),
    "logistic": (lambda **kw: ImplicitLogisticRegressionCV(cv=3, **kw), True),
    "search_logistic": (lambda **kw: HypergradSearchCV(
        LogisticRegression(**kw), {"C": (1e-3, 1e3)}, cv=3), True),
    "dictl": (lambda **kw: TaskDrivenDictionaryLearning(**{**DICTL, **kw}), True),
}
REGRESSORS = [n for n, (_, c) in ESTIMATORS.items() if not c]
CLASSIFIERS = [n for n, (_, c) in ESTIMATORS.items() if c]
WEIGHTED = [n for n in ESTIMATORS if n != "dictl"]  # dictl's fit takes no sample_weight
HYPERGRAD = [n for n in WEIGHTED]  # the tuners that follow a hypergradient of a GLM


def make(name, **kw):
    return ESTIMATORS[name][0](**kw)


def data(name):
    return (Xc, yc) if ESTIMATORS[name][1] else (X, y)


def fit(name, est, X_, y_, sample_weight=None):
    """Fit with ``sample_weight`` routed as each entry point expects it."""
    if sample_weight is None:
        return est.fit(X_, y_)
    if name == "search_lasso":  # weight the scaler too: zero weights = dropped samples
        return est.fit(X_, y_, standardscaler__sample_weight=sample_weight,
                       lasso__sample_weight=sample_weight)
    return est.fit(X_, y_, sample_weight=sample_weight)


def penalty(est):
    """The chosen regularization (``alpha_``, ``C_`` or the search's best value)."""
    if hasattr(est, "best_params_"):
        (value,) = est.best_params_.values()
        return value
    return est.alpha_ if hasattr(est, "alpha_") else est.C_


def final(est):
    return est.best_estimator_[-1] if hasattr(est, "best_estimator_") and hasattr(
        est.best_estimator_, "steps") else getattr(est, "best_estimator_", est)


def cv_loss(est):
    return -est.best_score_ if hasattr(est, "best_score_") else est.cv_loss_


def output(est, X_):
    """What the model outputs: probabilities for classifiers, predictions otherwise."""
    return est.predict_proba(X_) if hasattr(est, "predict_proba") else est.predict(X_)


def grid_loss(name, X_, y_, cv=3):
    """The best mean CV loss of a scikit-learn grid on the same folds (``KFold(3)`` /
    ``StratifiedKFold(3)``, as ``cv=3`` gives): the reference of a search.

    The grid spans the estimator's search interval (the l1 family: 30 points over
    [1e-4, 1] alpha_max; ridge: 5 points a decade, logistic: 3, over an interval at least
    as wide as the search's) with tight inner tolerances (1e-7 for the Lasso, 1e-8 on the gradient
    for the logistic regression). A hypergradient search ends at a local minimum of the
    same CV loss within ``outer_tol`` (1e-4, relative), so on these curves (one basin)
    it does at least as well as the best grid point, up to the grid's inner tolerance
    and the outer tolerance: callers allow 0.5 %.
    """
    if name in ("logistic", "search_logistic"):
        # converged (an unconverged fit at a large C is regularized by early stopping)
        est = LogisticRegression(tol=1e-8, max_iter=10_000)
        grid = {"C": np.geomspace(1e-3, 1e3, 19)}
        scoring, folds = "neg_log_loss", StratifiedKFold(cv)
    elif name == "ridge":
        est, grid = Ridge(), {"alpha": np.geomspace(1e-4, 1e6, 51)}
        scoring, folds = "neg_mean_squared_error", KFold(cv)
    else:
        Xs = StandardScaler().fit_transform(X_) if name == "search_lasso" else X_
        Xs = Xs - Xs.mean(axis=0)
        amax = np.max(np.abs(Xs.T @ (y_ - y_.mean()))) / len(y_)
        est = Lasso(tol=1e-7, max_iter=20_000)
        grid = {"alpha": amax * np.geomspace(1e-4, 1, 30)}
        if name == "search_lasso":
            est = make_pipeline(StandardScaler(), est)
            grid = {"lasso__alpha": grid["alpha"]}
        scoring, folds = "neg_mean_squared_error", KFold(cv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return -GridSearchCV(est, grid, cv=folds, scoring=scoring).fit(X_, y_).best_score_


def assert_no_warnings(record):
    assert not record, [f"{w.category.__name__}: {w.message}" for w in record]


# =======================================================================================
# The numbered cases of issue 14
# =======================================================================================
@pytest.mark.parametrize("name", WEIGHTED)
@pytest.mark.parametrize("bad", [-1.0, -100.0])
def test_issue14_negative_weights_rejected(name, bad):
    """1. Negative weights: a ValueError naming the weights (was: a NumPy sqrt warning
    and a fit 2-5x worse, or a wrong reason such as non-finite bounds)."""
    X_, y_ = data(name)
    sw = np.ones(len(y_))
    sw[:5] = bad
    with pytest.raises(ValueError, match=r"sample_weight must be non-negative; got 5 "):
        fit(name, make(name), X_, y_, sw)


@pytest.mark.parametrize("name", WEIGHTED)
@pytest.mark.parametrize("case", ["nan", "inf", "all_zero"])
def test_issue14_nan_inf_zero_weights_rejected(name, case):
    """1. NaN / inf / all-zero weights: the weights named (was: "Bounds ... (nan, nan)",
    "Every evaluation ... failed")."""
    X_, y_ = data(name)
    sw = np.ones(len(y_))
    if case == "all_zero":
        sw[:] = 0.0
        match = "sample_weight is zero for every sample"
    else:
        sw[7] = np.nan if case == "nan" else np.inf
        match = (r"sample_weight must be finite; got 1 NaN or infinite value\(s\) \(the "
                 r"first at index 7")
    with pytest.raises(ValueError, match=match):
        fit(name, make(name), X_, y_, sw)


@pytest.mark.parametrize("name", ["logistic", "search_logistic", "dictl"])
def test_issue14_no_deprecation_warning(name):
    """2. No JAX DeprecationWarning ("Implicit conversion of an array to a dtype") from a
    logistic fit: it passes with every warning as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = make(name).fit(Xc, yc)
    acc = np.mean(est.predict(Xc) == yc)  # (score(): LogisticRegressionCV's scoring)
    assert acc > max(np.mean(yc), 1 - np.mean(yc))  # better than a constant


def test_issue14_constant_y_same_answer_everywhere():
    """3. Constant y: ImplicitLassoCV and HypergradSearchCV(Pipeline(..., Lasso())) give
    scikit-learn's answer (LassoCV, GridSearchCV(Lasso())): the constant model, without
    warnings; the chosen alpha is the upper bound (every alpha fits the same model)."""
    yk = np.full(200, 3.5)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est = ImplicitLassoCV(cv=3, bounds=(1e-3, 10.0)).fit(X, yk)
        search = HypergradSearchCV(make_pipeline(StandardScaler(), Lasso()),
                                   {"lasso__alpha": (1e-3, 10.0)}, cv=3).fit(X, yk)
    assert_no_warnings(record)
    ref = LassoCV(cv=3).fit(X, yk)
    for model in (est, search):
        assert penalty(model) == 10.0
        assert np.all(final(model).coef_ == 0) and final(model).intercept_ == 3.5
        np.testing.assert_array_equal(model.predict(X[:5]), ref.predict(X[:5]))
    assert est.cv_loss_ == 0.0 and search.best_score_ == 0.0
    assert search.cv_results_["params"] == [{"lasso__alpha": 10.0}]


# =======================================================================================
# weights
# =======================================================================================
@pytest.mark.parametrize("name", WEIGHTED)
def test_fold_weights_summing_to_zero(name):
    X_, y_ = data(name)
    n = len(y_)
    sw = np.ones(n)
    sw[: n // 3] = 0.0  # a test fold of KFold(3) / a training set of the splits below
    first, rest = np.arange(n // 3), np.arange(n // 3, n)
    est = make(name).set_params(cv=[(rest, first), (first, rest)])
    # (a search weights its validation scores with a bare ``sample_weight`` only, as
    # GridSearchCV: with lasso__sample_weight, the test parts are unweighted)
    match = ("sample_weight of the training part of CV fold 1" if name == "search_lasso"
             else "sample_weight of the test part of CV fold 0 sums to zero")
    with pytest.raises(ValueError, match=match):
        fit(name, est, X_, y_, sw)
    est.set_params(cv=[(first, rest), (rest, first)])
    with pytest.raises(ValueError, match="sample_weight of the training part of CV fold 0"):
        fit(name, est, X_, y_, sw)


@pytest.mark.parametrize("name", WEIGHTED)
def test_zero_weights_are_dropped_samples(name):
    """Samples of zero weight count for nothing: the same fit as without them (on the
    corresponding folds)."""
    X_, y_ = data(name)
    n = len(y_)
    zero = np.zeros(n, bool)
    zero[::7] = True
    sw = np.where(zero, 0.0, 1.0)
    parts = np.array_split(np.arange(n), 3)
    cv_full = [(np.setdiff1d(np.arange(n), p), p) for p in parts]
    keep = np.flatnonzero(~zero)
    new = np.full(n, -1)
    new[keep] = np.arange(keep.size)
    cv_kept = [(new[tr[~zero[tr]]], new[te[~zero[te]]]) for tr, te in cv_full]
    if name == "search_lasso":
        # The validation scores of a search are weighted by a bare sample_weight only (as
        # in GridSearchCV), i.e. for a bare final step.
        def est():
            return HypergradSearchCV(Lasso(), {"alpha": "auto"})
    else:
        def est():
            return make(name)
    weighted = fit(name if name != "search_lasso" else "search_bare", est().set_params(
        cv=cv_full), X_, y_, sw)
    dropped = est().set_params(cv=cv_kept).fit(X_[keep], y_[keep])
    np.testing.assert_allclose(penalty(weighted), penalty(dropped), rtol=1e-6)
    np.testing.assert_allclose(output(weighted, X_), output(dropped, X_), rtol=1e-6,
                               atol=1e-8)


@pytest.mark.parametrize("name", WEIGHTED)
def test_equal_weights_are_no_weights(name):
    """All weights equal: the model of no weights (for the weighted-sum objectives,
    Ridge's and LogisticRegression's, the penalty scales with the weight)."""
    X_, y_ = data(name)
    plain = make(name).fit(X_, y_)
    weighted = fit(name, make(name), X_, y_, np.full(len(y_), 2.0))
    np.testing.assert_allclose(output(weighted, X_), output(plain, X_), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(cv_loss(weighted), cv_loss(plain), rtol=1e-5)


def test_weight_checks_unit():
    np.testing.assert_array_equal(check_sample_weight(2, 3), [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        check_sample_weight(np.ones(4), 3)
    with pytest.raises(ValueError, match="real numbers"):
        check_sample_weight(np.array(["a", "b", "c"]), 3)
    with pytest.raises(ValueError, match="real numbers"):
        check_sample_weight(np.ones(3) * 1j, 3)
    check_fold_weights([(np.arange(2), np.arange(2, 4))], np.ones(4))
    with pytest.raises(ValueError, match="CV fold 1"):
        check_fold_weights([(np.arange(2), np.arange(2, 4)), (np.arange(2, 4), np.arange(2))],
                           np.ones(4), np.array([1.0, 0.0, 0.0, 1.0]) * [0, 0, 1, 1])
    assert nothing_to_tune(sp.csr_matrix(np.ones((3, 2))), np.arange(3.0))
    assert not nothing_to_tune(sp.csr_matrix(np.eye(3)), np.arange(3.0))


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_nothing_to_tune_on_rows_is_the_question_for_those_rows(fit_intercept):
    """``rows=``: the answer for ``X[rows]`` without its copy, weights and all."""
    rng = np.random.RandomState(0)
    X = rng.randn(12, 3)
    X[:6] = X[0]  # rows 0-5 identical: nothing to tune on them (with an intercept)
    y = rng.randn(12)
    y[6:9] = 1.5
    sw = np.ones(12)
    sw[[0, 7]] = 0.0
    cases = [np.arange(6), np.arange(6, 9), np.arange(12), np.array([0, 6]),
             np.array([0, 1, 2, 7]), np.array([5]), np.array([1, 8])]
    for rows in cases:
        for w in (None, sw[rows]):
            for Xa in (X, sp.csr_matrix(X)):
                expected = nothing_to_tune(Xa[rows], y[rows], w, fit_intercept=fit_intercept)
                assert nothing_to_tune(Xa, y[rows], w, fit_intercept=fit_intercept,
                                       rows=rows) == expected, (rows, w)
    assert nothing_to_tune(X, y[:6], rows=np.arange(6))
    assert not nothing_to_tune(X, y[:7], rows=np.arange(7))


@pytest.mark.parametrize("name", ["dictl"])
def test_dictl_takes_no_weights(name):
    with pytest.raises(TypeError, match="sample_weight"):
        make(name).fit(Xc, yc, sample_weight=np.ones(len(yc)))


# =======================================================================================
# One fit of each estimator on clean data, with the warnings and global state around it
# =======================================================================================
def _global_state():
    return {
        "x64": bool(jax.config.jax_enable_x64),
        "threads": sorted((d["internal_api"], d["num_threads"]) for d in threadpool_info()),
        "filters": list(warnings.filters),
        "geterr": np.geterr(),
        "sklearn": sklearn.get_config(),
        "environ": dict(os.environ),
    }


@pytest.fixture(scope="module")
def clean_fits():
    """name -> (fitted estimator, recorded warnings, state before, state after)."""
    out = {}
    for name in ESTIMATORS:
        X_, y_ = data(name)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            # (inside the context: its exit would hide a filter the fit leaves behind)
            before = _global_state()
            est = make(name, **({"random_state": 0} if name == "dictl" else {})).fit(X_, y_)
            after = _global_state()
        out[name] = (est, record, before, after)
    return out


@pytest.mark.parametrize("name", ESTIMATORS)
def test_plain_fit_no_warning_and_global_state_unchanged(clean_fits, name):
    est, record, before, after = clean_fits[name]
    assert_no_warnings(record)
    assert before == after


@pytest.mark.parametrize("name", ["lasso", "logistic", "search_lasso"])
def test_user_thread_limit_kept(name):
    """A user's BLAS limit of one thread is still in force after a fit."""
    X_, y_ = data(name)
    with threadpool_limits(limits=1):
        make(name).fit(X_, y_)
        assert all(d["num_threads"] == 1 for d in threadpool_info())


@pytest.mark.parametrize("name", [n for n in HYPERGRAD if n != "enet"])
def test_clean_data_matches_grid(clean_fits, name):
    """The reference: at least as good a CV loss as a scikit-learn grid on the same folds."""
    est = clean_fits[name][0]
    X_, y_ = data(name)
    assert cv_loss(est) <= grid_loss(name, X_, y_) * 1.005


# =======================================================================================
# life cycle
# =======================================================================================
@pytest.mark.parametrize("name", ESTIMATORS)
def test_pickle_and_clone(clean_fits, name):
    est = clean_fits[name][0]
    X_, _ = data(name)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X_), est.predict(X_))
    assert clone(est).get_params().keys() == est.get_params().keys()
    assert not hasattr(clone(est), "n_features_in_")


@pytest.mark.parametrize("name", ESTIMATORS)
def test_refit_on_new_shape_and_same_result_twice(clean_fits, name):
    """Refit the same instance on other shapes, then on the first data again: the first
    result exactly (a fixed random_state where there is one)."""
    est, first = clone(clean_fits[name][0]), clean_fits[name][0]
    X_, y_ = data(name)
    est.fit(X_[:150, :7], y_[:150])
    assert est.n_features_in_ == 7 and est.predict(X_[:3, :7]).shape == (3,)
    est.fit(X_, y_)
    assert penalty(est) == penalty(first)
    np.testing.assert_array_equal(est.predict(X_), first.predict(X_))


@pytest.mark.parametrize("name", ["lasso", "search_logistic"])
def test_n_jobs_2_same_result(name):
    X_, y_ = data(name)
    kw = dict(n_restarts=2, random_state=0)
    one = make(name).set_params(**kw).fit(X_, y_)
    two = make(name).set_params(**kw, n_jobs=2).fit(X_, y_)
    assert penalty(one) == penalty(two)


# =======================================================================================
# design
# =======================================================================================
def _design(case, X_):
    r = np.random.RandomState(3)
    if case == "rank_deficient":  # 50 columns of rank 10 plus noise-free copies
        return X_[:, :10] @ r.randn(10, X_.shape[1])
    if case == "duplicated_columns":
        return np.hstack([X_, X_[:, :5]])
    if case == "constant_columns":
        out = X_.copy()
        out[:, [1, 3]] = 5.0
        return out
    if case == "one_feature":
        return X_[:, :1]
    raise ValueError(case)


@pytest.mark.parametrize("name", HYPERGRAD)
@pytest.mark.parametrize("case", ["rank_deficient", "duplicated_columns", "constant_columns",
                                  "one_feature"])
def test_design(name, case):
    """A hard design: the grid's answer (CV loss) on the same folds, finite outputs."""
    X_, y_ = data(name)
    Xd = _design(case, X_)
    est = make(name).fit(Xd, y_)
    assert np.all(np.isfinite(output(est, Xd)))
    if name != "enet":  # enet tunes l1_ratio too: compared on clean data only
        assert cv_loss(est) <= grid_loss(name, Xd, y_) * 1.005


@pytest.mark.parametrize("name", ESTIMATORS)
def test_all_zero_X_fits_the_constant_model(name):
    """All-zero X: every penalty fits the intercept-only model (LassoCV's answer, without
    warnings); for a classifier, the class frequencies."""
    X_, y_ = data(name)
    Xz = np.zeros_like(X_)
    if name == "dictl":  # no code from a zero X: an error naming the cause
        with pytest.raises(ValueError, match="orthogonal|zero"):
            make(name).fit(Xz, y_)
        return
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est = make(name).fit(Xz, y_)
    assert_no_warnings(record)
    assert np.all(final(est).coef_ == 0)
    if ESTIMATORS[name][1]:
        # The intercept solves mean(p) = mean(y): to the refit's tolerance on that gradient.
        np.testing.assert_allclose(est.predict_proba(X_[:2])[:, 1], np.mean(y_), rtol=0,
                                   atol=final(est).tol)
    else:
        np.testing.assert_allclose(est.predict(X_[:2]), np.mean(y_), rtol=1e-12)


@pytest.mark.parametrize("name", HYPERGRAD)
def test_n_much_smaller_than_p(name):
    r = np.random.RandomState(1)
    Xw = r.randn(20, 2000)
    yw = Xw[:, 0] > 0 if ESTIMATORS[name][1] else 3 * Xw[:, 0] + r.randn(20)
    est = make(name).fit(Xw, yw)
    assert np.all(np.isfinite(output(est, Xw)))
    if name != "enet":
        assert cv_loss(est) <= grid_loss(name, Xw, yw) * 1.005


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fewer_samples_than_folds(name):
    X_, y_ = data(name)
    idx = [0, 1] if not ESTIMATORS[name][1] else [int(np.argmax(y_)), int(np.argmin(y_))]
    with pytest.raises(ValueError, match="n_splits=3|number of samples|members"):
        make(name).fit(X_[idx], y_[idx])


# =======================================================================================
# values
# =======================================================================================
@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_inf_rejected(name, where, value):
    X_, y_ = data(name)
    X_, y_ = X_.copy(), y_.astype(float)
    if where == "X":
        X_[3, 2] = value
    else:
        y_[3] = value
    with pytest.raises(ValueError, match="NaN|infinity"):
        make(name).fit(X_, y_)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_bad_dtypes(name):
    X_, y_ = data(name)
    with pytest.raises(ValueError, match="[Cc]omplex"):
        make(name).fit(X_ + 1j, y_)
    with pytest.raises(ValueError, match="convert|could not|string"):
        make(name).fit(X_.astype(str).astype(object) + "x", y_)


@pytest.mark.parametrize("name", HYPERGRAD)
def test_object_and_float32_same_answer(clean_fits, name):
    """Numbers in an object array: the same fit; float32: the same within its rounding."""
    X_, y_ = data(name)
    ref = clean_fits[name][0]
    obj = make(name).fit(X_.astype(object), y_)
    assert penalty(obj) == penalty(ref)
    f32 = make(name).fit(X_.astype(np.float32), y_)
    np.testing.assert_allclose(penalty(f32), penalty(ref), rtol=1e-5)


@pytest.mark.parametrize("name", [n for n in HYPERGRAD if n != "search_lasso"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_same_as_dense(clean_fits, name, fmt):
    """Sparse X: the same fit as dense X. The cover's points are solved to the inner
    tolerance (not polished to exactness) by two different descents (scikit-learn's sparse
    one, with the intercept, and the dense one on centered data), and the line search's
    model uses the bracket ends' cover values: the descents' points differ by ~1e-6
    relative in alpha (Lasso), far below the outer loop's resolution (a 2 % bracket),
    their validation losses by ~1e-8 and the outputs by ~1e-6 of their scale."""
    X_, y_ = data(name)
    ref = clean_fits[name][0]
    est = make(name).fit(sp.csr_matrix(X_).asformat(fmt), y_)
    if hasattr(ref, "tuning_result_"):
        np.testing.assert_allclose(est.tuning_result_.best_loss,
                                   ref.tuning_result_.best_loss, rtol=1e-7)
    np.testing.assert_allclose(penalty(est), penalty(ref), rtol=1e-5)
    out = output(ref, X_)  # (its small entries move with alpha: atol on the outputs' scale)
    np.testing.assert_allclose(output(est, X_), out, rtol=1e-5,
                               atol=1e-6 * np.max(np.abs(out)))


def test_sparse_through_a_centering_scaler_is_sklearns_error():
    with pytest.raises(ValueError, match="Cannot center sparse matrices"):
        make("search_lasso").fit(sp.csr_matrix(X), y)


# =======================================================================================
# targets
# =======================================================================================
@pytest.mark.parametrize("name", REGRESSORS)
def test_constant_y(name):
    """The constant model (the weighted mean, here with y different on samples of zero
    weight), no warnings, the strongest penalty in the bounds."""
    yk = np.full(200, -2.0)
    yk[:10] = 50.0
    sw = np.ones(200)
    sw[:10] = 0.0
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est = fit(name, make(name), X, yk, sw)
    assert_no_warnings(record)
    assert np.all(final(est).coef_ == 0)
    np.testing.assert_allclose(est.predict(X[:3]), -2.0, rtol=1e-12)
    if name == "search_lasso":
        assert penalty(est) == est.search_space_["lasso__alpha"][1]
    else:
        assert penalty(est) == est.history_["alpha"].max() and est.n_outer_iter_ == 0


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_one_class(name):
    with pytest.raises(ValueError, match="class"):
        make(name).fit(Xc, np.ones(len(yc), bool))


@pytest.mark.parametrize("name", ["logistic", "search_logistic"])
def test_class_missing_from_a_training_fold(name):
    """A class with one sample: the fold whose test part holds it has none to train on.
    LogisticRegressionCV scores such folds, and so does ImplicitLogisticRegressionCV (the
    missing class fitted probability 0, clipped by log_loss; a grid of Cs).
    GridSearchCV(LogisticRegression(), scoring='neg_log_loss') gives them error_score
    (NaN) for every C: HypergradSearchCV raises an error naming the class and the fold."""
    y3 = yc.astype(int)
    y3[5] = 2
    est = make(name).set_params(cv=KFold(3))
    if name == "logistic":
        est.fit(Xc, y3)
        assert np.all(np.isfinite(est.scores_)) and est.tuning_result_.stop_reason == "grid"
        assert np.all(est.scores_[0] < est.scores_[1:].min())  # fold 0 holds the class
        return
    with pytest.raises(ValueError, match=r"Class\(es\) \[2\] have no sample of positive "
                                         r"sample_weight in training fold 0"):
        est.fit(Xc, y3)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_string_labels_same_as_integers(clean_fits, name):
    ref = clean_fits[name][0]
    labels = np.where(yc, "yes", "no")
    est = make(name).fit(Xc, labels)
    assert penalty(est) == penalty(ref)
    np.testing.assert_array_equal(est.predict(Xc) == "yes", ref.predict(Xc))


@pytest.mark.parametrize("name", ["logistic", "search_logistic"])
@pytest.mark.parametrize("case", ["minority_1pct", "three_classes"])
def test_hard_labels(name, case):
    if case == "minority_1pct":
        yl = np.zeros(len(yc), int)
        yl[np.argsort(Xc[:, 0])[-3:]] = 1  # 1.5 %, one per stratified fold
    else:
        yl = np.digitize(Xc[:, 0] + 0.5 * Xc[:, 1], [-0.5, 0.5])
    est = make(name).fit(Xc, yl)
    assert np.all(np.isfinite(est.predict_proba(Xc)))
    assert cv_loss(est) <= grid_loss(name, Xc, yl) * 1.005


@pytest.mark.parametrize("name", REGRESSORS)
def test_string_target_rejected(name):
    with pytest.raises(ValueError):
        make(name).fit(X, np.array(["a", "b"] * 100))


# =======================================================================================
# search space
# =======================================================================================
def _with_bounds(name, bounds):
    if name == "search_lasso":
        return make(name).set_params(param_grid={"lasso__alpha": bounds})
    if name == "search_logistic":
        return make(name).set_params(param_grid={"C": bounds})
    return make(name, bounds=bounds)


@pytest.mark.parametrize("name", HYPERGRAD)
@pytest.mark.parametrize("bounds", [(1.0, 0.1), (-1.0, 1.0), (0.0, 1.0), (np.nan, 1.0),
                                    (1.0, np.inf)])
def test_invalid_bounds(name, bounds):
    X_, y_ = data(name)
    with pytest.raises(ValueError, match="bounds|log-scale"):
        _with_bounds(name, bounds).fit(X_, y_)


@pytest.mark.parametrize("name", ["lasso", "enet", "search_lasso"])
def test_bounds_above_alpha_max(name):
    """Every solution in the user's bounds is zero (a flat CV loss, nothing else to
    search): a clear error naming the bounds to move (issue 13), never the zero model."""
    est = _with_bounds(name, (1e3, 1e4))
    with pytest.raises(ValueError, match="nothing to tune.*(`bounds`|`param_grid`)"):
        est.fit(X, y)


@pytest.mark.parametrize("name", ["lasso", "ridge", "logistic"])
def test_start_outside_the_bounds_is_clipped(name):
    X_, y_ = data(name)
    key = "C_init" if name == "logistic" else "alpha_init"
    est = make(name, bounds=(1e-2, 1.0)).set_params(**{key: 1e3}).fit(X_, y_)
    assert 1e-2 <= penalty(est) <= 1.0


@pytest.mark.parametrize("name", ESTIMATORS)
def test_max_outer_iter(name):
    """0 is not a valid value (the constraint names it); 1: one step after the path."""
    X_, y_ = data(name)
    with pytest.raises(ValueError, match="max_outer_iter"):
        make(name).set_params(max_outer_iter=0).fit(X_, y_)
    if name == "dictl":
        return
    est = make(name).set_params(max_outer_iter=1).fit(X_, y_)
    n_iter = est.tuning_result_.n_iter
    assert 1 <= n_iter <= 2 and np.all(np.isfinite(output(est, X_)))


@pytest.mark.parametrize("name", HYPERGRAD)
def test_max_time_returns_best_so_far(name):
    X_, y_ = data(name)
    est = make(name).set_params(max_time=1e-3).fit(X_, y_)
    result = est.tuning_result_
    assert result.stop_reason == "max_time"
    assert penalty(est) == result.best_params[next(iter(result.best_params))]
    assert result.best_loss == min(r["evaluation"].loss for r in result.records)
    assert np.all(np.isfinite(output(est, X_)))


# =======================================================================================
# inner solver
# =======================================================================================
@pytest.mark.parametrize("name", ["lasso", "enet", "search_lasso", "logistic",
                                  "search_logistic"])
def test_max_iter_1_warns_no_garbage(name):
    X_, y_ = data(name)
    with pytest.warns(ConvergenceWarning):
        est = make(name, max_iter=1).fit(X_, y_)
    assert np.all(np.isfinite(output(est, X_)))
    assert np.all(np.isfinite(final(est).coef_))


@pytest.mark.parametrize("name", ["lasso", "enet", "search_lasso", "logistic",
                                  "search_logistic"])
def test_tol_1e_16(clean_fits, name):
    """An unreachable tolerance: the solution anyway (a ConvergenceWarning at most)."""
    X_, y_ = data(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = make(name, tol=1e-16).fit(X_, y_)
    np.testing.assert_allclose(cv_loss(est), cv_loss(clean_fits[name][0]), rtol=1e-3)


@pytest.mark.parametrize("name", ["logistic", "search_logistic"])
def test_nearly_separable(name):
    ys = Xc[:, 0] + 0.01 * np.random.RandomState(2).randn(len(yc)) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a bound warning is allowed
        est = make(name).fit(Xc, ys)
    proba = est.predict_proba(Xc)
    assert np.all(np.isfinite(proba)) and np.mean(est.predict(Xc) == ys) > 0.95
