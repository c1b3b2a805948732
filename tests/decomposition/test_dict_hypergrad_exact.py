"""Dictionary learning's implicit gradients against converged finite differences.

The codes are solved by coordinate descent to a relative optimality violation ``tol`` (not
exactly), so the gradients' error is the paper's linear bound in ``tol``: the tests check
its slope on a log-log scale, and 1e-8 relative at the estimator's default (1e-10). The
finite differences (4th order, of the same objective with the codes solved at 1e-14) are
shown converged: steps ``h`` and ``h / 3`` agree to 1e-9 relative. Same data shape as
test_dict_learning.py (50 x 10, 5 atoms).
"""

import jax
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from skimplicit.decomposition._dict_learning import _CODE_TOL
from skimplicit.decomposition._kernels import codes_vjp, cv_value_and_grad, task_value_and_grad

N, P, K = 50, 10, 5
TIGHT = 1e-14


def _fd4(f, x, h):
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def converged_fd(f, x=0.0, h=1e-3):
    d1, d2 = _fd4(f, x, h), _fd4(f, x, h / 3)
    assert abs(d1 - d2) <= 1e-9 * abs(d2), (d1, d2)
    return d2


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=N, n_features=P, n_informative=4, random_state=0)
    X = StandardScaler().fit_transform(X)
    rng = np.random.RandomState(3)
    D = rng.randn(K, P)
    return X, y[:, None].astype(float), D / np.linalg.norm(D, axis=1, keepdims=True)


def _slope(tols, errs):
    return np.polyfit(np.log(tols), np.log(errs), 1)[0]


@pytest.mark.usefixtures("x64")
def test_cv_hypergradient_linear_in_the_code_tolerance(data):
    """d loss / d log(alpha) and d log(C): error ~ tol (slope 1), 1e-8 at the default."""
    X, Y, D = data
    Kf = 3
    M, V = np.ones((Kf, N)), np.zeros((Kf, N))
    for f in range(Kf):
        M[f, f::Kf], V[f, f::Kf] = 0.0, 1.0
    theta0 = (np.zeros((Kf, K, 1)), np.zeros((Kf, 1)))
    a, C = 0.3, 2.0

    def g(alpha, C, tol=TIGHT):
        return cv_value_and_grad(alpha, C, D, X, Y, M, V, np.zeros((N, K)), theta0, 0.0,
                                 tol, 100000)

    fa = converged_fd(lambda t: float(g(a * np.exp(t), C)[0]))
    fc = converged_fd(lambda t: float(g(a, C * np.exp(t))[0]))
    tols = np.logspace(-4, -8, 5)
    errs = []
    for tol in [*tols, _CODE_TOL]:
        _, _, d_alpha, d_C, aux = g(a, C, tol)
        assert bool(aux[4]) and int(aux[5]) == 0  # linear systems solved, no ridge
        errs.append((abs(float(d_alpha) * a / fa - 1), abs(float(d_C) * C / fc - 1)))
    errs = np.array(errs)
    for j in range(2):
        assert 0.8 < _slope(tols, errs[:-1, j]) < 1.2, errs[:, j]
        assert np.all(errs[:-1, j] <= tols)  # the bound's constant is below 1 here
    assert np.all(errs[-1] <= 1e-8), errs[-1]


@pytest.mark.usefixtures("x64")
def test_dictionary_gradient_linear_in_the_code_tolerance(data):
    X, Y, D = data
    rng = np.random.RandomState(0)
    W, b = rng.randn(K, 1), rng.randn(1)
    sw = np.ones(N)
    sw[:7] = 0.0
    E = rng.randn(K, P)

    def f(t, tol=TIGHT):
        return task_value_and_grad(D + t * E, W, b, X, Y, sw, np.zeros((N, K)), 0.4, 0.0, 0.5,
                                   tol, 100000)

    # Small steps: the codes' supports change within 1e-3 of D.
    fd = converged_fd(lambda t: float(f(t)[0]), h=1e-5)
    tols = np.logspace(-4, -8, 5)
    errs = []
    for tol in [*tols, _CODE_TOL]:
        _, (gD, _, _), aux = f(0.0, tol)
        assert bool(aux[4]) and int(aux[5]) == 0
        errs.append(abs(np.sum(np.asarray(gD) * E) / fd - 1))
    errs = np.array(errs)
    assert 0.8 < _slope(tols, errs[:-1]) < 1.2, errs
    assert errs[-1] <= 1e-8, errs


@pytest.mark.usefixtures("x64")
def test_duplicated_atoms_use_the_counted_fallback_ridge(data):
    """Two equal atoms both active in a code: a singular support block, solved with the
    fallback ridge and counted; the other blocks are solved without ridge."""
    X, _, D = data
    D = D.copy()
    D[4] = D[1]
    Z = np.zeros((N, K))
    Z[:, [0, 2]] = 0.1
    Z[0, [1, 4]] = 0.2  # sample 0: both copies active, same sign
    gZ = np.random.RandomState(1).randn(N, K)
    gZ[:, 4] = gZ[:, 1]  # a cotangent that sees the copies alike (consistent system)
    _, _, _, info = codes_vjp(Z, 0.1, 0.0, D, X, gZ)
    assert int(info.n_ridged) == 1
    assert bool(info.success) and float(info.residual) < 1e-8
    D2 = D.copy()
    D2[4] = np.roll(D[1], 1)  # independent atoms: no ridge anywhere
    _, _, _, info = codes_vjp(Z, 0.1, 0.0, D2, X, gZ)
    assert int(info.n_ridged) == 0 and bool(info.success)
