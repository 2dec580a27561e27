"""Chaos mode's schedule: which fault a test gets, when, for how long, and how to replay it.

Pure: the draw for a test is a function of the seed, the round and the test's id alone, so it
does not depend on the order tests run in, on which xdist worker runs them, or on ``-k``: the
replay command (one test, same seed) draws the very same fault. ``chaos_runner.py`` applies a
draw to a proxy; the plugin only asks this module what to do and what to print.

A chaos kind is a ``faults`` kind, or ``jitter`` (latency whose jitter is drawn too); when
asked (``--wsconn-chaos-containers SERVICE``, compose stack only) also a container fault
(``restart``, ``kill``, ``pause``, ``partition``) of one of the services named. Without services
the schedule is the one it always was: a seed replays the same faults in every release.
"""

from __future__ import annotations

import dataclasses
import random
import shlex
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Literal

from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.faults import (
    CONTAINER_FAULTS,
    ContainerFaultSpec,
    Fault,
    check_container_fault,
    make_fault,
)

CHAOS_KINDS: tuple[str, ...] = (
    "latency",
    "jitter",
    "bandwidth",
    "slicer",
    "reset_peer",
    "timeout",
    "down",
)
CONTAINER_KINDS: tuple[str, ...] = CONTAINER_FAULTS  # drawn only when services are given
ALL_KINDS: tuple[str, ...] = CHAOS_KINDS + CONTAINER_KINDS
RANDOM: Literal["random"] = "random"
ChaosSeed = int | Literal["random"]
MAX_SEED = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class Window:
    """When a fault may start (seconds after the test's setup) and how long it may last."""

    start_min: float = 0.05
    start_max: float = 0.5
    duration_min: float = 0.3
    duration_max: float = 1.5


@dataclasses.dataclass(frozen=True)
class ChaosDraw:
    """One test's fault in a chaos run: the kind, our parameters, when and how long.

    ``at`` and ``duration`` are seconds, from the test's setup; ``fault`` is what the proxy gets,
    ``container`` what the compose stack does to ``service`` (container kinds).
    """

    kind: str
    params: Mapping[str, int] = dataclasses.field(hash=False)
    at: float
    duration: float
    service: str | None = None  # the compose service of a container fault

    @property
    def fault(self) -> Fault:
        """The fault to apply (``jitter`` is a ``latency`` fault with jitter)."""
        return make_fault("latency" if self.kind == "jitter" else self.kind, **self.params)

    @property
    def container(self) -> ContainerFaultSpec | None:
        """The container fault to carry out; None for a fault of the proxy."""
        if self.kind not in CONTAINER_KINDS:
            return None
        return check_container_fault(self.kind, self.service, self.params)

    def describe(self) -> str:
        """``down at +0.120 s for 0.400 s``, ``latency(ms=300) at …``, ``pause of backend at …``."""
        params = ", ".join(f"{name}={value}" for name, value in self.params.items())
        shown = f"{self.kind}({params})" if params else self.kind
        if self.service is not None:
            shown += f" of {self.service}"
        return f"{shown} at +{self.at:.3f} s for {self.duration:.3f} s"


def _params(kind: str, rng: random.Random) -> dict[str, int]:
    """Parameters for ``kind``: mean enough to hurt, valid for ``make_fault``."""
    if kind == "latency":
        return {"ms": rng.randint(50, 1000)}
    if kind == "jitter":
        ms = rng.randint(20, 300)
        return {"ms": ms, "jitter": rng.randint(10, ms)}
    if kind == "bandwidth":
        return {"kbps": rng.randint(1, 64)}
    if kind == "slicer":
        average = rng.randint(1, 64)
        return {
            "average_size": average,
            "size_variation": rng.randint(0, average - 1),
            "delay_us": rng.randint(0, 2000),
        }
    if kind == "reset_peer":
        return {"timeout_ms": rng.randint(0, 500)}
    if kind == "timeout":
        return {"ms": rng.randint(0, 2000)}
    if kind == "restart":
        return {"timeout": rng.randint(0, 2)}  # seconds between SIGTERM and SIGKILL
    return {}  # down, kill (SIGKILL), pause, partition


