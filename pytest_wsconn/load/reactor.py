"""Back-to-back round trips of many connections, driven by one greenlet on a native epoll.

A load user that waits for its echo on its own socket costs gevent a watcher started and
stopped, a failed ``recv`` and two greenlet switches per round trip: about half of the CPU of a
round trip in a profile of the echo loop. A user that runs a burst of round trips back to back
hands it to this process's ``Reactor`` instead and waits once. The reactor registers the
connection in an epoll of its own (Linux's, not gevent's), waits on that epoll's file
descriptor with one gevent watcher, and on each wake-up serves every ready connection in a
loop: read, parse (``WsClient.next_message``), match the reply, report it, send the next
message. No switch per round trip; one per burst.

Only plain ``ws://`` connections (a TLS socket can hold decrypted bytes its file descriptor does
not show) and only on Linux (epoll); ``Reactor.takes`` says whether a connection can use it.
The reply deadline stays the user's (``load.deadlines``' one timer throws ``TimeoutError`` into the
waiting user, which cancels its burst). A send that the socket cannot take at once (a message
larger than its buffer) holds the reactor until it can: bursts suit small messages.
"""

from __future__ import annotations

import contextlib
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
    """``count`` round trips back to back on ``client``: each sends ``make_message()`` and ends
    at the first message ``is_reply`` accepts; ``on_reply(seconds, length)`` hears each one,
    ``on_send(started)`` each send (the user moves its deadline)."""

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
    ) -> None:
        self.client = client
        self.remaining = count
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

    def readable(self) -> bool:
        """Take what the socket holds; True when the burst's last reply came."""
        client = self.client
        client.receive()
        while (message := client.next_message()) is not None:
            if not self.is_reply(self.payload, message):
                self.others += 1
                self.others_now += 1
                continue
            self.on_reply(time.perf_counter() - self.started, len(message))
            self.remaining -= 1
            if not self.remaining:
                return True
            self.send_next()
        return False


class Reactor:
    """This process's bursts, by file descriptor, and the greenlet that serves them."""

    def __init__(self) -> None:
        self._epoll: Any = None
        self._bursts: dict[int, Burst] = {}

    @staticmethod
    def takes(client: WsClient) -> bool:
        """Whether ``client``'s bursts can run here: a plain TCP connection, on Linux."""
        return _epoll is not None and not client.secure

    def run(self, burst: Burst) -> None:
        """Run ``burst`` to its end (in the calling user's greenlet, which waits once); raises
        what ended it early. A ``TimeoutError`` or a kill thrown into the waiting user
        cancels it."""
        if self._epoll is None:
            self._epoll = _epoll()
            gevent.spawn(self._serve)
        fd = burst.client.sock.fileno()
        burst.waiter = Waiter()
        self._bursts[fd] = burst
        self._epoll.register(fd, EPOLLIN)
        try:
            burst.send_next()
            burst.waiter.get()
        finally:
            self._end(fd, burst)
        if burst.error is not None:
            raise burst.error

    def _end(self, fd: int, burst: Burst) -> None:
        """Forget ``burst`` at once, before any other greenlet can open a socket that reuses
        its file descriptor (whoever ends a burst calls this, without a switch in between)."""
        if self._bursts.get(fd) is burst:
            del self._bursts[fd]
            with contextlib.suppress(OSError):  # the connection was closed: epoll dropped it
                self._epoll.unregister(fd)

    def _serve(self) -> None:
        hub = gevent.get_hub()
        ready = hub.loop.io(self._epoll.fileno(), EPOLLIN)
        while True:
            hub.wait(ready)
            for fd, _ in self._epoll.poll(0):
                burst = self._bursts.get(fd)
                if burst is None:
                    continue
                try:
                    if not burst.readable():
                        continue
                except Exception as exc:  # handed to the burst's user, who reports it
                    burst.error = exc
                self._end(fd, burst)
                hub.loop.run_callback(burst.waiter.switch, None)
