"""The pure core: classification, expectations, parsing and redaction, with no I/O."""

from __future__ import annotations

import argparse
import ast
import contextlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_wsconn.cli import types
from pytest_wsconn.closecodes import (
    Outcome,
    classify_close,
    classify_http_status,
    classify_outcome,
    close_code_name,
)
from pytest_wsconn.config import (
    AuthMode,
    ConfigError,
    Settings,
    origin_of,
    parse_auth_mode,
    parse_http_url,
    parse_non_negative_int,
    parse_origin,
    parse_port,
    parse_positive_int,
    parse_seconds,
    parse_seconds_or_off,
    parse_stack,
    parse_timeout,
    parse_url_path,
    parse_ws_url,
    resolve,
    resolve_stack,
    target_address,
)
from pytest_wsconn.expect import (
    CloseInfo,
    ConnectionAttempt,
    classify,
    describe_attempt,
    expected_close_failure,
    expected_rejection_failure,
    timeline,
)
from pytest_wsconn.redact import REDACTED, redact_text, redact_url
from pytest_wsconn.session_report import summarize

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_wsconn"
PURE_MODULES = [
    "backoff",
    "browser/timeline",
    "browser/verdicts",
    "chaos",
    "cli/types",
    "closecodes",
    "config",
    "expect",
    "faults",
    "fuzzing",
    "history/dashboard",
    "history/loads",
    "history/records",
    "history/trends",
    "history/views",
    "load/batch",
    "load/errors",
    "load/histogram",
    "load/messages",
    "load/recovery",
    "load/summary",
    "load/thresholds",
    "parsers",
    "redact",
    "reference/controls",
    "reference/tokens",
    "results",
    "security",
    "session_report",
    "stack/compose/spec",
    "verdicts/__init__",
    "verdicts/probes",
    "verdicts/redaction",
    "verdicts/refusal",
    "verdicts/replies",
    "verdicts/tls",
    "verdicts/url",
]
IO_MODULES = {"asyncio", "socket", "subprocess", "ssl", "http", "urllib.request", "select"}


def attempt(**fields: object) -> ConnectionAttempt:
    values: dict[str, object] = {"url": "ws://h/ws", "started_at": 0.0, "started": 10.0}
    return ConnectionAttempt(**{**values, **fields})  # type: ignore[arg-type]


def closed(
    code: int, *, received: bool = True, sent: int | None = None, ours: bool = False
) -> CloseInfo:
    return CloseInfo(code, "", received=received, sent_code=sent, initiated_by_us=ours, at=12.5)


class TestPurity:
    @pytest.mark.parametrize("module", PURE_MODULES)
    def test_source_imports_no_io(self, module: str) -> None:
        """A pure-core module imports no asyncio, socket, subprocess or HTTP client."""
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        imported = {
            name
            for node in ast.walk(tree)
            for name in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        }
        assert not {n for n in imported if n.split(".")[0] in IO_MODULES or n in IO_MODULES}

    def test_importing_the_core_loads_no_event_loop_or_processes(self) -> None:
        """Importing the pure core in a fresh interpreter pulls in no asyncio or subprocess."""
        modules = ", ".join(
            f"pytest_wsconn.{m.replace('/', '.').removesuffix('.__init__')}" for m in PURE_MODULES
        )
        io = "{'asyncio', 'subprocess', 'http.client'}"
        code = f"import sys, {modules}; print(sorted({io} & set(sys.modules)))"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        assert out.stdout.strip() == "[]"


