"""The instrumented client: auth modes on the wire, and every failure recorded and classified."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from support import Service

from pytest_wsconn import ConnectFailed, Connector, Outcome, Stack, Tokens, classify, connect
from pytest_wsconn.client import apply_auth
from pytest_wsconn.config import parse_auth_mode
from pytest_wsconn.expect import ConnectionAttempt
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.asyncio


class TestApplyAuth:
    @pytest.mark.parametrize(
        ("mode", "url", "headers", "protocols"),
        [
            ("query:token", "ws://h/ws?a=1&token=T0K", {}, ["p"]),
            ("header", "ws://h/ws?a=1", {"Authorization": "Bearer T0K"}, ["p"]),
            ("subprotocol", "ws://h/ws?a=1", {}, ["p", "token.T0K"]),
            ("cookie:sid", "ws://h/ws?a=1", {"Cookie": "sid=T0K"}, ["p"]),
            ("none", "ws://h/ws?a=1", {}, ["p"]),
        ],
    )
    async def test_token_placement(
        self, mode: str, url: str, headers: dict[str, str], protocols: list[str]
    ) -> None:
        """Each auth mode puts the token in its one place and nowhere else."""
        assert apply_auth("ws://h/ws?a=1", parse_auth_mode(mode), "T0K", ["p"]) == (
            url,
            headers,
            protocols,
        )

    async def test_no_token_no_auth(self) -> None:
        """Without a token nothing is added, whatever the mode."""
        assert apply_auth("ws://h/ws", parse_auth_mode("header"), None, []) == ("ws://h/ws", {}, [])


class TestAuthModesOnTheWire:
    @pytest.mark.parametrize(
        "mode", ["query:token", "header", "subprotocol", "cookie:wsconn_token"]
    )
    async def test_reference_server_accepts_each_mode(
        self, wsconn_connect: Connector, wsconn_token: Tokens, mode: str
    ) -> None:
        """The reference server accepts a valid token sent in each supported place (a cookie with
        the Origin a browser always sends beside it)."""
        origin = "http://localhost" if mode.startswith("cookie") else None
        conn = await wsconn_connect(auth=mode, subprotocols=["wsconn.v1"], origin=origin)
        assert conn.subprotocol == "wsconn.v1"
        assert await conn.echo("ok", timeout=scaled(5)) == "ok"

    @pytest.mark.parametrize("kind", ["expired", "forged"])
    async def test_bad_tokens_get_401(
        self, wsconn_connect: Connector, wsconn_token: Tokens, kind: str
    ) -> None:
        """Expired and forged tokens are refused before the upgrade and classified as auth."""
        with pytest.raises(ConnectFailed) as failed:
            await wsconn_connect(token=wsconn_token(kind), auth="header")
        assert failed.value.attempt.http_status == 401
        assert classify(failed.value.attempt).category == "auth"
        assert wsconn_token(kind).reveal() not in str(failed.value)

    async def test_token_is_redacted_in_the_recorded_url(
        self, wsconn_connect: Connector, wsconn_stack: Stack
    ) -> None:
        """The recorded URL never carries the token."""
        conn = await wsconn_connect()
        assert conn.attempt is not None
        assert conn.attempt.url == f"{wsconn_stack.url}?token=***"


@pytest_asyncio.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP server that accepts and never answers: a handshake that never finishes."""
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: writers.append(w), "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]
    for writer in writers:
        writer.close()


