"""Our own round trips: messages that carry a unique id, and which reply ends a round trip.

Pure. A chat service that broadcasts, or one that pushes, sends a user messages it did not ask
for; taking the next one as "the echo" measures nothing. So each message a load user sends by
default carries an id unique across users, processes and machines, and a round trip ends only
at the message that matches it: its exact echo, or — for request/response protocols — a JSON
message whose id field equals ours (``--reply-id-field``). Everything else is counted apart.
"""

from __future__ import annotations

import json


def unique_text(message_id: str, size: int) -> str:
    """A text message of ``size`` characters that starts with ``message_id`` (the id is never
    cut: a smaller ``size`` gives just the id and a space)."""
    head = f"{message_id} "
    return head + "x" * (size - len(head))


def unique_json(field: str, message_id: str, size: int) -> str:
    """A JSON object with ``field`` set to ``message_id``, padded towards ``size`` characters."""
    text = json.dumps({field: message_id})
    pad_key = "pad" if field != "pad" else "padding"
    missing = size - len(text) - len(f', "{pad_key}": ""')
    return json.dumps({field: message_id, pad_key: "x" * missing}) if missing > 0 else text


def same_json_field(field: str, sent: str | bytes, received: str | bytes) -> bool:
    """Whether both messages are JSON objects with equal values at ``field``; never raises."""
    try:
        ours, theirs = json.loads(sent), json.loads(received)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser
        return False
    return (
        isinstance(ours, dict)
        and isinstance(theirs, dict)
        and field in ours
        and field in theirs
        and ours[field] == theirs[field]
    )


def no_reply_text(timeout: float, others: int, *, echo: bool = True) -> str:
    """Why a round trip failed: nothing matched our message within ``timeout`` seconds."""
    what = "no echo of our message" if echo else "no reply to our message"
    noun = "message" if others == 1 else "messages"
    return f"{what} within {timeout:g} s ({others:,} other {noun} received)"
