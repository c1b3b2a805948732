r"""K-fold validation log-loss of scikit-learn's ``LogisticRegression`` objective.

On each training fold, with ``alpha_k = 1 / C_k`` (``C`` a scalar, or one per class),

.. math::
    \min_{W, b} \; \sum_i s_i \, \ell(y_i, x_i^\top W + b)
    + \sum_k \alpha_k \Big(\rho \|W_k\|_1 + \frac{1 - \rho}{2} \|W_k\|_2^2\Big),

which for a scalar ``C`` is scikit-learn's ``C * sum_i s_i l_i + penalty`` divided by
``C`` (same minimizer). ``l`` is the binary logistic loss (one coefficient vector, for
``classes_[1]``) or the multinomial loss (``n_classes`` vectors, intercept with mean zero:
scikit-learn's symmetric parametrization); ``rho`` is ``l1_ratio``.

Three parts, numerics in module functions:

* **Inner solvers (host, numpy/scipy; nothing to compile)**: Newton-CG for the l2
  penalty, split L-BFGS-B and an active-set polish for l1 / elastic net, in
  :mod:`skimplicit.solvers._host_logistic` (:func:`~skimplicit.solvers.solve_logistic`;
  its docstring holds the measurements behind the choice).
* **Hypergradient (JAX, one jitted call for all folds).** :func:`logistic_hypergrad`:
  implicit differentiation (:func:`~skimplicit.implicit.root_vjp`) of the stationarity
  conditions, restricted to the support (identity off it; ``rho = 0`` leaves every
  nonzero coefficient in the system), vmapped over the folds padded to one shape.
* :class:`LogisticCVProblem`: the tunable problem (see
  :mod:`skimplicit.tuning._protocol`) that wires them.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.experimental import sparse as jsparse
import numpy as np
import scipy.sparse as sp

from ..implicit import root_vjp
from ..implicit.linear_solve import solve_cg, solve_cholesky
from ..solvers import ElasticNet
from ..solvers._host_cd import dense
from ..solvers._host_logistic import (REFINE_TOL, c_min, c_ridge, column_moments,
                                      column_scales, decision_values, host_matrix,
                                      fold_moments, intercept_at_zero, log_loss_terms,
                                      newton_cg_gram, one_hot, probabilities,
                                      refine_logistic, solve_logistic, uses_cov_precond)
from ..tuning import CVProblem
from ..tuning._progress import check_time
from ..tuning._protocol import Hyperparameter
from ..utils import check_fold_classes
from ..utils._rows import fold_view_grams
from ..tuning._kernel import (Kernel, aligned_zeros, bucket, pad_stack, solve_with_fallback,
                              t_matmul)

__all__ = ["LogisticCVProblem", "LogisticSearchSpace", "encode_folds", "logistic_hypergrad",
           "size_bucket"]


# ======================================================================================
# Hypergradient kernel (JAX): all folds in one jitted call
# ======================================================================================


def _probs(Z, binary):
    return jax.nn.sigmoid(Z) if binary else jax.nn.softmax(Z, axis=-1)


def _stationarity(theta, hp, X, Y, sw, b_mean, *, binary, fit_intercept):
    """Optimality residual of the training objective, restricted to the support.

    ``F_W = where(W != 0, X^T (s (P - Y)) + alpha ((1 - rho) W + rho sign W), W)`` and
    ``F_b = sum_i s_i (p_i - y_i)`` (plus ``mean(b) - b_mean`` for the multinomial
    intercept, whose direction ``(1, ..., 1)`` is otherwise free). Its Jacobian in
    ``(W, b)`` is the Hessian on the support and the identity off it: symmetric positive
    definite, hence the conjugate-gradient / Cholesky solves. The gradient of the loss
    is written out: no nested automatic differentiation (a smaller, faster-to-compile
    graph).
    """
    W, b = theta
    alpha, rho = hp
    mask = jax.lax.stop_gradient(W != 0)
    Wm = jnp.where(mask, W, 0.0)
    Z = X @ Wm
    if fit_intercept:
        Z = Z + b
    R = (_probs(Z, binary) - Y) * sw[:, None]
    FW = jnp.where(mask, t_matmul(X, R) + alpha * ((1.0 - rho) * Wm + rho * jnp.sign(W)), W)
    if not fit_intercept:
        return FW, b
    Fb = jnp.sum(R, axis=0)
    if not binary:
        Fb = Fb + (jnp.mean(b) - b_mean)
    return FW, Fb


def _validation_loss(theta, Xt, Yt, swt, *, binary, fit_intercept, loss="log_loss"):
    W, b = theta
    Z = Xt @ W
    if fit_intercept:
        Z = Z + b
    if loss == "brier":
        # scikit-learn's brier_score_loss as its neg_brier_score scorer computes it:
        # (p - y)^2 for binary problems, sum_k (p_k - y_k)^2 for 3 classes or more.
        li = jnp.sum((_probs(Z, binary) - Yt) ** 2, axis=1)
    elif binary:
        li = jnp.logaddexp(0.0, Z[:, 0]) - Yt[:, 0] * Z[:, 0]
    else:
        li = jax.nn.logsumexp(Z, axis=1) - jnp.sum(Yt * Z, axis=1)
    return jnp.sum(swt * li) / jnp.sum(swt)


_SOLVE_TOL = 1e-12
_ACCEPT_RESIDUAL = 1e-9  # a failed solve above this (see solve_with_fallback)


def _one_fold(X, Y, sw, Xt, Yt, swt, W, b, alpha, rho, uW, ub, ridge, *, binary,
              fit_intercept, solve, shapes, loss="log_loss", solve_tol=_SOLVE_TOL):
    if shapes is not None:
        # Sparse folds: (data, indices) of BCOO matrices, zero-padded to one length.
        n, k, m = shapes
        (data, idx), (data_t, idx_t) = X, Xt
        xsq = jnp.sum(sw[idx[:, 0]] * data * data)
        X = jsparse.BCOO((data, idx), shape=(n, k))
        Xt = jsparse.BCOO((data_t, idx_t), shape=(m, k))
    else:
        k = X.shape[1]
        xsq = jnp.dot(sw, jnp.sum(X * X, axis=1))  # (X unbatched in _logistic_hypergrad_rows)
    theta = (W, b)
    val, g = jax.value_and_grad(_validation_loss)(theta, Xt, Yt, swt, binary=binary,
                                                  fit_intercept=fit_intercept, loss=loss)
    F = partial(_stationarity, binary=binary, fit_intercept=fit_intercept)
    # No ridge unless the caller asks for one (``ridge > 0``, relative to this scale of
    # the Hessian's diagonal): the fallback of a rank-deficient support system (pure L1,
    # more active coefficients than the rank of X_S) whose solve failed its residual check
    # (see ``solve_with_fallback``); well-posed systems are solved as they are.
    scale = xsq / (4.0 * k) + jnp.mean(alpha)
    # Solved to a relative residual of 1e-12 (a weighted problem and its repeated-rows
    # twin then get the same hypergradients to ~1e-12), accepted up to 1e-9 (the default
    # criterion; 1e-12 is out of reach on l1 problems at C = 1e4 on breast cancer).
    lin = partial(solve_cholesky if solve == "cholesky" else solve_cg, ridge=ridge * scale,
                  tol=solve_tol)
    args = ((alpha, rho), X, Y, sw, jax.lax.stop_gradient(jnp.mean(b)))
    (d_hp, *_), u, info = root_vjp(F, theta, args, g, solve=lin, init=(uW, ub),
                                   return_info=True)
    d_alpha, d_rho = d_hp
    return val, d_alpha, d_rho, u[0], u[1], info.success, info.residual


def _logistic_hypergrad(X, Y, sw, Xt, Yt, swt, W, b, alpha, rho, uW, ub, ridge, *, binary,
                        fit_intercept=True, solve="cg", shapes=None, loss="log_loss",
                        solve_tol=_SOLVE_TOL):
    """Validation log-loss of each fold and its gradient in ``alpha = 1/C`` and ``rho``.

    Shapes (``F`` folds padded to ``n`` training and ``m`` test rows, ``k`` columns
    (all features, or the support's), ``K`` outputs: 1 binary, ``n_classes`` multinomial):
    ``X (F, n, k)``, ``Y (F, n, K)`` targets from :func:`one_hot`, ``sw (F, n)`` training
    weights (0 on padding), ``Xt (F, m, k)``, ``Yt (F, m, K)``, ``swt (F, m)``,
    ``W (F, k, K)`` and ``b (F, K)`` the inner solutions, ``alpha (F, K)``, ``rho (F,)``,
    ``uW``/``ub`` warm starts of the linear system (the previous call's ``u``),
    ``ridge (F,)`` a relative ridge of the system (0: none; the fallback of a singular one).
    Sparse folds: ``X`` and ``Xt`` are pairs ``(data (F, nnz), indices (F, nnz, 2))`` of
    zero-padded COO entries and ``shapes = (n, k, m)`` (static).

    ``loss``: the validation loss, ``"log_loss"`` or ``"brier"`` (static). ``solve_tol``:
    the linear system's relative residual (a Python float; the device path's float32
    solves ask for less).

    Returns per fold: ``loss``, ``d loss / d alpha (F, K)``, ``d loss / d rho``, the linear
    system's solution ``(uW, ub)``, its success flag and relative residual.
    """
    fn = partial(_one_fold, binary=binary, fit_intercept=fit_intercept, solve=solve,
                 shapes=shapes, loss=loss, solve_tol=solve_tol)
    return jax.vmap(fn)(X, Y, sw, Xt, Yt, swt, W, b, alpha, rho, uW, ub, ridge)


def _logistic_hypergrad_rows(X, Y, sw, swt, W, b, alpha, rho, uW, ub, ridge, *, binary,
                             fit_intercept=True, solve="cg", loss="log_loss",
                             solve_tol=_SOLVE_TOL):
    """:func:`_logistic_hypergrad` of folds that are weights on the rows of one array.

    ``X (N, k)`` and ``Y (N, K)``: the data set's distinct rows, shared by every fold (one
    copy, not ``F``); ``sw (F, N)``: each fold's training weights (0 off its training
    rows); ``swt (F, N)``: its test weights (0 off its test rows). The other arguments and
    the outputs as in :func:`_logistic_hypergrad`. A row of weight 0 adds an exact 0 to
    every sum, so each fold's values are those of its own rows. The products with ``X``
    of all folds are one matrix product (``X`` read once for all folds), over ``N`` rows
    instead of each fold's own.
    """
    fn = partial(_one_fold, binary=binary, fit_intercept=fit_intercept, solve=solve,
                 shapes=None, loss=loss, solve_tol=solve_tol)

    def one(sw_f, swt_f, *args):
        return fn(X, Y, sw_f, X, Y, swt_f, *args)

    return jax.vmap(one)(sw, swt, W, b, alpha, rho, uW, ub, ridge)


_STATIC = ("binary", "fit_intercept", "solve", "shapes", "loss")
# On CPU, compilation is most of a small fit's time: fast-compiling options (measured on
# this kernel, 5 folds of 3000 x 100: compile 1.05 s -> 0.35 s CPU, the compiled call not
# slower: 0.053 s -> 0.045 s).
logistic_hypergrad = Kernel(_logistic_hypergrad, static_argnames=_STATIC)


logistic_hypergrad.__doc__ = _logistic_hypergrad.__doc__
logistic_hypergrad_rows = Kernel(_logistic_hypergrad_rows,
                                 static_argnames=("binary", "fit_intercept", "solve", "loss"))


# ======================================================================================
# The tunable problem
# ======================================================================================


def size_bucket(n, minimum=8):
    """Round ``n`` up to one of 4 sizes per octave (at most 25 % padding, few shapes).

    Padded training rows have zero weight, padded test rows zero weight, padded feature
    columns are zero (their coefficient is zero: identity rows of the system), so the
    padding is exact while fits of similar sizes share one compiled kernel.
    """
    n = max(int(n), 1)
    if n <= minimum:
        return minimum
    step = max(minimum, 2 ** (int(np.floor(np.log2(n))) - 2))
    return int(-(-n // step) * step)


def _coo_stack(mats):
    """``(data (F, nnz), indices (F, nnz, 2))`` of sparse matrices, zero-padded."""
    # (a small test fold may have been densified by host_matrix while training stays sparse)
    coos = [M.tocoo() if sp.issparse(M) else sp.coo_matrix(M) for M in mats]
    nnz = size_bucket(max(max(M.nnz for M in coos), 1))
    data = np.zeros((len(coos), nnz))
    idx = np.zeros((len(coos), nnz, 2), dtype=np.int32)
    for i, M in enumerate(coos):
        data[i, :M.nnz] = M.data
        idx[i, :M.nnz, 0] = M.row
        idx[i, :M.nnz, 1] = M.col
    return data, idx


def _columns(X, cols):
    """Dense copy of the columns ``cols`` of ``X`` (dense or sparse)."""
    if cols is None:
        return dense(X)
    Xc = X[:, cols]
    return Xc.toarray() if sp.issparse(Xc) else np.asarray(Xc)


# Entries of the stacked dense folds beyond which the kernel refuses dense data (2 GB).
_MAX_DENSE_ENTRIES = 2.5e8


def encode_folds(folds, class_weight=None):
    """Folds with labels as class indices (and class weights folded into the training
    sample weights, from each training fold's labels as ``LogisticRegression.fit`` would
    compute them). Returns ``(encoded folds, classes)``."""
    from sklearn.utils.class_weight import compute_class_weight

    classes = np.unique(np.concatenate([np.asarray(f.y_train) for f in folds]
                                       + [np.asarray(f.y_test) for f in folds]))
    if classes.size < 2:
        raise ValueError(
            f"Logistic regression needs samples of at least 2 classes; got {classes.size}."
        )
    encoded = []
    for i, f in enumerate(folds):
        sw = np.asarray(f.sw_train, float)
        check_fold_classes(f.y_train, sw, classes, f"training fold {i}")
        if class_weight is not None:
            present = np.unique(f.y_train)
            cw = compute_class_weight(class_weight, classes=present, y=f.y_train,
                                      sample_weight=sw)
            sw = sw * cw[np.searchsorted(present, f.y_train)]
        encoded.append(f._replace(y_train=np.searchsorted(classes, f.y_train), sw_train=sw,
                                  y_test=np.searchsorted(classes, f.y_test)))
    return encoded, classes


class LogisticSearchSpace:
    """The search space of the logistic problems (host and device): the bounds of ``C``
    from the folds' own scales (``c_min``, ``c_ridge``), the coarse cover and the growth
    of the automatic upper bound."""

    def _set_space(self, folds_, *, n_classes, fit_intercept, l1_ratio, tune_l1_ratio,
                   C_per_class, tol, max_iter, bounds, l1_ratio_bounds, path_step,
                   max_path, loss):
        """Settings and hyperparameters; ``folds_``: each training fold's host ``(X, Y,
        sw)`` (``Y`` from :func:`one_hot`)."""
        if loss not in ("log_loss", "brier"):
            raise ValueError(f"loss must be 'log_loss' or 'brier'; got {loss!r}.")
        self.loss = self.loss_name = loss
        self.n_classes = int(n_classes)
        self.binary = self.n_classes == 2
        self.K = 1 if self.binary else self.n_classes
        self.fit_intercept = fit_intercept
        self.l1_ratio, self.tune_l1_ratio = float(l1_ratio), bool(tune_l1_ratio)
        self.C_per_class = bool(C_per_class)
        self.tol, self.max_iter = tol, max_iter
        self.l1_ratio_bounds = (tuple(float(b) for b in l1_ratio_bounds)
                                if self.tune_l1_ratio else (0.0, 1.0))
        self.path_step, self.max_path = path_step, max_path
        # The data's own units of C (no absolute constant: rescaling X or the weights
        # rescales them as the optimum). l1: c_min, the dead zone's edge (~ 1 / scale);
        # l2: c_ridge, from the Hessian at the origin (~ 1 / scale^2).
        cm = np.array([c_min(X, Y, s, fit_intercept) for X, Y, s in folds_])
        cr = np.array([c_ridge(X, Y, s, fit_intercept) for X, Y, s in folds_])
        finite, finite_r = cm[np.isfinite(cm)], cr[np.isfinite(cr)]
        # Every fold's solution is nonzero for C > max_f c_min_f * rho (L1 dead zone).
        self.c_min = float(finite.max()) if finite.size else 1.0
        self.c_ridge = float(finite_r.max()) if finite_r.size else self.c_min
        rho_hi = max(l1_ratio_bounds) if self.tune_l1_ratio else self.l1_ratio
        rho_lo = min(l1_ratio_bounds) if self.tune_l1_ratio else self.l1_ratio
        if rho_hi == 0:
            self.c_scale = self.c_ridge
        elif rho_lo == 1:
            self.c_scale = self.c_min
        else:  # elastic net: room for both terms' scales
            self.c_scale = max(self.c_min, self.c_ridge)
        self._data_bounds = bounds is None  # (scale with the data: see initial_points)
        self._n_extended, self.max_extend = 0, 2  # (see extend_bound)
        if bounds is None:
            lower = 1.05 * self.c_min * rho_hi if rho_hi > 0 else 1e-3 * self.c_scale
            bounds = (lower, 1e4 * self.c_scale)
        self.bounds = bounds
        size = self.K if self.C_per_class else None
        self.hyperparameters = [Hyperparameter("C", bounds[0], bounds[1], "log", size)]
        if self.tune_l1_ratio:
            self.hyperparameters.append(
                Hyperparameter("l1_ratio", l1_ratio_bounds[0], l1_ratio_bounds[1], "linear"))

    # -- coarse path ------------------------------------------------------------------------
    def initial_points(self):
        """The coarse cover: the whole search interval of ``C``, strong to weak.

        Log-spaced steps of at most ``path_step`` (half a decade; wider when more than
        ``max_path`` points would be needed), from the lower bound (small ``C``: cheap,
        warm-starting the next) up to the upper bound, both included. It never stops
        early: on nearly separable data the loss keeps falling up to the upper bound.
        When ``l1_ratio`` is tuned the cover runs at the start value of ``l1_ratio``
        clipped to its bounds.
        """
        lo, hi = (float(np.min(self.hyperparameters[0].lower)),
                  float(np.max(self.hyperparameters[0].upper)))
        step = max(np.log(self.path_step), np.log(hi / lo) / max(self.max_path - 1, 1))
        n = max(2, int(np.ceil(np.log(hi / lo) / step - 1e-9)) + 1)
        rho = float(np.clip(self.l1_ratio, *self.l1_ratio_bounds))
        self._path_losses = []
        points = []
        if self._data_bounds and np.isclose(lo, self.bounds[0], rtol=1e-12) and np.isclose(
                hi, self.bounds[1], rtol=1e-12):
            grid = np.geomspace(lo, hi, n)  # the data's own interval: scales with the data
        else:
            # Bounds set from outside (a search's param_bounds) are fixed numbers: the
            # interior points sit on the data's grid c_scale * e^(k step) instead, so that
            # rescaling X or the weights moves them as the optimum (all weights doubled:
            # every point halved, the same descent), the bounds themselves included.
            k = np.arange(np.ceil(np.log(lo / self.c_scale) / step + 0.25),
                          np.floor(np.log(hi / self.c_scale) / step - 0.25) + 1)
            grid = np.concatenate([[lo], self.c_scale * np.exp(k * step), [hi]])
        for C in grid:
            C = float(np.clip(C, lo, hi))
            p = {"C": C if not self.C_per_class else np.full(self.K, C)}
            if self.tune_l1_ratio:
                p["l1_ratio"] = rho
            points.append(p)
        return points

    def extend_bound(self, name, side):
        """Grow the data-derived upper bound of ``C`` by ``10^1.5``, at most
        ``max_extend`` times (to ``1e7 c_scale``): on nearly separable data the validation
        loss keeps falling with ``C`` past ``1e4 c_scale`` (see :func:`~skimplicit.
        model_selection._outer._grow_bounds`). Not further: the penalty is then the only
        curvature along the data's separating directions, and the condition number
        (~ ``C / c_scale``) reaches 1e7, beyond which a solution is no longer determined
        to 1e-7 in floating point. With an l1 term the only curvature on the support is
        the loss's, which vanishes on separable data: solutions there are determined only
        to ~1e-5 (weighted and repeated-row fits of scikit-learn's sample-weight check,
        with optimality violations of 1e-14, differed by 4.5e-5 at 1e7 c_scale), and the
        estimator merges repeated rows into weights (:func:`~skimplicit.utils.
        merge_duplicate_rows`) so that such fits see the same arrays. Not when
        ``l1_ratio`` is tuned. Bounds set by the user never move."""
        if name != "C" or side != "upper" or not self._data_bounds \
                or self._n_extended >= self.max_extend or self.tune_l1_ratio:
            return False
        hp = self.hyperparameters[0]
        upper = 10 ** 1.5 * float(np.max(hp.upper))
        self.hyperparameters[0] = Hyperparameter("C", hp.lower, upper, "log", hp.size)
        self.bounds = (self.bounds[0], upper)
        self._n_extended += 1
        return True

    def _alpha(self, C):
        return np.broadcast_to(1.0 / np.asarray(C, float), (self.K,)).copy()


class LogisticCVProblem(LogisticSearchSpace, CVProblem):
    """Mean held-out log-loss over K folds of scikit-learn's ``LogisticRegression``.

    Tuned over ``C`` (log scale; a scalar, or one per class with ``C_per_class``) and,
    optionally, ``l1_ratio`` (linear scale). Inner solves and the hypergradient as in the
    module docstring. The validation loss of a fold is its test samples' log-loss
    weighted by their sample weights (class weights act on the training loss only, as in
    ``LogisticRegressionCV``).

    Parameters
    ----------
    folds : list of FoldData
        Labels encoded as ``0 .. n_classes - 1``; ``sw_train`` holds sample times class
        weights, ``sw_test`` the sample weights.
    n_classes : int
    fit_intercept : bool
    l1_ratio : float
        Fixed mix, or the start of the path when ``tune_l1_ratio``.
    tune_l1_ratio : bool
    C_per_class : bool
        One ``C`` per class (multinomial only).
    tol, max_iter : float, int
        Inner solver accuracy (scikit-learn's meaning) and iteration cap. During tuning,
        solves use ``min(tol, 1e-6) * precision``.
    bounds : (float, float) or None
        Search interval of ``C``; ``None``: from ``c_min`` (l1, see :func:`c_min`) and
        ``c_ridge`` (l2, see :func:`c_ridge`), as ``ImplicitLogisticRegressionCV``'s
        'auto'.
    l1_ratio_bounds : (float, float)
    loss : {"log_loss", "brier"}, default="log_loss"
        The validation loss: the log-loss, or the Brier score as scikit-learn's
        ``neg_brier_score`` scorer computes it (``(p - y)^2`` for binary problems,
        ``sum_k (p_k - y_k)^2`` otherwise).
    rows : tuple or None, default=None
        ``(X, y, first, train_rows, test_rows)`` when every fold's rows are distinct rows
        of ``X[first]`` (dense; labels ``y[first]``, encoded as the folds'; see
        :func:`~skimplicit.utils._rows.unique_rows`): ``train_rows[i]`` the row of ``X[first]``
        of each row of fold ``i``'s training part, in its order, and likewise
        ``test_rows[i]``. The all-column kernel then reads those rows once for all folds
        (:func:`_logistic_hypergrad_rows`) instead of a stacked copy of every fold.
    """

    # Warm starts (see CVProblem): each fold's inner solution and the hypergradient
    # system's last solution.
    warm_state = ("_W", "_b", "_u", "_a")

    def __init__(self, folds, *, n_classes, fit_intercept=True, l1_ratio=0.0,
                 tune_l1_ratio=False, C_per_class=False, tol=1e-4, max_iter=1000,
                 bounds=None, l1_ratio_bounds=(0.05, 1.0), path_step=10 ** 0.5,
                 max_path=25, loss="log_loss", rows=None):
        self.n_folds = len(folds)
        self._rows = rows if rows is not None and not sp.issparse(rows[0]) else None
        self.X = [host_matrix(f.X_train) for f in folds]
        self.Xt = [host_matrix(f.X_test) for f in folds]
        self.Y = [one_hot(f.y_train, int(n_classes)) for f in folds]
        self.Yt = [one_hot(f.y_test, int(n_classes)) for f in folds]
        self.sw = [np.asarray(f.sw_train, float) for f in folds]
        self.swt = [np.asarray(f.sw_test, float) for f in folds]
        self.n_features = self.X[0].shape[1]
        folds_ = list(zip(self.X, self.Y, self.sw))
        self._set_space(folds_, n_classes=n_classes, fit_intercept=fit_intercept,
                        l1_ratio=l1_ratio, tune_l1_ratio=tune_l1_ratio,
                        C_per_class=C_per_class, tol=tol, max_iter=max_iter, bounds=bounds,
                        l1_ratio_bounds=l1_ratio_bounds, path_step=path_step,
                        max_path=max_path, loss=loss)
        # The hypergradient kernel sees X / x_unit (a power of 2 near the columns' typical
        # standard deviation: exact in floating point, 1 on standardized data), so that
        # its linear system, whose W block scales like X^2 and intercept block does not,
        # keeps the conditioning of standardized data whatever the units of X.
        var = np.mean([np.mean(column_moments(X, s, fit_intercept)[0]) for X, _, s in folds_])
        self.x_unit = 2.0 ** np.round(np.log2(np.sqrt(var))) if np.isfinite(var) and var > 0 \
            else 1.0
        # Likewise a unit of the sample weights (a power of 2 near their mean: exact): the
        # kernel sees s / w_unit and alpha / w_unit (the same solution), so that its system
        # is scaled as with unit weights whatever the weights' units.
        wmean = float(np.mean([np.mean(s) for s in self.sw]))
        self.w_unit = 2.0 ** np.round(np.log2(wmean)) if np.isfinite(wmean) and wmean > 0 \
            else 1.0
        # Each fold's column scales for its inner solves, computed once (at every solve
        # they had cost a pass over the fold and a copy of it: 2 of 16 s at 2000 x 5000).
        self._col_scales = [column_scales(X, s, fit_intercept) for X, _, s in folds_]
        scales = np.concatenate([c.ravel() for c in self._col_scales])
        self._scale_ratio = (float(scales.max()) / float(scales.min()) if scales.size
                             else 1.0)  # (see _solves_in_rows)
        self._W = [None] * self.n_folds
        self._b = [None] * self.n_folds
        self._a = [None] * self.n_folds  # (row coordinates of W: see _solves_in_rows)
        self._fold_grams = None
        self._covs = [None] * self.n_folds  # (fold_moments, made on first use)
        self._u = None
        self._path_losses = []
        # Padded, stacked dense arrays for the kernel (all columns), built on first use.
        self._stack_cache = {}
        self.n_compiles = 0
        self._prefetch_kernel()

    def _prefetch_kernel(self):
        """All-column dense kernels have one shape per fit, known now: compile it in the
        background while the coarse path runs (see :class:`~._hypergrad.Kernel`)."""
        if not self._all_columns() or sp.issparse(self.X[0]):
            return
        F, K = self.n_folds, self.K
        n, m, k = self._padded_sizes()
        static = dict(binary=self.binary, fit_intercept=self.fit_intercept, solve="cg",
                      loss=self.loss)
        if self._rows is not None:
            N = size_bucket(self._rows[2].size)
            shapes = [(N, k), (N, K), (F, N), (F, N), (F, k, K), (F, K), (F, K), (F,),
                      (F, k, K), (F, K), (F,)]
            kernel = logistic_hypergrad_rows
        else:
            if F * (n + m) * k > _MAX_DENSE_ENTRIES:  # _stacked raises when it is called
                return
            shapes = [(F, n, k), (F, n, K), (F, n), (F, m, k), (F, m, K), (F, m), (F, k, K),
                      (F, K), (F, K), (F,), (F, k, K), (F, K), (F,)]
            kernel, static = logistic_hypergrad, dict(static, shapes=None)
        f64 = np.dtype(np.float64)
        with jax.enable_x64(True):
            kernel.prefetch(*(jax.ShapeDtypeStruct(sh, f64) for sh in shapes), **static)

    # -- inner solves ----------------------------------------------------------------------
    # Column scales within this ratio of each other (standardized data: 1) keep the
    # conjugate gradient of the row coordinates, which has no diagonal preconditioner,
    # as well conditioned as the column-scaled one.
    ROW_SOLVE_MAX_SCALE_RATIO = 4.0

    def _solves_in_rows(self, rho):
        """Whether fold solves work in the coordinates of the fold's rows
        (:func:`~skimplicit.solvers._host_logistic.newton_cg_gram`, ``W = X^T a``): binary
        pure-l2 problems on ``rows`` with at least twice as many columns as training rows
        and columns of comparable scales. Their Gram matrices come from one product of
        the data set's distinct rows (``N^2 p``, at most the size of ``X`` since
        ``N <= p``); a conjugate-gradient iteration then costs ``n^2`` instead of
        ``2 n p`` (2000 x 5000, a path of 9 C on one 1600-row fold: 0.21 s against 0.55 s,
        the Gram matrix 0.14 s once)."""
        if self._rows is None or not self.binary or rho != 0.0 or self.tune_l1_ratio:
            return False
        p, n = self.n_features, max(X.shape[0] for X in self.X)
        if p < 2 * n or self._rows[2].size > p:
            return False
        return self._scale_ratio <= self.ROW_SOLVE_MAX_SCALE_RATIO

    def _fold_gram(self, i):
        """Fold ``i``'s Gram matrix ``X_i X_i^T``: rows of the data set's (computed once
        for all folds), kept; for folds that are :func:`~skimplicit.utils._rows.fold_views`,
        operators on one matrix (:func:`~skimplicit.utils._rows.fold_view_grams`: no copy
        per fold)."""
        if self._fold_grams is None:
            X, _, first, train_rows, test_rows = self._rows
            grams = fold_view_grams(train_rows, test_rows, self.Xt)
            if grams is None:
                if first.size == X.shape[0]:  # (every row distinct: no copy of X)
                    G = X @ X.T
                    rows = [first[r] for r in train_rows]
                else:
                    Xu = X[first]
                    G = Xu @ Xu.T
                    del Xu
                    rows = train_rows
                grams = [G[np.ix_(r, r)] for r in rows]
            self._fold_grams = grams
        return self._fold_grams[i]

    def _solve_rows(self, i, alpha, tol):
        """Fold ``i``'s binary l2 solve in its row coordinates (see
        :meth:`_solves_in_rows`), as :meth:`_solve`."""
        X, sw, y = self.X[i], self.sw[i], self.Y[i][:, 0]
        a0, b0 = self._a[i], self._b[i]
        if a0 is None:
            a0 = np.zeros(X.shape[0])
            b0 = intercept_at_zero(self.Y[i], sw) if self.fit_intercept else np.zeros(1)
        kw = dict(max_iter=self.max_iter, fit_intercept=self.fit_intercept,
                  col_scale=self._col_scales[i])
        K = self._fold_gram(i)
        a, b, W, n_iter, ok = newton_cg_gram(K, X, y, sw, alpha[0], a0, b0, tol=tol, **kw)
        if ok and n_iter == 0 and not np.any(W):  # as fit_logistic
            a, b, W, it2, _ = newton_cg_gram(K, X, y, sw, alpha[0], a, b, tol=tol * 1e-3,
                                             **{**kw, "max_iter": 3})
            n_iter += it2
        W, b = W[:, None], np.array([b])
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            W, b, a, ok = np.zeros_like(W), np.zeros_like(b), None, False
        self._a[i], self._W[i], self._b[i] = a, W, b
        return W, b, n_iter, ok

    def _cov(self, i, rho):
        """Fold ``i``'s :func:`~skimplicit.solvers._host_logistic.fold_moments` for the
        preconditioner of its l2 solves, where they use it (kept), else None."""
        if rho != 0.0 or not uses_cov_precond(self.X[i], self.K):
            return None
        if self._covs[i] is None:
            self._covs[i] = fold_moments(self.X[i], self.sw[i])
        return self._covs[i]

    def _solve(self, i, alpha, rho, tol, polish=True):
        if self._solves_in_rows(rho):
            return self._solve_rows(i, alpha, tol)
        W, b, info = solve_logistic(
            self.X[i], self.Y[i], ElasticNet(alpha, rho), sample_weight=self.sw[i],
            init=(self._W[i], self._b[i]), tol=tol, max_iter=self.max_iter,
            fit_intercept=self.fit_intercept, polish=polish, col_scale=self._col_scales[i],
            cov=self._cov(i, rho))
        n_iter, ok = info.n_iter, info.converged
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            W, b, ok = np.zeros_like(W), np.zeros_like(b), False
        self._W[i], self._b[i] = W, b
        return W, b, n_iter, ok

    def _fold_loss(self, i, W, b):
        Z = decision_values(self.Xt[i], W, b)
        if self.loss == "brier":
            terms = np.sum((probabilities(Z) - self.Yt[i]) ** 2, axis=1)
        else:
            terms = log_loss_terms(Z, self.Yt[i])
        return float(np.dot(self.swt[i], terms) / self.swt[i].sum())

    FAR_TOL_FACTOR, FAR_TOL = 100.0, 1e-4
    """A first try at a path point after a far one (see :meth:`evaluate`) runs at
    ``FAR_TOL_FACTOR`` times the path's tolerance (``min(tol, 1e-6)``), at most
    ``FAR_TOL``: ``LogisticRegressionCV``'s default, at which its own path ranks its
    ``Cs``. At 5000 x 1000 (one fold, a scratch check), past the best, 1e-4 instead of
    1e-6: the points' solves 58 % faster, their log-loss within 2.2e-3 (relative)."""

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        C = params["C"]
        rho = float(params.get("l1_ratio", self.l1_ratio))
        alpha = self._alpha(C)
        # Path points (no gradient) only rank values of C: scikit-learn's tolerance
        # suffices; hypergradients need tighter solves (their error is linear in it).
        tol = min(self.tol, 1e-6) * precision
        sols, iters, conv = [], [], []
        # Exact (polished, or refined for l2) solutions where they matter: hypergradients,
        # and tight tolerances (finite-difference checks: a solve stopped by its gradient
        # test at 1e-13 still moved the Brier loss's differences at a step of 1e-4 by
        # 5e-8); path points only rank values of C.
        polish = with_grad or tol < 1e-8
        first = [0] * self.n_folds
        far_tol = max(min(self.FAR_TOL_FACTOR * tol, self.FAR_TOL), tol)
        if not with_grad and far_tol > tol and self._path_losses and self.far_from_best(
                self._path_losses[-1], min(self._path_losses)):
            # After a path point far above the path's best: first tried at a looser
            # tolerance (FAR_TOL_FACTOR times, at most FAR_TOL), kept as CVProblem's
            # keep_first_try says (it only has to rank below the best); else solved again
            # from there as usual. Past the best, large C costs most of the path (5000 x
            # 1000, a profile: its last six points, a third of the fit).
            tries = []
            for i in range(self.n_folds):
                check_time()
                tries.append(self._solve(i, alpha, rho, far_tol, False))
            loss_f = np.array([self._fold_loss(i, W, b)
                               for i, (W, b, _, _) in enumerate(tries)])
            first = [it for _, _, it, _ in tries]
            if self.keep_first_try([ok for *_, ok in tries], first, float(loss_f.mean()),
                                   min(self._path_losses)):
                info = {"n_iter": first,
                        "support_size": [int(np.count_nonzero(W)) for W, *_ in tries]}
                self._path_losses.append(float(loss_f.mean()))
                return self.evaluation(loss_f, None, True, **info)
        for i in range(self.n_folds):
            check_time()  # max_time, between folds (raises _progress.TimeUp)
            W, b, it, ok = self._solve(i, alpha, rho, tol, polish)
            it += first[i]
            if polish and rho == 0.0 and ok:
                # The l2 solution made exact to rounding by up to 3 more Newton steps
                # (quadratic convergence), as l1 ones are by their polish: the
                # hypergradient's error is otherwise linear in ``tol`` (1e-7 to 7e-6
                # relative at 1e-6 on the breast-cancer and digits data).
                W, b, it2 = refine_logistic(self.X[i], self.Y[i], self.sw[i], alpha, W, b,
                                            fit_intercept=self.fit_intercept,
                                            tol=REFINE_TOL, max_iter=3, cov=self._cov(i, rho))
                self._W[i], self._b[i] = W, b
                it += it2
            sols.append((W, b))
            iters.append(it)
            conv.append(ok)
        info = {"n_iter": iters, "support_size": [int(np.count_nonzero(W)) for W, _ in sols]}
        if not with_grad:
            loss_f = np.array([self._fold_loss(i, W, b) for i, (W, b) in enumerate(sols)])
            self._path_losses.append(float(loss_f.mean()))
            return self.evaluation(loss_f, None, all(conv), **info)
        check_time()  # before the hypergradient kernel (its first call compiles)
        loss_f, d_alpha, d_rho, ok, res, ridge = self._hypergrad(sols, alpha, rho)
        # d loss / d C_k = -alpha_k^2 d loss / d alpha_k (alpha = 1 / C), mean over folds.
        g_alpha = d_alpha.mean(axis=0)
        g_C = -g_alpha * alpha ** 2
        grad = {"C": g_C.copy() if self.C_per_class else float(g_C.sum())}
        if self.tune_l1_ratio:
            grad["l1_ratio"] = float(d_rho.mean())
        info["linear_residual"] = float(np.max(res))
        info["ridge"] = ridge
        return self.evaluation(loss_f, grad, all(conv) and np.all(ok), **info)

    # -- hypergradient ---------------------------------------------------------------------
    def _stacked(self, cols):
        """Padded training and test columns (and targets) of every fold.

        Dense ``(F, n, k)`` arrays, or for large sparse folds (kept sparse on the host)
        COO pairs ``(data (F, nnz), indices (F, nnz, 2))`` padded to one length; or, with
        ``rows`` and all columns, :meth:`_shared_rows`.
        """
        key = None if cols is None else tuple(c.tobytes() for c in cols)
        if key in self._stack_cache:
            return self._stack_cache[key]
        F = self.n_folds
        n, m, k = self._padded_sizes()
        if cols is None and self._rows is not None:
            return self._shared_rows(k)
        Ys = pad_stack(self.Y, (n, self.K))
        Yts = pad_stack(self.Yt, (m, self.K))
        sws = pad_stack(self.sw, (n,)) / self.w_unit
        swts = pad_stack(self.swt, (m,)) / self.w_unit  # (the loss is a weighted mean)
        if cols is not None:
            k = min(bucket(max(1, max(c.size for c in cols)), 64), self.n_features)
            Xs = pad_stack([_columns(self.X[i], cols[i]) for i in range(F)], (n, k))
            Xts = pad_stack([_columns(self.Xt[i], cols[i]) for i in range(F)], (m, k))
            if self.x_unit != 1.0:
                Xs /= self.x_unit
                Xts /= self.x_unit
            return Xs, Ys, sws, Xts, Yts, swts, k, None
        if sp.issparse(self.X[0]):
            Xs, Xts, shapes = _coo_stack(self.X), _coo_stack(self.Xt), (n, k, m)
            if self.x_unit != 1.0:
                Xs, Xts = (Xs[0] / self.x_unit, Xs[1]), (Xts[0] / self.x_unit, Xts[1])
        else:
            if F * (n + m) * k > _MAX_DENSE_ENTRIES:
                raise MemoryError(
                    f"The hypergradient kernel would hold {F} dense folds of {n + m} x {k} "
                    f"(> 2 GB). Pass X as a sparse matrix (kept sparse), or use "
                    f"l1_ratio > 0 (only the support's columns are used)."
                )
            Xs = pad_stack(self.X, (n, k))
            Xts = pad_stack(self.Xt, (m, k))
            if self.x_unit != 1.0:
                Xs /= self.x_unit
                Xts /= self.x_unit
            shapes = None
        # Constant during a fit: moved to the device once, not at every call
        # (``device_put``: ``jnp.asarray`` compiles a small copy kernel per shape).
        with jax.enable_x64(True):
            Xs, Ys, sws, Xts, Yts, swts = jax.device_put((Xs, Ys, sws, Xts, Yts, swts))
        out = (Xs, Ys, sws, Xts, Yts, swts, k, shapes)
        self._stack_cache = {None: out}
        return out

    def _shared_rows(self, k):
        """:meth:`_stacked`'s all-column arrays from ``rows``: ``X`` and ``Y`` once
        (``N`` rows padded to :func:`size_bucket`, ``k`` columns) and each fold's training
        and test weights on them (``(F, N)``), for :func:`_logistic_hypergrad_rows`."""
        X, y, first, train_rows, test_rows = self._rows
        F, N, p = self.n_folds, size_bucket(first.size), X.shape[1]
        Xs = aligned_zeros((N, k))  # (device_put reads it in place on the CPU)
        step = max(1, 2 ** 16 // max(p, 1))  # (by blocks: no whole temporary copy)
        for s in range(0, first.size, step):
            e = min(s + step, first.size)
            Xs[s:e, :p] = X[first[s:e]]
        if self.x_unit != 1.0:
            Xs /= self.x_unit
        Ys = np.zeros((N, self.K))
        Ys[:first.size] = one_hot(y[first], self.n_classes)
        sws, swts = np.zeros((F, N)), np.zeros((F, N))
        for i in range(F):
            sws[i, train_rows[i]] = self.sw[i] / self.w_unit
            swts[i, test_rows[i]] = self.swt[i] / self.w_unit
        with jax.enable_x64(True):
            Xs, Ys, sws, swts = jax.device_put((Xs, Ys, sws, swts))
        out = (Xs, Ys, sws, None, None, swts, k, "rows")
        self._stack_cache = {None: out}
        return out

    def _all_columns(self):
        """Whether the kernel takes every column (l2, or small problems)."""
        return ((self.l1_ratio == 0 and not self.tune_l1_ratio)
                or self.n_features * self.K <= 2048)

    def _padded_sizes(self):
        """``(n, m, k)``: padded training and test rows, and the all-column width."""
        return (size_bucket(max(X.shape[0] for X in self.X)),
                size_bucket(max(X.shape[0] for X in self.Xt)), size_bucket(self.n_features))

    def _support_columns(self, sols):
        """Columns kept in the kernel: all (``None``), else each fold's support."""
        if self._all_columns():
            return None
        return [np.flatnonzero(np.any(W != 0, axis=1)) for W, _ in sols]

    def _hypergrad(self, sols, alpha, rho):
        F = self.n_folds
        cols = self._support_columns(sols)
        Xs, Ys, sws, Xts, Yts, swts, k, shapes = self._stacked(cols)
        if cols is None:
            Ws = pad_stack([W for W, _ in sols], (k, self.K))
        else:
            Ws = pad_stack([W[c] for (W, _), c in zip(sols, cols)], (k, self.K))
        bs = np.stack([b for _, b in sols])
        # In the kernel's units (X / g, W * g, see x_unit) the penalty
        # alpha (rho |W| + (1 - rho) / 2 W^2) is alpha_g (rho_g |W g| + (1 - rho_g) / 2 (W g)^2)
        # with alpha_g rho_g = alpha rho / g and alpha_g (1 - rho_g) = alpha (1 - rho) / g^2.
        g = self.x_unit
        Ws = Ws * g
        mult = rho / g + (1.0 - rho) / g ** 2  # alpha_g / alpha
        rho_g = rho / g / mult
        wu = self.w_unit  # the kernel's weights are s / wu, its penalty alpha / wu
        al = np.broadcast_to(alpha * mult / wu, (F, self.K)).copy()
        rh = np.full(F, rho_g)
        # Conjugate gradient, warm-started from the previous outer step: its iterations
        # cost 2 products with X each, fewer than the k K + K products that Cholesky
        # needs to materialize the system (measured: 5 folds of 3000 x 100, 50 -> 8 ms).
        solve = "cg"
        u = self._u
        if u is None or u[0].shape != Ws.shape or cols is not None:
            u = (np.zeros_like(Ws), np.zeros_like(bs))
        # A failed solve is retried with a ridge on that fold and reported (warning,
        # ``info["ridge"]``); one that fails again leaves the Evaluation not "converged".
        static = dict(binary=self.binary, fit_intercept=self.fit_intercept, solve=solve,
                      loss=self.loss)
        if shapes == "rows":  # every fold's rows from one X (see _shared_rows)
            kernel, args = logistic_hypergrad_rows, (Xs, Ys, sws, swts)
        else:
            kernel, args = logistic_hypergrad, (Xs, Ys, sws, Xts, Yts, swts)
            static["shapes"] = shapes
        loss_f, d_alpha_g, d_rho_g, uW, ub, ok, res, ridge = solve_with_fallback(
            kernel, (*args, Ws, bs, al, rh, u[0], u[1]), static, F, "linear system",
            max_residual=_ACCEPT_RESIDUAL)
        self._u = (uW, ub)
        # Chain rule back to (alpha, rho): d alpha_g / d alpha = mult,
        # d alpha_g / d rho = alpha (1 / g - 1 / g^2), d rho_g / d rho = g / (rho g + 1 - rho)^2.
        d_alpha = d_alpha_g * mult / wu
        d_rho = d_rho_g * (g / (rho * g + 1.0 - rho) ** 2)
        if g != 1.0:
            d_rho = d_rho + (d_alpha_g * alpha / wu).sum(axis=1) * (1.0 / g - 1.0 / g ** 2)
        return loss_f, d_alpha, d_rho, ok, res, ridge
