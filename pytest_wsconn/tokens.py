"""``wsconn_token``: valid, expired and forged tokens for the service under test.

Every token is a ``Secret``: tests, reports and ``--showlocals`` show ``***``; ``reveal()``
gives the value.
"""

from __future__ import annotations

from typing import Literal

import pytest

from pytest_wsconn.config import Settings
from pytest_wsconn.redact import Secret
from pytest_wsconn.reference.tokens import TokenKind, forge, reference_token
from pytest_wsconn.stack.base import Stack

Kind = TokenKind | Literal["not-yet-valid"]  # the last only from the pytest_wsconn_token hook


class Tokens:
    """``wsconn_token("valid" | "expired" | "forged" | "not-yet-valid")``: tokens to test with."""

    def __init__(self, config: pytest.Config, stack: Stack, settings: Settings) -> None:
        self._config = config
        self._stack = stack
        self._settings = settings

    def get(self, kind: Kind = "valid") -> Secret | None:
        """The token, or None when neither the hook, the options nor the stack can make one."""
        supplied: str | Secret | None = self._config.hook.pytest_wsconn_token(
            kind=kind, config=self._config
        )
        if supplied is not None:
            return Secret(supplied)
        if kind == "not-yet-valid":
            return None
        if self._stack.secret is not None:
            return Secret(reference_token(self._stack.secret, kind))
        valid = self._settings.token
        if kind == "valid" or valid is None:
            return valid
        return Secret(forge(valid.reveal())) if kind == "forged" else None

    def __call__(self, kind: Kind = "valid") -> Secret:
        """The token; skips the test with the reason when none can be had."""
        if self._settings.auth.kind == "none":
            pytest.skip("this service takes no token (--wsconn-auth=none)")
        token = self.get(kind)
        if token is None:
            how = "pass --wsconn-token" if kind == "valid" else "implement pytest_wsconn_token"
            pytest.skip(f"no {kind} token for this service ({how})")
        return token
