"""pytest-wsconn wiring: options, ini keys, markers, fixtures, reports. Logic lives elsewhere."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
import json
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from pytest_wsconn import config as cfg
from pytest_wsconn.client import Connector, InstrumentedConnection, connect
from pytest_wsconn.closecodes import (
    APP_CODES,
    AppCode,
    AppCodeLookup,
    parse_app_codes,
    use_app_codes,
)
from pytest_wsconn.diagnostics import ConnectionDiagnostics
from pytest_wsconn.events import CURRENT_TEST, EventCollector, JsonLinesHandler
from pytest_wsconn.events import logger as events_logger
from pytest_wsconn.exceptions import ConfigError, ConnectFailed, WsconnError
from pytest_wsconn.expect import ATTEMPT_IDS, ConnectionAttempt, fresh_attempt_ids, timeline
from pytest_wsconn.faults import Fault, make_fault
from pytest_wsconn.reconnect import ReconnectingClient
from pytest_wsconn.redact import Secret, redact_url
from pytest_wsconn.results import render_checks
from pytest_wsconn.session_report import build_report, summary_line
from pytest_wsconn.stack import Stack, describe_stack, describe_tested, open_stack
from pytest_wsconn.timing import scaled, timeout_factor
from pytest_wsconn.tokens import Tokens
from pytest_wsconn.toxiproxy import Proxy
from pytest_wsconn.tracebacks import without_library_frames


@dataclasses.dataclass
class WsconnSession:
    """Everything the plugin keeps for one pytest session, stashed once on the config."""

    settings: cfg.Settings
    # This session's application close codes and attempt numbering, undone at its end (a
    # pytester session nested in ours sets its own).
    app_codes: contextvars.Token[AppCodeLookup]
    attempt_ids: contextvars.Token[Iterator[int] | None]
    attempts: list[ConnectionAttempt] = dataclasses.field(default_factory=list)
    outcomes: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)
    event_handlers: list[logging.Handler] = dataclasses.field(default_factory=list)
    stack: Stack | None = None  # the session's stack, once a test has asked for it
    tested: str | None = None  # what the session tested, for the summary and the JSON report
    toxiproxy_version: str | None = None
    # Why the stack did not start (raised once, re-raised by pytest for each later test), and
    # the test whose error shows it in full.
    stack_failure: BaseException | None = None
    stack_failure_shown_in: str | None = None
    # The service diagnosed once, when a connection failed before any had opened, and the
    # failing test whose report shows it.
    diagnosis: str | None = None
    diagnosis_shown_in: str | None = None
    previous_sigterm: signal.Handlers | None = None  # restored at the end when we set ours


@dataclasses.dataclass
class WsconnTest:
    """What the plugin keeps for one test, for its report."""

    started: float = dataclasses.field(default_factory=time.time)  # its compose logs' window
    attempts: list[ConnectionAttempt] = dataclasses.field(default_factory=list)
    clients: list[ReconnectingClient] = dataclasses.field(default_factory=list)
    failed_unopened: bool = False  # a connect failed before any in the session had opened


SESSION = pytest.StashKey[WsconnSession]()
TEST = pytest.StashKey[WsconnTest]()


def _test(item: pytest.Item) -> WsconnTest:
    return item.stash.setdefault(TEST, WsconnTest())


# The wsconn_load fixture and marker; Locust itself only ever runs in a child process.
pytest_plugins = ["pytest_wsconn.load.fixture"]


@dataclasses.dataclass(frozen=True)
class _Option:
    name: str
    field: str  # in cfg.Settings
    help: str
    parse: Callable[[Any], Any]
    env: str | None = None
    multiple: bool = False  # repeatable option, linelist ini key; the field is a tuple
    flag: bool = False  # an option without a value; the ini key takes true/false


def _compose_service(text: str) -> Any:  # a compose Target
    """``SERVICE:PORT[/PATH]``, parsed now so a typo is a usage error, not a failed session."""
    from pytest_wsconn.stack.compose.spec import parse_target

    return parse_target(text)


_OPTIONS = (
    _Option(
        "stack",
        "stack",
        "stack to test against: local (default), external or compose",
        cfg.parse_stack,
    ),
    _Option(
        "url", "url", "WebSocket URL of your running service (ws:// or wss://)", cfg.parse_ws_url
    ),
    _Option(
        "token",
        "token",
        "token for your service (or env WSCONN_TOKEN)",
        Secret,
        env="WSCONN_TOKEN",
    ),
    _Option("auth", "auth", f"where the token goes: {cfg.AUTH_SYNTAX}", cfg.parse_auth_mode),
    _Option("origin", "origin", "Origin header sent by test connections", str),
    _Option(
        "toxiproxy", "toxiproxy_url", "URL of a running Toxiproxy API to use", cfg.parse_http_url
    ),
    _Option(
        "toxiproxy-bin",
        "toxiproxy_bin",
        "path of toxiproxy-server (or env WSCONN_TOXIPROXY_BIN)",
        str,
    ),
    _Option("log-file", "log_file", "write connection events as JSON lines to this file", str),
    _Option("report", "report", "write a JSON report of the session to this file", str),
    _Option(
        "timeout", "timeout", "opening-handshake timeout in seconds (default 10)", cfg.parse_timeout
    ),
    _Option(
        "compose-file",
        "compose_files",
        "compose file of --wsconn-stack=compose, repeatable (default docker-compose.test.yml)",
        str,
        multiple=True,
    ),
    _Option(
        "compose-service",
        "compose_services",
        "the WebSocket service of the compose project, SERVICE:PORT[/PATH], repeatable; "
        "wsconn_proxy fronts the first (default: the bundled nginx:80/ws and backend:8765/ws)",
        _compose_service,
        multiple=True,
    ),
    _Option(
        "compose-project",
        "compose_project",
        "compose project name (default: unique per run, shared by its xdist workers)",
        str,
    ),
    _Option(
        "keep-stack",
        "keep_stack",
        "leave the compose stack running at the end, and reuse it next run",
        cfg.parse_flag,
        flag=True,
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wsconn", "WebSocket connection testing (pytest-wsconn)")
    for option in _OPTIONS:
        key = option.name.replace("-", "_")
        action = "store_true" if option.flag else "append" if option.multiple else "store"
        group.addoption(
            f"--wsconn-{option.name}",
            dest=f"wsconn_{key}",
            action=action,
            default=None,
            help=f"{option.help} (pytest-wsconn)",
        )
        ini_help = f"default for --wsconn-{option.name} (pytest-wsconn)"
        if option.multiple:
            parser.addini(f"wsconn_{key}", ini_help, type="linelist")
        else:
            parser.addini(f"wsconn_{key}", ini_help)
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
    """Command line wins over the environment, which wins over the ini file."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # field -> where its value came from, for usage errors
    for option in _OPTIONS:
        key = option.name.replace("-", "_")
        raw, source = config.getoption(f"wsconn_{key}"), f"--wsconn-{option.name}"
        if raw is None and option.env:
            raw, source = os.environ.get(option.env) or None, option.env
        if raw is None:
            raw, source = config.getini(f"wsconn_{key}") or None, f"ini wsconn_{key}"
        if raw is not None:
            parsed = [option.parse(r) for r in raw] if option.multiple else option.parse(raw)
            values[option.field] = tuple(parsed) if option.multiple else parsed
            sources[option.field] = source
    values["stack"] = cfg.resolve_stack(
        values.get("stack"),
        values.get("url"),
        stack_from=sources.get("stack", "--wsconn-stack"),
        url_from=sources.get("url", "--wsconn-url"),
    )
    return cfg.Settings(**values)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wsconn_fault(kind, **attributes): apply a Toxiproxy fault for the whole test, e.g. "
        "wsconn_fault('latency', ms=300) (pytest-wsconn)",
    )
    config.addinivalue_line(
        "markers",
        "wsconn_container_fault(kind, service, **params): restart, kill, pause or partition a "
        "compose service for the whole test, e.g. wsconn_container_fault('pause', "
        "service='backend') (pytest-wsconn)",
    )
    try:
        settings = _read_settings(config)
        app_codes = parse_app_codes(config.getini("wsconn_close_codes"))
    except WsconnError as error:
        raise pytest.UsageError(f"pytest-wsconn: {error}") from None

    def lookup(code: int) -> AppCode | None:
        hooked: AppCode | None = config.hook.pytest_wsconn_close_code(code=code, config=config)
        return hooked if hooked is not None else app_codes.get(code)

    handlers: list[logging.Handler] = []
    if settings.log_file or settings.report:
        handlers.append(EventCollector())
    try:
        timeout_factor()  # checked once here: every later wait trusts it
        if settings.report:
            _check_writable(Path(settings.report), "--wsconn-report")
        if settings.log_file:
            handlers.append(_open_log_file(Path(settings.log_file)))
    except WsconnError as error:
        raise pytest.UsageError(f"pytest-wsconn: {error}") from None
    session = WsconnSession(settings, use_app_codes(lookup), fresh_attempt_ids())
    session.event_handlers.extend(handlers)
    session.previous_sigterm = _interrupt_on_sigterm()
    config.stash[SESSION] = session
    if handlers:
        events_logger.setLevel(logging.INFO)
        for handler in session.event_handlers:
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


