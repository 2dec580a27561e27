"""Child processes that never outlive pytest: spawned in their own session, stopped in order.

A child gets its own session (a Ctrl-C in the terminal reaches pytest, which stops it in order)
and, on Linux, PR_SET_PDEATHSIG so even a SIGKILLed pytest leaves no orphan.

A ``ChildProcess`` is also watched: its output goes to a log file, and if it ends before we
stop it, ``exit()`` says how (code or signal) with its last log lines, secrets redacted, which
``describe_exit`` turns into the sentence a failure report shows.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO

from pytest_wsconn.redact import redact_logs, redact_text

_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when this thread's process dies.

    The kernel ties PR_SET_PDEATHSIG to the *thread* that forked, so start children from a
    long-lived thread (pytest's main thread), not from a short-lived worker thread.
    """
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded before fork, not in the child
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    stdout: IO[bytes] | int,
    stderr: IO[bytes] | int,
    env: Mapping[str, str],
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a child that dies with us; raises OSError if it cannot be run."""
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=die_with_parent(),  # noqa: PLW1509 - only calls prctl, see die_with_parent
        env=dict(env),
    )


def stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; always reaps."""
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
    finally:
        process.wait()


def stop_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """``stop`` for a child that ``spawn`` made a session leader, and everything it started.

    SIGTERM to its process group, SIGKILL to whatever of the group is left once the child has
    exited or ``timeout`` seconds passed; always reaps the child. (``docker compose`` runs its
    plugin as a grandchild, which a signal to the child alone leaves running.)
    """
    try:
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
        _signal_group(process.pid, signal.SIGKILL)
    finally:
        process.wait()


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(group, signum)


# Watched children ------------------------------------------------------------------------------

LOG_TAIL_LINES = 10
"""How many of a dead child's last log lines a report shows."""
_LOG_TAIL_BYTES = 16 * 1024  # read from the end of the log: enough for LOG_TAIL_LINES lines
_LOG_LINE_CHARS = 300  # a longer line is cut: a report is not a log viewer


@dataclasses.dataclass(frozen=True)
class ChildExit:
    """How a child ended that nobody asked to stop."""

    name: str
    pid: int
    returncode: int
    """As ``Popen`` has it: ``-9`` for killed by SIGKILL."""
    log_tail: tuple[str, ...]
    """Its last log lines, secrets redacted."""


def exit_status(returncode: int) -> str:
    """``"was killed by SIGKILL"`` for ``-9``, ``"exited with code 3"`` for ``3``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


def exit_headline(ended: ChildExit) -> str:
    """One line: which child, its pid and how it ended."""
    return f"{ended.name} (pid {ended.pid}) {exit_status(ended.returncode)} mid-session"


def describe_exit(ended: ChildExit) -> str:
    """The headline, what it means for the tests, and the child's last log lines."""
    said = "".join(f"\n    {line}" for line in ended.log_tail)
    last = f"Its last log lines:{said}" if said else "It logged nothing."
    return f"{exit_headline(ended)}: every test after this that needs it fails. {last}"


def log_tail(
    text: str, secrets: Iterable[str] = (), lines: int = LOG_TAIL_LINES
) -> tuple[str, ...]:
    """The last ``lines`` non-blank lines of ``text``, each cut short and secrets redacted."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    return tuple(redact_text(redact_logs(line), secrets)[:_LOG_LINE_CHARS] for line in kept)


class ChildProcess:
    """A child that dies with us (``spawn``), logging to a file, watched for an unasked end.

    ``stdout_pipe=True`` keeps stdout a pipe for the caller (a ready line); stderr, and stdout
    otherwise, go to the log. ``secrets`` are redacted from the log lines ``exit()`` returns.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        stdout_pipe: bool = False,
        secrets: Iterable[str] = (),
    ) -> None:
        self.name = name
        self._secrets = tuple(secrets)
        self._log: IO[bytes] | None = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        try:
            self.process = spawn(
                argv,
                stdout=subprocess.PIPE if stdout_pipe else self._log,
                stderr=self._log,
                env=env,
            )
        except BaseException:
            self._log.close()
            raise
        self._asked_to_stop = False
        self._ended: ChildExit | None = None
        self._final_output = ""

    def __repr__(self) -> str:
        return f"ChildProcess({self.name!r}, pid {self.pid})"

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self, limit: int | None = None) -> str:
        """What it logged so far, or its last ``limit`` bytes (kept after ``stop()``)."""
        if self._log is None:
            return self._final_output[-limit:] if limit else self._final_output
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        start = max(size - limit, 0) if limit else 0
        # pread leaves the offset the child writes at untouched.
        return os.pread(fd, size - start, start).decode("utf-8", "replace")

    def exit(self) -> ChildExit | None:
        """How it ended if it ended before ``stop()`` was called; None while it runs, or when
        it was stopped on purpose."""
        if self._ended is None and not self._asked_to_stop:
            returncode = self.process.poll()
            if returncode is not None:
                tail = log_tail(self.output(_LOG_TAIL_BYTES), self._secrets)
                self._ended = ChildExit(self.name, self.pid, returncode, tail)
        return self._ended

    def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; always reaps and closes the log.

        An end before this call is kept: ``exit()`` still reports it afterwards.
        """
        try:
            self.exit()
            self._asked_to_stop = True
            stop(self.process, timeout)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            if self._log is not None:
                self._final_output = self.output()
                self._log.close()
                self._log = None
