"""A load run's summary: Locust's CSV rows, our histograms and the storm's recovery, as text —
and its verdict.

Pure: it takes the texts and the data the runner read and returns values; no files, no clock.

The verdict follows Locust's convention (a non-zero exit when any request failed), so green
means the load was served: a run fails when

- no connection ever opened (a ``WebSocketUser`` run), whatever the limits;
- any request failed, unless ``--max-failure-ratio`` allows a share — in a reconnect storm only
  the failures outside its faults count (those inside are expected and reported);
- a storm's users did not all come back after a fault;
- a threshold was breached.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_wsconn.load.histogram import Histogram
from pytest_wsconn.load.recovery import FaultWindow, RecoveryReport, recovery_report
from pytest_wsconn.load.thresholds import Breach, Figures, Thresholds, evaluate

STEPS = ("connect", "auth", "message", "ping", "close")
"""The request names load users fire, in the order a connection lives them."""


@dataclasses.dataclass(frozen=True)
class StepSummary:
    """One request type: counts from Locust, latencies from our histograms (else Locust's)."""

    name: str
    requests: int
    failures: int
    rate: float  # requests per second
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    other_messages: int = 0  # received during the step, not its reply (broadcasts, pushes)


@dataclasses.dataclass(frozen=True)
class FailureRow:
    """A line of Locust's failure table."""

    step: str
    error: str
    occurrences: int


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


def parse_stats_csv(text: str) -> dict[str, dict[str, str]]:
    """Locust's ``<prefix>_stats.csv``: rows by request name, without the Aggregated row."""
    rows = csv.DictReader(io.StringIO(text))
    return {row["Name"]: row for row in rows if row.get("Name") and row["Name"] != "Aggregated"}


def parse_failures_csv(text: str) -> list[FailureRow]:
    """Locust's ``<prefix>_failures.csv``, most frequent first."""
    rows = [
        FailureRow(row["Name"], row["Error"], int(row["Occurrences"] or 0))
        for row in csv.DictReader(io.StringIO(text))
        if row.get("Name")
    ]
    return sorted(rows, key=lambda row: (-row.occurrences, row.step, row.error))


def step_summaries(
    stats: Mapping[str, Mapping[str, str]],
    histograms: Mapping[str, Histogram],
    others: Mapping[str, int] | None = None,
    *,
    ours: bool = True,
) -> dict[str, StepSummary]:
    """Per request name: Locust's counts and rate; latencies of successful requests from
    ``histograms`` (none for a step that never succeeded) when ``ours`` (a WebSocketUser run),
    else Locust's own figures; the other messages each step received."""
    others = others or {}
    names = sorted(
        set(stats) | set(histograms) | set(others),
        key=lambda n: (n not in STEPS, STEPS.index(n) if n in STEPS else 0, n),
    )
    steps = {}
    for name in names:
        row = stats.get(name, {})
        histogram = histograms.get(name)
        top: float | None
        if histogram is not None and histogram.count:
            p50, p95, p99 = (histogram.percentile(q) for q in (0.5, 0.95, 0.99))
            top = histogram.max_ms
        elif ours:  # our users report successes only: this step had none
            p50 = p95 = p99 = top = None
        else:  # a locustfile without WebSocketUser: Locust's own (whole-ms) figures
            p50, p95, p99 = (_number(row.get(k)) for k in ("50%", "95%", "99%"))
            top = _number(row.get("Max Response Time"))
        steps[name] = StepSummary(
            name=name,
            requests=int(
                _number(row.get("Request Count")) or (histogram.count if histogram else 0)
            ),
            failures=int(_number(row.get("Failure Count")) or 0),
            rate=_number(row.get("Requests/s")) or 0.0,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            max_ms=top,
            other_messages=int(others.get(name, 0)),
        )
    return steps


@dataclasses.dataclass
class LoadSummary:
    """Everything ``wsconn load`` prints and writes to ``summary.json``."""

    scenario: str
    users: int
    duration_s: float
    steps: dict[str, StepSummary]
    failures: list[FailureRow]
    workers: dict[str, int]  # worker id -> requests it reported (empty: one local process)
    connections_opened: int | None = None  # None: the locustfile has no WebSocketUser
    recovery: RecoveryReport | None = None
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    breaches: list[Breach] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)  # empty: the run passed
    reports: list[str] = dataclasses.field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(step.requests for step in self.steps.values())

    @property
    def failure_count(self) -> int:
        return sum(step.failures for step in self.steps.values())

    @property
    def counted_failures(self) -> int:
        """Failed requests that fail the run: all, but in a storm only those outside its faults
        (every failed step records one timeline event, which the storm report places)."""
        if self.recovery is None:
            return self.failure_count
        return min(self.recovery.unexpected, self.failure_count)

    @property
    def passed(self) -> bool:
        return not self.problems

    def figures(self) -> Figures:
        """The figures thresholds check."""
        connect = self.steps.get("connect")
        message = self.steps.get("message")
        return Figures(
            requests=self.requests,
            failures=self.counted_failures,
            p95_connect_ms=connect.p95_ms if connect else None,
            p95_rtt_ms=message.p95_ms if message else None,
        )

    def judge(self) -> None:
        """Set ``breaches`` and ``problems`` from the figures and ``thresholds``."""
        self.breaches = evaluate(self.thresholds, self.figures())
        self.problems = find_problems(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``summary.json``)."""
        data = dataclasses.asdict(self)
        data["breaches"] = [str(b) for b in self.breaches]
        data["failed_thresholds"] = [b.option for b in self.breaches]
        data["requests"] = self.requests
        data["failure_count"] = self.failure_count
        data["counted_failures"] = self.counted_failures
        data["passed"] = self.passed
        if self.recovery is not None:
            data["recovery"]["failed_connections"] = self.recovery.failed_connections
            data["recovery"]["fully_recovered"] = self.recovery.fully_recovered
            data["recovery"]["worst_recovery_s"] = self.recovery.worst_recovery_s
        return data

    def format(self) -> str:
        """The summary a person reads at the end of a run."""
        lines = [self._headline(), _table(list(self.steps.values()))]
        if self.failures:
            lines.append("failures (Locust's failure table):")
            lines += [f"  {f.occurrences:>6}x {f.step}: {f.error}" for f in self.failures[:10]]
            if len(self.failures) > 10:
                lines.append(f"  … and {len(self.failures) - 10} more kinds")
        if self.recovery is not None:
            lines += describe_recovery(self.recovery)
        others = [f"{s.name} {s.other_messages:,}" for s in self.steps.values() if s.other_messages]
        if others:
            lines.append(
                "other messages (broadcasts, pushes; never the end of a round trip): "
                + ", ".join(others)
            )
        lines += self._verdict()
        if self.reports:
            lines.append("reports: " + ", ".join(self.reports))
        return "\n".join(lines)

    def _verdict(self) -> list[str]:
        if self.problems:
            return ["verdict: FAILED", *[f"  {problem}" for problem in self.problems]]
        failed, counted = self.failure_count, self.counted_failures
        if not failed:
            why = "no request failed"
        elif not counted:
            why = f"{failed:,} failed requests, all inside the faults"
        else:
            ratio = self.thresholds.max_failure_ratio
            why = f"{counted:,} of {self.requests:,} requests failed"
            why += f", within --max-failure-ratio {ratio:g}"
        limits = sum(value is not None for value in dataclasses.astuple(self.thresholds))
        if limits:
            why += f"; {limits} threshold{'s' if limits > 1 else ''} met"
        return [f"verdict: passed: {why}"]

    def _headline(self) -> str:
        text = f"wsconn load: {self.scenario}, {self.users} users, {self.duration_s:g} s"
        text += f", {self.requests:,} requests, {self.failure_count:,} failed"
        if self.workers:
            shares = ", ".join(f"{w} {n:,}" for w, n in sorted(self.workers.items()))
            text += f"; {len(self.workers)} workers ({shares})"
        return text


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _table(steps: Sequence[StepSummary]) -> str:
    header = ("step", "requests", "failures", "rate/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
    rows = [header] + [
        (
            s.name,
            f"{s.requests:,}",
            f"{s.failures:,}",
            f"{s.rate:,.1f}",
            _ms(s.p50_ms),
            _ms(s.p95_ms),
            _ms(s.p99_ms),
            _ms(s.max_ms),
        )
        for s in steps
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def describe_recovery(report: RecoveryReport) -> list[str]:
    """The reconnect storm's lines: per fault, what broke and how the users came back."""
    verdict = "fully recovered" if report.fully_recovered else "NOT fully recovered"
    lines = [
        f"reconnect storm: {len(report.windows)} faults, {report.failed_connections} failed "
        f"connections, {verdict}, worst time to full recovery {_s(report.worst_recovery_s)}, "
        f"{report.unexpected} failures outside the faults"
    ]
    for w in report.windows:
        span = w.window.end - w.window.start
        lines.append(
            f"  {w.window.kind:<10} for {span:.1f} s: {w.lost_connections} connections lost, "
            f"{w.failed_connections} attempts failed; {w.recovered}/{w.affected} users back, "
            f"full recovery {_s(w.full_recovery_s)} after the fault ended, reconnect spread "
            f"{_s(w.spread_s)} (p50 {_s(w.reconnect_p50_s)}, p95 {_s(w.reconnect_p95_s)})"
        )
    return lines


