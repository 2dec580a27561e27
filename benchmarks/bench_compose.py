"""Benchmark the compose stack against the local one: up-to-healthy and teardown, median of 5.

Run from the repository root, after ``scripts/docker-up`` (engine, Compose CLI, offline images)::

    .venv/bin/python benchmarks/bench_compose.py             # 5 of each (~1.5 min)
    .venv/bin/python benchmarks/bench_compose.py --runs 3    # fewer
    .venv/bin/python benchmarks/bench_compose.py --no-raw    # skip the bare-Compose baseline

Figures, each the median of ``--runs`` in this one run:

- compose stack up: ``open_compose_stack`` entered until it yields: reaper, override file,
  ``up --wait`` until every healthcheck passes, published ports read, this process's proxies
  made;
- compose stack teardown: leaving it: proxies deleted, ``down -v --remove-orphans``;
- beside them, the floor: bare ``docker compose up -d --wait`` and ``down -v`` of the same file;
- and the local stack (reference server + toxiproxy-server processes) entered and left.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pytest_wsconn.config import Settings
from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.provision.pins import IMAGE_VARS
from pytest_wsconn.stack import open_stack
from pytest_wsconn.stack.compose import (
    ComposeOptions,
    docker_client,
    find_compose_cli,
    open_compose_stack,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED = REPO_ROOT / "docker-compose.test.yml"
IMAGES_ENV = REPO_ROOT / "docker" / "images.env"


def _load_images() -> None:
    """WSCONN_*_IMAGE from docker/images.env (scripts/build-images) unless already set."""
    if IMAGES_ENV.is_file():
        for line in IMAGES_ENV.read_text().splitlines():
            name, _, value = line.strip().partition("=")
            if name and value:
                os.environ.setdefault(name, value)


def _timed_context(
    opener: Callable[[], contextlib.AbstractContextManager[object]],
) -> tuple[float, float]:
    """Seconds to enter and to leave the context ``opener`` returns."""
    started = time.perf_counter()
    context = opener()
    context.__enter__()
    entered = time.perf_counter()
    context.__exit__(None, None, None)
    return entered - started, time.perf_counter() - entered


def _raw_compose(runs: int) -> tuple[list[float], list[float]]:
    """The floor: bare `docker compose up -d --wait` and `down -v` of the bundled file."""
    import subprocess

    cli = find_compose_cli()
    ups, downs = [], []
    for _ in range(runs):
        project = f"wsconn-bench-raw-{uuid.uuid4().hex[:8]}"
        base = [*cli.argv, "--ansi", "never", "-p", project, "-f", str(BUNDLED)]
        started = time.perf_counter()
        up = subprocess.run(
            [*base, "up", "-d", "--wait"], capture_output=True, text=True, check=False
        )
        ups.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run(
            [*base, "down", "-v", "--remove-orphans", "-t", "5"], capture_output=True, check=False
        )
        downs.append(time.perf_counter() - started)
        if up.returncode != 0:
            raise WsconnError(f"bare `compose up` failed: {up.stdout}{up.stderr}")
    return ups, downs


def _measure(
    runs: int, opener: Callable[[], contextlib.AbstractContextManager[object]]
) -> tuple[list[float], list[float]]:
    ups, downs = [], []
    for _ in range(runs):
        up, down = _timed_context(opener)
        ups.append(up)
        downs.append(down)
    return ups, downs


def _row(
    label: str, seconds: list[float], baseline: str = "", base: list[float] | None = None
) -> str:
    median = statistics.median(seconds)
    spread = f"{min(seconds):.2f} .. {max(seconds):.2f}"
    text = f"{label:<30} {median:>7.2f} s  {spread:<14} {len(seconds):>2}"
    if base:
        base_median = statistics.median(base)
        text += f"   {baseline:<34} {base_median:>7.2f} s  x{median / base_median:.2f}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-raw", action="store_true", help="skip the bare-Compose baseline")
    args = parser.parse_args(argv)
    _load_images()
    try:
        cli = find_compose_cli()
        with contextlib.closing(docker_client()) as client:
            engine = client.version().get("Version", "?")
    except WsconnError as error:
        print(f"bench_compose: no Docker: {error}", file=sys.stderr)
        return 1
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Docker engine {engine}, {cli}, images: "
        + ", ".join(os.environ.get(n, "(default)") for n in IMAGE_VARS)
    )

    def compose_stack() -> contextlib.AbstractContextManager[object]:
        project = f"wsconn-bench-{uuid.uuid4().hex[:8]}"
        return open_compose_stack(ComposeOptions(project_dir=REPO_ROOT, project=project))

    def local_stack() -> contextlib.AbstractContextManager[object]:
        return open_stack(Settings(), REPO_ROOT, "bench")

    local_up, local_down = _measure(args.runs, local_stack)
    compose_up, compose_down = _measure(args.runs, compose_stack)
    raw_up, raw_down = ([], []) if args.no_raw else _raw_compose(args.runs)

    header = (
        f"{'figure':<30} {'median':>9}  {'min .. max':<14} {'n':>2}   "
        f"{'baseline':<34} {'median':>9}  ratio"
    )
    print(header)
    print("-" * len(header))
    print(_row("compose stack up (healthy)", compose_up, "bare compose up -d --wait", raw_up))
    print(_row("compose stack teardown", compose_down, "bare compose down -v", raw_down))
    print(_row("local stack up (ready)", local_up))
    print(_row("local stack teardown", local_down))
    print(
        f"compose/local: up x{statistics.median(compose_up) / statistics.median(local_up):.0f}, "
        f"teardown x{statistics.median(compose_down) / statistics.median(local_down):.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
