"""The reference frontend (`wsconn serve` at /) in real Chromium, its connection behind Toxiproxy.

Chromium resolves the reference server's host:port to the session's proxy, so the page, its
WebSocket and its diagnostics' HTTP checks all cross `wsconn_proxy`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pytest_wsconn.browser.page import (
    BrowserPage,
    WsconnBrowser,
    assert_page_connects,
    assert_page_reconnects,
    assert_page_shows,
)
from pytest_wsconn.closecodes import classify_close
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.stack import Stack
from pytest_wsconn.stack.reference_process import ReferenceProcess
from pytest_wsconn.timing import scaled
from pytest_wsconn.tokens import Tokens
from pytest_wsconn.toxiproxy import Proxy

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("chromium_present")]
Opener = Callable[..., Awaitable[BrowserPage]]

MAX_DELAY = 0.5  # the page's backoff cap in these tests: a retry comes within it
SLACK = 2.0


@pytest.fixture
def open_frontend(
    wsconn_browser: WsconnBrowser, wsconn_stack: Stack, wsconn_token: Tokens
) -> Opener:
    async def open_frontend(query: str = f"initial=0.1&max_delay={MAX_DELAY}") -> BrowserPage:
        token = wsconn_token().reveal()
        return await wsconn_browser.goto(f"{wsconn_stack.http_url}/?token={token}&{query}")

    return open_frontend


async def screenshot(page: BrowserPage, folder: Path, state: str) -> None:
    """Keep what the page looked like in this state as ``frontend-<state>.png`` in ``folder``
    (the ``screenshots`` fixture: a test artifact that outlives the run)."""
    path = folder / f"frontend-{state}.png"
    await page.page.screenshot(path=path)
    assert path.stat().st_size > 0, f"the screenshot {path} is empty"


async def states(page: BrowserPage) -> list[str]:
    transitions = await page.page.evaluate("wsconnApp.transitions()")
    return [t["target"] for t in transitions]


class TestStatus:
    async def test_open_then_reconnecting_then_open_after_down(
        self, open_frontend: Opener, wsconn_proxy: Proxy, screenshots: Path
    ) -> None:
        """Proxy down: "reconnecting" with retries; up again: "open" within the backoff cap."""
        page = await open_frontend()
        await assert_page_connects(page)
        await assert_page_shows(page, "#status", "open")
        await screenshot(page, screenshots, "open")
        with wsconn_proxy.down():
            await assert_page_shows(page, "#status", "reconnecting")
            await assert_page_shows(page, "#trouble-message", "1006")
            await screenshot(page, screenshots, "reconnecting")
        await assert_page_reconnects(page, within=scaled(MAX_DELAY + SLACK))
        await assert_page_shows(page, "#status", "open")
        assert (await states(page))[:3] == ["connecting", "open", "reconnecting"]
        assert (await states(page))[-1] == "open"

    async def test_policy_violation_fails_with_the_auth_message_and_no_retry(
        self, open_frontend: Opener, screenshots: Path
    ) -> None:
        """A 1008 close: "failed", the catalogue's message and the server's reason; no retry."""
        page = await open_frontend()
        await assert_page_connects(page)
        control = '{"control": "close", "code": 1008, "reason": "token expired"}'
        await page.page.evaluate("text => wsconnApp.send(text)", control)
        await assert_page_shows(page, "#status", "failed")
        await assert_page_shows(page, "#trouble-message", classify_close(1008).message)
        await assert_page_shows(page, "#trouble-message", "token expired")
        await assert_page_shows(page, "#trouble-steps", "refresh the token")
        await screenshot(page, screenshots, "failed")
        retried = await page.wait_for(
            lambda: [e for e in page.events if e.kind == "connecting" and e.socket != 1] or None,
            scaled(3 * MAX_DELAY),
        )
        assert retried is None, f"it retried after 1008\n{page.report()}"
        assert await states(page) == ["connecting", "open", "failed"]


class TestRecovery:
    async def test_fallback_then_reconnect_now(
        self, open_frontend: Opener, wsconn_proxy: Proxy, screenshots: Path
    ) -> None:
        """After a failure with fallback_after=1 the page waits 60 s in fallback (live features
        off); "Reconnect now" opens it at once."""
        page = await open_frontend("initial=60&max_delay=60&fallback_after=1")
        await assert_page_connects(page)
        with wsconn_proxy.down():
            await assert_page_shows(page, "#status", "fallback")
        await assert_page_shows(page, "#fallback", "live features are")
        assert await page.page.is_disabled("#send")
        await screenshot(page, screenshots, "fallback")
        await page.page.click("#reconnect")
        await assert_page_shows(page, "#status", "open", timeout=scaled(SLACK))
        assert await page.page.is_enabled("#send")
        assert await page.page.is_hidden("#fallback")


class TestDiagnostics:
    async def test_diagnostics_pass(self, open_frontend: Opener, screenshots: Path) -> None:
        """Health, the WebSocket health report, a handshake and an echo, all from the browser."""
        page = await open_frontend()
        await assert_page_connects(page)
        await page.page.click("#run-diagnostics")
        await assert_page_shows(page, "#diagnostics-verdict", "all checks passed")
        await assert_page_shows(page, "#diagnostics-report", "round trip: echo in")
        await screenshot(page, screenshots, "diagnostics")

    async def test_diagnostics_show_the_failing_check(
        self, open_frontend: Opener, wsconn_proxy: Proxy
    ) -> None:
        """With the service unreachable, the first check fails and the verdict names it."""
        page = await open_frontend()
        await assert_page_connects(page)
        with wsconn_proxy.down():
            await page.page.click("#run-diagnostics")
            await assert_page_shows(
                page, "#diagnostics-verdict", "failed: GET /health", timeout=scaled(30)
            )
        await assert_page_shows(page, "#diagnostics-report li.fail", "GET /health:")

    async def test_diagnostics_name_the_failing_check_when_the_backend_is_stopped(
        self, wsconn_browser: WsconnBrowser, screenshots: Path
    ) -> None:
        """The page is up but the reference server process behind it has stopped (SIGTERM, then
        reaped): the panel fails at its first check, names it, and skips the round trip."""
        with ReferenceProcess() as server:
            ws_url = server.wait_ready(scaled(10))
            token = reference_token(server.secret, "valid")
            http_url = ws_url.replace("ws://", "http://").removesuffix("/ws")
            page = await wsconn_browser.goto(f"{http_url}/?token={token}&initial=0.1&max_delay=1")
            await assert_page_connects(page)
            server.stop()
            assert server.child.process.poll() is not None, "the server process is still running"
        await assert_page_shows(page, "#status", "reconnecting")
        await page.page.click("#run-diagnostics")
        await assert_page_shows(page, "#diagnostics-verdict", "failed: GET /health,")
        await assert_page_shows(page, "#diagnostics-report li.fail", "GET /health:")
        await assert_page_shows(
            page, "#diagnostics-report", "round trip: skipped: no connection to send on"
        )
        assert await page.page.locator("#diagnostics-report li.pass").count() == 0
        await screenshot(page, screenshots, "backend-stopped")


class TestMixedContent:
    async def test_ws_from_an_https_page_is_reported_as_mixed_content(
        self, wsconn_browser: WsconnBrowser, wsconn_stack: Stack, wsconn_token: Tokens
    ) -> None:
        """The frontend at an https origin told to dial ws://: Chromium refuses it before any
        request, and the page says mixed content, with the fix, and does not retry."""
        # Not loopback: Chromium trusts ws://127.0.0.1 and ws://localhost even from https.
        ws = "ws://backend.test/ws"
        page = await wsconn_browser.goto(
            f"https://app.test/?token={wsconn_token().reveal()}&ws={ws}",
            served_by=wsconn_stack.http_url,
        )
        await assert_page_shows(page, "#status", "failed")
        await assert_page_shows(page, "#trouble-message", "mixed content")
        await assert_page_shows(page, "#trouble-steps", "use wss://")
        blocked = [e for e in page.events if e.kind == "blocked"]
        assert len(blocked) == 1, page.report()
        assert "SecurityError" in blocked[0].text
        assert not [e for e in page.events if e.kind == "connecting"], page.report()
        assert any("Mixed Content" in e.text for e in page.events if e.kind == "console")
