"""The dashboard: one self-contained HTML page whose charts carry exactly the history's figures."""

from __future__ import annotations

import html
import html.parser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from playwright.sync_api import sync_playwright

from pytest_wsconn.browser.page import CHROMIUM_ARGS
from pytest_wsconn.cli import main as wsconn
from pytest_wsconn.config import DEFAULT_CHROMIUM
from pytest_wsconn.history import store
from pytest_wsconn.history.dashboard import render
from pytest_wsconn.history.records import LoadRecord, LoadStep, RunRecord, TestRecord, percentiles
from pytest_wsconn.timing import scaled

Points = dict[str, list[dict[str, str]]]


def rec(test_id: str, outcome: str = "passed", **fields: object) -> TestRecord:
    return TestRecord(test_id, outcome, **fields)  # type: ignore[arg-type]


TIMELINE = """#7 ws://127.0.0.1:8080/ws?token=***
  +  0.000s connect
  +  0.006s opened in 6.0 ms
  +  0.300s closed abnormally (1006, no close frame)
  diagnosis: network <&> "quoted" 'lost'"""


def write_history(path: Path) -> list[RunRecord]:
    """Six pytest runs (steady, a flip, chaos faults survived and not, a run of skips, no
    handshakes) and a load run."""
    runs = [
        (rec("t.py::a", handshakes_ms=(3.0, 4.0)), rec("t.py::b", handshakes_ms=(5.5,))),
        (
            rec("t.py::a", "failed", categories=("network",), handshakes_ms=(9.25,)),
            rec("t.py::b", fault_kind="latency", fault="latency 200 ms", handshakes_ms=(7.0,)),
        ),
        (
            rec("t.py::a", fault_kind="down", fault="down at +0.1 s for 1 s", close_codes=(1006,)),
            rec("t.py::b", "error", fault_kind="latency", categories=("timeout", "network")),
            rec('t.py::<c>&"d"', "skipped"),
        ),
        (rec("t.py::a", "skipped"),),
        (rec("t.py::a", handshakes_ms=(2.0, 2.5, 3.5)), rec("t.py::b", handshakes_ms=(4.0,))),
        (
            rec(
                "t.py::a",
                "failed",
                duration=1.25,
                attempts=3,
                categories=("auth",),
                fault_kind="reset_peer",
                fault="reset_peer at +0.300 s",
                close_codes=(1008, 1006),
                handshakes_ms=(6.0,),
                timeline=TIMELINE,
            ),
            rec("t.py::b", fault_kind="down", handshakes_ms=(4.5,)),
        ),
    ]
    for i, tests in enumerate(runs):
        store.append(path, RunRecord(f"run-{i}", 1_700_000_000.0 + i, "h", "local", tests=tests))
        if i == 2:  # a load run between pytest runs: in its own table, in no chart
            steps = (LoadStep("connect", 4, 1, 1.0, p95_ms=2.0), LoadStep("message", 40, 0, 9.0))
            load = LoadRecord("steady_messaging", 4, 3.0, False, ("1 request failed",), steps)
            store.append(path, RunRecord("load", 1.0, "h", "local", kind="load", load=load))
    return store.read(path)


def expected(runs: list[RunRecord]) -> Points:
    """What each chart must carry, worked out from the history directly."""
    points: Points = {"health": [], "handshakes": [], "categories": [], "flaky": []}
    points.update({"last-failures": [], "chaos": []})
    pytest_runs = [run for run in runs if run.kind == "pytest"]
    for run in pytest_runs:
        counted = [t.outcome for t in run.tests if t.outcome != "skipped"]
        if counted:
            rate = counted.count("passed") / len(counted)
            points["health"].append({"run": str(run.id), "value": repr(rate)})
    for series in (0, 1):  # p50 of every run, then p95
        for run in pytest_runs:
            value = percentiles(run.handshakes_ms)[series]
            if value is not None:
                points["handshakes"].append(
                    {"run": str(run.id), "series": ("p50", "p95")[series], "value": repr(value)}
                )
    for category, count in (("auth", 1), ("network", 2), ("timeout", 1)):
        points["categories"].append({"category": category, "value": str(count)})
    # a: pass fail pass pass fail = 3 flips; b: pass pass error pass pass = 2 flips
    points["flaky"] = [{"test": "t.py::a", "flips": "3"}, {"test": "t.py::b", "flips": "2"}]
    points["last-failures"] = [{"test": "t.py::a", "outcome": "failed"}]
    for test, fault, survived, failed in (
        ("t.py::a", "down", 1, 0),
        ("t.py::a", "reset_peer", 0, 1),
        ("t.py::b", "down", 1, 0),
        ("t.py::b", "latency", 1, 1),
    ):
        points["chaos"].append(
            {"test": test, "fault": fault, "survived": str(survived), "failed": str(failed)}
        )
    points["loads"] = [
        {
            "run": "4",
            "scenario": "steady_messaging",
            "requests": "44",
            "failures": "1",
            "passed": "false",
        }
    ]
    return points


class DataPoints(html.parser.HTMLParser):
    """The data-* attributes of the page's points, bars, rows and cells, by chart."""

    def __init__(self) -> None:
        super().__init__()
        self.points: Points = {}
        self.chart: str | None = None
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self.urls += [v for k, v in found.items() if k in ("src", "href")]
        self.chart = found.get("data-chart", found.get("data-table", self.chart))
        data = {k[5:]: v for k, v in found.items() if k.startswith("data-") and k[5:] != "chart"}
        data.pop("table", None)
        if data and self.chart is not None:
            if tag == "circle" and self.chart == "health":
                data.pop("series")
            self.points.setdefault(self.chart, []).append(data)