class TestCloseCodes:
    @pytest.mark.parametrize(
        ("code", "category"),
        [
            (1000, "normal"),
            (1001, "going_away"),
            (1002, "protocol"),
            (1003, "protocol"),
            (1005, "normal"),
            (1006, "network"),
            (1007, "protocol"),
            (1008, "policy"),
            (1009, "message_too_big"),
            (1010, "protocol"),
            (1011, "server_error"),
            (1012, "going_away"),
            (1013, "overload"),
            (1014, "server_error"),
            (1015, "tls"),
            (3000, "auth"),
            (3001, "app_defined"),
            (4001, "app_defined"),
            (999, "unknown"),
            (5000, "unknown"),
        ],
    )
    def test_categories(self, code: int, category: str) -> None:
        """Each registered code, and the application ranges, land in their category."""
        assert classify_close(code).category == category

    def test_keepalive_1011_we_sent_is_a_timeout(self) -> None:
        """A 1011 our keepalive sent means a dead peer, not a server error."""
        assert classify_close(1011, sent_by_us=True).category == "timeout"
        assert classify_close(1011).category == "server_error"

    @pytest.mark.parametrize(
        ("code", "name"),
        [
            (1008, "1008 (policy violation)"),
            (4000, "4000 (application-defined)"),
            (3001, "3001 (registered)"),
            (42, "42 (unknown)"),
        ],
    )
    def test_names(self, code: int, name: str) -> None:
        """Codes print with the names websockets knows."""
        assert close_code_name(code) == name

    @given(st.integers())
    def test_total_over_all_codes(self, code: int) -> None:
        """Any integer classifies to a category with an explanation."""
        diagnosis = classify_close(code)
        assert diagnosis.category and diagnosis.message

    @given(st.integers(min_value=100, max_value=599))
    def test_total_over_http_statuses(self, status: int) -> None:
        """Any HTTP status classifies; 401 and 403 are auth."""
        assert classify_http_status(status).message.startswith(f"HTTP {status}")

    @pytest.mark.parametrize("outcome", list(Outcome))
    def test_every_outcome(self, outcome: Outcome) -> None:
        """Every outcome has a diagnosis; a rejection without status still explains itself."""
        assert classify_outcome(outcome).message


class TestExpect:
    def test_keepalive_close_classifies_as_timeout(self) -> None:
        """No close frame but our 1011 sent first: the keepalive gave up on a silent peer."""
        a = attempt(
            outcome=Outcome.OPENED,
            ended=10.002,
            close=closed(1006, received=False, sent=1011, ours=True),
        )
        assert classify(a).category == "timeout"
        assert "keepalive" in describe_attempt(a)

    def test_abnormal_close_description(self) -> None:
        """A dropped connection reads as 1006 without a close frame, with its lifetime."""
        a = attempt(outcome=Outcome.OPENED, ended=10.1, close=closed(1006, received=False))
        assert describe_attempt(a) == (
            "the connection to ws://h/ws closed abnormally (1006, no close frame) after 2.5 s — "
            "network: The connection dropped without a closing handshake (1006 is never sent on "
            "the wire: it means no close frame arrived)."
        )

    def test_expected_close_matches(self) -> None:
        """The expected code (and reason) received from the server is no failure."""
        a = attempt(
            outcome=Outcome.OPENED, close=CloseInfo(1008, "token expired", True, 1008, False, 11.0)
        )
        assert expected_close_failure(a, 1008, None) is None
        assert expected_close_failure(a, 1008, "token expired") is None
        message = expected_close_failure(a, 1008, "other")
        assert message is not None and "with reason 'other'" in message

    def test_expected_close_names_both_codes(self) -> None:
        """A different close names what was expected and what happened."""
        a = attempt(outcome=Outcome.OPENED, close=closed(1006, received=False))
        message = expected_close_failure(a, 1008, None)
        assert message is not None
        assert message.startswith(
            "expected close 1008 (policy violation); the connection closed abnormally (1006"
        )
        assert "after 2.5 s" in message

    def test_still_open(self) -> None:
        """An open connection is reported as still open after the wait."""
        message = expected_close_failure(attempt(outcome=Outcome.OPENED), 1000, None, waited=3)
        assert message == "expected close 1000 (OK); the connection was still open after 3.0 s"

    def test_rejections(self) -> None:
        """An HTTP status or a server close code satisfies a rejection; acceptance does not."""
        rejected = attempt(outcome=Outcome.HTTP_REJECTED, http_status=401)
        assert expected_rejection_failure(rejected, 401, None) is None
        assert expected_rejection_failure(rejected, 403, None) == (
            "expected HTTP 403; instead the connection to ws://h/ws was rejected with HTTP 401 — "
            "auth: HTTP 401: the token was missing, invalid or expired."
        )
        policy = attempt(outcome=Outcome.OPENED, close=closed(1008))
        assert expected_rejection_failure(policy, 401, 1008) is None
        accepted = attempt(outcome=Outcome.OPENED, close=closed(1000, sent=1000, ours=True))
        assert expected_rejection_failure(accepted, None, 1008) == (
            "expected close 1008 (policy violation); the connection was accepted and stayed open"
        )

    def test_timeline(self) -> None:
        """The timeline lists each attempt's steps relative to the first and its diagnosis."""
        first = attempt(
            outcome=Outcome.OPENED, ended=10.003, subprotocol="wsconn.v1", close=closed(1001)
        )
        second = attempt(
            started=13.0,
            outcome=Outcome.REFUSED,
            ended=13.001,
            error_type="ConnectionRefusedError",
            error="refused",
        )
        text = timeline([first, second])
        assert f"#{first.id} ws://h/ws" in text
        assert "+  0.003s opened in 3.0 ms (subprotocol wsconn.v1)" in text
        assert "+  2.500s was closed by the server with 1001 (going away)" in text
        assert "+  3.001s refused (ConnectionRefusedError: refused)" in text
        assert "diagnosis: network: Connection refused: nothing accepts" in text
        assert timeline([]) == "no WebSocket connection was attempted"

    def test_an_attempt_cut_short_is_no_failure(self) -> None:
        """An attempt still opening when its test ended is said so, and not counted as failed."""
        unfinished = attempt()
        text = timeline([unfinished])
        assert "still opening when the test ended: not a connection failure" in text
        assert "diagnosis" not in text
        assert summarize([unfinished])["failed"] == 0


