"""Benchmark the load generator: rates per CPU-second as ratios to peers measured in the same run.

Run from the repository root (it needs the ``[load]`` extra; Artillery is optional)::

    .venv/bin/python benchmarks/bench_load.py --quick              # before every change (< 2 min)
    .venv/bin/python benchmarks/bench_load.py --quick --before DIR # + the code in DIR (e.g. main)
    .venv/bin/python benchmarks/bench_load.py                      # full: 3 figures, 3 reps, idle
    .venv/bin/python benchmarks/bench_load.py --quick --artillery  # + Artillery in quick mode
    .venv/bin/python benchmarks/bench_load.py --profile            # py-spy top functions too

One echo server runs pinned to CPU 0 -- Node's ``ws`` (the fast target, so that the load
generator is the bottleneck; installed with npm into ~/.cache/pytest-wsconn/bench/node-ws on first
use) or, with ``--server reference``, the reference server -- and each load generator runs pinned
to CPU 1, so "per CPU-second" is the generator's own CPU time (user + system) in the
measured window, and "per second" is capped by the server's core. The machine is shared and
noisy, so absolute figures move from run to run: what the script stands behind are **ratios**
between load generators measured in the same run, repetitions interleaved (every contender of a
figure runs once per repetition, in a rotated order), printed as median (min..max) over the
repetitions. The contenders:

- ``wsconn``: Locust + ``WebSocketUser`` from this tree (``scenarios/``),
- ``before``: the same from another tree (``--before DIR``, e.g. ``git archive main``),
- ``locust+websocket-client`` (the baseline): Locust users on websocket-client 1.9, firing one
  request event per step as ``WebSocketUser`` does,
- ``node ws client``: Node's ``ws`` client (the same npm install), 10 loops of connect+close or
  100 connections echoing, its own CPU from ``process.cpuUsage``,
- ``artillery``: Artillery's ``ws`` engine (full mode, or ``--quick --artillery``; installed with
  npm into ~/.cache/pytest-wsconn/bench/artillery on first use), counted at the server,
- the bare clients under gevent, no Locust (``--clients``): our ``wsclient``, websocket-client,
  websockets' sync client.

Idle (full mode, or ``--figure idle``): one Locust process holding ``--idle`` (19,000)
``idle_hold`` connections, keepalive on, RSS per 1,000: one connection per user (and the same for
``--before``), then ``--idle-per-user`` (10) per user.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU, CLIENT_CPU = "0", "1"
SECRET = "b" * 64
ARTILLERY_START_TIMEOUT = 60.0  # seconds for node to load Artillery and its flows to start
BASELINE = "locust+websocket-client"


@dataclass
class Rate:
    count: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.count / self.wall_s if self.wall_s else 0.0

    @property
    def per_cpu_s(self) -> float:
        return self.count / self.cpu_s if self.cpu_s else 0.0


@dataclass(frozen=True)
class Timing:
    """How long a Locust run warms up, is measured, and how much history it writes after."""

    ramp: float
    window: float


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if shutil.which("taskset") else argv


def cpu_of(process: psutil.Process) -> float:
    """CPU seconds of a process and its children (Artillery runs node workers)."""
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def rss_of(process: psutil.Process) -> int:
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


NODE_WS_VERSION = "8.23.0"
NODE_WS_CACHE = Path.home() / ".cache" / "pytest-wsconn" / "bench" / "node-ws"
NODE_WS_SERVER = textwrap.dedent(
    """
    // The fast target: Node's ws echo server, so that the load generator is the bottleneck.
    const http = require("http");
    const { WebSocketServer } = require(process.argv[2]);
    const server = http.createServer((request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ active_connections: wss.clients.size, messages }));
    });
    const wss = new WebSocketServer({ server, path: "/ws", perMessageDeflate: false });
    let messages = 0;  // echoed so far: what a generator that counts nothing itself is measured by
    wss.on("connection", (ws) => {
      ws.on("message", (data, isBinary) => { messages++; ws.send(data, { binary: isBinary }); });
    });
    server.listen(0, "127.0.0.1", () => {
      console.log(`listening on ws://127.0.0.1:${server.address().port}/ws`);
    });
    """
)


def node_ws(cache: Path) -> Path | None:
    """The ``ws`` package, installed with npm into ``cache`` on first use (None: no node/npm)."""
    module = cache / "node_modules" / "ws"
    if module.is_dir():
        return module
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund",
         f"ws@{NODE_WS_VERSION}"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return module


ARTILLERY_VERSION = "2.0.21"
ARTILLERY_CACHE = Path.home() / ".cache" / "pytest-wsconn" / "bench" / "artillery"


def artillery_binary(cache: Path) -> Path | None:
    """Artillery, installed with npm into ``cache`` on first use (~600 MB, a minute or two; its
    Playwright engine's browser is never downloaded); None: no node/npm."""
    binary = cache / "node_modules" / ".bin" / "artillery"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    print(f"installing Artillery {ARTILLERY_VERSION} into {cache} (once) ...", flush=True)
    subprocess.run(
        [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund",
         f"artillery@{ARTILLERY_VERSION}"],
        check=True, capture_output=True, timeout=900,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
    )  # fmt: skip
    return binary


NODE_WS_CLIENT = textwrap.dedent(
    """
    // A peer: Node's ws client, 10 loops of connect+close or 100 connections echoing back to
    // back; counts and CPU (its own, process.cpuUsage) in the window after the ramp.
    const WebSocket = require(process.argv[2]);
    const [url, mode] = [process.argv[3], process.argv[4]];
    const [ramp, window] = [Number(process.argv[5]), Number(process.argv[6])];
    const message = "x".repeat(32);
    let count = 0, counting = false, stopped = false;
    const options = { perMessageDeflate: false };
    function churn() {
      const ws = new WebSocket(url, options);
      ws.on("open", () => ws.close(1000));
      ws.on("close", () => { if (counting) count++; if (!stopped) churn(); });
      ws.on("error", () => {});
    }
    function echo() {
      const ws = new WebSocket(url, options);
      ws.on("open", () => ws.send(message));
      ws.on("message", () => { if (counting) count++; if (!stopped) ws.send(message); });
      ws.on("error", () => {});
    }
    for (let i = 0; i < (mode === "churn" ? 10 : 100); i++) (mode === "churn" ? churn : echo)();
    setTimeout(() => {
      counting = true;
      const cpu0 = process.cpuUsage(), t0 = process.hrtime.bigint();
      setTimeout(() => {
        const cpu = process.cpuUsage(cpu0), wall = Number(process.hrtime.bigint() - t0) / 1e9;
        stopped = true;
        console.log(JSON.stringify({ count, wall, cpu: (cpu.user + cpu.system) / 1e6 }));
        process.exit(0);
      }, window * 1000);
    }, ramp * 1000);
    """
)


def node_client(ws_module: Path, server: Server, mode: str, timing: Timing, out: Path) -> Rate:
    """Node's ws client as a load generator on CPU 1 (``mode``: churn or echo)."""
    out.mkdir(parents=True, exist_ok=True)
    script = out / "node_ws_client.js"
    script.write_text(NODE_WS_CLIENT)
    argv = ["node", str(script), str(ws_module), server.url, mode]
    argv += [str(timing.ramp), str(timing.window)]
    done = subprocess.run(
        pinned(CLIENT_CPU, argv),
        capture_output=True,
        text=True,
        timeout=timing.ramp + timing.window + 60,
        check=False,
    )
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"node ws client {mode}: {done.stderr[-300:]}") from None
    return Rate(data["count"], data["wall"], data["cpu"])


