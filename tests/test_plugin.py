"""The plugin as a user meets it: a temp project run by pytester, outcomes and output asserted."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from conftest import Service

from pytest_wsconn.stack.toxiproxy_server import ToxiproxyServer


def run_in_process(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Fast runs for usage errors; the -o spares the inner run pytest-asyncio's scope warning."""
    return pytester.runpytest("-o", "asyncio_default_fixture_loop_scope=function", *args)


USER_TESTS = """
import pytest
from pytest_wsconn import assert_closes_with, assert_connects, assert_rejected

pytestmark = pytest.mark.asyncio

async def test_echo(wsconn_connect):
    conn = await assert_connects(wsconn_connect)
    assert await conn.echo("hi", timeout=5) == "hi"

async def test_server_closes_with_policy_violation(wsconn_connect):
    conn = await assert_connects(wsconn_connect)
    await conn.send('{"control": "close", "code": 1008, "reason": "go away"}')
    await assert_closes_with(conn, 1008, "go away")

async def test_expired_token_is_rejected(wsconn_connect, wsconn_token):
    await assert_rejected(wsconn_connect, token=wsconn_token("expired"), status=401)

@pytest.mark.wsconn_fault("latency", ms=150)
async def test_marker_applies_latency(wsconn_connect, wsconn_proxy):
    assert [t["type"] for t in wsconn_proxy.toxics()] == ["latency"]

async def test_faults_are_gone_after_a_test(wsconn_proxy):
    assert wsconn_proxy.toxics() == [] and wsconn_proxy.enabled
"""


@pytest.mark.usefixtures("user_env")
class TestUserProject:
    def test_fixtures_work_in_a_user_project(self, pytester: pytest.Pytester) -> None:
        """A user's tests using the fixtures, assertions and marker all pass."""
        pytester.makepyfile(test_user=USER_TESTS)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=5)
        result.stdout.fnmatch_lines(
            [
                "wsconn: stack=local*",
                "*wsconn summary*",
                "tested the reference server at ws://127.0.0.1:*/ws (stack=local) "
                "through Toxiproxy 2.12.0",
                "*connections opened*",
            ]
        )

    def test_dash_p_wsconn_with_autoload_off(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With autoload off, ``pytest -p wsconn`` alone runs async tests (it loads asyncio's)."""
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        pytester.makepyfile(test_user=USER_TESTS)
        result = pytester.runpytest_subprocess("-p", "wsconn", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=5)

    def test_dash_p_wsconn_with_autoload_on(self, pytester: pytest.Pytester) -> None:
        """``pytest -p wsconn`` is harmless when the entry point already loaded the plugin."""
        pytester.makepyfile(test_user=USER_TESTS)
        result = pytester.runpytest_subprocess("-p", "wsconn", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=5)

    def test_a_running_toxiproxy(
        self, pytester: pytest.Pytester, toxiproxy_server: ToxiproxyServer
    ) -> None:
        """``--wsconn-toxiproxy URL`` uses that Toxiproxy and removes its proxy afterwards."""
        pytester.makepyfile(test_user=USER_TESTS)
        result = pytester.runpytest_subprocess(f"--wsconn-toxiproxy={toxiproxy_server.url}")
        result.assert_outcomes(passed=5)
        result.stdout.fnmatch_lines(
            [f"wsconn: stack=local*Toxiproxy 2.12.0 at {toxiproxy_server.url}"]
        )
        assert not [
            name for name in toxiproxy_server.client.proxies() if name.startswith("wsconn_")
        ]

    def test_a_hook_supplies_the_token(
        self, pytester: pytest.Pytester, reference_service: Service
    ) -> None:
        """``pytest_wsconn_token`` in a user's conftest.py supplies tokens for their service."""
        pytester.makeconftest(
            f"""
            def pytest_wsconn_token(kind, config):
                return {reference_service.token!r} if kind == "valid" else None
            """
        )
        pytester.makepyfile(
            """
            import pytest
            from pytest_wsconn import assert_connects

            @pytest.mark.asyncio
            async def test_hook_token(wsconn_connect, wsconn_token):
                assert wsconn_token("valid").reveal().count(".") == 1
                assert repr(wsconn_token("valid")) == "Secret('***')"
                await assert_connects(wsconn_connect)
            """
        )
        result = pytester.runpytest_subprocess(
            "--wsconn-stack=external", f"--wsconn-url={reference_service.url}"
        )
        result.assert_outcomes(passed=1)


@pytest.mark.usefixtures("user_env")
class TestFailureReports:
    def test_wrong_close_code_fails_exactly_that_test(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """Against a server answering 1000 with 1001 only the close test fails, naming both."""
        service = broken_service("wrong-close-code")
        pytester.makepyfile(
            """
            import pytest
            from pytest_wsconn import assert_closes_with, assert_connects

            pytestmark = pytest.mark.asyncio

            async def test_echo(wsconn_connect):
                conn = await assert_connects(wsconn_connect)
                assert await conn.echo("hi", timeout=5) == "hi"

            async def test_normal_close(wsconn_connect):
                conn = await assert_connects(wsconn_connect)
                await conn.close(1000)
                await assert_closes_with(conn, 1000)
            """
        )
        result = pytester.runpytest_subprocess(
            "--wsconn-stack=external",
            f"--wsconn-url={service.url}",
            f"--wsconn-token={service.token}",
        )
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*AssertionError: expected close 1000 (OK); the connection was closed by us "
                "with 1000; the server answered 1001 (going away) 'bye'*",
                "*- wsconn connection timeline -*",
                "#* ws://127.0.0.1:*/ws?token=[*][*][*]",
                "*diagnosis: going_away: *",
                "FAILED *test_normal_close*",
            ],
            consecutive=False,
        )
        assert service.token not in result.stdout.str()

    def test_a_failed_connection_says_why(self, pytester: pytest.Pytester) -> None:
        """A connection that cannot open fails with the classified cause, not a bare traceback."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.asyncio
            async def test_down(wsconn_connect, wsconn_proxy):
                with wsconn_proxy.down():
                    await wsconn_connect()
            """
        )
        result = pytester.runpytest_subprocess()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*ConnectFailed: the connection to ws://127.0.0.1:*/ws?token=[*][*][*] failed to "
                "open: refused * network: Connection refused: nothing accepts connections*",
                "*- wsconn connection timeline -*",
            ],
            consecutive=False,
        )

    def test_an_unreachable_service_is_diagnosed_once(
        self, pytester: pytest.Pytester, closed_port_url: str
    ) -> None:
        """The first failure carries the diagnosis (TCP refused); later ones point to it."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.asyncio
            @pytest.mark.parametrize("n", range(3))
            async def test_down(wsconn_connect, n):
                await wsconn_connect()
            """
        )
        result = pytester.runpytest_subprocess(
            "--wsconn-stack=external", f"--wsconn-url={closed_port_url}"
        )
        result.assert_outcomes(failed=3)
        result.stdout.fnmatch_lines(
            [
                "*- wsconn diagnostics -*",
                "no connection had opened in this session:",
                "wsconn diagnose ws://127.0.0.1:*/ws",
                "tcp * fail * 127.0.0.1:*: connection refused",
                "handshake * skipped * skipped: TCP connect failed",
                "tcp: network: Connection refused: nothing accepts connections at that address.",
                "*likely cause: the server is not running",
                "*_ test_down?1? _*",
                "*see the wsconn diagnostics in the report of test_*.py::test_down?0?",
            ],
            consecutive=False,
        )
        assert result.stdout.str().count("wsconn diagnose ws://") == 1
        assert "Traceback" not in result.stdout.str()


