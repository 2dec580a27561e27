"""An upgrade refused with HTTP 403: the variations sent again and which cause they point to."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from pytest_wsconn.closecodes import WebSocketError
from pytest_wsconn.config import origin_of
from pytest_wsconn.results import CheckResult
from pytest_wsconn.verdicts.probes import Probe

RefusalCause = Literal["path", "origin", "auth", "unknown"]
"""Why a service answered the upgrade with HTTP 403, as far as the probes tell."""

_REFUSAL_LABELS: dict[RefusalCause, str] = {
    "path": "looks like no such path",
    "origin": "the Origin is refused",
    "auth": "the token is refused",
    "unknown": "refused for a reason the probes could not tell",
}


@dataclasses.dataclass(frozen=True)
class Variation:
    """The refused upgrade sent again with one thing changed, and how it fared."""

    change: str  # "on the made-up path /wsconn-no-such-path-1a2b", "without Origin", ...
    probe: Probe


@dataclasses.dataclass(frozen=True)
class RefusalProbes:
    """An upgrade refused with HTTP 403 and the variations that tell why.

    A 403 alone says little: Starlette and FastAPI answer it for a path they do not serve and
    for every endpoint that closes before accepting, whatever the reason. Only how the answer
    changes with the Origin, the token and the path tells them apart.
    """

    path: str  # the URL's path
    refusal: Probe  # the upgrade's own answer
    made_up_path: Variation  # the same request on a path no service has
    origin: Variation  # without the Origin sent or, when none was, with the URL's own site
    origin_sent: str | None
    token: Variation | None  # without the token; None when none was sent


def site_origin(url: str) -> str:
    """The Origin of a page on the WebSocket URL's own host: ws -> http, wss -> https."""
    return origin_of("http" + url[2:] if url[:2].lower() == "ws" else url)


def _changes(variation: Variation | None, refusal: Probe) -> bool:
    """Whether the variation got another answer; a probe that failed otherwise tells nothing."""
    if variation is None or variation.probe.verdict == "inconclusive":
        return False
    return variation.probe.answer != refusal.answer


def _tried(probes: RefusalProbes) -> list[Variation]:
    return [probes.made_up_path, probes.origin, *([probes.token] if probes.token else [])]


def _refusal_cause(probes: RefusalProbes) -> RefusalCause:
    if _changes(probes.origin, probes.refusal):
        return "origin"
    if _changes(probes.token, probes.refusal):
        return "auth"
    made_up = probes.made_up_path.probe
    if made_up.verdict != "inconclusive" and made_up.answer == probes.refusal.answer:
        return "path"
    return "unknown"


def _got(probe: Probe) -> str:
    return "was accepted" if probe.verdict == "accepted" else f"got {probe.answer} instead"


def _refusal_error(cause: RefusalCause, probes: RefusalProbes) -> WebSocketError:
    """The classified error of one cause, its message naming the probe that showed it."""
    forbidden = probes.refusal.answer
    if cause == "path":
        if probes.token is None:
            conclusion = "no WebSocket endpoint there, or one that wants a token (none was sent)"
            alternative = "an endpoint that wants a token before accepting: none was sent"
        else:
            conclusion = "most likely the service has no WebSocket endpoint there"
            alternative = (
                "an endpoint that checks the token before accepting and answers a refused "
                "token the way it answers an unknown path"
            )
        return WebSocketError(
            category="http_rejected",
            code=403,
            message=f"{forbidden} at {probes.path} is what a made-up path gets too: {conclusion}.",
            causes=(
                "a wrong path in the URL (Starlette and FastAPI answer an unknown WebSocket "
                "path with HTTP 403)",
                alternative,
            ),
            steps=(
                "check the URL's path against the service's WebSocket routes (a trailing slash "
                "counts)",
                "check that every proxy on the way routes this path to the WebSocket service",
            ),
            retryable=False,
        )
    if cause == "origin" and probes.origin_sent is not None:
        return WebSocketError(
            category="auth",
            code=403,
            message=f"{forbidden} for the Origin {probes.origin_sent}: without it the same "
            f"request {_got(probes.origin.probe)}, so the service does not allow this Origin.",
            causes=(
                "the Origin is missing from the service's allowed origins",
                "the service compares Origin with a Host header the proxy rewrote",
            ),
            steps=(
                f"add {probes.origin_sent} to the service's allowed origins",
                "have the proxy pass the Host header (nginx: proxy_set_header Host $host;)",
            ),
            retryable=False,
        )
    if cause == "origin":
        return WebSocketError(
            category="auth",
            code=403,
            message=f"{forbidden} without an Origin header: {probes.origin.change} the same "
            f"request {_got(probes.origin.probe)}, so the service wants an Origin.",
            causes=("the service refuses requests without Origin (browsers always send one)",),
            steps=("send the page's Origin (wsconn diagnose --origin, --wsconn-origin in tests)",),
            retryable=False,
        )
    if cause == "auth":
        assert probes.token is not None, "only a token that was sent can change the answer"
        return WebSocketError(
            category="auth",
            code=403,
            message=f"{forbidden} for this token: without it the same request "
            f"{_got(probes.token.probe)}, so the service reads the token and refuses it.",
            causes=("a token without permission for this endpoint", "an invalid or expired token"),
            steps=("check the token's permissions (scope, role) for this endpoint",),
            retryable=False,
        )
    return WebSocketError(
        category="auth",
        code=403,
        message=f"{forbidden} for a reason the probes could not tell: "
        + "; ".join(f"{variation.change}: {variation.probe.answer}" for variation in _tried(probes))
        + ".",
        causes=(
            "a rule of the application: permissions, client address, rate",
            "a rule of a proxy in front of the service (deny, address allow-list)",
        ),
        steps=("read the service's and the proxy's logs for this request",),
        retryable=False,
    )


def explain_refusal(said: str, fields: Mapping[str, Any], probes: RefusalProbes) -> CheckResult:
    """The failed handshake check for an HTTP 403: which of path, Origin or token it was.

    The Origin wins when changing it changes the answer, then the token; a made-up path that
    gets the very same answer means no such path; anything else cannot be told.
    """
    cause = _refusal_cause(probes)
    answers = {variation.change: variation.probe.answer for variation in _tried(probes)}
    detail = f"{said}; {_REFUSAL_LABELS[cause]}: " + "; ".join(
        f"{change}: {answer}" for change, answer in answers.items()
    )
    fields = {**fields, "refusal": {"cause": cause, "probes": answers}}
    error = _refusal_error(cause, probes)
    return CheckResult("handshake", "fail", detail, error=error, fields=fields)
