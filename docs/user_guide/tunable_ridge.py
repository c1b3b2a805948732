"""A new tunable estimator: ridge regression with a black-box solver (user guide example).

Shown (and explained piece by piece) on the user guide page "Making a new estimator
tunable"; ``tests/test_docs.py`` runs it and checks its hypergradient against central
finite differences. Objective on each training fold (``n`` samples, centered data):

    (1 / (2 n)) ||y - X w||^2 + (alpha / 2) ||w||^2
"""

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from skimplicit.implicit import optimality, root_vjp
from skimplicit.tuning import CVProblem, Hyperparameter, split_folds, tune


# -- 1. The inner problem and its optimality mapping -------------------------------------
def ridge_objective(w, alpha, X, y):
    r = y - X @ w
    return 0.5 * jnp.mean(r**2) + 0.5 * alpha * jnp.sum(w**2)


# F(w, alpha, X, y) = gradient of the objective in w: zero at the solution.
F = optimality.stationary(ridge_objective)


def black_box_solver(X, y, alpha):
    """Any solver will do (here numpy); it is never differentiated."""
    n, p = X.shape
    return np.linalg.solve(X.T @ X / n + alpha * np.eye(p), X.T @ y / n)


# -- 2. One fold's validation loss and hypergradient (a module-level jitted kernel) ---------
@jax.jit
def fold_loss_and_hypergrad(w, alpha, X_train, y_train, X_test, y_test):
    def val_loss(w):
        return jnp.mean((y_test - X_test @ w) ** 2)

    loss, g_w = jax.value_and_grad(val_loss)(w)
    # Reverse mode: one linear solve (dF/dw)^T u = -g_w, then u^T dF/dalpha.
    (d_alpha,) = root_vjp(lambda w, a: F(w, a, X_train, y_train), w, (alpha,), g_w)
    return loss, d_alpha


# -- 3. The tunable problem: folds in, loss and hypergradient out ------------------------
class RidgeProblem(CVProblem):
    """K-fold validation MSE of ridge regression, tuned over ``alpha`` (log scale)."""

    loss_name = "mse"

    def __init__(self, folds):
        self.folds = []
        for f in folds:  # FoldData: X_train, y_train, sw_train, X_test, y_test, sw_test
            Xtr = np.asarray(f.X_train, float)
            x_mean, y_mean = Xtr.mean(axis=0), f.y_train.mean()
            self.folds.append((Xtr - x_mean, f.y_train - y_mean,
                               np.asarray(f.X_test, float) - x_mean, f.y_test - y_mean))
        self.hyperparameters = [Hyperparameter("alpha", 1e-5, 1e3, scale="log")]

    def initial_points(self):
        # A coarse path from strong to weak regularization.
        return [{"alpha": a} for a in np.logspace(2, -4, 7)]

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision  # the inner solve is exact
        alpha = params["alpha"]
        losses, grads = [], []
        with jax.enable_x64(True):
            for X, y, X_test, y_test in self.folds:
                w = black_box_solver(X, y, alpha)
                loss, d_alpha = fold_loss_and_hypergrad(w, alpha, X, y, X_test, y_test)
                losses.append(float(loss))
                grads.append(float(d_alpha))
        grad = {"alpha": float(np.mean(grads))} if with_grad else None
        # (CVProblem.evaluation: the mean of the fold losses, and the per-fold losses)
        return self.evaluation(losses, grad)


# -- 4. The estimator: a plain scikit-learn regressor plus one hook ------------------------
class TunableRidge(RegressorMixin, BaseEstimator):
    """Ridge regression (``(1/2n)||y - Xw - b||^2 + alpha/2 ||w||^2``), tunable."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True)
        x_mean, y_mean = X.mean(axis=0), y.mean()
        self.coef_ = black_box_solver(X - x_mean, y - y_mean, self.alpha)
        self.intercept_ = y_mean - x_mean @ self.coef_
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return X @ self.coef_ + self.intercept_

    def make_tunable_problem(self, folds, bounds):
        # The hyperparameter is named like the constructor parameter ("alpha"), so
        # HypergradSearchCV refits with set_params(alpha=best). ``bounds``: the search's
        # interval per hyperparameter of param_grid, which the search also enforces.
        del bounds
        return RidgeProblem(folds)


# -- 5. A full CV estimator: its own fit, on the public tuning layer ------------------------
class TunableRidgeCV(RegressorMixin, BaseEstimator):
    """``TunableRidge`` with its ``alpha`` tuned by K-fold CV (``alpha_``, ``cv_loss_``).

    ``fit`` is data validation + the problem + one call into the shared outer loop.
    """

    def __init__(self, *, cv=5, max_outer_iter=30, random_state=None):
        self.cv = cv
        self.max_outer_iter = max_outer_iter
        self.random_state = random_state

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True)
        splits = check_cv(self.cv).split(X, y)
        folds = split_folds(X, y, np.ones(len(y)), splits)
        result = tune(RidgeProblem(folds), max_outer_iter=self.max_outer_iter,
                      random_state=self.random_state)
        self.alpha_, self.cv_loss_ = result.best_params["alpha"], result.best_loss
        final = TunableRidge(alpha=self.alpha_).fit(X, y)
        self.coef_, self.intercept_ = final.coef_, final.intercept_
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return X @ self.coef_ + self.intercept_
