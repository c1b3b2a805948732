"""The final steps :class:`HypergradSearchCV` tunes: one table, class -> :class:`FinalStep`.

An entry says which hyperparameters the step has, how its tunable problem is built from
the folds and the ``param_grid`` bounds (and the scorer asked for), how the tuned
estimator is produced for the refit, and what it refuses (the builder raises a
``ValueError`` naming the supported settings). Three kinds of entries:

* **scikit-learn's own** :class:`~sklearn.linear_model.Lasso`,
  :class:`~sklearn.linear_model.ElasticNet`, :class:`~sklearn.linear_model.Ridge`,
  :class:`~sklearn.linear_model.LogisticRegression` and the smooth final steps of
  :mod:`skimplicit.model_selection._smooth_steps` (``LinearSVC``, ``LinearSVR``,
  ``RidgeClassifier``, ``HuberRegressor``, the GLMs, ``KernelRidge``, the SGD
  estimators): mapped to skimplicit's inner problems with exactly scikit-learn's
  objective, built from the estimator's own parameters (``fit_intercept``, ``positive``,
  ``tol``, ``max_iter``, ...); the refit sets the tuned values with ``set_params``.
* **skimplicit's CV estimators**: their problem is their own (the tunable protocol); the
  refit is their plain scikit-learn counterpart (``ImplicitLassoCV`` -> ``Lasso`` at the
  chosen ``alpha``), or the estimator's ``tuned_estimator`` method.
* **any other estimator implementing the tunable protocol**:
  ``make_tunable_problem(folds, bounds)`` (``_make_tunable_problem(folds)``, the former
  private name, is still understood) and, when the tuned hyperparameters are not its
  constructor parameters, ``tuned_estimator(params)`` (or ``_tuned_estimator``).

A class is looked up along its MRO: its own entry, or the entry of a registered base
class whose ``fit`` and prediction methods it keeps (e.g. a subclass that only hides
``score``: the same minimizer). A subclass that overrides them may change the objective:
it needs the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

import numpy as np
from sklearn.base import clone
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (
    ElasticNet,
    GammaRegressor,
    HuberRegressor,
    Lasso,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from ..linear_model import (
    ImplicitElasticNetCV,
    ImplicitLassoCV,
    ImplicitLogisticRegressionCV,
    ImplicitRidgeCV,
)
from ..linear_model._cv_problems import EnetCVProblem, RidgeCVProblem
from ..linear_model._device import DeviceEnetProblem
from ..linear_model._device_logistic import DeviceLogisticProblem, device_unsupported
from ..linear_model._logistic_problem import LogisticCVProblem, encode_folds
from ..tuning import device_dtype, resolve_backend
from ._smooth_steps import (
    GLMCVProblem,
    HuberCVProblem,
    InverseC,
    KernelRidgeCVProblem,
    L2SVMCVProblem,
    RidgeFoldGrads,
    _classes,
    _codes,
)

__all__ = ["FinalStep", "FINAL_STEPS", "find_final_step", "final_step", "make_problem",
           "tuned_final_step", "check_refittable", "supported_names", "reject_unknown"]


@dataclass(frozen=True)
class FinalStep:
    """How :class:`~skimplicit.model_selection.HypergradSearchCV` tunes a final step.

    Attributes
    ----------
    names : tuple of str or None
        The hyperparameters tuned by hypergradients: a ``param_grid`` entry naming another
        one is refused before the problem is built. ``None``: the problem's own
        (``problem.hyperparameters``), checked once it is built.
    problem : callable
        ``problem(final, folds, bounds, scoring) -> TunableProblem``: ``final`` the
        (unfitted) step, ``folds`` a list of :class:`~skimplicit.tuning.FoldData`,
        ``bounds`` the ``param_grid`` entries of the step (name -> ``(low, high, scale)``
        or ``None`` for ``"auto"``), ``scoring`` the differentiable scorer asked for
        (see :func:`make_problem`). Raises ``ValueError`` for the settings it refuses.
    refit : callable or None
        ``refit(final, params) -> estimator``: the unfitted estimator to refit at tuned
        values that are not the step's own parameters (skimplicit's CV estimators ->
        their scikit-learn counterpart). ``None``: only ``set_params`` or the step's
        ``tuned_estimator`` method.
    requires : tuple of (str, object) pairs
        Parameter values the step must have (its other values are refused, in this order,
        before the problem is built, naming ``supported``); the problem builder refuses
        the settings that a value cannot say.
    supported : str
        The settings supported (``""``: all), named by the refusals and the error listing
        the supported final steps.
    listed : bool
        Named in that list (scikit-learn's steps; the protocol's are summed up as "any
        estimator implementing skimplicit's tunable protocol").
    single_output : bool
        The step takes a 1-D ``y`` only.
    """

    names: Optional[tuple]
    problem: Callable
    refit: Optional[Callable] = None
    requires: tuple = ()
    supported: str = ""
    listed: bool = True
    single_output: bool = False


# -- shared checks ---------------------------------------------------------------------------

def reject_unknown(bounds, names, final):
    """Refuse ``param_grid`` entries that name no tunable hyperparameter of ``final``."""
    unknown = sorted(set(bounds) - set(names))
    if unknown:
        raise ValueError(
            f"{type(final).__name__} has no tunable hyperparameter {unknown}; "
            f"tunable by hypergradients: {sorted(names)}."
        )


def _unsupported(final, what):
    spec = find_final_step(final)
    raise ValueError(
        f"{type(final).__name__} with {what} is not supported by HypergradSearchCV: its "
        "fitted model has no smooth optimality conditions. Supported: "
        f"{type(final).__name__}({spec.supported}); use GridSearchCV otherwise."
    )


def _pair(spec):
    """``(low, high)`` of a ``param_grid`` bound (``None`` for ``"auto"``)."""
    return None if spec is None else spec[:2]


def _check_unit_interval(name, spec, what):
    if spec is not None and not (0 < spec[0] and spec[1] <= 1):
        raise ValueError(f"The bounds of {name} must lie in (0, 1] for {what}; got {spec[:2]}.")


# -- scikit-learn's Lasso, ElasticNet, Ridge, LogisticRegression -----------------------------

def _elastic_net(final, folds, bounds, scoring, *, l1_ratio=None):
    """Lasso (``l1_ratio=1``) and ElasticNet: skimplicit's enet problem, same objective."""
    del scoring
    l1_ratio = final.l1_ratio if l1_ratio is None else l1_ratio
    if "l1_ratio" in bounds:
        _check_unit_interval("l1_ratio", bounds["l1_ratio"], "the elastic net")
    elif not 0 < l1_ratio <= 1:
        raise ValueError(
            f"ElasticNet(l1_ratio={l1_ratio}) is not supported: with l1_ratio=0 the "
            "elastic net is a ridge, tune Ridge instead."
        )
    common = dict(fit_intercept=final.fit_intercept, l1_ratio=l1_ratio,
                  tune_l1_ratio="l1_ratio" in bounds, positive=final.positive, tol=final.tol,
                  bounds=_pair(bounds.get("alpha")),
                  l1_ratio_bounds=_pair(bounds.get("l1_ratio")) or (0.01, 1.0))
    if resolve_backend() == "jax":  # HypergradSearchCV(backend=...)
        return DeviceEnetProblem(folds, max_iter=20 * final.max_iter,
                                 dtype=device_dtype(folds[0].X_train), **common)
    return EnetCVProblem(folds, max_iter=final.max_iter, **common)


def _ridge(final, folds, bounds, scoring):
    del scoring
    if final.positive:
        raise ValueError("Ridge(positive=True) is not supported by HypergradSearchCV.")
    if np.ndim(final.alpha) and "alpha" not in bounds:
        raise ValueError("Ridge with one alpha per target is not supported.")
    # 'auto' as ImplicitRidgeCV: six decades either side of the data scale.
    problem = RidgeFoldGrads(folds, fit_intercept=final.fit_intercept,
                             bounds=_pair(bounds.get("alpha")))
    if resolve_backend() == "jax":  # HypergradSearchCV(backend=...)
        problem.to_device(device_dtype(folds[0].X_train))
    return problem


def _logistic_l1_ratio(final):
    """The l1_ratio scikit-learn's LogisticRegression uses (>= 1.8: l1_ratio decides)."""
    penalty = getattr(final, "penalty", "deprecated")
    if final.solver == "liblinear" or getattr(final, "dual", False):
        raise ValueError(
            "LogisticRegression(solver='liblinear') penalizes the intercept (a different "
            "objective): use solver='lbfgs', 'newton-cg', 'newton-cholesky' or 'saga' "
            "(the same minimizer, which HypergradSearchCV reproduces)."
        )
    if penalty is None or (isinstance(penalty, str) and penalty == "none"):
        raise ValueError("LogisticRegression without penalty has no C to tune.")
    if penalty == "l2":
        return 0.0
    if penalty == "l1":
        return 1.0
    l1_ratio = final.l1_ratio
    return 0.0 if l1_ratio is None else float(l1_ratio)


def _logistic(final, folds, bounds, scoring):
    """scikit-learn's LogisticRegression: ``C * sum_i s_i l_i + penalty``, same minimizer;
    the validation loss is the Brier score for ``scoring="neg_brier_score"``, else the
    log-loss."""
    l1_ratio = _logistic_l1_ratio(final)
    if "l1_ratio" in bounds and bounds["l1_ratio"] is not None:
        lo, hi = bounds["l1_ratio"][:2]
        if not (0 <= lo and hi <= 1):
            raise ValueError(
                f"The bounds of l1_ratio must lie in [0, 1] for LogisticRegression; got {(lo, hi)}."
            )
    if not np.isfinite(final.C) and "C" not in bounds:
        raise ValueError("LogisticRegression(C=inf) has no penalty to hold fixed.")
    # As LogisticRegression.fit on each training fold: class weights from its labels.
    encoded, classes = encode_folds(folds, final.class_weight)
    cls, kw = LogisticCVProblem, {}
    if resolve_backend() == "jax" and device_unsupported(encoded) is None:
        # HypergradSearchCV(backend=...): all folds in one compiled program on the device
        cls, kw = DeviceLogisticProblem, {"dtype": device_dtype(encoded[0].X_train)}
    return cls(
        encoded, n_classes=classes.size, fit_intercept=final.fit_intercept,
        l1_ratio=l1_ratio, tune_l1_ratio="l1_ratio" in bounds, tol=final.tol,
        max_iter=final.max_iter, bounds=_pair(bounds.get("C")),
        l1_ratio_bounds=_pair(bounds.get("l1_ratio")) or (0.05, 1.0),
        loss="brier" if scoring == "neg_brier_score" else "log_loss", **kw,
    )


# -- the smooth final steps (their problems: _smooth_steps) ----------------------------------

def _l2_svm(final, folds, bounds, scoring, *, task):
    """LinearSVC (``task="svc"``, its class weights) and LinearSVR (its ``epsilon``)."""
    del scoring
    own = ({"class_weight": final.class_weight} if task == "svc"
           else {"epsilon": final.epsilon})
    return L2SVMCVProblem(folds, task=task, fit_intercept=final.fit_intercept,
                          intercept_scaling=final.intercept_scaling,
                          bounds=_pair(bounds.get("C")), **own)


def _ridge_classifier(final, folds, bounds, scoring):
    """A ``Ridge`` on the ``{-1, 1}`` codes of the classes, as scikit-learn fits it; the
    validation loss is the mean squared error on those codes."""
    del scoring
    if final.positive:
        raise ValueError("RidgeClassifier(positive=True) is not supported.")
    classes = _classes(folds)
    enc = []
    for f in folds:
        ytr, yte = _codes(f.y_train, classes), _codes(f.y_test, classes)
        if ytr.shape[1] == 1:
            ytr, yte = ytr[:, 0], yte[:, 0]
        sw = np.asarray(f.sw_train, float)
        if final.class_weight:  # as RidgeClassifier.fit on the fold
            sw = sw * compute_sample_weight(final.class_weight, f.y_train)
        enc.append(f._replace(y_train=ytr, y_test=yte, sw_train=sw))
    problem = RidgeCVProblem(enc, fit_intercept=final.fit_intercept,
                             bounds=_pair(bounds.get("alpha")))
    problem.loss_name = "squared_error_of_class_codes"
    return problem


def _huber(final, folds, bounds, scoring):
    del scoring
    return HuberCVProblem(folds, epsilon=final.epsilon, fit_intercept=final.fit_intercept,
                          bounds=_pair(bounds.get("alpha")))


def _glm(final, folds, bounds, scoring, *, power=None):
    """Poisson (``power=1``), Gamma (``power=2``), Tweedie (``power=None``: its own)."""
    del scoring
    if power is None:
        power = float(final.power)
        if power < 1 or final.link == "identity":
            _unsupported(final, f"power={final.power}, link={final.link!r}")
    return GLMCVProblem(folds, power=power, fit_intercept=final.fit_intercept,
                        bounds=_pair(bounds.get("alpha")))


def _kernel_ridge(final, folds, bounds, scoring):
    del scoring
    if np.ndim(final.alpha):
        raise ValueError("KernelRidge with one alpha per target is not supported.")
    return KernelRidgeCVProblem(
        folds, kernel=final.kernel, gamma=final.gamma, degree=final.degree,
        coef0=final.coef0, kernel_params=final.kernel_params,
        tune_gamma="gamma" in bounds, bounds=_pair(bounds.get("alpha")),
        gamma_bounds=_pair(bounds.get("gamma")))


def _sgd(final, folds, bounds, scoring, *, classifier):
    """The exact minimizer that scikit-learn's SGD estimators approximate (l2 penalty).

    ``SGDRegressor(loss='squared_error')`` minimizes ``1/n sum_i s_i (y_i - x_i.w -
    b)^2 / 2 + alpha / 2 ||w||^2``: ``Ridge``'s objective with weights ``s_i / n`` (times
    1/2). ``SGDClassifier(loss='log_loss')``, binary: ``1/n sum_i s_i log-loss_i +
    alpha / 2 ||w||^2``, ``LogisticRegression``'s with weights ``s_i / n`` and ``C = 1 /
    alpha``. The descent follows the exact minimizer's hypergradient; the refit is the
    user's SGD estimator, which stops short of that minimizer (by 0.1-3 % of the CV loss
    at scikit-learn's defaults, measured on diabetes and breast_cancer), so the point is
    selected among the evaluated ones by SGD's own CV score (``approximate_refit``), as
    GridSearchCV scores a grid point. l1 and elastic-net penalties are refused: not
    smooth, and SGD's truncated-gradient solutions are far from the minimizer.
    """
    del scoring
    if final.penalty != "l2" and not (final.penalty == "elasticnet" and final.l1_ratio == 0):
        _unsupported(final, f"penalty={final.penalty!r}")
    if final.early_stopping:
        _unsupported(final, "early_stopping=True (it fits on part of the training fold)")
    # 1/n_f: SGD's mean over the rows of the fold (the weights are not normalized)
    folds = [f._replace(sw_train=np.asarray(f.sw_train, float) / np.asarray(f.sw_train).size)
             for f in folds]
    alpha_bounds = _pair(bounds.get("alpha"))
    if not classifier:
        problem = RidgeFoldGrads(folds, fit_intercept=final.fit_intercept, bounds=alpha_bounds)
    else:
        if final.class_weight is not None:  # as SGDClassifier.fit (no sample weights)
            out = []
            for f in folds:
                present = np.unique(f.y_train)
                cw = compute_class_weight(final.class_weight, classes=present, y=f.y_train)
                out.append(f._replace(sw_train=f.sw_train
                                      * cw[np.searchsorted(present, f.y_train)]))
            folds = out
        encoded, classes = encode_folds(folds)
        if classes.size != 2:
            _unsupported(final, f"{classes.size} classes (one-vs-rest, not the multinomial "
                         "loss)")
        c_bounds = None if alpha_bounds is None else (1.0 / alpha_bounds[1],
                                                      1.0 / alpha_bounds[0])
        problem = InverseC(LogisticCVProblem(encoded, n_classes=2,
                                             fit_intercept=final.fit_intercept,
                                             l1_ratio=0.0, tol=1e-12, bounds=c_bounds))
    problem.approximate_refit = True
    return problem


# -- the tunable protocol (skimplicit's CV estimators and third parties) ---------------------

def _method(final, name):
    """``final``'s protocol method ``name``, or its former private name ``_name``."""
    found = getattr(final, name, None)
    return found if found is not None else getattr(final, "_" + name, None)


def _own_problem(final, folds, bounds, scoring):
    """The step's own problem: ``make_tunable_problem(folds, bounds)``, or the former
    private ``_make_tunable_problem(folds)``."""
    del scoring
    public = getattr(final, "make_tunable_problem", None)
    if public is not None:
        return public(folds, bounds)
    return final._make_tunable_problem(folds)


def _scalar_alphas(final, params):
    if getattr(final, "alpha_per_feature", False) or any(np.ndim(v) for v in params.values()):
        raise TypeError(
            f"{type(final).__name__} with one alpha per feature has no plain scikit-learn "
            "counterpart to refit: use it directly rather than inside HypergradSearchCV."
        )


def _as_lasso(final, params):
    _scalar_alphas(final, params)
    return Lasso(alpha=params["alpha"], fit_intercept=final.fit_intercept,
                 positive=final.positive, tol=final.tol, max_iter=final.max_iter)


def _as_elastic_net(final, params):
    _scalar_alphas(final, params)
    l1 = params.get("l1_ratio", final.l1_ratio)
    return ElasticNet(alpha=params["alpha"], l1_ratio=l1, fit_intercept=final.fit_intercept,
                      positive=final.positive, tol=final.tol, max_iter=final.max_iter)


def _as_ridge(final, params):
    _scalar_alphas(final, params)
    return Ridge(alpha=params["alpha"], fit_intercept=final.fit_intercept)


_PROTOCOL = FinalStep(None, _own_problem, listed=False)

# The table. Its order is that of the supported list in the error messages.
FINAL_STEPS = {
    Lasso: FinalStep(("alpha",), partial(_elastic_net, l1_ratio=1.0), single_output=True),
    ElasticNet: FinalStep(("alpha", "l1_ratio"), _elastic_net, single_output=True),
    Ridge: FinalStep(("alpha",), _ridge),
    LogisticRegression: FinalStep(("C", "l1_ratio"), _logistic),
    LinearSVC: FinalStep(("C",), partial(_l2_svm, task="svc"),
                         requires=(("loss", "squared_hinge"), ("penalty", "l2"),
                                   ("multi_class", "ovr")),
                         supported="loss='squared_hinge', penalty='l2', multi_class='ovr'"),
    LinearSVR: FinalStep(("C",), partial(_l2_svm, task="svr"),
                         requires=(("loss", "squared_epsilon_insensitive"),),
                         supported="loss='squared_epsilon_insensitive'"),
    RidgeClassifier: FinalStep(("alpha",), _ridge_classifier),
    HuberRegressor: FinalStep(("alpha",), _huber),
    PoissonRegressor: FinalStep(("alpha",), partial(_glm, power=1.0)),
    GammaRegressor: FinalStep(("alpha",), partial(_glm, power=2.0)),
    TweedieRegressor: FinalStep(("alpha",), _glm, supported="power >= 1, link='log' or 'auto'"),
    KernelRidge: FinalStep(("alpha", "gamma"), _kernel_ridge,
                           supported="alpha; gamma for kernel='rbf' or 'laplacian'"),
    SGDRegressor: FinalStep(("alpha",), partial(_sgd, classifier=False),
                            requires=(("loss", "squared_error"),),
                            supported="loss='squared_error', penalty='l2', early_stopping=False"),
    SGDClassifier: FinalStep(("alpha",), partial(_sgd, classifier=True),
                             requires=(("loss", "log_loss"),),
                             supported="loss='log_loss', penalty='l2', two classes, "
                                       "early_stopping=False"),
    ImplicitLassoCV: FinalStep(None, _own_problem, refit=_as_lasso, listed=False),
    ImplicitElasticNetCV: FinalStep(None, _own_problem, refit=_as_elastic_net, listed=False),
    ImplicitRidgeCV: FinalStep(None, _own_problem, refit=_as_ridge, listed=False),
    # Refit: its own tuned_estimator (scikit-learn's LogisticRegression).
    ImplicitLogisticRegressionCV: FinalStep(None, _own_problem, listed=False),
}

# What a subclass must keep to share its base class's entry (the same minimizer).
_OBJECTIVE_METHODS = ("fit", "predict", "decision_function", "_decision_function")


# -- lookups ---------------------------------------------------------------------------------

def find_final_step(final):
    """The :class:`FinalStep` of ``final``, or ``None`` if it cannot be tuned.

    The first class of ``type(final).__mro__`` in :data:`FINAL_STEPS` whose ``fit`` and
    prediction methods ``final`` keeps; else the protocol's entry if ``final`` implements
    ``make_tunable_problem`` (or ``_make_tunable_problem``).
    """
    cls = type(final)
    for base in cls.__mro__:
        step = FINAL_STEPS.get(base)
        if step is not None and all(getattr(cls, m, None) is getattr(base, m, None)
                                    for m in _OBJECTIVE_METHODS):
            return step
    return _PROTOCOL if _method(final, "make_tunable_problem") is not None else None


def supported_names():
    """The final steps HypergradSearchCV maps to an inner problem, for messages."""
    return [f"{k.__name__} ({s.supported})" if s.supported else k.__name__
            for k, s in FINAL_STEPS.items() if s.listed]


def final_step(final):
    """:func:`find_final_step`, or the ``TypeError`` naming the supported final steps."""
    step = find_final_step(final)
    if step is None:
        raise TypeError(
            f"HypergradSearchCV cannot tune {type(final).__name__}: its fitted model does not "
            "satisfy smooth optimality conditions that skimplicit differentiates. Supported "
            f"final steps: {', '.join(supported_names())}; or any estimator implementing "
            "skimplicit's tunable protocol (a `make_tunable_problem(folds, bounds)` method; "
            "see the HypergradSearchCV docstring). Use GridSearchCV for the others."
        )
    return step


def make_problem(final, folds, bounds, scoring=None):
    """The final step's tunable problem on ``folds`` (natural hyperparameter names).

    ``bounds``: the ``param_grid`` entries of the step (name -> ``(low, high, scale)``
    or ``None``). ``scoring``: the name of the differentiable scorer asked for (a value
    of :data:`~skimplicit.model_selection._adapters.LOSS_TO_SCORING`), where the problem
    can take it as its validation loss (``neg_brier_score`` for ``LogisticRegression``);
    else the model's own loss."""
    step = final_step(final)
    if step.names is not None:
        reject_unknown(bounds, step.names, final)
    for name, value in step.requires:
        if getattr(final, name) != value:
            _unsupported(final, f"{name}={getattr(final, name)!r}")
    return step.problem(final, folds, bounds, scoring)


def tuned_final_step(final, params):
    """An unfitted estimator to refit in place of ``final`` at hyperparameters ``params``.

    In order: ``final.tuned_estimator(params)`` (or ``_tuned_estimator``, the protocol's
    method); ``clone(final)`` with ``params`` set when they are all its parameters
    (scikit-learn's estimators, and third-party estimators whose problem names its own
    parameters); the ``refit`` of its :class:`FinalStep` (skimplicit's CV estimators:
    their plain scikit-learn counterpart). Raises ``TypeError`` otherwise.
    """
    hook = _method(final, "tuned_estimator")
    if hook is not None:
        return hook(dict(params))
    own = final.get_params(deep=False)
    if all(k in own for k in params):
        return clone(final).set_params(**params)
    step = find_final_step(final)
    if step is not None and step.refit is not None:
        return step.refit(final, params)
    raise TypeError(
        f"Cannot set the tuned hyperparameters {sorted(params)} on "
        f"{type(final).__name__}: they are not among its parameters. Implement "
        "`tuned_estimator(params)` returning the estimator to refit (see the "
        "HypergradSearchCV docstring)."
    )


def check_refittable(final, hyperparameters):
    """Fail before tuning, not after, when the refit could not be built: the refit at a
    probe point of the tuned ``hyperparameters`` (their shapes: one alpha per feature
    has no scikit-learn counterpart)."""
    if _method(final, "tuned_estimator") is not None:
        return
    probe = {hp.name: 1.0 if hp.size is None else np.ones(hp.size) for hp in hyperparameters}
    own = final.get_params(deep=False)
    if all(k in own for k in probe):
        return
    tuned_final_step(final, probe)
