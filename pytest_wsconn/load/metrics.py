"""``wsconn load --pushgateway URL``: the run's figures as Prometheus gauges, pushed every few
seconds while it runs (a live view) and once at its end.

Pure: ``live_samples`` (the Locust master's live snapshot, ``wsconn.json.live``, written by
``load.reporting``) and ``final_samples`` (the judged ``LoadSummary``). Shell: ``PushTarget`` (one
push, on ``session_metrics.push``) and ``pushing_live`` (a thread that pushes the snapshot).
Every push replaces the group ``job`` + ``instance`` + ``scenario``; ``wsconn_load_running`` says
which view it is. A push that fails is said in one line; it never fails the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.load.summary import LoadSummary
from pytest_wsconn.redact import redact_url
from pytest_wsconn.session_metrics import Sample, push
from pytest_wsconn.timing import scaled

PREFIX = "wsconn_load"
HELP = {
    "running": "1 while the load run is under way (live pushes), 0 once it ended",
    "users": "Users of the load run: running now (live), the peak asked for (at the end)",
    "requests": "Requests of the load run so far, by step",
    "failures": "Failed requests of the load run so far, by step",
    "requests_per_second": "Requests per second by step: the last seconds (live), the run's rate",
    "latency_p50_seconds": "Median latency of the step's successful requests",
    "latency_p95_seconds": "95th percentile latency of the step's successful requests",
    "latency_p99_seconds": "99th percentile latency of the step's successful requests",
    "connections_opened": "WebSocket connections the load run opened",
    "counted_failures": "Failed requests that count against the run (a storm: outside its faults)",
    "passed": "1 when the load run's verdict is passed, 0 when it failed",
    "worst_recovery_seconds": "Reconnect storm: longest time to full recovery after a fault",
    "updated_timestamp_seconds": "When these figures were taken (Unix time)",
}


def _step_samples(
    step: str, requests: float, failures: float, rate: float, ms: Mapping[str, float | None]
) -> list[Sample]:
    labels = (("step", step),)
    samples = [
        Sample("requests", requests, labels),
        Sample("failures", failures, labels),
        Sample("requests_per_second", rate, labels),
    ]
    samples += [
        Sample(f"latency_{name}_seconds", value / 1000, labels)
        for name, value in ms.items()
        if value is not None
    ]
    return samples


def live_samples(snapshot: Mapping[str, Any]) -> list[Sample]:
    """The figures of a run under way, from the master's live snapshot."""
    samples = [
        Sample("running", 1),
        Sample("users", float(snapshot.get("users", 0))),
        Sample("updated_timestamp_seconds", float(snapshot.get("at", 0.0))),
    ]
    for step, row in sorted(snapshot.get("steps", {}).items()):
        ms = {name: row.get(f"{name}_ms") for name in ("p50", "p95")}
        samples += _step_samples(step, row["requests"], row["failures"], row["rate"], ms)
    return samples


def final_samples(summary: LoadSummary | None, now: float) -> list[Sample]:
    """The figures of an ended run; ``None``: Locust did not complete it (not passed)."""
    samples = [Sample("running", 0), Sample("updated_timestamp_seconds", now)]
    if summary is None:
        return [*samples, Sample("passed", 0)]
    samples += [
        Sample("passed", 1 if summary.passed else 0),
        Sample("users", summary.users),
        Sample("counted_failures", summary.counted_failures),
    ]
    if summary.connections_opened is not None:
        samples.append(Sample("connections_opened", summary.connections_opened))
    if summary.recovery is not None and summary.recovery.worst_recovery_s is not None:
        samples.append(Sample("worst_recovery_seconds", summary.recovery.worst_recovery_s))
    for s in summary.steps.values():
        ms = {"p50": s.p50_ms, "p95": s.p95_ms, "p99": s.p99_ms}
        samples += _step_samples(s.name, s.requests, s.failures, s.rate, ms)
    return samples


# I/O shells


@dataclasses.dataclass(frozen=True)
class PushTarget:
    """Where a run's figures go: a Pushgateway group."""

    url: str
    job: str
    grouping: Mapping[str, str]

    @classmethod
    def from_args(cls, url: str, job: str, instance: str | None, scenario: str) -> PushTarget:
        instance = instance or socket.gethostname()
        return cls(url, job, {"instance": instance, "scenario": scenario})

    def send(self, samples: Sequence[Sample]) -> str | None:
        """Push ``samples``; the one line a user reads when it could not be done, else None."""
        try:
            push(self.url, self.job, self.grouping, samples, prefix=PREFIX, helps=HELP)
        except (OSError, ConfigError) as exc:
            return f"could not push to {redact_url(self.url)}: {exc}"
        return None


class LivePush(threading.Thread):
    """Pushes the live snapshot every ``every`` seconds until stopped; says its first problem."""

    def __init__(
        self, target: PushTarget, snapshot: Path, every: float, say: Callable[[str], None]
    ) -> None:
        super().__init__(name="wsconn-live-push", daemon=True)
        self.target, self.snapshot, self.every, self.say = target, snapshot, every, say
        self.pushes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        said = False
        while not self._stop_event.wait(self.every):
            try:
                data = json.loads(self.snapshot.read_text())
            except (OSError, ValueError):
                continue  # Locust has not started yet, or runs no WebSocketUser
            problem = self.target.send(live_samples(data))
            self.pushes += problem is None
            if problem and not said:
                said = True
                self.say(f"wsconn load: live metrics: {problem}")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=scaled(15))


@contextlib.contextmanager
def pushing_live(
    target: PushTarget | None, snapshot: Path, every: float, say: Callable[[str], None]
) -> Iterator[None]:
    """While the body runs, push ``snapshot`` to ``target`` every ``every`` s (if a target)."""
    if target is None:
        yield
        return
    thread = LivePush(target, snapshot, every, say)
    thread.start()
    try:
        yield
    finally:
        thread.stop()
