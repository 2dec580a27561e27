"""The reference server as a child process: what the local stack puts behind Toxiproxy."""

from __future__ import annotations

import dataclasses
import os
import secrets
import select
import sys
import time
from types import TracebackType

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.reference.server import READY_PREFIX
from pytest_wsconn.reference.tokens import SECRET_ENV
from pytest_wsconn.stack.processes import ChildProcess
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
        self.child = ChildProcess(
            "the reference server",
            [sys.executable, *command],
            env={**os.environ, SECRET_ENV: self.secret.decode()},
            stdout_pipe=True,
            secrets=[self.secret.decode()],
        )
        """The server process, watched: ``child.exit()`` says if it ended on its own."""

    @property
    def pid(self) -> int:
        return self.child.pid

    def wait_ready(self, timeout: float) -> str:
        """Return the server's WebSocket URL once it prints its ready line."""
        stdout = self.child.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([stdout], [], [], max(remaining, 0))
            chunk = stdout.read1(4096) if readable else b""  # type: ignore[attr-defined]
            if not chunk:
                self.stop()
                output = self.child.output()[-2000:]
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
            self.child.stop(timeout)

    def __enter__(self) -> ReferenceProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
