"""``wsconn demo``: the check battery against the embedded stack (reference server, Toxiproxy)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    """Replace this process with pytest running the battery; ``argv`` goes to pytest.

    pytest must import pytest_wsconn itself to rewrite its asserts, hence a fresh process.
    """
    pytest_argv = ["-m", "pytest", "-p", "wsconn", "--pyargs", "pytest_wsconn.checks", "-v"]
    pytest_argv += ["-o", "asyncio_default_fixture_loop_scope=function"]
    os.execv(  # noqa: S606
        sys.executable, [sys.executable, *pytest_argv, "-p", "no:cacheprovider", *argv]
    )
