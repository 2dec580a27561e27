"""The built-in check battery passes on the reference server and names what a broken one breaks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import Service
from support.battery import run_against, run_battery, starlette

CHECKS = 14  # without the security checks (tests/test_security_battery.py runs those)
SECURITY_CHECKS = 29  # by default; the two slow ones (tests/test_security_slow.py) deselected
SLOW_CHECKS = 2
BROWSER_CHECKS = 2  # opt-in (--wsconn-frontend-origin): tests/test_battery_browser.py runs them
WITHOUT_SECURITY = ("-k", "not test_security and not test_abuse and not test_fuzz")


@pytest.mark.usefixtures("user_env")
class TestBatteryPasses:
    def test_on_the_embedded_stack(self, pytester: pytest.Pytester) -> None:
        """Every check passes on the default local stack; two it cannot be given skip."""
        result = run_battery(pytester)
        result.assert_outcomes(
            passed=CHECKS + SECURITY_CHECKS - 2, skipped=2, deselected=SLOW_CHECKS + BROWSER_CHECKS
        )
        result.stdout.fnmatch_lines(["*wsconn: stack=local*toxiproxy-server 2.12.0*"])

    def test_on_an_external_reference_server(
        self, pytester: pytest.Pytester, reference_service: Service
    ) -> None:
        """Every check passes when the reference server is treated as a user's running service.

        Skipped: the Origin checks (no --wsconn-origin), expired and not-yet-valid tokens (no
        hook) and the cookie check (query auth).
        """
        result = run_against(pytester, reference_service)
        result.assert_outcomes(
            passed=CHECKS + SECURITY_CHECKS - 8, skipped=8, deselected=SLOW_CHECKS + BROWSER_CHECKS
        )
        assert reference_service.token not in result.stdout.str()

    def test_without_a_token_the_token_checks_skip(
        self, pytester: pytest.Pytester, reference_service: Service
    ) -> None:
        """Checks that need a token the user did not give are skipped with the reason."""
        result = run_battery(
            pytester,
            "--wsconn-stack=external",
            f"--wsconn-url={reference_service.url}",
            "-rs",
            *WITHOUT_SECURITY,
        )
        outcomes = result.parseoutcomes()
        assert outcomes["skipped"] == 4, result.stdout.str()
        result.stdout.fnmatch_lines(["*no valid token for this service (pass --wsconn-token)*"])


@pytest.mark.usefixtures("user_env")
class TestBatteryCatchesBrokenServers:
    def test_a_server_that_accepts_anything(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """Missing and forged tokens and a foreign Origin each fail, naming the acceptance."""
        result = run_against(pytester, broken_service("accept-anything"), *WITHOUT_SECURITY)
        result.assert_outcomes(passed=CHECKS - 5, failed=5)
        result.stdout.fnmatch_lines(
            [
                "*AssertionError: a missing token was accepted*",
                "FAILED *test_auth.py::test_bad_token_rejected?missing?*",
                "FAILED *test_auth.py::test_bad_token_rejected?forged?*",
                "FAILED *test_auth.py::test_foreign_origin_rejected*",
                "FAILED *test_reconnect.py::test_rejected_token_is_not_retried?missing?*",
                "FAILED *test_reconnect.py::test_rejected_token_is_not_retried?forged?*",
            ],
            consecutive=False,
        )
        assert "expected a rejection; the connection was accepted and stayed open" in (
            result.stdout.str()
        )

    def test_a_wrong_path_passes_no_refusal_check(self, pytester: pytest.Pytester) -> None:
        """On a path that refuses everything (Starlette: HTTP 403), refusal checks fail too."""
        with starlette() as service:
            result = run_battery(
                pytester,
                f"--wsconn-url={service.url.removesuffix('/ws')}/no-such-path",
                f"--wsconn-token={service.token}",
                *WITHOUT_SECURITY,
            )
        outcomes = result.parseoutcomes()
        assert outcomes.get("passed") == 1, result.stdout.str()  # the proxy down check only
        assert result.stdout.str().count("a refusal proves nothing here") >= 5
        result.stdout.fnmatch_lines(
            [
                "FAILED *test_auth.py::test_bad_token_rejected?missing?*",
                "FAILED *test_auth.py::test_foreign_origin_rejected*",
                "FAILED *test_reconnect.py::test_rejected_token_is_not_retried?forged?*",
            ],
            consecutive=False,
        )

    def test_a_server_with_a_wrong_close_code(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """Only the normal-close check fails, and it names both close codes."""
        result = run_against(pytester, broken_service("wrong-close-code"), *WITHOUT_SECURITY)
        result.assert_outcomes(passed=CHECKS - 1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*expected close 1000 (OK); the connection was closed by us with 1000; "
                "the server answered 1001 (going away) 'bye'*",
                "FAILED *test_normal_close_is_1000*",
            ],
            consecutive=False,
        )

    def test_a_server_that_never_answers_pings(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """Only the ping check fails, saying what clients with keepalive will do."""
        result = run_against(pytester, broken_service("no-pong"), *WITHOUT_SECURITY)
        result.assert_outcomes(passed=CHECKS - 1, failed=1)
        result.stdout.fnmatch_lines(
            ["*the service did not answer a ping within 2 s*", "FAILED *test_answers_pings*"],
            consecutive=False,
        )
