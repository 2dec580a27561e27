"""The run history: trends (pure), the SQLite store, xdist workers writing at once, the CLI."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import Service

from pytest_wsconn.chaos import draw
from pytest_wsconn.cli import main as wsconn
from pytest_wsconn.exceptions import HistoryError
from pytest_wsconn.expect import CloseInfo, ConnectionAttempt, Outcome, timeline
from pytest_wsconn.history import store
from pytest_wsconn.history.loads import load_run
from pytest_wsconn.history.records import (
    LoadRecord,
    LoadStep,
    RunRecord,
    TestRecord,
    percentiles,
    record_test,
)
from pytest_wsconn.history.trends import (
    ROLLING,
    check,
    close_codes_over_time,
    flaky_tests,
    handshake_regression,
    new_categories,
    newly_failing,
    success_rate,
)
from pytest_wsconn.history.views import CSV_COLUMNS, run_line
from pytest_wsconn.load.summary import build_summary

outcomes = st.sampled_from(["passed", "failed", "error", "skipped"])


def run(*tests: TestRecord, uid: str = "r", started: float = 0.0) -> RunRecord:
    return RunRecord(uid, started, "host", "local", tests=tests)


def rec(test_id: str = "t", outcome: str = "passed", **fields: object) -> TestRecord:
    return TestRecord(test_id, outcome, **fields)  # type: ignore[arg-type]


def steady(*p95s: float) -> list[RunRecord]:
    """Runs whose one test opened one connection with each handshake time (ms)."""
    return [run(rec(handshakes_ms=(ms,)), uid=str(i)) for i, ms in enumerate(p95s)]


class TestTrends:
    @given(st.lists(outcomes, max_size=30))
    def test_success_rate_is_a_share_or_none(self, results: list[str]) -> None:
        """Success rate is passed over passed + failed + errors, None when nothing counted."""
        rate = success_rate(run(*(rec(str(i), o) for i, o in enumerate(results))))
        counted = [o for o in results if o != "skipped"]
        if not counted:
            assert rate is None
        else:
            assert rate == counted.count("passed") / len(counted)

    @given(st.lists(st.sampled_from(["passed", "failed"]), min_size=1, max_size=12))
    def test_flips_are_counted(self, results: list[str]) -> None:
        """A test is flaky with as many flips as its outcome changed; never flaky when steady."""
        runs = [run(rec("t", o), uid=str(i)) for i, o in enumerate(results)]
        flips = sum(a != b for a, b in itertools.pairwise(results))
        assert flaky_tests(runs, window=len(runs)) == ({"t": flips} if flips else {})

    @given(st.lists(st.floats(1, 1000), min_size=3, max_size=12), st.floats(0, 1))
    def test_no_regression_at_or_below_the_median(self, baseline: list[float], f: float) -> None:
        """A last run no slower than its baseline's median (the last ROLLING runs) is never a
        regression."""
        recent = sorted(baseline[-ROLLING:])
        latest = recent[0] + f * (recent[len(recent) // 2] - recent[0])
        assert handshake_regression(steady(*baseline, latest)) is None

    def test_a_slow_run_regresses(self) -> None:
        """p95 far above the rolling median ± MAD is a regression, saying by how much."""
        regression = handshake_regression(steady(10, 11, 10, 12, 10, 40))
        assert regression is not None
        assert regression.message == (
            "handshake p95 40.0 ms is above the last 5 runs' median 10.0 ms + 3 x 1.0 ms "
            "(limit 13.0 ms)"
        )

    def test_too_short_a_history_is_no_baseline(self) -> None:
        """Fewer than 3 earlier runs with handshakes decide nothing."""
        assert handshake_regression(steady(10, 10, 500)) is None

    def test_new_categories_and_newly_failing(self) -> None:
        """A failure category never seen before, and a test that passed last time and now fails."""
        runs = [
            run(rec("a"), rec("b", "failed", categories=("auth",))),
            run(rec("a", "failed", categories=("network", "auth")), rec("b", "failed")),
        ]
        assert new_categories(runs) == ["network"]
        assert newly_failing(runs) == ["a"]
        assert [r.kind for r in check(runs)] == ["new_category", "newly_failing"]
        assert check(runs[:1]) == []

    def test_close_codes_over_time(self) -> None:
        """Per run, how often each close code came."""
        runs = [run(rec(close_codes=(1000, 1000, 1011))), run(rec())]
        assert close_codes_over_time(runs) == [{1000: 2, 1011: 1}, {}]

    @given(st.lists(st.floats(0, 1e6), max_size=50))
    def test_percentiles_are_ordered_and_within_range(self, samples: list[float]) -> None:
        """p50 <= p95, both within the samples; None for none."""
        p50, p95 = percentiles(samples)
        if not samples:
            assert p50 is p95 is None
        else:
            assert p50 is not None and p95 is not None
            assert round(min(samples), 3) <= p50 <= p95 <= round(max(samples), 3)


RECORD = run(
    rec(
        "t.py::a",
        "failed",
        duration=1.5,
        attempts=2,
        categories=("network",),
        handshakes_ms=(3.25, 4.5),
        fault_kind="down",
        fault="down at +0.100 s for 1.000 s",
        close_codes=(1006,),
        worker="gw1",
        timeline="#1 ws://h/ws?token=***\n  +  0.000s connect\n  +  0.004s opened in 3.2 ms",
    ),
    rec("t.py::b"),
    uid="run-1",
    started=1_700_000_000.0,
)


LOAD = RunRecord(
    "load-1",
    1_700_000_100.0,
    "host",
    "local",
    kind="load",
    load=LoadRecord(
        "steady_messaging",
        4,
        3.0,
        False,
        ("1 of 120 requests failed",),
        (LoadStep("connect", 4, 0, 1.3, 2.5, 3.75, 4.0, 4.5), LoadStep("message", 116, 1, 38.6)),
    ),
)


def attempt(
    test_id: str, url: str = "ws://h/ws?token=***", *, opened: bool = True
) -> ConnectionAttempt:
    """An attempt of ``test_id`` that opened in 3 ms and was then closed abnormally, or that was
    refused."""
    if opened:
        made = ConnectionAttempt(url, 0.0, 10.0, Outcome.OPENED, 10.003, test_id=test_id)
        made.close = CloseInfo(1006, "", False, None, False, 10.5)
        return made
    return ConnectionAttempt(
        url,
        0.0,
        10.0,
        Outcome.REFUSED,
        10.001,
        error_type="OSError",
        error="refused",
        test_id=test_id,
    )


class TestRecordTest:
    def test_a_failing_test_keeps_its_timeline(self) -> None:
        """A failed or erroring test keeps the report's timeline over its own attempts only."""
        mine = [attempt("t::a"), attempt("t::a", opened=False)]
        attempts = [mine[0], attempt("t::b"), mine[1]]
        for outcome in ("failed", "error"):
            record = record_test("t::a", outcome, 1.0, attempts)
            assert record.timeline == timeline(mine)
            assert record.attempts == 2 and "#" + str(mine[1].id) in (record.timeline or "")

    @pytest.mark.parametrize("outcome", ["passed", "skipped"])
    def test_a_passing_test_keeps_none(self, outcome: str) -> None:
        """Only failures keep a timeline: a history of passing runs stays small."""
        assert record_test("t::a", outcome, 1.0, [attempt("t::a")]).timeline is None

    def test_a_failure_without_connections_keeps_none(self) -> None:
        """A failing test that attempted no connection has no timeline, as in its report."""
        assert record_test("t::a", "failed", 1.0, [attempt("t::b")]).timeline is None


