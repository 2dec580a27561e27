"""The security battery's pure core: what it sends, and the words of its verdicts.

Every variant is named (the name is its test id), derived from what the user gave (the valid
token, the allowed Origin) and carries why getting through matters and the fix. Nothing here
opens a socket: ``pytest_wsconn.checks.test_security`` sends the variants and reads the answers.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Callable
from typing import Final, cast
from urllib.parse import urlsplit

from websockets.frames import Frame, Opcode

from pytest_wsconn.closecodes import Outcome
from pytest_wsconn.config import AuthMode, origin_of
from pytest_wsconn.expect import ConnectionAttempt, classify

OWASP: Final = "OWASP WebSocket Security Cheat Sheet"
OWASP_URL: Final = (
    "https://cheatsheetseries.owasp.org/cheatsheets/WebSocket_Security_Cheat_Sheet.html"
)
REFUSALS: Final = frozenset({"auth", "policy"})  # 401/403, or close 1008, 3000, 3003, app codes


@dataclasses.dataclass(frozen=True)
class Weakness:
    """Why a variant getting through matters, and what fixes it."""

    why: str
    fix: str
    refs: str  # "CWE-287, OWASP …"

    def explain(self) -> str:
        return f"why it matters: {self.why} ({self.refs})\nfix: {self.fix}"


AUTH_BYPASS = Weakness(
    "anyone holding something close to a token, or nothing at all, gets a session",
    "refuse the upgrade with HTTP 401 unless the whole token verifies: signature over its full "
    "length in constant time (hmac.compare_digest), expiry and not-before checked",
    f"CWE-287 improper authentication, {OWASP}: authentication",
)
ORIGIN_BYPASS = Weakness(
    "a page on that origin can open a connection with the visitor's cookies and act as them "
    "(Cross-Site WebSocket Hijacking)",
    "compare the whole Origin header exactly against an allow-list of scheme://host[:port] "
    "(no substring, prefix or suffix match) and refuse 'null' with HTTP 403",
    f"CWE-1385 missing Origin validation in WebSockets, {OWASP}: Origin header",
)
REFLECTION = Weakness(
    "a credential echoed in an error lands in logs, proxies and browser consoles",
    "answer a refusal with a fixed text such as 'invalid token'; never include what was sent",
    f"CWE-209 sensitive information in an error message, {OWASP}: authentication",
)
NO_LIMIT = Weakness(
    "one client can make the service buffer any amount of memory and take it down",
    "set a maximum message size (websockets max_size, ws maxPayload, uvicorn ws_max_size) and "
    "close with 1009 above it",
    f"CWE-770 allocation of resources without limits, {OWASP}: message size",
)
PROTOCOL_ABUSE = Weakness(
    "a client that breaks the framing rules must get a close frame saying so, and must not "
    "take the service down for everyone else",
    "let the WebSocket library validate frames (do not disable UTF-8 or masking checks) and "
    "close with 1002 (1007 for invalid UTF-8); keep one connection's error out of the others",
    f"CWE-20 improper input validation, RFC 6455 section 5, {OWASP}: input validation",
)
CROSSTALK = Weakness(
    "one client's messages reach another client: data of one user is shown to the next",
    "route replies to the connection (or the user) they belong to; broadcast only on purpose "
    "(then pass --wsconn-broadcasts)",
    f"CWE-200 exposure of information to an unauthorized actor, {OWASP}: authorization",
)
STALLED_HANDSHAKE = Weakness(
    "a few clients that open TCP connections and never finish the request hold the service's "
    "sockets and memory until nobody else can connect (slowloris)",
    "close an opening handshake that has not completed within a deadline (websockets "
    "open_timeout, nginx client_header_timeout, a proxy's request header timeout)",
    f"CWE-400 uncontrolled resource consumption, {OWASP}: denial of service",
)
NO_MAXIMUM = Weakness(
    "with no connection maximum, or one enforced by dropping existing clients, one client can "
    "exhaust the service or push everyone else off it",
    "refuse connections over the maximum with close 1013 (try again later) or HTTP 429/503, "
    "and leave the connections already open alone",
    f"CWE-770 allocation of resources without limits, {OWASP}: denial of service",
)
OVER_CAPACITY_CODES: Final = frozenset({1013})
OVER_CAPACITY_STATUSES: Final = frozenset({429, 503})


def over_capacity_verdict(attempt: ConnectionAttempt) -> str | None:
    """What the service did with a connection above its maximum; None for a proper refusal."""
    if attempt.outcome is Outcome.HTTP_REJECTED:
        if attempt.http_status in OVER_CAPACITY_STATUSES:
            return None
        return f"it was refused with HTTP {attempt.http_status}, not 429 or 503"
    if attempt.outcome is not Outcome.OPENED:
        return f"it failed as {classify(attempt)}, not with a refusal"
    close = attempt.close
    if close is None or close.initiated_by_us:
        return "the connection was accepted and stayed open"
    if close.received and close.code in OVER_CAPACITY_CODES:
        return None
    return f"it was closed with {close.code}, not 1013 (try again later)"


# The auth matrix


def _other_char(char: str) -> str:
    """Another character of the same alphabet that changes significant bits.

    In base64/base64url the index's top bit is flipped: the last character of a signature may
    only hold unused low bits, so swapping ``A`` for ``B`` there could decode to the same bytes.
    """
    for alphabet in (
        string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_",
        string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/",
    ):
        if char in alphabet:
            return alphabet[alphabet.index(char) ^ 32]
    return "a" if char != "a" else "b"


def change_char(token: str, index: int) -> str:
    """``token`` with the character at ``index`` replaced by another one."""
    return f"{token[:index]}{_other_char(token[index])}{token[index + 1 :]}"


def _prefix(token: str, length: int) -> str | None:
    """A proper, non-empty prefix of ``token``; None when the token is too short for one."""
    return token[:length] if 0 < length < len(token) else None


@dataclasses.dataclass(frozen=True)
class CredentialVariant:
    """A credential the service must refuse, made from the valid token."""

    id: str  # the test id
    what: str  # "the valid token truncated to one character"
    make: Callable[[str], str | None]  # the valid token -> the one to send; None: not applicable
    place: AuthMode | None = None  # where it goes; None: the session's auth mode


DECOY = "wsconn_decoy"
CREDENTIAL_VARIANTS: Final = (
    CredentialVariant("empty", "an empty token (token=, 'Bearer ' with nothing)", lambda t: ""),
    CredentialVariant("truncated-by-one", "the valid token without its last character",
                      lambda t: _prefix(t, len(t) - 1)),
    CredentialVariant("truncated-to-half", "the first half of the valid token",
                      lambda t: _prefix(t, len(t) // 2)),
    CredentialVariant("truncated-to-one", "the valid token's first character alone",
                      lambda t: _prefix(t, 1)),
    CredentialVariant("appended", "the valid token with characters appended", lambda t: t + "AA"),
    CredentialVariant("case-swapped", "the valid token with its letters' case swapped",
                      lambda t: t.swapcase() if t.swapcase() != t else None),
    CredentialVariant("changed-first", "the valid token with its first character changed",
                      lambda t: change_char(t, 0) if t else None),
    CredentialVariant("changed-middle", "the valid token with its middle character changed",
                      lambda t: change_char(t, len(t) // 2) if t else None),
    CredentialVariant("changed-last", "the valid token with its last character changed",
                      lambda t: change_char(t, len(t) - 1) if t else None),
    CredentialVariant("decoy-query", f"the valid token in a query parameter {DECOY}",
                      lambda t: t, AuthMode("query", DECOY)),
    CredentialVariant("decoy-cookie", f"the valid token in a cookie {DECOY}",
                      lambda t: t, AuthMode("cookie", DECOY)),
)  # fmt: skip
CREDENTIAL_IDS: Final = tuple(variant.id for variant in CREDENTIAL_VARIANTS)
STALE_TOKENS: Final = {"expired": "an expired token", "not-yet-valid": "a token not valid yet"}
"""The kinds of token only the pytest_wsconn_token hook gives, and what a failure calls them."""
HOOK_KINDS: Final = tuple(STALE_TOKENS)


def credential_variant(variant_id: str) -> CredentialVariant:
    return next(v for v in CREDENTIAL_VARIANTS if v.id == variant_id)


# The Origin matrix


@dataclasses.dataclass(frozen=True)
class OriginVariant:
    id: str
    what: str
    make: Callable[[str, str, int | None], str]  # scheme, host, port -> the Origin to send


def _authority(host: str, port: int | None) -> str:
    return f"{host}:{port}" if port is not None else host


def _other_port(scheme: str, port: int | None) -> int:
    if port is None:
        return 8443 if scheme == "https" else 8080
    return port + 1 if port < 65535 else port - 1


ORIGIN_VARIANTS: Final = (
    OriginVariant("suffixed", "the allowed host with .attacker.invalid appended",
                  lambda s, h, p: f"{s}://{_authority(h + '.attacker.invalid', p)}"),
    OriginVariant("look-alike", "a look-alike host ending in the allowed one",
                  lambda s, h, p: f"{s}://{_authority('evil' + h, p)}"),
    OriginVariant("other-scheme", "the allowed host on the other scheme",
                  lambda s, h, p: f"{'http' if s == 'https' else 'https'}://{_authority(h, p)}"),
    OriginVariant("other-port", "the allowed host on another port",
                  lambda s, h, p: f"{s}://{_authority(h, _other_port(s, p))}"),
    OriginVariant("null", "Origin: null (sandboxed iframes, file: pages, redirects)",
                  lambda s, h, p: "null"),
)  # fmt: skip
ORIGIN_IDS: Final = tuple(variant.id for variant in ORIGIN_VARIANTS)


def origin_variant(allowed: str, variant_id: str) -> tuple[str, str]:
    """The Origin to send for ``variant_id`` when ``allowed`` is the allowed one, and its words."""
    canonical = origin_of(allowed)
    parts = urlsplit(canonical)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    variant = next(v for v in ORIGIN_VARIANTS if v.id == variant_id)
    return variant.make(parts.scheme, host, parts.port), variant.what


# Verdicts


def got_through(attempt: ConnectionAttempt) -> str | None:
    """What the service did with a request it must refuse, or None when it refused it.

    Refused: HTTP 401/403 before the upgrade, or a close with an auth or policy code (1008,
    3000, 3003, or an application code configured as auth) right after it.
    """
    if attempt.outcome is Outcome.OPENED and (
        attempt.close is None or attempt.close.initiated_by_us
    ):
        return "the connection was accepted and stayed open"
    diagnosis = classify(attempt)
    if diagnosis.category in REFUSALS:
        return None
    if attempt.outcome is Outcome.HTTP_REJECTED:
        return f"it was refused, but with HTTP {attempt.http_status} — {diagnosis}"
    return f"it was turned away as {diagnosis}, not as an auth or policy refusal"


def bypass_message(what: str, verdict: str, weakness: Weakness) -> str:
    """A check's failure: what got through, what the service did, why it matters, the fix."""
    return f"{what} got through: {verdict}; expected HTTP 401/403 or close 1008\n" + (
        weakness.explain()
    )


