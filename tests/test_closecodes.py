"""The failure catalogue: total, every entry actionable, application codes configurable."""

from __future__ import annotations

import builtins
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets.exceptions
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from pytest_wsconn.closecodes import (
    APP_CODES,
    NEVER_ON_WIRE,
    AppCode,
    ConfigError,
    WebSocketError,
    catalogue_markdown,
    classify_close,
    classify_exception,
    classify_failure,
    classify_http_status,
    parse_app_codes,
    parse_retry_after,
    use_app_codes,
)

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def constructible_exceptions() -> list[BaseException]:
    """One instance of every exception class that builtins, socket, ssl and websockets define."""
    classes = {
        obj
        for module in (builtins, socket, ssl, websockets.exceptions)
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    }
    instances: list[BaseException] = []
    for cls in sorted(classes, key=lambda c: c.__name__):
        for args in ((), ("boom",)):
            try:
                instances.append(cls(*args))
                break
            except Exception:  # noqa: S112 - classes whose constructor needs more are skipped
                continue
    return instances


EXCEPTIONS = constructible_exceptions()


def actionable(error: WebSocketError) -> None:
    assert error.message
    assert error.steps
    assert error.min_retry_delay >= 0


@pytest.fixture
def app_codes() -> Iterator[None]:
    token = use_app_codes({4001: AppCode("the session was revoked", retryable=False)})
    yield
    APP_CODES.reset(token)


class TestTotality:
    @given(st.integers())
    def test_any_close_code(self, code: int) -> None:
        """Any integer as a close code, sent or received, classifies with advice."""
        actionable(classify_failure(close_code=code))
        actionable(classify_failure(close_code=code, sent_by_us=True))

    @given(st.integers(), st.none() | st.floats(min_value=0, max_value=1e6))
    def test_any_http_status(self, status: int, retry_after: float | None) -> None:
        """Any integer as an HTTP status classifies with advice."""
        actionable(classify_failure(http_status=status, retry_after=retry_after))

    @given(st.sampled_from(EXCEPTIONS), st.sampled_from([None, *EXCEPTIONS]))
    def test_any_exception(self, exc: BaseException, cause: BaseException | None) -> None:
        """Every exception type, with or without a cause, classifies and never raises."""
        exc.__cause__ = cause if cause is not exc else None
        actionable(classify_failure(exception=exc))

    def test_a_cyclic_cause_chain_ends(self) -> None:
        """Exceptions that cause each other (it happens with __context__) still classify."""
        first, second = ValueError("a"), KeyError("b")
        first.__cause__, second.__context__ = second, first
        assert classify_failure(exception=first).category == "unknown"
        second.__context__ = ConnectionRefusedError()
        assert classify_failure(exception=first).category == "network"

    def test_enough_exception_types_are_exercised(self) -> None:
        """The property above covers the standard library's and websockets' exceptions."""
        names = {type(e).__name__ for e in EXCEPTIONS}
        assert {"ConnectionRefusedError", "gaierror", "SSLCertVerificationError"} <= names
        assert len(EXCEPTIONS) > 60

    def test_nothing_observed(self) -> None:
        """With nothing observed the result is still an actionable unknown."""
        assert classify_failure().category == "unknown"


