"""Run the ``wsconn`` command as a user does: in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from pytest_wsconn.timing import scaled

ROOT = Path(__file__).resolve().parents[2]


def wsconn(
    *argv: str, env: dict[str, str] | None = None, unset: Iterable[str] = (), cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_wsconn ARGV`` in ``cwd``; ``env`` added, ``unset`` removed, no stdin."""
    environ = {**os.environ, **(env or {})}
    for name in unset:
        environ.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "pytest_wsconn", *argv],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        check=False,
    )
