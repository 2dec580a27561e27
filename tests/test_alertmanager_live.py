"""Live proof that the shipped rules route end to end: a session's figures pushed to a real
Pushgateway, a real Prometheus evaluating ``alerts.yml`` and sending to a real Alertmanager, which
routes on the rule's labels to a webhook receiver this test runs, firing and then resolved."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support.prometheus import Alertmanager, Prometheus, Pushgateway
from support.webhook import Webhook

from pytest_wsconn.monitoring import ALERT_RULES
from pytest_wsconn.session_metrics import push, session_samples

pytestmark = pytest.mark.slow  # three live daemons: seconds of scraping, evaluation and routing

ALERT = "WsconnNightlyRunFailed"
JOB = "wsconn-nightly"


@pytest.fixture
def pipeline() -> Iterator[tuple[Pushgateway, Webhook]]:
    with (
        Webhook() as webhook,
        Pushgateway() as gateway,
        Alertmanager(webhook.routing()) as alertmanager,
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


class TestAlertmanagerDelivery:
    def test_failed_session_alert_reaches_the_webhook_then_resolves(
        self, pipeline: tuple[Pushgateway, Webhook]
    ) -> None:
        """A failing session fires WsconnNightlyRunFailed; Alertmanager routes it on its
        severity to the webhook with its labels and summary, and sends the resolution once a
        passing session replaces it."""
        gateway, webhook = pipeline
        push_session(gateway, "failed")
        firing = webhook.wait_for(ALERT, "firing", 30)
        assert firing["receiver"] == "team"
        (alert,) = firing["alerts"]
        labels = {k: alert["labels"][k] for k in ("alertname", "job", "instance", "severity")}
        assert labels == {"alertname": ALERT, "job": JOB, "instance": "ci", "severity": "warning"}
        assert (
            alert["annotations"]["summary"]
            == f"{JOB}: the last pytest-wsconn run had 1 failing tests"
        )

        push_session(gateway, "passed")
        resolved = webhook.wait_for(ALERT, "resolved", 30)
        assert [a["status"] for a in resolved["alerts"]] == ["resolved"]
