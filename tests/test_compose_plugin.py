"""``--wsconn-stack=compose`` as a user meets it: pytester runs against a real Docker engine.

Needs an engine, a Compose CLI and the offline images (`scripts/docker-up`); without them these
tests skip, and with CI=true they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from support import REPO_ROOT
from support.docker import BUNDLED, USER_COMPOSE, inner_pytest, labelled

from pytest_wsconn.stack import compose
from pytest_wsconn.timing import scaled, wait_until

pytestmark = pytest.mark.usefixtures("compose_images")

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""


def _project(name: str) -> str:
    return f"wsconn-plugin-{name}-{os.getpid()}"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini(INI)
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--wsconn-stack=compose",
        f"--wsconn-compose-file={BUNDLED}",
        *args,
    )


@pytest.fixture
def out_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder the inner run writes what it saw to (WSCONN_TEST_OUT)."""
    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setenv("WSCONN_TEST_OUT", str(folder))
    return folder


class TestBundledStack:
    """The bundled docker-compose.test.yml through the plugin."""

    def test_the_battery_passes_through_nginx(self, pytester: pytest.Pytester) -> None:
        """Every built-in check passes against the reference server behind nginx and Toxiproxy."""
        project = _project("battery")
        result = _run(
            pytester,
            "-p",
            "wsconn",
            "--pyargs",
            "pytest_wsconn.checks",
            f"--wsconn-compose-project={project}",
        )
        outcomes = result.parseoutcomes()
        assert outcomes.get("failed", 0) == outcomes.get("errors", 0) == 0, result.stdout.str()
        assert outcomes["passed"] >= 12
        result.stdout.fnmatch_lines(
            ["wsconn: stack=compose, target=nginx:80/ws in docker-compose.test.yml, *compose 2*"]
        )
        assert labelled(project) == []

    def test_a_failure_gets_the_compose_logs_of_its_window(self, pytester: pytest.Pytester) -> None:
        """A failing test's report has each service's log lines of its own run, tokens redacted."""
        project = _project("logs")
        pytester.makepyfile(
            test_user="""
            import pytest
            from pytest_wsconn import ConnectFailed, classify

            pytestmark = pytest.mark.asyncio

            async def test_fails_after_traffic(wsconn_connect):
                conn = await wsconn_connect()
                assert await conn.echo("before the failure", timeout=5) == "before the failure"
                await conn.close()
                assert False, "the service misbehaved"

            @pytest.mark.wsconn_container_fault("pause", service="backend")
            async def test_marker_pauses_the_backend(wsconn_connect):
                with pytest.raises(ConnectFailed) as failed:
                    await wsconn_connect(open_timeout=1)
                assert classify(failed.value.attempt).category == "timeout"

            async def test_the_backend_is_back_afterwards(wsconn_connect):
                conn = await wsconn_connect()
                assert await conn.echo("back", timeout=5) == "back"
            """
        )
        result = _run(pytester, f"--wsconn-compose-project={project}")
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*AssertionError: the service misbehaved*",
                "*- wsconn compose logs -*",
                "--- backend ---",
                "*connection open*",
                "--- nginx ---",
                '*"GET /ws HTTP/1.1" 101 *',  # the test's own connection
                "--- toxiproxy ---",
            ]
        )
        assert "eyJ" not in result.stdout.str(), "a token reached the report"
        assert labelled(project) == []

    def test_the_readme_container_fault_examples_pass(self, pytester: pytest.Pytester) -> None:
        """Every container fault the README shows, as a `with` block and as a marker, works."""
        project = _project("readme")
        example = REPO_ROOT / "tests" / "examples" / "test_readme_container_faults.py"
        pytester.makepyfile(test_readme_container_faults=example.read_text())
        result = _run(pytester, f"--wsconn-compose-project={project}")
        result.assert_outcomes(passed=5)
        assert labelled(project) == []

    def test_a_bad_container_fault_marker_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """Checked at collection, before any stack is started."""
        pytester.makepyfile(
            test_user="""
            import pytest

            @pytest.mark.wsconn_container_fault("explode", service="backend")
            def test_x():
                pass
            """
        )
        pytester.makeini(INI)
        result = pytester.runpytest("--wsconn-stack=compose")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                "*test_x: @wsconn_container_fault unknown container fault 'explode'; "
                "valid: restart, kill, pause, partition"
            ]
        )

    def test_chaos_draws_a_container_fault_when_asked(self, pytester: pytest.Pytester) -> None:
        """With --wsconn-chaos-containers=backend a test that survives only 'pause' gets the
        backend paused mid-test: a test that cannot wait fails, its report names the paused
        service, when, and the replay with the option; the backend is back for the next test."""
        project = _project("chaos")
        pytester.makepyfile(
            test_user="""
            import time
            import pytest

            pytestmark = pytest.mark.asyncio

            @pytest.mark.wsconn_chaos(survives=["pause"])
            async def test_impatient(wsconn_connect):
                conn = await wsconn_connect()
                deadline = time.monotonic() + 2.5  # past any drawn moment and length
                while time.monotonic() < deadline:
                    assert await conn.echo("x", timeout=0.25) == "x"

            @pytest.mark.wsconn_chaos(off=True)
            async def test_the_backend_is_back_afterwards(wsconn_connect):
                conn = await wsconn_connect()
                assert await conn.echo("back", timeout=5) == "back"
            """
        )
        result = _run(
            pytester,
            "--wsconn-chaos=7",
            "--wsconn-chaos-containers=backend",
            f"--wsconn-compose-project={project}",
        )
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*- wsconn chaos -*",
                "fault: pause of backend at +* s for * s",
                "applied at +* s, removed at +* s*",
                "replay: pytest test_user.py::test_impatient --wsconn-chaos=7 "
                "--wsconn-chaos-containers=backend",
            ]
        )
        assert labelled(project) == []

    def test_keep_stack_leaves_it_up_and_the_next_run_reuses_it(
        self, pytester: pytest.Pytester, out_dir: Path
    ) -> None:
        """--wsconn-keep-stack: the stack survives the run, and the next run uses the same one."""
        project = _project("keep")
        pytester.makepyfile(
            test_user="""
            import os
            from pathlib import Path

            def test_note_the_backend(wsconn_stack):
                out = Path(os.environ["WSCONN_TEST_OUT"])
                backend = wsconn_stack.project.container("backend").id
                (out / f"run{len(list(out.iterdir()))}").write_text(backend)
            """
        )
        try:
            for _ in range(2):
                result = _run(
                    pytester, "--wsconn-keep-stack", f"--wsconn-compose-project={project}"
                )
                result.assert_outcomes(passed=1)
                assert labelled(project), "a kept stack was taken down"
            first, second = ((out_dir / name).read_text() for name in ("run0", "run1"))
            assert first == second, "the second run made a new backend instead of reusing it"
        finally:
            with contextlib.closing(compose.docker_client()) as client:
                compose.remove_project(client, project)