class TestConfig:
    @pytest.mark.parametrize(
        ("text", "mode"),
        [
            ("query:token", AuthMode("query", "token")),
            ("query:access_token", AuthMode("query", "access_token")),
            ("header", AuthMode("header")),
            ("subprotocol", AuthMode("subprotocol", "token.")),
            ("subprotocol:bearer.", AuthMode("subprotocol", "bearer.")),
            ("cookie:session", AuthMode("cookie", "session")),
            ("none", AuthMode("none")),
        ],
    )
    def test_auth_modes(self, text: str, mode: AuthMode) -> None:
        """Each documented auth mode parses, and prints back as it was written."""
        assert parse_auth_mode(text) == mode
        assert parse_auth_mode(str(mode)) == mode

    @pytest.mark.parametrize("text", ["query", "cookie", "header:x", "none:x", "bearer", ""])
    def test_bad_auth_modes_name_the_syntax(self, text: str) -> None:
        """A bad auth mode is refused with the whole syntax."""
        with pytest.raises(
            ConfigError,
            match=r"valid: query:<param>, header, subprotocol\[:<prefix>\], cookie:<name>, none",
        ):
            parse_auth_mode(text)

    @given(st.text())
    def test_auth_mode_parser_is_total(self, text: str) -> None:
        """Any text either parses or raises ConfigError."""
        with contextlib.suppress(ConfigError):
            parse_auth_mode(text)

    def test_other_parsers(self) -> None:
        """Stack, URL and timeout parsers accept the valid and name it for the rest."""
        assert parse_stack("external") == "external"
        assert parse_ws_url("wss://api.example.com/ws") == "wss://api.example.com/ws"
        assert parse_http_url("http://127.0.0.1:8474/") == "http://127.0.0.1:8474"
        assert parse_timeout("2.5") == 2.5
        for parser, bad in [
            (parse_stack, "k8s"),
            (parse_ws_url, "ws://h:99999/"),
            (parse_ws_url, "ws:///x"),
            (parse_http_url, "ftp://x"),
            (parse_timeout, "nan"),
            (parse_timeout, "0"),
        ]:
            with pytest.raises(ConfigError):
                parser(bad)

    @pytest.mark.parametrize(
        ("parser", "text", "value"),
        [
            (parse_port, "0", 0),
            (parse_port, " 65535 ", 65535),
            (parse_positive_int, "1", 1),
            (parse_non_negative_int, "0", 0),
            (parse_seconds, "0.25", 0.25),
            (parse_seconds, "1e3", 1000.0),
            (parse_seconds_or_off, "0", None),
            (parse_seconds_or_off, "2.5", 2.5),
            (parse_origin, "https://app.example.com", "https://app.example.com"),
            (parse_origin, "http://localhost:5173/", "http://localhost:5173/"),
            (parse_url_path, "/ws", "/ws"),
        ],
    )
    def test_value_parsers_accept(
        self, parser: Callable[[str], object], text: str, value: object
    ) -> None:
        """Ports, counts, seconds, origins and paths read as written."""
        assert parser(text) == value

    @pytest.mark.parametrize(
        ("parser", "text", "message"),
        [
            (parse_port, "abc", "'abc' is not a port (0-65535; 0 picks a free one)"),
            (parse_port, "65536", "'65536' is not a port (0-65535; 0 picks a free one)"),
            (parse_positive_int, "0", "'0' is not a positive integer"),
            (parse_positive_int, "1.5", "'1.5' is not a positive integer"),
            (parse_non_negative_int, "-1", "'-1' is not 0 or more"),
            (parse_seconds, "0", "'0' is not a positive number of seconds"),
            (parse_seconds, "inf", "'inf' is not a positive number of seconds"),
            (parse_seconds, "nan", "'nan' is not a positive number of seconds"),
            (parse_seconds_or_off, "-1", "'-1' is not a number of seconds (0 disables)"),
            (
                parse_origin,
                "app.example.com",
                "'app.example.com' is not an origin like https://app.example.com",
            ),
            (
                parse_origin,
                "https://h/page",
                "'https://h/page' is not an origin like https://app.example.com",
            ),
            (
                parse_origin,
                "http://h:99999",
                "'http://h:99999' is not an origin like https://app.example.com",
            ),
            (parse_url_path, "ws", "'ws' is not a path like /ws"),
        ],
    )
    def test_value_parsers_name_what_they_want(
        self, parser: Callable[[str], object], text: str, message: str
    ) -> None:
        """A bad value is refused in one sentence saying what was expected."""
        with pytest.raises(ConfigError) as caught:
            parser(text)
        assert str(caught.value) == message

    @given(st.text())
    def test_number_parsers_are_total(self, text: str) -> None:
        """Any text either parses or raises ConfigError."""
        for parser in (parse_port, parse_positive_int, parse_seconds, parse_seconds_or_off):
            with contextlib.suppress(ConfigError):
                parser(text)

    def test_argparse_types_adapt_the_parsers(self) -> None:
        """A command-line type is its config parser; a ConfigError becomes argparse's error."""
        parser = argparse.ArgumentParser(prog="wsconn x", exit_on_error=False)
        parser.add_argument("--port", type=types.port)
        parser.add_argument("--auth", type=types.auth_mode)
        assert parser.parse_args(["--port", "8080", "--auth", "header"]).port == 8080
        with pytest.raises(argparse.ArgumentError, match="'x' is not a port"):
            parser.parse_args(["--port", "x"])
        with pytest.raises(argparse.ArgumentError, match=r"valid: query:<param>"):
            parser.parse_args(["--auth", "bogus"])

    @pytest.mark.parametrize(
        ("url", "origin"),
        [
            ("https://App.Example.com/page?x=1", "https://app.example.com"),
            ("https://app.example.com:443/", "https://app.example.com"),
            ("http://localhost:5173", "http://localhost:5173"),
            ("http://user:pw@[::1]:8080/x", "http://[::1]:8080"),
            ("https://h:99999/", "https://h:99999"),
        ],
    )
    def test_origin_of(self, url: str, origin: str) -> None:
        """The Origin a browser sends: lowercase scheme and host, default port left out."""
        assert origin_of(url) == origin

    @given(st.text())
    def test_origin_of_is_total(self, text: str) -> None:
        """Any text gives an origin-shaped string, never an exception."""
        assert "://" in origin_of(text)

    def test_target_address_defaults(self) -> None:
        """The dialled port follows the scheme when the URL has none."""
        assert target_address("ws://h/x") == ("h", 80)
        assert target_address("wss://h/x") == ("h", 443)
        assert target_address("ws://h:9/x") == ("h", 9)

    @pytest.mark.parametrize(
        ("stack", "url", "resolved"),
        [
            (None, None, "local"),
            (None, "ws://h/ws", "external"),
            ("external", "ws://h/ws", "external"),
            ("compose", None, "compose"),
            ("local", None, "local"),
        ],
    )
    def test_a_url_means_the_external_stack(
        self, stack: str | None, url: str | None, resolved: str
    ) -> None:
        """A URL alone picks the external stack; no stack and no URL is the local one."""
        assert resolve_stack(stack, url, stack_from="s", url_from="u") == resolved

    @pytest.mark.parametrize("stack", ["local", "compose"])
    def test_a_url_beside_another_stack_names_both(self, stack: str) -> None:
        """A URL that another stack would leave untested is refused, naming both settings."""
        with pytest.raises(ConfigError) as refused:
            resolve_stack(
                stack, "ws://h/ws", stack_from="ini wsconn_stack", url_from="--wsconn-url"
            )
        assert f"--wsconn-url names a service but ini wsconn_stack={stack}" in str(refused.value)

    def test_external_needs_a_url(self) -> None:
        """The external stack without a URL is a configuration error with a hint."""
        with pytest.raises(ConfigError, match="needs --wsconn-url"):
            Settings(stack="external")


