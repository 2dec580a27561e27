"""Benchmark what ``/metrics`` costs the reference server: its echo throughput with and without.

Run from the repository root::

    .venv/bin/python benchmarks/bench_metrics.py              # 5 rounds of 3 s per variant
    .venv/bin/python benchmarks/bench_metrics.py --quick      # 3 rounds of 1.5 s
    .venv/bin/python benchmarks/bench_metrics.py --strict     # exit 1 if the goal is missed

Two reference servers take turns, side by side in each of ``--rounds`` rounds (which goes first
alternates), under the same clients (``--clients`` connections, each echoing back to back, and
``/metrics`` fetched every ``--scrape-every`` s, 1 s, OpenMetrics as Prometheus asks):

- without: ``prometheus_client`` hidden from the server process — its ``NoMetrics`` path, the
  server as it runs without the ``metrics`` extra (``/metrics`` answers 501, which is checked);
- with: the whole metric set (every handshake, message and close counted and timed; ``/metrics``
  answers 200 with the exposition).

The clients do the same work for both, so only the server's differs. With two CPUs or more the
server runs pinned to CPU 0 and the clients to CPU 1. The figure is echo round trips per
CPU-second of the server process (wall-clock rates shown beside: they move with whatever else
the machine runs); the cost is ``1 - with / without`` per round (the two ran next to each other,
under the same load), median (min..max) over the rounds. Goal (issue 14): under 5 %. Every
connect, round trip and scrape has a deadline.

On a busy machine the runs spread wider than 5 %, so a component estimate is printed beside:
what ``ServerMetrics.message`` adds per echo over ``NoMetrics.message`` (timed in-process), times
the echoes per server CPU-s without metrics, plus one render of ``/metrics`` per scrape interval.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

import psutil
from websockets.asyncio.client import connect

from pytest_wsconn.reference.metrics import Metrics, NoMetrics, ServerMetrics
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.stack.reference_process import REFERENCE_COMMAND, ReferenceProcess
from pytest_wsconn.timing import scaled

GOAL = 0.05  # the share of echo throughput /metrics may cost
SERVER_CPU, CLIENT_CPU = 0, 1  # with two CPUs or more: the server and the clients on one each
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# The server with prometheus_client unimportable: make_metrics() falls back to NoMetrics.
WITHOUT_METRICS = (
    "-c",
    "import runpy, sys; sys.modules['prometheus_client'] = None; "
    f"sys.argv = ['reference', *{list(REFERENCE_COMMAND[2:])!r}]; "
    "runpy.run_module('pytest_wsconn.reference', run_name='__main__')",
)


@dataclasses.dataclass(frozen=True)
class Run:
    """One timed run: echo round trips, the server's CPU seconds, wall seconds, scrapes."""

    echoes: int
    cpu_s: float
    wall_s: float
    scrapes: int = 0

    @property
    def per_cpu_s(self) -> float:
        return self.echoes / self.cpu_s if self.cpu_s else 0.0

    @property
    def per_s(self) -> float:
        return self.echoes / self.wall_s


def scrape(url: str, with_metrics: bool) -> None:
    """GET ``url`` as Prometheus does; it must answer as the variant claims: 200 with metrics,
    501 without (so both variants' clients do the same work)."""
    request = urllib.request.Request(url, headers={"Accept": OPENMETRICS})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=scaled(5)) as response:  # noqa: S310
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != (200 if with_metrics else 501):
        raise RuntimeError(f"{url} answered {status}: not the server variant to measure")


async def echo_loop(url: str, until: float, counts: list[int]) -> None:
    async with asyncio.timeout(scaled(10)):
        ws = await connect(url, compression=None)
    async with ws:
        message = "x" * 32
        while time.monotonic() < until:
            await ws.send(message)
            async with asyncio.timeout(scaled(5)):
                await ws.recv()
            counts[0] += 1


async def scrape_loop(
    url: str, with_metrics: bool, every: float, until: float, counts: list[int]
) -> None:
    while time.monotonic() < until:
        await asyncio.to_thread(scrape, url, with_metrics)
        counts[0] += 1
        await asyncio.sleep(max(0.0, min(every, until - time.monotonic())))


async def load(
    url: str, clients: int, seconds: float, scraping: tuple[str, bool] | None, every: float
) -> Run:
    echoes, scrapes = [0], [0]
    until = time.monotonic() + seconds
    tasks = [echo_loop(url, until, echoes) for _ in range(clients)]
    if scraping is not None:
        tasks.append(scrape_loop(*scraping, every, until, scrapes))
    start = time.monotonic()
    await asyncio.gather(*tasks)
    return Run(echoes[0], 0.0, time.monotonic() - start, scrapes[0])


