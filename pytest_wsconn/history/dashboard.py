"""The run history as one self-contained HTML page (``wsconn dashboard``). Pure: runs in, HTML out.

No script, no stylesheet or font from anywhere, no network: the charts are inline SVG and a
Content-Security-Policy forbids the page any request. Every point, bar and cell carries its
figure in ``data-*`` attributes (floats as Python's round-trip ``repr``), so a test — or a user's
own tooling — reads back exactly what was drawn:

health       ``circle[data-run][data-value]``: success rate per pytest run
handshakes   ``circle[data-run][data-series=p50|p95][data-value]``: handshake ms per pytest run
categories   ``rect[data-category][data-value]``: test records with that failure category
flaky        ``tr[data-test][data-flips]``: outcome flips in the last runs
last-failures ``tr[data-test][data-outcome]``: the last pytest run's failed tests, each with
             its connection timeline in ``pre.timeline``
chaos        ``td[data-test][data-fault][data-survived][data-failed]``: fault x test
loads        ``tr[data-run][data-scenario][data-requests][data-failures][data-passed]``
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections import Counter
from collections.abc import Iterable, Sequence

from pytest_wsconn.history.records import FAILING, PASSED, RunRecord, percentiles
from pytest_wsconn.history.trends import flaky_tests, run_p95, success_rate
from pytest_wsconn.history.views import load_line

WIDTH, HEIGHT, PAD = 640, 200, 36  # chart size and the margin kept for axis labels
CSP = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
svg { background: #fafafa; border: 1px solid #ddd; }
svg text { font-size: 11px; fill: #555; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
td.survived { background: #d7f5dd; } td.failed { background: #f8d4d4; }
td.mixed { background: #fbeec8; } .empty { color: #888; }
pre.timeline { margin: 0; font-size: 12px; white-space: pre-wrap; }
"""
SERIES_COLOURS = {"health": "#2a7d3f", "p50": "#3465a4", "p95": "#c4472a"}


@dataclasses.dataclass(frozen=True)
class ChaosCell:
    """How often a test survived (passed) and failed under one fault kind."""

    survived: int = 0
    failed: int = 0


@dataclasses.dataclass(frozen=True)
class Figures:
    """Everything the dashboard draws, computed from the runs (oldest first)."""

    health: tuple[tuple[int, float], ...]  # (run id, success rate)
    p50: tuple[tuple[int, float], ...]  # (run id, handshake p50 ms)
    p95: tuple[tuple[int, float], ...]
    categories: dict[str, int]
    flaky: dict[str, int]
    last_run: RunRecord | None
    chaos: dict[tuple[str, str], ChaosCell]  # (test id, fault kind) -> cell


def _run_id(run: RunRecord, index: int) -> int:
    return run.id if run.id is not None else index + 1


def chaos_matrix(runs: Iterable[RunRecord]) -> dict[tuple[str, str], ChaosCell]:
    """(test id, fault kind) -> how often that test passed and failed under that fault."""
    counts: Counter[tuple[str, str, bool]] = Counter()
    for run in runs:
        for test in run.tests:
            if test.fault_kind is not None and (test.outcome == PASSED or test.outcome in FAILING):
                counts[test.test_id, test.fault_kind, test.outcome == PASSED] += 1
    keys = sorted({(test_id, kind) for test_id, kind, _ in counts})
    return {key: ChaosCell(counts[(*key, True)], counts[(*key, False)]) for key in keys}


