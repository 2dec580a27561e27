"""The slow security checks: off by default, and when on they catch a stalled handshake left open
and a connection maximum that is missing or pushes open connections off."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import Service
from support.battery import ORIGIN, SECURITY, failed_ids, run_against, run_battery, starlette

from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.stack.reference_process import ReferenceOptions, ReferenceProcess
from pytest_wsconn.timing import scaled

SLOW = (*SECURITY, ORIGIN, "--wsconn-slow", "-k", "test_slow")
CHECKS = {"test_stalled_handshake_closed", "test_connections_over_the_maximum_refused"}


@pytest.mark.usefixtures("user_env")
class TestSlowChecks:
    def test_off_by_default(self, pytester: pytest.Pytester) -> None:
        """Without --wsconn-slow the slow checks are deselected, not run and not passed."""
        result = run_battery(pytester, "-m", "wsconn_slow")
        result.assert_outcomes(deselected=47)
        assert "test_slow" not in result.stdout.str()
        result.stdout.fnmatch_lines(
            ["wsconn: 2 slow security check(s) deselected (--wsconn-slow runs them)"]
        )

    def test_the_ini_key_opts_in(self, pytester: pytest.Pytester) -> None:
        """``wsconn_slow = true`` in the ini file selects them as --wsconn-slow does."""
        pytester.makeini("[pytest]\nwsconn_slow = true\n")
        result = run_battery(pytester, "-m", "wsconn_slow", "-k", "maximum", "-rs")
        result.assert_outcomes(skipped=1, deselected=46)

    def test_the_reference_server_passes(self, pytester: pytest.Pytester) -> None:
        """The reference server closes a stalled handshake (10 s) and refuses above its maximum."""
        with ReferenceProcess(ReferenceOptions(max_connections=3).command) as server:
            url = server.wait_ready(scaled(10))
            service = Service(url, reference_token(server.secret, "valid"))
            result = run_against(pytester, service, *SLOW, "--wsconn-max-connections=3", "-rP")
        result.assert_outcomes(passed=2, deselected=45)
        result.stdout.fnmatch_lines(["*the stalled handshake was closed after *s*"])

    def test_a_server_without_limits_fails_both(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """No handshake timeout and no maximum: each check fails, saying why and the fix."""
        args = ("--wsconn-handshake-deadline=1", "--wsconn-max-connections=3", "-rA")
        result = run_against(pytester, broken_service("unlimited"), *SLOW, *args)
        assert failed_ids(result) == CHECKS, result.stdout.str()
        result.stdout.fnmatch_lines(
            [
                "a stalled opening handshake (TCP open, the request's headers never finished) "
                "was still open after 1 s (--wsconn-handshake-deadline)",
                "*(CWE-400 uncontrolled resource consumption*",
                "connection 4, one above --wsconn-max-connections=3, was not refused: the "
                "connection was accepted and stayed open; expected close 1013 or HTTP 429/503",
                "*(CWE-770 allocation of resources without limits*",
            ],
            consecutive=False,
        )

    def test_a_server_that_evicts_open_connections_fails(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """Refusing the extra connection is not enough: the ones already open must keep working."""
        args = ("--wsconn-max-connections=3", "-k", "maximum")
        result = run_against(pytester, broken_service("evicts-oldest"), *SLOW, *args)
        result.assert_outcomes(failed=1, deselected=46)
        result.stdout.fnmatch_lines(
            ["after connection 4 was refused, connection(s) 1 of the 3 already open no longer echo"]
        )

    def test_the_maximum_check_says_what_it_needs(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """Without --wsconn-max-connections the maximum check skips, naming the option."""
        result = run_against(pytester, broken_service("unlimited"), *SLOW, "-k", "maximum")
        result.assert_outcomes(skipped=1, deselected=46)
        result.stdout.fnmatch_lines(
            [
                "SKIPPED * the service's connection maximum is not known "
                "(pass --wsconn-max-connections)"
            ]
        )


@pytest.mark.usefixtures("user_env")
class TestSlowChecksOnStarlette:
    def test_uvicorn_leaves_a_stalled_handshake_open(self, pytester: pytest.Pytester) -> None:
        """On uvicorn an app-level maximum passes; its lack of a header timeout fails."""
        with starlette("limit=3") as service:
            limits = ("--wsconn-handshake-deadline=2", "--wsconn-max-connections=3")
            result = run_against(pytester, service, *SLOW, *limits)
        assert failed_ids(result) == {"test_stalled_handshake_closed"}, result.stdout.str()
        result.assert_outcomes(passed=1, failed=1, deselected=45)
        result.stdout.fnmatch_lines(["*was still open after 2 s (--wsconn-handshake-deadline)"])

    def test_an_app_without_a_maximum_fails(self, pytester: pytest.Pytester) -> None:
        """Without the app's own limit uvicorn takes every WebSocket: the maximum check fails."""
        with starlette() as service:
            args = ("--wsconn-max-connections=3", "-k", "maximum")
            result = run_against(pytester, service, *SLOW, *args)
        result.assert_outcomes(failed=1, deselected=46)
        result.stdout.fnmatch_lines(
            [
                "connection 4, one above --wsconn-max-connections=3, was not refused: the "
                "connection was accepted and stayed open; expected close 1013 or HTTP 429/503",
                "*(CWE-770 allocation of resources without limits*",
            ],
            consecutive=False,
        )
