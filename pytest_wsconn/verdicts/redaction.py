"""Check results with the token scrubbed from them: servers may echo what they were sent."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pytest_wsconn.redact import Secret, redact_text, reveal
from pytest_wsconn.results import CheckResult


def _scrub(value: Any, secret: str | Secret) -> Any:
    if isinstance(value, str):
        return redact_text(value, [secret])
    if isinstance(value, Mapping):
        return {key: _scrub(item, secret) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, secret) for item in value]
    return value


def redacted(result: CheckResult, token: str | Secret | None) -> CheckResult:
    """``result`` with ``token`` replaced in its detail and fields (servers may echo it)."""
    if not reveal(token):
        return result
    assert token is not None
    return dataclasses.replace(
        result, detail=redact_text(result.detail, [token]), fields=_scrub(result.fields, token)
    )
