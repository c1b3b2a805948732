"""The documentation: it builds with warnings as errors, offline, and shows every public name.

* ``test_docs_build_without_gallery`` builds the whole site with ``sphinx-build -W`` but
  without executing the examples (``-D plot_gallery=0``), in a copy of ``docs/`` and
  ``examples/`` (the source tree is not written to). Under a minute on 2 cores: it runs
  by default. It needs the ``docs`` extra (Sphinx and friends); without it the test is
  skipped, saying so.
* ``test_user_guide_code`` runs the code of the user guide pages as doctests, and checks
  the worked example's hypergradient against central finite differences.
* ``test_benchmark_page_parts`` checks the benchmark tables and figure on a sample output.
* ``test_public_estimators_*`` and ``test_every_public_name_in_readme``: every public
  estimator is named in README.md, CHANGELOG.md, a user-guide page and a gallery example,
  and every public name (each module's ``__all__``) in README.md;
  ``test_docstring_outer_loop_matches_code``: the outer-loop facts the estimators'
  docstrings state are the code's.
* ``test_docs_full_build`` executes the whole gallery (minutes): only with
  ``SKIMPLICIT_DOCS=1``, since it would take a large share of the CI budget; so does
  ``test_dask_example``, which starts a dask cluster.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FULL = os.environ.get("SKIMPLICIT_DOCS") == "1"
FULL_REASON = (
    "executes every example of the gallery (or starts a dask cluster): minutes on 2 "
    "cores, too much for the default CI run; set SKIMPLICIT_DOCS=1 to run it"
)
# Written by the build into docs/: never copied from the working tree.
BUILD_OUTPUTS = ("_build", "generated", "_generated", "_gallery_src", "auto_examples",
                 "sg_execution_times.rst")


def _need_docs_extra():
    for mod in ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme"):
        pytest.importorskip(mod, reason="the docs extra is not installed: pip install -e '.[docs]'")


def _build(tmp_path, *, plot_gallery):
    """Build a copy of docs/ and examples/ into ``tmp_path / 'html'``; return (html, log)."""
    src = tmp_path / "repo"
    shutil.copytree(DOCS, src / "docs", ignore=shutil.ignore_patterns(*BUILD_OUTPUTS))
    shutil.copytree(ROOT / "examples", src / "examples")
    html = tmp_path / "html"
    env = dict(os.environ, MPLBACKEND="Agg", SKIMPLICIT_EXAMPLE_QUICK="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
           "-d", str(tmp_path / "doctrees"), "-D", f"plot_gallery={int(plot_gallery)}",
           str(src / "docs"), str(html)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
    log = f"{' '.join(cmd)}\n({time.perf_counter() - t0:.0f} s)\n{out.stdout}\n{out.stderr}"
    assert out.returncode == 0, f"sphinx-build -W failed:\n{log[-6000:]}"
    return html, src, log


# Tags whose URL attribute the browser fetches as a page loads (links <a href> are not).
_RESOURCE = re.compile(
    r"<(script|link|img|iframe|source|embed|object|video|audio)\b[^>]*?"
    r"\b(src|href|data|srcset)\s*=\s*[\"']\s*(https?:)?//[^\"']*[\"']", re.I)
_CSS_REMOTE = re.compile(r"(url\(\s*[\"']?\s*(https?:)?//|@import\s+[\"'](https?:)?//)", re.I)


def remote_resources(html_dir):
    """``(file, snippet)`` for every resource a built page or stylesheet would fetch."""
    found = []
    for path in Path(html_dir).rglob("*"):
        if path.suffix not in (".html", ".css") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        pattern = _RESOURCE if path.suffix == ".html" else _CSS_REMOTE
        for m in pattern.finditer(text):
            found.append((str(path.relative_to(html_dir)), m.group(0)[:120]))
    return found


_ID = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
_HREF = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["']([^"']*)["']""", re.I)


