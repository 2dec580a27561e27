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

import csv
import dataclasses
import io
import itertools
import json
import os
import random
import time
import weakref
from pathlib import Path
from typing import Any, ClassVar

import gevent  # type: ignore[import-untyped]  # Locust's dependency ships no stubs
import locust.stats
from locust import User, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from pytest_wsconn.backoff import Backoff, BackoffPolicy
from pytest_wsconn.client import apply_auth
from pytest_wsconn.closecodes import WebSocketError, classify_close
from pytest_wsconn.config import DEFAULT_AUTH, AuthMode, parse_auth_mode
from pytest_wsconn.load.batch import StepBatch, merge_into_stats
from pytest_wsconn.load.errors import AUTH_CATEGORIES, NoReply, StepFailure, classify_load_error
from pytest_wsconn.load.histogram import Histogram
from pytest_wsconn.load.messages import same_json_field, unique_json, unique_text
from pytest_wsconn.load.reactor import Burst, Reactor
from pytest_wsconn.load.recovery import EventKind
from pytest_wsconn.load.wsclient import WsClient

REQUEST_TYPE = "WS"
REPORT_KEY = "wsconn"
_ids = itertools.count(1)
# gevent's record of who spawned each greenlet (for its debugging tree) costs every user
# ~0.4 KB: off, in the processes that run load users (importing this module)
gevent.config.track_greenlet_tree = False
_PROCESS_TAG = os.urandom(3).hex()  # pids repeat across machines; message ids must not
LIVE_EVERY = 1.0  # s between the master's live snapshots (``wsconn load --pushgateway`` reads)
FLUSH_EVERY = 0.25  # s between merges of the successful steps' batches into Locust's stats
CHECK_EVERY = 0.1  # s between looks for waits past their end (a reply timeout fires this late)

# name, default, help; every option is a Locust option, so workers get the master's values.
OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("ws-auth", os.environ.get("WSCONN_AUTH", DEFAULT_AUTH), "where the token goes"),
    ("ws-token", os.environ.get("WSCONN_TOKEN", ""), "token sent by every user"),
    ("ws-origin", "", "Origin header"),
    ("ws-dial", "", "host:port to dial instead of the URL's (a proxy); Host stays the URL's"),
    ("ws-open-timeout", "10", "opening-handshake timeout, s"),
    ("ws-close-timeout", "5", "closing-handshake timeout, s"),
    ("ws-message-size", "32", "characters per message (the unique id is never cut)"),
    ("ws-message-interval", "1", "seconds between a user's messages (0: back to back)"),
    ("ws-reply-timeout", "5", "seconds to wait for the echo of (or reply to) our message"),
    ("ws-reply-id-field", "", "JSON field a reply shares with our message (default: exact echo)"),
    ("ws-ping-interval", "20", "keepalive: seconds between pings of an idle user"),
    ("ws-ping-timeout", "10", "keepalive: seconds to wait for a pong"),
    ("ws-backoff-initial", "0.1", "reconnect backoff: first delay, s (full jitter)"),
    ("ws-backoff-max", "2", "reconnect backoff: longest delay, s"),
    ("ws-timeline", "", "on: record connection events whatever the scenario (a storm needs them)"),
    ("ws-result", "", "master: write histograms, workers and timeline to this JSON file"),
)


def _add_options(parser: Any) -> None:
    for name, default, help_text in OPTIONS:
        parser.add_argument(
            f"--{name}",
            default=default,
            help=f"{help_text} (pytest-wsconn)",
            include_in_web_ui=name != "ws-result",
            is_secret=name == "ws-token",
        )


