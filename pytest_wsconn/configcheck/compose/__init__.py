"""Docker Compose files: can each service reach the WebSocket backend it names, and in time?

Pure: ``parse_compose`` reads YAML text with PyYAML's node API, so every setting keeps its line,
into ``Service`` records; ``check_compose`` turns them into findings. Only ``read_compose``
touches the disk.

Layout::

    services.py    the compose file model and its parser; read_compose
    references.py  the hosts each service (or the browser it serves) connects to
    checks.py      check_compose: names, networks, ports, healthchecks and start order
"""

from __future__ import annotations

from pytest_wsconn.configcheck.compose.checks import DOCKER_HOSTS, check_compose
from pytest_wsconn.configcheck.compose.references import (
    BIND_ADDRESSES,
    HOST_SUFFIXES,
    Reference,
    is_proxy,
    references,
)
from pytest_wsconn.configcheck.compose.services import (
    ComposeFile,
    Dependency,
    PortMapping,
    Service,
    parse_compose,
    parse_port_mapping,
    read_compose,
)

__all__ = [
    "BIND_ADDRESSES",
    "DOCKER_HOSTS",
    "HOST_SUFFIXES",
    "ComposeFile",
    "Dependency",
    "PortMapping",
    "Reference",
    "Service",
    "check_compose",
    "is_proxy",
    "parse_compose",
    "parse_port_mapping",
    "read_compose",
    "references",
]
