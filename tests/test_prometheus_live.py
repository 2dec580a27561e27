"""Live proof: a real Prometheus scrapes the reference server while clients go through Toxiproxy.

PromQL over Prometheus' HTTP API returns the counts the test caused, and the shipped
``WebSocketAbnormalClosesSpiking`` rule (windows shortened by ``quick_rules``) goes pending,
then firing under a Toxiproxy fault, and resolves once the fault is gone; a real Alertmanager
delivers it, firing and then resolved, to a webhook receiver the test runs. Every query of the
shipped Grafana dashboard parses and returns data.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from support.prometheus import Alertmanager, Prometheus, quick_rules
from support.webhook import Webhook
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from pytest_wsconn.faults import timeout
from pytest_wsconn.monitoring import ALERT_RULES, GRAFANA_DASHBOARD
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.stack.reference_process import ReferenceProcess
from pytest_wsconn.stack.toxiproxy_server import ToxiproxyServer
from pytest_wsconn.timing import scaled, wait_until
from pytest_wsconn.toxiproxy import Proxy

pytestmark = pytest.mark.slow  # live Prometheus and Alertmanager: seconds of evaluation and routing

ALERT = "WebSocketAbnormalClosesSpiking"
_names = itertools.count()


class Live:
    """The reference server, a proxy in front of it, a Prometheus scraping it and the webhook
    its Alertmanager delivers to."""

    def __init__(
        self,
        server_url: str,
        token: str,
        proxy: Proxy,
        prometheus: Prometheus,
        webhook: Webhook,
    ) -> None:
        self.token = token
        self.labels = {"job": "reference", "instance": urlsplit(server_url).netloc}  # as scraped
        host, port = proxy.listen_address
        self.proxied = f"ws://{host}:{port}{urlsplit(server_url).path}"
        self.proxy = proxy
        self.prometheus = prometheus
        self.webhook = webhook

    def echo(self, count: int) -> None:
        """``count`` clients that connect through the proxy, echo once and close with 1000."""
        for _ in range(count):
            with connect(f"{self.proxied}?token={self.token}", open_timeout=scaled(5)) as ws:
                ws.send("hi")
                assert ws.recv(timeout=scaled(5)) == "hi"

    def refuse(self) -> None:
        """A client without a token: refused with 401."""
        with pytest.raises(InvalidStatus):
            connect(self.proxied, open_timeout=scaled(5))

    def lose_connection(self) -> None:
        """Under a downstream timeout the upgrade reaches the server, the answer never comes
        back and Toxiproxy drops both sides: the server records a 1006."""
        with pytest.raises((TimeoutError, InvalidHandshake, ConnectionClosed, OSError)):
            connect(f"{self.proxied}?token={self.token}", open_timeout=0.5).close()


@pytest.fixture(scope="module")
def live(toxiproxy_server: ToxiproxyServer) -> Iterator[Live]:
    with ReferenceProcess() as server:
        url = server.wait_ready(scaled(10))
        netloc = urlsplit(url).netloc
        client = toxiproxy_server.client
        proxy = client.create_proxy(f"prometheus{next(_names)}", "127.0.0.1:0", netloc)
        rules = quick_rules(ALERT_RULES.read_text())
        try:
            with (
                Webhook() as webhook,
                Alertmanager(webhook.routing()) as alertmanager,
                Prometheus(
                    {"reference": [netloc]}, rules=rules, alertmanagers=[alertmanager.netloc]
                ) as prometheus,
            ):
                token = reference_token(server.secret, "valid")
                yield Live(url, token, proxy, prometheus, webhook)
        finally:
            client.delete_proxy(proxy.name)


def until(condition: Callable[[], bool], seconds: float, action: Callable[[], None]) -> bool:
    """Repeat ``action`` until ``condition`` holds or ``seconds`` pass."""
    deadline = time.monotonic() + scaled(seconds)
    while time.monotonic() < deadline:
        if condition():
            return True
        action()
    return condition()


class TestLivePrometheus:
    def test_promql_counts_what_the_test_did(self, live: Live) -> None:
        """Accepted connections, clean closes and a refusal reach Prometheus with their labels."""
        live.prometheus.eventually('up{job="reference"}', 1)
        before = live.prometheus.value(
            'sum(wsconn_server_connection_attempts_total{outcome="accepted"})'
        )
        live.echo(5)
        live.refuse()
        live.prometheus.eventually(
            'sum(wsconn_server_connection_attempts_total{outcome="accepted"})', (before or 0) + 5
        )
        live.prometheus.eventually('wsconn_server_refusals_total{reason="missing_token"}', 1)
        live.prometheus.eventually('sum(wsconn_server_closes_total{code="1000",by="client"})', 5)
        live.prometheus.eventually("wsconn_server_connections_active", 0)
        assert live.prometheus.value("wsconn_server_handshake_duration_seconds_count") == 5
        assert (live.prometheus.value("wsconn_server_uptime_seconds") or 0) > 0

    def test_alert_fires_under_a_fault_and_resolves_after(self, live: Live) -> None:
        """A downstream timeout makes the server lose connections (1006): pending, firing, gone;
        Alertmanager delivers the firing alert while the fault lasts and its resolution after,
        with the rule's labels and the server's job and instance."""
        live.prometheus.eventually('up{job="reference"}', 1)
        assert live.prometheus.alert_states(ALERT) == set()
        seen: list[set[str]] = []

        def firing() -> bool:
            seen.append(live.prometheus.alert_states(ALERT))
            return "firing" in seen[-1]

        def delivered() -> bool:
            return live.webhook.first(ALERT, "firing") is not None

        with live.proxy.apply(timeout(100)):
            assert until(firing, 30, live.lose_connection), (
                f"states seen: {seen}\n{live.prometheus.output()}"
            )
            assert until(delivered, 30, live.lose_connection), (
                f"no firing {ALERT} notification; received: {live.webhook.received()}"
            )
            assert live.webhook.first(ALERT, "resolved") is None
        assert {"pending"} in seen  # it went through pending before firing
        live.prometheus.eventually(f'count(ALERTS{{alertname="{ALERT}",alertstate="firing"}})', 1)
        abnormal = live.prometheus.value(
            'sum(wsconn_server_closes_total{code="1006",by="neither"})'
        )
        assert abnormal is not None and abnormal >= 5

        assert wait_until(
            lambda: live.prometheus.alert_states(ALERT) == set(), scaled(40), interval=0.25
        ), "the alert did not resolve after the fault was removed"
        resolved = live.webhook.wait_for(ALERT, "resolved", 30)
        live.echo(1)  # the path works again

        firing = live.webhook.first(ALERT, "firing")
        assert firing is not None
        expected = {"alertname": ALERT, "severity": "warning", **live.labels}
        for notification, status in ((firing, "firing"), (resolved, "resolved")):
            assert notification["receiver"] == "team"  # routed on the rule's severity
            assert [(a["status"], a["labels"]) for a in notification["alerts"]] == [
                (status, expected)
            ]
        summary = firing["alerts"][0]["annotations"]["summary"]
        instance = re.escape(live.labels["instance"])
        assert re.fullmatch(
            rf"{instance}: [\d.]+% of WebSocket closes are abnormal \(1006\)", summary
        )


def grafana(expr: str) -> str:
    """A dashboard query as Grafana sends it with every variable on All and a 1m rate interval."""
    return expr.replace("$__rate_interval", "1m").replace("$job", ".*").replace("$instance", ".*")


def panel_queries() -> dict[str, str]:
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text())
    return {
        f"{panel['title']} ({target['refId']})": target["expr"]
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }


class TestGrafanaDashboard:
    def test_every_panel_query_returns_data(self, live: Live) -> None:
        """After echoes, a refusal and a lost connection, every panel's query parses (a PromQL
        error fails the query) and returns series from the reference server."""
        live.prometheus.eventually('up{job="reference"}', 1)
        live.echo(3)
        live.refuse()
        with live.proxy.apply(timeout(100)):
            live.lose_connection()
        queries = panel_queries()
        empty: list[str] = []

        def all_have_data() -> bool:
            empty[:] = [
                name for name, expr in queries.items() if not live.prometheus.query(grafana(expr))
            ]
            return not empty

        assert wait_until(all_have_data, scaled(20), interval=0.5), f"panels without data: {empty}"

    def test_dashboard_covers_the_metric_set_and_finds_the_server(self, live: Live) -> None:
        """Each wsconn_server_* family Prometheus scraped is on a panel; the job and instance
        variables list the reference server."""
        live.prometheus.eventually('up{job="reference"}', 1)
        scraped = live.prometheus.query('group by (__name__) ({__name__=~"wsconn_server_.*"})')
        families = {
            re.sub(r"_(bucket|count|sum|created)$", "", s["metric"]["__name__"]) for s in scraped
        }
        text = "\n".join(panel_queries().values())
        assert families and {f for f in families if f not in text} == set()

        variables = json.loads(GRAFANA_DASHBOARD.read_text())["templating"]["list"]
        for variable in variables[1:]:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
            assert match, variable["definition"]
            metric, label = match.groups()
            values = live.prometheus.query(f"group by ({label}) ({grafana(metric)})")
            assert [v["metric"][label] for v in values] == [live.labels[label]]
