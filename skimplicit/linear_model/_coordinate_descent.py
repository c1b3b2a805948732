"""ImplicitLassoCV and ImplicitElasticNetCV."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
import sklearn.linear_model._coordinate_descent as _sk_cd
from sklearn.utils import check_scalar
from sklearn.utils._param_validation import Interval, StrOptions

from ..solvers import HostCD
from ..solvers._host_cd import _gram_cd
from ._base import ImplicitLinearModelCV, check_bounds
from ._cv_problems import EnetCVProblem
from ._device import DeviceEnetProblem

__all__ = ["ImplicitLassoCV", "ImplicitElasticNetCV"]


def fit_enet(X, y, sample_weight, alpha, l1_ratio, *, fit_intercept, positive, tol, max_iter,
             precompute=False):
    """scikit-learn's Lasso (``l1_ratio = 1``) or ElasticNet at ``alpha`` (a scalar or one
    per feature: weighted Lasso), looked up in scikit-learn's module when called, with
    ``precompute`` as ``LassoCV`` sets it on its refit ('auto' -> False) and
    ``sample_weight=None`` passed on as such.

    Per-feature alphas are exact by rescaling columns: with ``w_j = (a / alpha_j) v_j`` and
    ``a = min alpha``, ``sum_j alpha_j |w_j| = a ||v||_1`` (l1_ratio = 1 only).
    """
    scale = None
    a = alpha
    if isinstance(precompute, str):
        precompute = False
    if np.ndim(alpha):
        a = float(np.min(alpha))
        scale = a / np.asarray(alpha, float)
        X = X @ sp.diags(scale) if sp.issparse(X) else X * scale
        if not isinstance(precompute, bool):  # a Gram matrix of the unscaled X
            precompute = False
    common = dict(alpha=a, fit_intercept=fit_intercept, positive=positive, tol=tol,
                  max_iter=max_iter, precompute=precompute)
    est = (_sk_cd.Lasso(**common) if l1_ratio == 1
           else _sk_cd.ElasticNet(l1_ratio=l1_ratio, **common))
    if sample_weight is None:
        est.fit(X, y)
    else:
        est.fit(X, y, sample_weight=sample_weight)
    coef = est.coef_ * scale if scale is not None else est.coef_
    return coef, est.intercept_, est.n_iter_, est.dual_gap_


def fit_enet_gram(gram, y, sample_weight, alpha, l1_ratio, *, positive, tol, max_iter):
    """:func:`fit_enet` (with an intercept, one alpha) from the whole data's centered Gram
    matrix ``gram = (G, X^T y, x_mean)`` (scikit-learn's normalized weights: ``G = sum_i
    s_i (x_i - x_mean)(x_i - x_mean)^T``, ``s`` summing to ``n``), as the folds' sums gave
    it: scikit-learn's coordinate descent on a Gram matrix (``enet_path`` with
    ``precompute=G``, the solver ``ElasticNet(precompute=G)`` runs), without its copy of
    ``X`` in Fortran order nor ``O(n p)`` epochs. Returns ``(coef, intercept, n_iter,
    dual_gap)``."""
    G, xty, x_mean = gram
    s = np.asarray(sample_weight, float)
    s = s * (y.shape[0] / s.sum())
    y_mean = float(np.average(y, weights=s))
    coef, n_iter, gap = _gram_cd(HostCD(max_iter=max_iter, positive=positive), G, xty,
                                 (y - y_mean) * np.sqrt(s), alpha, l1_ratio, tol, None,
                                 return_gap=True)
    return coef, y_mean - float(x_mean @ coef), n_iter, gap


def enet_alpha_max(X, y, sample_weight, *, l1_ratio=1.0, fit_intercept=True, positive=False):
    """scikit-learn's ``alpha_max`` (``_alpha_grid``'s first value) on the whole data: the
    smallest ``alpha`` whose elastic-net solution is zero. Not floored at the float64
    resolution as scikit-learn's grid is (data scaled by 1e-12 keeps its interval, scaled);
    only a zero ``alpha_max`` (nothing to tune: a constant target) takes the resolution."""
    sw = np.asarray(sample_weight, float)
    yc = y - np.average(y, weights=sw) if fit_intercept else y
    yw = yc * sw
    Xyw = np.asarray(X.T @ yw).ravel()
    if fit_intercept:
        x_mean = np.asarray(X.T @ sw).ravel() / sw.sum()
        Xyw = Xyw - x_mean * yw.sum()
    top = max(0.0, float(np.max(Xyw))) if positive else float(np.max(np.abs(Xyw)))
    amax = top / (sw.sum() * l1_ratio)
    return amax if amax > 0 and np.isfinite(amax) else float(np.finfo(np.float64).resolution)


def check_alphas(alphas):
    """``alphas`` as scikit-learn validates a list (each a real >= 0); returns the positive
    values, sorted decreasing, or raises when there is none (``alpha = 0``, no penalty,
    is not a point of a log-scale search)."""
    for index, alpha in enumerate(alphas):
        check_scalar(alpha, f"alphas[{index}]", target_type=Real, min_val=0.0,
                     include_boundaries="left")
    pos = np.unique(np.asarray(alphas, float))
    pos = pos[pos > 0][::-1]
    if pos.size == 0:
        raise ValueError(
            f"alphas must contain a positive value (alpha = 0 is not searched in log "
            f"scale); got {list(alphas)!r}."
        )
    return pos


class _EnetTunerMixin:
    """What ImplicitLassoCV and ImplicitElasticNetCV share beyond the base class.

    The search interval of ``alpha`` (with ``bounds='auto'``): an int ``alphas`` (the
    grid's length in scikit-learn) and ``eps`` set it to ``[eps, 1] * alpha_max``,
    ``alpha_max`` as scikit-learn computes it on the whole data; a list of ``alphas``
    sets it to ``[min, max]`` of its positive values, which are the coarse cover's points
    (the outer loop's starts). Explicit ``bounds`` override the interval.
    """

    def _check_and_prepare(self, X, y, sample_weight):
        self._data_alpha_max = enet_alpha_max(
            X, y, sample_weight, fit_intercept=self.fit_intercept, positive=self.positive)

    def _alpha_interval(self, rho_lo, rho_hi):
        """``(bounds, starts)`` of alpha for l1_ratio in ``[rho_lo, rho_hi]``."""
        starts = None
        if not isinstance(self.alphas, Integral):
            starts = check_alphas(self.alphas)
        b = check_bounds(self.bounds)
        if b is not None:
            return b, starts
        if starts is not None:
            return (float(starts[-1]), float(starts[0])), starts
        if rho_lo == 0:
            raise ValueError(
                "Automatic alpha grid generation is not supported for l1_ratio=0. Please "
                "supply a grid by providing your estimator with the appropriate `alphas=` "
                "argument."
            )
        amax = getattr(self, "_data_alpha_max", None)
        # A problem built outside fit (HypergradSearchCV): no data alpha_max here; the
        # problem applies eps to its folds' own (EnetCVProblem(eps=...)).
        if amax is None:
            return None, None
        return (self.eps * amax / rho_hi, amax / rho_lo), None

    def _enet_problem(self, folds, *, precompute, max_iter, **kwargs):
        """The host problem (scikit-learn's CD per fold), or on the JAX path (``backend``)
        the device one (all folds in one compiled program; FISTA iterations: 20 x
        ``max_iter``)."""
        on_device, dtype = self._on_device(folds)
        if on_device:
            return DeviceEnetProblem(folds, max_iter=20 * max_iter, dtype=dtype, **kwargs)
        return EnetCVProblem(folds, precompute=precompute, max_iter=max_iter, **kwargs)

    def _refit(self, X, y, sample_weight):
        gram = getattr(self, "_refit_gram", None)
        # The whole data's Gram matrix, when the folds' sums gave it (dense n >> p data):
        # the refit's descent on it (one alpha; scikit-learn computes no Gram matrix of
        # its own for precompute='auto' or False, and its gap on a Gram matrix loses
        # ~1e-16 ||y||^2 to cancellation: not for tol < 1e-10).
        if (gram is not None and self.fit_intercept and np.ndim(self.alpha_) == 0
                and isinstance(self.precompute, (str, bool)) and self.tol >= 1e-10):
            with warnings.catch_warnings():
                warnings.simplefilter("always", ConvergenceWarning)
                self.coef_, self.intercept_, self.n_iter_, self.dual_gap_ = fit_enet_gram(
                    gram, y, sample_weight, self.alpha_, self.l1_ratio_,
                    positive=self.positive, tol=self.tol, max_iter=self.max_iter)
            self.__dict__.pop("_data_alpha_max", None)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConvergenceWarning)
            self.coef_, self.intercept_, self.n_iter_, self.dual_gap_ = fit_enet(
                X, y, sample_weight if self._sw_given else None, self.alpha_,
                self.l1_ratio_, fit_intercept=self.fit_intercept, positive=self.positive,
                tol=self.tol, max_iter=self.max_iter, precompute=self.precompute,
            )
        self.__dict__.pop("_data_alpha_max", None)


class ImplicitLassoCV(_EnetTunerMixin, ImplicitLinearModelCV):
    r"""Lasso with its ``alpha`` tuned by hypergradient descent on the K-fold CV error.

    A drop-in for :class:`sklearn.linear_model.LassoCV`: the same objective on each
    training fold and in the final refit,

    .. math::
        \frac{1}{2 n} \|y - X w - b\|_2^2 + \alpha \|w\|_1

    (or :math:`\sum_j \alpha_j |w_j|` with ``alpha_per_feature=True``), with ``alpha``
    chosen to minimize the mean validation MSE over the folds. Instead of a grid, the
    validation error's gradient with respect to :math:`\log\alpha` (the *hypergradient*) is
    obtained by implicit differentiation of the Lasso's optimality conditions on each
    fold's support (one small linear solve for all folds, batched in JAX), and fed to the
    shared outer loop (:func:`skimplicit.tuning.tune`): a warm-started coarse cover of
    the whole interval of alpha (4 points a decade, strong to weak), then, from its best
    basins, a bracketed line search in log alpha (L-BFGS-B when several hyperparameters
    are tuned). The inner solver is scikit-learn's coordinate descent (working sets,
    Gram matrices at n >> p), warm-started between outer steps, then an active-set
    polish that certifies the exact solution.

    Parameters
    ----------
    eps : float, default=1e-3
        With an int ``alphas`` (and ``bounds='auto'``): the search interval of alpha is
        ``[eps * alpha_max, alpha_max]`` (scikit-learn's grid spans the same interval).
    alphas : int or array-like, default=100
        An int sets the search interval only (``eps`` above; the number of points
        evaluated is the outer loop's). A list sets the interval to ``[min, max]`` of its
        positive values, which are evaluated first (the coarse cover, the outer loop's
        starts); zeros are ignored (no log-scale point).
    fit_intercept : bool, default=True
    precompute : 'auto', bool or array-like, default='auto'
        As in :class:`~sklearn.linear_model.LassoCV`: a bool is passed to the inner
        coordinate descent on each fold and to the refit; 'auto' is ``False``; a Gram
        matrix is used by the refit only.
    max_iter : int, default=1000
        Maximum epochs of the inner coordinate descent (of the refit, and of each
        descent of the tuning; one from a far warm start, a coarse path's step, may run
        up to 5 times as many, as the grid points it stands for would).
    tol : float, default=1e-4
        Inner tolerance (scikit-learn's duality-gap meaning) of the final refit and of
        the tuning's descents, tightened over the outer steps (down to ``tol / 100``); a
        descent whose support the active-set polish certifies is then exact.
    copy_X : bool, default=True
        Accepted for compatibility; X is never modified.
    cv : int, cross-validation generator or iterable, default=None
        As in :class:`~sklearn.linear_model.LassoCV` (``None``: 5-fold ``KFold``).
    verbose : int, default=0
        > 0: a header, one line per evaluation (coarse cover and descents) and a summary
        line; 2 adds the inner solver's detail.
    n_jobs : int, default=None
        The folds of one evaluation are solved on this many threads (scikit-learn's
        coordinate descent releases the GIL), and the descents of several starts run
        in parallel through joblib; the result does not depend on it.
    positive : bool, default=False
        Force nonnegative coefficients.
    random_state : int, RandomState instance or None, default=None
        For random restarts.
    alpha_init : 'auto' or float, default='auto'
        Starting alpha; 'auto' starts from the best basins of the coarse cover (the whole
        search interval, 4 points a decade, from strong to weak regularization).
    bounds : 'auto' or (float, float), default='auto'
        Search interval of alpha; 'auto' is set by ``alphas`` and ``eps`` (above).
    max_outer_iter : int, default=30
        Hypergradient evaluations per start after the coarse cover.
    outer_tol : float, default=1e-4
        Relative decrease of the CV loss under which the descent stops.
    n_restarts : int, default=1
        Least number of starts: the coarse cover's best basins (up to 3 within 5 % of
        the best are always descended), then its next best points, then random points.
    max_time : float, default=None
        Time budget in seconds; the best point seen is kept.
    alpha_per_feature : bool, default=False
        Tune one alpha per feature (the weighted Lasso), with one linear solve per
        hypergradient whatever their number.
    selection : {'cyclic', 'random'}, default='cyclic'
        Accepted for compatibility (the inner solver is cyclic: the solutions are the
        same optimum).
    backend : {"auto", "host", "jax"}, default="auto"
        Where the tuning runs. ``"host"``: scikit-learn's compiled coordinate descent per
        fold; ``"jax"``: all folds' inner solves (FISTA, then a support polish) and the
        hypergradient in one compiled JAX program per evaluation on JAX's default device,
        the folds moved there once (float32 when ``X`` is float32); ``"auto"``: ``"host"``
        when JAX's default backend is the CPU, ``"jax"`` on a GPU or TPU. The refit runs on
        the host. See the user guide's "Accelerators" page.

    Attributes
    ----------
    alpha_ : float or ndarray of shape (n_features,)
        The chosen penalty.
    l1_ratio_ : float
        Always 1.0 (for API compatibility with the elastic net).
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : int
        Inner iterations of the final refit.
    dual_gap_ : float
        Duality gap of the final refit.
    n_outer_iter_ : int
        Hypergradient evaluations after the coarse path.
    cv_loss_, cv_loss_std_ : float
        Mean and standard deviation over folds of the validation MSE at ``alpha_``.
    history_ : dict of ndarray
        One entry per evaluation: ``alpha``, ``grad_alpha``, ``loss``, ``loss_std``,
        ``grad_norm``, ``time``, ``precision``, ``converged``, ``phase``.
    alphas_ : ndarray of shape (n_alphas,)
        Alphas evaluated (coarse cover and descent), in decreasing order (``n_alphas``:
        the number of evaluations, not the ``alphas`` parameter).
    mse_path_ : ndarray of shape (n_alphas, n_folds)
        Validation MSE per fold at ``alphas_``, as in ``LassoCV``.
    tuning_result_ : TuningResult
        The outer loop's full record.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    sklearn.linear_model.LassoCV : the grid twin (warm-started path over a fixed grid).
    ImplicitElasticNetCV : tunes ``l1_ratio`` as well.
    skimplicit.model_selection.HypergradSearchCV : the same machinery for pipelines.

    Notes
    -----
    Unlike ``LassoCV``, the chosen alpha is not restricted to a grid: it is a local
    minimum of the CV error, descended from the best basins of the coarse cover of the
    whole interval, usually at or below the grid's best value.

    References
    ----------
    Blondel et al., "Efficient and Modular Implicit Differentiation", NeurIPS 2022.
    Bertrand et al., "Implicit differentiation of Lasso-type models for hyperparameter
    optimization", ICML 2020. Pedregosa, "Hyperparameter optimization with approximate
    gradient", ICML 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skimplicit.linear_model import ImplicitLassoCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = ImplicitLassoCV(cv=3).fit(X, y)
    >>> bool(0 < reg.alpha_ < 1)
    True
    >>> reg.coef_.shape
    (10,)
    """

    _parameter_constraints: dict = {
        **ImplicitLinearModelCV._parameter_constraints,
        "precompute": ["boolean", StrOptions({"auto"}), "array-like"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "positive": ["boolean"],
        "selection": [StrOptions({"cyclic", "random"})],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
    }

    def __init__(self, *, eps=1e-3, alphas=100, fit_intercept=True, precompute="auto",
                 max_iter=1000, tol=1e-4, copy_X=True, cv=None, verbose=0, n_jobs=None,
                 positive=False, random_state=None, selection="cyclic", alpha_init="auto",
                 bounds="auto", max_outer_iter=30, outer_tol=1e-4, n_restarts=1,
                 max_time=None, alpha_per_feature=False, backend="auto"):
        self.backend = backend
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.copy_X = copy_X
        self.cv = cv
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.positive = positive
        self.random_state = random_state
        self.alpha_init = alpha_init
        self.bounds = bounds
        self.max_outer_iter = max_outer_iter
        self.outer_tol = outer_tol
        self.n_restarts = n_restarts
        self.max_time = max_time
        self.alpha_per_feature = alpha_per_feature
        self.selection = selection

    def make_tunable_problem(self, folds, bounds=None):
        interval, starts = self._alpha_interval(1.0, 1.0)
        return self._enet_problem(
            folds, fit_intercept=self.fit_intercept, l1_ratio=1.0,
            alpha_per_feature=self.alpha_per_feature, positive=self.positive, tol=self.tol,
            max_iter=self.max_iter, bounds=interval, starts=starts, precompute=self.precompute,
            eps=self.eps,
        )

    def _store_params(self, best, result):
        self.alpha_ = best["alpha"]
        self.l1_ratio_ = 1.0
        self._path_attributes(result)


class ImplicitElasticNetCV(_EnetTunerMixin, ImplicitLinearModelCV):
    r"""Elastic net with ``alpha`` (and, opt-in, ``l1_ratio``) tuned by hypergradients.

    A drop-in for :class:`sklearn.linear_model.ElasticNetCV` with scikit-learn's
    objective on each training fold and in the refit,

    .. math::
        \frac{1}{2 n} \|y - X w - b\|_2^2 + \alpha \rho \|w\|_1
        + \frac{\alpha (1 - \rho)}{2} \|w\|_2^2, \qquad \rho = \text{l1\_ratio},

    where :math:`\log\alpha` (and, with ``l1_ratio="tune"``, :math:`\rho`) is moved by
    the hypergradient of the mean validation MSE (one batched linear solve on the
    folds' supports per step), instead of a path over a grid of alphas. The outer loop
    is :class:`ImplicitLassoCV`'s; with ``l1_ratio="tune"`` its coarse cover is a line
    of alphas at the upper bound of ``l1_ratio``, then coarser lines (2 points a
    decade) at 0.5 and 0.1 (clipped to ``l1_ratio_bounds``), each over as many decades
    below its own ``alpha_max / l1_ratio`` as the first line spans (as scikit-learn's
    grid at each ``l1_ratio``), then on to the interval's lower bound while an optimistic
    extrapolation of its validation loss reaches the best loss so far (and stopped early
    where, once its fall slows down, it cannot; host solvers: ``backend="jax"`` covers
    whole lines in one batch), and the descent is L-BFGS-B in ``(log alpha, l1_ratio)``
    within the whole interval.

    Parameters
    ----------
    l1_ratio : float in [0, 1], array-like of such floats, or 'tune', default=0.5
        As in ``ElasticNetCV``: a float fixes the mix; a list is searched as
        ``ElasticNetCV`` does (alpha tuned for each value, the best pair kept).
        ``l1_ratio = 0`` (ridge) needs a list of ``alphas``, as in scikit-learn.
        ``'tune'`` (opt-in) moves ``l1_ratio`` continuously within ``l1_ratio_bounds``
        together with alpha.
    l1_ratio_bounds : (float, float), default=(0.01, 1.0)
        Search interval of ``l1_ratio`` with ``l1_ratio='tune'`` (linear scale).
    eps, alphas, fit_intercept, precompute, max_iter, tol, copy_X, cv, verbose, n_jobs, \
positive, random_state, alpha_init, bounds, max_outer_iter, outer_tol, n_restarts, max_time, \
selection :
        As in :class:`ImplicitLassoCV` (``alpha_max`` of ``l1_ratio``:
        ``alpha_max(l1_ratio=1) / l1_ratio``; with 'tune', the interval spans the
        bounds of ``l1_ratio``).
    backend : {"auto", "host", "jax"}, default="auto"
        Where the tuning runs. ``"host"``: scikit-learn's compiled coordinate descent per
        fold; ``"jax"``: all folds' inner solves (FISTA, then a support polish) and the
        hypergradient in one compiled JAX program per evaluation on JAX's default device,
        the folds moved there once (float32 when ``X`` is float32); ``"auto"``: ``"host"``
        when JAX's default backend is the CPU, ``"jax"`` on a GPU or TPU. The refit runs on
        the host. See the user guide's "Accelerators" page.

    Attributes
    ----------
    alpha_ : float
    l1_ratio_ : float
    alphas_ : ndarray of shape (n_alphas,)
        Alphas evaluated, decreasing; with a list of ``l1_ratio``, the union over its
        values.
    mse_path_ : ndarray of shape (n_alphas, n_folds) or (n_l1_ratio, n_alphas, n_folds)
        Validation MSE per fold at ``alphas_``; with a list of ``l1_ratio``, one layer
        per value, NaN where that value did not evaluate that alpha.
    coef_, intercept_, n_iter_, dual_gap_, n_outer_iter_, cv_loss_, cv_loss_std_, \
history_, tuning_result_, n_features_in_, feature_names_in_ :
        As in :class:`ImplicitLassoCV` (for the chosen ``l1_ratio_``); with 'tune',
        ``history_`` also holds ``l1_ratio`` and ``grad_l1_ratio``, and ``l1_ratios_``
        the l1_ratio of each row of ``alphas_``.

    See Also
    --------
    sklearn.linear_model.ElasticNetCV : the grid twin.
    ImplicitLassoCV : ``l1_ratio = 1``.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skimplicit.linear_model import ImplicitElasticNetCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = ImplicitElasticNetCV(cv=3, l1_ratio="tune").fit(X, y)
    >>> bool(0 < reg.l1_ratio_ <= 1)
    True
    """

    _parameter_constraints: dict = {
        **ImplicitLassoCV._parameter_constraints,
        "l1_ratio": [StrOptions({"tune"}), Interval(Real, 0, 1, closed="both"), "array-like"],
        "l1_ratio_bounds": [tuple, list],
    }

    def __init__(self, *, l1_ratio=0.5, eps=1e-3, alphas=100, fit_intercept=True,
                 precompute="auto", max_iter=1000, tol=1e-4, cv=None, copy_X=True, verbose=0,
                 n_jobs=None, positive=False, random_state=None, selection="cyclic",
                 l1_ratio_bounds=(0.01, 1.0), alpha_init="auto", bounds="auto",
                 max_outer_iter=30, outer_tol=1e-4, n_restarts=1, max_time=None,
                 backend="auto"):
        self.backend = backend
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.l1_ratio_bounds = l1_ratio_bounds
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.copy_X = copy_X
        self.cv = cv
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.positive = positive
        self.random_state = random_state
        self.alpha_init = alpha_init
        self.bounds = bounds
        self.max_outer_iter = max_outer_iter
        self.outer_tol = outer_tol
        self.n_restarts = n_restarts
        self.max_time = max_time
        self.selection = selection

    def _l1_ratios(self):
        """The fixed values of ``l1_ratio`` (a list, validated), or None for 'tune'."""
        if isinstance(self.l1_ratio, str):
            return None
        ratios = np.atleast_1d(np.asarray(self.l1_ratio, dtype=float))
        if ratios.ndim != 1 or ratios.size == 0 or not np.all((ratios >= 0) & (ratios <= 1)):
            raise ValueError(
                f"l1_ratio must be 'tune', a float in [0, 1] or a non-empty list of such "
                f"floats; got {self.l1_ratio!r}."
            )
        return [float(r) for r in ratios]

    def _problem(self, folds, l1_ratio):
        tuned = l1_ratio is None
        lo, hi = (float(b) for b in self.l1_ratio_bounds)
        if tuned and not 0 < lo < hi <= 1:
            raise ValueError(
                f"l1_ratio_bounds must satisfy 0 < low < high <= 1; got {self.l1_ratio_bounds}."
            )
        bounds, starts = (self._alpha_interval(lo, hi) if tuned
                          else self._alpha_interval(l1_ratio, l1_ratio))
        return self._enet_problem(
            folds, fit_intercept=self.fit_intercept,
            l1_ratio=0.7 if tuned else l1_ratio, tune_l1_ratio=tuned,
            positive=self.positive, tol=self.tol, max_iter=self.max_iter,
            bounds=bounds, l1_ratio_bounds=(lo, hi), starts=starts,
            precompute=self.precompute, eps=self.eps,
        )

    def make_tunable_problem(self, folds, bounds=None):
        ratios = self._l1_ratios()
        if ratios is not None and len(ratios) > 1:
            raise ValueError(
                f"{type(self).__name__}(l1_ratio={list(self.l1_ratio)}) as HypergradSearchCV's "
                "final step: a list of l1_ratio values is a grid of separate problems, which "
                "the search does not combine. Pass one value, or set l1_ratio='tune' and "
                "search it in param_grid, e.g. {'l1_ratio': (0.1, 1.0)}."
            )
        return self._problem(folds, None if ratios is None else ratios[0])

    def _make_tunable_problems(self, folds):
        ratios = self._l1_ratios()
        if ratios is None:
            return [self._problem(folds, None)]
        return [self._problem(folds, r) for r in ratios]

    def _default_init(self, hp):
        return 0.7 if hp.name == "l1_ratio" else super()._default_init(hp)

    def _store_params(self, best, result):
        self.alpha_ = best["alpha"]
        self.l1_ratio_ = (float(best["l1_ratio"]) if "l1_ratio" in best
                          else self._l1_ratios()[0])
        recs = self._path_attributes(result, ("alpha", "l1_ratio"))
        if isinstance(self.l1_ratio, str):
            self.l1_ratios_ = np.array(
                [float(r["params"].get("l1_ratio", self.l1_ratio_)) for r in recs]
            )

    def _store_results(self, results, best):
        """A list of ``l1_ratio``: ``l1_ratio_`` the best value; ``alphas_`` the union of
        the alphas evaluated, ``mse_path_`` one layer per value (NaN where not evaluated)."""
        self.l1_ratio_ = self._l1_ratios()[best]
        per = []
        for r in results:
            per.append({float(rec["params"]["alpha"]): rec["evaluation"].fold_losses
                        for rec in self._path_records(r)})
        alphas = np.array(sorted(set().union(*per), reverse=True))
        n_folds = len(results[0].best_evaluation.fold_losses)
        path = np.full((len(results), alphas.size, n_folds), np.nan)
        for i, d in enumerate(per):
            for j, a in enumerate(alphas):
                if a in d:
                    path[i, j] = d[a]
        self.alphas_, self.mse_path_ = alphas, path