class TestUsageErrors:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--wsconn-stack=docker"], "*invalid stack 'docker'; valid: local, external*"),
            (["--wsconn-auth=bogus"], "*invalid auth mode 'bogus'; valid: query:<param>, header*"),
            (["--wsconn-url=http://x"], "*invalid WebSocket URL 'http://x'*"),
            (["--wsconn-timeout=-1"], "*invalid timeout '-1'*"),
            (["--wsconn-stack=external"], "*--wsconn-stack=external needs --wsconn-url*"),
        ],
    )
    def test_bad_option_value(
        self, pytester: pytest.Pytester, args: list[str], message: str
    ) -> None:
        """A bad option value stops the run with a usage error naming the valid values."""
        pytester.makepyfile("def test_nothing(): pass")
        result = run_in_process(pytester, *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: pytest-wsconn: {message.lstrip('*')}"])

    @pytest.mark.parametrize(
        ("args", "env", "message"),
        [
            (
                ["--wsconn-log-file=a-file/x.jsonl"],
                {},
                "--wsconn-log-file a-file/x.jsonl: a-file is a file, not a folder",
            ),
            (
                ["--wsconn-report=/proc/nope/x.json"],
                {},
                "--wsconn-report /proc/nope/x.json: cannot create its folder: *",
            ),
            ([], {"WSCONN_TIMEOUT_FACTOR": "abc"}, "WSCONN_TIMEOUT_FACTOR='abc' is not a *"),
            ([], {"WSCONN_TIMEOUT_FACTOR": "0"}, "WSCONN_TIMEOUT_FACTOR='0' is not a positive*"),
        ],
    )
    def test_bad_input_is_one_usage_line(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        args: list[str],
        env: dict[str, str],
        message: str,
    ) -> None:
        """An output path or env value the session cannot use stops it at once, in one line."""
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        (pytester.path / "a-file").write_text("")
        pytester.makepyfile("def test_x(wsconn_stack): pass")
        result = run_in_process(pytester, *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: pytest-wsconn: {message}"])
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output
        assert "INTERNALERROR" not in output

    def test_bad_ini_value(self, pytester: pytest.Pytester) -> None:
        """Ini keys are validated like their options, and the command line wins over them."""
        pytester.makeini("[pytest]\nwsconn_stack = kubernetes\n")
        pytester.makepyfile("def test_nothing(): pass")
        result = run_in_process(
            pytester,
        )
        result.stderr.fnmatch_lines(["ERROR: pytest-wsconn: invalid stack 'kubernetes'*"])
        run_in_process(pytester, "--wsconn-stack=local").assert_outcomes(passed=1)

    def test_unknown_fault_in_a_marker(self, pytester: pytest.Pytester) -> None:
        """A marker naming an unknown fault is a usage error listing the valid kinds."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.wsconn_fault("earthquake")
            def test_x(wsconn_proxy):
                pass
            """
        )
        result = run_in_process(
            pytester,
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                "*test_x: @wsconn_fault unknown fault kind 'earthquake'",
                "*valid kinds: latency, bandwidth, slow_close, timeout, reset_peer, slicer*",
            ]
        )

    def test_marker_without_the_proxy_fixture(self, pytester: pytest.Pytester) -> None:
        """A fault marker on a test that never touches the proxy is a usage error."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.wsconn_fault("latency", ms=10)
            def test_x():
                pass
            """
        )
        result = run_in_process(
            pytester,
        )
        result.stderr.fnmatch_lines(["*needs the wsconn_proxy or wsconn_connect fixture*"])

    def test_missing_toxiproxy_binary(self, pytester: pytest.Pytester) -> None:
        """A toxiproxy-server path that does not exist fails the tests with the install hint."""
        pytester.makepyfile("def test_x(wsconn_stack): pass")
        result = run_in_process(pytester, "--wsconn-toxiproxy-bin=/nonexistent/toxiproxy-server")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*pytest-wsconn: the local stack did not start: --wsconn-toxiproxy-bin is "
                "'/nonexistent/toxiproxy-server', which is not a file*",
                "  hint: *toxiproxy*",
            ],
            consecutive=False,
        )
        assert "Traceback" not in result.stdout.str()


