"""Fixtures of the security checks: where raw frames go, and the health endpoint to check."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from pytest_wsconn import Proxy, Tokens
from pytest_wsconn.checks.survival import health_problem, health_url
from pytest_wsconn.checks.test_security import allowed_origin
from pytest_wsconn.client import apply_auth
from pytest_wsconn.config import Settings
from pytest_wsconn.stack import Stack


@pytest_asyncio.fixture(loop_scope="function")
async def health(wsconn_settings: Settings, wsconn_stack: Stack) -> str | None:
    """The health endpoint checked after each abuse (``--wsconn-health-url``), or None.

    It must answer 2xx before the check's abuse: a failure after it proves nothing otherwise.
    """
    url = health_url(wsconn_settings, wsconn_stack)
    problem = await health_problem(url) if url else None
    if problem is not None:
        pytest.fail(
            f"before this check's abuse {problem}: nothing after it could be told from that "
            "(an earlier check may have left the service unhealthy; check --wsconn-health-url)",
            pytrace=False,
        )
    return url


@pytest.fixture
def raw_target(
    wsconn_proxy: Proxy, wsconn_stack: Stack, wsconn_settings: Settings, wsconn_token: Tokens
) -> dict[str, Any]:
    """``send_raw`` keywords: the service's URL through the proxy, with the valid token."""
    token = wsconn_token.get("valid")
    url, headers, protocols = apply_auth(
        wsconn_stack.url, wsconn_settings.auth, token.reveal() if token else None, ()
    )
    return {
        "url": url,
        "dial": wsconn_proxy.listen_address,
        "origin": allowed_origin(wsconn_settings, wsconn_stack),
        "headers": headers,
        "subprotocols": protocols,
    }