def _append_many(path: str, worker: str, count: int) -> None:
    for i in range(count):
        tests = tuple(rec(f"{worker}-{i}-{n}", worker=worker) for n in range(5))
        store.append(Path(path), run(*tests, uid=f"run-{i}"))


class TestStore:
    def test_round_trip(self, tmp_path: Path) -> None:
        """What is appended reads back the same, with its row id."""
        path = tmp_path / "h.sqlite"
        store.append(path, RECORD)
        (read,) = store.read(path)
        assert read.id == 1
        assert read == RunRecord(**{**RECORD.__dict__, "id": 1})

    def test_load_run_round_trip(self, tmp_path: Path) -> None:
        """A load run reads back with its summary and steps, beside the pytest runs."""
        path = tmp_path / "h.sqlite"
        store.append(path, RECORD)
        store.append(path, LOAD)
        pytest_run, load = store.read(path)
        assert load == RunRecord(**{**LOAD.__dict__, "id": 2})
        assert pytest_run.load is None and load.tests == ()

    def test_a_schema_1_history_is_upgraded_in_place(self, tmp_path: Path) -> None:
        """A history written before load runs were kept keeps its runs and takes load runs."""
        path = tmp_path / "h.sqlite"
        with sqlite3.connect(path) as db:
            for statement in store.MIGRATIONS[0]:
                db.execute(statement)
            db.execute("PRAGMA user_version = 1")
            db.execute(
                "INSERT INTO runs (run_uid, started, host, stack) VALUES ('old', 1, 'h', 's')"
            )
        store.append(path, LOAD)
        assert [(r.run_uid, r.kind) for r in store.read(path)] == [
            ("old", "pytest"),
            ("load-1", "load"),
        ]
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == 3

    def test_a_schema_2_history_is_upgraded_in_place(self, tmp_path: Path) -> None:
        """A history written before timelines were kept keeps its tests (no timeline) and
        takes new tests with theirs."""
        path = tmp_path / "h.sqlite"
        with sqlite3.connect(path) as db:
            for statement in store.MIGRATIONS[0] + store.MIGRATIONS[1]:
                db.execute(statement)
            db.execute("PRAGMA user_version = 2")
            db.execute(
                "INSERT INTO runs (run_uid, started, host, stack) VALUES ('old', 1, 'h', 's')"
            )
            db.execute(
                "INSERT INTO tests (run_id, test_id, outcome, duration, attempts, categories, "
                "handshakes_ms, close_codes) VALUES (1, 't.py::a', 'failed', 0.5, 1, "
                "'[\"network\"]', '[2.5]', '[1006]')"
            )
        store.append(path, RECORD)
        old, new = store.read(path)
        assert old.tests == (
            rec(
                "t.py::a",
                "failed",
                duration=0.5,
                attempts=1,
                categories=("network",),
                handshakes_ms=(2.5,),
                close_codes=(1006,),
            ),
        )
        assert new == RunRecord(**{**RECORD.__dict__, "id": 2})
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == 3

    def test_schema_is_versioned(self, tmp_path: Path) -> None:
        """A new history is at the latest schema; one from a newer release is refused."""
        path = tmp_path / "h.sqlite"
        store.append(path, RECORD)
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
            db.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
        with pytest.raises(HistoryError, match="upgrade pytest-wsconn"):
            store.read(path)

    def test_missing_history_says_how_to_make_one(self, tmp_path: Path) -> None:
        """Reading a history that does not exist does not create it, and says what writes one."""
        with pytest.raises(HistoryError, match=r"(?s)no history at .*--wsconn-history"):
            store.read(tmp_path / "none.sqlite")
        assert not (tmp_path / "none.sqlite").exists()

    def test_two_processes_appending_at_once_lose_nothing(self, tmp_path: Path) -> None:
        """Two processes writing the same runs at once: every test of both lands, runs shared."""
        path = tmp_path / "h.sqlite"
        with concurrent.futures.ProcessPoolExecutor(2) as pool:
            jobs = [pool.submit(_append_many, str(path), worker, 40) for worker in ("gw0", "gw1")]
            for job in jobs:
                job.result(timeout=120)
        runs = store.read(path)
        assert sorted(r.run_uid for r in runs) == sorted(f"run-{i}" for i in range(40))
        assert all(sorted({t.worker for t in r.tests}) == ["gw0", "gw1"] for r in runs)
        assert sum(len(r.tests) for r in runs) == 2 * 40 * 5


