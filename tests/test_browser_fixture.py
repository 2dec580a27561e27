"""wsconn_browser: a real Chromium page whose WebSocket goes through the session's Toxiproxy.

The page here is a small frontend of the kind users write: a status line and reconnect code.
Proxy faults hit its connection, and it has to come back on its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from pytest_wsconn.browser.page import (
    BrowserPage,
    WsconnBrowser,
    assert_page_connects,
    assert_page_reconnects,
    assert_page_shows,
)
from pytest_wsconn.browser.timeline import (
    BrowserEvent,
    PageTimeline,
    joined_timeline,
    parse_event,
    reconnect_seconds,
    route_rule,
)
from pytest_wsconn.closecodes import Outcome
from pytest_wsconn.expect import ConnectionAttempt
from pytest_wsconn.timing import scaled
from pytest_wsconn.tokens import Tokens
from pytest_wsconn.toxiproxy import Proxy

# A frontend's reconnect loop: retry 100 ms after every close, status in #status.
FRONTEND = """<!doctype html><title>app</title><p id="status">connecting</p>
<script>
  const status = document.getElementById("status");
  function connect() {
    const ws = new WebSocket(%(url)r);
    window.ws = ws;
    ws.onopen = () => { status.textContent = "open"; };
    ws.onclose = () => { status.textContent = "reconnecting"; setTimeout(connect, 100); };
  }
  connect();
</script>"""


class TestTimeline:
    @pytest.mark.parametrize(
        "payload",
        [{}, {"kind": "nope", "socket": True, "code": "1000"}, {"kind": None, "url": 5}],
    )
    def test_odd_reports_are_kept_as_console_lines(self, payload: dict[str, object]) -> None:
        """A page's report is untrusted: odd fields are dropped, never raised on."""
        event = parse_event(payload, 1.0)
        assert (event.kind, event.socket, event.code) == ("console", None, None)

    def test_tokens_are_redacted_on_the_way_in(self) -> None:
        """A WebSocket URL and console text lose their token before they are stored."""
        event = parse_event(
            {"kind": "connecting", "socket": 1, "url": "ws://h/ws?token=abc.def.ghi"}, 0.0
        )
        assert event.url == "ws://h/ws?token=***"
        assert "abc" not in parse_event({"text": "failed: ws://h/ws?token=abcdefgh"}, 0).text

    def test_reconnect_seconds_counts_from_the_first_drop(self) -> None:
        """From the first close at or after ``since`` to the next open; None until both."""
        events = [
            BrowserEvent("open", 1.0, 1),
            BrowserEvent("close", 2.0, 1, code=1006),
            BrowserEvent("close", 2.5, 2, code=1006),
        ]
        assert reconnect_seconds(events, 0.0) is None
        events.append(BrowserEvent("open", 3.5, 3))
        assert reconnect_seconds(events, 0.0) == 1.5
        assert reconnect_seconds(events, 2.2) == 1.0

    @pytest.mark.parametrize(
        ("service", "rule"),
        [
            ("ws://127.0.0.1:8765/ws", "MAP 127.0.0.1:8765 127.0.0.1:9000"),
            ("wss://app.example.com/ws", "MAP app.example.com:443 127.0.0.1:9000"),
            ("ws://[::1]/ws", "MAP [::1]:80 127.0.0.1:9000"),
        ],
    )
    def test_route_rule_sends_the_service_to_the_proxy(self, service: str, rule: str) -> None:
        """Chromium's rule maps the service's host:port (default port filled in) to the proxy."""
        assert route_rule(service, "ws://127.0.0.1:9000/ws") == rule


def frontend(browser: WsconnBrowser, tokens: Tokens) -> str:
    return FRONTEND % {"url": f"{browser.ws_url}?token={tokens().reveal()}"}


def closes(events: Sequence[BrowserEvent]) -> list[BrowserEvent]:
    return [event for event in events if event.kind == "close"]


async def wait_closes(page: BrowserPage, count: int) -> list[BrowserEvent]:
    """Wait (10 s, scaled) until the page has seen ``count`` closes."""
    found = await page.wait_for(
        lambda: closes(page.events) if len(closes(page.events)) >= count else None, scaled(10)
    )
    assert found is not None, f"fewer than {count} closes\n{page.report()}"
    return found


