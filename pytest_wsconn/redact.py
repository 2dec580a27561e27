"""Keep tokens out of every URL, message and report we print.

``redact_url`` is the one way a URL is printed or stored: it hides the password of its userinfo,
the values of credential-named query parameters (and of any parameter the caller names, such as
the configured token parameter), and any value that looks like a credential whatever its name.
It is total: a URL it cannot parse is redacted as text.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from typing import final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"


@final
class Secret:
    """A token or other credential: ``repr``, ``str`` and f-strings show ``***``.

    Only ``reveal()`` gives the value, so ``--showlocals``, assertion rewriting, tracebacks and
    reprs never print one.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        self._value = value.reveal() if isinstance(value, Secret) else value

    def reveal(self) -> str:
        """The value itself: for the wire, never for output."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


def reveal(value: str | Secret | None) -> str | None:
    """The raw value of a token given either way."""
    return value.reveal() if isinstance(value, Secret) else value


SECRET_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "id_token",
        "auth",
        "authorization",
        "jwt",
        "key",
        "api_key",
        "apikey",
        "sig",
        "signature",
        "secret",
        "password",
        "pass",
        "session",
        "code",
        "credential",
        "credentials",
    }
)
_JWT = re.compile(r"^[\w-]+\.[\w-]+(\.[\w-]*)?$")
_QUERY_VALUE = re.compile(r"(?<=[?&=])([^&=#\s]*)=([^&#\s]*)")
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")
_SECRETS_IN_LOGS = re.compile(
    r"(?i)((?:[?&;](?:token|access_token|auth|jwt|key)=)|(?:bearer\s+))[^\s&\"';]+"
)


def looks_like_credential(value: str) -> bool:
    """A long random-looking value (letters and digits mixed), or a JWT-shaped one."""
    if len(value) >= 20 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
        return True
    return len(value) >= 16 and _JWT.match(value) is not None


def _secret(name: str, value: str, named: set[str]) -> bool:
    return name.lower() in named or looks_like_credential(value)


def redact_url(url: str, params: Iterable[str] = ()) -> str:
    """``url`` with its credentials replaced by ``***`` (see the module docstring)."""
    named = {p.lower() for p in params} | SECRET_PARAMS
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port, like a bad IPv6 host
    except ValueError:
        return _redact_unparsed(url, named)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{hostport}" if has_password else f"{REDACTED}@{hostport}"
    query = parts.query
    if query:
        pairs = [
            (name, REDACTED if _secret(name, value, named) else value)
            for name, value in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _redact_unparsed(url: str, named: set[str]) -> str:
    """The same redaction, by pattern, for text that is not a valid URL."""
    url = _USERINFO.sub(f"{REDACTED}@", url)

    def value(match: re.Match[str]) -> str:
        name, found = match.group(1), match.group(2)
        return f"{name}={REDACTED}" if _secret(name, found, named) else match.group(0)

    return _QUERY_VALUE.sub(value, url)


def redact_text(text: str, secrets: Iterable[str | Secret | None]) -> str:
    """``text`` with every non-trivial secret replaced."""
    for secret in secrets:
        value = reveal(secret)
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    return text


def redact_logs(text: str) -> str:
    """Log text with token-like query values and Bearer credentials replaced by ``***``."""
    return _SECRETS_IN_LOGS.sub(r"\1***", text)
