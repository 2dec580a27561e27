"""What each observation of ``wsconn diagnose`` means: the pure core of the diagnostics.

URL rules, TLS failures and certificates, HTTP answers to a raw GET, the WebSocket handshake's
response, and the verdicts on the probe connections (auth, Origin, the variations of an upgrade
refused with HTTP 403) — each a function from what was seen to a ``CheckResult``, tested without
a network.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from websockets.utils import accept_key

from pytest_wsconn.closecodes import (
    Outcome,
    WebSocketError,
    classify_http_status,
    classify_outcome,
)
from pytest_wsconn.config import AuthMode, origin_of, target_address
from pytest_wsconn.redact import Secret, redact_text, reveal
from pytest_wsconn.results import CheckResult

EXPIRY_WARNING_DAYS = 14
NOTABLE_HEADERS = ("Server", "Via", "X-Powered-By", "Sec-WebSocket-Extensions")
"""Response headers that tell which server or proxy answered the upgrade."""


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
NO_AUTH = WebSocketError(
    category="auth",
    code=None,
    message="The service accepts WebSocket connections without a token.",
    causes=("authentication is off or optional", "the token is checked only after the upgrade"),
    steps=("check the token at the upgrade and refuse with HTTP 401 (or close 1008)",),
    retryable=False,
)
CSWSH = WebSocketError(
    category="policy",
    code=None,
    message="The service accepts any Origin while authenticating with a cookie: any web page "
    "can open a connection as the user (Cross-Site WebSocket Hijacking).",
    causes=("no Origin allow-list at the upgrade", "an allow-list of '*'"),
    steps=("check Origin against an allow-list at the upgrade and refuse others with HTTP 403",),
    retryable=False,
)
NO_PONG = WebSocketError(
    category="timeout",
    code=None,
    message="The server did not answer a ping in time.",
    causes=("a hung or overloaded server", "a proxy that does not forward control frames"),
    steps=("check the server is alive", "raise the ping timeout above the worst round trip"),
    retryable=True,
)


def _tls_error(message: str, causes: tuple[str, ...], steps: tuple[str, ...]) -> WebSocketError:
    return WebSocketError("tls", None, message, causes, steps, retryable=False)


_TLS_KINDS: dict[str, tuple[str, WebSocketError]] = {
    "expired": (
        "certificate has expired",
        _tls_error(
            "The server's TLS certificate has expired.",
            ("the certificate was not renewed (e.g. a failed ACME renewal)",),
            ("renew the certificate and reload the server or proxy that serves it",),
        ),
    ),
    "not_yet_valid": (
        "certificate is not yet valid",
        _tls_error(
            "The server's TLS certificate is not valid yet.",
            ("a clock that is behind, on the client or the server",),
            ("check both clocks (NTP)",),
        ),
    ),
    "hostname": (
        "hostname mismatch",
        _tls_error(
            "The server's TLS certificate does not cover the host name in the URL.",
            (
                "a URL with a name or IP address the certificate does not list",
                "a proxy serving another site's certificate (SNI)",
            ),
            (
                "connect with a host name the certificate lists",
                "add the name to the certificate's subjectAltName",
            ),
        ),
    ),
    "unknown_ca": (
        "unknown certificate authority",
        _tls_error(
            "The server's TLS certificate does not chain to a CA this client trusts.",
            (
                "a self-signed or private-CA certificate",
                "a server that does not send its intermediate certificates",
            ),
            (
                "trust the CA (wsconn diagnose --cafile, or the client's trust store)",
                "serve the full chain: the certificate and its intermediates",
            ),
        ),
    ),
    "revoked": (
        "certificate has been revoked",
        _tls_error(
            "The server's TLS certificate has been revoked.",
            ("the key was compromised or the certificate replaced",),
            ("install the current certificate",),
        ),
    ),
    "not_tls": (
        "the server does not speak TLS on this port",
        _tls_error(
            "A wss:// URL points at a port that does not speak TLS.",
            ("a plain ws:// server", "a proxy port that does not terminate TLS"),
            ("use ws:// for this server, or the port where TLS is served",),
        ),
    ),
    "version": (
        "no TLS version in common",
        _tls_error(
            "Client and server share no TLS protocol version.",
            ("a server that offers only TLS 1.0/1.1, which clients refuse",),
            ("enable TLS 1.2 or 1.3 on the server",),
        ),
    ),
}
# OpenSSL's X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code reports them.
_VERIFY_CODES = {
    2: "unknown_ca",  # unable to get issuer certificate
    9: "not_yet_valid",
    10: "expired",
    18: "unknown_ca",  # self-signed certificate
    19: "unknown_ca",  # self-signed certificate in chain
    20: "unknown_ca",  # unable to get local issuer certificate
    21: "unknown_ca",  # unable to verify the first certificate
    23: "revoked",
    62: "hostname",
    64: "hostname",  # IP address mismatch
}
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG"}
)
_DEPRECATED_TLS = frozenset({"SSLv3", "TLSv1", "TLSv1.1"})


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


def classify_tls_failure(
    verify_code: int | None, reason: str | None, message: str
) -> tuple[str, WebSocketError]:
    """The detail and classified error of a failed TLS handshake, from what ``ssl`` reported.

    ``verify_code`` is ``SSLCertVerificationError.verify_code`` and ``reason`` OpenSSL's reason
    (``WRONG_VERSION_NUMBER``): expired, wrong host and unknown CA have different fixes.
    """
    kind = _VERIFY_CODES.get(verify_code) if verify_code is not None else None
    if kind is None and reason in _NOT_TLS_REASONS:
        kind = "not_tls"
    if kind is None and reason and ("PROTOCOL_VERSION" in reason or "UNSUPPORTED" in reason):
        kind = "version"
    if kind is None:
        return f"TLS handshake failed: {message}", classify_outcome(Outcome.TLS)
    summary, error = _TLS_KINDS[kind]
    same = message.rstrip(".").lower() == summary
    return (summary if same else f"{summary}: {message}"), error


def _name(rdns: Sequence[Sequence[tuple[str, str]]]) -> dict[str, str]:
    return {key: value for rdn in rdns for key, value in rdn}


def check_certificate(
    cert: Mapping[str, Any], version: str | None, now: float, *, verified: bool = True
) -> CheckResult:
    """A verified certificate: names, issuer, days to expiry (warn under 14) and TLS version.

    ``cert`` is ``SSLSocket.getpeercert()``; ``now`` seconds since the epoch.
    """
    if not verified or not cert:
        detail = f"{version}: the certificate was not verified (the ssl context skips checks)"
        return CheckResult("tls", "warn", detail, fields={"version": version})
    issuer = _name(cert.get("issuer", ()))
    issued_by = issuer.get("commonName") or issuer.get("organizationName") or "unknown issuer"
    names = [name for kind, name in cert.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]
    names = names or [_name(cert.get("subject", ())).get("commonName", "no name")]
    not_after = float(calendar.timegm(time.strptime(cert["notAfter"], "%b %d %H:%M:%S %Y GMT")))
    days = math.floor((not_after - now) / 86400)
    expires = datetime.datetime.fromtimestamp(not_after, datetime.UTC).date().isoformat()
    fields = {
        "version": version,
        "names": names,
        "issuer": issued_by,
        "not_after": expires,
        "days_left": days,
    }
    detail = (
        f"{version}, chain verified, hostname matches {', '.join(names)}, "
        f"issued by {issued_by!r}, expires in {days} days ({expires})"
    )
    warnings = []
    if days < EXPIRY_WARNING_DAYS:
        warnings.append(f"the certificate expires in {days} days: renew it")
    if version in _DEPRECATED_TLS:
        warnings.append(f"{version} is deprecated (RFC 8996): serve TLS 1.2 or later")
    if warnings:
        return CheckResult("tls", "warn", f"{'; '.join(warnings)} — {detail}", fields=fields)
    return CheckResult("tls", "pass", detail, fields=fields)


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


Verdict = Literal["refused", "accepted", "inconclusive"]


@dataclasses.dataclass(frozen=True)
class Probe:
    """How a deliberately wrong connection (no token, a foreign Origin) fared."""

    verdict: Verdict
    how: str  # "HTTP 401", "closed with 1008 (policy violation) 'token missing'", ...
    error: WebSocketError | None = None  # how the refusal or failure is classified
    body: str = ""  # a refusal's first body line: two refusals with one status can differ

    @property
    def answer(self) -> str:
        """How it fared, in words, and comparable: equal answers mean the same treatment."""
        said = self.how + (f" {self.body!r}" if self.body else "")
        if self.verdict == "accepted":
            return f"accepted ({said})"
        return said if self.verdict == "refused" else f"failed otherwise ({said})"


def auth_verdict(probe: Probe, *, token_sent: bool) -> CheckResult:
    """Judge the connection made without a token, knowing whether the handshake sent one."""
    if not token_sent:
        return _anonymous_verdict(probe)
    if probe.verdict == "refused":
        return CheckResult("auth", "pass", f"token accepted; no token refused ({probe.how})")
    if probe.verdict == "accepted":
        detail = f"token accepted, but so was a connection without one ({probe.how})"
        return CheckResult("auth", "fail", detail, error=NO_AUTH)
    detail = f"token accepted; the connection without one failed otherwise ({probe.how})"
    return CheckResult("auth", "warn", detail, error=probe.error)


def _anonymous_verdict(probe: Probe) -> CheckResult:
    """No token given: an open service warns; one that refuses after the upgrade fails."""
    if probe.verdict == "accepted":
        detail = (
            f"no token given, and the service accepted a connection ({probe.how}): anyone who "
            "can reach it can connect"
        )
        return CheckResult("auth", "warn", detail, error=NO_AUTH)
    if probe.verdict == "refused":
        detail = f"no token given, and the service refused the connection ({probe.how})"
        return CheckResult("auth", "fail", detail, error=probe.error)
    detail = f"no token given; a connection failed otherwise ({probe.how})"
    return CheckResult("auth", "warn", detail, error=probe.error)


def origin_verdict(auth: AuthMode, probe: Probe) -> CheckResult:
    """Judge the connection from a foreign Origin: only cookie auth makes accepting it unsafe."""
    if probe.verdict == "refused":
        return CheckResult("origin", "pass", f"a foreign Origin was refused ({probe.how})")
    if probe.verdict == "accepted" and auth.kind == "cookie":
        detail = (
            f"a foreign Origin was accepted ({probe.how}) with cookie auth: "
            "open to Cross-Site WebSocket Hijacking"
        )
        return CheckResult("origin", "warn", detail, error=CSWSH)
    if probe.verdict == "accepted":
        detail = (
            f"a foreign Origin was accepted ({probe.how}); safe while the token is not a "
            "cookie, Cross-Site WebSocket Hijacking if it ever is"
        )
        return CheckResult("origin", "pass", detail)
    detail = f"could not tell: the connection from a foreign Origin failed otherwise ({probe.how})"
    return CheckResult("origin", "warn", detail, error=probe.error)


RefusalCause = Literal["path", "origin", "auth", "unknown"]
"""Why a service answered the upgrade with HTTP 403, as far as the probes tell."""

_REFUSAL_LABELS: dict[RefusalCause, str] = {
    "path": "looks like no such path",
    "origin": "the Origin is refused",
    "auth": "the token is refused",
    "unknown": "refused for a reason the probes could not tell",
}


@dataclasses.dataclass(frozen=True)
class Variation:
    """The refused upgrade sent again with one thing changed, and how it fared."""

    change: str  # "on the made-up path /wsconn-no-such-path-1a2b", "without Origin", ...
    probe: Probe


@dataclasses.dataclass(frozen=True)
class RefusalProbes:
    """An upgrade refused with HTTP 403 and the variations that tell why.

    A 403 alone says little: Starlette and FastAPI answer it for a path they do not serve and
    for every endpoint that closes before accepting, whatever the reason. Only how the answer
    changes with the Origin, the token and the path tells them apart.
    """

    path: str  # the URL's path
    refusal: Probe  # the upgrade's own answer
    made_up_path: Variation  # the same request on a path no service has
    origin: Variation  # without the Origin sent or, when none was, with the URL's own site
    origin_sent: str | None
    token: Variation | None  # without the token; None when none was sent


def site_origin(url: str) -> str:
    """The Origin of a page on the WebSocket URL's own host: ws -> http, wss -> https."""
    return origin_of("http" + url[2:] if url[:2].lower() == "ws" else url)


