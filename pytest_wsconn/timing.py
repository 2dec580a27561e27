"""Waits that scale with ``WSCONN_TIMEOUT_FACTOR`` and waits on conditions with deadlines."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from pytest_wsconn.exceptions import ConfigError

TIMEOUT_FACTOR_ENV = "WSCONN_TIMEOUT_FACTOR"


def timeout_factor(environ: dict[str, str] | None = None) -> float:
    """The multiplier slow machines set in ``WSCONN_TIMEOUT_FACTOR`` (default 1)."""
    raw = (os.environ if environ is None else environ).get(TIMEOUT_FACTOR_ENV, "1")
    try:
        factor = float(raw)
    except ValueError:
        factor = 0.0
    if not factor > 0:
        raise ConfigError(
            f"{TIMEOUT_FACTOR_ENV}={raw!r} is not a positive number",
            hint="set it to e.g. 2 to double every wait on a slow machine",
        )
    return factor


def scaled(seconds: float) -> float:
    """``seconds`` multiplied by the timeout factor."""
    return seconds * timeout_factor()


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.01,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = clock() + timeout
    while True:
        if condition():
            return True
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        sleep(min(interval, remaining))
