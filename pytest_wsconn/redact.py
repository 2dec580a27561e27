"""Keep tokens out of every URL, message and report we print."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"


def redact_url(url: str, params: Iterable[str] = ()) -> str:
    """``url`` with the values of token-like query parameters (and ``params``) replaced."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    secret = {p.lower() for p in params} | {"token", "access_token", "auth", "jwt", "key"}
    query = [
        (key, REDACTED if key.lower() in secret else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def redact_text(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-trivial secret replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text
