r"""Host least-squares solvers: scikit-learn's compiled coordinate descent and what is
built around it (NumPy / SciPy on the host, no JAX).

``Quadratic`` datafit (scikit-learn's ``ElasticNet`` scaling, ``1 / (2 n) ||y - X w - b||^2``
weighted as scikit-learn weights it) x ``L1`` / ``ElasticNet`` penalty (a scalar ``alpha``
or one per feature) x the solver :class:`HostCD`:

* :class:`LeastSquaresFold`: one training fold prepared once (weighted means; for dense
  data the centered, sqrt-weight-scaled design, so that the solver never copies or
  re-centers ``X``), with the Gram blocks of its columns (:meth:`~LeastSquaresFold.gram`,
  a cache that successive solves share) and the certified active-set polish
  (:meth:`~LeastSquaresFold.polish`).
* :func:`enet_cd`: scikit-learn's ``ElasticNet`` coordinate descent (warm-started,
  ``check_input=False``) on the prepared fold: working sets for many features, the full Gram
  matrix for many rows, per-feature alphas by column rescaling.
* :func:`solve_enet_host`: the descent and the polish together (what the estimators'
  tuning calls per fold and evaluation), with a :class:`HostSolverInfo`.
* :func:`ridge_dual_solve`: the ridge system through Woodbury's identity when it has more
  columns than rows.

Which variant runs is decided by the measured rules :func:`uses_working_sets`,
:func:`uses_full_gram`, :func:`uses_dual_ridge` and :data:`SPARSE_START` (summed up in
:func:`~skimplicit.solvers.select_solver` with ``host=True``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, enet_path

from ..utils._rows import row_range
from ..utils._threads import capture_warnings

__all__ = ["fold_train_sums", "HostCD", "HostSolverInfo", "LeastSquaresFold", "enet_cd",
           "solve_enet_host",
           "ridge_dual_solve", "uses_working_sets", "uses_full_gram", "uses_dual_ridge",
           "dense"]


def uses_working_sets(n, p):
    """Dense folds with many features are solved on working sets (see :func:`enet_cd`)."""
    return p > 2 * max(n, 100)


def columns_first(n, p):
    """Whether a working-set fold (:func:`uses_working_sets`) keeps its centered design in
    column-major order. Each round of the working-set descent gathers its working set's
    columns (the support plus at least 100 violators, up to about ``2 n``) and forms one
    ``X^T r``. In row-major order a gather touches every cache line (8 entries) of each row
    once the working set holds an eighth of the columns: as slow as a whole pass, through
    NumPy's fancy indexing. In column-major order it reads its columns only, while
    ``X^T r`` runs at about half the speed (OpenBLAS's ``gemv`` on one thread). So
    column-major where ``2 n`` columns are at least an eighth of ``p`` (``bench_shapes.py``
    at 667 x 5000: the elastic net's column gathers were a third of a fit), row-major on
    wider folds (200 x 50000: ``X^T r`` is most of a fit)."""
    return p <= 16 * max(n, 100)


def uses_full_gram(n, p):
    """Dense folds with at least twice as many rows as features (and at most 2048 of
    them) are solved by coordinate descent on their Gram matrix, computed once per fold
    (``O(p^2)`` per sweep instead of ``O(n p)``), as ``LassoCV``'s path does for n > p."""
    return n >= 2 * p and p <= 2048


def uses_dual_ridge(n, k):
    """A ridge system in ``k`` columns of ``n`` rows is solved through Woodbury's identity
    (:func:`ridge_dual_solve`, an ``n x n`` factorization) when ``k > n``."""
    return k > n


def dense(X):
    """``X`` as a dense float array (sparse matrices densified)."""
    return X.toarray() if sp.issparse(X) else np.asarray(X, float)


def ridge_dual_solve(X, d, rhs, n):
    """``(X^T X / n + diag(d))^{-1} rhs`` for ``X`` of shape ``(n, k)``, ``k > n``, ``d > 0``.

    Woodbury: ``D^{-1} rhs - D^{-1} X^T (n I + X D^{-1} X^T)^{-1} X D^{-1} rhs``, one
    ``n x n`` Cholesky factorization (``O(n^2 k)`` in all instead of ``O(n k^2 + k^3)``).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import ridge_dual_solve
    >>> rng = np.random.RandomState(0)
    >>> X, d, rhs = rng.randn(5, 12), np.full(12, 0.3), rng.randn(12)
    >>> x = ridge_dual_solve(X, d, rhs, 5)
    >>> bool(np.allclose((X.T @ X / 5 + np.diag(d)) @ x, rhs))
    True
    """
    dinv = 1.0 / d
    u = dinv * rhs
    M = (X * dinv) @ X.T
    M[np.diag_indices_from(M)] += n
    fac = sla.cho_factor(M, lower=True, check_finite=False)
    return u - dinv * (X.T @ sla.cho_solve(fac, X @ u, check_finite=False))


class HostSolverInfo(NamedTuple):
    """Status of a host solve (the host twin of :class:`~skimplicit.solvers.SolverInfo`).

    Attributes
    ----------
    converged : bool
        Whether scikit-learn's coordinate descent met its duality-gap tolerance (no
        ``ConvergenceWarning``), or the polish certified the solution.
    n_iter : int
        Coordinate-descent epochs in all (0: the polish alone).
    exact : bool
        Whether the solution is certified optimal to rounding error by
        :meth:`LeastSquaresFold.polish`.
    """

    converged: bool
    n_iter: int
    exact: bool


class HostCD(NamedTuple):
    """scikit-learn's compiled coordinate descent (``ElasticNet(...).fit``, cyclic) as a
    solver configuration.

    ``max_iter``: scikit-learn's epochs per call; ``precompute``: scikit-learn's
    ``precompute`` where neither working sets nor the fold's full Gram matrix are used
    (sparse folds); ``positive``: coefficients constrained nonnegative. Working sets and
    the Gram path follow :func:`uses_working_sets` and :func:`uses_full_gram`.

    Examples
    --------
    >>> from skimplicit.solvers import HostCD
    >>> HostCD(max_iter=5000)
    HostCD(max_iter=5000, precompute=False, positive=False)
    """

    max_iter: int = 1000
    precompute: bool = False
    positive: bool = False


class LeastSquaresFold:
    """A training fold prepared for the host least-squares solvers.

    ``sample_weight`` is rescaled to sum to ``n_samples`` with ``normalize_weights``
    (scikit-learn's ``Lasso``/``ElasticNet``: a weighted mean) or used as it is
    (``Ridge``: a weighted sum). With ``fit_intercept`` the weighted means are taken out
    (an unpenalized intercept). Dense designs are stored centered and scaled by
    ``sqrt(sample_weight)`` (``X_fit``, ``y_fit``): unweighted least squares without an
    intercept on them is the weighted problem with one. With ``gram_only``, a dense fold
    that runs on its full Gram matrix (:func:`uses_full_gram`) and has more than
    :data:`GRAM_ONLY_SIZE` entries keeps that matrix and ``X^T y`` only (made by blocks of
    rows, ``X_fit`` is ``None``): the elastic-net descent, polish and hypergradient need
    nothing else. With ``X=None``, such a fold is made from its sums alone (``train_sums``,
    one entry of :func:`fold_train_sums`, and ``x_sum``, the raw-weighted sum of its rows):
    no copy of its rows is needed. With ``rows_of = (Xc, (a, b), m)`` (and ``X=None``), a
    dense fold reads its training rows ``Xc[:a]`` and ``Xc[b:]`` from a centered copy
    ``Xc = X - m`` that all folds share (the working-set folds of wide data: one copy of
    ``X`` instead of one per fold).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import LeastSquaresFold
    >>> X = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 3.0]]); y = np.array([1.0, 2.0, 4.0])
    >>> fold = LeastSquaresFold(X, y, np.ones(3), fit_intercept=True)
    >>> fold.x_mean, fold.y_fit
    (array([2.        , 1.33333333]), array([-1.33333333, -0.33333333,  1.66666667]))
    """

    def __init__(self, X, y, sample_weight, *, fit_intercept=True, normalize_weights=True,
                 gram_only=False, train_sums=None, x_sum=None, rows_of=None):
        Xtr, ytr = X, y
        self._shared = None
        self._residual = None  # (see residual)
        if Xtr is None and rows_of is None:
            # From the sums alone (no copy of the fold's rows): ``x_sum``, the raw-weighted
            # sum of its rows, gives the means; the fold keeps its Gram matrix only.
            if train_sums is None or x_sum is None or not fit_intercept or not gram_only:
                raise ValueError("X=None needs gram_only, fit_intercept, train_sums and x_sum")
        if rows_of is not None:
            # Read from a centered copy of the data set that all folds share (see the
            # class's docstring): ``Xc = X - m``, the training rows ``Xc[:a]`` and
            # ``Xc[b:]``. No copy of the fold's rows is kept: its columns are gathered
            # when asked for, and ``X^T r`` is two products with views of ``Xc``, minus
            # the fold's small offset ``d = x_mean - m`` (no cancellation: ``Xc`` is
            # centered). For the working-set descent (``p > 2 n``), whose folds each kept
            # a centered copy (``K`` copies of the data).
            Xc, (a, b), m = rows_of
            self.n_train = a + Xc.shape[0] - b
        else:
            self.n_train = Xtr.shape[0] if Xtr is not None else len(ytr)
        self.fit_intercept = fit_intercept
        # scikit-learn's Lasso/ElasticNet rescale sample weights to sum to n_samples (their
        # loss is a weighted mean); Ridge uses them as they are (a weighted sum).
        sw = np.asarray(sample_weight, float)
        self.sw_train = sw * (self.n_train / sw.sum()) if normalize_weights else sw
        if rows_of is not None and fit_intercept:
            wn = self.sw_train / self.sw_train.sum()
            self.x_mean = m + (Xc[:a].T @ wn[:a] + Xc[b:].T @ wn[a:])
            self.y_mean = np.average(ytr, axis=0, weights=self.sw_train)
        elif Xtr is None and rows_of is None:
            self.x_mean = np.asarray(x_sum, float) / sw.sum()
            self.y_mean = np.average(ytr, axis=0, weights=self.sw_train)
        elif fit_intercept:
            # (a matrix-vector product: np.average would form the weighted copy of X)
            self.x_mean = np.asarray(Xtr.T @ self.sw_train / self.sw_train.sum()).ravel()
            self.y_mean = np.average(ytr, axis=0, weights=self.sw_train)
        else:
            self.x_mean = np.zeros((Xtr if rows_of is None else Xc).shape[1])
            self.y_mean = np.zeros(ytr.shape[1:]) if ytr.ndim > 1 else 0.0
        self.y_train = np.asarray(ytr, float)
        self.sqrt_sw = np.sqrt(self.sw_train)
        self._weighted = bool(np.any(self.sqrt_sw != 1.0))
        self.sparse = Xtr is not None and sp.issparse(Xtr)
        if rows_of is not None:
            self.X_train = self.X_fit = None
            self._shared = (Xc, (a, b), self.x_mean - m)
            self.y_fit = self.train_target()
            return
        shape = Xtr.shape if Xtr is not None else (self.n_train, len(x_sum))
        if self.sparse:
            self.X_train = Xtr.tocsc()
        else:
            # Dense: store the centered, sqrt-weight-scaled design once. Unweighted least
            # squares without intercept on it is the weighted problem with intercept, so
            # the inner solver never copies or re-centers X.
            self.X_train = None
            if Xtr is None or (gram_only and uses_full_gram(*shape)
                               and Xtr.size > GRAM_ONLY_SIZE):
                # Only the fold's Gram matrix and X^T y, by blocks of rows: no centered
                # copy of X is kept (nor made whole): the coordinate descent, the polish
                # and the hypergradient of these folds read the Gram matrix alone. (Not on
                # small folds, which keep their columns for the descent's retry on them:
                # see solve_enet_host.)
                self.X_fit = None
                if train_sums is not None and fit_intercept:
                    self._full_gram, self._full_xty = self._gram_from_sums(
                        train_sums, sw.sum())
                else:
                    self._full_gram, self._full_xty = _blocked_gram(
                        Xtr, self.x_mean, self.sqrt_sw, self.train_target())
                self.y_fit = self.train_target()
                return
            # Fortran order for scikit-learn's coordinate descent on all columns; with
            # working sets it gets column copies anyway (the order: columns_first).
            if uses_working_sets(*Xtr.shape):
                # (one pass, a new array; see columns_first)
                X_fit = np.empty(Xtr.shape, order="F" if columns_first(*Xtr.shape) else "C")
                np.subtract(Xtr, self.x_mean, out=X_fit)
            else:
                X_fit = np.array(Xtr, dtype=float, order="F")
                X_fit -= self.x_mean
            if self._weighted:
                X_fit *= self.sqrt_sw[:, None]
            self.X_fit = X_fit
        self.y_fit = self.train_target()

    def _xt(self, r):
        """``X_fit^T r`` (``r`` in the solver's space: one entry per training row)."""
        if self._shared is None:
            return self.X_fit.T @ r
        Xc, (a, b), d = self._shared
        rs = (np.asarray(r, float).T * self.sqrt_sw).T
        return Xc[:a].T @ rs[:a] + Xc[b:].T @ rs[a:] - np.multiply.outer(d, rs.sum(axis=0))

    def _gram_from_sums(self, sums, sw_sum):
        """The centered, weighted Gram matrix and ``X^T y`` from the training rows' sums
        about a shift ``m`` (:func:`fold_train_sums`: ``A = sum_i w_i z_i z_i^T``, ``b =
        sum_i w_i z_i y_i``, ``z = x - m``, raw weights ``w``): with ``s = c w`` the
        normalized weights and ``zbar = x_mean - m``, ``G = c A - n zbar zbar^T`` and
        ``X^T y = c b - n zbar ybar``."""
        A, b, m = sums
        n = self.sw_train.sum()
        c = n / sw_sum
        zbar = self.x_mean - m
        # In place (the sums are this fold's alone); A is symmetric and Fortran-ordered:
        # its transpose is the C-ordered matrix scikit-learn's Gram descent reads. The
        # rank-1 update by BLAS, in place (``np.outer`` made two p x p temporaries).
        np.multiply(A, c, out=A)
        if not A.flags.f_contiguous:  # (fold_train_sums makes it so; not relied upon)
            A = np.asfortranarray(A)
        A = sla.blas.dger(-n, zbar, zbar, a=A, overwrite_a=True)
        return A.T, c * b - n * zbar * self.y_mean

    @property
    def n_features(self):
        return self.x_mean.shape[0]

    def full_gram(self):
        """``X^T X`` of the centered, sqrt-weight-scaled training data (dense folds),
        computed once (with ``X^T y``); :meth:`gram` then reads its blocks."""
        if getattr(self, "_full_gram", None) is None:
            X_fit = self.X_fit if self._shared is None else self.train_columns(
                np.arange(self.n_features))
            self._full_gram = X_fit.T @ X_fit
            self._full_xty = X_fit.T @ self.y_fit
        return self._full_gram

    def empty_gram_cache(self):
        """A cache for :meth:`gram`: ``(position of each feature or -1, cached features,
        their Gram matrix, their X^T y)``. Never modified in place (a new tuple each time
        it grows), so a snapshot is a reference."""
        return (np.full(self.x_mean.shape[0], -1), np.zeros(0, int), np.zeros((0, 0)),
                np.zeros(0))

    def gram(self, S, cache):
        """``X_S^T X_S / n``, ``X_S^T y / n`` on the training data, and the updated cache.

        From :meth:`full_gram` on the folds that use it; otherwise missing columns are
        added to the cache (``n |cache| |new|`` operations); past
        ``max(2 n, 1000)`` cached columns it starts again from ``S``. The polish of
        successive outer steps, whose supports differ by a few columns, reuses the rest.
        """
        if not self.sparse and uses_full_gram(self.n_train, self.x_mean.shape[0]):
            # The folds whose coordinate descent runs on the full Gram matrix: its blocks
            # (the same numbers whatever was asked before; no cache).
            full, n = self.full_gram(), self.n_train
            return full[np.ix_(S, S)] / n, self._full_xty[S] / n, cache
        pos, cols, G, xty = cache
        new = S[pos[S] < 0]
        if new.size:
            n = self.n_train
            pos = pos.copy()
            if cols.size + new.size > max(2 * n, 1000):
                pos[cols] = -1
                cols, G, xty, new = np.zeros(0, int), np.zeros((0, 0)), np.zeros(0), S
            m = cols.size
            Xn = self.train_columns(new)
            G2 = np.empty((m + new.size, m + new.size))
            G2[:m, :m] = G
            if m:
                B = self.train_columns(cols).T @ Xn / n
                G2[:m, m:] = B
                G2[m:, :m] = B.T
            G2[m:, m:] = Xn.T @ Xn / n
            xty = np.r_[xty, Xn.T @ self.y_fit / n]
            pos[new] = np.arange(m, m + new.size)
            cols, G = np.r_[cols, new], G2
            cache = (pos, cols, G, xty)
        p = pos[S]
        return G[np.ix_(p, p)], xty[p], cache

    @property
    def gram_only(self):
        """Whether this fold keeps only its Gram matrix (``gram_only=True`` on a fold that
        uses it: :func:`uses_full_gram`)."""
        return not self.sparse and self.X_fit is None and self._shared is None

    def train_columns(self, cols):
        """Centered, sqrt-weight-scaled training columns (dense), as the solver sees them."""
        if self.gram_only:
            raise RuntimeError("this fold keeps only its Gram matrix (gram_only=True)")
        if self._shared is not None:
            Xc, (a, b), d = self._shared
            cols = np.asarray(cols)
            out = np.empty((self.n_train, cols.size), order="F")  # (see columns_first)
            dc = d[cols]
            np.subtract(Xc[:a, cols], dc, out=out[:a])
            np.subtract(Xc[b:, cols], dc, out=out[a:])
            if self._weighted:
                out *= self.sqrt_sw[:, None]
            return out
        if not self.sparse:
            return self.X_fit[:, cols]
        Xc = self.X_train[:, cols].toarray()
        return (Xc - self.x_mean[cols]) * self.sqrt_sw[:, None]

    def residual(self, coef):
        """``y_fit - X_fit coef`` (dense folds that keep their columns), from the support's
        columns. The last one is kept (a solve's tolerance and its descent's start ask for
        the same one): the same numbers whether kept or made again, so folds shared by
        threads stay deterministic."""
        coef = np.asarray(coef, float)
        kept = self._residual
        if kept is not None and np.array_equal(kept[0], coef):
            return kept[1]
        S = np.flatnonzero(coef)
        r = self.y_fit - self.train_columns(S) @ coef[S]
        self._residual = (coef.copy(), r)  # (one assignment: atomic for other threads)
        return r

    def train_target(self):
        """The centered, sqrt-weight-scaled training target."""
        return ((self.y_train - self.y_mean).T * self.sqrt_sw).T

    def kkt_gradient(self, r):
        """``X^T r / n`` on the centered, weighted training data (``r`` in the solver's space)."""
        if not self.sparse:
            return self._xt(r) / self.n_train
        rs = r * self.sqrt_sw
        return (np.asarray(self.X_train.T @ rs).ravel() - self.x_mean * rs.sum()) / self.n_train

    def polish(self, w, alpha, l1_ratio, positive, cache, max_rounds=6):
        """The exact elastic-net solution near ``w`` by a few active-set rounds, or ``None``.

        With the support ``S`` and the signs ``s`` fixed, the elastic net's stationarity
        conditions are linear:
        ``(X_S^T X_S / n + diag(alpha_S (1 - rho))) w_S = X_S^T y / n - rho alpha_S s``.
        Each round solves them (Cholesky; through Woodbury's identity when the support
        has more columns than training rows), drops the coordinates whose sign flips (and
        re-solves), then adds the coordinates that violate ``|x_j^T r| / n <= rho alpha_j``
        most (a quarter of the support size, at least 3) with the sign of their
        correlation. The result is returned only when it is a
        certified optimum: consistent signs, stationarity on the support, the subgradient
        condition off it. An inexact solution with the right support (a loose coordinate
        descent), or the exact solution at a nearby ``alpha`` (the previous outer step),
        thus becomes exact to rounding error at the cost of a few ``k x k`` solves.
        ``alpha`` has one entry per feature. Returns ``(solution or None, the updated
        Gram cache)``.
        """
        y = self.y_fit
        n = self.n_train
        thr = alpha * l1_ratio
        l2 = alpha * (1.0 - l1_ratio)
        S = np.flatnonzero(w)
        s = np.sign(w[S])
        for _ in range(max_rounds):
            # More support columns than training rows (an elastic net, l2 > 0): the k x k
            # system by Woodbury's identity through an n x n one (O(n^2 k), no k x k Gram
            # matrix); else the cached Gram matrix.
            dual = uses_dual_ridge(n, S.size) and bool(np.all(l2[S] > 0))
            if dual:
                XS = self.train_columns(S)
                c = XS.T @ y / n
            else:
                G, c, cache = self.gram(S, cache)
                G[np.diag_indices_from(G)] += l2[S]
            keep = np.ones(S.size, bool)
            for _ in range(8):  # sign flips: drop them and re-solve
                idx = np.flatnonzero(keep)
                if idx.size == 0:
                    wS = np.zeros(0)
                    break
                rhs = c[idx] - thr[S[idx]] * s[idx]
                try:
                    if dual:
                        wS = ridge_dual_solve(XS[:, idx], l2[S[idx]], rhs, n)
                    else:
                        fac = sla.cho_factor(G[np.ix_(idx, idx)], lower=True,
                                             check_finite=False)
                        wS = sla.cho_solve(fac, rhs, check_finite=False)
                except (np.linalg.LinAlgError, ValueError):
                    return None, cache
                flipped = np.sign(wS) != s[idx]
                if not flipped.any():
                    break
                keep[idx[flipped]] = False
            else:
                return None, cache
            if not np.all(np.isfinite(wS)):
                return None, cache
            S, s = S[idx], s[idx]
            if self.gram_only:  # X^T (y - X_S w_S) / n from the Gram matrix
                g = (self._full_xty - self._full_gram[:, S] @ wS) / n
            else:
                XSw = (XS[:, idx] if dual else self.train_columns(S)) @ wS if S.size else 0.0
                g = self.kkt_gradient(y - XSw)
            scale = max(float(np.max(thr)), float(np.max(np.abs(g))), 1e-300)
            # Stationarity on the support (guards against a near-singular Gram matrix) ...
            stat = g[S] - l2[S] * wS - thr[S] * s
            if stat.size and np.max(np.abs(stat)) > 1e-8 * scale:
                return None, cache
            # ... and the subgradient condition off it.
            excess = (g if positive else np.abs(g)) - thr
            excess[S] = -np.inf
            add = np.flatnonzero(excess > 1e-7 * scale)
            # The worst violators only (all of them at once would overshoot: far from the
            # solution most features violate, and more than n_train of them make the
            # Lasso's system singular).
            add = add[np.argsort(-excess[add])[: max(3, S.size // 4)]]
            if add.size == 0:
                out = np.zeros(w.size)
                out[S] = wS
                return out, cache
            order = np.argsort(S.tolist() + add.tolist())
            s = np.r_[s, np.sign(g[add])][order]
            S = np.r_[S, add][order]
        return None, cache

    def objective_ratio(self, w, alpha, l1_ratio):
        """The elastic-net objective at ``w`` over its value at 0, ``||y||^2 / (2 n)``, on
        a dense fold (1.0 on a sparse one, or when ``y`` is 0); ``alpha`` has one entry per
        feature. scikit-learn's duality-gap test is relative to ``||y||^2``: times this
        ratio it is relative to the objective at ``w`` instead, which at a small ``alpha``
        is a tiny fraction of ``||y||^2 / (2 n)`` (there a warm start from a larger
        ``alpha`` passes the plain test without a single epoch)."""
        y, n = self.y_fit, self.n_train
        yy = float(y @ y) if y.ndim == 1 else 0.0
        if self.sparse or yy <= 0.0:
            return 1.0
        S = np.flatnonzero(w)
        wS = w[S]
        if self.gram_only and 2 * S.size >= w.size:
            # (a large support: one product with all of G, no copy of its block)
            w = np.asarray(w, float)
            rr = yy - 2.0 * float(w @ self._full_xty) + float(w @ (self._full_gram @ w))
        elif self.gram_only:
            xty = self._full_xty[S]
            rr = yy - 2.0 * float(wS @ xty) + float(wS @ (self._full_gram[np.ix_(S, S)] @ wS))
        else:
            r = self.residual(w)
            rr = float(r @ r)
        aS = alpha[S]
        pen = float(aS @ (l1_ratio * np.abs(wS) + 0.5 * (1.0 - l1_ratio) * wS * wS))
        return min(1.0, max(0.0, (0.5 * rr / n + pen) / (0.5 * yy / n)))

    def alpha_max(self):
        """``||X^T y||_inf / n`` on the centered, weighted training data (l1_ratio = 1)."""
        if self.gram_only:
            return float(np.max(np.abs(self._full_xty)) / self.n_train)
        if not self.sparse:
            return float(np.max(np.abs(self._xt(self.y_fit))) / self.n_train)
        yc = (self.y_train - self.y_mean) * self.sw_train
        Xty = self.X_train.T @ yc - self.x_mean * yc.sum()
        return float(np.max(np.abs(Xty)) / self.n_train)


def fold_train_sums(X, y, sample_weight, splits, block=2048, total=False):
    """Each training fold's ``(A_k, b_k, m)``: ``A_k = sum_{i in train} w_i z_i z_i^T``,
    ``b_k = sum w_i z_i y_i`` with ``z = x - m`` (``m`` the weighted mean of all rows, a
    shift against cancellation), from ONE pass over ``X``: when the test sets partition
    the rows (K-fold), the test parts' sums add up to the whole data's, and a training
    fold's is the whole minus its test part: ``n p^2`` operations for all folds instead
    of ``(K - 1) n p^2`` (scikit-learn's ``LassoCV`` forms each fold's Gram matrix).
    ``None`` when the test sets do not partition the rows (a fold's sums are then made
    from its own rows). Dense ``X`` and a single target. ``total=True``: also the whole
    data's ``(A, b, m)`` (``A`` symmetric), as a second output.

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.solvers import fold_train_sums
    >>> rng = np.random.RandomState(0)
    >>> X, y, w = rng.randn(6, 2), rng.randn(6), np.ones(6)
    >>> splits = [([2, 3, 4, 5], [0, 1]), ([0, 1, 4, 5], [2, 3]), ([0, 1, 2, 3], [4, 5])]
    >>> A, b, m = fold_train_sums(X, y, w, splits)[0]
    >>> Z = X[2:] - m
    >>> bool(np.allclose(A, Z.T @ Z)), bool(np.allclose(b, Z.T @ y[2:]))
    (True, True)
    """
    n, p = X.shape
    tests = [np.asarray(te) for _, te in splits]
    if partition_order(splits, n) is None:
        return None
    w = np.asarray(sample_weight, float)
    m = np.asarray(w @ X / w.sum()).ravel()
    sqrt_w = None if np.all(w == 1.0) else np.sqrt(w)  # (None: no pass to scale rows)
    buffer = np.empty((min(block, max(t.size for t in tests)), p + 1))
    parts = [_syrk_sums(X, te, m, sqrt_w, y if sqrt_w is None else y * sqrt_w, block, buffer)
             for te in tests]
    A_all = np.zeros((p, p), order="F")
    for A, _ in parts:  # (upper triangles)
        A_all += A
    b_all = sum(b for _, b in parts)
    out = []
    for A, b in parts:  # in place: one p x p matrix a fold, and the total
        out.append((_symmetrized(np.subtract(A_all, A, out=A)), b_all - b, m))
    return (out, (_symmetrized(A_all), b_all, m)) if total else out


def partition_order(splits, n):
    """The test folds' rows one fold after the other (``(n,)`` indices) when the test sets
    of ``splits`` partition ``range(n)`` (K-fold), else ``None``."""
    order = np.concatenate([np.asarray(te, dtype=np.intp) for _, te in splits])
    return order if np.array_equal(np.sort(order), np.arange(n)) else None


GRAM_ONLY_SIZE = 2 ** 21
"""Entries of a fold's ``X`` above which ``LeastSquaresFold(gram_only=True)`` keeps only its
Gram matrix (16 MiB in float64): a tall fold's design is most of the tuning's memory
(20000 x 500, 5 folds: peak RSS increase 968 -> 288 MB with lazily made folds)."""


def _syrk_sums(X, rows, shift, sqrt_w, y_scaled, block=2048, buffer=None):
    """``(A, b)``: ``A = Z^T Z`` (its upper triangle, Fortran order) and ``b = Z^T
    y_scaled`` of ``Z = (X[rows] - shift) * sqrt_w[rows]`` (``rows=None``: all; ``sqrt_w
    =None``: ones), by blocks of rows: a block-sized copy at a time, into ``buffer``
    (``(block, p + t)`` floats for ``t`` targets, reused across calls: a fresh
    block-sized array each time cost its page faults), with ``y_scaled`` in its last
    columns: one ``syrk`` (half a ``gemm``'s work) gives ``A`` and ``b`` together. (A
    separate ``Z^T y`` after each ``syrk`` cost more than the ``syrk``s with two BLAS
    threads: the library's threads handing over between the calls.)"""
    rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows)
    p = X.shape[1]
    t = int(np.prod(np.shape(y_scaled)[1:], dtype=int))
    if buffer is None:
        buffer = np.empty((min(block, rows.size), p + t))
    A = np.zeros((p + t, p + t), order="F")
    for start in range(0, rows.size, block):
        r = rows[start:start + block]
        Zy = buffer[:r.size]
        Z = Zy[:, :p]
        span = row_range(r)
        if span is not None:  # (a range of rows: from a view)
            np.subtract(X[span[0]:span[1]], shift, out=Z)
        else:
            np.take(X, r, axis=0, out=Z)
            Z -= shift
        Zy[:, p:] = np.reshape(y_scaled[r], (r.size, t))
        if sqrt_w is not None:
            Z *= sqrt_w[r, None]
        A = sla.blas.dsyrk(1.0, Zy.T, beta=1.0, c=A, overwrite_c=True)
    b = A[:p, p:].copy()
    b = b[:, 0] if np.ndim(y_scaled) == 1 else b.reshape((p,) + np.shape(y_scaled)[1:])
    return np.asfortranarray(A[:p, :p]), b


def _symmetrized(A, block=256):
    """The upper triangle of ``A`` copied to its lower one, in place, by blocks of
    columns (no index arrays: ``tril_indices`` made ``p^2`` of them, 64 MB at p = 2000)."""
    p = A.shape[0]
    for s in range(0, p, block):
        e = min(s + block, p)
        lower = np.tri(p - s, e - s, k=-1, dtype=bool)
        np.copyto(A[s:, s:e], np.ascontiguousarray(A[s:e, s:].T), where=lower)
    return A


def _blocked_gram(X, x_mean, sqrt_sw, y_fit, block=2048):
    """``(Xc^T Xc, Xc^T y_fit)`` of ``Xc = (X - x_mean) * sqrt_sw``, by blocks of rows
    (:func:`_syrk_sums`)."""
    weighted = np.any(sqrt_sw != 1.0)
    if X.shape[0] <= block:  # one block: the same products as a kept design's (full_gram)
        Xc = np.array(X, dtype=float, order="F")
        Xc -= x_mean
        if weighted:
            Xc *= sqrt_sw[:, None]
        return Xc.T @ Xc, Xc.T @ y_fit
    A, b = _syrk_sums(X, None, x_mean, sqrt_sw if weighted else None, y_fit, block)
    return _symmetrized(A).T, b  # (symmetric: its transpose is the C-ordered matrix)


def _sklearn_cd(solver, X, y, a, l1_ratio, tol, v0, sw, fit_intercept, gram=None):
    """One call of scikit-learn's ``ElasticNet(...).fit``: ``(coef, n_iter)``."""
    # Without an intercept scikit-learn does not modify X: no copy of it (n x p per
    # call); with one (sparse folds) it may center a dense X in place.
    est = ElasticNet(alpha=a, l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                     copy_X=bool(fit_intercept),
                     precompute=solver.precompute if gram is None else gram, warm_start=True,
                     positive=solver.positive,
                     tol=tol, max_iter=solver.max_iter, selection="cyclic")
    if v0 is not None:
        est.coef_ = np.array(v0, dtype=float)
    est.fit(X, y, sample_weight=sw, check_input=False)
    return est.coef_.copy(), est.n_iter_


def _gram_cd(solver, G, xty, y, a, l1_ratio, tol, v0, return_gap=False):
    """scikit-learn's coordinate descent on a Gram matrix (``enet_path`` with
    ``precompute=G``, ``Xy=xty``: what ``ElasticNet(precompute=G).fit`` runs, without
    ``X``, which it reads only for its shape here): ``(coef, n_iter)``, and its duality
    gap with ``return_gap``."""
    n, p = y.shape[0], G.shape[0]
    shape_only = np.broadcast_to(np.zeros(()), (n, p))  # no memory
    coef0 = np.zeros(p) if v0 is None else np.array(v0, dtype=float)
    _, coefs, gaps, n_iter = enet_path(
        shape_only, y, l1_ratio=l1_ratio, alphas=[a], precompute=G, Xy=xty, copy_X=False,
        coef_init=coef0, return_n_iter=True, positive=solver.positive, check_input=False,
        tol=tol, max_iter=solver.max_iter, selection="cyclic")
    out = coefs[:, 0].copy(), n_iter[0]
    return (*out, gaps[0]) if return_gap else out


SPARSE_START = 8
"""Folds with about as many rows as features (neither :func:`uses_working_sets` nor
:func:`uses_full_gram`; dense, at least :data:`SPARSE_START_MIN` features) run the
working-set descent from a warm start with at most ``n_features / SPARSE_START``
nonzeros (or a cold one), and go on all columns once the support and the violators of a
round reach ``2 / SPARSE_START`` of them (see :func:`enet_cd`)."""
SPARSE_START_MIN = 1000

WIDE_ALL_COLUMNS = 2
"""Wide folds (:func:`uses_working_sets`) descend on all their columns once the support
and the violators of a round, from a warm start, pass ``n_features / WIDE_ALL_COLUMNS``:
the near-ridge lines of a tuned ``l1_ratio``, whose rounds each gathered most columns
again (``bench_shapes.py``'s elastic net at 667 x 5000, fresh processes: 3.2-3.6 ->
2.7-2.8 s a fit, the same point; its Lasso rows at p > n unchanged). At a quarter, the
Lasso's supports and violators at small alphas passed it: twice slower."""


def _sparse_start(fold, v0):
    p = fold.n_features
    return (p >= SPARSE_START_MIN and fold.X_fit is not None and not fold.sparse
            and not uses_full_gram(fold.n_train, p)
            and (v0 is None or SPARSE_START * np.count_nonzero(v0) <= p))


def _enet_gap(r, y, xtr, w, alpha, l1_ratio, n, positive=False):
    """The elastic net's duality gap as scikit-learn's coordinate descent computes it
    (its formulation A, objective times ``n``): residual ``r = y - X w``, ``xtr = X^T r``;
    ``l1_ratio > 0``."""
    l1, l2 = alpha * l1_ratio * n, alpha * (1.0 - l1_ratio) * n
    xta = xtr - l2 * w
    dual_norm = float(np.max(xta) if positive else np.max(np.abs(xta)))
    rr, ww = float(r @ r), float(w @ w)
    scale = l1 / dual_norm if dual_norm > l1 else 1.0
    primal = 0.5 * (rr + l2 * ww) + l1 * float(np.sum(np.abs(w)))
    dual = -0.5 * scale ** 2 * (rr + l2 * ww) + scale * float(r @ y)
    return primal - dual


def _working_set_cd(solver, fold, a, l1_ratio, tol, v0, scale, gram=True, check=None):
    X, y, n = fold.X_fit, fold.y_fit, fold.n_train
    p = fold.n_features
    if fold.gram_only:  # (its retry without the Gram matrix runs on it too)
        G, xty = fold.full_gram(), fold._full_xty
        if scale is not None:
            G, xty = G * np.outer(scale, scale), xty * scale
        return _gram_cd(solver, G, xty, y, a, l1_ratio, tol, v0)

    def plain(v_init):  # coordinate descent on all columns (Fortran-ordered)
        Xa = fold.train_columns(np.arange(p)) if fold._shared is not None else X
        Xs = np.asfortranarray(Xa if scale is None else Xa * scale)
        G = None
        # (Not below a duality-gap tolerance of 1e-10: the Gram matrix's gap,
        # ||y||^2 - 2 w.X^T y + w.G w, loses ~1e-16 ||y||^2 to cancellation.)
        if gram and tol >= 1e-10 and uses_full_gram(n, p):
            G = fold.full_gram()
            if scale is not None:
                G = G * np.outer(scale, scale)
        return _sklearn_cd(solver, Xs, y, a, l1_ratio, tol, v_init, None, False, gram=G)

    wide = uses_working_sets(n, p)
    if not (wide or _sparse_start(fold, v0)):
        return plain(v0)
    v = np.zeros(p) if v0 is None else np.array(v0, dtype=float)
    thresh = a * l1_ratio
    n_iter = 0
    r = fold.residual(v if scale is None else v * scale)
    saturated = False
    for rnd in range(50):
        if check is not None:
            check()
        grad = fold.kkt_gradient(r)
        if scale is not None:
            grad *= scale
        if rnd > 0 and thresh > 0 and _enet_gap(r, y, grad * n, v, a, l1_ratio, n,
                                                solver.positive) < tol * float(y @ y):
            # The whole problem meets scikit-learn's test (its duality gap below ``tol
            # ||y||^2``, what a descent on all columns stops at): no round to add the
            # violators left, whose descent would not move at this tolerance.
            break
        viol = np.abs(grad) - thresh if not solver.positive else grad - thresh
        active = v != 0
        viol[active] = -np.inf
        out = np.flatnonzero(viol > 1e-12 * max(thresh, 1e-300))
        if rnd > 0 and out.size == 0:
            break
        if (rnd > 0 or active.any()) and (active.sum() + out.size) * (
                WIDE_ALL_COLUMNS if wide else SPARSE_START / 2) > p:
            # A support and violators past a share of the columns (not counted at a
            # cold start, where most columns violate the conditions at a moderate alpha):
            # on all of them, from here.
            v, it = plain(v)
            return v, n_iter + it
        # Working set: the support plus the worst violators (at least 100, doubling; all
        # of them after a round whose working set all became active).
        n_add = out.size if saturated else max(100, int(active.sum()))
        add = out[np.argsort(-viol[out])[:n_add]]
        ws = np.union1d(np.flatnonzero(active), add)
        Xw = fold.train_columns(ws)
        Xw = np.asfortranarray(Xw if scale is None else Xw * scale[ws])
        vw, it = _sklearn_cd(solver, Xw, y, a, l1_ratio, tol, v[ws], None, False)
        n_iter += it
        v = np.zeros(p)
        v[ws] = vw
        r = y - Xw @ vw
        saturated = 10 * np.count_nonzero(vw) >= 9 * ws.size
        if it == 0:
            # The working set's problem, violators included, already met ``tol``: more
            # rounds would change nothing at this tolerance.
            break
    return v, n_iter


def enet_cd(fold, alpha, l1_ratio=1.0, solver=HostCD(), *, tol=1e-4, init=None, gram=True,
            check=None):
    """scikit-learn coordinate descent on a :class:`LeastSquaresFold`; per-feature alphas
    by rescaling.

    Dense folds with many features use working sets (:func:`uses_working_sets`):
    coordinate descent on the columns that can be active (the warm start's support plus
    the worst violators of the optimality conditions), then a check of every feature (one
    ``X^T r``); work scales with the active set, not with ``n_features``. Dense folds with
    about as many rows as features do so from a sparse start (:data:`SPARSE_START`: a cold
    one, or a warm start with few nonzeros) until the support and the violators of a
    round reach a quarter of the columns, and then descend on all of them; wide folds
    from half of them (:data:`WIDE_ALL_COLUMNS`). The rounds stop once the whole problem
    meets scikit-learn's duality-gap test. Dense folds with many rows run on their full
    Gram matrix (:func:`uses_full_gram`) unless ``gram`` is false. ``check`` (a callable,
    e.g. a deadline check that raises) runs before each working-set round. Returns
    ``(coef, HostSolverInfo)`` (``exact`` False).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import ElasticNet, enet_path
    >>> from skimplicit.solvers import LeastSquaresFold, enet_cd
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(50, 8); y = X @ rng.randn(8) + 0.1 * rng.randn(50)
    >>> coef, info = enet_cd(LeastSquaresFold(X, y, np.ones(50)), 0.1, 0.5, tol=1e-12)
    >>> ref = ElasticNet(alpha=0.1, l1_ratio=0.5, tol=1e-12).fit(X, y).coef_
    >>> bool(np.allclose(coef, ref)), bool(info.converged)
    (True, True)
    """
    f = fold
    a = alpha
    scale = None
    if np.ndim(alpha):
        a = float(np.min(alpha))
        scale = a / np.asarray(alpha)  # w_j = scale_j v_j turns sum alpha_j|w_j| into a||v||_1
    v0 = None if init is None else (init / scale if scale is not None else init)
    with capture_warnings() as caught:  # (right on threads too: see map_threads)
        if f.sparse:
            X = f.X_train @ sp.diags(scale) if scale is not None else f.X_train
            v, n_iter = _sklearn_cd(solver, X, f.y_train, a, l1_ratio, tol, v0, f.sw_train,
                                    f.fit_intercept)
        else:
            v, n_iter = _working_set_cd(solver, f, a, l1_ratio, tol, v0, scale, gram, check)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    coef = v * scale if scale is not None else v
    return coef, HostSolverInfo(converged, n_iter, False)


FAR_START_BUDGET = 5
"""Descents (of ``max_iter`` epochs each) :func:`solve_enet_host` runs before it gives up
on converging: a coarse path's step from a warm start spans several of a 100-point
grid's, each of which scikit-learn's path gives ``max_iter`` epochs (p > n at a small
``alpha``: 2300 epochs, where one ``max_iter=1000`` descent stopped unconverged)."""


def solve_enet_host(fold, alpha, l1_ratio=1.0, solver=HostCD(), *, tol=1e-4, init=None,
                    gram_cache=None, near=False, cheap=False, check=None, first_try=False):
    """Coordinate descent (:func:`enet_cd`) from ``init``, then
    :meth:`LeastSquaresFold.polish`: the elastic net on one prepared fold.

    From the solution at a ``near`` point (within 35 % in alpha), the polish alone is
    tried first (no descent at all when a few active-set rounds certify an optimum).
    The descent runs at ``tol`` (relative to the objective at ``init``, see
    :meth:`LeastSquaresFold.objective_ratio`), for up to :data:`FAR_START_BUDGET` x
    ``max_iter`` epochs (polished after each ``max_iter``); if its support does not
    polish into a certified optimum, it runs again at ``tol / 100`` and is polished once
    more (otherwise the descent's solution is kept, with its convergence flag); ``cheap``
    (points that only rank values) skips the polish of a descent that converged and the
    retry, unless the descent did not move the warm start. ``first_try``: one descent
    (``max_iter`` epochs at most), returned as it ends (no polish, no retry): a first
    try, at a looser ``tol``, that the caller checks. ``gram_cache``: the polish's Gram
    cache (default: empty; see :meth:`LeastSquaresFold.gram`). Returns ``(coef,
    HostSolverInfo, gram_cache)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Lasso
    >>> from skimplicit.solvers import LeastSquaresFold, solve_enet_host
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(40, 60); y = X[:, :4] @ np.ones(4) + 0.1 * rng.randn(40)
    >>> coef, info, _ = solve_enet_host(LeastSquaresFold(X, y, np.ones(40)), 0.05)
    >>> info.exact, info.converged
    (True, True)
    >>> ref = Lasso(alpha=0.05, tol=1e-14, max_iter=100000).fit(X, y).coef_
    >>> bool(np.allclose(coef, ref, atol=1e-10))
    True
    """
    alpha_vec = np.broadcast_to(np.asarray(alpha, float), (fold.n_features,))
    if gram_cache is None:
        gram_cache = fold.empty_gram_cache()
    positive = solver.positive
    if near:  # the exact solution at a nearby point: often a few active-set rounds away
        exact, gram_cache = fold.polish(init, alpha_vec, l1_ratio, positive, gram_cache)
        if exact is not None:
            return exact, HostSolverInfo(True, 0, True), gram_cache
    coef = init
    n_iter = 0
    if init is not None and np.any(init):
        # The gap test relative to the objective at the warm start (floored: the Gram
        # matrix's gap loses ~1e-16 ||y||^2 to cancellation), not to ||y||^2.
        tol = tol * max(fold.objective_ratio(init, alpha_vec, l1_ratio), 1e-4)
    if first_try:
        coef, info = enet_cd(fold, alpha, l1_ratio, solver, tol=tol, init=coef, check=check)
        return coef, HostSolverInfo(info.converged, info.n_iter, False), gram_cache
    for t, gram in ((tol, True), (tol * 1e-2, False)):
        # The retry on the columns themselves: the Gram matrix's duality gap loses
        # digits to cancellation when the residual is small (singular supports, e.g.
        # duplicated columns, which the polish cannot certify).
        for _ in range(FAR_START_BUDGET):
            # From a far warm start (the coarse path's steps are ~8 of a 100-point grid's),
            # up to FAR_START_BUDGET x max_iter epochs, as along that grid; each part
            # polished (an unconverged descent often has the support already).
            coef, info = enet_cd(fold, alpha, l1_ratio, solver, tol=t, init=coef,
                                 gram=gram, check=check)
            n_iter += info.n_iter
            if cheap and info.converged and info.n_iter > 0:
                # A point that only ranks values: the descent's own test suffices (the
                # polish builds and factors the support's Gram matrix, most of a cover
                # point at a small alpha: 2000 x 2000, 4.3 -> 3.0 s a fit).
                return coef, HostSolverInfo(True, n_iter, False), gram_cache
            exact, gram_cache = fold.polish(coef, alpha_vec, l1_ratio, positive, gram_cache)
            if exact is not None:
                return exact, HostSolverInfo(True, n_iter, True), gram_cache
            if info.converged:
                break
        converged = info.converged
        # Cheap: no retry, unless the descent left the warm start as it was (one from
        # another point that passes the loose duality-gap test uncertified would give
        # that point's validation loss here: a false plateau on the cover).
        if cheap and n_iter > 0:
            break
    return coef, HostSolverInfo(converged, n_iter, False), gram_cache

