"""Signed, expiring bearer tokens for the reference server.

A token is ``base64url(json {"sub", "exp"}) + "." + base64url(HMAC-SHA256(secret, first part))``
without padding. Pure, no I/O: verification takes ``now`` from the caller, so tests need no sleeps.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import math
import time
from typing import Literal

TokenKind = Literal["valid", "expired", "forged"]
SECRET_ENV = "WSCONN_REFERENCE_SECRET"  # noqa: S105 - the variable's name, not a secret
"""The environment variable the reference server reads its token secret from."""
REFERENCE_TOKEN_TTL = 3600.0  # long enough for any test session, short enough to stay a test token

_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class TokenVerdict(enum.Enum):
    """What :func:`verify_token` decided; the value names it in close reasons and logs."""

    VALID = "valid"
    MISSING = "missing"
    MALFORMED = "malformed"
    FORGED = "forged"
    EXPIRED = "expired"


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes | None:
    """Decode canonical unpadded base64url, or ``None``.

    Canonical only: a lenient decoder would let an attacker change the unused low bits of the
    last character and still present a "valid" token.
    """
    if not text or not _ALPHABET.issuperset(text):
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _encode(data) == text else None


def _signature(secret: bytes, payload_part: str) -> bytes:
    return hmac.new(secret, payload_part.encode("ascii"), hashlib.sha256).digest()


def sign_token(secret: bytes, subject: str, expires_at: float) -> str:
    """A token for ``subject`` that stops being valid at ``expires_at`` (seconds since the epoch).

    Raises ``ValueError`` for a non-finite ``expires_at``: such a token would never expire.
    """
    claims = json.dumps({"sub": subject, "exp": expires_at}, separators=(",", ":"), allow_nan=False)
    payload_part = _encode(claims.encode("utf-8"))
    return f"{payload_part}.{_encode(_signature(secret, payload_part))}"


def _expiry(payload: bytes) -> float | None:
    """The ``exp`` of well-formed claims ``{"sub": str, "exp": finite number}``, else ``None``."""
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
        return None
    expires_at = claims.get("exp")
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        return None
    return None if isinstance(expires_at, float) and not math.isfinite(expires_at) else expires_at


def verify_token(secret: bytes, token: str | None, now: float) -> TokenVerdict:
    """Judge ``token`` at time ``now``; total over every input, it never raises.

    The signature is checked before the claims are parsed, so untrusted JSON is never read.
    A token is expired from the instant ``now >= exp`` (as JWT's ``exp``).
    """
    if not token:
        return TokenVerdict.MISSING
    payload_part, _, signature_part = token.partition(".")
    payload = _decode(payload_part)
    signature = _decode(signature_part)
    if payload is None or signature is None:
        return TokenVerdict.MALFORMED
    if not hmac.compare_digest(signature, _signature(secret, payload_part)):
        return TokenVerdict.FORGED
    expires_at = _expiry(payload)
    if expires_at is None:
        return TokenVerdict.MALFORMED
    return TokenVerdict.EXPIRED if now >= expires_at else TokenVerdict.VALID


def forge(token: str) -> str:
    """``token`` with its signature changed and its shape kept, so a verifier must call it forged.

    The first character of the last dot-separated part changes: that alters the first decoded
    byte of a JWT or reference signature, where the last character may only hold unused bits.
    """
    head, dot, signature = token.rpartition(".")
    first = "B" if signature[:1] == "A" else "A"
    return f"{head}{dot}{first}{signature[1:]}"


def reference_token(
    secret: bytes, kind: TokenKind, now: float | None = None, subject: str = "wsconn"
) -> str:
    """A token the reference server judges ``kind``; ``now`` defaults to the wall clock."""
    issued_at = time.time() if now is None else now
    if kind == "expired":
        return sign_token(secret, subject, issued_at - REFERENCE_TOKEN_TTL)
    token = sign_token(secret, subject, issued_at + REFERENCE_TOKEN_TTL)
    return forge(token) if kind == "forged" else token
