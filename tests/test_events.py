"""Structured events in a JSON-lines file and the JSON session report, from a real session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

USER_TESTS = """
import pytest
from pytest_wsconn import BackoffPolicy, assert_connects, assert_reconnects

pytestmark = pytest.mark.asyncio

async def test_fault_and_reconnect(wsconn_reconnecting_client, wsconn_proxy):
    client = wsconn_reconnecting_client(policy=BackoffPolicy(initial=0.05, max_delay=0.2))
    await assert_reconnects(client, times=0, within=5)
    with wsconn_proxy.down():  # the drop, then at least one refused attempt
        assert await client.wait_until(lambda: len(client.delays) >= 2, 5), client.describe()
    await assert_reconnects(client, within=5)

@pytest.mark.wsconn_fault("latency", ms=50)
async def test_fails(wsconn_connect):
    conn = await assert_connects(wsconn_connect)
    assert await conn.echo("hi", timeout=5) == "bye"
"""


@pytest.mark.usefixtures("user_env")
class TestEventsAndReport:
    def test_log_file_and_report(self, pytester: pytest.Pytester) -> None:
        """Events carry test id, attempt id and times; the report has tests, attempts, faults."""
        pytester.makepyfile(test_user=USER_TESTS)
        log, report_path = pytester.path / "events.jsonl", pytester.path / "out" / "report.json"
        result = pytester.runpytest_subprocess(
            f"--wsconn-log-file={log}", f"--wsconn-report={report_path}"
        )
        result.assert_outcomes(passed=1, failed=1)

        events = [json.loads(line) for line in log.read_text().splitlines()]
        names = {e["event"] for e in events}
        assert {"connect.start", "connect.ok", "close", "connect.fail"} <= names
        assert {"reconnect.scheduled", "fault.applied", "fault.removed"} <= names
        for event in events:
            assert {"test_id", "attempt_id", "monotonic", "wall"} <= event.keys()
            assert event["test_id"].startswith("test_user.py::")
        assert all(e["attempt_id"] for e in events if e["event"].startswith("connect."))

        report = json.loads(report_path.read_text())
        assert report["version"] == 1
        assert report["stack"] == "local"
        tests = {t["id"].split("::")[1]: t for t in report["tests"]}
        assert tests["test_fails"]["outcome"] == "failed"
        assert tests["test_fault_and_reconnect"]["outcome"] == "passed"
        assert tests["test_fails"]["faults"][0]["kind"] == "latency"
        assert tests["test_fault_and_reconnect"]["reconnects_scheduled"] >= 1
        categories = {a["category"] for a in tests["test_fault_and_reconnect"]["attempts"]}
        assert "network" in categories
        assert report["totals"]["tests"] == {"passed": 1, "failed": 1}
        assert report["totals"]["opened"] >= 3
        assert "p95" in report["totals"]["handshake_ms"]
        text = log.read_text() + report_path.read_text()
        assert "token=***" in text
        assert "?token=ey" not in text

    def test_no_files_without_the_options(self, pytester: pytest.Pytester) -> None:
        """Without the options nothing is written and the events logger stays quiet."""
        pytester.makepyfile(test_user=USER_TESTS)
        result = pytester.runpytest_subprocess("-k", "fault_and_reconnect")
        result.assert_outcomes(passed=1)
        assert not list(Path(pytester.path).rglob("*.json*"))
