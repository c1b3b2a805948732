r"""
Dataset distillation on digits
==============================

Learn **one synthetic image per class** such that a multinomial logistic regression
trained on those 10 images alone has a low loss on the real training set (Maclaurin et
al., 2015; Wang et al., 2018). scikit-learn's 8x8 digits stand in for MNIST.

It is a bilevel problem: the 640 pixels :math:`\theta` are the hyperparameters, and

.. math::

    \min_\theta \; \ell\big(W^\star(\theta); X_{\text{train}}, y_{\text{train}}\big)
    \quad\text{s.t.}\quad
    W^\star(\theta) = \operatorname*{argmin}_W \; \ell\big(W; \theta, (0, \dots, 9)\big)
    + \frac{\lambda}{2} \|W\|_F^2,

with :math:`\ell` the mean multinomial logistic loss. The hypergradient comes from
implicit differentiation of the inner optimality condition :math:`\nabla_W = 0`
(:func:`skimplicit.implicit.custom_root`): the inner problem can be solved by any solver,
here a short Newton-CG, which is never differentiated. For comparison, the same
hypergradient by reverse mode through unrolled gradient descent (``lax.scan``).
"""

# %%
# Data and the inner problem
# --------------------------
import os
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skimplicit.implicit import custom_root, optimality
from skimplicit.implicit.linear_solve import solve_cg

QUICK = os.environ.get("SKIMPLICIT_EXAMPLE_QUICK") == "1"
n_outer = 15 if QUICK else 100  # L-BFGS iterations on the images
n_unrolled = 1000 if QUICK else 7000  # gradient steps for the unrolled comparison
l2 = 1e-2  # inner ridge penalty
n_classes, n_pixels = 10, 64

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.3, random_state=0, stratify=y)


def cross_entropy(W, X, y):
    """Mean multinomial logistic loss of the scores ``X @ W``."""
    scores = X @ W
    return jnp.mean(jax.nn.logsumexp(scores, axis=1)
                    - jnp.take_along_axis(scores, y[:, None], axis=1)[:, 0])


def inner_objective(W, images, l2):
    """Logistic loss of the 10 images (image i has label i) + l2/2 ||W||^2."""
    return cross_entropy(W, images, jnp.arange(n_classes)) + 0.5 * l2 * jnp.sum(W**2)


inner_grad = jax.grad(inner_objective)


# %%
# Any solver: Newton-CG, differentiated implicitly
# ------------------------------------------------
# Newton's method with conjugate-gradient steps and a backtracking line search. It runs
# in a ``while_loop`` (which reverse mode cannot differentiate): ``custom_root`` supplies
# the derivative from the optimality condition instead.
def newton_cg(W, images, l2, tol=1e-10, maxiter=100):
    def hvp_at(W):
        return lambda v: jax.jvp(lambda w: inner_grad(w, images, l2), (W,), (v,))[1]

    def body(state):
        W, g, it = state
        d = solve_cg(hvp_at(W), -g, tol=1e-6)
        f0, slope = inner_objective(W, images, l2), jnp.vdot(g, d)
        t = jax.lax.while_loop(
            lambda t: (inner_objective(W + t * d, images, l2) > f0 + 1e-4 * t * slope) & (t > 1e-8),
            lambda t: t / 2, 1.0)
        W = W + t * d
        return W, inner_grad(W, images, l2), it + 1

    state = (W, inner_grad(W, images, l2), 0)
    cond = lambda s: (jnp.max(jnp.abs(s[1])) > tol) & (s[2] < maxiter)  # noqa: E731
    return jax.lax.while_loop(cond, body, state)[0]


fit_on_images = custom_root(optimality.stationary(inner_objective))(newton_cg)


@jax.jit
def outer_value_and_grad(images, W_init, X, y, l2):
    """Training loss of the model fitted on ``images``, its gradient, and the model."""

    def loss(images):
        W = fit_on_images(W_init, images, l2)  # warm start: init gets no derivative
        return cross_entropy(W, X, y), W

    (value, W), grad = jax.value_and_grad(loss, has_aux=True)(images)
    return value, grad, W


@jax.jit
def unrolled_grad(images, X, y, l2, step):
    """The same hypergradient by reverse mode through ``n_unrolled`` gradient steps."""

    def loss(images):
        def gd_step(W, _):
            return W - step * inner_grad(W, images, l2), None

        W = jax.lax.scan(gd_step, jnp.zeros((n_pixels, n_classes)), None, length=n_unrolled)[0]
        return cross_entropy(W, X, y)

    return jax.grad(loss)(images)


