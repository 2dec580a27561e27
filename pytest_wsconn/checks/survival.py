"""After an abuse the service must still serve: a fresh connection echoes, and its health is 2xx.

The health endpoint is ``--wsconn-health-url`` when given, the reference server's ``/health`` on
the local stack, else none (only the fresh connection is checked).
"""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from pytest_wsconn import ConnectFailed, Connector
from pytest_wsconn.config import Settings
from pytest_wsconn.health import get_health
from pytest_wsconn.redact import redact_url
from pytest_wsconn.security import PROTOCOL_ABUSE
from pytest_wsconn.stack import Stack
from pytest_wsconn.timing import scaled

ANSWER_WITHIN = 5.0  # seconds for a fresh connection's echo, or the health endpoint's answer


def health_url(settings: Settings, stack: Stack) -> str | None:
    """The health endpoint to check after an abuse, or None when the service has none known."""
    if settings.health_url:
        return settings.health_url
    return f"{stack.http_url.rstrip('/')}/health" if stack.kind == "local" else None


async def health_problem(url: str) -> str | None:
    """What is wrong with the health endpoint at ``url``, or None when it answers 2xx."""
    shown = redact_url(url)
    try:
        reply = await get_health(url, scaled(ANSWER_WITHIN))
    except TimeoutError:
        return f"the health endpoint {shown} did not answer within {scaled(ANSWER_WITHIN):g} s"
    except (OSError, ValueError) as exc:
        return f"the health endpoint {shown} failed: {exc}"
    if not 200 <= reply.status < 300:
        return f"the health endpoint {shown} answered HTTP {reply.status}"
    return None


async def serving_problem(connect: Connector, health: str | None) -> str | None:
    """Why the service no longer serves (a fresh connection, ``health``), or None when it does."""
    try:
        conn = await connect()
        await conn.echo(timeout=scaled(ANSWER_WITHIN))
    except (ConnectFailed, TimeoutError, ConnectionClosed) as exc:
        return f"the service no longer serves: a fresh connection {exc}"
    await conn.close()
    problem = await health_problem(health) if health else None
    return f"the service is not healthy: {problem}" if problem else None


async def assert_still_serves(connect: Connector, after: str, health: str | None) -> None:
    """Fail unless a fresh connection opens and echoes, and ``health`` (if any) answers 2xx."""
    __tracebackhide__ = True
    problem = await serving_problem(connect, health)
    if problem is not None:
        pytest.fail(f"after {after} {problem}\n{PROTOCOL_ABUSE.explain()}", pytrace=False)
