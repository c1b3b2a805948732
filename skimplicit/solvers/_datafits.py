r"""Data-fitting terms ``f`` of ``min_{coef, intercept} f(X coef + intercept) + g(coef)``.

A datafit is a small immutable object without array state: it is hashable and passed to
the jitted kernels as a *static* argument (two equal instances share compiled code).
Two datafits, each in scikit-learn's exact scaling:

* :class:`Quadratic` (``Lasso``, ``ElasticNet``; ``Ridge`` after rescaling ``alpha``)

  .. math:: f = \frac{1}{2 \sum_i s_i} \sum_i s_i (y_i - x_i^\top w - b)^2

* :class:`Logistic` (``LogisticRegression``), a *sum* of losses (``alpha = 1 / C``)

  .. math:: f = \sum_i s_i \, \ell(y_i, x_i^\top W + b)

  with the binomial loss for 1-D ``y`` in ``{0, 1}`` and the multinomial (softmax) loss
  for one-hot ``Y`` of shape ``(n_samples, n_classes)``.

``s`` is ``sample_weight`` (default ones). 0/1 weights are exact fold masks: a sample of
weight 0 has no influence at all, so K training folds padded to one shape are K masks of
shape ``(K, n_samples)`` over a shared ``X``. scikit-learn rescales ``sample_weight`` to sum
to ``n_samples`` for ``Lasso``/``ElasticNet``; the ``1 / sum(s)`` above is that rescaling,
so the objectives are equal, not merely proportional.

Internally the kernels use 2-D parameters (``W`` of shape ``(n_features, n_outputs)``, see
:mod:`skimplicit.solvers._base`) and the per-sample derivatives ``dloss`` / ``d2loss``; users
call :meth:`value`, :meth:`gradient`, :meth:`lipschitz` with scikit-learn layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

__all__ = ["Quadratic", "Logistic"]


def _v_sum(v):
    return jnp.sum(v)


class _Datafit:
    """Shared user-level methods (scikit-learn layouts)."""

    is_quadratic = False

    # ---- layouts ---------------------------------------------------------------------
    def prepare_y(self, y, dtype):
        """Targets as a 2-D array ``(n_samples, n_outputs)`` of ``dtype``."""
        y = jnp.asarray(y, dtype)
        return y[:, None] if y.ndim == 1 else y

    @staticmethod
    def to_internal(coef, intercept, n_features, n_outputs, dtype):
        """scikit-learn ``coef`` / ``intercept`` -> internal ``W (p, K)``, ``b (K,)``."""
        W = jnp.asarray(coef, dtype)
        W = W.reshape(n_features, 1) if W.ndim == 1 else W.T
        b = jnp.broadcast_to(jnp.asarray(intercept, dtype), (n_outputs,))
        return W, b

    @staticmethod
    def from_internal(W, b, y_ndim):
        """Internal ``W, b`` -> scikit-learn layouts (``(p,)``/``()`` or ``(K, p)``/``(K,)``)."""
        if y_ndim == 1:
            return W[:, 0], b[0]
        return W.T, b

    def _data(self, X, y, sample_weight):
        X = jnp.asarray(X)
        dtype = jnp.result_type(X.dtype, jnp.float32)
        X = X.astype(dtype)
        Y = self.prepare_y(y, dtype)
        sw = jnp.ones(X.shape[0], dtype) if sample_weight is None else jnp.asarray(
            sample_weight, dtype)
        return X, Y, sw

    def _internal(self, X, y, coef, intercept, sample_weight):
        X, Y, sw = self._data(X, y, sample_weight)
        W, b = self.to_internal(coef, intercept, X.shape[1], Y.shape[1], X.dtype)
        return X, Y, sw, W, b

    # ---- user level ------------------------------------------------------------------
    def value(self, X, y, coef, intercept=0.0, sample_weight=None):
        """Value of ``f`` at ``(coef, intercept)`` (scikit-learn layouts)."""
        X, Y, sw, W, b = self._internal(X, y, coef, intercept, sample_weight)
        return self.loss(X @ W + b, Y, self.sample_scale(sw))

    def gradient(self, X, y, coef, intercept=0.0, sample_weight=None):
        """Gradient of ``f``: ``(grad_coef, grad_intercept)`` in scikit-learn layouts."""
        X, Y, sw, W, b = self._internal(X, y, coef, intercept, sample_weight)
        gZ = self.sample_scale(sw)[:, None] * self.dloss(X @ W + b, Y)
        return self.from_internal(X.T @ gZ, jnp.sum(gZ, 0), jnp.ndim(y))

    def lipschitz(self, X, y, sample_weight=None, fit_intercept=True):
        """Coordinate-wise Lipschitz constants of ``grad f``, shape ``(n_features,)``.

        ``c * sum_i v_i (X_ij - m_j)^2`` with ``v = sample_scale(sample_weight)`` (``s /
        sum(s)`` for :class:`Quadratic`, ``s`` for :class:`Logistic`), ``c`` the bound of
        the loss curvature (1, 1/4 binomial, 1/2 multinomial) and ``m_j`` the weighted
        column mean when the intercept is eliminated by centering (:class:`Quadratic`
        with ``fit_intercept``), else 0. Without weights and centering this is
        ``||X_j||^2 / n`` for the mean squared loss.
        """
        X, Y, sw = self._data(X, y, sample_weight)
        v = self.sample_scale(sw)
        if self.is_quadratic and fit_intercept:
            X = X - (v @ X) / jnp.sum(v)
        return self.hess_bound(Y.shape[1]) * (v @ (X * X))

    def global_lipschitz(self, X, y, sample_weight=None, fit_intercept=True, n_power=50):
        """Lipschitz constant of ``grad f`` in ``(coef, intercept)`` by power iteration.

        See :func:`global_lipschitz` (the kernel) for the operator; the result is
        multiplied by 1.02 to cover the power iteration's underestimate.
        """
        X, Y, sw = self._data(X, y, sample_weight)
        return global_lipschitz(X, self.sample_scale(sw), self, Y.shape[1], fit_intercept,
                                n_power)


@dataclass(frozen=True)
class Quadratic(_Datafit):
    r"""Least squares in scikit-learn's ``Lasso`` / ``ElasticNet`` scaling.

    .. math::

        f(w, b) = \frac{1}{2 \sum_i s_i} \sum_{i=1}^{n} s_i (y_i - x_i^\top w - b)^2 .

    ``y`` is 1-D (one target; fit several targets by :func:`jax.vmap`). With
    ``fit_intercept`` the solvers eliminate ``b`` exactly (weighted centering), so the
    problem they solve is that of scikit-learn after its ``_preprocess_data``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import Quadratic
    >>> X = jnp.array([[1.0, 0.0], [0.0, 1.0]]); y = jnp.array([1.0, 3.0])
    >>> float(Quadratic().value(X, y, jnp.zeros(2)))   # (1 + 9) / (2 * 2)
    2.5
    >>> Quadratic().lipschitz(X, y, fit_intercept=False)  # ||X_j||^2 / n
    Array([0.5, 0.5], dtype=float32)
    """

    is_quadratic = True

    def sample_scale(self, sw):
        """Per-sample factor ``v`` of the loss: ``s / sum(s)`` (a weighted mean).

        Leading batch axes are allowed (``sw`` of shape ``(..., n)``)."""
        return sw / jnp.sum(sw, axis=-1, keepdims=True)

    def loss(self, Z, Y, v):
        """``0.5 * sum_i v_i ||y_i - z_i||^2`` (per leading batch index)."""
        return 0.5 * jnp.sum(v * jnp.sum((Y - Z) ** 2, axis=-1), axis=-1)

    def dloss(self, Z, Y):
        """Per-sample derivative in ``z`` (unweighted): ``z - y``."""
        return Z - Y

    def d2loss(self, Z, Y):
        """Per-sample Hessian in ``z``: the identity, shape ``(..., n, K, K)``."""
        K = Z.shape[-1]
        return jnp.broadcast_to(jnp.eye(K, dtype=Z.dtype), Z.shape + (K,))

    def d2loss_matvec(self, Z, Y, dZ):
        """Per-sample Hessian times ``dZ``."""
        return dZ

    def hess_bound(self, n_outputs):
        """Upper bound of the per-sample Hessian's largest eigenvalue: 1."""
        return 1.0

    def intercept0(self, Y, v):
        """Optimal intercept at ``coef = 0``: the weighted mean of ``y``."""
        return (v @ Y) / jnp.sum(v, axis=-1, keepdims=True)


