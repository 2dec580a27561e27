"""The load package's pure parts, and its WebSocket client against the reference server."""

from __future__ import annotations

import ast
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from support import REPO_ROOT, Service
from websockets.utils import accept_key, apply_mask

from pytest_wsconn.cli.load import build_parser
from pytest_wsconn.config import parse_duration
from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.load.batch import StepBatch
from pytest_wsconn.load.errors import (
    Closed,
    HandshakeInvalid,
    HandshakeRejected,
    NoReply,
    ProtocolViolation,
    StepFailure,
    classify_load_error,
    failure_message,
)
from pytest_wsconn.load.fixture import LoadResult, load_argv
from pytest_wsconn.load.histogram import Histogram, bucket_of, bucket_value
from pytest_wsconn.load.messages import (
    no_reply_text,
    same_json_field,
    unique_json,
    unique_text,
)
from pytest_wsconn.load.recovery import (
    Event,
    FaultWindow,
    parse_storm_faults,
    recovery_report,
    storm_schedule,
)
from pytest_wsconn.load.runner import (
    LoadTarget,
    locust_commands,
    scenario_folders,
    scenario_path,
)
from pytest_wsconn.load.summary import (
    LoadSummary,
    build_summary,
    parse_failures_csv,
    parse_stats_csv,
)
from pytest_wsconn.load.thresholds import Breach, Figures, Thresholds, evaluate
from pytest_wsconn.load.wsclient import MaskKeys, WsClient, encode_frame, mask_keys
from pytest_wsconn.redact import Secret

STATS_CSV = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
WS,connect,10,1,3,3.5,1,9,0,2.0,0.2,3,4,4,4,9,9,9,9,9,9,9
WS,message,500,0,0,0.4,0,6,32,100.0,0.0,0,1,1,1,1,3,5,6,6,6,6
,Aggregated,510,1,0,0.5,0,9,31,102.0,0.2,0,1,1,1,1,3,5,6,9,9,9
"""  # noqa: E501 - Locust's header, verbatim
FAILURES_CSV = """Method,Name,Error,Occurrences
WS,connect,network: Connection refused: nothing accepts connections at that address.,1
"""


PURE_LOAD_MODULES = [
    "batch",
    "errors",
    "histogram",
    "messages",
    "recovery",
    "summary",
    "thresholds",
]
IO_MODULES = {"asyncio", "socket", "subprocess", "ssl", "http", "urllib.request", "select"}
IO_MODULES |= {"gevent", "locust", "threading", "pytest_wsconn.load.wsclient"}


@pytest.mark.parametrize("module", PURE_LOAD_MODULES)
def test_pure_modules_import_no_io(module: str) -> None:
    """The load package's pure core imports no socket, process, thread or Locust module."""
    source = Path(__file__).resolve().parents[1] / "pytest_wsconn" / "load" / f"{module}.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {name for name in imported if name.split(".")[0] in IO_MODULES or name in IO_MODULES}


class TestHistogram:
    def test_percentiles_are_within_one_percent(self) -> None:
        """Percentiles read from the buckets are within 1 % above the exact ones."""
        histogram = Histogram()
        values = [0.1 + i * 0.01 for i in range(1000)]
        for value in values:
            histogram.add(value)
        for fraction in (0.5, 0.95, 0.99):
            exact = sorted(values)[math.ceil(fraction * len(values)) - 1]
            got = histogram.percentile(fraction)
            assert got is not None and exact <= got <= exact * 1.0101

    def test_merge_equals_adding_everything(self) -> None:
        """Merging two histograms gives the same percentiles as one that saw every sample."""
        a, b, both = Histogram(), Histogram(), Histogram()
        for i in range(200):
            (a if i % 2 else b).add(i / 7)
            both.add(i / 7)
        a.merge(Histogram.from_dict(b.to_dict()))
        assert a.count == both.count and a.buckets == both.buckets
        assert a.percentile(0.95) == both.percentile(0.95)

    @given(
        st.lists(st.floats(min_value=0.0011, max_value=1e7), max_size=50)
        | st.lists(st.floats(allow_nan=True, allow_infinity=False), max_size=50)
    )
    def test_adding_all_equals_adding_each(self, samples: list[float]) -> None:
        """A batch added at once gives the buckets, count and max of adding its samples one
        by one."""
        each, together = Histogram(), Histogram()
        for ms in samples:
            each.add(ms)
        together.add_all(samples)
        assert (together.buckets, together.count) == (each.buckets, each.count)
        assert together.max_ms == each.max_ms

    def test_empty_has_no_percentile(self) -> None:
        """An empty histogram has no percentiles rather than a misleading zero."""
        assert Histogram().percentile(0.5) is None

    @given(st.floats(min_value=0.002, max_value=1e7))
    def test_bucket_bounds_its_value(self, ms: float) -> None:
        """A value is never above its bucket's upper bound nor 1 % below the bound before."""
        bucket = bucket_of(ms)
        assert bucket_value(bucket - 1) <= ms * 1.000001
        assert ms <= bucket_value(bucket) * 1.000001

    @given(st.floats(allow_nan=True, allow_infinity=False))
    def test_bucket_of_is_total(self, ms: float) -> None:
        """Any float, NaN and negatives included, has a bucket."""
        assert bucket_of(ms) >= 0