def find_problems(summary: LoadSummary) -> list[str]:
    """Why the run fails, one line each (see the module docstring); empty: it passed."""
    problems = []
    counted = summary.counted_failures
    if summary.connections_opened == 0:
        problems.append(_no_connection(summary))
    elif counted and summary.thresholds.max_failure_ratio is None:
        text = f"{counted:,} of {summary.requests:,} requests failed"
        if summary.recovery is not None:
            text += " outside the faults"
        elif summary.failures:
            text += f", most often {summary.failures[0].error}"
        problems.append(f"{text}; allow a share with --max-failure-ratio")
    if summary.recovery is not None and not summary.recovery.fully_recovered:
        missing = ", ".join(
            f"{w.window.kind} {w.recovered}/{w.affected} users back"
            for w in summary.recovery.windows
            if not w.fully_recovered
        )
        problems.append(f"not every user reconnected after the faults: {missing}")
    problems += [f"threshold failed: {breach}" for breach in summary.breaches]
    return problems


def _no_connection(summary: LoadSummary) -> str:
    if not summary.requests:
        return "no connection ever opened: no attempt was recorded"
    text = (
        f"no connection ever opened: {summary.failure_count:,} of {summary.requests:,} "
        "requests failed"
    )
    if summary.failures:
        top = summary.failures[0]
        text += f", most often {top.error}"
    return text


