"""The reference frontend the reference server serves at ``/``: plain files, no build step.

``frontend/`` holds the page, its script and style; ``/frontend/catalogue.json`` is the close-code
catalogue exported from ``closecodes``, so the browser's troubleshooting panel and Python's
reports say the same thing. The page is served with a Content-Security-Policy that allows only
this origin's scripts and styles: nothing comes from a CDN.
"""

from __future__ import annotations

import json
from functools import cache
from http import HTTPStatus
from importlib import resources
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Response

from pytest_wsconn.closecodes import catalogue_json

# Path -> (file in frontend/ or None for the catalogue, content type).
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/frontend/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/frontend/style.css": ("style.css", "text/css; charset=utf-8"),
    "/frontend/catalogue.json": (None, "application/json"),
}
CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:"


@cache
def asset_body(path: str) -> bytes | None:
    """The bytes served at ``path``, or None when the frontend has no such file."""
    if path not in ASSETS:
        return None
    name, _ = ASSETS[path]
    if name is None:
        return json.dumps(catalogue_json()).encode()
    return resources.files("pytest_wsconn.reference").joinpath("frontend", name).read_bytes()


def frontend_response(target: str) -> Response | None:
    """The frontend file a request for ``target`` (path and query) asks for, as an HTTP
    response; None for a path it does not have."""
    path = urlsplit(target).path
    body = asset_body(path)
    if body is None:
        return None
    headers = Headers(
        [
            ("Content-Type", ASSETS[path][1]),
            ("Content-Length", str(len(body))),
            ("Content-Security-Policy", CSP),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    return Response(HTTPStatus.OK, HTTPStatus.OK.phrase, headers, body)