class TestUserProject:
    """A user's own compose file, unchanged: the plugin injects Toxiproxy."""

    def test_latency_is_observable(self, pytester: pytest.Pytester) -> None:
        """A latency fault on the injected proxy shows in the round trip of the user's service."""
        project = _project("user")
        user_file = pytester.makefile(".yml", compose=USER_COMPOSE)
        written = user_file.read_text()
        pytester.makepyfile(
            test_user="""
            import time
            import pytest

            pytestmark = pytest.mark.asyncio

            async def test_latency(wsconn_connect, wsconn_proxy):
                conn = await wsconn_connect()
                started = time.monotonic()
                await conn.echo("fast", timeout=5)
                fast = time.monotonic() - started
                # 600 ms: well above what a busy machine adds to a loopback round trip.
                with wsconn_proxy.latency(600):
                    started = time.monotonic()
                    await conn.echo("slow", timeout=5)
                    slow = time.monotonic() - started
                assert fast < 0.45 and slow >= 0.57, (fast, slow)
            """
        )
        pytester.makeini(INI)
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "--wsconn-stack=compose",
            "--wsconn-compose-file=compose.yml",
            "--wsconn-compose-service=chat:9000/ws",
            "--wsconn-auth=none",
            f"--wsconn-compose-project={project}",
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["wsconn: stack=compose, target=chat:9000/ws in compose.yml*"])
        assert user_file.read_text() == written, "the user's compose file was changed"
        assert labelled(project) == []


