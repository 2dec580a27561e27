"""What a service answered a request it should refuse: the attempt and every text it sent back."""

from __future__ import annotations

import dataclasses

from websockets.exceptions import InvalidStatus

from pytest_wsconn import ConnectFailed, Connector
from pytest_wsconn.expect import ConnectionAttempt
from pytest_wsconn.timing import scaled


@dataclasses.dataclass(frozen=True)
class Answer:
    """How a request ended, and the texts the service sent: HTTP body, headers, close reason."""

    attempt: ConnectionAttempt
    texts: dict[str, str]


async def answer_to(connect: Connector, within: float, **kwargs: object) -> Answer:
    """Open a connection with ``kwargs``; one the service accepts gets ``within`` s to be closed.

    A connection still open then is closed by us, and recorded so: the service accepted it.
    """
    try:
        conn = await connect(**kwargs)
    except ConnectFailed as failed:
        texts: dict[str, str] = {}
        if isinstance(failed.exception, InvalidStatus):
            response = failed.exception.response
            texts["the HTTP body"] = bytes(response.body or b"").decode("utf-8", "replace")
            for name, value in response.headers.raw_items():
                texts[f"the {name} header"] = value
        return Answer(failed.attempt, texts)
    assert conn.attempt is not None
    if not await conn.wait_closed_within(scaled(within)):
        await conn.close()
    close = conn.attempt.close
    reason = {"the close reason": close.reason} if close is not None and close.received else {}
    return Answer(conn.attempt, reason)
