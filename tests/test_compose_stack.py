"""The compose provider against a real Docker engine, without the plugin: stacks, faults, leaks.

Needs an engine, a Compose CLI and the offline images (`scripts/docker-up` gets them all);
without them these tests skip, and with CI=true they fail.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from support import unavailable
from support.docker import USER_COMPOSE, labelled
from websockets.exceptions import ConnectionClosed

from pytest_wsconn.client import InstrumentedConnection, connect
from pytest_wsconn.exceptions import ConfigError, ConnectFailed, StackError
from pytest_wsconn.expect import classify
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.stack import compose
from pytest_wsconn.stack.compose import (
    LABEL_OWNER,
    LABEL_RUN,
    PROJECT_LABEL,
    ComposeOptions,
    ComposeStack,
    open_compose_stack,
    parse_target,
)
from pytest_wsconn.timing import scaled, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bundled(
    compose_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeStack]:
    """docker-compose.test.yml, up once for the module."""
    options = ComposeOptions(project_dir=REPO_ROOT, state_dir=tmp_path_factory.mktemp("state"))
    with open_compose_stack(options) as stack:
        yield stack


@pytest.fixture
def clean_proxies(bundled: ComposeStack) -> Iterator[ComposeStack]:
    """The bundled stack, with every proxy reset after the test."""
    yield bundled
    for proxy in bundled.proxies.values():
        proxy.reset()


Opener = Callable[..., Any]


@pytest_asyncio.fixture(loop_scope="function")
async def open_ws(clean_proxies: ComposeStack) -> AsyncIterator[Opener]:
    """``await open_ws(via="nginx" | "backend", **kwargs)``: a connection through a proxy."""
    stack = clean_proxies
    assert stack.secret is not None
    token = reference_token(stack.secret, "valid")
    opened: list[InstrumentedConnection] = []

    async def open_ws(via: str = "nginx", **kwargs: Any) -> InstrumentedConnection:
        kwargs.setdefault("open_timeout", scaled(5))
        conn = await connect(
            stack.url, token=token, dial=stack.proxies[via].listen_address, **kwargs
        )
        opened.append(conn)
        return conn

    yield open_ws
    for conn in opened:
        await conn.close()


async def _open_eventually(open_ws: Opener, within: float) -> InstrumentedConnection:
    """Keep trying to connect (a service coming back); the last failure if it never opens."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await open_ws(open_timeout=scaled(2))
        except ConnectFailed:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)  # the retry's pause; the loop's deadline bounds it


def _close_of(conn: InstrumentedConnection) -> tuple[int | None, bool | None]:
    assert conn.attempt is not None
    close = conn.attempt.close
    return (close.code, close.received) if close is not None else (None, None)


# The bundled stack ----------------------------------------------------------------------------


