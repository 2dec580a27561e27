"""The reaper: removes what runs that died left behind.

Every container, network and volume of a stack carries its run's id and the owner process's
``process_token`` in labels; a stack whose owner is gone (and was not kept) is removed.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_wsconn.stack.compose.spec import LABEL_OWNER, PROJECT_LABEL

if TYPE_CHECKING:
    from docker import DockerClient


def process_token(pid: int, host: str | None = None) -> str:
    """``host/pid/start-time``: names a process even after its pid is reused."""
    return f"{host or socket.gethostname()}/{pid}/{_start_time(pid)}"


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    # Field 22 (starttime); the command name in parentheses may contain spaces.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else "?"


def token_alive(token: str, host: str | None = None) -> bool:
    """Whether the process a ``process_token`` names still runs; another host's: assume so."""
    owner_host, _, rest = token.partition("/")
    pid_text, _, started = rest.partition("/")
    if owner_host != (host or socket.gethostname()):
        return True  # we cannot look; leave it to that machine's next run
    if not pid_text.isdigit():
        return False
    return _start_time(int(pid_text)) == started != "?"


def _remove(remove: Callable[..., object], **options: bool) -> None:
    """Remove one resource; one already gone, or that another run is removing, is fine."""
    import docker

    try:
        remove(**options)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        # 409: "removal … is already in progress" (two runs reaping the same dead stack at once)
        # or still in use by a container being removed; whoever is removing it finishes.
        if error.status_code != 409:
            raise


def remove_project(client: DockerClient, project: str) -> None:
    """Remove a project's containers, networks and volumes through the engine, not the CLI."""
    label: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={project}"}
    for container in client.containers.list(all=True, filters=label, ignore_removed=True):
        _remove(container.remove, force=True, v=True)
    for network in client.networks.list(filters=label):
        _remove(network.remove)
    for volume in client.volumes.list(filters=label):
        _remove(volume.remove, force=True)


def reap(client: DockerClient, *, exclude: str | None = None, host: str | None = None) -> list[str]:
    """Remove every stack whose run's owner process is gone; return their project names.

    Kept stacks (no owner label) and stacks of live runs are left alone; so is ``exclude``.
    Another run may be reaping the same stacks at the same moment: both finish.
    """
    dead: set[str] = set()
    orphans = []
    kinds = (
        client.containers.list(all=True, filters={"label": LABEL_OWNER}, ignore_removed=True),
        client.networks.list(filters={"label": LABEL_OWNER}),
        client.volumes.list(filters={"label": LABEL_OWNER}),
    )
    for resources in kinds:
        for resource in resources:
            labels = (
                resource.attrs.get("Labels") or resource.attrs.get("Config", {}).get("Labels") or {}
            )
            project = labels.get(PROJECT_LABEL)
            if project == exclude or token_alive(labels.get(LABEL_OWNER, ""), host):
                continue
            if project:
                dead.add(project)
            else:
                orphans.append(resource)
    for project in sorted(dead):
        remove_project(client, project)
    for resource in orphans:
        _remove(resource.remove)
    return sorted(dead)


_PROXY_NAME = re.compile(r"wsconn_[^_]+_(\d+)_.+")


def abandoned(proxy_name: str) -> bool:
    """Whether a proxy named by ``ComposeStack`` belongs to a process of this host that is gone."""
    match = _PROXY_NAME.fullmatch(proxy_name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
