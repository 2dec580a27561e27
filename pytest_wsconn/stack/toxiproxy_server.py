"""Find a toxiproxy-server binary and run it for one test session.

The server is a child process on 127.0.0.1 and a free port, so parallel sessions (xdist workers,
two checkouts) never share toxics; like every child of ours it never outlives pytest
(``processes``). A server reporting another version than the pinned one still runs, with one
warning: its toxics may not behave as the tests expect.
"""

from __future__ import annotations

import enum
import os
import shutil
import socket
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from pytest_wsconn.exceptions import StackError, ToxiproxyError
from pytest_wsconn.provision.pins import SERVER, TOXIPROXY_VERSION, toxiproxy_dir
from pytest_wsconn.stack.processes import ChildProcess
from pytest_wsconn.timing import scaled, wait_until
from pytest_wsconn.toxiproxy import ToxiproxyClient

BINARY_ENV = "WSCONN_TOXIPROXY_BIN"

INSTALL_HINT = (
    f"run `wsconn install toxiproxy`: it installs Toxiproxy {TOXIPROXY_VERSION} where the plugin "
    "looks last (built with Go when there is one, else the release binary checked against its "
    f"sha256); or point {BINARY_ENV} or --wsconn-toxiproxy-bin at a toxiproxy-server "
    f"{TOXIPROXY_VERSION}"
)


class UnpinnedToxiproxyWarning(UserWarning):
    """The toxiproxy-server in use reports another version than the pinned one."""


_OUTPUT_TAIL_LINES = 20


