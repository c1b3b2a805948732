"""scikit-learn 1.9's own tests of ``RidgeCV``, run with
:class:`~skimplicit.linear_model.ImplicitRidgeCV` swapped in.

The test functions are imported from the installed scikit-learn
(``sklearn.linear_model.tests.test_ridge``), never copied. Selection rule (see
``_compat.select``): every item whose parameters include ``RidgeCV`` (the class or an
instance), or, without estimator-valued parameters, whose test function's body names
``RidgeCV``. The twin is swapped by ``monkeypatch.setattr`` on the test module: our class
itself, no adapter.

Items expected to differ are strict xfails listed in ``XFAIL`` under one category each
(also published in the docs, "Differences from scikit-learn"). The counts are printed in
the terminal summary (``conftest.py``).
"""

import pytest
import sklearn.linear_model.tests.test_ridge as sk
from _compat import params_of, run, select

from skimplicit.linear_model import ImplicitRidgeCV

SWAPS = {sk.RidgeCV: ImplicitRidgeCV}

GRID = "grid membership or grid count"
SOLVER = "agreement with another solver tighter than 2 % in log-hyperparameter"
PRIVATE = "private scikit-learn internals"

XFAIL = {
}

CASES = select(sk, "RidgeCV")


@pytest.mark.parametrize("case", params_of(CASES, XFAIL))
def test_sklearn(case, request):
    run(case, request, sk, SWAPS)
