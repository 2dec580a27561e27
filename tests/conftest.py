"""Shared fixtures for pytest-wsconn's own tests."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import BROKEN_SERVER, BROKEN_TOKEN, REPO_ROOT, Service, unavailable
from support.docker import require_docker

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.stack.reference_process import ReferenceProcess
from pytest_wsconn.stack.toxiproxy_server import ToxiproxyServer, find_toxiproxy_binary
from pytest_wsconn.timing import scaled

# The README's container-fault example needs the compose stack: tests/test_compose_plugin.py
# runs it with --wsconn-stack=compose instead of collecting it here.
collect_ignore = ["examples/test_readme_container_faults.py"]

# Modules that use the Docker engine: `make test` runs them in a session of their own, one after
# another, beside the parallel session of the rest. Each asserts on the engine's whole state
# (what a run left, what the next run reaps), which another compose session at once would change.
DOCKER_MODULES = {
    "test_compose_cleanup.py",
    "test_compose_findings_real.py",
    "test_compose_monitoring.py",
    "test_compose_plugin.py",
    "test_compose_stack.py",
    "test_provision.py",
    "test_user_setup.py",
}
# Modules that run alone, after both (`make test`): the load runs measure what Locust reaches in
# a few seconds, which busy neighbours would starve.
SERIAL_MODULES = {"test_load_runs.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in DOCKER_MODULES:
            item.add_marker(pytest.mark.docker)
        if item.path.name in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session")
def toxiproxy_binary() -> Path:
    """The toxiproxy-server to test against; missing is a failure on CI, a skip elsewhere."""
    try:
        return find_toxiproxy_binary(None, REPO_ROOT, os.environ)
    except StackError as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's promtool (package prometheus); missing is a failure on CI, a skip elsewhere."""
    path = shutil.which("promtool")
    if path is None:
        unavailable("promtool not found: apt-get install prometheus")
    return path


@pytest.fixture(scope="session")
def locust_installed() -> None:
    """Locust is a test dependency: missing is a failure on CI, a skip elsewhere."""
    if importlib.util.find_spec("locust") is None:
        unavailable("Locust is not installed (pip install pytest-wsconn[load])")


@pytest.fixture(scope="session")
def toxiproxy_server(toxiproxy_binary: Path) -> Iterator[ToxiproxyServer]:
    """One toxiproxy-server for the whole session; tests clean up their own proxies."""
    with ToxiproxyServer(toxiproxy_binary) as server:
        yield server


@pytest.fixture(scope="session")
def reference_service() -> Iterator[Service]:
    """A reference server of our own, started outside any stack, with a valid token."""
    with ReferenceProcess() as server:
        url = server.wait_ready(scaled(10))
        yield Service(url, reference_token(server.secret, "valid"))


@pytest.fixture(scope="session")
def broken_service() -> Iterator[Callable[[str], Service]]:
    """Start a server that breaks one behaviour (see tests/support/brokenserver.py)."""
    with contextlib.ExitStack() as servers:

        def start(mode: str) -> Service:
            server = servers.enter_context(ReferenceProcess((str(BROKEN_SERVER), mode)))
            return Service(server.wait_ready(scaled(10)), BROKEN_TOKEN)

        yield start


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where browser tests keep screenshots of what a page showed, one file per state, kept
    after the run: $WSCONN_SCREENSHOTS_DIR, else ``screenshots/`` in the run's base temp dir
    (``--basetemp``, or pytest's numbered ``/tmp/pytest-of-$USER/pytest-N``), one folder for
    all xdist workers."""
    chosen = os.environ.get("WSCONN_SCREENSHOTS_DIR")
    if chosen:
        folder = Path(chosen)
    else:
        base = tmp_path_factory.getbasetemp()  # an xdist worker's is <the run's>/popen-gwN
        folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def chromium_present() -> None:
    """Debian's Chromium, which wsconn_browser drives; missing fails on CI, skips elsewhere."""
    from pytest_wsconn.config import DEFAULT_CHROMIUM

    if shutil.which(DEFAULT_CHROMIUM) is None:
        unavailable(f"{DEFAULT_CHROMIUM} not found: apt-get install chromium (bootstrap does)")


@pytest.fixture
def user_env(monkeypatch: pytest.MonkeyPatch, toxiproxy_binary: Path) -> None:
    """What a user's environment provides to an inner pytest run: the toxiproxy-server to use."""
    monkeypatch.setenv("WSCONN_TOXIPROXY_BIN", str(toxiproxy_binary))


@pytest.fixture
def closed_port_url() -> str:
    """A ws:// URL on a loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}/ws"


@pytest.fixture(scope="session")
def compose_images() -> Iterator[dict[str, str]]:
    """Docker is usable; the offline images are exported for the whole session."""
    images = require_docker()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in images.items():
            patch.setenv(name, value)
        yield images
