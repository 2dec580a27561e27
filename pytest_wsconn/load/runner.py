"""A ``wsconn load`` run: a scenario with Locust headless, locally or as master + local workers.

The I/O shell around the pure parts (``cli.load`` parses its options): it starts the embedded
stack when no ``--host`` is given (the reference server behind Toxiproxy), runs ``locust`` as
child processes (never imported here: Locust monkey-patches whatever imports it), drives the
reconnect storm's faults on the proxy, then reads Locust's CSV files and the master's
``wsconn.json`` into a summary, judges the run and says, one line per reason, why it failed.

Exit status: 0 the run passed; 1 it failed: no connection ever opened (whatever the limits), a
request failed (Locust's ``--exit-code-on-error`` convention; ``--max-failure-ratio`` allows a
share, and in a reconnect storm only the failures outside its faults count), the storm's users
did not all come back, or a threshold was breached; 2 a usage or set-up error; 3 Locust did not
complete the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_wsconn import faults
from pytest_wsconn.config import Settings
from pytest_wsconn.exceptions import ConfigError, WsconnError
from pytest_wsconn.load.metrics import PushTarget, final_samples, pushing_live
from pytest_wsconn.load.recovery import FaultWindow, storm_schedule
from pytest_wsconn.load.summary import LoadSummary, build_summary
from pytest_wsconn.load.thresholds import Thresholds
from pytest_wsconn.timing import scaled

if TYPE_CHECKING:
    from pytest_wsconn.toxiproxy import Proxy

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCUST = 0, 1, 2, 3
EXIT_HELP = """\
exit status: 0 the run passed; 1 it failed: no connection ever opened (even with
--max-failure-ratio 1), any request failed (unless --max-failure-ratio allows the share; in a
reconnect storm only failures outside its faults count), the storm's users did not all come
back, or a threshold was breached — each reason is printed on one line; 2 a usage or set-up
error; 3 Locust did not complete the run."""
SCENARIOS = ("connect_storm", "steady_messaging", "idle_hold", "reconnect_storm")
REFERENCE_MAX_CONNECTIONS = 1_000_000  # the embedded server must not be the limit under test
START_TIMEOUT = 60.0  # seconds for Locust to start and its workers to connect (scaled)
STOP_GRACE = 30.0  # seconds past the run time before Locust is stopped by force (scaled)
PACKAGE_DIR = Path(__file__).resolve().parent.parent


# Scenarios


def scenario_path(name: str, search: Sequence[Path]) -> Path:
    """A scenario's locustfile: a path to a ``.py`` file, or a name looked up in ``search``."""
    given = Path(name)
    if given.suffix == ".py":
        if not given.is_file():
            raise ConfigError(f"scenario file {name!r} does not exist")
        return given.resolve()
    for folder in search:
        candidate = folder / f"{name}.py"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"unknown scenario {name!r}; valid: {', '.join(SCENARIOS)}, or a locustfile path "
        "(a .py file with a WebSocketUser subclass)"
    )


def scenario_folders() -> list[Path]:
    """Where the shipped scenarios are: inside the wheel, or the repository's ``scenarios/``."""
    return [PACKAGE_DIR / "_scenarios", PACKAGE_DIR.parent / "scenarios"]


# The shell


@dataclass(frozen=True)
class LoadTarget:
    """Where the users connect, with what, and the proxy the storm breaks (if any)."""

    url: str
    token: str | None
    dial: str = ""  # host:port the users dial instead of the URL's: the proxy's
    proxy: Proxy | None = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _project_dir() -> Path:
    local = Path.cwd()
    return local if (local / "toxiproxy" / "bin").is_dir() else PACKAGE_DIR.parent


def _through(url: str, token: str | None, proxy: Proxy) -> LoadTarget:
    host, port = proxy.listen_address
    return LoadTarget(url, token, f"{host}:{port}", proxy)


@contextlib.contextmanager
def open_target(args: argparse.Namespace, storm: bool) -> Iterator[LoadTarget]:
    """The embedded stack, or the user's ``--host`` (behind a Toxiproxy of ours for a storm)."""
    from pytest_wsconn.reference.tokens import reference_token
    from pytest_wsconn.stack import open_stack
    from pytest_wsconn.stack.reference_process import ReferenceOptions
    from pytest_wsconn.toxiproxy import ToxiproxyClient

    token = args.token or (os.environ.get("WSCONN_TOKEN") if args.host else None) or None
    if args.host is not None and args.toxiproxy and args.proxy:
        yield _through(args.host, token, ToxiproxyClient(args.toxiproxy).proxy(args.proxy))
        return
    if args.host is not None and not storm:
        yield LoadTarget(args.host, token)
        return
    settings = Settings(
        stack="local" if args.host is None else "external",
        url=args.host,
        toxiproxy_bin=args.toxiproxy_bin,
    )
    reference = ReferenceOptions(max_connections=REFERENCE_MAX_CONNECTIONS)
    worker = f"load{os.getpid()}"
    with open_stack(settings, _project_dir(), worker, reference=reference) as stack:
        if stack.secret is not None:  # the embedded reference server
            token = token or reference_token(stack.secret, "valid")
        if args.direct and not storm:
            yield LoadTarget(stack.url, token)
        else:
            yield _through(stack.url, token, stack.proxy)


