"""Reconnect checks: a dropped connection comes back; a rejected token is not retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_wsconn import (
    BackoffPolicy,
    Connector,
    Proxy,
    ReconnectingClient,
    State,
    Tokens,
    assert_gives_up,
    assert_reconnects,
)
from pytest_wsconn.checks.controls import accepts_the_valid_request
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.asyncio

QUICK = BackoffPolicy(initial=0.05, max_delay=0.5, max_attempts=20)
ClientFactory = Callable[..., ReconnectingClient]


async def test_reconnects_after_a_drop(
    wsconn_reconnecting_client: ClientFactory, wsconn_proxy: Proxy
) -> None:
    """A client whose connection drops (as in a deploy or a network blip) is back within 5 s."""
    client = wsconn_reconnecting_client(policy=QUICK)
    await assert_reconnects(client, times=0, within=5)
    with wsconn_proxy.down():
        assert await client.wait_for(State.RECONNECTING, timeout=scaled(5)), client.describe()
    await assert_reconnects(client, within=5)


@pytest.mark.parametrize("kind", ["missing", "forged"])
async def test_rejected_token_is_not_retried(
    wsconn_reconnecting_client: ClientFactory,
    wsconn_connect: Connector,
    wsconn_token: Tokens,
    kind: str,
) -> None:
    """A token the service rejects (401/403 or 1008) makes the client stop, not hammer."""
    wsconn_token("valid")  # a service that needs no token has nothing to check here
    await accepts_the_valid_request(wsconn_connect)
    token = None if kind == "missing" else wsconn_token("forged")
    client = wsconn_reconnecting_client(policy=QUICK, token=token)
    await client.wait_for(State.OPEN, State.FAILED, timeout=scaled(2))
    assert client.opens == 0, f"a {kind} token was accepted\n{client.describe()}"
    await assert_gives_up(client, within=2)
    assert client.error is not None
    assert client.error.category in {"auth", "policy"}, client.describe()
