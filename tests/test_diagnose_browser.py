"""``wsconn diagnose --browser``: what Chromium enforces, reported beside the Python checks.

Real Chromium opens the WebSocket to the reference server from a page at ``--page-origin``:
an allowed Origin opens; a foreign one is refused (HTTP 403, the Origin named); a page whose
real CSP says ``connect-src 'self'`` blocks it before any request; an https page cannot open
ws:// (mixed content); a SameSite=Lax auth cookie is withheld from another site's page.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support import Service
from support.commands import wsconn

from pytest_wsconn.browser.diagnose import browser_diagnose
from pytest_wsconn.browser.timeline import BrowserEvent
from pytest_wsconn.browser.verdicts import BrowserProbe, browser_checks, site
from pytest_wsconn.cli.diagnose import main
from pytest_wsconn.config import parse_auth_mode, target_address
from pytest_wsconn.timing import scaled

TOKEN_ENV = "WSCONN_BROWSER_DIAGNOSE_TOKEN"


class TestVerdicts:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://app.example.com/x", "https://example.com"),
            ("wss://api.example.com:8443/ws", "https://example.com"),
            ("ws://127.0.0.1:9000/ws", "http://127.0.0.1"),
            ("http://localhost", "http://localhost"),
        ],
    )
    def test_site_is_scheme_and_registrable_domain(self, url: str, expected: str) -> None:
        """SameSite compares sites: ws/wss count as http/https, ports and subdomains do not."""
        assert site(url) == expected

    def test_a_block_skips_the_checks_that_need_a_request(self) -> None:
        """Mixed content fails; the handshake and cookie checks are skipped, not failed."""
        blocked = BrowserEvent("blocked", 0.0, 1, text="SecurityError: insecure WebSocket")
        probe = BrowserProbe(
            "https://app.test/", "ws://h/ws", parse_auth_mode("cookie:sid"), [blocked], 5.0
        )
        assert [(r.name, r.status) for r in browser_checks(probe)] == [
            ("browser_mixed_content", "fail"),
            ("browser_csp", "pass"),
            ("browser_handshake", "skipped"),
            ("browser_cookie", "skipped"),
        ]

    @pytest.mark.parametrize(
        ("page", "ws", "status"),
        [
            ("http://app.test/", "ws://h/ws", "pass"),
            ("https://app.test/", "wss://h/ws", "pass"),
            ("https://app.test/", "ws://127.0.0.1/ws", "warn"),
        ],
    )
    def test_unblocked_ws_from_https_is_a_warning(self, page: str, ws: str, status: str) -> None:
        """ws:// that Chromium let through from an https page (loopback) is only a warning."""
        probe = BrowserProbe(page, ws, parse_auth_mode("none"), [], 5.0)
        assert browser_checks(probe)[0].status == status

    def test_withheld_cookie_names_samesite_and_both_sites(self) -> None:
        """A Lax cookie missing from a cross-site upgrade is explained by SameSite."""
        sent = BrowserEvent("handshake", 0.0, origin="http://app.test", cookies=("other",))
        probe = BrowserProbe(
            "http://app.test/", "ws://api.example/ws", parse_auth_mode("cookie:sid"), [sent], 5.0
        )
        cookie = browser_checks(probe)[-1]
        assert (cookie.name, cookie.status) == ("browser_cookie", "fail")
        assert "SameSite=Lax cookies are not sent from another site (page http://app.test, " in (
            cookie.detail
        )


def checks(capsys: pytest.CaptureFixture[str], *argv: str, code: int) -> dict[str, Any]:
    """Run ``wsconn diagnose --browser --json``; its checks by name."""
    assert main([*argv, "--browser", "--timeout", str(scaled(5)), "--json"]) == code
    out = capsys.readouterr().out
    return {check["name"]: check for check in json.loads(out)["checks"]}


@pytest.fixture
def service_argv(monkeypatch: pytest.MonkeyPatch, reference_service: Service) -> tuple[str, ...]:
    """The reference server's URL and its token, given through a variable as users do."""
    monkeypatch.setenv(TOKEN_ENV, reference_service.token)
    return (reference_service.url, "--token-env", TOKEN_ENV)


