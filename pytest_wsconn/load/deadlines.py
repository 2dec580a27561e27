"""When the waits of this process's load users end: one timer for all of them."""

from __future__ import annotations

import time
from typing import Any

import gevent  # type: ignore[import-untyped]  # Locust's dependency ships no stubs

CHECK_EVERY = 0.1  # s between looks for waits past their end (a reply timeout fires this late)


class Deadlines:
    """The waits under way in this process (round trips awaiting their reply, idle users
    awaiting their next ping) and when each ends, checked by one repeating libev timer that
    throws ``TimeoutError`` into the greenlets past theirs.

    A gevent ``Timeout`` per round trip costs ~6 % of it (a libev timer made, started and
    stopped), and one per idle connection ~0.9 KB; reusing one is wrong, since libev's stop
    keeps only the time left, so every earlier round trip counts against the next one's
    deadline (a user at full speed "timed out" every few seconds). Here a wait costs a dict
    entry; it ends up to ``CHECK_EVERY`` late.
    """

    def __init__(self) -> None:
        self.due: dict[Any, float] = {}  # greenlet -> perf_counter() time its wait ends
        self._timer: Any = None

    def watch(self, greenlet: Any, deadline: float) -> None:
        self.due[greenlet] = deadline
        if self._timer is None:
            self._timer = gevent.get_hub().loop.timer(CHECK_EVERY, CHECK_EVERY, ref=False)
            self._timer.start(self._expire)

    def _expire(self) -> None:
        """In the hub, as gevent's own ``Timeout`` does: each overdue greenlet is waiting on its
        socket (or on the reactor), so the throw lands in its wait."""
        now = time.perf_counter()
        for greenlet in [g for g, deadline in self.due.items() if deadline <= now]:
            del self.due[greenlet]
            greenlet.throw(TimeoutError())


deadlines = Deadlines()
