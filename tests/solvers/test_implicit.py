"""Hypergradients through ``custom_root`` on top of each solver family, against central
finite differences of the scikit-learn estimator (float64, away from kinks).

One test per family: working-set CD (Lasso; L1 logistic), FISTA (elastic net), Direct
(ridge), Newton-CG (L2 logistic), and scikit-learn's own CD as a black box.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet as SkElasticNet
from sklearn.linear_model import Lasso, LogisticRegression, Ridge

from skimplicit.solvers import (
    CD,
    FISTA,
    L1,
    L2,
    Direct,
    ElasticNet,
    Logistic,
    Newton,
    Quadratic,
    SklearnCD,
    implicit_solve,
)

pytestmark = pytest.mark.usefixtures("x64")


def _split(n, n_train):
    mask = np.zeros(n)
    mask[:n_train] = 1
    return mask, np.arange(n_train), np.arange(n_train, n)


def _mse(coef, intercept, X, y):
    return jnp.mean((X @ coef + intercept - y) ** 2)


def _logloss(coef, intercept, X, y):
    z = X @ coef + intercept
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


def _central(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def _sk_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.mark.parametrize("solver", [CD(), SklearnCD()], ids=["CD", "SklearnCD"])
def test_lasso_alpha(reg, solver):
    X, y, _, amax = reg
    mask, tr, va = _split(len(y), 30)
    alpha = amax / 8

    def val_loss(log_alpha):
        coef, b = implicit_solve(X, y, Quadratic(), L1(jnp.exp(log_alpha)), solver,
                                 sample_weight=mask, tol=1e-15)
        return _mse(coef, b, X[va], y[va])

    g = jax.grad(val_loss)(np.log(alpha))

    def sk(la):
        m = _sk_fit(Lasso(alpha=np.exp(la), tol=1e-15, max_iter=100000), X[tr], y[tr])
        sk.supports.append(tuple(np.flatnonzero(m.coef_)))
        return float(np.mean((m.predict(X[va]) - y[va]) ** 2))

    sk.supports = []
    fd = _central(sk, np.log(alpha), 1e-3)
    assert len(set(sk.supports)) == 1  # no kink crossed: the loss is quadratic there
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_elastic_net_alpha_and_l1_ratio(reg):
    X, y, _, amax = reg
    mask, tr, va = _split(len(y), 30)
    alpha, rho = amax / 5, 0.6

    def val_loss(params):
        coef, b = implicit_solve(X, y, Quadratic(), ElasticNet(*params), FISTA(),
                                 sample_weight=mask, tol=1e-15, max_iter=50000)
        return _mse(coef, b, X[va], y[va])

    g = jax.grad(val_loss)((alpha, rho))

    def sk(a, r):
        m = _sk_fit(SkElasticNet(alpha=a, l1_ratio=r, tol=1e-15, max_iter=100000), X[tr],
                    y[tr])
        return float(np.mean((m.predict(X[va]) - y[va]) ** 2))

    h = 1e-5
    fd = [_central(lambda a: sk(a, rho), alpha, h * alpha),
          _central(lambda r: sk(alpha, r), rho, h * rho)]
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_ridge_alpha(reg):
    X, y, _, _ = reg
    mask, tr, va = _split(len(y), 30)

    def val_loss(alpha):
        coef, b = implicit_solve(X, y, Quadratic(), L2(alpha / mask.sum()), Direct(),
                                 sample_weight=mask)
        return _mse(coef, b, X[va], y[va])

    g = jax.grad(val_loss)(3.0)

    def sk(a):
        m = Ridge(alpha=a, solver="cholesky").fit(X[tr], y[tr])
        return float(np.mean((m.predict(X[va]) - y[va]) ** 2))

    np.testing.assert_allclose(g, _central(sk, 3.0, 3e-4), rtol=1e-6)


def test_l2_logistic_C(clf):
    X, y, _ = clf
    mask, tr, va = _split(len(y), 45)

    def val_loss(C):
        coef, b = implicit_solve(X, y, Logistic(), L2(1 / C), Newton(), sample_weight=mask,
                                 tol=1e-13)
        return _logloss(coef, b, X[va], y[va])

    g = jax.grad(val_loss)(0.5)

    def sk(C):
        m = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-14).fit(X[tr], y[tr])
        return float(_logloss(m.coef_[0], m.intercept_[0], X[va], y[va]))

    np.testing.assert_allclose(g, _central(sk, 0.5, 0.5e-4), rtol=1e-6)


def test_l1_logistic_C(clf):
    """Without intercept, so that liblinear solves exactly the same problem."""
    X, y, _ = clf
    mask, tr, va = _split(len(y), 45)

    def val_loss(C):
        coef, b = implicit_solve(X, y, Logistic(), L1(1 / C), CD(), sample_weight=mask,
                                 fit_intercept=False, tol=1e-14)
        return _logloss(coef, b, X[va], y[va])

    g = jax.grad(val_loss)(0.5)

    def sk(C):
        m = _sk_fit(LogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", tol=1e-15,
                                       max_iter=100000, fit_intercept=False), X[tr], y[tr])
        sk.supports.append(tuple(np.flatnonzero(m.coef_)))
        return float(_logloss(m.coef_[0], 0.0, X[va], y[va]))

    sk.supports = []
    fd = _central(sk, 0.5, 0.5e-4)
    assert len(set(sk.supports)) == 1
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_l2_multinomial_C(multi):
    """The multinomial intercept is only defined up to a constant: the optimality mapping
    pins its mean (else the implicit linear system is singular)."""
    X, y, Y, _ = multi
    mask, tr, va = _split(len(y), 45)

    def val_loss(C):
        coef, b = implicit_solve(X, Y, Logistic(), L2(1 / C), Newton(), sample_weight=mask,
                                 tol=1e-13)
        Z = X[va] @ coef.T + b
        return jnp.mean(jax.nn.logsumexp(Z, axis=1) - jnp.sum(Y[va] * Z, axis=1))

    g = jax.grad(val_loss)(0.5)

    def sk(C):
        m = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-14).fit(X[tr], y[tr])
        Z = X[va] @ m.coef_.T + m.intercept_
        return float(np.mean(np.log(np.exp(Z).sum(1)) - Z[np.arange(len(va)), y[va]]))

    np.testing.assert_allclose(g, _central(sk, 0.5, 0.5e-4), rtol=1e-6)
