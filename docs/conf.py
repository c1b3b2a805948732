"""Sphinx configuration of the skimplicit documentation.

Build (from the repository root; ``-W`` turns every warning into an error)::

    pip install -e ".[docs]"
    python -m sphinx -W -b html docs docs/_build/html

What the build picks up by itself, so that nothing is written twice:

* **API reference**: every name in the ``__all__`` of each public module (``api.rst``
  places them in sections with a ``.. skimplicit-autosummary:: module`` line, expanded
  here into an ``autosummary`` table; modules nobody placed get a section of their own).
* **Gallery**: every ``examples/plot_*.py``, executed with ``SKIMPLICIT_EXAMPLE_QUICK=1``
  (small sizes, so that the build stays within minutes on 2 cores). Pass
  ``-D plot_gallery=0`` to build the pages without running the examples.
* **Benchmarks**: every ``docs/benchmarks/*.md`` / ``*.txt`` (the printed output of a
  ``benchmarks/`` script), rendered as tables, and a figure drawn from them by
  ``make_benchmark_figure.py``.

The site works offline: no intersphinx, no remote fonts, scripts or analytics; math is
rendered by a local copy of MathJax (the ``sphinx-mathjax-offline`` package) when it is
installed, and shown as plain LaTeX otherwise (never fetched from a CDN).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document the working tree (also when the package is installed elsewhere).
if (ROOT / "skimplicit" / "__init__.py").is_file():
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

# Examples run in this process: small sizes, no GUI backend. A user may still ask for
# the full-size gallery with SKIMPLICIT_EXAMPLE_QUICK=0.
os.environ.setdefault("SKIMPLICIT_EXAMPLE_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import skimplicit  # noqa: E402

from make_benchmark_figure import write_benchmark_page_parts  # noqa: E402

# -- Project ------------------------------------------------------------------------------
project = "skimplicit"
author = "skimplicit developers"
copyright = "skimplicit developers, BSD-3-Clause"
release = skimplicit.__version__
version = release

# -- General ------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
HAVE_OFFLINE_MATHJAX = importlib.util.find_spec("sphinx-mathjax-offline") is not None
if HAVE_OFFLINE_MATHJAX:
    extensions.append("sphinx-mathjax-offline")

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "dev",
    "benchmarks",
    "_gallery_src",
    "_generated",
    "generated/_api_autosummary.rst",
    "**.ipynb_checkpoints",
]
root_doc = "index"
default_role = "literal"
nitpicky = False
suppress_warnings: list[str] = []

# -- autodoc / autosummary / numpydoc ----------------------------------------------------
autodoc_typehints = "none"  # numpydoc docstrings carry the types
autodoc_member_order = "groupwise"
autosummary_generate = ["generated/_api_autosummary.rst"]
autosummary_generate_overwrite = True
autosummary_imported_members = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skimplicit {release}"
html_static_path = ["_static"]
html_css_files = ["skimplicit.css"]
html_show_sourcelink = True
html_last_updated_fmt = None
html_theme_options = {
    # Nothing fetched from the network: no icon links to external sites, no analytics,
    # no version switcher JSON, no "edit this page" button.
    "icon_links": [],
    "analytics": {},
    "use_edit_page_button": False,
    "show_version_warning_banner": False,
    "navbar_end": ["theme-switcher"],
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "light"}
# Pages without sub-pages need no left sidebar.
html_sidebars = {"index": [], "benchmarks": []}

# -- sphinx-gallery -----------------------------------------------------------------------
GALLERY_SRC = DOCS / "_gallery_src"


def _stage_gallery():
    """Copy ``examples/plot_*.py`` next to the gallery header into ``_gallery_src``.

    The gallery header lives in ``docs/`` (``gallery_header.txt``) so that ``examples/``
    needs nothing but the scripts. Files are rewritten only when their content changed,
    so that incremental builds do not re-run unchanged examples.
    """
    GALLERY_SRC.mkdir(exist_ok=True)
    wanted = {"GALLERY_HEADER.rst": (DOCS / "gallery_header.txt").read_bytes()}
    for path in sorted((ROOT / "examples").glob("plot_*.py")):
        wanted[path.name] = path.read_bytes()
    for old in GALLERY_SRC.iterdir():
        if old.is_file() and old.name not in wanted:
            old.unlink()
    for name, content in wanted.items():
        dest = GALLERY_SRC / name
        if not dest.is_file() or dest.read_bytes() != content:
            dest.write_bytes(content)
    return sorted(n for n in wanted if n.endswith(".py"))


GALLERY_EXAMPLES = _stage_gallery()

sphinx_gallery_conf = {
    "examples_dirs": [str(GALLERY_SRC)],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skimplicit",),
    "exclude_implicit_doc": {r"skimplicit\._.*"},
    "log_level": {"backreference_missing": "debug"},
    "remove_config_comments": True,
    "show_memory": False,
    "show_signature": False,
    "download_all_examples": True,
    "matplotlib_animations": False,
    "min_reported_time": 1,
    # The execution-times pages load jQuery and DataTables from CDNs: not offline.
    "write_computation_times": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    # A failing example fails the build (no expected failures).
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
}

# The source pages link back to each object's page under its documented name only (an
# object re-exported under a second name would get a link to an anchor that does not exist).
viewcode_follow_imported_members = False

# -- API reference: every public name --------------------------------------------------
GENERATED = DOCS / "generated"
AUTOSUMMARY_MARK = re.compile(r"^\.\. skimplicit-autosummary::\s*(\S+)\s*$", re.M)
REST_MARK = re.compile(r"^\.\. skimplicit-autosummary-rest::\s*$", re.M)


def _public_modules():
    """``skimplicit`` and its public sub-packages / modules, recursively."""
    found = []
    for info in pkgutil.walk_packages(skimplicit.__path__, "skimplicit."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts):
            continue
        found.append(info.name)
    return sorted(found)


def _public_names(modname):
    """``(names, note)``: the public non-module names of ``modname`` (its ``__all__``)."""
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name != modname:
            raise  # the module exists but fails to import: fail the build, loudly
        return [], f"``{modname}`` is not available in this build."
    names = getattr(mod, "__all__", None)
    if names is None:
        return [], f"``{modname}`` has no public names yet."
    out = []
    for name in names:
        obj = getattr(mod, name, None)
        if obj is None:
            raise AttributeError(f"{modname}.__all__ lists {name!r}, which does not exist")
        if inspect.ismodule(obj):
            continue
        out.append(name)
    return out, ""


def _api_plan(api_text):
    """Sections of the API page: modules placed in ``api.rst``, then the others."""
    placed = AUTOSUMMARY_MARK.findall(api_text)
    rest = [m for m in _public_modules() if m not in placed and _public_names(m)[0]]
    seen, plan = set(), {}
    for modname in placed + rest:
        names, note = _public_names(modname)
        mod = sys.modules.get(modname)
        kept = []
        for name in names:
            key = id(getattr(mod, name))
            if key in seen:  # re-exported: documented once, where it first appears
                continue
            seen.add(key)
            kept.append(name)
        plan[modname] = (kept, note)
    return plan, rest


def _autosummary_block(modname, names, note, toctree):
    # ``.. module::`` makes :mod:`modname` a link target (the API page is its home). Its
    # anchor goes to the next element: a paragraph (the theme's table wrapper drops the
    # ids of an autosummary table that would come first).
    doc = (inspect.getdoc(sys.modules.get(modname)) or "").split("\n\n")[0]
    summary = " ".join(doc.split()) or "Public names."
    head = [f".. module:: {modname}", "", f"``{modname}``: {summary}", ""]
    if not names:
        text = note or f"Nothing public in {modname}."
        return "\n".join(head + [".. note::", "", f"   {text}"]) + "\n"
    lines = head + [".. autosummary::",
             f"   :toctree: {toctree}", "   :nosignatures:", ""]
    lines += [f"   {n}" for n in names]
    return "\n".join(lines) + "\n"


def _rest_block(rest, plan, toctree):
    if not rest:
        return "None: every public module is listed above.\n"
    out = []
    for modname in rest:
        title = f":mod:`{modname}`"
        doc = (inspect.getdoc(sys.modules.get(modname)) or "").split("\n\n")[0]
        out += [title, "~" * len(title), "", doc, "",
                _autosummary_block(modname, *plan[modname], toctree)]
    return "\n".join(out)


def _expand_api(text, toctree):
    plan, rest = _api_plan(text)
    text = AUTOSUMMARY_MARK.sub(
        lambda m: _autosummary_block(m.group(1), *plan[m.group(1)], toctree), text)
    return REST_MARK.sub(lambda m: _rest_block(rest, plan, toctree), text), plan


def _write_autosummary_index():
    """The expanded API page, for autosummary's stub generation (which reads files)."""
    GENERATED.mkdir(exist_ok=True)
    text, plan = _expand_api((DOCS / "api.rst").read_text(), ".")
    (GENERATED / "_api_autosummary.rst").write_text(text)
    # Remove stubs of names that are gone (they would be orphans: a warning under -W).
    keep = {f"{mod}.{n}.rst" for mod, (names, _) in plan.items() for n in names}
    for stub in GENERATED.glob("*.rst"):
        if stub.name != "_api_autosummary.rst" and stub.name not in keep:
            stub.unlink()
    return plan


