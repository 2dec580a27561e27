"""The ``wsconn_fault`` and ``wsconn_container_fault`` markers: their help and their reading."""

from __future__ import annotations

import pytest

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
)


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


def check_markers(items: list[pytest.Item]) -> None:
    """Every marker of every test is valid, before anything runs; else one usage error."""
    for item in items:
        try:
            marked_container_fault(item)
        except WsconnError as error:
            raise pytest.UsageError(f"{item.nodeid}: @wsconn_container_fault {error}") from None
        try:
            if marked_fault(item) is None:
                continue
        except WsconnError as error:
            raise pytest.UsageError(f"{item.nodeid}: @wsconn_fault {error}") from None
        if "wsconn_proxy" not in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(
                f"{item.nodeid}: @wsconn_fault needs the wsconn_proxy or wsconn_connect fixture"
            )
