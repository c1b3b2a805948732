"""Benchmarks page parts: the printed benchmark outputs as tables, and time vs CV loss.

The ``benchmarks/*.py`` scripts print a header (title, date, machine, versions), Markdown
tables and a one-line summary. Save each output as ``docs/benchmarks/<script>.txt`` (or
``.md``), e.g.::

    python benchmarks/bench_regression.py | tee docs/benchmarks/bench_regression.txt

The documentation build (``conf.py``) then calls :func:`write_benchmark_page_parts`, which
writes two reStructuredText fragments that ``benchmarks.rst`` includes:

* ``benchmark_tables.rst.inc``: every saved output, its tables as tables, its other
  lines as text (date and machine are in the header the script printed);
* ``benchmark_figure.rst.inc``: a figure of fit time against CV loss, one panel per
  dataset, skimplicit's tuners next to scikit-learn's, drawn from every table that has
  a method column, a time column and a CV-loss column. Panels are per script and data
  set (its ``data`` / ``case`` column): losses are compared within one data set only.

With no saved output, both fragments say so: no number is ever made up. Run by hand::

    python docs/make_benchmark_figure.py [IN_DIR [OUT_PNG]]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FIGURE_NAME = "benchmark_time_vs_cv_loss.png"

# Column names the benchmark scripts use (case-insensitive).
_METHOD = re.compile(r"^(method|estimator|tuner)$", re.I)
_GROUP = re.compile(r"^(data|dataset|problem|case)$", re.I)
_TIME = [re.compile(p, re.I) for p in (r"^fresh", r"^(fit|wall|total|end-to-end)\b.*\bs\b",
                                       r"^time\b", r"\bs$")]
_LOSS = re.compile(r"^(cv|val|validation)\b.*\b(mse|loss|log[ -]?loss|error)\b", re.I)
_OURS = re.compile(r"implicit|hypergrad|skimplicit", re.I)


# -- Parsing the printed output -----------------------------------------------------------
def _cells(line):
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def _is_rule(line):
    return bool(re.fullmatch(r"\s*\|?(\s*:?-{3,}:?\s*\|)*\s*:?-{3,}:?\s*\|?\s*", line))


def parse_output(text):
    """Blocks of a printed output: ``("title", s)``, ``("text", s)``, ``("pre", s)`` (lines
    in space-aligned columns) and ``("table", head, rows)``."""
    blocks, para, lines = [], [], text.splitlines()
    i = 0

    def flush():
        if para:
            # Columns aligned by spaces (a fixed-width table): kept as preformatted text.
            if any(re.search(r"\S {3,}\S", ln) for ln in para):
                blocks.append(("pre", "\n".join(para)))
            else:
                blocks.append(("text", " ".join(ln.strip() for ln in para)))
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _is_rule(lines[i + 1]):
            flush()
            head = _cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                row = _cells(lines[i])
                rows.append((row + [""] * len(head))[: len(head)])
                i += 1
            blocks.append(("table", head, rows))
            continue
        if line.startswith("#"):
            flush()
            blocks.append(("title", line.lstrip("#").strip()))
        elif line.strip():
            para.append(line.rstrip())
        else:
            flush()
        i += 1
    flush()
    return blocks


def _number(cell):
    m = re.match(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", cell)
    return float(m.group(1)) if m else None


def _find(head, patterns):
    for pat in patterns:
        for j, h in enumerate(head):
            if pat.search(h):
                return j
    return None


def collect_points(outputs):
    """``{panel title: [(method, seconds, cv loss, is_ours), ...]}`` from parsed outputs.

    ``outputs`` maps a file name to its parsed blocks. A table contributes when it has a
    method column, a time column and a CV-loss column; panels are per file and dataset.
    """
    panels = {}
    for fname, blocks in outputs.items():
        for block in blocks:
            if block[0] != "table":
                continue
            _, head, rows = block
            jm = _find(head, [_METHOD])
            jt = _find(head, _TIME)
            jl = _find(head, [_LOSS])
            if jm is None or jt is None or jl is None or jt == jl:
                continue
            jg = _find(head, [_GROUP])
            for row in rows:
                t, loss = _number(row[jt]), _number(row[jl])
                if t is None or loss is None or t <= 0:
                    continue
                group = row[jg] if jg is not None else ""
                title = f"{Path(fname).stem}: {group}" if group else Path(fname).stem
                panels.setdefault(title, []).append(
                    (row[jm], t, loss, bool(_OURS.search(row[jm])), head[jt], head[jl]))
    return panels


def draw_figure(panels, out_png):
    """One panel per dataset: time (log scale) vs CV loss above the panel's best (%)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    n = len(panels)
    fig, axes = plt.subplots(n, 1, figsize=(7.5, 3.4 * n), squeeze=False)
    for ax, (title, pts) in zip(axes[:, 0], panels.items()):
        best = min(p[2] for p in pts)
        excess = [100.0 * (p[2] / best - 1.0) for p in pts]
        for ours, marker, color, label in ((True, "o", "C0", "skimplicit"),
                                           (False, "s", "C1", "scikit-learn")):
            idx = [i for i, p in enumerate(pts) if p[3] == ours]
            if not idx:
                continue
            ax.scatter([pts[i][1] for i in idx], [excess[i] for i in idx], marker=marker,
                       s=60, color=color, label=label, zorder=3)
        # Labels above and below in turn (left to right), so that close points stay legible.
        for k, i in enumerate(sorted(range(len(pts)), key=lambda i: pts[i][1])):
            ax.annotate(pts[i][0], (pts[i][1], excess[i]), textcoords="offset points",
                        xytext=(6, 6) if k % 2 == 0 else (6, -13), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        lo, hi = min(p[1] for p in pts), max(p[1] for p in pts)
        ax.set_xlim(lo / 2, hi * 5)
        top = max(excess)
        ax.set_ylim(-0.22 * top - 1e-3, 1.25 * top + 1e-3)
        ax.set_xlabel(f"{pts[0][4]}: seconds, log scale")
        ax.set_ylabel(f"{pts[0][5]} above best (%)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    # The title 0.3 inch below the top, the panels from 0.7 inch down (they overlapped).
    height = 3.4 * n
    fig.suptitle("Time to tune vs cross-validated loss (lower left is better)", fontsize=11,
                 y=1 - 0.3 / height)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.7 / height))
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