BATCH_AGAINST_LOCUST = textwrap.dedent(
    """
    import json, random, time
    from locust.stats import RequestStats, bucket_response_time
    from pytest_wsconn.load.batch import StepBatch, merge_into_stats

    rng = random.Random(7)
    ms = [rng.lognormvariate(0, 1.5) for _ in range(3000)] + [0.0004, 250.0, 12345.6]
    one_each, batched = RequestStats(), RequestStats()
    for value in ms:
        one_each.log_request("WS", "message", value, 32)
    batch = StepBatch()
    for value in ms[:1000]:
        batch.add(value, 32)
    entries = (batched.total, batched.entries[("message", "WS")])
    merge_into_stats(entries, *batch.take(), time.time(), bucket_response_time)
    for value in ms[1000:]:
        batch.add(value, 32)
    merge_into_stats(entries, *batch.take(), time.time(), bucket_response_time)

    def figures(stats):
        entry = stats.entries[("message", "WS")]
        return [
            [e.num_requests, round(e.total_response_time, 6), e.min_response_time,
             e.max_response_time, sorted(e.response_times.items()), e.total_content_length,
             sum(e.num_reqs_per_sec.values()), e.median_response_time,
             [e.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99, 0.999)]]
            for e in (entry, stats.total)
        ]

    print(json.dumps([figures(one_each), figures(batched)]))
    """
)


class TestBatch:
    def test_a_batch_is_taken_once(self) -> None:
        """Taking a batch hands over its samples and length and leaves it empty."""
        batch = StepBatch()
        batch.add(0.5, 32)
        batch.add(1.5, 30)
        assert batch.take() == ([0.5, 1.5], 62)
        assert batch.take() == ([], 0)

    def test_merged_batches_equal_one_request_event_each(self) -> None:
        """In Locust's own stats (in a child process: importing Locust patches for gevent),
        two merged batches give the counts, sums, min, max, rounded response times and
        percentiles that logging each request gives."""
        done = subprocess.run(
            [sys.executable, "-c", BATCH_AGAINST_LOCUST],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=REPO_ROOT,
        )
        assert done.returncode == 0, done.stderr
        one_each, batched = json.loads(done.stdout)
        assert batched == one_each
        assert one_each[0][0] == 3003


class TestClassification:
    @pytest.mark.parametrize(
        ("exc", "category", "starts"),
        [
            (HandshakeRejected(401, {}, b""), "auth", "auth: HTTP 401"),
            (HandshakeRejected(403, {}, b""), "auth", "auth: HTTP 403"),
            (HandshakeRejected(503, {"retry-after": "3"}, b""), "overload", "overload: HTTP 503"),
            (Closed(1008, "token expired", received=True, sent_code=1008), "policy", "policy:"),
            (Closed(1006, "", received=False, sent_code=None), "network", "network:"),
            (Closed(1006, "", received=False, sent_code=1011), "timeout", "timeout:"),
            (Closed(1013, "", received=True, sent_code=1013), "overload", "overload:"),
            (ProtocolViolation("bad", 1007), "protocol", "protocol:"),
            (HandshakeInvalid("no accept"), "protocol", "protocol:"),
            (ConnectionRefusedError(111, "refused"), "network", "network: Connection refused"),
            (ConnectionResetError(104, "reset"), "network", "network:"),
            (TimeoutError(), "timeout", "timeout:"),
            (
                NoReply(5, 3),
                "timeout",
                "timeout: no echo of our message within 5 s (3 other messages received)",
            ),
        ],
    )
    def test_every_client_error_is_classified(
        self, exc: BaseException, category: str, starts: str
    ) -> None:
        """Each client error maps to the catalogue's category; the table text starts with it."""
        error = classify_load_error(exc)
        assert error.category == category
        assert repr(StepFailure(error)).startswith(starts)

    def test_retry_after_raises_the_wait(self) -> None:
        """A 503's Retry-After is carried into the classified error's minimum delay."""
        error = classify_load_error(HandshakeRejected(503, {"retry-after": "7"}, b""))
        assert error.min_retry_delay == 7

    def test_close_codes_are_named_once(self) -> None:
        """A close failure names its code unless the catalogue's message already does."""
        policy = classify_load_error(Closed(1008, "", received=True, sent_code=1008))
        assert failure_message(policy).endswith("(close 1008 (policy violation))")
        dropped = classify_load_error(Closed(1006, "", received=False, sent_code=None))
        assert failure_message(dropped).count("1006") == 1