def broken_internal_links(html_dir):
    """``(file, href)`` for every internal link of the built site whose page or anchor
    does not exist (external links, ``mailto:`` and ``javascript:`` are not checked)."""
    import html as html_lib
    from urllib.parse import unquote, urlsplit

    html_dir = Path(html_dir)
    pages = {p.resolve(): p.read_text(encoding="utf-8", errors="replace")
             for p in html_dir.rglob("*.html")}
    ids = {p: {html_lib.unescape(i) for i in _ID.findall(t)} for p, t in pages.items()}
    broken = []
    for page, text in pages.items():
        for href in _HREF.findall(text):
            href = html_lib.unescape(href)
            parts = urlsplit(href)
            if parts.scheme or href.startswith("//"):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if target.suffix != ".html":
                if not target.exists():
                    broken.append((str(page.relative_to(html_dir.resolve())), href))
                continue
            frag = unquote(parts.fragment)
            if target not in ids or (frag and frag not in ids[target]):
                broken.append((str(page.relative_to(html_dir.resolve())), href))
    return broken


def test_broken_link_detector(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.html").write_text(
        '<h1 id="top">A</h1><a href="#top">ok</a><a href="#nope">bad anchor</a>'
        '<a href="sub/b.html#here">ok</a><a href="sub/b.html#gone">bad</a>'
        '<a href="missing.html">bad page</a><a href="https://x.org/#y">external</a>'
        '<a href="_static/x.css">bad file</a>')
    (tmp_path / "sub" / "b.html").write_text('<span id="here"></span><a href="../a.html">ok</a>')
    assert sorted(h for _, h in broken_internal_links(tmp_path)) == [
        "#nope", "_static/x.css", "missing.html", "sub/b.html#gone"]


