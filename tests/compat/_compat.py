"""Run scikit-learn's own tests of a twin estimator with ours swapped in.

Shared by ``test_compat_*.py`` (no test here). Items are generated from the installed
scikit-learn test functions: their ``pytest.mark.parametrize`` marks are expanded here
(the cartesian product, ids as pytest writes them), their other arguments are fixtures
(``global_random_seed`` is scikit-learn's default seed, 42; see ``conftest.py``).

Selection rule: an item is selected when one of its parameter values is the twin (the
class or an instance), or, having no estimator-valued parameter, when the body of its
test function (``inspect.getsource`` from the ``def`` line) names the twin class as a
word not prefixed by ``MultiTask``.
"""

from __future__ import annotations

import inspect
import itertools
import re
from dataclasses import dataclass, field

import pytest
from _pytest.mark.structures import ParameterSet
from sklearn.base import BaseEstimator


@dataclass
class Case:
    fn: object
    id: str
    params: dict
    marks: list = field(default_factory=list)


def _value_id(argname, value, idx):
    if isinstance(value, (str, int, float, bool)) or value is None:
        s = str(value)
        return s if s.isprintable() else f"{argname}{idx}"
    if isinstance(value, type) or inspect.isfunction(value):
        return value.__name__
    return f"{argname}{idx}"


def _expand_mark(mark):
    """One parametrize mark -> list of (dict of values, id, marks)."""
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


def expand(fn):
    """Every item of ``fn`` as a :class:`Case` (its parametrizations expanded)."""
    pmarks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
    other = [m for m in getattr(fn, "pytestmark", [])
             if m.name not in ("parametrize", "usefixtures")]
    # Decorators apply bottom-up: pytest's ids list the innermost (last applied first).
    combos = itertools.product(*[_expand_mark(m) for m in pmarks])
    cases = []
    for combo in combos:
        params, ids, marks = {}, [], list(other)
        for p, i, m in combo:
            params.update(p)
            ids.append(i)
            marks += m
        name = fn.__name__ + (f"[{'-'.join(ids)}]" if ids else "")
        cases.append(Case(fn, name, params, marks))
    return cases


def _body(fn):
    src = inspect.getsource(fn)
    return src[src.index("def "):]


def select(module, twin_name):
    """The items of ``module``'s test functions that exercise ``twin_name``."""
    twin = getattr(module, twin_name)
    word = re.compile(rf"(?<!MultiTask)\b{twin_name}\b")
    cases = []
    for name, fn in vars(module).items():
        if not name.startswith("test_") or not inspect.isfunction(fn):
            continue
        names_twin = bool(word.search(_body(fn)))
        for case in expand(fn):
            ests = [v for v in case.params.values()
                    if (isinstance(v, type) and issubclass(v, BaseEstimator))
                    or isinstance(v, BaseEstimator)]
            if ests:
                ok = any(v is twin or type(v) is twin for v in ests)
            else:
                ok = names_twin
            if ok:
                cases.append(case)
    return cases


def params_of(cases, xfails):
    """``pytest.param`` of each case; the ids in ``xfails`` (id -> (category, why)) are
    strict xfails with reason ``"<category>: <why>"``."""
    out = []
    for c in cases:
        marks = list(c.marks)
        if c.id in xfails:
            cat, why = xfails[c.id]
            marks.append(pytest.mark.xfail(strict=True, reason=f"{cat}: {why}"))
        out.append(pytest.param(c, id=c.id, marks=marks))
    unknown = set(xfails) - {c.id for c in cases}
    assert not unknown, f"xfail ids not among the selected items: {sorted(unknown)}"
    return out


def run(case, request, module, swaps):
    """Run one item: ``swaps`` (scikit-learn's class -> ours) set on ``module`` by name;
    parameters that are the twin (class or instance) replaced by ours (an instance with
    the same parameters)."""
    mp = request.getfixturevalue("monkeypatch")
    for sk_cls, ours in swaps.items():
        mp.setattr(module, sk_cls.__name__, ours)
    twins = swaps
    kwargs = {}
    for k, v in case.params.items():
        for sk_cls, ours in twins.items():
            if v is sk_cls:
                v = ours
            elif type(v) is sk_cls:
                v = ours(**v.get_params(deep=False))
        kwargs[k] = v
    for name in inspect.signature(case.fn).parameters:
        if name not in kwargs:
            kwargs[name] = request.getfixturevalue(name)
    case.fn(**kwargs)
