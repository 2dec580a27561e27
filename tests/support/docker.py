"""What a compose run left on the Docker engine."""

from __future__ import annotations

import contextlib
import os
import sys

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.provision.pins import IMAGE_VARS
from pytest_wsconn.stack import compose
from pytest_wsconn.stack.compose import PROJECT_LABEL
from support import REPO_ROOT, unavailable

IMAGES_ENV = REPO_ROOT / "docker" / "images.env"
BUNDLED = REPO_ROOT / "docker-compose.test.yml"

# A user's own compose project: one service that knows nothing of pytest-wsconn.
USER_COMPOSE = """\
services:
  chat:
    image: ${WSCONN_BACKEND_IMAGE}
    init: true
    command: ["/opt/wsconn/bin/python", "-m", "pytest_wsconn.reference",
              "--host", "0.0.0.0", "--port", "9000", "--auth", "off"]
    networks: [appnet]
    healthcheck:
      test: ["CMD", "/opt/wsconn/bin/python", "-c",
             "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/health')"]
      interval: 1s
      retries: 30
networks:
  appnet: {}
"""


def offline_images() -> dict[str, str]:
    """The WSCONN_*_IMAGE variables: from the environment, else from docker/images.env."""
    found = {}
    if IMAGES_ENV.is_file():
        for line in IMAGES_ENV.read_text().splitlines():
            name, _, value = line.strip().partition("=")
            if name in IMAGE_VARS and value:
                found[name] = value
    found.update({name: os.environ[name] for name in IMAGE_VARS if os.environ.get(name)})
    return found


def require_docker() -> dict[str, str]:
    """Check engine, Compose CLI and images; return the image variables to export."""
    try:
        client = compose.docker_client()
        compose.find_compose_cli()
    except StackError as exc:
        unavailable(f"no Docker to run the compose stack: {exc}")
    images = offline_images()
    missing = [name for name in IMAGE_VARS if name not in images]
    import docker

    with contextlib.closing(client):
        for name, image in images.items():
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(f"{name}={image}")
    if missing:
        unavailable(f"images not built ({', '.join(missing)}): run scripts/docker-up")
    return images


def resources_labelled(label: str) -> list[str]:
    """Containers, networks and volumes carrying ``label`` (``key=value``) still there."""
    filters: dict[str, str | list[str] | bool] = {"label": label}
    with contextlib.closing(compose.docker_client()) as client:
        return [
            *(
                f"container {c.name}"
                for c in client.containers.list(all=True, filters=filters, ignore_removed=True)
            ),
            *(f"network {n.name}" for n in client.networks.list(filters=filters)),
            *(f"volume {v.name}" for v in client.volumes.list(filters=filters)),
        ]


def labelled(project: str) -> list[str]:
    """Containers, networks and volumes of ``project`` (by our label or Compose's) still there."""
    return resources_labelled(f"{PROJECT_LABEL}={project}")


def inner_pytest(*args: str) -> list[str]:
    """The command line of a user's session with the bundled compose stack, in a subprocess."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--wsconn-stack=compose",
        f"--wsconn-compose-file={BUNDLED}",
        *args,
    ]
