import pytest

from pytest_wsconn import (
    ConnectFailed,
    assert_closes_with,
    assert_connects,
    assert_rejected,
    classify,
)

pytestmark = pytest.mark.asyncio


async def test_echo_survives_latency(wsconn_connect, wsconn_proxy):
    with wsconn_proxy.latency(200, jitter=20):
        conn = await assert_connects(wsconn_connect)
        assert await conn.echo("hello", timeout=5) == "hello"


async def test_expired_token_is_refused(wsconn_connect, wsconn_token):
    await assert_rejected(wsconn_connect, token=wsconn_token("expired"), status=401)


async def test_server_says_why_it_closes(wsconn_connect):
    conn = await assert_connects(wsconn_connect)
    await conn.send('{"control": "close", "code": 4001, "reason": "kicked"}')
    await assert_closes_with(conn, 4001, "kicked", within=2)


@pytest.mark.wsconn_fault("reset_peer")
async def test_a_reset_handshake_is_a_network_failure(wsconn_connect):
    with pytest.raises(ConnectFailed) as failed:
        await wsconn_connect()
    assert classify(failed.value.attempt).category == "network"
