"""Hooks a user's conftest.py can implement (pytest-wsconn)."""

from __future__ import annotations

import pytest

from pytest_wsconn.closecodes import AppCode


@pytest.hookspec(firstresult=True)
def pytest_wsconn_token(kind: str, config: pytest.Config) -> str | None:
    """Return a token of ``kind`` for your service, or None to let pytest-wsconn decide.

    ``kind`` is ``"valid"``, ``"expired"``, ``"forged"`` or ``"not-yet-valid"`` (its ``nbf``
    in the future; only this hook supplies one). The reference server's tokens are
    made by pytest-wsconn; for your own service, implement this hook to supply expired tokens
    (forged ones are derived from the valid token when the hook returns None).
    """


@pytest.hookspec(firstresult=True)
def pytest_wsconn_close_code(code: int, config: pytest.Config) -> AppCode | None:
    """Return what your application means by close ``code`` (4000-4999), or None.

    Wins over the ``wsconn_close_codes`` ini key; decides the message and whether reconnecting
    clients retry after it.
    """
