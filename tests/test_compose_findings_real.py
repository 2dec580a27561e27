"""Each compose finding that predicts a failure is shown failing that way inside real containers.

One compose project: the reference server on network ``back``, and one client service per
mistake `wsconn check` knows (``localhost`` for another service, a misspelt service name, the
published port used between containers, no shared network). Each client runs
``wsconn diagnose`` on its own variable from inside its container; its first failing check
must be classified as the finding predicts.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_wsconn.configcheck.compose import check_compose, parse_compose
from pytest_wsconn.configcheck.env import EnvNames, check_dotenv, parse_dotenv
from pytest_wsconn.stack import compose
from pytest_wsconn.timing import scaled

PUBLISHED = 48761  # the host port the backend is published on (loopback only)
PYTHON = "/opt/wsconn/bin/python"
PROJECT = f"wsconn-findings-{os.getpid()}"
COMPOSE_FILE = f"""
services:
  backend:
    image: ${{WSCONN_BACKEND_IMAGE}}
    init: true
    command: ["{PYTHON}", "-m", "pytest_wsconn.reference", "--host", "0.0.0.0",
              "--port", "8765", "--auth", "off"]
    networks: [back]
    ports: ["127.0.0.1:{PUBLISHED}:8765"]
    healthcheck:
      test: ["CMD", "{PYTHON}", "-c",
             "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/health')"]
      interval: 1s
      retries: 30
  uses_localhost:
    image: ${{WSCONN_BACKEND_IMAGE}}
    environment: {{BACKEND_URL: "ws://localhost:8765/ws"}}
    networks: [back]
    depends_on: {{backend: {{condition: service_healthy}}}}
  misspells_the_service:
    image: ${{WSCONN_BACKEND_IMAGE}}
    environment: {{WS_URL: "ws://backnd:8765/ws"}}
    networks: [back]
    depends_on: {{backend: {{condition: service_healthy}}}}
  uses_the_published_port:
    image: ${{WSCONN_BACKEND_IMAGE}}
    environment: {{WS_URL: "ws://backend:{PUBLISHED}/ws"}}
    networks: [back]
    depends_on: {{backend: {{condition: service_healthy}}}}
  on_another_network:
    image: ${{WSCONN_BACKEND_IMAGE}}
    environment: {{WS_URL: "ws://backend:8765/ws"}}
    networks: [front]
    depends_on: {{backend: {{condition: service_healthy}}}}
networks:
  back: {{}}
  front: {{}}
"""
CASES = {  # client service: (its variable, the rule wsconn check must raise for it)
    "uses_localhost": ("BACKEND_URL", "compose-localhost"),
    "misspells_the_service": ("WS_URL", "compose-unknown-service"),
    "uses_the_published_port": ("WS_URL", "compose-port-mismatch"),
    "on_another_network": ("WS_URL", "compose-no-shared-network"),
}


@pytest.fixture(scope="module")
def project(
    compose_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, compose.ComposeCli]]:
    """The project with its backend up and healthy; always taken down."""
    folder = tmp_path_factory.mktemp("findings")
    (folder / "compose.yml").write_text(COMPOSE_FILE)
    cli = compose.find_compose_cli()
    base = [*cli.argv, "-p", PROJECT, "-f", str(folder / "compose.yml")]
    try:
        run([*base, "up", "-d", "--wait", "backend"], timeout=120)
        yield folder, cli
    finally:
        run([*base, "down", "-v", "--remove-orphans"], timeout=120)


def run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=scaled(timeout), check=False
    )


def predicted(why: str) -> str:
    return why.rsplit("wsconn classifies the failure as ", 1)[1].rstrip(")")


@pytest.mark.parametrize("service", list(CASES))
def test_finding_fails_in_the_container(
    project: tuple[Path, compose.ComposeCli], service: str
) -> None:
    """The finding's predicted category is what the container meets trying to connect."""
    folder, cli = project
    variable, rule = CASES[service]
    parsed = parse_compose((folder / "compose.yml").read_text(), "compose.yml")
    found = [f for f in check_compose(parsed, EnvNames()) if f.rule == rule]
    assert len(found) == 1, [f.rule for f in check_compose(parsed, EnvNames())]
    # 8 s: on a busy machine Docker's DNS can take seconds to answer even for a known service.
    command = f'exec {PYTHON} -m pytest_wsconn diagnose "${variable}" --json --timeout 8'
    result = run(
        [
            *cli.argv,
            "-p",
            PROJECT,
            "-f",
            str(folder / "compose.yml"),
            "run",
            "--rm",
            "--no-deps",
            service,
            "/bin/sh",
            "-c",
            command,
        ],
        timeout=90,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    failed = next(check for check in report["checks"] if check["status"] == "fail")
    assert failed["error"]["category"] == predicted(found[0].why), failed


def test_missing_healthcheck_stops_compose_up(
    compose_images: dict[str, str],
    tmp_path: Path,
) -> None:
    """A dependency without a healthcheck is flagged, and `compose up` refuses to start."""
    (tmp_path / "compose.yml").write_text(
        "services:\n"
        "  backend:\n    image: ${WSCONN_BACKEND_IMAGE}\n    networks: [back]\n"
        "  client:\n    image: ${WSCONN_BACKEND_IMAGE}\n    networks: [back]\n"
        '    environment: {WS_URL: "ws://backend:8765/ws"}\n'
        "    depends_on: {backend: {condition: service_healthy}}\n"
        "networks:\n  back: {}\n"
    )
    parsed = parse_compose((tmp_path / "compose.yml").read_text(), "compose.yml")
    assert "compose-healthcheck-missing" in {f.rule for f in check_compose(parsed, EnvNames())}
    base = [
        *compose.find_compose_cli().argv,
        "-p",
        f"{PROJECT}-hc",
        "-f",
        str(tmp_path / "compose.yml"),
    ]
    try:
        result = run([*base, "up", "-d", "client"], timeout=120)
    finally:
        run([*base, "down", "-v", "--remove-orphans"], timeout=120)
    assert result.returncode != 0
    assert "no healthcheck" in result.stdout + result.stderr


def test_env_syntax_stops_compose(
    compose_images: dict[str, str],
    tmp_path: Path,
) -> None:
    """A line that is no NAME=value is flagged, and Compose refuses the env file."""
    env = "WS_URL=ws://backend:8765/ws\nthis is not valid\n"
    (tmp_path / "app.env").write_text(env)
    assert [f.rule for f in check_dotenv(parse_dotenv(env, "app.env"), EnvNames())] == [
        "env-syntax"
    ]
    (tmp_path / "compose.yml").write_text(
        "services:\n  client:\n    image: ${WSCONN_BACKEND_IMAGE}\n    env_file: [app.env]\n"
    )
    cli = compose.find_compose_cli()
    result = run([*cli.argv, "-f", str(tmp_path / "compose.yml"), "config"], timeout=60)
    assert result.returncode != 0
    assert "line 2" in result.stderr