def _check_writable(path: Path, option: str) -> None:
    """Fail before any test runs when ``path``'s folder cannot take the file."""
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"{option} {path}: {path.parent} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot create its folder: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"{option} {path}: its folder {path.parent} is not writable")


def _open_log_file(path: Path) -> JsonLinesHandler:
    _check_writable(path, "--wsconn-log-file")
    try:
        return JsonLinesHandler(path)
    except OSError as exc:
        raise ConfigError(f"--wsconn-log-file {path}: cannot write it: {exc.strerror}") from None


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


def _marker_fault(item: pytest.Item) -> Fault | None:
    marker = item.get_closest_marker("wsconn_fault")
    if marker is None:
        return None
    if len(marker.args) != 1:
        raise WsconnError("takes exactly one fault kind, e.g. wsconn_fault('latency', ms=300)")
    return make_fault(str(marker.args[0]), **marker.kwargs)


def _marker_container_fault(item: pytest.Item) -> tuple[str, str, dict[str, Any]] | None:
    marker = item.get_closest_marker("wsconn_container_fault")
    if marker is None:
        return None
    from pytest_wsconn.stack.compose import check_container_fault

    params = dict(marker.kwargs)
    args = list(marker.args)
    if len(args) == 2 and "service" not in params:
        params["service"] = args.pop()
    if len(args) != 1:
        raise WsconnError(
            "takes one fault kind and service=, e.g. wsconn_container_fault('pause', "
            "service='backend')"
        )
    service = params.pop("service", None)
    check_container_fault(str(args[0]), service, params)
    return str(args[0]), str(service), params


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Check ``wsconn_fault`` and ``wsconn_container_fault`` markers before anything runs."""
    for item in items:
        try:
            _marker_container_fault(item)
        except WsconnError as error:
            raise pytest.UsageError(f"{item.nodeid}: @wsconn_container_fault {error}") from None
        try:
            if _marker_fault(item) is None:
                continue
        except WsconnError as error:
            raise pytest.UsageError(f"{item.nodeid}: @wsconn_fault {error}") from None
        if "wsconn_proxy" not in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(
                f"{item.nodeid}: @wsconn_fault needs the wsconn_proxy or wsconn_connect fixture"
            )


def pytest_report_header(config: pytest.Config) -> str:
    return f"wsconn: {describe_stack(config.stash[SESSION].settings, config.rootpath)}"


def _record_outcome(outcomes: dict[str, tuple[str, float]], report: pytest.TestReport) -> None:
    """A test's outcome for the JSON report: its call's, or "error" when setup/teardown failed."""
    outcome, duration = outcomes.get(report.nodeid, ("passed", 0.0))
    if report.when == "call" or (report.when == "setup" and report.skipped):
        outcome = report.outcome
    elif report.failed:
        outcome = "error"
    outcomes[report.nodeid] = (outcome, duration + report.duration)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[TEST] = WsconnTest()


def _compose_logs(item: pytest.Item) -> str | None:
    """The compose stack's logs since the test started, per service; None for other stacks."""
    stack = item.config.stash[SESSION].stack
    logs = getattr(stack, "logs", None)
    if logs is None or TEST not in item.stash:
        return None
    from pytest_wsconn.stack.compose import format_logs

    try:
        return format_logs(logs(item.stash[TEST].started, time.time()))
    except Exception as exc:  # a report must not fail because Docker did
        return f"(could not read the compose logs: {exc})"