@dataclass(frozen=True)
class Logistic(_Datafit):
    r"""Logistic loss summed over samples, scikit-learn's ``LogisticRegression`` scaling.

    .. math::

        f(W, b) = \sum_{i=1}^{n} s_i \, \ell(y_i, x_i^\top W + b),

    scikit-learn minimizes ``C * f + penalty``: use ``alpha = 1 / C`` in the penalty
    (:class:`~skimplicit.solvers.L2` ``(1 / C)`` is its default ``0.5 ||w||^2 / C``).

    * Binary: ``y`` 1-D in ``{0, 1}`` (the positive class is 1), coefficients of shape
      ``(n_features,)``, ``l(y, z) = log(1 + exp(z)) - y z``.
    * Multinomial: ``Y`` one-hot of shape ``(n_samples, n_classes)``, coefficients of shape
      ``(n_classes, n_features)`` (scikit-learn's ``coef_``), ``l(y, z) = logsumexp(z) -
      y.z``. The intercept is not identifiable (adding a constant to every class changes
      nothing); the solvers start it at mean zero and keep its mean unchanged, which is
      scikit-learn's "symmetric parametrization".

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from skimplicit.solvers import Logistic
    >>> X = jnp.array([[1.0], [-1.0]]); y = jnp.array([1.0, 0.0])
    >>> round(float(Logistic().value(X, y, jnp.zeros(1))), 4)   # 2 log 2
    1.3863
    """

    def sample_scale(self, sw):
        """Per-sample factor ``v`` of the loss: ``s`` (a weighted sum)."""
        return sw

    def loss(self, Z, Y, v):
        """``sum_i v_i l(y_i, z_i)`` (per leading batch index)."""
        if Z.shape[-1] == 1:
            li = jnp.logaddexp(0.0, Z[..., 0]) - Y[..., 0] * Z[..., 0]
        else:
            li = jax.nn.logsumexp(Z, axis=-1) - jnp.sum(Y * Z, axis=-1)
        return jnp.sum(v * li, axis=-1)

    def _proba(self, Z):
        return jax.nn.sigmoid(Z) if Z.shape[-1] == 1 else jax.nn.softmax(Z, axis=-1)

    def dloss(self, Z, Y):
        """Per-sample derivative in ``z``: ``p - y`` (``p`` sigmoid or softmax)."""
        return self._proba(Z) - Y

    def d2loss(self, Z, Y):
        """Per-sample Hessian in ``z``: ``p (1 - p)`` or ``diag(p) - p p^T``, ``(n, K, K)``."""
        P = self._proba(Z)
        if Z.shape[-1] == 1:
            return (P * (1 - P))[..., None]
        K = Z.shape[-1]
        return P[..., :, None] * jnp.eye(K, dtype=Z.dtype) - P[..., :, None] * P[..., None, :]

    def d2loss_matvec(self, Z, Y, dZ):
        """Per-sample Hessian times ``dZ`` (without forming ``(n, K, K)``)."""
        P = self._proba(Z)
        if Z.shape[-1] == 1:
            return P * (1 - P) * dZ
        return P * dZ - P * jnp.sum(P * dZ, axis=-1, keepdims=True)

    def hess_bound(self, n_outputs):
        """Upper bound of the per-sample Hessian's eigenvalues: 1/4 (binary), 1/2."""
        return 0.25 if n_outputs == 1 else 0.5

    def intercept0(self, Y, v):
        """Optimal intercept at ``coef = 0``: the log-odds (centered log-frequencies)."""
        freq = (v @ Y) / jnp.sum(v, axis=-1, keepdims=True)
        tiny = jnp.finfo(Y.dtype).eps
        freq = jnp.clip(freq, tiny, 1 - tiny)
        if Y.shape[-1] == 1:
            return jnp.log(freq) - jnp.log1p(-freq)
        logf = jnp.log(freq)
        return logf - jnp.mean(logf, axis=-1, keepdims=True)


