"""``WebSocketUser``: a Locust user that fires one request event per WebSocket step.

Importing this module imports Locust, which monkey-patches the process for gevent: only
locustfiles (``scenarios/``) import it, never the plugin or the runner.

Each step is a Locust request of type ``WS`` named after the step:

======== ===================================================================================
connect  the opening handshake (TCP connect + HTTP upgrade), in ms; fails with the category
auth     only when a token is sent: the upgrade that carried it, in ms; a refused token (HTTP
         401/403, or close 1008/3000/3003 before the first message) fails here, not on connect
message  one round trip: send a message with a unique id, then receive *its* echo (or the
         reply ``is_reply`` accepts); other messages meanwhile are counted, never taken for it
ping     one keepalive round trip (ping → pong); a connection lost while idle fails here
close    the closing handshake; fails unless the server answers 1000
======== ===================================================================================

A failure's error is the classified ``category: message`` of ``pytest_wsconn.closecodes``, so
Locust's failure table reads ``auth: HTTP 401: the token was missing, invalid or expired.``.
Latencies also go into µs-resolution histograms that workers ship to the master with their
reports (Locust itself rounds to whole ms), beside the count of other messages (broadcasts,
pushes) per step; users of scenarios that set ``record_timeline`` (or run with
``--ws-timeline on``) record when their connections open, drop and fail, for the
reconnect-storm report — every failed step records one ``lost`` or ``fail``, which is how the
storm tells the failures inside its faults from those outside.

Settings come from ``--ws-*`` options on the Locust command line (the master passes them on to
its workers), e.g. ``--ws-auth header --ws-token …``; ``wsconn load`` sets them for you.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Sequence
from typing import ClassVar, Self

import gevent  # type: ignore[import-untyped]  # Locust's dependency ships no stubs
from locust import User, events
from locust.env import Environment

from pytest_wsconn.backoff import Backoff
from pytest_wsconn.client import apply_auth
from pytest_wsconn.closecodes import WebSocketError, classify_close
from pytest_wsconn.load.deadlines import deadlines
from pytest_wsconn.load.errors import AUTH_CATEGORIES, NoReply, StepFailure, classify_load_error
from pytest_wsconn.load.histogram import Histogram
from pytest_wsconn.load.messages import same_json_field, unique_json, unique_text
from pytest_wsconn.load.options import add_options, settings_of
from pytest_wsconn.load.reactor import Burst, Hold, Reactor
from pytest_wsconn.load.recovery import EventKind
from pytest_wsconn.load.reporting import REQUEST_TYPE, collector, listen
from pytest_wsconn.load.wsclient import WsClient

_ids = itertools.count(1)
# gevent's record of who spawned each greenlet (for its debugging tree) costs every user
# ~0.4 KB: off, in the processes that run load users (importing this module)
gevent.config.track_greenlet_tree = False
_PROCESS_TAG = os.urandom(3).hex()  # pids repeat across machines; message ids must not
_JITTER = random.Random()  # noqa: S311 - reconnect jitter, shared (2.5 KB of state per user)
_reactor = Reactor()

# Locust's EventHook.add_listener is untyped.
events.init_command_line_parser.add_listener(add_options)  # type: ignore[no-untyped-call]
listen(events)


class WebSocketUser(User):
    """A Locust user with one WebSocket connection, ``self.ws``, and a method per step.

    Subclass it in a locustfile and write tasks with ``ws_connect``, ``ws_exchange``,
    ``ws_ping``, ``ws_hold``, ``ws_close`` and ``ws_reconnect``; each fires its request event
    and returns whether the step worked, so tasks read as plain control flow. ``host`` (Locust's
    ``--host``) is the ``ws://`` or ``wss://`` URL. For a protocol that answers instead of
    echoing, override ``is_reply`` (or set ``--ws-reply-id-field``) and put ``message_id()``
    into the messages you send.
    """

    abstract = True
    subprotocols: ClassVar[tuple[str, ...]] = ()
    batch_requests: ClassVar[bool] = True
    """Successful steps reach Locust's stats in batches (every ``FLUSH_EVERY`` s and before
    every report), failures one request event each. False: one request event per step, for
    your own ``events.request`` listeners (~10 µs more per step)."""
    record_timeline: ClassVar[bool] = False
    """Record connection opens, drops and failures for the reconnect-storm report."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)

        # Every attribute here is one more for each of 19,000 idle users, and past 29 an
        # instance's __dict__ stops sharing its keys with the others' (~0.3 KB becomes ~1.6 KB;
        # Locust adds one, a scenario a few; tests/test_load_units.py keeps count): settings
        # read only to connect and close stay in the run's shared ``settings``.
        settings = self.settings = settings_of(environment)  # one parse per run, shared
        self.url = str(self.host or "")
        self.message_size = settings.message_size
        self.message_interval = settings.message_interval
        self.reply_timeout = settings.reply_timeout
        self.reply_id_field = settings.reply_id_field
        self.ping_interval = settings.ping_interval
        self.ping_timeout = settings.ping_timeout
        self.backoff = Backoff(settings.backoff, _JITTER, time.monotonic)
        self._number = next(_ids)  # the strings made of it only when asked for: idle users
        self._id_prefix = ""  # are many and send no messages
        self._sent = 0  # messages this user numbered with message_id()
        self.ws: WsClient | None = None
        self._confirmed = False  # the server has answered on this connection (auth confirmed)
        self._next_ping = 0.0  # monotonic time of the next keepalive ping
        # ws_hold_all: the reactor's hold of self.ws, and when a lost connection reconnects
        self._hold: Hold | None = None
        self._retry_at: float | None = None  # (monotonic time)

    # Reporting

    def _fire(
        self, step: str, seconds: float, length: int = 0, error: WebSocketError | None = None
    ) -> None:
        ms = seconds * 1000
        if error is None:
            if self.batch_requests:
                collector.batch(step, self.environment).add(ms, length)
                return
            histogram = collector.histograms.get(step)
            if histogram is None:
                histogram = collector.histograms[step] = Histogram()
            histogram.add(ms)
        collector.requests += 1
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=step,
            response_time=ms,
            response_length=length,
            exception=StepFailure(error) if error is not None else None,
            context={},
        )

    @property
    def user_id(self) -> str:
        """This user, unique in its run: the process id and the user's number in it."""
        return f"{os.getpid()}-{self._number}"

    def _record(self, kind: EventKind) -> None:
        if self.record_timeline or self.settings.timeline:
            collector.timeline.append((time.time(), self.user_id, kind))

    def _count_others(self, step: str, count: int) -> None:
        if count:
            collector.others[step] = collector.others.get(step, 0) + count

    def _take_skipped(self, ws: WsClient) -> None:
        """Count the messages a ping or an idle spell read and dropped, as the ``ping`` step's."""
        self._count_others("ping", ws.skipped)
        ws.skipped = 0

    # Messages

    def message_id(self) -> str:
        """An id no other message of this run carries (across users, processes and machines)."""
        self._sent += 1
        if not self._id_prefix:
            self._id_prefix = f"{_PROCESS_TAG}-{self.user_id}."
        return f"{self._id_prefix}{self._sent:x}"

    def next_message(self) -> str:
        """The message ``ws_exchange`` sends by default: ``--ws-message-size`` characters of
        text led by a ``message_id()``, or with ``--ws-reply-id-field`` a JSON object holding
        one in that field."""
        if self.reply_id_field is not None:
            return unique_json(self.reply_id_field, self.message_id(), self.message_size)
        return unique_text(self.message_id(), self.message_size)

    def is_reply(self, sent: str | bytes, received: str | bytes) -> bool:
        """Whether ``received`` ends the round trip of ``sent``: its exact echo, or with
        ``--ws-reply-id-field F`` a JSON object whose ``F`` equals ``sent``'s. Override it for
        other request/response protocols; anything it refuses counts as another message."""
        if self.reply_id_field is not None:
            return same_json_field(self.reply_id_field, sent, received)
        return received == sent

    def _echoes(self) -> bool:
        """Whether a round trip ends at the exact echo of its message (for failure texts)."""
        return self.reply_id_field is None and type(self).is_reply is WebSocketUser.is_reply

    def _sends_credentials(self) -> bool:
        return self.settings.token is not None and self.settings.auth.kind != "none"

    def _failed(self, step: str, seconds: float, exc: BaseException) -> None:
        """A step on an open connection failed: report it, drop the connection."""
        error = classify_load_error(exc, time.time())
        if not self._confirmed and self._sends_credentials() and error.category in AUTH_CATEGORIES:
            step = "auth"  # the server took the upgrade, then refused the token (close 1008)
        self._fire(step, seconds, error=error)
        self._unhold()
        if self.ws is not None:
            self.ws.abort()
            self.ws = None
        self._record("lost")
        self.backoff.closed()

    # Steps

    def ws_connect(self) -> bool:
        """Open ``self.ws`` (closing any old one first): fires ``connect`` and ``auth``."""
        self._unhold()
        if self.ws is not None:
            self.ws.abort()
            self.ws = None
        settings = self.settings
        url, headers, protocols = apply_auth(
            self.url, settings.auth, settings.token, self.subprotocols
        )
        me = gevent.getcurrent()
        started = time.perf_counter()
        # The open timeout kept by load.deadlines, as a round trip's: a socket timeout makes
        # gevent build a Timeout for every wait of the handshake (~8 % of a connect storm).
        deadlines.watch(me, started + settings.open_timeout)
        try:
            try:
                client, handshake = WsClient.connect(
                    url,
                    headers=headers,
                    subprotocols=protocols,
                    origin=settings.origin,
                    timeout=None,
                    dial=settings.dial,
                )
            finally:
                deadlines.due.pop(me, None)
        except Exception as exc:  # classified below; GreenletExit (a BaseException) passes
            error = classify_load_error(exc, time.time())
            step = (
                "auth"
                if error.category in AUTH_CATEGORIES and self._sends_credentials()
                else "connect"
            )
            self._fire(step, time.perf_counter() - started, error=error)
            self._record("fail")
            return False
        self.ws = client
        self._confirmed = False
        self._next_ping = time.monotonic() + self.ping_interval
        self._fire("connect", handshake.seconds)
        if self._sends_credentials():
            self._fire("auth", handshake.upgrade_seconds)
        self._record("open")
        self.backoff.opened()
        return True

    def ws_exchange(self, message: str | bytes | None = None) -> bool:
        """Send ``message`` (default: ``next_message()``) and wait for its reply.

        The round trip ends at the first message ``is_reply`` accepts; messages before it
        (broadcasts, pushes, other users' messages) are counted, never taken for it. None
        within ``--ws-reply-timeout`` fails the step: "no echo of our message within 5 s
        (K other messages received)". Give your own messages an id (``message_id()``): a
        message another user could send too may be matched by its broadcast.
        """
        ws = self.ws
        if ws is None:
            return False
        payload = self.next_message() if message is None else message
        is_reply = self.is_reply
        timeout = self.reply_timeout
        others = 0
        me = gevent.getcurrent()
        started = time.perf_counter()
        # One deadline for the whole round trip, kept by load.deadlines: a socket timeout would
        # make gevent build a Timeout on every receive that waits (~6 % of a round trip).
        deadlines.watch(me, started + timeout)
        try:
            try:
                ws.send(payload)
                reply = ws.recv(None)
                while not is_reply(payload, reply):
                    others += 1
                    reply = ws.recv(None)
            finally:
                deadlines.due.pop(me, None)
        except TimeoutError:
            self._count_others("message", others)
            error = NoReply(timeout, others, echo=self._echoes())
            self._failed("message", time.perf_counter() - started, error)
            return False
        except Exception as exc:
            self._count_others("message", others)
            self._failed("message", time.perf_counter() - started, exc)
            return False
        elapsed = time.perf_counter() - started
        self._count_others("message", others)
        self._confirmed = True
        self._fire("message", elapsed, len(reply))
        return True

    def ws_exchanges(self, count: int, within: float = float("inf")) -> bool:
        """``count`` round trips back to back, none begun after ``within`` seconds, each a
        ``message`` step as ``ws_exchange``'s (``next_message()`` sent, its reply awaited,
        others counted, the same deadline); False as soon as one fails.

        On a plain ``ws://`` connection this process's reactor (``load.reactor``) drives them
        while the user waits once: no greenlet switch per round trip, half its CPU.
        """
        ws = self.ws
        if ws is None:
            return False
        until = time.perf_counter() + within
        if not _reactor.takes(ws):
            for _ in range(count):
                if not self.ws_exchange():
                    return False
                if time.perf_counter() >= until:
                    break
            return True
        me = gevent.getcurrent()
        timeout = self.reply_timeout

        def on_send(started: float) -> None:
            deadlines.watch(me, started + timeout)

        burst = Burst(
            ws,
            count,
            make_message=self.next_message,
            is_reply=self.is_reply,
            on_reply=self._replied,
            on_send=on_send,
            until=until,
        )
        try:
            try:
                _reactor.run(burst)
            finally:
                deadlines.due.pop(me, None)
        except TimeoutError:
            error: BaseException = NoReply(timeout, burst.others_now, echo=self._echoes())
        except Exception as exc:
            error = exc
        else:
            self._count_others("message", burst.others)
            return True
        self._count_others("message", burst.others)
        self._failed("message", time.perf_counter() - burst.started, error)
        return False

    def _replied(self, seconds: float, length: int) -> None:
        self._confirmed = True
        self._fire("message", seconds, length)

    def ws_ping(self) -> bool:
        """One keepalive round trip; no pong within ``--ws-ping-timeout`` closes with 1011."""
        if self.ws is None:
            return False
        ws = self.ws
        started = time.perf_counter()
        try:
            seconds = ws.ping_pong(self.ping_timeout)
        except TimeoutError:
            self._no_pong(ws, time.perf_counter() - started)
            return False
        except Exception as exc:
            self._take_skipped(ws)
            self._failed("ping", time.perf_counter() - started, exc)
            return False
        self._take_skipped(ws)
        self._confirmed = True
        self._fire("ping", seconds)
        return True

    def _no_pong(self, ws: WsClient, seconds: float) -> None:
        """No pong within ``--ws-ping-timeout``: ``ping`` fails as a close 1011 of ours."""
        self._take_skipped(ws)
        self._fire("ping", seconds, error=classify_close(1011, sent_by_us=True))
        self._unhold()
        ws.abort()
        self.ws = None
        self._record("lost")

    def ws_hold(self, seconds: float) -> bool:
        """Stay connected and idle for ``seconds``: answer the server's pings and send ours
        every ``--ws-ping-interval``. False as soon as the connection is lost (a drop noticed
        while idle fails as ``ping``)."""
        deadline = time.monotonic() + seconds
        while (ws := self.ws) is not None:
            now = time.monotonic()
            if now >= self._next_ping:
                self._next_ping = now + self.ping_interval
                if not self.ws_ping():
                    return False
                continue
            if now >= deadline:
                return True
            started = time.perf_counter()
            me = gevent.getcurrent()
            deadlines.watch(me, started + min(deadline, self._next_ping) - now)
            try:
                try:
                    ws.idle(None)  # until deadlines wakes it
                finally:
                    deadlines.due.pop(me, None)
            except Exception as exc:
                self._take_skipped(ws)
                self._failed("ping", time.perf_counter() - started, exc)
                return False
            self._take_skipped(ws)
        return False

    def companion(self) -> Self:
        """Another user of this class for ``ws_hold_all``: it has no greenlet of its own and is
        not in Locust's user count; its steps report as any user's, under its own
        ``user_id``."""
        return type(self)(self.environment)

    def ws_hold_all(self, users: Sequence[WebSocketUser], seconds: float) -> None:
        """Hold the connections of ``users`` (this user and its ``companion()``s) idle for
        ``seconds``, from this user's greenlet alone: an idle connection with a greenlet of its
        own costs ~8 KB more.

        This process's reactor reads them all: it answers the server's pings, counts other
        messages and times pongs. Every ``--ws-ping-interval`` each connection sends a ``ping``
        (a step, failing as a close 1011 without a pong within ``--ws-ping-timeout``); a
        connection lost fails ``ping`` and reconnects after its backoff delay. Plain ``ws://``
        only: ``ValueError`` for a connection the reactor cannot read.
        """
        deadline = time.monotonic() + seconds
        while True:
            wake = deadline
            for user in users:
                wake = min(wake, user._tend_held(time.monotonic()))
            now = time.monotonic()
            if now >= deadline:
                return
            time.sleep(max(0.0, wake - now))

    def _tend_held(self, now: float) -> float:
        """One look at a connection ``ws_hold_all`` holds: reconnect it, ping it or judge its
        pong overdue, as due. Returns when it needs the next look (monotonic time)."""
        ws = self.ws
        if ws is None:
            if self._retry_at is None:
                delay = self.backoff.next_delay() or self.backoff.policy.max_delay
                self._retry_at = now + delay
            if now < self._retry_at:
                return self._retry_at
            self._retry_at = None
            if not self.ws_connect():
                return now  # the next look draws the next backoff delay
            ws = self.ws
            assert ws is not None
        hold = self._hold
        if hold is None:
            if not _reactor.takes(ws):
                self.ws_close()
                raise ValueError(f"held connections need a plain ws:// URL, not {self.url}")
            hold = self._hold = Hold(ws, on_pong=self._ponged, on_lost=self._lost_while_held)
            _reactor.hold(hold)
        self._take_skipped(ws)
        if hold.ping_payload is not None:
            if now < hold.pong_due:
                return hold.pong_due
            self._no_pong(ws, time.perf_counter() - hold.ping_started)
            return now
        if now < self._next_ping:
            return self._next_ping
        try:
            hold.ping(pong_due=now + self.ping_timeout)
        except Exception as exc:  # the connection is gone: classified as any step's
            self._failed("ping", 0.0, exc)
            return now
        self._next_ping = now + self.ping_interval
        return min(self._next_ping, hold.pong_due)

    def _ponged(self, seconds: float) -> None:
        self._confirmed = True
        self._fire("ping", seconds)

    def _lost_while_held(self, error: BaseException, seconds: float) -> None:
        """The reactor let go of the connection (it ended): ``ping`` fails with how."""
        self._hold = None
        if self.ws is not None:
            self._take_skipped(self.ws)
        self._failed("ping", seconds, error)

    def _unhold(self) -> None:
        """Take the connection back from the reactor (before reading or closing it here)."""
        if self._hold is not None:
            _reactor.release(self._hold)
            self._hold = None

    def ws_close(self, code: int = 1000, timeout: float | None = None) -> bool:
        """The closing handshake (within ``timeout``, default ``--ws-close-timeout``); fails
        unless the server answers with a normal close."""
        if self.ws is None:
            return False
        self._unhold()
        client, self.ws = self.ws, None
        me = gevent.getcurrent()
        started = time.perf_counter()
        deadlines.watch(me, started + (self.settings.close_timeout if timeout is None else timeout))
        try:
            closed = client.close(code, timeout=None)  # a TimeoutError thrown ends it as 1006
        finally:
            deadlines.due.pop(me, None)
        elapsed = time.perf_counter() - started
        self.backoff.closed()
        if closed.received and closed.code in (1000, 1005):
            self._record("closed")
            self._fire("close", elapsed)
            return True
        self._record("lost")  # a failed step records a loss, as every other failure does
        self._failed_close(elapsed, closed.code)
        return False

    def _failed_close(self, seconds: float, code: int) -> None:
        error = classify_close(code)
        step = (
            "auth"
            if not self._confirmed
            and self._sends_credentials()
            and error.category in AUTH_CATEGORIES
            else "close"
        )
        self._fire(step, seconds, error=error)

    def ws_reconnect(self) -> bool:
        """Wait the backoff's next (jittered) delay, then ``ws_connect``."""
        delay = self.backoff.next_delay() or self.backoff.policy.max_delay
        time.sleep(delay)
        return self.ws_connect()

    def on_stop(self) -> None:
        """Close the connection when Locust stops the user."""
        if self.ws is not None:
            self.ws_close(timeout=min(self.settings.close_timeout, 1.0))