class TestBundledStack:
    """The bundled file: client -> toxiproxy -> nginx -> backend, and toxiproxy -> backend."""

    @pytest.mark.asyncio
    async def test_traffic_goes_through_nginx(self, bundled: ComposeStack, open_ws: Opener) -> None:
        """The main proxy's traffic reaches the backend through nginx, whose log shows it."""
        since = time.time()
        conn = await open_ws()
        assert await conn.echo("via nginx", timeout=scaled(5)) == "via nginx"
        await conn.close()  # nginx logs a request when it ends: for a WebSocket, at the close
        deadline = time.monotonic() + scaled(5)
        while 'GET /ws HTTP/1.1" 101' not in (logs := bundled.logs(since))["nginx"]:
            assert time.monotonic() < deadline, logs
            await asyncio.sleep(0.1)

    @pytest.mark.asyncio
    async def test_second_proxy_bypasses_nginx(
        self, bundled: ComposeStack, open_ws: Opener
    ) -> None:
        """The backend proxy reaches the backend straight: nginx sees nothing."""
        since = time.time()
        conn = await open_ws(via="backend")
        assert await conn.echo("direct", timeout=scaled(5)) == "direct"
        assert "GET /ws" not in bundled.logs(since)["nginx"]

    @pytest.mark.asyncio
    async def test_a_proxy_fault_leaves_the_other_path_alone(
        self, bundled: ComposeStack, open_ws: Opener
    ) -> None:
        """Latency on the nginx path does not slow the direct path: faults are per proxy."""
        slow, fast = await open_ws(), await open_ws(via="backend")
        with bundled.proxy.latency(300):
            started = time.monotonic()
            await slow.echo("slow", timeout=scaled(5))
            slow_rtt = time.monotonic() - started
            started = time.monotonic()
            await fast.echo("fast", timeout=scaled(5))
            fast_rtt = time.monotonic() - started
        assert slow_rtt >= 0.27, f"nginx path took {slow_rtt:.3f} s under 300 ms latency"
        assert fast_rtt < 0.2, f"direct path took {fast_rtt:.3f} s: the fault leaked"

    def test_everything_is_published_on_loopback(self, bundled: ComposeStack) -> None:
        """The API, the proxies and the direct URL are loopback addresses the engine picked."""
        assert bundled.toxiproxy.url.startswith("http://127.0.0.1:")
        assert bundled.url.startswith("ws://127.0.0.1:")
        for proxy in bundled.proxies.values():
            assert proxy.listen_address[0] == "127.0.0.1"
        assert bundled.proxy_url.endswith("/ws")
        assert bundled.toxiproxy.version() == "2.12.0"

    def test_every_resource_carries_the_run_labels(self, bundled: ComposeStack) -> None:
        """Containers and networks carry the run id and its owner process (for the reaper)."""
        client = bundled.project.docker
        label = f"{PROJECT_LABEL}={bundled.project.name}"
        containers = client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
        networks = client.networks.list(filters={"label": label})
        assert {c.labels[compose.SERVICE_LABEL] for c in containers} == {
            "toxiproxy",
            "nginx",
            "backend",
        }
        assert networks
        for labels in [c.labels for c in containers] + [n.attrs["Labels"] for n in networks]:
            assert labels[LABEL_RUN] == bundled.project.run_id
            assert compose.token_alive(labels[LABEL_OWNER])

    def test_the_monitoring_profile_stays_off_by_default(self, bundled: ComposeStack) -> None:
        """The file has a Prometheus, in the `monitoring` profile: without it nothing of it
        is created (tests/test_compose_monitoring.py switches it on)."""
        services = yaml.safe_load((REPO_ROOT / "docker-compose.test.yml").read_text())["services"]
        assert services["prometheus"]["profiles"] == ["monitoring"]
        assert bundled.project.containers("prometheus") == []

    def test_logs_are_redacted_and_windowed(self, bundled: ComposeStack) -> None:
        """A window after everything happened is empty; no token value appears in any log."""
        later = time.time() + 3600
        assert all(text == "" for text in bundled.logs(later).values())
        everything = "\n".join(bundled.logs(1.0).values())
        assert "token=" not in everything or "token=***" in everything
        assert "eyJ" not in everything  # the reference tokens' base64 JSON header


# Container faults -----------------------------------------------------------------------------