class TestThresholds:
    FIGURES = Figures(requests=100, failures=5, p95_connect_ms=12.0, p95_rtt_ms=0.8)

    def test_all_met(self) -> None:
        """Figures within every limit break nothing."""
        limits = Thresholds(max_failure_ratio=0.05, max_p95_connect_ms=12, max_p95_rtt_ms=1)
        assert evaluate(limits, self.FIGURES) == []

    @pytest.mark.parametrize(
        ("limits", "option"),
        [
            (Thresholds(max_failure_ratio=0.01), "--max-failure-ratio"),
            (Thresholds(max_p95_connect_ms=10), "--max-p95-connect-ms"),
            (Thresholds(max_p95_rtt_ms=0.5), "--max-p95-rtt-ms"),
        ],
    )
    def test_a_breach_names_its_option(self, limits: Thresholds, option: str) -> None:
        """A broken limit is reported under the option's name with the measured value."""
        (breach,) = evaluate(limits, self.FIGURES)
        assert breach.option == option
        assert str(breach).startswith(option)

    def test_no_samples_is_a_breach(self) -> None:
        """A limit on a figure that has no samples fails: nothing proved it was met."""
        (breach,) = evaluate(Thresholds(max_p95_rtt_ms=5), Figures(10, 0, 1.0, None))
        assert breach == Breach("--max-p95-rtt-ms", 5, None)
        assert "no samples" in str(breach)

    @pytest.mark.parametrize(
        "kwargs",
        [{"max_failure_ratio": 1.5}, {"max_p95_connect_ms": 0}, {"max_p95_rtt_ms": math.nan}],
    )
    def test_bad_limits_are_refused(self, kwargs: dict[str, float]) -> None:
        """A limit that cannot be met or read is a configuration error naming the option."""
        with pytest.raises(ConfigError, match="--max-"):
            Thresholds(**kwargs)


class TestRecovery:
    WINDOW = FaultWindow("down", 10.0, 11.0)

    def test_full_recovery_and_spread(self) -> None:
        """Recovery is measured from the fault's end to the last affected user's reconnect."""
        events = [
            (1.0, "a", "open"),
            (1.0, "b", "open"),
            (10.1, "a", "lost"),
            (10.2, "b", "lost"),
            (10.5, "a", "fail"),
            (11.3, "a", "open"),
            (11.9, "b", "open"),
        ]
        report = recovery_report(events, [self.WINDOW], end=20.0)
        (window,) = report.windows
        assert (window.affected, window.recovered, window.failed_connections) == (2, 2, 1)
        assert window.full_recovery_s == pytest.approx(0.9)
        assert window.spread_s == pytest.approx(0.6)
        assert report.fully_recovered and report.unexpected == 0

    def test_a_user_that_never_returns(self) -> None:
        """A user still down at the end means no full recovery, and says how many came back."""
        events = [(10.1, "a", "lost"), (10.1, "b", "lost"), (11.2, "a", "open")]
        report = recovery_report(events, [self.WINDOW], end=20.0)
        assert report.windows[0].recovered == 1
        assert report.windows[0].full_recovery_s is None
        assert not report.fully_recovered and report.worst_recovery_s is None

    def test_failures_outside_faults_are_unexpected(self) -> None:
        """A drop far from any fault is counted as a failure the storm did not cause."""
        events = [(3.0, "a", "lost"), (3.2, "a", "open")]
        assert recovery_report(events, [self.WINDOW], end=20.0).unexpected == 1

    def test_schedule_fits_the_run(self) -> None:
        """Faults alternate kinds and each leaves time to recover before the run ends."""
        plan = storm_schedule(10, every=3, length=1, warmup=1, kinds=("down", "reset_peer"))
        assert [(w.kind, w.start) for w in plan] == [
            ("down", 1),
            ("reset_peer", 4),
            ("down", 7),
        ]
        assert all(w.end + 1 <= 10 for w in plan)

    @given(st.floats(0.1, 100), st.floats(0.1, 10), st.floats(0.1, 5), st.floats(0, 5))
    def test_schedule_never_overlaps(
        self, duration: float, every: float, length: float, warmup: float
    ) -> None:
        """Windows never overlap and always end with as long again to spare."""
        plan = storm_schedule(duration, every, length, warmup, ("down",))
        for before, after in itertools.pairwise(plan):
            assert before.end <= after.start
        assert all(w.end + (w.end - w.start) <= duration + 1e-9 for w in plan)


class TestSummary:
    def test_csv_rows_and_histograms(self) -> None:
        """Counts come from Locust's CSV, percentiles from our histograms (Locust's without)."""
        histogram = Histogram()
        for value in (0.2, 0.25, 0.3):
            histogram.add(value)
        summary = build_summary(
            scenario="steady_messaging",
            users=5,
            duration_s=5,
            stats_csv=STATS_CSV,
            failures_csv=FAILURES_CSV,
            result={"histograms": {"message": histogram.to_dict()}, "workers": {"w1": 510}},
        )
        assert list(summary.steps) == ["connect", "message"]
        assert summary.steps["message"].p95_ms == pytest.approx(0.3)
        assert summary.steps["connect"].p95_ms is None  # no successful sample of ours
        bare = build_summary(
            scenario="mine", users=5, duration_s=5, stats_csv=STATS_CSV, failures_csv="", result={}
        )
        assert bare.steps["connect"].p95_ms == 9  # no WebSocketUser data: Locust's own figure
        assert (summary.requests, summary.failure_count) == (510, 1)
        text = summary.format()
        assert "1x connect: network: Connection refused" in text
        assert "1 workers (w1 510)" in text

    def test_parsers_skip_the_aggregate(self) -> None:
        """The Aggregated row is not a step; failures come most frequent first."""
        assert set(parse_stats_csv(STATS_CSV)) == {"connect", "message"}
        assert parse_failures_csv(FAILURES_CSV)[0].occurrences == 1


