"""The plugin's fixtures: the stack, its proxy, tokens, and connections recorded for the report."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from pytest_wsconn import config as cfg
from pytest_wsconn.client import Connector, InstrumentedConnection, connect
from pytest_wsconn.diagnostics import ConnectionDiagnostics
from pytest_wsconn.exceptions import ConnectFailed, WsconnError
from pytest_wsconn.expect import ConnectionAttempt
from pytest_wsconn.markers import marked_container_fault, marked_fault
from pytest_wsconn.reconnect import ReconnectingClient
from pytest_wsconn.results import render_checks
from pytest_wsconn.stack import ContainerFaults, Stack, open_stack
from pytest_wsconn.state import per_test, session_of, xdist_ids
from pytest_wsconn.timing import scaled
from pytest_wsconn.tokens import Tokens
from pytest_wsconn.toxiproxy import Proxy


@pytest.fixture(scope="session")
def wsconn_settings(pytestconfig: pytest.Config) -> cfg.Settings:
    """The session's wsconn settings (command line, environment, ini)."""
    return session_of(pytestconfig).settings


@pytest.fixture(scope="session")
def wsconn_stack(pytestconfig: pytest.Config, wsconn_settings: cfg.Settings) -> Iterator[Stack]:
    """The service under test behind Toxiproxy, started once per session (per xdist worker).

    A stack that cannot start fails its first test with the cause and hint; pytest re-raises
    that same failure for every later test, whose report then says so in one line.
    """
    session = session_of(pytestconfig)
    run_id, worker = xdist_ids(pytestconfig)
    with contextlib.ExitStack() as resources:
        try:
            stack = resources.enter_context(
                open_stack(wsconn_settings, pytestconfig.rootpath, worker or "main", run_id=run_id)
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
    fault = marked_container_fault(request.node)
    if fault is None:
        yield
        return
    stack = request.getfixturevalue("wsconn_stack")
    if not isinstance(stack, ContainerFaults):
        pytest.skip(f"container faults need --wsconn-stack=compose (this is {stack.kind})")
    with stack.fault(fault.kind, fault.service, **fault.params):
        yield


@pytest.fixture
def wsconn_proxy(request: pytest.FixtureRequest, wsconn_stack: Stack) -> Iterator[Proxy]:
    """The proxy in front of the service; every fault is undone after the test, pass or fail."""
    proxy = wsconn_stack.proxy
    fault = marked_fault(request.node)
    try:
        with proxy.apply(fault) if fault else contextlib.nullcontext():
            yield proxy
    finally:
        proxy.reset()


@pytest.fixture
def wsconn_chaos_round(request: pytest.FixtureRequest) -> int:
    """The chaos round the test runs in (``--wsconn-chaos-rounds``); 0 outside rounds."""
    return int(getattr(request, "param", 0))


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
    session = session_of(request.config)
    if any(attempt.handshake_seconds is not None for attempt in session.attempts):
        return
    per_test(request.node).failed_unopened = True
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
    attempts = per_test(request.node).attempts
    session = session_of(request.config).attempts
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
    clients = per_test(request.node).clients
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
