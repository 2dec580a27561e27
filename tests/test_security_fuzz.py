"""The fuzz check: seeded and bounded; correct servers pass, a failure names the example."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from support import Service
from support.battery import ORIGIN, SECURITY, health_of, run_against, run_battery, starlette

FUZZ = (*SECURITY, "-k", "fuzz", "-rP")


def sent(result: pytest.RunResult) -> int:
    """How many frame sequences the passing fuzz check reports (hypothesis skips repeats)."""
    found = re.search(
        r"^fuzz: (\d+) frame sequences sent, the service stayed healthy; ",
        result.stdout.str(),
        re.M,
    )
    assert found, result.stdout.str()
    return int(found.group(1))


def failing_example(result: pytest.RunResult) -> str:
    """The frames of the example the fuzz check reports."""
    found = re.search(r"^after fuzzed frames \[(.*)\] ", result.stdout.str(), re.M)
    assert found, result.stdout.str()
    return found.group(1)


@pytest.mark.usefixtures("user_env")
class TestFuzzPasses:
    def test_on_the_reference_server_with_the_seed_printed(self, pytester: pytest.Pytester) -> None:
        """The reference server answers every drawn sequence with a close frame and stays up."""
        result = run_battery(pytester, *FUZZ, "--wsconn-fuzz-seed=7")
        result.assert_outcomes(passed=1, deselected=46)
        result.stdout.fnmatch_lines(["fuzz: * sent, *; seed 7 (replay with --wsconn-fuzz-seed=7)"])
        assert 1 <= sent(result) <= 50

    def test_the_budget_bounds_examples_and_time(self, pytester: pytest.Pytester) -> None:
        """--wsconn-fuzz-examples caps the count; a spent --wsconn-fuzz-seconds stops after one."""
        assert 1 <= sent(run_battery(pytester, *FUZZ, "--wsconn-fuzz-examples=5")) <= 5
        assert sent(run_battery(pytester, *FUZZ, "--wsconn-fuzz-seconds=0.000001")) == 1

    def test_on_starlette(self, pytester: pytest.Pytester) -> None:
        """Starlette on uvicorn answers drawn frames with a close frame and stays healthy."""
        with starlette() as service:
            result = run_against(pytester, service, *FUZZ, ORIGIN, health_of(service))
        result.assert_outcomes(passed=1, deselected=46)


@pytest.mark.usefixtures("user_env")
class TestWithoutHypothesis:
    def test_the_fuzz_check_skips_naming_the_extra(self, pytester: pytest.Pytester) -> None:
        """Where hypothesis cannot be imported the fuzz check skips, saying what to install."""
        pytester.makeconftest("import sys\n\nsys.modules['hypothesis'] = None\n")
        result = run_battery(pytester, *FUZZ, "-rs", "-p", "no:hypothesispytest")
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(
            ["SKIPPED * the fuzz check needs pip install 'pytest-wsconn[[]fuzz[]]'"]
        )


@pytest.mark.usefixtures("user_env")
class TestFuzzCatches:
    def test_a_server_that_drops_bad_frames_and_the_seed_replays(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """A dropped TCP connection fails, naming the frames; the printed seed replays them."""
        service = broken_service("drops-on-bad-frames")
        runs = [
            run_against(pytester, service, *FUZZ, ORIGIN, "--wsconn-fuzz-seed=11") for _ in range(2)
        ]
        for result in runs:
            result.assert_outcomes(failed=1, deselected=46)
            result.stdout.fnmatch_lines(
                [
                    "after fuzzed frames [[]*[]] the service dropped the TCP connection without a "
                    "close frame (the client sees 1006) instead of answering with a close frame",
                    "example * of the fuzz run, seed 11 (replay with --wsconn-fuzz-seed=11)",
                    "*(CWE-20 improper input validation*",
                ]
            )
        assert failing_example(runs[0]) == failing_example(runs[1])

    def test_a_server_that_turns_unhealthy(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """A service that closes correctly but whose health endpoint then fails is caught."""
        service = broken_service("sick-after-abuse")
        result = run_against(pytester, service, *FUZZ, ORIGIN, health_of(service))
        result.assert_outcomes(failed=1, deselected=46)
        result.stdout.fnmatch_lines(
            ["after fuzzed frames [[]*[]] the service is not healthy: the health endpoint "
             "http://127.0.0.1:*/health answered HTTP 503"]
        )  # fmt: skip

    def test_a_starlette_app_that_turns_unhealthy(self, pytester: pytest.Pytester) -> None:
        """On uvicorn, which closes bad frames itself, an app sick after one is caught too."""
        with starlette("sick-after-abuse") as service:
            url = health_of(service)
            result = run_against(pytester, service, *FUZZ, ORIGIN, url)
        result.assert_outcomes(failed=1, deselected=46)
        result.stdout.fnmatch_lines(
            ["after fuzzed frames [[]*[]] the service is not healthy: the health endpoint "
             "http://127.0.0.1:*/health answered HTTP 503"]
        )  # fmt: skip