class TestJoinedTimeline:
    def test_python_and_pages_interleave_by_time(self) -> None:
        """Attempts and page events are one list in time order, each line naming whose it is."""
        early = ConnectionAttempt(
            "ws://h/ws?token=***", 0.0, 10.0, outcome=Outcome.OPENED, ended=10.002
        )
        late = ConnectionAttempt("ws://h/ws", 0.0, 10.5, outcome=Outcome.REFUSED, ended=10.501)
        first = PageTimeline("http://a/", 10.1, [BrowserEvent("open", 10.2, 1)])
        second = PageTimeline("http://b/", 10.3)
        assert joined_timeline([early, late], [first, second]).splitlines() == [
            "browser 1: page http://a/",
            "browser 2: page http://b/",
            f"+  0.000s python #{early.id} connect to ws://h/ws?token=***",
            f"+  0.002s python #{early.id} opened in 2.0 ms",
            "              diagnosis: normal: The connection is open.",
            "+  0.200s browser 1 ws#1 open",
            "+  0.300s browser 2 (no WebSocket, no console error)",
            f"+  0.500s python #{late.id} connect to ws://h/ws",
            f"+  0.501s python #{late.id} refused",
            "              diagnosis: network: Connection refused: nothing accepts connections at"
            " that address.",
        ]

    def test_a_page_alone_starts_the_clock(self) -> None:
        """With no Python attempt the times run from the page's start, and it is just 'browser'."""
        page = PageTimeline("http://a/", 5.0, [BrowserEvent("close", 5.25, 1, code=1006)])
        assert joined_timeline([], [page]) == (
            "browser: page http://a/\n"
            "+  0.250s browser ws#1 closed: 1006 (abnormal closure [internal])"
        )


@pytest.mark.asyncio
@pytest.mark.usefixtures("chromium_present")
class TestThroughTheProxy:
    async def test_page_connects_through_the_proxy(
        self, wsconn_browser: WsconnBrowser, wsconn_token: Tokens, wsconn_proxy: Proxy
    ) -> None:
        """The page dials the service's own URL; Chromium's connection goes through Toxiproxy."""
        page = await wsconn_browser.open(frontend(wsconn_browser, wsconn_token))
        await assert_page_connects(page)
        await assert_page_shows(page, "#status", "open")
        assert page.events[0].kind == "connecting"
        assert "***" in page.events[0].url, "the token is redacted in the timeline"
        # Only the proxy carries it: with the proxy down, the page cannot open.
        with wsconn_proxy.down():
            await wait_closes(page, 2)
            assert len([e for e in page.events if e.kind == "open"]) == 1, page.report()


@pytest.mark.asyncio
@pytest.mark.usefixtures("chromium_present")
class TestFaults:
    async def test_page_reconnects_after_proxy_down(
        self, wsconn_browser: WsconnBrowser, wsconn_token: Tokens, wsconn_proxy: Proxy
    ) -> None:
        """down() drops the page's socket (1006), its retries fail; lifted, it reopens."""
        page = await wsconn_browser.open(frontend(wsconn_browser, wsconn_token))
        await assert_page_connects(page)
        with wsconn_proxy.down():
            dropped, *retries = await wait_closes(page, 3)
            await assert_page_shows(page, "#status", "reconnecting")
        assert dropped.code == 1006, page.report()
        assert retries, page.report()
        took = await assert_page_reconnects(page, within=scaled(5))
        assert took > 0
        await assert_page_shows(page, "#status", "open")

    async def test_page_reconnects_after_reset_peer(
        self, wsconn_browser: WsconnBrowser, wsconn_token: Tokens, wsconn_proxy: Proxy
    ) -> None:
        """reset_peer cuts the page's open socket once data flows; lifted, the page reopens."""
        page = await wsconn_browser.open(frontend(wsconn_browser, wsconn_token))
        await assert_page_connects(page)
        with wsconn_proxy.reset_peer():
            await page.page.evaluate("window.ws.send('are you there?')")
            dropped, *_ = await wait_closes(page, 2)
        assert dropped.code == 1006, page.report()
        await assert_page_reconnects(page, within=scaled(5))
        await assert_page_shows(page, "#status", "open")


