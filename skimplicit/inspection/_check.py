"""Check a tuner's hypergradient against finite differences of its CV loss."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

__all__ = ["check_hypergradient", "HypergradientCheck"]


@dataclass
class HypergradientCheck:
    """What :func:`check_hypergradient` measured.

    Attributes
    ----------
    relative_error : float
        ``||implicit - finite_difference|| / ||finite_difference||`` over the directions.
    implicit : ndarray of shape (n_directions,)
        The implicit hypergradient along each direction (search coordinates: ``log`` of a
        log-scale hyperparameter).
    finite_difference : ndarray of shape (n_directions,)
        The finite-difference derivative along each direction, Richardson-extrapolated
        from the steps ``h`` and ``h / 2``.
    fd_h, fd_h2 : ndarray of shape (n_directions,)
        The plain central differences with steps ``h`` and ``h / 2`` (one-sided, second
        order, next to a bound).
    fd_agreement : float
        ``||fd_h - fd_h2|| / ||fd_h2||``: small when the finite differences converged (a
        large value points at a kink of the CV loss within ``h``, e.g. a support change,
        or at inexact inner solves).
    params : dict
        The point checked (natural units, the problem's names).
    directions : ndarray of shape (n_directions, n_search_coordinates)
    h : float
    loss : float
        The CV loss at ``params``.
    """

    relative_error: float
    implicit: np.ndarray
    finite_difference: np.ndarray
    fd_h: np.ndarray
    fd_h2: np.ndarray
    fd_agreement: float
    params: dict
    directions: np.ndarray
    h: float
    loss: float
    names: list = field(default_factory=list)


def _tuning_problem(estimator, X, y, fit_kw):
    """The tunable problem ``estimator.fit(X, y, **fit_kw)`` builds, built the same way:
    the fit of a clone is stopped when it hands its problem to ``tune``."""
    from ..tuning._progress import _Captured, capture_problem

    twin = clone(estimator)
    if hasattr(estimator, "init_components_"):
        # TaskDrivenDictionaryLearning tunes on its (random) initial dictionary.
        twin.set_params(dict_init=estimator.init_components_,
                        n_components=estimator.init_components_.shape[0])
    with capture_problem():
        try:
            twin.fit(X, y, **fit_kw)
        except _Captured as captured:
            return captured.problem
    raise ValueError(
        f"{type(estimator).__name__}.fit did not tune any hyperparameter (for "
        "TaskDrivenDictionaryLearning: set tune_alpha or tune_C)."
    )


def check_hypergradient(estimator, X, y, *, sample_weight=None, h=1e-4, params=None,
                        precision=None, fd_precision=None, n_directions=3, random_state=0,
                        **fit_params):
    """Compare a tuner's implicit hypergradient with finite differences of its CV loss.

    The tuning problem of ``estimator`` on ``(X, y)`` (its folds, inner solver and
    tolerances) is rebuilt exactly as ``fit`` builds it; at the chosen point
    (``tuning_result_.best_params``; an unfitted estimator is fitted first) the implicit
    hypergradient is compared with central finite differences of the CV loss along each
    search coordinate (``log(alpha)`` for a log-scale hyperparameter; with a vector
    hyperparameter, e.g. one alpha per feature, along ``n_directions`` random unit
    directions instead). The differences use the steps ``h`` and ``h / 2``: their
    Richardson extrapolation is the reference, their agreement says whether the finite
    differences themselves converged. Next to a bound, one-sided second-order differences
    are used.

    The error of the implicit hypergradient is linear in the inner solvers' tolerance
    (see the example "Checking a hypergradient"); set a small ``tol`` on the estimator for
    a tight check.

    Parameters
    ----------
    estimator : tuner
        An ``Implicit*CV`` estimator, a :class:`~skimplicit.model_selection.HypergradSearchCV`
        or a :class:`~skimplicit.decomposition.TaskDrivenDictionaryLearning` with
        ``tune_alpha`` or ``tune_C``; fitted on ``(X, y)`` or not (then it is fitted).
    X, y : array-like
        The data the estimator was (or is to be) fitted on.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to ``fit`` as ``sample_weight`` (for a pipeline in HypergradSearchCV, pass
        ``<step>__sample_weight`` in ``fit_params`` instead).
    h : float, default=1e-4
        Finite-difference step in search coordinates.
    params : dict, default=None
        The point to check (natural units, the problem's names: ``alpha``, not
        ``lasso__alpha``); default: the point the fit chose.
    precision : float, default=None
        The inner-accuracy factor of the evaluations (``tol * precision``); default: the
        smallest the fit used.
    fd_precision : float, default=None
        The same for the finite differences' evaluations (default: ``precision``). A
        smaller value isolates the error of the implicit hypergradient from the noise an
        inexact loss puts in the differences (``tol / h``).
    n_directions : int, default=3
        Random directions when a hyperparameter is a vector.
    random_state : int, RandomState or None, default=0
        For the random directions.
    **fit_params : dict
        Other arguments of ``fit`` (``groups``, ...).

    Returns
    -------
    check : HypergradientCheck
        ``check.relative_error`` is the headline number; ``check.implicit`` and
        ``check.finite_difference`` the two derivatives compared.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skimplicit.linear_model import ImplicitRidgeCV
    >>> from skimplicit.inspection import check_hypergradient
    >>> X, y = load_diabetes(return_X_y=True)
    >>> # (away from the chosen alpha, where ridge's hypergradient is 0 to rounding)
    >>> check = check_hypergradient(ImplicitRidgeCV(cv=3), X, y, params={"alpha": 1.0})
    >>> bool(check.relative_error < 1e-6)
    True
    """
    fit_kw = dict(fit_params)
    if sample_weight is not None:
        fit_kw["sample_weight"] = sample_weight
    if not hasattr(estimator, "tuning_result_"):
        estimator = clone(estimator).fit(X, y, **fit_kw)
    if not hasattr(estimator, "tuning_result_"):
        raise ValueError(
            f"{type(estimator).__name__} did not tune any hyperparameter (for "
            "TaskDrivenDictionaryLearning: set tune_alpha or tune_C)."
        )
    result = estimator.tuning_result_
    problem = _tuning_problem(estimator, X, y, fit_kw)
    hps = list(problem.hyperparameters)
    point = dict(result.best_params if params is None else params)
    missing = [hp.name for hp in hps if hp.name not in point]
    if missing:
        raise ValueError(f"params lacks {missing}; the problem tunes {[hp.name for hp in hps]}.")
    point = {hp.name: point[hp.name] for hp in hps}
    if precision is None:
        precision = float(np.min([r["precision"] for r in result.records]))

    def to_params(z):
        out, i = {}, 0
        for hp in hps:
            out[hp.name] = hp.from_search(z[i: i + hp.n_values])
            i += hp.n_values
        return out

    if fd_precision is None:
        fd_precision = precision

    def evaluate(z, p=fd_precision):
        # With the hypergradient: the same inner solves (polishing included) as at z0.
        return problem.evaluate(to_params(z), precision=p, with_grad=True)

    z0 = np.concatenate([hp.to_search(point[hp.name]) for hp in hps])
    lo = np.array([b[0] for hp in hps for b in hp.search_bounds()])
    hi = np.array([b[1] for hp in hps for b in hp.search_bounds()])
    z0 = np.clip(z0, lo, hi)
    ev = evaluate(z0, precision)
    if ev.grad is None or not np.isfinite(ev.loss):
        raise ValueError(f"The CV loss or its hypergradient is not finite at {point}.")
    gz = np.concatenate([hp.grad_to_search(to_params(z0)[hp.name], ev.grad[hp.name])
                         for hp in hps])
    loss0 = float(ev.loss)
    d = z0.size
    if all(hp.size is None for hp in hps):
        U = np.eye(d)
    else:
        U = check_random_state(random_state).standard_normal((n_directions, d))
        U /= np.linalg.norm(U, axis=1, keepdims=True)

    def inside(z):
        return bool(np.all(z >= lo - 1e-12) and np.all(z <= hi + 1e-12))

    def derivative(u, s):
        if inside(z0 + s * u) and inside(z0 - s * u):
            return (evaluate(z0 + s * u).loss - evaluate(z0 - s * u).loss) / (2 * s)
        sign = 1.0 if inside(z0 + 2 * s * u) else -1.0
        if not inside(z0 + 2 * sign * s * u):
            raise ValueError(f"The bounds leave no room for a step of {s} around {point}.")
        f0 = loss0 if fd_precision == precision else evaluate(z0).loss
        f1 = evaluate(z0 + sign * s * u).loss
        f2 = evaluate(z0 + 2 * sign * s * u).loss
        return sign * (-3 * f0 + 4 * f1 - f2) / (2 * s)

    fd_h = np.array([derivative(u, h) for u in U])
    fd_h2 = np.array([derivative(u, h / 2) for u in U])
    fd = (4 * fd_h2 - fd_h) / 3
    implicit = U @ gz
    tiny = np.finfo(float).tiny
    rel = float(np.linalg.norm(implicit - fd) / max(np.linalg.norm(fd), tiny))
    agree = float(np.linalg.norm(fd_h - fd_h2) / max(np.linalg.norm(fd_h2), tiny))
    return HypergradientCheck(
        relative_error=rel, implicit=implicit, finite_difference=fd, fd_h=fd_h, fd_h2=fd_h2,
        fd_agreement=agree, params=to_params(z0), directions=U, h=float(h),
        loss=float(ev.loss), names=[hp.name for hp in hps])
