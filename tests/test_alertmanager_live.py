"""Live proof that the shipped rules route end to end: a session's figures pushed to a real
Pushgateway, a real Prometheus evaluating ``alerts.yml`` and sending to a real Alertmanager, which
routes on the rule's labels to a webhook receiver this test runs, firing and then resolved."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.prometheus import Alertmanager, Prometheus, Pushgateway

from pytest_wsconn.monitoring import ALERT_RULES
from pytest_wsconn.session_metrics import push, session_samples
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.slow  # three live daemons: seconds of scraping, evaluation and routing

ALERT = "WsconnNightlyRunFailed"
JOB = "wsconn-nightly"
Notification = dict[str, Any]


class Webhook:
    """An HTTP receiver on loopback that keeps every Alertmanager webhook notification."""

    def __init__(self) -> None:
        received: queue.Queue[Notification] = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.put(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # the test reads notifications, not access logs

        self.received = received
        self.seen: list[Notification] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def __enter__(self) -> Webhook:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, matches: Callable[[Notification], bool], seconds: float) -> Notification:
        """The first notification (from now on) ``matches`` accepts, within ``seconds``."""
        deadline = time.monotonic() + scaled(seconds)
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                notification = self.received.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append(notification)
            if matches(notification):
                return notification
        pytest.fail(f"no matching notification in {seconds}s; received: {self.seen}")


def routing(webhook_url: str) -> dict[str, Any]:
    """Route the shipped rules' warnings (on their ``severity`` label) to the webhook; the
    rest to a receiver with no integrations, so a delivery proves the labels matched."""
    return {
        "route": {
            "receiver": "nowhere",
            "group_by": ["alertname", "job", "instance"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [{"receiver": "team", "matchers": ['severity="warning"']}],
        },
        "receivers": [
            {"name": "nowhere"},
            {"name": "team", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]},
        ],
    }


@pytest.fixture
def pipeline() -> Iterator[tuple[Pushgateway, Webhook]]:
    with (
        Webhook() as webhook,
        Pushgateway() as gateway,
        Alertmanager(routing(webhook.url)) as alertmanager,
        Prometheus(
            {"pushgateway": [gateway.url.removeprefix("http://")]},
            rules=ALERT_RULES.read_text(),
            alertmanagers=[alertmanager.netloc],
        ) as prometheus,
    ):
        prometheus.eventually('up{job="pushgateway"}', 1)
        yield gateway, webhook


def push_session(gateway: Pushgateway, outcome: str) -> None:
    now = time.time()
    samples = session_samples([], {"test_echo": (outcome, 1.0)}, started=now - 1, finished=now)
    push(gateway.url, JOB, {"instance": "ci"}, samples)


def about(status: str) -> Callable[[Notification], bool]:
    def matches(notification: Notification) -> bool:
        return notification["status"] == status and any(
            alert["labels"].get("alertname") == ALERT for alert in notification["alerts"]
        )

    return matches


class TestAlertmanagerDelivery:
    def test_failed_session_alert_reaches_the_webhook_then_resolves(
        self, pipeline: tuple[Pushgateway, Webhook]
    ) -> None:
        """A failing session fires WsconnNightlyRunFailed; Alertmanager routes it on its
        severity to the webhook with its labels and summary, and sends the resolution once a
        passing session replaces it."""
        gateway, webhook = pipeline
        push_session(gateway, "failed")
        firing = webhook.wait_for(about("firing"), 30)
        assert firing["receiver"] == "team"
        (alert,) = firing["alerts"]
        labels = {k: alert["labels"][k] for k in ("alertname", "job", "instance", "severity")}
        assert labels == {"alertname": ALERT, "job": JOB, "instance": "ci", "severity": "warning"}
        assert (
            alert["annotations"]["summary"]
            == f"{JOB}: the last pytest-wsconn run had 1 failing tests"
        )

        push_session(gateway, "passed")
        resolved = webhook.wait_for(about("resolved"), 30)
        assert [a["status"] for a in resolved["alerts"]] == ["resolved"]