def build_summary(
    *,
    scenario: str,
    users: int,
    duration_s: float,
    stats_csv: str,
    failures_csv: str,
    result: Mapping[str, Any],
    windows: Sequence[FaultWindow] = (),
    end: float | None = None,
    grace: float = 1.0,
    thresholds: Thresholds | None = None,
) -> LoadSummary:
    """The judged summary of one run from Locust's CSV texts and the master's ``result`` data
    (empty when the locustfile has no ``WebSocketUser``)."""
    histograms = {
        name: Histogram.from_dict(data) for name, data in result.get("histograms", {}).items()
    }
    recovery = None
    if windows:
        events = [(float(t), str(u), k) for t, u, k in result.get("timeline", [])]
        last = end if end is not None else max((e[0] for e in events), default=0.0)
        recovery = recovery_report(events, windows, last, grace)
    steps = step_summaries(
        parse_stats_csv(stats_csv), histograms, result.get("others"), ours=bool(result)
    )
    opened = None
    if result:
        connect = steps.get("connect")
        opened = connect.requests - connect.failures if connect else 0
    summary = LoadSummary(
        scenario=scenario,
        users=users,
        duration_s=duration_s,
        steps=steps,
        failures=parse_failures_csv(failures_csv),
        workers={str(k): int(v) for k, v in result.get("workers", {}).items()},
        connections_opened=opened,
        recovery=recovery,
        thresholds=thresholds or Thresholds(),
    )
    summary.judge()
    return summary
