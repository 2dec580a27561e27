"""pytest-wsconn wiring: options, ini keys, markers, hooks and reports. Logic lives elsewhere.

The fixtures are in ``fixtures.py``, the state kept per session and per test in ``state.py``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_wsconn import config as cfg
from pytest_wsconn.closecodes import APP_CODES, AppCode, parse_app_codes, use_app_codes
from pytest_wsconn.events import CURRENT_TEST, EventCollector, check_writable, open_log_file
from pytest_wsconn.events import logger as events_logger
from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.expect import ATTEMPT_IDS, fresh_attempt_ids, timeline
from pytest_wsconn.markers import MARKERS, check_markers
from pytest_wsconn.redact import redact_url
from pytest_wsconn.session_report import build_report, summary_line
from pytest_wsconn.stack import (
    ServiceLogs,
    Stack,
    describe_child_exits,
    describe_stack,
    format_logs,
)
from pytest_wsconn.state import (
    SESSION,
    TEST,
    WsconnSession,
    WsconnTest,
    session_of,
    xdist_ids,
)
from pytest_wsconn.timing import timeout_factor
from pytest_wsconn.tracebacks import without_library_frames

# The fixtures, the wsconn_load fixture and marker (Locust only ever runs in a child), and
# wsconn_browser (Playwright is imported when a test uses it).
pytest_plugins = [
    "pytest_wsconn.fixtures",
    "pytest_wsconn.load.fixture",
    "pytest_wsconn.browser.fixture",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsconn", "WebSocket connection testing (pytest-wsconn)")
    for option in cfg.OPTIONS:
        action = "store_true" if option.flag else "append" if option.multiple else "store"
        group.addoption(
            f"--wsconn-{option.name}",
            dest=f"wsconn_{option.key}",
            action=action,
            default=None,
            help=f"{option.help} (pytest-wsconn)",
        )
        ini_help = f"default for --wsconn-{option.name} (pytest-wsconn)"
        if option.multiple:
            parser.addini(f"wsconn_{option.key}", ini_help, type="linelist")
        else:
            parser.addini(f"wsconn_{option.key}", ini_help)
    parser.addini(
        "wsconn_close_codes",
        "your application's close codes, one a line: '4001: no-retry: session revoked' "
        "(pytest-wsconn)",
        type="linelist",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_wsconn import hooks

    pluginmanager.add_hookspecs(hooks)
    # Our fixtures are async: bring pytest-asyncio along when plugin autoloading is off
    # (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 pytest -p wsconn), as `-p asyncio` would.
    if not pluginmanager.has_plugin("asyncio"):
        pluginmanager.load_setuptools_entrypoints("pytest11", name="asyncio")


def _read_settings(config: pytest.Config) -> cfg.Settings:
    keys = [option.key for option in cfg.OPTIONS]
    return cfg.resolve(
        cli={key: config.getoption(f"wsconn_{key}") for key in keys},
        env=os.environ,
        ini={key: config.getini(f"wsconn_{key}") for key in keys},
    )


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    handlers: list[logging.Handler] = []
    try:
        settings = _read_settings(config)
        app_codes = parse_app_codes(config.getini("wsconn_close_codes"))
        timeout_factor()  # checked once here: every later wait trusts it
        if settings.log_file or settings.report:
            handlers.append(EventCollector())
        if settings.report:
            check_writable(Path(settings.report), "--wsconn-report")
        if settings.log_file:
            handlers.append(open_log_file(Path(settings.log_file), "--wsconn-log-file"))
    except WsconnError as error:
        raise pytest.UsageError(f"pytest-wsconn: {error}") from None

    def lookup(code: int) -> AppCode | None:
        hooked: AppCode | None = config.hook.pytest_wsconn_close_code(code=code, config=config)
        return hooked if hooked is not None else app_codes.get(code)

    session = WsconnSession(settings, use_app_codes(lookup), fresh_attempt_ids())
    session.event_handlers.extend(handlers)
    session.previous_sigterm = _interrupt_on_sigterm()
    config.stash[SESSION] = session
    if handlers:
        events_logger.setLevel(logging.INFO)
        for handler in handlers:
            events_logger.addHandler(handler)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _interrupt_on_sigterm() -> signal.Handlers | None:
    """Make SIGTERM (a CI cancel, `timeout`) end the session like Ctrl-C: torn down in order.

    Without it pytest dies at once and a compose stack keeps running. Only where nobody else
    handles SIGTERM; returns the handler to restore, None when it left SIGTERM alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return signal.SIG_DFL


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is None:
        return
    APP_CODES.reset(session.app_codes)
    ATTEMPT_IDS.reset(session.attempt_ids)
    if session.previous_sigterm is not None:
        signal.signal(signal.SIGTERM, session.previous_sigterm)
    for handler in session.event_handlers:
        events_logger.removeHandler(handler)
        handler.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    check_markers(items)


