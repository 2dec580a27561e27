"""Chromium driven by Playwright: pages whose WebSockets are recorded and routed through the proxy.

The I/O shell around ``timeline``: it launches the browser (never downloading one), installs the
recorder script, turns the page's reports into ``BrowserEvent`` values and waits on them with
deadlines. Imported only by the ``wsconn_browser`` fixture, so Playwright loads only when used.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pytest_wsconn.browser.timeline import (
    BrowserEvent,
    PageTimeline,
    browser_refusal,
    handshake_event,
    handshakes,
    opens,
    parse_event,
    reconnect_seconds,
    route_rule,
)
from pytest_wsconn.browser.verdicts import SameSite
from pytest_wsconn.config import target_address
from pytest_wsconn.events import emit
from pytest_wsconn.exceptions import BrowserError
from pytest_wsconn.redact import redact_url
from pytest_wsconn.timing import scaled

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, ConsoleMessage, Page, Route

T = TypeVar("T")
CHROMIUM_ARGS = (
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls home to Google's hosts
    "--disable-component-update",
    "--disable-sync",
    # Pages at a test-chosen origin are answered by Playwright, not by a server on an address;
    # Chromium's Local Network Access checks would treat them as public and refuse every
    # WebSocket to loopback, which no deployed frontend meets.
    "--disable-features=LocalNetworkAccessChecks",
)
RECORDER = resources.files("pytest_wsconn.browser").joinpath("recorder.js").read_text()


class BrowserPage:
    """A Chromium page and what its WebSockets did (``events``); ``page`` is Playwright's."""

    def __init__(self, page: Page, timeline: PageTimeline) -> None:
        self.page = page
        self.timeline = timeline
        self._changed = asyncio.Event()

    @property
    def events(self) -> list[BrowserEvent]:
        """The page's WebSocket events and console errors so far, in order."""
        return self.timeline.events

    def record(self, event: BrowserEvent) -> None:
        """Add an event (from the recorder or the console) and wake whoever waits."""
        self.timeline.events.append(event)
        emit(f"browser.{event.kind}", socket=event.socket, url=event.url, code=event.code)
        self._changed.set()

    async def wait_for(self, check: Callable[[], T | None], timeout: float) -> T | None:
        """Wait until ``check()`` returns a value, or ``timeout`` seconds pass (then None)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (found := check()) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return found

    def report(self) -> str:
        """The page's timeline as the failure report shows it."""
        return self.timeline.render()


class WsconnBrowser:
    """Opens Chromium pages for a test; their WebSockets to ``ws_url`` go through the proxy."""

    def __init__(
        self, context: BrowserContext, ws_url: str, timelines: list[PageTimeline], timeout: float
    ) -> None:
        self._context = context
        self.ws_url = ws_url
        self._timelines = timelines
        self._timeout = timeout

    @property
    def context(self) -> BrowserContext:
        """Playwright's browser context of this test's pages: set cookies on it, say."""
        return self._context

    async def set_service_cookie(self, name: str, value: str, same_site: SameSite = "Lax") -> None:
        """A host-only cookie for ``ws_url``'s host and port, as the service's login would set
        it (Secure for wss://). The value is never recorded."""
        host, port = target_address(self.ws_url)
        secure = self.ws_url.lower().startswith("wss:")
        url = f"{'https' if secure else 'http'}://{host}:{port}/"
        await self._context.add_cookies(
            [{"name": name, "value": value, "url": url, "sameSite": same_site}]
        )

    async def open(
        self,
        html: str,
        *,
        origin: str = "http://localhost",
        path: str = "/",
        headers: Mapping[str, str] | None = None,
    ) -> BrowserPage:
        """A page showing ``html`` at ``origin`` + ``path`` (Playwright answers it; no server),
        with the response ``headers`` given (a ``Content-Security-Policy``, say).

        The default origin, ``http://localhost``, is one the reference server allows.
        """
        url = f"{origin.rstrip('/')}{path}"
        sent = {"content-type": "text/html; charset=utf-8", **(headers or {})}

        async def answer(route: Route) -> None:
            await route.fulfill(body=html, headers=sent)

        page = await self._new_page(url)
        await page.page.route(url, answer)
        await page.page.goto(url, timeout=self._timeout * 1000)
        return page

    async def goto(self, url: str, *, served_by: str | None = None) -> BrowserPage:
        """A page at ``url``: your running frontend.

        ``served_by`` (a base URL such as ``http://127.0.0.1:5173``) answers every request to
        ``url``'s origin from there instead: your frontend as the browser would meet it at
        another origin, e.g. behind https.
        """
        page = await self._new_page(url)
        if served_by is not None:
            origin = urlunsplit((*urlsplit(url)[:2], "", "", ""))
            base = served_by.rstrip("/")

            async def relay(route: Route) -> None:
                parts = urlsplit(route.request.url)
                target = urlunsplit(("", "", parts.path, parts.query, ""))
                await route.fulfill(response=await route.fetch(url=f"{base}{target}"))

            await page.page.route(f"{origin}/**", relay)
        await page.page.goto(url, timeout=self._timeout * 1000)
        return page

    async def _new_page(self, url: str) -> BrowserPage:
        playwright_page = await self._context.new_page()
        timeline = PageTimeline(redact_url(url), time.monotonic())
        self._timelines.append(timeline)
        page = BrowserPage(playwright_page, timeline)

        def on_report(payload: Mapping[str, object]) -> None:
            page.record(parse_event(payload, time.monotonic()))

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                page.record(parse_event({"text": message.text}, time.monotonic()))

        await _watch_handshakes(self._context, page)
        await playwright_page.expose_function("__wsconnRecord", on_report)
        await playwright_page.add_init_script(RECORDER)
        playwright_page.on("console", on_console)
        playwright_page.on(
            "pageerror",
            lambda error: page.record(parse_event({"text": f"uncaught {error}"}, time.monotonic())),
        )
        return page


