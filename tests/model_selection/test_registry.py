"""The table of final steps: MRO lookup, the public protocol method and its former private
name, refits from the entries."""

import dataclasses

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet, Lasso, Ridge
from sklearn.model_selection import KFold
from sklearn.svm import LinearSVC

from skimplicit.linear_model import (
    ImplicitElasticNetCV,
    ImplicitLassoCV,
    ImplicitLogisticRegressionCV,
    ImplicitRidgeCV,
)
from skimplicit.linear_model._cv_problems import RidgeCVProblem
from skimplicit.model_selection import HypergradSearchCV, Hyperparameter
from skimplicit.model_selection._registry import (
    FINAL_STEPS,
    check_refittable,
    find_final_step,
    make_problem,
    supported_names,
    tuned_final_step,
)
from skimplicit.tuning import split_folds


class PublicRidge(RegressorMixin, BaseEstimator):
    """A third-party final step with the public protocol; its hyperparameter is named
    ``penalty``, not a constructor parameter: the refit comes from ``tuned_estimator``."""

    def __init__(self, strength=1.0):
        self.strength = strength

    def fit(self, X, y):
        self.ridge_ = Ridge(alpha=self.strength).fit(X, y)
        return self

    def predict(self, X):
        return self.ridge_.predict(X)

    def make_tunable_problem(self, folds, bounds):
        self.seen_bounds_ = bounds
        problem = RidgeCVProblem(folds)
        problem.hyperparameters = [Hyperparameter("penalty", 1e-3, 1e3)]

        class Renamed:
            hyperparameters = problem.hyperparameters
            loss_name = "mse"

            def evaluate(self, params, **kw):
                ev = problem.evaluate({"alpha": params["penalty"]}, **kw)
                grad = None if ev.grad is None else {"penalty": ev.grad["alpha"]}
                return dataclasses.replace(ev, grad=grad)

            def initial_points(self):
                return [{"penalty": a} for a in (1e2, 1.0, 1e-2)]

        return Renamed()

    def tuned_estimator(self, params):
        return PublicRidge(strength=params["penalty"])


class PrivateRidge(PublicRidge):
    """The former private names still work."""

    make_tunable_problem = None
    tuned_estimator = None

    def _make_tunable_problem(self, folds):
        return PublicRidge.make_tunable_problem(self, folds, None)

    def _tuned_estimator(self, params):
        return PrivateRidge(strength=params["penalty"])


@pytest.mark.parametrize("cls", [PublicRidge, PrivateRidge])
def test_protocol_step_is_tuned_and_refit_by_its_own_method(cls):
    X, y = load_diabetes(return_X_y=True)
    s = HypergradSearchCV(cls(), {"penalty": (1e-3, 1e3)}, cv=KFold(3), max_outer_iter=3)
    s.fit(X[:150], y[:150])
    assert type(s.best_estimator_) is cls
    assert s.best_estimator_.strength == s.best_params_["penalty"]


def test_public_method_receives_the_bounds():
    X, y = load_diabetes(return_X_y=True)
    folds = split_folds(X[:60], y[:60], np.ones(60), list(KFold(3).split(X[:60])))
    est = PublicRidge()
    make_problem(est, folds, {"penalty": (0.1, 10.0, None)})
    assert est.seen_bounds_ == {"penalty": (0.1, 10.0, None)}


def test_lookup_walks_the_mro_and_keeps_the_objective():
    class NoScore(LinearSVC):
        score = None

    class OwnFit(Lasso):
        def fit(self, X, y, sample_weight=None):
            return super().fit(X, y, sample_weight=sample_weight)

    assert find_final_step(Lasso()) is FINAL_STEPS[Lasso]  # not ElasticNet's, its base
    assert find_final_step(NoScore()) is FINAL_STEPS[LinearSVC]
    assert find_final_step(OwnFit()) is None
    assert find_final_step(PublicRidge()) is not None
    names = supported_names()
    assert names[:4] == ["Lasso", "ElasticNet", "Ridge", "LogisticRegression"]
    assert not any(n.startswith("Implicit") for n in names)


def test_skimplicit_estimators_refit_from_their_entries():
    assert type(tuned_final_step(ImplicitLassoCV(), {"alpha": 0.5})) is Lasso
    enet = tuned_final_step(ImplicitElasticNetCV(), {"alpha": 0.5, "l1_ratio": 0.3})
    assert type(enet) is ElasticNet and enet.l1_ratio == 0.3
    assert tuned_final_step(ImplicitRidgeCV(), {"alpha": 2.0}).alpha == 2.0
    assert tuned_final_step(ImplicitLogisticRegressionCV(), {"C": 2.0}).C == 2.0
    with pytest.raises(TypeError, match="per feature"):
        check_refittable(ImplicitLassoCV(alpha_per_feature=True),
                         [Hyperparameter("alpha", 1e-3, 1.0, size=4)])
    with pytest.raises(TypeError, match="per feature"):
        check_refittable(ImplicitRidgeCV(alpha_per_feature=True),
                         [Hyperparameter("alpha", 1e-3, 1.0),
                          Hyperparameter("gamma", 0.0, 2.0, "linear")])