class TestResolve:
    @pytest.mark.parametrize(
        ("cli", "env", "ini", "timeout"),
        [
            ({"timeout": "1"}, {}, {"timeout": "3"}, 1.0),
            ({}, {}, {"timeout": "3"}, 3.0),
            ({}, {}, {"timeout": ""}, 10.0),
            ({}, {}, {}, 10.0),
        ],
    )
    def test_the_command_line_wins_over_ini(
        self, cli: dict[str, str], env: dict[str, str], ini: dict[str, str], timeout: float
    ) -> None:
        """An option given on the command line wins; an empty ini value is unset."""
        assert resolve(cli, env, ini).timeout == timeout

    @pytest.mark.parametrize("on_cli", [True, False])
    @pytest.mark.parametrize("in_env", [True, False])
    def test_the_environment_sits_between(self, on_cli: bool, in_env: bool) -> None:
        """The token comes from the command line, else the environment, else the ini file."""
        settings = resolve(
            {"token": "cli"} if on_cli else {},
            {"WSCONN_TOKEN": "env"} if in_env else {"WSCONN_TOKEN": ""},
            {"token": "ini"},
        )
        assert settings.token is not None
        assert settings.token.reveal() == ("cli" if on_cli else "env" if in_env else "ini")

    def test_repeatable_options_become_tuples(self) -> None:
        """A repeatable option keeps every value, in order."""
        files = resolve({"compose_file": ["a.yml", "b.yml"]}, {}, {}).compose_files
        assert files == ("a.yml", "b.yml")

    def test_an_error_names_where_the_value_came_from(self) -> None:
        """A URL from the ini file beside --wsconn-stack=local names both sources."""
        with pytest.raises(ConfigError, match="ini wsconn_url names a service but --wsconn-stack"):
            resolve({"stack": "local"}, {}, {"url": "ws://h/ws"})