@pytest_asyncio.fixture
async def plain_http_port() -> AsyncIterator[int]:
    """A TCP server that answers anything with plain HTTP and keeps the connection open."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestFailuresAreRecorded:
    async def fail(self, url: str, **kwargs: object) -> ConnectionAttempt:
        attempts: list[ConnectionAttempt] = []
        with pytest.raises(ConnectFailed) as failed:
            await connect(url, on_attempt=attempts.append, **kwargs)  # type: ignore[arg-type]
        assert attempts == [failed.value.attempt]
        return failed.value.attempt

    async def test_refused(self) -> None:
        """Nothing listening: refused, a network failure."""
        attempt = await self.fail(f"ws://127.0.0.1:{closed_port()}/ws")
        assert (attempt.outcome, classify(attempt).category) == (Outcome.REFUSED, "network")

    async def test_dns(self) -> None:
        """A name that cannot resolve (.invalid is reserved) is a DNS failure."""
        attempt = await self.fail("ws://wsconn-test.invalid/ws", open_timeout=scaled(10))
        assert (attempt.outcome, classify(attempt).category) == (Outcome.DNS, "dns")

    async def test_handshake_timeout(self, silent_port: int) -> None:
        """A server that never answers the upgrade times out within open_timeout."""
        attempt = await self.fail(f"ws://127.0.0.1:{silent_port}/ws", open_timeout=0.3)
        assert (attempt.outcome, classify(attempt).category) == (Outcome.TIMEOUT, "timeout")
        assert attempt.ended is not None and 0.3 <= attempt.ended - attempt.started < scaled(3)

    async def test_tls_against_plain_server(self, plain_http_port: int) -> None:
        """wss:// to a server that answers in plain HTTP fails in the TLS handshake."""
        attempt = await self.fail(f"wss://127.0.0.1:{plain_http_port}/ws", open_timeout=scaled(5))
        assert (attempt.outcome, classify(attempt).category) == (Outcome.TLS, "tls")

    async def test_http_rejection(self, wsconn_stack: Stack) -> None:
        """A wrong path is an HTTP rejection with its status."""
        attempt = await self.fail(wsconn_stack.url.replace("/ws", "/nope"))
        assert (attempt.outcome, attempt.http_status) == (Outcome.HTTP_REJECTED, 404)
        assert classify(attempt).category == "http_rejected"


class TestEchoIsOurOwn:
    async def test_pushes_never_pass_for_the_echo(
        self, broken_service: Callable[[str], Service]
    ) -> None:
        """A service that pushes ticks between echoes: echo returns our message, ticks counted."""
        service = broken_service("pushes")
        async with await connect(service.url, token=service.token) as conn:
            assert await conn.echo("hello", timeout=scaled(5)) == "hello"
            for _ in range(3):
                assert await conn.echo(b"\x00bin", timeout=scaled(5)) == b"\x00bin"
            assert conn.other_messages > 0

    async def test_a_service_that_never_echoes_fails_in_one_line(
        self, broken_service: Callable[[str], Service]
    ) -> None:
        """Pushes only, never an echo: TimeoutError saying so, with the other messages counted."""
        service = broken_service("never-echoes")
        async with await connect(service.url, token=service.token) as conn:
            with pytest.raises(TimeoutError) as timed_out:
                await conn.echo("hello", timeout=0.5)
        assert re.fullmatch(
            r"no echo of our message within 0\.5 s \(\d+ other messages received\)",
            str(timed_out.value),
        )
        assert conn.other_messages > 0

    async def test_without_a_message_a_unique_one_is_sent(self, wsconn_connect: Connector) -> None:
        """echo() with no message sends one with a unique id and returns its echo."""
        conn = await wsconn_connect()
        first, second = await conn.echo(), await conn.echo()
        assert isinstance(first, str) and first.startswith("wsconn echo ")
        assert first != second and conn.other_messages == 0


@pytest.mark.usefixtures("user_env")
class TestBatteryEchoCheck:
    async def run_check(
        self, pytester: pytest.Pytester, service: Service, *args: str
    ) -> pytest.RunResult:
        """The battery's echo check against ``service``, in a child pytest off the event loop."""
        return await asyncio.to_thread(
            pytester.runpytest_subprocess,
            "-p", "wsconn", "--pyargs", "pytest_wsconn.checks", "-p", "no:cacheprovider",
            "-k", "test_connect_and_echo", "--wsconn-stack=external",
            f"--wsconn-url={service.url}", f"--wsconn-token={service.token}", *args,
        )  # fmt: skip

    async def test_passes_on_a_service_that_also_pushes(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """Text and binary echoes pass although pushes arrive before them."""
        result = await self.run_check(pytester, broken_service("pushes"))
        result.assert_outcomes(passed=2)

    async def test_fails_on_a_service_that_never_echoes(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """Pushes are not an echo: the check fails in one line naming what came instead."""
        result = await self.run_check(pytester, broken_service("never-echoes"), "-k", "text")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["*sent 'hello from wsconn *': no echo of our message within 5 s (* other messages*"]
        )