API_PLAN = _write_autosummary_index()

# -- Benchmarks page: tables and figure from docs/benchmarks/ ----------------------------
BENCHMARK_PARTS = write_benchmark_page_parts(DOCS / "benchmarks", DOCS / "_generated")


# -- Hooks --------------------------------------------------------------------------------
def _source_read(app, docname, source):
    if docname == "api":
        source[0] = _expand_api(source[0], "generated")[0]


def _always_reread_api(app, env, added, changed, removed):
    # The API page depends on the package's __all__, not only on api.rst.
    return ["api", "benchmarks"] if "api" in env.found_docs else []


_SKLEARN_ROLE = re.compile(r":(?:ref|term|doc):`([^`<]*?)\s*(?:<[^`>]*>)?`")


def _process_docstring(app, what, name, obj, options, lines):
    """Make docstrings we do not own, or that are mis-joined, render without warnings.

    * Methods inherited from scikit-learn (``score``, ``set_fit_request``, ...) refer to
      labels and glossary terms of scikit-learn's own documentation (``:ref:``,
      ``:term:``), which do not exist here: keep their text, drop the link.
    * A line ending in a backslash inside a raw docstring is a line continuation for
      its author (as it would be in a non-raw string): join it with the next line.
    * In a numpydoc ``name : type`` line, a word ending in ``_`` in the *type*
      (``ndarray of shape (n_features_in_,)``) would be a reference to a missing target:
      escape the underscore.
    """
    module = getattr(obj, "__module__", None) or ""
    if module.startswith("sklearn"):
        lines[:] = [_SKLEARN_ROLE.sub(lambda m: m.group(1), line) for line in lines]
    i = 0
    while i < len(lines) - 1:
        if lines[i].endswith("\\") and not lines[i].endswith("\\\\") and lines[i + 1].strip():
            lines[i] = lines[i][:-1] + lines.pop(i + 1)
        else:
            i += 1
    for i, line in enumerate(lines):
        m = _TYPE_LINE.match(line)
        if m:
            parts = _LITERAL.split(m.group(2))  # leave ``literals`` and `roles` alone
            parts[::2] = [_TRAILING_UNDERSCORE.sub(r"\1\\_", p) for p in parts[::2]]
            lines[i] = m.group(1) + "".join(parts)


