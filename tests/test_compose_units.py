"""The compose provider's pure parts, and its errors, without a Docker engine."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_wsconn.exceptions import ConfigError, StackError
from pytest_wsconn.faults import ContainerFaultSpec
from pytest_wsconn.provision import bundle_dir, pins
from pytest_wsconn.redact import redact_logs
from pytest_wsconn.stack import compose, format_logs
from pytest_wsconn.stack.compose import (
    INJECTED_TOXIPROXY,
    LABEL_KEEP,
    LABEL_OWNER,
    LABEL_RUN,
    ComposeCli,
    ProjectModel,
    Target,
    check_container_fault,
    engine,
    find_compose_cli,
    override_document,
    parse_target,
    process_token,
    project_name,
    reaper,
    run_labels,
    tail,
    token_alive,
)


class TestParseTarget:
    """``--wsconn-compose-service SERVICE:PORT[/PATH]``."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("nginx:80", Target("nginx", 80, "/ws")),
            ("backend:8765/ws", Target("backend", 8765, "/ws")),
            ("chat-api:9000/socket/v1", Target("chat-api", 9000, "/socket/v1")),
            (" my_app.1:1 ", Target("my_app.1", 1, "/ws")),
        ],
    )
    def test_valid(self, text: str, expected: Target) -> None:
        """Service, port and path (default /ws) are read from the text."""
        assert parse_target(text) == expected

    @pytest.mark.parametrize("text", ["nginx", ":80", "nginx:", "nginx:0", "nginx:65536", "-x:80"])
    def test_invalid_names_the_syntax(self, text: str) -> None:
        """A bad value is a ConfigError that shows the syntax and an example."""
        with pytest.raises(
            ConfigError, match=r"valid: SERVICE:PORT\[/PATH\], e.g. backend:8080/ws"
        ):
            parse_target(text)

    @given(st.text(max_size=40))
    def test_total(self, text: str) -> None:
        """Any text parses or raises ConfigError, and a parsed one prints back the same way."""
        try:
            target = parse_target(text)
        except ConfigError:
            return
        assert parse_target(str(target)) == target


class TestNames:
    """Project names and labels."""

    def test_a_run_gets_its_own_project(self) -> None:
        """Unique per run id, lower-case and safe for Compose."""
        name = project_name("3F2a-99!x", keep=False, files=(), targets=())
        assert name == "wsconn-3f2a99x"

    def test_a_kept_stack_has_a_stable_name(self, tmp_path: Path) -> None:
        """The same files and targets give the same name whatever the run: it is reused."""
        files, targets = (tmp_path / "a.yml",), (Target("x", 1),)
        first = project_name("run1", keep=True, files=files, targets=targets)
        assert first == project_name("run2", keep=True, files=files, targets=targets)
        assert first != project_name("run1", keep=True, files=files, targets=(Target("y", 1),))
        assert first.startswith("wsconn-keep-")

    def test_labels_of_a_run_and_of_a_kept_stack(self) -> None:
        """A run's resources name it and its owner; a kept stack's labels never change."""
        assert run_labels("r1", "h/1/2", keep=False) == {LABEL_RUN: "r1", LABEL_OWNER: "h/1/2"}
        assert run_labels("r1", "h/1/2", keep=True) == {LABEL_RUN: "keep", LABEL_KEEP: "1"}