class _Collector:
    """This process's histograms, other messages, timeline and request count since the last
    report, and the successful steps not yet in Locust's stats (``load.batch``)."""

    def __init__(self) -> None:
        self.histograms: dict[str, Histogram] = {}
        self.others: dict[str, int] = {}  # step -> messages received that were not its reply
        self.timeline: list[tuple[float, str, str]] = []
        self.requests = 0
        self.batches: dict[str, StepBatch] = {}
        self._stats: Any = None  # the Locust stats the batches go to, once a step succeeded

    def batch(self, step: str, environment: Environment) -> StepBatch:
        """The step's batch; the first one starts this process's flushes into Locust's stats."""
        batch = self.batches.get(step)
        if batch is None:
            batch = self.batches[step] = StepBatch()
            if self._stats is None:
                self._stats = environment.stats
                gevent.spawn(self._flush_every)
        return batch

    def _flush_every(self) -> None:
        while True:
            gevent.sleep(FLUSH_EVERY)
            self.flush()

    def flush(self) -> None:
        """Merge every batch into Locust's stats and our histograms (Locust's live figures and
        CSV read them; every report and the end of the run flush first)."""
        stats = self._stats
        if stats is None:
            return
        now = time.time()
        bucket = locust.stats.bucket_response_time
        for step, batch in self.batches.items():
            if not batch.ms:
                continue
            ms, length = batch.take()
            histogram = self.histograms.get(step)
            if histogram is None:
                histogram = self.histograms[step] = Histogram()
            histogram.add_all(ms)
            self.requests += len(ms)
            entries = (stats.total, stats.entries[(step, REQUEST_TYPE)])  # as log_request does
            merge_into_stats(entries, ms, length, now, bucket)

    def take(self) -> dict[str, Any]:
        """What was collected since the last call, JSON-safe; the next report starts afresh."""
        self.flush()
        data = {
            "histograms": {name: h.to_dict() for name, h in self.histograms.items()},
            "others": self.others,
            "timeline": self.timeline,
            "requests": self.requests,
        }
        self.histograms, self.others, self.timeline, self.requests = {}, {}, [], 0
        return data


_collector = _Collector()
_result: dict[str, Any] = {"histograms": {}, "others": {}, "timeline": [], "workers": {}}


class _Deadlines:
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


_deadlines = _Deadlines()
_reactor = Reactor()


def _merge(data: dict[str, Any], worker: str | None) -> None:
    histograms: dict[str, Histogram] = _result["histograms"]
    for name, raw in data.get("histograms", {}).items():
        histograms.setdefault(name, Histogram()).merge(Histogram.from_dict(raw))
    others: dict[str, int] = _result["others"]
    for name, count in data.get("others", {}).items():
        others[name] = others.get(name, 0) + count
    _result["timeline"].extend(data.get("timeline", []))
    if worker is not None:
        _result["workers"][worker] = _result["workers"].get(worker, 0) + data.get("requests", 0)


def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    """Before Locust's own listener serialises the worker's stats (ours was added first, when
    the locustfile was imported): the batches are merged into them here."""
    data[REPORT_KEY] = _collector.take()


def _flush(**_: Any) -> None:
    """Locust is about to reset or stop: the batches go into its stats first."""
    _collector.flush()


def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    if REPORT_KEY in data:
        _merge(data[REPORT_KEY], client_id)


def _on_test_start(environment: Environment, **_: Any) -> None:
    """Tell ``wsconn load`` when the load began (its fault schedule counts from here), then
    keep a live snapshot of Locust's figures beside the result for as long as the run lasts."""
    path = getattr(environment.parsed_options, "ws_result", "")
    if path and not isinstance(environment.runner, WorkerRunner):
        Path(f"{path}.started").write_text(repr(time.time()))
        gevent.spawn(_write_live, environment, Path(f"{path}.live"))


def _write_live(environment: Environment, path: Path) -> None:
    """Every ``LIVE_EVERY`` s: users and per-step requests, failures, rate, p50/p95 (ms), as
    JSON replaced atomically (``load.metrics.live_samples`` reads it)."""
    while True:
        steps = {
            entry.name: {
                "requests": entry.num_requests,
                "failures": entry.num_failures,
                "rate": entry.current_rps,
                **{
                    f"p{round(q * 100)}_ms": entry.get_response_time_percentile(q)
                    if entry.num_requests
                    else None
                    for q in (0.5, 0.95)
                },
            }
            for entry in environment.stats.entries.values()
        }
        users = environment.runner.user_count if environment.runner else 0
        partial = path.with_name(f"{path.name}.partial")
        partial.write_text(json.dumps({"at": time.time(), "users": users, "steps": steps}))
        partial.replace(path)
        gevent.sleep(LIVE_EVERY)


def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    _collector.flush()  # Locust prints and writes its stats after quitting
    if not isinstance(environment.runner, MasterRunner):
        _merge(_collector.take(), None)
    path = getattr(environment.parsed_options, "ws_result", "")
    if path:
        result = dict(_result)
        result["histograms"] = {n: h.to_dict() for n, h in _result["histograms"].items()}
        result["locust_csv"] = _final_tables(environment)
        Path(path).write_text(json.dumps(result))