def _checked(candidate: str, source: str) -> Path:
    """``candidate`` if it is an executable file; a wrong path the user gave is an error."""
    path = Path(candidate).expanduser()
    if not path.is_file():
        raise StackError(f"{source} is {candidate!r}, which is not a file", hint=INSTALL_HINT)
    if not os.access(path, os.X_OK):
        raise StackError(
            f"{source} is {candidate!r}, which is not executable", hint=f"chmod +x {path}"
        )
    return path


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_toxiproxy_binary(
    explicit: str | None, project_dir: Path, environ: Mapping[str, str]
) -> Path:
    """Locate toxiproxy-server: the option, the env var, ``toxiproxy/bin``, PATH, the user cache.

    The user cache (where ``wsconn install toxiproxy`` puts it) comes last, so whatever a user
    or project chose on purpose wins.
    """
    if explicit:
        return _checked(explicit, "--wsconn-toxiproxy-bin")
    if environ.get(BINARY_ENV):
        return _checked(environ[BINARY_ENV], BINARY_ENV)
    local = project_dir / "toxiproxy" / "bin" / "toxiproxy-server"
    if _executable(local):
        return local
    on_path = shutil.which("toxiproxy-server", path=environ.get("PATH", ""))
    if on_path is not None:
        return Path(on_path)
    cached = toxiproxy_dir(environ, Path(environ.get("HOME") or Path.home())) / "toxiproxy-server"
    if _executable(cached):
        return cached
    raise StackError(
        f"toxiproxy-server not found: no --wsconn-toxiproxy-bin, no {BINARY_ENV}, "
        f"nothing at {local}, none on PATH and nothing at {cached}",
        hint=INSTALL_HINT,
    )


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class _Startup(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    PORT_TAKEN = "port taken"
    FAILED = "failed"


class ToxiproxyServer:
    """A toxiproxy-server child process; a context manager, or call ``start()``/``stop()``."""

    def __init__(
        self,
        binary: Path,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float | None = None,
        stop_timeout: float | None = None,
        port_attempts: int = 3,
    ) -> None:
        self.binary = binary
        self.host = host
        self.startup_timeout = scaled(10) if startup_timeout is None else startup_timeout
        self.stop_timeout = scaled(5) if stop_timeout is None else stop_timeout
        self.port_attempts = port_attempts
        self._child: ChildProcess | None = None
        self._port = 0
        self._client: ToxiproxyClient | None = None
        self._final_output = ""
        self.version = ""
        """What the running server's API says its version is."""

    def __repr__(self) -> str:
        state = f"pid {self._child.pid} at {self.url}" if self._child else "stopped"
        return f"ToxiproxyServer({str(self.binary)!r}, {state})"

    @property
    def url(self) -> str:
        """The API's base URL, e.g. ``http://127.0.0.1:41234``."""
        if self._child is None:
            raise StackError("toxiproxy-server is not running; call start() first")
        return f"http://{self.host}:{self._port}"

    @property
    def client(self) -> ToxiproxyClient:
        """An API client for this server."""
        if self._client is None:
            raise StackError("toxiproxy-server is not running; call start() first")
        return self._client

    @property
    def child(self) -> ChildProcess:
        """The server process, watched: ``child.exit()`` says if it ended on its own."""
        if self._child is None:
            raise StackError("toxiproxy-server is not running; call start() first")
        return self._child

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.child.pid

    def output(self) -> str:
        """Everything the server logged so far (kept after ``stop()`` for reports)."""
        return self._final_output if self._child is None else self._child.output()

    def start(self) -> ToxiproxyServer:
        """Run the server on a free port and return once its API answers."""
        if self._child is not None:
            raise StackError(f"toxiproxy-server is already running at {self.url}")
        for _ in range(self.port_attempts):
            if self._launch(_free_port(self.host)):
                return self
        raise StackError(
            f"toxiproxy-server found its port on {self.host} taken {self.port_attempts} times",
            hint="another process is grabbing ports as fast as they free up; retry the run",
        )

    def _launch(self, port: int) -> bool:
        """Start on ``port``: True once ready, False if the port was taken meanwhile."""
        self._port = port
        try:
            self._child = ChildProcess(
                SERVER,
                [str(self.binary), "-host", self.host, "-port", str(port)],
                # info, whatever LOG_LEVEL the user's own app wants: startup reads these lines.
                env={**os.environ, "LOG_LEVEL": "info"},
            )
        except OSError as exc:
            self.stop()
            raise StackError(f"could not run {self.binary}: {exc}", hint=INSTALL_HINT) from exc
        try:
            # A short probe timeout: a port thief that accepts but never answers costs little.
            state = self._wait_ready(ToxiproxyClient(self.url, timeout=scaled(0.25)))
        except BaseException:
            self.stop()
            raise
        if state is _Startup.READY:
            self._client = ToxiproxyClient(self.url)
            if self.version != TOXIPROXY_VERSION:
                warnings.warn(
                    UnpinnedToxiproxyWarning(
                        f"{self.binary} reports version {self.version!r}, not the pinned "
                        f"{TOXIPROXY_VERSION}: its toxics may not behave as these tests expect; "
                        "`wsconn install toxiproxy` installs the pinned one"
                    ),
                    stacklevel=3,
                )
            return True
        tail = "\n".join(self.output().splitlines()[-_OUTPUT_TAIL_LINES:])
        code = self.child.process.poll()
        self.stop()
        if state is _Startup.PORT_TAKEN:
            return False
        if code is not None:
            reason = f"exited with code {code}"
        elif state is _Startup.STARTING:
            reason = f"did not answer within {self.startup_timeout:g}s"
        else:
            reason = "could not serve its API"
        raise StackError(
            f"toxiproxy-server ({self.binary}) {reason}; its last output:\n{tail or '(none)'}",
            hint=f"run `{self.binary} -host {self.host} -port {port}` by hand to see why",
        )

    def _wait_ready(self, probe: ToxiproxyClient) -> _Startup:
        state = _Startup.STARTING

        def settled() -> bool:
            nonlocal state
            state = self._startup_state(probe)
            return state is not _Startup.STARTING

        wait_until(settled, self.startup_timeout, interval=0.005)
        return state

    def _startup_state(self, probe: ToxiproxyClient) -> _Startup:
        if self.child.process.poll() is not None:
            return _Startup.FAILED
        # Toxiproxy logs a failed API listen and keeps running, so read its log.
        output = self.output()
        if "address already in use" in output:
            return _Startup.PORT_TAKEN
        if "Server finished with error" in output:
            return _Startup.FAILED
        try:
            self.version = probe.version()
        except ToxiproxyError:
            return _Startup.STARTING
        return _Startup.READY

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; always reaps. Safe to call twice."""
        child, self._child, self._client = self._child, None, None
        if child is not None:
            child.stop(self.stop_timeout)
            self._final_output = child.output()

    def __enter__(self) -> ToxiproxyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
