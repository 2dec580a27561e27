"""pytest-wsconn: prove a WebSocket service connects, authenticates, survives faults, closes right.

The public API; everything else is internal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__: str

if TYPE_CHECKING:
    from pytest_wsconn.assertions import (
        assert_backoff,
        assert_closes_with,
        assert_connects,
        assert_gives_up,
        assert_reconnects,
        assert_rejected,
    )
    from pytest_wsconn.backoff import BackoffPolicy
    from pytest_wsconn.browser.page import (
        BrowserPage,
        WsconnBrowser,
        assert_page_connects,
        assert_page_reconnects,
        assert_page_sends_cookie,
        assert_page_shows,
    )
    from pytest_wsconn.client import Connector, InstrumentedConnection, connect
    from pytest_wsconn.closecodes import AppCode, Outcome, WebSocketError, close_code_name
    from pytest_wsconn.config import AuthMode, parse_auth_mode
    from pytest_wsconn.exceptions import (
        BrowserError,
        ConfigError,
        ConnectFailed,
        StackError,
        ToxiproxyError,
        WsconnError,
    )
    from pytest_wsconn.expect import CloseInfo, ConnectionAttempt, classify, describe_attempt
    from pytest_wsconn.faults import Fault, make_fault
    from pytest_wsconn.reconnect import QueueFull, ReconnectingClient, State, Transition
    from pytest_wsconn.redact import Secret
    from pytest_wsconn.stack import Stack
    from pytest_wsconn.timing import scaled
    from pytest_wsconn.tokens import Tokens
    from pytest_wsconn.toxiproxy import Proxy, ToxiproxyClient

# Imported on first use, so that `wsconn serve` and the reference server start fast.
_EXPORTS = {
    "assert_closes_with": "assertions",
    "assert_connects": "assertions",
    "assert_rejected": "assertions",
    "assert_backoff": "assertions",
    "assert_gives_up": "assertions",
    "assert_reconnects": "assertions",
    "BackoffPolicy": "backoff",
    "BrowserPage": "browser.page",
    "WsconnBrowser": "browser.page",
    "assert_page_connects": "browser.page",
    "assert_page_reconnects": "browser.page",
    "assert_page_sends_cookie": "browser.page",
    "assert_page_shows": "browser.page",
    "QueueFull": "reconnect",
    "ReconnectingClient": "reconnect",
    "State": "reconnect",
    "Transition": "reconnect",
    "Connector": "client",
    "InstrumentedConnection": "client",
    "connect": "client",
    "WebSocketError": "closecodes",
    "AppCode": "closecodes",
    "Outcome": "closecodes",
    "close_code_name": "closecodes",
    "AuthMode": "config",
    "parse_auth_mode": "config",
    "ConfigError": "exceptions",
    "ConnectFailed": "exceptions",
    "BrowserError": "exceptions",
    "StackError": "exceptions",
    "ToxiproxyError": "exceptions",
    "WsconnError": "exceptions",
    "CloseInfo": "expect",
    "ConnectionAttempt": "expect",
    "classify": "expect",
    "describe_attempt": "expect",
    "Fault": "faults",
    "make_fault": "faults",
    "Tokens": "tokens",
    "Secret": "redact",
    "Stack": "stack",
    "scaled": "timing",
    "Proxy": "toxiproxy",
    "ToxiproxyClient": "toxiproxy",
}


def __getattr__(name: str) -> Any:
    from importlib.metadata import PackageNotFoundError, version

    if name == "__version__":
        try:
            return version("pytest-wsconn")
        except PackageNotFoundError:  # running from a source tree
            return "0.0.0"
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pytest_wsconn' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pytest_wsconn.{_EXPORTS[name]}"), name)


__all__ = [
    "AppCode",
    "AuthMode",
    "BackoffPolicy",
    "BrowserError",
    "BrowserPage",
    "CloseInfo",
    "ConfigError",
    "ConnectFailed",
    "ConnectionAttempt",
    "Connector",
    "Fault",
    "InstrumentedConnection",
    "Outcome",
    "Proxy",
    "QueueFull",
    "ReconnectingClient",
    "Secret",
    "Stack",
    "StackError",
    "State",
    "Tokens",
    "ToxiproxyClient",
    "ToxiproxyError",
    "Transition",
    "WebSocketError",
    "WsconnBrowser",
    "WsconnError",
    "__version__",
    "assert_backoff",
    "assert_closes_with",
    "assert_connects",
    "assert_gives_up",
    "assert_page_connects",
    "assert_page_reconnects",
    "assert_page_sends_cookie",
    "assert_page_shows",
    "assert_reconnects",
    "assert_rejected",
    "classify",
    "close_code_name",
    "connect",
    "describe_attempt",
    "make_fault",
    "parse_auth_mode",
    "scaled",
]