def pytest_report_header(config: pytest.Config) -> str:
    return f"wsconn: {describe_stack(session_of(config).settings, config.rootpath)}"


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """Remember the session's stack, whichever fixture made it: ours or the user's override."""
    value = yield
    if fixturedef.argname == "wsconn_stack" and SESSION in request.config.stash:
        session_of(request.config).record_stack(value)
    return value


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[TEST] = WsconnTest()


def pytest_runtest_logstart(nodeid: str) -> None:
    CURRENT_TEST.set(nodeid)


def pytest_runtest_logfinish() -> None:
    CURRENT_TEST.set(None)


def _record_outcome(outcomes: dict[str, tuple[str, float]], report: pytest.TestReport) -> None:
    """A test's outcome for the JSON report: its call's, or "error" when setup/teardown failed."""
    outcome, duration = outcomes.get(report.nodeid, ("passed", 0.0))
    if report.when == "call" or (report.when == "setup" and report.skipped):
        outcome = report.outcome
    elif report.failed:
        outcome = "error"
    outcomes[report.nodeid] = (outcome, duration + report.duration)


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


def _failure_sections(
    session: WsconnSession, item: pytest.Item, test: WsconnTest
) -> list[tuple[str, str | None]]:
    """A failing test's wsconn report sections, by title; None where there is nothing to show."""
    clients = "\n".join(client.describe() for client in test.clients)
    pages = "\n\n".join(page.render() for page in test.browser_pages)
    return [
        ("wsconn connection timeline", timeline(test.attempts) if test.attempts else None),
        ("wsconn diagnostics", _diagnosis_section(session, item, test)),
        ("wsconn reconnecting clients", clients or None),
        ("wsconn browser timeline", pages or None),
        ("wsconn compose logs", _service_logs(session.stack, test)),
    ]


def _child_exits_report(
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    session = session_of(item.config)
    uses_wsconn = "wsconn_stack" in getattr(item, "fixturenames", ())
    if call.excinfo is not None and uses_wsconn and not item.config.getoption("fulltrace"):
        call.excinfo = without_library_frames(call.excinfo) or call.excinfo
    excinfo = call.excinfo
    report = yield
    _record_outcome(session.outcomes, report)
    if excinfo is not None and excinfo.value is session.stack_failure:
        if session.stack_failure_shown_in is None:
            session.stack_failure_shown_in = item.nodeid
        elif session.stack_failure_shown_in != item.nodeid:
            report.longrepr = (
                f"pytest-wsconn: the {session.settings.stack} stack did not start; the cause is "
                f"shown once, in the error of {session.stack_failure_shown_in}"
            )
    if uses_wsconn and _child_exits_report(session.stack, report, excinfo):
        return report  # a teardown that failed because of it: one line, nothing more
    test = item.stash.get(TEST, None)
    if not report.failed or test is None:
        return report
    shown = {name for name, _ in report.sections}
    for title, text in _failure_sections(session, item, test):
        if text and title not in shown:
            report.sections.append((title, text))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """What was tested (under -q too), the session's connection figures, and a diagnosis that
    no failing test's report showed."""
    session = session_of(config)
    if session.tested is None and session.stack_failure is None:
        return
    terminalreporter.write_sep("-", "wsconn summary")
    if session.tested is not None:
        terminalreporter.write_line(f"tested {session.tested}")
    else:
        terminalreporter.write_line(
            f"nothing was tested: the {session.settings.stack} stack did not start"
        )
    if session.attempts:
        terminalreporter.write_line(summary_line(session.attempts))
    failed = terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")
    if session.diagnosis and session.diagnosis_shown_in is None and failed:
        terminalreporter.write_sep("-", "wsconn diagnostics")
        terminalreporter.write_line(
            f"no connection had opened in this session:\n\n{session.diagnosis}"
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the JSON report (``--wsconn-report``), one file per xdist worker."""
    wsconn = session.config.stash.get(SESSION, None)
    if wsconn is None or wsconn.settings.report is None or not wsconn.event_handlers:
        return
    collector = wsconn.event_handlers[0]
    assert isinstance(collector, EventCollector)
    path = Path(wsconn.settings.report)
    _, worker = xdist_ids(session.config)
    if worker:  # report.gw0.json, ...
        path = path.with_name(f"{path.stem}.{worker}{path.suffix}")
    stack = wsconn.stack
    report = build_report(
        stack=wsconn.settings.stack,
        target=redact_url(stack.url) if stack is not None else None,
        toxiproxy=wsconn.toxiproxy_version,
        attempts=wsconn.attempts,
        events=collector.events,
        outcomes=wsconn.outcomes,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