def error_line(exc: Exception) -> str:
    """The first line of Playwright's (often many-line) error, or the error's type."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextlib.asynccontextmanager
async def launch_browser(
    executable: str, service_url: str, proxy_url: str | None, timelines: list[PageTimeline]
) -> AsyncIterator[WsconnBrowser]:
    """Chromium at ``executable``, resolving the service's host:port to the proxy's (if any)."""
    try:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright
    except ImportError:
        raise BrowserError(
            "Playwright is not installed",
            hint="pip install 'pytest-wsconn[browser]' (it drives your Chromium; "
            "no `playwright install` needed)",
        ) from None
    rules = (
        ()
        if proxy_url is None
        else (f"--host-resolver-rules={route_rule(service_url, proxy_url)}",)
    )
    args = (*CHROMIUM_ARGS, *rules)
    async with async_playwright() as driver:
        try:
            browser = await driver.chromium.launch(executable_path=executable, args=args)
        except PlaywrightError as exc:
            raise BrowserError(
                f"Chromium at {executable} did not start: {error_line(exc)}",
                hint="apt-get install chromium, or pass --wsconn-browser-path PATH "
                "(wsconn diagnose: --browser-path PATH)",
            ) from None
        try:
            context = await browser.new_context()
            yield WsconnBrowser(context, service_url, timelines, scaled(10))
        finally:
            await browser.close()


async def _watch_handshakes(context: BrowserContext, page: BrowserPage) -> None:
    """Record each WebSocket upgrade request Chromium sends (Origin, cookie names), read from
    the DevTools protocol: page scripts cannot see these headers."""
    session = await context.new_cdp_session(page.page)
    urls: dict[str, str] = {}

    def created(event: Mapping[str, str]) -> None:
        urls[event["requestId"]] = event["url"]

    def sending(event: Mapping[str, Mapping[str, Mapping[str, str]]]) -> None:
        url = urls.get(str(event["requestId"]), "")
        page.record(handshake_event(event["request"]["headers"], url, time.monotonic()))

    session.on("Network.webSocketCreated", created)
    session.on("Network.webSocketWillSendHandshakeRequest", sending)
    await session.send("Network.enable")


def _failure(page: BrowserPage, what: str) -> AssertionError:
    return AssertionError(f"{what}\n{page.report()}")


async def assert_page_connects(page: BrowserPage, timeout: float | None = None) -> BrowserEvent:
    """The page opens a WebSocket within ``timeout`` seconds (default 10, scaled)."""
    __tracebackhide__ = True
    limit = scaled(10) if timeout is None else timeout
    opened = await page.wait_for(lambda: next(iter(opens(page.events)), None), limit)
    if opened is None:
        refusal = browser_refusal(page.events)
        why = f": {refusal}" if refusal else ""
        raise _failure(page, f"the page opened no WebSocket within {limit:.1f} s{why}")
    return opened


async def assert_page_reconnects(
    page: BrowserPage, within: float, *, since: float | None = None, timeout: float | None = None
) -> float:
    """After its first drop since ``since`` (monotonic; default: the page's start), the page
    opens a WebSocket again within ``within`` seconds. Waits at most ``timeout`` (default:
    ``within`` plus 10 s, scaled) for the drop and the reopening; returns the seconds it took."""
    __tracebackhide__ = True
    start = page.timeline.started if since is None else since
    limit = scaled(within + 10) if timeout is None else timeout
    took = await page.wait_for(lambda: reconnect_seconds(page.events, start), limit)
    if took is None:
        raise _failure(page, f"the page did not drop and reopen its WebSocket within {limit:.1f} s")
    if took > within:
        raise _failure(
            page, f"the page reopened its WebSocket after {took:.1f} s, not within {within:.1f} s"
        )
    return took


async def assert_page_shows(
    page: BrowserPage, selector: str, text: str, timeout: float | None = None
) -> None:
    """The element at ``selector`` shows ``text`` (a substring) within ``timeout`` seconds."""
    __tracebackhide__ = True
    from playwright.async_api import Error as PlaywrightError

    limit = scaled(10) if timeout is None else timeout
    locator = page.page.locator(selector)
    try:
        await locator.filter(has_text=text).first.wait_for(timeout=limit * 1000)
    except PlaywrightError:
        shown = await locator.all_inner_texts()
        seen = " | ".join(s.strip() for s in shown) if shown else "no such element"
        raise _failure(
            page, f"{selector} did not show {text!r} within {limit:.1f} s; it shows: {seen}"
        ) from None


async def assert_page_sends_cookie(
    page: BrowserPage, name: str, timeout: float | None = None
) -> BrowserEvent:
    """The page's first WebSocket upgrade request (within ``timeout`` s) carries cookie ``name``.

    Chromium sends a cookie with a WebSocket only when its rules allow it: SameSite=Lax/Strict
    cookies stay home when the page is on another site, Secure ones when the URL is ws://, and
    (origin-bound cookies) those set by another port.
    """
    __tracebackhide__ = True
    limit = scaled(10) if timeout is None else timeout
    sent = await page.wait_for(lambda: next(iter(handshakes(page.events)), None), limit)
    if sent is None:
        raise _failure(page, f"the page sent no WebSocket upgrade request within {limit:.1f} s")
    if name not in sent.cookies:
        raise _failure(
            page,
            f"the page's upgrade request to {sent.url} carried no cookie {name!r}: the browser "
            "withheld it (SameSite=Lax/Strict from another site, Secure over ws://, "
            "another domain, path or port)",
        )
    return sent
