"""The ``wsconn_browser`` fixture; Playwright is imported only when a test asks for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from pytest_wsconn import config as cfg
from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.stack import Stack
from pytest_wsconn.state import per_test
from pytest_wsconn.toxiproxy import Proxy

if TYPE_CHECKING:
    from pytest_wsconn.browser.page import WsconnBrowser


@pytest_asyncio.fixture(loop_scope="function")
async def wsconn_browser(
    request: pytest.FixtureRequest,
    wsconn_stack: Stack,
    wsconn_proxy: Proxy,
    wsconn_settings: cfg.Settings,
) -> AsyncIterator[WsconnBrowser]:
    """Chromium pages for this test; their WebSockets to the service go through ``wsconn_proxy``.

    ``await wsconn_browser.open(html, origin=...)`` shows a snippet at an origin of your choice,
    ``await wsconn_browser.goto(url)`` your frontend. Chromium resolves the service's host:port
    (``wsconn_browser.ws_url``) to the proxy, so ``wsconn_proxy`` faults hit the page's
    WebSocket. Each page's timeline lands in a failing test's report.
    """
    from pytest_wsconn.browser.page import launch_browser

    executable = wsconn_settings.browser_path or cfg.DEFAULT_CHROMIUM
    timelines = per_test(request.node).browser_pages
    async with contextlib.AsyncExitStack() as resources:
        try:
            browser = await resources.enter_async_context(
                launch_browser(executable, wsconn_stack.url, wsconn_stack.proxy_url, timelines)
            )
        except WsconnError as error:
            pytest.fail(f"pytest-wsconn: wsconn_browser: {error}", pytrace=False)
        yield browser
