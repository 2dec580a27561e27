"""Security checks: an oversized message, frames that break RFC 6455, and crosstalk.

After each abuse the service must still take a fresh connection and echo on it: a check that
closes correctly but takes the service down fails. Run only the security group with
``-m wsconn_security``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from pytest_wsconn import Connector, assert_connects
from pytest_wsconn.checks.survival import ANSWER_WITHIN, assert_still_serves
from pytest_wsconn.client import InstrumentedConnection
from pytest_wsconn.config import Settings
from pytest_wsconn.rawclient import HandshakeRefused, send_raw
from pytest_wsconn.security import ABUSE_IDS, CROSSTALK, NO_LIMIT, PROTOCOL_ABUSE, abuse
from pytest_wsconn.timing import scaled

pytestmark = [pytest.mark.asyncio, pytest.mark.wsconn_security]

CROSSTALK_WITHIN = 0.5  # seconds the second connection is watched after the first's echo


async def _reply_or_close(conn: InstrumentedConnection, size: int, within: float) -> str | None:
    """What the service did with our ``size``-byte message: None for a close, else the words."""
    try:
        async with asyncio.timeout(within):
            while True:
                reply = await conn.recv()
                if len(reply) == size:
                    return f"echoed all {size:,} bytes back: it has no limit at that size"
    except ConnectionClosed:
        pass
    except TimeoutError:
        return f"neither closed the connection nor answered within {within:g} s"
    assert conn.attempt is not None
    assert conn.attempt.close is not None
    if not conn.attempt.close.received:
        return "dropped the TCP connection without a close frame (1006)"
    return None


async def test_oversized_message_refused(
    wsconn_connect: Connector, wsconn_settings: Settings, health: str | None
) -> None:
    """A message one byte above --wsconn-max-message (16 MiB) is refused, ideally close 1009."""
    size = wsconn_settings.max_message + 1
    conn = await assert_connects(wsconn_connect, max_size=None)
    with contextlib.suppress(ConnectionClosed):  # the service cut the send short: good
        await conn.send(b"\0" * size)
    verdict = await _reply_or_close(conn, size, scaled(ANSWER_WITHIN))
    if verdict is not None:
        pytest.fail(
            f"a message of {size:,} bytes (--wsconn-max-message + 1) was not refused: the "
            f"service {verdict}; expected close 1009 (message too big)\n{NO_LIMIT.explain()}",
            pytrace=False,
        )
    await assert_still_serves(wsconn_connect, f"a {size:,}-byte message", health)


@pytest.mark.parametrize("case", ABUSE_IDS)
async def test_protocol_abuse_closed(
    wsconn_connect: Connector, raw_target: dict[str, Any], health: str | None, case: str
) -> None:
    """A frame that breaks RFC 6455 gets close 1002 (1007 for invalid UTF-8), and nothing dies."""
    chosen = abuse(case)
    try:
        ending = await send_raw(payload=chosen.frames(), within=scaled(ANSWER_WITHIN), **raw_target)
    except (HandshakeRefused, OSError, TimeoutError) as exc:
        pytest.fail(f"the opening handshake failed, nothing was tested: {exc}", pytrace=False)
    if ending.code not in chosen.codes:
        codes = " or ".join(str(code) for code in sorted(chosen.codes))
        pytest.fail(
            f"after {chosen.what} the service {ending.describe()}; expected close {codes}\n"
            + PROTOCOL_ABUSE.explain(),
            pytrace=False,
        )
    await assert_still_serves(wsconn_connect, chosen.what, health)


async def _arrives(conn: InstrumentedConnection, message: str, within: float) -> bool:
    """Whether ``message`` arrives on ``conn`` within ``within`` s (other messages are skipped)."""
    try:
        async with asyncio.timeout(within):
            while await conn.recv() != message:
                pass
    except TimeoutError:
        return False
    return True


async def test_no_crosstalk(wsconn_connect: Connector, wsconn_settings: Settings) -> None:
    """Of two connections with the same token, one's message never arrives on the other."""
    if wsconn_settings.broadcasts:
        pytest.skip("the service broadcasts every message by design (--wsconn-broadcasts)")
    first = await assert_connects(wsconn_connect)
    second = await assert_connects(wsconn_connect)
    message = f"wsconn isolation {secrets.token_hex(8)}"
    try:
        await first.echo(message, timeout=scaled(ANSWER_WITHIN))
    except TimeoutError as exc:
        pytest.fail(f"the isolation check needs an echo: {exc}", pytrace=False)
    if await _arrives(second, message, scaled(CROSSTALK_WITHIN)):
        pytest.fail(
            "a message sent on one connection also arrived on another one with the same token\n"
            + CROSSTALK.explain(),
            pytrace=False,
        )
