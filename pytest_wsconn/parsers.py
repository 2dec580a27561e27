"""The pure parsers of option values: URLs, numbers, durations, flags, addresses.

Each takes the raw text of an option, ini key or env var and returns a typed value or raises
``ConfigError`` naming the valid values. ``config`` builds the settings with them; its names
are the ones to import.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from pytest_wsconn.exceptions import ConfigError


def parse_ws_url(text: str) -> str:
    """Validate a ``ws://`` or ``wss://`` URL with a host."""
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(
            f"invalid WebSocket URL {text!r}; valid: ws://host[:port]/path or wss://…"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"invalid port in WebSocket URL {text!r}") from None
    return text


def _http_url(text: str, what: str, example: str) -> str:
    """``text`` if it is an ``http(s)://host…`` URL, else a ``ConfigError`` showing ``example``."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid {what} {text!r}; valid: {example}")
    return text


def parse_http_url(text: str) -> str:
    """Validate an ``http://host:port`` URL (a running Toxiproxy API)."""
    return _http_url(text, "Toxiproxy URL", "http://host:port").rstrip("/")


def parse_page_origin(text: str) -> str:
    """The origin of a page, ``http(s)://host[:port]`` (a path is dropped)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid page origin {text!r}; valid: http(s)://host[:port]")
    return origin_of(text)


def parse_pushgateway_url(text: str) -> str:
    """A Pushgateway's base URL, ``http(s)://host:port``."""
    return _http_url(text, "Pushgateway URL", "http://host:9091").rstrip("/")


def parse_health_url(text: str) -> str:
    """A health endpoint's URL, ``http(s)://host[:port]/path``."""
    return _http_url(text, "health URL", "http://host:port/health")


def parse_origin(text: str) -> str:
    """A web page's origin, ``http(s)://host[:port]`` without a path."""
    parts = urlsplit(text.strip())
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(f"{text!r} is not an origin like https://app.example.com")
    return text


def parse_url_path(text: str) -> str:
    """The path part of a URL, such as the one clients open WebSockets on."""
    if not text.startswith("/"):
        raise ConfigError(f"{text!r} is not a path like /ws")
    return text


def parse_flag(value: str | bool) -> bool:
    """A yes/no setting: ``True`` from a command-line flag, or ini text such as ``true``/``0``."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"invalid yes/no value {value!r}; valid: true, false, 1, 0, yes, no")


def _number(text: str, kind: type[int] | type[float], what: str) -> float:
    """``text`` as a finite number, or a ``ConfigError`` saying ``text`` is not ``what``."""
    try:
        value = kind(text.strip())
    except ValueError:
        raise ConfigError(f"{text!r} is not {what}") from None
    if not -math.inf < value < math.inf:  # nan and infinities too
        raise ConfigError(f"{text!r} is not {what}")
    return value


def _integer(text: str, what: str, low: int, high: float = math.inf) -> int:
    """``text`` as an integer from ``low`` to ``high``, or a ``ConfigError`` naming ``what``."""
    value = int(_number(text, int, what))
    if not low <= value <= high:
        raise ConfigError(f"{text!r} is not {what}")
    return value


def parse_positive_int(text: str) -> int:
    """A count of 1 or more (users, bytes, connections)."""
    return _integer(text, "a positive integer", 1)


def parse_non_negative_int(text: str) -> int:
    """A count of 0 or more (worker processes)."""
    return _integer(text, "0 or more", 0)


def parse_port(text: str) -> int:
    """A TCP port to listen on; 0 asks the system for a free one."""
    return _integer(text, "a port (0-65535; 0 picks a free one)", 0, 65535)


def parse_seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    what = "a positive number of seconds"
    seconds = _number(text, float, what)
    if not seconds > 0:
        raise ConfigError(f"{text!r} is not {what}")
    return seconds


def parse_seconds_or_off(text: str) -> float | None:
    """A number of seconds, or ``0`` for off (``None``): keepalive pings and their timeout."""
    what = "a number of seconds (0 disables)"
    seconds = _number(text, float, what)
    if seconds < 0:
        raise ConfigError(f"{text!r} is not {what}")
    return seconds or None


def parse_timeout(text: str) -> float:
    """Validate a timeout: a positive number of seconds (``parse_seconds``)."""
    try:
        return parse_seconds(text)
    except ConfigError:
        raise ConfigError(
            f"invalid timeout {text!r}; valid: a positive number of seconds"
        ) from None


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``2m``, ``1h30m`` or ``1.5s`` → seconds (> 0)."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", value)
        if not value or parts is None:
            raise ConfigError(f"invalid duration {text!r}; valid: e.g. 30, 30s, 2m, 1h30m")
        hours, minutes, secs = (float(p) if p else 0.0 for p in parts.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if not seconds > 0:
        raise ConfigError(f"invalid duration {text!r}; valid: a positive time, e.g. 30s")
    return seconds


DEFAULT_PORTS = {"ws": 80, "http": 80, "wss": 443, "https": 443}


def target_address(url: str) -> tuple[str, int]:
    """Host and port a WebSocket URL dials, with the scheme's default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or (443 if parts.scheme == "wss" else 80)


def origin_of(url: str) -> str:
    """The ``Origin`` a browser sends from a page at ``url``: ``scheme://host[:port]``.

    Lowercase, the scheme's default port left out, an IPv6 host in brackets; total (a URL that
    does not parse keeps what can be read of it).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a bad port: the authority as written
        return f"{scheme}://{parts.netloc.rpartition('@')[2].lower()}"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    shown = f":{port}" if port is not None and port != DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{host}{shown}"