# -- reStructuredText fragments -----------------------------------------------------------
def _escape(text):
    """Plain text as inline reStructuredText (no markup, no targets, no lists)."""
    text = re.sub(r"([\\`*_|\[\]<>])", r"\\\1", text)
    return "\\ " + text if text else "\\ "


def _table_rst(head, rows):
    out = [".. list-table::", "   :header-rows: 1", "   :class: skimplicit-bench", ""]
    for row in [head] + rows:
        out.append("   * - " + _escape(row[0]))
        out += ["     - " + _escape(c) for c in row[1:]]
    return out + [""]


def _outputs(in_dir):
    in_dir = Path(in_dir)
    files = sorted(p for p in in_dir.glob("*") if p.suffix in (".md", ".txt")
                   and p.is_file() and not p.name.lower().startswith("readme"))
    return {p.name: parse_output(p.read_text(encoding="utf-8")) for p in files}


def write_benchmark_page_parts(in_dir, out_dir):
    """Write ``benchmark_tables.rst.inc`` and ``benchmark_figure.rst.inc`` into ``out_dir``.

    Returns ``{"files": [...], "panels": [...], "figure": path or None}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = _outputs(in_dir)
    rel = Path(in_dir).name

    tables = []
    if not outputs:
        tables = [".. note::", "",
                  f"   No benchmark output was saved in ``docs/{rel}/`` when this page was "
                  "built, so there are no tables here. Run the ``benchmarks/`` scripts and "
                  f"save what they print as ``docs/{rel}/<script>.txt``.", ""]
    for fname, blocks in outputs.items():
        title = next((b[1] for b in blocks if b[0] == "title"), Path(fname).stem)
        tables += [_escape(title).removeprefix("\\ "), "~" * (len(_escape(title)) + 4), ""]
        tables += [f"Printed output of the script, saved as :download:`{fname} <{rel}/{fname}>`.",
                   ""]
        first_title = True
        for block in blocks:
            if block[0] == "title":
                if first_title:
                    first_title = False
                    continue
                tables += ["**" + _escape(block[1]).removeprefix("\\ ") + "**", ""]
            elif block[0] == "text":
                tables += [_escape(block[1]), ""]
            elif block[0] == "pre":
                tables += ["::", ""] + ["    " + ln for ln in block[1].splitlines()] + [""]
            else:
                tables += _table_rst(block[1], block[2])
    (out_dir / "benchmark_tables.rst.inc").write_text("\n".join(tables) + "\n")

    panels = collect_points(outputs)
    png = out_dir / FIGURE_NAME
    if panels:
        draw_figure(panels, png)
        fig = [f".. figure:: /_generated/{FIGURE_NAME}", "   :alt: fit time vs CV loss",
               "   :width: 100%", "",
               "   Fit time (fresh process, JIT compilation included) against the "
               "cross-validated loss at the chosen hyperparameters, as a percentage above "
               "the best method of each panel, drawn from the tables below ("
               + ", ".join(f"``{f}``" for f in outputs) + ").", ""]
    else:
        if png.exists():
            png.unlink()
        why = ("no benchmark output was saved" if not outputs else
               "none of the saved tables has a method, a time and a CV-loss column")
        fig = [".. note::", "",
               f"   No figure: {why} in ``docs/{rel}/`` when this page was built.", ""]
    (out_dir / "benchmark_figure.rst.inc").write_text("\n".join(fig) + "\n")
    return {"files": list(outputs), "panels": list(panels),
            "figure": str(png) if panels else None}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    here = Path(__file__).resolve().parent
    in_dir = Path(argv[0]) if argv else here / "benchmarks"
    out_png = Path(argv[1]) if len(argv) > 1 else here / "_generated" / FIGURE_NAME
    panels = collect_points(_outputs(in_dir))
    if not panels:
        print(f"no benchmark table with method, time and CV-loss columns in {in_dir}")
        return 1
    draw_figure(panels, out_png)
    print(f"wrote {out_png} ({len(panels)} panels: {', '.join(panels)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
