"""Load scenarios run for real: Locust headless against the embedded stack, a few seconds each.

Locust runs in child processes (``python -m pytest_wsconn.load``): importing it would
monkey-patch this process for gevent. Together these tests take about 80 s.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import Service
from websockets.utils import accept_key

from pytest_wsconn.history import store
from pytest_wsconn.history.records import RunRecord
from pytest_wsconn.load.fixture import run_load
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.usefixtures("user_env", "locust_installed")


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
        assert "verdict: passed: no request failed" in output
        assert summary["passed"] and summary["connections_opened"] > 0
        assert_locust_counted_every_sample(tmp_path, summary)

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
        assert summary["counted_failures"] == 0
        assert "verdict: passed: " in output and "failed requests, all inside the faults" in output
        assert recovery["worst_recovery_s"] < 5
        assert "reconnect storm: 2 faults" in output
        assert summary["failures"], "the storm's failures are in Locust's failure table"
        assert all(f["error"].startswith("network: ") for f in summary["failures"])


def assert_locust_counted_every_sample(out: Path, summary: dict[str, Any]) -> None:
    """Successful steps reach Locust's stats in batches: at the end of the run its CSV counts
    (the summary's requests) hold every sample our histograms hold, no more, no fewer."""
    histograms = json.loads((out / "wsconn.json").read_text())["histograms"]
    for name, step in summary["steps"].items():
        counted = histograms.get(name, {}).get("count", 0)  # none: the step never succeeded
        assert counted == step["requests"] - step["failures"], name


def failed_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("wsconn load: FAILED: ")]


