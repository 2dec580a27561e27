"""The reference server as a child process: what the local stack puts behind Toxiproxy."""

from __future__ import annotations

import dataclasses
import os
import secrets
import select
import subprocess
import sys
import tempfile
import time
from types import TracebackType

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.reference.server import READY_PREFIX, SECRET_ENV
from pytest_wsconn.stack.processes import spawn, stop
from pytest_wsconn.timing import scaled

REFERENCE_COMMAND = ("-m", "pytest_wsconn.reference", "--host", "127.0.0.1", "--port", "0")


@dataclasses.dataclass(frozen=True)
class ReferenceOptions:
    """How the local stack runs the reference server where its defaults do not fit."""

    max_connections: int | None = None  # None: the server's default limit

    @property
    def command(self) -> tuple[str, ...]:
        """The Python arguments that start the reference server with these options."""
        limit = self.max_connections
        return (*REFERENCE_COMMAND, *(("--max-connections", str(limit)) if limit else ()))


class ReferenceProcess:
    """A server child process on a free loopback port that announces itself with READY_PREFIX.

    By default the reference server; ``command`` (Python arguments) runs another server that
    prints the same ready line, such as the deliberately broken ones in the test suite.
    """

    def __init__(self, command: tuple[str, ...] = REFERENCE_COMMAND) -> None:
        self.secret = secrets.token_hex(32).encode()  # the server keys its HMAC with these bytes
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._process = spawn(
            [sys.executable, *command],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, SECRET_ENV: self.secret.decode()},
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def wait_ready(self, timeout: float) -> str:
        """Return the server's WebSocket URL once it prints its ready line."""
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self._process.stdout], [], [], max(remaining, 0))
            chunk = self._process.stdout.read1(4096) if readable else b""  # type: ignore[attr-defined]
            if not chunk:
                self._log.seek(0)
                output = self._log.read().decode(errors="replace")[-2000:]
                self.stop()
                raise StackError(
                    f"the reference server did not start within {timeout:g} s; "
                    f"its output:\n{output}",
                    hint="run `wsconn serve --port 0` by hand to see why",
                )
            line += chunk
        text = line.decode().strip()
        if not text.startswith(READY_PREFIX):
            self.stop()
            raise StackError(f"the reference server printed {text!r} instead of its ready line")
        return text.removeprefix(READY_PREFIX)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (the server closes every client with 1001), then SIGKILL; always reaps."""
        try:
            timeout = scaled(timeout)
        finally:  # a bad WSCONN_TIMEOUT_FACTOR must not leave the server running
            stop(self._process, timeout)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()

    def __enter__(self) -> ReferenceProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