class TestContainerFaults:
    """Each fault on the shared bundled stack, with what a client observes."""

    @pytest.mark.asyncio
    async def test_restart_closes_with_going_away_then_recovers(
        self, bundled: ComposeStack, open_ws: Opener
    ) -> None:
        """Open connections see 1001 (or 1006); a new connection succeeds once it is back."""
        conn = await open_ws()
        async with bundled.restart("backend"):
            assert await conn.wait_closed_within(scaled(5))
        code, _ = _close_of(conn)
        assert code in (1001, 1006), f"closed with {code} on restart"
        fresh = await open_ws()
        assert await fresh.echo("back", timeout=scaled(5)) == "back"

    @pytest.mark.asyncio
    async def test_killed_backend_drops_connections_and_gets_a_gateway_error(
        self, bundled: ComposeStack, open_ws: Opener
    ) -> None:
        """SIGKILL the backend: open connections see 1006; nginx says 502/504 until it is back."""
        through_nginx, direct = await open_ws(), await open_ws(via="backend")
        with bundled.kill("backend"):
            for conn in (through_nginx, direct):
                assert await conn.wait_closed_within(scaled(5))
                assert _close_of(conn) == (1006, False)
            started = time.monotonic()
            with pytest.raises(ConnectFailed) as failed:
                await open_ws()
            assert failed.value.attempt.http_status in (502, 504), failed.value
            assert time.monotonic() - started < scaled(4), "nginx took too long to give up"
        fresh = await open_ws()
        assert await fresh.echo("back", timeout=scaled(5)) == "back"

    @pytest.mark.asyncio
    async def test_killed_toxiproxy_refuses_until_back(
        self, bundled: ComposeStack, open_ws: Opener
    ) -> None:
        """SIGKILL the proxy: open connections see 1006, new ones are refused, then it is back."""
        conn = await open_ws()
        with bundled.kill("toxiproxy"):
            assert await conn.wait_closed_within(scaled(5))
            assert _close_of(conn) == (1006, False)
            with pytest.raises(ConnectFailed) as refused:
                await open_ws()
            assert refused.value.attempt.outcome == "refused", refused.value
            assert classify(refused.value.attempt).category == "network"
        fresh = await open_ws()
        assert await fresh.echo("back", timeout=scaled(5)) == "back"

    @pytest.mark.asyncio
    async def test_pause_is_caught_by_keepalive(
        self, bundled: ComposeStack, open_ws: Opener
    ) -> None:
        """A frozen backend answers no ping: the client's keepalive gives up in time."""
        conn = await open_ws(ping_interval=0.5, ping_timeout=0.5, close_timeout=0.2)
        with bundled.pause("backend"):
            started = time.monotonic()
            assert await conn.wait_closed_within(scaled(5)), "a frozen peer was not detected"
            detected = time.monotonic() - started
        assert conn.attempt is not None and conn.attempt.close is not None
        assert conn.attempt.close.keepalive_timeout, conn.attempt.close.describe()
        assert classify(conn.attempt).category == "timeout"
        assert detected < scaled(0.5 + 0.5 + 0.2 + 1), f"detected after {detected:.1f} s"
        fresh = await open_ws()
        assert await fresh.echo("thawed", timeout=scaled(5)) == "thawed"

    @pytest.mark.asyncio
    async def test_partition_stops_traffic_and_heals(
        self, bundled: ComposeStack, open_ws: Opener
    ) -> None:
        """Disconnected from its network the backend gets no traffic; reconnected it serves."""
        conn = await open_ws(via="backend")
        with bundled.partition("backend"):
            with pytest.raises((TimeoutError, ConnectionClosed)):
                await conn.echo("anyone?", timeout=scaled(1))
            with pytest.raises(ConnectFailed):
                await open_ws(via="backend", open_timeout=scaled(2))
        fresh = await _open_eventually(open_ws, scaled(10))
        assert await fresh.echo("healed", timeout=scaled(5)) == "healed"

    @pytest.mark.asyncio
    async def test_restarted_toxiproxy_gets_our_proxies_back(
        self, bundled: ComposeStack, open_ws: Opener
    ) -> None:
        """Toxiproxy forgets API-made proxies on restart: they are made again, same objects."""
        proxy = bundled.proxy
        with bundled.restart("toxiproxy"):  # the plain `with` form (what the marker uses)
            pass
        assert bundled.proxy is proxy
        assert proxy.name in bundled.toxiproxy.proxies()
        conn = await open_ws()
        assert await conn.echo("still here", timeout=scaled(5)) == "still here"

    def test_faults_by_name_check_their_arguments(self, bundled: ComposeStack) -> None:
        """What the marker calls refuses unknown faults and parameters before touching Docker."""
        with pytest.raises(ConfigError, match="valid: restart, kill, pause, partition"):
            bundled.fault("explode", "backend")
        with pytest.raises(ConfigError, match="takes no signal"):
            bundled.fault("pause", "backend", signal="SIGTERM")
        with pytest.raises(StackError, match="no container for service 'nope'"):
            bundled.fault("pause", "nope").__enter__()


