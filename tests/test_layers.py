"""Imports point down only: estimators -> tuning -> solvers -> implicit.

Each sub-package has a layer; a module may import its own package and lower layers, never
a higher or a sibling estimator layer's internals upwards. Checked twice: statically
(every ``import`` statement of every module, deferred ones included) and dynamically (each
sub-package imported alone in a fresh interpreter loads no higher package).
"""

import ast
import pathlib
import subprocess
import sys

import pytest

import skimplicit

ROOT = pathlib.Path(skimplicit.__file__).parent

# Lower number = lower layer. Packages of one layer may not import each other.
LAYERS = {
    "_blas": 0,
    "utils": 0,
    "implicit": 0,
    "solvers": 1,
    "tuning": 2,
    "linear_model": 3,
    "decomposition": 3,
    "inspection": 4,
    "model_selection": 5,
}


def _package(module_path):
    rel = module_path.relative_to(ROOT)
    head = rel.parts[0]
    return head[:-3] if head.endswith(".py") else head


def _imported_packages(path, source=None):
    """The skimplicit sub-packages a module imports (absolute or relative)."""
    tree = ast.parse(path.read_text() if source is None else source)
    pkg_parts = path.relative_to(ROOT).parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.split(".")[0] == "skimplicit":
                    parts = node.module.split(".")[1:]
                else:
                    continue
            else:
                base = list(pkg_parts[: len(pkg_parts) - (node.level - 1)])
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # "from .. import x": x is the sub-package
                    parts = [a.name for a in node.names][:1]
            if parts:
                found.add(parts[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                bits = a.name.split(".")
                if bits[0] == "skimplicit" and len(bits) > 1:
                    found.add(bits[1])
    return found


def _modules():
    return sorted(p for p in ROOT.rglob("*.py") if _package(p) in LAYERS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    own = _package(path)
    for target in _imported_packages(path):
        if target == own or target not in LAYERS:
            continue
        assert LAYERS[target] < LAYERS[own], (
            f"{path.relative_to(ROOT)} (layer {own}, {LAYERS[own]}) imports {target} "
            f"(layer {LAYERS[target]}): imports must point down")


def test_every_subpackage_has_a_layer():
    subpackages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert subpackages <= set(LAYERS), subpackages - set(LAYERS)


@pytest.mark.parametrize("package", [p for p in LAYERS if p != "_blas"])
def test_each_subpackage_imports_alone_without_higher_ones(package):
    code = (
        "import sys, importlib\n"
        f"importlib.import_module('skimplicit.{package}')\n"
        "print(' '.join(sorted({m.split('.')[1] for m in sys.modules\n"
        "                       if m.startswith('skimplicit.') and m.count('.') >= 1})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    higher = [p for p in out if p in LAYERS and LAYERS[p] >= LAYERS[package] and p != package]
    assert not higher, f"importing skimplicit.{package} loads {higher}"


def test_upward_imports_are_seen():
    """The static check sees deferred, relative and absolute upward imports."""
    path = ROOT / "tuning" / "_outer.py"
    src = ("import numpy\n"
           "from . import _progress\n"
           "def f():\n"
           "    from ..linear_model import ImplicitLassoCV\n"
           "    import skimplicit.model_selection._search\n"
           "    from skimplicit.solvers import solve\n"
           "    from .. import decomposition\n")
    assert _imported_packages(path, src) == {"tuning", "linear_model", "model_selection",
                                             "solvers", "decomposition"}
