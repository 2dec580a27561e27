"""What the run history keeps: one record per run, one per test in it. Pure.

``record_test`` turns what the plugin saw of a test (its outcome, its connection attempts, its
fault) into the figures the history stores and the trends read, and keeps a failing test's
connection timeline (the report's, tokens already redacted) for the dashboard.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence

from pytest_wsconn.expect import ConnectionAttempt, classify, timeline

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
FAILING = frozenset({FAILED, ERROR})


def percentiles(samples: Sequence[float]) -> tuple[float | None, float | None]:
    """p50 and p95 of ``samples`` (ms), rounded to the microsecond; None for no sample."""
    ordered = sorted(samples)
    if not ordered:
        return None, None
    if len(ordered) == 1:
        return round(ordered[0], 3), round(ordered[0], 3)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return round(cuts[49], 3), round(cuts[94], 3)


@dataclasses.dataclass(frozen=True)
class TestRecord:
    """One test in one run: outcome, duration (s), connections, fault and close codes."""

    __test__ = False  # not a pytest test class

    test_id: str
    outcome: str
    duration: float = 0.0
    attempts: int = 0
    categories: tuple[str, ...] = ()  # failure categories of its attempts, e.g. ("network",)
    handshakes_ms: tuple[float, ...] = ()
    fault_kind: str | None = None  # the chaos kind (or wsconn_fault kind) it ran under
    fault: str | None = None  # its description, e.g. "down at +0.204 s for 0.876 s"
    close_codes: tuple[int, ...] = ()
    worker: str | None = None
    timeline: str | None = None  # a failing test's connection timeline; None when it passed

    @property
    def handshake_p50(self) -> float | None:
        return percentiles(self.handshakes_ms)[0]

    @property
    def handshake_p95(self) -> float | None:
        return percentiles(self.handshakes_ms)[1]


@dataclasses.dataclass(frozen=True)
class LoadStep:
    """One request type of a load run (``connect``, ``message``, ...): counts and latencies."""

    name: str
    requests: int
    failures: int
    rate: float  # requests per second
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None


@dataclasses.dataclass(frozen=True)
class LoadRecord:
    """A ``wsconn load`` run's summary: scenario, users, its verdict and its steps."""

    scenario: str
    users: int
    duration_s: float
    passed: bool
    problems: tuple[str, ...] = ()  # why it failed, one line each
    steps: tuple[LoadStep, ...] = ()


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One pytest session (all its xdist workers) with its tests, or one load run (``load``)."""

    run_uid: str
    started: float  # wall clock
    host: str
    stack: str
    target: str | None = None  # token redacted
    commit: str | None = None
    branch: str | None = None
    chaos_seed: int | None = None
    kind: str = "pytest"  # or "load"
    tests: tuple[TestRecord, ...] = ()
    id: int | None = None  # its row in the history, in the order runs were first written
    load: LoadRecord | None = None  # a load run's summary (kind "load"); None for pytest runs

    @property
    def handshakes_ms(self) -> tuple[float, ...]:
        return tuple(h for test in self.tests for h in test.handshakes_ms)


def record_test(
    test_id: str,
    outcome: str,
    duration: float,
    attempts: Sequence[ConnectionAttempt],
    *,
    fault_kind: str | None = None,
    fault: str | None = None,
    worker: str | None = None,
) -> TestRecord:
    """The history's record of a test from its attempts (those whose ``test_id`` is its id)."""
    mine = [a for a in attempts if a.test_id == test_id]
    handshakes = tuple(round(1000 * h, 3) for a in mine if (h := a.handshake_seconds) is not None)
    # What went wrong: attempts that failed to open, and closes other than a normal one.
    ended = [a for a in mine if a.close is not None or a.ended is not None]
    categories = {classify(a).category for a in ended} - {"normal"}
    return TestRecord(
        test_id,
        outcome,
        round(duration, 3),
        len(mine),
        tuple(sorted(categories)),
        handshakes,
        fault_kind,
        fault,
        tuple(a.close.code for a in mine if a.close is not None),
        worker,
        timeline(mine) if outcome in FAILING and mine else None,
    )
