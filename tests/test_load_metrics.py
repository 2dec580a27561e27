"""``wsconn load --pushgateway``: pure samples of a live snapshot and of a judged summary, the
option's usage error, and a real load run pushing to a real Pushgateway while it runs and at its
end, which a real Prometheus then scrapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.prometheus import Prometheus, Pushgateway, free_port

from pytest_wsconn.load.metrics import final_samples, live_samples
from pytest_wsconn.load.summary import build_summary
from pytest_wsconn.session_metrics import Sample
from pytest_wsconn.timing import scaled, wait_until

STATS_CSV = """Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%,Max Response Time
WS,connect,10,2,5.0,3,8,9,9
WS,message,40,0,20.0,1,2,2,3
"""
RESULT = {"histograms": {}, "others": {}, "timeline": [], "workers": {}}


class TestSamples:
    def test_live_snapshot_per_step_in_seconds(self) -> None:
        """A live snapshot becomes running=1, the users now and per-step figures, ms as s."""
        snapshot = {
            "at": 100.0,
            "users": 3,
            "steps": {
                "message": {"requests": 40, "failures": 1, "rate": 20.0, "p50_ms": 2, "p95_ms": 8}
            },
        }
        step = (("step", "message"),)
        assert live_samples(snapshot) == [
            Sample("running", 1),
            Sample("users", 3),
            Sample("updated_timestamp_seconds", 100.0),
            Sample("requests", 40, step),
            Sample("failures", 1, step),
            Sample("requests_per_second", 20.0, step),
            Sample("latency_p50_seconds", 0.002, step),
            Sample("latency_p95_seconds", 0.008, step),
        ]

    def test_step_without_latency_has_no_latency_sample(self) -> None:
        """A step with no successful request yet has counts but no latency gauges."""
        snapshot = {"steps": {"connect": {"requests": 2, "failures": 2, "rate": 1.0}}}
        names = {s.name for s in live_samples(snapshot)}
        assert "failures" in names
        assert not any(name.startswith("latency_") for name in names)

    def test_final_samples_carry_the_verdict(self) -> None:
        """The end push says running=0, the verdict and the summary's own figures."""
        summary = build_summary(
            scenario="connect_storm",
            users=5,
            duration_s=3,
            stats_csv=STATS_CSV,
            failures_csv="",
            result=RESULT,
        )
        samples = final_samples(summary, now=50.0)
        assert Sample("running", 0) in samples
        assert Sample("passed", 0) in samples  # two connects failed, no ratio allowed
        assert Sample("counted_failures", 2) in samples
        assert Sample("connections_opened", 8) in samples
        assert Sample("requests", 40, (("step", "message"),)) in samples
        assert Sample("updated_timestamp_seconds", 50.0) in samples

    def test_locust_that_never_finished_is_not_passed(self) -> None:
        """No summary (Locust did not complete): the run ended and did not pass."""
        assert final_samples(None, now=1.0) == [
            Sample("running", 0),
            Sample("updated_timestamp_seconds", 1.0),
            Sample("passed", 0),
        ]


def wsconn_load(*argv: str) -> list[str]:
    return [sys.executable, "-m", "pytest_wsconn.load", *argv]


class TestOption:
    def test_bad_pushgateway_url_is_a_usage_error(self) -> None:
        """A Pushgateway that is not an http URL stops before any load, naming the form."""
        done = subprocess.run(
            wsconn_load("connect_storm", "--pushgateway", "localhost:9091"),
            capture_output=True,
            text=True,
            timeout=scaled(30),
            check=False,
        )
        assert done.returncode == 2
        assert "invalid Pushgateway URL 'localhost:9091'; valid: http://host:9091" in done.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("user_env", "locust_installed")
class TestPushgateway:
    def test_load_pushes_live_then_final_figures_prometheus_scrapes(self, tmp_path: Path) -> None:
        """While the run goes the group says running=1 with requests counted; at its end,
        running=0, passed=1 and the summary's request counts; Prometheus scrapes them."""
        group = {("job", "wsconn-load"), ("instance", "ci"), ("scenario", "steady_messaging")}
        message = frozenset({*group, ("step", "message")})
        with Pushgateway() as gateway:
            argv = wsconn_load(
                "steady_messaging",
                *("--users", "3", "--duration", "6", "--message-interval", "0.1"),
                *("--pushgateway", gateway.url, "--push-every", "0.5"),
                *("--metrics-instance", "ci", "--out", str(tmp_path)),
            )
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as run:
                live: list[dict[tuple[str, frozenset[tuple[str, str]]], float]] = []

                def running_with_messages() -> bool:
                    live.append(gateway.metrics())
                    return (
                        live[-1].get(("wsconn_load_running", frozenset(group))) == 1
                        and live[-1].get(("wsconn_load_requests", message), 0) > 0
                    )

                assert wait_until(running_with_messages, scaled(30), interval=0.25), live[-1:]
                output, _ = run.communicate(timeout=scaled(90))
            assert run.returncode == 0, output.decode()

            summary = json.loads((tmp_path / "summary.json").read_text())
            final = gateway.metrics()
            assert final[("wsconn_load_running", frozenset(group))] == 0
            assert final[("wsconn_load_passed", frozenset(group))] == 1
            requests = summary["steps"]["message"]["requests"]
            assert final[("wsconn_load_requests", message)] == requests
            assert (
                final[("wsconn_load_requests", message)]
                > live[-1][("wsconn_load_requests", message)]
            )

            netloc = gateway.url.removeprefix("http://")
            with Prometheus({"pushgateway": [netloc]}) as prometheus:
                prometheus.eventually(
                    'wsconn_load_passed{job="wsconn-load",instance="ci",scenario="steady_messaging"}',
                    1,
                )
                prometheus.eventually(
                    'sum(wsconn_load_requests{job="wsconn-load",step="message"})', requests
                )

    def test_unreachable_pushgateway_is_one_line_not_a_failure(self, tmp_path: Path) -> None:
        """A push that cannot be made is said in one line; the run's own verdict stands."""
        url = f"http://127.0.0.1:{free_port()}"
        done = subprocess.run(
            wsconn_load(
                "connect_storm",
                *("--users", "2", "--duration", "3", "--pushgateway", url),
                *("--out", str(tmp_path), "--quiet"),
            ),
            capture_output=True,
            text=True,
            timeout=scaled(90),
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "verdict: passed" in done.stdout
        lines = [line for line in done.stderr.splitlines() if "could not push" in line]
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"wsconn load: metrics: could not push to {url}: ")
