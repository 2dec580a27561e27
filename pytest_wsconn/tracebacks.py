"""Failure tracebacks that end at our verdict, not inside websockets or asyncio.

A close 1003 raised deep in ``websockets`` reads as sixty lines of its internals before the one
line that matters; the connection timeline in the report already says what happened.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

LIBRARY_PACKAGES = frozenset({"websockets", "asyncio"})


def is_library_file(filename: str) -> bool:
    """True for a file inside websockets or asyncio (either may have subpackages)."""
    return not LIBRARY_PACKAGES.isdisjoint(Path(filename).parts[-3:-1])


def without_library_frames(
    excinfo: pytest.ExceptionInfo[BaseException],
) -> pytest.ExceptionInfo[BaseException] | None:
    """``excinfo`` with the frames of websockets and asyncio left out; None if it has none.

    A new chain of traceback objects, because pytest re-walks the raw chain when it cuts a
    traceback at the test function (filtering pytest's ``Traceback`` would not survive that).
    """
    kept: list[types.TracebackType] = []
    dropped = False
    tb: types.TracebackType | None = excinfo.tb
    while tb is not None:
        if is_library_file(tb.tb_frame.f_code.co_filename):
            dropped = True
        else:
            kept.append(tb)
        tb = tb.tb_next
    if not dropped or not kept:
        return None
    chain = None
    for entry in reversed(kept):
        chain = types.TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    assert chain is not None  # kept is not empty
    return pytest.ExceptionInfo.from_exc_info((excinfo.type, excinfo.value, chain))