class TestOwnerTokens:
    """The reaper's test of whether a run's owner process still runs."""

    def test_this_process_is_alive(self) -> None:
        """Our own token names a live process."""
        assert token_alive(process_token(os.getpid()))

    def test_a_finished_process_is_dead(self) -> None:
        """A process that exited is dead, even if its pid were reused (start time differs)."""
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        token = process_token(child.pid)
        child.kill()
        child.wait()
        assert not token_alive(token)
        host = token.split("/")[0]
        assert not token_alive(f"{host}/{os.getpid()}/0")  # same pid, other start time

    def test_proxies_of_gone_processes_are_abandoned(self) -> None:
        """A kept stack frees the pool ports of a killed run's proxies, never a live one's."""
        assert reaper.abandoned("wsconn_gw0_999999999_my_app")
        assert not reaper.abandoned(f"wsconn_main_{os.getpid()}_nginx")
        assert not reaper.abandoned("nginx")  # the config file's proxies are not ours

    def test_another_hosts_run_is_left_alone(self) -> None:
        """We cannot see another machine's processes, so we never reap its stacks."""
        assert token_alive("some-other-host/1/1", host="this-host")

    @pytest.mark.parametrize("token", ["this-host/x/1", "this-host//", "this-host/999999999/5"])
    def test_unreadable_or_gone_on_this_host_is_dead(self, token: str) -> None:
        """A token of our host that names no running process is a dead run's."""
        assert not token_alive(token, host="this-host")


class TestOverride:
    """The override file that labels everything and injects Toxiproxy."""

    MODEL = ProjectModel.from_config(
        {
            "services": {
                "chat": {"networks": {"appnet": None}},
                "db": {},
                "agent": {"network_mode": "host"},
            },
            "networks": {"appnet": {}, "default": {}, "shared": {"external": True}},
            "volumes": {"data": {}, "outside": {"external": True}},
        }
    )
    LABELS: ClassVar[dict[str, str]] = {LABEL_RUN: "r", LABEL_OWNER: "h/1/1"}

    def test_the_model_reads_compose_config(self) -> None:
        """Services, their networks (default when none) and our own networks and volumes."""
        assert self.MODEL.services == ("chat", "db", "agent")
        assert self.MODEL.service_networks["chat"] == ("appnet",)
        assert self.MODEL.service_networks["db"] == ("default",)
        assert self.MODEL.networks == ("appnet", "default")
        assert self.MODEL.volumes == ("data",)

    def test_every_service_network_and_volume_is_labelled(self) -> None:
        """External networks and volumes belong to someone else: they are not touched."""
        document = override_document(
            self.MODEL, self.LABELS, inject_toxiproxy=False, targets=(), toxiproxy_image="x"
        )
        assert {s: d["labels"] for s, d in document["services"].items()} == {
            "chat": self.LABELS,
            "db": self.LABELS,
            "agent": self.LABELS,
        }
        assert set(document["networks"]) == {"appnet", "default"}
        assert set(document["volumes"]) == {"data"}

    def test_toxiproxy_joins_the_targets_network(self) -> None:
        """Injected Toxiproxy: on the target's networks, ports on loopback, exec healthcheck."""
        document = override_document(
            self.MODEL,
            self.LABELS,
            inject_toxiproxy=True,
            targets=(Target("chat", 9000),),
            toxiproxy_image="toxiproxy:test",
        )
        toxiproxy = document["services"][INJECTED_TOXIPROXY]
        assert toxiproxy["image"] == "toxiproxy:test"
        assert toxiproxy["networks"] == ["appnet"]
        assert toxiproxy["ports"] == ["127.0.0.1::8474", "127.0.0.1::21000-21015"]
        assert toxiproxy["healthcheck"]["test"] == ["CMD", "/toxiproxy-cli", "list"]
        assert toxiproxy["init"] is True
        assert toxiproxy["labels"] == self.LABELS

    def test_a_host_network_target_cannot_be_proxied(self) -> None:
        """network_mode: host has no name on any network: say so instead of a DNS failure later."""
        with pytest.raises(ConfigError, match="network_mode 'host'"):
            override_document(
                self.MODEL,
                self.LABELS,
                inject_toxiproxy=True,
                targets=(Target("agent", 80),),
                toxiproxy_image="x",
            )