def public_names():
    """``{(module, name)}`` of every public non-module name (each ``__all__``)."""
    import skimplicit

    out = set()
    mods = ["skimplicit"] + [
        info.name for info in pkgutil.walk_packages(skimplicit.__path__, "skimplicit.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    for modname in mods:
        mod = importlib.import_module(modname)
        for name in getattr(mod, "__all__", []):
            if not inspect.ismodule(getattr(mod, name)):
                out.add((modname, name))
    return out


def test_remote_resource_detector():
    # The offline check itself must catch what it is meant to catch.
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        Path(d, "a.html").write_text(
            '<a href="https://example.org">ok</a><script src="https://cdn.x/y.js"></script>'
            '<link rel="stylesheet" href="//fonts.x/css"><img src="_images/p.png">')
        Path(d, "b.css").write_text("body { background: url(https://x/y.png) }")
        found = remote_resources(d)
    assert sorted(f for f, _ in found) == ["a.html", "a.html", "b.css"]


def test_docs_build_without_gallery(tmp_path):
    _need_docs_extra()
    html, src, log = _build(tmp_path, plot_gallery=False)
    print(log.splitlines()[1])  # the build time

    # Offline: nothing fetched from the network when a page loads.
    assert remote_resources(html) == []
    # Every internal link reaches an existing page and anchor.
    broken = broken_internal_links(html)
    assert broken == [], f"{len(broken)} broken internal links, e.g. {broken[:10]}"
    # No path of the machine that built the site.
    leaked = [str(p.relative_to(html)) for p in html.rglob("*.html")
              if any(m in p.read_text(encoding="utf-8", errors="replace")
                     for m in (str(ROOT), str(tmp_path)))]
    assert leaked == [], f"pages printing the build machine's paths: {leaked}"
    # Every public name has its page (a re-exported object is documented once).
    documented = set()
    for page in (html / "generated").glob("skimplicit.*.html"):
        modname, name = page.stem.rsplit(".", 1)
        documented.add(id(getattr(importlib.import_module(modname), name)))
    missing = [f"{m}.{n}" for m, n in sorted(public_names())
               if id(getattr(importlib.import_module(m), n)) not in documented]
    assert missing == [], f"public names without an API page: {missing}"
    # The front page, the user guide, the benchmarks page and a page per example.
    for page in ["index", "api", "benchmarks", "auto_examples/index", "user_guide/method",
                 "user_guide/choosing", "user_guide/pitfalls", "user_guide/gpu",
                 "user_guide/parallel", "user_guide/tunable", "user_guide/differences",
                 "user_guide/regression", "user_guide/logistic", "user_guide/search",
                 "user_guide/dictionary_learning", "user_guide/inspection",
                 "user_guide/core"]:
        assert (html / f"{page}.html").is_file(), page
    for script in sorted((ROOT / "examples").glob("plot_*.py")):
        assert (html / "auto_examples" / f"{script.stem}.html").is_file(), script.name
    # Math is rendered by a local MathJax when sphinx-mathjax-offline is installed.
    method = (html / "user_guide" / "method.html").read_text()
    if (html / "_static" / "mathjax").is_dir():
        assert "_static/mathjax/tex-chtml.js" in method
    else:
        assert "mathjax" not in method.lower()


@pytest.mark.parametrize("page", ["method", "choosing", "gpu", "tunable", "regression",
                                  "logistic", "search", "dictionary_learning",
                                  "inspection", "core"])
def test_user_guide_code(page, monkeypatch):
    monkeypatch.syspath_prepend(str(DOCS / "user_guide"))
    monkeypatch.chdir(DOCS / "user_guide")
    failures, tried = doctest.testfile(
        str(DOCS / "user_guide" / f"{page}.rst"), module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert tried > 0
    assert failures == 0, f"{failures} failing examples in docs/user_guide/{page}.rst"


def test_tunable_example_hypergradient(monkeypatch):
    # The user guide's worked example: its hypergradient against central differences, at
    # several alphas, and the problem satisfies the tunable protocol.
    monkeypatch.syspath_prepend(str(DOCS / "user_guide"))
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler
    from tunable_ridge import RidgeProblem

    from skimplicit.tuning import split_folds
    from skimplicit.model_selection import TunableProblem

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    splits = KFold(3, shuffle=True, random_state=0).split(X)
    problem = RidgeProblem(split_folds(X, y, np.ones(len(y)), splits))
    assert isinstance(problem, TunableProblem)
    for alpha in (1e-3, 1e-1, 10.0):
        h = 1e-6 * alpha
        fd = (problem.evaluate({"alpha": alpha + h}).loss
              - problem.evaluate({"alpha": alpha - h}).loss) / (2 * h)
        g = problem.evaluate({"alpha": alpha}).grad["alpha"]
        assert g == pytest.approx(fd, rel=1e-6)


SAMPLE_OUTPUT = """\
# bench_regression: hypergradient-tuned regressors vs scikit-learn CV
date 2026-01-01, x86_64 x 2 cores, python 3.11.7, float64 inside the estimators

| data | method | fresh s | warm s | compile s | alpha | CV MSE | test MSE |
|---|---|---|---|---|---|---|---|
| synthetic | ImplicitLassoCV | 2.50 | 1.00 | 1.50 | 0.51 | 410.00 | 420.0 |
| synthetic | LassoCV | 10.00 | 9.90 | 0.10 | 0.50 | 410.10 | 421.0 |
| diabetes | ImplicitLassoCV | 1.20 | 0.10 | 1.10 | 0.04 | 2971.75 | 3000 |
| diabetes | LassoCV | 0.20 | 0.19 | 0.01 | 0.04 | 2971.74 | 3001 |
summary: alpha_ and *stars* stay plain text
"""


def test_benchmark_page_parts(tmp_path):
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(DOCS))
    try:
        from make_benchmark_figure import FIGURE_NAME, write_benchmark_page_parts
    finally:
        sys.path.remove(str(DOCS))
    bench, out = tmp_path / "benchmarks", tmp_path / "out"
    bench.mkdir()
    # No saved output: the page says so, and no figure is drawn.
    info = write_benchmark_page_parts(bench, out)
    assert info == {"files": [], "panels": [], "figure": None}
    assert "No benchmark output" in (out / "benchmark_tables.rst.inc").read_text()
    assert "No figure" in (out / "benchmark_figure.rst.inc").read_text()
    # One saved output: its tables, its text (escaped) and a figure with one panel per dataset.
    (bench / "bench_regression.txt").write_text(SAMPLE_OUTPUT)
    (bench / "README").write_text("not an output")
    info = write_benchmark_page_parts(bench, out)
    assert info["files"] == ["bench_regression.txt"]
    assert info["panels"] == ["bench_regression: synthetic", "bench_regression: diabetes"]
    assert (out / FIGURE_NAME).stat().st_size > 10_000
    tables = (out / "benchmark_tables.rst.inc").read_text()
    assert tables.count(".. list-table::") == 1 and "2971.75" in tables
    assert r"alpha\_ and \*stars\*" in tables and "date 2026-01-01" in tables
    assert f"/_generated/{FIGURE_NAME}" in (out / "benchmark_figure.rst.inc").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason=FULL_REASON)
def test_docs_full_build(tmp_path):
    _need_docs_extra()
    html, src, log = _build(tmp_path, plot_gallery=True)
    print(log.splitlines()[1])
    assert remote_resources(html) == []
    scripts = sorted((ROOT / "examples").glob("plot_*.py"))
    n_images = 0
    for script in scripts:
        page = (html / "auto_examples" / f"{script.stem}.html").read_text()
        produced = sorted((src / "docs" / "auto_examples" / "images").glob(
            f"sphx_glr_{script.stem}_[0-9]*.png"))
        for png in produced:  # every figure the example drew is on its page
            assert png.name in page, (script.name, png.name)
            assert (html / "_images" / png.name).is_file()
        n_images += len(produced)
    assert not scripts or n_images > 0


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason=FULL_REASON)
def test_dask_example(monkeypatch):
    pytest.importorskip("dask.distributed")
    monkeypatch.syspath_prepend(str(DOCS / "user_guide"))
    import dask_example

    reg, scores, n_workers = dask_example.main()
    assert n_workers == 2 and reg.alpha_ > 0 and len(scores["test_score"]) == 4


