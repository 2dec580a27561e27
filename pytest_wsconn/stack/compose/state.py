"""The folder a run's processes share, ``<temp>/pytest-wsconn-compose/<project>/``: the override
file, a lock, and ``state.json`` (who owns the run, who uses the stack, why ``up`` failed).

It goes with its stack: the last process out removes it, and so does a failed or interrupted
``up``; ``reap_state`` removes the folders of runs whose owner died without a word (SIGKILL).
A kept stack's folder stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_wsconn.stack.compose.reaper import token_alive

STATE_BASE = "pytest-wsconn-compose"


def default_base() -> Path:
    """Where the state folders live unless told: a folder in the temp directory."""
    return Path(tempfile.gettempdir()) / STATE_BASE


class SharedState:
    """``state.json`` under an exclusive ``flock``, shared by the processes of one run."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock_path = directory / "lock"
        self.path = directory / "state.json"

    def _acquire(self, *, wait: bool) -> int | None:
        """The lock, held (its fd); None if ``wait`` is false and it is taken or gone."""
        while True:
            if wait:
                self.directory.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.lock_path, os.O_RDWR | (os.O_CREAT if wait else 0), 0o600)
            except FileNotFoundError:
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except (BlockingIOError, FileNotFoundError):
                same = False
            if same:
                return fd
            os.close(fd)  # taken, or the folder was removed meanwhile: start over (or give up)
            if not wait:
                return None

    def read(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            state = {}
        if not isinstance(state, dict):
            state = {}
        state.setdefault("users", [])
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` now (atomically), while the block that holds the lock goes on."""
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The state under the lock; written back when the block ends, even by an exception.

        ``state["removed"] = True`` removes the folder instead: nothing of the run is left.
        """
        fd = self._acquire(wait=True)
        assert fd is not None
        try:
            state = self.read()
            try:
                yield state
            finally:  # also after an exception: a failed `up` is recorded for the others
                if state.get("removed"):
                    shutil.rmtree(self.directory, ignore_errors=True)
                else:
                    self.save(state)
        finally:
            os.close(fd)  # releases the lock

    def abandoned(self, host: str | None = None) -> bool:
        """Whether the run that wrote the state is over: its owner gone, none of its users
        alive. A kept stack records no owner: never."""
        state = self.read()
        owner = state.get("owner")
        if not isinstance(owner, str):
            return False
        if any(isinstance(u, str) and token_alive(u, host) for u in state["users"]):
            return False
        return not token_alive(owner, host)


def reap_state(base: Path, *, exclude: str | None = None, host: str | None = None) -> list[str]:
    """Remove the state folders under ``base`` of runs whose owner died; return their names.

    A folder in use (its lock held), of a live run or of a kept stack is left alone.
    """
    try:
        folders = sorted(path for path in base.iterdir() if path.is_dir())
    except OSError:
        return []
    removed = []
    for folder in folders:
        if folder.name == exclude:
            continue
        shared = SharedState(folder)
        fd = shared._acquire(wait=False)
        if fd is None:
            continue
        try:
            if shared.abandoned(host):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        finally:
            os.close(fd)
    return removed