# %%
# Implicit vs unrolled hypergradient at the starting point
# --------------------------------------------------------
# Start from the class-mean images. Unrolling stores every iterate and differentiates
# through all of them; the implicit hypergradient needs the solution only.
images0 = np.stack([X_train[y_train == c].mean(axis=0) for c in range(n_classes)])


def timed(fn, *args, repeat=3):
    jax.block_until_ready(fn(*args))  # compile
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = jax.block_until_ready(fn(*args))
    return out, (time.perf_counter() - t0) / repeat


with jax.enable_x64(True):
    Xtr, ytr = jnp.asarray(X_train), jnp.asarray(y_train)
    W0 = jnp.zeros((n_pixels, n_classes))
    step = 1.0 / (0.5 * np.linalg.norm(images0, 2) ** 2 / n_classes + l2)  # 1 / L
    (_, g_implicit, _), t_implicit = timed(outer_value_and_grad, jnp.asarray(images0), W0, Xtr,
                                           ytr, l2)
    g_unrolled, t_unrolled = timed(unrolled_grad, jnp.asarray(images0), Xtr, ytr, l2, step)
    diff = float(jnp.linalg.norm(g_unrolled - g_implicit) / jnp.linalg.norm(g_implicit))
print(f"hypergradient: implicit (Newton-CG) {t_implicit * 1e3:.1f} ms, unrolled "
      f"({n_unrolled} GD steps) {t_unrolled * 1e3:.1f} ms; relative difference {diff:.1e}")

# %%
# Distillation: L-BFGS on the 640 pixels
# --------------------------------------
# scipy's L-BFGS-B drives the outer problem; each evaluation warm-starts the inner solver
# from the previous model.
with jax.enable_x64(True):
    state = {"W": W0}

    def fun_and_grad(z):
        value, grad, state["W"] = outer_value_and_grad(
            jnp.asarray(z.reshape(n_classes, n_pixels)), state["W"], Xtr, ytr, l2)
        return float(value), np.asarray(grad).ravel()

    loss0 = fun_and_grad(images0.ravel())[0]
    t0 = time.perf_counter()
    result = minimize(fun_and_grad, images0.ravel(), jac=True, method="L-BFGS-B",
                      options={"maxiter": n_outer})
    distilled = result.x.reshape(n_classes, n_pixels)
    t_outer = time.perf_counter() - t0
print(f"{result.nit} L-BFGS iterations ({result.nfev} hypergradients) in "
      f"{t_outer:.1f} s; training loss {loss0:.3f} "
      f"-> {result.fun:.3f}")


# %%
# Test accuracy of a model trained on 10 images
# ---------------------------------------------
# scikit-learn's ``LogisticRegression`` on the 10 images, with the inner problem's penalty
# (``C = 1 / (10 * l2)`` for its sum of losses), against the class means and against a
# model trained on all 1257 training images.
def test_accuracy(images):
    clf = LogisticRegression(C=1.0 / (n_classes * l2), fit_intercept=False, max_iter=10_000)
    return clf.fit(images, np.arange(n_classes)).score(X_test, y_test)


acc_means, acc_distilled = test_accuracy(images0), test_accuracy(distilled)
acc_full = LogisticRegression(max_iter=10_000).fit(X_train, y_train).score(X_test, y_test)
print(f"test accuracy: class-mean images {acc_means:.3f}, distilled images {acc_distilled:.3f}, "
      f"all {len(y_train)} training images {acc_full:.3f}")

# %%
# The distilled images
# --------------------
fig, axes = plt.subplots(2, n_classes, figsize=(10, 2.4))
for row, (imgs, name) in enumerate([(images0, "class means"), (distilled, "distilled")]):
    for c in range(n_classes):
        img = imgs[c].reshape(8, 8)
        axes[row, c].imshow(img / np.abs(img).max(), cmap="RdBu_r", vmin=-1, vmax=1)
        axes[row, c].set_xticks([])
        axes[row, c].set_yticks([])
    axes[row, 0].set_ylabel(name, fontsize=8)
fig.suptitle(f"test accuracy: class means {acc_means:.1%}, distilled {acc_distilled:.1%}")
fig.tight_layout()
fig.savefig("dataset_distillation.png", dpi=100)
