"""Tunable problems of the linear models (see :mod:`skimplicit.tuning._protocol`).

Each problem holds the folds of one dataset, an inner solver per fold (warm-started from
one evaluation to the next) and a batched hypergradient kernel of
:mod:`skimplicit.linear_model._hypergrad`.
"""

from __future__ import annotations

import weakref

import jax
import numpy as np
import scipy.sparse as sp

from .._blas import one_blas_thread
from ..solvers import (HostCD, LeastSquaresFold, dense, fold_train_sums, solve_enet_host,
                       uses_full_gram)
from ..solvers._host_cd import (GRAM_ONLY_SIZE, columns_first, partition_order,
                                uses_working_sets)
from ..tuning import (CVProblem, FoldData, Hyperparameter, WarmStarts, bucket, pad_stack,
                      solve_with_fallback, to_device)
from ..tuning._kernel import aligned_zeros
from ..tuning._progress import check_time
from ..tuning._protocol import take_rows
from ..utils import nothing_to_tune
from ._hypergrad import enet_gram_hypergrad, enet_support_hypergrad, ridge_hypergrad

__all__ = ["AdaptiveRidgeCVProblem", "EnetCVProblem", "EnetSearchSpace", "RidgeCVProblem", "make_folds"]


class _Fold(LeastSquaresFold):
    """Training part of one fold prepared for the host solvers
    (:class:`~skimplicit.solvers.LeastSquaresFold`), and its test part."""

    def __init__(self, data, fit_intercept, normalize_weights, gram_only=False,
                 train_sums=None, x_sum=None, rows_of=None):
        Xtr, ytr, sw, Xte, yte, swte = data
        super().__init__(Xtr, ytr, sw, fit_intercept=fit_intercept,
                         normalize_weights=normalize_weights, gram_only=gram_only,
                         train_sums=train_sums, x_sum=x_sum, rows_of=rows_of)
        self.sw_test = np.asarray(swte, float)
        self.X_test = Xte
        self.y_test = np.asarray(yte, float)
        self._test_sums = None

    def set_test_sums(self, total, scale, train_weight_sum, test_x_sum):
        """Make :meth:`cover_mse` read sums instead of the test rows (folds made from
        :func:`~skimplicit.solvers.fold_train_sums`'s sums: single target, intercept).

        ``total = (scale * A, scale * b, m)``: the whole data's ``A = sum_i w_i z_i
        z_i^T`` and ``b = sum_i w_i z_i y_i`` (``z = x - m``, raw weights; the refit's
        arrays, shared, read only). The test rows' sums are the whole data's minus the
        training rows', read back from this fold's Gram matrix and ``X^T y`` (see
        ``LeastSquaresFold._gram_from_sums``: raw training weights summing to
        ``train_weight_sum``); ``test_x_sum = sum_test w x``. No pass over the rows."""
        G_all, b_all, m = total
        s, y = self.sw_test, self.y_test
        S1, Sy = float(s.sum()), float(s @ y)
        c_train = self.sw_train.sum() / train_weight_sum
        zbar = self.x_mean - m
        b_train = (self._full_xty + self.n_train * zbar * self.y_mean) / c_train
        y_t = Sy / S1
        self._test_sums = (G_all, scale, c_train, b_all / scale - b_train,
                           np.asarray(test_x_sum, float) - m * S1, S1, y_t,
                           float(s @ (y - y_t) ** 2), zbar)

    def cover_mse(self, coef, support):
        """:meth:`validation_mse` without gradient, for cover points (which only rank
        values): from the sums of :meth:`set_test_sums` when set, ``O(k^2)`` on the
        support instead of a product with the test rows (20000 x 500: 0.16 of a 0.65 s
        fit), else from the test rows. The sums' expansion of ``sum w r^2`` cancels
        digits as the fit gets exact (about ``eps / (1 - R^2)``, relative): a loss under
        ``1e-6`` of the test targets' variance about ``c`` is computed from the rows.
        Gradient evaluations always use the rows (their losses stay exact)."""
        if self._test_sums is None:
            return self.validation_mse(coef, support)
        G_all, scale, c_train, zy, zs, S1, y_t, v_t, zbar = self._test_sums
        full = 2 * support.size > coef.shape[0]
        S = slice(None) if full else support
        w, zb = coef[S], zbar[S]
        Gf = self.full_gram()
        if full:
            Aw = G_all @ w / scale - (Gf @ w + self.n_train * zb * (zb @ w)) / c_train
        else:
            ix = np.ix_(S, S)
            Aw = G_all[ix] @ w / scale - (Gf[ix] @ w + self.n_train * zb * (zb @ w)) / c_train
        # r = (y - c) - z.w over the test rows, c = y_mean - zbar.w (z = x - m)
        c = self.y_mean - float(zb @ w)
        base = v_t + S1 * (y_t - c) ** 2  # sum w (y - c)^2
        q = base - 2.0 * float(w @ (zy[S] - c * zs[S])) + float(w @ Aw)
        if not q > 1e-6 * base:
            return self.validation_mse(coef, support)
        return q / S1

    def test_columns(self, cols):
        Xc = self.X_test[:, cols]
        Xc = dense(Xc)
        return Xc - self.x_mean[cols]

    def validation_mse(self, coef, support, with_grad=False):
        """Weighted test MSE of ``coef`` (nonzero on ``support``), intercept from the means;
        with its gradient in ``coef[support]`` (single target)."""
        full = not sp.issparse(self.X_test) and 8 * support.size >= coef.shape[0]
        if full:  # a large support: products with all of X_test, no column copy
            r = (self.y_test - self.y_mean) - (self.X_test @ coef - self.x_mean @ coef)
        else:
            Xs = self.test_columns(support)
            r = (self.y_test - self.y_mean) - Xs @ coef[support]
        loss = float(np.average(r * r, weights=self.sw_test) if r.ndim == 1
                     else np.average(np.mean(r * r, axis=1), weights=self.sw_test))
        if not with_grad:
            return loss
        swr = self.sw_test * r
        if full:
            g = (self.X_test.T @ swr)[support] - self.x_mean[support] * swr.sum()
        else:
            g = Xs.T @ swr
        return loss, -2.0 * g / self.sw_test.sum()


