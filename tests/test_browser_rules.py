"""What Chromium enforces on a page's WebSocket, as wsconn_browser records and asserts it.

A Content-Security-Policy ``connect-src`` block sends no request and fires no close event; a
cookie withheld for SameSite leaves no trace a page script can see. The timeline records both
(the block from the page, the upgrade request's Origin and cookie names from DevTools), and
``assert_page_connects`` / ``assert_page_sends_cookie`` fail naming them.
"""

from __future__ import annotations

import re

import pytest

from pytest_wsconn import assert_page_connects, assert_page_sends_cookie
from pytest_wsconn.browser.page import WsconnBrowser
from pytest_wsconn.browser.timeline import BrowserEvent, browser_refusal, handshake_event
from pytest_wsconn.config import target_address
from pytest_wsconn.tokens import Tokens

OPENER = "<script>window.ws = new WebSocket(%r);</script>"


class TestHandshakeEvents:
    def test_only_cookie_names_are_kept(self) -> None:
        """The upgrade request's Origin and cookie names are kept; values never are."""
        event = handshake_event(
            {"Origin": "http://app.test", "Cookie": "sid=s3cret; theme=dark"},
            "ws://h/ws?token=abc",
            1.0,
        )
        assert (event.origin, event.cookies, event.url) == (
            "http://app.test",
            ("sid", "theme"),
            "ws://h/ws?token=***",
        )
        assert "s3cret" not in repr(event)
        assert event.describe() == (
            "handshake to ws://h/ws?token=*** sent Origin http://app.test, cookies: sid, theme"
        )

    def test_browser_refusal_names_the_first_block(self) -> None:
        """A CSP block or a refused constructor is the reason a page never connected."""
        assert browser_refusal([BrowserEvent("open", 0.0, 1)]) is None
        csp = BrowserEvent("csp", 0.0, url="ws://h/ws", text="connect-src 'self'")
        assert browser_refusal([csp]) == (
            "the page's Content-Security-Policy (connect-src 'self') blocked ws://h/ws"
        )


def service_url(browser: WsconnBrowser, tokens: Tokens) -> str:
    return f"{browser.ws_url}?token={tokens().reveal()}"


@pytest.mark.asyncio
@pytest.mark.usefixtures("chromium_present")
class TestCsp:
    async def test_csp_block_fails_assert_page_connects_naming_it(
        self, wsconn_browser: WsconnBrowser, wsconn_token: Tokens
    ) -> None:
        """connect-src 'self' on the page blocks the service's port: the failure says so."""
        page = await wsconn_browser.open(
            OPENER % service_url(wsconn_browser, wsconn_token),
            headers={"Content-Security-Policy": "connect-src 'self'"},
        )
        with pytest.raises(AssertionError) as failure:
            await assert_page_connects(page, timeout=2.0)
        message = str(failure.value)
        assert re.search(
            r"opened no WebSocket within 2.0 s: the page's Content-Security-Policy "
            r"\(connect-src 'connect-src 'self''\) blocked ws://127\.0\.0\.1:\d+/ws\?token=\*\*\*",
            message,
        ), message
        assert "page CSP connect-src" in message, "the block is in the timeline"
        assert not any(e.kind == "handshake" for e in page.events), "no request was sent"

    async def test_csp_allowing_the_service_connects(
        self, wsconn_browser: WsconnBrowser, wsconn_token: Tokens
    ) -> None:
        """Control: connect-src naming the service lets the same page connect."""
        host, port = target_address(wsconn_browser.ws_url)
        page = await wsconn_browser.open(
            OPENER % service_url(wsconn_browser, wsconn_token),
            headers={"Content-Security-Policy": f"connect-src ws://{host}:{port}"},
        )
        await assert_page_connects(page)


@pytest.mark.asyncio
@pytest.mark.usefixtures("chromium_present")
class TestCookies:
    async def test_same_site_page_sends_the_lax_cookie(self, wsconn_browser: WsconnBrowser) -> None:
        """A page at the service's own origin sends its SameSite=Lax cookie with the upgrade.

        Same origin, port included: this Chromium binds cookies to the port that set them."""
        await wsconn_browser.set_service_cookie("sid", "s3cret-value", "Lax")
        host, port = target_address(wsconn_browser.ws_url)
        page = await wsconn_browser.open(
            OPENER % wsconn_browser.ws_url, origin=f"http://{host}:{port}"
        )
        sent = await assert_page_sends_cookie(page, "sid")
        assert sent.origin == f"http://{host}:{port}"
        assert "s3cret-value" not in page.report()

    async def test_cross_site_page_withholds_the_lax_cookie(
        self, wsconn_browser: WsconnBrowser
    ) -> None:
        """From http://localhost (another site than 127.0.0.1) Chromium withholds it."""
        await wsconn_browser.set_service_cookie("sid", "s3cret-value", "Lax")
        page = await wsconn_browser.open(OPENER % wsconn_browser.ws_url)
        with pytest.raises(AssertionError) as failure:
            await assert_page_sends_cookie(page, "sid")
        message = str(failure.value)
        assert "carried no cookie 'sid': the browser withheld it (SameSite=Lax/Strict" in message
        assert "sent Origin http://localhost, cookies: none" in message