class Server:
    """The echo server every generator loads, pinned to CPU 0: Node's ``ws`` (the fast target)
    or the reference server (Python websockets, auth off, no connection limit)."""

    def __init__(self, ws_module: Path | None, work: Path) -> None:
        env = {**os.environ, "WSCONN_REFERENCE_SECRET": SECRET}
        if ws_module is not None:
            script = work / "node_ws_server.js"
            script.write_text(NODE_WS_SERVER)
            argv = ["node", str(script), str(ws_module)]
            self.name = f"Node ws {NODE_WS_VERSION} echo server"
        else:
            argv = [sys.executable, "-m", "pytest_wsconn.reference", "--port", "0"]
            argv += ["--auth", "off", "--max-connections", "1000000"]
            self.name = "the reference server (Python websockets)"
        self.process = subprocess.Popen(
            pinned(SERVER_CPU, argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        self.url = line.rpartition(" ")[2]
        self.http = self.url.replace("ws://", "http://").removesuffix("/ws")

    def health(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.http}/health/websocket", timeout=5) as answer:  # noqa: S310 - loopback
            return dict(json.load(answer))

    def active(self) -> int:
        return int(self.health().get("active_connections", 0))

    def messages(self) -> int:
        """Messages the Node server echoed so far (it counts them; the reference server not)."""
        return int(self.health()["messages"])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# Bare clients under gevent

CLIENT_PROBE = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import gevent, json, resource, sys, time, warnings
    warnings.simplefilter("ignore")
    url, which, mode, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    message = "x" * 32
    if which == "wsconn":
        from pytest_wsconn.load.wsclient import WsClient
        opener = lambda: WsClient.connect(url)[0]
        echo = lambda c: (c.send(message), c.recv(5))
        close = lambda c: c.close()
    elif which == "websocket-client":
        import websocket
        opener = lambda: websocket.create_connection(url, suppress_origin=True)
        echo = lambda c: (c.send(message), c.recv())
        close = lambda c: c.close()
    else:
        from websockets.sync.client import connect
        opener = lambda: connect(url, compression=None, ping_interval=None)
        echo = lambda c: (c.send(message), c.recv(5))
        close = lambda c: c.close()
    count = [0]
    stop = time.monotonic() + seconds
    def churn():
        while time.monotonic() < stop:
            c = opener(); close(c); count[0] += 1
    def echoes():
        c = opener()
        while time.monotonic() < stop:
            echo(c); count[0] += 1
        close(c)
    before = resource.getrusage(resource.RUSAGE_SELF); started = time.monotonic()
    task, n = (churn, 10) if mode == "churn" else (echoes, 50)
    greenlets = [gevent.spawn(task) for _ in range(n)]
    gevent.joinall(greenlets, timeout=seconds + 30)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    errors = [repr(g.exception) for g in greenlets if g.exception]
    wall = time.monotonic() - started
    print(json.dumps({"count": count[0], "wall": wall, "cpu": cpu, "errors": errors[:1]}))
    """
)


def bare_client(server: Server, which: str, mode: str, seconds: float) -> Rate:
    """One bare client under gevent, no Locust: 10 greenlets of connect+close or 50 of echoes."""
    argv = [sys.executable, "-c", CLIENT_PROBE, server.url, which, mode, str(seconds)]
    done = subprocess.run(
        pinned(CLIENT_CPU, argv),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"{which} {mode}: {done.stderr[-300:]}") from None
    return Rate(data["count"], data["wall"], data["cpu"])


# Locust


WEBSOCKET_CLIENT_USERS = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    import websocket
    from locust import User, constant, events, task

    MESSAGE = "x" * 32

    @events.test_start.add_listener
    def _started(**_):
        Path(os.environ["BENCH_STARTED"]).write_text(repr(time.time()))

    class _WebsocketClientUser(User):
        abstract = True
        wait_time = constant(0)

        def fire(self, name, started, length=0, exception=None):
            self.environment.events.request.fire(
                request_type="WS", name=name, response_time=(time.perf_counter() - started) * 1000,
                response_length=length, exception=exception, context={},
            )

    class Churn(_WebsocketClientUser):
        @task
        def churn(self):
            started = time.perf_counter()
            try:
                ws = websocket.create_connection(self.host, suppress_origin=True, timeout=10)
            except Exception as exc:
                self.fire("connect", started, exception=exc)
                return
            self.fire("connect", started)
            started = time.perf_counter()
            ws.close()
            self.fire("close", started)

    class Echo(_WebsocketClientUser):
        def on_start(self):
            self.ws = websocket.create_connection(self.host, suppress_origin=True, timeout=10)

        @task
        def echo(self):
            started = time.perf_counter()
            try:
                self.ws.send(MESSAGE)
                reply = self.ws.recv()
            except Exception as exc:
                self.fire("message", started, exception=exc)
                self.ws = websocket.create_connection(self.host, suppress_origin=True, timeout=10)
                return
            self.fire("message", started, len(reply))

    class ConnectEchoClose(_WebsocketClientUser):
        @task
        def once(self):
            started = time.perf_counter()
            try:
                ws = websocket.create_connection(self.host, suppress_origin=True, timeout=10)
                ws.send(MESSAGE)
                reply = ws.recv()
            except Exception as exc:
                self.fire("message", started, exception=exc)
                return
            self.fire("message", started, len(reply))
            ws.close()
    """
)


@dataclass(frozen=True)
class LocustRun:
    """One figure of one Locust contender: the locustfile, its user class, what is counted."""

    locustfile: Path
    user_class: str | None
    name: str  # the request name counted
    users: int
    options: tuple[str, ...] = ()
    pythonpath: Path | None = None  # the tree whose pytest_wsconn the users import
    wsconn: bool = False  # WebSocketUser: --ws-* options, its start marker


def locust_rate(
    run: LocustRun, server: Server, timing: Timing, out: Path, *, profile: bool
) -> tuple[Rate, str]:
    """Run Locust headless; count ``run.name`` requests and CPU in the window after the ramp."""
    out.mkdir(parents=True, exist_ok=True)
    started = out / "wsconn.json.started"  # WebSocketUser's marker; the peer writes it too
    argv = [
        sys.executable, "-m", "locust", "-f", str(run.locustfile),
        "--headless", "-u", str(run.users), "-r", str(run.users),
        "-t", f"{int(timing.ramp + timing.window) + 30}s", "--host", server.url,
        "--stop-timeout", "0", "--csv", str(out / "locust"), "--csv-full-history",
        "--only-summary", "--loglevel", "WARNING", *run.options,
    ]  # fmt: skip
    if run.wsconn:
        argv += [f"--ws-result={out / 'wsconn.json'}", "--ws-auth=none"]
    if run.user_class:
        argv.append(run.user_class)
    env = {**os.environ, "BENCH_STARTED": str(started)}
    if run.pythonpath is not None:
        env["PYTHONPATH"] = str(run.pythonpath)
    with (out / "locust.log").open("wb") as log:
        # cwd: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH: run
        # from the repository root, a `before` tree's users imported this tree's pytest_wsconn
        process = subprocess.Popen(
            pinned(CLIENT_CPU, argv), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=out
        )
    try:
        ps = psutil.Process(process.pid)
        wait_started(started, out / "locust.log")
        time.sleep(timing.ramp)  # ramp-up done, steady state
        t_a, cpu_a = time.time(), cpu_of(ps)
        top = ""
        if profile and shutil.which(str(REPO_ROOT / ".venv/bin/py-spy")):
            top = py_spy_top(process.pid, timing.window, out)
        else:
            time.sleep(timing.window)
        t_b, cpu_b = time.time(), cpu_of(ps)
        time.sleep(1.1)  # Locust writes its history every second: one row past t_b
    finally:
        process.send_signal(signal.SIGTERM)
        try:  # the window's history is written; websocket-client can hang at stop (its close())
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    history = out / "locust_stats_history.csv"
    count = history_count(history, run.name, t_b) - history_count(history, run.name, t_a)
    return Rate(int(count), t_b - t_a, cpu_b - cpu_a), top


def wait_started(marker: Path, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.is_file() and marker.read_text():
            return
        time.sleep(0.05)
    raise RuntimeError(f"Locust did not start: {log}")


def history_count(path: Path, name: str, at: float) -> float:
    """The cumulative request count of ``name`` at time ``at``, interpolated from the history."""
    points: list[tuple[float, float]] = []
    with path.open() as rows:
        for row in csv.DictReader(rows):
            if row["Name"] == name:
                points.append((float(row["Timestamp"]), float(row["Total Request Count"])))
    points.sort()
    for (t0, c0), (t1, c1) in itertools.pairwise(points):
        if t0 <= at <= t1:
            return c0 + (c1 - c0) * (at - t0) / (t1 - t0) if t1 > t0 else c1
    return points[-1][1] if points and at > points[-1][0] else 0.0


def py_spy_top(pid: int, seconds: float, out: Path) -> str:
    """Sample the process with py-spy and return its ten heaviest functions (own time)."""
    raw = out / "profile.txt"
    subprocess.run(
        [str(REPO_ROOT / ".venv/bin/py-spy"), "record", "--pid", str(pid), "--duration",
         str(int(seconds)), "--format", "raw", "--output", str(raw), "--nonblocking"],
        capture_output=True, timeout=seconds + 30, check=False,
    )  # fmt: skip
    own: dict[str, int] = {}
    total = 0
    if raw.is_file():
        for line in raw.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if not samples.isdigit():
                continue
            leaf = stack.split(";")[-1]
            own[leaf] = own.get(leaf, 0) + int(samples)
            total += int(samples)
    ranked = sorted(own.items(), key=lambda item: -item[1])[:10]
    return (
        "\n".join(f"    {100 * n / total:5.1f} %  {frame}" for frame, n in ranked) if total else ""
    )


def locust_idle(
    server: Server,
    tree: Path,
    connections: int,
    out: Path,
    *,
    per_user: int = 1,
    rate: int = 1000,
    hold: float = 5.0,
) -> tuple[int, int, int]:
    """Connections held by one Locust process (``tree``'s ``idle_hold``, ``per_user`` to a
    user), its RSS before the ramp and when all are up."""
    out.mkdir(parents=True, exist_ok=True)
    users, rate = connections // per_user, max(1, rate // per_user)
    argv = [
        sys.executable, "-m", "locust", "-f", str(tree / "scenarios" / "idle_hold.py"),
        "--headless", "-u", str(users), "-r", str(rate), "-t", f"{int(users / rate + hold) + 75}s",
        "--host", server.url, "--stop-timeout", "0", "--only-summary", "--loglevel", "WARNING",
        f"--ws-result={out / 'wsconn.json'}", "--ws-auth=none", "--ws-ping-interval=20",
    ]  # fmt: skip
    if per_user > 1:
        argv.append(f"--ws-connections-per-user={per_user}")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with (out / "locust.log").open("wb") as log:
        process = subprocess.Popen(
            pinned(CLIENT_CPU, argv), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=out
        )
    ps = psutil.Process(process.pid)
    wait_started(Path(f"{out / 'wsconn.json'}.started"), out / "locust.log")
    base = rss_of(ps)
    deadline = time.monotonic() + connections / (rate * per_user) + 60
    held = 0
    while time.monotonic() < deadline:
        held = server.active()
        if held >= connections:
            break
        time.sleep(0.5)
    time.sleep(hold)
    held = server.active()
    rss = rss_of(ps)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return held, base, rss


# Artillery


def artillery_rate(binary: Path, server: Server, flow: str, timing: Timing, out: Path) -> Rate:
    """Artillery's ``ws`` engine on CPU 1, measured as the Locust runs are: its CPU (its node
    processes) and the messages the server echoed, in the window after the ramp. It runs far
    longer than that and is stopped after the window (its start-up and its exit are not timed)."""
    out.mkdir(parents=True, exist_ok=True)
    target = {"target": server.url, "ws": {"rejectUnauthorized": False}}
    if flow == "echo":  # 100 connections echoing back to back, as the Locust users
        config = {
            "config": {**target, "phases": [{"duration": 1, "arrivalCount": 100}]},
            "scenarios": [
                {"engine": "ws", "flow": [{"loop": [echo_step()], "count": 100_000_000}]}
            ],
        }
    else:  # connect+1 echo+close, a new virtual user per flow
        config = {
            "config": {**target, "phases": [{"duration": 3600, "arrivalRate": 1000}]},
            "scenarios": [{"engine": "ws", "flow": [echo_step()]}],
        }
    script = out / "script.json"
    script.write_text(json.dumps(config))
    env = {**os.environ, "ARTILLERY_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    argv = [str(binary), "run", "--quiet", str(script)]
    with (out / "artillery.log").open("wb") as log:
        process = subprocess.Popen(
            pinned(CLIENT_CPU, argv), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=out
        )
    try:
        ps = psutil.Process(process.pid)
        deadline = time.monotonic() + ARTILLERY_START_TIMEOUT
        first = server.messages()
        # node has loaded Artillery and its flows run (echo: all 100 connections are open)
        while not (
            server.active() >= 100 if flow == "echo" else server.messages() > first
        ):  # fmt: skip
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Artillery did not start: {out / 'artillery.log'}")
            time.sleep(0.1)
        time.sleep(timing.ramp)
        t_a, cpu_a, n_a = time.monotonic(), cpu_of(ps), server.messages()
        time.sleep(timing.window)
        t_b, cpu_b, n_b = time.monotonic(), cpu_of(ps), server.messages()
    finally:
        kill_tree(process)
    return Rate(n_b - n_a, t_b - t_a, cpu_b - cpu_a)


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """Kill a process and every process under it (Artillery's node workers), and reap it."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
    process.kill()
    process.wait()


ARTILLERY_MESSAGE = '{"m": "' + "x" * 23 + '"}'  # 32 bytes, as Locust's; JSON so that
# Artillery's reply handler (which tries JSON.parse on every message) takes its fast path.


def echo_step() -> dict[str, object]:
    """A ws ``send`` that waits for the echo (Artillery waits only when it captures)."""
    return {"send": {"payload": ARTILLERY_MESSAGE, "capture": {"json": "$.m", "as": "echo"}}}


CONNECT_ECHO_CLOSE = textwrap.dedent(
    """
    from locust import constant, task
    from pytest_wsconn.load.user import WebSocketUser

    class ConnectEchoClose(WebSocketUser):
        wait_time = constant(0)

        @task
        def once(self):
            if self.ws_connect():
                self.ws_exchange()
                self.ws_close()
    """
)


FIGURES: dict[str, tuple[str, str, str, int, str, tuple[str, ...]]] = {
    # key: title, our scenario, request name counted, users, baseline user class, options
    "connect+close": ("connect+close (10 users)", "connect_storm", "connect", 10, "Churn", ()),
    "echo": (
        "echo round trip (100 users, back to back)", "steady_messaging", "message", 100, "Echo",
        ("--ws-message-interval=0",),
    ),
    "connect+echo+close": (
        "connect+1 echo+close (10 users)", "connect_echo_close", "message", 10,
        "ConnectEchoClose", (),
    ),
}  # fmt: skip


NODE_MODES = {"connect+close": "churn", "echo": "echo"}  # figures the Node ws client joins


@dataclass
class Figure:
    """One figure: a callable per contender, and the per-repetition rates they measured."""

    title: str
    baseline: str
    runs: dict[str, Callable[[Path], Rate]]
    rates: dict[str, list[Rate]] = field(default_factory=dict)


def build_figures(
    args: argparse.Namespace, server: Server, ws_module: Path | None, work: Path, notes: list[str]
) -> list[Figure]:
    """The figures to measure and, for each, its contenders."""
    timing = Timing(ramp=1.0, window=2.5) if args.quick else Timing(ramp=2.0, window=8.0)
    peer = work / "websocket_client_users.py"
    peer.write_text(WEBSOCKET_CLIENT_USERS)
    trees = {"wsconn": REPO_ROOT}
    if args.before is not None:
        trees["before"] = args.before.resolve()

    def locust(run: LocustRun) -> Callable[[Path], Rate]:
        def measure(out: Path) -> Rate:
            rate, top = locust_rate(run, server, timing, out, profile=args.profile)
            if top:
                notes.append(f"py-spy, {out.name}, own time:\n{top}")
            return rate

        return measure

    def ours(tree: Path, scenario: str, name: str, users: int, *options: str) -> LocustRun:
        path = tree / "scenarios" / f"{scenario}.py"
        if scenario == "connect_echo_close":  # a locustfile of this script's, on either tree
            path = work / "connect_echo_close.py"
            path.write_text(CONNECT_ECHO_CLOSE)
        return LocustRun(path, None, name, users, options, tree, wsconn=True)

    figures = []
    wanted = [f for f in args.figure or FIGURES if f in FIGURES]
    if args.quick and not args.figure:
        wanted = ["connect+close", "echo"]
    binary = None
    artillery_joins = {"echo", "connect+echo+close"} & set(wanted)
    if (args.artillery or not args.quick) and not args.no_artillery and artillery_joins:
        if args.server != "node":
            notes.append("Artillery needs the Node server (it counts Artillery's echoes)")
        else:
            binary = artillery_binary(args.artillery_cache)
            if binary is None:
                notes.append("node/npm not found: no Artillery")

    def artillery_flow(flow: str) -> Callable[[Path], Rate]:
        assert binary is not None
        return lambda out: artillery_rate(binary, server, flow, timing, out)

    for key in wanted:
        title, scenario, name, users, peer_class, options = FIGURES[key]
        runs = {
            tag: locust(ours(tree, scenario, name, users, *options)) for tag, tree in trees.items()
        }
        runs[BASELINE] = locust(LocustRun(peer, peer_class, name, users))
        if ws_module is not None and key in NODE_MODES:
            mode = NODE_MODES[key]
            runs["node ws client"] = lambda out, m=mode: node_client(
                ws_module, server, m, timing, out
            )
        if binary is not None and key in ("echo", "connect+echo+close"):
            runs["artillery"] = artillery_flow(key)
        figures.append(Figure(title, BASELINE, runs))
    if args.clients:
        seconds = timing.window
        for mode, title in (
            ("churn", "bare client under gevent: connect+close (10 greenlets)"),
            ("echo", "bare client under gevent: echo round trip (50 greenlets)"),
        ):
            runs = {
                which: (lambda out, w=which, m=mode: bare_client(server, w, m, seconds))
                for which in ("wsconn", "websocket-client", "websockets.sync")
            }
            figures.append(Figure(title, "websocket-client", runs))
    return figures


def measure(figures: list[Figure], reps: int, work: Path, *, paired: bool = False) -> None:
    """Every contender of every figure once per repetition, the order rotated each time; or,
    ``paired``, only ``wsconn`` and ``before``, both at once (the same moment of a shared
    machine for both: an A/A pair reads 1.00 ±2 %, where runs one after the other spread
    ±30 %)."""
    for rep in range(reps):
        for figure in figures:
            tags = ["wsconn", "before"] if paired else list(figure.runs)
            shift = 0 if paired else rep % len(tags)
            runs = [run_one(figure, tag, work) for tag in tags[shift:] + tags[:shift]]
            had = {tag: len(figure.rates.get(tag, [])) for tag in tags}
            if paired:
                threads = [threading.Thread(target=run) for run in runs]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            else:
                for run in runs:
                    run()
            for tag in tags:
                for rate in figure.rates.get(tag, [])[had[tag] :]:
                    print(
                        f"  rep {rep + 1}/{reps}  {figure.title:<44} {tag:<24} "
                        f"{rate.per_cpu_s:>9,.0f} per CPU-s {rate.per_s:>9,.0f} per s",
                        flush=True,
                    )


def run_one(figure: Figure, tag: str, work: Path) -> Callable[[], None]:
    """A call that runs ``figure``'s contender ``tag`` once and keeps its rate."""

    def run() -> None:
        out = work / f"{len(figure.rates.get(tag, []))}-{tag}-{figure.title.split()[0]}"
        try:
            rate = figure.runs[tag](out)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"  {figure.title}, {tag}: failed: {exc}", flush=True)
            return
        figure.rates.setdefault(tag, []).append(rate)

    return run


def spread(values: list[float], digits: str) -> str:
    """median (min..max)"""
    if not values:
        return "-"
    median = statistics.median(values)
    return f"{median:{digits}} ({min(values):{digits}}..{max(values):{digits}})"


def report(figures: list[Figure], references: list[str]) -> None:
    """Per figure: each contender's rate per CPU-second and its ratios to the references."""
    for figure in figures:
        print(f"\n{figure.title}")
        refs = [figure.baseline] + [
            r for r in references if r in figure.runs and r != figure.baseline
        ]
        refs = [ref for ref in refs if ref in figure.rates]
        header = f"  {'contender':<24} {'per CPU-s median (min..max)':<30} {'per s median':>12}"
        print(header + "".join(f"  {'÷ ' + ref:<28}" for ref in refs))
        for tag, rates in figure.rates.items():
            line = (
                f"  {tag:<24} {spread([r.per_cpu_s for r in rates], ',.0f'):<30} "
                f"{statistics.median(r.per_s for r in rates):>12,.0f}"
            )
            for ref in refs:
                # ratio per repetition: the two ran next to each other, under the same load
                ratios = [
                    ours.per_cpu_s / theirs.per_cpu_s
                    for ours, theirs in zip(rates, figure.rates.get(ref, []), strict=False)
                    if theirs.per_cpu_s
                ]
                line += f"  {spread(ratios, '.2f'):<28}"
            print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="connect+close and echo, 2.5 s windows, no idle (< 2 min)",
    )
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (3)")
    parser.add_argument(
        "--figure", action="append", choices=[*FIGURES, "idle"], help="only these (idle: any mode)"
    )
    parser.add_argument("--before", type=Path, help="a tree to compare with (its pytest_wsconn)")
    parser.add_argument(
        "--paired",
        action="store_true",
        help="with --before: only wsconn and before, both at once per repetition (tighter)",
    )
    parser.add_argument("--clients", action="store_true", help="the bare clients under gevent too")
    parser.add_argument("--idle", type=int, default=19000, help="idle connections (full mode)")
    parser.add_argument(
        "--idle-per-user", type=int, default=10, help="connections per user, second idle run"
    )
    parser.add_argument(
        "--artillery", action="store_true", help="Artillery in --quick mode too (full mode has it)"
    )
    parser.add_argument("--no-artillery", action="store_true", help="leave Artillery out")
    parser.add_argument(
        "--artillery-cache",
        type=Path,
        default=ARTILLERY_CACHE,
        help=f"npm install of Artillery {ARTILLERY_VERSION} ({ARTILLERY_CACHE})",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the Locust runs")
    parser.add_argument(
        "--server",
        choices=["node", "reference"],
        default="node",
        help="the echo server: Node's ws (fast, the default) or the reference server",
    )
    parser.add_argument(
        "--node-ws", type=Path, default=NODE_WS_CACHE, help=f"npm cache of ws ({NODE_WS_CACHE})"
    )
    args = parser.parse_args()
    if args.paired and args.before is None:
        parser.error("--paired compares with --before: give it")
    started = time.monotonic()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {platform.node()}: {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, Python {platform.python_version()}; "
        f"server on CPU {SERVER_CPU}, load generators on CPU {CLIENT_CPU}; {args.reps} reps",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="bench_load_"))
    ws_module = node_ws(args.node_ws)
    if ws_module is None:
        print("node/npm not found: the reference server, no Node ws client")
    server = Server(ws_module if args.server == "node" else None, work)
    print(f"server: {server.name} at {server.url}", flush=True)
    notes: list[str] = []
    held: dict[str, tuple[int, int, int]] = {}
    try:
        figures = build_figures(args, server, ws_module, work, notes)
        measure(figures, args.reps, work, paired=args.paired)
        if "idle" in (args.figure or ([] if args.quick else ["idle"])):
            runs = [("wsconn", REPO_ROOT, 1), ("before", args.before, 1)]
            if args.idle_per_user > 1:
                runs.append(("wsconn", REPO_ROOT, args.idle_per_user))
            for tag, tree, per_user in runs:
                if tree is not None:
                    label = f"{tag}, {per_user} per user"
                    out = work / f"idle-{tag}-{per_user}"
                    held[label] = locust_idle(
                        server, tree.resolve(), args.idle, out, per_user=per_user
                    )
    finally:
        server.stop()
    report(figures, ["before", "node ws client", "artillery"])
    for label, (count, base, rss) in held.items():
        per_k = (rss - base) / max(count, 1) * 1000 / 2**20
        print(
            f"\nidle_hold, one Locust process ({label}): {count:,} of {args.idle:,} connections "
            f"held, RSS {rss / 2**20:.0f} MiB ({base / 2**20:.0f} MiB before the ramp, "
            f"{per_k:.2f} MiB per 1,000)",
            end="",
        )
    print()
    for note in notes:
        print(note)
    print(f"\n{time.monotonic() - started:.0f} s; raw files: {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
