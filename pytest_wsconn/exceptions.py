"""Errors raised by pytest-wsconn.

Every error carries one sentence a user can act on and, where there is one, a hint::

    WsconnError
    ├── ConfigError          a bad option, ini value or setting
    ├── ToxiproxyError       the Toxiproxy API refused a request or is unreachable
    ├── StackError           a stack (toxiproxy-server, reference server) did not come up
    ├── HistoryError         the run history cannot be read or written
    ├── BrowserError         Playwright or Chromium is missing or did not start
    └── ConnectFailed        a WebSocket connection did not open; carries the classified attempt
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_wsconn.expect import ConnectionAttempt


class WsconnError(Exception):
    """Base class: a message for the user and an optional hint saying what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(WsconnError):
    """A setting has a value pytest-wsconn cannot use."""


class ToxiproxyError(WsconnError):
    """The Toxiproxy API answered with an error, or did not answer."""

    def __init__(self, message: str, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class StackError(WsconnError):
    """A stack component could not be started, found or reached."""


class HistoryError(WsconnError):
    """The run history (``--wsconn-history``) cannot be opened, read or written."""


class BrowserError(WsconnError):
    """The browser a test asked for (``wsconn_browser``) cannot be driven."""


class ConnectFailed(WsconnError):
    """A WebSocket connection did not open; ``attempt`` says what happened and why.

    ``exception`` is what the WebSocket library raised; it is kept off the traceback, whose
    message already says it in one sentence.
    """

    def __init__(self, attempt: ConnectionAttempt, exception: BaseException | None = None) -> None:
        super().__init__(attempt.describe())
        self.attempt = attempt
        self.exception = exception