def _stack_failure_report(session: WsconnSession, item: pytest.Item, report: Any) -> None:
    """Show why the stack did not start once; later tests that needed it say so in one line."""
    if session.stack_failure_shown_in is None:
        session.stack_failure_shown_in = item.nodeid
    elif session.stack_failure_shown_in != item.nodeid:
        kind = session.settings.stack
        report.longrepr = (
            f"pytest-wsconn: the {kind} stack did not start; the cause is shown once, in the "
            f"error of {session.stack_failure_shown_in}"
        )


def _diagnosis_section(session: WsconnSession, item: pytest.Item) -> str | None:
    """The session's diagnosis in full for the first failing test it applies to; a pointer after."""
    if not _test(item).failed_unopened or session.diagnosis is None:
        return None
    if session.diagnosis_shown_in in (None, item.nodeid):
        session.diagnosis_shown_in = item.nodeid
        return f"no connection had opened in this session:\n\n{session.diagnosis}"
    return f"see the wsconn diagnostics in the report of {session.diagnosis_shown_in}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    session = item.config.stash[SESSION]
    uses_wsconn = "wsconn_stack" in getattr(item, "fixturenames", ())
    if call.excinfo is not None and uses_wsconn and not item.config.getoption("fulltrace"):
        call.excinfo = without_library_frames(call.excinfo) or call.excinfo
    excinfo = call.excinfo
    report = yield
    _record_outcome(session.outcomes, report)
    if excinfo is not None and excinfo.value is session.stack_failure:
        _stack_failure_report(session, item, report)
    test = item.stash.get(TEST, None)
    if not report.failed or test is None:
        return report
    names = {name for name, _ in report.sections}
    if test.attempts and "wsconn connection timeline" not in names:
        report.sections.append(("wsconn connection timeline", timeline(test.attempts)))
    diagnosis = _diagnosis_section(session, item)
    if diagnosis and "wsconn diagnostics" not in names:
        report.sections.append(("wsconn diagnostics", diagnosis))
    if test.clients and "wsconn reconnecting clients" not in names:
        logs = "\n".join(client.describe() for client in test.clients)
        report.sections.append(("wsconn reconnecting clients", logs))
    if "wsconn compose logs" not in names:
        compose_logs = _compose_logs(item)
        if compose_logs is not None:
            report.sections.append(("wsconn compose logs", compose_logs))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """What was tested (under -q too), the session's connection figures, and a diagnosis that
    no failing test's report showed."""
    session = config.stash[SESSION]
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


