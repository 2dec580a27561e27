"""Where a run came from in git: the commit and branch checked out (an I/O shell, ``git``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_TIMEOUT = 5.0


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],  # noqa: S607 - git from PATH, as a user runs it
            cwd=root,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def git_position(root: Path) -> tuple[str | None, str | None]:
    """The commit and branch checked out at ``root``; None outside a repository."""
    return _git(root, "rev-parse", "HEAD"), _git(root, "rev-parse", "--abbrev-ref", "HEAD")
