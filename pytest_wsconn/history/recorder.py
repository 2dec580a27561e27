"""The plugin's side of the run history: what a session appends at its end (``--wsconn-history``).

Each xdist worker appends its own tests to the run they share; the controller, which ran none,
appends nothing.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from pytest_wsconn.config import Settings
from pytest_wsconn.exceptions import HistoryError
from pytest_wsconn.history import store
from pytest_wsconn.history.gitinfo import git_position
from pytest_wsconn.history.records import RunRecord, TestRecord, record_test
from pytest_wsconn.markers import marked_fault
from pytest_wsconn.redact import redact_url
from pytest_wsconn.state import TEST, WsconnSession, xdist_ids

DEFAULT_CHAOS_HISTORY = ".wsconn/history.sqlite"


def history_path(settings: Settings, root: Path) -> Path | None:
    """Where the session appends its run: ``--wsconn-history``, else a default in chaos mode."""
    if settings.history:
        return Path(settings.history)
    return root / DEFAULT_CHAOS_HISTORY if settings.chaos is not None else None


def _fault_of(item: pytest.Item) -> tuple[str | None, str | None]:
    """The fault a test ran under: its chaos draw, or its ``wsconn_fault`` for the whole test."""
    test = item.stash.get(TEST, None)
    if test is not None and test.chaos is not None:
        return test.chaos.kind, test.chaos.describe()
    try:
        fault = marked_fault(item)
    except Exception:  # checked at collection; a history must not fail a session
        return None, None
    return (fault.kind, f"{fault.kind} for the whole test") if fault else (None, None)


def session_run(session: pytest.Session, wsconn: WsconnSession) -> RunRecord:
    """This session's (or this xdist worker's) run record."""
    run_id, worker = xdist_ids(session.config)
    faults = {item.nodeid: _fault_of(item) for item in session.items}
    tests: list[TestRecord] = []
    for test_id, (outcome, duration) in wsconn.outcomes.items():
        kind, fault = faults.get(test_id, (None, None))
        tests.append(
            record_test(
                test_id,
                outcome,
                duration,
                wsconn.attempts,
                fault_kind=kind,
                fault=fault,
                worker=worker,
            )
        )
    commit, branch = git_position(session.config.rootpath)
    stack = wsconn.stack
    return RunRecord(
        run_uid=run_id or uuid.uuid4().hex,
        started=wsconn.started,
        host=socket.gethostname(),
        stack=wsconn.settings.stack,
        target=redact_url(stack.url) if stack is not None else None,
        commit=commit,
        branch=branch,
        chaos_seed=wsconn.chaos_seed,
        tests=tuple(tests),
    )


def record_history(session: pytest.Session, wsconn: WsconnSession) -> None:
    """Append the session's run to its history, if it keeps one (not from an xdist controller).

    A history that cannot be written does not fail the tests: the summary says why.
    """
    if wsconn.history is None or wsconn.xdist_controller:
        return
    try:
        store.append(wsconn.history, session_run(session, wsconn))
    except HistoryError as error:
        wsconn.history_error = str(error)
