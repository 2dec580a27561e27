"""What a page's WebSockets did, as the page saw it: pure records, sentences and checks.

The recorder script (``recorder.js``) reports each WebSocket the page creates, opens, closes or
fails to create; the page shell stamps each report with the test's monotonic clock and turns it
into a ``BrowserEvent`` here. URLs are redacted on the way in: a report never holds a token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

from pytest_wsconn.closecodes import close_code_name
from pytest_wsconn.config import target_address
from pytest_wsconn.expect import ConnectionAttempt, attempt_steps, attempt_verdict
from pytest_wsconn.redact import redact_logs, redact_url

EventKind = Literal[
    "connecting", "open", "close", "error", "blocked", "csp", "handshake", "console"
]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)


@dataclasses.dataclass(frozen=True)
class BrowserEvent:
    """One thing a page's WebSocket did (or a console error the page logged)."""

    kind: EventKind
    at: float  # monotonic seconds
    socket: int | None = None  # the page's own numbering of its WebSockets, from 1
    url: str = ""  # redacted
    code: int | None = None  # close code the page's onclose saw
    reason: str = ""
    text: str = ""  # a console message or the exception that blocked a WebSocket (redacted)
    origin: str = ""  # handshake: the Origin header Chromium sent
    cookies: tuple[str, ...] = ()  # handshake: the names (never the values) of cookies sent

    def describe(self) -> str:
        """``ws#2 closed: 1006 (abnormal closure)`` and the like."""
        who = f"ws#{self.socket}" if self.socket is not None else "page"
        if self.kind == "connecting":
            return f"{who} connecting to {self.url}"
        if self.kind == "open":
            return f"{who} open"
        if self.kind == "close":
            reason = f" {self.reason!r}" if self.reason else ""
            code = close_code_name(self.code) if self.code is not None else "no code"
            return f"{who} closed: {code}{reason}"
        if self.kind == "error":
            return f"{who} error event (the browser says no more; the close that follows has it)"
        if self.kind == "blocked":
            return f"{who} refused by the browser before any request: {self.text} ({self.url})"
        if self.kind == "csp":
            return f"page CSP {self.text} blocked {self.url} (no request was sent)"
        if self.kind == "handshake":
            sent = ", ".join(self.cookies) if self.cookies else "none"
            return f"handshake to {self.url} sent Origin {self.origin or '(none)'}, cookies: {sent}"
        return f"console error: {self.text}"


def _text(value: object, limit: int = 300) -> str:
    return redact_logs(str(value))[:limit] if value is not None else ""


def parse_event(payload: Mapping[str, object], at: float) -> BrowserEvent:
    """The event a page reported (untrusted JSON from the page); total: odd fields are dropped."""
    kind = payload.get("kind")
    socket, code = payload.get("socket"), payload.get("code")
    return BrowserEvent(
        kind=kind if isinstance(kind, str) and kind in EVENT_KINDS else "console",
        at=at,
        socket=socket if isinstance(socket, int) and not isinstance(socket, bool) else None,
        url=redact_url(str(payload.get("url", ""))) if payload.get("url") else "",
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        reason=_text(payload.get("reason"), 123),
        text=_text(payload.get("text")),
    )


def handshake_event(headers: Mapping[str, str], url: str, at: float) -> BrowserEvent:
    """What Chromium put in a WebSocket upgrade request (DevTools' headers): the Origin and the
    names of the cookies it sent. Cookie values are never kept."""
    lower = {name.lower(): value for name, value in headers.items()}
    names = (pair.partition("=")[0].strip() for pair in lower.get("cookie", "").split(";"))
    return BrowserEvent(
        "handshake",
        at,
        url=redact_url(url),
        origin=_text(lower.get("origin", ""), 200),
        cookies=tuple(name for name in names if name),
    )


def handshakes(events: Sequence[BrowserEvent]) -> list[BrowserEvent]:
    """The upgrade requests the page's WebSockets sent, in order."""
    return [event for event in events if event.kind == "handshake"]


