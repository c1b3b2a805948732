"""TaskDrivenDictionaryLearning: codes, implicit gradients, estimator behaviour.

All tests share one data shape (50 x 10, 5 atoms: padded to 64 x 16 x 8) so that the
jitted kernels compile once per process.
"""

import pickle

import jax
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.decomposition import sparse_encode
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import ElasticNet, Lasso
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skimplicit.decomposition import TaskDrivenDictionaryLearning
from skimplicit.decomposition._dict_learning import _encode_rows
from skimplicit.decomposition._kernels import cv_value_and_grad, task_value_and_grad
from skimplicit.model_selection import TuningResult

N, P, K = 50, 10, 5


@pytest.fixture
def x64():
    """64-bit JAX types for one test (scoped; nothing flips the global configuration)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=N, n_features=P, n_informative=4, random_state=0)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def data3():
    X, y = make_classification(n_samples=N, n_features=P, n_informative=4, n_classes=3,
                               n_clusters_per_class=1, random_state=1)
    return StandardScaler().fit_transform(X), y


def _dictionary(seed=0):
    rng = np.random.RandomState(seed)
    D = rng.randn(K, P)
    return D / np.linalg.norm(D, axis=1, keepdims=True)


# --------------------------------------------------------------------------------------
# Codes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_codes_match_sparse_encode(data, alpha):
    X, _ = data
    D = _dictionary()
    Z, _, ok = _encode_rows(X, D, alpha, 0.0, 10000)
    assert ok
    # sparse_encode's lasso_cd solves (1/(2p))||x - D^T z||^2 + (alpha/p)||z||_1: the same
    # argmin. Its inner Lasso stops at scikit-learn's default tol=1e-4 (duality gap), so
    # agreement is limited by its accuracy...
    ref = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha, max_iter=10000)
    np.testing.assert_allclose(Z, ref, atol=1e-6)
    assert np.array_equal(Z != 0, ref != 0)
    # ... and to machine precision with the same Lasso solved tightly.
    tight = Lasso(alpha=alpha / P, fit_intercept=False, tol=1e-14, max_iter=100000)
    ref = np.array([tight.fit(D.T, x).coef_ for x in X])
    np.testing.assert_allclose(Z, ref, atol=1e-9)


def test_codes_with_ridge_term_match_elastic_net(data):
    X, _ = data
    D = _dictionary(1)
    alpha, l2 = 0.3, 0.5
    Z, _, ok = _encode_rows(X, D, alpha, l2, 10000)
    assert ok
    # 1/2||x - D^T z||^2 + alpha||z||_1 + l2/2||z||^2 is ElasticNet on p rows with
    # a = (alpha + l2) / p and l1_ratio = alpha / (alpha + l2).
    enet = ElasticNet(alpha=(alpha + l2) / P, l1_ratio=alpha / (alpha + l2),
                      fit_intercept=False, tol=1e-14, max_iter=100000)
    ref = np.array([enet.fit(D.T, x).coef_ for x in X])
    np.testing.assert_allclose(Z, ref, atol=1e-9)


def test_transform_is_sparse_encode_of_the_dictionary(data):
    X, y = data
    D = _dictionary()
    est = TaskDrivenDictionaryLearning(K, alpha=0.5, dict_init=D, max_iter=0, cv=None,
                                       transform_alpha=0.2).fit(X, y)
    np.testing.assert_allclose(est.components_, D, rtol=1e-15)  # no supervised iteration
    ref = sparse_encode(X, D, algorithm="lasso_cd", alpha=0.2, max_iter=10000)
    np.testing.assert_allclose(est.transform(X), ref, atol=1e-6)


# --------------------------------------------------------------------------------------
# Implicit gradients against central finite differences
# --------------------------------------------------------------------------------------


def _targets(y):
    classes = np.unique(y)
    if classes.size == 2:
        return y[:, None].astype(float)
    return (y[:, None] == classes).astype(float)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("multiclass", [False, True])
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_dictionary_gradient_matches_finite_differences(data, data3, multiclass, l2):
    X, y = data3 if multiclass else data
    Y = _targets(y)
    rng = np.random.RandomState(0)
    D = _dictionary(2)
    W = rng.randn(K, Y.shape[1])
    b = rng.randn(Y.shape[1])
    sw = np.ones(N)
    sw[:7] = 0.0  # validation rows: no influence
    alpha, C = 0.4, 0.5

    def f(D, W=W, b=b):
        out = task_value_and_grad(D, W, b, X, Y, sw, np.zeros((N, K)), alpha, l2, C, 1e-14,
                                  100000)
        return out

    value, (gD, gW, gb), aux = f(D)
    Z, _, _, viol, ok, n_ridged = aux
    assert int(n_ridged) == 0
    assert bool(ok) and float(viol) <= 1e-14
    assert 0 < np.count_nonzero(Z) < Z.size  # a genuinely sparse problem
    eps = 1e-5
    for seed in range(2):
        E = np.random.RandomState(seed).randn(K, P)
        outs = {t: f(D + t * eps * E) for t in (-2, -1, 1, 2)}
        # the supports do not change within +-2 eps (the derivative is that of one piece)
        for out in outs.values():
            assert np.array_equal(np.asarray(out[2][0]) != 0, np.asarray(Z) != 0)
        v = {t: float(out[0]) for t, out in outs.items()}
        fd = (-v[2] + 8 * v[1] - 8 * v[-1] + v[-2]) / (12 * eps)  # 4th order
        np.testing.assert_allclose(np.sum(np.asarray(gD) * E), fd, rtol=1e-8, atol=1e-12)
    # the classifier's gradient (plain autodiff), checked jointly
    EW, eb = rng.randn(*W.shape), rng.randn(*b.shape)
    fd = (float(f(D, W + eps * EW, b + eps * eb)[0])
          - float(f(D, W - eps * EW, b - eps * eb)[0])) / (2 * eps)
    np.testing.assert_allclose(np.sum(np.asarray(gW) * EW) + np.sum(np.asarray(gb) * eb), fd,
                               rtol=1e-6)


@pytest.mark.usefixtures("x64")
def test_cv_hypergradient_matches_finite_differences(data):
    X, y = data
    Y = _targets(y)
    D = _dictionary(3)
    Kf = 3
    M, V = np.ones((Kf, N)), np.zeros((Kf, N))
    for f in range(Kf):
        M[f, f::Kf], V[f, f::Kf] = 0.0, 1.0
    theta0 = (np.zeros((Kf, K, 1)), np.zeros((Kf, 1)))

    def g(alpha, C):
        return cv_value_and_grad(alpha, C, D, X, Y, M, V, np.zeros((N, K)), theta0, 0.0,
                                 1e-14, 100000)

    loss, _, d_alpha, d_C, aux = g(0.3, 2.0)
    assert bool(aux[4]) and float(aux[2]) < 1e-12  # linear systems and refits converged
    assert int(aux[5]) == 0  # no fallback ridge
    eps = 1e-4

    def fd4(f, x):
        return (-f(x + 2 * eps) + 8 * f(x + eps) - 8 * f(x - eps) + f(x - 2 * eps)) / (12 * eps)

    fd_alpha = fd4(lambda a: float(g(a, 2.0)[0]), 0.3)
    fd_C = fd4(lambda c: float(g(0.3, c)[0]), 2.0)
    np.testing.assert_allclose(float(d_alpha), fd_alpha, rtol=1e-8)
    np.testing.assert_allclose(float(d_C), fd_C, rtol=1e-8)


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------

FAST = dict(n_components=K, alpha=0.3, max_iter=8, init_max_iter=10, random_state=0)


def test_fit_binary(data):
    X, y = data
    est = TaskDrivenDictionaryLearning(cv=None, C=10.0, **FAST).fit(X, y)
    assert est.components_.shape == (K, P) and est.coef_.shape == (1, K)
    assert np.all(np.linalg.norm(est.components_, axis=1) <= 1 + 1e-12)
    # the supervised phase decreases its objective monotonically (Armijo steps)...
    curve = np.asarray(est.loss_curve_)
    assert est.n_supervised_iter_ == curve.size - 1 > 0
    assert np.all(np.diff(curve) < 0)
    # ... and improves on the initialization's training fit
    init = TaskDrivenDictionaryLearning(cv=None, C=10.0, **{**FAST, "max_iter": 0}).fit(X, y)
    assert est.score(X, y) >= init.score(X, y)
    assert est.n_iter_ == init.n_iter_ + est.n_supervised_iter_
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.log(proba), est.predict_log_proba(X), rtol=1e-10)
    np.testing.assert_array_equal(est.predict(X), est.classes_[proba.argmax(axis=1)])
    assert est.transform(X).shape == (N, K)


def test_fit_multiclass_with_string_labels(data3):
    X, y = data3
    labels = np.array(["a", "b", "c"])[y]
    est = TaskDrivenDictionaryLearning(cv=3, **FAST).fit(X, labels)
    assert est.coef_.shape == (3, K) and list(est.classes_) == ["a", "b", "c"]
    assert est.decision_function(X).shape == (N, 3)
    assert est.score(X, labels) > 0.6
    # early stopping: the final fit runs the iteration count minimizing the CV curve
    assert est.cv_val_loss_.shape == (FAST["max_iter"] + 1,)
    assert est.n_supervised_iter_ == int(np.argmin(est.cv_val_loss_))


def test_deterministic_under_random_state(data):
    X, y = data
    a = TaskDrivenDictionaryLearning(cv=3, **FAST).fit(X, y)
    b = TaskDrivenDictionaryLearning(cv=3, **FAST).fit(X, y)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_tune_alpha_and_C_with_the_shared_outer_loop(data):
    X, y = data
    est = TaskDrivenDictionaryLearning(cv=3, tune_alpha=True, tune_C=True, max_outer_iter=4,
                                       **FAST).fit(X, y)
    assert isinstance(est.tuning_result_, TuningResult)
    h = est.history_
    assert {"alpha", "C", "grad_alpha", "grad_C", "loss"} <= set(h)
    # the coarse path contains the user's (alpha, C); the returned point is the best seen
    start = np.flatnonzero((h["phase"] == "path") & np.isclose(h["alpha"], FAST["alpha"])
                           & np.isclose(h["C"], 1.0))
    assert start.size == 1
    assert np.sum(h["phase"] != "path") > 1  # hypergradient steps were taken
    assert est.tuning_result_.best_loss <= h["loss"][start[0]]
    assert est.tuning_result_.best_loss == h["loss"].min()
    assert est.alpha_ == est.tuning_result_.best_params["alpha"]
    assert est.C_ == est.tuning_result_.best_params["C"]


def test_pipeline_pickle_and_feature_names(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    cols = [f"g{j}" for j in range(P)]
    Xdf = pd.DataFrame(X, columns=cols)
    pipe = make_pipeline(StandardScaler().set_output(transform="pandas"),
                         TaskDrivenDictionaryLearning(cv=None, **FAST))
    pipe.fit(Xdf, y)
    est = pipe[-1]
    assert list(est.feature_names_in_) == cols
    names = est.get_feature_names_out()
    assert list(names) == [f"taskdrivendictionarylearning{j}" for j in range(K)]
    clone = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(clone.predict_proba(Xdf), pipe.predict_proba(Xdf))
    est.set_output(transform="pandas")
    out = est.transform(Xdf)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)


def test_float32_input(data):
    X, y = data
    a = TaskDrivenDictionaryLearning(cv=None, **FAST).fit(X.astype(np.float32), y)
    b = TaskDrivenDictionaryLearning(cv=None, **FAST).fit(X.astype(np.float32).astype(float), y)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.transform(X.astype(np.float32)).dtype == np.float64


def test_bad_input(data):
    X, y = data
    est = TaskDrivenDictionaryLearning(cv=None, **FAST)
    with pytest.raises(NotFittedError):
        est.predict(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        est.fit(X, np.zeros(N))
    with pytest.raises(ValueError, match="Unknown label type"):
        est.fit(X, np.linspace(0, 1, N))
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(Xn, y)
    with pytest.raises(ValueError, match="dict_init must have shape"):
        TaskDrivenDictionaryLearning(cv=None, dict_init=np.ones((K + 1, P)),
                                     **FAST).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        TaskDrivenDictionaryLearning(alpha=-1.0).fit(X, y)
    est.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :-1])


def test_jax_precision_not_flipped(data):
    X, y = data
    TaskDrivenDictionaryLearning(cv=None, **FAST).fit(X, y)
    assert not jax.config.jax_enable_x64


# scikit-learn's estimator contract, no expected failure. Cheap settings, as scikit-learn's
# own INIT_PARAMS: a small alpha (the check data are 2-5 features), 3 iterations.
@parametrize_with_checks([
    TaskDrivenDictionaryLearning(alpha=0.05, max_iter=3, init_max_iter=3, cv=None,
                                 random_state=0),
])
def test_sklearn_contract(estimator, check):
    check(estimator)
