"""GET a service's health endpoint: the one HTTP request the security checks make besides upgrades.

The answer is parsed by the pure ``verdicts.replies.parse_http_response``; this shell only moves
bytes, within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

from pytest_wsconn.config import DEFAULT_PORTS
from pytest_wsconn.verdicts.replies import HttpReply, parse_http_response

MAX_REPLY_BYTES = 2**20


async def get_health(url: str, within: float) -> HttpReply:
    """``GET url`` over a fresh connection; ``TimeoutError``, ``OSError`` or ``ValueError``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme]
    secure = parts.scheme == "https"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc.rpartition('@')[2]}\r\n"
        "User-Agent: pytest-wsconn\r\nConnection: close\r\n\r\n"
    )
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection(
            host,
            port,
            ssl=ssl.create_default_context() if secure else None,
            server_hostname=parts.hostname if secure else None,
        )
        try:
            writer.write(request.encode("ascii"))
            data, eof = b"", False
            while (reply := parse_http_response(data, eof=eof)) is None:
                if len(data) > MAX_REPLY_BYTES:
                    raise ValueError("the health endpoint's answer is over 1 MiB")
                chunk = await reader.read(65536)
                data, eof = data + chunk, not chunk
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return reply
