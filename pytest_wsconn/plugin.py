"""pytest-wsconn wiring: options, ini keys, markers, fixtures, reports. Logic lives elsewhere."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from pytest_wsconn import config as cfg
from pytest_wsconn.client import Connector, InstrumentedConnection, connect
from pytest_wsconn.closecodes import AppCode, AppCodeLookup, parse_app_codes, set_app_codes
from pytest_wsconn.diagnostics import ConnectionDiagnostics
from pytest_wsconn.events import EventCollector, JsonLinesHandler, set_current_test
from pytest_wsconn.events import logger as events_logger
from pytest_wsconn.exceptions import ConnectFailed, WsconnError
from pytest_wsconn.expect import ConnectionAttempt, classify, timeline
from pytest_wsconn.faults import Fault, make_fault
from pytest_wsconn.reconnect import ReconnectingClient
from pytest_wsconn.reference.tokens import TokenKind, forge, reference_token
from pytest_wsconn.results import render_checks
from pytest_wsconn.session_report import build_report, summary_line
from pytest_wsconn.stack import Stack, describe_stack, open_stack
from pytest_wsconn.timing import scaled
from pytest_wsconn.toxiproxy import Proxy

SETTINGS = pytest.StashKey[cfg.Settings]()
SESSION_ATTEMPTS = pytest.StashKey[list[ConnectionAttempt]]()
TEST_ATTEMPTS = pytest.StashKey[list[ConnectionAttempt]]()
TEST_CLIENTS = pytest.StashKey[list[ReconnectingClient]]()
SESSION_OUTCOMES = pytest.StashKey[dict[str, tuple[str, float]]]()
EVENT_HANDLERS = pytest.StashKey[list[logging.Handler]]()
DIAGNOSED_IN = pytest.StashKey[str]()  # the test whose report holds the session's diagnosis
TEST_DIAGNOSIS = pytest.StashKey[str]()
PREVIOUS_APP_CODES = pytest.StashKey[AppCodeLookup]()  # restored for pytester's nested sessions
ACTIVE_STACK = pytest.StashKey[Stack]()  # the session's stack, once a test has asked for it
TEST_STARTED = pytest.StashKey[float]()  # time.time() at setup: the window of its compose logs

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


def _compose_service(text: str) -> str:
    """``SERVICE:PORT[/PATH]``, checked now so a typo is a usage error, not a failed session."""
    from pytest_wsconn.stack.compose import parse_target

    return str(parse_target(text))


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
        "token", "token", "token for your service (or env WSCONN_TOKEN)", str, env="WSCONN_TOKEN"
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


def _read_settings(config: pytest.Config) -> cfg.Settings:
    """Command line wins over the environment, which wins over the ini file."""
    values: dict[str, Any] = {}
    for option in _OPTIONS:
        key = option.name.replace("-", "_")
        raw = config.getoption(f"wsconn_{key}")
        if raw is None and option.env:
            raw = os.environ.get(option.env) or None
        if raw is None:
            raw = config.getini(f"wsconn_{key}") or None
        if raw is not None:
            parsed = [option.parse(r) for r in raw] if option.multiple else option.parse(raw)
            values[option.field] = tuple(parsed) if option.multiple else parsed
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
        config.stash[SETTINGS] = _read_settings(config)
        app_codes = parse_app_codes(config.getini("wsconn_close_codes"))
    except WsconnError as error:
        raise pytest.UsageError(f"pytest-wsconn: {error}") from None
    config.stash[SESSION_ATTEMPTS] = []
    config.stash[SESSION_OUTCOMES] = {}
    settings = config.stash[SETTINGS]
    if settings.log_file or settings.report:
        handlers: list[logging.Handler] = [EventCollector()]
        if settings.log_file:
            handlers.append(JsonLinesHandler(Path(settings.log_file)))
        events_logger.setLevel(logging.INFO)
        for handler in handlers:
            events_logger.addHandler(handler)
        config.stash[EVENT_HANDLERS] = handlers

    def lookup(code: int) -> AppCode | None:
        hooked: AppCode | None = config.hook.pytest_wsconn_close_code(code=code, config=config)
        return hooked if hooked is not None else app_codes.get(code)

    config.stash[PREVIOUS_APP_CODES] = set_app_codes(lookup)


def pytest_unconfigure(config: pytest.Config) -> None:
    set_app_codes(config.stash.get(PREVIOUS_APP_CODES, None))
    for handler in config.stash.get(EVENT_HANDLERS, []):
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
    return f"wsconn: {describe_stack(config.stash[SETTINGS], config.rootpath)}"


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
    item.stash[TEST_STARTED] = time.time()


def _compose_logs(item: pytest.Item) -> str | None:
    """The compose stack's logs since the test started, per service; None for other stacks."""
    stack = item.config.stash.get(ACTIVE_STACK, None)
    logs = getattr(stack, "logs", None)
    if logs is None or TEST_STARTED not in item.stash:
        return None
    from pytest_wsconn.stack.compose import format_logs

    try:
        return format_logs(logs(item.stash[TEST_STARTED], time.time()))
    except Exception as exc:  # a report must not fail because Docker did
        return f"(could not read the compose logs: {exc})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _record_outcome(item.config.stash[SESSION_OUTCOMES], report)
    attempts = item.stash.get(TEST_ATTEMPTS, [])
    if report.failed and attempts:
        report.sections.append(("wsconn connection timeline", timeline(attempts)))
    diagnosis = item.stash.get(TEST_DIAGNOSIS, None)
    if report.failed and diagnosis:
        report.sections.append(("wsconn diagnostics", diagnosis))
    clients = item.stash.get(TEST_CLIENTS, [])
    if report.failed and clients:
        logs = "\n".join(client.describe() for client in clients)
        report.sections.append(("wsconn reconnecting clients", logs))
    if report.failed and not any(name == "wsconn compose logs" for name, _ in report.sections):
        compose_logs = _compose_logs(item)
        if compose_logs is not None:
            report.sections.append(("wsconn compose logs", compose_logs))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    attempts = config.stash.get(SESSION_ATTEMPTS, [])
    if attempts:
        terminalreporter.write_sep("-", "wsconn summary")
        terminalreporter.write_line(summary_line(attempts))


