"""The compose provider: a Docker Compose project with Toxiproxy in front of its WebSocket service.

A plain context manager, usable without pytest::

    options = ComposeOptions(files=(Path("docker-compose.test.yml"),))
    with open_compose_stack(options) as stack:
        stack.proxy_url                 # ws://127.0.0.1:PORT/ws: client -> toxiproxy -> nginx
        with stack.pause("backend"):    # container faults: restart, kill, pause, partition
            ...

What ``open_compose_stack`` does, in order:

1. finds a Compose CLI (``docker compose`` v2, else ``docker-compose``) and the engine (through
   the Docker SDK), with errors that say what to do when either is missing or refuses;
2. removes the stacks of runs that died without tearing down (the reaper: every container,
   network and volume carries the run's id and its owner process in labels);
3. writes an override file: those labels on every service, network and volume, and a Toxiproxy
   service on the target's networks when the project has none (a user's compose file works
   unchanged);
4. ``up --no-start``, which runs to its end even through Ctrl-C (a create request cut off may
   still make its container after ``down``), then ``up --wait`` with a deadline (v1: ``up -d``
   and its own wait on the healthchecks), under a file lock, so the xdist workers of one run
   share one stack;
5. makes this process's own Toxiproxy proxies on a pool of published ports, so a fault in one
   worker never reaches another;
6. on exit, ``down -v --remove-orphans`` by the last process to leave, and its state folder
   (override, lock, state) removed: after a pass, a failure, a failed ``up``, Ctrl-C or SIGTERM
   (which the plugin turns into Ctrl-C) alike, unless the stack is kept (``keep=True``).

The modules, by job::

    spec      pure: targets, project names, labels, the override document, log text
    engine    the Compose CLI (found and run with a deadline), the Docker SDK client
    reaper    owner liveness; removes the stacks of runs that died
    state     the folder a run's processes share, under a lock; reaps dead runs' folders
    project   one compose project: files, override, up/down
    provider  ComposeStack (proxies, container faults, logs) and open_compose_stack

Names are imported from their module on first use: importing ``spec`` (or this package) starts
no subprocess, socket or Docker machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_wsconn.faults import check_container_fault
    from pytest_wsconn.stack.compose.engine import docker_client, find_compose_cli
    from pytest_wsconn.stack.compose.project import ComposeOptions, ComposeProject, image_choices
    from pytest_wsconn.stack.compose.provider import (
        ComposeStack,
        ContainerFault,
        describe_compose,
        open_compose_stack,
    )
    from pytest_wsconn.stack.compose.reaper import (
        process_token,
        reap,
        remove_project,
        token_alive,
    )
    from pytest_wsconn.stack.compose.spec import (
        COMPOSE_CLI_ENV,
        INJECTED_TOXIPROXY,
        LABEL_KEEP,
        LABEL_OWNER,
        LABEL_RUN,
        PROJECT_LABEL,
        SERVICE_LABEL,
        ComposeCli,
        ProjectModel,
        Target,
        override_document,
        parse_target,
        project_name,
        run_labels,
        tail,
    )

_EXPORTS = {
    "docker_client": "engine",
    "find_compose_cli": "engine",
    "ComposeOptions": "project",
    "ComposeProject": "project",
    "image_choices": "project",
    "ComposeStack": "provider",
    "ContainerFault": "provider",
    "check_container_fault": "pytest_wsconn.faults",
    "describe_compose": "provider",
    "open_compose_stack": "provider",
    "process_token": "reaper",
    "reap": "reaper",
    "remove_project": "reaper",
    "token_alive": "reaper",
    "COMPOSE_CLI_ENV": "spec",
    "INJECTED_TOXIPROXY": "spec",
    "LABEL_KEEP": "spec",
    "LABEL_OWNER": "spec",
    "LABEL_RUN": "spec",
    "PROJECT_LABEL": "spec",
    "SERVICE_LABEL": "spec",
    "ComposeCli": "spec",
    "ProjectModel": "spec",
    "Target": "spec",
    "override_document": "spec",
    "parse_target": "spec",
    "project_name": "spec",
    "run_labels": "spec",
    "tail": "spec",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    absolute = module if "." in module else f"{__name__}.{module}"
    return getattr(importlib.import_module(absolute), name)


__all__ = [
    "COMPOSE_CLI_ENV",
    "INJECTED_TOXIPROXY",
    "LABEL_KEEP",
    "LABEL_OWNER",
    "LABEL_RUN",
    "PROJECT_LABEL",
    "SERVICE_LABEL",
    "ComposeCli",
    "ComposeOptions",
    "ComposeProject",
    "ComposeStack",
    "ContainerFault",
    "ProjectModel",
    "Target",
    "check_container_fault",
    "describe_compose",
    "docker_client",
    "find_compose_cli",
    "image_choices",
    "open_compose_stack",
    "override_document",
    "parse_target",
    "process_token",
    "project_name",
    "reap",
    "remove_project",
    "run_labels",
    "tail",
    "token_alive",
]
