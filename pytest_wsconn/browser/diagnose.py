"""``wsconn diagnose --browser``: open the WebSocket from a real Chromium page, report what it did.

The I/O shell around ``browser.verdicts``: Chromium (driven by Playwright, never downloaded)
shows a page at ``--page-origin`` with the Content-Security-Policy the real page sends there (read
first; none if nothing answers), holding the token where ``auth`` says (a cookie for the
service's host, with the SameSite given, for ``cookie:<name>``), opens one WebSocket and waits,
with a deadline, until it opens, closes or is blocked. The token never reaches a report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pytest_wsconn.browser.page import WsconnBrowser, error_line, launch_browser
from pytest_wsconn.browser.timeline import BrowserEvent, PageTimeline
from pytest_wsconn.browser.verdicts import BrowserProbe, SameSite, browser_checks
from pytest_wsconn.client import apply_auth
from pytest_wsconn.config import DEFAULT_CHROMIUM, AuthMode, origin_of
from pytest_wsconn.exceptions import BrowserError, WsconnError
from pytest_wsconn.redact import Secret, redact_url, reveal
from pytest_wsconn.results import CheckResult
from pytest_wsconn.verdicts import redacted

if TYPE_CHECKING:
    from playwright.async_api import APIRequestContext

_PAGE = "<!doctype html><title>wsconn diagnose</title>"
# Run from DevTools, not as a page script: the page's CSP (script-src) must not stop the probe,
# while its connect-src still governs the WebSocket. A refused constructor is recorded.
_OPEN = "([url, protocols]) => { try { new WebSocket(url, protocols); } catch (error) {} }"


async def _page_csp(
    context: APIRequestContext, page_url: str, timeout: float
) -> tuple[str | None, str | None]:
    """The Content-Security-Policy the real page at ``page_url`` sends, or why none was read."""
    from playwright.async_api import Error as PlaywrightError

    try:
        response = await context.get(page_url, timeout=timeout * 1000)
    except PlaywrightError as exc:
        return None, error_line(exc)
    return response.headers.get("content-security-policy"), None


async def _probe(
    browser: WsconnBrowser,
    page_url: str,
    ws_url: str,
    protocols: list[str],
    timeout: float,
) -> tuple[list[BrowserEvent], str | None, str | None]:
    """Open the WebSocket from a page at ``page_url``: its events, the CSP, why none was read."""
    from playwright.async_api import Error as PlaywrightError

    csp, problem = await _page_csp(browser.context.request, page_url, timeout)
    try:
        page = await browser.open(
            _PAGE,
            origin=origin_of(page_url),
            path=urlsplit(page_url).path or "/",
            headers={} if csp is None else {"Content-Security-Policy": csp},
        )
        await page.page.evaluate(_OPEN, [ws_url, protocols])
    except PlaywrightError as exc:
        raise BrowserError(f"Chromium could not show {page_url}: {error_line(exc)}") from None
    settled = {"open", "close", "blocked", "csp"}
    await page.wait_for(
        lambda: True if any(e.kind in settled for e in page.events) else None, timeout
    )
    return list(page.events), csp, problem


async def browser_diagnose(
    url: str,
    page_url: str,
    *,
    auth: AuthMode,
    token: str | Secret | None = None,
    timeout: float = 5.0,
    same_site: SameSite = "Lax",
    dial: tuple[str, int] | None = None,
    executable: str = DEFAULT_CHROMIUM,
) -> list[CheckResult]:
    """The browser checks for a WebSocket to ``url`` opened by a page at ``page_url``.

    ``dial`` sends Chromium's connections to ``url``'s host:port to that address instead.
    """
    secret = reveal(token)
    ws_url, _, protocols = apply_auth(url, auth, secret if auth.kind != "cookie" else None, ())
    if dial is None:
        proxy = None
    else:
        host = f"[{dial[0]}]" if ":" in dial[0] else dial[0]
        proxy = f"ws://{host}:{dial[1]}/"
    timelines: list[PageTimeline] = []
    shown = redact_url(url, [auth.name] if auth.kind == "query" else [])
    try:
        async with launch_browser(executable, url, proxy, timelines) as browser:
            if auth.kind == "cookie" and secret:
                await browser.set_service_cookie(auth.name, secret, same_site)
            events, csp, problem = await _probe(browser, page_url, ws_url, protocols, timeout)
    except WsconnError as error:
        hint = f" ({error.hint})" if error.hint else ""
        return [redacted(CheckResult("browser", "fail", f"{error.message}{hint}"), token)]
    probe = BrowserProbe(page_url, shown, auth, events, timeout, csp, problem, same_site)
    return [redacted(result, token) for result in browser_checks(probe)]