REFUSED = "network: Connection refused: nothing accepts connections at that address."


def judged(
    steps: dict[str, tuple[int, int]],
    *,
    ours: bool = True,
    thresholds: Thresholds | None = None,
    failures: Sequence[tuple[str, str, int]] = (),
    windows: Sequence[FaultWindow] = (),
    timeline: Sequence[Event] = (),
    others: dict[str, int] | None = None,
) -> LoadSummary:
    """The judged summary of a run with these (requests, failures) per step."""
    stats = "Type,Name,Request Count,Failure Count\n"
    stats += "".join(f"WS,{name},{r},{f}\n" for name, (r, f) in steps.items())
    table = "Method,Name,Error,Occurrences\n"
    table += "".join(f"WS,{step},{error},{n}\n" for step, error, n in failures)
    result = {"histograms": {}, "timeline": list(timeline), "others": others or {}}
    return build_summary(
        scenario="s",
        users=2,
        duration_s=20,
        stats_csv=stats,
        failures_csv=table,
        result=result if ours else {},
        windows=windows,
        end=20.0,
        thresholds=thresholds,
    )


class TestVerdict:
    def test_a_clean_run_passes(self) -> None:
        """No failed request and a connection opened: passed, and no claim about thresholds."""
        summary = judged({"connect": (4, 0), "message": (100, 0)})
        assert summary.passed and summary.problems == []
        assert summary.format().splitlines()[-1] == "verdict: passed: no request failed"
        assert "thresholds" not in summary.format()

    @pytest.mark.parametrize("ratio", [None, 1.0])
    def test_no_connection_fails_whatever_the_ratio(self, ratio: float | None) -> None:
        """Nothing ever opened fails the run in one line, even with --max-failure-ratio 1."""
        summary = judged(
            {"connect": (22, 22)},
            thresholds=Thresholds(max_failure_ratio=ratio),
            failures=[("connect", REFUSED, 22)],
        )
        assert summary.problems == [
            f"no connection ever opened: 22 of 22 requests failed, most often {REFUSED}"
        ]
        assert "verdict: FAILED" in summary.format()

    def test_a_refused_token_opens_nothing(self) -> None:
        """Every upgrade refused (only `auth` failures, no `connect` row): no connection."""
        summary = judged({"auth": (20, 20)})
        assert summary.connections_opened == 0
        assert summary.problems == ["no connection ever opened: 20 of 20 requests failed"]

    def test_any_failure_fails_without_a_ratio(self) -> None:
        """Like Locust's --exit-code-on-error: one failed request fails the run."""
        summary = judged(
            {"connect": (10, 0), "message": (100, 3)},
            failures=[("message", "timeout: no echo of our message within 5 s", 3)],
        )
        assert summary.problems == [
            "3 of 110 requests failed, most often timeout: no echo of our message within 5 s; "
            "allow a share with --max-failure-ratio"
        ]

    def test_a_ratio_allows_a_share(self) -> None:
        """--max-failure-ratio relaxes the rule explicitly, and still fails beyond the share."""
        steps = {"connect": (10, 0), "message": (100, 3)}
        allowed = judged(steps, thresholds=Thresholds(max_failure_ratio=0.05))
        assert allowed.passed
        assert allowed.format().splitlines()[-1] == (
            "verdict: passed: 3 of 110 requests failed, within --max-failure-ratio 0.05; "
            "1 threshold met"
        )
        beyond = judged(steps, thresholds=Thresholds(max_failure_ratio=0.01))
        assert beyond.problems == ["threshold failed: --max-failure-ratio 0.01: measured 0.02727"]

    WINDOW = FaultWindow("down", 10.0, 11.0)
    INSIDE: tuple[Event, ...] = (
        (5.0, "u1", "open"),
        (5.0, "u2", "open"),
        (10.2, "u1", "lost"),
        (10.5, "u1", "fail"),
        (11.2, "u1", "open"),
    )

    def test_a_storm_counts_only_failures_outside_its_faults(self) -> None:
        """Failures inside a fault are expected and reported; one outside fails the run."""
        steps = {"connect": (4, 1), "message": (50, 1)}
        inside = judged(steps, windows=[self.WINDOW], timeline=self.INSIDE)
        assert inside.passed and inside.counted_failures == 0
        assert "verdict: passed: 2 failed requests, all inside the faults" in inside.format()
        outside = [*self.INSIDE, (15.0, "u2", "lost"), (15.1, "u2", "open")]
        steps["message"] = (50, 2)
        late = judged(steps, windows=[self.WINDOW], timeline=outside)
        assert late.counted_failures == 1
        assert late.problems == [
            "1 of 54 requests failed outside the faults; allow a share with --max-failure-ratio"
        ]

    def test_a_storm_whose_users_never_come_back_fails(self) -> None:
        """A user still down when the run ends is a failed storm, not expected failures."""
        timeline = [(5.0, "u1", "open"), (10.2, "u1", "lost"), (12.0, "u1", "fail")]
        summary = judged(
            {"connect": (3, 1), "message": (10, 1)}, windows=[self.WINDOW], timeline=timeline
        )
        assert summary.problems == [
            "not every user reconnected after the faults: down 0/1 users back"
        ]

    def test_a_locustfile_without_websocketuser_is_judged_by_failures(self) -> None:
        """Without our data no connection count exists: only the failure rule applies."""
        assert judged({"GET /": (10, 0)}, ours=False).passed
        failed = judged({"GET /": (10, 10)}, ours=False)
        assert failed.connections_opened is None
        assert failed.problems == [
            "10 of 10 requests failed; allow a share with --max-failure-ratio"
        ]

    @given(
        connects=st.integers(0, 30),
        connect_failures=st.integers(0, 30),
        messages=st.integers(0, 300),
        message_failures=st.integers(0, 300),
        ratio=st.none() | st.floats(0, 1),
    )
    def test_the_rules(
        self,
        connects: int,
        connect_failures: int,
        messages: int,
        message_failures: int,
        ratio: float | None,
    ) -> None:
        """No connection always fails; else failures fail unless within an explicit ratio."""
        assume(connect_failures <= connects and message_failures <= messages)
        summary = judged(
            {"connect": (connects, connect_failures), "message": (messages, message_failures)},
            thresholds=Thresholds(max_failure_ratio=ratio),
        )
        failed, requests = connect_failures + message_failures, connects + messages
        if connects == connect_failures:
            assert summary.problems[0].startswith("no connection ever opened")
        elif not failed:
            assert summary.passed
        elif ratio is None:
            assert not summary.passed
        else:
            assert summary.passed == (failed / requests <= ratio)

    def test_other_messages_are_reported_per_step(self) -> None:
        """Messages that were not a step's reply are counted per step, in JSON and text."""
        summary = judged({"connect": (1, 0), "message": (9, 0)}, others={"message": 1234})
        assert summary.steps["message"].other_messages == 1234
        assert (
            "other messages (broadcasts, pushes; never the end of a round trip): message 1,234"
            in (summary.format())
        )
        data = json.loads(json.dumps(summary.to_dict()))
        assert data["steps"]["message"]["other_messages"] == 1234
        assert (data["passed"], data["problems"], data["counted_failures"]) == (True, [], 0)
        result = LoadResult(0, "", data, Path())
        assert result.ok and result.steps["message"].other_messages == 1234


