"""The bundled compose file's ``monitoring`` profile against a real Docker engine: a real
Prometheus (Debian's, in the offline image) scrapes the backend over the compose network.

COMPOSE_PROFILES=monitoring switches the profile on: Compose reads it from the environment the
compose provider (and so the plugin) passes on. The default stack, without it, starts no
Prometheus (tests/test_compose_stack.py). Needs what test_compose_stack.py needs.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.prometheus import PrometheusApi, exposition, http_json
from websockets.sync.client import connect

from pytest_wsconn.monitoring import ALERT_RULES
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.stack.compose import ComposeOptions, ComposeStack, open_compose_stack
from pytest_wsconn.timing import scaled, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCEPTED = 'sum(wsconn_server_connection_attempts_total{job="backend",outcome="accepted"})'
CLEAN_CLOSES = 'sum(wsconn_server_closes_total{job="backend",code="1000",by="client"})'


@pytest.fixture(scope="module")
def monitored(
    compose_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeStack]:
    """docker-compose.test.yml with the monitoring profile, up once for the module."""
    options = ComposeOptions(project_dir=REPO_ROOT, state_dir=tmp_path_factory.mktemp("state"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPOSE_PROFILES", "monitoring")
        with open_compose_stack(options) as stack:
            yield stack


@pytest.fixture(scope="module")
def prometheus(monitored: ComposeStack) -> PrometheusApi:
    """The profile's Prometheus, where the engine published it."""
    published = monitored.project.published("prometheus", 9090)
    assert published is not None, "prometheus publishes no port 9090"
    host, port = published
    return PrometheusApi(f"http://{host}:{port}")


def scraped_by_hand(stack: ComposeStack, name: str, labels: dict[str, str]) -> float:
    """A sample of the backend's own /metrics, read on its published port: the truth."""
    published = stack.project.published("backend", 8765)
    assert published is not None
    url = f"http://{published[0]}:{published[1]}/metrics"
    with urllib.request.urlopen(url, timeout=scaled(5)) as response:
        samples = exposition(response.read().decode())
    return samples.get((name, frozenset(labels.items())), 0.0)


class TestMonitoringProfile:
    def test_prometheus_runs_the_offline_image_on_loopback_and_scrapes_the_backend(
        self, monitored: ComposeStack, prometheus: PrometheusApi, compose_images: dict[str, str]
    ) -> None:
        """The WSCONN_PROMETHEUS_IMAGE container, published on 127.0.0.1 only, reports the
        backend target up over the compose network."""
        container = monitored.project.container("prometheus")
        assert compose_images["WSCONN_PROMETHEUS_IMAGE"] in container.image.tags
        bindings = container.attrs["NetworkSettings"]["Ports"]["9090/tcp"]
        assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}
        prometheus.eventually('up{job="backend",instance="backend:8765"}', 1)
        build = http_json(f"{prometheus.url}/api/v1/status/buildinfo")["data"]
        assert build["version"].startswith("2.42."), build  # Debian bookworm's Prometheus

    def test_promql_counts_the_connections_made_through_the_stack(
        self, monitored: ComposeStack, prometheus: PrometheusApi
    ) -> None:
        """Clients through toxiproxy -> nginx -> backend: PromQL over Prometheus' API returns
        the backend's accepted connections and clean closes, grown by exactly as many."""
        accepted = (
            "wsconn_server_connection_attempts_total",
            {"outcome": "accepted", "category": "ok"},
        )
        closes = ("wsconn_server_closes_total", {"code": "1000", "by": "client"})
        before = scraped_by_hand(monitored, *accepted)
        closed_before = scraped_by_hand(monitored, *closes)
        prometheus.eventually(ACCEPTED, before)  # it has caught up with the backend
        assert monitored.secret is not None
        token = reference_token(monitored.secret, "valid")
        clients = 4
        for number in range(clients):
            with connect(f"{monitored.proxy_url}?token={token}", open_timeout=scaled(5)) as ws:
                ws.send(f"hello {number}")
                assert ws.recv(timeout=scaled(5)) == f"hello {number}"
        assert scraped_by_hand(monitored, *accepted) == before + clients
        prometheus.eventually(ACCEPTED, before + clients)
        prometheus.eventually(CLEAN_CLOSES, closed_before + clients)
        prometheus.eventually('wsconn_server_connections_active{job="backend"}', 0)

    def test_the_shipped_alert_rules_are_loaded_and_evaluate(
        self, prometheus: PrometheusApi
    ) -> None:
        """Every group and rule of pytest_wsconn/monitoring/alerts.yml is loaded, and each
        evaluates without an error."""
        shipped = yaml.safe_load(ALERT_RULES.read_text())["groups"]
        expected = {group["name"]: [rule["alert"] for rule in group["rules"]] for group in shipped}
        loaded: dict[str, list[str]] = {}
        health: dict[str, str] = {}

        def all_evaluated() -> bool:
            groups = http_json(f"{prometheus.url}/api/v1/rules")["data"]["groups"]
            loaded.clear()
            for group in groups:
                loaded[group["name"]] = [rule["name"] for rule in group["rules"]]
                health.update({rule["name"]: rule["health"] for rule in group["rules"]})
            return loaded == expected and set(health.values()) == {"ok"}

        assert wait_until(all_evaluated, scaled(20), interval=0.25), (loaded, health)