@pytest.fixture
def csp_page() -> Iterator[str]:
    """A real page (http.server on loopback) whose CSP allows connections to itself only."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Security-Policy", "connect-src 'self'")
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<p>app</p>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/app"
    finally:
        server.shutdown()
        thread.join(scaled(5))
        server.server_close()


class TestWithoutChromium:
    def test_browser_needs_a_page_origin(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--browser without --page-origin is a usage error in one line, exit 2."""
        assert main(["ws://127.0.0.1:9/ws", "--browser"]) == 2
        assert capsys.readouterr().err == (
            "wsconn diagnose: --browser opens the WebSocket from a page: give --page-origin URL\n"
        )

    def test_missing_chromium_is_one_failed_check(
        self, capsys: pytest.CaptureFixture[str], service_argv: tuple[str, ...]
    ) -> None:
        """A Chromium that does not start fails one `browser` check, saying what to do."""
        argv = (*service_argv, "--page-origin", "http://localhost")
        found = checks(capsys, *argv, "--browser-path", "/nonexistent/chromium", code=1)
        assert found["browser"]["detail"].startswith("Chromium at /nonexistent/chromium did not")
        assert (
            "(apt-get install chromium, or pass --wsconn-browser-path PATH (wsconn diagnose: "
            in (found["browser"]["detail"])
        )
        assert found["handshake"]["status"] == "pass", "the Python checks still ran"


@pytest.mark.usefixtures("chromium_present")
class TestInChromium:
    def test_allowed_origin_opens_in_the_table(self, reference_service: Service) -> None:
        """The command's table shows the browser's checks after the Python ones; exit 0."""
        result = wsconn(
            "diagnose",
            reference_service.url,
            "--token-env",
            TOKEN_ENV,
            "--page-origin",
            "http://localhost",
            "--browser",
            env={TOKEN_ENV: reference_service.token},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        names = [line.split()[0] for line in lines if line.startswith(("ping", "browser_"))]
        assert names == ["ping", "browser_mixed_content", "browser_csp", "browser_handshake"]
        assert any(
            "browser_handshake" in line and "pass" in line and "Origin http://localhost" in line
            for line in lines
        ), result.stdout
        assert reference_service.token not in result.stdout + result.stderr

    def test_foreign_origin_is_refused_with_its_origin_named(
        self, capsys: pytest.CaptureFixture[str], service_argv: tuple[str, ...]
    ) -> None:
        """From http://foreign.test the server answers Chromium's upgrade with 403."""
        found = checks(capsys, *service_argv, "--page-origin", "http://foreign.test", code=1)
        handshake = found["browser_handshake"]
        assert handshake["status"] == "fail"
        assert handshake["detail"].startswith(
            "the server refused the browser's upgrade with HTTP 403 (Origin http://foreign.test)"
            ": the Origin is not allowed"
        )
        assert handshake["fields"] == {"origin": "http://foreign.test", "http_status": 403}

    def test_page_csp_blocks_before_any_request(
        self,
        capsys: pytest.CaptureFixture[str],
        service_argv: tuple[str, ...],
        reference_service: Service,
        csp_page: str,
    ) -> None:
        """The real page's connect-src 'self' is applied: the service's port is blocked."""
        found = checks(capsys, *service_argv, "--page-origin", csp_page, code=1)
        host, port = target_address(reference_service.url)
        assert found["browser_csp"]["status"] == "fail"
        assert f"add ws://{host}:{port} to connect-src" in found["browser_csp"]["detail"]
        assert found["browser_csp"]["fields"] == {"csp": "connect-src 'self'"}
        assert found["browser_handshake"]["status"] == "skipped"
        assert reference_service.token not in json.dumps(found)

    def test_ws_from_an_https_page_is_mixed_content(self, reference_service: Service) -> None:
        """ws:// to a named host (not loopback, which browsers trust) from an https page."""
        _, port = target_address(reference_service.url)
        results = asyncio.run(
            browser_diagnose(
                f"ws://wsconn-server.test:{port}/ws",
                "https://app.test/",
                auth=parse_auth_mode("none"),
                timeout=scaled(5),
                dial=("127.0.0.1", port),
            )
        )
        found = {result.name: result for result in results}
        assert found["browser_mixed_content"].status == "fail"
        assert "mixed content; serve the WebSocket over wss://" in (
            found["browser_mixed_content"].detail
        )
        assert found["browser_handshake"].status == "skipped"

    @pytest.mark.parametrize(
        "case",
        [
            ("SAME", "pass", "cookie wsconn_token was sent with the upgrade (SameSite=Lax)"),
            ("http://localhost", "fail", "SameSite=Lax cookies are not sent from another site"),
        ],
        ids=["same-origin", "cross-site"],
    )
    def test_samesite_cookie(
        self,
        capsys: pytest.CaptureFixture[str],
        service_argv: tuple[str, ...],
        reference_service: Service,
        case: tuple[str, str, str],
    ) -> None:
        """cookie:NAME auth: sent from the service's own origin, withheld from another site."""
        page, status, says = case
        host, port = target_address(reference_service.url)
        origin = f"http://{host}:{port}" if page == "SAME" else page
        argv = (*service_argv, "--auth", "cookie:wsconn_token")
        found = checks(capsys, *argv, "--page-origin", origin, code=0 if status == "pass" else 1)
        assert found["browser_cookie"]["status"] == status
        assert says in found["browser_cookie"]["detail"]
        assert reference_service.token not in json.dumps(found)