def parsed(page: str) -> DataPoints:
    parser = DataPoints()
    parser.feed(page)
    return parser


class TestRender:
    def test_failures_show_their_timelines(self) -> None:
        """Each failure of the last run shows its stored timeline as text; one without says so."""
        tests = (
            rec("t::a", "failed", timeline=TIMELINE),
            rec("t::b", "error"),
            rec("t::c", timeline="not a failure"),
        )
        page = render([RunRecord("r", 0, "h", "local", tests=tests, id=1)], source="x", generated=0)
        table = page[page.index('data-table="last-failures"') : page.index('data-table="chaos"')]
        shown = html.unescape(table)
        assert shown.count('<pre class="timeline">') == 1 and TIMELINE in shown
        assert "not a failure" not in shown and "no connection" in shown

    def test_charts_carry_the_history(self, tmp_path: Path) -> None:
        """Every point, bar, row and cell is one of the history's figures, none missing."""
        runs = write_history(tmp_path / "h.sqlite")
        page = parsed(render(runs, source="h.sqlite", generated=0))
        assert {k: v for k, v in page.points.items() if v} == expected(runs)

    def test_self_contained(self, tmp_path: Path) -> None:
        """No script, no link, no src or href: nothing for the page to fetch."""
        page = parsed(render(write_history(tmp_path / "h.sqlite"), source="x", generated=0))
        assert not {"script", "link", "img", "iframe"} & set(page.tags)
        assert page.urls == []

    def test_empty_history(self) -> None:
        """A history without runs is a page that says so in every section."""
        page = render([], source="h.sqlite", generated=0)
        assert "0 run(s) in h.sqlite" in page and "<svg" not in page
        assert parsed(page).points == {}

    @given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5, unique=True))
    def test_any_test_id_is_shown_as_text(self, test_ids: list[str]) -> None:
        """Test ids are escaped: whatever they hold, they come back as themselves, no markup."""
        tests = tuple(rec(t, "failed", fault_kind="down") for t in test_ids)
        page = parsed(
            render([RunRecord("r", 0, "h", "local", tests=tests, id=1)], source="x", generated=0)
        )
        assert [p["test"] for p in page.points["last-failures"]] == test_ids
        assert sorted(p["test"] for p in page.points["chaos"]) == sorted(test_ids)
        assert set(page.tags) <= {
            "html",
            "head",
            "meta",
            "title",
            "style",
            "body",
            "h1",
            "h2",
            "p",
            "svg",
            "text",
            "line",
            "polyline",
            "circle",
            "rect",
            "table",
            "tr",
            "th",
            "td",
            "pre",
        }


class TestCli:
    def test_missing_history(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """No history: exit 2, the error and a hint saying what writes one, and no page."""
        out = tmp_path / "report.html"
        assert wsconn(["dashboard", "--history", str(tmp_path / "no.sqlite"), "-o", str(out)]) == 2
        error, hint = capsys.readouterr().err.strip().splitlines()
        assert error == f"wsconn dashboard: no history at {tmp_path / 'no.sqlite'}"
        assert hint == "  hint: a run with --wsconn-history PATH (or --wsconn-chaos) writes one"
        assert not out.exists()

    def test_unwritable_output(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An output in a folder that is not there: exit 2 naming the file."""
        write_history(tmp_path / "h.sqlite")
        out = tmp_path / "no" / "report.html"
        assert wsconn(["dashboard", "--history", str(tmp_path / "h.sqlite"), "-o", str(out)]) == 2
        assert f"cannot write {out}" in capsys.readouterr().err


COLLECT = """() => {
  const points = {};
  const marks = "[data-chart] [data-run], [data-chart] [data-category], " +
    "[data-table] [data-test], [data-table] [data-run]";
  for (const el of document.querySelectorAll(marks)) {
    const chart = el.closest("[data-chart], [data-table]");
    const name = chart.dataset.chart || chart.dataset.table;
    const data = {...el.dataset};
    if (name === "health") delete data.series;
    (points[name] = points[name] || []).push(data);
  }
  return points;
}"""


@pytest.mark.usefixtures("chromium_present")
class TestInChromium:
    def test_loads_offline_and_shows_the_history(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """In real Chromium the page loads with no console error and no request but its own,
        and its charts read back exactly the history's figures; a screenshot is kept."""
        runs = write_history(tmp_path / "h.sqlite")
        out = tmp_path / "report.html"
        assert wsconn(["dashboard", "--history", str(tmp_path / "h.sqlite"), "-o", str(out)]) == 0
        assert capsys.readouterr().out == f"wrote the dashboard of 7 run(s) to {out}\n"
        console: list[str] = []
        requests: list[str] = []
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=DEFAULT_CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 800, "height": 1000})
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                page.on("request", lambda r: requests.append(r.url))
                page.goto(out.as_uri(), wait_until="load", timeout=scaled(10) * 1000)
                points = page.evaluate(COLLECT)
                failure = page.locator('[data-table="last-failures"] tr[data-test="t.py::a"]')
                shown = failure.locator("pre.timeline")
                shown.scroll_into_view_if_needed(timeout=scaled(5) * 1000)
                timeline = (shown.is_visible(), shown.inner_text(timeout=scaled(5) * 1000))
                page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
            finally:
                browser.close()
        assert console == []
        assert requests == [out.as_uri()]
        assert points == expected(runs)
        assert timeline == (True, TIMELINE)  # the failure's timeline, shown as stored
        assert (tmp_path / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
