"""Run the built-in check battery in a child pytest, as a user would."""

from __future__ import annotations

import re

import pytest

from support import Service

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
