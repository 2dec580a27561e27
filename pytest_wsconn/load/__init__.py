"""Load testing with Locust: WebSocket scenarios, ``wsconn load`` and the ``wsconn_load`` fixture.

Importing this package does not import Locust (which monkey-patches for gevent whatever imports
it); only :mod:`pytest_wsconn.load.user`, the ``WebSocketUser`` base for locustfiles, does.

Layout::

    pure       histogram.py   µs-resolution latency histograms that merge across workers
               errors.py      the load client's exceptions and their classification
               recovery.py    fault schedule; who lost a connection, who came back, when
               thresholds.py  --max-* limits and the breaches of a run
               summary.py     Locust's CSV + our data → the summary a person reads
    I/O        wsclient.py    the small blocking WebSocket client the users run on gevent
               user.py        WebSocketUser (imports Locust)
               runner.py      `wsconn load`: stack, Locust master/workers, storm, summary
               fixture.py     the wsconn_load fixture and marker
"""

from __future__ import annotations

from pytest_wsconn.load.fixture import LoadResult, StepStats, run_load
from pytest_wsconn.load.histogram import Histogram
from pytest_wsconn.load.recovery import FaultWindow, RecoveryReport, recovery_report, storm_schedule
from pytest_wsconn.load.runner import main
from pytest_wsconn.load.summary import LoadSummary, build_summary
from pytest_wsconn.load.thresholds import Breach, Figures, Thresholds, evaluate

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
    "main",
    "recovery_report",
    "run_load",
    "storm_schedule",
]
