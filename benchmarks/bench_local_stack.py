"""Benchmark the local stack: start-up, fault round trips and the check battery.

Run from the repository root::

    .venv/bin/python benchmarks/bench_local_stack.py            # full run
    .venv/bin/python benchmarks/bench_local_stack.py --quick    # CI-sized run
    .venv/bin/python benchmarks/bench_local_stack.py --strict   # exit 1 if a goal is missed

Every figure is printed next to a baseline measured in the same run (the floor it cannot beat),
its goal and PASS/FAIL. Without ``--strict`` the script reports and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_wsconn import faults
from pytest_wsconn.config import Settings
from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.provision.install import binary_version
from pytest_wsconn.stack import Stack, open_stack
from pytest_wsconn.stack.toxiproxy_server import find_toxiproxy_binary
from pytest_wsconn.timing import scaled

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER = "bench"
REFERENCE_MODULE = "pytest_wsconn.reference.server"

STACK_START_GOAL = 0.5  # seconds, enter -> ready
FAULT_ROUND_TRIP_GOAL = 0.005  # seconds, apply + reset
BATTERY_GOAL = 20.0  # seconds, `wsconn demo -q`
SECURITY_GOAL = 5.0  # seconds the security checks add to the battery (issue 12)

PROCESS_TIMEOUT = 30.0  # seconds for a bare process start (scaled)
BATTERY_TIMEOUT = 180.0  # seconds for one battery run (scaled)
HTTP_TIMEOUT = 5.0  # seconds per raw API request (scaled)
WARMUP = 5  # untimed iterations before an API loop


@dataclasses.dataclass(frozen=True)
class Sample:
    """Durations in seconds of one repeated measurement."""

    label: str
    seconds: tuple[float, ...]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclasses.dataclass(frozen=True)
class Figure:
    """One row of the report: a measurement, its baselines and (optionally) its goal."""

    sample: Sample | None
    baselines: tuple[Sample, ...] = ()
    goal: float | None = None  # seconds; None: informative only
    error: str = ""
    label: str = ""

    @property
    def passed(self) -> bool | None:
        if self.error or self.sample is None:
            return False if self.goal is not None else None
        if self.goal is None:
            return None
        return self.sample.median < self.goal


def timed(action: Callable[[], object], count: int, label: str, warmup: int = 0) -> Sample:
    """Run ``action`` ``warmup`` times untimed, then ``count`` times timed."""
    for _ in range(warmup):
        action()
    durations: list[float] = []
    for _ in range(count):
        start = time.perf_counter()
        action()
        durations.append(time.perf_counter() - start)
    return Sample(label, tuple(durations))


# -- 1. stack start-to-ready ---------------------------------------------------------------


def bench_stack_start(count: int) -> tuple[Sample, Sample]:
    """Enter→ready and teardown times of ``count`` local stacks, one after the other."""
    ready: list[float] = []
    teardown: list[float] = []
    for _ in range(count):
        with contextlib.ExitStack() as resources:
            start = time.perf_counter()
            resources.enter_context(open_stack(Settings(), REPO_ROOT, WORKER))
            entered = time.perf_counter()
            resources.close()
            ready.append(entered - start)
            teardown.append(time.perf_counter() - entered)
    return Sample("stack enter→ready", tuple(ready)), Sample("stack teardown", tuple(teardown))


def run_process(argv: Sequence[str], timeout: float) -> None:
    """Run ``argv`` to completion; raise if it fails or overruns ``timeout``."""
    subprocess.run(argv, capture_output=True, timeout=timeout, check=True, cwd=REPO_ROOT)


def import_seconds(module: str, timeout: float) -> float:
    """Seconds a fresh interpreter spends importing ``module``, as it measures them itself."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        cwd=REPO_ROOT,
    )
    return float(result.stdout.strip())


def bench_process_floors(count: int, toxiproxy_bin: Path) -> tuple[Sample, Sample, Sample]:
    """The bare start of the two processes the stack runs (its floor), and the server's imports."""
    timeout = scaled(PROCESS_TIMEOUT)
    python = timed(
        lambda: run_process([sys.executable, "-c", "pass"], timeout), count, "python -c pass"
    )
    toxiproxy = timed(
        lambda: run_process([str(toxiproxy_bin), "--version"], timeout),
        count,
        "toxiproxy-server --version",
    )
    # Not a hard floor, but what the reference server pays before it can listen.
    reference = Sample(
        "import reference.server (in-process)",
        tuple(import_seconds(REFERENCE_MODULE, timeout) for _ in range(count)),
    )
    return python, toxiproxy, reference


