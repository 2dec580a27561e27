"""The reference WebSocket server and its signed tokens: the behaviour pytest-wsconn recommends."""

from pytest_wsconn.reference.server import (
    AUTH_COOKIE,
    AUTH_PROTOCOL_PREFIX,
    AUTH_QUERY_PARAM,
    CONTROLS,
    READY_PREFIX,
    SECRET_ENV,
    SUBPROTOCOL,
    ReferenceServer,
    Refusal,
    ServerSettings,
    ServerStats,
    main,
    serve_reference,
    validate_settings,
)
from pytest_wsconn.reference.tokens import (
    TokenKind,
    TokenVerdict,
    forge,
    reference_token,
    sign_token,
    verify_token,
)

__all__ = [
    "AUTH_COOKIE",
    "AUTH_PROTOCOL_PREFIX",
    "AUTH_QUERY_PARAM",
    "CONTROLS",
    "READY_PREFIX",
    "SECRET_ENV",
    "SUBPROTOCOL",
    "ReferenceServer",
    "Refusal",
    "ServerSettings",
    "ServerStats",
    "TokenKind",
    "TokenVerdict",
    "forge",
    "main",
    "reference_token",
    "serve_reference",
    "sign_token",
    "validate_settings",
    "verify_token",
]