class TestWhatWasTested:
    """A green run names the service it proved; a URL is never silently ignored."""

    def test_a_url_alone_means_the_external_stack(
        self, pytester: pytest.Pytester, user_env: None, closed_port_url: str
    ) -> None:
        """``--wsconn-url`` without ``--wsconn-stack`` tests that URL, not the reference server."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.asyncio
            async def test_echo(wsconn_connect):
                await wsconn_connect()
            """
        )
        result = pytester.runpytest_subprocess("-q", f"--wsconn-url={closed_port_url}")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [f"tested the service at {closed_port_url} (stack=external) through Toxiproxy 2.12.0"]
        )

    @pytest.mark.parametrize(
        ("ini", "args", "message"),
        [
            (
                "",
                ["--wsconn-stack=local", "--wsconn-url=ws://127.0.0.1:9/ws"],
                "--wsconn-url names a service but --wsconn-stack=local tests the reference "
                "server, which would leave that URL untested",
            ),
            (
                "wsconn_stack = compose\n",
                ["--wsconn-url=ws://127.0.0.1:9/ws"],
                "--wsconn-url names a service but ini wsconn_stack=compose tests a compose "
                "project, which would leave that URL untested",
            ),
        ],
    )
    def test_a_url_beside_another_stack_is_a_usage_error(
        self, pytester: pytest.Pytester, ini: str, args: list[str], message: str
    ) -> None:
        """A URL with ``local`` or ``compose`` named too stops the run, naming both settings."""
        pytester.makeini(f"[pytest]\n{ini}")
        pytester.makepyfile("def test_nothing(): pass")
        result = run_in_process(pytester, *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: pytest-wsconn: {message}", "  hint: drop *"])

    def test_the_json_report_names_the_target(
        self, pytester: pytest.Pytester, user_env: None, reference_service: Service
    ) -> None:
        """The JSON report records the URL tested (token redacted) and Toxiproxy's version."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.asyncio
            async def test_open(wsconn_connect):
                await wsconn_connect()
            """
        )
        url = f"{reference_service.url}?token={reference_service.token}"
        result = pytester.runpytest_subprocess(f"--wsconn-url={url}", "--wsconn-report=r.json")
        result.assert_outcomes(passed=1)
        report = json.loads((pytester.path / "r.json").read_text())
        assert (report["stack"], report["toxiproxy"]) == ("external", "2.12.0")
        assert report["target"] == f"{reference_service.url}?token=***"