# -- 2. fault round trips ------------------------------------------------------------------


def bare_get_version(host: str, port: int) -> None:
    """One GET /version on a fresh connection, as the API client does, without our client."""
    connection = http.client.HTTPConnection(host, port, timeout=scaled(HTTP_TIMEOUT))
    try:
        connection.request("GET", "/version")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET /version answered HTTP {response.status}")
    finally:
        connection.close()


def bench_faults(stack: Stack, count: int) -> tuple[Sample, Sample, Sample, Sample]:
    """Fault apply+reset round trips on one stack, and the bare API round trip beside them."""
    proxy = stack.proxy
    fault = faults.latency(100)

    def add_and_reset() -> None:
        proxy.add_toxic(fault)
        proxy.reset()

    def latency_block() -> None:
        with proxy.latency(100):
            pass

    def down_block() -> None:
        with proxy.down():
            pass

    def noted(sample: Sample, requests: int) -> Sample:
        return dataclasses.replace(sample, note=f"{requests} API request(s) per iteration")

    host, port = stack.toxiproxy.url.removeprefix("http://").rsplit(":", 1)
    # add+reset is POST toxic, GET toxics, DELETE toxic, PATCH enable; the blocks are 2 each.
    return (
        noted(timed(add_and_reset, count, "add_toxic(latency) + reset()", WARMUP), 4),
        noted(timed(latency_block, count, "with latency(100): pass", WARMUP), 2),
        noted(timed(down_block, count, "with down(): pass", WARMUP), 2),
        noted(timed(lambda: bare_get_version(host, int(port)), count, "GET /version", WARMUP), 1),
    )


# -- 3. battery wall time ------------------------------------------------------------------


def run_battery(argv: Sequence[str], timeout: float) -> tuple[float, str]:
    """Wall time of one pytest run and its last output line; raise if it fails."""
    start = time.perf_counter()
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO_ROOT
    )
    elapsed = time.perf_counter() - start
    lines = result.stdout.strip().splitlines()
    last = lines[-1].strip("= ") if lines else "(no output)"
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip()[-1500:]
        raise RuntimeError(f"{' '.join(argv[1:])} exited {result.returncode}:\n{tail}")
    return elapsed, last


def bench_battery(count: int) -> tuple[Sample, Sample]:
    """``wsconn demo -q`` wall time, and pytest collecting the same battery (no stack) beside it."""
    timeout = scaled(BATTERY_TIMEOUT)
    demo = [sys.executable, "-m", "pytest_wsconn", "demo", "-q"]
    collect = [sys.executable, "-m", "pytest", "-p", "wsconn", "-p", "no:cacheprovider"]
    collect += ["--pyargs", "pytest_wsconn.checks", "--collect-only", "-q"]
    runs = [run_battery(demo, timeout) for _ in range(count)]
    floors = [run_battery(collect, timeout) for _ in range(count)]
    return (
        Sample("wsconn demo -q", tuple(t for t, _ in runs), note=runs[-1][1]),
        Sample("pytest --collect-only (no stack)", tuple(t for t, _ in floors)),
    )


def bench_security(count: int) -> tuple[Sample, Sample]:
    """What the security checks (``-m wsconn_security``) add to the battery, run by run.

    Each run times the battery without them, then the whole battery; the sample is the
    difference, the baseline the battery without them.
    """
    timeout = scaled(BATTERY_TIMEOUT)
    battery = [sys.executable, "-m", "pytest", "-p", "wsconn", "-p", "no:cacheprovider", "-q"]
    battery += ["--pyargs", "pytest_wsconn.checks"]
    without = [run_battery([*battery, "-m", "not wsconn_security"], timeout) for _ in range(count)]
    whole = [run_battery(battery, timeout) for _ in range(count)]
    added = tuple(w - o for (w, _), (o, _) in zip(whole, without, strict=True))
    return (
        Sample("security checks added", added, note=whole[-1][1]),
        Sample("battery without them", tuple(t for t, _ in without), note=without[-1][1]),
    )


# -- report --------------------------------------------------------------------------------


def fmt(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_goal(seconds: float) -> str:
    return f"< {seconds:g} s" if seconds >= 0.1 else f"< {seconds * 1000:g} ms"


def verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "-"}[passed]


