"""``wsconn diagnose``: the pure rules, then each check against a real service that breaks it."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import Service

from pytest_wsconn import Proxy, Stack, Tokens
from pytest_wsconn.cli.diagnose import main
from pytest_wsconn.config import parse_auth_mode
from pytest_wsconn.diagnostics import diagnose
from pytest_wsconn.redact import REDACTED
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.results import CheckResult
from pytest_wsconn.stack.reference_process import REFERENCE_COMMAND, ReferenceProcess
from pytest_wsconn.timing import scaled
from pytest_wsconn.verdicts import (
    CSWSH,
    MIXED_CONTENT,
    NO_AUTH,
    HttpReply,
    Probe,
    RefusalProbes,
    Variation,
    auth_verdict,
    check_certificate,
    check_health,
    check_health_websocket,
    check_url,
    classify_tls_failure,
    describe_handshake,
    explain_refusal,
    origin_verdict,
    parse_http_response,
    redacted,
    site_origin,
)

TOKEN_ENV = "WSCONN_DIAGNOSE_TEST_TOKEN"
TIMEOUT = str(scaled(5))
WS_CHECKS = [
    "url",
    "dns",
    "tcp",
    "health",
    "health_websocket",
    "handshake",
    "auth",
    "origin",
    "round_trip",
    "ping",
]


def diagnose_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run ``wsconn diagnose --json``; return its exit status and its report."""
    code = main([*argv, "--timeout", TIMEOUT, "--json"])
    out, err = capsys.readouterr()
    assert err == ""
    return code, json.loads(out)


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def first_failure(report: dict[str, Any]) -> dict[str, Any]:
    return next(check for check in report["checks"] if check["status"] == "fail")


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch, wsconn_token: Tokens) -> str:
    """A valid token for the session's stack, exported in ``TOKEN_ENV``."""
    token = wsconn_token().reveal()
    monkeypatch.setenv(TOKEN_ENV, token)
    return token


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class _Hello(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 and never upgrades, as a plain web server does."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


class _Hello10(_Hello):
    """The same, speaking HTTP/1.0, which a WebSocket handshake cannot use at all."""

    protocol_version = "HTTP/1.0"


@pytest.fixture
def plain_http(request: pytest.FixtureRequest) -> Iterator[str]:
    """A plain HTTP server (handler class: the parameter) on loopback; yields a ws:// URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_address[1]}/ws"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(scaled(5))


@pytest.fixture(scope="module")
def auth_off() -> Iterator[str]:
    """A reference server that accepts any connection, token or not."""
    with ReferenceProcess((*REFERENCE_COMMAND, "--auth", "off")) as server:
        yield server.wait_ready(scaled(10))


@pytest.fixture(scope="module")
def close_mode() -> Iterator[Service]:
    """A reference server that upgrades a bad token's connection, then closes it with 1008."""
    with ReferenceProcess((*REFERENCE_COMMAND, "--auth-failure", "close")) as server:
        url = server.wait_ready(scaled(10))
        yield Service(url, reference_token(server.secret, "valid"))


@pytest.fixture(scope="module")
def any_origin() -> Iterator[Service]:
    """A reference server that allows every Origin while it reads tokens from cookies too."""
    with ReferenceProcess((*REFERENCE_COMMAND, "--allowed-origin", "*")) as server:
        url = server.wait_ready(scaled(10))
        yield Service(url, reference_token(server.secret, "valid"))


class TestCheckUrl:
    @pytest.mark.parametrize(
        ("url", "page", "status", "detail"),
        [
            ("ws://h:8080/ws", None, "pass", "ws:// to h:8080, path /ws"),
            ("wss://h/ws", "https://app.example", "pass", "wss:// to h:443, path /ws"),
            ("ws://h/ws", "http://app.example", "pass", "ws:// to h:80, path /ws"),
            ("ws://h/ws", "https://app.example/page", "fail", "cannot open ws:// (mixed content)"),
            ("ws://h:8080", None, "warn", "no path"),
            ("http://h/ws", None, "fail", "the scheme is 'http', not ws or wss; use ws://"),
            ("https://h/ws", None, "fail", "use wss://"),
            ("h:8080/ws", None, "fail", "not ws or wss"),
            ("ws:///ws", None, "fail", "the URL has no host"),
            ("ws://h:99999/ws", None, "fail", "malformed"),
        ],
    )
    def test_rules(self, url: str, page: str | None, status: str, detail: str) -> None:
        """Scheme, host, port, path and mixed content each give their verdict and reason."""
        result = check_url(url, page)
        assert (result.name, result.status) == ("url", status)
        assert detail in result.detail

    def test_mixed_content_is_classified(self) -> None:
        """Mixed content names the page's origin and carries the mixed-content error."""
        result = check_url("ws://h/ws", "https://App.Example:8443/page?q=1")
        assert "a page on https://app.example:8443 cannot open ws://" in result.detail
        assert result.error is MIXED_CONTENT

    @given(st.text(), st.one_of(st.none(), st.text()))
    def test_total(self, url: str, page: str | None) -> None:
        """Any URL and page origin get a verdict; the check never raises."""
        assert check_url(url, page).status in ("pass", "warn", "fail")


class TestClassifyTlsFailure:
    @pytest.mark.parametrize(
        ("code", "reason", "message", "detail"),
        [
            (10, "CERTIFICATE_VERIFY_FAILED", "certificate has expired", "certificate has expired"),
            (9, None, "certificate is not yet valid", "certificate is not yet valid"),
            (62, None, "Hostname mismatch, certificate is not valid for 'h'.", "hostname mismatch"),
            (64, None, "IP address mismatch", "hostname mismatch: IP address mismatch"),
            (20, None, "unable to get local issuer certificate", "unknown certificate authority"),
            (19, None, "self-signed certificate in certificate chain", "unknown certificate auth"),
            (18, None, "self-signed certificate", "unknown certificate authority"),
            (None, "WRONG_VERSION_NUMBER", "[SSL] wrong version number", "the server does not"),
            (None, "TLSV1_ALERT_PROTOCOL_VERSION", "alert", "no TLS version in common"),
            (None, None, "boom", "TLS handshake failed: boom"),
        ],
    )
    def test_detail(self, code: int | None, reason: str | None, message: str, detail: str) -> None:
        """Each verification failure is named in the detail and classified as TLS."""
        said, error = classify_tls_failure(code, reason, message)
        assert said.startswith(detail)
        assert error.category == "tls"
        assert not error.retryable

    def test_distinct_errors(self) -> None:
        """Expired, wrong host and unknown CA carry different errors, with different fixes."""
        errors = [classify_tls_failure(code, None, "x")[1] for code in (10, 62, 20)]
        assert len({error.message for error in errors}) == 3
        assert len({error.steps for error in errors}) == 3


CERT = {
    "subject": ((("commonName", "svc.example"),),),
    "issuer": ((("organizationName", "Example CA"),),),
    "subjectAltName": (("DNS", "svc.example"), ("IP Address", "10.0.0.1")),
    "notAfter": "Jan  1 00:00:00 2030 GMT",
}
JAN_2030 = 1893456000.0  # 2030-01-01T00:00:00Z
DAY = 86400.0


class TestCheckCertificate:
    def test_healthy(self) -> None:
        """A certificate with a month left passes and reports names, issuer and days left."""
        result = check_certificate(CERT, "TLSv1.3", JAN_2030 - 31 * DAY)
        assert result.status == "pass"
        assert result.detail == (
            "TLSv1.3, chain verified, hostname matches svc.example, 10.0.0.1, "
            "issued by 'Example CA', expires in 31 days (2030-01-01)"
        )
        assert result.fields["days_left"] == 31

    def test_expiring_soon(self) -> None:
        """Under 14 days left is a warning that says to renew."""
        result = check_certificate(CERT, "TLSv1.3", JAN_2030 - 13.5 * DAY)
        assert result.status == "warn"
        assert result.detail.startswith("the certificate expires in 13 days: renew it")

    def test_deprecated_version(self) -> None:
        """TLS 1.1 is a warning even with a healthy certificate."""
        result = check_certificate(CERT, "TLSv1.1", JAN_2030 - 300 * DAY)
        assert (result.status, result.detail[:30]) == ("warn", "TLSv1.1 is deprecated (RFC 899")

    def test_unverified(self) -> None:
        """A context that does not verify gets a warning, not a pass."""
        result = check_certificate({}, "TLSv1.3", JAN_2030, verified=False)
        assert result.status == "warn"
        assert "not verified" in result.detail


class TestParseHttpResponse:
    def test_content_length(self) -> None:
        """The body is cut at Content-Length; headers are found in any case."""
        data = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nServer: s\r\n\r\nokEXTRA"
        reply = parse_http_response(data, eof=False)
        assert reply == HttpReply(200, (("content-length", "2"), ("Server", "s")), b"ok")
        assert reply.header("SERVER") == "s"

    def test_chunked(self) -> None:
        """A chunked body is reassembled; it is incomplete until the last chunk."""
        data = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=1\r\npedia\r\n"
        )
        assert parse_http_response(data, eof=False) is None
        reply = parse_http_response(data + b"0\r\n\r\n", eof=False)
        assert reply is not None
        assert reply.body == b"Wikipedia"

    def test_waits_for_more(self) -> None:
        """Without the end of the headers or of the body, more bytes are needed."""
        assert parse_http_response(b"HTTP/1.1 200 OK\r\n", eof=False) is None
        assert (
            parse_http_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", eof=False)
            is None
        )
        assert parse_http_response(b"HTTP/1.1 200 OK\r\n\r\nab", eof=False) is None

    def test_eof_ends_the_body(self) -> None:
        """At the end of the stream, the body is what arrived."""
        reply = parse_http_response(b"HTTP/1.0 404 Not Found\r\n\r\nnope", eof=True)
        assert reply == HttpReply(404, (), b"nope")

    @pytest.mark.parametrize(
        "data",
        [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n", b"HTTP/1.1 200", b""],
    )
    def test_not_http(self, data: bytes) -> None:
        """Bytes that are not an HTTP answer raise ValueError with a reason."""
        with pytest.raises(ValueError, match=r"HTTP|closed before"):
            parse_http_response(data, eof=True)

    @given(st.binary(), st.booleans())
    def test_total(self, data: bytes, eof: bool) -> None:
        """Any bytes give an answer, None (only before eof) or ValueError; nothing else."""
        try:
            reply = parse_http_response(data, eof=eof)
        except ValueError:
            return
        assert reply is not None or not eof


def reply(status: int, body: object = b"", **headers: str) -> HttpReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpReply(status, tuple(headers.items()), raw)


class TestHealthVerdicts:
    @pytest.mark.parametrize(
        ("answer", "status", "detail"),
        [
            (reply(200, {"status": "ok"}), "pass", "GET /health: HTTP 200, status ok"),
            (reply(204), "pass", "GET /health: HTTP 204"),
            (reply(302, Location="/login"), "warn", "GET /health: HTTP 302, redirects to /login"),
            (reply(404), "warn", "GET /health: HTTP 404: no health endpoint there"),
            (reply(426), "warn", "GET /health: HTTP 426: no health endpoint there"),
            (reply(503), "fail", "GET /health: HTTP 503"),
        ],
    )
    def test_health(self, answer: HttpReply, status: str, detail: str) -> None:
        """Only the service saying it is broken (5xx) fails; a missing endpoint warns."""
        result = check_health("/health", answer)
        assert (result.status, result.detail[: len(detail)]) == (status, detail)

    def test_unhealthy_is_classified(self) -> None:
        """A 503 carries the HTTP status's classification."""
        error = check_health("/health", reply(503)).error
        assert error is not None
        assert (error.category, error.code) == ("overload", 503)

    def test_websocket_report(self) -> None:
        """The report's fields are kept and summarised in the detail."""
        report = {"status": "ok", "active_connections": 3, "auth": "required", "extra": [1]}
        result = check_health_websocket("/health/websocket", reply(200, report))
        assert result.status == "pass"
        assert result.detail == (
            "GET /health/websocket: HTTP 200: status=ok, active_connections=3, auth=required"
        )
        assert result.fields == report

    def test_websocket_problems(self) -> None:
        """Configuration problems the report lists are warnings, quoted in the detail."""
        report = {"status": "ok", "config": {"ok": False, "problems": ["auth is off"]}}
        result = check_health_websocket("/h/websocket", reply(200, report))
        assert result.status == "warn"
        assert result.detail.endswith("; config problems: auth is off")

    @pytest.mark.parametrize(
        ("answer", "status"), [(reply(404), "skipped"), (reply(200, b"<html>"), "warn")]
    )
    def test_websocket_absent(self, answer: HttpReply, status: str) -> None:
        """A missing page is skipped (it is optional); a page that is not JSON warns."""
        assert check_health_websocket("/h/websocket", answer).status == status


RFC_KEY, RFC_ACCEPT = "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3


class TestDescribeHandshake:
    def test_upgrade(self) -> None:
        """A 101 reports Upgrade, a checked Accept, the subprotocol and who answered."""
        answer = HttpReply(
            101,
            (
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Accept", RFC_ACCEPT),
                ("Via", "1.1 nginx"),
                ("Set-Cookie", "sid=secret"),
            ),
        )
        detail, fields = describe_handshake(answer, key=RFC_KEY, subprotocol="chat")
        assert detail == (
            "HTTP 101, Upgrade: websocket, Sec-WebSocket-Accept valid, subprotocol chat, "
            "Via: 1.1 nginx"
        )
        assert fields["accept_valid"] is True
        assert fields["headers"] == {"Via": "1.1 nginx"}

    def test_wrong_accept(self) -> None:
        """An Accept that does not answer the key is flagged."""
        answer = HttpReply(101, (("Sec-WebSocket-Accept", "bogus"),))
        assert "Sec-WebSocket-Accept INVALID" in describe_handshake(answer, key=RFC_KEY)[0]

    def test_refusal(self) -> None:
        """A refusal shows the status and the first line of the body."""
        answer = HttpReply(403, (("Server", "nginx"),), b"origin not allowed\nmore")
        detail, _ = describe_handshake(answer)
        assert detail == (
            "HTTP 403 instead of 101 Switching Protocols, body 'origin not allowed', Server: nginx"
        )


class TestProbeVerdicts:
    @pytest.mark.parametrize(
        ("probe", "status"),
        [
            (Probe("accepted", "it answered a message"), "warn"),
            (Probe("refused", "closed with 1008"), "fail"),
            (Probe("inconclusive", "timeout"), "warn"),
        ],
    )
    def test_no_token_given(self, probe: Probe, status: str) -> None:
        """Without a token, an open service warns and one that refuses fails."""
        result = auth_verdict(probe, token_sent=False)
        assert result.status == status
        assert result.detail.startswith("no token given")
        assert (result.error is NO_AUTH) == (probe.verdict == "accepted")

    @pytest.mark.parametrize(
        ("probe", "status"),
        [
            (Probe("refused", "HTTP 401"), "pass"),
            (Probe("accepted", "it answered a message"), "fail"),
            (Probe("inconclusive", "timeout"), "warn"),
        ],
    )
    def test_auth(self, probe: Probe, status: str) -> None:
        """A connection without a token must be refused; accepted is a failure."""
        result = auth_verdict(probe, token_sent=True)
        assert result.status == status
        assert probe.how in result.detail

    @pytest.mark.parametrize(
        ("mode", "probe", "status"),
        [
            ("cookie:sid", Probe("refused", "HTTP 403"), "pass"),
            ("cookie:sid", Probe("accepted", "it answered"), "warn"),
            ("query:token", Probe("accepted", "it answered"), "pass"),
            ("header", Probe("inconclusive", "reset"), "warn"),
        ],
    )
    def test_origin(self, mode: str, probe: Probe, status: str) -> None:
        """Accepting a foreign Origin matters only when the browser sends the credential."""
        result = origin_verdict(parse_auth_mode(mode), probe)
        assert result.status == status
        assert (result.error is CSWSH) == (status == "warn" and probe.verdict == "accepted")


FORBIDDEN = Probe("refused", "HTTP 403")
ACCEPTED = Probe("accepted", "it answered a message")
UNTOLD = Probe("inconclusive", "timeout: no answer")
MADE_UP = "on the made-up path /wsconn-no-such-path-1a2b"


def refusal_probes(
    made_up: Probe = FORBIDDEN,
    origin: Probe = FORBIDDEN,
    token: Probe | None = FORBIDDEN,
    origin_sent: str | None = "https://app.example",
) -> RefusalProbes:
    """An HTTP 403 at /chat and how each variation of it fared."""
    change = "without Origin" if origin_sent else "with Origin http://h:8080"
    return RefusalProbes(
        path="/chat",
        refusal=FORBIDDEN,
        made_up_path=Variation(MADE_UP, made_up),
        origin=Variation(change, origin),
        origin_sent=origin_sent,
        token=None if token is None else Variation("without the token", token),
    )


probes_strategy = st.builds(
    Probe,
    st.sampled_from(["refused", "accepted", "inconclusive"]),
    st.sampled_from(["HTTP 403", "HTTP 401", "HTTP 404", "it answered a message"]),
    st.none(),
    st.sampled_from(["", "forbidden", "token missing"]),
)


class TestExplainRefusal:
    @pytest.mark.parametrize(
        ("probes", "cause", "message"),
        [
            (
                refusal_probes(origin=ACCEPTED),
                "origin",
                "HTTP 403 for the Origin https://app.example: without it the same request was "
                "accepted, so the service does not allow this Origin.",
            ),
            (
                refusal_probes(origin=Probe("refused", "HTTP 401", body="token missing")),
                "origin",
                "without it the same request got HTTP 401 'token missing' instead",
            ),
            (
                refusal_probes(origin=ACCEPTED, origin_sent=None),
                "origin",
                "HTTP 403 without an Origin header: with Origin http://h:8080 the same request "
                "was accepted, so the service wants an Origin.",
            ),
            (
                refusal_probes(token=Probe("refused", "HTTP 401")),
                "auth",
                "HTTP 403 for this token: without it the same request got HTTP 401 instead",
            ),
            (refusal_probes(token=ACCEPTED), "auth", "without it the same request was accepted"),
            (
                refusal_probes(origin=ACCEPTED, token=ACCEPTED),
                "origin",
                "HTTP 403 for the Origin https://app.example",
            ),
            (
                refusal_probes(),
                "path",
                "HTTP 403 at /chat is what a made-up path gets too: most likely the service has "
                "no WebSocket endpoint there.",
            ),
            (
                refusal_probes(token=None, origin_sent=None),
                "path",
                "HTTP 403 at /chat is what a made-up path gets too: no WebSocket endpoint there, "
                "or one that wants a token (none was sent).",
            ),
            (refusal_probes(origin=UNTOLD, token=UNTOLD), "path", "made-up path gets too"),
            (
                refusal_probes(made_up=Probe("refused", "HTTP 404")),
                "unknown",
                "HTTP 403 for a reason the probes could not tell: "
                f"{MADE_UP}: HTTP 404; without Origin: HTTP 403; without the token: HTTP 403.",
            ),
            (
                refusal_probes(made_up=ACCEPTED),
                "unknown",
                f"{MADE_UP}: accepted (it answered a message)",
            ),
            (
                refusal_probes(made_up=Probe("refused", "HTTP 403", body="no route")),
                "unknown",
                f"{MADE_UP}: HTTP 403 'no route'",
            ),
            (refusal_probes(made_up=UNTOLD), "unknown", "failed otherwise (timeout: no answer)"),
        ],
    )
    def test_cause(self, probes: RefusalProbes, cause: str, message: str) -> None:
        """Origin, token and a made-up path each tell their cause; the message says which."""
        result = explain_refusal("HTTP 403 instead of 101 Switching Protocols", {}, probes)
        assert (result.name, result.status) == ("handshake", "fail")
        assert result.fields["refusal"]["cause"] == cause
        assert result.error is not None
        assert message in result.error.message
        assert (result.error.code, result.error.retryable) == (403, False)
        expected = "http_rejected" if cause == "path" else "auth"
        assert result.error.category == expected

    def test_detail_lists_every_probe(self) -> None:
        """The detail names the cause, then what each variation got."""
        probes = refusal_probes(made_up=Probe("refused", "HTTP 404"))
        result = explain_refusal("HTTP 403 instead of 101", {"status": 403}, probes)
        assert result.detail == (
            "HTTP 403 instead of 101; refused for a reason the probes could not tell: "
            f"{MADE_UP}: HTTP 404; without Origin: HTTP 403; without the token: HTTP 403"
        )
        assert result.fields["status"] == 403
        assert result.fields["refusal"]["probes"] == {
            MADE_UP: "HTTP 404",
            "without Origin": "HTTP 403",
            "without the token": "HTTP 403",
        }

    def test_never_blames_origin_unseen(self) -> None:
        """A 403 whose Origin changes nothing is never explained as an Origin problem."""
        for probes in (refusal_probes(), refusal_probes(token=None, origin_sent=None)):
            error = explain_refusal("", {}, probes).error
            assert error is not None
            assert "Origin" not in error.message + " ".join(error.causes)

    @pytest.mark.parametrize(
        ("url", "origin"),
        [
            ("ws://Localhost:8080/chat?x=1", "http://localhost:8080"),
            ("wss://user@h.example/ws", "https://h.example"),
        ],
    )
    def test_site_origin(self, url: str, origin: str) -> None:
        """The URL's own site is its host with the page scheme, as a browser would send it."""
        assert site_origin(url) == origin

    @given(
        probes_strategy,
        probes_strategy,
        probes_strategy,
        st.one_of(st.none(), probes_strategy),
        st.one_of(st.none(), st.just("https://app.example")),
    )
    def test_total(
        self,
        refusal: Probe,
        made_up: Probe,
        origin: Probe,
        token: Probe | None,
        origin_sent: str | None,
    ) -> None:
        """Any probe answers give a failed handshake with one cause, each answer in the detail."""
        probes = dataclasses.replace(
            refusal_probes(made_up, origin, token, origin_sent), refusal=refusal
        )
        result = explain_refusal("HTTP 403", {}, probes)
        assert result.status == "fail"
        assert result.fields["refusal"]["cause"] in ("path", "origin", "auth", "unknown")
        assert made_up.answer in result.detail
        assert origin.answer in result.detail


class TestRedacted:
    def test_token_scrubbed(self) -> None:
        """The token is replaced in the detail and in nested fields."""
        result = CheckResult(
            "handshake", "pass", "subprotocol token.s3cr3t", fields={"a": ["x s3cr3t", {"b": 1}]}
        )
        clean = redacted(result, "s3cr3t")
        assert clean.detail == f"subprotocol token.{REDACTED}"
        assert clean.fields == {"a": [f"x {REDACTED}", {"b": 1}]}


class TestDiagnoseCommand:
    def test_healthy_stack(
        self, capsys: pytest.CaptureFixture[str], wsconn_stack: Stack, token_env: str
    ) -> None:
        """Against the reference server every check passes and the health fields are reported."""
        code, report = diagnose_json(capsys, wsconn_stack.proxy_url, "--token-env", TOKEN_ENV)
        assert code == 0
        assert report["ok"] is True
        assert [c["name"] for c in report["checks"]] == WS_CHECKS
        assert {c["status"] for c in report["checks"]} == {"pass"}
        found = checks(report)
        health = found["health_websocket"]
        assert health["fields"]["status"] == "ok"
        assert health["fields"]["auth"] == "required"
        assert "active_connections=" in health["detail"]
        assert found["auth"]["detail"] == "token accepted; no token refused (HTTP 401)"
        assert found["origin"]["detail"] == "a foreign Origin was refused (HTTP 403)"
        assert found["handshake"]["fields"]["accept_valid"] is True

    def test_table(
        self, capsys: pytest.CaptureFixture[str], wsconn_stack: Stack, token_env: str
    ) -> None:
        """Without --json the checks print as a table, uncoloured when stdout is not a TTY."""
        code = main([wsconn_stack.proxy_url, "--token-env", TOKEN_ENV, "--timeout", TIMEOUT])
        out = capsys.readouterr().out
        assert code == 0
        assert out.startswith(f"wsconn diagnose {wsconn_stack.proxy_url}\n")
        assert "\033[" not in out
        assert "\nping              pass" in out
        assert out.endswith("\nall checks passed\n")

    def test_proxy_down(
        self,
        capsys: pytest.CaptureFixture[str],
        wsconn_stack: Stack,
        wsconn_proxy: Proxy,
        token_env: str,
    ) -> None:
        """With the proxy down TCP is refused, classified as network, and later checks skip."""
        wsconn_proxy.disable()
        code, report = diagnose_json(capsys, wsconn_stack.proxy_url, "--token-env", TOKEN_ENV)
        assert code == 1
        failure = first_failure(report)
        assert failure["name"] == "tcp"
        assert failure["detail"].endswith(": connection refused")
        assert failure["error"]["category"] == "network"
        assert failure["error"]["message"].startswith("Connection refused")
        later = report["checks"][WS_CHECKS.index("tcp") + 1 :]
        assert {(c["status"], c["detail"]) for c in later} == {
            ("skipped", "skipped: TCP connect failed")
        }

    def test_nothing_listening(self, capsys: pytest.CaptureFixture[str], closed_port: int) -> None:
        """A port where nothing listens fails at TCP with 'connection refused'."""
        code, report = diagnose_json(capsys, f"ws://127.0.0.1:{closed_port}/ws")
        assert code == 1
        failure = first_failure(report)
        assert (failure["name"], failure["detail"]) == (
            "tcp",
            f"127.0.0.1:{closed_port}: connection refused",
        )
        assert failure["error"]["retryable"] is True
        assert checks(report)["dns"]["status"] == "pass"

    def test_unresolvable_name(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A name under .invalid fails at DNS, classified dns, and everything after skips."""
        code, report = diagnose_json(capsys, "ws://wsconn-diagnose.invalid/ws")
        assert code == 1
        failure = first_failure(report)
        assert failure["name"] == "dns"
        assert failure["detail"].startswith("wsconn-diagnose.invalid did not resolve: ")
        assert failure["error"]["category"] == "dns"
        assert checks(report)["tcp"]["detail"] == "skipped: DNS resolution failed"
        assert checks(report)["ping"]["detail"] == "skipped: DNS resolution failed"

    @pytest.mark.parametrize(
        ("plain_http", "detail", "category", "code"),
        [
            (
                _Hello,
                "HTTP 200 instead of 101 Switching Protocols, body 'hello', Server: BaseHTTP/",
                "http_rejected",
                200,
            ),
            (
                _Hello10,
                "protocol: did not receive a valid HTTP response (unsupported protocol; "
                "expected HTTP/1.1: HTTP/1.0 200 OK)",
                "protocol",
                None,
            ),
        ],
        indirect=["plain_http"],
    )
    def test_plain_http_server(
        self,
        capsys: pytest.CaptureFixture[str],
        plain_http: str,
        detail: str,
        category: str,
        code: int | None,
    ) -> None:
        """A web server that answers instead of upgrading fails the handshake, classified."""
        status, report = diagnose_json(capsys, plain_http)
        assert status == 1
        failure = first_failure(report)
        assert failure["name"] == "handshake"
        assert failure["detail"].startswith(detail)
        assert (failure["error"]["category"], failure["error"]["code"]) == (category, code)
        assert checks(report)["health"]["status"] == "pass"
        assert checks(report)["auth"]["detail"] == "skipped: WebSocket handshake failed"

    def test_mixed_content(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        reference_service: Service,
    ) -> None:
        """ws:// from an https page fails the URL check; the service is still checked."""
        monkeypatch.setenv(TOKEN_ENV, reference_service.token)
        page = "https://app.example.com/chat"
        argv = [reference_service.url, "--page-origin", page, "--token-env", TOKEN_ENV]
        code, report = diagnose_json(capsys, *argv)
        assert code == 1
        failure = first_failure(report)
        assert failure["name"] == "url"
        assert "cannot open ws:// (mixed content); use wss://" in failure["detail"]
        assert failure["error"]["category"] == "policy"
        found = checks(report)
        assert found["tcp"]["status"] == "pass"
        # The page's origin is sent as Origin, and the reference server does not allow it.
        assert found["handshake"]["detail"].startswith("HTTP 403")

    def test_service_without_auth(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, auth_off: str
    ) -> None:
        """A service that accepts a connection without a token fails the auth check."""
        monkeypatch.setenv(TOKEN_ENV, "a-token-nobody-checks")
        code, report = diagnose_json(capsys, auth_off, "--token-env", TOKEN_ENV)
        assert code == 1
        failure = first_failure(report)
        assert failure["name"] == "auth"
        assert failure["detail"] == (
            "token accepted, but so was a connection without one (it answered a message)"
        )
        assert failure["error"]["category"] == "auth"
        health = checks(report)["health_websocket"]
        assert health["status"] == "warn"
        assert "auth is off" in health["detail"]

    def test_no_token_given(self, capsys: pytest.CaptureFixture[str], auth_off: str) -> None:
        """Without a token, an anonymous service warns; warnings alone exit 0."""
        code, report = diagnose_json(capsys, auth_off)
        assert code == 0
        assert checks(report)["auth"]["status"] == "warn"
        assert checks(report)["auth"]["detail"] == (
            "no token given, and the service accepted a connection (it answered a message): "
            "anyone who can reach it can connect"
        )

    def test_refusal_by_close_code(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        close_mode: Service,
    ) -> None:
        """A service that refuses with close 1008 after the upgrade passes the auth check."""
        monkeypatch.setenv(TOKEN_ENV, close_mode.token)
        code, report = diagnose_json(capsys, close_mode.url, "--token-env", TOKEN_ENV)
        assert code == 0
        assert checks(report)["auth"]["detail"] == (
            "token accepted; no token refused (closed with 1008 (policy violation) 'token missing')"
        )

    def test_missing_token_refused_by_close_code(
        self, capsys: pytest.CaptureFixture[str], close_mode: Service
    ) -> None:
        """Without a token, the upgrade succeeds but auth fails on the 1008 that follows."""
        code, report = diagnose_json(capsys, close_mode.url)
        assert code == 1
        found = checks(report)
        assert found["handshake"]["status"] == "pass"
        failure = first_failure(report)
        assert (failure["name"], failure["error"]["category"]) == ("auth", "policy")
        assert failure["detail"].startswith("no token given, and the service refused the conn")
        assert found["round_trip"]["detail"] == (
            "the server ended the connection: closed with 1008 (policy violation) 'token missing'"
        )
        assert found["ping"]["detail"] == "skipped: round trip failed"

    def test_any_origin_with_cookie_auth(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        any_origin: Service,
    ) -> None:
        """Any Origin accepted with cookie auth warns of Cross-Site WebSocket Hijacking."""
        monkeypatch.setenv(TOKEN_ENV, any_origin.token)
        # A cookie travels only from a browser, which always sends an Origin: so does this run.
        argv = [any_origin.url, "--token-env", TOKEN_ENV, "--auth", "cookie:wsconn_token"]
        code, report = diagnose_json(capsys, *argv, "--origin", "http://localhost")
        assert code == 0
        origin = checks(report)["origin"]
        assert origin["status"] == "warn"
        assert "open to Cross-Site WebSocket Hijacking" in origin["detail"]
        assert origin["error"]["category"] == "policy"

    def test_json_structure(self, capsys: pytest.CaptureFixture[str], closed_port: int) -> None:
        """--json prints the target, ok and one object per check with a structured error."""
        url = f"ws://127.0.0.1:{closed_port}/ws?token=s3cr3t-in-url"
        code, report = diagnose_json(capsys, url)
        assert code == 1
        assert report["target"] == f"ws://127.0.0.1:{closed_port}/ws?token=***"
        assert report["ok"] is False
        for check in report["checks"]:
            assert set(check) == {"name", "status", "detail", "duration_ms", "error", "fields"}
            assert check["duration_ms"] >= 0
        error = first_failure(report)["error"]
        assert set(error) == {"category", "code", "message", "causes", "steps", "retryable"}
        assert error["steps"]

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            ([], "the following arguments are required: URL (see wsconn diagnose --help)"),
            (
                ["https://h/ws?token=s3cr3t-value"],
                "cannot diagnose https://h/ws?token=***: the scheme is 'https', "
                "not ws or wss; use wss://",
            ),
            (["ws://h/ws", "--auth", "bogus"], "invalid auth mode 'bogus'; valid: query:<param>"),
            (
                ["ws://h/ws", "--token-env", "WSCONN_DIAGNOSE_UNSET"],
                "--token-env WSCONN_DIAGNOSE_UNSET: that variable is not set or empty",
            ),
            (["ws://h/ws", "--timeout", "0"], "invalid timeout '0'; valid: a positive number"),
            (["ws://h/ws", "--page-origin", "app.example"], "--page-origin 'app.example' is not"),
            (["ws://h/ws", "--health-path", "health"], "--health-path 'health' must start with /"),
            (["wss://h/ws", "--cafile", "/nonexistent.pem"], "--cafile /nonexistent.pem: cannot"),
            (
                ["ws://h/ws", "--token-env", "A", "--token-stdin"],
                "argument --token-stdin: not allowed with argument --token-env",
            ),
        ],
    )
    def test_usage_errors(
        self, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
    ) -> None:
        """A bad command line exits 2 with one sentence on stderr, secrets redacted."""
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith(f"wsconn diagnose: {message}")
        assert err.count("\n") == 1
        assert "s3cr3t" not in err


