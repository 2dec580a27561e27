"""Nothing left behind: a user's test session stops every process it started and frees its ports.

Each test runs a user-style session in a subprocess (pytester) against the local stack. The inner
test records what it saw — its own pid, the pids of the toxiproxy-server and reference server it
started (found in /proc as its children) and the ports they listen on — and the outer test
checks, with deadlines, that all of them are gone once the session ends: passed, failed or
interrupted with Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import TOXIPROXY_BIN, USER_INI

from pytest_wsconn.timing import scaled, wait_until

MARKERS = ("toxiproxy-server", "pytest_wsconn.reference")
"""What the cmdline of each process the local stack starts contains."""

WAIT = scaled(10.0)
"""Upper bound for a session to start its stack, or for anything to go away."""

INNER = '''
import asyncio
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

RECORD = Path({record!r})
MARKERS = {markers!r}


def children_by_marker():
    """Pids of this process's children whose command line names a stack process."""
    found = {{marker: [] for marker in MARKERS}}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        for marker in MARKERS:
            if parent == os.getpid() and marker in cmdline:
                found[marker].append(int(entry.name))
    return found


def record(stack):
    seen = {{
        "pytest": os.getpid(),
        "children": children_by_marker(),
        "ports": {{
            "toxiproxy api": urlsplit(stack.toxiproxy.url).port,
            "proxy": stack.proxy.listen_address[1],
            "reference server": urlsplit(stack.url).port,
        }},
    }}
    partial = RECORD.with_suffix(".partial")
    partial.write_text(json.dumps(seen))
    partial.rename(RECORD)  # atomic: the outer test never reads half a file


@pytest.fixture(scope="session", autouse=True)
def note_teardown():
    """Proves the session tore down in order (what stops a compose stack) before exiting."""
    yield
    RECORD.with_name("torn-down").write_text("yes")


@pytest.mark.asyncio
async def test_user(wsconn_connect, wsconn_stack):
    conn = await wsconn_connect()
    assert await conn.echo("hello", timeout=5) == "hello"
    record(wsconn_stack)
    {ending}