def global_lipschitz(X, v, datafit, n_outputs, fit_intercept, n_power=50):
    """Lipschitz constant of the gradient of ``f`` by power iteration (matrix-free).

    The operator is ``c A^T diag(v) A`` with ``A = X`` centered (weighted) when the
    intercept of :class:`Quadratic` is eliminated, ``A = [X, 1]`` for :class:`Logistic`
    with an intercept, ``A = X`` otherwise; ``c`` is ``datafit.hess_bound``. Each
    iteration costs one product with ``X`` and one with ``X^T``; no ``p x p`` or ``n x n``
    matrix is formed. Returns the estimate times 1.02 (power iteration approaches the
    largest eigenvalue from below). A ``jit``/``vmap``-able function of arrays.
    """
    n, p = X.shape
    dtype = X.dtype
    vsum = jnp.sum(v)
    center = datafit.is_quadratic and fit_intercept
    with_b = fit_intercept and not datafit.is_quadratic

    def op(ub):
        u, b = ub
        z = X @ u + (b if with_b else 0.0)
        if center:
            z = z - (v @ z) / vsum
        vz = v * z
        return X.T @ vz, (jnp.sum(vz) if with_b else jnp.zeros((), dtype))

    def norm(ub):
        return jnp.sqrt(jnp.sum(ub[0] ** 2) + ub[1] ** 2)

    # A deterministic start that is not orthogonal to the top eigenvector in practice.
    u0 = jnp.ones(p, dtype) + jnp.linspace(0.0, 1.0, p, dtype=dtype)
    ub = (u0, jnp.ones((), dtype))
    ub = jax.tree_util.tree_map(lambda a: a / norm(ub), ub)

    def body(_, carry):
        ub, _ = carry
        w = op(ub)
        lam = norm(w)
        return jax.tree_util.tree_map(lambda a: a / jnp.where(lam > 0, lam, 1.0), w), lam

    _, lam = jax.lax.fori_loop(0, n_power, body, (ub, jnp.zeros((), dtype)))
    return 1.02 * datafit.hess_bound(n_outputs) * lam
