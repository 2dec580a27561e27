"""Benchmark the thundering herd: N reconnecting clients lose the proxy at the same moment.

Run from the repository root::

    .venv/bin/python benchmarks/bench_herd.py                       # 200 clients, 3 rounds each
    .venv/bin/python benchmarks/bench_herd.py --clients 500 --rounds 1

On the local stack (the reference server behind a toxiproxy-server of its own), for each policy
(full jitter, then none) and round: N clients open through the proxy, the proxy goes down for
``--down`` seconds (every connection drops, every retry is refused), then comes back. Figures:

- peak: the largest number of reconnects (``reconnecting → open`` transitions) in any 100 ms;
- all back: seconds from the proxy's return to the last client's reconnect;
- herd figure: median peak without jitter / median peak with full jitter.

Every wait has a deadline scaled by ``WSCONN_TIMEOUT_FACTOR``; a round that misses one is
reported and the script exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import resource
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_wsconn.backoff import BackoffPolicy, Jitter
from pytest_wsconn.client import InstrumentedConnection, connect
from pytest_wsconn.config import Settings
from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.reconnect import ReconnectingClient, State
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.stack import Stack, open_stack
from pytest_wsconn.timing import scaled, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER = "bench"
MAX_CLIENTS = 900  # the reference server closes connections past 1000 with 1013
PHASE_TIMEOUT = 30.0  # seconds (scaled) for all clients to open, to drop, or to come back
HTTP_TIMEOUT = 5.0  # seconds (scaled) per health request
FD_MARGIN = 256  # descriptors for everything but the clients' sockets


class BenchError(Exception):
    """A round that could not finish: a deadline passed."""


@dataclass(frozen=True)
class Round:
    """One outage: how the clients came back."""

    jitter: Jitter
    peak: int  # reconnects in the busiest window
    all_back: float  # seconds from the proxy's return to the last reconnect
    refused: int  # failed attempts while the proxy was down
    overload: int  # 1013 refusals: must be 0, or the server's limit distorts the figures


def peak(times: Iterable[float], window: float) -> int:
    """The largest number of ``times`` inside any ``window`` seconds."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _active_connections(stack: Stack) -> int:
    url = f"{stack.http_url}/health/websocket"
    with urllib.request.urlopen(url, timeout=scaled(HTTP_TIMEOUT)) as response:  # noqa: S310 - our own server
        return int(json.load(response)["active_connections"])


async def _all(clients: Sequence[ReconnectingClient], condition: str, timeout: float) -> None:
    """Wait until every client meets ``condition`` (opened, dropped, back), or raise."""
    checks: dict[str, Callable[[ReconnectingClient], bool]] = {
        "opened": lambda c: c.state is State.OPEN,
        "dropped": lambda c: c.state is not State.OPEN,
        "back": lambda c: c.state is State.OPEN and c.opens > 1,
    }
    check = checks[condition]
    done = await asyncio.gather(
        *(c.wait_until(functools.partial(check, c), timeout) for c in clients)
    )
    missing = [c for c, ok in zip(clients, done, strict=True) if not ok]
    if missing:
        raise BenchError(
            f"{len(missing)} of {len(clients)} clients not {condition} within {timeout:g} s; "
            f"the first:\n{missing[0].describe()}"
        )


async def outage(
    stack: Stack, policy: BackoffPolicy, *, clients: int, down: float, window: float
) -> Round:
    """Open ``clients`` clients, hold the proxy down ``down`` s, and time their return."""
    assert stack.secret is not None
    token = reference_token(stack.secret, "valid")
    dial = stack.proxy.listen_address

    async def connector() -> InstrumentedConnection:
        return await connect(stack.url, dial=dial, token=token, open_timeout=scaled(10.0))

    herd = [ReconnectingClient(connector, policy=policy) for _ in range(clients)]
    timeout = scaled(PHASE_TIMEOUT)
    try:
        for client in herd:
            client.start()
        await _all(herd, "opened", timeout)
        stack.proxy.disable()
        try:
            await _all(herd, "dropped", timeout)
            await asyncio.sleep(down)  # the outage itself
        finally:
            stack.proxy.enable()
        up = time.monotonic()
        await _all(herd, "back", timeout)
    finally:
        await asyncio.gather(*(client.close() for client in herd))
    back = [
        t.at
        for client in herd
        for t in client.transitions
        if t.target is State.OPEN and t.source is State.RECONNECTING
    ]
    failures = [t for client in herd for t in client.transitions if t.error is not None]
    return Round(
        jitter=policy.jitter,
        peak=peak(back, window),
        all_back=max(back) - up,
        refused=sum(t.error is not None and t.error.code is None for t in failures),
        overload=sum(t.error is not None and t.error.code == 1013 for t in failures),
    )