def _changes(variation: Variation | None, refusal: Probe) -> bool:
    """Whether the variation got another answer; a probe that failed otherwise tells nothing."""
    if variation is None or variation.probe.verdict == "inconclusive":
        return False
    return variation.probe.answer != refusal.answer


def _tried(probes: RefusalProbes) -> list[Variation]:
    return [probes.made_up_path, probes.origin, *([probes.token] if probes.token else [])]


def _refusal_cause(probes: RefusalProbes) -> RefusalCause:
    if _changes(probes.origin, probes.refusal):
        return "origin"
    if _changes(probes.token, probes.refusal):
        return "auth"
    made_up = probes.made_up_path.probe
    if made_up.verdict != "inconclusive" and made_up.answer == probes.refusal.answer:
        return "path"
    return "unknown"


def _got(probe: Probe) -> str:
    return "was accepted" if probe.verdict == "accepted" else f"got {probe.answer} instead"


def _refusal_error(cause: RefusalCause, probes: RefusalProbes) -> WebSocketError:
    """The classified error of one cause, its message naming the probe that showed it."""
    forbidden = probes.refusal.answer
    if cause == "path":
        if probes.token is None:
            conclusion = "no WebSocket endpoint there, or one that wants a token (none was sent)"
            alternative = "an endpoint that wants a token before accepting: none was sent"
        else:
            conclusion = "most likely the service has no WebSocket endpoint there"
            alternative = (
                "an endpoint that checks the token before accepting and answers a refused "
                "token the way it answers an unknown path"
            )
        return WebSocketError(
            category="http_rejected",
            code=403,
            message=f"{forbidden} at {probes.path} is what a made-up path gets too: {conclusion}.",
            causes=(
                "a wrong path in the URL (Starlette and FastAPI answer an unknown WebSocket "
                "path with HTTP 403)",
                alternative,
            ),
            steps=(
                "check the URL's path against the service's WebSocket routes (a trailing slash "
                "counts)",
                "check that every proxy on the way routes this path to the WebSocket service",
            ),
            retryable=False,
        )
    if cause == "origin" and probes.origin_sent is not None:
        return WebSocketError(
            category="auth",
            code=403,
            message=f"{forbidden} for the Origin {probes.origin_sent}: without it the same "
            f"request {_got(probes.origin.probe)}, so the service does not allow this Origin.",
            causes=(
                "the Origin is missing from the service's allowed origins",
                "the service compares Origin with a Host header the proxy rewrote",
            ),
            steps=(
                f"add {probes.origin_sent} to the service's allowed origins",
                "have the proxy pass the Host header (nginx: proxy_set_header Host $host;)",
            ),
            retryable=False,
        )
    if cause == "origin":
        return WebSocketError(
            category="auth",
            code=403,
            message=f"{forbidden} without an Origin header: {probes.origin.change} the same "
            f"request {_got(probes.origin.probe)}, so the service wants an Origin.",
            causes=("the service refuses requests without Origin (browsers always send one)",),
            steps=("send the page's Origin (wsconn diagnose --origin, --wsconn-origin in tests)",),
            retryable=False,
        )
    if cause == "auth":
        assert probes.token is not None, "only a token that was sent can change the answer"
        return WebSocketError(
            category="auth",
            code=403,
            message=f"{forbidden} for this token: without it the same request "
            f"{_got(probes.token.probe)}, so the service reads the token and refuses it.",
            causes=("a token without permission for this endpoint", "an invalid or expired token"),
            steps=("check the token's permissions (scope, role) for this endpoint",),
            retryable=False,
        )
    return WebSocketError(
        category="auth",
        code=403,
        message=f"{forbidden} for a reason the probes could not tell: "
        + "; ".join(f"{variation.change}: {variation.probe.answer}" for variation in _tried(probes))
        + ".",
        causes=(
            "a rule of the application: permissions, client address, rate",
            "a rule of a proxy in front of the service (deny, address allow-list)",
        ),
        steps=("read the service's and the proxy's logs for this request",),
        retryable=False,
    )


