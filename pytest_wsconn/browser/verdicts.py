"""What Chromium did with a WebSocket opened from a page, as ``wsconn diagnose --browser`` checks.

Pure: the shell (``browser.diagnose``) opens one WebSocket from a page at ``--page-origin`` and
hands over the page's timeline; each rule only a browser enforces becomes one ``CheckResult``::

    browser_mixed_content -> browser_csp -> browser_handshake -> browser_cookie (cookie auth)

A WebSocket the browser blocked before any request (mixed content, CSP ``connect-src``) skips
the checks that need a request, so the first failure is the one to fix.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Sequence
from typing import Literal, get_args
from urllib.parse import urlsplit

from pytest_wsconn.browser.timeline import BrowserEvent, browser_refusal, csp_blocks, handshakes
from pytest_wsconn.config import AuthMode, origin_of
from pytest_wsconn.results import CheckResult

SameSite = Literal["Lax", "Strict", "None"]
SAME_SITE: tuple[SameSite, ...] = get_args(SameSite)
_HTTP_STATUS = re.compile(r"Unexpected response code: (\d{3})")


@dataclasses.dataclass(frozen=True)
class BrowserProbe:
    """One WebSocket opened by Chromium from a page, and what the page was served with."""

    page_url: str
    ws_url: str  # redacted
    auth: AuthMode
    events: Sequence[BrowserEvent]
    timeout: float
    csp: str | None = None  # the Content-Security-Policy the real page sent, if any
    page_problem: str | None = None  # why the real page (and so its CSP) could not be read
    same_site: SameSite = "Lax"  # of the auth cookie, when auth is cookie:<name>


def site(url: str) -> str:
    """The schemeful site of ``url`` (scheme + registrable domain) as SameSite compares it.

    Approximated without the Public Suffix List: an IP address or single label is its own
    site, otherwise the last two labels (``app.example.com`` -> ``example.com``).
    """
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = ".".join(host.split(".")[-2:])
    return f"{scheme}://{host}"


def _mixed_content(probe: BrowserProbe) -> CheckResult:
    blocked = next((e for e in probe.events if e.kind == "blocked"), None)
    if blocked is not None and "SecurityError" in blocked.text:
        detail = (
            f"Chromium refused {probe.ws_url} from the https page {probe.page_url}: "
            "mixed content; serve the WebSocket over wss://"
        )
        return CheckResult("browser_mixed_content", "fail", detail, fields={"text": blocked.text})
    if urlsplit(probe.page_url).scheme != "https":
        return CheckResult("browser_mixed_content", "pass", "the page is http: no mixed content")
    if urlsplit(probe.ws_url).scheme == "wss":
        return CheckResult("browser_mixed_content", "pass", "wss:// from an https page")
    detail = (
        "Chromium let this https page open ws:// because it trusts loopback hosts; "
        "from a deployed host's page it would be blocked as mixed content: use wss://"
    )
    return CheckResult("browser_mixed_content", "warn", detail)


def _csp(probe: BrowserProbe) -> CheckResult:
    block = next(iter(csp_blocks(probe.events)), None)
    if block is not None:
        detail = (
            f"the page's Content-Security-Policy blocked {block.url} ({block.text}): add "
            f"{origin_of(probe.ws_url)} to connect-src"
        )
        return CheckResult("browser_csp", "fail", detail, fields={"csp": probe.csp})
    if probe.page_problem is not None:
        detail = f"skipped: the page could not be read ({probe.page_problem}), so no CSP applied"
        return CheckResult("browser_csp", "skipped", detail)
    if probe.csp is None:
        return CheckResult("browser_csp", "pass", "the page sent no Content-Security-Policy")
    detail = "the page's Content-Security-Policy allows the WebSocket"
    return CheckResult("browser_csp", "pass", detail, fields={"csp": probe.csp})


def _handshake(probe: BrowserProbe) -> CheckResult:
    sent = next(iter(handshakes(probe.events)), None)
    origin = sent.origin if sent is not None else ""
    fields: dict[str, object] = {"origin": origin}
    started = next((e.at for e in probe.events if e.kind == "connecting"), None)
    ended = next((e.at for e in probe.events if e.kind in {"open", "close"}), None)
    took = ended - started if started is not None and ended is not None else 0.0
    if any(e.kind == "open" for e in probe.events):
        detail = f"opened with Origin {origin}"
        return CheckResult("browser_handshake", "pass", detail, took, fields=fields)
    status = next(
        (int(m.group(1)) for e in probe.events if (m := _HTTP_STATUS.search(e.text))), None
    )
    close = next((e for e in probe.events if e.kind == "close"), None)
    if status is not None:
        fields["http_status"] = status
        detail = f"the server refused the browser's upgrade with HTTP {status} (Origin {origin})"
        if status == 403:
            detail += ": the Origin is not allowed (or the token is refused: see origin, auth)"
        if probe.auth.kind == "header":
            detail += "; a browser cannot send an Authorization header (auth=header)"
    elif close is not None:
        detail = f"closed before it opened: {close.describe()}"
    elif sent is None:
        detail = f"Chromium sent no upgrade request within {probe.timeout:g} s"
    else:
        detail = f"no answer to the upgrade within {probe.timeout:g} s"
    return CheckResult("browser_handshake", "fail", detail, took, fields=fields)


def _cookie(probe: BrowserProbe) -> CheckResult:
    name = probe.auth.name
    sent = next(iter(handshakes(probe.events)), None)
    if sent is None:
        return CheckResult("browser_cookie", "skipped", "skipped: no upgrade request was sent")
    if name in sent.cookies:
        detail = f"cookie {name} was sent with the upgrade (SameSite={probe.same_site})"
        return CheckResult("browser_cookie", "pass", detail)
    page_site, ws_site = site(probe.page_url), site(probe.ws_url)
    if probe.same_site != "None" and page_site != ws_site:
        why = (
            f"SameSite={probe.same_site} cookies are not sent from another site (page "
            f"{page_site}, service {ws_site}): serve both from one site, or set SameSite=None; "
            "Secure and use wss://"
        )
    elif probe.same_site == "None" and urlsplit(probe.ws_url).scheme != "wss":
        why = "SameSite=None needs Secure, and a Secure cookie is never sent over ws://"
    else:
        why = "its domain, path or port does not match the WebSocket URL"
    detail = f"Chromium did not send cookie {name}: {why}"
    return CheckResult(
        "browser_cookie", "fail", detail, fields={"cookies_sent": list(sent.cookies)}
    )


def browser_checks(probe: BrowserProbe) -> list[CheckResult]:
    """The browser's checks, in order; those needing a request are skipped after a block."""
    results = [_mixed_content(probe), _csp(probe)]
    refusal = browser_refusal(probe.events)
    later = ["browser_handshake", *(["browser_cookie"] if probe.auth.kind == "cookie" else [])]
    if refusal is not None:
        skip = "skipped: the browser blocked the WebSocket before any request"
        return [*results, *(CheckResult(name, "skipped", skip) for name in later)]
    results.append(_handshake(probe))
    if probe.auth.kind == "cookie":
        results.append(_cookie(probe))
    return results
