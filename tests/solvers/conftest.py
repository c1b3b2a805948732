"""Shared problems for the solver tests.

Few shapes on purpose: every distinct (shape, dtype, static options) is one XLA compilation
(1-3 s on the 2-core CI machine), so the tests reuse these data sets.
"""

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression


def _rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="session")
def rel_err():
    """``rel_err(a, b)``: largest absolute difference over the largest entry of ``b``."""
    return _rel_err


@pytest.fixture(scope="session")
def reg():
    """Least squares, p > n: n=40, p=100, 8 informative, integer sample weights."""
    X, y = make_regression(n_samples=40, n_features=100, n_informative=8, noise=1.0,
                           random_state=0)
    sw = np.random.RandomState(1).randint(0, 4, 40).astype(float)
    alpha_max = np.max(np.abs(X.T @ (y - y.mean()))) / 40
    return X, y, sw, alpha_max


@pytest.fixture(scope="session")
def clf():
    """Binary classification: n=60, p=30."""
    X, y = make_classification(n_samples=60, n_features=30, n_informative=5,
                               random_state=0)
    sw = np.random.RandomState(2).randint(0, 4, 60).astype(float)
    return X, y.astype(float), sw


@pytest.fixture(scope="session")
def multi():
    """Three classes: n=60, p=10; ``Y`` one-hot."""
    X, y = make_classification(n_samples=60, n_features=10, n_informative=5, n_classes=3,
                               random_state=0)
    sw = np.random.RandomState(3).randint(0, 4, 60).astype(float)
    return X, y, np.eye(3)[y], sw