class TestOneErrorPerCause:
    def test_a_stack_that_cannot_start_is_explained_once(self, pytester: pytest.Pytester) -> None:
        """The first test shows the cause and hint; the others say so in one line each."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.parametrize("n", range(4))
            def test_x(wsconn_stack, n):
                pass
            """
        )
        result = run_in_process(pytester, "--wsconn-toxiproxy-bin=/nonexistent/toxiproxy-server")
        result.assert_outcomes(errors=4)
        # The short summary repeats each error's first line (in full when CI is set): count above.
        output = result.stdout.str().split("short test summary info")[0]
        assert output.count("which is not a file") == 1, output
        assert output.count("hint: run `wsconn install toxiproxy`") == 1, output
        assert "During handling of the above exception" not in output
        assert output.count("the cause is shown once, in the error of test_") == 3
        result.stdout.fnmatch_lines(["nothing was tested: the local stack did not start"])


@pytest.mark.usefixtures("user_env")
class TestDiagnosisPlacement:
    def test_the_diagnosis_lands_in_the_first_failing_test(
        self, pytester: pytest.Pytester, reference_service: Service
    ) -> None:
        """A passing test that expected a refusal does not swallow the session's diagnosis."""
        pytester.makepyfile(
            """
            import pytest
            from pytest_wsconn import ConnectFailed

            pytestmark = pytest.mark.asyncio

            async def test_a_refusal_is_expected(wsconn_connect, wsconn_proxy):
                with wsconn_proxy.down(), pytest.raises(ConnectFailed):
                    await wsconn_connect()

            async def test_echo(wsconn_connect):
                await wsconn_connect()

            async def test_echo_again(wsconn_connect):
                await wsconn_connect()
            """
        )
        result = pytester.runpytest_subprocess(
            f"--wsconn-url={reference_service.url}", "--wsconn-token=not-the-token"
        )
        result.assert_outcomes(passed=1, failed=2)
        output = result.stdout.str()
        assert (
            "report of test_the_diagnosis_lands_in_the_first_failing_test.py::test_a" not in output
        )
        result.stdout.fnmatch_lines(
            [
                "*_ test_echo _*",
                "*- wsconn diagnostics -*",
                "handshake * fail * HTTP 401 *",
                "*_ test_echo_again _*",
                "see the wsconn diagnostics in the report of *::test_echo",
            ],
            consecutive=False,
        )

    def test_no_token_service_skips_the_auth_checks(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """With ``--wsconn-auth=none`` the battery's token checks skip, saying why."""
        service = broken_service("accept-anything")
        result = pytester.runpytest_subprocess(
            "--pyargs",
            "pytest_wsconn.checks",
            "-k",
            "token",
            "-rs",
            f"--wsconn-url={service.url}",
            "--wsconn-auth=none",
        )
        result.assert_outcomes(skipped=4)
        result.stdout.fnmatch_lines(
            ["SKIPPED [[]4[]] *: this service takes no token (--wsconn-auth=none)"]
        )


@pytest.mark.usefixtures("user_env")
class TestShortFailures:
    def test_a_close_failure_shows_no_library_internals(self, pytester: pytest.Pytester) -> None:
        """A 1003 close mid-test reads as the error line and the timeline, not websockets' code."""
        pytester.makepyfile(
            """
            import pytest
            from pytest_wsconn import assert_connects

            @pytest.mark.asyncio
            async def test_close(wsconn_connect):
                conn = await assert_connects(wsconn_connect)
                await conn.send('{"control": "close", "code": 1003, "reason": "nope"}')
                await conn.recv()
            """
        )
        result = pytester.runpytest_subprocess()
        result.assert_outcomes(failed=1)
        output = result.stdout.str()
        assert "websockets/asyncio" not in output
        assert "async def recv" not in output
        result.stdout.fnmatch_lines(
            [
                "E *ConnectionClosedError: received 1003 (unsupported data) nope*",
                "*- wsconn connection timeline -*",
                "*diagnosis: protocol: *",
            ],
            consecutive=False,
        )

    def test_awaiting_the_synchronous_client_factory_is_no_connection_failure(
        self, pytester: pytest.Pytester
    ) -> None:
        """``await wsconn_reconnecting_client()`` fails as the TypeError it is, nothing more."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.asyncio
            async def test_misuse(wsconn_reconnecting_client):
                await wsconn_reconnecting_client()
            """
        )
        result = pytester.runpytest_subprocess()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["E *TypeError: object ReconnectingClient can't be used in 'await' expression"]
        )
        assert "The connection failed for an unexpected reason" not in result.stdout.str()
