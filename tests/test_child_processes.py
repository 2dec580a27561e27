"""Child processes watched: a toxiproxy-server or reference server that dies mid-session is named.

The pure message (``exit_status``, ``describe_exit``, ``log_tail``) is tested directly;
``ChildProcess`` with real short-lived processes; and the plugin with a user's session
(pytester, in a subprocess) whose test ends a child of the local stack: the next failure says
which child, its pid, how it ended and its last log lines, and teardown adds one line at most.
"""

from __future__ import annotations

import dataclasses
import json
import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import TOXIPROXY_BIN, USER_INI

from pytest_wsconn.redact import REDACTED
from pytest_wsconn.stack.processes import (
    ChildExit,
    ChildProcess,
    describe_exit,
    exit_headline,
    exit_status,
    log_tail,
)
from pytest_wsconn.timing import scaled, wait_until

WAIT = scaled(10.0)
"""Upper bound for a session to start its stack, or for a child to end."""


class TestExitStatus:
    """exit_status: how a child ended, as Popen's return code says it."""

    @pytest.mark.parametrize(
        ("returncode", "expected"),
        [
            (-9, "was killed by SIGKILL"),
            (-15, "was killed by SIGTERM"),
            (-11, "was killed by SIGSEGV"),
            (0, "exited with code 0"),
            (3, "exited with code 3"),
            (-200, "was killed by signal 200"),
        ],
    )
    def test_code_or_signal_name(self, returncode: int, expected: str) -> None:
        """A negative code names the signal; any other is an exit code."""
        assert exit_status(returncode) == expected

    @given(st.integers())
    def test_total(self, returncode: int) -> None:
        """Every return code gets one line."""
        text = exit_status(returncode)
        assert text.startswith(("was killed by ", "exited with code ")), text
        assert "\n" not in text


class TestDescribeExit:
    """describe_exit: which child, its pid, how it ended and its last log lines."""

    def test_with_log_lines(self) -> None:
        """The headline, then each log line indented under it."""
        ended = ChildExit("toxiproxy-server", 4242, -9, ("first line", "last line"))
        assert (
            exit_headline(ended) == "toxiproxy-server (pid 4242) was killed by SIGKILL mid-session"
        )
        assert describe_exit(ended) == (
            "toxiproxy-server (pid 4242) was killed by SIGKILL mid-session: every test after "
            "this that needs it fails. Its last log lines:\n    first line\n    last line"
        )

    def test_without_log_lines(self) -> None:
        """A child that logged nothing is said to have logged nothing."""
        ended = ChildExit("the reference server", 7, 3, ())
        assert describe_exit(ended) == (
            "the reference server (pid 7) exited with code 3 mid-session: every test after "
            "this that needs it fails. It logged nothing."
        )


class TestLogTail:
    """log_tail: a bounded, redacted tail of a child's log."""

    def test_last_lines_without_blanks(self) -> None:
        """Only the last lines count, blank ones left out."""
        text = "".join(f"line {n}\n\n" for n in range(30))
        assert log_tail(text, lines=3) == ("line 27", "line 28", "line 29")

    def test_secrets_redacted(self) -> None:
        """Token query values, Bearer credentials and the secrets named are replaced."""
        text = (
            "GET /ws?token=abc.def.ghi HTTP/1.1\n"
            "Authorization: Bearer s3cr3t-bearer\n"
            "config uses 0123456789abcdef as its secret\n"
        )
        tail = log_tail(text, ["0123456789abcdef"])
        assert tail == (
            f"GET /ws?token={REDACTED} HTTP/1.1",
            f"Authorization: Bearer {REDACTED}",
            f"config uses {REDACTED} as its secret",
        )

    def test_long_lines_cut(self) -> None:
        """A huge line does not flood the report."""
        (line,) = log_tail("x" * 100_000)
        assert len(line) <= 300


def _shell(script: str) -> ChildProcess:
    return ChildProcess("sh", ["/bin/sh", "-c", script], env={}, secrets=["hunter2-secret"])


class TestChildProcess:
    """ChildProcess: a real child watched for ending before it is stopped."""

    def test_nonzero_exit(self) -> None:
        """A child that exits by itself reports its code and its last lines, secrets redacted."""
        child = _shell("echo starting; echo 'key is hunter2-secret' >&2; exit 3")
        try:
            assert wait_until(lambda: child.exit() is not None, WAIT), "it never exited"
            assert child.exit() == ChildExit("sh", child.pid, 3, ("starting", "key is ***"))
        finally:
            child.stop(WAIT)

    def test_killed(self) -> None:
        """A child killed by a signal reports the signal, and still does after stop()."""
        child = _shell("echo up; exec sleep 60")
        assert wait_until(lambda: "up" in child.output(), WAIT), child.output()
        child.process.send_signal(signal.SIGKILL)
        assert wait_until(lambda: child.process.poll() is not None, WAIT), "it did not die"
        child.stop(WAIT)
        assert child.exit() == ChildExit("sh", child.pid, -9, ("up",))

    def test_stopped_on_purpose(self) -> None:
        """A child we stop is not an unexpected end; its output stays readable."""
        child = _shell("echo up; exec sleep 60")
        assert wait_until(lambda: "up" in child.output(), WAIT), child.output()
        assert child.exit() is None
        child.stop(WAIT)
        assert child.exit() is None
        assert child.output() == "up\n"


# A user's session ---------------------------------------------------------------------------

