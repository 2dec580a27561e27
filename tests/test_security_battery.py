"""The security battery passes on the reference server and names each near miss let in."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import Service
from support.battery import (
    ORIGIN,
    SECURITY,
    failed_ids,
    health_of,
    run_against,
    run_battery,
    starlette,
)

from pytest_wsconn.security import ABUSE_IDS


@pytest.mark.usefixtures("user_env")
class TestSecurityBatteryPasses:
    def test_on_the_embedded_stack(self, pytester: pytest.Pytester) -> None:
        """The reference server refuses every variant; only checks it cannot be given skip."""
        result = run_battery(pytester, *SECURITY)
        result.assert_outcomes(passed=30, skipped=2, deselected=15)
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
        health = health_of(reference_service)
        result = run_against(pytester, reference_service, *SECURITY, ORIGIN, health)
        outcomes = result.parseoutcomes()
        assert "failed" not in outcomes, result.stdout.str()
        assert outcomes["passed"] == 29, result.stdout.str()
        assert reference_service.token not in result.stdout.str()

    def test_with_cookie_auth(self, pytester: pytest.Pytester) -> None:
        """With cookie auth the reference server refuses a handshake without Origin too."""
        cookie = ("--wsconn-auth=cookie:wsconn_token", "--wsconn-origin=http://localhost")
        result = run_battery(pytester, *SECURITY, *cookie, "-k", "cookie")
        result.assert_outcomes(passed=2, deselected=45)  # the decoy cookie and this one

    def test_without_the_allowed_origin_the_origin_checks_skip(
        self, pytester: pytest.Pytester, reference_service: Service
    ) -> None:
        """An external service's allowed Origin is not guessed: the Origin checks say to pass it."""
        result = run_against(pytester, reference_service, *SECURITY, "-k", "origin_variant")
        result.assert_outcomes(skipped=5, deselected=42)
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
COOKIE_WITHOUT_ORIGIN = [
    "a cookie-authenticated handshake without Origin got through: the connection was accepted "
    "and stayed open*",
    "*(CWE-1385 missing Origin validation in WebSockets*",
]
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

    def test_cookie_auth_without_origin(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """A service reading a cookie that takes a handshake without Origin is a CSWSH risk."""
        result = run_against(
            pytester, broken_service("any-param"), *SECURITY, "-k", "cookie_auth",
            "--wsconn-auth=cookie:session", ORIGIN,
        )  # fmt: skip
        result.assert_outcomes(failed=1, deselected=46)
        result.stdout.fnmatch_lines(COOKIE_WITHOUT_ORIGIN)

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
        assert failed_ids(result) >= STALE
        result.stdout.fnmatch_lines(["*a token not valid yet got through*"])


ABUSED = {
    "no-limit": (
        {"test_oversized_message_refused"},
        "a message of 16,777,217 bytes (--wsconn-max-message + 1) was not refused: the service "
        "echoed all 16,777,217 bytes back: it has no limit at that size; expected close 1009*",
        "*(CWE-770 allocation of resources without limits*",
    ),
    "drops-on-bad-frames": (
        {f"test_protocol_abuse_closed[{case}]" for case in ABUSE_IDS}
        | {"test_oversized_message_refused"},  # websockets' 1009 goes the same way
        "after an unmasked client frame the service dropped the TCP connection without a close "
        "frame (the client sees 1006); expected close 1002",
        "*(CWE-20 improper input validation, RFC 6455 section 5*",
    ),
    "chat": (
        {"test_no_crosstalk"},
        "a message sent on one connection also arrived on another one with the same token",
        "*(CWE-200 exposure of information to an unauthorized actor*",
    ),
}


def sick_after_abuse(health_url: str) -> list[str]:
    """The words of a service that closed an unmasked frame right but turned unhealthy."""
    return [
        "after an unmasked client frame the service is not healthy: the health endpoint "
        f"{health_url.partition('=')[2]} answered HTTP 503",
        "*(CWE-20 improper input validation*",
    ]


@pytest.mark.usefixtures("user_env")
class TestSecurityBatteryCatchesAbuse:
    @pytest.mark.parametrize("mode", sorted(ABUSED))
    def test_a_broken_server(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service], mode: str
    ) -> None:
        """Exactly the abuse the server mishandles fails, saying what it did and why it matters."""
        result = run_against(pytester, broken_service(mode), *SECURITY, ORIGIN, "-k", "test_abuse")
        expected, words, why = ABUSED[mode]
        assert failed_ids(result) == expected, result.stdout.str()
        result.stdout.fnmatch_lines([f"*{words}", why], consecutive=False)

    def test_a_server_that_dies_on_invalid_utf8(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """A service that exits on invalid UTF-8 fails that check, which names the abuse."""
        service = broken_service("dies-on-bad-utf8")
        result = run_against(pytester, service, *SECURITY, "-k", "invalid-utf8")
        result.assert_outcomes(failed=1, deselected=46)
        result.stdout.fnmatch_lines(
            ["after a text frame with invalid UTF-8 the service dropped the TCP connection*"]
        )

    @pytest.mark.parametrize("health", [True, False], ids=["health-url", "no-health-url"])
    def test_a_server_whose_health_fails_after_abuse(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service], health: bool
    ) -> None:
        """A service closing correctly but turning unhealthy fails once its health URL is given."""
        service = broken_service("sick-after-abuse")
        url = health_of(service)
        args = (*SECURITY, ORIGIN, "-k", "unmasked", *([url] if health else []))
        result = run_against(pytester, service, *args)
        if not health:  # the fresh connection alone cannot see it: the option is what catches it
            result.assert_outcomes(passed=1, deselected=46)
            return
        result.assert_outcomes(failed=1, deselected=46)
        result.stdout.fnmatch_lines(sick_after_abuse(url), consecutive=False)

    def test_a_health_url_that_fails_before_any_abuse(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """A health URL that is not healthy to begin with fails the checks that use it, first."""
        service = broken_service("sick-after-abuse")
        wrong = health_of(service).replace("/health", "/nope")
        result = run_against(pytester, service, *SECURITY, ORIGIN, "-k", "unmasked", wrong)
        result.assert_outcomes(errors=1, deselected=46)
        result.stdout.fnmatch_lines(
            [
                "before this check's abuse the health endpoint http://127.0.0.1:*/nope answered "
                "HTTP 401: nothing after it could be told from that (an earlier check may have "
                "left the service unhealthy; check --wsconn-health-url)"
            ]
        )

    def test_a_broadcasting_service_says_so(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """With --wsconn-broadcasts the crosstalk check skips with that reason."""
        result = run_against(
            pytester, broken_service("chat"), *SECURITY, "-k", "crosstalk", "--wsconn-broadcasts"
        )
        result.assert_outcomes(skipped=1, deselected=46)
        result.stdout.fnmatch_lines(
            ["SKIPPED * the service broadcasts every message by design (--wsconn-broadcasts)"]
        )


# uvicorn checks every frame before the app sees it and closes a bad one with 1002/1007 itself,
# so a Starlette app cannot drop the connection on a bad frame or die of one: drops-on-bad-frames
# and dies-on-bad-utf8 have no Starlette twin (see the README's security checks). The app only
# learns the close code afterwards, so sick-after-abuse does (test_an_app_whose_health_fails...).
ON_STARLETTE = {
    **{mode: (*CAUGHT[mode], WHY[mode]) for mode in CAUGHT},
    "no-limit": ABUSED["no-limit"],
    "chat": ABUSED["chat"],
}


STALE = {
    "test_stale_credential_refused[expired]",
    "test_stale_credential_refused[not-yet-valid]",
}
DATED_TOKEN_HOOK = """
import time


def pytest_wsconn_token(kind, config):
    now = int(time.time())
    window = {"expired": (now - 7200, now - 3600), "not-yet-valid": (now + 3600, now + 7200)}
    return "starlette-token.%d.%d" % window[kind] if kind in window else None
"""
"""A user's hook handing out starletteapp.py's dated tokens, out of their window."""


@pytest.mark.usefixtures("user_env")
class TestOnStarlette:
    """A second server stack: Starlette on uvicorn, refusing by closing before accept (403)."""

    def test_a_correct_app_passes(self, pytester: pytest.Pytester) -> None:
        """A correct app passes every check it can be given."""
        with starlette("correct") as service:
            result = run_against(pytester, service, *SECURITY, ORIGIN, health_of(service))
        assert failed_ids(result) == set(), result.stdout.str()
        assert result.parseoutcomes()["passed"] == 29

    @pytest.mark.parametrize("mode", sorted(ON_STARLETTE))
    def test_a_broken_app(self, pytester: pytest.Pytester, mode: str) -> None:
        """Each broken app fails exactly the checks its websockets twin fails, in the same words."""
        # No mode targets the fuzz check (its seconds-long budget against a busy uvicorn is what
        # tests/test_security_fuzz.py measures): left out here, so each run fails only its checks.
        with starlette(mode) as service:
            url = health_of(service)
            result = run_against(pytester, service, *SECURITY, ORIGIN, url, "-k", "not fuzz")
        expected, words, why = ON_STARLETTE[mode]
        assert failed_ids(result) == expected, result.stdout.str()
        result.stdout.fnmatch_lines([f"*{words}", why], consecutive=False)
        assert service.token not in result.stdout.str()
        assert result.parseoutcomes()["passed"] == 28 - len(expected)

    def test_cookie_auth_without_origin(self, pytester: pytest.Pytester) -> None:
        """An app reading a cookie that takes a handshake without Origin is a CSWSH risk."""
        with starlette("any-param") as service:
            result = run_against(
                pytester, service, *SECURITY, "-k", "cookie_auth",
                "--wsconn-auth=cookie:session", ORIGIN,
            )  # fmt: skip
        result.assert_outcomes(failed=1, deselected=46)
        result.stdout.fnmatch_lines(COOKIE_WITHOUT_ORIGIN)

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [("correct", set()), ("ignores-expiry", STALE)],
        ids=["correct", "ignores-expiry"],
    )
    def test_stale_tokens_from_the_hook(
        self, pytester: pytest.Pytester, mode: str, expected: set[str]
    ) -> None:
        """Dated tokens from the user's hook: refused by the app that reads their window."""
        pytester.makeconftest(DATED_TOKEN_HOOK)
        with starlette(mode) as service:
            result = run_against(pytester, service, *SECURITY, ORIGIN, "-k", "stale")
        assert failed_ids(result) == expected, result.stdout.str()
        assert result.parseoutcomes().get("passed", 0) == 2 - len(expected)
        if expected:
            result.stdout.fnmatch_lines(["*an expired token got through*"])

    def test_an_app_whose_health_fails_after_abuse(self, pytester: pytest.Pytester) -> None:
        """uvicorn closes the bad frame correctly; an app turning unhealthy after it still fails."""
        with starlette("sick-after-abuse") as service:
            url = health_of(service)
            result = run_against(pytester, service, *SECURITY, ORIGIN, "-k", "unmasked", url)
        result.assert_outcomes(failed=1, deselected=46)
        result.stdout.fnmatch_lines(sick_after_abuse(url), consecutive=False)
