"""The deliberately wrong connections (no token, a foreign Origin) judged; an unanswered ping."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pytest_wsconn.closecodes import WebSocketError
from pytest_wsconn.config import AuthMode
from pytest_wsconn.results import CheckResult

NO_AUTH = WebSocketError(
    category="auth",
    code=None,
    message="The service accepts WebSocket connections without a token.",
    causes=("authentication is off or optional", "the token is checked only after the upgrade"),
    steps=("check the token at the upgrade and refuse with HTTP 401 (or close 1008)",),
    retryable=False,
)
CSWSH = WebSocketError(
    category="policy",
    code=None,
    message="The service accepts any Origin while authenticating with a cookie: any web page "
    "can open a connection as the user (Cross-Site WebSocket Hijacking).",
    causes=("no Origin allow-list at the upgrade", "an allow-list of '*'"),
    steps=("check Origin against an allow-list at the upgrade and refuse others with HTTP 403",),
    retryable=False,
)
NO_PONG = WebSocketError(
    category="timeout",
    code=None,
    message="The server did not answer a ping in time.",
    causes=("a hung or overloaded server", "a proxy that does not forward control frames"),
    steps=("check the server is alive", "raise the ping timeout above the worst round trip"),
    retryable=True,
)


Verdict = Literal["refused", "accepted", "inconclusive"]


@dataclasses.dataclass(frozen=True)
class Probe:
    """How a deliberately wrong connection (no token, a foreign Origin) fared."""

    verdict: Verdict
    how: str  # "HTTP 401", "closed with 1008 (policy violation) 'token missing'", ...
    error: WebSocketError | None = None  # how the refusal or failure is classified
    body: str = ""  # a refusal's first body line: two refusals with one status can differ

    @property
    def answer(self) -> str:
        """How it fared, in words, and comparable: equal answers mean the same treatment."""
        said = self.how + (f" {self.body!r}" if self.body else "")
        if self.verdict == "accepted":
            return f"accepted ({said})"
        return said if self.verdict == "refused" else f"failed otherwise ({said})"


def auth_verdict(probe: Probe, *, token_sent: bool) -> CheckResult:
    """Judge the connection made without a token, knowing whether the handshake sent one."""
    if not token_sent:
        return _anonymous_verdict(probe)
    if probe.verdict == "refused":
        return CheckResult("auth", "pass", f"token accepted; no token refused ({probe.how})")
    if probe.verdict == "accepted":
        detail = f"token accepted, but so was a connection without one ({probe.how})"
        return CheckResult("auth", "fail", detail, error=NO_AUTH)
    detail = f"token accepted; the connection without one failed otherwise ({probe.how})"
    return CheckResult("auth", "warn", detail, error=probe.error)


def _anonymous_verdict(probe: Probe) -> CheckResult:
    """No token given: an open service warns; one that refuses after the upgrade fails."""
    if probe.verdict == "accepted":
        detail = (
            f"no token given, and the service accepted a connection ({probe.how}): anyone who "
            "can reach it can connect"
        )
        return CheckResult("auth", "warn", detail, error=NO_AUTH)
    if probe.verdict == "refused":
        detail = f"no token given, and the service refused the connection ({probe.how})"
        return CheckResult("auth", "fail", detail, error=probe.error)
    detail = f"no token given; a connection failed otherwise ({probe.how})"
    return CheckResult("auth", "warn", detail, error=probe.error)


def origin_verdict(auth: AuthMode, probe: Probe) -> CheckResult:
    """Judge the connection from a foreign Origin: only cookie auth makes accepting it unsafe."""
    if probe.verdict == "refused":
        return CheckResult("origin", "pass", f"a foreign Origin was refused ({probe.how})")
    if probe.verdict == "accepted" and auth.kind == "cookie":
        detail = (
            f"a foreign Origin was accepted ({probe.how}) with cookie auth: "
            "open to Cross-Site WebSocket Hijacking"
        )
        return CheckResult("origin", "warn", detail, error=CSWSH)
    if probe.verdict == "accepted":
        detail = (
            f"a foreign Origin was accepted ({probe.how}); safe while the token is not a "
            "cookie, Cross-Site WebSocket Hijacking if it ever is"
        )
        return CheckResult("origin", "pass", detail)
    detail = f"could not tell: the connection from a foreign Origin failed otherwise ({probe.how})"
    return CheckResult("origin", "warn", detail, error=probe.error)