class Storm(threading.Thread):
    """Applies the fault windows on the proxy, recording when each really began and ended."""

    def __init__(self, proxy: Proxy, plan: Sequence[FaultWindow], started: float) -> None:
        super().__init__(name="wsconn-storm", daemon=True)
        self.proxy = proxy
        self.plan = plan
        self.started = started
        self.applied: list[FaultWindow] = []
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            for window in self.plan:
                if self._stop_event.wait(max(0.0, self.started + window.start - time.time())):
                    return
                fault = faults.down() if window.kind == "down" else faults.reset_peer()
                began = time.time()  # connections may drop while the API call is under way
                with self.proxy.apply(fault):
                    self._stop_event.wait(window.end - window.start)
                self.applied.append(FaultWindow(window.kind, began, time.time()))
        except BaseException as error:  # reported by the runner, never lost in a thread
            self.error = error

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=scaled(10))


def locust_commands(
    args: argparse.Namespace, locustfile: Path, target: LoadTarget, out: Path, port: int
) -> tuple[list[str], list[list[str]]]:
    """The master's (or single process's) command line and the workers'."""
    base = [sys.executable, "-m", "locust", "-f", str(locustfile)]
    spawn_rate = args.spawn_rate or float(args.users)
    options = {
        "ws-auth": args.auth,
        "ws-origin": args.origin,
        "ws-dial": target.dial,
        "ws-open-timeout": args.open_timeout,
        "ws-message-size": args.message_size,
        "ws-reply-timeout": args.reply_timeout,
        "ws-ping-timeout": args.ping_timeout,
        "ws-backoff-initial": args.backoff_initial,
        "ws-backoff-max": args.backoff_max,
        "ws-result": out / "wsconn.json",
    }
    if args.message_interval is not None:
        options["ws-message-interval"] = args.message_interval
    if args.ping_interval is not None:
        options["ws-ping-interval"] = args.ping_interval
    if args.connections_per_user > 1:
        options["ws-connections-per-user"] = args.connections_per_user
    if args.reply_id_field:
        options["ws-reply-id-field"] = args.reply_id_field
    if args.storm:
        options["ws-timeline"] = "on"  # the storm places every failure inside or outside a fault
    master = [
        *base,
        "--headless",
        "--users", str(args.users),
        "--spawn-rate", f"{spawn_rate:g}",
        "--run-time", f"{max(1, round(args.duration))}s",
        "--host", target.url,
        "--stop-timeout", "0",
        "--exit-code-on-error", "0",
        "--csv", str(out / "locust"),
        "--html", str(out / "report.html"),
        "--only-summary",
        *[f"--{name}={value}" for name, value in options.items()],
    ]  # fmt: skip
    workers = []
    if args.workers or args.remote_workers:
        master += [
            "--master",
            "--master-bind-host", args.master_bind,
            "--master-bind-port", str(port),
            "--expect-workers", str(args.workers + args.remote_workers),
            "--expect-workers-max-wait", f"{scaled(START_TIMEOUT):g}",
        ]  # fmt: skip
        worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        workers = [worker for _ in range(args.workers)]
    return [*master, *args.locust_arg], workers


