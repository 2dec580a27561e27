"""nginx in front of a WebSocket backend: does every WebSocket location forward the upgrade?

Pure: ``config_from_payload`` turns what crossplane (a real nginx config parser) read into
``Directive`` trees with includes inlined, ``parse_nginx_time`` reads nginx time values as
nginx does, and ``check_nginx`` finds the locations that carry WebSockets and judges them. Only
``read_nginx`` touches the disk.

Each finding's ``why`` ends with the category wsconn gives the failure a client then sees
(``wsconn classifies the failure as <category>``), so a test can check the prediction.

Layout::

    config.py           Directive trees from crossplane, read_nginx; nginx time values
    locations.py        the location nginx picks for a path; the directives in force in it
    location_checks.py  the checks of one WebSocket location
    checks.py           check_nginx: syntax, the locations to judge, a path nothing serves
    sites.py            the https origins nginx serves and the hosts it proxies to
"""

from __future__ import annotations

from pytest_wsconn.configcheck.nginx.checks import check_nginx
from pytest_wsconn.configcheck.nginx.config import (
    UNEXPECTED_END,
    Directive,
    NginxConfig,
    config_from_payload,
    parse_nginx_time,
    read_nginx,
)
from pytest_wsconn.configcheck.nginx.location_checks import DEFAULT_TIMEOUT_MS, FALLBACK_TRANSPORTS
from pytest_wsconn.configcheck.nginx.locations import Location, Server, select_location, servers
from pytest_wsconn.configcheck.nginx.sites import HttpsSite, https_sites, proxy_targets

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "FALLBACK_TRANSPORTS",
    "UNEXPECTED_END",
    "Directive",
    "HttpsSite",
    "Location",
    "NginxConfig",
    "Server",
    "check_nginx",
    "config_from_payload",
    "https_sites",
    "parse_nginx_time",
    "proxy_targets",
    "read_nginx",
    "select_location",
    "servers",
]
