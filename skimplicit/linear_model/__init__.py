"""Linear models whose regularization is tuned by hypergradient descent."""

from ._coordinate_descent import ImplicitElasticNetCV, ImplicitLassoCV
from ._logistic import ImplicitLogisticRegressionCV
from ._ridge import ImplicitRidgeCV

__all__ = ["ImplicitLassoCV", "ImplicitElasticNetCV", "ImplicitRidgeCV",
           "ImplicitLogisticRegressionCV"]