def csp_blocks(events: Sequence[BrowserEvent]) -> list[BrowserEvent]:
    """The connections the page's Content-Security-Policy blocked, in order."""
    return [event for event in events if event.kind == "csp"]


def browser_refusal(events: Sequence[BrowserEvent]) -> str | None:
    """Why the browser itself stopped a WebSocket before any request (CSP, mixed content)."""
    for event in events:
        if event.kind == "csp":
            return f"the page's Content-Security-Policy ({event.text}) blocked {event.url}"
        if event.kind == "blocked":
            return f"the browser refused to create it: {event.text}"
    return None


def render_timeline(events: Sequence[BrowserEvent], started: float) -> str:
    """One line per event, ``+1.234s ws#1 open``, times from ``started`` (monotonic)."""
    return "\n".join(f"+{event.at - started:7.3f}s {event.describe()}" for event in events)


def opens(events: Sequence[BrowserEvent]) -> list[BrowserEvent]:
    """The events where one of the page's WebSockets opened, in order."""
    return [event for event in events if event.kind == "open"]


def reconnect_seconds(events: Sequence[BrowserEvent], since: float) -> float | None:
    """How long the page took to open a WebSocket again after its first drop at or after
    ``since``: from that close to the next open. None when it has not (yet) done both."""
    dropped = next((e for e in events if e.kind == "close" and e.at >= since), None)
    if dropped is None:
        return None
    reopened = next((e for e in events if e.kind == "open" and e.at >= dropped.at), None)
    return None if reopened is None else reopened.at - dropped.at


def route_rule(service_url: str, proxy_url: str) -> str:
    """Chromium's ``--host-resolver-rules`` entry sending the service's host:port to the proxy.

    A page that dials the service's own URL (as a frontend built for it does) then goes
    through Toxiproxy, and ``wsconn_proxy`` faults hit the browser's connection too.
    """
    return f"MAP {_authority(service_url)} {_authority(proxy_url)}"


def _authority(url: str) -> str:
    host, port = target_address(url)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclasses.dataclass
class PageTimeline:
    """One page's events, kept in the test's state for its failure report."""

    label: str  # the page's URL (redacted)
    started: float  # monotonic
    events: list[BrowserEvent] = dataclasses.field(default_factory=list)

    def render(self) -> str:
        """The page's URL, then its events (or that there were none)."""
        body = render_timeline(self.events, self.started) or "(no WebSocket, no console error)"
        return f"page {self.label}\n{body}"


def joined_timeline(attempts: Sequence[ConnectionAttempt], pages: Sequence[PageTimeline]) -> str:
    """A test's Python connections and its pages' WebSockets in one timeline, ordered by time.

    Each line says whose it is: ``python #3`` (an attempt of the test's own client) or
    ``browser`` (``browser 2`` when the test opened several pages), and times run from the
    first of them. URLs are as recorded: redacted.
    """
    several = len(pages) > 1
    names = [f"browser {n}" if several else "browser" for n in range(1, len(pages) + 1)]
    entries: list[tuple[float, list[str]]] = []  # sorted stably: a tie keeps this order
    for attempt in attempts:
        steps = attempt_steps(attempt)
        for index, (at, step) in enumerate(steps):
            lines = [f"python #{attempt.id} {f'connect to {attempt.url}' if index == 0 else step}"]
            if index == len(steps) - 1:
                lines.append(f"    {attempt_verdict(attempt)}")
            entries.append((at, lines))
    for name, page in zip(names, pages, strict=True):
        entries.extend((event.at, [f"{name} {event.describe()}"]) for event in page.events)
        if not page.events:
            entries.append((page.started, [f"{name} (no WebSocket, no console error)"]))
    origin = min([a.started for a in attempts] + [page.started for page in pages], default=0.0)
    body = [f"{name}: page {page.label}" for name, page in zip(names, pages, strict=True)]
    for at, lines in sorted(entries, key=lambda entry: entry[0]):
        body.append(f"+{at - origin:7.3f}s {lines[0]}")
        body.extend(f"{'':10}{line}" for line in lines[1:])
    return "\n".join(body)
