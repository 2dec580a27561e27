"""Latency histograms that merge exactly across Locust workers, at ~1 % resolution.

Locust rounds each response time to whole milliseconds before computing percentiles, which turns
a 0.2 ms loopback round trip into "0 ms". Load users also feed these histograms (microseconds
up, logarithmic buckets 1 % wide), ship them to the master with their reports and the summary
reads percentiles from them. Pure: no I/O, no clock.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat

RESOLUTION = 1.01  # each bucket is 1 % wider than the one before
_LOG = math.log(RESOLUTION)
_FLOOR_MS = 0.001  # one microsecond: everything below lands in bucket 0
_CEILING_MS = 1e12  # ~30 years: longer durations share the last bucket
_LOG_FLOOR = math.log(_FLOOR_MS)


def bucket_of(ms: float) -> int:
    """The bucket a duration in milliseconds falls into (0 for anything ≤ 1 µs)."""
    if not ms > _FLOOR_MS:  # also catches NaN
        return 0
    return int((math.log(min(ms, _CEILING_MS)) - _LOG_FLOOR) / _LOG) + 1


def bucket_value(bucket: int) -> float:
    """The upper bound in milliseconds of ``bucket``: percentiles never understate."""
    return _FLOOR_MS * RESOLUTION**bucket


class Histogram:
    """Counts per bucket; ``add`` a sample, ``merge`` another, read ``percentile``."""

    __slots__ = ("buckets", "count", "max_ms")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        bucket = bucket_of(ms)
        self.buckets[bucket] = self.buckets.get(bucket, 0) + 1
        self.count += 1
        self.max_ms = max(self.max_ms, ms)

    def add_all(self, samples: Sequence[float]) -> None:
        """``add`` each of ``samples`` (a load user's batch), in one pass."""
        if not samples:
            return
        counts = None
        if min(samples) > _FLOOR_MS and max(samples) <= _CEILING_MS:
            # bucket_of's arithmetic, each step mapped in C: half the time of calling it
            logs = map(math.log, samples)
            scaled = map(
                operator.truediv, map(operator.sub, logs, repeat(_LOG_FLOOR)), repeat(_LOG)
            )
            with contextlib.suppress(ValueError):  # a NaN among them: one by one below
                counts = {bucket + 1: n for bucket, n in Counter(map(int, scaled)).items()}
        if counts is None:
            counts = Counter(map(bucket_of, samples))
        buckets = self.buckets
        for bucket, count in counts.items():
            buckets[bucket] = buckets.get(bucket, 0) + count
        self.count += len(samples)
        self.max_ms = max(self.max_ms, *samples)

    def merge(self, other: Histogram) -> None:
        for bucket, count in other.buckets.items():
            self.buckets[bucket] = self.buckets.get(bucket, 0) + count
        self.count += other.count
        self.max_ms = max(self.max_ms, other.max_ms)

    def percentile(self, fraction: float) -> float | None:
        """The smallest bucket bound with at least ``fraction`` of the samples at or below it."""
        if not self.count:
            return None
        wanted = max(1, math.ceil(fraction * self.count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= wanted:
                return min(bucket_value(bucket), self.max_ms)
        return self.max_ms

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form (bucket keys as strings), for Locust's worker reports."""
        return {
            "buckets": {str(b): c for b, c in self.buckets.items()},
            "count": self.count,
            "max_ms": self.max_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        histogram = cls()
        buckets = data.get("buckets", {})
        if isinstance(buckets, Mapping):
            histogram.buckets = {int(b): int(c) for b, c in buckets.items()}
        histogram.count = int(data.get("count", 0))  # type: ignore[call-overload]
        histogram.max_ms = float(data.get("max_ms", 0.0))  # type: ignore[arg-type]
        return histogram


def merged(histograms: Iterable[Histogram]) -> Histogram:
    """One histogram holding every sample of ``histograms``."""
    total = Histogram()
    for histogram in histograms:
        total.merge(histogram)
    return total
