"""A ``wsconn load`` summary as a run of the history (``wsconn load --history``). Pure."""

from __future__ import annotations

from pytest_wsconn.history.records import LoadRecord, LoadStep, RunRecord
from pytest_wsconn.load.summary import LoadSummary


def load_record(summary: LoadSummary) -> LoadRecord:
    """What the history keeps of a judged load summary: its verdict and per-step figures."""
    return LoadRecord(
        scenario=summary.scenario,
        users=summary.users,
        duration_s=summary.duration_s,
        passed=summary.passed,
        problems=tuple(summary.problems),
        steps=tuple(
            LoadStep(s.name, s.requests, s.failures, s.rate, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms)
            for s in summary.steps.values()
        ),
    )


def load_run(
    summary: LoadSummary,
    *,
    run_uid: str,
    started: float,
    host: str,
    stack: str,
    target: str | None,
    commit: str | None = None,
    branch: str | None = None,
) -> RunRecord:
    """The history's run (kind ``load``, no tests) of one load run."""
    return RunRecord(
        run_uid=run_uid,
        started=started,
        host=host,
        stack=stack,
        target=target,
        commit=commit,
        branch=branch,
        kind="load",
        load=load_record(summary),
    )
