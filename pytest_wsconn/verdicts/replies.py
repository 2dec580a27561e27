"""HTTP answers: a raw reply parsed, the health pages judged, the upgrade's answer described."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from websockets.utils import accept_key

from pytest_wsconn.closecodes import classify_http_status
from pytest_wsconn.results import CheckResult

NOTABLE_HEADERS = ("Server", "Via", "X-Powered-By", "Sec-WebSocket-Extensions")
"""Response headers that tell which server or proxy answered the upgrade."""


@dataclasses.dataclass(frozen=True)
class HttpReply:
    """An HTTP answer, as much of it as a diagnosis reads."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def _dechunk(data: bytes, eof: bool) -> bytes | None:
    """A chunked body, or None while more bytes are needed; what arrived, once ``eof``."""
    body, pos = b"", 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return body if eof else None
        size_text = data[pos:end].partition(b";")[0].strip()
        if not size_text or not all(c in b"0123456789abcdefABCDEF" for c in size_text):
            raise ValueError(f"bad chunk size {size_text[:20]!r} in a chunked body")
        size = int(size_text, 16)
        if size == 0:
            return body
        start = end + 2
        if len(data) < start + size:
            return body + data[start:] if eof else None
        body += data[start : start + size]
        pos = start + size + 2


def parse_http_response(data: bytes, *, eof: bool) -> HttpReply | None:
    """Parse an HTTP/1.x answer; None while more bytes are needed, never once ``eof``.

    Raises ``ValueError`` for bytes that are not an HTTP answer.
    """
    head, separator, rest = data.partition(b"\r\n\r\n")
    if not separator:
        if eof:
            raise ValueError("the connection closed before the HTTP headers ended")
        return None
    status_line, *lines = head.decode("latin-1").split("\r\n")
    version, _, after = status_line.partition(" ")
    code = after[:3]
    if not version.startswith("HTTP/1.") or not (code.isascii() and code.isdigit()):
        raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
    headers = tuple(
        (key.strip(), value.strip()) for key, _, value in (line.partition(":") for line in lines)
    )
    reply = HttpReply(int(code), headers)
    length = reply.header("Content-Length")
    if "chunked" in (reply.header("Transfer-Encoding") or "").lower():
        body = _dechunk(rest, eof)
    elif length is not None:
        if not (length.isascii() and length.isdigit()):
            raise ValueError(f"bad Content-Length {length[:20]!r}")
        body = rest[: int(length)] if eof or len(rest) >= int(length) else None
    else:
        body = rest if eof else None
    return None if body is None else dataclasses.replace(reply, body=body)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def check_health(path: str, reply: HttpReply) -> CheckResult:
    """Pass on 2xx; warn on a redirect or a 4xx (no usable endpoint); fail on 5xx."""
    said = f"GET {path}: HTTP {reply.status}"
    if 200 <= reply.status < 300:
        status = _json_object(reply.body).get("status")
        return CheckResult("health", "pass", said + (f", status {status}" if status else ""))
    if 300 <= reply.status < 400:
        return CheckResult("health", "warn", f"{said}, redirects to {reply.header('Location')}")
    if reply.status < 500:
        detail = f"{said}: no health endpoint there (set --health-path)"
        return CheckResult("health", "warn", detail)
    return CheckResult("health", "fail", said, error=classify_http_status(reply.status))


_HEALTH_SUMMARY = (
    "status",
    "active_connections",
    "max_connections",
    "auth",
    "ping_interval",
    "ping_timeout",
    "uptime_seconds",
)


def check_health_websocket(path: str, reply: HttpReply) -> CheckResult:
    """Report the fields of a WebSocket health page; warn on the problems it lists."""
    name, said = "health_websocket", f"GET {path}: HTTP {reply.status}"
    if reply.status == 404:
        return CheckResult(name, "skipped", f"skipped: the service has no {path} (HTTP 404)")
    report = _json_object(reply.body)
    if not 200 <= reply.status < 300 or not report:
        return CheckResult(name, "warn", f"{said}, not a JSON report")
    summary = ", ".join(f"{key}={report[key]}" for key in _HEALTH_SUMMARY if key in report)
    detail = f"{said}: {summary}" if summary else said
    config = report.get("config")
    problems = config.get("problems") if isinstance(config, dict) else None
    if problems and isinstance(problems, list):
        detail += "; config problems: " + "; ".join(map(str, problems))
        return CheckResult(name, "warn", detail, fields=report)
    return CheckResult(name, "pass", detail, fields=report)


def first_line(body: bytes) -> str:
    """The first line of a refusal's body, cut to 100 characters: what a server said, if any."""
    lines = body.decode("utf-8", "replace").strip().splitlines()
    return lines[0][:100] if lines else ""


def describe_handshake(
    reply: HttpReply, *, key: str | None = None, subprotocol: str | None = None
) -> tuple[str, dict[str, Any]]:
    """What the answer to the upgrade says, as a detail and fields.

    Status, Upgrade, whether Sec-WebSocket-Accept answers ``key``, the subprotocol, and the
    headers that show which server or proxy answered; for a refusal, the body's first line.
    """
    notable = {n: v for n in NOTABLE_HEADERS if (v := reply.header(n)) is not None}
    fields: dict[str, Any] = {"status": reply.status, "headers": notable}
    if reply.status == 101:
        accept = reply.header("Sec-WebSocket-Accept")
        valid = key is not None and accept == accept_key(key)
        fields.update(upgrade=reply.header("Upgrade"), accept_valid=valid, subprotocol=subprotocol)
        said = [
            "HTTP 101",
            f"Upgrade: {reply.header('Upgrade')}",
            f"Sec-WebSocket-Accept {'valid' if valid else 'INVALID'}",
            f"subprotocol {subprotocol or 'none'}",
        ]
    else:
        said = [f"HTTP {reply.status} instead of 101 Switching Protocols"]
        first = first_line(reply.body)
        said += [f"body {first!r}"] if first else []
    said += [f"{n}: {v}" for n, v in notable.items()]
    return ", ".join(said), fields
