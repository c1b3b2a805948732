"""scikit-learn's estimator contract with every estimator's default parameters.

The per-module contract tests run cheap settings (``cv=3, max_outer_iter=4``, as
scikit-learn's own INIT_PARAMS); these run the defaults a new user gets. Measured on a
2-core machine under a load of 8-10 (``os.times`` CPU seconds of the whole
``check_estimator``): ImplicitLassoCV 7, ImplicitElasticNetCV 6, ImplicitRidgeCV 10,
ImplicitLogisticRegressionCV 17, HypergradSearchCV(Lasso()) 4,
TaskDrivenDictionaryLearning 36. The full runs are marked slow; the check that used to
fail with the defaults (accuracy on easy blobs) runs by default.
"""

import pytest
from sklearn.linear_model import Lasso
from sklearn.utils.estimator_checks import check_classifiers_train, parametrize_with_checks

from skimplicit.decomposition import TaskDrivenDictionaryLearning
from skimplicit.linear_model import (
    ImplicitElasticNetCV,
    ImplicitLassoCV,
    ImplicitLogisticRegressionCV,
    ImplicitRidgeCV,
)
from skimplicit.model_selection import HypergradSearchCV


def test_dictionary_learning_defaults_fit_easy_blobs():
    # With alpha=1.0 (the former default) the codes of 2 standardized features were
    # nearly empty and the accuracy on scikit-learn's blobs fell below its 0.83.
    check_classifiers_train("TaskDrivenDictionaryLearning", TaskDrivenDictionaryLearning())
    check_classifiers_train("TaskDrivenDictionaryLearning", TaskDrivenDictionaryLearning(),
                            readonly_memmap=True)


@pytest.mark.slow
@parametrize_with_checks([
    ImplicitLassoCV(),
    ImplicitElasticNetCV(),
    ImplicitRidgeCV(),
    ImplicitLogisticRegressionCV(),
    TaskDrivenDictionaryLearning(),
    HypergradSearchCV(Lasso(), {"alpha": "auto"}),
])
def test_sklearn_contract_with_defaults(estimator, check):
    check(estimator)
