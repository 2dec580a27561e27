"""The session's figures as Prometheus metrics: a textfile for node_exporter, or a Pushgateway push.

``session_samples`` is pure (attempts and outcomes in, named samples out); ``write_textfile`` and
``push`` are the shells, on ``prometheus_client`` (the ``metrics`` extra). Every series is a
gauge: it describes the last session, which is what ``alerts.yml``'s nightly rules read.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_wsconn import config as cfg
from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.expect import ConnectionAttempt
from pytest_wsconn.redact import redact_url
from pytest_wsconn.session_report import per_worker, summarize
from pytest_wsconn.timing import scaled

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

PREFIX = "wsconn_session"
OUTCOMES = ("passed", "failed", "error", "skipped")  # always present, so alerts read 0, not nothing
HELP = {
    "tests": "Tests of the last session by outcome",
    "connection_attempts": "WebSocket connections the last session tried to open",
    "connections_opened": "WebSocket connections the last session opened",
    "connections_failed": "Connections of the last session that failed to open, by category",
    "handshake_p50_seconds": "Median opening handshake of the last session",
    "handshake_p95_seconds": "95th percentile opening handshake of the last session",
    "duration_seconds": "How long the last session ran",
    "finished_timestamp_seconds": "When the last session finished (Unix time)",
}


@dataclasses.dataclass(frozen=True)
class Sample:
    """One gauge value: ``wsconn_session_<name>{labels} value``."""

    name: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


def session_samples(
    attempts: Sequence[ConnectionAttempt],
    outcomes: Mapping[str, tuple[str, float]],
    *,
    started: float,
    finished: float | None = None,
) -> list[Sample]:
    """The figures of a session that ran from ``started`` to ``finished`` (Unix times; now)."""
    finished = time.time() if finished is None else finished
    figures = summarize(attempts)
    counts = dict.fromkeys(OUTCOMES, 0)
    for outcome, _ in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    samples = [Sample("tests", n, (("outcome", outcome),)) for outcome, n in counts.items()]
    samples += [
        Sample("connection_attempts", figures["attempts"]),
        Sample("connections_opened", figures["opened"]),
        *(
            Sample("connections_failed", n, (("category", category),))
            for category, n in figures["failed_by_category"].items()
        ),
        *(
            Sample(f"handshake_{name}_seconds", ms / 1000)
            for name, ms in figures["handshake_ms"].items()
        ),
        Sample("duration_seconds", round(finished - started, 3)),
        Sample("finished_timestamp_seconds", finished),
    ]
    return samples


# I/O shells


def _registry(
    samples: Sequence[Sample], prefix: str = PREFIX, helps: Mapping[str, str] = HELP
) -> CollectorRegistry:
    """One gauge per sample name, ``<prefix>_<name>``, described by ``helps[name]``."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    for sample in samples:
        label_names = [name for name, _ in sample.labels]
        gauge = gauges.get(sample.name)
        if gauge is None:
            gauge = gauges[sample.name] = Gauge(
                f"{prefix}_{sample.name}", helps[sample.name], label_names, registry=registry
            )
        (gauge.labels(*(v for _, v in sample.labels)) if label_names else gauge).set(sample.value)
    return registry


def _client() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ConfigError(
            "session metrics need prometheus_client",
            hint="pip install 'pytest-wsconn[metrics]'",
        ) from None


def write_textfile(path: Path, samples: Sequence[Sample]) -> None:
    """Write atomically (a rename), as node_exporter's textfile collector needs."""
    _client()
    from prometheus_client import write_to_textfile

    write_to_textfile(str(path), _registry(samples))


def push(
    url: str,
    job: str,
    grouping: Mapping[str, str],
    samples: Sequence[Sample],
    *,
    prefix: str = PREFIX,
    helps: Mapping[str, str] = HELP,
) -> None:
    """Replace the group ``job`` + ``grouping`` on the Pushgateway at ``url`` with ``samples``
    (named ``<prefix>_<name>``; ``wsconn load`` pushes its own ``wsconn_load_*`` set)."""
    _client()
    from prometheus_client import push_to_gateway

    registry = _registry(samples, prefix, helps)
    grouping_key = dict(grouping)
    push_to_gateway(url, job=job, registry=registry, grouping_key=grouping_key, timeout=scaled(10))


def publish(settings: cfg.Settings, worker: str | None, samples: Sequence[Sample]) -> str | None:
    """Write ``--wsconn-metrics-file`` and push to ``--wsconn-pushgateway``, if they are set.

    One file and one Pushgateway group per xdist worker (``metrics.gw0.prom``, ``worker="gw0"``).
    Returns the one line a user reads when either could not be done, else None.
    """
    problems = []
    if settings.metrics_file:
        path = per_worker(Path(settings.metrics_file), worker)
        try:
            write_textfile(path, samples)
        except (OSError, ConfigError) as exc:
            problems.append(f"could not write {path}: {exc}")
    if settings.pushgateway:
        grouping = {"instance": settings.metrics_instance or socket.gethostname()}
        if worker:
            grouping["worker"] = worker
        try:
            push(settings.pushgateway, settings.metrics_job, grouping, samples)
        except (OSError, ConfigError) as exc:
            problems.append(f"could not push to {redact_url(settings.pushgateway)}: {exc}")
    return "; ".join(problems) or None
