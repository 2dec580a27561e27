"""Set-up that works from a pip install, outside pytest-wsconn's repository.

``install``  ``wsconn install toxiproxy``: the pinned Toxiproxy into the user cache
             (``go install`` stamped with its version, else the release binary checked
             against its sha256), where the plugin finds it.
``images``   ``wsconn images build``: the compose stack's images without a registry; writes
             their names where the compose provider reads them.
``pins``     the pure part of both: versions, hashes, paths, tags and command lines.

The compose file and Dockerfiles ship inside the wheel (``_bundle``); ``bundle_dir`` finds
them there or, in a source checkout, at the repository's root.
"""

from __future__ import annotations

from pathlib import Path

BUNDLED_COMPOSE_FILE = "docker-compose.test.yml"


def bundle_dir() -> Path:
    """The folder holding docker-compose.test.yml and the docker/ and toxiproxy/ it uses."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "_bundle"
    if (shipped / BUNDLED_COMPOSE_FILE).is_file():
        return shipped
    return package.parent  # a source checkout (editable install)