_TYPE_LINE = re.compile(r"^(\s*\*{0,2}\w[\w, \\*]* : )(.*)$")
_LITERAL = re.compile(r"(``.*?``|:?\w*:?`[^`]*`)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\\])\b([A-Za-z]\w*?)_(?=[\s,.)\]]|$)")


def _skip_member(app, what, name, obj, skip, options):
    # NamedTuple fields are documented in the class's Attributes section already.
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


def _plain_math_inline(self, node):
    self.body.append(self.starttag(node, "span", "", CLASS="math notranslate"))
    self.body.append(self.encode(node.astext()) + "</span>")
    raise _SkipNode


def _plain_math_block(self, node):
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    self.body.append("<pre>" + self.encode(node.astext()) + "</pre></div>\n")
    raise _SkipNode


from docutils.nodes import SkipNode as _SkipNode  # noqa: E402


def setup(app):
    app.connect("source-read", _source_read)
    app.connect("env-get-outdated", _always_reread_api)
    # Before numpydoc (priority 500) parses the sections.
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)
    app.connect("autodoc-skip-member", _skip_member)
    if not HAVE_OFFLINE_MATHJAX:
        # Never load MathJax from a CDN: show the LaTeX source instead.
        app.add_html_math_renderer(
            "skimplicit_plain", (_plain_math_inline, None), (_plain_math_block, None))
        app.config.html_math_renderer = "skimplicit_plain"
    return {"parallel_read_safe": True}
