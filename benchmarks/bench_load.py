"""Benchmark the load generator: per-process rates, idle connections, and a peer tool beside it.

Run from the repository root (it needs the ``[load]`` extra; Artillery is optional)::

    .venv/bin/python benchmarks/bench_load.py                  # full run (~3 min)
    .venv/bin/python benchmarks/bench_load.py --quick          # shorter runs, 2,000 idle
    .venv/bin/python benchmarks/bench_load.py --artillery DIR  # DIR/node_modules/.bin/artillery
    .venv/bin/python benchmarks/bench_load.py --profile        # py-spy top functions too

One reference server (auth off, no connection limit) runs pinned to CPU 0; each load generator
runs pinned to CPU 1, so "per CPU-second" is the generator's own CPU time (user + system) in the
measured window, and "per second" is capped by the server's core. Every figure comes from the
same run on the same server:

- clients: the WebSocket clients a Locust user could run on, driven bare under gevent
  (10 greenlets of connect+close; 50 greenlets of back-to-back echoes),
- Locust + WebSocketUser (one process): handshakes (connect_storm) and round trips
  (steady_messaging, 100 users, no pause), counted from Locust's stats history between two CPU
  samples taken after the ramp-up,
- idle: one Locust process holding N idle_hold users (keepalive on), RSS per 1,000,
- Artillery's ``ws`` engine on the same server: connect+1 echo+close per VU, and N idle VUs.
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
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = REPO_ROOT / "scenarios"
SERVER_CPU, CLIENT_CPU = "0", "1"
SECRET = "b" * 64
ARTILLERY_TIMEOUT = 120.0  # seconds; an overloaded Artillery waits out SYN retries for minutes


@dataclass
class Rate:
    label: str
    count: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.count / self.wall_s if self.wall_s else 0.0

    @property
    def per_cpu_s(self) -> float:
        return self.count / self.cpu_s if self.cpu_s else 0.0


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


class Server:
    """The reference server, auth off, pinned to CPU 0."""

    def __init__(self) -> None:
        env = {**os.environ, "WSCONN_REFERENCE_SECRET": SECRET}
        argv = [sys.executable, "-m", "pytest_wsconn.reference", "--port", "0", "--auth", "off"]
        argv += ["--max-connections", "1000000"]
        self.process = subprocess.Popen(
            pinned(SERVER_CPU, argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        self.url = line.rpartition(" ")[2]
        self.http = self.url.replace("ws://", "http://").removesuffix("/ws")

    def active(self) -> int:
        with urllib.request.urlopen(f"{self.http}/health/websocket", timeout=5) as answer:  # noqa: S310 - loopback
            data = json.load(answer)
        return int(data.get("active_connections", 0))

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


def bench_clients(server: Server, seconds: float) -> list[Rate]:
    rates = []
    for which in ("wsconn", "websocket-client", "websockets.sync"):
        for mode in ("churn", "echo"):
            argv = [sys.executable, "-c", CLIENT_PROBE, server.url, which, mode, str(seconds)]
            done = subprocess.run(
                pinned(CLIENT_CPU, argv),
                capture_output=True,
                text=True,
                timeout=seconds + 60,
                check=False,
            )
            try:
                data = json.loads(done.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                print(f"  {which} {mode}: failed: {done.stderr[-300:]}")
                continue
            label = f"{which}: {'connect+close' if mode == 'churn' else 'echo round trip'}"
            rates.append(Rate(label, data["count"], data["wall"], data["cpu"]))
    return rates


# Locust


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


def run_locust(
    scenario: str,
    server: Server,
    *,
    users: int,
    rate: float,
    seconds: float,
    options: list[str],
    out: Path,
) -> tuple[subprocess.Popen[bytes], Path]:
    out.mkdir(parents=True, exist_ok=True)
    locustfile = scenario if scenario.endswith(".py") else str(SCENARIOS / f"{scenario}.py")
    argv = [
        sys.executable, "-m", "locust", "-f", locustfile,
        "--headless",
        "-u", str(users), "-r", str(rate), "-t", f"{int(seconds)}s", "--host", server.url,
        "--stop-timeout", "0", "--csv", str(out / "locust"), "--csv-full-history",
        "--only-summary", "--loglevel", "WARNING", f"--ws-result={out / 'wsconn.json'}",
        "--ws-auth=none", *options,
    ]  # fmt: skip
    log = (out / "locust.log").open("wb")
    return subprocess.Popen(pinned(CLIENT_CPU, argv), stdout=log, stderr=subprocess.STDOUT), out


def wait_started(out: Path, timeout: float = 60) -> float:
    marker = out / "wsconn.json.started"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.is_file() and marker.read_text():
            return float(marker.read_text())
        time.sleep(0.05)
    raise RuntimeError(f"Locust did not start: {out / 'locust.log'}")


def locust_rate(
    label: str,
    scenario: str,
    name: str,
    server: Server,
    *,
    users: int,
    seconds: float,
    options: list[str],
    out: Path,
    profile: bool,
) -> tuple[Rate, str]:
    process, out = run_locust(
        scenario, server, users=users, rate=users, seconds=seconds, options=options, out=out
    )
    ps = psutil.Process(process.pid)
    wait_started(out)
    time.sleep(2.0)  # ramp-up done, steady state
    t_a, cpu_a = time.time(), cpu_of(ps)
    window = seconds - 4.0
    top = ""
    if profile and shutil.which(str(REPO_ROOT / ".venv/bin/py-spy")):
        top = py_spy_top(process.pid, window, out)
    else:
        time.sleep(window)
    t_b, cpu_b = time.time(), cpu_of(ps)
    process.wait(timeout=seconds + 60)
    history = out / "locust_stats_history.csv"
    count = history_count(history, name, t_b) - history_count(history, name, t_a)
    return Rate(label, int(count), t_b - t_a, cpu_b - cpu_a), top


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
    server: Server, users: int, rate: int, out: Path, hold: float
) -> tuple[int, int, int]:
    """Connections held by one Locust process, its RSS before the ramp and when all are up."""
    seconds = users / rate + hold + 15
    options = ["--ws-ping-interval=20"]
    process, out = run_locust(
        "idle_hold", server, users=users, rate=rate, seconds=seconds, options=options, out=out
    )
    ps = psutil.Process(process.pid)
    wait_started(out)
    base = rss_of(ps)
    deadline = time.monotonic() + users / rate + 60
    held = 0
    while time.monotonic() < deadline:
        held = server.active()
        if held >= users:
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


def artillery_run(
    binary: Path, config: dict[str, object], out: Path, server: Server | None = None
) -> tuple[float, float, dict[str, int], int, int]:
    """Run Artillery: CPU s, wall s, its counters, peak RSS, peak connections at the server."""
    out.mkdir(parents=True, exist_ok=True)
    script = out / "script.json"
    script.write_text(json.dumps(config))
    report = out / "report.json"
    env = {**os.environ, "ARTILLERY_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    started = time.monotonic()
    argv = [str(binary), "run", "--quiet", "--output", str(report), str(script)]
    with (out / "artillery.log").open("wb") as log:
        process = subprocess.Popen(
            pinned(CLIENT_CPU, argv), stdout=subprocess.DEVNULL, stderr=log, env=env
        )
        ps = psutil.Process(process.pid)
        cpu, peak, active = 0.0, 0, 0
        while process.poll() is None:
            if time.monotonic() - started > ARTILLERY_TIMEOUT:  # overloaded: SYN retries
                process.kill()
                process.wait()
                break
            cpu = max(cpu, cpu_of(ps))
            peak = max(peak, rss_of(ps))
            if server is not None:
                active = max(active, server.active())
            time.sleep(0.25)
    wall = time.monotonic() - started
    counters: dict[str, int] = {}
    if report.is_file():
        counters = json.loads(report.read_text()).get("aggregate", {}).get("counters", {})
    return cpu, wall, counters, peak, active


ARTILLERY_MESSAGE = '{"m": "' + "x" * 23 + '"}'  # 32 bytes, as Locust's; JSON so that
# Artillery's reply handler (which tries JSON.parse on every message) takes its fast path.


def echo_step() -> dict[str, object]:
    """A ws ``send`` that waits for the echo (Artillery waits only when it captures)."""
    return {"send": {"payload": ARTILLERY_MESSAGE, "capture": {"json": "$.m", "as": "echo"}}}


def bench_artillery(
    binary: Path, server: Server, *, seconds: float, idle: int, work: Path, skip_idle: bool
) -> tuple[list[Rate], tuple[int, int, int] | None]:
    target = {"target": server.url, "ws": {"rejectUnauthorized": False}}
    base = {
        "config": {**target, "phases": [{"duration": 1, "arrivalCount": 1}]},
        "scenarios": [{"engine": "ws", "flow": [{"think": 0.01}]}],
    }
    base_cpu, base_wall, _, base_rss, _ = artillery_run(binary, base, work / "art-base")
    rates = []
    churn = {
        "config": {**target, "phases": [{"duration": int(seconds), "arrivalRate": 1000}]},
        "scenarios": [{"engine": "ws", "flow": [echo_step()]}],
    }
    cpu, wall, counters, _, _ = artillery_run(binary, churn, work / "art-churn")
    rates.append(
        Rate(
            "Artillery ws: connect+1 echo+close (1,000 VU/s offered)",
            int(counters.get("vusers.completed", 0)),
            max(wall - base_wall, 1e-9),
            max(cpu - base_cpu, 1e-9),
        )
    )
    loops = int(200 * seconds)
    echo = {
        "config": {**target, "phases": [{"duration": 1, "arrivalCount": 100}]},
        "scenarios": [{"engine": "ws", "flow": [{"loop": [echo_step()], "count": loops}]}],
    }
    cpu, wall, counters, _, _ = artillery_run(binary, echo, work / "art-echo")
    rates.append(
        Rate(
            "Artillery ws: echo round trip (100 VUs)",
            int(counters.get("websocket.messages_received", 0)),
            max(wall - base_wall, 1e-9),
            max(cpu - base_cpu, 1e-9),
        )
    )
    held = None
    if not skip_idle:
        ramp = max(1, idle // 1000)
        hold = {
            "config": {**target, "phases": [{"duration": ramp, "arrivalRate": idle // ramp}]},
            "scenarios": [{"engine": "ws", "flow": [{"think": ramp + 10}]}],
        }
        _, _, _, rss, active = artillery_run(binary, hold, work / "art-idle", server)
        held = (active, base_rss, rss)
    return rates, held


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="5 s runs and 2,000 idle")
    parser.add_argument("--idle", type=int, default=None, help="idle connections (10,000)")
    parser.add_argument(
        "--artillery", type=Path, default=Path(tempfile.gettempdir()) / "bench" / "artillery"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the Locust runs")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["clients", "locust", "idle", "artillery"]
    )
    args = parser.parse_args()
    seconds = 5.0 if args.quick else 10.0
    idle = args.idle or (2000 if args.quick else 10000)
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"server on CPU {SERVER_CPU}, load generators on CPU {CLIENT_CPU}"
    )
    server = Server()
    work = Path(tempfile.mkdtemp(prefix="bench_load_"))
    scenario = work / "connect_echo_close.py"
    scenario.write_text(CONNECT_ECHO_CLOSE)
    rates: list[Rate] = []
    peer: list[Rate] = []
    notes: list[str] = []
    held = peer_held = None
    binary = args.artillery / "node_modules" / ".bin" / "artillery"
    try:
        if "clients" not in args.skip:
            rates += bench_clients(server, seconds / 2)
        if "locust" not in args.skip:
            for label, file, name, users, options in (
                ("connect+close (connect_storm, 10 users)", "connect_storm", "connect", 10, []),
                ("connect+1 echo+close (10 users)", str(scenario), "message", 10, []),
                ("echo round trip (steady_messaging, 100 users)", "steady_messaging",
                 "message", 100, ["--ws-message-interval=0"]),
            ):  # fmt: skip
                rate, top = locust_rate(
                    f"Locust+WebSocketUser: {label}", file, name, server, users=users,
                    seconds=seconds, options=options, out=work / Path(file).stem,
                    profile=args.profile,
                )  # fmt: skip
                rates.append(rate)
                if top:
                    notes.append(f"py-spy, Locust process, {label}, own time:\n{top}")
        if "artillery" not in args.skip and binary.exists():
            peer, peer_held = bench_artillery(
                binary, server, seconds=seconds, idle=idle, work=work, skip_idle="idle" in args.skip
            )
        elif "artillery" not in args.skip:
            notes.append(f"Artillery not found at {binary} (see benchmarks/README.md)")
        if "idle" not in args.skip:
            held = locust_idle(server, idle, 1000, work / "idle", 5.0)
    finally:
        server.stop()
    report(rates, peer, held, peer_held, idle)
    for note in notes:
        print(note)
    print(f"\nraw files: {work}")
    return 0


def report(
    rates: list[Rate],
    peer: list[Rate],
    held: tuple[int, int, int] | None,
    peer_held: tuple[int, int, int] | None,
    idle: int,
) -> None:
    print()
    print(f"{'figure':<74} {'count':>8} {'per s':>9} {'per CPU-s':>10}")
    for rate in rates + peer:
        print(f"{rate.label:<74} {rate.count:>8} {rate.per_s:>9,.0f} {rate.per_cpu_s:>10,.0f}")
    by_key = {
        r.label.split(": ", 1)[1].split(" (")[0]: r for r in rates if r.label.startswith("Locust")
    }
    for rate in peer:
        key = rate.label.split(": ", 1)[1].split(" (")[0]
        ours = by_key.get(key)
        if ours and rate.per_cpu_s:
            print(
                f"ratio Locust/Artillery, {key}: {ours.per_cpu_s / rate.per_cpu_s:.2f} per CPU-s, "
                f"{ours.per_s / rate.per_s:.2f} per s"
            )
    if held is not None:
        count, base, rss = held
        per_k = (rss - base) / max(count, 1) * 1000 / 2**20
        verdict = "PASS" if count >= 10000 and rss <= 2**30 else "FAIL" if idle >= 10000 else "-"
        print(
            f"Locust idle_hold, one process: {count:,} of {idle:,} connections held, RSS "
            f"{rss / 2**20:.0f} MiB ({base / 2**20:.0f} MiB before the ramp, "
            f"{per_k:.1f} MiB per 1,000); goal ≥ 10,000 in ≤ 1 GiB: {verdict}"
        )
    if peer_held is not None:
        count, base, rss = peer_held
        per_k = (rss - base) / max(count, 1) * 1000 / 2**20
        print(
            f"Artillery ws, idle: {count:,} connections at the server at peak, peak RSS "
            f"{rss / 2**20:.0f} MiB ({base / 2**20:.0f} MiB for a 1-VU run, {per_k:.1f} MiB "
            "per 1,000 above it)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
