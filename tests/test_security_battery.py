"""The security battery passes on the reference server and names each near miss let in."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from support import Service
from support.battery import run_against, run_battery

SECURITY = ("-m", "wsconn_security", "-rfs")
ORIGIN = "--wsconn-origin=http://localhost"  # what tests/support/brokenserver.py allows


def failed_ids(result: pytest.RunResult) -> set[str]:
    """``test_name[id]`` of every FAILED line in the short summary."""
    return set(re.findall(r"^FAILED \S+::(\S+)", result.stdout.str(), re.M))


@pytest.mark.usefixtures("user_env")
class TestSecurityBatteryPasses:
    def test_on_the_embedded_stack(self, pytester: pytest.Pytester) -> None:
        """The reference server refuses every variant; only checks it cannot be given skip."""
        result = run_battery(pytester, *SECURITY)
        result.assert_outcomes(passed=21, skipped=2, deselected=11)
        result.stdout.fnmatch_lines(
            [
                "SKIPPED * no not-yet-valid token for this service (implement pytest_wsconn_token)",
                "SKIPPED * the service does not authenticate by cookie (--wsconn-auth=query:token)",
            ],
            consecutive=False,
        )

    def test_on_an_external_reference_server(
        self, pytester: pytest.Pytester, reference_service: Service
    ) -> None:
        """As a user's own service, with its allowed Origin given, the reference server passes."""
        result = run_against(pytester, reference_service, *SECURITY, ORIGIN)
        outcomes = result.parseoutcomes()
        assert "failed" not in outcomes, result.stdout.str()
        assert outcomes["passed"] >= 19, result.stdout.str()
        assert reference_service.token not in result.stdout.str()

    def test_without_the_allowed_origin_the_origin_checks_skip(
        self, pytester: pytest.Pytester, reference_service: Service
    ) -> None:
        """An external service's allowed Origin is not guessed: the Origin checks say to pass it."""
        result = run_against(pytester, reference_service, *SECURITY, "-k", "origin_variant")
        result.assert_outcomes(skipped=5, deselected=29)
        result.stdout.fnmatch_lines(
            ["SKIPPED [[]5[]] *: the allowed Origin is not known (pass --wsconn-origin)"]
        )


CAUGHT = {
    "short-compare": (
        {
            f"test_credential_variant_refused[{variant}]"
            for variant in (
                "empty",
                "truncated-by-one",
                "truncated-to-half",
                "truncated-to-one",
                "appended",
            )
        },
        "the valid token without its last character got through: the connection was accepted "
        "and stayed open; expected HTTP 401/403 or close 1008",
    ),
    "length-only": (
        {
            f"test_credential_variant_refused[{variant}]"
            for variant in ("case-swapped", "changed-first", "changed-middle", "changed-last")
        }
        | {"test_refusal_does_not_echo_the_credential", "test_bad_token_rejected[forged]"},
        "the valid token with its middle character changed got through*",
    ),
    "any-param": (
        {
            "test_credential_variant_refused[decoy-query]",
            "test_credential_variant_refused[decoy-cookie]",
        },
        "the valid token in a query parameter wsconn_decoy got through*",
    ),
    "loose-origin": (
        {
            f"test_origin_variant_refused[{variant}]"
            for variant in ("suffixed", "look-alike", "other-scheme", "other-port", "null")
        },
        "Origin http://localhost.attacker.invalid (the allowed host with .attacker.invalid "
        "appended) got through*",
    ),
    "reflects-token": (
        {"test_refusal_does_not_echo_the_credential"},
        "the refused token is echoed back in the HTTP body of the refusal",
    ),
}
WHY = {
    "short-compare": "*CWE-287 improper authentication, OWASP WebSocket Security Cheat Sheet*",
    "length-only": "fix: refuse the upgrade with HTTP 401 unless the whole token verifies*",
    "any-param": "*CWE-287*",
    "loose-origin": "*(CWE-1385 missing Origin validation in WebSockets, OWASP*",
    "reflects-token": "*(CWE-209 sensitive information in an error message*",
}


@pytest.mark.usefixtures("user_env")
class TestSecurityBatteryCatches:
    @pytest.mark.parametrize("mode", sorted(CAUGHT))
    def test_a_broken_server(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service], mode: str
    ) -> None:
        """Exactly the variants the server lets in fail, each saying what, why and the fix."""
        service = broken_service(mode)
        result = run_against(pytester, service, *SECURITY, ORIGIN)
        expected, words = CAUGHT[mode]
        assert failed_ids(result) == expected, result.stdout.str()
        result.stdout.fnmatch_lines([f"*{words}", WHY[mode]], consecutive=False)
        assert service.token not in result.stdout.str()

    def test_stale_tokens_from_the_hook(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """Expired and not-yet-valid tokens from the user's hook are sent, and must be refused."""
        pytester.makeconftest(
            """
            def pytest_wsconn_token(kind, config):
                return {"expired": "expired-tok", "not-yet-valid": "future-tok"}.get(kind)
            """
        )
        result = run_against(pytester, broken_service("accept-anything"), *SECURITY, ORIGIN)
        assert {
            "test_stale_credential_refused[expired]",
            "test_stale_credential_refused[not-yet-valid]",
        } <= failed_ids(result)
        result.stdout.fnmatch_lines(["*an not-yet-valid token got through*"])
