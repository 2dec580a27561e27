"""The reconnect storm's arithmetic: fault windows, who lost a connection, who came back, when.

Pure. Users record a timeline of ``(wall time, user, kind)`` events — ``open`` (a connection
opened), ``lost`` (an open connection dropped), ``fail`` (an attempt failed), ``closed`` (the user
closed it on purpose) — and the runner records when each fault was really applied and removed.
From both this module computes, per fault window:

- the users it affected (they lost a connection or failed to open one during the window),
- the connection attempts that failed,
- the time to full recovery: from the fault's removal until the last affected user was open
  again (and stayed open until the next window),
- the reconnect spread: from the first to the last of those reconnects (a tight spread under
  many users is a thundering herd; jittered backoff widens it),
- events outside every window (plus a grace period) — failures the storm did not cause.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Literal

from pytest_wsconn.exceptions import ConfigError

STORM_FAULTS = ("down", "reset_peer")
EventKind = Literal["open", "lost", "fail", "closed"]
Event = tuple[float, str, EventKind]  # (wall time, user id, kind)


@dataclasses.dataclass(frozen=True)
class FaultWindow:
    """A fault held on the proxy from ``start`` to ``end`` (wall-clock seconds)."""

    kind: str
    start: float
    end: float


def parse_storm_faults(text: str) -> tuple[str, ...]:
    """A comma-separated list of the faults a storm takes turns with, e.g. ``down,reset_peer``."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if not kinds or any(k not in STORM_FAULTS for k in kinds):
        raise ConfigError(
            f"invalid storm faults {text!r}; valid: a comma-separated list of "
            f"{', '.join(STORM_FAULTS)}"
        )
    return kinds


def storm_schedule(
    duration: float,
    every: float,
    length: float,
    warmup: float,
    kinds: Sequence[str],
    *,
    recover: float | None = None,
) -> list[FaultWindow]:
    """Fault windows relative to the load's start: the first after ``warmup``, then every ``every``.

    Kinds take turns. Each fault is followed by ``recover`` fault-free seconds (default: as
    long as the fault) before the next one or the end of the run, so every reconnect is seen.
    """
    quiet = length if recover is None else recover
    if not kinds or every <= 0 or length <= 0 or quiet < 0:
        return []
    windows: list[FaultWindow] = []
    start = warmup
    while start + length + quiet <= duration and len(windows) < 1000:
        kind = kinds[len(windows) % len(kinds)]
        windows.append(FaultWindow(kind, start, start + length))
        start += max(every, length + quiet)
    return windows


@dataclasses.dataclass(frozen=True)
class WindowRecovery:
    """What one fault window did and how the users came back."""

    window: FaultWindow
    affected: int
    failed_connections: int
    lost_connections: int
    recovered: int
    full_recovery_s: float | None  # None: not every affected user came back in time
    spread_s: float | None
    reconnect_p50_s: float | None
    reconnect_p95_s: float | None

    @property
    def fully_recovered(self) -> bool:
        return self.affected == self.recovered


@dataclasses.dataclass(frozen=True)
class RecoveryReport:
    """Every window's recovery, and the failures no window explains."""

    windows: tuple[WindowRecovery, ...]
    unexpected: int  # "lost"/"fail" events outside every window and its grace period

    @property
    def failed_connections(self) -> int:
        return sum(w.failed_connections for w in self.windows)

    @property
    def fully_recovered(self) -> bool:
        return all(w.fully_recovered for w in self.windows)

    @property
    def worst_recovery_s(self) -> float | None:
        times = [w.full_recovery_s for w in self.windows]
        if not times or any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)


def _quantile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _window_recovery(
    window: FaultWindow, events: Sequence[Event], horizon: float, grace: float
) -> tuple[WindowRecovery, float]:
    """One window's figures, and the time until which its effects (losses, retries) reach."""
    affected: set[str] = set()
    failed = lost = 0
    for at, user, kind in events:
        if window.start <= at <= window.end + grace and kind in ("lost", "fail"):
            affected.add(user)
            failed += kind == "fail"
            lost += kind == "lost"
    # When did each affected user last become open before the horizon, staying open after?
    back: dict[str, float | None] = dict.fromkeys(affected)
    for at, user, kind in events:
        if user not in back or at < window.start or at > horizon:
            continue
        if kind == "open":
            back[user] = at
        elif kind in ("lost", "fail"):
            back[user] = None
    reconnects = [at for at in back.values() if at is not None]
    delays = [max(0.0, at - window.end) for at in reconnects]
    full = max(delays) if reconnects and len(reconnects) == len(affected) else None
    if not affected:
        full = 0.0
    recovery = WindowRecovery(
        window=window,
        affected=len(affected),
        failed_connections=failed,
        lost_connections=lost,
        recovered=len(reconnects),
        full_recovery_s=full,
        spread_s=max(reconnects) - min(reconnects) if reconnects else None,
        reconnect_p50_s=_quantile(delays, 0.5),
        reconnect_p95_s=_quantile(delays, 0.95),
    )
    reach = window.end + grace
    if reconnects:
        reach = max(reach, *reconnects)
    # Failures after the last reconnect still belong to this window if a user was still down.
    pending = [at for at, user, kind in events if user in affected and kind == "fail"]
    if full is None and pending:
        reach = max(reach, *pending)
    return recovery, reach


def recovery_report(
    events: Iterable[Event], windows: Sequence[FaultWindow], end: float, grace: float = 1.0
) -> RecoveryReport:
    """The storm's report from the users' timeline, the windows applied and the load's end."""
    ordered = sorted(events)
    results = []
    explained: list[tuple[float, float]] = []
    for index, window in enumerate(windows):
        horizon = windows[index + 1].start if index + 1 < len(windows) else end
        recovery, reach = _window_recovery(window, ordered, horizon, grace)
        results.append(recovery)
        explained.append((window.start, min(reach, horizon)))
    unexpected = sum(
        1
        for at, _, kind in ordered
        if kind in ("lost", "fail") and not any(lo <= at <= hi for lo, hi in explained)
    )
    return RecoveryReport(tuple(results), unexpected)
