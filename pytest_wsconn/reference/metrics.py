"""The reference server's ``/metrics``: the metric set we recommend for any WebSocket service.

Every label is bounded: outcomes, categories and refusal reasons are fixed sets, a close code is
one of the registered codes, ``app`` (3000-4999) or ``other``. Each server has its own registry,
so two servers in one process (tests, xdist) never mix their counts.

``prometheus_client`` is the ``metrics`` extra; without it ``/metrics`` answers 501 with the
command that installs it, and the server runs as before (``NoMetrics``).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal, Protocol

from websockets.frames import Close, CloseCode

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

ClosedBy = Literal["client", "server", "neither"]
Category = Literal["auth", "origin", "limit"]

PREFIX = "wsconn_server"
INSTALL_HINT = "metrics need prometheus_client: pip install 'pytest-wsconn[metrics]'\n"
# Handshakes on loopback take a millisecond; through a proxy under faults, seconds.
HANDSHAKE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
MESSAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)
_NAMED_CODES = frozenset(int(code) for code in CloseCode)


# Pure core


def close_code_label(code: int | None) -> str:
    """``1000``… for a registered close code, ``app`` for 3000-4999, ``other`` for the rest."""
    if code is None:
        return str(int(CloseCode.ABNORMAL_CLOSURE))
    if code in _NAMED_CODES:
        return str(code)
    return "app" if 3000 <= code <= 4999 else "other"


def closed_by(rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None) -> ClosedBy:
    """Who started the closing handshake, seen from the server; ``neither`` for a dropped TCP."""
    if rcvd is not None and (sent is None or rcvd_then_sent):
        return "client"
    if sent is not None:
        return "server"
    return "neither"


# I/O shell


class Metrics(Protocol):
    """What the reference server reports, one call per event."""

    def accepted(self) -> None: ...
    def refused(self, reason: str, category: Category) -> None: ...
    def handshake(self, seconds: float) -> None: ...
    def message(self, seconds: float) -> None: ...
    def closed(self, code: int | None, by: ClosedBy) -> None: ...
    def render(self, accept: str | None) -> tuple[bytes, str] | None: ...


class NoMetrics:
    """Counts nothing: prometheus_client is not installed."""

    def accepted(self) -> None:
        """Nothing to count."""

    def refused(self, reason: str, category: Category) -> None:
        """Nothing to count."""

    def handshake(self, seconds: float) -> None:
        """Nothing to count."""

    def message(self, seconds: float) -> None:
        """Nothing to count."""

    def closed(self, code: int | None, by: ClosedBy) -> None:
        """Nothing to count."""

    def render(self, accept: str | None) -> tuple[bytes, str] | None:
        """None: ``/metrics`` answers 501 with ``INSTALL_HINT``."""
        return None


class ServerMetrics:
    """The metric set on its own ``prometheus_client`` registry; ``uptime`` reads seconds up."""

    def __init__(self, uptime: Callable[[], float], active: Callable[[], int]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        Gauge(
            f"{PREFIX}_connections_active", "WebSocket connections open now", registry=reg
        ).set_function(active)
        Gauge(
            f"{PREFIX}_uptime_seconds", "Seconds since the server started", registry=reg
        ).set_function(uptime)
        self._attempts = Counter(
            f"{PREFIX}_connection_attempts",
            "Upgrade requests by outcome (accepted, refused), category (ok, auth, origin, limit)",
            ["outcome", "category"],
            registry=reg,
        )
        self._refusals = Counter(
            f"{PREFIX}_refusals",
            "Refused connections by reason (missing_token, ..., foreign_origin, over_capacity)",
            ["reason", "category"],
            registry=reg,
        )
        self._handshake = Histogram(
            f"{PREFIX}_handshake_duration_seconds",
            "From the upgrade request to the connection's handler starting",
            buckets=HANDSHAKE_BUCKETS,
            registry=reg,
        )
        self._message = MessageTimes(
            f"{PREFIX}_message_handling_seconds",
            "Time to handle one received message (echo or control)",
        )
        reg.register(self._message)
        self._closes = Counter(
            f"{PREFIX}_closes",
            "Closed connections by close code (1006: no close frame) and who started closing",
            ["code", "by"],
            registry=reg,
        )
        self._attempts.labels("accepted", "ok")  # present from the start: rate() needs a zero

    def accepted(self) -> None:
        """One connection admitted."""
        self._attempts.labels("accepted", "ok").inc()

    def refused(self, reason: str, category: Category) -> None:
        """One connection refused, by HTTP status or by closing it at once."""
        self._attempts.labels("refused", category).inc()
        self._refusals.labels(reason, category).inc()

    def handshake(self, seconds: float) -> None:
        """One opening handshake's duration."""
        self._handshake.observe(seconds)

    def message(self, seconds: float) -> None:
        """One message's handling time."""
        self._message.observe(seconds)

    def closed(self, code: int | None, by: ClosedBy) -> None:
        """One accepted connection closed."""
        self._closes.labels(close_code_label(code), by).inc()

    def render(self, accept: str | None) -> tuple[bytes, str] | None:
        """The exposition in the format ``accept`` prefers (OpenMetrics for Prometheus)."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class MessageTimes:
    """The per-message histogram, counted without prometheus_client's per-observation locks.

    It is observed once per message, the server's hot path, on the one thread of its event
    loop; a ``Histogram.observe`` (two locked increments, ~1 µs) cost a measurable share of an
    echo, this ~0.3 µs. A scrape reads the counts as they are, and shows them as a
    ``Histogram`` would (the same ``le`` labels), without its optional ``_created`` sample.
    """

    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation = name, documentation
        self.counts = [0] * (len(MESSAGE_BUCKETS) + 1)  # the last one: above every bound
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(MESSAGE_BUCKETS, seconds)] += 1
        self.total += seconds

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import HistogramMetricFamily

        cumulative = list(itertools.accumulate(self.counts))
        bounds = [*(repr(float(bound)) for bound in MESSAGE_BUCKETS), "+Inf"]  # as Histogram
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=self.total,
        )


def make_metrics(uptime: Callable[[], float], active: Callable[[], int]) -> Metrics:
    """``ServerMetrics``, or ``NoMetrics`` when prometheus_client is not installed."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return NoMetrics()
    return ServerMetrics(uptime, active)
