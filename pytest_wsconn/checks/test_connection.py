"""Connection checks: connect and echo, a normal close, pings answered."""

from __future__ import annotations

import secrets

import pytest

from pytest_wsconn import Connector, assert_closes_with, assert_connects
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_connect_and_echo(wsconn_connect: Connector, kind: str) -> None:
    """A client with a valid token connects and its message comes back unchanged.

    The message carries a unique id and only its exact echo counts: a broadcast or push that
    arrives first is skipped, never taken for the echo.
    """
    unique = secrets.token_hex(6)
    message = (
        f"hello from wsconn {unique}" if kind == "text" else b"\x00\xffwsconn" + unique.encode()
    )
    conn = await assert_connects(wsconn_connect)
    try:
        await conn.echo(message, timeout=scaled(5))
    except TimeoutError as exc:
        pytest.fail(f"sent {message!r}: {exc}", pytrace=False)


async def test_normal_close_is_1000(wsconn_connect: Connector) -> None:
    """When the client closes normally the service completes the closing handshake with 1000."""
    conn = await assert_connects(wsconn_connect)
    await conn.close(1000, "done")
    await assert_closes_with(conn, 1000)


async def test_answers_pings(wsconn_connect: Connector) -> None:
    """The service answers a ping, so client keepalives do not drop healthy connections."""
    conn = await assert_connects(wsconn_connect, ping_interval=None)
    try:
        await conn.ping_rtt(timeout=scaled(2))
    except TimeoutError:
        pytest.fail(
            "the service did not answer a ping within 2 s: clients with keepalive on will "
            "close healthy connections with 1011 (keepalive ping timeout)",
            pytrace=False,
        )
