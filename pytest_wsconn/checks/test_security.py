"""Security checks: near-miss credentials and Origins are refused, and a refusal echoes nothing.

Run only them with ``-m wsconn_security``. Each variant is a test id of its own; a failure says
what got through, what the service did, why it matters (CWE, OWASP) and the fix. As in the auth
checks, the valid request is sent first: a service that refuses everything proves nothing.
"""

from __future__ import annotations

import pytest

from pytest_wsconn import Connector, Tokens
from pytest_wsconn.checks.answers import answer_to
from pytest_wsconn.checks.controls import accepts_the_valid_request
from pytest_wsconn.config import Settings
from pytest_wsconn.reference.server import DEFAULT_ALLOWED_ORIGINS
from pytest_wsconn.security import (
    AUTH_BYPASS,
    CREDENTIAL_IDS,
    HOOK_KINDS,
    ORIGIN_BYPASS,
    ORIGIN_IDS,
    REFLECTION,
    STALE_TOKENS,
    Weakness,
    bypass_message,
    credential_variant,
    got_through,
    origin_variant,
    reflected_in,
)
from pytest_wsconn.stack import Stack

pytestmark = [pytest.mark.asyncio, pytest.mark.wsconn_security]

CLOSE_WITHIN = 2.0  # seconds a service that accepts first gets to close with 1008


async def _assert_refused(
    connect: Connector, what: str, weakness: Weakness, **kwargs: object
) -> None:
    """Fail, saying what got through and why it matters, unless the service refuses."""
    __tracebackhide__ = True
    answer = await answer_to(connect, CLOSE_WITHIN, **kwargs)
    verdict = got_through(answer.attempt)
    if verdict is not None:
        pytest.fail(bypass_message(what, verdict, weakness), pytrace=False)


@pytest.mark.parametrize("variant", CREDENTIAL_IDS)
async def test_credential_variant_refused(
    wsconn_connect: Connector, wsconn_token: Tokens, variant: str
) -> None:
    """A token near the valid one, or the valid one where it is not read, is refused."""
    valid = wsconn_token("valid").reveal()
    chosen = credential_variant(variant)
    sent = chosen.make(valid)
    if sent is None:
        pytest.skip(f"not applicable to this token: {chosen.what}")
    await accepts_the_valid_request(wsconn_connect)
    kwargs: dict[str, object] = {"token": sent}
    if chosen.place is not None:
        kwargs["auth"] = chosen.place
    await _assert_refused(wsconn_connect, chosen.what, AUTH_BYPASS, **kwargs)


@pytest.mark.parametrize("kind", HOOK_KINDS)
async def test_stale_credential_refused(
    wsconn_connect: Connector, wsconn_token: Tokens, kind: str
) -> None:
    """An expired token, and one not valid yet, are refused (they come from the token hook)."""
    token = wsconn_token(kind)  # type: ignore[arg-type]  # kind is one of HOOK_KINDS
    await accepts_the_valid_request(wsconn_connect)
    await _assert_refused(wsconn_connect, STALE_TOKENS[kind], AUTH_BYPASS, token=token)


def allowed_origin(settings: Settings, stack: Stack) -> str | None:
    """The Origin the service allows: ``--wsconn-origin``, or the reference server's own."""
    if settings.origin:
        return settings.origin
    return DEFAULT_ALLOWED_ORIGINS[0] if stack.kind == "local" else None


@pytest.mark.parametrize("variant", ORIGIN_IDS)
async def test_origin_variant_refused(
    wsconn_connect: Connector, wsconn_settings: Settings, wsconn_stack: Stack, variant: str
) -> None:
    """An Origin that only resembles the allowed one is refused (Cross-Site WebSocket Hijacking)."""
    allowed = allowed_origin(wsconn_settings, wsconn_stack)
    if allowed is None:
        pytest.skip("the allowed Origin is not known (pass --wsconn-origin)")
    origin, what = origin_variant(allowed, variant)
    await accepts_the_valid_request(wsconn_connect, origin=allowed)
    await _assert_refused(wsconn_connect, f"Origin {origin} ({what})", ORIGIN_BYPASS, origin=origin)


async def test_cookie_auth_without_origin(
    wsconn_connect: Connector, wsconn_settings: Settings
) -> None:
    """With cookie auth, a handshake without Origin is refused: a browser always sends one."""
    if wsconn_settings.auth.kind != "cookie":
        auth = wsconn_settings.auth
        pytest.skip(f"the service does not authenticate by cookie (--wsconn-auth={auth})")
    await accepts_the_valid_request(wsconn_connect)
    what = "a cookie-authenticated handshake without Origin"
    await _assert_refused(wsconn_connect, what, ORIGIN_BYPASS, origin=None)


async def test_refusal_does_not_echo_the_credential(
    wsconn_connect: Connector, wsconn_token: Tokens, wsconn_settings: Settings
) -> None:
    """The refusal of a forged token (body, headers, close reason) does not contain it."""
    forged = credential_variant("changed-middle").make(wsconn_token("valid").reveal())
    assert forged is not None
    await accepts_the_valid_request(wsconn_connect)
    answer = await answer_to(wsconn_connect, CLOSE_WITHIN, token=forged)
    verdict = got_through(answer.attempt)
    if verdict is not None:
        pytest.fail(bypass_message("a forged token", verdict, AUTH_BYPASS), pytrace=False)
    places = reflected_in(forged, answer.texts)
    if places:
        pytest.fail(
            f"the refused token is echoed back in {' and '.join(places)} of the refusal\n"
            + REFLECTION.explain(),
            pytrace=False,
        )