def reflected_in(secret: str, places: dict[str, str]) -> list[str]:
    """The names of the places (body, a header, the close reason) that contain ``secret``."""
    return [name for name, text in places.items() if secret and secret in text]


# Protocol abuse


class UncheckedFrame(Frame):
    """A frame websockets serializes without validating it: for frames a client must not send."""

    def check(self) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class Abuse:
    """A frame sequence that breaks RFC 6455, and the close codes that answer it correctly."""

    id: str
    what: str
    codes: frozenset[int]
    frames: Callable[[], bytes]


def _masked(opcode: int, data: bytes, *, fin: bool = True, rsv: bool = False) -> bytes:
    frame = UncheckedFrame(cast(Opcode, opcode), data, fin, rsv2=rsv, rsv3=rsv)
    return frame.serialize(mask=True)


UNKNOWN_OPCODE: Final = 0x3  # reserved for further non-control frames (RFC 6455 section 5.2)
PROTOCOL_ERROR = frozenset({1002})
ABUSES: Final = (
    Abuse("invalid-utf8", "a text frame with invalid UTF-8", frozenset({1007, 1002}),
          lambda: _masked(Opcode.TEXT, b"wsconn \xc3\x28 \xff")),
    Abuse("unmasked", "an unmasked client frame", PROTOCOL_ERROR,
          lambda: UncheckedFrame(Opcode.TEXT, b"wsconn unmasked").serialize(mask=False)),
    Abuse("reserved-bits", "a frame with reserved bits set (no extension agreed)", PROTOCOL_ERROR,
          lambda: _masked(Opcode.TEXT, b"wsconn rsv", rsv=True)),
    Abuse("unknown-opcode", "a frame with the reserved opcode 0x3", PROTOCOL_ERROR,
          lambda: _masked(UNKNOWN_OPCODE, b"wsconn")),
    Abuse("fragmented-ping", "a ping split into fragments", PROTOCOL_ERROR,
          lambda: _masked(Opcode.PING, b"wsconn", fin=False)),
    Abuse("long-ping", "a ping with a 126-byte payload (control frames are <= 125)",
          PROTOCOL_ERROR, lambda: _masked(Opcode.PING, b"p" * 126)),
)  # fmt: skip
ABUSE_IDS: Final = tuple(abuse.id for abuse in ABUSES)


def abuse(abuse_id: str) -> Abuse:
    return next(a for a in ABUSES if a.id == abuse_id)