def explain_refusal(said: str, fields: Mapping[str, Any], probes: RefusalProbes) -> CheckResult:
    """The failed handshake check for an HTTP 403: which of path, Origin or token it was.

    The Origin wins when changing it changes the answer, then the token; a made-up path that
    gets the very same answer means no such path; anything else cannot be told.
    """
    cause = _refusal_cause(probes)
    answers = {variation.change: variation.probe.answer for variation in _tried(probes)}
    detail = f"{said}; {_REFUSAL_LABELS[cause]}: " + "; ".join(
        f"{change}: {answer}" for change, answer in answers.items()
    )
    fields = {**fields, "refusal": {"cause": cause, "probes": answers}}
    error = _refusal_error(cause, probes)
    return CheckResult("handshake", "fail", detail, error=error, fields=fields)


def _scrub(value: Any, secret: str | Secret) -> Any:
    if isinstance(value, str):
        return redact_text(value, [secret])
    if isinstance(value, Mapping):
        return {key: _scrub(item, secret) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, secret) for item in value]
    return value


def redacted(result: CheckResult, token: str | Secret | None) -> CheckResult:
    """``result`` with ``token`` replaced in its detail and fields (servers may echo it)."""
    if not reveal(token):
        return result
    assert token is not None
    return dataclasses.replace(
        result, detail=redact_text(result.detail, [token]), fields=_scrub(result.fields, token)
    )
