"""Close codes and failures in words: the classification seam.

Pure: maps what an attempt observed (outcome, close code, HTTP status) to a category and one
sentence. The full catalogue with advice and retryability builds on this module.
"""

from __future__ import annotations

import dataclasses
import enum

from websockets.frames import CLOSE_CODE_EXPLANATIONS, CloseCode


class Outcome(enum.StrEnum):
    """How a connection attempt ended its opening phase."""

    OPENED = "opened"
    HTTP_REJECTED = "http_rejected"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    RESET = "reset"
    DNS = "dns"
    TLS = "tls"
    PROTOCOL = "protocol"
    ERROR = "error"


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """A category a program can branch on and an explanation a person can act on."""

    category: str
    explanation: str

    def __str__(self) -> str:
        return f"{self.category}: {self.explanation}"


def close_code_name(code: int) -> str:
    """``1008 (policy violation)``, using the names websockets knows."""
    if code in CLOSE_CODE_EXPLANATIONS:
        label = CLOSE_CODE_EXPLANATIONS[code]
    elif 3000 <= code < 4000:
        label = "registered"
    elif 4000 <= code < 5000:
        label = "application-defined"
    else:
        label = "unknown"
    return f"{code} ({label})"


_CLOSE_CODES: dict[int, Diagnosis] = {
    CloseCode.NORMAL_CLOSURE: Diagnosis("normal", "the connection was closed normally"),
    CloseCode.GOING_AWAY: Diagnosis(
        "going_away", "the server is shutting down or restarting; reconnecting should work"
    ),
    CloseCode.PROTOCOL_ERROR: Diagnosis("protocol", "one side broke the WebSocket protocol"),
    CloseCode.UNSUPPORTED_DATA: Diagnosis(
        "protocol", "the server cannot accept this kind of data (text vs binary)"
    ),
    CloseCode.NO_STATUS_RCVD: Diagnosis(
        "normal", "the close frame carried no code (1005 is never sent on the wire)"
    ),
    CloseCode.ABNORMAL_CLOSURE: Diagnosis(
        "network",
        "the connection dropped without a closing handshake "
        "(1006 is never sent on the wire: TCP reset, proxy cut or crash)",
    ),
    CloseCode.INVALID_DATA: Diagnosis("protocol", "a message was not valid (e.g. bad UTF-8)"),
    CloseCode.POLICY_VIOLATION: Diagnosis(
        "policy", "the server refused this client by policy (often a missing or expired token)"
    ),
    CloseCode.MESSAGE_TOO_BIG: Diagnosis(
        "message_too_big", "a message was larger than the receiver accepts"
    ),
    CloseCode.MANDATORY_EXTENSION: Diagnosis(
        "protocol", "the client needed an extension the server did not offer"
    ),
    CloseCode.INTERNAL_ERROR: Diagnosis(
        "server_error", "the server hit an unexpected error while handling the connection"
    ),
    CloseCode.SERVICE_RESTART: Diagnosis("going_away", "the service is restarting"),
    CloseCode.TRY_AGAIN_LATER: Diagnosis(
        "overload", "the server is overloaded or at its connection limit; retry later"
    ),
    CloseCode.BAD_GATEWAY: Diagnosis("server_error", "a gateway got a bad answer upstream"),
    CloseCode.TLS_HANDSHAKE: Diagnosis(
        "tls", "the TLS handshake failed (1015 is never sent on the wire)"
    ),
}

_HTTP_STATUSES: dict[int, Diagnosis] = {
    400: Diagnosis("http_rejected", "HTTP 400: the request was not a valid WebSocket upgrade"),
    401: Diagnosis("auth", "HTTP 401: the token was missing, invalid or expired"),
    403: Diagnosis("auth", "HTTP 403: the server refused this client (Origin or permissions)"),
    404: Diagnosis("http_rejected", "HTTP 404: no WebSocket endpoint at this path"),
    426: Diagnosis("http_rejected", "HTTP 426: the server wants an Upgrade it did not get"),
    429: Diagnosis("overload", "HTTP 429: too many requests; retry later"),
    502: Diagnosis("http_rejected", "HTTP 502: a proxy could not reach the backend"),
    503: Diagnosis("overload", "HTTP 503: the service is unavailable"),
    504: Diagnosis("timeout", "HTTP 504: a proxy timed out waiting for the backend"),
}

_OUTCOMES: dict[Outcome, Diagnosis] = {
    Outcome.OPENED: Diagnosis("ok", "the connection is open"),
    Outcome.REFUSED: Diagnosis(
        "network", "connection refused: nothing is listening there, or a proxy is down"
    ),
    Outcome.RESET: Diagnosis("network", "the TCP connection was reset by the peer or a proxy"),
    Outcome.DNS: Diagnosis("dns", "the host name did not resolve"),
    Outcome.TLS: Diagnosis("tls", "the TLS handshake failed (certificate, hostname or protocol)"),
    Outcome.TIMEOUT: Diagnosis("timeout", "the opening handshake did not finish in time"),
    Outcome.PROTOCOL: Diagnosis(
        "protocol", "the server's answer was not a valid WebSocket handshake"
    ),
    Outcome.ERROR: Diagnosis("unknown", "the connection failed for an unexpected reason"),
}


def classify_outcome(outcome: Outcome, http_status: int | None = None) -> Diagnosis:
    """Classify how an attempt failed to open (or that it opened)."""
    if outcome is Outcome.HTTP_REJECTED and http_status is not None:
        return classify_http_status(http_status)
    return _OUTCOMES.get(outcome, _OUTCOMES[Outcome.ERROR])


def classify_close(code: int, *, sent_by_us: bool = False) -> Diagnosis:
    """Classify a close code; a 1011 we sent ourselves means our keepalive gave up on the peer."""
    if code == CloseCode.INTERNAL_ERROR and sent_by_us:
        return Diagnosis(
            "timeout", "the peer stopped answering pings, so the client closed (keepalive timeout)"
        )
    if code in _CLOSE_CODES:
        return _CLOSE_CODES[code]
    if 4000 <= code < 5000:
        return Diagnosis("app_defined", f"the application closed with its own code {code}")
    if 3000 <= code < 4000:
        return Diagnosis("app_defined", f"a registered library/framework code {code}")
    return Diagnosis("unknown", f"close code {code} has no registered meaning")


def classify_http_status(status: int) -> Diagnosis:
    """Classify an HTTP status that refused the WebSocket upgrade."""
    if status in _HTTP_STATUSES:
        return _HTTP_STATUSES[status]
    kind = "server_error" if status >= 500 else "http_rejected"
    return Diagnosis(kind, f"HTTP {status}: the server refused the upgrade")