# A user's own compose project -----------------------------------------------------------------


class TestUserProject:
    """A compose file that knows nothing of pytest-wsconn gets Toxiproxy injected."""

    @pytest.mark.asyncio
    async def test_compose_v1_fallback(
        self, compose_images: dict[str, str], tmp_path: Path
    ) -> None:
        """Compose v1 (no --wait, no JSON config): own health wait, Toxiproxy joined by the SDK."""
        try:
            cli = compose.find_compose_cli(
                {**os.environ, compose.COMPOSE_CLI_ENV: "docker-compose"}
            )
        except StackError as exc:
            unavailable(f"no docker-compose v1 here to test the fallback with: {exc}")
        if cli.v2:
            unavailable(f"docker-compose is {cli}, not v1 (Debian's docker-compose package is)")
        (tmp_path / "compose.yml").write_text(USER_COMPOSE)
        options = ComposeOptions(
            files=(tmp_path / "compose.yml",),
            targets=(parse_target("chat:9000/ws"),),
            state_dir=tmp_path / "state",
        )
        with open_compose_stack(options, cli=cli) as stack:
            project = stack.project.name
            conn = await connect(stack.url, auth="none", dial=stack.proxy.listen_address)
            try:
                with stack.proxy.latency(300):
                    started = time.monotonic()
                    await conn.echo("slow", timeout=scaled(5))
                    slow = time.monotonic() - started
            finally:
                await conn.close()
        assert slow >= 0.27
        assert labelled(project) == []

    @pytest.mark.asyncio
    async def test_toxiproxy_is_injected_and_latency_shows(
        self, compose_images: dict[str, str], tmp_path: Path
    ) -> None:
        """The override adds Toxiproxy on the service's network; 300 ms latency is measured."""
        (tmp_path / "compose.yml").write_text(USER_COMPOSE)
        options = ComposeOptions(
            files=(tmp_path / "compose.yml",),
            targets=(parse_target("chat:9000/ws"),),
            state_dir=tmp_path / "state",
        )
        with open_compose_stack(options) as stack:
            project = stack.project.name
            assert stack.project.toxiproxy_service == compose.INJECTED_TOXIPROXY
            assert stack.url == stack.proxy_url  # chat publishes nothing: only the proxy reaches it
            conn = await connect(stack.url, auth="none", dial=stack.proxy.listen_address)
            try:
                started = time.monotonic()
                await conn.echo("fast", timeout=scaled(5))
                fast = time.monotonic() - started
                with stack.proxy.latency(300):
                    started = time.monotonic()
                    await conn.echo("slow", timeout=scaled(5))
                    slow = time.monotonic() - started
            finally:
                await conn.close()
        assert (tmp_path / "compose.yml").read_text() == USER_COMPOSE
        assert slow >= 0.27 > fast, f"round trips {fast:.3f} s, then {slow:.3f} s under latency"
        assert labelled(project) == []

    def test_an_unknown_service_is_named(
        self, compose_images: dict[str, str], tmp_path: Path
    ) -> None:
        """A target the file does not have is a ConfigError listing the services it does have."""
        (tmp_path / "compose.yml").write_text(USER_COMPOSE)
        options = ComposeOptions(
            files=(tmp_path / "compose.yml",),
            targets=(parse_target("backend:8765"),),
            state_dir=tmp_path / "state",
        )
        with pytest.raises(
            ConfigError, match=r"'backend' is not in compose.yml \(services: chat\)"
        ):
            open_compose_stack(options).__enter__()


# Failures a user can act on -------------------------------------------------------------------


