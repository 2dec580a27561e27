"""WebSocket servers that each break one behaviour, to prove the check battery catches it.

    python tests/support/brokenserver.py MODE

MODE is ``accept-anything`` (no token or Origin check), ``wrong-close-code`` (answers a
client's 1000 with 1001), ``no-pong`` (never answers pings), ``never-echoes`` (pushes a tick
every 10 ms, echoes nothing), ``pushes`` (echoes, and pushes a tick every 10 ms), ``chat``
(broadcasts every message to every connection, the sender's included) or ``answers`` (a
request/response protocol: answers a JSON message with ``{"id": <its id>, "ok": true}``, never
an echo). Auth and Origin checks that security checks must catch: ``short-compare`` (compares
the token over the shorter length only: empty, truncated and extended tokens pass),
``length-only`` (any token of the right length), ``any-param`` (the token in any query
parameter or cookie), ``loose-origin`` (an Origin containing ``localhost`` anywhere, and
``null``) and ``reflects-token`` (the refused token in the 401 body). Limits and framing:
``no-limit`` (takes messages of any size), ``drops-on-bad-frames`` (drops the TCP connection
instead of closing with 1002/1007), ``dies-on-bad-utf8`` (the process exits) and
``sick-after-abuse`` (closes a bad frame correctly, but its ``/health`` answers 503 from then
on). Slow checks: ``unlimited`` (no opening-handshake timeout, no connection maximum) and
``evicts-oldest`` (at ``EVICT_AT`` connections a new one is refused with 1013, and the
oldest closed with 1013 too). Every mode answers ``GET /health`` (200 unless sick). Otherwise
each behaves like the reference server: echo, token ``TOKEN`` in the ``token`` query
parameter, Origin allow-list.
Prints the reference server's ready line, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from pytest_wsconn.reference.server import READY_PREFIX

TOKEN = "broken-server-token"
ALLOWED_ORIGINS = {"http://localhost"}
MODES = (
    "accept-anything",
    "wrong-close-code",
    "no-pong",
    "never-echoes",
    "pushes",
    "chat",
    "answers",
    "short-compare",
    "length-only",
    "any-param",
    "loose-origin",
    "reflects-token",
    "no-limit",
    "drops-on-bad-frames",
    "dies-on-bad-utf8",
    "sick-after-abuse",
    "unlimited",
    "evicts-oldest",
)
EVICT_AT = 3
TICK_SECONDS = 0.01


def origin_ok(mode: str, origin: str | None) -> bool:
    if mode == "loose-origin":
        return origin is None or origin == "null" or re.search("localhost", origin) is not None
    return origin is None or origin in ALLOWED_ORIGINS


def tokens_of(mode: str, request: Request) -> list[str]:
    """The tokens the mode reads: ``token`` in the query, or (any-param) every value sent."""
    query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
    if mode != "any-param":
        return query.get("token", [])[:1]
    cookies = [
        pair.partition("=")[2].strip()
        for value in request.headers.get_all("Cookie")
        for pair in value.split(";")
    ]
    return [value for values in query.values() for value in values] + cookies


def token_ok(mode: str, token: str) -> bool:
    if mode == "short-compare":
        return all(a == b for a, b in zip(token, TOKEN, strict=False))
    if mode == "length-only":
        return len(token) == len(TOKEN)
    return token == TOKEN


class Health:
    """Whether ``/health`` answers 200; ``sick-after-abuse`` turns it off at the first bad frame."""

    sick = False


def check_request(mode: str, connection: ServerConnection, request: Request) -> Response | None:
    if urlsplit(request.path).path == "/health":
        if Health.sick:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "sick\n")
        return connection.respond(HTTPStatus.OK, "ok\n")
    if mode == "accept-anything":
        return None
    if not origin_ok(mode, request.headers.get("Origin")):
        return connection.respond(HTTPStatus.FORBIDDEN, "foreign origin\n")
    tokens = tokens_of(mode, request)
    if any(token_ok(mode, token) for token in tokens):
        return None
    if mode == "reflects-token":
        return connection.respond(HTTPStatus.UNAUTHORIZED, f"bad token {tokens[:1]}\n")
    return connection.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")


def break_frames(mode: str, connection: ServerConnection) -> None:
    protocol = connection.protocol
    receive = protocol.recv_frame

    def recv_frame(frame: Frame) -> None:
        if mode == "no-pong" and frame.opcode is Opcode.PING:
            return
        closing = frame.opcode is Opcode.CLOSE and protocol.state is State.OPEN
        if mode == "wrong-close-code" and closing:
            protocol.send_close(CloseCode.GOING_AWAY, "bye")
        receive(frame)

    protocol.recv_frame = recv_frame  # type: ignore[method-assign]
    fail = protocol.fail

    def fail_badly(code: int, reason: str = "") -> None:
        if mode == "drops-on-bad-frames":
            connection.transport.abort()
        elif mode == "dies-on-bad-utf8" and code == CloseCode.INVALID_DATA:
            os._exit(3)
        else:
            Health.sick = Health.sick or mode == "sick-after-abuse"
            fail(code, reason)

    protocol.fail = fail_badly  # type: ignore[method-assign]


def answer(message: str | bytes) -> str:
    """The ``answers`` mode's reply: the request's id and whether it had one."""
    try:
        request = json.loads(message)
    except ValueError:
        request = None
    ident = request.get("id") if isinstance(request, dict) else None
    return json.dumps({"id": ident, "ok": ident is not None})


async def tick(connection: ServerConnection) -> None:
    """Push a message every ``TICK_SECONDS`` until the connection closes."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.sleep(TICK_SECONDS)
            await connection.send("tick")


async def main(mode: str) -> None:
    connections: dict[ServerConnection, None] = {}  # in the order they opened

    async def handler(connection: ServerConnection) -> None:
        break_frames(mode, connection)
        if mode == "evicts-oldest" and len(connections) >= EVICT_AT:
            await next(iter(connections)).close(CloseCode.TRY_AGAIN_LATER, "evicted")
            await connection.close(CloseCode.TRY_AGAIN_LATER, "try again later")
            return
        pusher = None
        if mode in ("never-echoes", "pushes"):
            await connection.send("tick")  # before any echo: the first message is always a push
            pusher = asyncio.create_task(tick(connection))
        connections[connection] = None
        try:
            async for message in connection:
                if mode == "chat":
                    broadcast(connections, message)
                elif mode == "answers":
                    await connection.send(answer(message))
                elif mode != "never-echoes":
                    await connection.send(message)
        finally:
            connections.pop(connection, None)
            if pusher is not None:
                pusher.cancel()

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with serve(
        handler,
        "127.0.0.1",
        0,
        process_request=lambda conn, req: check_request(mode, conn, req),
        max_size=None if mode == "no-limit" else 2**20,
        open_timeout=None if mode == "unlimited" else 10,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"{READY_PREFIX}ws://127.0.0.1:{port}/ws", flush=True)
        await stop.wait()


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in MODES:
        sys.exit(f"usage: brokenserver.py {{{','.join(MODES)}}}")
    asyncio.run(main(sys.argv[1]))
