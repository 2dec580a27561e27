"""A WebSocket client that writes bytes no well-behaved client sends, and reads how it ends.

The opening handshake and the parsing of what the server sends back are websockets' sans-I/O
``ClientProtocol``; this shell only moves bytes. After the handshake the caller's bytes (frames
serialized by ``pytest_wsconn.security``) go to the socket as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import Mapping, Sequence

from websockets.client import ClientProtocol
from websockets.http11 import Response
from websockets.typing import Origin, Subprotocol
from websockets.uri import parse_uri

from pytest_wsconn.config import target_address


@dataclasses.dataclass(frozen=True)
class Ending:
    """How the server ended a connection after our bytes: its close frame, or none."""

    code: int | None  # None: no close frame (the TCP connection dropped, or nothing came)
    reason: str
    dropped: bool  # the TCP connection ended without a close frame
    waited: float

    def describe(self) -> str:
        if self.code is not None:
            return f"closed with {self.code}" + (f" {self.reason!r}" if self.reason else "")
        if self.dropped:
            return "dropped the TCP connection without a close frame (the client sees 1006)"
        return f"neither closed nor answered within {self.waited:g} s"


class HandshakeRefused(Exception):
    """The opening handshake did not succeed."""


async def _read_into(protocol: ClientProtocol, reader: asyncio.StreamReader) -> bool:
    """Feed what arrives to the protocol; False at the end of the stream."""
    data = await reader.read(65536)
    if data:
        protocol.receive_data(data)
    else:
        protocol.receive_eof()
    return bool(data)


async def send_raw(
    url: str,
    payload: bytes,
    *,
    within: float,
    dial: tuple[str, int] | None = None,
    origin: str | None = None,
    headers: Mapping[str, str] | None = None,
    subprotocols: Sequence[str] = (),
) -> Ending:
    """Open ``url`` (through ``dial``), write ``payload`` after the handshake, wait for the end."""
    host, port = dial or target_address(url)
    wsuri = parse_uri(url)
    context = ssl.create_default_context() if wsuri.secure else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            host, port, ssl=context, server_hostname=wsuri.host if context else None
        ),
        within,
    )
    protocol = ClientProtocol(
        wsuri,
        origin=Origin(origin) if origin else None,
        subprotocols=[Subprotocol(p) for p in subprotocols] or None,
    )
    try:
        request = protocol.connect()
        for name, value in (headers or {}).items():
            request.headers[name] = value
        protocol.send_request(request)
        writer.write(b"".join(protocol.data_to_send()))
        async with asyncio.timeout(within):
            while not any(isinstance(e, Response) for e in protocol.events_received()):
                if not await _read_into(protocol, reader):
                    break
        if protocol.handshake_exc is not None or protocol.state.name != "OPEN":
            raise HandshakeRefused(str(protocol.handshake_exc or "the connection ended"))
        writer.write(payload)
        return await _ending(protocol, reader, writer, within)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _ending(
    protocol: ClientProtocol,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    within: float,
) -> Ending:
    """Wait up to ``within`` s for the server's close frame, answering it as a client must."""
    try:
        async with asyncio.timeout(within):
            while protocol.close_rcvd is None:
                if not await _read_into(protocol, reader):
                    return Ending(None, "", dropped=True, waited=within)
    except TimeoutError:
        return Ending(None, "", dropped=False, waited=within)
    except (ConnectionError, OSError):
        return Ending(None, "", dropped=True, waited=within)
    with contextlib.suppress(ConnectionError, OSError):
        writer.write(b"".join(protocol.data_to_send()))  # our close frame, in answer
    close = protocol.close_rcvd
    return Ending(close.code, close.reason, dropped=False, waited=within)


async def stall(url: str, *, deadline: float, dial: tuple[str, int] | None = None) -> float | None:
    """Open a TCP connection, send half an opening handshake, and never finish it.

    Returns the seconds until the server closed the connection, or None when it was still open
    after ``deadline`` seconds.
    """
    host, port = dial or target_address(url)
    wsuri = parse_uri(url)
    context = ssl.create_default_context() if wsuri.secure else None
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            host, port, ssl=context, server_hostname=wsuri.host if context else None
        ),
        deadline,
    )
    try:
        # The request line and Host, then nothing: the headers never end.
        writer.write(f"GET {wsuri.resource_name} HTTP/1.1\r\nHost: {wsuri.host}\r\n".encode())
        async with asyncio.timeout(deadline - (loop.time() - started)):
            with contextlib.suppress(ConnectionError, OSError):
                while await reader.read(65536):
                    pass
    except TimeoutError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return loop.time() - started
