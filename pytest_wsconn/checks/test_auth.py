"""Auth checks: a missing or forged token and a foreign Origin are all turned away.

A refusal proves something only when the same request with the valid token and the session's
Origin is accepted: a wrong path or a dead service refuses everything. Each check opens that
control connection first and fails, saying so, when it is refused too.
"""

from __future__ import annotations

import pytest

from pytest_wsconn import Connector, Tokens, assert_rejected, classify
from pytest_wsconn.checks.controls import accepts_the_valid_request

pytestmark = [pytest.mark.asyncio, pytest.mark.wsconn_security]

FOREIGN_ORIGIN = "https://attacker.invalid"
REJECTIONS = {"auth", "policy"}  # HTTP 401/403 before the upgrade, or close 1008 after it
CLOSE_WITHIN = 2.0  # seconds a service that accepts first gets to close with 1008


@pytest.mark.parametrize("kind", ["missing", "forged"])
async def test_bad_token_rejected(
    wsconn_connect: Connector, wsconn_token: Tokens, kind: str
) -> None:
    """A connection without a token, or with a forged one, is rejected (401/403 or 1008)."""
    wsconn_token("valid")  # a service that needs no token has nothing to check here
    await accepts_the_valid_request(wsconn_connect)
    token = None if kind == "missing" else wsconn_token("forged")
    attempt = await assert_rejected(wsconn_connect, token=token, within=CLOSE_WITHIN)
    diagnosis = classify(attempt)
    assert diagnosis.category in REJECTIONS, (
        f"a {kind} token was turned away as {diagnosis}; expected HTTP 401/403 or close 1008"
    )


async def test_foreign_origin_rejected(wsconn_connect: Connector) -> None:
    """A page on a foreign Origin cannot open a connection (Cross-Site WebSocket Hijacking)."""
    await accepts_the_valid_request(wsconn_connect)
    attempt = await assert_rejected(wsconn_connect, origin=FOREIGN_ORIGIN, within=CLOSE_WITHIN)
    diagnosis = classify(attempt)
    assert diagnosis.category in REJECTIONS, (
        f"Origin {FOREIGN_ORIGIN} was turned away as {diagnosis}; expected HTTP 403 or close 1008"
    )
