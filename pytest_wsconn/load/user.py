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
from typing import ClassVar

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
from pytest_wsconn.load.reactor import Burst, Reactor
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

        settings = settings_of(environment)  # one parse per run, shared: idle users are many
        self.url = str(self.host or "")
        self.auth = settings.auth
        self.token = settings.token
        self.origin = settings.origin
        self.dial = settings.dial
        self.open_timeout = settings.open_timeout
        self.close_timeout = settings.close_timeout
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
        self._echo = self.reply_id_field is None and type(self).is_reply is WebSocketUser.is_reply
        self._timeline = self.record_timeline or settings.timeline
        self.ws: WsClient | None = None
        self._confirmed = False  # the server has answered on this connection (auth confirmed)
        self._next_ping = 0.0  # monotonic time of the next keepalive ping

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
        if self._timeline:
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

    def _sends_credentials(self) -> bool:
        return self.token is not None and self.auth.kind != "none"

    def _failed(self, step: str, seconds: float, exc: BaseException) -> None:
        """A step on an open connection failed: report it, drop the connection."""
        error = classify_load_error(exc, time.time())
        if not self._confirmed and self._sends_credentials() and error.category in AUTH_CATEGORIES:
            step = "auth"  # the server took the upgrade, then refused the token (close 1008)
        self._fire(step, seconds, error=error)
        if self.ws is not None:
            self.ws.abort()
            self.ws = None
        self._record("lost")
        self.backoff.closed()

    # Steps

    def ws_connect(self) -> bool:
        """Open ``self.ws`` (closing any old one first): fires ``connect`` and ``auth``."""
        if self.ws is not None:
            self.ws.abort()
            self.ws = None
        url, headers, protocols = apply_auth(self.url, self.auth, self.token, self.subprotocols)
        started = time.perf_counter()
        try:
            client, handshake = WsClient.connect(
                url,
                headers=headers,
                subprotocols=protocols,
                origin=self.origin,
                timeout=self.open_timeout,
                dial=self.dial,
            )
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
            error = NoReply(timeout, others, echo=self._echo)
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

    def ws_exchanges(self, count: int) -> bool:
        """``count`` round trips back to back, each a ``message`` step as ``ws_exchange``'s
        (``next_message()`` sent, its reply awaited, others counted, the same deadline); False
        as soon as one fails.

        On a plain ``ws://`` connection this process's reactor (``load.reactor``) drives them
        while the user waits once: no greenlet switch per round trip, half its CPU.
        """
        ws = self.ws
        if ws is None:
            return False
        if not _reactor.takes(ws):
            return all(self.ws_exchange() for _ in range(count))
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
        )
        try:
            try:
                _reactor.run(burst)
            finally:
                deadlines.due.pop(me, None)
        except TimeoutError:
            error: BaseException = NoReply(timeout, burst.others_now, echo=self._echo)
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
            self._take_skipped(ws)
            self._fire(
                "ping", time.perf_counter() - started, error=classify_close(1011, sent_by_us=True)
            )
            ws.abort()
            self.ws = None
            self._record("lost")
            return False
        except Exception as exc:
            self._take_skipped(ws)
            self._failed("ping", time.perf_counter() - started, exc)
            return False
        self._take_skipped(ws)
        self._confirmed = True
        self._fire("ping", seconds)
        return True

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

    def ws_close(self, code: int = 1000) -> bool:
        """The closing handshake; fails unless the server answers with a normal close."""
        if self.ws is None:
            return False
        client, self.ws = self.ws, None
        started = time.perf_counter()
        closed = client.close(code, timeout=self.close_timeout)
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
            self.close_timeout = min(self.close_timeout, 1.0)
            self.ws_close()
