"""The saved output of ``benchmarks/bench_implicit_vs_unrolled.py`` says what it measured.

Its headline is like for like (the same inner solver on both sides), its last line is
that figure, its matched-accuracy tables give fresh-process totals and compile times next
to the warm medians, and it prints no path of the machine that ran it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "bench_implicit_vs_unrolled.txt"
LAST = re.compile(r"^implicit vs unrolled speedup \(same solver\): (\d+(?:\.\d+)?)$")


@pytest.fixture(scope="module")
def text():
    # The saved output is part of the repository (README and the Benchmarks page quote it).
    assert OUTPUT.exists(), f"{OUTPUT.name} is missing from docs/benchmarks"
    return OUTPUT.read_text()


def _tables(text):
    """``[(header cells, [row cells])]`` of the Markdown tables."""
    tables, lines = [], text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("| ") and lines[i + 1].startswith("| ---"):
            head = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip("|").split("|")])
            tables.append((head, rows))
    return tables


def test_last_line_is_the_same_solver_speedup(text):
    last = text.rstrip("\n").splitlines()[-1]
    m = LAST.match(last)
    assert m, last
    # The distillation's matched-accuracy table at eps = 1e-06: the implicit method with
    # the gradient-descent inner solver against unrolled gradient descent, warm.
    head, rows = next(t for t in _tables(text) if t[0][:2] == ["eps", "method"])
    j = head.index("speedup warm")
    row = next(r for r in rows if r[:2] == ["1e-06", "implicit, GD inner"])
    assert row[j] == f"{m.group(1)}x"


def test_matched_tables_have_fresh_and_compile_next_to_warm(text):
    matched = [t for t in _tables(text) if "speedup fresh" in t[0]]
    assert len(matched) == 2  # distillation, SVM
    for head, rows in matched:
        for col in ("warm ms (median)", "compile s", "fresh s", "speedup warm"):
            assert col in head
        for row in rows:
            if "not reached" in row or "finite differences" in " ".join(row):
                continue
            fresh, compile_s = float(row[head.index("fresh s")]), float(row[head.index("compile s")])
            assert 0 <= compile_s <= fresh
    # The Newton-CG variant stays, labelled as another solver.
    assert any("Newton-CG inner (other solver)" in r[1] for r in matched[0][1])


def test_headline_is_like_for_like(text):
    headline = next(ln for ln in text.splitlines() if ln.startswith("Headline"))
    assert "same gradient-descent inner solver" in headline
    assert "fresh process" in headline and "warm" in headline
    assert "implicit vs unrolled speedup:" not in text  # the old, mixed-solver last line


def test_no_machine_paths(text):
    assert not re.search(r"(^|[\s(='\"])/(home|work|tmp|root|Users|usr|opt|mnt|var)/", text,
                         re.M)