def _ensure_descriptors(clients: int) -> None:
    """Raise the soft RLIMIT_NOFILE if the clients' sockets would not fit."""
    needed = clients + FD_MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise BenchError(f"{clients} clients need {needed} file descriptors; ulimit -Hn is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def run(stack: Stack, args: argparse.Namespace) -> list[Round]:
    rounds: list[Round] = []
    jitters: tuple[Jitter, ...] = ("full", "none")
    for jitter in jitters:
        policy = BackoffPolicy(
            initial=args.initial, max_delay=args.max_delay, max_attempts=None, jitter=jitter
        )
        for number in range(1, args.rounds + 1):
            result = await outage(
                stack, policy, clients=args.clients, down=args.down, window=args.window
            )
            rounds.append(result)
            print(
                f"{jitter:<5} round {number}: peak {result.peak:4d} per "
                f"{1000 * args.window:.0f} ms, all back in {result.all_back:5.2f} s, "
                f"{result.refused} refused retries while down, {result.overload} closed 1013",
                flush=True,
            )
            settled = await asyncio.to_thread(
                wait_until, lambda: _active_connections(stack) == 0, scaled(PHASE_TIMEOUT)
            )
            if not settled:
                raise BenchError("the server still holds connections after the clients closed")
    return rounds


def report(rounds: list[Round], args: argparse.Namespace) -> None:
    print()
    print(f"{'policy':<12} {'peak/100ms (median)':>20} {'all back (median)':>18}  rounds")
    medians = {}
    for jitter in ("full", "none"):
        own = [r for r in rounds if r.jitter == jitter]
        medians[jitter] = statistics.median(r.peak for r in own)
        back = statistics.median(r.all_back for r in own)
        peaks = ", ".join(str(r.peak) for r in own)
        print(f"jitter={jitter:<5} {medians[jitter]:>20g} {back:>17.2f}s  {peaks}")
    ratio = medians["none"] / medians["full"] if medians["full"] else float("inf")
    print(
        f"\nherd figure: without jitter the busiest 100 ms holds {ratio:.1f} times the reconnects "
        f"({medians['none']:g} vs {medians['full']:g} of {args.clients})"
    )


def _clients(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_CLIENTS:
        raise argparse.ArgumentTypeError(f"{value} is not in 1..{MAX_CLIENTS}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 60] seconds")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=_clients, default=200, help="default 200")
    parser.add_argument("--rounds", type=int, choices=range(1, 11), default=3, metavar="1..10")
    parser.add_argument("--down", type=_seconds, default=1.0, help="outage, default 1 s")
    parser.add_argument("--window", type=_seconds, default=0.1, help="default 0.1 s")
    parser.add_argument("--initial", type=_seconds, default=0.2, help="policy, default 0.2 s")
    parser.add_argument("--max-delay", type=_seconds, default=2.0, help="policy, default 2 s")
    args = parser.parse_args(argv)
    if args.max_delay < args.initial:
        parser.error("--max-delay must be >= --initial")
    started = time.monotonic()
    try:
        _ensure_descriptors(args.clients)
        with open_stack(Settings(), REPO_ROOT, WORKER) as stack:
            print(f"{args.clients} clients, proxy down {args.down:g} s, policy initial ", end="")
            print(f"{args.initial:g} s, max_delay {args.max_delay:g} s, {args.rounds} round(s)")
            rounds = asyncio.run(run(stack, args))
    except (WsconnError, BenchError, OSError) as exc:
        print(f"bench_herd: {exc}", file=sys.stderr)
        return 1
    report(rounds, args)
    print(f"({time.monotonic() - started:.1f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
