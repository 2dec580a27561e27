"""Run the built-in check battery in a child pytest, as a user would."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest

from pytest_wsconn.stack.reference_process import ReferenceProcess
from pytest_wsconn.timing import scaled
from support import STARLETTE_APP, STARLETTE_TOKEN, Service

SECURITY = ("-m", "wsconn_security", "-rfs")
ORIGIN = "--wsconn-origin=http://localhost"  # what tests/support/brokenserver.py allows


def run_battery(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "wsconn", "--pyargs", "pytest_wsconn.checks", "-p", "no:cacheprovider", *args
    )


def run_against(pytester: pytest.Pytester, service: Service, *args: str) -> pytest.RunResult:
    return run_battery(
        pytester,
        "--wsconn-stack=external",
        f"--wsconn-url={service.url}",
        f"--wsconn-token={service.token}",
        *args,
    )


def failed_ids(result: pytest.RunResult) -> set[str]:
    """``test_name[id]`` of every FAILED line in the short summary."""
    return set(re.findall(r"^FAILED \S+::(\S+)", result.stdout.str(), re.M))


def health_of(service: Service) -> str:
    """``--wsconn-health-url`` of one of our servers: ``/health`` beside its ``/ws``."""
    base = service.url.replace("ws://", "http://").removesuffix("/ws")
    return f"--wsconn-health-url={base}/health"


@contextlib.contextmanager
def starlette(*args: str) -> Iterator[Service]:
    """tests/support/starletteapp.py with ``args`` (``[MODE] [limit=N]``), served by uvicorn
    until the block ends."""
    with ReferenceProcess((str(STARLETTE_APP), *args)) as server:
        yield Service(server.wait_ready(scaled(15)), STARLETTE_TOKEN)
