"""Browser checks (opt-in): Chromium at your frontend's origin connects, at a foreign one not.

They run only with ``--wsconn-frontend-origin URL`` (the origin your frontend is served from)
and need Chromium and the ``[browser]`` extra. The page's WebSocket goes through the session's
Toxiproxy like every other connection; the token goes where ``--wsconn-auth`` says (a cookie of
the service's own for ``cookie:<name>``; a browser cannot send an Authorization header).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from pytest_wsconn import Tokens
from pytest_wsconn.client import apply_auth
from pytest_wsconn.config import Settings
from pytest_wsconn.timing import scaled

if TYPE_CHECKING:
    from pytest_wsconn.browser.page import BrowserPage, WsconnBrowser

pytestmark = [pytest.mark.asyncio, pytest.mark.wsconn_browser_check]

FOREIGN_PAGE = "http://wsconn-foreign-page.invalid"
"""A foreign page: ``.invalid`` is no real site (RFC 2606); http, so that a ws:// service is
refused for its Origin, never blocked as mixed content."""
REFUSED_WITHIN = 5.0  # seconds for the foreign page's WebSocket to be refused


async def open_from(
    browser: WsconnBrowser, origin: str, settings: Settings, tokens: Tokens
) -> BrowserPage:
    """A page at ``origin`` opening one WebSocket to the service with a valid token."""
    if settings.auth.kind == "header":
        pytest.skip("--wsconn-auth=header: a browser cannot send an Authorization header")
    secret = tokens.get() if settings.auth.kind != "none" else None
    token = secret.reveal() if secret is not None else None
    in_cookie = settings.auth.kind == "cookie"
    url, _, protocols = apply_auth(browser.ws_url, settings.auth, None if in_cookie else token, ())
    if in_cookie and token:
        await browser.set_service_cookie(settings.auth.name, token)
    opener = f"<script>new WebSocket({json.dumps(url)}, {json.dumps(protocols)});</script>"
    return await browser.open(opener, origin=origin)


async def test_browser_at_frontend_origin_connects(
    wsconn_browser: WsconnBrowser, wsconn_settings: Settings, wsconn_token: Tokens
) -> None:
    """A Chromium page at --wsconn-frontend-origin opens a WebSocket to the service."""
    from pytest_wsconn.browser.page import assert_page_connects

    assert wsconn_settings.frontend_origin is not None, "deselected without it"
    page = await open_from(
        wsconn_browser, wsconn_settings.frontend_origin, wsconn_settings, wsconn_token
    )
    await assert_page_connects(page)


async def test_browser_at_foreign_origin_is_refused(
    wsconn_browser: WsconnBrowser, wsconn_settings: Settings, wsconn_token: Tokens
) -> None:
    """The same page at a foreign origin is refused: its upgrade is sent and never opens.

    Control first: the frontend origin's page connects, so the refusal is the Origin's.
    """
    from pytest_wsconn.browser.page import assert_page_connects
    from pytest_wsconn.browser.timeline import browser_refusal, handshakes, opens

    assert wsconn_settings.frontend_origin is not None, "deselected without it"
    control = await open_from(
        wsconn_browser, wsconn_settings.frontend_origin, wsconn_settings, wsconn_token
    )
    await assert_page_connects(control)
    page = await open_from(wsconn_browser, FOREIGN_PAGE, wsconn_settings, wsconn_token)
    limit = scaled(REFUSED_WITHIN)
    ended = await page.wait_for(
        lambda: next((e for e in page.events if e.kind in {"open", "close"}), None), limit
    )
    if ended is None:
        pytest.fail(f"the foreign page's WebSocket neither opened nor closed within {limit:.1f} s")
    refusal = browser_refusal(page.events)
    assert refusal is None, f"the browser blocked it, not the server: {refusal}\n{page.report()}"
    assert handshakes(page.events), f"no upgrade request was sent\n{page.report()}"
    assert not opens(page.events), (
        f"a page at {FOREIGN_PAGE} opened a WebSocket: the service does not check the Origin "
        f"(Cross-Site WebSocket Hijacking)\n{page.report()}"
    )