def pytest_runtest_logstart(nodeid: str) -> None:
    set_current_test(nodeid)


def pytest_runtest_logfinish() -> None:
    set_current_test(None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    settings = config.stash.get(SETTINGS, None)
    handlers = config.stash.get(EVENT_HANDLERS, [])
    if settings is None or not settings.report or not handlers:
        return
    collector = handlers[0]
    assert isinstance(collector, EventCollector)
    path = Path(settings.report)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # one file per xdist worker: report.gw0.json, ...
        path = path.with_name(f"{path.stem}.{worker}{path.suffix}")
    target = settings.url if settings.stack == "external" else "the reference server"
    attempts = config.stash[SESSION_ATTEMPTS]
    outcomes = config.stash[SESSION_OUTCOMES]
    report = build_report(
        stack=settings.stack,
        target=target or "",
        attempts=attempts,
        events=collector.events,
        outcomes=outcomes,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))


@pytest.fixture(scope="session")
def wsconn_settings(pytestconfig: pytest.Config) -> cfg.Settings:
    """The session's wsconn settings (command line, environment, ini)."""
    return pytestconfig.stash[SETTINGS]


@pytest.fixture(scope="session")
def wsconn_stack(pytestconfig: pytest.Config, wsconn_settings: cfg.Settings) -> Iterator[Stack]:
    """The service under test behind Toxiproxy, started once per session (per xdist worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with contextlib.ExitStack() as resources:
        try:
            stack = resources.enter_context(
                open_stack(wsconn_settings, pytestconfig.rootpath, worker)
            )
        except WsconnError as error:
            pytest.fail(f"pytest-wsconn: the {wsconn_settings.stack} stack: {error}", pytrace=False)
        pytestconfig.stash[ACTIVE_STACK] = stack
        try:
            yield stack
        finally:
            del pytestconfig.stash[ACTIVE_STACK]


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


@pytest.fixture
def wsconn_proxy(request: pytest.FixtureRequest, wsconn_stack: Stack) -> Iterator[Proxy]:
    """The proxy in front of the service; every fault is undone after the test, pass or fail."""
    proxy = wsconn_stack.proxy
    fault = _marker_fault(request.node)
    try:
        with proxy.apply(fault) if fault else contextlib.nullcontext():
            yield proxy
    finally:
        proxy.reset()


class Tokens:
    """``wsconn_token("valid" | "expired" | "forged")``: tokens for the service under test."""

    def __init__(self, config: pytest.Config, stack: Stack, settings: cfg.Settings) -> None:
        self._config = config
        self._stack = stack
        self._settings = settings

    def get(self, kind: TokenKind = "valid") -> str | None:
        """The token, or None when neither the hook, the options nor the stack can make one."""
        supplied: str | None = self._config.hook.pytest_wsconn_token(kind=kind, config=self._config)
        if supplied is not None:
            return supplied
        if self._stack.secret is not None:
            return reference_token(self._stack.secret, kind)
        valid = self._settings.token
        if kind == "valid" or valid is None:
            return valid
        return forge(valid) if kind == "forged" else None

    def __call__(self, kind: TokenKind = "valid") -> str:
        """The token; skips the test with the reason when none can be had."""
        token = self.get(kind)
        if token is None:
            how = "pass --wsconn-token" if kind == "valid" else "implement pytest_wsconn_token"
            pytest.skip(f"no {kind} token for this service ({how})")
        return token


@pytest.fixture
def wsconn_token(
    pytestconfig: pytest.Config, wsconn_stack: Stack, wsconn_settings: cfg.Settings
) -> Tokens:
    """Valid, expired and forged tokens for the service under test."""
    return Tokens(pytestconfig, wsconn_stack, wsconn_settings)


UNREACHABLE = {"network", "dns", "tls", "timeout"}


async def _diagnose_unreachable(
    request: pytest.FixtureRequest,
    attempt: ConnectionAttempt,
    url: str,
    connect_kwargs: dict[str, Any],
) -> None:
    """Diagnose the service once, when the session's connections fail before any opened.

    The service is diagnosed directly, not through the proxy: the proxy is ours, the question is
    whether the service answers.

        A stack that is down then reads "DNS ok, TCP refused …" in the first failure's report, and
        every later failure points to it, instead of forty identical tracebacks.
    """
    config = request.config
    if DIAGNOSED_IN in config.stash:
        first = config.stash[DIAGNOSED_IN]
        request.node.stash[TEST_DIAGNOSIS] = f"see the wsconn diagnostics in the report of {first}"
        return
    unopened = all(a.handshake_seconds is None for a in config.stash[SESSION_ATTEMPTS])
    if not unopened or classify(attempt).category not in UNREACHABLE:
        return
    diagnostics = ConnectionDiagnostics(
        url,
        token=connect_kwargs.get("token"),
        auth=connect_kwargs.get("auth", cfg.DEFAULT_AUTH),
        origin=connect_kwargs.get("origin"),
        timeout=min(connect_kwargs.get("open_timeout", 5.0), 5.0),
    )
    text = render_checks(diagnostics.target, await diagnostics.run())
    config.stash[DIAGNOSED_IN] = request.node.nodeid
    request.node.stash[TEST_DIAGNOSIS] = f"no connection has opened in this session:\n\n{text}"


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
    attempts = request.node.stash.setdefault(TEST_ATTEMPTS, [])
    session = request.config.stash[SESSION_ATTEMPTS]
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
        except ConnectFailed as failed:
            await _diagnose_unreachable(request, failed.attempt, target, kwargs)
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
    clients = request.node.stash.setdefault(TEST_CLIENTS, [])
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
