"""Load testing with Locust: WebSocket scenarios, ``wsconn load`` and the ``wsconn_load`` fixture.

Importing this package does not import Locust (which monkey-patches for gevent whatever imports
it); only :mod:`pytest_wsconn.load.user`, the ``WebSocketUser`` base for locustfiles, and the
modules it runs on (options, reporting, deadlines, reactor) do.

Layout::

    pure       histogram.py   µs-resolution latency histograms that merge across workers
               errors.py      the load client's exceptions and their classification
               recovery.py    fault schedule; who lost a connection, who came back, when
               thresholds.py  --max-* limits and the breaches of a run
               summary.py     Locust's CSV + our data → the summary a person reads
               batch.py       successful steps merged into Locust's stats in batches
    I/O        wsclient.py    the small blocking WebSocket client the users run on gevent
               user.py        WebSocketUser (imports Locust)
               options.py     the --ws-* options and the settings a run's users share
               reporting.py   batches, histograms, live snapshot and final tables to Locust
               deadlines.py   one timer for every user's reply deadline and idle wake-up
               reactor.py     back-to-back round trips of many connections on one epoll
               runner.py      a load run: stack, Locust master/workers, storm, summary
               fixture.py     the wsconn_load fixture and marker
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_wsconn.load.fixture import LoadResult, StepStats, run_load
    from pytest_wsconn.load.histogram import Histogram
    from pytest_wsconn.load.recovery import (
        FaultWindow,
        RecoveryReport,
        recovery_report,
        storm_schedule,
    )
    from pytest_wsconn.load.summary import LoadSummary, build_summary
    from pytest_wsconn.load.thresholds import Breach, Figures, Thresholds, evaluate

# Imported on first use: the pure modules stay importable without the I/O ones (subprocess).
_EXPORTS = {
    "LoadResult": "fixture",
    "StepStats": "fixture",
    "run_load": "fixture",
    "Histogram": "histogram",
    "FaultWindow": "recovery",
    "RecoveryReport": "recovery",
    "recovery_report": "recovery",
    "storm_schedule": "recovery",
    "LoadSummary": "summary",
    "build_summary": "summary",
    "Breach": "thresholds",
    "Figures": "thresholds",
    "Thresholds": "thresholds",
    "evaluate": "thresholds",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


__all__ = [
    "Breach",
    "FaultWindow",
    "Figures",
    "Histogram",
    "LoadResult",
    "LoadSummary",
    "RecoveryReport",
    "StepStats",
    "Thresholds",
    "build_summary",
    "evaluate",
    "recovery_report",
    "run_load",
    "storm_schedule",
]
