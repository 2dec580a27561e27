"""What each observation of ``wsconn diagnose`` means: the pure core of the diagnostics.

URL rules, TLS failures and certificates, HTTP answers to a raw GET, the WebSocket handshake's
response, and the verdicts on the probe connections (auth, Origin, the variations of an upgrade
refused with HTTP 403) — each a function from what was seen to a ``CheckResult``, tested without
a network.

Layout::

    url.py        the URL's scheme, host and port; mixed content
    tls.py        a failed TLS handshake classified; a verified certificate checked
    replies.py    HTTP answers parsed; health pages and the upgrade's answer judged
    probes.py     the connections without a token and from a foreign Origin; no pong
    refusal.py    an HTTP 403 explained by the variations of the refused upgrade
    redaction.py  the token scrubbed from a check's result
"""

from __future__ import annotations

from pytest_wsconn.verdicts.probes import (
    CSWSH,
    NO_AUTH,
    NO_PONG,
    Probe,
    Verdict,
    auth_verdict,
    origin_verdict,
)
from pytest_wsconn.verdicts.redaction import redacted
from pytest_wsconn.verdicts.refusal import (
    RefusalCause,
    RefusalProbes,
    Variation,
    explain_refusal,
    site_origin,
)
from pytest_wsconn.verdicts.replies import (
    NOTABLE_HEADERS,
    HttpReply,
    check_health,
    check_health_websocket,
    describe_handshake,
    first_line,
    parse_http_response,
)
from pytest_wsconn.verdicts.tls import EXPIRY_WARNING_DAYS, check_certificate, classify_tls_failure
from pytest_wsconn.verdicts.url import BAD_URL, MIXED_CONTENT, check_url, url_problem

__all__ = [
    "BAD_URL",
    "CSWSH",
    "EXPIRY_WARNING_DAYS",
    "MIXED_CONTENT",
    "NOTABLE_HEADERS",
    "NO_AUTH",
    "NO_PONG",
    "HttpReply",
    "Probe",
    "RefusalCause",
    "RefusalProbes",
    "Variation",
    "Verdict",
    "auth_verdict",
    "check_certificate",
    "check_health",
    "check_health_websocket",
    "check_url",
    "classify_tls_failure",
    "describe_handshake",
    "explain_refusal",
    "first_line",
    "origin_verdict",
    "parse_http_response",
    "redacted",
    "site_origin",
    "url_problem",
]
