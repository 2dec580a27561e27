"""Reconnect delay policies: bounds, caps, seeds, giving up and resets (pure, no sleeping)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_wsconn.backoff import JITTERS, Backoff, BackoffPolicy, Jitter, expected_bounds
from pytest_wsconn.exceptions import ConfigError


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@st.composite
def policies(
    draw: st.DrawFn, jitters: tuple[Jitter, ...] = JITTERS, limited: bool = False
) -> BackoffPolicy:
    """Valid policies; ``limited`` ones give up after 1-50 attempts, the others never do."""
    initial = draw(st.floats(0.001, 10.0))
    return BackoffPolicy(
        initial=initial,
        factor=draw(st.floats(1.0, 10.0)),
        max_delay=draw(st.floats(initial, 1000.0)),
        max_attempts=draw(st.integers(1, 50)) if limited else None,
        reset_after=draw(st.floats(0.0, 100.0)),
        jitter=draw(st.sampled_from(jitters)),
    )


def backoff(policy: BackoffPolicy, seed: int = 0, clock: FakeClock | None = None) -> Backoff:
    return Backoff(policy, random.Random(seed), clock or FakeClock())


def delays(b: Backoff, count: int, suggested: float | None = None) -> list[float]:
    """``count`` delays from a policy that must not give up within them."""
    out = [b.next_delay(suggested) for _ in range(count)]
    assert None not in out
    return [d for d in out if d is not None]


seeds = st.integers(0, 2**32)


class TestBackoffPolicy:
    def test_defaults_are_valid(self) -> None:
        """The defaults build: full jitter from 0.5 s doubling to 30 s, 10 attempts."""
        policy = BackoffPolicy()
        assert (policy.initial, policy.factor, policy.max_delay) == (0.5, 2.0, 30.0)
        assert (policy.max_attempts, policy.reset_after, policy.jitter) == (10, 30.0, "full")

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"initial": 0}, "invalid backoff initial 0; valid: a finite number of seconds > 0"),
            ({"initial": -1.0}, "initial -1.0"),
            ({"initial": float("nan")}, "initial nan"),
            ({"initial": float("inf")}, "initial inf"),
            ({"initial": True}, "initial True"),
            ({"initial": "1"}, "initial '1'"),
            ({"factor": 0.5}, "invalid backoff factor 0.5; valid: a finite number >= 1"),
            ({"factor": float("inf")}, "factor inf"),
            ({"max_delay": 0.1}, "max_delay 0.1; valid: a finite number of seconds >= initial"),
            ({"initial": 5, "max_delay": 4}, "max_delay 4; valid: a finite number of seconds >= "),
            ({"max_delay": float("inf")}, "max_delay inf"),
            ({"max_attempts": 0}, "max_attempts 0; valid: an integer >= 1, or None"),
            ({"max_attempts": 2.0}, "max_attempts 2.0"),
            ({"max_attempts": False}, "max_attempts False"),
            ({"reset_after": -1}, "reset_after -1; valid: a finite number of seconds >= 0"),
            ({"jitter": "equal"}, "jitter 'equal'; valid: full, decorrelated, none"),
        ],
    )
    def test_invalid_values_name_the_field_and_range(
        self, fields: dict[str, Any], message: str
    ) -> None:
        """A value out of range raises ConfigError naming the field, the value and the range."""
        with pytest.raises(ConfigError) as raised:
            BackoffPolicy(**fields)
        assert message in str(raised.value)

    @pytest.mark.parametrize(
        "fields",
        [
            {"initial": 1, "max_delay": 1},
            {"factor": 1},
            {"max_attempts": 1},
            {"max_attempts": None},
            {"reset_after": 0},
            {"jitter": "none"},
            {"jitter": "decorrelated"},
        ],
    )
    def test_boundary_values_are_accepted(self, fields: dict[str, Any]) -> None:
        """The edges of each range (and ints for floats) are valid."""
        BackoffPolicy(**fields)

    def test_is_frozen(self) -> None:
        """A policy cannot change after it was checked."""
        policy = BackoffPolicy()
        with pytest.raises(AttributeError):
            policy.initial = -1  # type: ignore[misc]


class TestExpectedBounds:
    @pytest.mark.parametrize(
        ("jitter", "n", "bounds"),
        [
            ("full", 0, (0.0, 0.5)),
            ("full", 3, (0.0, 4.0)),
            ("full", 6, (0.0, 30.0)),
            ("none", 0, (0.5, 0.5)),
            ("none", 5, (16.0, 16.0)),
            ("none", 6, (30.0, 30.0)),
            ("decorrelated", 0, (0.5, 1.5)),
            ("decorrelated", 2, (0.5, 13.5)),
            ("decorrelated", 3, (0.5, 30.0)),
        ],
    )
    def test_known_values(self, jitter: Jitter, n: int, bounds: tuple[float, float]) -> None:
        """Bounds for the default numbers, written out by hand."""
        assert expected_bounds(BackoffPolicy(jitter=jitter), n) == bounds

    @pytest.mark.parametrize("jitter", JITTERS)
    @pytest.mark.parametrize("n", [1100, 10**6, 2**53, 10**400])
    def test_huge_n_is_capped_without_overflow(self, jitter: Jitter, n: int) -> None:
        """However many failures, the high bound is max_delay and nothing overflows."""
        assert expected_bounds(BackoffPolicy(jitter=jitter), n)[1] == 30.0

    def test_factor_one_never_grows(self) -> None:
        """With factor 1 the ceiling stays at initial, even for a huge n."""
        policy = BackoffPolicy(factor=1, jitter="none")
        assert expected_bounds(policy, 10**400) == (0.5, 0.5)

    def test_negative_n_is_refused(self) -> None:
        """Failures are counted from 0."""
        with pytest.raises(ValueError, match="from 0"):
            expected_bounds(BackoffPolicy(), -1)

    @given(policies(), st.integers(0, 2000))
    def test_ceiling_is_non_decreasing_and_capped(self, policy: BackoffPolicy, n: int) -> None:
        """The un-jittered ceiling never shrinks from one failure to the next nor passes the cap."""
        low, high = expected_bounds(policy, n)
        _, next_high = expected_bounds(policy, n + 1)
        assert 0 <= low <= high <= next_high <= policy.max_delay


class TestBackoff:
    @given(policies(), seeds)
    def test_delays_stay_within_zero_and_max_delay(self, policy: BackoffPolicy, seed: int) -> None:
        """Without a suggestion, every delay is in [0, max_delay]."""
        assert all(0 <= d <= policy.max_delay for d in delays(backoff(policy, seed), 60))

    @given(policies(), seeds, st.floats(0.0, 10_000.0))
    def test_suggestion_raises_the_delay_past_the_cap(
        self, policy: BackoffPolicy, seed: int, suggested: float
    ) -> None:
        """A server's suggested delay is a floor, honoured even above max_delay."""
        for d in delays(backoff(policy, seed), 30, suggested):
            assert suggested <= d <= max(policy.max_delay, suggested)

    def test_suggestion_below_the_delay_changes_nothing(self) -> None:
        """A suggestion shorter than the policy's delay does not shorten it."""
        b = backoff(BackoffPolicy(jitter="none"))
        assert [b.next_delay(0.1), b.next_delay(60.0), b.next_delay()] == [0.5, 60.0, 2.0]

    @given(policies(), seeds)
    def test_every_delay_is_within_expected_bounds(self, policy: BackoffPolicy, seed: int) -> None:
        """The n-th delay lies within expected_bounds(policy, n)."""
        for n, d in enumerate(delays(backoff(policy, seed), 60)):
            low, high = expected_bounds(policy, n)
            assert low <= d <= high

    @given(policies(), seeds)
    def test_same_seed_same_sequence(self, policy: BackoffPolicy, seed: int) -> None:
        """Two clients seeded alike wait exactly alike, so a failing run can be replayed."""
        assert delays(backoff(policy, seed), 40) == delays(backoff(policy, seed), 40)

    @pytest.mark.parametrize("jitter", ["full", "decorrelated"])
    def test_jitter_spreads_clients_apart(self, jitter: Jitter) -> None:
        """Differently seeded clients do not retry in step (the herd "none" produces)."""
        policy = BackoffPolicy(jitter=jitter)
        firsts = {backoff(policy, seed).next_delay() for seed in range(20)}
        assert len(firsts) == 20

    def test_none_is_the_capped_exponential(self) -> None:
        """Without jitter the delays are initial * factor**n, capped at max_delay."""
        b = backoff(BackoffPolicy(jitter="none", max_attempts=None))
        assert delays(b, 9) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]

    @given(policies(jitters=("none",)), seeds)
    def test_none_is_non_decreasing_and_exponential(self, policy: BackoffPolicy, seed: int) -> None:
        """Without jitter the sequence is min(max_delay, initial * factor**n) and never shrinks."""
        got = delays(backoff(policy, seed), 60)
        assert got == [expected_bounds(policy, n)[1] for n in range(60)]
        assert got == sorted(got)

    @given(policies(limited=True), seeds)
    def test_gives_up_after_exactly_max_attempts(self, policy: BackoffPolicy, seed: int) -> None:
        """The max_attempts-th failure gets None: max_attempts - 1 retries, then stop."""
        assert policy.max_attempts is not None
        b = backoff(policy, seed)
        got = [b.next_delay() for _ in range(policy.max_attempts)]
        assert None not in got[:-1]
        assert got[-1] is None
        assert b.next_delay() is None
        assert b.attempts == policy.max_attempts + 1

    def test_none_max_attempts_never_gives_up(self) -> None:
        """With max_attempts=None, a thousand failures in a row still get a delay."""
        b = backoff(BackoffPolicy(max_attempts=None))
        assert len(delays(b, 1000)) == 1000
        assert b.attempts == 1000

    def test_attempts_counts_failures_and_is_read_only(self) -> None:
        """attempts counts next_delay calls and cannot be set from outside."""
        b = backoff(BackoffPolicy())
        b.next_delay()
        b.next_delay(5.0)
        assert b.attempts == 2
        with pytest.raises(AttributeError):
            b.attempts = 0  # type: ignore[misc]

    @pytest.mark.parametrize("jitter", JITTERS)
    def test_long_connection_resets_the_count(self, jitter: Jitter) -> None:
        """A connection that stayed up reset_after seconds starts the count and delays over."""
        clock = FakeClock()
        policy = BackoffPolicy(jitter=jitter, reset_after=30.0)
        b = backoff(policy, clock=clock)
        delays(b, 8)
        b.opened()
        clock.now += 30.0
        b.closed()
        assert b.attempts == 0
        low, high = expected_bounds(policy, 0)
        first = b.next_delay()
        assert first is not None
        assert low <= first <= high

    def test_flapping_connection_keeps_counting(self) -> None:
        """Connections that drop before reset_after do not earn a fresh fast retry."""
        clock = FakeClock()
        b = backoff(BackoffPolicy(jitter="none", reset_after=30.0, max_attempts=4), clock=clock)
        got = []
        for _ in range(4):
            b.opened()
            clock.now += 29.9
            b.closed()
            got.append(b.next_delay())
        assert got == [0.5, 1.0, 2.0, None]

    def test_closed_without_opened_does_not_reset(self) -> None:
        """A close with no recorded open (a failed handshake) never counts as a success."""
        clock = FakeClock()
        b = backoff(BackoffPolicy(), clock=clock)
        b.next_delay()
        clock.now = 1000.0
        b.closed()
        assert b.attempts == 1

    def test_each_open_is_timed_from_its_own_start(self) -> None:
        """Uptime is measured from the latest open, not the first."""
        clock = FakeClock()
        b = backoff(BackoffPolicy(reset_after=10.0), clock=clock)
        b.opened()
        clock.now = 5.0
        b.closed()
        b.next_delay()
        clock.now = 100.0
        b.opened()
        clock.now = 105.0
        b.closed()
        assert b.attempts == 1

    def test_reset_restarts_the_decorrelated_sequence(self) -> None:
        """After reset() a decorrelated client draws from [initial, 3 x initial] again."""
        b = backoff(BackoffPolicy(jitter="decorrelated", max_attempts=None))
        delays(b, 20)
        b.reset()
        assert b.attempts == 0
        first = b.next_delay()
        assert first is not None
        assert 0.5 <= first <= 1.5