'''

ENDINGS = {
    "passed": "pass",
    "failed": "assert False, 'the user test fails'",
    # Bounded: if SIGINT never comes, the session still ends (and the outer test fails).
    "interrupted": "await asyncio.wait_for(asyncio.Event().wait(), 30)",
}


def _inner_args() -> list[str]:
    # One argument with "=": as two, pytest (which reads the ini before plugins add their
    # options) takes the path for a test path and makes this repository the inner rootdir.
    return ["-p", "no:cacheprovider", f"--wsconn-toxiproxy-bin={TOXIPROXY_BIN}"]


def _write_session(pytester: pytest.Pytester, ending: str) -> Path:
    """Write the user's test module; return where its test will record what it saw."""
    record = pytester.path / "seen.json"
    pytester.makeini(USER_INI)
    pytester.makepyfile(
        test_user=INNER.format(record=str(record), markers=MARKERS, ending=ENDINGS[ending])
    )
    return record


def _running(pid: int, marker: str) -> bool:
    """Whether ``pid`` is still a live process of that kind (not gone, reaped or reused)."""
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return state != "Z" and marker.encode() in cmdline


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=scaled(1)):
            return True
    except OSError:
        return False


def _assert_nothing_left(seen: dict[str, Any]) -> None:
    """Every stack process the inner session had is gone and every port refuses connections."""
    children: dict[str, list[int]] = seen["children"]
    assert {marker: len(pids) for marker, pids in children.items()} == dict.fromkeys(MARKERS, 1), (
        f"expected one toxiproxy-server and one reference server child, found {children}"
    )
    assert not _running(seen["pytest"], "pytest"), "the inner pytest is still running"

    def leftovers() -> list[str]:
        left = [
            f"{marker} pid {pid}"
            for marker, pids in children.items()
            for pid in pids
            if _running(pid, marker)
        ]
        left += [f"{what} port {port}" for what, port in seen["ports"].items() if _listening(port)]
        return left

    wait_until(lambda: not leftovers(), WAIT, interval=0.05)
    left = leftovers()
    for marker, pids in children.items():  # leave nothing behind ourselves either
        for pid in pids:
            if _running(pid, marker):
                os.kill(pid, signal.SIGKILL)
    assert not left, f"still there {WAIT:g} s after the session ended: {', '.join(left)}"


class TestSessionEnd:
    """A session that ends by itself leaves no process and no listening port."""

    @pytest.mark.parametrize("ending", ["passed", "failed"])
    def test_nothing_left(self, pytester: pytest.Pytester, ending: str) -> None:
        """After a passing or failing session its servers are stopped and their ports closed."""
        record = _write_session(pytester, ending)
        result = pytester.runpytest_subprocess(*_inner_args(), timeout=WAIT * 3)
        result.assert_outcomes(**{ending: 1})
        result.stdout.fnmatch_lines([f"rootdir: {pytester.path}"])
        _assert_nothing_left(json.loads(record.read_text()))


class TestInterrupted:
    """Ctrl-C, or the SIGTERM a CI cancel and `timeout` send, mid-test still stops the stack."""

    @pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
    def test_signal_mid_test(self, pytester: pytest.Pytester, signum: signal.Signals) -> None:
        """A signal while a test waits on an open connection: exit code 2, torn down in order."""
        record = _write_session(pytester, "interrupted")
        log = pytester.path / "inner.log"
        with log.open("wb") as output:
            inner = subprocess.Popen(
                [sys.executable, "-m", "pytest", *_inner_args(), "test_user.py"],
                cwd=pytester.path,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            started = wait_until(record.exists, WAIT, interval=0.05)
            assert started, f"the inner test never started; its output:\n{log.read_text()}"
            inner.send_signal(signum)  # to the inner pytest only, not its process group
            # Its whole teardown (connection, proxy, toxiproxy-server, reference server) took
            # over 10 s once with the full suite on two slow cores: a hang still fails here.
            code = inner.wait(timeout=WAIT * 3)
        finally:
            if inner.poll() is None:
                inner.kill()
                inner.wait()
        text = log.read_text()
        assert code == pytest.ExitCode.INTERRUPTED, f"exit code {code}; output:\n{text}"
        assert "KeyboardInterrupt" in text, text
        assert f"rootdir: {pytester.path}" in text, text
        assert (pytester.path / "torn-down").exists(), f"no teardown ran; output:\n{text}"
        _assert_nothing_left(json.loads(record.read_text()))


class TestFaultsUndone:
    """Faults never outlive the test that made them, even when it fails."""

    def test_failing_tests_faults_are_undone(self, pytester: pytest.Pytester) -> None:
        """Failed tests that left a marker fault, a toxic or the proxy down leave the next clean."""
        pytester.makeini(USER_INI)
        pytester.makepyfile(
            test_user="""
            import pytest

            from pytest_wsconn import make_fault

            pytestmark = pytest.mark.asyncio


            @pytest.mark.wsconn_fault("latency", ms=100)
            async def test_marker_fault_then_fail(wsconn_proxy):
                assert len(wsconn_proxy.toxics()) == 1
                assert False, "fails with the fault on"


            async def test_mess_then_fail(wsconn_proxy):
                wsconn_proxy.add_toxic(make_fault("timeout", ms=0))
                wsconn_proxy.disable()
                assert False, "fails with a toxic added and the proxy down"


            async def test_clean(wsconn_connect, wsconn_proxy):
                assert wsconn_proxy.toxics() == []
                assert wsconn_proxy.client.proxy(wsconn_proxy.name).enabled
                conn = await wsconn_connect()
                assert await conn.echo("clean", timeout=5) == "clean"
            """
        )
        result = pytester.runpytest_subprocess(*_inner_args(), "-v", timeout=WAIT * 3)
        result.assert_outcomes(passed=1, failed=2)
        result.stdout.fnmatch_lines([f"rootdir: {pytester.path}", "*::test_clean PASSED*"])
