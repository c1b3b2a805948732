r"""
Checking a hypergradient
========================

:func:`skimplicit.inspection.check_hypergradient` rebuilds a tuner's cross-validation
problem exactly as ``fit`` builds it (same folds, inner solver and tolerances) and
compares the implicit hypergradient at a point with central finite differences of the CV
loss (steps :math:`h` and :math:`h/2`, Richardson-extrapolated; their agreement says
whether the differences themselves converged).

skimplicit's own tuners polish their inner solutions to machine precision, so their
hypergradients agree with finite differences to :math:`10^{-6}` or better (relative
errors are largest where the hypergradient itself is small, as at an interior optimum). The
implicit-function formula evaluated at an *inexact* inner solution is itself inexact,
with an error linear in the inner error (Blondel et al., 2022, Theorem 1). The second part
shows it with a tunable estimator of our own: ridge regression solved by conjugate
gradient to a relative residual ``tol``; the relative error of its hypergradient shrinks
in proportion to ``tol``.
"""

# %%
# skimplicit's tuners
# -------------------
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from skimplicit.inspection import check_hypergradient
from skimplicit.linear_model import ImplicitLassoCV, ImplicitLogisticRegressionCV, ImplicitRidgeCV
from skimplicit.model_selection import Evaluation, HypergradSearchCV, Hyperparameter

QUICK = os.environ.get("SKIMPLICIT_EXAMPLE_QUICK") == "1"
warnings.simplefilter("ignore", ConvergenceWarning)

X_reg, y_reg = load_diabetes(return_X_y=True)
X_clf, y_clf = load_breast_cancer(return_X_y=True)
X_clf = StandardScaler().fit_transform(X_clf)
# Each is checked at its selected point, except ridge: its one-alpha minimum is polished to
# rounding error, where the hypergradient is 0 and a relative error is noise; it is checked
# at alpha = 1 instead.
for est, X, y, at in [(ImplicitLassoCV(cv=3, tol=1e-10), X_reg, y_reg, None),
                      (ImplicitRidgeCV(cv=3), X_reg, y_reg, {"alpha": 1.0}),
                      (ImplicitLogisticRegressionCV(cv=3, tol=1e-10), X_clf, y_clf, None)]:
    check = check_hypergradient(est, X, y, params=at)
    (name, value), = check.params.items()
    print(f"{type(est).__name__:30s} at {name}={value:.4g}: implicit "
          f"{check.implicit[0]: .10g}, finite differences {check.finite_difference[0]: .10g}, "
          f"relative error {check.relative_error:.1e}")


# %%
# An inexact inner solver
# -----------------------
# Ridge regression on each training fold (centered), ``(1/n) X^T X w + alpha w = (1/n)
# X^T y``, solved by conjugate gradient from zero until the residual is below ``tol``
# times its initial value. The hypergradient of the validation MSE by the implicit
# function theorem at the computed ``w``: ``d loss / d alpha = -g^T (A + alpha I)^{-1} w``
# with ``g`` the gradient of the validation loss in ``w`` (one exact adjoint solve).
# At the exact solution this is the exact derivative; at an inexact one, off by an amount
# proportional to the error of ``w``.
def conjugate_gradient(A, b, tol, max_iter=10_000):
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rs = r @ r
    stop = (tol * np.linalg.norm(b)) ** 2
    for _ in range(max_iter):
        if rs <= stop:
            break
        Ap = A @ p
        step = rs / (p @ Ap)
        x += step * p
        r -= step * Ap
        rs, rs_old = r @ r, rs
        p = r + (rs / rs_old) * p
    return x