def peak(times: list[float], window: float = 0.1) -> int:
    """The largest number of ``times`` inside any ``window`` seconds."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


class TestHerdSpread:
    """The herd benchmark's claim made deterministic: seeded draws and a fake clock.

    200 clients lose the server at once and retry under the policy until it is back after
    ``DOWN`` seconds; the real network herd is ``benchmarks/bench_herd.py``.
    """

    CLIENTS = 200
    DOWN = 1.0
    POLICY = BackoffPolicy(initial=0.2, max_delay=2.0, max_attempts=None)

    def reconnect_times(self, jitter: Jitter, seed: int) -> list[float]:
        """When each client's first attempt after the outage happens (it succeeds)."""
        rng = random.Random(seed)
        policy = BackoffPolicy(**{**self.POLICY.__dict__, "jitter": jitter})
        times = []
        for _ in range(self.CLIENTS):
            client, at = Backoff(policy, rng, FakeClock()), 0.0
            while at < self.DOWN:
                delay = client.next_delay()
                assert delay is not None
                at += delay
            times.append(at)
        return times

    @pytest.mark.parametrize("seed", range(5))
    def test_full_jitter_halves_the_peak(self, seed: int) -> None:
        """Without jitter every client returns in the same instant; full jitter spreads them."""
        herd = self.reconnect_times("none", seed)
        jittered = self.reconnect_times("full", seed)
        assert herd == pytest.approx([1.4] * self.CLIENTS)  # 0.2 + 0.4 + 0.8: all in step
        assert peak(jittered) <= peak(herd) / 2, (peak(jittered), peak(herd))
        assert max(jittered) <= self.DOWN + self.POLICY.max_delay  # nobody waits past the cap
