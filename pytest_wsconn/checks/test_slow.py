"""Slow security checks, off by default: run them with ``--wsconn-slow``.

A stalled opening handshake must be closed within ``--wsconn-handshake-deadline`` (15 s), and a
connection above ``--wsconn-max-connections`` refused with close 1013 or HTTP 429/503 while the
connections already open keep working. Marked ``wsconn_security`` and ``wsconn_slow``.
"""

from __future__ import annotations

import contextlib

import pytest
from websockets.exceptions import ConnectionClosed

from pytest_wsconn import ConnectFailed, Connector, Proxy
from pytest_wsconn.checks.answers import answer_to
from pytest_wsconn.checks.survival import ANSWER_WITHIN
from pytest_wsconn.client import InstrumentedConnection
from pytest_wsconn.config import Settings
from pytest_wsconn.rawclient import stall
from pytest_wsconn.security import NO_MAXIMUM, STALLED_HANDSHAKE, over_capacity_verdict
from pytest_wsconn.stack import Stack
from pytest_wsconn.timing import scaled

pytestmark = [pytest.mark.asyncio, pytest.mark.wsconn_security, pytest.mark.wsconn_slow]

REFUSE_WITHIN = 2.0  # seconds a service that accepts the extra connection gets to close it


async def test_stalled_handshake_closed(
    wsconn_connect: Connector, wsconn_proxy: Proxy, wsconn_stack: Stack, wsconn_settings: Settings
) -> None:
    """Half an opening handshake, never finished, is closed within --wsconn-handshake-deadline."""
    deadline = wsconn_settings.handshake_deadline
    conn = await wsconn_connect()  # the service is up: a connection that stays open means it
    await conn.close()
    closed_after = await stall(
        wsconn_stack.url, deadline=scaled(deadline), dial=wsconn_proxy.listen_address
    )
    if closed_after is None:
        pytest.fail(
            "a stalled opening handshake (TCP open, the request's headers never finished) was "
            f"still open after {scaled(deadline):g} s (--wsconn-handshake-deadline)\n"
            + STALLED_HANDSHAKE.explain(),
            pytrace=False,
        )
    print(f"the stalled handshake was closed after {closed_after:.1f} s")


async def _echoes(conn: InstrumentedConnection) -> bool:
    try:
        await conn.echo(timeout=scaled(ANSWER_WITHIN))
    except (TimeoutError, ConnectionClosed):
        return False
    return True


async def test_connections_over_the_maximum_refused(
    wsconn_connect: Connector, wsconn_settings: Settings
) -> None:
    """Above --wsconn-max-connections a connection gets 1013 or HTTP 429/503; the others go on."""
    maximum = wsconn_settings.max_connections
    if maximum is None:
        pytest.skip("the service's connection maximum is not known (pass --wsconn-max-connections)")
    opened: list[InstrumentedConnection] = []
    try:
        for number in range(1, maximum + 1):
            try:
                opened.append(await wsconn_connect())
            except ConnectFailed as failed:
                pytest.fail(
                    f"connection {number} of {maximum} (--wsconn-max-connections) was refused: "
                    f"{failed.message}; nothing above the maximum was tested",
                    pytrace=False,
                )
        answer = await answer_to(wsconn_connect, REFUSE_WITHIN)
        verdict = over_capacity_verdict(answer.attempt)
        if verdict is not None:
            pytest.fail(
                f"connection {maximum + 1}, one above --wsconn-max-connections={maximum}, was not "
                f"refused: {verdict}; expected close 1013 or HTTP 429/503\n{NO_MAXIMUM.explain()}",
                pytrace=False,
            )
        broken = [number for number, conn in enumerate(opened, 1) if not await _echoes(conn)]
        if broken:
            pytest.fail(
                f"after connection {maximum + 1} was refused, connection(s) "
                f"{', '.join(map(str, broken))} of the {maximum} already open no longer echo\n"
                + NO_MAXIMUM.explain(),
                pytrace=False,
            )
    finally:
        for conn in opened:
            with contextlib.suppress(Exception):
                await conn.close()
