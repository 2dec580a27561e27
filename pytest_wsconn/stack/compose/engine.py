"""The engine: the Compose CLI (found, and run with a deadline) and the Docker SDK client.

Every error says what to do: Docker not installed, the engine not running, the socket refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.stack import processes
from pytest_wsconn.stack.compose.spec import COMPOSE_CLI_ENV, DOCKER_HINT, ComposeCli, tail
from pytest_wsconn.timing import scaled

if TYPE_CHECKING:
    from docker import DockerClient

STOP_TIMEOUT = 10.0
"""Seconds a Compose command has between SIGTERM and SIGKILL."""


@dataclasses.dataclass(frozen=True)
class Output:
    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return (self.stdout + self.stderr).strip()


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float,
    shield: bool = False,
) -> Output:
    """Run ``argv`` in its own session (a Ctrl-C in the terminal does not reach it).

    Past ``timeout``, or on Ctrl-C, the child and all it started are stopped
    (``processes.stop_group``) and the error or KeyboardInterrupt raised; with ``shield`` a
    Ctrl-C leaves it to finish within ``timeout`` first (a ``down`` must complete).
    """
    try:
        process = processes.spawn(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=os.environ if env is None else env,
        )
    except OSError as exc:
        raise StackError(f"could not run {argv[0]}: {exc}", hint=DOCKER_HINT) from exc
    deadline = time.monotonic() + timeout
    interrupted: KeyboardInterrupt | None = None
    with process:  # its pipes closed on every way out
        while True:
            try:
                stdout, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 0.01))
                break
            except subprocess.TimeoutExpired:
                processes.stop_group(process, STOP_TIMEOUT)
                raise StackError(
                    f"`{shlex.join(argv)}` did not finish within {timeout:g} s",
                    hint="a slow machine? set WSCONN_TIMEOUT_FACTOR=2",
                ) from None
            except KeyboardInterrupt as exc:
                if not shield:
                    processes.stop_group(process, STOP_TIMEOUT)
                    raise
                interrupted = exc  # keep waiting: this command cleans up
    if interrupted is not None:
        raise interrupted
    return Output(
        process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")
    )


def find_compose_cli(environ: Mapping[str, str] | None = None) -> ComposeCli:
    """``docker compose`` (v2), else ``docker-compose``; ``WSCONN_COMPOSE_CLI`` overrides."""
    environ = os.environ if environ is None else environ
    path = environ.get("PATH", os.defpath)
    chosen = environ.get(COMPOSE_CLI_ENV, "").strip()
    candidates = (
        [tuple(shlex.split(chosen))] if chosen else [("docker", "compose"), ("docker-compose",)]
    )
    if not chosen and not any(shutil.which(c[0], path=path) for c in candidates):
        raise StackError(
            "Docker is not installed: neither `docker` nor `docker-compose` is on PATH",
            hint=DOCKER_HINT,
        )
    tried = []
    for argv in candidates:
        executable = shutil.which(argv[0], path=path)
        if executable is None:
            tried.append(f"`{argv[0]}` is not on PATH")
            continue
        result = run([executable, *argv[1:], "version", "--short"], env=environ, timeout=scaled(20))
        version = result.stdout.strip().removeprefix("v")
        if result.returncode == 0 and re.match(r"\d+\.\d+", version):
            return ComposeCli((executable, *argv[1:]), version)
        said = tail(result.text, 1) or f"exit code {result.returncode}"
        tried.append(f"`{' '.join(argv)} version` said {said!r}")
    raise StackError(
        "no Compose CLI works: " + "; ".join(tried),
        hint="install Compose v2 (docker-compose-plugin) or set WSCONN_COMPOSE_CLI to the "
        f"command to run; {DOCKER_HINT}",
    )


def engine_error(exc: BaseException) -> StackError:
    """An SDK error as the one sentence a user can act on."""
    text = str(exc)
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    chain = [exc]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)  # type: ignore[arg-type]
        if len(chain) > 10:
            break
    if any(isinstance(e, PermissionError) for e in chain) or "Permission denied" in text:
        return StackError(
            f"permission denied on the Docker socket ({host})",
            hint='add yourself to the docker group (sudo usermod -aG docker "$USER", then log '
            "in again), use rootless Docker, or run as root",
        )
    not_running = ("No such file or directory", "Connection refused", "FileNotFoundError")
    if any(isinstance(e, FileNotFoundError | ConnectionRefusedError) for e in chain) or any(
        marker in text for marker in not_running
    ):
        return StackError(
            f"the Docker engine is not running: nothing answers at {host}",
            hint="start it (sudo systemctl start docker; without systemd: "
            "dockerd --iptables=false --storage-driver=vfs &), or scripts/docker-up",
        )
    return StackError(f"the Docker engine at {host} did not answer: {text}", hint=DOCKER_HINT)


def docker_client() -> DockerClient:
    """A Docker SDK client that has answered a ping."""
    try:
        import docker

        if not hasattr(docker, "from_env"):  # a folder named docker/ on sys.path, not the SDK
            raise ImportError("docker is not the Docker SDK")  # noqa: TRY301
    except ImportError as exc:
        raise StackError(
            "the compose stack needs the Docker SDK for Python",
            hint="pip install 'pytest-wsconn[compose]' (or: pip install docker)",
        ) from exc
    _probe_socket(os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=int(scaled(30)))
    except docker.errors.DockerException as exc:
        raise engine_error(exc) from exc
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        client.close()
        raise engine_error(exc) from exc
    return client


def _probe_socket(host: str) -> None:
    """Connect to a ``unix://`` engine socket ourselves first: clear errors, no leaked socket.

    (The SDK leaves its socket open when the connect fails.)
    """
    if not host.startswith("unix://"):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(scaled(5))
        try:
            probe.connect(host.removeprefix("unix://"))
        except OSError as exc:
            raise engine_error(exc) from exc