XDIST_TEST = """
import contextlib, json, os, time
from pathlib import Path
import pytest

@pytest.mark.asyncio
async def test_faults_stay_in_their_worker(wsconn_stack, wsconn_connect, wsconn_proxy):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    conn = await wsconn_connect()
    fault = wsconn_proxy.latency(1000) if worker == "gw0" else contextlib.nullcontext()
    rtts, started = [], time.time()
    with fault:
        while time.time() - started < 4:
            began = time.monotonic()
            await conn.echo("x", timeout=5)
            rtts.append(time.monotonic() - began)
    Path(os.environ["WSCONN_TEST_OUT"], worker + ".json").write_text(json.dumps({
        "project": wsconn_stack.project.name,
        "backend": wsconn_stack.project.container("backend").id,
        "proxy": wsconn_proxy.name,
        "window": [started, time.time()],
        "rtts": rtts,
    }))
"""


class TestXdist:
    """Two workers, one stack, each with its own proxies."""

    def test_one_stack_two_workers_isolated_faults(
        self, pytester: pytest.Pytester, out_dir: Path
    ) -> None:
        """Both workers use the same containers; latency in gw0 never slows gw1."""
        pytester.makepyfile(test_user=XDIST_TEST)
        result = _run(pytester, "-n", "2", "--dist", "each")
        result.assert_outcomes(passed=2)
        gw0, gw1 = (json.loads((out_dir / f"{w}.json").read_text()) for w in ("gw0", "gw1"))
        assert gw0["project"] == gw1["project"]
        assert gw0["backend"] == gw1["backend"], "each worker started its own stack"
        assert gw0["proxy"] != gw1["proxy"]
        overlap = min(gw0["window"][1], gw1["window"][1]) - max(gw0["window"][0], gw1["window"][0])
        assert overlap > 1, f"the workers' fault windows overlapped only {overlap:.1f} s"
        # gw0 waits 1 s a round trip; gw1, unslowed, stays far below that even on a busy machine.
        assert min(gw0["rtts"]) >= 0.95, "gw0's own latency fault did not apply"
        assert max(gw1["rtts"]) < 0.5, f"gw0's fault reached gw1: {max(gw1['rtts']):.3f} s"
        assert labelled(gw0["project"]) == []


WAITING_TEST = """
import os, time
from pathlib import Path

def test_wait(wsconn_stack):
    Path(os.environ["WSCONN_TEST_OUT"], "project").write_text(wsconn_stack.project.name)
    time.sleep(120)
"""


class TestNoLeaks:
    """A run that is interrupted or killed leaves nothing behind (after the next run, if killed)."""

    def _start(
        self, pytester: pytest.Pytester, out_dir: Path
    ) -> tuple[subprocess.Popen[bytes], str]:
        pytester.makepyfile(test_wait=WAITING_TEST)
        pytester.makeini(INI)
        process = subprocess.Popen(
            inner_pytest("test_wait.py"),
            cwd=pytester.path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        reached = (out_dir / "project").is_file
        wait_until(lambda: reached() or process.poll() is not None, scaled(90), interval=0.1)
        if not reached():
            process.kill()
            process.wait()
            pytest.fail("the inner run never reached its test")
        return process, (out_dir / "project").read_text()

    def test_ctrl_c(self, pytester: pytest.Pytester, out_dir: Path) -> None:
        """SIGINT mid-test: pytest stops, and its session teardown takes the stack down."""
        process, project = self._start(pytester, out_dir)
        assert labelled(project)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=scaled(60)) == pytest.ExitCode.INTERRUPTED
        assert labelled(project) == []

    def test_sigkill_then_the_next_run(self, pytester: pytest.Pytester, out_dir: Path) -> None:
        """SIGKILL leaves the stack; the next run's reaper removes it."""
        process, dead = self._start(pytester, out_dir)
        process.kill()
        process.wait()
        try:
            assert labelled(dead), "nothing was left to reap: the test proves nothing"
            pytester.makepyfile(test_next="def test_next(wsconn_stack):\n    pass\n")
            result = _run(pytester, "test_next.py")
            result.assert_outcomes(passed=1)
            assert labelled(dead) == []
        finally:
            with contextlib.closing(compose.docker_client()) as client:
                compose.remove_project(client, dead)