class UpgradeThenSilence:
    """A TCP server that answers every WebSocket upgrade, then reads nothing and sends nothing
    (the connections stay open until the server closes): ``with`` gives its ws:// URL."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/ws"

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in [*self._held, self._listener]:
            sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                request += chunk
            key = re.search(rb"(?i)sec-websocket-key: *(\S+)", request)
            if key is not None:
                sock.sendall(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                    + accept_key(key.group(1).decode()).encode()
                    + b"\r\n\r\n"
                )
            self._held.append(sock)


class TestExitStatus:
    @pytest.mark.parametrize(
        ("target", "error"),
        [
            ("nothing listening", "network: Connection refused"),
            ("wrong token", "auth: HTTP 401: the token was missing"),
        ],
    )
    def test_no_connection_ever_opened_exits_1(
        self, tmp_path: Path, closed_port_url: str, target: str, error: str
    ) -> None:
        """Every request failed: exit 1 with one line saying no connection opened, even with
        --max-failure-ratio 1 (it once printed "thresholds: all met" and exited 0)."""
        where = ("--host", closed_port_url) if target == "nothing listening" else ("--token", "bad")
        code, output, summary = wsconn_load(
            tmp_path, "connect_storm", "--users", "2", "--duration", "2",
            "--max-failure-ratio", "1", *where,
        )  # fmt: skip
        assert code == 1, output
        (line,) = failed_lines(output)
        assert re.fullmatch(
            rf"wsconn load: FAILED: no connection ever opened: (\d+) of \1 requests failed, "
            rf"most often {error}.*",
            line,
        ), output
        assert summary["passed"] is False and summary["connections_opened"] == 0
        assert "all met" not in output

    def test_a_service_that_never_answers_times_out(self, tmp_path: Path) -> None:
        """A port that takes TCP connections and never answers the upgrade: every connect
        fails as a timeout after --open-timeout (0.3 s, kept by the users' shared deadline
        timer), so 2 users make a handful of attempts in 2 s (none at all if it never fired)."""
        with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
            url = f"ws://127.0.0.1:{silent.getsockname()[1]}/ws"
            code, output, summary = wsconn_load(
                tmp_path, "connect_storm", "--host", url, "--users", "2", "--duration", "2",
                "--open-timeout", "0.3",
            )  # fmt: skip
        assert code == 1, output
        (line,) = failed_lines(output)
        assert "no connection ever opened" in line and "most often timeout: " in line, output
        connect = summary["steps"]["connect"]
        assert 2 <= connect["failures"] == connect["requests"] <= 2 * (2 / 0.3 + 2), output

    def test_a_service_that_never_answers_our_close_times_out(self, tmp_path: Path) -> None:
        """A service that takes the upgrade, then ignores every frame: each close fails as 1006
        after --ws-close-timeout (0.3 s, kept by the users' shared deadline timer), so 2 users
        close a handful of times in 2 s (never, if the timeout did not fire)."""
        with UpgradeThenSilence() as url:
            code, output, summary = wsconn_load(
                tmp_path, "connect_storm", "--host", url, "--auth", "none", "--users", "2",
                "--duration", "2", "--locust-arg=--ws-close-timeout=0.3",
            )  # fmt: skip
        assert code == 1, output
        close = summary["steps"]["close"]
        assert 2 <= close["failures"] == close["requests"] <= 2 * (2 / 0.3 + 2), output
        assert all(
            f["step"] == "close" and f["error"].startswith("network: The connection dropped")
            for f in summary["failures"]
        ), summary["failures"]

    def test_the_fixture_result_follows_the_same_rule(
        self, tmp_path: Path, closed_port_url: str
    ) -> None:
        """wsconn_load's result is not ok when nothing opened, and says why in one line."""
        result = run_load(
            "connect_storm", tmp_path, scaled(RUN_TIMEOUT),
            host=closed_port_url, users=2, duration=2,
        )  # fmt: skip
        assert not result.ok and result.exit_code == 1, result.output
        (problem,) = result.problems
        assert problem.startswith("no connection ever opened: ")

    def test_failures_outside_a_storms_faults_exit_1(
        self, tmp_path: Path, broken_service: Callable[[str], Service]
    ) -> None:
        """In a storm the failures inside the faults are expected; a service that fails between
        them (here: never echoes) fails the run, counted apart from the expected ones."""
        service = broken_service("never-echoes")
        code, output, summary = wsconn_load(
            tmp_path, "reconnect_storm", "--host", service.url, "--token", service.token,
            "--users", "3", "--duration", "5", "--storm-every", "2", "--storm-for", "0.5",
            "--storm-recover", "1", "--reply-timeout", "0.3", "--backoff-max", "0.3",
        )  # fmt: skip
        assert code == 1, output
        pattern = (
            r"wsconn load: FAILED: \d+ of \d+ requests failed outside the faults; "
            r"allow a share with --max-failure-ratio"
        )
        assert any(re.fullmatch(pattern, line) for line in failed_lines(output)), output
        assert 0 < summary["counted_failures"] <= summary["failure_count"]


# A user paced by --message-interval waits for each echo in its own greenlet; back to back (0)
# its bursts of round trips run on the process's reactor (load.reactor): both ways are tested.
PACED_AND_BACK_TO_BACK = pytest.mark.parametrize("interval", ["0.05", "0"])


class TestOwnRoundTrips:
    @PACED_AND_BACK_TO_BACK
    def test_a_service_that_never_echoes_fails_the_message_step(
        self, tmp_path: Path, broken_service: Callable[[str], Service], interval: str
    ) -> None:
        """Pushes are not echoes: each message step fails in one line naming the pushes
        (they were once taken for echoes, a 0.036 ms "round trip")."""
        service = broken_service("never-echoes")
        code, output, summary = wsconn_load(
            tmp_path, "steady_messaging", "--host", service.url, "--token", service.token,
            "--users", "2", "--duration", "3", "--message-interval", interval,
            "--reply-timeout", "0.3",
        )  # fmt: skip
        assert code == 1, output
        message = summary["steps"]["message"]
        assert message["requests"] == message["failures"] > 0, output
        assert message["p50_ms"] is None and message["other_messages"] > 0
        assert all(
            re.fullmatch(
                r"timeout: no echo of our message within 0\.3 s \(\d+ other messages received\)",
                failure["error"],
            )
            for failure in summary["failures"]
        ), summary["failures"]
        (line,) = failed_lines(output)
        assert "requests failed, most often timeout: no echo of our message within 0.3 s" in line

    def test_back_to_back_round_trips_never_time_out_early(self, tmp_path: Path) -> None:
        """Each round trip has the whole --reply-timeout: users echoing back to back for 4 s
        with a 1 s timeout see none (a reused gevent Timeout once counted every earlier
        round trip against the next: such users "timed out" within seconds)."""
        code, output, summary = wsconn_load(
            tmp_path, "steady_messaging", "--users", "4", "--duration", "4",
            "--message-interval", "0", "--reply-timeout", "1",
        )  # fmt: skip
        assert code == 0, output
        assert summary["failure_count"] == 0, output
        assert summary["steps"]["connect"]["requests"] == 4, output  # none reconnected
        assert summary["steps"]["message"]["requests"] > 1000, output
        assert_locust_counted_every_sample(tmp_path, summary)

    def test_a_connection_closed_in_a_burst_fails_its_round_trip(
        self, tmp_path: Path, broken_service: Callable[[str], Service]
    ) -> None:
        """Back to back, a user whose connection the service closes (1013: the fourth evicts the
        oldest) fails that round trip with the close's category, reconnects and goes on."""
        service = broken_service("evicts-oldest")
        code, output, summary = wsconn_load(
            tmp_path, "steady_messaging", "--host", service.url, "--token", service.token,
            "--users", "4", "--duration", "3", "--message-interval", "0",
            "--backoff-max", "0.3",
        )  # fmt: skip
        assert code == 1, output
        message = summary["steps"]["message"]
        assert 0 < message["failures"] < message["requests"], output
        assert summary["steps"]["connect"]["requests"] > 4, output  # they came back
        assert any(
            f["step"] == "message" and f["error"].startswith("overload: ")
            for f in summary["failures"]
        ), summary["failures"]
        assert_locust_counted_every_sample(tmp_path, summary)

    @PACED_AND_BACK_TO_BACK
    def test_a_chat_broadcast_never_ends_a_round_trip(
        self, tmp_path: Path, broken_service: Callable[[str], Service], interval: str
    ) -> None:
        """A chat that broadcasts every message: each user waits for its own, and the others'
        (3 per round trip among 4 users) are counted apart."""
        service = broken_service("chat")
        code, output, summary = wsconn_load(
            tmp_path, "steady_messaging", "--host", service.url, "--token", service.token,
            "--users", "4", "--duration", "3", "--message-interval", interval,
        )  # fmt: skip
        assert code == 0, output
        message = summary["steps"]["message"]
        assert message["failures"] == 0 and message["requests"] > 20, output
        assert message["other_messages"] >= 2 * message["requests"], output
        assert "other messages (broadcasts, pushes; never the end of a round trip): message" in (
            output
        )

    def test_a_reply_id_field_matches_request_and_answer(
        self, tmp_path: Path, broken_service: Callable[[str], Service]
    ) -> None:
        """A request/response service that never echoes: with --reply-id-field its answers end
        the round trips; without, they are other messages and every step fails."""
        service = broken_service("answers")
        common = ("--host", service.url, "--token", service.token, "--users", "2")
        common += ("--duration", "2", "--message-interval", "0.05", "--reply-timeout", "0.3")
        code, output, summary = wsconn_load(
            tmp_path / "field", "steady_messaging", *common, "--reply-id-field", "id"
        )
        assert code == 0, output
        assert summary["steps"]["message"]["requests"] > 10
        assert summary["steps"]["message"]["other_messages"] == 0
        code, output, summary = wsconn_load(tmp_path / "echo", "steady_messaging", *common)
        assert code == 1, output
        assert summary["steps"]["message"]["failures"] == summary["steps"]["message"]["requests"]
        assert "(1 other message received)" in summary["failures"][0]["error"]


class TestHeldConnections:
    """idle_hold with --connections-per-user: one greenlet per user, the reactor reading all."""

    def test_every_connection_is_held_and_pinged(self, tmp_path: Path) -> None:
        """4 users holding 5 connections each: 20 connections, each pinging on its own
        (~5 pings per connection in 3 s at 0.5 s), none failing, each closed at the end."""
        code, output, summary = wsconn_load(
            tmp_path, "idle_hold", "--users", "4", "--connections-per-user", "5",
            "--duration", "3", "--ping-interval", "0.5",
        )  # fmt: skip
        assert code == 0, output
        steps = summary["steps"]
        assert summary["connections_opened"] == steps["connect"]["requests"] == 20, output
        assert 20 * 3 <= steps["ping"]["requests"] <= 20 * 7, output
        assert summary["failure_count"] == 0, output
        assert_locust_counted_every_sample(tmp_path, summary)

    def test_a_held_connection_without_pongs_fails_and_reconnects(
        self, tmp_path: Path, broken_service: Callable[[str], Service]
    ) -> None:
        """A service that never answers pings: each held connection's ping fails as our
        keepalive's 1011 after --ping-timeout, and the connection is opened again."""
        service = broken_service("no-pong")
        code, output, summary = wsconn_load(
            tmp_path, "idle_hold", "--host", service.url, "--token", service.token,
            "--users", "1", "--connections-per-user", "3", "--duration", "3",
            "--ping-interval", "0.2", "--ping-timeout", "0.5", "--backoff-max", "0.2",
        )  # fmt: skip
        assert code == 1, output
        ping = summary["steps"]["ping"]
        assert ping["requests"] == ping["failures"] >= 3, output
        assert all("keepalive timeout, 1011 sent by us" in f["error"] for f in summary["failures"])
        assert summary["steps"]["connect"]["requests"] > 3, output  # they came back

    def test_a_held_connection_closed_by_the_service_fails_its_ping(
        self, tmp_path: Path, broken_service: Callable[[str], Service]
    ) -> None:
        """A service that closes its oldest connection with 1013 when a fourth comes: the
        held connection it closed fails ``ping`` with the close's category while the others
        stay held, and it reconnects."""
        service = broken_service("evicts-oldest")
        code, output, summary = wsconn_load(
            tmp_path, "idle_hold", "--host", service.url, "--token", service.token,
            "--users", "1", "--connections-per-user", "4", "--duration", "3",
            "--ping-interval", "0.5", "--backoff-max", "0.3",
        )  # fmt: skip
        assert code == 1, output
        assert any(
            f["step"] == "ping" and f["error"].startswith("overload: ") for f in summary["failures"]
        ), summary["failures"]
        assert summary["steps"]["ping"]["requests"] > summary["steps"]["ping"]["failures"]
        assert summary["steps"]["connect"]["requests"] > 4, output

    @pytest.mark.parametrize(
        ("argv", "error"),
        [
            (
                ("steady_messaging", "--connections-per-user", "2"),
                "--connections-per-user is idle_hold's; steady_messaging holds one connection",
            ),
            (
                ("idle_hold", "--connections-per-user", "2", "--host", "wss://127.0.0.1:9/ws"),
                "--connections-per-user above 1 needs a plain ws:// URL",
            ),
        ],
    )
    def test_connections_per_user_elsewhere_is_refused(
        self, tmp_path: Path, argv: tuple[str, ...], error: str
    ) -> None:
        """Where held connections cannot work, the run stops in one line before Locust starts."""
        code, output, _ = wsconn_load(tmp_path, *argv, "--duration", "1")
        assert code == 2, output
        assert error in output and "Traceback" not in output


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
        assert sum(workers.values()) == summary["requests"], "each worker's last batch arrived"
        assert_locust_counted_every_sample(tmp_path, summary)
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
        fixtures.stdout.fnmatch_lines(["session*", "*wsconn_stack*", "*wsconn_load*"])


class TestHistory:
    def test_a_load_run_is_appended_to_the_history(self, tmp_path: Path) -> None:
        """--history PATH appends the run (kind "load") beside the pytest runs already there,
        with exactly the per-step figures of its summary.json."""
        history = tmp_path / "h.sqlite"
        store.append(history, RunRecord("pytest-run", 1.0, "h", "local"))
        code, output, summary = wsconn_load(
            tmp_path / "out", "connect_storm", "--users", "2", "--duration", "2",
            "--history", str(history),
        )  # fmt: skip
        assert code == 0, output
        assert f"wsconn load: appended the run to {history}" in output
        before, run = store.read(history)
        assert (before.kind, run.kind, run.stack, run.tests) == ("pytest", "load", "local", ())
        assert run.load is not None and run.load.passed
        assert (run.load.scenario, run.load.users, run.load.duration_s) == ("connect_storm", 2, 2)
        steps = {s.name: s for s in run.load.steps}
        assert set(steps) == set(summary["steps"])
        for name, step in summary["steps"].items():
            figures = (step["requests"], step["failures"], step["p50_ms"], step["p95_ms"])
            assert (steps[name].requests, steps[name].failures) == figures[:2]
            assert (steps[name].p50_ms, steps[name].p95_ms) == figures[2:]

    def test_an_unwritable_history_stops_before_the_load(self, tmp_path: Path) -> None:
        """A history whose folder is a file: exit 2 naming it, and Locust never started."""
        (tmp_path / "file").write_text("")
        history = tmp_path / "file" / "h.sqlite"
        code, output, _ = wsconn_load(tmp_path / "out", "connect_storm", "--history", str(history))
        assert code == 2, output
        assert output.startswith(f"wsconn load: cannot open the history {history}"), output
        assert not (tmp_path / "out" / "master.log").exists()
