"""Security check: hypothesis-drawn frames and fragment sequences leave the service healthy.

Each example is sent after a real handshake, followed by a close frame: the service must answer
with a close frame (any code), never drop the TCP connection or fall silent, and still serve a
fresh connection (and its health endpoint) after. The budget is ``--wsconn-fuzz-examples`` (50)
and ``--wsconn-fuzz-seconds`` (3); the seed is printed, and ``--wsconn-fuzz-seed`` replays it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

pytest.importorskip("hypothesis", reason="the fuzz check needs pip install 'pytest-wsconn[fuzz]'")

import hypothesis

from pytest_wsconn import Connector
from pytest_wsconn.checks.survival import ANSWER_WITHIN, serving_problem
from pytest_wsconn.config import Settings
from pytest_wsconn.fuzz_strategies import frame_sequences
from pytest_wsconn.fuzzing import FuzzFrame, describe, serialize
from pytest_wsconn.rawclient import HandshakeRefused, send_raw
from pytest_wsconn.security import PROTOCOL_ABUSE
from pytest_wsconn.timing import scaled

pytestmark = [pytest.mark.asyncio, pytest.mark.wsconn_security]

T = TypeVar("T")


class FuzzFailed(Exception):
    """An example the service mishandled (raised inside hypothesis, reported by the check)."""


async def _problem(
    frames: list[FuzzFrame], connect: Connector, target: dict[str, Any], health: str | None
) -> str | None:
    """What went wrong with one example, or None when the service closed and still serves."""
    try:
        ending = await send_raw(payload=serialize(frames), within=scaled(ANSWER_WITHIN), **target)
    except (HandshakeRefused, OSError, TimeoutError) as exc:
        return f"the opening handshake failed: {exc}"
    if ending.code is None:
        return f"the service {ending.describe()} instead of answering with a close frame"
    return await serving_problem(connect, health)


async def test_fuzzed_frames_leave_the_service_healthy(
    wsconn_connect: Connector,
    wsconn_settings: Settings,
    raw_target: dict[str, Any],
    health: str | None,
) -> None:
    """Drawn frames and fragment sequences get a close frame, and the service still serves."""
    settings = wsconn_settings
    seed = settings.fuzz_seed if settings.fuzz_seed is not None else secrets.randbelow(2**32)
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + scaled(settings.fuzz_seconds)
    sent: list[list[FuzzFrame]] = []
    failures: list[tuple[list[FuzzFrame], str]] = []

    def on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()  # it has deadlines

    @hypothesis.settings(
        max_examples=settings.fuzz_examples,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.generate],  # no shrinking: a dead service fails every example
        suppress_health_check=list(hypothesis.HealthCheck),
        report_multiple_bugs=False,
    )
    @hypothesis.seed(seed)
    @hypothesis.given(frame_sequences())
    def example(frames: list[FuzzFrame]) -> None:
        if failures or (sent and time.monotonic() > deadline):
            return
        sent.append(frames)
        problem = on_loop(_problem(frames, wsconn_connect, raw_target, health))
        if problem is not None:
            failures.append((frames, problem))
            raise FuzzFailed(problem)

    try:
        await asyncio.to_thread(example)
    except Exception:  # hypothesis wraps what we raised; `failures` has it
        if not failures:
            raise
    replay = f"seed {seed} (replay with --wsconn-fuzz-seed={seed})"
    if failures:
        frames, problem = failures[0]
        pytest.fail(
            f"after fuzzed frames [{describe(frames)}] {problem}\n"
            f"example {len(sent)} of the fuzz run, {replay}\n{PROTOCOL_ABUSE.explain()}",
            pytrace=False,
        )
    print(f"fuzz: {len(sent)} frame sequences sent, the service stayed healthy; {replay}")
