"""Chaos mode's I/O shell: apply a test's drawn fault to its proxy while the test body runs.

The draw is ``chaos.draw`` (pure); this module picks the tests it applies to, waits for the
drawn moment on a thread (every wait has a deadline: the draw's own), holds the fault for its
duration through ``Proxy.apply`` — or, for a container fault (``--wsconn-chaos-containers``),
through the compose stack's ``ContainerFaults.fault`` — and records what happened for the report.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from pytest_wsconn.chaos import (
    ALL_KINDS,
    MAX_SEED,
    RANDOM,
    Applied,
    ChaosDraw,
    ChaosSeed,
    chaos_section,
    draw,
    replay_command,
)
from pytest_wsconn.events import emit
from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.markers import marked_chaos
from pytest_wsconn.stack.base import ContainerFaults
from pytest_wsconn.state import WsconnSession, per_test
from pytest_wsconn.timing import scaled
from pytest_wsconn.toxiproxy import Proxy

CHAOS_FIXTURES = frozenset({"wsconn_connect", "wsconn_reconnecting_client"})
SEED_KEY = "wsconn_chaos_seed"  # in xdist's workerinput: the controller's seed for every worker
TOXIC_NAME = "wsconn_chaos"


def session_seed(setting: ChaosSeed | None, workerinput: dict[str, Any] | None) -> int | None:
    """The run's seed: the one given, the controller's (xdist workers), or a fresh one."""
    if setting is None:
        return None
    if workerinput and SEED_KEY in workerinput:
        return int(workerinput[SEED_KEY])
    return secrets.randbelow(MAX_SEED + 1) if setting == RANDOM else setting


def eligible(fixturenames: Iterable[str], node: pytest.Item) -> bool:
    """A test chaos applies to: it connects through our fixtures, has no fault of its own and
    has not opted out (``wsconn_chaos(off=True)``)."""
    names = set(fixturenames)
    if not CHAOS_FIXTURES & names or "wsconn_proxy" not in names:  # a user's own, proxy-less
        return False
    if node.get_closest_marker("wsconn_fault") is not None:
        return False
    chaos = marked_chaos(node)
    return chaos is None or not chaos.off


def _round_of(item: pytest.Item) -> int:
    callspec = getattr(item, "callspec", None)
    return int(callspec.params.get("wsconn_chaos_round", 0)) if callspec is not None else 0


def fault_of(
    draw_: ChaosDraw, proxy: Proxy, stack: object
) -> Callable[[], AbstractContextManager[object]]:
    """What holds ``draw_`` for a ``with`` block: the proxy's toxic, or the stack's container
    fault (a stack without container faults raises, and the report says so)."""
    container = draw_.container
    if container is None:
        return lambda: proxy.apply(draw_.fault, name=TOXIC_NAME)
    if not isinstance(stack, ContainerFaults):
        kind = getattr(stack, "kind", type(stack).__name__)

        def refuse() -> AbstractContextManager[object]:
            raise TypeError(f"container faults need --wsconn-stack=compose (this is {kind})")

        return refuse
    return lambda: stack.fault(container.kind, container.service, **container.params)


class ChaosRunner:
    """Applies ``draw_`` at its moment, on a thread, until its end or the test's.

    ``hold`` makes the fault's ``with`` block: ``fault_of``, or the proxy's toxic by default.
    """

    def __init__(
        self,
        proxy: Proxy,
        draw_: ChaosDraw,
        clock: Callable[[], float] = time.monotonic,
        hold: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        self.proxy = proxy
        self.draw = draw_
        self._hold = hold or fault_of(draw_, proxy, None)
        self._clock = clock
        self._stop = threading.Event()
        self._started = clock()
        self._applied_at: float | None = None
        self._removed_at: float | None = None
        self._error: str | None = None
        context = contextvars.copy_context()  # the events name the test, as on the main thread
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="wsconn-chaos", daemon=True
        )

    def _since_start(self) -> float:
        return self._clock() - self._started

    def _run(self) -> None:
        if self._stop.wait(self.draw.at):
            return  # the test ended before the fault's moment
        try:
            with self._hold():
                self._applied_at = self._since_start()
                self._stop.wait(self.draw.duration)
            self._removed_at = self._since_start()
        except Exception as error:  # on a thread: kept for the report, not lost
            self._error = str(error)

    @property
    def applied(self) -> Applied:
        """What was done so far."""
        return Applied(self._applied_at, self._removed_at, self._error)

    def __enter__(self) -> ChaosRunner:
        self._started = self._clock()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        # The thread's last step is one Toxiproxy request, which has its own timeout.
        self._thread.join(timeout=scaled(10.0))


@contextlib.contextmanager
def chaos_during(item: pytest.Item, session: WsconnSession) -> Iterator[None]:
    """Around a test's body: its drawn fault, when chaos mode is on and the test is eligible."""
    if session.chaos_seed is None or not eligible(getattr(item, "fixturenames", ()), item):
        yield
        return
    chaos = marked_chaos(item)
    kinds = chaos.survives if chaos is not None and chaos.survives else ALL_KINDS
    services = session.settings.chaos_containers
    try:
        drawn = draw(session.chaos_seed, _round_of(item), item.nodeid, kinds, services=services)
    except ConfigError as error:  # survives= only container kinds, and no service named
        pytest.fail(f"wsconn chaos: {error}\n  hint: {error.hint}", pytrace=False)
    test = per_test(item)
    test.chaos = drawn
    emit(
        "chaos.drawn",
        seed=session.chaos_seed,
        kind=drawn.kind,
        params=dict(drawn.params),
        at=drawn.at,
        duration=drawn.duration,
        service=drawn.service,  # None: a fault of the proxy
    )
    funcargs = item.funcargs  # type: ignore[attr-defined]
    proxy = funcargs["wsconn_proxy"]
    hold = fault_of(drawn, proxy, funcargs.get("wsconn_stack"))
    runner = ChaosRunner(proxy, drawn, hold=hold)
    try:
        with runner:
            yield
    finally:
        test.chaos_applied = runner.applied


def autoloading() -> bool:
    """Whether pytest loads plugins by itself (else the replay needs ``-p wsconn``)."""
    return not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")


def chaos_report(item: pytest.Item, session: WsconnSession) -> str | None:
    """The ``wsconn chaos`` section of a failing test: its fault, timing and replay command."""
    test = per_test(item)
    if test.chaos is None or session.chaos_seed is None:
        return None
    replay = replay_command(
        item.nodeid,
        session.chaos_seed,
        session.settings.chaos_rounds,
        plugin=not autoloading(),
        services=session.settings.chaos_containers,
    )
    return chaos_section(test.chaos, test.chaos_applied or Applied(), replay)


def chaos_rounds(metafunc: pytest.Metafunc, session: WsconnSession) -> None:
    """``--wsconn-chaos-rounds N``: each chaos test runs N times, ``[chaos0]`` … ``[chaosN-1]``."""
    rounds = session.settings.chaos_rounds
    if session.chaos_seed is None or rounds < 2:
        return
    if not eligible(metafunc.fixturenames, metafunc.definition):
        return
    if "wsconn_chaos_round" not in metafunc.fixturenames:
        metafunc.fixturenames.append("wsconn_chaos_round")
    metafunc.parametrize(
        "wsconn_chaos_round", range(rounds), indirect=True, ids=[f"chaos{r}" for r in range(rounds)]
    )