def _train_sums(folds, fit_intercept):
    """The training folds' Gram sums from one pass over the data, and the whole data's
    (:func:`~skimplicit.solvers.fold_train_sums` with ``total=True``), when the folds are
    read from one dense ``X`` (``split_folds(..., lazy=True)``), their folds keep Gram
    matrices only (``LeastSquaresFold(gram_only=True)``) and their test sets partition the
    rows; else ``(None, None)``."""
    source = getattr(folds, "source", None)
    if source is None or not fit_intercept:
        return None, None
    X, y, sw, splits = source
    n_train = max(len(tr) for tr, _ in splits)
    if sp.issparse(X) or np.ndim(y) != 1 or not uses_full_gram(n_train, X.shape[1]) \
            or n_train * X.shape[1] <= GRAM_ONLY_SIZE \
            or min(len(tr) for tr, _ in splits) < 2 * X.shape[1]:
        return None, None
    return fold_train_sums(X, y, sw, splits, total=True) or (None, None)


def _shared_rows(folds, fit_intercept):
    """``(Xc, m, blocks, order)`` when the folds are read from one dense ``X``
    (``split_folds(..., lazy=True)``), their test sets partition the rows, and every
    training fold runs the working-set descent
    (:func:`~skimplicit.solvers.uses_working_sets`): ``Xc = X[order] - m`` with ``m`` the
    weighted mean of the rows (0 without an intercept) and ``order`` the test folds'
    rows one fold after the other, fold ``i``'s test rows at ``blocks[i] = (a, b)``. Its
    folds read their training rows from this one copy (``LeastSquaresFold(rows_of=...)``:
    two views, ``Xc[:a]`` and ``Xc[b:]``) instead of keeping ``K`` centered copies
    (200 x 50000, 5 folds: 320 MB of copies). Else ``None``."""
    source = getattr(folds, "source", None)
    if source is None:
        return None
    X, y, sw, splits = source
    if sp.issparse(X) or np.ndim(y) != 1 or not isinstance(X, np.ndarray) \
            or not all(uses_working_sets(len(tr), X.shape[1]) for tr, _ in splits):
        return None
    order = partition_order(splits, X.shape[0])
    if order is None:
        return None
    sizes = [len(te) for _, te in splits]
    ends = np.cumsum(sizes)
    blocks = [(int(b - k), int(b)) for k, b in zip(sizes, ends)]
    sw = np.asarray(sw, float)
    m = np.asarray(sw @ X / sw.sum()).ravel() if fit_intercept else np.zeros(X.shape[1])
    # One copy in all, block by block (a test fold's rows at a time), in the order
    # columns_first gives the folds' training rows.
    n_train = min(len(tr) for tr, _ in splits)
    Xc = np.empty((len(order), X.shape[1]),
                  order="F" if columns_first(n_train, X.shape[1]) else "C")
    for a, b in blocks:
        np.subtract(take_rows(X, order[a:b]), m, out=Xc[a:b])
    return Xc, m, blocks, order


def _prepare_folds(folds, fit_intercept):
    """The host folds of an elastic-net problem (:class:`_Fold`), whether each has nothing
    to tune, and the whole data's Gram matrix for the refit (or ``None``); computed once
    per lazily made set of folds and ``fit_intercept`` (the problems of a list of
    ``l1_ratio`` share them: the folds hold data only, each problem its own warm starts
    and Gram caches)."""
    cache = _PREPARED.get(folds) if getattr(folds, "source", None) is not None else None
    if cache is not None and fit_intercept in cache:
        return cache[fit_intercept]
    source_folds = folds
    # One pass over the folds (each read once: with lazily made folds, one fold's copy
    # of X at a time), each kept as a prepared host fold (on n >> p only its Gram
    # matrix, see LeastSquaresFold(gram_only=True)).
    prepared, constant = [], []
    sums, total = _train_sums(folds, fit_intercept)
    # The whole data's centered Gram matrix, X^T y and means (scikit-learn's
    # normalized weights), for the estimator's refit (see ImplicitLassoCV's _refit).
    refit_gram = None
    if total is not None:
        A, b, m = total
        c = len(folds.source[1]) / float(np.sum(folds.source[2]))
        # (A symmetric, Fortran-ordered: its transpose is C-ordered, as read)
        refit_gram = (np.multiply(A, c, out=A).T, c * b, m)
    shared = None if sums is not None else _shared_rows(folds, fit_intercept)
    if shared is not None:
        # Wide folds on working sets: one centered copy of X for all of them, its rows
        # in the order of the test folds (a fold's training rows: two views of it).
        X, y, sw, splits = folds.source
        Xc, m, blocks, order = shared
        splits = [(np.r_[order[:a], order[b:]], te) for (a, b), (_, te) in zip(blocks, splits)]
        folds = [FoldData(None, y[tr], sw[tr], take_rows(X, te), y[te], sw[te])
                 for tr, te in splits]
    if sums is not None:
        # From the sums: only the test rows are copied (X_train None, see _Fold).
        X, y, sw, splits = folds.source
        sw = np.asarray(sw, float)
        x_all = np.asarray(sw @ X).ravel()
        folds = [FoldData(None, y[tr], sw[tr], take_rows(X, te), y[te], sw[te])
                 for tr, te in splits]
    for i, d in enumerate(folds):
        t_sum = None if sums is None else d.sw_test @ d.X_test
        x_sum = None if sums is None else x_all - t_sum
        prepared.append(_Fold(d, fit_intercept, True, gram_only=True,
                              train_sums=None if sums is None else sums[i], x_sum=x_sum,
                              rows_of=None if shared is None else (Xc, blocks[i], m)))
        if sums is not None:  # (the cover's losses from sums, see _Fold.cover_mse)
            prepared[-1].set_test_sums(refit_gram, c, d.sw_train.sum(), t_sum)
        if sums is not None or shared is not None:
            if sums is not None:
                sums[i] = None  # (its arrays now the fold's Gram matrix)
            constant.append(nothing_to_tune(X, d.y_train, d.sw_train,
                                            fit_intercept=fit_intercept,
                                            rows=splits[i][0]))
        else:
            constant.append(nothing_to_tune(d.X_train, d.y_train, d.sw_train,
                                            fit_intercept=fit_intercept))
        del d
    out = (prepared, constant, refit_gram)
    if getattr(source_folds, "source", None) is not None:
        _PREPARED.setdefault(source_folds, {})[fit_intercept] = out
    return out


_PREPARED = weakref.WeakKeyDictionary()
"""The prepared folds of each lazily made set of folds (see :func:`_prepare_folds`)."""


def make_folds(folds, fit_intercept, normalize_weights=True):
    return [_Fold(d, fit_intercept, normalize_weights) for d in folds]


