"""Control messages: JSON text a client sends to make the reference server misbehave on purpose.

Pure: ``parse_control`` turns a message into a ``Control``, ``None`` (echo it) or a
``ControlError`` whose text the server sends back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from websockets.exceptions import ProtocolError
from websockets.frames import Close, CloseCode

CONTROLS = ("broadcast", "close", "crash", "drop", "stop_pongs")
MAX_CLOSE_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code

_JSON_OBJECT = re.compile(r"\s*\{")


class ControlError(ValueError):
    """A control message the server cannot carry out; its text is sent back as ``error``."""


@dataclass(frozen=True)
class Control:
    """A request, sent as a JSON text message, to misbehave on purpose."""

    action: str
    code: int = CloseCode.NORMAL_CLOSURE
    reason: str = ""
    data: str = ""


def _utf8_size(text: str) -> int | None:
    """Encoded size, or ``None`` for text (lone surrogates) that cannot be sent."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _closable(code: object, reason: object) -> bool:
    """Whether a close frame with ``code`` and ``reason`` may be sent to a peer."""
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(reason, str):
        return False
    size = _utf8_size(reason)
    if size is None or size > MAX_CLOSE_REASON_BYTES:
        return False
    try:
        Close(code, reason).check()
    except ProtocolError:
        return False
    return True


def parse_control(message: str | bytes) -> Control | None:
    """The control a message asks for, or ``None`` for an ordinary message to echo.

    Raises ``ControlError`` for a control message that names no valid control or lacks
    what it needs.
    """
    if isinstance(message, bytes) or not _JSON_OBJECT.match(message):
        return None
    try:
        command = json.loads(message)
    except (ValueError, RecursionError):
        return None
    if not isinstance(command, dict) or "control" not in command:
        return None
    action = command["control"]
    if not isinstance(action, str) or action not in CONTROLS:
        raise ControlError(f"unknown control {action!r}; valid controls: {', '.join(CONTROLS)}")
    if action == "close":
        code = command.get("code", CloseCode.NORMAL_CLOSURE)
        reason = command.get("reason", "")
        if not _closable(code, reason):
            raise ControlError(
                "close needs a code a peer may send (1000-1003, 1007-1014, 3000-4999) "
                f"and a reason of at most {MAX_CLOSE_REASON_BYTES} UTF-8 bytes"
            )
        return Control(action, code=code, reason=reason)
    if action == "broadcast":
        data = command.get("data")
        if not isinstance(data, str) or _utf8_size(data) is None:
            raise ControlError('broadcast needs "data": a string to send to every connection')
        return Control(action, data=data)
    return Control(action)
