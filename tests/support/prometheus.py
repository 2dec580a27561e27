"""Real Prometheus, Pushgateway and Alertmanager (Debian packages) for tests: loopback ports,
temp data dirs. ``PrometheusApi`` queries any Prometheus by URL (the compose stack's too).

``quick_rules`` turns the shipped alert rules into ones a test can watch go pending and firing
in seconds: the same expressions, with ``[5m]`` windows and ``for:`` durations shortened.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from pytest_wsconn.stack.processes import ChildProcess
from pytest_wsconn.timing import scaled, wait_until

from . import unavailable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binary(name: str, package: str) -> str:
    """A Debian binary the test needs; missing is a failure on CI, a skip elsewhere."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found: apt-get install {package}")
    return path


def quick_rules(text: str, window: str = "10s", pending: str = "3s") -> str:
    """The rules with every ``[5m]`` window set to ``window`` and every ``for:`` to ``pending``."""
    text = re.sub(r"\[5m\]", f"[{window}]", text)
    return re.sub(r"^(\s+for:) \S+$", rf"\1 {pending}", text, flags=re.MULTILINE)


def exposition(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of a Prometheus text exposition by name and label set."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=scaled(timeout)) as response:  # noqa: S310 - http only
        return json.loads(response.read())


class Daemon:
    """A Prometheus-family server on a free loopback port, ready when ``/-/ready`` answers."""

    name = ""
    package = ""

    def __init__(self) -> None:
        self._binary = binary(self.name, self.package)
        self._dir = Path(tempfile.mkdtemp(prefix=f"wsconn-{self.name}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._child: ChildProcess | None = None

    def argv(self) -> list[str]:
        return [self._binary, f"--web.listen-address=127.0.0.1:{self.port}"]

    def start(self) -> Self:
        self._child = ChildProcess(self.name, self.argv(), env={"PATH": "/usr/bin:/bin"})
        if not wait_until(self._ready, scaled(30), interval=0.1):
            raise RuntimeError(f"{self.name} did not become ready:\n{self.output()}")
        return self

    def _ready(self) -> bool:
        assert self._child is not None
        if self._child.exit() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.output()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1):  # noqa: S310
                return True
        except OSError:
            return False

    def output(self) -> str:
        return "" if self._child is None else self._child.output(4000)

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop(scaled(10))
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Pushgateway(Daemon):
    """Debian's ``prometheus-pushgateway``, keeping pushed groups in memory only."""

    name = "prometheus-pushgateway"
    package = "prometheus-pushgateway"

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """What a scrape of the Pushgateway returns now (``exposition``)."""
        scrape = f"{self.url}/metrics"
        with urllib.request.urlopen(scrape, timeout=scaled(5)) as response:  # noqa: S310
            return exposition(response.read().decode())


class PrometheusApi:
    """PromQL and alerts over the HTTP API of the Prometheus at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` evaluates to now; raises on a PromQL error."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            body = http_json(url)
        except urllib.error.HTTPError as error:  # 400 for a query that does not parse
            raise AssertionError(f"{promql}: {json.loads(error.read()).get('error')}") from None
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The single value ``promql`` evaluates to, None for an empty result."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def eventually(self, promql: str, expected: float) -> None:
        """Wait, with a deadline, until ``promql`` evaluates to ``expected``."""
        seen: list[float | None] = []

        def holds() -> bool:
            seen.append(self.value(promql))
            return seen[-1] == expected

        assert wait_until(holds, scaled(20), interval=0.25), f"{promql} = {seen[-1:]}"

    def alert_states(self, name: str) -> set[str]:
        """States (pending, firing) of the alerts named ``name`` now; empty when inactive."""
        alerts = http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return {a["state"] for a in alerts if a["labels"].get("alertname") == name}


class Prometheus(Daemon, PrometheusApi):
    """``prometheus`` scraping ``targets`` every second and evaluating ``rules`` every second.

    A job whose name starts with ``pushgateway`` keeps the pushed job and instance labels.
    """

    name = "prometheus"
    package = "prometheus"

    def __init__(
        self,
        targets: dict[str, Sequence[str]],
        rules: str | None = None,
        alertmanagers: Sequence[str] = (),
    ) -> None:
        super().__init__()
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": job,
                    "honor_labels": job.startswith("pushgateway"),
                    "static_configs": [{"targets": list(hosts)}],
                }
                for job, hosts in targets.items()
            ],
        }
        if alertmanagers:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
            }
        if rules is not None:
            (self._dir / "rules.yml").write_text(rules)
            config["rule_files"] = [str(self._dir / "rules.yml")]
        (self._dir / "prometheus.yml").write_text(yaml.safe_dump(config))

    def argv(self) -> list[str]:
        return [
            *super().argv(),
            f"--config.file={self._dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self._dir / 'data'}",
        ]


class Alertmanager(Daemon):
    """Debian's ``prometheus-alertmanager`` with ``config`` (a dict, written as YAML), no cluster.

    ``netloc`` is what Prometheus' ``alertmanagers`` takes.
    """

    name = "prometheus-alertmanager"
    package = "prometheus-alertmanager"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.netloc = f"127.0.0.1:{self.port}"
        (self._dir / "alertmanager.yml").write_text(yaml.safe_dump(config))

    def argv(self) -> list[str]:
        return [
            *super().argv(),
            f"--config.file={self._dir / 'alertmanager.yml'}",
            f"--storage.path={self._dir / 'data'}",
            "--cluster.listen-address=",  # no gossip port: one instance on loopback
        ]
