import pytest

from pytest_wsconn import ConnectFailed, assert_closes_with, assert_connects, classify

pytestmark = pytest.mark.asyncio


async def test_restart_says_going_away(wsconn_connect, wsconn_stack):
    conn = await assert_connects(wsconn_connect)
    async with wsconn_stack.restart("backend"):  # the block runs once it is healthy again
        await assert_closes_with(conn, 1001)
        fresh = await assert_connects(wsconn_connect)
        assert await fresh.echo("back") == "back"


async def test_killed_backend_is_a_gateway_error(wsconn_connect, wsconn_stack):
    conn = await assert_connects(wsconn_connect)
    async with wsconn_stack.kill("backend"):
        assert await conn.wait_closed_within(5)
        assert classify(conn.attempt).category == "network"  # 1006: no close frame came
        with pytest.raises(ConnectFailed) as failed:
            await wsconn_connect()
        assert failed.value.attempt.http_status in (502, 504)  # from nginx
    await assert_connects(wsconn_connect)  # started again when the block ends


async def test_frozen_backend_is_caught_by_keepalive(wsconn_connect, wsconn_stack):
    conn = await assert_connects(
        wsconn_connect, ping_interval=0.5, ping_timeout=0.5, close_timeout=0.5
    )
    async with wsconn_stack.pause("backend"):
        assert await conn.wait_closed_within(5)
        assert classify(conn.attempt).category == "timeout"


async def test_partitioned_backend_gets_no_traffic(wsconn_connect, wsconn_stack):
    direct = wsconn_stack.proxy_url_for("backend")  # client -> toxiproxy -> backend
    async with wsconn_stack.partition("backend"):
        with pytest.raises(ConnectFailed):
            await wsconn_connect(direct, open_timeout=2)


@pytest.mark.wsconn_container_fault("pause", service="backend")
async def test_the_whole_test_against_a_frozen_backend(wsconn_connect):
    with pytest.raises(ConnectFailed) as failed:
        await wsconn_connect(open_timeout=1)
    assert classify(failed.value.attempt).category == "timeout"