XDIST_PROJECT = """
import pytest

pytestmark = pytest.mark.asyncio

@pytest.mark.wsconn_chaos(survives=["latency"])
@pytest.mark.parametrize("n", range(10))
async def test_echo(wsconn_connect, n):
    conn = await wsconn_connect()
    assert await conn.echo(f"m{n}", timeout=5) == f"m{n}"

@pytest.mark.parametrize("n", range(10))
def test_plain(n):
    assert n != 7
"""


@pytest.mark.usefixtures("user_env")
class TestPluginHistory:
    def test_two_xdist_workers_write_one_run_losing_nothing(
        self, pytester: pytest.Pytester
    ) -> None:
        """Under -n 2 and chaos, both workers append to one run: every test, its outcome, its
        worker, and the fault the controller's seed drew for it."""
        pytester.makepyfile(test_user=XDIST_PROJECT)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-n", "2", "--wsconn-chaos=11", "--wsconn-chaos-rounds=1"
        )
        result.assert_outcomes(passed=19, failed=1)
        (recorded,) = store.read(pytester.path / ".wsconn" / "history.sqlite")
        assert recorded.chaos_seed == 11
        tests = {t.test_id: t for t in recorded.tests}
        assert len(tests) == len(recorded.tests) == 20
        assert {t.worker for t in recorded.tests} == {"gw0", "gw1"}
        assert tests["test_user.py::test_plain[7]"].outcome == "failed"
        for n in range(10):
            echo = tests[f"test_user.py::test_echo[{n}]"]
            assert echo.outcome == "passed" and echo.attempts == 1 and len(echo.handshakes_ms) == 1
            drawn = draw(11, 0, echo.test_id, ["latency"])
            assert (echo.fault_kind, echo.fault) == ("latency", drawn.describe())
        assert tests["test_user.py::test_plain[0]"].fault is None

    def test_history_option_writes_where_asked(self, pytester: pytest.Pytester) -> None:
        """--wsconn-history PATH outside chaos mode appends there; each session is a run."""
        pytester.makepyfile(test_user="def test_a(): pass")
        for _ in range(2):
            result = pytester.runpytest_subprocess(
                "-p", "no:cacheprovider", "--wsconn-history=h/x.db"
            )
            result.assert_outcomes(passed=1)
        runs = store.read(pytester.path / "h" / "x.db")
        assert [[t.test_id for t in r.tests] for r in runs] == [["test_user.py::test_a"]] * 2
        assert runs[0].run_uid != runs[1].run_uid

    def test_a_failing_test_keeps_its_report_timeline(
        self, pytester: pytest.Pytester, reference_service: Service
    ) -> None:
        """A test that connected and then failed is stored with its connection timeline as its
        report shows it, token redacted, up to the close at teardown; the passing test with none."""
        pytester.makepyfile(
            test_user="""
            import pytest

            pytestmark = pytest.mark.asyncio

            async def test_fails(wsconn_connect):
                conn = await wsconn_connect()
                assert await conn.echo("x", timeout=5) == "y"

            async def test_passes(wsconn_connect):
                await wsconn_connect()
            """
        )
        url = f"{reference_service.url}?token={reference_service.token}"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", f"--wsconn-url={url}", "--wsconn-history=h.db"
        )
        result.assert_outcomes(passed=1, failed=1)
        (recorded,) = store.read(pytester.path / "h.db")
        failed, passed = recorded.tests
        assert (failed.outcome, passed.outcome, passed.timeline) == ("failed", "passed", None)
        assert failed.timeline is not None
        assert failed.timeline.startswith("#") and f"{reference_service.url}?token=***" in (
            failed.timeline
        )
        assert reference_service.token not in failed.timeline
        # The report's timeline was written when the test failed; the stored one goes on to
        # the close at teardown.
        lines = failed.timeline.splitlines()
        report = result.stdout.lines
        start = next(i for i, line in enumerate(report) if "wsconn connection timeline" in line)
        assert lines[:3] == report[start + 1 : start + 4]
        assert "was closed by us with 1000" in lines[3]

    def test_unwritable_history_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """A history whose folder is a file stops the run before any test, naming the option."""
        pytester.makepyfile(test_user="def test_a(): pass")
        pytester.path.joinpath("file").write_text("")
        result = pytester.runpytest_subprocess("--wsconn-history=file/h.sqlite")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            ["*--wsconn-history file/h.sqlite: file is a file, not a folder*"]
        )


