"""Control requests: a refusal proves something only when the valid request is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_wsconn import ConnectFailed, Connector


async def accepts_the_valid_request(wsconn_connect: Connector, **kwargs: Any) -> None:
    """Fail the check when the control request (valid token, session Origin) is refused too.

    A wrong path or a service that refuses everything would otherwise pass every refusal check.
    ``kwargs`` go to ``wsconn_connect`` (an Origin known to be allowed, say).
    """
    __tracebackhide__ = True
    try:
        conn = await wsconn_connect(**kwargs)
    except ConnectFailed as failed:
        pytest.fail(
            f"a refusal proves nothing here: the valid request is refused too — {failed.message}",
            pytrace=False,
        )
    await conn.close()
