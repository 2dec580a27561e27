"""pytest-wsconn wiring: options, ini keys, markers, hooks and reports. Logic lives elsewhere.

The fixtures are in ``fixtures.py``, the state kept per session and per test in ``state.py``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_wsconn import config as cfg
from pytest_wsconn.chaos_runner import (
    SEED_KEY,
    chaos_during,
    chaos_rounds,
    session_seed,
)
from pytest_wsconn.closecodes import APP_CODES, AppCode, parse_app_codes, use_app_codes
from pytest_wsconn.events import CURRENT_TEST, EventCollector, check_writable, open_log_file
from pytest_wsconn.events import logger as events_logger
from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.expect import ATTEMPT_IDS, fresh_attempt_ids
from pytest_wsconn.history.recorder import history_path, record_history
from pytest_wsconn.markers import MARKERS, check_markers, deselect_unless
from pytest_wsconn.redact import redact_url
from pytest_wsconn.report_sections import child_exits_report, failure_sections
from pytest_wsconn.session_metrics import publish, session_samples
from pytest_wsconn.session_report import build_report, per_worker, summary_line
from pytest_wsconn.stack import (
    describe_stack,
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
        optional = {"nargs": "?", "const": option.const} if option.const is not None else {}
        group.addoption(
            f"--wsconn-{option.name}",
            dest=f"wsconn_{option.key}",
            action=action,
            default=None,
            help=f"{option.help} (pytest-wsconn)",
            **optional,
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
        if settings.metrics_file:
            check_writable(Path(settings.metrics_file), "--wsconn-metrics-file")
        history = history_path(settings, config.rootpath)
        if history is not None:
            check_writable(history, "--wsconn-history")
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
    session.chaos_seed = session_seed(settings.chaos, getattr(config, "workerinput", None))
    session.history = history
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    check_markers(items)
    session = session_of(config)
    browser_checks = session.settings.frontend_origin is not None
    deselect_unless(config, items, "wsconn_browser_check", browser_checks)
    session.slow_deselected = deselect_unless(config, items, "wsconn_slow", session.settings.slow)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker runs under the controller's chaos seed, drawn or given."""
    session = session_of(node.config)
    node.workerinput[SEED_KEY] = session.chaos_seed
    session.xdist_controller = True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chaos_rounds(metafunc, session_of(metafunc.config))


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = session_of(config)
    header = [f"wsconn: {describe_stack(session.settings, config.rootpath)}"]
    if session.chaos_seed is not None:
        rounds = session.settings.chaos_rounds
        header.append(f"wsconn chaos: seed {session.chaos_seed}, {rounds} round(s)")
    return header


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Chaos mode: the test's drawn fault comes and goes while its body runs."""
    with chaos_during(item, session_of(item.config)):
        return (yield)


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
    if uses_wsconn and child_exits_report(session.stack, report, excinfo):
        return report  # a teardown that failed because of it: one line, nothing more
    test = item.stash.get(TEST, None)
    if not report.failed or test is None:
        return report
    shown = {name for name, _ in report.sections}
    for title, text in failure_sections(session, item, test):
        if text and title not in shown:
            report.sections.append((title, text))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """What was tested (under -q too), the session's connection figures, and a diagnosis that
    no failing test's report showed."""
    session = session_of(config)
    if session.history_error:
        terminalreporter.write_line(
            f"wsconn: the run history was not written: {session.history_error}"
        )
    if session.slow_deselected:
        terminalreporter.write_line(
            f"wsconn: {session.slow_deselected} slow security check(s) deselected "
            "(--wsconn-slow runs them)"
        )
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
    """Append to the run history, publish the session's metrics and write the JSON report (one
    file per xdist worker)."""
    wsconn = session.config.stash.get(SESSION, None)
    if wsconn is None:
        return
    record_history(session, wsconn)
    if wsconn.settings.metrics_file or wsconn.settings.pushgateway:
        samples = session_samples(wsconn.attempts, wsconn.outcomes, started=wsconn.started)
        problem = publish(wsconn.settings, xdist_ids(session.config)[1], samples)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if problem and reporter is not None:
            reporter.write_line(f"pytest-wsconn: session metrics: {problem}", yellow=True)
    if wsconn.settings.report is None or not wsconn.event_handlers:
        return
    collector = wsconn.event_handlers[0]
    assert isinstance(collector, EventCollector)
    path = per_worker(Path(wsconn.settings.report), xdist_ids(session.config)[1])
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
