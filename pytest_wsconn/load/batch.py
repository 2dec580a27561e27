"""Successful steps reach Locust's stats in batches instead of one request event each.

Firing Locust's request event cost ~10 µs per request in a profile of the echo loop (the
handler list copied, then two ``StatsEntry.log`` calls, each reading the clock and rounding):
a sixth of a round trip's CPU. A load user instead appends a successful step's milliseconds and
response length to its step's ``StepBatch``; ``merge_into_stats`` then writes a whole batch into
Locust's ``StatsEntry`` objects as as many ``log`` calls would have (count, per-second count,
sum, min, max, Locust's rounded response times, content length, the cache behind its "current"
percentiles) but for the second each request is counted in, and the same samples feed our µs
histograms. Failures are not batched: each one still fires the request event with its
classified error.

Pure: no clock (``now`` is passed in), no Locust import (the entry is duck-typed and Locust's
rounding function is passed in, so a locustfile that replaces ``locust.stats.
bucket_response_time`` still has it used).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any


class StepBatch:
    """One step's successful requests not yet in Locust's stats: their ms and total length."""

    __slots__ = ("length", "ms")

    def __init__(self) -> None:
        self.ms: list[float] = []
        self.length = 0

    def add(self, ms: float, length: int) -> None:
        self.ms.append(ms)
        self.length += length

    def take(self) -> tuple[list[float], int]:
        """The samples and length so far; the batch starts afresh."""
        taken = self.ms, self.length
        self.ms, self.length = [], 0
        return taken


def merge_into_stats(
    entries: Sequence[Any],
    ms: Sequence[float],
    length: int,
    now: float,
    bucket: Callable[[float], int],
) -> None:
    """Write ``ms`` (non-empty) into each Locust ``StatsEntry`` of ``entries`` (the step's and
    the aggregate) as ``len(ms)`` calls of its ``log(response_time, length)`` at time ``now``
    would have.

    ``bucket`` is Locust's ``bucket_response_time``. The requests are counted in the second of
    ``now`` (the flush), not each in its own: at most one flush period late.
    """
    second = int(now)
    count, total, low, high = len(ms), sum(ms), min(ms), max(ms)
    rounded = Counter(map(bucket, ms))
    for entry in entries:
        last = entry.last_request_timestamp
        if entry.use_response_times_cache and last and second > int(last):
            entry._cache_response_times(second - 1)  # what log() does on a new second
        entry.num_requests += count
        entry.num_reqs_per_sec[second] += count
        entry.last_request_timestamp = now
        entry.total_response_time += total
        lowest = entry.min_response_time
        entry.min_response_time = low if lowest is None else min(lowest, low)
        entry.max_response_time = max(entry.max_response_time, high)
        response_times = entry.response_times
        for key, times in rounded.items():
            response_times[key] += times
        entry.total_content_length += length
