r"""
Jacobian precision: implicit differentiation vs unrolling
==========================================================

How accurate is the derivative of an *approximate* solution? Ridge regression on the
diabetes data,

.. math::

    x^\star(\lambda) = \operatorname*{argmin}_x \tfrac12 \|Ax - b\|^2
    + \tfrac{\lambda}{2} \|x\|^2,
    \qquad
    \partial x^\star(\lambda) = -(A^\top A + \lambda I)^{-1} x^\star(\lambda),

solved by ``k`` steps of gradient descent from zero. Two estimates of the Jacobian
:math:`\partial x^\star(\lambda)` from the iterate :math:`\hat x_k`:

* **unrolled**: differentiate the ``k`` gradient steps themselves (forward mode through
  ``lax.scan``);
* **implicit**: plug :math:`\hat x_k` into the implicit-function formula for the optimality
  condition :math:`F(x, \lambda) = \nabla_x f(x, \lambda) = 0`
  (:func:`skimplicit.implicit.root_jvp`).

Blondel et al. (2022, Theorem 1) bound the implicit error by
:math:`(\beta/\alpha + \gamma R/\alpha^2) \|\hat x_k - x^\star\|`, where :math:`\alpha` is the
strong convexity of the problem and :math:`\beta`, :math:`\gamma` are Lipschitz constants of
:math:`\partial_\lambda F` and :math:`\partial_x F`. For ridge, :math:`\partial_x F = A^\top A
+ \lambda I` is constant (:math:`\gamma = 0`) and :math:`\partial_\lambda F = x`
(:math:`\beta = 1`), so the bound is :math:`\|\hat x_k - x^\star\| / \alpha` with
:math:`\alpha = \sigma_{\min}(A)^2 + \lambda`: linear in the inner error.
"""

# %%
# Problem and exact Jacobian
# --------------------------
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes

from skimplicit.implicit import optimality, root_jvp
from skimplicit.implicit.linear_solve import solve_cholesky

QUICK = os.environ.get("SKIMPLICIT_EXAMPLE_QUICK") == "1"
n_steps = 300 if QUICK else 2000
lam = 0.05

A_np, b_np = load_diabetes(return_X_y=True)
b_np = (b_np - b_np.mean()) / b_np.std()
eigvals = np.linalg.eigvalsh(A_np.T @ A_np)
L, alpha = eigvals[-1] + lam, eigvals[0] + lam  # smoothness, strong convexity
print(f"condition number L / alpha = {L / alpha:.0f}")


def ridge_objective(x, lam, A, b):
    return 0.5 * jnp.sum((A @ x - b) ** 2) + 0.5 * lam * jnp.sum(x**2)


F = optimality.stationary(ridge_objective)  # F(x, lam, A, b) = grad_x f


@jax.jit
def gd_iterates(lam, A, b):
    """All gradient-descent iterates x_1, ..., x_K (step 1 / L) from x_0 = 0."""

    def step(x, _):
        x = x - jax.grad(ridge_objective)(x, lam, A, b) / L
        return x, x

    return jax.lax.scan(step, jnp.zeros(A.shape[1]), None, length=n_steps)[1]


@jax.jit
def implicit_jacobian(x_hat, lam, A, b):
    """Implicit-function estimate of d x* / d lam, evaluated at an approximate solution.

    The 10 x 10 linear system is solved exactly (Cholesky), so that the only error left is
    the one the theorem bounds.
    """
    tangents = (1.0, jnp.zeros_like(A), jnp.zeros_like(b))
    return root_jvp(F, x_hat, (lam, A, b), tangents, solve=solve_cholesky)


# %%
# Errors along the iterations
# ---------------------------
# One forward-mode pass through the scan gives the unrolled Jacobian of every iterate.
with jax.enable_x64(True):
    A, b = jnp.asarray(A_np), jnp.asarray(b_np)
    H = A.T @ A + lam * jnp.eye(A.shape[1])
    x_star = jnp.linalg.solve(H, A.T @ b)
    jac_star = -jnp.linalg.solve(H, x_star)

    iterates, jac_unrolled = jax.jvp(lambda l: gd_iterates(l, A, b), (lam,), (1.0,))
    ks = np.unique(np.geomspace(1, n_steps, 30).astype(int))
    err_unrolled = np.asarray(jnp.linalg.norm(jac_unrolled[ks - 1] - jac_star, axis=1))
    err_implicit = np.array([
        float(jnp.linalg.norm(implicit_jacobian(iterates[k - 1], lam, A, b) - jac_star))
        for k in ks
    ])
    inner_err = np.asarray(jnp.linalg.norm(iterates[ks - 1] - x_star, axis=1))
    norm = float(jnp.linalg.norm(jac_star))

bound = inner_err / alpha
for k in [10, 100, ks[-1]]:
    i = int(np.searchsorted(ks, k))
    print(f"k = {ks[i]:5d}: inner error {inner_err[i]:.1e}, Jacobian error implicit "
          f"{err_implicit[i] / norm:.1e} (bound {bound[i] / norm:.1e}), unrolled "
          f"{err_unrolled[i] / norm:.1e} (relative); unrolled / implicit = "
          f"{err_unrolled[i] / err_implicit[i]:.1f}")
# The last points are at float64 rounding level (errors ~1e-13): a ratio of 1.01 there is noise.
print(f"implicit error / bound: min {np.min(err_implicit / bound):.2f}, "
      f"max {np.max(err_implicit / bound):.2f}")

# %%
# Plot
# ----
# The implicit estimate is linear in the inner error and sits on the bound; the unrolled
# Jacobian converges at the same linear rate but lags behind (its error also carries the
# derivative of the early iterates).
fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.semilogy(ks, err_unrolled / norm, "o-", color="C3", label="unrolled (forward mode)")
ax.semilogy(ks, err_implicit / norm, "o-", color="C0", label="implicit (root_jvp at $\\hat x_k$)")
ax.semilogy(ks, bound / norm, "k--", label=r"bound $\|\hat x_k - x^\star\| / \alpha$")
ax.set_xlabel("gradient-descent iterations $k$")
ax.set_ylabel("relative Jacobian error")
ax.set_title(f"Ridge on diabetes, $\\lambda$ = {lam}")
ax.legend()
fig.tight_layout()
fig.savefig("jacobian_precision.png", dpi=100)
