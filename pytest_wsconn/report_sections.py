"""The wsconn sections of a failing test's report: timeline, diagnosis, chaos, clients, logs.

And what a dead stack process does to a report. Called by ``plugin.py``'s makereport hook.
"""

from __future__ import annotations

import time

import pytest

from pytest_wsconn.browser.timeline import joined_timeline
from pytest_wsconn.chaos_runner import chaos_report
from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.expect import timeline
from pytest_wsconn.stack import ServiceLogs, Stack, describe_child_exits, format_logs
from pytest_wsconn.state import WsconnSession, WsconnTest


def _service_logs(stack: Stack | None, test: WsconnTest) -> str | None:
    """The stack's service logs since the test started; None for a stack without logs."""
    if not isinstance(stack, ServiceLogs):
        return None
    try:
        return format_logs(stack.logs(test.started, time.time()))
    except Exception as exc:  # a report must not fail because Docker did
        return f"(could not read the compose logs: {exc})"


def _diagnosis_section(session: WsconnSession, item: pytest.Item, test: WsconnTest) -> str | None:
    """The session's diagnosis in full for the first failing test it applies to; a pointer after."""
    if not test.failed_unopened or session.diagnosis is None:
        return None
    if session.diagnosis_shown_in in (None, item.nodeid):
        session.diagnosis_shown_in = item.nodeid
        return f"no connection had opened in this session:\n\n{session.diagnosis}"
    return f"see the wsconn diagnostics in the report of {session.diagnosis_shown_in}"


def _timeline_section(test: WsconnTest) -> str | None:
    """The test's connections in one timeline: Python's alone, or joined with its pages'."""
    if test.browser_pages:
        return joined_timeline(test.attempts, test.browser_pages)
    return timeline(test.attempts) if test.attempts else None


def failure_sections(
    session: WsconnSession, item: pytest.Item, test: WsconnTest
) -> list[tuple[str, str | None]]:
    """A failing test's wsconn report sections, by title; None where there is nothing to show."""
    clients = "\n".join(client.describe() for client in test.clients)
    return [
        ("wsconn connection timeline", _timeline_section(test)),
        ("wsconn diagnostics", _diagnosis_section(session, item, test)),
        ("wsconn chaos", chaos_report(item, session)),
        ("wsconn reconnecting clients", clients or None),
        ("wsconn compose logs", _service_logs(session.stack, test)),
    ]


def child_exits_report(
    stack: Stack | None,
    report: pytest.TestReport,
    excinfo: pytest.ExceptionInfo[BaseException] | None,
) -> bool:
    """A process the stack started died: the failure says which, how, and its last log lines.

    A setup or teardown that failed only because of it (wsconn errors) shows that instead of its
    traceback; a teardown in one line, and then True.
    """
    if not report.failed or stack is None:
        return False
    explained = describe_child_exits(stack)
    if explained is None:
        return False
    error = excinfo.value if excinfo is not None else None
    consequence = isinstance(error, WsconnError) or (
        isinstance(error, BaseExceptionGroup) and error.split(WsconnError)[1] is None
    )
    if consequence and report.when == "teardown":
        headlines = describe_child_exits(stack, one_line=True)
        report.longrepr = f"pytest-wsconn: teardown could not reach the stack: {headlines}"
        return True
    if consequence and report.when == "setup":
        report.longrepr = f"pytest-wsconn: {explained}"
    else:
        report.sections.append(("wsconn stack processes", explained))
    return False