def _final_tables(environment: Environment) -> dict[str, str]:
    """Locust's stats and failure tables as they stand at the end, in its own CSV form. Its CSV
    files are rewritten once a second and not after the users stopped: they can miss the run's
    last second (a quarter of a 3 s run's requests were seen missing from them)."""
    tables = locust.stats.StatsCSV(environment, locust.stats.PERCENTILES_TO_REPORT)
    texts = {}
    for name, write in (("stats", tables.requests_csv), ("failures", tables.failures_csv)):
        buffer = io.StringIO()
        write(csv.writer(buffer))
        texts[name] = buffer.getvalue()
    return texts


# Locust's EventHook.add_listener is untyped.
events.init_command_line_parser.add_listener(_add_options)  # type: ignore[no-untyped-call]
events.report_to_master.add_listener(_on_report_to_master)  # type: ignore[no-untyped-call]
events.worker_report.add_listener(_on_worker_report)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]
for _before_reset_or_stop in (events.spawning_complete, events.reset_stats, events.test_stop):
    _before_reset_or_stop.add_listener(_flush)  # type: ignore[no-untyped-call]


@dataclasses.dataclass(frozen=True, slots=True)
class _Settings:
    """The ``--ws-*`` options of a run, parsed once and shared by its users."""

    auth: AuthMode
    token: str | None
    origin: str | None
    dial: tuple[str, int] | None
    open_timeout: float
    close_timeout: float
    message_size: int
    message_interval: float
    reply_timeout: float
    reply_id_field: str | None
    ping_interval: float
    ping_timeout: float
    backoff: BackoffPolicy
    timeline: bool

    @classmethod
    def parse(cls, environment: Environment) -> _Settings:
        def option(name: str) -> str:
            return _option(environment, name)

        dial_host, _, dial_port = option("ws-dial").rpartition(":")
        return cls(
            auth=parse_auth_mode(option("ws-auth")),
            token=option("ws-token") or None,
            origin=option("ws-origin") or None,
            dial=(dial_host, int(dial_port)) if dial_host else None,
            open_timeout=float(option("ws-open-timeout")),
            close_timeout=float(option("ws-close-timeout")),
            message_size=int(option("ws-message-size")),
            message_interval=float(option("ws-message-interval")),
            reply_timeout=float(option("ws-reply-timeout")),
            reply_id_field=option("ws-reply-id-field") or None,
            ping_interval=float(option("ws-ping-interval")),
            ping_timeout=float(option("ws-ping-timeout")),
            backoff=BackoffPolicy(
                initial=float(option("ws-backoff-initial")),
                max_delay=float(option("ws-backoff-max")),
                max_attempts=None,
                reset_after=1.0,
            ),
            timeline=option("ws-timeline") == "on",
        )


_settings: weakref.WeakKeyDictionary[Environment, _Settings] = weakref.WeakKeyDictionary()
_JITTER = random.Random()  # noqa: S311 - reconnect jitter, shared (2.5 KB of state per user)


def _settings_of(environment: Environment) -> _Settings:
    settings = _settings.get(environment)
    if settings is None:
        settings = _settings[environment] = _Settings.parse(environment)
    return settings


def _option(environment: Environment, name: str) -> str:
    value = getattr(environment.parsed_options, name.replace("-", "_"), None)
    if value is None:  # run without Locust's parser (run_single_user, tests)
        value = next(default for option, default, _ in OPTIONS if option == name)
    return str(value)


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

        settings = _settings_of(environment)  # one parse per run, shared: idle users are many
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
                _collector.batch(step, self.environment).add(ms, length)
                return
            histogram = _collector.histograms.get(step)
            if histogram is None:
                histogram = _collector.histograms[step] = Histogram()
            histogram.add(ms)
        _collector.requests += 1
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
            _collector.timeline.append((time.time(), self.user_id, kind))

    def _count_others(self, step: str, count: int) -> None:
        if count:
            _collector.others[step] = _collector.others.get(step, 0) + count

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
        # One deadline for the whole round trip, kept by _Deadlines: a socket timeout would
        # make gevent build a Timeout on every receive that waits (~6 % of a round trip).
        _deadlines.watch(me, started + timeout)
        try:
            try:
                ws.send(payload)
                reply = ws.recv(None)
                while not is_reply(payload, reply):
                    others += 1
                    reply = ws.recv(None)
            finally:
                _deadlines.due.pop(me, None)
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
            _deadlines.watch(me, started + timeout)

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
                _deadlines.due.pop(me, None)
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
            _deadlines.watch(me, started + min(deadline, self._next_ping) - now)
            try:
                try:
                    ws.idle(None)  # until _deadlines wakes it
                finally:
                    _deadlines.due.pop(me, None)
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