class TestMessages:
    @given(st.text(min_size=1, max_size=40), st.integers(0, 200))
    def test_text_leads_with_its_id(self, message_id: str, size: int) -> None:
        """The id is always whole at the head; the message has the size asked if it fits."""
        text = unique_text(message_id, size)
        assert text.startswith(f"{message_id} ")
        assert len(text) == max(size, len(message_id) + 1)

    @given(st.text(min_size=1, max_size=20), st.text(max_size=40), st.integers(0, 300))
    def test_json_carries_the_id_in_its_field(self, field: str, message_id: str, size: int) -> None:
        """The id sits in the field; padding brings the text to the size asked when it fits."""
        text = unique_json(field, message_id, size)
        assert json.loads(text)[field] == message_id
        bare = json.dumps({field: message_id})
        assert len(text) == (size if size > len(bare) + len(', "pad": ""') else len(bare))

    def test_a_reply_matches_on_the_field_only(self) -> None:
        """An answer that carries our id matches; another id, no id or not JSON does not."""
        sent = unique_json("id", "abc.1", 32)
        assert same_json_field("id", sent, '{"id": "abc.1", "ok": true}')
        assert same_json_field("id", sent, b'{"id": "abc.1"}')
        assert not same_json_field("id", sent, '{"id": "abc.2", "ok": true}')
        assert not same_json_field("id", sent, '{"ok": true}')
        assert not same_json_field("id", sent, "tick")
        assert not same_json_field("id", sent, '["abc.1"]')

    @given(st.text() | st.binary(), st.text() | st.binary())
    def test_matching_never_raises(self, sent: str | bytes, received: str | bytes) -> None:
        """Whatever arrives (not JSON, not UTF-8, deeply nested), matching answers a bool."""
        assert same_json_field("id", sent, received) in (True, False)

    def test_matching_survives_deep_nesting(self) -> None:
        """JSON nested past the parser's recursion limit is no match, not a crash."""
        assert not same_json_field("id", '{"id": 1}', "[" * 100_000)

    @pytest.mark.parametrize(
        ("timeout", "others", "echo", "text"),
        [
            (5, 0, True, "no echo of our message within 5 s (0 other messages received)"),
            (0.5, 1, True, "no echo of our message within 0.5 s (1 other message received)"),
            (5, 1234, False, "no reply to our message within 5 s (1,234 other messages received)"),
        ],
    )
    def test_no_reply_reads_in_one_line(
        self, timeout: float, others: int, echo: bool, text: str
    ) -> None:
        """The failure says what did not come back, how long we waited and what came instead."""
        assert no_reply_text(timeout, others, echo=echo) == text