@pytest.mark.asyncio
@pytest.mark.usefixtures("chromium_present")
class TestAssertionFailures:
    async def test_page_that_never_connects_fails_with_its_timeline(
        self, wsconn_browser: WsconnBrowser, wsconn_proxy: Proxy
    ) -> None:
        """With the proxy down the assertion fails, naming the bound and showing each close."""
        with wsconn_proxy.down():
            page = await wsconn_browser.open(FRONTEND % {"url": wsconn_browser.ws_url})
            with pytest.raises(AssertionError) as failure:
                await assert_page_connects(page, timeout=1.0)
        message = str(failure.value)
        assert "the page opened no WebSocket within 1.0 s" in message
        assert "ws#1 closed: 1006" in message
        with pytest.raises(AssertionError, match=r"#status did not show 'open'.*it shows: "):
            await assert_page_shows(page, "#status", "open", timeout=0.5)


USER_PROJECT = '''
import pytest
from pytest_wsconn import assert_page_connects, assert_page_reconnects

pytestmark = pytest.mark.asyncio

PAGE = """<p id=status>connecting</p><script>
function connect() {
  const ws = new WebSocket("%s?token=%s");
  ws.onopen = () => { status.textContent = "open"; };
  ws.onclose = () => { status.textContent = "reconnecting"; setTimeout(connect, 200); };
}
connect();
</script>"""

async def test_my_frontend_reconnects(wsconn_browser, wsconn_token, wsconn_proxy):
    page = await wsconn_browser.open(PAGE % (wsconn_browser.ws_url, wsconn_token().reveal()))
    await assert_page_connects(page)
    with wsconn_proxy.reset_peer():
        await page.page.evaluate("1")
    await assert_page_connects(page)

@pytest.mark.wsconn_fault("down")
async def test_my_frontend_during_an_outage(wsconn_browser, wsconn_token):
    page = await wsconn_browser.open(PAGE % (wsconn_browser.ws_url, wsconn_token().reveal()))
    await assert_page_reconnects(page, within=0.5, timeout=1.5)
'''


BOTH_PROJECT = '''
import pytest
from pytest_wsconn import assert_connects, assert_page_connects, assert_page_shows

pytestmark = pytest.mark.asyncio

PAGE = """<p id=status>connecting</p><script>
const ws = new WebSocket("%s?token=%s");
ws.onopen = () => { status.textContent = "open"; };
ws.onclose = () => { status.textContent = "closed"; };
</script>"""

async def test_python_page_python(wsconn_browser, wsconn_connect, wsconn_token, wsconn_proxy):
    await assert_connects(wsconn_connect)
    page = await wsconn_browser.open(PAGE % (wsconn_browser.ws_url, wsconn_token().reveal()))
    await assert_page_connects(page)
    await assert_connects(wsconn_connect)
    with wsconn_proxy.down():
        await assert_page_shows(page, "#status", "closed")
    assert False, "the service should have kept the page"
'''


@pytest.mark.usefixtures("user_env", "chromium_present")
class TestUserProject:
    def test_failure_report_carries_the_browser_timeline(self, pytester: pytest.Pytester) -> None:
        """A user's own frontend under a marker fault: the failure shows the page's timeline."""
        pytester.makepyfile(test_frontend=USER_PROJECT)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"
        )
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*the page did not drop and reopen its WebSocket within 1.5 s*",
                "*- wsconn connection timeline -*",
                "browser: page http://localhost/",
                "*browser ws#1 connecting to ws://127.0.0.1:*/ws?token=***",
                "*browser ws#1 closed: 1006*",
                "*browser ws#2 closed: 1006*",
            ]
        )
        assert not re.search(r"token=(?!\*\*\*)", result.stdout.str()), "a token was printed"

    def test_page_and_python_connections_share_one_timeline(
        self, pytester: pytest.Pytester
    ) -> None:
        """A failing test that used both: one timeline, in time order, each line saying whose."""
        pytester.makepyfile(test_both=BOTH_PROJECT)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"
        )
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*- wsconn connection timeline -*",
                "browser: page http://localhost/",
                "+  0.000s python #* connect to ws://127.0.0.1:*",
                "*s python #* opened in * ms*",
                "*s browser ws#1 connecting to ws://127.0.0.1:*/ws?token=***",
                "*s browser ws#1 open",
                "*s python #* connect to ws://127.0.0.1:*",
                "*s python #* opened in * ms*",
                "*s browser ws#1 closed: 1006*",
            ]
        )
        text = result.stdout.str()
        assert "wsconn browser timeline" not in text, "the page's events are in a section apart"
        assert text.count("- wsconn connection timeline -") == 1
        assert "          diagnosis: " in text, "a Python attempt's diagnosis follows its last step"
        assert not re.search(r"token=(?!\*\*\*)", text), "a token was printed"