class TestLoadRuns:
    def test_a_load_summary_becomes_a_load_run(self) -> None:
        """The summary's verdict, problems and per-step figures, and no tests."""
        summary = build_summary(
            scenario="connect_storm",
            users=2,
            duration_s=3,
            stats_csv="Type,Name,Request Count,Failure Count,Requests/s\nWS,connect,10,2,3.3\n",
            failures_csv="",
            result={"histograms": {}},
        )
        run = load_run(summary, run_uid="u", started=5.0, host="h", stack="local", target=None)
        assert run.kind == "load" and run.tests == ()
        assert run.load == LoadRecord(
            "connect_storm",
            2,
            3,
            False,
            tuple(summary.problems),
            (LoadStep("connect", 10, 2, 3.3, None, None, None, None),),
        )
        assert summary.problems

    def test_listed_with_its_figures(self) -> None:
        """``wsconn history`` shows a load run's scenario, requests, failures, p95s and verdict."""
        assert run_line(RunRecord(**{**LOAD.__dict__, "id": 3})) == (
            "#3 2023-11-14 22:15:00 UTC -@- local: load steady_messaging, 4 users, 3 s: "
            "120 requests, 1 failed; connect p95 3.8 ms; FAILED"
        )


class TestCli:
    @pytest.fixture
    def history(self, tmp_path: Path) -> Path:
        path = tmp_path / "h.sqlite"
        for i, ms in enumerate((10, 11, 10, 12, 10)):
            store.append(path, run(rec("t.py::a", handshakes_ms=(ms,)), uid=str(i), started=i))
        return path

    def test_lists_runs(self, history: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """One line per run: when, where, outcomes, success rate, handshake p95."""
        assert wsconn(["history", "--history", str(history)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == (
            "#1 1970-01-01 00:00:00 UTC -@- local: 1 passed; 100.0% passed; handshake p95 10.0 ms"
        )
        assert len(lines) == 5

    @pytest.mark.parametrize("fmt", ["csv", "json"])
    def test_exports(self, history: Path, tmp_path: Path, fmt: str) -> None:
        """Every test of every run, as CSV rows or JSON runs, to a file."""
        out = tmp_path / f"out.{fmt}"
        assert wsconn(["history", "--history", str(history), "--export", fmt, "-o", str(out)]) == 0
        text = out.read_text()
        if fmt == "csv":
            rows = text.splitlines()
            assert rows[0].split(",") == list(CSV_COLUMNS) and len(rows) == 6
        else:
            assert [r["tests"][0]["handshakes_ms"] for r in json.loads(text)] == [
                [10],
                [11],
                [10],
                [12],
                [10],
            ]

    def test_check_passes_then_fails_on_a_regression(
        self, history: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--check exits 0 on a steady run, 1 with the reason on a slow one or a new failure."""
        assert wsconn(["history", "--history", str(history), "--check"]) == 0
        assert "run #5: no regression against 4 earlier run(s)" in capsys.readouterr().out
        slow = run(rec("t.py::a", "failed", handshakes_ms=(50,), categories=("network",)), uid="x")
        store.append(history, slow)
        assert wsconn(["history", "--history", str(history), "--check"]) == 1
        assert capsys.readouterr().out.splitlines() == [
            "regression in run #6: handshake p95 50.0 ms is above the last 5 runs' median "
            "10.0 ms + 3 x 1.0 ms (limit 13.0 ms)",
            "regression in run #6: new failure category 'network'",
            "regression in run #6: t.py::a failed; it passed in the run before",
        ]

    def test_check_skips_load_runs(self, history: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A load run last in the history is not what --check compares: the last pytest run is."""
        store.append(history, LOAD)
        assert wsconn(["history", "--history", str(history), "--check"]) == 0
        assert "run #5: no regression against 4 earlier run(s)" in capsys.readouterr().out

    def test_missing_history(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A history that is not there: exit 2 and what writes one."""
        assert wsconn(["history", "--history", str(tmp_path / "no.sqlite")]) == 2
        assert "no history at" in capsys.readouterr().err
