"""Child processes that never outlive pytest: spawned in their own session, stopped in order.

A child gets its own session (a Ctrl-C in the terminal reaches pytest, which stops it in order)
and, on Linux, PR_SET_PDEATHSIG so even a SIGKILLed pytest leaves no orphan.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO

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
