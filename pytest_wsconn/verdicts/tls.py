"""TLS: a failed handshake classified by its cause, and the checks of a verified certificate."""

from __future__ import annotations

import calendar
import datetime
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_wsconn.closecodes import Outcome, WebSocketError, classify_outcome
from pytest_wsconn.results import CheckResult

EXPIRY_WARNING_DAYS = 14


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