class TestRedact:
    def test_query_token(self) -> None:
        """Token-like query parameters, and the named one, are redacted; others kept."""
        assert redact_url("ws://h/ws?token=abc&room=1") == f"ws://h/ws?token={REDACTED}&room=1"
        assert redact_url("ws://h/ws?sig=abc", ["sig"]) == f"ws://h/ws?sig={REDACTED}"
        assert redact_url("ws://h/ws") == "ws://h/ws"

    @pytest.mark.parametrize(
        ("url", "redacted"),
        [
            ("ws://user:hunter2@h/ws", f"ws://user:{REDACTED}@h/ws"),
            ("ws://tokenonly@h/ws", f"ws://{REDACTED}@h/ws"),
            ("ws://h/ws?room=1&sig=x", f"ws://h/ws?room=1&sig={REDACTED}"),
            ("ws://h/ws?x=a1b2c3d4e5f6g7h8i9j0k", f"ws://h/ws?x={REDACTED}"),
            ("ws://h/ws?x=eyJhbGciOi.eyJzdWIiOi.c2ln", f"ws://h/ws?x={REDACTED}"),
            ("ws://h/ws?page=2&lang=en", "ws://h/ws?page=2&lang=en"),
            ("ws://[::1/ws?token=abc", f"ws://[::1/ws?token={REDACTED}"),
            ("ws://u:p@[::1/ws", f"ws://{REDACTED}@[::1/ws"),
        ],
    )
    def test_credentials_anywhere_in_a_url(self, url: str, redacted: str) -> None:
        """Userinfo, credential-named and credential-looking values go; a bad URL too."""
        assert redact_url(url) == redacted

    @given(st.text())
    def test_redact_url_is_total(self, text: str) -> None:
        """Any text gives a string back: printing a URL never raises."""
        assert isinstance(redact_url(text), str)

    @given(st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=4))
    def test_secret_never_survives(self, secret: str) -> None:
        """Whatever the token, it appears in neither a redacted URL nor a redacted message."""
        assert secret not in redact_url(f"ws://h/ws?token={secret}").split("?", 1)[1]
        assert secret not in redact_url(f"ws://user:{secret}@h/ws").split("@", 1)[0]
        assert secret not in redact_text(f"failed with {secret}!", [secret])


class TestPublicApi:
    def test_every_export_resolves(self) -> None:
        """Each name in ``pytest_wsconn.__all__`` imports lazily from its module."""
        import pytest_wsconn

        for name in pytest_wsconn.__all__:
            assert getattr(pytest_wsconn, name) is not None, name
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            _ = pytest_wsconn.nope  # type: ignore[attr-defined]
