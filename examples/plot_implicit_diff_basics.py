"""
===============================================================
Implicit differentiation basics: ridge and Lasso hypergradients
===============================================================

A solver returns ``w(alpha)``, the minimizer of a training objective. The *hypergradient*
is the derivative of a held-out loss ``L(w(alpha))`` with respect to the regularization
``alpha``. Implicit differentiation gets it from the optimality conditions
``F(w, alpha) = 0`` alone: the solver is never differentiated, so it can be any code.

This example computes hypergradients of the held-out mean squared error with respect to
``log(alpha)`` for

* ridge regression, through the stationarity condition ``grad_w f(w, alpha) = 0``,
  with a JAX solver;
* the Lasso, through the proximal-gradient fixed point, with **scikit-learn's own**
  :class:`~sklearn.linear_model.Lasso` as a black-box solver (``jax.pure_callback``),

and compares them with central finite differences of scikit-learn's estimators.
Everything runs in float64, scoped with ``jax.enable_x64`` (nothing global is changed).
"""

# %%
# Data: the diabetes dataset shipped with scikit-learn, split into train and validation.
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso, Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skimplicit.implicit import custom_root, optimality
from skimplicit.implicit.prox import prox_lasso

t_start = time.perf_counter()
X, y = load_diabetes(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
y_mean = y_train.mean()
y_train, y_val = y_train - y_mean, y_val - y_mean  # no intercept needed after centering
n, p = X_train.shape

# %%
# Ridge: scikit-learn's objective ``||y - X w||^2 + alpha ||w||^2``
# -----------------------------------------------------------------
# ``custom_root(F)`` turns a solver ``solver(init, *args)`` into a differentiable
# function of every argument after ``init``, where ``F(w, *args) = 0`` at its output.


def ridge_objective(w, alpha, X, y):
    return jnp.sum((y - X @ w) ** 2) + alpha * jnp.sum(w**2)


@custom_root(optimality.stationary(ridge_objective))
def ridge_solver(init, alpha, X, y):
    del init  # a direct solver needs no starting point
    return jnp.linalg.solve(X.T @ X + alpha * jnp.eye(X.shape[1]), X.T @ y)


def ridge_val_mse(log_alpha, X, y, X_val, y_val):
    w = ridge_solver(None, jnp.exp(log_alpha), X, y)
    return jnp.mean((y_val - X_val @ w) ** 2)


ridge_hypergradient = jax.jit(jax.value_and_grad(ridge_val_mse))


def sklearn_val_mse(model, log_alpha):
    model.set_params(alpha=np.exp(log_alpha)).fit(X_train, y_train)
    return np.mean((y_val - model.predict(X_val)) ** 2)


def central_difference(model, log_alpha, h=1e-4):
    up, down = sklearn_val_mse(model, log_alpha + h), sklearn_val_mse(model, log_alpha - h)
    return (up - down) / (2 * h)


ridge = Ridge(fit_intercept=False)
ridge_log_alphas = np.linspace(np.log(1e-1), np.log(1e4), 25)
with jax.enable_x64(True):
    ridge_out = [ridge_hypergradient(t, X_train, y_train, X_val, y_val) for t in ridge_log_alphas]
ridge_mse = np.array([float(v) for v, _ in ridge_out])
ridge_grad = np.array([float(g) for _, g in ridge_out])
ridge_fd = np.array([central_difference(ridge, t) for t in ridge_log_alphas])
ridge_err = np.abs(ridge_grad - ridge_fd) / np.abs(ridge_fd)

# %%
# Lasso: scikit-learn's ``Lasso`` as a black box
# ----------------------------------------------
# The objective is ``(1 / 2n) ||y - X w||^2 + alpha ||w||_1``. Its solution is a fixed point
# of the proximal-gradient step ``w = prox_lasso(w - step * grad f(w), alpha, step)``
# (any ``step`` in ``(0, 2 / L)``), which is all implicit differentiation needs. The
# solver itself is scikit-learn's coordinate descent, called through
# ``jax.pure_callback``: JAX never sees inside it.


def lasso_datafit(w, X, y):
    return 0.5 * jnp.mean((y - X @ w) ** 2)


step = n / np.linalg.norm(X_train, 2) ** 2  # 1 / L for the datafit above
lasso_model = Lasso(fit_intercept=False, tol=1e-12, max_iter=100_000)


def sklearn_lasso_coef(alpha, X, y):
    model = Lasso(alpha=float(alpha), fit_intercept=False, tol=1e-12, max_iter=100_000)
    return model.fit(np.asarray(X), np.asarray(y)).coef_


@custom_root(optimality.prox_grad_fixed_point(lasso_datafit, prox_lasso, step))
def lasso_solver(init, alpha, X, y):
    del init
    shape = jax.ShapeDtypeStruct((X.shape[1],), X.dtype)
    return jax.pure_callback(sklearn_lasso_coef, shape, alpha, X, y)


def lasso_val_mse(log_alpha, X, y, X_val, y_val):
    w = lasso_solver(None, jnp.exp(log_alpha), X, y)
    return jnp.mean((y_val - X_val @ w) ** 2)


lasso_hypergradient = jax.jit(jax.value_and_grad(lasso_val_mse))

alpha_max = np.max(np.abs(X_train.T @ y_train)) / n
lasso_log_alphas = np.linspace(np.log(alpha_max / 1000), np.log(alpha_max / 1.2), 25)
with jax.enable_x64(True):
    lasso_out = [lasso_hypergradient(t, X_train, y_train, X_val, y_val) for t in lasso_log_alphas]
lasso_mse = np.array([float(v) for v, _ in lasso_out])
lasso_grad = np.array([float(g) for _, g in lasso_out])
lasso_fd = np.array([central_difference(lasso_model, t) for t in lasso_log_alphas])
lasso_err = np.abs(lasso_grad - lasso_fd) / np.maximum(np.abs(lasso_fd), 1e-12)


# The Lasso path is piecewise smooth: a finite difference straddling a change of support
# (a kink) is not a derivative. Flag the grid points where the support changes within
# the finite-difference step.
def support(log_alpha):
    return sklearn_lasso_coef(np.exp(log_alpha), X_train, y_train) != 0


kink = np.array([
    not all(np.array_equal(support(t + dt), support(t)) for dt in (-1e-4, 1e-4))
    for t in lasso_log_alphas
])

# %%
# Results
# -------
# The implicit hypergradients agree with the finite differences to about 1e-8, which is
# the accuracy of the finite differences themselves (truncation error of order h^2 with
# h = 1e-4 in log alpha): the implicit ones are exact up to the inner solver's and the
# linear solver's tolerances.
header = ["problem", "alpha", "val MSE", "implicit", "finite diff", "rel. err"]
print(f"{header[0]:<8} {header[1]:>10} {header[2]:>10} {header[3]:>12} {header[4]:>12} "
      f"{header[5]:>9}")
for name, log_alphas, mse, grad, fd, err in [
    ("ridge", ridge_log_alphas, ridge_mse, ridge_grad, ridge_fd, ridge_err),
    ("lasso", lasso_log_alphas, lasso_mse, lasso_grad, lasso_fd, lasso_err),
]:
    for i in range(0, len(log_alphas), 6):
        print(f"{name:<8} {np.exp(log_alphas[i]):10.4g} {mse[i]:10.2f} {grad[i]:12.5g} "
              f"{fd[i]:12.5g} {err[i]:9.1e}")
print(f"ridge: max relative error {ridge_err.max():.1e} over {len(ridge_err)} values of alpha")
print(f"lasso: max relative error {lasso_err[~kink].max():.1e} over {np.sum(~kink)} values "
      f"away from kinks ({np.sum(kink)} at a kink)")

fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
for col, (name, log_alphas, mse, grad, fd, err, flags) in enumerate([
    ("Ridge", ridge_log_alphas, ridge_mse, ridge_grad, ridge_fd, ridge_err, None),
    ("Lasso (scikit-learn as black box)", lasso_log_alphas, lasso_mse, lasso_grad, lasso_fd,
     lasso_err, kink),
]):
    alphas = np.exp(log_alphas)
    ax = axes[0, col]
    ax.plot(alphas, mse, "k-", label="held-out MSE")
    # Tangent segments with the implicit slope d MSE / d log(alpha).
    for a, m, g in zip(alphas[::3], mse[::3], grad[::3]):
        dt = np.array([-0.25, 0.25])
        ax.plot(a * np.exp(dt), m + g * dt, "C1-", lw=2)
    ax.plot([], [], "C1-", lw=2, label="implicit hypergradient (tangents)")
    ax.set(xscale="log", ylabel="held-out MSE", title=name)
    ax.legend(loc="best", fontsize=8)
    ax = axes[1, col]
    ax.semilogy(alphas, np.maximum(err, 1e-17), "o-", ms=4, label="|implicit - FD| / |FD|")
    if flags is not None and flags.any():
        ax.semilogy(alphas[flags], np.maximum(err[flags], 1e-17), "rx", ms=9,
                    label="support changes within the FD step")
    ax.set(xscale="log", xlabel="alpha", ylabel="relative difference")
    ax.legend(loc="best", fontsize=8)
fig.tight_layout()
fig.savefig("implicit_diff_basics.png", dpi=100)
print("saved figure: implicit_diff_basics.png")
print(f"total time {time.perf_counter() - t_start:.1f} s")
plt.show()