def test_benchmark_figure_panels_are_per_data_set():
    """Losses of different data sets never share a panel (``data`` or ``case`` column)."""
    sys.path.insert(0, str(DOCS))
    from make_benchmark_figure import collect_points, parse_output

    text = ("| case | method | fresh s | CV loss (sklearn) |\n|---|---|---|---|\n"
            "| lasso-a | HypergradSearchCV | 1.0 | 2000.0 |\n"
            "| lasso-a | GridSearchCV | 9.0 | 2001.0 |\n"
            "| logistic-b | HypergradSearchCV | 2.0 | 0.5 |\n")
    panels = collect_points({"bench_search.txt": parse_output(text)})
    assert sorted(panels) == ["bench_search: lasso-a", "bench_search: logistic-b"]
    assert [p[0] for p in panels["bench_search: lasso-a"]] == ["HypergradSearchCV",
                                                             "GridSearchCV"]


def public_estimators():
    """The public estimators: every public class that is a scikit-learn estimator."""
    from sklearn.base import BaseEstimator

    return sorted({name for mod, name in public_names()
                   if inspect.isclass(getattr(importlib.import_module(mod), name))
                   and issubclass(getattr(importlib.import_module(mod), name), BaseEstimator)})


def _mentions(text, name):
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text) is not None


def test_public_estimators_in_readme_changelog_user_guide():
    # Every public estimator is named in README.md, CHANGELOG.md and a user-guide page.
    estimators = public_estimators()
    assert {"ImplicitLassoCV", "ImplicitLogisticRegressionCV", "HypergradSearchCV",
            "TaskDrivenDictionaryLearning"} <= set(estimators)
    readme = (ROOT / "README.md").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    guide = [p.read_text() for p in sorted((DOCS / "user_guide").glob("*.rst"))]
    missing = [(name, where) for name in estimators for where, ok in [
        ("README.md", _mentions(readme, name)),
        ("CHANGELOG.md", _mentions(changelog, name)),
        ("docs/user_guide/*.rst", any(_mentions(t, name) for t in guide)),
    ] if not ok]
    assert missing == [], f"public estimators not named: {missing}"


