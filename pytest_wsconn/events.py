"""Structured connection events through stdlib logging, and a JSON-lines file for them.

Every event — ``connect.start``, ``connect.ok``, ``connect.fail``, ``close``,
``reconnect.scheduled``, ``fault.applied``, ``fault.removed`` — goes to the
``pytest_wsconn.events`` logger with its fields under ``record.wsconn``: the event name, the test
id, the attempt id where there is one, monotonic and wall time. Values are redacted by the
emitters (URLs carry no token).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from pytest_wsconn.exceptions import ConfigError

logger = logging.getLogger("pytest_wsconn.events")
CURRENT_TEST: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pytest_wsconn_current_test", default=None
)
"""The test that events belong to (the plugin sets it around each test)."""


def emit(event: str, *, attempt_id: int | None = None, **fields: Any) -> None:
    """Log ``event`` with its structured fields."""
    if not logger.isEnabledFor(logging.INFO):
        return
    record = {
        "event": event,
        "test_id": CURRENT_TEST.get(),
        "attempt_id": attempt_id,
        "monotonic": time.monotonic(),
        "wall": time.time(),
        **fields,
    }
    logger.info("%s %s", event, fields, extra={"wsconn": record})


class JsonLinesHandler(logging.Handler):
    """Writes each event's fields as one JSON line."""

    def __init__(self, path: Path) -> None:
        # Opened first: a path that cannot be written raises before logging knows the handler.
        self._file = path.open("a", encoding="utf-8")
        super().__init__(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "wsconn", None)
        if fields is not None:
            self._file.write(json.dumps(fields, default=str) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()
        super().close()


def check_writable(path: Path, option: str) -> None:
    """Fail before any test runs when ``path``'s folder cannot take the file ``option`` names."""
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"{option} {path}: {path.parent} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot create its folder: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"{option} {path}: its folder {path.parent} is not writable")


def open_log_file(path: Path, option: str) -> JsonLinesHandler:
    """The JSON-lines handler writing to ``path``, or one ``ConfigError`` saying why it cannot."""
    check_writable(path, option)
    try:
        return JsonLinesHandler(path)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write it: {exc.strerror}") from None


class EventCollector(logging.Handler):
    """Keeps the events in memory, for the session report."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "wsconn", None)
        if fields is not None:
            self.events.append(fields)
