"""The run history as a user reads it: a list of runs, CSV and JSON exports. Pure."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections import Counter
from collections.abc import Sequence

from pytest_wsconn.history.records import LoadRecord, RunRecord
from pytest_wsconn.history.trends import run_p95, success_rate

CSV_COLUMNS = (
    "run",
    "run_uid",
    "started",
    "host",
    "stack",
    "target",
    "commit",
    "branch",
    "chaos_seed",
    "kind",
    "test_id",
    "worker",
    "outcome",
    "duration",
    "attempts",
    "categories",
    "handshake_p50",
    "handshake_p95",
    "fault_kind",
    "fault",
    "close_codes",
    "timeline",
)


def _when(started: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))


def _where(run: RunRecord) -> str:
    return f"{run.branch or '-'}@{(run.commit or '-')[:8]}"


def load_line(load: LoadRecord) -> str:
    """``load steady_messaging, 4 users, 3 s: 1,234 requests, 0 failed; connect p95 2.1 ms; …``."""
    requests = sum(step.requests for step in load.steps)
    failures = sum(step.failures for step in load.steps)
    line = f"load {load.scenario}, {load.users} users, {load.duration_s:g} s: "
    line += f"{requests:,} requests, {failures:,} failed"
    line += "".join(
        f"; {step.name} p95 {step.p95_ms:.1f} ms" for step in load.steps if step.p95_ms is not None
    )
    return line + ("; passed" if load.passed else "; FAILED")


def run_line(run: RunRecord) -> str:
    """``#3 2024-05-01 03:00:00 UTC main@1a2b3c4d local: 12 passed, 2 failed; 85.7% …``."""
    if run.load is not None:
        return f"#{run.id} {_when(run.started)} {_where(run)} {run.stack}: {load_line(run.load)}"
    outcomes = Counter(test.outcome for test in run.tests)
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "no tests"
    line = f"#{run.id} {_when(run.started)} {_where(run)} {run.stack}: {counts}"
    rate = success_rate(run)
    if rate is not None:
        line += f"; {100 * rate:.1f}% passed"
    p95 = run_p95(run)
    if p95 is not None:
        line += f"; handshake p95 {p95:.1f} ms"
    if run.chaos_seed is not None:
        line += f"; chaos seed {run.chaos_seed}"
    return line


def to_csv(runs: Sequence[RunRecord]) -> str:
    """One row per test of every run, with its run's columns (``CSV_COLUMNS``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run in runs:
        for test in run.tests:
            writer.writerow(
                [
                    run.id,
                    run.run_uid,
                    _when(run.started),
                    run.host,
                    run.stack,
                    run.target or "",
                    run.commit or "",
                    run.branch or "",
                    "" if run.chaos_seed is None else run.chaos_seed,
                    run.kind,
                    test.test_id,
                    test.worker or "",
                    test.outcome,
                    test.duration,
                    test.attempts,
                    " ".join(test.categories),
                    "" if test.handshake_p50 is None else test.handshake_p50,
                    "" if test.handshake_p95 is None else test.handshake_p95,
                    test.fault_kind or "",
                    test.fault or "",
                    " ".join(map(str, test.close_codes)),
                    test.timeline or "",
                ]
            )
    return out.getvalue()


def to_json(runs: Sequence[RunRecord]) -> str:
    """Every run with its tests, as the records hold them."""
    return json.dumps([dataclasses.asdict(run) for run in runs], indent=2) + "\n"
