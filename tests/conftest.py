"""Shared pytest fixtures, and the counts of ``tests/compat``.

JAX defaults to float32. Tests that need float64 request the ``x64`` fixture, which enables
it for the duration of the test only (``with jax.enable_x64(True):``); nothing flips the
global configuration::

    pytestmark = pytest.mark.usefixtures("x64")      # a whole module

    @pytest.mark.usefixtures("x64")                   # one test
    def test_something(): ...
"""

from collections import defaultdict

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test with 64-bit JAX types enabled (scoped, restored afterwards)."""
    with jax.enable_x64(True):
        yield


# tests/compat: every ``tests/compat/test_compat_*.py`` module runs scikit-learn's own tests
# of a twin with ours swapped in; the terminal summary prints, per module, how many of its
# selected items pass, how many are on its categorized list of expected differences (strict
# xfails) and the share that passes. (Kept here, not in tests/compat/conftest.py: a second
# top-level-named ``conftest`` module collides with this one under --doctest-modules.)
@pytest.fixture
def global_random_seed():
    """scikit-learn's default seed (``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` unset)."""
    return 42


_COUNTS = defaultdict(lambda: defaultdict(int))


def _module_of(nodeid):
    path = nodeid.split("::", 1)[0]
    name = path.rsplit("/", 1)[-1]
    return name if name.startswith("test_compat_") and "::test_sklearn" in nodeid else None


def pytest_runtest_logreport(report):
    mod = _module_of(report.nodeid)
    if mod is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        else:
            outcome = report.outcome
        _COUNTS[mod][outcome] += 1
        _COUNTS[mod]["selected"] += 1


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS:
        return
    tr = terminalreporter
    tr.section("scikit-learn's own tests with ours swapped in")
    for mod, c in sorted(_COUNTS.items()):
        sel, run = c["selected"], c["selected"] - c["skipped"]
        tr.write_line(
            f"{mod}: {c['passed']} passed / {c['xfailed']} listed (expected differences) / "
            f"{run} run -> {100.0 * c['passed'] / max(run, 1):.1f} % passed"
            + (f"; FAILED {c['failed']}" if c["failed"] else "")
            + (f"; XPASS {c['xpassed']}" if c["xpassed"] else "")
            + (f"; {sel} selected, {c['skipped']} skipped by scikit-learn's own tests "
               "(not applicable here, e.g. gcv_mode='svd' with sparse X, array API "
               "libraries not installed)" if c["skipped"] else f"; {sel} selected")
        )