def run_diagnose(
    *argv: str, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run ``main(argv)`` in a child process, as the ``wsconn`` entry point would."""
    code = f"from pytest_wsconn.cli.diagnose import main; raise SystemExit(main({list(argv)!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=scaled(30),
        env={**os.environ, **env},
        check=False,
    )


class TestDiagnoseProcess:
    def test_token_never_printed(self, wsconn_stack: Stack, wsconn_token: Tokens) -> None:
        """A healthy run exits 0, and the token is in neither stdout nor stderr."""
        token = wsconn_token().reveal()
        result = run_diagnose(
            wsconn_stack.proxy_url, "--token-env", TOKEN_ENV, "--json", env={TOKEN_ENV: token}
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["ok"] is True
        assert token not in result.stdout + result.stderr

    def test_token_from_stdin(self, auth_off: str) -> None:
        """A piped token is used and never echoed, even when a check fails (exit 1)."""
        token = "piped-token-0123456789"
        result = run_diagnose(auth_off, "--token-stdin", env={}, stdin=f"{token}\n")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "\nauth              fail" in result.stdout
        assert token not in result.stdout + result.stderr


class TestDiagnoseApi:
    @pytest.mark.asyncio
    async def test_pushes_are_no_echo(self, broken_service: Callable[[str], Service]) -> None:
        """A service that only pushes warns on the round trip, counting what came instead."""
        service = broken_service("never-echoes")
        results = await diagnose(service.url, token=service.token, timeout=scaled(0.5))
        (round_trip,) = [r for r in results if r.name == "round_trip"]
        assert round_trip.status == "warn"
        assert round_trip.detail.startswith("no echo of our message within")
        assert "other messages received): the service may not echo" in round_trip.detail

    @pytest.mark.asyncio
    async def test_dial_through_the_proxy(
        self, wsconn_stack: Stack, wsconn_proxy: Proxy, wsconn_token: Tokens
    ) -> None:
        """``dial`` reaches the service through the proxy while the URL names the service."""
        kwargs: dict[str, Any] = {"token": wsconn_token(), "timeout": scaled(5)}
        results = await diagnose(wsconn_stack.url, dial=wsconn_proxy.listen_address, **kwargs)
        assert [r.status for r in results] == ["pass"] * len(WS_CHECKS)
        assert results[1].detail.endswith("(dialled instead of the URL's host)")
        wsconn_proxy.disable()
        results = await diagnose(wsconn_stack.url, dial=wsconn_proxy.listen_address, **kwargs)
        tcp = results[2]
        assert (tcp.name, tcp.status) == ("tcp", "fail")
        assert tcp.error is not None
        assert tcp.error.category == "network"
