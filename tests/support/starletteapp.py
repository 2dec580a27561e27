"""A Starlette service served by uvicorn, refusing WebSockets the way FastAPI apps do.

    python tests/support/starletteapp.py [MODE] [limit=N]

Starlette answers the upgrade to a path it has no route for with HTTP 403, and so does every
endpoint that closes before ``accept()``: a 403 alone says nothing about why. Routes:

- ``/ws``: closes before accepting (HTTP 403) a foreign Origin (allowed: ``http://localhost``
  or none) or a token other than ``TOKEN`` in the ``token`` query parameter (or
  ``TOKEN.<not before>.<expires>``, unix seconds, inside that window); then echoes.
- ``/health``: HTTP 200 ``ok`` (503 ``sick`` once ``sick-after-abuse`` is).
- ``/admin``: refuses a missing token with HTTP 401 and a token other than ``ADMIN_TOKEN``
  with HTTP 403 (a token without permission); then echoes.

MODE breaks ``/ws`` the way tests/support/brokenserver.py's mode of that name does:
``short-compare`` (the token compared over the shorter length only), ``length-only`` (any token
of the right length), ``any-param`` (the token in any query parameter or cookie),
``loose-origin`` (an Origin containing ``localhost`` anywhere, and ``null``), ``reflects-token``
(refuses with HTTP 401 whose body holds the refused token), ``no-limit`` (uvicorn's
``ws_max_size`` raised to 64 MiB, so 16 MiB + 1 is echoed), ``chat`` (every message goes to
every open connection) or ``ignores-expiry`` (a dated token is taken outside its
window). uvicorn checks frames before the app sees them and closes a bad one
with 1002/1007 itself, so no app can drop the connection or die on one: ``sick-after-abuse`` is
the one way an app fails the protocol abuse checks (``/health`` answers 503 once a connection
ended with a code other than 1000/1001). Any other MODE (``correct``) breaks nothing.

With ``limit=N`` ``/ws`` and ``/admin`` take N connections and close any more with 1013
(uvicorn's limit_concurrency does not count WebSockets, and uvicorn never times out a stalled
handshake: the slow checks catch that). Prints the reference
server's ready line (its URL is ``/ws``), then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from pytest_wsconn.reference.server import READY_PREFIX

TOKEN = "starlette-token"
ADMIN_TOKEN = "starlette-admin-token"
ALLOWED_ORIGINS = {"http://localhost"}


LIMIT = next((int(a.partition("=")[2]) for a in sys.argv[1:] if a.startswith("limit=")), None)
MODE = next((a for a in sys.argv[1:] if not a.startswith("limit=")), "correct")
OPEN: set[WebSocket] = set()
SICK: list[int] = []  # sick-after-abuse: the codes of the connections that ended badly


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    if LIMIT is not None and len(OPEN) >= LIMIT:  # uvicorn's limit_concurrency skips WebSockets
        await websocket.close(code=1013, reason="try again later")
        return
    OPEN.add(websocket)
    try:
        while (message := await websocket.receive())["type"] == "websocket.receive":
            message = {**message, "type": "websocket.send"}
            for peer in list(OPEN) if MODE == "chat" else [websocket]:
                await peer.send(message)
        if MODE == "sick-after-abuse" and message.get("code") not in (1000, 1001):
            SICK.append(message["code"])  # uvicorn closed a bad frame; the app sees the code only
    finally:
        OPEN.discard(websocket)


def origin_ok(origin: str | None) -> bool:
    if MODE == "loose-origin":
        return origin is None or origin == "null" or "localhost" in origin
    return origin is None or origin in ALLOWED_ORIGINS


def tokens_of(websocket: WebSocket) -> list[str]:
    """The tokens MODE reads: ``token`` in the query, or (any-param) every value sent."""
    if MODE != "any-param":
        return websocket.query_params.getlist("token")[:1]
    return [value for _, value in websocket.query_params.multi_items()] + list(
        websocket.cookies.values()
    )


def token_ok(token: str) -> bool:
    if MODE == "short-compare":
        return all(a == b for a, b in zip(token, TOKEN, strict=False))
    if MODE == "length-only":
        return len(token) == len(TOKEN)
    return token == TOKEN or dated_token_ok(token)


def dated_token_ok(token: str) -> bool:
    """``TOKEN.<not before>.<expires>``: right, and (unless ignores-expiry) now in its window."""
    name, _, window = token.partition(".")
    not_before, _, expires = window.partition(".")
    if name != TOKEN or not (not_before.isdigit() and expires.isdigit()):
        return False
    return MODE == "ignores-expiry" or int(not_before) <= time.time() < int(expires)


async def chat(websocket: WebSocket) -> None:
    if not origin_ok(websocket.headers.get("origin")):
        await websocket.close(code=1008)
        return
    tokens = tokens_of(websocket)
    if any(token_ok(token) for token in tokens):
        await echo(websocket)
    elif MODE == "reflects-token":
        body = f"bad token {tokens[:1]}\n"
        await websocket.send_denial_response(PlainTextResponse(body, 401))
    else:
        await websocket.close(code=1008)


async def admin(websocket: WebSocket) -> None:
    token = websocket.query_params.get("token")
    if token is None:
        await websocket.send_denial_response(PlainTextResponse("token missing\n", 401))
        return
    if token != ADMIN_TOKEN:
        await websocket.close(code=1008)
        return
    await echo(websocket)


async def health(request: Request) -> PlainTextResponse:
    if SICK:
        return PlainTextResponse("sick\n", 503)
    return PlainTextResponse("ok\n")


app = Starlette(
    routes=[
        WebSocketRoute("/ws", chat),
        WebSocketRoute("/admin", admin),
        Route("/health", health),
    ]
)


async def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections queue from here on, so the ready line may go out now
    print(f"{READY_PREFIX}ws://127.0.0.1:{sock.getsockname()[1]}/ws", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            ws_max_size=2**26 if MODE == "no-limit" else 2**24,
        )
    )
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
