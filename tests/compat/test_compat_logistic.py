"""scikit-learn 1.9's own tests of ``LogisticRegressionCV``, run with
:class:`~skimplicit.linear_model.ImplicitLogisticRegressionCV` swapped in.

The test functions are imported from the installed scikit-learn
(``sklearn.linear_model.tests.test_logistic``), never copied. Selection rule (the same
as the regressors' compat modules): every item whose parameters include
``LogisticRegressionCV`` (the class or an instance), or, without estimator-valued
parameters, whose test function's body (``inspect.getsource`` from the ``def`` line)
names ``LogisticRegressionCV`` as a word. Parametrizations are expanded from the
functions' own ``pytest.mark.parametrize`` marks (ids as pytest writes them); their other
marks (``filterwarnings``) are kept. The twin is swapped by ``monkeypatch.setattr`` on
the test module, and in parameter values: our class itself, no adapter.

Items expected to differ are strict xfails listed in ``XFAIL`` under one category each
(published in the docs, "Differences from scikit-learn"). ``test_counts`` runs last and
prints the counts (passed / listed / selected).
"""

import inspect
import itertools
import re

import pytest
import sklearn.linear_model.tests.test_logistic as sk
from _pytest.mark.structures import ParameterSet
from sklearn.base import BaseEstimator

from skimplicit.linear_model import ImplicitLogisticRegressionCV

TWIN = "LogisticRegressionCV"
SWAPS = {sk.LogisticRegressionCV: ImplicitLogisticRegressionCV}

GRID = "grid membership or grid count"
SOLVER = "agreement with another solver tighter than 2 % in log-hyperparameter"
PRIVATE = "private scikit-learn internals"
DEFAULT = "scikit-learn's deprecation-period default (ours: the post-deprecation value)"

_POINTS = ("Cs_ and the paths hold the points evaluated by the descent (their number "
           "set by the data), not the `Cs` grid")

XFAIL = {
    # -- the evaluated points are not scikit-learn's grid --------------------------------
    "test_logistic_cv_mock_scorer": (
        GRID, "the scorer is called at every point evaluated by the descent (more than "
        "cv * len(Cs) calls), so the mock's cyclic scores fall elsewhere"),
    **{f"test_multinomial_cv_iris[{b}]": (GRID, _POINTS) for b in ("True", "False")},
    **{f"test_n_iter[{b}-{s}]": (GRID, "n_iter_ has one column per point evaluated, "
                                 "not `Cs` columns")
       for s in sk.SOLVERS for b in ("True", "False")},
    **{f"test_LogisticRegressionCV_GridSearchCV_elastic_net[{n}]": (
        GRID, "C_ and l1_ratio_ are tuned continuously within the range of Cs and "
        "l1_ratios, not GridSearchCV's best grid point") for n in (2, 3)},
    **{f"test_LogisticRegressionCV_elasticnet_attribute_shapes[{n}]": (
        GRID, "several l1_ratios are tuned over their range: the paths have one column per "
        "evaluated (C, l1_ratio) point, not a Cs x l1_ratios product") for n in (2, 3)},
    "test_scores_attribute_layout_elasticnet": (
        GRID, "several l1_ratios are tuned over their range: scores_ has one column per "
        "evaluated (C, l1_ratio) point, not a Cs x l1_ratios product"),
    # -- scikit-learn's deprecation-period defaults ---------------------------------------
    "test_logisticregressioncv_warns_with_use_legacy_attributes": (
        DEFAULT, "use_legacy_attributes defaults to False (no FutureWarning)"),
    "test_l1_ratio_None_deprecated": (
        DEFAULT, "l1_ratios defaults to (0.0,) (no FutureWarning); l1_ratios=None warns "
        "as in scikit-learn"),
    "test_lr_scoring_warns": (DEFAULT, "scoring defaults to 'neg_log_loss' (no FutureWarning)"),
    "test_get_default_scorer": (DEFAULT, "scoring defaults to 'neg_log_loss', not accuracy"),
    "test_LogisticRegressionCV_on_folds": (
        DEFAULT, "with l1_ratios=(0.0,) (not None) the legacy coefs_paths_ keep their "
        "l1_ratios axis, as scikit-learn's with l1_ratios given; Cs_ holds the points "
        "evaluated, not the grid of 10"),
    # -- another solver -------------------------------------------------------------------
    **{f"test_logistic_cv[{b}]": (
        SOLVER, "coef_ at C=1 compared with liblinear's at its tol=1e-4 to 6 decimals: "
        "liblinear is 1.6e-5 from the exact solution, which ours matches (newton-cg at "
        "tol=1e-12 to 1e-8)") for b in ("True", "False")},
}


