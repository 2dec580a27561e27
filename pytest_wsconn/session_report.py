"""The session's figures and its JSON report: the input nightly trend monitoring reads.

Pure: built from the recorded attempts, the structured events and the test outcomes.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_wsconn.expect import ConnectionAttempt, classify

REPORT_VERSION = 1


def summarize(attempts: Sequence[ConnectionAttempt]) -> dict[str, Any]:
    """Connections opened and failed by category, and handshake percentiles (ms)."""
    handshakes = sorted(1000 * h for a in attempts if (h := a.handshake_seconds) is not None)
    failed = Counter(
        classify(a).category
        for a in attempts
        if a.ended is not None and a.handshake_seconds is None
    )
    percentiles: dict[str, float] = {}
    if len(handshakes) >= 2:
        cuts = statistics.quantiles(handshakes, n=100)
        percentiles = {"p50": round(cuts[49], 3), "p95": round(cuts[94], 3)}
    elif handshakes:
        percentiles = {"p50": round(handshakes[0], 3), "p95": round(handshakes[0], 3)}
    return {
        "attempts": len(attempts),
        "opened": len(handshakes),
        "failed": sum(failed.values()),
        "failed_by_category": dict(failed.most_common()),
        "handshake_ms": percentiles,
    }


def summary_line(attempts: Sequence[ConnectionAttempt]) -> str:
    """``12 connections opened, 3 failed (network 2, auth 1); handshake p50 …`` for the terminal."""
    figures = summarize(attempts)
    line = f"{figures['opened']} connections opened, {figures['failed']} failed"
    if figures["failed"]:
        line += " (" + ", ".join(f"{c} {n}" for c, n in figures["failed_by_category"].items()) + ")"
    if figures["opened"] >= 2:
        ms = figures["handshake_ms"]
        line += f"; handshake p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms"
    return line


def attempt_json(attempt: ConnectionAttempt) -> dict[str, Any]:
    error = classify(attempt)
    close = attempt.close
    return {
        "id": attempt.id,
        "url": attempt.url,
        "started_at": attempt.started_at,
        "outcome": attempt.outcome.value,
        "category": error.category,
        "message": error.message,
        "http_status": attempt.http_status,
        "handshake_ms": None
        if attempt.handshake_seconds is None
        else round(1000 * attempt.handshake_seconds, 3),
        "error": attempt.error,
        "close": None
        if close is None
        else {
            "code": close.code,
            "reason": close.reason,
            "received": close.received,
            "sent_code": close.sent_code,
            "lived_s": round(close.at - attempt.started, 3),
        },
    }


def build_report(
    *,
    stack: str,
    target: str | None,
    attempts: Sequence[ConnectionAttempt],
    events: Sequence[Mapping[str, Any]],
    outcomes: Mapping[str, tuple[str, float]],
    toxiproxy: str | None = None,
    created: float | None = None,
) -> dict[str, Any]:
    """Per test: outcome, duration, attempts and faults; plus the session's totals.

    ``target`` is the URL tested (token redacted), None when the stack never started.
    """
    test_ids = list(dict.fromkeys([*outcomes, *(a.test_id for a in attempts if a.test_id)]))
    tests = []
    for test_id in test_ids:
        outcome, duration = outcomes.get(test_id, ("unknown", 0.0))
        tests.append(
            {
                "id": test_id,
                "outcome": outcome,
                "duration_s": round(duration, 3),
                "attempts": [attempt_json(a) for a in attempts if a.test_id == test_id],
                "faults": [
                    {k: e[k] for k in ("event", "kind", "stream", "toxicity", "attributes", "wall")}
                    for e in events
                    if e.get("test_id") == test_id and str(e.get("event", "")).startswith("fault.")
                ],
                "reconnects_scheduled": sum(
                    1
                    for e in events
                    if e.get("test_id") == test_id and e.get("event") == "reconnect.scheduled"
                ),
            }
        )
    totals = summarize(attempts)
    totals["tests"] = dict(Counter(outcome for outcome, _ in outcomes.values()))
    return {
        "version": REPORT_VERSION,
        "created": time.time() if created is None else created,
        "stack": stack,
        "target": target,
        "toxiproxy": toxiproxy,
        "totals": totals,
        "tests": tests,
    }


def per_worker(path: Path, worker: str | None) -> Path:
    """A session output's path for one xdist worker (``report.gw0.json``); as given without one."""
    return path.with_name(f"{path.stem}.{worker}{path.suffix}") if worker else path
