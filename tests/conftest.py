"""Shared fixtures for pytest-wsconn's own tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.stack.toxiproxy_server import ToxiproxyServer, find_toxiproxy_binary

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def toxiproxy_binary() -> Path:
    """The toxiproxy-server to test against; missing is a failure on CI, a skip elsewhere."""
    try:
        return find_toxiproxy_binary(None, REPO_ROOT, os.environ)
    except StackError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def toxiproxy_server(toxiproxy_binary: Path) -> Iterator[ToxiproxyServer]:
    """One toxiproxy-server for the whole session; tests clean up their own proxies."""
    with ToxiproxyServer(toxiproxy_binary) as server:
        yield server
