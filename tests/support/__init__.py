"""Helpers for pytest-wsconn's own tests: import them (``from support import …``); the
fixtures stay in tests/conftest.py."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKEN_SERVER = REPO_ROOT / "tests" / "support" / "brokenserver.py"
BROKEN_TOKEN = "broken-server-token"  # the one token tests/support/brokenserver.py accepts
STARLETTE_APP = REPO_ROOT / "tests" / "support" / "starletteapp.py"
STARLETTE_TOKEN = "starlette-token"  # the one /ws token tests/support/starletteapp.py accepts
FAKE_TOXIPROXY = REPO_ROOT / "tests" / "support" / "fake_toxiproxy.py"
TOXIPROXY_BIN = REPO_ROOT / "toxiproxy" / "bin" / "toxiproxy-server"  # what bootstrap installs
USER_INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""
"""The ini file of a user's project in a pytester run."""


def unavailable(reason: str) -> NoReturn:
    """A component a test needs is missing: a failure on CI (CI=true), a skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)", pytrace=False)
    pytest.skip(reason)


@dataclasses.dataclass(frozen=True)
class Service:
    """A running WebSocket service a test treats as a user's own, and a token it accepts."""

    url: str
    token: str
