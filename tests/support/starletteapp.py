"""A Starlette service served by uvicorn, refusing WebSockets the way FastAPI apps do.

    python tests/support/starletteapp.py [short-compare] [limit=N]

Starlette answers the upgrade to a path it has no route for with HTTP 403, and so does every
endpoint that closes before ``accept()``: a 403 alone says nothing about why. Routes:

- ``/ws``: closes before accepting (HTTP 403) a foreign Origin (allowed: ``http://localhost``
  or none) or a token other than ``TOKEN`` in the ``token`` query parameter; then echoes.
- ``/health``: HTTP 200 ``ok``.
- ``/admin``: refuses a missing token with HTTP 401 and a token other than ``ADMIN_TOKEN``
  with HTTP 403 (a token without permission); then echoes.

With ``limit=N`` ``/ws`` and ``/admin`` take N connections and close any more with 1013
(uvicorn's limit_concurrency does not count WebSockets, and uvicorn never times out a stalled
handshake: the slow checks catch that). With ``short-compare`` ``/ws`` compares the token over
the shorter length only (the security battery's near-miss tokens get in). Prints the reference
server's ready line (its URL is ``/ws``), then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import socket
import sys

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
OPEN: set[WebSocket] = set()


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    if LIMIT is not None and len(OPEN) >= LIMIT:  # uvicorn's limit_concurrency skips WebSockets
        await websocket.close(code=1013, reason="try again later")
        return
    OPEN.add(websocket)
    try:
        async for message in websocket.iter_text():
            await websocket.send_text(message)
    finally:
        OPEN.discard(websocket)


def token_ok(token: str) -> bool:
    if "short-compare" in sys.argv[1:]:
        return all(a == b for a, b in zip(token, TOKEN, strict=False))
    return token == TOKEN


async def chat(websocket: WebSocket) -> None:
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in ALLOWED_ORIGINS:
        await websocket.close(code=1008)
        return
    token = websocket.query_params.get("token")
    if token is None or not token_ok(token):
        await websocket.close(code=1008)
        return
    await echo(websocket)


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
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
