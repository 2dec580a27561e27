"""Nothing left behind by a compose session: its stack and its state folder go on every way out.

A user-style session runs in a subprocess against the bundled stack, with its own temp directory
(so its state folder, ``$TMPDIR/pytest-wsconn-compose/<project>/``, is known). It is stopped by
SIGTERM (what a CI cancel and `timeout` send) or SIGINT (Ctrl-C), once while its test runs and
once while `compose up` still brings the stack up; then no container, network or volume of its
run and no state folder may remain. Without Docker these tests skip, and with CI=true they fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.docker import inner_pytest, resources_labelled

from pytest_wsconn.stack import compose
from pytest_wsconn.stack.compose import LABEL_RUN, PROJECT_LABEL, process_token
from pytest_wsconn.stack.compose.state import STATE_BASE, SharedState, reap_state
from pytest_wsconn.timing import scaled, wait_until

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""
WAITING_TEST = """
import os
from pathlib import Path

from pytest_wsconn.timing import wait_until


def test_waits_for_the_signal(wsconn_stack):
    out = Path(os.environ["WSCONN_TEST_OUT"])
    (out / "started").write_text(wsconn_stack.project.name)
    # Bounded: if no signal comes, the session still ends (and the outer test fails).
    wait_until((out / "never").exists, 120, interval=0.1)
"""
UP = scaled(120)
"""Upper bound for the bundled stack to come up (images are local)."""
DOWN = scaled(90)
"""Upper bound for an interrupted session to take its stack down and exit."""


def _run_id(project: str) -> str | None:
    """The run id our labels give the project's first container, once it exists."""
    filters: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={project}"}
    with contextlib.closing(compose.docker_client()) as client:
        for container in client.containers.list(all=True, filters=filters, ignore_removed=True):
            run: str | None = container.labels.get(LABEL_RUN)
            if run:
                return run
    return None


class Session:
    """An inner pytest session with the compose stack, in a subprocess of its own."""

    def __init__(self, pytester: pytest.Pytester, name: str) -> None:
        self.project = f"wsconn-cleanup-{name}-{os.getpid()}"
        self.tmp = pytester.path / "tmp"
        self.out = pytester.path / "out"
        self.log = pytester.path / "inner.log"
        self.state_dir = self.tmp / STATE_BASE / self.project
        self.tmp.mkdir()
        self.out.mkdir()
        pytester.makeini(INI)
        pytester.makepyfile(test_waits=WAITING_TEST)
        env = {**os.environ, "TMPDIR": str(self.tmp), "WSCONN_TEST_OUT": str(self.out)}
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                inner_pytest(f"--wsconn-compose-project={self.project}", "test_waits.py"),
                cwd=pytester.path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.run: str | None = None

    def wait_for(self, what: str, condition: object, timeout: float) -> None:
        assert callable(condition)
        reached = wait_until(
            lambda: bool(condition()) or self.process.poll() is not None, timeout, interval=0.1
        )
        assert reached and self.process.poll() is None, (
            f"the inner session never got to {what}; its output:\n{self.log.read_text()}"
        )

    def stop(self, signum: signal.Signals) -> int:
        """Send ``signum`` to the inner pytest only (not its process group); its exit code."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=DOWN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {DOWN:g} s after {signum.name}:\n{self.log.read_text()}")

    def leftovers(self) -> list[str]:
        left = resources_labelled(f"{PROJECT_LABEL}={self.project}")
        if self.run:
            left += [r for r in resources_labelled(f"{LABEL_RUN}={self.run}") if r not in left]
        if self.state_dir.exists():
            left.append(f"state folder {self.state_dir} ({sorted(os.listdir(self.state_dir))})")
        return left

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        with contextlib.closing(compose.docker_client()) as client:
            compose.remove_project(client, self.project)


@pytest.fixture
def session(pytester: pytest.Pytester, request: pytest.FixtureRequest) -> Iterator[Session]:
    started = Session(pytester, request.node.callspec.id.lower())
    try:
        yield started
    finally:
        started.kill()  # leave nothing behind ourselves either, whatever the test said


SIGNALS = pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"]
)


@pytest.mark.usefixtures("compose_images")
class TestInterrupted:
    """SIGTERM and SIGINT take the stack and its state folder down, mid-run and during `up`."""

    @SIGNALS
    def test_mid_run(self, session: Session, signum: signal.Signals) -> None:
        """A signal while the test waits: exit code 2, no labelled resource, no state folder."""
        session.wait_for("its test", (session.out / "started").exists, UP)
        session.run = _run_id(session.project)
        assert session.run and session.state_dir.is_dir(), "the stack was not up: proves nothing"
        code = session.stop(signum)
        assert code == pytest.ExitCode.INTERRUPTED, session.log.read_text()
        assert session.leftovers() == [], session.log.read_text()

    @SIGNALS
    def test_during_up(self, session: Session, signum: signal.Signals) -> None:
        """A signal once `up` has made the first container: the same, and no test ran."""
        session.wait_for("`compose up`", lambda: _run_id(session.project), UP)
        session.run = _run_id(session.project)
        code = session.stop(signum)
        text = session.log.read_text()
        assert not (session.out / "started").exists(), "the stack was up already: proves nothing"
        assert code == pytest.ExitCode.INTERRUPTED, text
        assert session.leftovers() == [], text


class TestReapState:
    """The reaper removes the state folders of runs whose owner died, and only those."""

    @staticmethod
    def _folder(base: Path, name: str, **state: object) -> Path:
        shared = SharedState(base / name)
        with shared.locked() as written:
            written.update(state)
        return shared.directory

    @staticmethod
    def _dead_token() -> str:
        """The token of a process that ran and exited (its pid not reused: start time differs)."""
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
        )
        token = process_token(child.pid)
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=scaled(10))
        return token

    def test_dead_owner(self, tmp_path: Path) -> None:
        """A dead owner's folder goes; a live owner's, a kept one's and a locked one stay."""
        dead = self._dead_token()
        me = process_token(os.getpid())
        self._folder(tmp_path, "dead", owner=dead, users=[dead])
        self._folder(tmp_path, "alive", owner=me, users=[])
        self._folder(tmp_path, "dead-owner-live-user", owner=dead, users=[me])
        self._folder(tmp_path, "kept", users=[])
        self._folder(tmp_path, "mine", owner=dead, users=[])
        busy = self._folder(tmp_path, "busy", owner=dead, users=[])
        with SharedState(busy).locked():
            removed = reap_state(tmp_path, exclude="mine")
        assert removed == ["dead"]
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "alive",
            "busy",
            "dead-owner-live-user",
            "kept",
            "mine",
        ]