def test_public_estimators_in_gallery():
    # Every public estimator is used by at least one gallery example.
    scripts = [p.read_text() for p in sorted((ROOT / "examples").glob("plot_*.py"))]
    missing = [name for name in public_estimators()
               if not any(_mentions(s, name) for s in scripts)]
    assert missing == [], f"public estimators in no examples/plot_*.py: {missing}"


def test_every_public_name_in_readme():
    # README's "Public API" lists each public module's __all__ (every name, quoted).
    readme = (ROOT / "README.md").read_text()
    missing = sorted(f"{mod}.{name}" for mod, name in public_names()
                     if f"`{name}`" not in readme)
    assert missing == [], f"public names missing from README.md: {missing}"


def test_docstring_outer_loop_matches_code():
    # The outer-loop facts the estimators' docstrings state are the code's constants.
    import skimplicit.tuning._outer as outer
    from skimplicit.decomposition import TaskDrivenDictionaryLearning
    from skimplicit.linear_model import (ImplicitElasticNetCV, ImplicitLassoCV,
                                         ImplicitLogisticRegressionCV, ImplicitRidgeCV)
    from skimplicit.linear_model._cv_problems import EnetCVProblem, RidgeCVProblem
    from skimplicit.linear_model._logistic_problem import LogisticCVProblem
    from skimplicit.linear_model._ridge_loo import RidgeLOOProblem
    from skimplicit.model_selection import HypergradSearchCV

    def doc(cls):
        return " ".join(inspect.getdoc(cls).split())

    src = inspect.getsource(outer)
    # One hyperparameter: a bracketed line search; several: L-BFGS-B; the inner
    # tolerance tightened to a hundredth (HOAG's schedule floored at 1e-2).
    assert "def _bracketed_1d" in src and 'method="L-BFGS-B"' in src
    assert "max(1e-2, precision0" in src
    for cls in (ImplicitLassoCV, ImplicitRidgeCV, ImplicitLogisticRegressionCV,
                HypergradSearchCV):
        text = doc(cls)
        assert "bracketed line search" in text and "L-BFGS-B" in text, cls.__name__
    # Cover densities.
    assert "4 points a decade" in doc(ImplicitLassoCV)
    assert EnetCVProblem.COVER_PER_DECADE == 4
    assert "2 points a decade" in doc(ImplicitRidgeCV)
    assert RidgeCVProblem.COVER_PER_DECADE == RidgeLOOProblem.COVER_PER_DECADE == 2
    assert "(2 points a decade) at 0.5 and 0.1" in doc(ImplicitElasticNetCV)
    assert EnetCVProblem.COVER_PER_DECADE_MIX == 2
    assert tuple(EnetCVProblem.COVER_RATIOS) == (0.5, 0.1)
    assert "half-decade steps" in doc(ImplicitLogisticRegressionCV)
    default_step = inspect.signature(LogisticCVProblem).parameters["path_step"].default
    assert default_step == pytest.approx(10 ** 0.5)
    # Tolerances: the Lasso's down to tol / 100, the logistic's from min(tol, 1e-6).
    assert "tol / 100" in doc(ImplicitLassoCV)
    assert "min(tol, 1e-6)" in doc(ImplicitLogisticRegressionCV)
    problem_src = inspect.getsource(LogisticCVProblem.evaluate)
    assert "min(self.tol, 1e-6) * precision" in problem_src
    assert "tol = self.tol * precision" in inspect.getsource(EnetCVProblem._evaluate)
    # No docstring names the outer loop's former shapes.
    for cls in (ImplicitLassoCV, ImplicitElasticNetCV, ImplicitRidgeCV,
                ImplicitLogisticRegressionCV, HypergradSearchCV,
                TaskDrivenDictionaryLearning):
        text = doc(cls)
        for stale in ("then L-BFGS-B in log space", "4-value path", "alpha_max/100",
                      "best start of a coarse path", "best point of the coarse path"):
            assert stale not in text, (cls.__name__, stale)