class TestFailures:
    """Each failure says what happened and what to do, and leaves nothing behind."""

    def test_healthcheck_that_never_passes(
        self, compose_images: dict[str, str], tmp_path: Path
    ) -> None:
        """`up` stops at the deadline with the healthcheck's own last output; all is removed."""
        (tmp_path / "compose.yml").write_text(
            textwrap.dedent(
                """\
                services:
                  chat:
                    image: ${WSCONN_BACKEND_IMAGE}
                    init: true
                    healthcheck:
                      test: ["CMD", "/opt/wsconn/bin/python", "-c", "print('no db'); exit(3)"]
                      interval: 1s
                      retries: 2
                """
            )
        )
        options = ComposeOptions(
            files=(tmp_path / "compose.yml",),
            targets=(parse_target("chat:8765"),),
            state_dir=tmp_path / "state",
            project=f"wsconn-unhealthy-{os.getpid()}",
            up_timeout=20,
        )
        with pytest.raises(StackError) as failed:
            open_compose_stack(options).__enter__()
        message = str(failed.value)
        assert "service chat is unhealthy: its healthcheck never passed" in message, message
        assert "(exit code 3) said: no db" in message, message
        assert "hint: watch it come up by hand: `docker compose" in message
        assert labelled(options.project or "") == []
        assert list((tmp_path / "state").iterdir()) == [], "the state folder outlived its stack"

    def test_missing_image_without_a_registry(
        self, compose_images: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An image that is not here and cannot be pulled is named, with the offline route."""
        monkeypatch.setenv("WSCONN_TOXIPROXY_IMAGE", "pytest-wsconn/never-built:1")
        options = ComposeOptions(
            project_dir=REPO_ROOT,
            state_dir=tmp_path / "state",
            project=f"wsconn-noimage-{os.getpid()}",
            up_timeout=60,
        )
        with pytest.raises(StackError) as failed:
            open_compose_stack(options).__enter__()
        message = str(failed.value)
        assert (
            "image pytest-wsconn/never-built:1 is not on this machine and could not be pulled"
            in message
        )
        assert "`wsconn images build` builds the bundled stack's images offline" in message
        assert labelled(options.project or "") == []
        assert list((tmp_path / "state").iterdir()) == [], "the state folder outlived its stack"

    def test_engine_not_running(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """Nothing at DOCKER_HOST: the engine is not running, and how to start it."""
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
        with pytest.raises(
            StackError, match="the Docker engine is not running: nothing answers at unix://"
        ):
            compose.docker_client()

    def test_docker_not_installed(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """No docker and no docker-compose on PATH: Docker is not installed, and how to get it."""
        monkeypatch.setenv("PATH", str(tmp_path))
        with pytest.raises(StackError, match="Docker is not installed") as failed:
            compose.find_compose_cli()
        assert "apt-get install docker.io" in str(failed.value)


# No leaks -------------------------------------------------------------------------------------

DRIVER = """\
import os, sys, time
from pathlib import Path
from pytest_wsconn.stack.compose import ComposeOptions, open_compose_stack

mode, project, state = sys.argv[1], sys.argv[2], Path(sys.argv[3])
options = ComposeOptions(project_dir=Path({repo!r}), project=project, state_dir=state)
with open_compose_stack(options) as stack:
    print("READY", flush=True)
    if mode == "fail":
        raise RuntimeError("a test failed")
    if mode == "wait":
        time.sleep(120)
print("DONE", flush=True)
"""


class Drivers:
    """Runs of DRIVER in child processes; whatever a test leaves is removed afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.script = tmp_path / "driver.py"
        self.script.write_text(DRIVER.format(repo=str(REPO_ROOT)))
        self.state = tmp_path / "state"
        self.processes: list[subprocess.Popen[str]] = []
        self.projects: list[str] = []

    def start(self, mode: str, name: str) -> tuple[subprocess.Popen[str], str]:
        project = f"wsconn-leak-{name}-{os.getpid()}"
        process = subprocess.Popen(
            [sys.executable, str(self.script), mode, project, str(self.state)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        self.projects.append(project)
        return process, project

    @staticmethod
    def wait_ready(process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "READY":
            _, err = process.communicate(timeout=scaled(60))
            pytest.fail(f"the driver printed {line!r}; its stderr:\n{err}")

    @staticmethod
    def finish(process: subprocess.Popen[str]) -> int:
        process.communicate(timeout=scaled(60))
        return process.returncode

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
        with contextlib.closing(compose.docker_client()) as client:
            for project in self.projects:
                compose.remove_project(client, project)


@pytest.fixture
def drivers(compose_images: dict[str, str], tmp_path: Path) -> Iterator[Drivers]:
    runs = Drivers(tmp_path)
    yield runs
    runs.close()


class TestNoLeaks:
    """Whatever ends a run, no container, network or volume of its stack remains."""

    @pytest.mark.parametrize("mode", ["pass", "fail"])
    def test_after_a_pass_or_a_failure(self, drivers: Drivers, mode: str) -> None:
        """The stack is down when the block ends, normally or by an exception."""
        process, project = drivers.start(mode, mode)
        drivers.wait_ready(process)
        assert labelled(project), "the stack was not up while in use"
        assert (drivers.state / project).is_dir(), "no state folder while in use"
        assert drivers.finish(process) == (0 if mode == "pass" else 1)
        assert labelled(project) == []
        assert not (drivers.state / project).exists(), "the state folder outlived its stack"

    def test_after_ctrl_c(self, drivers: Drivers) -> None:
        """SIGINT mid-run (KeyboardInterrupt) still takes the stack down."""
        process, project = drivers.start("wait", "sigint")
        drivers.wait_ready(process)
        process.send_signal(signal.SIGINT)
        drivers.finish(process)
        assert labelled(project) == []
        assert not (drivers.state / project).exists(), "the state folder outlived its stack"

    def test_ctrl_c_during_up(self, drivers: Drivers) -> None:
        """SIGINT while `up` is still running stops it and takes down what it started."""
        process, project = drivers.start("wait", "upint")
        wait_until(lambda: bool(labelled(project)), scaled(30), interval=0.05)
        process.send_signal(signal.SIGINT)
        drivers.finish(process)
        assert labelled(project) == []
        assert not (drivers.state / project).exists(), "the state folder outlived its stack"

    def test_after_sigkill_the_next_run_reaps(self, drivers: Drivers) -> None:
        """A SIGKILLed run leaves its stack; the next run removes it before starting its own."""
        process, dead = drivers.start("wait", "sigkill")
        drivers.wait_ready(process)
        process.kill()
        drivers.finish(process)
        assert labelled(dead), "nothing was left to reap: the test proves nothing"
        assert (drivers.state / dead).is_dir(), "no state folder was left to reap"
        process, following = drivers.start("pass", "next")
        drivers.wait_ready(process)
        assert labelled(dead) == []
        assert not (drivers.state / dead).exists(), "the dead run's state folder was not reaped"
        assert drivers.finish(process) == 0
        assert labelled(following) == []

    def test_two_runs_reaping_the_same_dead_stack_both_go_on(
        self, compose_images: dict[str, str]
    ) -> None:
        """CI jobs sharing an engine reap a dead run's stack at the same moment: neither fails."""
        dead_owner = f"{socket.gethostname()}/999999999/gone"  # this host, no such process
        project = f"wsconn-dead-{os.getpid()}"
        labels = {PROJECT_LABEL: project, LABEL_OWNER: dead_owner}
        with contextlib.closing(compose.docker_client()) as client:
            for _ in range(4):
                client.containers.create(compose_images["WSCONN_TOXIPROXY_IMAGE"], labels=labels)
            client.networks.create(project, labels=labels)
            assert len(labelled(project)) == 5
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as reapers:
                runs = [reapers.submit(compose.reap, client) for _ in range(2)]
                reaped = [run.result(timeout=scaled(60)) for run in runs]
        assert all(project in names for names in reaped)
        assert labelled(project) == []

    def test_a_live_run_is_not_reaped(self, bundled: ComposeStack) -> None:
        """The reaper leaves alone the stacks of runs whose owner still runs (ours)."""
        removed = compose.reap(bundled.project.docker)
        assert bundled.project.name not in removed
        assert labelled(bundled.project.name)