def draw(
    seed: int,
    round_: int,
    test_id: str,
    kinds: Sequence[str] = CHAOS_KINDS,
    window: Window = Window(),
    *,
    services: Sequence[str] = (),
) -> ChaosDraw:
    """The fault test ``test_id`` gets in round ``round_`` of the run seeded ``seed``.

    Total for any seed, round and id; ``kinds`` are chaos kinds (``check_kinds``) of which at
    least one can be drawn (``drawable``): container kinds only when ``services`` are given.
    """
    pool = drawable(kinds, services)
    if not pool:
        raise ConfigError(
            f"no fault to draw: {', '.join(kinds)} are container faults and no service was given",
            hint="name the compose services to fault: --wsconn-chaos-containers=SERVICE",
        )
    # A str seed is hashed with SHA-512: the same in every process, whatever PYTHONHASHSEED.
    rng = random.Random(f"wsconn-chaos:{seed}:{round_}:{test_id}")  # noqa: S311 - not crypto
    kind = rng.choice(pool)
    params = _params(kind, rng)
    at = round(rng.uniform(window.start_min, window.start_max), 3)
    duration = round(rng.uniform(window.duration_min, window.duration_max), 3)
    service = rng.choice(sorted(services)) if kind in CONTAINER_KINDS else None
    return ChaosDraw(kind, MappingProxyType(params), at, duration, service)


def drawable(kinds: Iterable[str], services: Sequence[str] = ()) -> list[str]:
    """The kinds a draw picks from, in a fixed order: container kinds only with services."""
    return sorted(k for k in kinds if k not in CONTAINER_KINDS or services)


def check_kinds(kinds: object) -> tuple[str, ...]:
    """``survives=[...]`` of a ``wsconn_chaos`` marker: a non-empty list of chaos kinds."""
    if isinstance(kinds, str) or not isinstance(kinds, Iterable):
        raise ConfigError(
            f"survives must be a list of fault kinds, got {kinds!r}",
            hint=f"e.g. survives=['latency', 'down']; kinds: {', '.join(CHAOS_KINDS)}",
        )
    checked = tuple(kinds)
    unknown = [kind for kind in checked if kind not in ALL_KINDS]
    if unknown:
        raise ConfigError(
            f"unknown fault kind(s) {', '.join(map(repr, unknown))} in survives",
            hint=f"chaos kinds: {', '.join(CHAOS_KINDS)}; with --wsconn-chaos-containers also "
            f"{', '.join(CONTAINER_KINDS)}",
        )
    if not checked:
        raise ConfigError(
            "survives=[] leaves chaos nothing to draw", hint="to opt out use off=True"
        )
    return checked


def parse_chaos_seed(text: str) -> ChaosSeed:
    """``--wsconn-chaos[=SEED]``: a seed from 0 to 2**63-1, or ``random`` (the option alone)."""
    value = text.strip().lower()
    if value in ("", RANDOM):
        return RANDOM
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(
            f"invalid chaos seed {text!r}; valid: a whole number from 0, or 'random'",
            hint="give the seed after '=' (--wsconn-chaos=1234); --wsconn-chaos alone draws one",
        )
    return seed


def replay_command(
    test_id: str, seed: int, rounds: int, plugin: bool = False, services: Sequence[str] = ()
) -> str:
    """The command that runs ``test_id`` again under the same fault (a shell line)."""
    args = ["pytest", *(["-p", "wsconn"] if plugin else []), test_id, f"--wsconn-chaos={seed}"]
    if rounds > 1:
        args.append(f"--wsconn-chaos-rounds={rounds}")
    args += [f"--wsconn-chaos-containers={service}" for service in services]
    return shlex.join(args)


@dataclasses.dataclass(frozen=True)
class Applied:
    """What the runner did with a draw: seconds after the test's setup, None if it did not."""

    applied_at: float | None = None
    removed_at: float | None = None
    error: str | None = None


def chaos_section(draw_: ChaosDraw, applied: Applied, replay: str) -> str:
    """The ``wsconn chaos`` section of a failing test's report."""
    if applied.error is not None:
        happened = f"could not be applied: {applied.error}"
    elif applied.applied_at is None:
        happened = "was not applied: the test ended before its moment"
    else:
        if applied.removed_at is None:
            until = "held to the end of the test"
        elif applied.removed_at < applied.applied_at + draw_.duration:
            until = f"removed at +{applied.removed_at:.3f} s, when the test ended"
        else:
            until = f"removed at +{applied.removed_at:.3f} s"
        happened = f"applied at +{applied.applied_at:.3f} s, {until}"
    return f"fault: {draw_.describe()}\n{happened}\nreplay: {replay}"