class TestLogs:
    """Log windows as a report section."""

    def test_tail_says_what_it_left_out(self) -> None:
        """Only the last lines are kept, with a count of the rest."""
        assert tail("a\nb\nc\n", 2) == "[... 1 earlier lines]\nb\nc"
        assert tail("a\nb\n", 5) == "a\nb"

    def test_format_names_each_service(self) -> None:
        """One block per service, in order; an empty window says so."""
        assert format_logs({"nginx": "GET /ws\n", "backend": ""}) == (
            "--- backend ---\n(no output in this window)\n--- nginx ---\nGET /ws"
        )

    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ("GET /ws?token=abc.def&x=1", "GET /ws?token=***&x=1"),
            ("Authorization: Bearer eyJ.x.y", "Authorization: Bearer ***"),
            ('"/ws?a=1&access_token=zz"', '"/ws?a=1&access_token=***"'),
            ("nothing secret here", "nothing secret here"),
        ],
    )
    def test_tokens_are_redacted(self, line: str, expected: str) -> None:
        """Token-like query values and Bearer credentials never reach a report."""
        assert redact_logs(line) == expected


class TestContainerFaultArguments:
    """What ``wsconn_container_fault`` markers are checked against at collection."""

    @pytest.mark.parametrize(
        ("kind", "params"),
        [
            ("restart", {}),
            ("restart", {"timeout": 1}),
            ("kill", {"signal": "SIGTERM"}),
            ("pause", {}),
            ("partition", {}),
        ],
    )
    def test_valid(self, kind: str, params: dict[str, object]) -> None:
        """Each fault with the parameters it takes, as a spec the compose stack carries out."""
        assert check_container_fault(kind, "backend", params) == ContainerFaultSpec(
            kind,  # type: ignore[arg-type]
            "backend",
            params,
        )

    @pytest.mark.parametrize(
        ("kind", "service", "params", "message"),
        [
            ("explode", "backend", {}, "valid: restart, kill, pause, partition"),
            ("pause", None, {}, "needs service='NAME'"),
            ("pause", "backend", {"signal": 9}, "takes no signal; its parameters: none"),
            ("kill", "backend", {"timeout": 1}, "takes no timeout; its parameters: signal"),
        ],
    )
    def test_invalid(
        self, kind: str, service: object, params: dict[str, object], message: str
    ) -> None:
        """A wrong fault, service or parameter is a ConfigError that lists what is valid."""
        with pytest.raises(ConfigError, match=message):
            check_container_fault(kind, service, params)


def _fake(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


class TestFindComposeCli:
    """Compose v2 first, v1 as the fallback, and why neither works when neither does."""

    def test_nothing_installed(self, tmp_path: Path) -> None:
        """No docker, no docker-compose: Docker is not installed, with how to install it."""
        with pytest.raises(StackError, match="Docker is not installed") as failed:
            find_compose_cli({"PATH": str(tmp_path)})
        assert "apt-get install docker.io" in str(failed.value)

    def test_v2_plugin_preferred(self, tmp_path: Path) -> None:
        """`docker compose` answering wins over a docker-compose on PATH."""
        _fake(tmp_path, "docker", 'echo "v2.40.3"')
        _fake(tmp_path, "docker-compose", 'echo "1.29.2"')
        cli = find_compose_cli({"PATH": str(tmp_path)})
        assert cli == ComposeCli((str(tmp_path / "docker"), "compose"), "2.40.3")
        assert cli.v2

    def test_v1_fallback(self, tmp_path: Path) -> None:
        """A docker without the compose plugin falls back to docker-compose v1."""
        _fake(tmp_path, "docker", "echo \"docker: 'compose' is not a docker command.\" >&2; exit 1")
        _fake(tmp_path, "docker-compose", 'echo "1.29.2"')
        cli = find_compose_cli({"PATH": str(tmp_path)})
        assert cli.argv == (str(tmp_path / "docker-compose"),)
        assert not cli.v2

    def test_neither_works(self, tmp_path: Path) -> None:
        """Each candidate's own complaint is in the error."""
        _fake(tmp_path, "docker", "echo \"'compose' is not a docker command.\" >&2; exit 1")
        with pytest.raises(StackError) as failed:
            find_compose_cli({"PATH": str(tmp_path)})
        message = str(failed.value)
        assert "no Compose CLI works" in message
        assert "'compose' is not a docker command." in message
        assert "`docker-compose` is not on PATH" in message

    def test_chosen_by_environment(self, tmp_path: Path) -> None:
        """WSCONN_COMPOSE_CLI names the command to use."""
        _fake(tmp_path, "my-compose", 'echo "2.1.0"')
        cli = find_compose_cli({"PATH": str(tmp_path), compose.COMPOSE_CLI_ENV: "my-compose"})
        assert cli.argv == (str(tmp_path / "my-compose"),)


class TestEngineErrors:
    """SDK errors become one sentence a user can act on."""

    def test_permission_denied(self) -> None:
        """A socket we may not open: the docker group."""
        exc = RuntimeError("Error while fetching server API version")
        exc.__cause__ = PermissionError(13, "Permission denied")
        error = engine.engine_error(exc)
        assert "permission denied on the Docker socket" in str(error)
        assert "usermod -aG docker" in str(error)

    def test_not_running(self) -> None:
        """Nothing at the socket: start the engine."""
        error = engine.engine_error(
            RuntimeError(
                "('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"
            )
        )
        assert "the Docker engine is not running" in str(error)
        assert "dockerd" in str(error)

    def test_command_that_hangs_is_stopped(self) -> None:
        """A Compose command past its deadline is stopped and reported, not waited on forever."""
        with pytest.raises(StackError, match=r"did not finish within 0\.2 s"):
            engine.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.2)


