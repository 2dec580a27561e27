"""Every way a WebSocket connection fails, in words a user can act on.

Pure: a total function from what was observed — a close code (and whether we sent it), an HTTP
status that refused the upgrade, an exception — to a ``WebSocketError`` with a category, a
message, likely causes, troubleshooting steps, whether a retry can help and how long to wait.
Close codes come from websockets' ``CloseCode``; applications give 4000-4999 their meanings
through the ``APP_CODES`` context variable (``use_app_codes``: the plugin feeds it the
``wsconn_close_codes`` ini key and the ``pytest_wsconn_close_code`` hook for its session).
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import errno
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Literal

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CLOSE_CODE_EXPLANATIONS, CloseCode

from pytest_wsconn.exceptions import ConfigError

Category = Literal[
    "normal",
    "going_away",
    "network",
    "dns",
    "tls",
    "http_rejected",
    "auth",
    "policy",
    "protocol",
    "message_too_big",
    "server_error",
    "overload",
    "timeout",
    "app_defined",
    "unknown",
]


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
class WebSocketError:
    """A classified failure: what a program branches on and what a person reads."""

    category: Category
    code: int | None  # the close code or HTTP status, when there is one
    message: str
    causes: tuple[str, ...]
    steps: tuple[str, ...]
    retryable: bool
    min_retry_delay: float = 0.0  # seconds a client should wait at least before retrying

    def __str__(self) -> str:
        return f"{self.category}: {self.message}"

    def advice(self) -> str:
        """Causes and steps as indented lines, for reports."""
        lines = [f"  likely cause: {cause}" for cause in self.causes]
        lines += [f"  try: {step}" for step in self.steps]
        retry = "retrying can help" if self.retryable else "retrying will not help"
        if self.retryable and self.min_retry_delay:
            retry += f" (wait at least {self.min_retry_delay:g} s)"
        return "\n".join([*lines, f"  {retry}"])


def _e(
    category: Category,
    code: int | None,
    message: str,
    causes: tuple[str, ...],
    steps: tuple[str, ...],
    *,
    retry: bool,
    wait: float = 0.0,
) -> WebSocketError:
    return WebSocketError(category, code, message, causes, steps, retry, wait)


NEVER_ON_WIRE = frozenset({1004, 1005, 1006, 1015})
"""Codes an endpoint reports locally but must never send in a close frame (RFC 6455 7.4.1)."""


def _by_code(errors: list[WebSocketError]) -> dict[int, WebSocketError]:
    return {error.code: error for error in errors if error.code is not None}


_CLOSE_CODES = _by_code(
    [
        _e(
            "normal",
            1000,
            "The connection was closed normally.",
            ("one side finished its work and said goodbye",),
            (
                "nothing is broken; if the close was unexpected, read its reason and find which "
                "side closed",
            ),
            retry=True,
        ),
        _e(
            "going_away",
            1001,
            "The server is going away: it is shutting down or restarting "
            "(or a browser tab left the page).",
            ("a deploy or restart of the server", "a load balancer draining connections"),
            ("reconnect after a short delay", "make deploys drain connections gracefully"),
            retry=True,
            wait=0.5,
        ),
        _e(
            "protocol",
            1002,
            "One side broke the WebSocket protocol.",
            ("a buggy client or server library", "a proxy that rewrites WebSocket frames"),
            (
                "capture the traffic (the client's debug log) and find which side sent the bad "
                "frame",
                "upgrade the WebSocket libraries on both sides",
            ),
            retry=True,
            wait=1.0,
        ),
        _e(
            "protocol",
            1003,
            "The server cannot accept this kind of data (text or binary).",
            ("sending binary frames to a text-only endpoint, or the reverse",),
            ("send the message type the endpoint expects",),
            retry=False,
        ),
        _e(
            "unknown",
            1004,
            "Close code 1004 is reserved and never sent on the wire; a peer "
            "that sends it is broken.",
            ("a buggy peer",),
            ("report it to the maintainers of the peer's WebSocket library",),
            retry=True,
        ),
        _e(
            "normal",
            1005,
            "The close frame carried no status code (1005 is never sent on "
            "the wire; it stands for 'no code given').",
            ("the peer closed without giving a code",),
            ("nothing is broken; ask the server to send a code that says why it closes",),
            retry=True,
        ),
        _e(
            "network",
            1006,
            "The connection dropped without a closing handshake (1006 is "
            "never sent on the wire: it means no close frame arrived).",
            (
                "the network or a proxy cut the TCP connection",
                "the server process crashed or was killed",
                "a proxy or load balancer timed out an idle connection",
            ),
            (
                "check the proxy's idle/read timeouts against the ping interval",
                "look at the server's logs at that moment",
                "reconnect with backoff",
            ),
            retry=True,
        ),
        _e(
            "protocol",
            1007,
            "A message was not valid for its type (e.g. text that is not UTF-8).",
            ("sending bytes as a text message",),
            ("encode text as UTF-8, or send binary messages",),
            retry=False,
        ),
        _e(
            "policy",
            1008,
            "The server refused this client by policy.",
            (
                "a missing, invalid or expired token",
                "an Origin the server does not allow",
                "a rate or permission rule of the application",
            ),
            (
                "read the close reason",
                "refresh the token before reconnecting",
                "check the server's allowed origins",
            ),
            retry=False,
        ),
        _e(
            "message_too_big",
            1009,
            "A message was larger than the receiver accepts.",
            ("a message over the server's (or a proxy's) size limit",),
            ("send smaller messages or split them", "raise the receiver's max message size"),
            retry=False,
        ),
        _e(
            "protocol",
            1010,
            "The client needed an extension the server did not agree to.",
            ("a client that requires e.g. permessage-deflate from a server that lacks it",),
            ("make the extension optional on the client",),
            retry=False,
        ),
        _e(
            "server_error",
            1011,
            "The server hit an unexpected error while handling the connection.",
            ("an unhandled exception in the server's handler",),
            (
                "look for the exception in the server's logs at that moment",
                "reconnect with backoff",
            ),
            retry=True,
            wait=1.0,
        ),
        _e(
            "going_away",
            1012,
            "The service is restarting.",
            ("a deploy or restart",),
            ("reconnect after a short delay",),
            retry=True,
            wait=1.0,
        ),
        _e(
            "overload",
            1013,
            "The server is overloaded or at its connection limit; try again later.",
            ("too many connections", "the server shedding load"),
            ("retry after a delay with jitter, not at once", "raise the server's capacity"),
            retry=True,
            wait=1.0,
        ),
        _e(
            "server_error",
            1014,
            "A gateway or proxy got an invalid answer from the server behind it.",
            ("the backend behind the proxy failed",),
            ("check the backend's health and the proxy's upstream settings",),
            retry=True,
            wait=1.0,
        ),
        _e(
            "tls",
            1015,
            "The TLS handshake failed (1015 is never sent on the wire).",
            ("an expired or untrusted certificate", "a host name the certificate does not cover"),
            ("check the certificate chain, its expiry and its host names",),
            retry=False,
        ),
        _e(
            "auth",
            3000,
            "Unauthorized (registered code 3000): the client must authenticate.",
            ("a missing or invalid token",),
            ("send a valid token",),
            retry=False,
        ),
        _e(
            "auth",
            3003,
            "Forbidden (registered code 3003): the client lacks permission.",
            ("a token without the needed permission",),
            ("use credentials with access to this resource",),
            retry=False,
        ),
        _e(
            "timeout",
            3008,
            "Timeout (registered code 3008): the server gave up waiting.",
            ("an idle or slow client",),
            ("send keepalives; reconnect",),
            retry=True,
            wait=1.0,
        ),
    ]
)

_HTTP_STATUSES = _by_code(
    [
        _e(
            "http_rejected",
            400,
            "HTTP 400: the request was not a valid WebSocket upgrade.",
            ("a proxy dropped the Upgrade/Connection headers", "a wrong Sec-WebSocket-Version"),
            (
                "check the proxy passes 'Upgrade' and 'Connection: upgrade' (nginx: "
                "proxy_set_header Upgrade $http_upgrade)",
            ),
            retry=False,
        ),
        _e(
            "auth",
            401,
            "HTTP 401: the token was missing, invalid or expired.",
            ("no token sent, or sent where the server does not look", "an expired token"),
            (
                "check where the server reads the token (query, header, subprotocol, cookie)",
                "get a fresh token",
            ),
            retry=False,
        ),
        _e(
            "auth",
            403,
            "HTTP 403: the server refused this client.",
            (
                "a token without permission",
                "an Origin the server does not allow",
                "a path with no WebSocket route (Starlette and FastAPI answer 403 there)",
            ),
            (
                "run `wsconn diagnose URL`: it retries without Origin and on a made-up path "
                "to tell these apart",
                "check the token's permissions and the server's allowed origins",
            ),
            retry=False,
        ),
        _e(
            "http_rejected",
            404,
            "HTTP 404: there is no WebSocket endpoint at this path.",
            ("a wrong path in the URL", "a proxy that does not route this path"),
            ("check the URL's path against the server's routes and the proxy's locations",),
            retry=False,
        ),
        _e(
            "http_rejected",
            426,
            "HTTP 426: the server requires an upgrade it did not get.",
            (
                "a plain HTTP request reached the WebSocket endpoint",
                "a proxy that strips the Upgrade header",
            ),
            ("connect with a WebSocket client", "pass the Upgrade header through the proxy"),
            retry=False,
        ),
        _e(
            "overload",
            429,
            "HTTP 429: too many requests; the server asks to slow down.",
            ("a reconnect storm", "a rate limit"),
            ("honour Retry-After", "add jitter to reconnect delays"),
            retry=True,
            wait=1.0,
        ),
        _e(
            "server_error",
            500,
            "HTTP 500: the server failed while handling the upgrade.",
            ("an exception in the server's handshake code",),
            ("look at the server's logs",),
            retry=True,
            wait=1.0,
        ),
        _e(
            "server_error",
            502,
            "HTTP 502: a proxy could not reach the backend.",
            ("the backend is down", "the proxy points at the wrong host or port"),
            ("check the backend runs and the proxy's upstream address",),
            retry=True,
            wait=1.0,
        ),
        _e(
            "overload",
            503,
            "HTTP 503: the service is unavailable for now.",
            ("the service is starting, overloaded or in maintenance",),
            ("retry later, honouring Retry-After",),
            retry=True,
            wait=1.0,
        ),
        _e(
            "timeout",
            504,
            "HTTP 504: a proxy timed out waiting for the backend.",
            ("a slow or hung backend", "a proxy timeout shorter than the backend's start"),
            ("check the backend's health and the proxy's timeouts",),
            retry=True,
            wait=1.0,
        ),
    ]
)

_OUTCOMES: dict[Outcome, WebSocketError] = {
    Outcome.OPENED: _e(
        "normal", None, "The connection is open.", (), ("nothing to do",), retry=True
    ),
    Outcome.HTTP_REJECTED: _e(
        "http_rejected",
        None,
        "The server answered the upgrade with an HTTP error.",
        ("the server or a proxy in front of it refused the connection",),
        ("read the HTTP status and body in the report",),
        retry=False,
    ),
    Outcome.REFUSED: _e(
        "network",
        None,
        "Connection refused: nothing accepts connections at that address.",
        ("the server is not running", "a wrong port", "a proxy in the path is down"),
        ("check the server runs and listens on that host and port", "check the URL's port"),
        retry=True,
    ),
    Outcome.RESET: _e(
        "network",
        None,
        "The connection was cut while opening (reset or closed by the peer).",
        (
            "a proxy or firewall cut it",
            "the server crashed",
            "a wss:// URL pointing at a plain ws:// server, or the reverse",
        ),
        (
            "check the scheme (ws or wss) matches the server",
            "look at the server's and proxy's logs",
        ),
        retry=True,
    ),
    Outcome.DNS: _e(
        "dns",
        None,
        "The host name did not resolve.",
        ("a typo in the host name", "a service name that only resolves inside Docker's network"),
        (
            "check the host name",
            "from a container, use the service name; from "
            "the host, use localhost and the published port",
        ),
        retry=True,
        wait=1.0,
    ),
    Outcome.TLS: _e(
        "tls",
        None,
        "The TLS handshake failed.",
        (
            "an expired, self-signed or untrusted certificate",
            "a host name the certificate does not cover",
            "wss:// to a server that speaks plain ws",
        ),
        (
            "check the certificate chain, its expiry and its host names",
            "use ws:// for a server without TLS",
        ),
        retry=False,
    ),
    Outcome.TIMEOUT: _e(
        "timeout",
        None,
        "The opening handshake did not finish in time.",
        (
            "a slow or hung server",
            "a firewall that silently drops packets",
            "a proxy that never forwards the upgrade",
        ),
        ("check the server answers (its /health)", "raise the open timeout if the network is slow"),
        retry=True,
    ),
    Outcome.PROTOCOL: _e(
        "protocol",
        None,
        "The server's answer was not a valid WebSocket handshake.",
        ("the URL points at a plain HTTP server", "a proxy answered instead of the backend"),
        ("check the URL and that the proxy forwards WebSocket upgrades",),
        retry=False,
    ),
    Outcome.ERROR: _e(
        "unknown",
        None,
        "The connection failed for an unexpected reason.",
        ("see the exception in the report",),
        ("read the exception and the connection timeline",),
        retry=True,
        wait=1.0,
    ),
}


@dataclasses.dataclass(frozen=True)
class AppCode:
    """What an application means by one of its own close codes (4000-4999)."""

    message: str
    retryable: bool = True
    min_retry_delay: float = 0.0


AppCodeLookup = Callable[[int], AppCode | None]


def _no_app_codes(code: int) -> AppCode | None:
    return None


APP_CODES: contextvars.ContextVar[AppCodeLookup] = contextvars.ContextVar(
    "pytest_wsconn_app_codes", default=_no_app_codes
)
"""The application close codes classification sees; a session sets its own (nested ones too)."""


def use_app_codes(
    lookup: AppCodeLookup | Mapping[int, AppCode],
) -> contextvars.Token[AppCodeLookup]:
    """Give application close codes their meanings here; ``APP_CODES.reset(token)`` undoes it."""
    return APP_CODES.set(lookup.get if isinstance(lookup, Mapping) else lookup)


def parse_app_codes(lines: list[str]) -> dict[int, AppCode]:
    """Parse ``4001: no-retry: the session was revoked`` lines (``retry`` or ``no-retry``)."""
    codes: dict[int, AppCode] = {}
    for line in filter(None, (raw.strip() for raw in lines)):
        code_text, _, rest = line.partition(":")
        retry, _, message = rest.strip().partition(":")
        if not code_text.strip().isdigit() or retry.strip() not in ("retry", "no-retry"):
            raise ConfigError(
                f"invalid close code line {line!r}; valid: '<4000-4999>: retry|no-retry: meaning'"
            )
        code = int(code_text)
        if not 4000 <= code <= 4999:
            raise ConfigError(f"close code {code} is not an application code (4000-4999)")
        codes[code] = AppCode(message.strip() or f"application code {code}", retry == "retry")
    return codes


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


def classify_close(code: int, *, sent_by_us: bool = False) -> WebSocketError:
    """Classify a close code; a 1011 we sent ourselves means our keepalive gave up on the peer."""
    if code == CloseCode.INTERNAL_ERROR and sent_by_us:
        return _e(
            "timeout",
            code,
            "The peer stopped answering pings, so this client closed "
            "the connection (keepalive timeout, 1011 sent by us).",
            (
                "the server is hung or overloaded",
                "the network path silently dropped packets",
                "a ping timeout shorter than the network's latency",
            ),
            ("check the server is alive", "raise the ping timeout above the worst round trip"),
            retry=True,
        )
    if code in _CLOSE_CODES:
        return _CLOSE_CODES[code]
    if 4000 <= code < 5000:
        app = APP_CODES.get()(code)
        if app is not None:
            return _e(
                "app_defined",
                code,
                f"{app.message} (application code {code}).",
                ("the application's own reason",),
                ("see the application's documentation for this code",),
                retry=app.retryable,
                wait=app.min_retry_delay,
            )
        return _e(
            "app_defined",
            code,
            f"The application closed with its own code {code}.",
            ("a reason private to the application",),
            ("read the close reason", "give the code a meaning in the wsconn_close_codes ini key"),
            retry=True,
        )
    if 3000 <= code < 4000:
        return _e(
            "app_defined",
            code,
            f"A library or framework closed with registered code {code}.",
            ("a reason defined by that library",),
            ("look the code up in IANA's WebSocket close code registry",),
            retry=True,
        )
    return _e(
        "unknown",
        code,
        f"Close code {code} has no meaning: valid codes are 1000-1015 and 3000-4999.",
        ("a broken peer",),
        ("report it to the maintainers of the peer",),
        retry=False,
    )


def classify_http_status(status: int, retry_after: float | None = None) -> WebSocketError:
    """Classify an HTTP status that refused the upgrade; ``Retry-After`` raises the wait."""
    known = _HTTP_STATUSES.get(status)
    if known is None:
        category: Category = "server_error" if status >= 500 else "http_rejected"
        known = _e(
            category,
            status,
            f"HTTP {status}: the server refused the upgrade.",
            ("the server or a proxy in front of it answered instead of upgrading",),
            ("check the URL and the proxy's WebSocket settings",),
            retry=status >= 500,
            wait=1.0 if status >= 500 else 0.0,
        )
    if retry_after is not None and known.retryable:
        return dataclasses.replace(known, min_retry_delay=max(known.min_retry_delay, retry_after))
    return known


def classify_outcome(
    outcome: Outcome, http_status: int | None = None, retry_after: float | None = None
) -> WebSocketError:
    """Classify how an attempt failed to open (or that it opened)."""
    if outcome is Outcome.HTTP_REJECTED and http_status is not None:
        return classify_http_status(http_status, retry_after)
    return _OUTCOMES[outcome]


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _text(exc: BaseException) -> str:
    """``str(exc)``, which a half-built exception can make raise; never raises itself."""
    try:
        return str(exc)
    except Exception:  # classification must go on, whatever the exception does
        return type(exc).__name__


def _refused(text: str) -> bool:
    """A refusal in an error's text; asyncio joins the errors of every address it tried
    ("Multiple exceptions: [Errno 111] Connect call failed …, [Errno 99] …")."""
    return "refused" in text.lower() or f"[Errno {errno.ECONNREFUSED}]" in text


def _direct_outcome(exc: BaseException) -> tuple[Outcome, int | None]:
    """What ``exc`` itself says, ignoring its causes (``ERROR`` when it says nothing)."""
    names = _names(exc)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, InvalidStatus) and isinstance(status, int):
        return Outcome.HTTP_REJECTED, status
    if isinstance(exc, TimeoutError):
        return Outcome.TIMEOUT, None
    if names & {"gaierror", "herror"}:
        return Outcome.DNS, None
    if names & {"SSLError", "CertificateError"}:
        return Outcome.TLS, None
    if isinstance(exc, ConnectionRefusedError) or _refused(_text(exc)):
        return Outcome.REFUSED, None
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError | EOFError):
        return Outcome.RESET, None
    return Outcome.ERROR, None


def outcome_of(exc: BaseException) -> tuple[Outcome, int | None]:
    """Map a connect exception, or the first of its causes that says more, to an outcome.

    Exceptions from ``socket`` and ``ssl`` are recognised by name: the pure core imports neither.
    The cause chain is walked once, so even a cyclic chain ends.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        outcome, status = _direct_outcome(link)
        if outcome is not Outcome.ERROR:
            return outcome, status
        link = link.__cause__ or link.__context__
    if isinstance(exc, InvalidHandshake):
        return Outcome.PROTOCOL, None
    return Outcome.ERROR, None


