"""Load scenarios run for real: Locust headless against the embedded stack, a few seconds each.

Locust runs in child processes (``python -m pytest_wsconn.load``): importing it would
monkey-patch this process for gevent. Together these tests take about 40 s.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import unavailable

from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.usefixtures("user_env", "locust_installed")


@pytest.fixture(scope="module")
def locust_installed() -> None:
    """Locust is a test dependency: missing is a failure on CI, a skip elsewhere."""
    if importlib.util.find_spec("locust") is None:
        unavailable("Locust is not installed (pip install pytest-wsconn[load])")


RUN_TIMEOUT = 90.0  # seconds for one `wsconn load` run, start to summary (scaled)


def wsconn_load(out: Path, *argv: str) -> tuple[int, str, dict[str, Any]]:
    """Run `wsconn load` as a user does; its exit status, output and summary.json."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest_wsconn.load", *argv, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=scaled(RUN_TIMEOUT),
        check=False,
    )
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return done.returncode, done.stdout + done.stderr, summary


class TestScenarios:
    @pytest.mark.parametrize(
        ("scenario", "options", "steps"),
        [
            ("connect_storm", (), {"connect", "auth", "close"}),
            ("steady_messaging", ("--message-interval", "0.05"), {"connect", "auth", "message"}),
            ("idle_hold", ("--ping-interval", "0.5"), {"connect", "auth", "ping"}),
        ],
    )
    def test_scenario_runs_clean(
        self, tmp_path: Path, scenario: str, options: tuple[str, ...], steps: set[str]
    ) -> None:
        """A few seconds of the scenario: its request types, each with samples, none failed."""
        code, output, summary = wsconn_load(
            tmp_path, scenario, "--users", "4", "--duration", "3", *options
        )
        assert code == 0, output
        assert steps <= set(summary["steps"]), output
        for name in steps:
            assert summary["steps"][name]["requests"] > 0, output
            assert summary["steps"][name]["p95_ms"] is not None
        assert summary["failure_count"] == 0, output
        assert (tmp_path / "report.html").is_file()
        assert (tmp_path / "locust_stats.csv").is_file()
        assert "thresholds: all met" in output

    def test_reconnect_storm_reports_failures_and_recovery(self, tmp_path: Path) -> None:
        """Two faults during the load: the failures they caused, and every user back after each."""
        code, output, summary = wsconn_load(
            tmp_path,
            "reconnect_storm",
            "--users",
            "8",
            "--duration",
            "7",
            "--storm-every",
            "3",
            "--storm-for",
            "0.5",
            "--backoff-max",
            "0.5",
        )
        assert code == 0, output
        recovery = summary["recovery"]
        assert [w["window"]["kind"] for w in recovery["windows"]] == ["down", "reset_peer"]
        assert recovery["failed_connections"] > 0, output
        assert all(w["affected"] > 0 for w in recovery["windows"]), output
        assert recovery["fully_recovered"], output
        assert recovery["unexpected"] == 0, output
        assert recovery["worst_recovery_s"] < 5
        assert "reconnect storm: 2 faults" in output
        assert summary["failures"], "the storm's failures are in Locust's failure table"
        assert all(f["error"].startswith("network: ") for f in summary["failures"])


class TestDistributed:
    def test_master_aggregates_two_workers(self, tmp_path: Path) -> None:
        """A master bound to 127.0.0.1 and 2 local workers: both report, the master sums them."""
        code, output, summary = wsconn_load(
            tmp_path,
            "steady_messaging",
            "--users", "4",
            "--duration", "3",
            "--workers", "2",
            "--message-interval", "0.05",
        )  # fmt: skip
        assert code == 0, output
        workers = summary["workers"]
        assert len(workers) == 2, output
        assert all(requests > 0 for requests in workers.values())
        assert summary["steps"]["message"]["requests"] >= max(workers.values())
        assert "2 workers" in output
        assert (tmp_path / "worker-1.log").is_file() and (tmp_path / "worker-2.log").is_file()


class TestThresholds:
    def test_breach_exits_non_zero_naming_the_threshold(self, tmp_path: Path) -> None:
        """A refused token: Locust's failure table reads "auth: HTTP 401", and the thresholds
        fail the run, each named."""
        code, output, summary = wsconn_load(
            tmp_path,
            "connect_storm",
            "--users", "2",
            "--duration", "2",
            "--token", "not-a-valid-token",
            "--max-failure-ratio", "0.1",
            "--max-p95-connect-ms", "10000",
        )  # fmt: skip
        assert code == 1, output
        assert "threshold failed: --max-failure-ratio 0.1" in output
        # Every connect was refused, so no handshake time exists to meet the p95 limit either.
        assert summary["failed_thresholds"] == ["--max-failure-ratio", "--max-p95-connect-ms"]
        assert "--max-p95-connect-ms 10000: no samples to check it against" in output
        (failure,) = summary["failures"]
        assert failure["step"] == "auth"
        assert failure["error"].startswith("auth: HTTP 401: the token was missing")

    def test_bad_threshold_is_a_usage_error(self, tmp_path: Path) -> None:
        """An impossible limit stops before any load, with exit status 2."""
        code, output, _ = wsconn_load(tmp_path, "connect_storm", "--max-failure-ratio", "2")
        assert code == 2
        assert "--max-failure-ratio 2.0: valid: a number from 0 to 1" in output


class TestPytestCoexistence:
    def test_locust_plugin_and_ours_in_one_run(self, pytester: pytest.Pytester) -> None:
        """Locust's pytest plugin (--host, `session`) and ours load together; asyncio tests are
        not monkey-patched, and `wsconn_load` runs a scenario against the session's stack."""
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        pytester.makepyfile(
            textwrap.dedent(
                """
                import gevent.monkey
                import pytest


                def test_both_plugins(request, wsconn_settings):
                    manager = request.config.pluginmanager
                    assert manager.hasplugin("locust") and manager.hasplugin("wsconn")
                    assert request.config.getoption("--host") == "http://127.0.0.1:9"
                    assert wsconn_settings.stack == "local"


                @pytest.mark.asyncio
                async def test_asyncio_is_not_patched(wsconn_connect):
                    assert not gevent.monkey.is_module_patched("socket")
                    conn = await wsconn_connect()
                    assert await conn.echo("hi", timeout=5) == "hi"


                @pytest.mark.wsconn_load(scenario="steady_messaging", users=3, duration=2)
                def test_load_inside_a_test(wsconn_load):
                    result = wsconn_load(message_interval=0.05, max_p95_rtt_ms=1000)
                    assert result.ok, result.output
                    assert result.steps["message"].requests > 10
                    assert result.failures == []
                """
            )
        )
        args = ("--host", "http://127.0.0.1:9")
        result = pytester.runpytest_subprocess(*args, "-v")
        result.assert_outcomes(passed=3)
        # Locust's `session` fixture is offered beside ours (using it imports Locust, which
        # monkey-patches that process for gevent: keep such tests apart from asyncio ones).
        fixtures = pytester.runpytest_subprocess(*args, "--fixtures")
        fixtures.stdout.fnmatch_lines(["session*", "*wsconn_load*", "*wsconn_stack*"])