class TestCatalogue:
    @pytest.mark.parametrize("code", [1003, 1007, 1008, 1009, 1010, 1015, 3000, 3003])
    def test_not_retried_by_default(self, code: int) -> None:
        """Auth, policy and data errors are not worth retrying: a retry repeats them."""
        assert not classify_close(code).retryable

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 426])
    def test_http_not_retried(self, status: int) -> None:
        """Handshake rejections a retry cannot fix are not retryable."""
        assert not classify_http_status(status).retryable

    @pytest.mark.parametrize(("code", "wait"), [(1001, 0.5), (1011, 1.0), (1013, 1.0)])
    def test_retryable_with_a_minimum_delay(self, code: int, wait: float) -> None:
        """Going away, server errors and overload are retried after a minimum delay."""
        assert classify_close(code).retryable
        assert classify_close(code).min_retry_delay == wait

    def test_1011_sent_by_us_is_a_keepalive_timeout(self) -> None:
        """Our own 1011 (keepalive) is a timeout; the server's 1011 is a server error."""
        assert classify_close(1011, sent_by_us=True).category == "timeout"
        assert classify_close(1011).category == "server_error"

    def test_connection_closed_exceptions(self) -> None:
        """A ConnectionClosed classifies by the code received, or by our keepalive's 1011."""
        received = ConnectionClosedError(Close(1013, "busy"), None)
        keepalive = ConnectionClosedError(None, Close(1011, "keepalive ping timeout"))
        dropped = ConnectionClosedError(None, None)
        assert classify_exception(received).category == "overload"
        assert classify_exception(keepalive).category == "timeout"
        assert classify_exception(dropped).code == 1006

    def test_refused_on_one_of_several_addresses(self) -> None:
        """asyncio's joined error for localhost (127.0.0.1 refused, ::1 unusable) is a refusal."""
        joined = OSError(
            "Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 8765), "
            "[Errno 99] Cannot assign requested address"
        )
        assert classify_exception(joined).category == "network"

    def test_http_status_from_exception(self) -> None:
        """An InvalidStatus classifies by its status."""
        exc = InvalidStatus(Response(403, "Forbidden", websockets.datastructures.Headers()))
        assert classify_exception(exc).code == 403

    def test_retry_after_raises_the_wait(self) -> None:
        """Retry-After raises the minimum delay of retryable rejections only."""
        assert classify_http_status(429, retry_after=7).min_retry_delay == 7
        assert classify_http_status(503, retry_after=0.2).min_retry_delay == 1.0
        assert classify_http_status(401, retry_after=7).min_retry_delay == 0

    @pytest.mark.parametrize(
        ("value", "seconds"),
        [("120", 120.0), ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0), ("soon", None), (None, None)],
    )
    def test_parse_retry_after(self, value: str | None, seconds: float | None) -> None:
        """Retry-After is read as delta-seconds or an HTTP date (here: now = 60 s past epoch)."""
        assert parse_retry_after(value, now=60.0) == seconds

    def test_readme_table_is_generated_from_the_catalogue(self) -> None:
        """The README's close-code table is exactly what the catalogue generates."""
        assert catalogue_markdown() in README

    def test_never_on_the_wire_is_said(self) -> None:
        """The table says 1004, 1005, 1006 and 1015 never travel in a close frame."""
        rows = {line.split(" ", 2)[1]: line for line in catalogue_markdown().splitlines()[2:]}
        for code in NEVER_ON_WIRE:
            assert "never sent on the wire" in rows[str(code)].lower()


class TestApplicationCodes:
    def test_parse(self) -> None:
        """Ini lines give codes a meaning and a retry decision."""
        assert parse_app_codes(["4001: no-retry: session revoked", "", "4002: retry:"]) == {
            4001: AppCode("session revoked", retryable=False),
            4002: AppCode("application code 4002", retryable=True),
        }

    @pytest.mark.parametrize(
        "line", ["4001 no-retry", "4001: maybe: x", "1000: retry: x", "x: retry"]
    )
    def test_parse_errors_show_the_syntax(self, line: str) -> None:
        """A malformed line or a code outside 4000-4999 is a configuration error."""
        with pytest.raises(ConfigError, match="4000-4999"):
            parse_app_codes([line])

    @pytest.mark.usefixtures("app_codes")
    def test_configured_meaning_is_used(self) -> None:
        """A configured application code classifies with its meaning and retry decision."""
        error = classify_close(4001)
        assert error.message == "the session was revoked (application code 4001)."
        assert not error.retryable
        assert classify_close(4002).retryable

    def test_unconfigured_codes_say_how_to_configure(self) -> None:
        """Without configuration, an application code points to the ini key."""
        assert any("wsconn_close_codes" in step for step in classify_close(4001).steps)


class TestPluginWiring:
    def test_ini_and_hook_give_codes_meanings(self, pytester: pytest.Pytester) -> None:
        """The ini key and the hook feed the catalogue; the hook wins."""
        pytester.makeini(
            "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
            "wsconn_close_codes =\n    4001: no-retry: session revoked\n    4002: retry: busy\n"
        )
        pytester.makeconftest(
            """
            from pytest_wsconn.closecodes import AppCode

            def pytest_wsconn_close_code(code, config):
                return AppCode("from the hook", retryable=True) if code == 4002 else None
            """
        )
        pytester.makepyfile(
            """
            from pytest_wsconn.closecodes import classify_close

            def test_codes():
                assert classify_close(4001).message == "session revoked (application code 4001)."
                assert not classify_close(4001).retryable
                assert classify_close(4002).message == "from the hook (application code 4002)."
            """
        )
        pytester.runpytest().assert_outcomes(passed=1)
        assert classify_close(4001).message == "The application closed with its own code 4001."

    def test_bad_ini_line(self, pytester: pytest.Pytester) -> None:
        """A malformed wsconn_close_codes line is a usage error."""
        pytester.makeini(
            "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
            "wsconn_close_codes = 4001 maybe\n"
        )
        result = pytester.runpytest()
        result.stderr.fnmatch_lines(["ERROR: pytest-wsconn: invalid close code line '4001 maybe'*"])
