"""Reconnect delays and when to give up, after AWS's "Exponential Backoff and Jitter".

``full`` waits uniform(0, min(max_delay, initial * factor**n)); ``decorrelated`` waits
uniform(initial, 3 x the previous delay), capped; ``none`` waits the capped exponential exactly,
so clients that lost the same server retry in step (a thundering herd) — it shows why jitter
matters. Pure, like websockets' ``backoff()``: the random source and the clock are injected.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from pytest_wsconn.exceptions import ConfigError

Jitter = Literal["full", "decorrelated", "none"]
JITTERS: tuple[Jitter, ...] = get_args(Jitter)

# AWS's decorrelated jitter lets each delay grow up to this multiple of the previous one.
_DECORRELATED_GROWTH = 3.0
# Far past any real attempt count; it keeps ``float ** int`` from raising for huge ``n``.
_MAX_EXPONENT = 2**53


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _require(ok: bool, name: str, value: object, valid: str) -> None:
    if not ok:
        raise ConfigError(f"invalid backoff {name} {value!r}; valid: {valid}")


@dataclass(frozen=True)
class BackoffPolicy:
    """Settings for reconnect delays, in seconds; checked when built so a typo fails early.

    ``max_attempts`` counts connection attempts, the first one included: 10 allows 9 retries;
    ``None`` retries forever. A connection that stays up ``reset_after`` seconds counts as a
    success and starts the count over. ``factor`` does not apply to ``decorrelated`` jitter.
    """

    initial: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    max_attempts: int | None = 10
    reset_after: float = 30.0
    jitter: Jitter = "full"

    def __post_init__(self) -> None:
        _require(
            _is_finite_number(self.initial) and self.initial > 0,
            "initial",
            self.initial,
            "a finite number of seconds > 0",
        )
        _require(
            _is_finite_number(self.factor) and self.factor >= 1,
            "factor",
            self.factor,
            "a finite number >= 1",
        )
        _require(
            _is_finite_number(self.max_delay) and self.max_delay >= self.initial,
            "max_delay",
            self.max_delay,
            f"a finite number of seconds >= initial ({self.initial})",
        )
        _require(
            self.max_attempts is None
            or (
                isinstance(self.max_attempts, int)
                and not isinstance(self.max_attempts, bool)
                and self.max_attempts >= 1
            ),
            "max_attempts",
            self.max_attempts,
            "an integer >= 1, or None to retry forever",
        )
        _require(
            _is_finite_number(self.reset_after) and self.reset_after >= 0,
            "reset_after",
            self.reset_after,
            "a finite number of seconds >= 0",
        )
        _require(self.jitter in JITTERS, "jitter", self.jitter, ", ".join(JITTERS))


def _grown(policy: BackoffPolicy, factor: float, exponent: int) -> float:
    """``initial * factor**exponent`` capped at ``max_delay``, for any exponent without overflow."""
    try:
        grown = policy.initial * factor ** min(exponent, _MAX_EXPONENT)
    except OverflowError:  # factor**exponent is past the largest float, so past max_delay too
        return policy.max_delay
    return min(policy.max_delay, grown)


def expected_bounds(policy: BackoffPolicy, n: int) -> tuple[float, float]:
    """The ``(low, high)`` a delay after the ``n``-th consecutive failure (0-based) falls in.

    Holds for delays without a server's suggestion. ``full``: ``(0, ceiling)``, where ``ceiling``
    is ``min(max_delay, initial * factor**n)``, so only the high end says anything. ``none``:
    ``(ceiling, ceiling)``. ``decorrelated``: ``(initial, min(max_delay, initial * 3**(n+1)))`` —
    every draw starts at ``initial``, and the previous delay is at most ``initial * 3**n``.
    """
    if n < 0:
        raise ValueError(f"n counts failures from 0, got {n}")
    if policy.jitter == "decorrelated":
        return policy.initial, _grown(policy, _DECORRELATED_GROWTH, n + 1)
    ceiling = _grown(policy, policy.factor, n)
    return (ceiling, ceiling) if policy.jitter == "none" else (0.0, ceiling)


class Backoff:
    """One client's reconnect delays under a policy: counts consecutive failures, still pure.

    Call ``next_delay()`` after every failed attempt and every close, ``opened()`` when a
    connection opens and ``closed()`` when it closes.
    """

    __slots__ = ("_attempts", "_clock", "_opened_at", "_previous", "_rng", "policy")

    def __init__(
        self, policy: BackoffPolicy, rng: random.Random, clock: Callable[[], float]
    ) -> None:
        self.policy = policy
        self._rng = rng
        self._clock = clock
        self._attempts = 0
        self._previous = policy.initial
        self._opened_at: float | None = None

    @property
    def attempts(self) -> int:
        """Consecutive failures counted so far."""
        return self._attempts

    def next_delay(self, suggested: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` once ``max_attempts`` are used up.

        A server's ``suggested`` delay (close code 1013 "try again later", HTTP 429
        ``Retry-After``) can only lengthen the wait, and is honoured even above ``max_delay``:
        the server knows when it will have room, and retrying sooner only adds to its load. The
        caller parses and bounds that value. It does not feed the decorrelated sequence, so later
        delays stay within :func:`expected_bounds`.
        """
        n = self._attempts
        self._attempts += 1
        max_attempts = self.policy.max_attempts
        if max_attempts is not None and self._attempts >= max_attempts:
            return None
        delay = self._draw(n)
        return delay if suggested is None else max(delay, suggested)

    def _draw(self, n: int) -> float:
        low, high = expected_bounds(self.policy, n)
        if self.policy.jitter == "none":
            return high
        if self.policy.jitter == "full":
            return self._rng.uniform(low, high)
        # ``uniform`` may round a hair past its upper end; ``high`` is the exact cap.
        draw = self._rng.uniform(low, _DECORRELATED_GROWTH * self._previous)
        self._previous = min(high, draw)
        return self._previous

    def opened(self) -> None:
        """A connection opened; it counts as a success only once it has stayed up long enough."""
        self._opened_at = self._clock()

    def closed(self) -> None:
        """The connection closed: start over if it stayed up ``reset_after`` seconds.

        A shorter life keeps the count going, so a server that accepts and then drops every
        connection does not earn a fresh, fast retry each time.
        """
        opened_at, self._opened_at = self._opened_at, None
        if opened_at is not None and self._clock() - opened_at >= self.policy.reset_after:
            self.reset()

    def reset(self) -> None:
        """Forget the failures counted so far, as after a connection that stayed up."""
        self._attempts = 0
        self._previous = self.policy.initial