class TestCommandLine:
    @pytest.mark.parametrize(
        ("text", "seconds"), [("90", 90), ("90s", 90), ("2m", 120), ("1h30m", 5400), ("1.5s", 1.5)]
    )
    def test_durations(self, text: str, seconds: float) -> None:
        """Durations read as Locust's --run-time does, plus bare seconds."""
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "0", "-3", "3x", "m"])
    def test_bad_durations(self, text: str) -> None:
        """A duration that is not a positive time names the valid forms."""
        with pytest.raises(ConfigError, match="valid"):
            parse_duration(text)

    def test_storm_faults(self) -> None:
        """A storm's faults are a comma-separated list of the kinds it knows, and only those."""
        assert parse_storm_faults(" reset_peer, down ") == ("reset_peer", "down")
        for text in ("", ",", "down,latency"):
            with pytest.raises(ConfigError, match="valid: a comma-separated list of down, reset"):
                parse_storm_faults(text)

    def test_every_scenario_is_found(self) -> None:
        """The four shipped scenarios resolve by name."""
        for name in ("connect_storm", "steady_messaging", "idle_hold", "reconnect_storm"):
            assert scenario_path(name, scenario_folders()).name == f"{name}.py"

    def test_unknown_scenario_lists_the_valid_ones(self) -> None:
        """A typo in the scenario name lists the shipped scenarios."""
        with pytest.raises(ConfigError, match="connect_storm, steady_messaging"):
            scenario_path("conect_storm", scenario_folders())

    def test_bad_option_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A bad --auth stops the parser with the valid syntax."""
        with pytest.raises(SystemExit):
            build_parser().parse_args(["steady_messaging", "--auth", "bogus"])
        assert "query:<param>" in capsys.readouterr().err

    def test_fixture_keywords_become_options(self, tmp_path: object) -> None:
        """The fixture's snake-case keywords map onto `wsconn load` options."""
        argv = load_argv("idle_hold", tmp_path, {"users": 3, "storm": False, "ping_interval": 0.5})  # type: ignore[arg-type]
        assert argv[-3:] == ["--users=3", "--no-storm", "--ping-interval=0.5"]
        argv = load_argv("s", tmp_path, {"reply_id_field": "id", "reply_timeout": 1})  # type: ignore[arg-type]
        assert argv[-2:] == ["--reply-id-field=id", "--reply-timeout=1"]
        with pytest.raises(TypeError, match="userz"):
            load_argv("idle_hold", tmp_path, {"userz": 3})  # type: ignore[arg-type]

    def test_master_binds_loopback_and_expects_workers(self, tmp_path: Path) -> None:
        """With --workers the master listens on 127.0.0.1 and waits for that many workers."""
        args = build_parser().parse_args(["steady_messaging", "--workers", "2", "-u", "4"])
        target = LoadTarget("ws://h/ws", None, "127.0.0.1:9")
        master, workers = locust_commands(args, Path("s.py"), target, tmp_path, 5557)
        assert master[master.index("--master-bind-host") + 1] == "127.0.0.1"
        assert master[master.index("--expect-workers") + 1] == "2"
        assert {"--headless", "--csv", "--html", "--ws-dial=127.0.0.1:9"} <= set(master)
        assert len(workers) == 2
        assert workers[0][-5:] == [
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            "5557",
        ]

    def test_reply_settings_reach_the_users(self, tmp_path: Path) -> None:
        """--reply-timeout and --reply-id-field become the users' --ws-* options."""
        args = build_parser().parse_args(
            ["steady_messaging", "--reply-timeout", "0.5", "--reply-id-field", "id"]
        )
        master, _ = locust_commands(args, Path("s.py"), LoadTarget("ws://h/ws", None), tmp_path, 0)
        assert {"--ws-reply-timeout=0.5", "--ws-reply-id-field=id"} <= set(master)
        assert not any(part.startswith("--ws-timeline") for part in master)

    def test_a_storm_records_every_failure(self, tmp_path: Path) -> None:
        """With a storm the users record their timeline, whatever the locustfile says."""
        args = build_parser().parse_args(["mine.py", "--storm"])
        master, _ = locust_commands(args, Path("s.py"), LoadTarget("ws://h/ws", None), tmp_path, 0)
        assert "--ws-timeline=on" in master

    def test_help_states_the_exit_rule(self) -> None:
        """--help says when the run exits 1, the ratio's default included."""
        text = " ".join(build_parser().format_help().split())
        assert "no connection ever opened (even with --max-failure-ratio 1)" in text
        assert "(default: none may)" in text

    def test_token_stays_off_the_command_line(self, tmp_path: Path) -> None:
        """The token goes to Locust through the environment, never its argv (visible in ps)."""
        args = build_parser().parse_args(["idle_hold", "--token", "s3cret"])
        target = LoadTarget("ws://h/ws", "s3cret")
        master, _ = locust_commands(args, Path("s.py"), target, tmp_path, 0)
        assert not any("s3cret" in part for part in master)

    def test_the_fixture_keeps_the_token_off_the_command_line(self, tmp_path: Path) -> None:
        """``wsconn_load(token=…)`` never puts the token on the child's argv."""
        argv = load_argv("idle_hold", tmp_path, {"token": Secret("s3cret-token"), "users": 2})
        assert "--users=2" in argv
        assert not any("s3cret" in part for part in argv)