def classify_exception(exc: BaseException) -> WebSocketError:
    """Classify any exception a WebSocket client can raise; never raises itself."""
    if isinstance(exc, ConnectionClosed):
        rcvd, sent = exc.rcvd, exc.sent
        if rcvd is None and sent is not None and sent.code == CloseCode.INTERNAL_ERROR:
            return classify_close(sent.code, sent_by_us=True)
        return classify_close(rcvd.code if rcvd is not None else CloseCode.ABNORMAL_CLOSURE)
    return classify_outcome(*outcome_of(exc))


def classify_failure(
    *,
    close_code: int | None = None,
    sent_by_us: bool = False,
    http_status: int | None = None,
    exception: BaseException | None = None,
    retry_after: float | None = None,
) -> WebSocketError:
    """The total function: whatever was observed, a classified error (close code first)."""
    if close_code is not None:
        return classify_close(close_code, sent_by_us=sent_by_us)
    if http_status is not None:
        return classify_http_status(http_status, retry_after)
    if exception is not None:
        return classify_exception(exception)
    return _OUTCOMES[Outcome.ERROR]


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - now)


def catalogue_markdown() -> str:
    """The README's "what does this close code mean" table, generated from the catalogue."""
    rows = ["| code | category | what it means | retry? |", "|---|---|---|---|"]
    for code in sorted(_CLOSE_CODES):
        error = _CLOSE_CODES[code]
        wire = (
            " Never sent on the wire."
            if code in NEVER_ON_WIRE and "wire" not in error.message
            else ""
        )
        retry = "yes" if error.retryable else "no"
        if error.retryable and error.min_retry_delay:
            retry += f", after ≥ {error.min_retry_delay:g} s"
        rows.append(
            f"| {close_code_name(code)} | {error.category} | {error.message}{wire} | {retry} |"
        )
    rows.append(
        "| 1011 sent by us | timeout | Our keepalive got no pong in time: the peer is "
        "silent or hung. | yes |"
    )
    rows.append(
        "| 3000-3999 (others) | app_defined | Registered by a library or framework. | yes |"
    )
    rows.append(
        "| 4000-4999 | app_defined | The application's own codes: give them meanings "
        "with `wsconn_close_codes`. | yes, unless configured |"
    )
    for status in sorted(_HTTP_STATUSES):
        error = _HTTP_STATUSES[status]
        retry = "yes" if error.retryable else "no"
        rows.append(f"| HTTP {status} | {error.category} | {error.message} | {retry} |")
    return "\n".join(rows) + "\n"


def catalogue_json() -> dict[str, dict[str, dict[str, object]]]:
    """The catalogue as JSON-ready data, for the reference frontend's troubleshooting panel:
    ``{"close": {"1008": {...}}, "http": {"401": {...}}}``, each with category, message, causes,
    steps, retryable and min_retry_delay. One source of truth for Python and the browser."""

    def entry(error: WebSocketError) -> dict[str, object]:
        fields = dataclasses.asdict(error)
        del fields["code"]
        return fields

    return {
        "close": {str(code): entry(error) for code, error in sorted(_CLOSE_CODES.items())},
        "http": {str(code): entry(error) for code, error in sorted(_HTTP_STATUSES.items())},
    }