def _wait_started(marker: Path, master: subprocess.Popen[bytes], timeout: float) -> float | None:
    """When the load began (the master's marker file), or None if Locust never got there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and master.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            return float(marker.read_text())
        time.sleep(0.05)
    return None


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _launch(
    args: argparse.Namespace, locustfile: Path, target: LoadTarget, out: Path, storm: bool
) -> tuple[int | None, float | None, list[FaultWindow]]:
    """Run Locust (master and workers) and the storm; exit code, start time, faults applied."""
    from pytest_wsconn.stack.processes import spawn, stop

    distributed = args.workers or args.remote_workers
    port = args.master_port or (_free_port() if distributed else 0)
    master_cmd, worker_cmds = locust_commands(args, locustfile, target, out, port)
    if args.remote_workers:
        print(
            f"wsconn load: waiting for {args.remote_workers} remote worker(s); on each machine "
            f"(with pytest-wsconn[load] and the same token in WSCONN_TOKEN) run:\n"
            f"  locust -f {locustfile} --worker --master-host <this host> "
            f"--master-port {port}",
            file=sys.stderr,
            flush=True,
        )
    env = {**os.environ, "WSCONN_TOKEN": target.token or ""}
    env.pop("WSCONN_AUTH", None)
    with contextlib.ExitStack() as processes:
        log = processes.enter_context((out / "master.log").open("wb"))
        master = spawn(master_cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        processes.callback(stop, master, scaled(10))
        for index, command in enumerate(worker_cmds):
            log = processes.enter_context((out / f"worker-{index + 1}.log").open("wb"))
            worker = spawn(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            processes.callback(stop, worker, scaled(10))
        started = _wait_started(out / "wsconn.json.started", master, scaled(START_TIMEOUT))
        thread = None
        if storm and started is not None and target.proxy is not None:
            warmup = args.users / (args.spawn_rate or args.users) + 0.5
            plan = storm_schedule(
                args.duration,
                args.storm_every,
                args.storm_for,
                warmup,
                args.storm_faults,
                recover=args.storm_recover,
            )
            thread = Storm(target.proxy, plan, started)
            thread.start()
        try:
            limit = scaled(START_TIMEOUT + STOP_GRACE) + args.duration
            code: int | None = master.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            code = None
        if thread is not None:
            thread.stop()
            if thread.error is not None:
                raise WsconnError(f"the storm could not drive the proxy: {thread.error}")
    return code, started, thread.applied if thread is not None else []


def run(
    args: argparse.Namespace, thresholds: Thresholds, say: Callable[[str], None]
) -> tuple[int, LoadSummary | None]:
    """One load run: target up, Locust run, summary built and thresholds checked."""
    locustfile = scenario_path(args.scenario, scenario_folders())
    name = locustfile.stem
    storm = args.storm = args.storm if args.storm is not None else name == "reconnect_storm"
    if args.message_interval is None and name == "reconnect_storm":
        args.message_interval = 0.2
    if args.connections_per_user > 1 and name != "idle_hold":
        raise ConfigError(
            f"--connections-per-user is idle_hold's; {name} holds one connection per user"
        )
    out = (args.out or Path("wsconn-load") / name).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create it: {exc.strerror}") from None
    result, live = out / "wsconn.json", out / "wsconn.json.live"
    for stale in [*out.glob("locust_*.csv"), result, out / "wsconn.json.started", live]:
        stale.unlink(missing_ok=True)
    gateway = None
    if args.pushgateway:
        gateway = PushTarget.from_args(
            args.pushgateway, args.metrics_job, args.metrics_instance, name
        )
    with open_target(args, storm) as target:
        if storm and target.proxy is None:
            raise ConfigError("a reconnect storm needs a proxy: give --toxiproxy and --proxy")
        if args.connections_per_user > 1 and not target.url.startswith("ws://"):
            raise ConfigError(
                "--connections-per-user above 1 needs a plain ws:// URL (one greenlet reads "
                "the held connections, which TLS sockets do not allow); use --users instead"
            )
        via = f" via {target.dial}" if target.dial else ""
        say(f"wsconn load: {name} → {target.url}{via}")
        with pushing_live(gateway, live, args.push_every, say):
            code, started, applied = _launch(args, locustfile, target, out, storm)
    summary = _summarize(
        args, out, code, (started, applied), name=name, thresholds=thresholds, say=say
    )
    if gateway is not None:
        problem = gateway.send(final_samples(summary, time.time()))
        if problem:
            print(f"wsconn load: metrics: {problem}", file=sys.stderr, flush=True)
    if summary is None:
        return EXIT_LOCUST, None
    return (EXIT_OK if summary.passed else EXIT_FAILED), summary


def _summarize(
    args: argparse.Namespace,
    out: Path,
    code: int | None,
    storm: tuple[float | None, list[FaultWindow]],
    *,
    name: str,
    thresholds: Thresholds,
    say: Callable[[str], None],
) -> LoadSummary | None:
    """The judged summary from the files Locust left in ``out`` and ``storm`` (when the load
    began, the faults applied); None when Locust did not finish."""
    started, applied = storm
    stats = out / "locust_stats.csv"
    if code != 0 or not stats.is_file():
        why = "did not finish in time" if code is None else f"exited with {code}"
        log = out / "master.log"
        say(f"wsconn load: Locust {why}; the end of {log}:\n{_tail(log)}")
        return None
    result_path = out / "wsconn.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    failures = out / "locust_failures.csv"
    final = result.get("locust_csv", {})  # a WebSocketUser run: the tables at the very end
    summary = build_summary(
        scenario=name,
        users=args.users,
        duration_s=args.duration,
        stats_csv=final.get("stats") or stats.read_text(),
        failures_csv=final.get("failures") or (failures.read_text() if failures.is_file() else ""),
        result=result,
        windows=applied,
        end=(started or 0.0) + args.duration,
        grace=args.storm_grace,
        thresholds=thresholds,
    )
    summary.reports = [str(out / f) for f in ("report.html", "locust_stats.csv", "summary.json")]
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2, default=str))
    return summary
