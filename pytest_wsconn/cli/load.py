"""``wsconn load SCENARIO``: a Locust scenario, headless, run by ``load.runner``.

Also ``python -m pytest_wsconn.load``, which the ``wsconn_load`` fixture runs. Exit status:
``runner``'s module docstring.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from pytest_wsconn.cli.types import (
    argtype,
    auth_mode,
    duration,
    non_negative_int,
    port,
    positive_int,
    positive_seconds,
    ws_url,
)
from pytest_wsconn.config import DEFAULT_AUTH, parse_pushgateway_url
from pytest_wsconn.exceptions import HistoryError, WsconnError
from pytest_wsconn.history import store
from pytest_wsconn.history.gitinfo import git_position
from pytest_wsconn.history.loads import load_run
from pytest_wsconn.load.recovery import STORM_FAULTS, parse_storm_faults
from pytest_wsconn.load.runner import EXIT_HELP, EXIT_USAGE, SCENARIOS, run
from pytest_wsconn.load.summary import LoadSummary
from pytest_wsconn.load.thresholds import Thresholds
from pytest_wsconn.redact import redact_url

storm_faults = argtype(parse_storm_faults)


def build_parser() -> argparse.ArgumentParser:
    """``wsconn load``'s options; ``runner`` reads the namespace it parses."""
    parser = argparse.ArgumentParser(
        prog="wsconn load",
        description="Run a WebSocket load scenario with Locust, headless (pytest-wsconn). "
        "Without --host it runs against the embedded stack: the reference server behind "
        "Toxiproxy.",
        epilog=EXIT_HELP,
    )
    parser.add_argument("scenario", help=f"{', '.join(SCENARIOS)}, or a locustfile path")
    run = parser.add_argument_group("run")
    run.add_argument("--users", "-u", type=positive_int, default=10, help="peak users (10)")
    run.add_argument(
        "--spawn-rate", "-r", type=float, default=None, help="users started per second (all in 1 s)"
    )
    run.add_argument("--duration", "-t", type=duration, default=10.0, help="run time (10s)")
    run.add_argument(
        "--workers",
        type=non_negative_int,
        default=0,
        help="local Locust worker processes under a master bound to 127.0.0.1 (0: one process)",
    )
    run.add_argument("--host", type=ws_url, help="your service's ws:// or wss:// URL")
    run.add_argument("--token", default=None, help="token (or env WSCONN_TOKEN)")
    run.add_argument("--auth", type=auth_mode, default=DEFAULT_AUTH, help="where the token goes")
    run.add_argument("--origin", default="", help="Origin header")
    run.add_argument(
        "--direct",
        action="store_true",
        help="embedded stack: dial the reference server itself, not Toxiproxy (big idle holds)",
    )
    run.add_argument("--toxiproxy-bin", default=None, help="path of toxiproxy-server")
    run.add_argument(
        "--out", type=Path, default=None, help="report folder (./wsconn-load/SCENARIO)"
    )
    run.add_argument("--master-port", type=port, default=0, help="master's port (0: a free one)")
    run.add_argument(
        "--master-bind",
        default="127.0.0.1",
        help="address the master listens on (127.0.0.1; 0.0.0.0 for --remote-workers)",
    )
    run.add_argument(
        "--remote-workers",
        type=non_negative_int,
        default=0,
        help="workers started on other machines; the master waits for them too",
    )
    run.add_argument(
        "--locust-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the Locust master, repeatable: --locust-arg=--loglevel=DEBUG",
    )
    steps = parser.add_argument_group("steps")
    steps.add_argument("--message-size", type=positive_int, default=32)
    steps.add_argument("--message-interval", type=float, default=None, help="s between messages")
    steps.add_argument("--ping-interval", type=float, default=None, help="keepalive ping every s")
    steps.add_argument(
        "--reply-timeout",
        type=positive_seconds,
        default=5.0,
        help="s to wait for the echo of (or reply to) a message before the step fails (5)",
    )
    steps.add_argument(
        "--reply-id-field",
        default=None,
        metavar="FIELD",
        help="request/response over JSON: send {FIELD: <unique id>, ...} and end the round trip "
        "at the message whose FIELD equals it (default: the exact echo of our message)",
    )
    steps.add_argument("--ping-timeout", type=positive_seconds, default=10.0)
    steps.add_argument(
        "--connections-per-user",
        type=positive_int,
        default=1,
        help="idle_hold: connections each user holds (plain ws://; ~2.5 KB each, not ~11)",
    )
    steps.add_argument("--open-timeout", type=positive_seconds, default=10.0)
    steps.add_argument("--backoff-initial", type=positive_seconds, default=0.1)
    steps.add_argument("--backoff-max", type=positive_seconds, default=2.0)
    storm = parser.add_argument_group("reconnect storm")
    storm.add_argument(
        "--storm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply faults during the load (default: on for reconnect_storm only)",
    )
    storm.add_argument("--storm-faults", type=storm_faults, default=STORM_FAULTS)
    storm.add_argument("--storm-every", type=duration, default=4.0, help="s between faults")
    storm.add_argument("--storm-for", type=duration, default=1.0, help="s each fault lasts")
    storm.add_argument(
        "--storm-recover",
        type=duration,
        default=2.0,
        help="s kept fault-free after each fault for the users to come back",
    )
    storm.add_argument("--storm-grace", type=float, default=1.0, help="s a drop may lag a fault")
    storm.add_argument("--toxiproxy", default=None, help="a running Toxiproxy API (with --proxy)")
    storm.add_argument("--proxy", default=None, help="name of the proxy in front of --host")
    limits = parser.add_argument_group("thresholds (exit 1 when one fails)")
    limits.add_argument(
        "--max-failure-ratio",
        type=float,
        default=None,
        help="share of requests allowed to fail, 0 to 1 (default: none may)",
    )
    limits.add_argument("--max-p95-connect-ms", type=float, default=None)
    limits.add_argument("--max-p95-rtt-ms", type=float, default=None)
    parser.add_argument(
        "--history",
        type=Path,
        default=None,
        metavar="PATH",
        help="append the run's summary to this run history (SQLite, as --wsconn-history)",
    )
    metrics = parser.add_argument_group("metrics (the metrics extra: prometheus_client)")
    metrics.add_argument(
        "--pushgateway",
        type=argtype(parse_pushgateway_url),
        default=None,
        metavar="URL",
        help="push the run's wsconn_load_* figures to this Prometheus Pushgateway while it runs "
        "and at its end; a failed push is said, never fails the run",
    )
    metrics.add_argument(
        "--push-every", type=positive_seconds, default=5.0, help="s between live pushes (5)"
    )
    metrics.add_argument("--metrics-job", default="wsconn-load", help="job label (wsconn-load)")
    metrics.add_argument(
        "--metrics-instance", default=None, help="instance label (this host's name)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    return parser


def _record(args: argparse.Namespace, summary: LoadSummary, started: float) -> None:
    """Append the load run to ``--history``: a run of kind ``load`` with its summary."""
    commit, branch = git_position(Path.cwd())
    run = load_run(
        summary,
        run_uid=uuid.uuid4().hex,
        started=started,
        host=socket.gethostname(),
        stack="external" if args.host else "local",
        target=redact_url(args.host) if args.host else None,
        commit=commit,
        branch=branch,
    )
    store.append(args.history, run)


def main(argv: Sequence[str] | None = None) -> int:
    """``wsconn load …``; returns the exit status (the module docstring of ``runner``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    say = (
        (lambda _: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    )
    started = time.time()
    try:
        thresholds = Thresholds(
            args.max_failure_ratio, args.max_p95_connect_ms, args.max_p95_rtt_ms
        )
        if args.history is not None:  # a history that cannot be written fails before the load
            with store.open_history(args.history):
                pass
        code, summary = run(args, thresholds, say)
    except WsconnError as error:
        print(f"wsconn load: {error}", file=sys.stderr)
        return EXIT_USAGE
    if summary is not None:
        print(summary.format(), flush=True)
        for problem in summary.problems:
            prefix = "" if problem.startswith("threshold failed: ") else "FAILED: "
            print(f"wsconn load: {prefix}{problem}", file=sys.stderr)
        if args.history is not None:
            try:
                _record(args, summary, started)
            except HistoryError as error:
                print(f"wsconn load: {error}", file=sys.stderr)
                return code or EXIT_USAGE
            print(f"wsconn load: appended the run to {args.history}", file=sys.stderr)
    return code