class TestFixtureMarker:
    def test_unknown_keyword_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """A misspelt marker keyword stops the run at collection, listing the valid ones."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.wsconn_load(scenario="idle_hold", userz=3)
            def test_x(wsconn_load):
                pass
            """
        )
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        result = pytester.runpytest()
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*@wsconn_load takes keywords only*unknown: userz*"])


BURSTS_AGAINST_A_SERVER = textwrap.dedent(
    """
    import json, sys, time
    from locust.env import Environment
    from pytest_wsconn.load.user import WebSocketUser

    class Echo(WebSocketUser):
        host = sys.argv[1]
        batch_requests = False  # one request event per round trip, counted below

    environment = Environment(user_classes=[Echo])
    echoes = []
    environment.events.request.add_listener(
        lambda name, exception, **_: echoes.append(name) if exception is None else None
    )
    user = Echo(environment)
    assert user.ws_connect()
    results = []
    for count, within in ((7, float("inf")), (10**9, 0.3)):
        del echoes[:]
        started = time.perf_counter()
        done = user.ws_exchanges(count, within=within)
        seconds = time.perf_counter() - started
        results.append([done, echoes.count("message"), seconds])
    user.ws_close()
    print(json.dumps(results))
    """
)


class TestBursts:
    def test_a_burst_ends_at_its_count_or_its_time(self, reference_service: Service) -> None:
        """``ws_exchanges`` runs exactly ``count`` round trips, or stops starting new ones after
        ``within`` seconds (how a back-to-back user returns to Locust four times a second)."""
        done = subprocess.run(
            [sys.executable, "-c", BURSTS_AGAINST_A_SERVER,
             f"{reference_service.url}?token={reference_service.token}"],
            capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        (counted, seven, _), (timed, echoes, seconds) = json.loads(done.stdout)
        assert counted and seven == 7
        assert timed and 0 < echoes < 10**9
        assert 0.3 <= seconds < 0.3 + 5  # the last round trip begun in time, then no more


USER_DICTS = textwrap.dedent(
    """
    import json, socket, sys
    import gevent
    from gevent.pool import Group
    from locust.env import Environment
    sys.path.insert(0, "scenarios")
    from idle_hold import IdleHold
    from steady_messaging import SteadyMessaging

    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: every connect is refused
    sizes = {}
    # what each scenario sets once it has started and run a task
    for user_class, last in ((IdleHold, "held"), (SteadyMessaging, "_round_started")):
        user_class.host = f"ws://127.0.0.1:{refused.getsockname()[1]}/ws"
        user = user_class(Environment(user_classes=[user_class]))
        user.start(Group())  # as Locust starts a user: on_start, a task, a reconnect wait
        with gevent.Timeout(10):
            while last not in vars(user):
                gevent.sleep(0.01)
        sizes[user_class.__name__] = [
            len(vars(user)), sys.getsizeof(vars(user)), sys.getsizeof(dict(vars(user)))
        ]
        user._greenlet.kill()
    print(json.dumps(sizes))
    """
)


class TestUserFootprint:
    def test_started_users_share_their_attribute_keys(self) -> None:
        """A running user's ``__dict__`` shares its keys with the other users' (CPython does up
        to 30 attributes): past that, each of 19,000 idle users would carry ~1.3 KB more."""
        done = subprocess.run(
            [sys.executable, "-c", USER_DICTS],
            capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        for name, (count, shared, unshared) in json.loads(done.stdout).items():
            assert count <= 30, name
            assert shared < unshared / 2, (name, shared, unshared)


class TestMaskKeys:
    def test_keys_are_four_fresh_bytes_across_refills(self) -> None:
        """Keys are cut four bytes apart from the pool and the pool is read afresh when used
        up: 3,000 keys (three pools) hold no run of repeats."""
        keys = MaskKeys()
        drawn = [keys.next() for _ in range(3000)]
        assert {len(key) for key in drawn} == {4}
        assert len(set(drawn)) > 2990  # 4 random bytes: a repeat or two at most by chance

    def test_a_forked_child_draws_other_keys(self) -> None:
        """A process forked after the pool was read (Locust's ``--processes``) does not
        repeat its parent's keys."""
        mask_keys.next()
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child
            os.write(write, b"".join(mask_keys.next() for _ in range(8)))
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            theirs = pipe.read()
        os.waitpid(child, 0)
        ours = b"".join(mask_keys.next() for _ in range(8))
        assert len(theirs) == 32 and theirs != ours


class TestWsClient:
    @given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
    def test_masking_twice_is_identity(self, payload: bytes, key: bytes) -> None:
        """Masking is its own inverse, for any payload length."""
        assert apply_mask(apply_mask(payload, key), key) == payload

    @pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
    def test_frame_lengths(self, size: int) -> None:
        """Frames use the 7-bit, 16-bit and 64-bit length forms at their boundaries."""
        frame = encode_frame(0x2, b"a" * size, key=b"\x00\x00\x00\x00")
        header = 2 + (2 if 126 <= size < 65536 else 8 if size >= 65536 else 0) + 4
        assert len(frame) == header + size
        assert frame[1] & 0x80  # masked, as a client must

    def test_a_frame_the_socket_takes_in_part_is_sent_whole(self) -> None:
        """A send that takes part of a frame is finished with sendall: no byte lost or doubled."""

        class PartialSocket:
            def __init__(self) -> None:
                self.wire = bytearray()

            def send(self, data: bytes) -> int:
                self.wire += data[:3]
                return 3

            def sendall(self, data: bytes) -> None:
                self.wire += data

        sock = PartialSocket()
        client = WsClient(sock, b"", None)  # type: ignore[arg-type]
        client.send(b"x" * 200)
        assert len(sock.wire) == 2 + 2 + 4 + 200  # header, 16-bit length, mask key, payload
        key = bytes(sock.wire[4:8])
        assert apply_mask(bytes(sock.wire[8:]), key) == b"x" * 200

    def test_messages_are_taken_from_whatever_bytes_arrived(self) -> None:
        """next_message returns None until a message's last byte came, then the message;
        fragments and a ping between them (answered) are taken in stride."""

        def server_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
            return bytes(((0x80 if fin else 0) | opcode, len(payload))) + payload

        ours, theirs = socket.socketpair()
        with ours, theirs:
            client = WsClient(ours, b"", None)
            wire = server_frame(0x1, "héllo".encode())
            theirs.sendall(wire[:3])
            client.receive()
            assert client.next_message() is None
            theirs.sendall(wire[3:] + server_frame(0x2, b"ab", fin=False))
            client.receive()
            assert client.next_message() == "héllo"
            assert client.next_message() is None  # the binary message's first fragment only
            theirs.sendall(server_frame(0x9, b"p") + server_frame(0x0, b"cd"))
            client.receive()
            assert client.next_message() == b"abcd"
            pong = theirs.recv(64)
            assert pong[0] == 0x8A and apply_mask(pong[6:], pong[2:6]) == b"p"

    def test_accept_key_matches_rfc_example(self) -> None:
        """The accept key of RFC 6455's example handshake."""
        assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    def test_echo_ping_and_close(self, reference_service: object) -> None:
        """Against the reference server: echo text and bytes, a pong, and close 1000."""
        url = f"{reference_service.url}?token={reference_service.token}"  # type: ignore[attr-defined]
        client, handshake = WsClient.connect(url, timeout=5)
        assert handshake.seconds > 0
        client.send("hello")
        assert client.recv(5) == "hello"
        client.send(b"\x00" * 70000)
        assert client.recv(5) == b"\x00" * 70000
        assert client.ping_pong(5) > 0
        closed = client.close()
        assert (closed.code, closed.received) == (1000, True)

    def test_pushes_read_while_idle_are_counted(
        self, broken_service: Callable[[str], Service]
    ) -> None:
        """Messages an idle spell or a ping drops are counted, for the other-messages figure."""
        service = broken_service("pushes")
        client, _ = WsClient.connect(f"{service.url}?token={service.token}", timeout=5)
        client.idle(0.05)
        assert client.ping_pong(5) > 0
        assert client.skipped >= 1  # the service pushes once before anything else
        client.close()

    def test_rejected_token(self, reference_service: object) -> None:
        """A forged token is refused with HTTP 401 and reads as an auth failure."""
        with pytest.raises(HandshakeRejected) as rejected:
            WsClient.connect(f"{reference_service.url}?token=forged", timeout=5)  # type: ignore[attr-defined]
        assert rejected.value.status == 401
        assert b"token" in rejected.value.body
        assert classify_load_error(rejected.value).category == "auth"

    def test_server_close_is_reported(self, reference_service: object) -> None:
        """A close the server starts ends recv with its code and reason."""
        url = f"{reference_service.url}?token={reference_service.token}"  # type: ignore[attr-defined]
        client, _ = WsClient.connect(url, timeout=5)
        client.send('{"control": "close", "code": 4001, "reason": "kicked"}')
        with pytest.raises(Closed) as closed:
            client.recv(5)
        assert (closed.value.code, closed.value.reason) == (4001, "kicked")