class TestBundledStackForPipUsers:
    """Outside the repository the bundled stack and the built images are found unasked."""

    def test_the_bundled_file_when_the_project_has_none(self, tmp_path: Path) -> None:
        """No docker-compose.test.yml in the project: the one shipped with the package."""
        files = compose.ComposeOptions(project_dir=tmp_path).resolved_files()
        assert files == (bundle_dir() / "docker-compose.test.yml",)
        assert files[0].is_file()

    def test_the_projects_own_file_first(self, tmp_path: Path) -> None:
        (tmp_path / "docker-compose.test.yml").write_text("services: {}\n")
        files = compose.ComposeOptions(project_dir=tmp_path).resolved_files()
        assert files == (tmp_path / "docker-compose.test.yml",)

    def test_images_from_what_images_build_wrote(self, tmp_path: Path) -> None:
        """images.env in the user cache names the images; an exported variable still wins."""
        env_file = tmp_path / "pytest-wsconn" / "images.env"
        env_file.parent.mkdir()
        env_file.write_text(
            "WSCONN_TOXIPROXY_IMAGE=t:1\nWSCONN_BACKEND_IMAGE=b:1\nWSCONN_NGINX_IMAGE=n:1\n"
        )
        environ = {"XDG_CACHE_HOME": str(tmp_path), "WSCONN_NGINX_IMAGE": "mine:2"}
        chosen = compose.image_choices(environ)
        assert {name: choice.image for name, choice in chosen.items()} == {
            "WSCONN_TOXIPROXY_IMAGE": "t:1",
            "WSCONN_BACKEND_IMAGE": "b:1",
            "WSCONN_NGINX_IMAGE": "mine:2",
        }
        assert chosen["WSCONN_BACKEND_IMAGE"].source == str(env_file)
        assert chosen["WSCONN_NGINX_IMAGE"].source == "environment"

    def test_no_images_built(self, tmp_path: Path) -> None:
        assert compose.image_choices({"XDG_CACHE_HOME": str(tmp_path)}) == {}

    def test_the_report_header_names_the_images(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The header says which images the bundled stack will run, and from where."""
        env_file = tmp_path / "pytest-wsconn" / "images.env"
        env_file.parent.mkdir()
        env_file.write_text("WSCONN_TOXIPROXY_IMAGE=t:1\nWSCONN_BACKEND_IMAGE=b:1\n")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        for name in pins.IMAGE_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(tmp_path)
        header = compose.describe_compose([], ())
        assert header.startswith("stack=compose, target=nginx:80/ws in docker-compose.test.yml, ")
        assert header.endswith(f", images t:1, b:1 (from {env_file})")
