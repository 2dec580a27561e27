"""The ``wsconn_fault`` and ``wsconn_container_fault`` markers: their help and their reading."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_wsconn.chaos import check_kinds
from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.faults import ContainerFaultSpec, Fault, check_container_fault, make_fault

MARKERS = (
    "wsconn_fault(kind, **attributes): apply a Toxiproxy fault for the whole test, e.g. "
    "wsconn_fault('latency', ms=300) (pytest-wsconn)",
    "wsconn_container_fault(kind, service, **params): restart, kill, pause or partition a "
    "compose service for the whole test, e.g. wsconn_container_fault('pause', "
    "service='backend') (pytest-wsconn)",
    "wsconn_security: a check of the security battery: run only them with -m wsconn_security "
    "(pytest-wsconn)",
    "wsconn_browser_check: a browser check of the battery, opt-in: deselected unless "
    "--wsconn-frontend-origin is given (pytest-wsconn)",
    "wsconn_slow: a slow security check (stalled handshake, connection maximum): deselected "
    "unless --wsconn-slow (pytest-wsconn)",
    "wsconn_chaos(survives=[kinds], off=False): under --wsconn-chaos, draw this test's faults "
    "only from the kinds it must survive, e.g. wsconn_chaos(survives=['latency', 'down']); "
    "off=True leaves it out of chaos runs (pytest-wsconn)",
)


@dataclasses.dataclass(frozen=True)
class ChaosMarker:
    """A checked ``@wsconn_chaos``: the fault kinds the test must survive, or off."""

    survives: tuple[str, ...] = ()
    off: bool = False


def marked_chaos(item: pytest.Item) -> ChaosMarker | None:
    """The test's ``@wsconn_chaos``, checked; None when it has none."""
    marker = item.get_closest_marker("wsconn_chaos")
    if marker is None:
        return None
    unknown = sorted(set(marker.kwargs) - {"survives", "off"})
    if marker.args or unknown:
        raise WsconnError(
            "takes only survives=[kinds] and off=True, e.g. wsconn_chaos(survives=['latency'])"
        )
    off = marker.kwargs.get("off", False)
    if not isinstance(off, bool):
        raise WsconnError(f"off must be True or False, got {off!r}")
    if "survives" not in marker.kwargs:
        return ChaosMarker(off=off)
    return ChaosMarker(check_kinds(marker.kwargs["survives"]), off)


def marked_fault(item: pytest.Item) -> Fault | None:
    """The test's ``@wsconn_fault``, checked; None when it has none."""
    marker = item.get_closest_marker("wsconn_fault")
    if marker is None:
        return None
    if len(marker.args) != 1:
        raise WsconnError("takes exactly one fault kind, e.g. wsconn_fault('latency', ms=300)")
    return make_fault(str(marker.args[0]), **marker.kwargs)


def marked_container_fault(item: pytest.Item) -> ContainerFaultSpec | None:
    """The test's ``@wsconn_container_fault``, checked; None when it has none."""
    marker = item.get_closest_marker("wsconn_container_fault")
    if marker is None:
        return None
    params = dict(marker.kwargs)
    args = list(marker.args)
    if len(args) == 2 and "service" not in params:
        params["service"] = args.pop()
    if len(args) != 1:
        raise WsconnError(
            "takes one fault kind and service=, e.g. wsconn_container_fault('pause', "
            "service='backend')"
        )
    service = params.pop("service", None)
    return check_container_fault(str(args[0]), service, params)


def deselect_unless(
    config: pytest.Config, items: list[pytest.Item], marker: str, enabled: bool
) -> int:
    """Leave the tests marked ``marker`` out, reported as deselected, unless ``enabled`` (the
    opt-in groups of the battery); return how many were left out."""
    if enabled:
        return 0
    off = [item for item in items if item.get_closest_marker(marker) is not None]
    if off:
        config.hook.pytest_deselected(items=off)
        items[:] = [item for item in items if item.get_closest_marker(marker) is None]
    return len(off)


def check_markers(items: list[pytest.Item]) -> None:
    """Every marker of every test is valid, before anything runs; else one usage error."""
    for item in items:
        try:
            marked_container_fault(item)
        except WsconnError as error:
            raise pytest.UsageError(f"{item.nodeid}: @wsconn_container_fault {error}") from None
        try:
            marked_chaos(item)
        except WsconnError as error:
            raise pytest.UsageError(f"{item.nodeid}: @wsconn_chaos {error}") from None
        try:
            if marked_fault(item) is None:
                continue
        except WsconnError as error:
            raise pytest.UsageError(f"{item.nodeid}: @wsconn_fault {error}") from None
        if "wsconn_proxy" not in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(
                f"{item.nodeid}: @wsconn_fault needs the wsconn_proxy or wsconn_connect fixture"
            )
