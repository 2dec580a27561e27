"""Findings only a browser enforces, shown failing in a real one (Debian's Chromium).

`wsconn check` says an https page cannot open ws:// (mixed content), that a server must refuse
a foreign Origin, and that `*` with credentials breaks CORS. Here Chromium, driven by
Playwright, meets each configuration and fails exactly that way.
"""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio
import trustme
from playwright.async_api import Browser, async_playwright
from support import unavailable

from pytest_wsconn.configcheck.env import EnvNames, check_dotenv, parse_dotenv
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.stack.reference_process import REFERENCE_COMMAND, ReferenceProcess
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.asyncio

CHROMIUM = "/usr/bin/chromium"
LOOPBACK_NAME = "wsconn-server.test"
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # this machine's closed network refuses Google's hosts
    "--disable-component-update",
    "--disable-sync",
    "--ignore-certificate-errors",  # the test page's certificate comes from a throwaway CA
    # A name for loopback that is not "localhost": browsers trust localhost even from https
    # pages, so mixed content only shows with another host name. No DNS is asked.
    f"--host-resolver-rules=MAP {LOOPBACK_NAME} 127.0.0.1",
]
# Opens a WebSocket and reports how it went: "open", "close <code>", or the exception's name.
OPEN_SCRIPT = """url => new Promise(resolve => {
    let ws;
    try { ws = new WebSocket(url); } catch (e) { resolve(e.name); return; }
    ws.onopen = () => { resolve("open"); ws.close(); };
    ws.onclose = event => resolve(`close ${event.code}`);
})"""
FETCH_SCRIPT = """url => fetch(url, {credentials: "include"})
    .then(response => `status ${response.status}`, error => error.name)"""


def findings(text: str, frontend: str) -> list[str]:
    return [f.rule for f in check_dotenv(parse_dotenv(text), EnvNames(), frontend)]


class _Page(http.server.BaseHTTPRequestHandler):
    """Serves a blank page, and a CORS answer with `*` plus credentials on /api."""

    def do_GET(self) -> None:
        if self.path == "/api":
            body, kind = b'{"ok": true}', "application/json"
        else:
            body, kind = b"<!doctype html><title>wsconn</title>", "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/api":
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Credentials", "true")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read results, not access logs."""


@pytest.fixture(scope="module")
def chromium() -> str:
    if shutil.which(CHROMIUM) is None:
        unavailable(f"{CHROMIUM} not found: apt-get install chromium (scripts/bootstrap does)")
    return CHROMIUM


@pytest.fixture(scope="module")
def serve_page() -> Iterator[Callable[[bool], str]]:
    """Start page servers on loopback (https with a throwaway certificate, or plain http)."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(tls: bool) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        if tls:
            leaf = trustme.CA().issue_cert("localhost")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            leaf.configure_cert(context)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"{'https' if tls else 'http'}://localhost:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest_asyncio.fixture(loop_scope="function")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def run_in_page(browser: Browser, page_url: str, script: str, arg: str) -> str:
    page = await browser.new_page()
    try:
        await page.goto(page_url, timeout=scaled(10) * 1000)
        result: str = await page.evaluate(script, arg)
    finally:
        await page.close()
    return result


def foreign_origin_refusals(ws_url: str) -> int:
    """How many handshakes the reference server refused for their Origin (its health JSON)."""
    health = ws_url.replace("ws://", "http://").replace("/ws", "/health/websocket")
    with urllib.request.urlopen(health, timeout=scaled(5)) as answer:  # noqa: S310 - loopback
        refused: int = json.load(answer)["rejected"].get("foreign_origin", 0)
    return refused


@pytest.fixture(scope="module")
def reference(serve_page: Callable[[bool], str]) -> Iterator[tuple[str, str, str]]:
    """The reference server allowing exactly one plain-http page origin: (ws url, token, page)."""
    page = serve_page(False)
    with ReferenceProcess((*REFERENCE_COMMAND, "--allowed-origin", page)) as process:
        url = process.wait_ready(scaled(10))
        yield url, reference_token(process.secret, "valid"), page


class TestMixedContent:
    async def test_https_page_cannot_open_ws(
        self,
        browser: Browser,
        serve_page: Callable[[bool], str],
        reference: tuple[str, str, str],
    ) -> None:
        """ws:// from an https page is flagged, and Chromium refuses it before any request."""
        url, token, allowed_page = reference
        url = url.replace("127.0.0.1", LOOPBACK_NAME)
        https_page = serve_page(True)
        assert "env-scheme-mismatch" in findings(f"VITE_WS_URL={url}\n", https_page)
        target = f"{url}?token={token}"
        assert await run_in_page(browser, https_page, OPEN_SCRIPT, target) == "SecurityError"
        assert await run_in_page(browser, allowed_page, OPEN_SCRIPT, target) == "open"


class TestOrigin:
    async def test_foreign_page_is_refused(
        self,
        browser: Browser,
        serve_page: Callable[[bool], str],
        reference: tuple[str, str, str],
    ) -> None:
        """A page whose origin is not allowed is flagged, and the server refuses its browser."""
        url, token, _ = reference
        foreign_page = serve_page(False)
        env = f"VITE_WS_URL={url}\nALLOWED_ORIGINS=http://localhost:1\n"
        assert "env-cors-origin-missing" in findings(env, foreign_page)
        before = foreign_origin_refusals(url)
        result = await run_in_page(browser, foreign_page, OPEN_SCRIPT, f"{url}?token={token}")
        assert result == "close 1006"  # browsers hide the 403 behind a generic failure
        assert foreign_origin_refusals(url) == before + 1


class TestCredentials:
    async def test_wildcard_with_credentials_fails_in_the_browser(
        self, browser: Browser, serve_page: Callable[[bool], str]
    ) -> None:
        """`*` with credentials is flagged, and Chromium rejects such a credentialed fetch."""
        env = "CORS_ORIGINS=*\nCORS_ALLOW_CREDENTIALS=true\n"
        page, api = serve_page(False), serve_page(False)
        assert "env-cors-wildcard-credentials" in findings(env, page)
        assert await run_in_page(browser, page, FETCH_SCRIPT, f"{api}/api") == "TypeError"
