"""Many connections driven by one greenlet on a native epoll: bursts of back-to-back round
trips, and idle connections held several to a user.

A load user that waits for its echo on its own socket costs gevent a watcher started and
stopped, a failed ``recv`` and two greenlet switches per round trip: about half of the CPU of a
round trip in a profile of the echo loop. A user that runs a burst of round trips back to back
hands it to this process's ``Reactor`` instead and waits once. The reactor registers the
connection in an epoll of its own (Linux's, not gevent's), waits on that epoll's file
descriptor with one gevent watcher, and on each wake-up serves every ready connection in a
loop: read, parse (``WsClient.next_message``), match the reply, report it; then it sends the
next messages. No switch per round trip; one per burst.

An idle connection costs its greenlet ~8 KB (a page of Python's frame stack and the saved C
stack), most of what it costs at all. A user that holds several (``Hold``) leaves their reading
to the reactor: it answers the server's pings, drops and counts other messages, times the pongs
of the user's pings and tells the user of a connection lost; the user's greenlet only wakes to
ping, to judge a pong overdue and to reconnect.

Only plain ``ws://`` connections (a TLS socket can hold decrypted bytes its file descriptor does
not show) and only on Linux (epoll); ``Reactor.takes`` says whether a connection can use it.
The reply deadline stays the user's (``load.deadlines``' one timer throws ``TimeoutError`` into the
waiting user, which cancels its burst). A send that the socket cannot take at once (a message
larger than its buffer) holds the reactor until it can: bursts suit small messages.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import gevent  # type: ignore[import-untyped]  # Locust's dependency ships no stubs
from gevent import monkey
from gevent.hub import Waiter  # type: ignore[import-untyped]

from pytest_wsconn.load.wsclient import WsClient

EPOLLIN = 0x001  # select.EPOLLIN, which gevent's patched select module no longer has
try:
    _epoll: Any = monkey.get_original("select", "epoll")
except AttributeError:  # not Linux
    _epoll = None


class Burst:
    """``count`` round trips back to back on ``client``, none begun after ``until`` (a
    ``perf_counter()`` time): each sends ``make_message()`` and ends at the first message
    ``is_reply`` accepts; ``on_reply(seconds, length)`` hears each one, ``on_send(started)``
    each send (the user moves its deadline)."""

    __slots__ = (
        "client",
        "error",
        "is_reply",
        "make_message",
        "on_reply",
        "on_send",
        "others",
        "others_now",
        "payload",
        "remaining",
        "started",
        "until",
        "waiter",
    )

    def __init__(
        self,
        client: WsClient,
        count: int,
        *,
        make_message: Callable[[], str | bytes],
        is_reply: Callable[[str | bytes, str | bytes], bool],
        on_reply: Callable[[float, int], None],
        on_send: Callable[[float], None],
        until: float = float("inf"),
    ) -> None:
        self.client = client
        self.remaining = count
        self.until = until
        self.make_message = make_message
        self.is_reply = is_reply
        self.on_reply = on_reply
        self.on_send = on_send
        self.payload: str | bytes = ""
        self.started = 0.0
        self.others = 0  # other messages received during the whole burst
        self.others_now = 0  # ... during the round trip under way
        self.error: BaseException | None = None
        self.waiter: Any = None

    def send_next(self) -> None:
        self.payload = self.make_message()
        self.others_now = 0
        self.started = time.perf_counter()
        self.on_send(self.started)
        self.client.send(self.payload)

    def end(self, error: BaseException | None) -> None:
        """The reactor let go of the burst: its user resumes (once the reactor waits again)."""
        self.error = error
        gevent.get_hub().loop.run_callback(self.waiter.switch, None)

    def readable(self) -> bool | None:
        """Take what the socket holds: True when the burst's last reply came, None when a
        reply came and the next message is to be sent, False while the reply is awaited."""
        client = self.client
        client.receive()
        while (message := client.next_message()) is not None:
            if not self.is_reply(self.payload, message):
                self.others += 1
                self.others_now += 1
                continue
            now = time.perf_counter()
            self.on_reply(now - self.started, len(message))
            self.remaining -= 1
            return not self.remaining or now >= self.until or None
        return False


class Hold:
    """An idle connection the reactor reads for its user: the server's pings answered (by
    ``WsClient.next_message``), other messages dropped and counted (``client.skipped``),
    the pong of ``ping()`` timed for ``on_pong(seconds)``; ``on_lost(error, seconds)`` hears
    how the connection ended (``seconds``: since the ping under way, else 0)."""

    __slots__ = ("client", "fd", "on_lost", "on_pong", "ping_payload", "ping_started", "pong_due")

    def __init__(
        self,
        client: WsClient,
        *,
        on_pong: Callable[[float], None],
        on_lost: Callable[[BaseException, float], None],
    ) -> None:
        self.client = client
        self.fd = -1  # the socket's, once held (it reads -1 once the socket is closed)
        self.on_pong = on_pong
        self.on_lost = on_lost
        self.ping_payload: bytes | None = None  # of our ping awaiting its pong
        self.ping_started = 0.0  # perf_counter() time it was sent
        self.pong_due = 0.0  # the user's (monotonic) time its pong is overdue

    def ping(self, pong_due: float) -> None:
        self.ping_payload = os.urandom(4)
        self.ping_started = time.perf_counter()
        self.pong_due = pong_due
        self.client.ping(self.ping_payload)

    def end(self, error: BaseException | None) -> None:
        if error is not None:
            waited = time.perf_counter() - self.ping_started if self.ping_payload else 0.0
            self.on_lost(error, waited)

    def readable(self) -> bool:
        client = self.client
        client.receive()
        while client.next_message() is not None:
            client.skipped += 1
        if self.ping_payload is not None and client.pong_payload == self.ping_payload:
            self.ping_payload = None
            self.on_pong(time.perf_counter() - self.ping_started)
        return False


class Reactor:
    """This process's bursts and holds, by file descriptor, and the greenlet that serves them."""

    def __init__(self) -> None:
        self._epoll: Any = None
        self._handlers: dict[int, Burst | Hold] = {}

    @staticmethod
    def takes(client: WsClient) -> bool:
        """Whether ``client``'s bursts and holds can run here: a plain TCP connection, on
        Linux."""
        return _epoll is not None and not client.secure

    def run(self, burst: Burst) -> None:
        """Run ``burst`` to its end (in the calling user's greenlet, which waits once); raises
        what ended it early. A ``TimeoutError`` or a kill thrown into the waiting user
        cancels it."""
        burst.waiter = Waiter()
        fd = self._add(burst)
        try:
            burst.send_next()
            burst.waiter.get()
        finally:
            self._end(fd, burst)
        if burst.error is not None:
            raise burst.error

    def hold(self, hold: Hold) -> None:
        """Read ``hold``'s connection until ``release`` or its loss (``on_lost``)."""
        hold.fd = self._add(hold)

    def release(self, hold: Hold) -> None:
        """Stop reading ``hold``'s connection: call it before using or closing the socket."""
        self._end(hold.fd, hold)

    def _add(self, handler: Burst | Hold) -> int:
        if self._epoll is None:
            self._epoll = _epoll()
            gevent.spawn(self._serve)
        fd: int = handler.client.sock.fileno()
        self._handlers[fd] = handler
        self._epoll.register(fd, EPOLLIN)
        return fd

    def _end(self, fd: int, handler: Burst | Hold) -> None:
        """Forget ``handler`` at once, before any other greenlet can open a socket that reuses
        its file descriptor (whoever ends one calls this, without a switch in between)."""
        if self._handlers.get(fd) is handler:
            del self._handlers[fd]
            with contextlib.suppress(OSError):  # the connection was closed: epoll dropped it
                self._epoll.unregister(fd)

    def _serve(self) -> None:
        """Read every ready connection, then send the bursts' next messages back to back:
        sending as each reply is read costs ~10 % more CPU per round trip (paired runs)."""
        hub = gevent.get_hub()
        ready = hub.loop.io(self._epoll.fileno(), EPOLLIN)
        sends: list[tuple[int, Burst]] = []
        while True:
            hub.wait(ready)
            for fd, _ in self._epoll.poll(0):
                handler = self._handlers.get(fd)
                if handler is None:
                    continue
                try:
                    done = handler.readable()
                except Exception as exc:  # handed to the handler's user, who reports it
                    self._end(fd, handler)
                    handler.end(exc)
                    continue
                if done is None and isinstance(handler, Burst):
                    sends.append((fd, handler))
                elif done:
                    self._end(fd, handler)
                    handler.end(None)
            for fd, burst in sends:
                if self._handlers.get(fd) is not burst:  # a send that waited let its user end it
                    continue
                try:
                    burst.send_next()
                except Exception as exc:
                    self._end(fd, burst)
                    burst.end(exc)
            sends.clear()
