"""What the plugin keeps for one pytest session and for each test: one value each, stashed."""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_wsconn import config as cfg
from pytest_wsconn.browser.timeline import PageTimeline
from pytest_wsconn.chaos import Applied, ChaosDraw
from pytest_wsconn.closecodes import AppCodeLookup
from pytest_wsconn.expect import ConnectionAttempt
from pytest_wsconn.reconnect import ReconnectingClient
from pytest_wsconn.stack import Stack, describe_tested


@dataclasses.dataclass
class WsconnSession:
    """Everything the plugin keeps for one pytest session, stashed once on the config."""

    settings: cfg.Settings
    # This session's application close codes and attempt numbering, undone at its end (a
    # pytester session nested in ours sets its own).
    app_codes: contextvars.Token[AppCodeLookup]
    attempt_ids: contextvars.Token[Iterator[int] | None]
    attempts: list[ConnectionAttempt] = dataclasses.field(default_factory=list)
    outcomes: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)
    event_handlers: list[logging.Handler] = dataclasses.field(default_factory=list)
    stack: Stack | None = None  # the session's stack, once a test has used it
    tested: str | None = None  # what the session tested, for the summary and the JSON report
    toxiproxy_version: str | None = None
    # Why the stack did not start (raised once, re-raised by pytest for each later test), and
    # the test whose error shows it in full.
    stack_failure: BaseException | None = None
    stack_failure_shown_in: str | None = None
    # The service diagnosed once, when a connection failed before any had opened, and the
    # failing test whose report shows it.
    diagnosis: str | None = None
    diagnosis_shown_in: str | None = None
    previous_sigterm: signal.Handlers | None = None  # restored at the end when we set ours
    chaos_seed: int | None = None  # chaos mode's seed (drawn once per run when not given)
    started: float = dataclasses.field(default_factory=time.time)  # for metrics and history
    history: Path | None = None  # the run history this session appends to
    history_error: str | None = None  # why it could not, for the summary
    xdist_controller: bool = False  # its workers run the tests (and write the history)
    slow_deselected: int = 0  # wsconn_slow checks left out (no --wsconn-slow), for the summary

    def record_stack(self, stack: Stack) -> None:
        """Remember the session's stack (the fixture may be the user's own) and what it tests."""
        if self.stack is stack:
            return
        self.stack = stack
        self.toxiproxy_version, self.tested = describe_tested(stack)


@dataclasses.dataclass
class WsconnTest:
    """What the plugin keeps for one test, for its report."""

    started: float = dataclasses.field(default_factory=time.time)  # its service logs' window
    attempts: list[ConnectionAttempt] = dataclasses.field(default_factory=list)
    clients: list[ReconnectingClient] = dataclasses.field(default_factory=list)
    failed_unopened: bool = False  # a connect failed before any in the session had opened
    chaos: ChaosDraw | None = None  # the fault chaos mode drew for it
    chaos_applied: Applied | None = None  # and what became of it
    browser_pages: list[PageTimeline] = dataclasses.field(default_factory=list)  # wsconn_browser


SESSION = pytest.StashKey[WsconnSession]()
TEST = pytest.StashKey[WsconnTest]()


def session_of(config: pytest.Config) -> WsconnSession:
    """The plugin's state for the session ``config`` belongs to."""
    return config.stash[SESSION]


def per_test(item: pytest.Item) -> WsconnTest:
    """The plugin's state for ``item``, made on first use."""
    return item.stash.setdefault(TEST, WsconnTest())


def xdist_ids(config: pytest.Config) -> tuple[str | None, str | None]:
    """This session's xdist run id (the same in every worker of a run) and worker id (``gw0``…);
    both None when it is not an xdist worker.

    Read from the session, not from ``PYTEST_XDIST_*``: a pytest run started inside an xdist
    worker (pytester, a subprocess) inherits those variables without being a worker itself.
    """
    workerinput = getattr(config, "workerinput", None)
    if not workerinput:
        return None, None
    return str(workerinput["testrunuid"]), str(workerinput["workerid"])
