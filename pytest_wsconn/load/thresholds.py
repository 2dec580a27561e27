"""Pass/fail limits on a load run, checked after it: pure, so every branch is tested directly."""

from __future__ import annotations

import dataclasses
import math

from pytest_wsconn.exceptions import ConfigError


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Limits a run must stay within; ``None`` leaves a figure unchecked."""

    max_failure_ratio: float | None = None
    max_p95_connect_ms: float | None = None
    max_p95_rtt_ms: float | None = None

    def __post_init__(self) -> None:
        ratio = self.max_failure_ratio
        if ratio is not None and not 0 <= ratio <= 1:
            raise ConfigError(f"--max-failure-ratio {ratio!r}: valid: a number from 0 to 1")
        for option, value in (
            ("--max-p95-connect-ms", self.max_p95_connect_ms),
            ("--max-p95-rtt-ms", self.max_p95_rtt_ms),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{option} {value!r}: valid: a positive number of milliseconds")


@dataclasses.dataclass(frozen=True)
class Breach:
    """One threshold the run did not meet; ``option`` names it as the command line does."""

    option: str
    limit: float
    actual: float | None  # None: the figure could not be measured (no samples)

    def __str__(self) -> str:
        if self.actual is None:
            return f"{self.option} {self.limit:g}: no samples to check it against"
        return f"{self.option} {self.limit:g}: measured {self.actual:.4g}"


@dataclasses.dataclass(frozen=True)
class Figures:
    """What thresholds look at, taken from a run's summary."""

    requests: int
    failures: int  # that count: in a reconnect storm, those outside its faults
    p95_connect_ms: float | None
    p95_rtt_ms: float | None


def evaluate(thresholds: Thresholds, figures: Figures) -> list[Breach]:
    """Every threshold the figures break, in the order of the options."""
    breaches = []
    if thresholds.max_failure_ratio is not None:
        ratio = figures.failures / figures.requests if figures.requests else None
        if ratio is None or ratio > thresholds.max_failure_ratio:
            breaches.append(Breach("--max-failure-ratio", thresholds.max_failure_ratio, ratio))
    for option, limit, actual in (
        ("--max-p95-connect-ms", thresholds.max_p95_connect_ms, figures.p95_connect_ms),
        ("--max-p95-rtt-ms", thresholds.max_p95_rtt_ms, figures.p95_rtt_ms),
    ):
        if limit is not None and (actual is None or actual > limit):
            breaches.append(Breach(option, limit, actual))
    return breaches