def render(figures: Sequence[Figure]) -> str:
    """The report table: figure, median [min .. max], n, baseline, median/baseline, goal, result."""
    header = (
        "figure",
        "median",
        "min .. max",
        "n",
        "baseline",
        "base median",
        "ratio",
        "goal",
        "result",
    )
    rows: list[tuple[str, ...]] = [header]
    for figure in figures:
        goal = fmt_goal(figure.goal) if figure.goal is not None else "-"
        sample = figure.sample
        if sample is None:
            rows.append((figure.label, "ERROR", "", "", "", "", "", goal, verdict(figure.passed)))
            continue
        cells = (
            sample.label,
            fmt(sample.median),
            f"{fmt(min(sample.seconds))} .. {fmt(max(sample.seconds))}",
            str(len(sample.seconds)),
        )
        baselines: Sequence[Sample | None] = figure.baselines or (None,)
        for index, base in enumerate(baselines):
            base_cells = ("", "", "")
            if base is not None:
                ratio = f"{sample.median / base.median:.1f}" if base.median > 0 else "-"
                base_cells = (base.label, fmt(base.median), ratio)
            if index == 0:
                rows.append((*cells, *base_cells, goal, verdict(figure.passed)))
            else:
                rows.append(("", "", "", "", *base_cells, "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {f.sample.label}: {f.sample.note}" for f in figures if f.sample and f.sample.note]
    errors = [f"  {f.label}: {f.error}" for f in figures if f.error]
    out = "\n".join(line.rstrip() for line in lines)
    if notes:
        out += "\nnotes:\n" + "\n".join(notes)
    if errors:
        out += "\nerrors:\n" + "\n".join(errors)
    return out


def measure(args: argparse.Namespace) -> list[Figure]:
    """Take every figure; a figure that cannot be measured becomes an error row."""
    starts, round_trips, batteries = (10, 200, 1) if args.quick else (20, 500, 3)
    figures: list[Figure] = []
    label = "stack enter→ready"
    try:
        binary = find_toxiproxy_binary(None, REPO_ROOT, os.environ)
        print(f"toxiproxy-server {binary_version(binary)} ({binary})", file=sys.stderr)
        floors = bench_process_floors(starts, binary)
        ready, teardown = bench_stack_start(starts)
        figures.append(Figure(ready, floors, STACK_START_GOAL))
        figures.append(Figure(teardown))
    except (WsconnError, OSError, ValueError, subprocess.SubprocessError) as exc:
        figures.append(Figure(None, goal=STACK_START_GOAL, error=str(exc), label=label))
    print("stack start measured", file=sys.stderr)

    label = "fault round trips"
    try:
        with open_stack(Settings(), REPO_ROOT, WORKER) as stack:
            add_reset, latency, down, version = bench_faults(stack, round_trips)
        figures.append(Figure(add_reset, (version,), FAULT_ROUND_TRIP_GOAL))
        figures.append(Figure(latency, (version,), FAULT_ROUND_TRIP_GOAL))
        figures.append(Figure(down, (version,), FAULT_ROUND_TRIP_GOAL))
    except (WsconnError, OSError, RuntimeError) as exc:
        figures.append(Figure(None, goal=FAULT_ROUND_TRIP_GOAL, error=str(exc), label=label))
    print("fault round trips measured", file=sys.stderr)

    label = "wsconn demo -q"
    if args.skip_battery:
        return figures
    try:
        battery, collect = bench_battery(batteries)
        figures.append(Figure(battery, (collect,), BATTERY_GOAL))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        figures.append(Figure(None, goal=BATTERY_GOAL, error=str(exc), label=label))
    print("battery measured", file=sys.stderr)
    try:
        added, without = bench_security(batteries)
        figures.append(Figure(added, (without,), SECURITY_GOAL))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        figures.append(Figure(None, goal=SECURITY_GOAL, error=str(exc), label="security checks"))
    print("security checks measured", file=sys.stderr)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="CI-sized: 10 starts, 200 round trips, 1 battery"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if any goal is missed")
    parser.add_argument("--skip-battery", action="store_true", help="skip figure 3")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    figures = measure(args)
    mode = "quick" if args.quick else "full"
    print(
        f"\npytest-wsconn local stack benchmark ({mode}; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"took {time.perf_counter() - began:.1f} s)\n"
    )
    print(render(figures))
    failed = [f for f in figures if f.passed is False]
    print(f"\n{len(failed)} goal(s) missed" if failed else "\nall goals met")
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
