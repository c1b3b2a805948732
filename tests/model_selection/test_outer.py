"""The shared outer loop on small analytic problems."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skimplicit.model_selection import Evaluation, Hyperparameter, TunableProblem, tune


class Quadratic:
    """loss = sum (log a - log a*)^2 (+ a bump), gradient in natural units."""

    loss_name = "toy"

    def __init__(self, target=(0.1, 3.0), fail_at=None, zero_grad=False):
        self.target = np.log(np.asarray(target))
        self.hyperparameters = [Hyperparameter("alpha", 1e-4, 1e4, "log", size=len(target))]
        self.calls, self.fail_at, self.zero_grad = 0, fail_at, zero_grad

    def initial_points(self):
        return [{"alpha": np.full(len(self.target), v)} for v in (100.0, 1.0, 0.01)]

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise KeyboardInterrupt
        a = np.asarray(params["alpha"], float)
        d = np.log(a) - self.target
        loss = float(np.sum(d ** 2)) + 1.0
        grad = None if not with_grad else {"alpha": (0 * d if self.zero_grad else 2 * d / a)}
        return Evaluation(loss=loss, grad=grad, fold_losses=np.array([loss, loss]))


def test_protocol_and_convergence_to_the_minimum():
    prob = Quadratic()
    assert isinstance(prob, TunableProblem)
    res = tune(prob, max_outer_iter=50)
    np.testing.assert_allclose(res.best_params["alpha"], [0.1, 3.0], rtol=1e-3)
    h = res.history(prob.hyperparameters)
    assert h["alpha"].shape == (len(h["loss"]), 2)
    assert np.all(np.isnan(h["grad_norm"][:3]))  # the coarse path asks no gradient
    assert res.best_loss == h["loss"].min()


def test_interrupt_keeps_best_point():
    prob = Quadratic(fail_at=6)
    with pytest.warns(UserWarning, match="interrupted"):
        res = tune(prob)
    assert res.stop_reason == "interrupted"
    assert len(res.records) == 5 and res.best_loss == min(r["evaluation"].loss for r in res.records)


def test_zero_hypergradient_is_reported_not_returned_silently():
    prob = Quadratic(zero_grad=True)
    with pytest.warns(UserWarning, match="exactly zero"):
        res = tune(prob, init={"alpha": np.array([1.0, 1.0])})
    assert "zero hypergradient" in res.stop_reason


def test_hyperparameter_validation():
    with pytest.raises(ValueError, match="positive"):
        Hyperparameter("alpha", 0.0, 1.0)
    with pytest.raises(ValueError, match="Invalid bounds"):
        Hyperparameter("alpha", 2.0, 1.0)
    with pytest.raises(ValueError, match="scale"):
        Hyperparameter("alpha", 1.0, 2.0, scale="cubic")
    hp = Hyperparameter("l1_ratio", 0.1, 1.0, "linear")
    assert hp.from_search(hp.to_search(0.3)) == pytest.approx(0.3)


def test_nonconverged_best_point_warns():
    class NotConverged(Quadratic):
        def evaluate(self, params, **kw):
            ev = super().evaluate(params, **kw)
            ev.converged = False
            return ev

    with pytest.warns(ConvergenceWarning):
        tune(NotConverged(), max_outer_iter=3)


class Kinked:
    """One hyperparameter: a piecewise quadratic in log(alpha) with kinks (Lasso-like)."""

    loss_name = "toy"

    def __init__(self, center=0.7, monotone=False):
        self.c = np.log(center)
        self.monotone = monotone
        self.hyperparameters = [Hyperparameter("alpha", 1e-3, 1e2, "log")]

    def initial_points(self):
        return [{"alpha": a} for a in (30.0, 3.0, 0.3, 0.03)]

    def value_and_slope(self, z):
        if self.monotone:  # decreasing in alpha: the optimum is the upper bound
            return float(np.exp(-z)), float(-np.exp(-z))
        d = z - self.c
        k = np.floor(d / 0.13)  # slope jumps every 0.13 in log space
        v = d * d + 0.05 * np.abs(np.sin(k)) * d
        return float(v), float(2 * d + 0.05 * np.abs(np.sin(k)))

    def evaluate(self, params, *, precision=1.0, with_grad=True):
        a = float(params["alpha"])
        v, s = self.value_and_slope(np.log(a))
        grad = {"alpha": s / a} if with_grad else None
        return Evaluation(loss=v + 1.0, grad=grad, fold_losses=np.array([v + 1.0]))


def test_one_dimensional_descent_on_a_kinked_curve():
    """One search coordinate: bracketed secant/quadratic steps from the path's bracket."""
    prob = Kinked(center=0.7)
    res = tune(prob, outer_tol=1e-12)
    z = np.linspace(np.log(0.03), np.log(3.0), 20001)
    best = min(prob.value_and_slope(v)[0] for v in z) + 1.0
    # Stops once the bracket is 2 % wide: within 2 % of the best alpha, close in loss.
    assert abs(np.log(res.best_params["alpha"]) - z[np.argmin(
        [prob.value_and_slope(v)[0] for v in z])]) < 0.03
    assert res.best_loss - best < 1e-3
    assert res.n_iter <= 12
    steps = [r for r in res.records if r["phase"] != "path"]
    assert all(0.3 / 1.01 <= r["params"]["alpha"] <= 3.0 * 1.01 for r in steps)  # in the bracket


def test_one_dimensional_descent_reaches_the_bound_of_a_monotone_loss():
    prob = Kinked(monotone=True)
    res = tune(prob, max_outer_iter=30)
    np.testing.assert_allclose(res.best_params["alpha"], 1e2, rtol=1e-12)


def test_predicted_decrease_stops_early():
    """With a loose outer_tol the 1-D descent stops once the model predicts little gain."""
    loose = tune(Kinked(center=0.7), outer_tol=1e-2)
    tight = tune(Kinked(center=0.7), outer_tol=1e-12)
    assert loose.n_iter < tight.n_iter
    assert loose.best_loss <= tight.best_loss * (1 + 1e-2)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_tune_restores_the_problems_fold_jobs(n_jobs):
    """``tune(n_jobs=...)`` runs a CVProblem's folds on n_jobs threads while it tunes,
    and leaves the caller's problem as it was (its own ``fold_jobs``)."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold

    from skimplicit.linear_model._cv_problems import EnetCVProblem
    from skimplicit.tuning import split_folds

    X, y = load_diabetes(return_X_y=True)
    problem = EnetCVProblem(split_folds(X, y, np.ones(len(y)), list(KFold(3).split(X))))
    seen = []
    evaluate = problem.evaluate

    def spy(params, **kwargs):
        seen.append(problem.fold_jobs)
        return evaluate(params, **kwargs)

    problem.evaluate = spy
    problem.fold_jobs = 3
    tune(problem, n_jobs=n_jobs, max_outer_iter=3)
    assert seen and set(seen) == {n_jobs}
    assert problem.fold_jobs == 3