def pytest_runtest_logstart(nodeid: str) -> None:
    CURRENT_TEST.set(nodeid)


def pytest_runtest_logfinish() -> None:
    CURRENT_TEST.set(None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    wsconn = session.config.stash.get(SESSION, None)
    if wsconn is None or wsconn.settings.report is None or not wsconn.event_handlers:
        return
    settings = wsconn.settings
    collector = wsconn.event_handlers[0]
    assert isinstance(collector, EventCollector)
    path = Path(wsconn.settings.report)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # one file per xdist worker: report.gw0.json, ...
        path = path.with_name(f"{path.stem}.{worker}{path.suffix}")
    stack = wsconn.stack
    report = build_report(
        stack=settings.stack,
        target=redact_url(stack.url) if stack is not None else None,
        toxiproxy=wsconn.toxiproxy_version,
        attempts=wsconn.attempts,
        events=collector.events,
        outcomes=wsconn.outcomes,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))


@pytest.fixture(scope="session")
def wsconn_settings(pytestconfig: pytest.Config) -> cfg.Settings:
    """The session's wsconn settings (command line, environment, ini)."""
    return pytestconfig.stash[SESSION].settings


@pytest.fixture(scope="session")
def wsconn_stack(pytestconfig: pytest.Config, wsconn_settings: cfg.Settings) -> Iterator[Stack]:
    """The service under test behind Toxiproxy, started once per session (per xdist worker).

    A stack that cannot start fails its first test with the cause and hint; pytest re-raises
    that same failure for every later test, whose report then says so in one line.
    """
    session = pytestconfig.stash[SESSION]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # the same in every worker of a run
    with contextlib.ExitStack() as resources:
        try:
            stack = resources.enter_context(
                open_stack(wsconn_settings, pytestconfig.rootpath, worker, run_id=run_id)
            )
        except WsconnError as error:
            message = f"pytest-wsconn: the {wsconn_settings.stack} stack did not start: {error}"
            session.stack_failure = pytest.fail.Exception(message, pytrace=False)
        else:
            yield stack
            return
    raise session.stack_failure  # outside the except: no "During handling of …" chain


@pytest.fixture(autouse=True)
def wsconn_container_fault(request: pytest.FixtureRequest) -> Iterator[None]:
    """Holds a ``@wsconn_container_fault`` for the test (compose stack only); else does nothing."""
    fault = _marker_container_fault(request.node)
    if fault is None:
        yield
        return
    stack = request.getfixturevalue("wsconn_stack")
    if not hasattr(stack, "fault"):
        pytest.skip(f"container faults need --wsconn-stack=compose (this is {stack.kind})")
    kind, service, params = fault
    with stack.fault(kind, service, **params):
        yield


def _record_stack(session: WsconnSession, stack: Stack) -> None:
    """Remember the session's stack (the fixture may be the user's own) and what it tests."""
    if session.stack is stack:
        return
    session.stack = stack
    session.toxiproxy_version, session.tested = describe_tested(stack)


