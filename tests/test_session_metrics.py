"""Session metrics: pure samples, a textfile promtool accepts, and a real Pushgateway that a real
Prometheus scrapes, where the shipped nightly alert fires on the session's failure."""

from __future__ import annotations

import subprocess

import pytest
from support.prometheus import Prometheus, Pushgateway, exposition, free_port

from pytest_wsconn.expect import ConnectionAttempt, Outcome
from pytest_wsconn.monitoring import ALERT_RULES
from pytest_wsconn.session_metrics import Sample, session_samples
from pytest_wsconn.session_report import summarize
from pytest_wsconn.timing import scaled

USER_TESTS = """
import pytest
from pytest_wsconn import assert_connects

pytestmark = pytest.mark.asyncio

async def test_echoes(wsconn_connect):
    conn = await assert_connects(wsconn_connect)
    assert await conn.echo("hi", timeout=5) == "hi"

async def test_fails(wsconn_connect):
    conn = await assert_connects(wsconn_connect)
    assert await conn.echo("hi", timeout=5) == "bye"
"""


def attempt(handshake: float | None, **fields: object) -> ConnectionAttempt:
    values: dict[str, object] = {"url": "ws://h/ws", "started_at": 0.0, "started": 10.0}
    if handshake is not None:
        values |= {"outcome": Outcome.OPENED, "ended": 10.0 + handshake}
    return ConnectionAttempt(**{**values, **fields})  # type: ignore[arg-type]


class TestSessionSamples:
    def test_outcomes_are_counted_and_never_missing(self) -> None:
        """Each outcome has a sample, zero when no test had it: alerts read 0, not nothing."""
        samples = session_samples(
            [],
            {"a": ("passed", 1.0), "b": ("passed", 1.0), "c": ("xfailed", 0.1)},
            started=0.0,
            finished=5.0,
        )
        tests = {dict(s.labels)["outcome"]: s.value for s in samples if s.name == "tests"}
        assert tests == {"passed": 2, "failed": 0, "error": 0, "skipped": 0, "xfailed": 1}
        assert Sample("duration_seconds", 5.0) in samples
        assert Sample("finished_timestamp_seconds", 5.0) in samples

    def test_handshake_quantiles_in_seconds(self) -> None:
        """Handshake percentiles become seconds, under the names the rules read."""
        attempts = [attempt(0.010), attempt(0.030)]
        samples = session_samples(attempts, {}, started=0.0, finished=1.0)
        ms = summarize(attempts)["handshake_ms"]
        assert Sample("handshake_p50_seconds", ms["p50"] / 1000) in samples
        assert Sample("handshake_p95_seconds", ms["p95"] / 1000) in samples
        assert Sample("connections_opened", 2) in samples
        assert Sample("connection_attempts", 2) in samples


@pytest.mark.usefixtures("user_env")
class TestPluginOptions:
    def test_metrics_file_is_a_valid_textfile(
        self, pytester: pytest.Pytester, promtool: str
    ) -> None:
        """--wsconn-metrics-file writes the session's figures; promtool lints them clean."""
        pytester.makepyfile(test_user=USER_TESTS)
        path = pytester.path / "textfile" / "wsconn.prom"
        result = pytester.runpytest_subprocess(f"--wsconn-metrics-file={path}")
        result.assert_outcomes(passed=1, failed=1)
        text = path.read_text()
        figures = exposition(text)
        assert figures[("wsconn_session_tests", frozenset({("outcome", "passed")}))] == 1
        assert figures[("wsconn_session_tests", frozenset({("outcome", "failed")}))] == 1
        assert figures[("wsconn_session_connections_opened", frozenset())] == 2
        lint = subprocess.run(
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=scaled(30),
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr

    def test_bad_pushgateway_url_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """A Pushgateway that is not an http URL stops the run before any test, naming the form."""
        result = pytester.runpytest("--wsconn-pushgateway=localhost:9091")
        result.stderr.fnmatch_lines(
            ["*invalid Pushgateway URL 'localhost:9091'; valid: http://host:9091*"]
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR

    def test_unreachable_pushgateway_is_one_line_not_a_failure(
        self, pytester: pytest.Pytester
    ) -> None:
        """A push that cannot be made is said in one line; the tests' own outcome stands."""
        pytester.makepyfile(test_user=USER_TESTS.split("async def test_fails", maxsplit=1)[0])
        url = f"http://127.0.0.1:{free_port()}"
        result = pytester.runpytest_subprocess(f"--wsconn-pushgateway={url}")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"pytest-wsconn: session metrics: could not push to {url}: *"])
        assert result.ret == pytest.ExitCode.OK


@pytest.mark.slow
@pytest.mark.usefixtures("user_env")
class TestPushgateway:
    def test_pushed_session_reaches_prometheus_and_fires_the_nightly_alert(
        self, pytester: pytest.Pytester
    ) -> None:
        """The session pushes with job and instance labels; Prometheus scrapes the Pushgateway
        and WsconnNightlyRunFailed fires for the failing test."""
        pytester.makepyfile(test_user=USER_TESTS)
        with Pushgateway() as gateway:
            result = pytester.runpytest_subprocess(
                f"--wsconn-pushgateway={gateway.url}",
                "--wsconn-metrics-job=wsconn-nightly",
                "--wsconn-metrics-instance=ci",
            )
            result.assert_outcomes(passed=1, failed=1)
            pushed = gateway.metrics()
            failed = frozenset(
                {("job", "wsconn-nightly"), ("instance", "ci"), ("outcome", "failed")}
            )
            assert pushed[("wsconn_session_tests", failed)] == 1

            netloc = gateway.url.removeprefix("http://")
            with Prometheus({"pushgateway": [netloc]}, rules=ALERT_RULES.read_text()) as prometheus:
                prometheus.eventually(
                    'wsconn_session_tests{job="wsconn-nightly",instance="ci",outcome="failed"}', 1
                )
                prometheus.eventually(
                    'count(ALERTS{alertname="WsconnNightlyRunFailed",alertstate="firing",'
                    'job="wsconn-nightly",instance="ci"})',
                    1,
                )
