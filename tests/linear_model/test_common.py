"""scikit-learn's estimator contract for every estimator and mode (no expected failure)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skimplicit.linear_model import ImplicitElasticNetCV, ImplicitLassoCV, ImplicitRidgeCV

# Cheap settings, as scikit-learn's own INIT_PARAMS (LassoCV: max_iter=5, cv=3).
FAST = dict(cv=3, max_outer_iter=4)
ESTIMATORS = [
    ImplicitLassoCV(**FAST),
    ImplicitLassoCV(alpha_per_feature=True, **FAST),
    ImplicitElasticNetCV(l1_ratio="tune", **FAST),
    ImplicitElasticNetCV(l1_ratio=0.5, **FAST),
    ImplicitRidgeCV(**FAST),
    ImplicitRidgeCV(alpha_per_feature=True, **FAST),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_contract(estimator, check):
    check(estimator)
