"""KernelRidge as HypergradSearchCV's final step: alpha, and gamma of the rbf and
laplacian kernels (issue 20)."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skimplicit.tuning import FoldData
from skimplicit.model_selection import HypergradSearchCV
from skimplicit.model_selection._adapters import make_problem

CV = KFold(5, shuffle=True, random_state=0)


def _data(n=200):
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:n]
    return X, (y[:n] - y[:n].mean()) / y[:n].std()


def _folds(X, y, sw):
    return [FoldData(X[tr], y[tr], sw[tr], X[te], y[te], np.ones(len(te)))
            for tr, te in CV.split(X)]


CASES = [  # (estimator, bounds, point)
    (KernelRidge(kernel="rbf"), {"alpha": None, "gamma": None}, {"alpha": 0.3, "gamma": 0.05}),
    (KernelRidge(kernel="laplacian"), {"alpha": None, "gamma": None},
     {"alpha": 0.1, "gamma": 0.02}),
    (KernelRidge(kernel="polynomial", degree=2), {"alpha": None}, {"alpha": 3.0}),
    (KernelRidge(kernel="linear"), {"alpha": None}, {"alpha": 10.0}),
]


@pytest.mark.parametrize("est, bounds, point", CASES, ids=lambda v: getattr(v, "kernel", ""))
def test_fold_losses_are_scikit_learns_and_hypergradients_match_finite_differences(
        est, bounds, point):
    X, y = _data()
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    folds = _folds(X, y, sw)
    problem = make_problem(est, folds, bounds)
    ev = problem.evaluate(point)
    # The inner solve is scikit-learn's fit (weighted), the loss its validation MSE.
    for f, loss in zip(folds, ev.fold_losses):
        ref = KernelRidge(**{**est.get_params(), **point}).fit(f.X_train, f.y_train,
                                                               sample_weight=f.sw_train)
        assert loss == pytest.approx(np.mean((ref.predict(f.X_test) - f.y_test) ** 2),
                                     rel=1e-10)
    for name, v in point.items():
        def loss(x):
            return problem.evaluate({**point, name: x}, with_grad=False).loss

        # Steps: truncation ~5e-9 at 1e-4 (measured), rounding ~1e-9 at 3e-5 (a loss
        # summed over kernel solves carries ~1e-15 relative noise); abs: the rounding
        # floor of the differences, as for the other smooth steps.
        for h in (1e-4, 3e-5):
            fd = (loss(v * (1 + h)) - loss(v * (1 - h))) / (2 * v * h)
            assert fd == pytest.approx(ev.grad[name], rel=1e-8,
                                       abs=1e-12 * ev.loss / v), name


@pytest.mark.filterwarnings("ignore:The best .* is at the .* bound:UserWarning")
def test_search_matches_a_20_by_20_grid():
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:250], y[:250]
    pipe = make_pipeline(StandardScaler(), KernelRidge(kernel="rbf"))
    A, G = (1e-4, 1e2), (1e-4, 1e1)
    ours = HypergradSearchCV(pipe, {"kernelridge__alpha": A, "kernelridge__gamma": G},
                             cv=CV).fit(X, y)
    grid = GridSearchCV(pipe, {"kernelridge__alpha": np.geomspace(*A, 20),
                               "kernelridge__gamma": np.geomspace(*G, 20)}, cv=CV,
                        scoring="neg_mean_squared_error").fit(X, y)
    assert ours.scorer_ is not None and ours.best_score_ >= grid.best_score_ * (1 + 1e-3)
    at_ours = GridSearchCV(pipe, {k: [v] for k, v in ours.best_params_.items()}, cv=CV,
                           scoring="neg_mean_squared_error").fit(X, y)
    assert at_ours.best_score_ == pytest.approx(ours.best_score_, rel=1e-9)
    assert len(ours.cv_results_["params"]) < 100
    ref = KernelRidge(kernel="rbf", alpha=ours.best_params_["kernelridge__alpha"],
                      gamma=ours.best_params_["kernelridge__gamma"])
    ref.fit(StandardScaler().fit_transform(X), y)
    np.testing.assert_allclose(ours.best_estimator_[-1].dual_coef_, ref.dual_coef_)


def test_gamma_of_another_kernel_is_refused():
    X, y = _data(60)
    with pytest.raises(ValueError, match=r"gamma is tunable .* \['laplacian', 'rbf'\]"):
        HypergradSearchCV(KernelRidge(kernel="polynomial"),
                          {"alpha": (0.1, 1.0), "gamma": (0.1, 1.0)}, cv=3).fit(X, y)