INNER = '''
import json
import os
from pathlib import Path

import pytest

from pytest_wsconn.timing import scaled, wait_until

pytestmark = pytest.mark.asyncio
RECORD = Path({record!r})


def ended(pid):
    """The process has ended (a zombie until the stack reaps it)."""
    try:
        stat = Path(f"/proc/{{pid}}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def test_end_a_child(wsconn_stack, wsconn_connect, wsconn_token):
    conn = await wsconn_connect()
    assert await conn.echo("before", timeout=5) == "before"
    (child,) = [c for c in wsconn_stack.children if c.name == {name!r}]
    secrets = [wsconn_stack.secret.decode(), wsconn_token.get("valid").reveal()]
    RECORD.write_text(json.dumps({{"pid": child.pid, "secrets": secrets}}))
    os.kill(child.pid, {signum})
    assert wait_until(lambda: ended(child.pid), scaled(10)), "the child did not end"


async def test_after(wsconn_connect):
    conn = await wsconn_connect()
    assert await conn.echo("after", timeout=5) == "after"


@pytest.mark.wsconn_fault("latency", ms=10)
async def test_later_with_a_fault(wsconn_connect):
    conn = await wsconn_connect()
    assert await conn.echo("later", timeout=5) == "later"
'''

CRASHING_TOXIPROXY = """#!/bin/sh
# toxiproxy-server that exits with code 3 on SIGUSR1, as a server that crashes would.
"{real}" "$@" &
server=$!
trap 'kill -TERM $server; wait $server; echo "crashing on purpose with code 3"; exit 3' USR1
trap 'kill -TERM $server; wait $server; exit 0' TERM
wait $server
"""


@dataclasses.dataclass(frozen=True)
class Ending:
    """How the inner test ends a child, and what the report must then say."""

    name: str
    signum: signal.Signals
    status: str
    log_line: str  # a line of its log tail, as fnmatch_lines matches it

    @property
    def outcomes(self) -> dict[str, int]:
        """Without toxiproxy-server the later tests' faults cannot be set up nor undone."""
        if self.name == "toxiproxy-server":
            return {"passed": 1, "failed": 1, "errors": 3}
        return {"passed": 1, "failed": 2}


KILLED = "was killed by SIGKILL"
ENDINGS = {
    "toxiproxy-server killed": Ending(
        "toxiproxy-server", signal.SIGKILL, KILLED, '    {"level":"info",*"Started proxy"}'
    ),
    "reference server killed": Ending(
        "the reference server", signal.SIGKILL, KILLED, "    * INFO websockets.server *"
    ),
    "toxiproxy-server exits 3": Ending(
        "toxiproxy-server", signal.SIGUSR1, "exited with code 3", "    crashing on purpose *"
    ),
}


@pytest.mark.parametrize("ending", ENDINGS.values(), ids=ENDINGS.keys())
def test_a_child_ending_is_named(pytester: pytest.Pytester, ending: Ending) -> None:
    """The next failures name the child, its pid, how it ended and its log; no teardown noise."""
    name = ending.name
    binary = TOXIPROXY_BIN
    if ending.signum is signal.SIGUSR1:
        binary = pytester.path / "crashing-toxiproxy-server"
        binary.write_text(CRASHING_TOXIPROXY.format(real=TOXIPROXY_BIN))
        binary.chmod(0o755)
    record = pytester.path / "seen.json"
    pytester.makeini(USER_INI)
    pytester.makepyfile(
        test_user=INNER.format(record=str(record), name=name, signum=int(ending.signum))
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--wsconn-toxiproxy-bin={binary}", timeout=WAIT * 3
    )
    seen = json.loads(record.read_text())
    text = result.stdout.str()
    result.assert_outcomes(**ending.outcomes)
    headline = f"{name} (pid {seen['pid']}) {ending.status} mid-session"
    result.stdout.fnmatch_lines(
        [
            "*- wsconn stack processes -*",
            f"{headline}: every test after this that needs it fails. Its last log lines:",
            ending.log_line,
        ]
    )
    if name == "toxiproxy-server":  # the proxy's teardown cannot reset it: one line each
        above_summary = text.split("short test summary info")[0]  # CI=true prints it in full
        assert above_summary.count(f"teardown could not reach the stack: {headline}\n") == 2, text
        # The test whose fault cannot be set up errors with the cause, not a traceback.
        result.stdout.fnmatch_lines(
            [
                "*ERROR at setup of test_later_with_a_fault*",
                f"pytest-wsconn: {headline}: every test after this that needs it fails. *",
            ]
        )
    for noise in ("ExceptionGroup", "During handling", "Traceback", "toxiproxy.py:"):
        assert noise not in text, text
    for secret in seen["secrets"]:
        assert secret not in text, text


def test_no_message_while_children_run(pytester: pytest.Pytester) -> None:
    """A failing test whose stack's processes are all running gets no such section."""
    pytester.makeini(USER_INI)
    pytester.makepyfile(
        test_user="""
        import pytest

        @pytest.mark.asyncio
        async def test_fails(wsconn_connect):
            conn = await wsconn_connect()
            assert await conn.echo("hi", timeout=5) == "bye"
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--wsconn-toxiproxy-bin={TOXIPROXY_BIN}", timeout=WAIT * 3
    )
    result.assert_outcomes(failed=1)
    assert "wsconn stack processes" not in result.stdout.str()
    assert "teardown could not reach" not in result.stdout.str()
