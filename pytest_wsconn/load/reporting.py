"""What load users report beyond Locust's request events, and how it reaches Locust and the
master: successful steps in batches (``load.batch``), µs histograms, other messages, the
timeline, the live snapshot and the final tables ``wsconn load`` reads.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]  # Locust's dependency ships no stubs
import locust.stats
from locust.env import Environment
from locust.event import Events
from locust.runners import MasterRunner, WorkerRunner

from pytest_wsconn.load.batch import StepBatch, merge_into_stats
from pytest_wsconn.load.histogram import Histogram

REQUEST_TYPE = "WS"
REPORT_KEY = "wsconn"
LIVE_EVERY = 1.0  # s between the master's live snapshots (``wsconn load --pushgateway`` reads)
FLUSH_EVERY = 0.25  # s between merges of the successful steps' batches into Locust's stats


class Collector:
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


collector = Collector()
_result: dict[str, Any] = {"histograms": {}, "others": {}, "timeline": [], "workers": {}}


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
    data[REPORT_KEY] = collector.take()


def _flush(**_: Any) -> None:
    """Locust is about to reset or stop: the batches go into its stats first."""
    collector.flush()


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
    collector.flush()  # Locust prints and writes its stats after quitting
    if not isinstance(environment.runner, MasterRunner):
        _merge(collector.take(), None)
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


def listen(events: Events) -> None:
    """Hook the reporting into Locust's events (before Locust's own: a locustfile is imported
    before its runner is made)."""
    # Locust's EventHook.add_listener is untyped.
    events.report_to_master.add_listener(_on_report_to_master)  # type: ignore[no-untyped-call]
    events.worker_report.add_listener(_on_worker_report)  # type: ignore[no-untyped-call]
    events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
    events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]
    for before_reset_or_stop in (events.spawning_complete, events.reset_stats, events.test_stop):
        before_reset_or_stop.add_listener(_flush)  # type: ignore[no-untyped-call]
