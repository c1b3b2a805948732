"""The JAX path (``backend="jax"``) of ImplicitLogisticRegressionCV equals its host path.

Run on the CPU backend (CI): the same ``C`` within 2 % in log scale, the same CV loss
(1e-3 relative) and coefficients; the device problem's hypergradient against central
finite differences of its own loss; float32 input; JAX arrays as input; the settings the
device path does not implement fall back to the host with a warning.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, make_classification
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from skimplicit.linear_model import ImplicitLogisticRegressionCV
from skimplicit.linear_model._device_logistic import DeviceLogisticProblem
from skimplicit.linear_model._logistic_problem import LogisticCVProblem, encode_folds
from skimplicit.tuning import split_folds


def _breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16, y[:300]


def _classification():
    return make_classification(300, 20, n_informative=5, random_state=0)


CASES = [
    (_breast_cancer, {}),  # binary, l2
    (_digits, {}),  # 10 classes, l2 (nearly separable: C up to 1e4 c_scale)
    (_iris, {"l1_ratios": (1.0,), "solver": "saga"}),  # 3 classes, l1
    (_classification, {"l1_ratios": (1.0,), "solver": "saga"}),  # binary, l1
]


@pytest.mark.parametrize("data, kwargs", CASES,
                         ids=["breast-cancer-l2", "digits-l2", "iris-l1", "classification-l1"])
def test_jax_path_equals_host_path(data, kwargs):
    X, y = data()
    host = ImplicitLogisticRegressionCV(backend="host", **kwargs).fit(X, y)
    dev = ImplicitLogisticRegressionCV(backend="jax", **kwargs).fit(X, y)
    # The same hyperparameters within 2 % in log scale (measured: 1e-6 to 4e-5 apart, 1.6e-4
    # on the digits).
    assert abs(np.log(dev.C_ / host.C_)) <= 0.02
    np.testing.assert_allclose(dev.cv_loss_, host.cv_loss_, rtol=1e-3)
    scale = np.max(np.abs(host.coef_))
    assert np.max(np.abs(dev.coef_ - host.coef_)) <= 1e-3 * scale
    assert dev.coefs_paths_.shape[-2:] == host.coefs_paths_.shape[-2:]
    for pred in (dev.predict(X), dev.predict_proba(X)):
        assert type(pred) is np.ndarray


def _folds(X, y, sw=None, n_splits=3):
    sw = np.ones(len(y)) if sw is None else sw
    splits = list(StratifiedKFold(n_splits, shuffle=True, random_state=0).split(X, y))
    return encode_folds(split_folds(X, y, sw, splits))


def _fd(f, x, h):
    """4th-order central differences."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


@pytest.mark.parametrize("rho", [0.0, 1.0], ids=["l2", "l1"])
def test_device_hypergradient_matches_finite_differences(rho):
    """Exact inner solves (Newton to rounding; l1: FISTA then the support polish):
    converged central differences in log C (the same at two step sizes) agree with the
    implicit hypergradient to 1e-6 relative (weighted folds)."""
    X, y = _classification()
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    folds, classes = _folds(X, y, sw)
    prob = DeviceLogisticProblem(folds, n_classes=classes.size, l1_ratio=rho, tol=1e-12)
    C = 0.4
    ev = prob.evaluate({"C": C})
    assert ev.converged and all(ev.info["exact"])

    def f(logC):
        return prob.evaluate({"C": np.exp(logC)}, with_grad=False).loss

    fds = [_fd(f, np.log(C), h) for h in (1e-3, 1e-3 / 3)]
    np.testing.assert_allclose(fds[0], fds[1], rtol=1e-6)
    np.testing.assert_allclose(ev.grad["C"] * C, fds[1], rtol=1e-6)


@pytest.mark.parametrize("rho", [0.0, 1.0], ids=["l2", "l1"])
def test_device_evaluation_equals_host_evaluation(rho):
    """The same search space, losses and hypergradients (same units) as the host problem,
    multinomial."""
    folds, classes = _folds(*_iris())
    kw = dict(n_classes=classes.size, l1_ratio=rho, tol=1e-10)
    host, dev = LogisticCVProblem(folds, **kw), DeviceLogisticProblem(folds, **kw)
    assert dev.bounds == host.bounds and dev.initial_points() == host.initial_points()
    for C in (0.3, 10.0):
        eh, ed = host.evaluate({"C": C}), dev.evaluate({"C": C})
        np.testing.assert_allclose(ed.fold_losses, eh.fold_losses, rtol=1e-8)
        np.testing.assert_allclose(ed.grad["C"], eh.grad["C"], rtol=1e-6)


@pytest.mark.parametrize("data, kwargs", [
    (_breast_cancer, {}), (_classification, {"l1_ratios": (1.0,), "solver": "saga"})],
    ids=["breast-cancer-l2", "classification-l1"])
def test_float32_input_runs_in_float32_on_the_jax_path(data, kwargs):
    X, y = data()
    ref = ImplicitLogisticRegressionCV(backend="jax", **kwargs).fit(X, y)
    est = ImplicitLogisticRegressionCV(backend="jax", **kwargs).fit(X.astype(np.float32), y)
    assert est._device_dtype == np.float32
    folds, classes = _folds(X.astype(np.float32), y)
    prob = DeviceLogisticProblem(folds, n_classes=classes.size, dtype=np.float32)
    assert prob._X.dtype == jnp.float32
    # float32 accuracy: the same point within 2 % in log scale (measured 8e-5 here, 2e-6
    # for l1; 1.2e-2 for l1 on the breast-cancer data), the CV loss to 1e-4 relative
    # (measured 5e-5, 1e-9; 2e-5).
    assert abs(np.log(est.C_ / ref.C_)) <= 0.02
    np.testing.assert_allclose(est.cv_loss_, ref.cv_loss_, rtol=1e-4)
    assert type(est.predict(X)) is np.ndarray


def test_jax_array_input_and_numpy_output():
    X, y = _iris()
    with jax.enable_x64(True):
        Xj = jnp.asarray(X)
    est = ImplicitLogisticRegressionCV(backend="jax").fit(Xj, y)
    ref = ImplicitLogisticRegressionCV(backend="jax").fit(X, y)
    assert est.C_ == pytest.approx(ref.C_, rel=1e-10)
    for pred in (est.predict(Xj), est.predict_proba(Xj), est.decision_function(Xj)):
        assert type(pred) is np.ndarray


def test_unsupported_settings_fall_back_to_the_host_with_a_warning():
    X, y = _iris()
    with pytest.warns(UserWarning, match="C_per_class.*runs on the host"):
        dev = ImplicitLogisticRegressionCV(backend="jax", C_per_class=True, cv=3).fit(X, y)
    host = ImplicitLogisticRegressionCV(backend="host", C_per_class=True, cv=3).fit(X, y)
    np.testing.assert_array_equal(dev.C_, host.C_)
    with pytest.raises(ValueError, match="backend"):
        ImplicitLogisticRegressionCV(backend="gpu").fit(X, y)


def test_make_tunable_problem_follows_backend():
    X, y = _iris()
    folds = split_folds(X, y, np.ones(len(y)), list(StratifiedKFold(3).split(X, y)))
    assert isinstance(ImplicitLogisticRegressionCV(backend="jax").make_tunable_problem(folds),
                      DeviceLogisticProblem)
    assert isinstance(ImplicitLogisticRegressionCV(backend="host").make_tunable_problem(folds),
                      LogisticCVProblem)
