"""URL sanity: a ws(s):// URL with a host and port, and no ws:// from an https page."""

from __future__ import annotations

from urllib.parse import urlsplit

from pytest_wsconn.closecodes import WebSocketError
from pytest_wsconn.config import origin_of, target_address
from pytest_wsconn.results import CheckResult

BAD_URL = WebSocketError(
    category="protocol",
    code=None,
    message="The URL is not a WebSocket URL.",
    causes=("a typo, or an http(s):// URL where ws(s):// is needed",),
    steps=("write it as ws://host[:port]/path, or wss://host[:port]/path for TLS",),
    retryable=False,
)
MIXED_CONTENT = WebSocketError(
    category="policy",
    code=None,
    message="Browsers refuse to open ws:// from an https page (mixed content).",
    causes=("the page is served over https while the WebSocket URL still says ws://",),
    steps=(
        "serve the WebSocket over TLS and use wss://",
        "build the URL from the page's location: wss:// when the page is https:",
    ),
    retryable=False,
)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be dialled at all, in words for a user, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "the URL is malformed (host or port)"
    if parts.scheme not in ("ws", "wss"):
        fix = {"http": "; use ws://", "https": "; use wss://"}.get(parts.scheme, "")
        return f"the scheme is {parts.scheme or 'missing'!r}, not ws or wss{fix}"
    if not parts.hostname:
        return "the URL has no host"
    return None


def check_url(url: str, page_origin: str | None = None) -> CheckResult:
    """Scheme, host and port; mixed content against the page; a path present."""
    problem = url_problem(url)
    if problem is not None:
        return CheckResult("url", "fail", problem, error=BAD_URL)
    parts = urlsplit(url)
    host, port = target_address(url)
    where = f"{parts.scheme}:// to {host}:{port}, path {parts.path or '(none)'}"
    if page_origin and page_origin.lower().startswith("https:") and parts.scheme == "ws":
        page = origin_of(page_origin)
        detail = f"{where}: a page on {page} cannot open ws:// (mixed content); use wss://"
        return CheckResult("url", "fail", detail, error=MIXED_CONTENT)
    if not parts.path:
        detail = f"{where}: no path, so the upgrade goes to /; most services use one, e.g. /ws"
        return CheckResult("url", "warn", detail)
    return CheckResult("url", "pass", where)
