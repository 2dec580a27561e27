"""Trends and regressions over the run history. Pure: runs in, figures and findings out.

Runs are given oldest first. ``check`` is what ``wsconn history --check`` exits on:

- a handshake p95 above the rolling median of the runs before it by more than ``k`` MADs,
- failure categories no earlier run had,
- tests that failed in the last run and passed the time before.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from collections import Counter
from collections.abc import Sequence

from pytest_wsconn.history.records import FAILING, PASSED, RunRecord, percentiles

ROLLING = 10  # runs in the rolling baseline
MAD_K = 3.0  # how many MADs above the median is a regression
MIN_BASELINE = 3  # runs needed before a handshake regression can be called
# Loopback handshakes take a few ms and a steady history has a MAD near 0: a spread below this
# fraction of the median (or 1 ms) is noise, not a baseline to hold a run to.
MIN_SPREAD_FRACTION, MIN_SPREAD_MS = 0.1, 1.0


def success_rate(run: RunRecord) -> float | None:
    """Passed over passed + failed + errors; skips do not count; None for a run without any."""
    counted = [t for t in run.tests if t.outcome == PASSED or t.outcome in FAILING]
    if not counted:
        return None
    return sum(t.outcome == PASSED for t in counted) / len(counted)


def run_p95(run: RunRecord) -> float | None:
    """The run's handshake p95 (ms) over every connection it opened."""
    return percentiles(run.handshakes_ms)[1]


def outcome_history(runs: Sequence[RunRecord]) -> dict[str, list[bool]]:
    """Per test, whether it passed, in each run it passed or failed in (oldest first)."""
    history: dict[str, list[bool]] = {}
    for run in runs:
        for test in run.tests:
            if test.outcome == PASSED or test.outcome in FAILING:
                history.setdefault(test.test_id, []).append(test.outcome == PASSED)
    return history


def flaky_tests(runs: Sequence[RunRecord], window: int = ROLLING) -> dict[str, int]:
    """Tests whose outcome flipped in the last ``window`` runs: test id -> number of flips."""
    flips = {}
    for test_id, passes in outcome_history(runs[-window:]).items():
        count = sum(a != b for a, b in itertools.pairwise(passes))
        if count:
            flips[test_id] = count
    return dict(sorted(flips.items(), key=lambda item: (-item[1], item[0])))


def median_mad(values: Sequence[float]) -> tuple[float, float]:
    """The median of ``values`` and their median absolute deviation."""
    median = statistics.median(values)
    return median, statistics.median(abs(v - median) for v in values)


@dataclasses.dataclass(frozen=True)
class Regression:
    """One finding of ``check``: what regressed, in words a user reads in a CI log."""

    kind: str  # "handshake_p95", "new_category" or "newly_failing"
    message: str


def handshake_regression(
    runs: Sequence[RunRecord], window: int = ROLLING, k: float = MAD_K
) -> Regression | None:
    """The last run's p95 against the rolling median ± ``k`` MADs of the runs before it."""
    if not runs:
        return None
    latest = run_p95(runs[-1])
    baseline = [p for run in runs[:-1][-window:] if (p := run_p95(run)) is not None]
    if latest is None or len(baseline) < MIN_BASELINE:
        return None
    median, mad = median_mad(baseline)
    spread = max(mad, MIN_SPREAD_FRACTION * median, MIN_SPREAD_MS)
    limit = median + k * spread
    if latest <= limit:
        return None
    return Regression(
        "handshake_p95",
        f"handshake p95 {latest:.1f} ms is above the last {len(baseline)} runs' median "
        f"{median:.1f} ms + {k:g} x {spread:.1f} ms (limit {limit:.1f} ms)",
    )


def categories(run: RunRecord) -> set[str]:
    """The failure categories seen in a run."""
    return {category for test in run.tests for category in test.categories}


def new_categories(runs: Sequence[RunRecord]) -> list[str]:
    """Failure categories of the last run that no earlier run had (none in a first run)."""
    if len(runs) < 2:
        return []
    seen = set().union(*(categories(run) for run in runs[:-1]))
    return sorted(categories(runs[-1]) - seen)


def newly_failing(runs: Sequence[RunRecord]) -> list[str]:
    """Tests that failed in the last run and passed in the last run before it that ran them."""
    if not runs:
        return []
    failing = sorted(t.test_id for t in runs[-1].tests if t.outcome in FAILING)
    before = outcome_history(runs[:-1])
    return [test_id for test_id in failing if before.get(test_id, [False])[-1]]


def close_codes_over_time(runs: Sequence[RunRecord]) -> list[dict[int, int]]:
    """Per run (oldest first), how many times each close code was seen."""
    return [dict(Counter(code for t in run.tests for code in t.close_codes)) for run in runs]


def check(runs: Sequence[RunRecord]) -> list[Regression]:
    """Everything that regressed in the last run; empty when nothing did."""
    found = []
    regression = handshake_regression(runs)
    if regression is not None:
        found.append(regression)
    found += [
        Regression("new_category", f"new failure category {category!r}")
        for category in new_categories(runs)
    ]
    found += [
        Regression("newly_failing", f"{test_id} failed; it passed in the run before")
        for test_id in newly_failing(runs)
    ]
    return found