# -- selection and expansion (the regressors' modules' rule) ----------------------------


def _value_id(argname, value, idx):
    if isinstance(value, (str, int, float, bool)) or value is None:
        s = str(value)
        return s if s.isprintable() else f"{argname}{idx}"
    if isinstance(value, type) or inspect.isfunction(value):
        return value.__name__
    return f"{argname}{idx}"


def _expand_mark(mark):
    names = mark.args[0]
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    values = mark.args[1] if len(mark.args) > 1 else mark.kwargs["argvalues"]
    ids = mark.kwargs.get("ids")
    out = []
    for i, v in enumerate(values):
        marks, vid = [], None
        if isinstance(v, ParameterSet):
            marks, vid, v = list(v.marks), v.id, v.values
        elif len(names) == 1:
            v = (v,)
        v = tuple(v)
        if vid is None and ids is not None:
            vid = ids(v[0] if len(names) == 1 else v) if callable(ids) else ids[i]
        if vid is None or not isinstance(vid, str):
            vid = "-".join(_value_id(n, x, i) for n, x in zip(names, v))
        out.append((dict(zip(names, v)), vid, marks))
    return out


def _cases():
    word = re.compile(rf"\b{TWIN}\b")
    cases = []
    for name, fn in vars(sk).items():
        if not name.startswith("test_") or not inspect.isfunction(fn):
            continue
        src = inspect.getsource(fn)
        names_twin = bool(word.search(src[src.index("def "):]))
        pmarks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        other = [m for m in getattr(fn, "pytestmark", [])
                 if m.name not in ("parametrize", "usefixtures")]
        for combo in itertools.product(*[_expand_mark(m) for m in pmarks]):
            params, ids, marks = {}, [], list(other)
            for p, i, m in combo:
                params.update(p)
                ids.append(i)
                marks += m
            ests = [v for v in params.values()
                    if (isinstance(v, type) and issubclass(v, BaseEstimator))
                    or isinstance(v, BaseEstimator)]
            ok = (any(v is sk.LogisticRegressionCV or type(v) is sk.LogisticRegressionCV
                      for v in ests) if ests else names_twin)
            if ok:
                cases.append((fn.__name__ + (f"[{'-'.join(ids)}]" if ids else ""), fn,
                              params, marks))
    return cases


CASES = _cases()
_OUTCOMES = {}


def _params():
    out = []
    for cid, fn, params, marks in CASES:
        marks = list(marks)
        if cid in XFAIL:
            cat, why = XFAIL[cid]
            marks.append(pytest.mark.xfail(strict=True, reason=f"{cat}: {why}"))
        out.append(pytest.param(cid, fn, params, id=cid, marks=marks))
    unknown = set(XFAIL) - {c[0] for c in CASES}
    assert not unknown, f"xfail ids not among the selected items: {sorted(unknown)}"
    return out


@pytest.fixture
def global_random_seed():
    """scikit-learn's default seed (``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` unset)."""
    return 42


@pytest.mark.parametrize("cid, fn, params", _params())
def test_sklearn(cid, fn, params, request, monkeypatch):
    for sk_cls, ours in SWAPS.items():
        monkeypatch.setattr(sk, sk_cls.__name__, ours)
    kwargs = {}
    for k, v in params.items():
        for sk_cls, ours in SWAPS.items():
            if v is sk_cls:
                v = ours
            elif type(v) is sk_cls:
                v = ours(**v.get_params(deep=False))
        kwargs[k] = v
    for name in inspect.signature(fn).parameters:
        if name not in kwargs:
            kwargs[name] = request.getfixturevalue(name)
    _OUTCOMES[cid] = "failed"
    fn(**kwargs)
    _OUTCOMES[cid] = "passed"


def test_counts(capsys):
    """The counts of the items above (runs last): each passed or is listed (issue 19's
    target, 75 % passed, is not met: see the report in the docs' differences page)."""
    if len(_OUTCOMES) < len(CASES):
        pytest.skip("run with a subset of the items: no counts")
    passed = sum(1 for cid, o in _OUTCOMES.items() if o == "passed" and cid not in XFAIL)
    listed = sum(1 for cid in _OUTCOMES if cid in XFAIL)
    failed = len(CASES) - passed - listed
    with capsys.disabled():
        print(f"\ntest_compat_logistic: {passed} passed / {listed} listed (expected "
              f"differences) / {len(CASES)} selected -> {100 * passed / len(CASES):.1f} % "
              f"passed" + (f"; FAILED {failed}" if failed else ""))
    assert failed == 0