def figures(runs: Sequence[RunRecord]) -> Figures:
    """The dashboard's figures over the pytest runs of a history (load runs are not tests)."""
    tests = [(i, run) for i, run in enumerate(runs) if run.kind == "pytest"]
    health = tuple((_run_id(r, i), rate) for i, r in tests if (rate := success_rate(r)) is not None)
    p50 = tuple(
        (_run_id(r, i), p) for i, r in tests if (p := percentiles(r.handshakes_ms)[0]) is not None
    )
    p95 = tuple((_run_id(r, i), p) for i, r in tests if (p := run_p95(r)) is not None)
    categories = Counter(c for _, r in tests for t in r.tests for c in t.categories)
    pytest_runs = [r for _, r in tests]
    return Figures(
        health,
        p50,
        p95,
        dict(sorted(categories.items())),
        flaky_tests(pytest_runs),
        pytest_runs[-1] if pytest_runs else None,
        chaos_matrix(pytest_runs),
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _scale(value: float, top: float, size: int) -> float:
    """A value's distance along an axis of ``size`` px that runs from 0 to ``top``."""
    return 0.0 if top <= 0 else round(value / top * size, 2)


def _x(position: int, count: int) -> float:
    """The x of the ``position``-th of ``count`` points, spread over the plot."""
    inner = WIDTH - 2 * PAD
    return PAD + (inner / 2 if count == 1 else round(position * inner / (count - 1), 2))


def line_chart(
    name: str, series: dict[str, tuple[tuple[int, float], ...]], top: float, unit: str
) -> str:
    """One SVG of points per run (x: runs in order, y: 0..top), a polyline per series."""
    runs = sorted({run for points in series.values() for run, _ in points})
    if not runs:
        return f'<p class="empty" data-chart="{name}">no data yet</p>'
    place = {run: _x(i, len(runs)) for i, run in enumerate(runs)}
    inner = HEIGHT - 2 * PAD
    parts = [
        f'<svg data-chart="{name}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="2" y="{PAD}">{_e(f"{top:g}")}{_e(unit)}</text>',
        f'<text x="2" y="{HEIGHT - PAD}">0</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>',
    ]
    for run in (runs[0], runs[-1]):
        parts.append(f'<text x="{place[run] - 6}" y="{HEIGHT - PAD + 16}">#{run}</text>')
    for label, points in series.items():
        colour = SERIES_COLOURS.get(label, SERIES_COLOURS["health"])
        coords = [(place[run], HEIGHT - PAD - _scale(value, top, inner)) for run, value in points]
        path = " ".join(f"{x},{y}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        for (run, value), (x, y) in zip(points, coords, strict=True):
            parts.append(
                f'<circle data-run="{run}" data-series="{label}" data-value="{value!r}" '
                f'cx="{x}" cy="{y}" r="3" fill="{colour}">'
                f"<title>run #{run} {label}: {value:.3g}{_e(unit)}</title></circle>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(name: str, bars: dict[str, int]) -> str:
    """One SVG of horizontal bars, one per label, with its count."""
    if not bars:
        return f'<p class="empty" data-chart="{name}">none</p>'
    row, label_width = 22, 160
    height = row * len(bars) + 8
    top = max(bars.values())
    parts = [
        f'<svg data-chart="{name}" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, count) in enumerate(bars.items()):
        y = 4 + i * row
        width = _scale(count, top, WIDTH - label_width - 60)
        parts += [
            f'<text x="4" y="{y + 14}">{_e(label)}</text>',
            f'<rect data-category="{_e(label)}" data-value="{count}" x="{label_width}" '
            f'y="{y}" width="{width}" height="{row - 6}" fill="#c4472a">'
            f"<title>{_e(label)}: {count}</title></rect>",
            f'<text x="{label_width + width + 6}" y="{y + 14}">{count}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def _table(name: str, header: Sequence[str], rows: Sequence[str], empty: str) -> str:
    if not rows:
        return f'<p class="empty" data-table="{name}">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f'<table data-table="{name}"><tr>{head}</tr>\n' + "\n".join(rows) + "\n</table>"


def flaky_table(flaky: dict[str, int]) -> str:
    rows = [
        f'<tr data-test="{_e(test_id)}" data-flips="{flips}"><td>{_e(test_id)}</td>'
        f"<td>{flips}</td></tr>"
        for test_id, flips in flaky.items()
    ]
    return _table("flaky", ("test", "outcome flips"), rows, "no test flipped")


def _timeline_cell(timeline: str | None) -> str:
    if timeline is None:
        return '<td class="empty">no connection</td>'
    return f'<td><pre class="timeline">{_e(timeline)}</pre></td>'


def failures_table(run: RunRecord | None) -> str:
    """The last run's failed tests: what went wrong, the fault and its timing, close codes, and
    the test's connection timeline."""
    failed = [t for t in run.tests if t.outcome in FAILING] if run is not None else []
    rows = [
        f'<tr data-test="{_e(t.test_id)}" data-outcome="{_e(t.outcome)}">'
        f"<td>{_e(t.test_id)}</td><td>{_e(t.outcome)}</td><td>{t.duration:.3f} s</td>"
        f"<td>{t.attempts}</td><td>{_e(' '.join(t.categories) or '-')}</td>"
        f"<td>{_e(t.fault or '-')}</td><td>{_e(' '.join(map(str, t.close_codes)) or '-')}</td>"
        f"{_timeline_cell(t.timeline)}</tr>"
        for t in failed
    ]
    header = (
        "test",
        "outcome",
        "duration",
        "attempts",
        "categories",
        "fault",
        "close codes",
        "connection timeline",
    )
    return _table("last-failures", header, rows, "no failure in the last run")


def chaos_table(matrix: dict[tuple[str, str], ChaosCell]) -> str:
    """Rows: tests; columns: fault kinds; a cell: survived / failed counts."""
    kinds = sorted({kind for _, kind in matrix})
    tests = sorted({test_id for test_id, _ in matrix})
    rows = []
    for test_id in tests:
        cells = [f"<td>{_e(test_id)}</td>"]
        for kind in kinds:
            cell = matrix.get((test_id, kind))
            if cell is None:
                cells.append("<td></td>")
                continue
            verdict = (
                "mixed"
                if cell.survived and cell.failed
                else ("failed" if cell.failed else "survived")
            )
            cells.append(
                f'<td class="{verdict}" data-test="{_e(test_id)}" data-fault="{_e(kind)}" '
                f'data-survived="{cell.survived}" data-failed="{cell.failed}">'
                f"{cell.survived} survived / {cell.failed} failed</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table("chaos", ("test", *kinds), rows, "no test ran under a fault")


def loads_table(runs: Sequence[RunRecord]) -> str:
    """One row per load run (``wsconn load --history``): its summary line and verdict."""
    rows = []
    for i, run in enumerate(runs):
        if run.load is None:
            continue
        load = run.load
        rows.append(
            f'<tr data-run="{_run_id(run, i)}" data-scenario="{_e(load.scenario)}" '
            f'data-requests="{sum(s.requests for s in load.steps)}" '
            f'data-failures="{sum(s.failures for s in load.steps)}" '
            f'data-passed="{str(load.passed).lower()}"><td>#{_run_id(run, i)}</td>'
            f"<td>{_e(load_line(load))}</td><td>{_e('; '.join(load.problems) or '-')}</td></tr>"
        )
    return _table("loads", ("run", "summary", "why it failed"), rows, "no load run")


def render(runs: Sequence[RunRecord], *, source: str, generated: float) -> str:
    """The dashboard page for ``runs`` (oldest first), read from ``source``."""
    data = figures(runs)
    top_ms = max((v for _, v in data.p95 + data.p50), default=0.0)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(generated))
    last = data.last_run
    last_title = f"run #{last.id}" if last is not None and last.id is not None else "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>pytest-wsconn dashboard</title><style>{STYLE}</style></head>
<body>
<h1>WebSocket connection health</h1>
<p>{len(runs)} run(s) in {_e(source)}; generated {when}.</p>
<h2>Health over time (share of tests passed per run)</h2>
{line_chart("health", {"health": data.health}, 1.0, "")}
<h2>Handshake percentiles per run (p50 blue, p95 red)</h2>
{line_chart("handshakes", {"p50": data.p50, "p95": data.p95}, top_ms, " ms")}
<h2>Failures by category (tests that saw one)</h2>
{bar_chart("categories", data.categories)}
<h2>Flaky tests (outcome flips, last runs)</h2>
{flaky_table(data.flaky)}
<h2>Failures of the last run ({_e(last_title)})</h2>
{failures_table(last)}
<h2>Chaos matrix (fault x test)</h2>
{chaos_table(data.chaos)}
<h2>Load runs</h2>
{loads_table(runs)}
</body></html>
"""