def _solve_name(k):
    return "cholesky" if k <= 2048 else "cg"


class EnetSearchSpace:
    """The search space of the elastic-net problems (host and device): bounds of
    ``alpha`` (and ``l1_ratio``) from the folds' ``alpha_max``, the coarse cover, and the
    nearest-point store of fold solutions (warm starts)."""

    def _set_space(self, alpha_maxes, constant_folds, *, l1_ratio, tune_l1_ratio,
                   alpha_per_feature, bounds, l1_ratio_bounds, starts, eps):
        """Hyperparameters from the folds' ``alpha_max`` (of ``l1_ratio = 1``);
        ``constant_folds``: whether each fold has nothing to tune
        (:func:`~skimplicit.utils.nothing_to_tune`)."""
        self.constant_folds = list(constant_folds)
        self.l1_ratio, self.tune_l1_ratio = float(l1_ratio), tune_l1_ratio
        self.alpha_per_feature = alpha_per_feature
        # The user's alphas (a list): the cover's points instead of the log-spaced line.
        self.starts = None if starts is None else np.sort(np.asarray(starts, float))[::-1]
        self.l1_ratio_bounds = tuple(float(b) for b in l1_ratio_bounds)
        # A training fold with a constant target (or no varying feature) has alpha_max = 0
        # (its solution is zero for every alpha): the bounds come from the others. If
        # every fold is so there is nothing to tune (the estimators then evaluate one
        # point, see model_selection/_constant.py) and no scale: nominal alpha_max = 1.
        amax = [a for a, flat in zip(alpha_maxes, constant_folds) if not flat]
        amax = [a for a in amax if a > 0]
        self.alpha_max_l1 = min(amax) if amax else 1.0
        rho_lo = l1_ratio_bounds[0] if tune_l1_ratio else self.l1_ratio
        if bounds is None and eps is not None:
            # scikit-learn's ``eps``: ``[eps, 1] * alpha_max`` (alpha_max of the smallest
            # training fold here: a problem built outside the estimator's fit).
            rho_hi = l1_ratio_bounds[1] if tune_l1_ratio else self.l1_ratio
            bounds = (eps * self.alpha_max_l1 / rho_hi, self.alpha_max_l1 / max(rho_lo, 1e-3))
        elif bounds is None:
            upper = 0.9 * self.alpha_max_l1 / max(rho_lo, 1e-3)
            bounds = (0.9 * self.alpha_max_l1 * 1e-4, upper)
        size = self.n_features if alpha_per_feature else None
        self.hyperparameters = [Hyperparameter("alpha", bounds[0], bounds[1], "log", size)]
        if tune_l1_ratio:
            self.hyperparameters.append(
                Hyperparameter("l1_ratio", l1_ratio_bounds[0], l1_ratio_bounds[1], "linear")
            )
        # Fold solutions by (log alpha per feature, l1_ratio), the newest 64.
        self._solutions = WarmStarts(maxlen=64)

    # -- warm starts (restored by the outer loop before each restart) -------------------
    @staticmethod
    def _distance(a, b):
        """``max |log alpha - log alpha'| + |l1_ratio - l1_ratio'|`` of two keys
        ``(log alpha per feature, l1_ratio)``."""
        return np.max(np.abs(a[:-1] - b[:-1])) + abs(a[-1] - b[-1])

    def _warm_start(self, alpha_vec, l1_ratio):
        """Fold solutions of the evaluated point nearest to ``(alpha, l1_ratio)``.

        Nearest in ``log alpha`` (and ``l1_ratio``), not the last one: a line search that
        backtracks, or a descent that returns near an earlier point, starts close. Returns
        the solutions and their distance.
        """
        if not len(self._solutions):
            return [None] * self._n_folds, np.inf
        sols, dist = self._solutions.nearest(np.r_[np.log(alpha_vec), l1_ratio],
                                             self._distance)
        return list(sols), dist

    def _remember(self, alpha_vec, l1_ratio, coefs):
        self._solutions.add(np.r_[np.log(alpha_vec), l1_ratio], list(coefs))

    # Cover density: points per decade of alpha, and at most this many points per line;
    # with l1_ratio tuned, the further lines (COVER_RATIOS within the bounds) are coarser.
    COVER_PER_DECADE = 4
    COVER_MAX = 25
    COVER_RATIOS = (0.5, 0.1)
    COVER_PER_DECADE_MIX = 2

    def _line_top(self, rho, lo, hi):
        """The strong end of a cover line at ``rho``: ``alpha_max / rho`` (above it every
        coefficient is zero) clipped to the interval (all of it when that lies in the
        dead zone)."""
        top = min(hi, self.alpha_max_l1 / max(rho, 1e-12))
        return hi if top <= lo else top

    def _cover_point(self, alpha, rho):
        p = {"alpha": alpha if not self.alpha_per_feature
             else np.full(self.n_features, alpha)}
        if self.tune_l1_ratio:
            p["l1_ratio"] = rho
        return p

    def _cover_line(self, rho, per_decade, first=None):
        """A line of the cover at ``rho``, strong to weak, down to the interval's lower
        bound; with ``first`` (the first line's ``l1_ratio``, when ``l1_ratio`` is tuned)
        only over the first line's decades below its own strong end (``alpha_max / rho``,
        the dead zone's edge at ``rho``), as scikit-learn's grid at each ``l1_ratio``."""
        lo, hi = np.min(self.hyperparameters[0].lower), np.max(self.hyperparameters[0].upper)
        if self.starts is not None:  # the user's alphas, strong to weak
            return [self._cover_point(float(a), rho) for a in np.clip(self.starts, lo, hi)]
        top = self._line_top(rho, lo, hi)
        bottom = lo
        if first is not None:
            bottom = min(top, max(lo, top * lo / self._line_top(first, lo, hi)))
        n = int(np.clip(np.ceil(np.log10(top / bottom) * per_decade) + 1, 2, self.COVER_MAX))
        return [self._cover_point(float(np.clip(a, lo, hi)), rho)
                for a in np.geomspace(top, bottom, n)]

    def initial_points(self):
        """The coarse cover: the whole search interval of ``alpha``, strong to weak.

        Log-spaced, ``COVER_PER_DECADE`` points a decade (at most ``COVER_MAX``), from the
        top of the interval (clipped to ``alpha_max / l1_ratio``, above which every
        coefficient is zero) down to its lower bound: warm-started in this order, the
        early (strongly regularized, sparse) solves are cheap. It never stops early: real
        validation curves have several basins. When ``l1_ratio`` is tuned, the first line
        runs at the bound of ``l1_ratio`` nearest 1 (the cheapest solves, inside the
        user's bounds), then coarser lines (``COVER_PER_DECADE_MIX`` a decade) at the
        ``COVER_RATIOS`` clipped to the bounds: the best mix can sit far from the Lasso
        (measured: ``l1_ratio = 0.1`` 2.7 % better than any Lasso on a real data set),
        further than a local descent from the first line goes (on the host, see
        :meth:`EnetCVProblem.initial_points`, those lines go down to the lower bound only
        while that may pay).
        """
        if not self.tune_l1_ratio:
            return self._cover_line(self.l1_ratio, self.COVER_PER_DECADE)
        points = self._cover_line(self.l1_ratio_bounds[1], self.COVER_PER_DECADE)
        for r in self._further_ratios():
            points += self._cover_line(r, self.COVER_PER_DECADE_MIX)
        return points

    def _further_ratios(self):
        """The ``l1_ratio`` of the cover's further lines: ``COVER_RATIOS`` clipped to the
        bounds, each once, none at the first line's."""
        lo_r, hi_r = self.l1_ratio_bounds
        out, done = [], {round(hi_r, 12)}
        for r in self.COVER_RATIOS:
            r = float(np.clip(r, lo_r, hi_r))
            if round(r, 12) not in done:
                done.add(round(r, 12))
                out.append(r)
        return out