def measure(with_metrics: bool, args: argparse.Namespace) -> Run:
    """One run against a fresh server of the variant, pinned to ``SERVER_CPU`` when pinning."""
    with ReferenceProcess(REFERENCE_COMMAND if with_metrics else WITHOUT_METRICS) as server:
        ws_url = server.wait_ready(scaled(15))
        metrics_url = f"http://{urlsplit(ws_url).netloc}/metrics"
        scrape(metrics_url, with_metrics)
        url = f"{ws_url}?token={reference_token(server.secret, 'valid')}"
        process = psutil.Process(server.pid)
        if args.pin:
            process.cpu_affinity([SERVER_CPU])
        asyncio.run(load(url, args.clients, 0.5, None, args.scrape_every))  # warm-up, untimed
        before = process.cpu_times()
        scraping = (metrics_url, with_metrics)
        run = asyncio.run(load(url, args.clients, args.seconds, scraping, args.scrape_every))
        after = process.cpu_times()
        cpu = (after.user - before.user) + (after.system - before.system)
        return dataclasses.replace(run, cpu_s=cpu)


def per_call(action: Callable[[], object], count: int) -> float:
    """Seconds one call of ``action`` takes, the best of 5 batches of ``count``."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            action()
        best = min(best, (time.perf_counter() - start) / count)
    return best


def component_cost(echoes_per_cpu_s: float, scrape_every: float) -> tuple[float, float, float]:
    """Seconds /metrics adds per echo, seconds per render, and the estimated share of CPU."""
    counting: Metrics = ServerMetrics(lambda: 1.0, lambda: 0)
    nothing: Metrics = NoMetrics()
    for code in (1000, 1001, 1006, 1011):  # a realistic exposition: a few close codes
        counting.closed(code, "client")
        counting.handshake(0.001)
    per_echo = per_call(lambda: counting.message(0.0001), 100_000)
    per_echo -= per_call(lambda: nothing.message(0.0001), 100_000)
    render = per_call(lambda: counting.render(OPENMETRICS), 200)
    return per_echo, render, per_echo * echoes_per_cpu_s + render / scrape_every


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs per variant, alternating (5)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per run (3)")
    parser.add_argument("--clients", type=int, default=20, help="echoing connections (20)")
    parser.add_argument("--scrape-every", type=float, default=1.0, help="s between scrapes (1)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1.5 s")
    parser.add_argument("--strict", action="store_true", help="exit 1 if the goal is missed")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 3, 1.5
    args.pin = len(os.sched_getaffinity(0)) >= 2  # the server on one CPU, the clients on another
    if args.pin:
        os.sched_setaffinity(0, {CLIENT_CPU})
    runs: dict[bool, list[Run]] = {False: [], True: []}
    for round_ in range(args.rounds):  # the two variants side by side, which first alternating
        for variant in (False, True) if round_ % 2 == 0 else (True, False):
            runs[variant].append(measure(variant, args))
    pinned = f"server on CPU {SERVER_CPU}, clients on CPU {CLIENT_CPU}" if args.pin else "unpinned"
    print(
        f"{psutil.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; {args.clients} clients, {args.rounds} x "
        f"{args.seconds:g} s per variant, scrape every {args.scrape_every:g} s; {pinned}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'server':<34}  {'echoes per CPU-s':>22}  {'echoes/s':>9}  {'scrapes/run':>11}")
    medians = {}
    for variant, name in (
        (False, "without metrics (NoMetrics, 501)"),
        (True, "with metrics (200)"),
    ):
        per_cpu = [r.per_cpu_s for r in runs[variant]]
        medians[variant] = statistics.median(per_cpu)
        spread = f"({min(per_cpu):,.0f}..{max(per_cpu):,.0f})"
        wall = statistics.median(r.per_s for r in runs[variant])
        scrapes = statistics.median(r.scrapes for r in runs[variant])
        print(f"{name:<34}  {medians[variant]:>7,.0f} {spread:>14}  {wall:>9,.0f}  {scrapes:>11g}")
    # Per round: the two ran next to each other, under the same load.
    costs = [1 - w.per_cpu_s / wo.per_cpu_s for wo, w in zip(runs[False], runs[True], strict=True)]
    cost = statistics.median(costs)
    verdict = "PASS" if cost < GOAL else "FAIL"
    goal = f"goal < {GOAL:.0%}"
    print(
        f"cost of /metrics: {cost:.1%} ({min(costs):.1%}..{max(costs):.1%}) of echo throughput "
        f"per server CPU-s, median of the rounds ({goal}): {verdict}"
    )
    per_echo, render, estimate = component_cost(medians[False], args.scrape_every)
    print(
        f"component estimate: {per_echo * 1e6:.2f} µs per echo x {medians[False]:,.0f} echoes "
        f"per CPU-s + {render * 1e3:.2f} ms per render every {args.scrape_every:g} s "
        f"= {estimate:.1%} of the server's CPU"
    )
    return 1 if args.strict and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