class CGRidgeProblem:
    """K-fold validation MSE of ridge regression solved by conjugate gradient."""

    loss_name = "mse"

    def __init__(self, folds, tol):
        self.tol, self.folds = tol, []
        for f in folds:  # FoldData: X_train, y_train, sw_train, X_test, y_test, sw_test
            x_mean, y_mean = f.X_train.mean(axis=0), f.y_train.mean()
            Xc, yc = f.X_train - x_mean, f.y_train - y_mean
            n = len(yc)
            self.folds.append((Xc.T @ Xc / n, Xc.T @ yc / n, f.X_test - x_mean,
                               f.y_test - y_mean))
        self.hyperparameters = [Hyperparameter("alpha", 1e-6, 1e2, scale="log")]

    def initial_points(self):
        return [{"alpha": a} for a in np.logspace(1, -5, 7)]

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        alpha, tol = params["alpha"], self.tol * precision
        losses, grads = [], []
        for A, b, X_test, y_test in self.folds:
            H = A + alpha * np.eye(len(b))
            w = conjugate_gradient(H, b, tol)
            r = y_test - X_test @ w
            losses.append(np.mean(r**2))
            g = -2 * X_test.T @ r / len(r)
            grads.append(-np.linalg.solve(H, g) @ w)
        losses = np.array(losses)
        grad = {"alpha": float(np.mean(grads))} if with_grad else None
        return Evaluation(loss=float(losses.mean()), grad=grad, fold_losses=losses)


class CGRidge(RegressorMixin, BaseEstimator):
    """Ridge regression by conjugate gradient, tunable by HypergradSearchCV."""

    def __init__(self, alpha=1.0, tol=1e-6):
        self.alpha = alpha
        self.tol = tol

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True)
        x_mean, y_mean = X.mean(axis=0), y.mean()
        Xc, yc = X - x_mean, y - y_mean
        H = Xc.T @ Xc / len(y) + self.alpha * np.eye(X.shape[1])
        self.coef_ = conjugate_gradient(H, Xc.T @ yc / len(y), self.tol)
        self.intercept_ = y_mean - x_mean @ self.coef_
        return self

    def predict(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False) @ self.coef_ + self.intercept_

    def make_tunable_problem(self, folds, bounds):
        del bounds  # the search restricts the problem to its param_grid
        return CGRidgeProblem(folds, self.tol)


# Ill-conditioned features (a low effective rank): conjugate gradient needs many
# iterations, and its residual decreases steadily with them.
X, y = make_regression(n_samples=200, n_features=80, effective_rank=10, noise=1.0,
                       random_state=0)
search = HypergradSearchCV(CGRidge(tol=1e-12), {"alpha": (1e-6, 1e2)}, cv=5).fit(X, y)
alpha = search.best_params_["alpha"]
print(f"\nCGRidge: alpha chosen {alpha:.4g}, CV MSE {-search.best_score_:.4g}")

# %%
# The check is made at ten times the chosen alpha: at the optimum the hypergradient is
# nearly zero, and a relative error there measures nothing but its smallness.
# ``precision`` multiplies the estimator's ``tol`` for the implicit hypergradient; the
# finite differences use solves at ``1e-13`` (``fd_precision = 1e-13 / tol``), so their
# own noise stays out of the comparison.
tols = np.logspace(-2, -9, 5 if QUICK else 8)
errors = []
for tol in tols:
    est = HypergradSearchCV(CGRidge(tol=tol), {"alpha": (1e-6, 1e2)}, cv=5,
                            max_outer_iter=3)
    check = check_hypergradient(est, X, y, params={"alpha": 10 * alpha}, precision=1.0,
                                fd_precision=1e-13 / tol, h=1e-3)
    errors.append(check.relative_error)
    print(f"tol {tol:.0e}: relative error {check.relative_error:.2e} "
          f"(finite differences converged to {check.fd_agreement:.0e})")
errors = np.array(errors)
slope = np.polyfit(np.log10(tols), np.log10(errors), 1)[0]
print(f"slope of log(error) against log(tol): {slope:.2f}")

# %%
fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
ax.loglog(tols, errors, "o-", label="implicit vs finite differences")
ax.loglog(tols, errors[0] * tols / tols[0], "--", color="0.5", label="slope 1")
ax.set_xlabel("inner tolerance (conjugate gradient relative residual)")
ax.set_ylabel("relative error of the hypergradient")
ax.legend()
fig.savefig("check_hypergradient.png")