class EnetCVProblem(EnetSearchSpace, CVProblem):
    """K-fold validation MSE of scikit-learn's ``ElasticNet`` objective.

    ``(1 / (2 n)) ||y - X w - b||^2 + alpha * l1_ratio * ||w||_1
    + alpha * (1 - l1_ratio) / 2 * ||w||^2`` on each training fold (weighted as
    scikit-learn does), tuned over ``alpha`` (a scalar, or one per feature for the Lasso:
    the weighted Lasso ``sum_j alpha_j |w_j|``) and, optionally, ``l1_ratio``.

    Inner solver: scikit-learn's compiled coordinate descent, warm-started per fold (a
    black box, as the paper allows); the hypergradient: implicit differentiation of the
    stationarity conditions restricted to each fold's support, all folds in one batched
    JAX call (Cholesky on the support, never a p x p system).
    """

    # The Gram caches are warm state too: a restart's results must not depend on what
    # another start (maybe in another thread) added to them (their rounding depends on
    # the order).
    warm_state = ("_solutions", "_grams")

    def __init__(self, folds, *, fit_intercept=True, l1_ratio=1.0,
                 tune_l1_ratio=False, alpha_per_feature=False, positive=False, tol=1e-4,
                 max_iter=1000, bounds=None, l1_ratio_bounds=(0.01, 1.0), n_path=6,
                 starts=None, precompute=False, eps=None):
        self.folds, constant, self.refit_gram = _prepare_folds(folds, fit_intercept)
        self.n_features = self.folds[0].n_features
        self._n_folds = len(self.folds)
        self._rows = (max(f.n_train for f in self.folds),
                      max(f.X_test.shape[0] for f in self.folds))
        # Compile the hypergradient kernel while the coarse path runs: for the support
        # size k0, else for the Gram matrices' few bucketed sizes (all likely met).
        self._prefetch_kernel(*([self._k0] if self._k0 else self._gram_sizes()))
        self.fit_intercept, self.positive = fit_intercept, positive
        self.tol, self.max_iter, self.n_path = tol, max_iter, n_path
        # scikit-learn's ``precompute`` for the inner coordinate descent (a Gram matrix
        # given by the user is of the whole data, not of a fold: not used on the folds).
        self.precompute = precompute if isinstance(precompute, bool) else False
        self._set_space([f.alpha_max() for f in self.folds], constant, l1_ratio=l1_ratio,
                        tune_l1_ratio=tune_l1_ratio, alpha_per_feature=alpha_per_feature,
                        bounds=bounds, l1_ratio_bounds=l1_ratio_bounds, starts=starts,
                        eps=eps)
        self._grams = [f.empty_gram_cache() for f in self.folds]  # see LeastSquaresFold.gram
        self.solver = HostCD(max_iter=max_iter, precompute=self.precompute, positive=positive)
        self._last_loss = np.inf
        self._cover_best = np.inf  # (see _cover_is_far)
        self._best_path_loss = np.inf
        self._after_best = False
        self._path_k = None

    # -- coarse cover ------------------------------------------------------------------
    def initial_points(self):
        """The coarse cover (see :meth:`EnetSearchSpace.initial_points`). With ``l1_ratio``
        tuned, a generator that reads each point's loss: the further lines span at most the
        first line's decades below their own ``alpha_max / l1_ratio`` (as scikit-learn's
        grid at each ``l1_ratio``), stopping inside that span once their fall slows down
        and :meth:`_line_may_pay` fails; from its end they go on down to the interval's
        lower bound, one step at a time, while it holds. Those lines' small alphas hold
        the near-ridge solves of small ``l1_ratio``, the slowest of a wide fold
        (``bench_shapes.py``, 667 x 5000, on lines 170 times worse than the Lasso's best:
        21.2 -> 10.0 s a fit without their last decade), and on some data the best model
        (DAAG's hills2000: ``l1_ratio = 0.01``, a third below any Lasso's validation MSE).
        A line's fall speeds up first, from the dead zone's edge: no stop before it slows
        (robustbase's foodstamp, whose best models sit at ``l1_ratio`` 0.2 to 0.5 and whose
        line at 0.5 starts flat, lost 0.07 % of CV MSE to a stop after two points).
        """
        if not self.tune_l1_ratio or self.starts is not None:
            return super().initial_points()
        return self._adaptive_cover()

    def _adaptive_cover(self):
        hi_r = self.l1_ratio_bounds[1]
        lo = float(np.min(self.hyperparameters[0].lower))
        best = [np.inf]

        def run(points, losses):
            for p in points:
                yield p
                losses.append(self._last_loss)
                best[0] = min(best[0], self._last_loss)

        yield from run(self._cover_line(hi_r, self.COVER_PER_DECADE), [])
        step = 10.0 ** (-1.0 / self.COVER_PER_DECADE_MIX)
        for r in self._further_ratios():
            losses, a = [], None
            for p in self._cover_line(r, self.COVER_PER_DECADE_MIX, first=hi_r):
                slowing = (len(losses) >= 3
                           and losses[-2] - losses[-1] < losses[-3] - losses[-2])
                if slowing and not self._line_may_pay(losses, np.log10(a / lo), best[0]):
                    break
                yield from run([p], losses)
                a = float(np.min(p["alpha"]))
            else:  # the whole span: on to the lower bound while it may pay
                while a > lo * (1.0 + 1e-9) and self._line_may_pay(
                        losses, np.log10(a / lo), best[0]):
                    a = max(lo, a * step)
                    yield from run([self._cover_point(a, r)], losses)

    def _line_may_pay(self, losses, decades_left, best):
        """Whether a further cover line goes on towards smaller alphas: falling on by
        twice its last step's drop at each step left (an optimistic extrapolation in log
        alpha: validation curves flatten towards their minimum), its loss would get below
        ``best``, the cover's best loss so far (never where it no longer falls)."""
        if len(losses) < 2 or not np.all(np.isfinite(losses[-2:])):
            return False
        steps_left = np.ceil(decades_left * self.COVER_PER_DECADE_MIX - 1e-9)
        return losses[-1] - 2.0 * steps_left * (losses[-2] - losses[-1]) < best

    # -- inner solves -------------------------------------------------------------------
    def _solve_fold(self, i, alpha, l1_ratio, tol, init, near=False, cheap=False,
                    first_try=False):
        """:func:`~skimplicit.solvers.solve_enet_host` on fold ``i`` with its Gram cache.
        Returns ``(coef, converged, n_iter, exact)``."""
        coef, info, self._grams[i] = solve_enet_host(
            self.folds[i], alpha, l1_ratio, self.solver, tol=tol, init=init,
            gram_cache=self._grams[i], near=near, cheap=cheap, check=check_time,
            first_try=first_try)
        return coef, info.converged, info.n_iter, info.exact

    COVER_FAR_TOL = 10.0
    """The factor of the tolerance of a first try (see :meth:`_cover_is_far`)."""

    def _cover_is_far(self, loss):
        """Whether a cover point's loss is far above the cover's best so far
        (:meth:`~skimplicit.tuning.CVProblem.far_from_best`). The point after a far one is
        first solved at :attr:`COVER_FAR_TOL` times the duality-gap tolerance, and kept so
        when it is far too: its loss only has to rank it below the best. Otherwise it is
        solved again from there at the usual tolerance, as every point within
        :attr:`COVER_FAR` of the best is.

        The usual test is relative to the objective at the warm start (see
        :func:`~skimplicit.solvers.solve_enet_host`): past the best, at the small-alpha
        end of a path, it asks for 100 to 250 times scikit-learn's accuracy, and the
        descent there costs most of the path. The Lasso on ``bench_shapes.py``'s data (a
        profile), the path's last point: 667 x 5000, 0.74 -> 0.24 s, its CV MSE 2e-3 lower
        (relative); 2000 x 2000, 0.77 -> 0.38 s, 2e-4 lower. At scikit-learn's own
        tolerance the descent did not leave the warm start there: a first try that does
        not move, or does not converge, is solved again as usual (no false plateau).
        """
        return self.far_from_best(loss, self._cover_best)

    def _kernel_size(self, supports):
        """Few compiled shapes: rows padded to the largest fold (fixed during a fit); the
        support to :attr:`_k0` when it fits (one shape per fit, compiled ahead), else, from
        the Gram blocks (:meth:`_uses_gram`), to one of :meth:`_gram_sizes` (compiled ahead
        too), else to 2^j or 1.5 2^j (at least 64, at most n_features)."""
        size = max(1, max(s.size for s in supports))
        if size <= self._k0:
            return self._k0
        for k in self._gram_sizes():
            if size <= k:
                return k
        return min(bucket(size, 64, per_octave=2), self.n_features)

    # Padded Gram blocks cost little (5 folds of 256 x 256: ~1 ms a Cholesky): few
    # shapes, 256 2^j, each compiled once per process.
    GRAM_MIN = 256

    def _gram_sizes(self):
        """The support sizes of the Gram kernels :meth:`_kernel_size` may ask for: 256 2^j
        below 3/4 of the largest support the Gram kernel takes (``min(n_features,
        n_train / 2)``, see :meth:`_uses_gram`), then that largest one (500 x 20000, 400
        training rows: one shape, 200, where 64, 96, 128 and 192 had each compiled)."""
        cap = min(self.n_features, self._rows[0] // 2)
        sizes, k = [], self.GRAM_MIN
        while k < 0.75 * cap:
            sizes.append(k)
            k *= 2
        return sizes + [cap] if cap >= 1 else sizes

    @property
    def _k0(self):
        """Support size of the kernel compiled ahead: ``min(n_features, n_train)`` rounded
        up to 16 (a Lasso solution has at most ``n_train`` nonzeros) when at most
        :attr:`K0_MAX`, else 0 (bucketed sizes only). A padded system costs its full size
        cubed in every evaluation (5000 x 1000 with a 1000-coordinate kernel for supports
        of ~100: 1.2 of 2.5 s); larger supports compile their bucket on first use."""
        k0 = min(self.n_features, -(-self._rows[0] // 16) * 16)
        return k0 if k0 <= (self.K0_MAX_GRAM if self._uses_gram(k0) else self.K0_MAX) else 0

    K0_MAX = 256
    # From the Gram blocks (:meth:`_uses_gram`) a padded system costs only its Cholesky:
    # 5 folds of 512 x 512, ~10 ms, against ~0.25 s (trace and compile) for each further
    # bucketed shape (20000 x 500: five shapes, 1.2 s of a 2.2 s fit).
    K0_MAX_GRAM = 512

    def _uses_gram(self, k):
        """The hypergradient from the support's Gram matrices (:func:`enet_gram_hypergrad`)
        when the folds have at least twice as many rows as support coordinates: ``O(k^3)``
        per fold from the polish's Gram cache, instead of ``O(n k^2)`` on ``n x k``
        padded columns (20000 x 500: 1.25 s and 0.65 s of padding per evaluation)."""
        return self._rows[0] >= 2 * k

    def _prefetch_kernel(self, *sizes, supersede=False):
        """Trace and compile the hypergradient kernel for each support size in ``sizes``
        in the background thread (while the coarse path's compiled descent runs, which
        releases the GIL), in that order, cancelling the requests not started yet for
        other sizes with ``supersede``."""
        K, (n, m) = self._n_folds, self._rows
        f64 = np.dtype(np.float64)
        groups = {}  # (kernel, solve) -> the sizes' argument shapes, in order
        for k in sizes:
            if self._uses_gram(k):
                kernel = enet_gram_hypergrad
                shapes = [(K, k, k), (K, k), (K, k), (K, k), (K, k), (K,), (K,)]
            else:
                kernel = enet_support_hypergrad
                shapes = [(K, n, k), (K, n), (K,), (K, m, k), (K, m), (K, m), (K, k),
                          (K, k), (K,), (K,)]
            groups.setdefault((kernel, _solve_name(k)), []).append(
                tuple(jax.ShapeDtypeStruct(sh, f64) for sh in shapes))
        # One request per kernel and solver: superseding size by size cancelled the
        # sizes asked for just before (2000 x 2000: the start's 512 after the 256 before
        # it, so compiled on demand, after 800).
        superseded = set()
        with jax.enable_x64(True):
            for (kernel, solve), arg_sets in groups.items():
                kernel.prefetch_all(arg_sets, supersede=supersede and kernel not in superseded,
                                    solve=solve)
                superseded.add(kernel)

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        # Host work of a few hundred columns at a time: one BLAS thread (see _blas).
        with one_blas_thread():
            return self._evaluate(params, precision, with_grad)

    def _evaluate(self, params, precision, with_grad):
        alpha = params["alpha"]
        l1_ratio = float(params.get("l1_ratio", self.l1_ratio))
        # Inner accuracy: scikit-learn's duality-gap tolerance, tightened by the outer loop's
        # schedule (precision 1 -> 1e-2) as the descent converges; a solution whose support
        # polishes into a certified optimum is then exact (see LeastSquaresFold.polish).
        tol = self.tol * precision
        K = len(self.folds)
        alpha_vec = np.broadcast_to(np.asarray(alpha, float), (self.n_features,))
        inits, dist = self._warm_start(alpha_vec, l1_ratio)

        # A cover point after one far above the cover's best is first solved at a looser
        # tolerance (see _cover_is_far); kept if it is far too.
        loose = not with_grad and self._cover_is_far(self._last_loss)

        def solve(i, init, first_try=False):
            check_time()  # max_time, between folds (raises _progress.TimeUp)
            # Cover points (no gradient) only rank values: one descent at ``tol``, no
            # tighter retry (a small alpha's dense support costs most there).
            return self._solve_fold(i, alpha, l1_ratio, tol * self.COVER_FAR_TOL
                                    if first_try else tol, init, near=dist < 0.3,
                                    cheap=not with_grad, first_try=first_try)

        first = [0] * K
        if loose:
            sols, conv, first, _ = (list(v) for v in zip(*self.map_folds(
                lambda i: solve(i, inits[i], first_try=True), K)))
            supports = [np.flatnonzero(c) for c in sols]
            loss_f = np.array([f.cover_mse(c, s) for f, c, s in zip(self.folds, sols, supports)])
            # Else solved from there as usual.
            loose = self.keep_first_try(conv, first, float(loss_f.mean()), self._cover_best)
            if not loose:
                inits = sols
        if not loose:
            sols, conv, iters, exact = (list(v) for v in zip(*self.map_folds(
                lambda i: solve(i, inits[i]), K)))
            iters = [a + b for a, b in zip(first, iters)]
        else:
            iters, exact = first, [False] * K
        self._remember(alpha_vec, l1_ratio, sols)
        supports = [np.flatnonzero(c) for c in sols]
        k = self._kernel_size(supports)
        if not with_grad:
            if not loose:
                loss_f = np.array([f.cover_mse(c, s)
                                   for f, c, s in zip(self.folds, sols, supports)])
            self._cover_best = min(self._cover_best, float(loss_f.mean()))
            if self._k0 == 0 and loss_f.mean() < self._best_path_loss:
                # A new best point of the path, where the descent will likely start: once the
                # loss improves by less than 80 %, compile the kernel for its support size
                # in the background while the path goes on.
                # (and for the point before it, a larger alpha: the descent's bracket
                # reaches it, with a smaller support, maybe the size below)
                if loss_f.mean() > 0.2 * self._best_path_loss:
                    before = [] if self._path_k in (None, k) else [self._path_k]
                    self._prefetch_kernel(k, *before, supersede=True)
                self._best_path_loss = float(loss_f.mean())
                self._after_best = True
            elif self._k0 == 0 and self._after_best:
                # The point after the path's best (a smaller alpha): the bracket reaches it
                # too, often with the next kernel size (5000 x 1000: best supports ~125, a
                # descent step at ~250 compiled 512 on demand, 0.2 s).
                self._prefetch_kernel(k)
                self._after_best = False
            self._path_k = k
            self._last_loss = float(loss_f.mean())
            return self.evaluation(loss_f, None, all(conv), n_iter=iters, exact=exact,
                                   support_size=[s.size for s in supports])
        check_time()  # before the hypergradient kernel (its first call compiles)
        n, m = self._rows
        ws = pad_stack([c[s] for c, s in zip(sols, supports)], (k,))
        # Padded coordinates (identity rows) take the mean alpha, not 1: the kernel's
        # regularizing ridge is relative to the mean of alpha (1 - rho), in alpha's units.
        al = np.full((K, k), float(np.mean(alpha_vec)))
        for i, s in enumerate(supports):
            al[i, : s.size] = alpha_vec[s]
        n_train = np.array([f.n_train for f in self.folds], float)
        rho = np.full(K, l1_ratio)
        if self._uses_gram(k):
            # The validation loss and its gradient on the support from the test rows
            # here; the kernel gets the k x k Gram blocks and that gradient only.
            Gs, bs, gs = aligned_zeros((K, k, k)), np.zeros((K, k)), np.zeros((K, k))
            loss_f = np.zeros(K)
            for i, (f, s) in enumerate(zip(self.folds, supports)):
                G, c, self._grams[i] = f.gram(s, self._grams[i])
                Gs[i, : s.size, : s.size], bs[i, : s.size] = G, c
                loss_f[i], gs[i, : s.size] = f.validation_mse(sols[i], s, with_grad=True)
            d_alpha, d_rho, ok, res, ridge = solve_with_fallback(
                enet_gram_hypergrad, (Gs, bs, gs, ws, al, rho), {"solve": _solve_name(k)},
                K, "support system")
        else:
            Xt = pad_stack([f.test_columns(s) for f, s in zip(self.folds, supports)], (m, k))
            yt = pad_stack([f.y_test - f.y_mean for f in self.folds], (m,))
            swt = pad_stack([f.sw_test for f in self.folds], (m,))
            Xs = pad_stack([f.train_columns(s) for f, s in zip(self.folds, supports)], (n, k))
            ys = pad_stack([f.train_target() for f in self.folds], (n,))
            loss_f, d_alpha, d_rho, ok, res, ridge = solve_with_fallback(
                enet_support_hypergrad, (Xs, ys, n_train, Xt, yt, swt, ws, al, rho),
                {"solve": _solve_name(k)}, K, "support system")
        grad_alpha = np.zeros(self.n_features)
        for i, s in enumerate(supports):
            np.add.at(grad_alpha, s, d_alpha[i, : s.size])
        grad_alpha /= K
        grad = {"alpha": grad_alpha if self.alpha_per_feature else float(grad_alpha.sum())}
        if self.tune_l1_ratio:
            grad["l1_ratio"] = float(d_rho.mean())
        self._last_loss = float(loss_f.mean())
        return self.evaluation(
            loss_f, grad, all(conv) and ok.all(), n_iter=iters, exact=exact,
            support_size=[s.size for s in supports], linear_residual=float(res.max()),
            ridge=ridge)


class RidgeCVProblem(CVProblem):
    """K-fold validation MSE of scikit-learn's ``Ridge`` objective.

    ``||y - X w - b||^2 + sum_j alpha_j w_j^2`` on each (weighted) training fold, tuned over
    one alpha or one alpha per feature. Exact inner solve (Cholesky on the smaller Gram
    matrix) and the hypergradient by implicit differentiation, all folds batched in JAX.
    """

    def __init__(self, folds, *, fit_intercept=True, alpha_per_feature=False,
                 bounds=None, starts=None):
        # The user's alphas (a list): the cover's points instead of the log-spaced line.
        self.starts = None if starts is None else np.sort(np.asarray(starts, float))[::-1]
        folds = [d._replace(X_train=dense(d.X_train), X_test=dense(d.X_test)) for d in folds]
        self.folds = make_folds(folds, fit_intercept, normalize_weights=False)
        self.n_features = folds[0].X_train.shape[1]
        y = folds[0].y_train
        self.alpha_per_feature = alpha_per_feature
        size = self.n_features if alpha_per_feature else None
        self.data_scale = self.gram_scale(self.folds, self.n_features)
        self._data_bounds = bounds is None  # (see extend_bound)
        self._n_extended, self.max_extend = 0, 2
        if bounds is None:  # six decades either side of the data's own scale
            bounds = (1e-6 * self.data_scale, 1e6 * self.data_scale)
        self.hyperparameters = [Hyperparameter("alpha", bounds[0], bounds[1], "log", size)]
        n = max(f.n_train for f in self.folds)
        m = max(f.X_test.shape[0] for f in self.folds)
        cols = np.arange(self.n_features)
        tshape = y.shape[1:]
        self._X = pad_stack([f.train_columns(cols) for f in self.folds], (n, self.n_features))
        self._y = pad_stack([f.train_target() for f in self.folds], (n,) + tshape)
        self._Xt = pad_stack([f.test_columns(cols) for f in self.folds], (m, self.n_features))
        self._yt = pad_stack([f.y_test - f.y_mean for f in self.folds], (m,) + tshape)
        self._swt = pad_stack([f.sw_test for f in self.folds], (m,))
        with jax.enable_x64(True):  # one shape per fit: compile it while the path starts
            ridge_hypergrad.prefetch(self._X, self._y, self._Xt, self._yt, self._swt,
                                     np.ones((len(self.folds), self.n_features)))

    @staticmethod
    def gram_scale(folds, n_features):
        """The data's own unit of ``alpha``: the mean eigenvalue of the training folds'
        centered, weighted Gram matrices (their trace / ``n_features``, averaged).

        ``alpha`` enters the objective next to ``X^T W X``: scaling ``X`` by ``s`` (or the
        sample weights by ``c``) scales the optimal ``alpha`` by ``s^2`` (``c``) and this
        scale with it, so bounds and starts relative to it give the same model in the
        data's units, however small or large they are (no absolute floor). A design whose
        centered columns are all zero (constant features) has no scale: every ``alpha``
        then gives ``coef_ = 0`` and the unit 1.0 stands in.
        """
        cols = np.arange(n_features)
        trace = np.mean([np.sum(f.train_columns(cols) ** 2) for f in folds])
        scale = trace / max(n_features, 1)
        return float(scale) if np.isfinite(scale) and scale > 0 else 1.0

    # The gradient comes with every (exact) evaluation: the cover has it at no extra cost.
    cover_with_grad = True
    COVER_PER_DECADE = 2
    COVER_MAX = 41

    def cover_alphas(self):
        """The coarse cover of ``alpha``: its whole search interval, log-spaced from the
        upper bound (strong) to the lower one, ``COVER_PER_DECADE`` points a decade."""
        hp = self.hyperparameters[0]
        lo, hi = float(np.min(hp.lower)), float(np.max(hp.upper))
        if self.starts is not None:
            return np.clip(self.starts, lo, hi)
        n = int(np.clip(np.ceil(np.log10(hi / lo) * self.COVER_PER_DECADE) + 1, 2,
                        self.COVER_MAX))
        return np.clip(np.geomspace(hi, lo, n), lo, hi)

    def initial_points(self):
        return [{"alpha": float(a) if not self.alpha_per_feature else np.full(self.n_features, a)}
                for a in self.cover_alphas()]

    def fold_predictions(self, alpha):
        """Per fold, the test predictions (in the data's units) at ``alpha``."""
        _, _, w, _, _ = self.fold_hypergrad(alpha)
        cols = np.arange(self.n_features)
        out = []
        for f, wk in zip(self.folds, w):
            out.append(f.test_columns(cols) @ wk + f.y_mean)
        return out

    def extend_bound(self, name, side):
        """Lower the data-derived lower bound of ``alpha`` by ``10^1.5``, at most
        ``max_extend`` times (to ``1e-9`` of the data's scale): ill-conditioned designs
        (polynomial features, n >> p) can still gain from less shrinkage there (AER's
        PSID7682: 0.8 % of CV MSE below 1e-6 of the scale, the grid's 1e-3 beat us). Not
        further: the
        Cholesky factor of the training Gram plus ``alpha`` loses its digits. A scalar
        ``alpha`` only; bounds set by the user never move (see :func:`~skimplicit.
        model_selection._outer._grow_bounds`)."""
        if name != "alpha" or side != "lower" or not self._data_bounds \
                or self.alpha_per_feature or self.starts is not None \
                or self._n_extended >= self.max_extend:
            return False
        hp = self.hyperparameters[0]
        lower = float(np.min(hp.lower)) / 10 ** 1.5
        self.hyperparameters[0] = Hyperparameter("alpha", lower, hp.upper, "log", hp.size)
        self._n_extended += 1
        return True

    def to_device(self, dtype):
        """Move the stacked folds to JAX's default device once, in ``dtype`` (the
        estimators' ``backend="jax"``)."""
        with jax.enable_x64(True):
            self._X, self._y, self._Xt, self._yt, self._swt = (
                to_device(a, dtype) for a in (self._X, self._y, self._Xt, self._yt, self._swt))
        self._alpha_dtype = np.dtype(dtype)

    _alpha_dtype = np.dtype(np.float64)

    def fold_hypergrad(self, alpha):
        """Per fold: validation MSE, its gradient w.r.t. ``alpha (K, p)``, the solution,
        the linear solves' success flags and residuals (one batched JAX call)."""
        K = len(self.folds)
        alpha = np.broadcast_to(np.asarray(alpha, self._alpha_dtype), (K, self.n_features))
        with jax.enable_x64(True):
            return tuple(np.asarray(o) for o in ridge_hypergrad(
                self._X, self._y, self._Xt, self._yt, self._swt, alpha))

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        del precision, with_grad  # exact inner solve; the gradient comes at no extra cost
        loss_f, d_alpha, _, ok, res = self.fold_hypergrad(params["alpha"])
        g = d_alpha.mean(axis=0)
        return self.evaluation(
            loss_f, {"alpha": g if self.alpha_per_feature else float(g.sum())}, ok.all(),
            linear_residual=float(res.max()))


class AdaptiveRidgeCVProblem(CVProblem):
    """Ridge with one alpha per feature from a two-parameter adaptive family.

    ``alpha_j = alpha * (m / |w_j|) ** gamma``, with ``w`` the one-alpha ridge solution at
    the best point of the coarse path (computed on each training fold, so the
    cross-validation sees the whole procedure; ``m`` the mean of ``|w|``) and
    ``gamma`` in ``[0, 2]`` (2: the Bayes-optimal ridge, ``alpha_j = sigma^2 / beta_j^2``,
    when ``w`` estimates ``beta``). The hypergradient with respect to every ``alpha_j``
    (one linear solve per fold, :class:`RidgeCVProblem`) is chained to ``(alpha,
    gamma)``. Tuning the ``p`` alphas freely overfits the folds' validation loss (measured
    on the regression benchmark: the CV loss drops 35 % while the test error does not
    move); the family keeps two hyperparameters and the coarse path is the one-alpha
    path (``gamma = 0``).
    """

    def __init__(self, folds, *, fit_intercept=True, bounds=None, gamma_max=2.0, inner=None):
        # ``inner``: the one-alpha-per-feature problem (default: K-fold; the estimator
        # passes the exact leave-one-out problem for ``cv=None``).
        self.inner = inner if inner is not None else RidgeCVProblem(
            folds, fit_intercept=fit_intercept, alpha_per_feature=True, bounds=bounds)
        self.data_scale = self.inner.data_scale
        bounds = (self.inner.hyperparameters[0].lower, self.inner.hyperparameters[0].upper)
        self.n_features = self.inner.n_features
        self.hyperparameters = [Hyperparameter("alpha", bounds[0], bounds[1], "log"),
                                Hyperparameter("gamma", 0.0, gamma_max, "linear")]
        self.log_weights = np.zeros((len(self.inner.folds), self.n_features))
        self.base_alpha = None
        self._last_loss = np.inf

    def set_base(self, alpha):
        """Fix the weights: the folds' one-alpha solutions at ``alpha``."""
        self.base_alpha = float(alpha)
        _, _, w, _, _ = self.inner.fold_hypergrad(self.base_alpha)
        self.log_weights = self.weights(w.reshape(w.shape[0], w.shape[1], -1))

    cover_with_grad = True

    def bound_hint(self, name, side):
        """How to widen a bound: ``gamma``'s are fixed (0: one alpha; 2: Bayes-optimal)."""
        return None if name == "gamma" else "the estimator parameter `bounds`"

    def initial_points(self):
        """The one-alpha cover (``gamma = 0``, see :meth:`RidgeCVProblem.cover_alphas`);
        then the folds' weights at its best point."""
        best = (np.inf, None)
        self.inner.hyperparameters = [Hyperparameter(
            "alpha", self.hyperparameters[0].lower, self.hyperparameters[0].upper, "log",
            self.n_features)]
        for a in self.inner.cover_alphas():
            yield {"alpha": float(a), "gamma": 0.0}
            if self._last_loss < best[0]:
                best = (self._last_loss, float(a))
        self.set_base(best[1])

    @staticmethod
    def weights(w):
        """``log(m / |w_j|)`` per fold from solutions ``w (K, p, targets)``."""
        mag = np.sqrt(np.mean(w * w, axis=2))
        m = np.mean(mag, axis=1, keepdims=True)
        return np.log(np.maximum(m, 1e-300)) - np.log(np.maximum(mag, 1e-12 * m + 1e-300))

    @staticmethod
    def family(alpha, gamma, log_weights):
        """``alpha_j = alpha * exp(gamma * log_weights_j)``."""
        return alpha * np.exp(gamma * log_weights)

    def alphas(self, params):
        return self.family(params["alpha"], params["gamma"], self.log_weights)

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        if self.base_alpha is None:  # started from a given point, without the path
            self.set_base(params["alpha"])
        a = self.alphas(params)
        loss_f, d_alpha, _, ok, res = self.inner.fold_hypergrad(a)
        K = len(loss_f)
        da = d_alpha * a  # d loss_f / d log alpha_fj
        grad = {"alpha": float(np.sum(da) / K / params["alpha"]),
                "gamma": float(np.sum(da * self.log_weights) / K)}
        self._last_loss = float(loss_f.mean())
        # base_alpha: where the weights come from (None on the path, where gamma = 0).
        return self.evaluation(loss_f, grad, ok.all(), linear_residual=float(res.max()),
                               base_alpha=self.base_alpha)