@pytest.fixture
def wsconn_proxy(request: pytest.FixtureRequest, wsconn_stack: Stack) -> Iterator[Proxy]:
    """The proxy in front of the service; every fault is undone after the test, pass or fail."""
    _record_stack(request.config.stash[SESSION], wsconn_stack)
    proxy = wsconn_stack.proxy
    fault = _marker_fault(request.node)
    try:
        with proxy.apply(fault) if fault else contextlib.nullcontext():
            yield proxy
    finally:
        proxy.reset()


@pytest.fixture
def wsconn_token(
    pytestconfig: pytest.Config, wsconn_stack: Stack, wsconn_settings: cfg.Settings
) -> Tokens:
    """Valid, expired and forged tokens for the service under test."""
    return Tokens(pytestconfig, wsconn_stack, wsconn_settings)


async def _diagnose_unopened(
    request: pytest.FixtureRequest, stack: Stack, settings: cfg.Settings, tokens: Tokens
) -> None:
    """Diagnose the service once, when a connection fails before any in the session opened.

    The service is diagnosed directly with the session's own token, auth mode and Origin (not
    those of the call that failed, which may refuse on purpose): a stack that is down or a token
    that is wrong then reads "DNS ok, TCP refused …" in the first failing test's report, and
    every later failure points to it, instead of forty identical tracebacks.
    """
    session = request.config.stash[SESSION]
    if any(attempt.handshake_seconds is not None for attempt in session.attempts):
        return
    _test(request.node).failed_unopened = True
    if session.diagnosis is not None:
        return
    diagnostics = ConnectionDiagnostics(
        stack.url,
        token=tokens.get("valid"),
        auth=settings.auth,
        origin=settings.origin,
        timeout=min(scaled(settings.timeout), scaled(5.0)),
    )
    session.diagnosis = render_checks(diagnostics.target, await diagnostics.run())


@pytest_asyncio.fixture(loop_scope="function")
async def wsconn_connect(
    request: pytest.FixtureRequest,
    wsconn_stack: Stack,
    wsconn_proxy: Proxy,
    wsconn_settings: cfg.Settings,
    wsconn_token: Tokens,
) -> AsyncIterator[Connector]:
    """Async factory: open a connection through the proxy, recorded for the report.

    Keywords are those of ``pytest_wsconn.connect``; ``direct=True`` bypasses the proxy.
    Connections still open at the end of the test are closed.
    """
    attempts = _test(request.node).attempts
    session = request.config.stash[SESSION].attempts
    opened: list[InstrumentedConnection] = []

    def record(attempt: ConnectionAttempt) -> None:
        attempts.append(attempt)
        session.append(attempt)

    async def wsconn_connect(
        url: str | None = None, /, *, direct: bool = False, **kwargs: Any
    ) -> InstrumentedConnection:
        __tracebackhide__ = True
        kwargs.setdefault("token", wsconn_token.get("valid"))
        kwargs.setdefault("auth", wsconn_settings.auth)
        kwargs.setdefault("origin", wsconn_settings.origin)
        kwargs.setdefault("open_timeout", scaled(wsconn_settings.timeout))
        if url is None and not direct:
            kwargs.setdefault("dial", wsconn_proxy.listen_address)
        target = url or wsconn_stack.url
        try:
            conn = await connect(target, on_attempt=record, test_id=request.node.nodeid, **kwargs)
        except ConnectFailed:
            await _diagnose_unopened(request, wsconn_stack, wsconn_settings, wsconn_token)
            raise
        opened.append(conn)
        return conn

    yield wsconn_connect
    for conn in opened:
        await conn.close()


@pytest_asyncio.fixture(loop_scope="function")
async def wsconn_reconnecting_client(
    request: pytest.FixtureRequest, wsconn_connect: Connector
) -> AsyncIterator[Callable[..., ReconnectingClient]]:
    """Factory: a started ``ReconnectingClient`` over ``wsconn_connect``.

    Keywords of ``ReconnectingClient`` (``policy``, ``fallback_after``, ``on_reconnect``, ...)
    go to the client, the rest to ``wsconn_connect``. Every client is closed after the test.
    """
    clients = _test(request.node).clients
    client_options = set(inspect.signature(ReconnectingClient).parameters) - {"connect"}

    def wsconn_reconnecting_client(**kwargs: Any) -> ReconnectingClient:
        options = {key: kwargs.pop(key) for key in list(kwargs) if key in client_options}
        client = ReconnectingClient(lambda: wsconn_connect(**kwargs), **options)
        clients.append(client)
        client.start()
        return client

    yield wsconn_reconnecting_client
    for client in clients:
        await client.close()
