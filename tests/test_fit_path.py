"""Every estimator's ``fit`` reads as data validation + a problem specification + one call
into the shared outer loop: at most 60 lines of code (the method, or the private ``_fit``
it delegates to; docstrings, comments, blank lines and decorators not counted)."""

import ast
import inspect
import textwrap

import pytest

from skimplicit.decomposition import TaskDrivenDictionaryLearning
from skimplicit.linear_model import (ImplicitElasticNetCV, ImplicitLassoCV,
                                     ImplicitLogisticRegressionCV, ImplicitRidgeCV)
from skimplicit.model_selection import HypergradSearchCV

ESTIMATORS = [ImplicitLassoCV, ImplicitElasticNetCV, ImplicitRidgeCV,
              ImplicitLogisticRegressionCV, TaskDrivenDictionaryLearning, HypergradSearchCV]


def code_lines(fn):
    """Lines of code of a function, without its docstring, comments, blank lines and
    decorators."""
    fn = inspect.unwrap(fn)
    src = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(src).body[0]
    skip = set()
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        skip = set(range(first.lineno, first.end_lineno + 1))
    skip |= set(range(1, node.body[0].lineno)) - {node.lineno}  # decorators, signature
    return sum(1 for i, line in enumerate(src.splitlines(), 1)
               if i not in skip and line.strip() and not line.strip().startswith("#"))


def test_code_lines_counts_code_only():
    def f(x):
        """Doc.

        More doc.
        """
        # a comment
        y = x + 1

        return y

    assert code_lines(f) == 3  # the signature, two statements


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_fit_is_at_most_60_lines(cls):
    n = code_lines(cls.fit)
    delegate = getattr(cls, "_fit", None)
    if delegate is not None and "self._fit(" in inspect.getsource(inspect.unwrap(cls.fit)):
        n += code_lines(delegate)
    assert n <= 60, f"{cls.__name__}.fit: {n} lines of code"
