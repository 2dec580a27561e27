"""A reconnecting client: backoff between attempts, a recorded state machine, a fallback mode.

    idle → connecting → open → reconnecting → (open | failed | fallback) → closed

Whether to retry is decided by the classified error (``closecodes``), how long to wait by the
backoff policy (``backoff``); this module only moves between states and records every move.
Messages sent while disconnected wait in a bounded queue and go out, in order, once the
connection is back (after ``on_reconnect`` has run). When the queue is full, ``overflow``
decides: ``drop_oldest`` (default: the newest state matters most), ``drop_newest``, or
``raise`` (``QueueFull``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from websockets.exceptions import ConnectionClosed

from pytest_wsconn.backoff import Backoff, BackoffPolicy
from pytest_wsconn.client import InstrumentedConnection
from pytest_wsconn.closecodes import WebSocketError, classify_exception
from pytest_wsconn.events import emit
from pytest_wsconn.exceptions import ConnectFailed, WsconnError
from pytest_wsconn.expect import classify

Overflow = Literal["drop_oldest", "drop_newest", "raise"]
Message = str | bytes


class State(enum.StrEnum):
    """Where a reconnecting client is."""

    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    FALLBACK = "fallback"
    FAILED = "failed"
    CLOSED = "closed"


@dataclasses.dataclass(frozen=True)
class Transition:
    """One move of the state machine: when, from where to where, and why."""

    at: float  # monotonic seconds
    source: State
    target: State
    cause: str
    error: WebSocketError | None = None
    delay: float | None = None  # the wait scheduled before the next attempt
    failures: int = 0  # consecutive failures before this delay (the n of the backoff policy)
    suggested: float | None = None  # a server's minimum delay that raised this one


class QueueFull(WsconnError):
    """The outgoing queue is full and the overflow policy is ``raise``."""


class ReconnectingClient:
    """Keeps a WebSocket connection up through ``connect``, retrying by ``policy``."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[InstrumentedConnection]],
        *,
        policy: BackoffPolicy | None = None,
        fallback_after: int | None = None,
        queue_size: int = 100,
        overflow: Overflow = "drop_oldest",
        on_reconnect: Callable[[InstrumentedConnection], Awaitable[None]] | None = None,
        on_degraded: Callable[[WebSocketError], None] | None = None,
        should_retry: Callable[[WebSocketError], bool] = lambda error: error.retryable,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or BackoffPolicy()
        self.fallback_after = fallback_after
        self.overflow = overflow
        self.transitions: list[Transition] = []
        self.connection: InstrumentedConnection | None = None
        self.error: WebSocketError | None = None
        self.dropped: int = 0  # messages the overflow policy discarded
        self._connect = connect
        self._on_reconnect = on_reconnect
        self._on_degraded = on_degraded
        self._should_retry = should_retry
        self._clock = clock
        self._backoff = Backoff(self.policy, rng or random.Random(), clock)  # noqa: S311 - jitter
        self._queue: collections.deque[Message] = collections.deque()
        self._queue_size = queue_size
        self._state = State.IDLE
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def opens(self) -> int:
        """How many times a connection opened; above 1 means it reconnected."""
        return sum(t.target is State.OPEN for t in self.transitions)

    @property
    def delays(self) -> list[Transition]:
        """The transitions that scheduled a wait, in order."""
        return [t for t in self.transitions if t.delay is not None]

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        """Begin connecting in the background (also after ``failed``: manual recovery)."""
        if self._task is not None and not self._task.done():
            return
        self._closing = False
        self._backoff.reset()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def reconnect_now(self) -> None:
        """Skip the current wait (in ``reconnecting`` or ``fallback``); restart after ``failed``."""
        if self._state is State.FAILED:
            self.start()
        self._wake.set()

    async def send(self, message: Message) -> None:
        """Send now when open, else queue it for the next connection."""
        if self._state is State.OPEN and self.connection is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.connection.send(message)
                return
        if len(self._queue) >= self._queue_size:
            if self.overflow == "raise":
                raise QueueFull(f"the outgoing queue is full ({self._queue_size} messages)")
            self.dropped += 1
            if self.overflow == "drop_newest":
                return
            self._queue.popleft()
        self._queue.append(message)

    async def wait_for(self, *states: State, timeout: float) -> bool:
        """Wait until the client is in one of ``states``; False after ``timeout`` seconds."""
        return await self.wait_until(lambda: self._state in states, timeout)

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait, checking at every transition, until ``condition()``; False after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Close the connection normally and stop reconnecting."""
        self._closing = True
        self._wake.set()
        if self.connection is not None:
            await self.connection.close()
        if self._task is not None:
            await self._task
        if self._state is not State.CLOSED:
            self._move(State.CLOSED, "closed by the application")

    def describe(self) -> str:
        """The transition log, one line each, times relative to the first."""
        if not self.transitions:
            return "reconnecting client: no transition yet"
        origin = self.transitions[0].at
        lines = []
        for t in self.transitions:
            line = f"  +{t.at - origin:7.3f}s {t.source} → {t.target}: {t.cause.rstrip('.')}"
            if t.delay is not None:
                line += f"; next attempt in {t.delay:.3f} s"
            lines.append(line)
        return "\n".join(["reconnecting client transitions:", *lines])

    def _move(
        self,
        target: State,
        cause: str,
        *,
        error: WebSocketError | None = None,
        delay: float | None = None,
        failures: int = 0,
        suggested: float | None = None,
    ) -> None:
        at = self._clock()
        self.transitions.append(
            Transition(at, self._state, target, cause, error, delay, failures, suggested)
        )
        self._state = target
        self._changed.set()

    async def _run(self) -> None:
        if self.transitions:
            self._move(State.RECONNECTING, "manual recovery after giving up")
        else:
            self._move(State.CONNECTING, "start")
        while not self._closing:
            error = await self._connect_and_serve()
            if error is None or self._closing or not await self._retry(error):
                break
        if self._closing:
            self._move(State.CLOSED, "closed by the application")

    async def _connect_and_serve(self) -> WebSocketError | None:
        """One attempt and, if it opens, the connection's life: the error that ended it.

        None means stop: the application closed the client, or its ``on_reconnect`` failed.
        """
        try:
            connection = await self._connect()
        except ConnectFailed as failed:
            return classify(failed.attempt)
        except Exception as exc:  # a connector of the user's own may raise anything
            return classify_exception(exc)
        if self._closing:  # close() was called while this attempt was under way
            await connection.close()
            return None
        try:
            await self._opened(connection)
        except Exception as exc:  # the application's on_reconnect failed
            await connection.close()
            self.error = classify_exception(exc)
            self._move(State.FAILED, f"on_reconnect raised {exc!r}", error=self.error)
            return None
        if self._closing:
            return None
        self._backoff.closed()
        if connection.attempt is None:  # a connector that does not record attempts
            return classify_exception(ConnectionClosed(None, None))
        return classify(connection.attempt)

    async def _opened(self, connection: InstrumentedConnection) -> None:
        """Serve one open connection until it closes."""
        reconnected = self.opens > 0
        self.connection = connection
        self._backoff.opened()
        self._move(State.OPEN, "reconnected" if reconnected else "connected")
        if reconnected and self._on_reconnect is not None:
            with contextlib.suppress(ConnectionClosed):  # gone already: classified below
                await self._on_reconnect(connection)
        while self._queue and self._state is State.OPEN:
            try:
                await connection.send(self._queue[0])
            except ConnectionClosed:
                break
            self._queue.popleft()
        await connection.wait_closed()
        self.connection = None

    async def _retry(self, error: WebSocketError) -> bool:
        """Record the failure and wait for the next attempt; False when giving up."""
        self.error = error
        if not self._should_retry(error):
            self._move(State.FAILED, f"not retrying: {error}", error=error)
            return False
        failures = self._backoff.attempts
        suggested = error.min_retry_delay or None
        delay = self._backoff.next_delay(suggested)
        degraded = self.fallback_after is not None and failures + 1 >= self.fallback_after
        if delay is None and not degraded:
            self._move(State.FAILED, f"gave up after {failures + 1} attempts: {error}", error=error)
            return False
        if degraded:
            if self._state is not State.FALLBACK and self._on_degraded is not None:
                self._on_degraded(error)
            delay = max(self.policy.max_delay, suggested or 0.0)
        target = State.FALLBACK if degraded else State.RECONNECTING
        emit(
            "reconnect.scheduled",
            delay=delay,
            failures=failures,
            state=target,
            category=error.category,
            code=error.code,
        )
        self._move(
            target, str(error), error=error, delay=delay, failures=failures, suggested=suggested
        )
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
        return True
