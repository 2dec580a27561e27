"""Set-up outside the repository: the pins, ``wsconn install toxiproxy`` and image keys.

Downloads go to a real HTTP server on 127.0.0.1 (the URL and sha256 are injected, the download
code is the real one); the Go build is the real ``go install``, on Go's warm caches.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import http.server
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import REPO_ROOT, unavailable

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.provision import bundle_dir, pins
from pytest_wsconn.provision.images import package_files
from pytest_wsconn.provision.install import binary_version, find_go, install_toxiproxy
from pytest_wsconn.provision.pins import ImageChoice, ReleaseAsset
from pytest_wsconn.timing import scaled

PINNED = "2.12.0"
BASH = shutil.which("bash") or "/bin/bash"
IO_MODULES = {"asyncio", "socket", "subprocess", "ssl", "http", "urllib", "select", "shutil"}


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _shell_digest(script: str, cwd: Path) -> str:
    """The first 12 hex digits of sha256 of what ``script`` prints, as the old bash did it."""
    return subprocess.run(
        [BASH, "-c", f"set -euo pipefail; {{ {script}; }} | sha256sum | cut -c1-12"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=True,
    ).stdout.strip()


class TestPinsArePure:
    def test_pins_imports_no_io(self) -> None:
        """pins.py decides everything and touches nothing: no process, socket or HTTP module."""
        source = Path(pins.__file__).read_text()
        imported = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & IO_MODULES


class TestToxiproxyPins:
    @pytest.mark.parametrize(
        ("system", "machine", "asset"),
        [
            ("Linux", "x86_64", "toxiproxy-server-linux-amd64"),
            ("Linux", "aarch64", "toxiproxy-server-linux-arm64"),
            ("Darwin", "arm64", "toxiproxy-server-darwin-arm64"),
            ("Darwin", "x86_64", "toxiproxy-server-darwin-amd64"),
        ],
    )
    def test_release_asset_per_platform(self, system: str, machine: str, asset: str) -> None:
        """Each platform the release serves maps to its binary of v2.12.0 and a pinned hash."""
        found = pins.release_asset(system, machine)
        assert found is not None
        assert found.url == (
            f"https://github.com/Shopify/toxiproxy/releases/download/v{PINNED}/{asset}"
        )
        assert len(found.sha256) == 64
        assert int(found.sha256, 16) >= 0

    def test_linux_amd64_hash(self) -> None:
        """The hash the release published for toxiproxy-server-linux-amd64 v2.12.0."""
        found = pins.release_asset("Linux", "x86_64")
        assert found is not None
        assert found.sha256 == "556d891134a3c582dc1e1a3f7335fd55142e5965769855a00b944e13e48302fc"

    @pytest.mark.parametrize(("system", "machine"), [("Windows", "AMD64"), ("Linux", "riscv64")])
    def test_no_release_asset(self, system: str, machine: str) -> None:
        """Where no hash is pinned nothing is offered for download."""
        assert pins.release_asset(system, machine) is None

    @pytest.mark.parametrize(
        ("environ", "expected"),
        [
            ({}, "/home/u/.cache/pytest-wsconn"),
            ({"XDG_CACHE_HOME": "/var/cache/u"}, "/var/cache/u/pytest-wsconn"),
            ({"XDG_CACHE_HOME": "relative/cache"}, "/home/u/.cache/pytest-wsconn"),
            ({"XDG_CACHE_HOME": ""}, "/home/u/.cache/pytest-wsconn"),
        ],
    )
    def test_cache_dir(self, environ: dict[str, str], expected: str) -> None:
        """XDG_CACHE_HOME when absolute, as the XDG spec says; else ~/.cache."""
        assert pins.cache_dir(environ, Path("/home/u")) == Path(expected)
        assert pins.toxiproxy_dir(environ, Path("/home/u")) == Path(expected) / "bin"
        assert pins.images_env_file(environ, Path("/home/u")) == Path(expected) / "images.env"

    def test_go_install_stamps_the_version(self) -> None:
        """Static, both commands at the pinned tag, and -X so the binary reports 2.12.0."""
        argv, env = pins.go_install("/usr/bin/go", Path("/gobin"))
        assert argv == [
            "/usr/bin/go",
            "install",
            "-ldflags",
            "-X github.com/Shopify/toxiproxy/v2.Version=2.12.0",
            "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0",
            "github.com/Shopify/toxiproxy/v2/cmd/cli@v2.12.0",
        ]
        assert env == {"CGO_ENABLED": "0", "GOBIN": "/gobin"}

    @pytest.mark.parametrize(
        ("output", "program", "expected"),
        [
            ("toxiproxy-server version 2.12.0\n", "toxiproxy-server", "2.12.0"),
            ("toxiproxy-server version git", "toxiproxy-server", "git"),
            ("toxiproxy-cli version 2.12.0", "toxiproxy-cli", "2.12.0"),
            ("toxiproxy-cli version 2.12.0", "toxiproxy-server", None),
            ("usage: something else", "toxiproxy-server", None),
        ],
    )
    def test_reported_version(self, output: str, program: str, expected: str | None) -> None:
        assert pins.reported_version(output, program) == expected


class TestImageKeys:
    """Tags match what the old scripts/build-images computed, so a warm cache stays warm."""

    def test_debian_key_as_the_script_had_it(self) -> None:
        """echo "SUITE PACKAGES RECIPE" | sha256sum, as the bash script tagged Debian."""
        expected = _shell_digest(
            'echo "bookworm python3,python3-venv,ca-certificates,nginx-light 1"', REPO_ROOT
        )
        assert pins.DEBIAN.tag() == f"pytest-wsconn/debian:bookworm-{expected}"
        assert pins.DEBIAN.tag("nginx") == f"pytest-wsconn/nginx:bookworm-{expected}"
        assert pins.DEBIAN.tarball() == f"debian-bookworm-{expected}.tar"

    def test_prometheus_is_a_debian_root_of_its_own(self) -> None:
        """Debian's prometheus package, keyed like the base: its own tag and kept tarball."""
        expected = _shell_digest('echo "bookworm prometheus 1"', REPO_ROOT)
        assert pins.PROMETHEUS.tag() == f"pytest-wsconn/prometheus:bookworm-{expected}"
        assert pins.PROMETHEUS.tarball() == f"debian-bookworm-{expected}.tar"
        assert pins.debootstrap_argv(pins.PROMETHEUS, Path("/r"), "http://m/debian") == [
            "debootstrap",
            "--variant=minbase",
            "--include=prometheus",
            "bookworm",
            "/r",
            "http://m/debian",
        ]
        assert len({root.tarball() for root in pins.DEBIAN_ROOTS}) == len(pins.DEBIAN_ROOTS)

    def test_toxiproxy_key_as_the_script_had_it(self, tmp_path: Path) -> None:
        """The Dockerfile, then server, then CLI bytes."""
        parts = {"Dockerfile": b"FROM scratch\n", "server": b"\x7fELF server", "cli": b"cli"}
        for name, data in parts.items():
            (tmp_path / name).write_bytes(data)
        expected = _shell_digest("cat Dockerfile server cli", tmp_path)
        tag = pins.toxiproxy_tag(parts["Dockerfile"], parts["server"], parts["cli"])
        assert tag == f"pytest-wsconn/toxiproxy:2.12.0-{expected}"

    def test_backend_key_of_this_checkout_as_the_script_had_it(self) -> None:
        """Base id, the wheels' requirements, Dockerfile and every .py of the package in
        `sort -z` order."""
        dockerfile = bundle_dir() / "docker" / "backend" / "Dockerfile"
        expected = _shell_digest(
            'echo "sha256:base websockets==15.0 prometheus_client==0.26.0"; '
            "cat docker/backend/Dockerfile; "
            "find pytest_wsconn -name '*.py' -print0 | LC_ALL=C sort -z | xargs -0 cat",
            REPO_ROOT,
        )
        sources = (path.read_bytes() for _, path in package_files(".py"))
        requirements = pins.backend_requirements("15.0")
        assert requirements == ("websockets==15.0", "prometheus_client==0.26.0")
        tag = pins.backend_tag("sha256:base", requirements, dockerfile.read_bytes(), sources)
        assert tag == f"pytest-wsconn/backend:{expected}"

    def test_wheels_of_other_versions_are_stale(self) -> None:
        """A rebuild drops the required distributions' other versions, nothing else."""
        names = [
            "websockets-15.0-cp311-cp311-manylinux_2_28_x86_64.whl",
            "websockets-14.2-cp311-cp311-manylinux_2_28_x86_64.whl",
            "prometheus_client-0.26.0-py3-none-any.whl",
            "prometheus_client-0.21.1-py3-none-any.whl",
            "somebody_else-1.0-py3-none-any.whl",
        ]
        assert pins.stale_wheels(names, pins.backend_requirements("15.0")) == [
            "websockets-14.2-cp311-cp311-manylinux_2_28_x86_64.whl",
            "prometheus_client-0.21.1-py3-none-any.whl",
        ]

    def test_wheel_data_stays_out_of_the_backend(self) -> None:
        """The bundle and scenarios a wheel adds are not the backend's: same key either way."""
        paths = [
            "pytest_wsconn/plugin.py",
            "pytest_wsconn/_bundle/docker-compose.test.yml",
            "pytest_wsconn/_scenarios/idle_hold.py",
            "pytest_wsconn/__init__.py",
            "pytest_wsconn/_version_notes.py",
        ]
        assert pins.backend_files(paths) == [
            "pytest_wsconn/__init__.py",
            "pytest_wsconn/_version_notes.py",
            "pytest_wsconn/plugin.py",
        ]

    @given(st.lists(st.text(alphabet="ab_/.Z", min_size=1), unique=True))
    def test_backend_files_are_in_byte_order(self, names: list[str]) -> None:
        paths = [f"pytest_wsconn/{name}" for name in names]
        ordered = pins.backend_files(paths)
        assert [p.encode() for p in ordered] == sorted(p.encode() for p in ordered)


class TestImagesEnv:
    IMAGES: ClassVar[dict[str, str]] = {
        "WSCONN_TOXIPROXY_IMAGE": "pytest-wsconn/toxiproxy:2.12.0-aaa",
        "WSCONN_BACKEND_IMAGE": "pytest-wsconn/backend:bbb",
        "WSCONN_NGINX_IMAGE": "pytest-wsconn/nginx:bookworm-ccc",
        "WSCONN_PROMETHEUS_IMAGE": "pytest-wsconn/prometheus:bookworm-ddd",
    }

    def test_round_trip(self) -> None:
        """What is written is read back; `export` lines and other lines are tolerated."""
        text = pins.images_env(self.IMAGES)
        assert text.splitlines()[0] == "WSCONN_TOXIPROXY_IMAGE=pytest-wsconn/toxiproxy:2.12.0-aaa"
        assert pins.parse_images_env(text) == self.IMAGES
        exported = "# built\nexport WSCONN_BACKEND_IMAGE=x:1\nOTHER=y\nWSCONN_NGINX_IMAGE=\n"
        assert pins.parse_images_env(exported) == {"WSCONN_BACKEND_IMAGE": "x:1"}

    def test_exported_variables_win(self) -> None:
        """An exported WSCONN_*_IMAGE beats the file; the rest come from the file."""
        environ = {"WSCONN_BACKEND_IMAGE": "mine:1"}
        chosen = pins.choose_images(environ, self.IMAGES, "/c/images.env")
        assert chosen["WSCONN_BACKEND_IMAGE"] == ImageChoice("mine:1", "environment")
        assert chosen["WSCONN_NGINX_IMAGE"] == ImageChoice(
            "pytest-wsconn/nginx:bookworm-ccc", "/c/images.env"
        )
        assert pins.describe_images(chosen) == (
            "images pytest-wsconn/toxiproxy:2.12.0-aaa, mine:1, pytest-wsconn/nginx:bookworm-ccc, "
            "pytest-wsconn/prometheus:bookworm-ddd (from /c/images.env and environment)"
        )

    def test_nothing_built(self) -> None:
        assert pins.describe_images(pins.choose_images({}, {}, "f")) == (
            "images as the compose file names them"
        )

    def test_only_images_the_files_use(self) -> None:
        """A user's file that names none of ours still runs our Toxiproxy when it is injected."""
        chosen = pins.choose_images({}, self.IMAGES, "f")
        user_file = "services:\n  chat:\n    image: chat:1\n"
        assert list(pins.used_images(chosen, [user_file])) == ["WSCONN_TOXIPROXY_IMAGE"]
        bundled = (bundle_dir() / "docker-compose.test.yml").read_text()
        assert list(pins.used_images(chosen, [bundled])) == list(self.IMAGES)

    def test_superseded_tags_are_only_our_own(self) -> None:
        """A rebuild removes what its own images.env recorded and replaced, Debian base too."""
        current = {
            **self.IMAGES,
            "WSCONN_NGINX_IMAGE": "pytest-wsconn/nginx:bookworm-eee",
            "WSCONN_PROMETHEUS_IMAGE": "pytest-wsconn/prometheus:bookworm-fff",
        }
        previous = {**self.IMAGES, "WSCONN_BACKEND_IMAGE": "pytest-wsconn/backend:old"}
        assert pins.superseded(previous, current) == [
            "pytest-wsconn/backend:old",
            "pytest-wsconn/nginx:bookworm-ccc",
            "pytest-wsconn/prometheus:bookworm-ddd",
            "pytest-wsconn/debian:bookworm-ccc",
        ]
        assert pins.superseded({}, current) == []
        assert pins.superseded(current, current) == []


# wsconn install toxiproxy ----------------------------------------------------------------------


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves ``self.server.files`` (path -> bytes); 404 for anything else."""

    server: _FileServer

    def do_GET(self) -> None:
        data = self.server.files.get(self.path)
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _FileServer(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]


@pytest.fixture
def release_server() -> Iterator[_FileServer]:
    """An HTTP server on 127.0.0.1 standing in for GitHub's release downloads."""
    server = _FileServer(("127.0.0.1", 0), _Files)
    server.files = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(scaled(5))


def _asset(server: _FileServer, path: str, data: bytes, sha256: str | None = None) -> ReleaseAsset:
    server.files[path] = data
    host, port = server.server_address[:2]
    return ReleaseAsset(f"http://{host!s}:{port}{path}", sha256 or hashlib.sha256(data).hexdigest())


FAKE_RELEASE = b"#!/bin/sh\necho 'toxiproxy-server version 2.12.0'\n"


class TestDownload:
    """The release-binary path, through a real download from a loopback server."""

    def test_verified_download_is_installed(
        self, release_server: _FileServer, tmp_path: Path
    ) -> None:
        """The right hash: it lands executable at dest/toxiproxy-server and reports 2.12.0."""
        asset = _asset(release_server, "/v2.12.0/toxiproxy-server-linux-amd64", FAKE_RELEASE)
        said: list[str] = []
        done = install_toxiproxy(tmp_path / "bin", go=None, asset=asset, say=said.append)
        assert done == (
            "toxiproxy 2.12.0: downloaded toxiproxy-server (sha256 checked) "
            f"into {tmp_path / 'bin'}"
        )
        assert said == [f"downloading {asset.url}"]
        assert binary_version(tmp_path / "bin" / "toxiproxy-server") == PINNED
        assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == ["toxiproxy-server"]

    def test_a_wrong_hash_installs_nothing(
        self, release_server: _FileServer, tmp_path: Path
    ) -> None:
        """A file that is not the pinned one is named with both hashes and deleted."""
        pinned = "0" * 64
        asset = _asset(release_server, "/toxiproxy-server", FAKE_RELEASE, sha256=pinned)
        with pytest.raises(StackError) as info:
            install_toxiproxy(tmp_path / "bin", go=None, asset=asset)
        got = hashlib.sha256(FAKE_RELEASE).hexdigest()
        assert info.value.message == (
            f"{asset.url} has sha256 {got}, not the pinned {pinned}; nothing was installed"
        )
        assert "install Go and rerun" in str(info.value.hint)
        assert list((tmp_path / "bin").iterdir()) == []

    def test_a_missing_file_says_what_failed(
        self, release_server: _FileServer, tmp_path: Path
    ) -> None:
        """HTTP 404 is an error naming the URL, with nothing left behind."""
        asset = _asset(release_server, "/elsewhere", b"")
        asset = ReleaseAsset(asset.url.replace("/elsewhere", "/gone"), asset.sha256)
        with pytest.raises(StackError, match=r"could not download http://127\.0\.0\.1:\d+/gone: "):
            install_toxiproxy(tmp_path / "bin", go=None, asset=asset)
        assert list((tmp_path / "bin").iterdir()) == []

    def test_unreachable(self, tmp_path: Path) -> None:
        """Nothing listening: a quick error, not a hang."""
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        asset = ReleaseAsset(f"http://127.0.0.1:{port}/toxiproxy-server", "0" * 64)
        with pytest.raises(StackError, match=r"could not download .*refused"):
            install_toxiproxy(tmp_path / "bin", go=None, asset=asset)

    def test_a_download_reporting_another_version_fails(
        self, release_server: _FileServer, tmp_path: Path
    ) -> None:
        """Whatever arrives must report the pinned version, or the install is an error."""
        data = b"#!/bin/sh\necho 'toxiproxy-server version git'\n"
        asset = _asset(release_server, "/toxiproxy-server", data)
        with pytest.raises(StackError, match=r"reports version git, not 2\.12\.0"):
            install_toxiproxy(tmp_path / "bin", go=None, asset=asset)

    def test_already_installed_is_left_alone(
        self, release_server: _FileServer, tmp_path: Path
    ) -> None:
        """A pinned server in place (and no Go to build a CLI with) means nothing to do."""
        _script(tmp_path / "toxiproxy-server", "echo 'toxiproxy-server version 2.12.0'")
        asset = ReleaseAsset(f"http://127.0.0.1:{release_server.server_address[1]}/x", "0" * 64)
        done = install_toxiproxy(tmp_path, go=None, asset=asset)
        assert done == f"toxiproxy 2.12.0 already installed in {tmp_path}"

    def test_no_go_and_no_release_for_this_platform(self, tmp_path: Path) -> None:
        """Nothing to build with and nothing pinned to download: say to install Go."""
        with pytest.raises(StackError, match="no Go toolchain, and no release binary") as info:
            install_toxiproxy(tmp_path, go=None, asset=None)
        assert info.value.hint == (
            "install Go (https://go.dev/dl/) and rerun: it builds Toxiproxy from source"
        )

    def test_a_bad_go_is_named(self) -> None:
        with pytest.raises(StackError, match="--go is '/nope/go', which is not an executable"):
            find_go("/nope/go", {"PATH": ""})


def _dynamically_linked(path: Path) -> bool:
    """Whether an ELF64 file asks for a dynamic loader (a PT_INTERP program header)."""
    data = path.read_bytes()
    assert data[:5] == b"\x7fELF\x02", "not an ELF64 file"
    phoff = int.from_bytes(data[0x20:0x28], "little")
    size = int.from_bytes(data[0x36:0x38], "little")
    count = int.from_bytes(data[0x38:0x3A], "little")
    types = [
        int.from_bytes(data[phoff + i * size : phoff + i * size + 4], "little")
        for i in range(count)
    ]
    return 3 in types


class TestGoBuild:
    """The Go path for real: go install, stamped with the version, into a fresh folder."""

    def test_builds_server_and_cli_reporting_the_pin(self, tmp_path: Path) -> None:
        """Without -X a build says `git`; this one says 2.12.0, server and CLI alike."""
        go = find_go(None, os.environ)
        if go is None:
            unavailable("no Go toolchain to build Toxiproxy with")
        done = install_toxiproxy(tmp_path / "bin", go=go, asset=None)
        assert done == (
            "toxiproxy 2.12.0: built toxiproxy-server and toxiproxy-cli with go install "
            f"into {tmp_path / 'bin'}"
        )
        assert binary_version(tmp_path / "bin" / "toxiproxy-server") == PINNED
        assert binary_version(tmp_path / "bin" / "toxiproxy-cli", "toxiproxy-cli") == PINNED
        assert not _dynamically_linked(tmp_path / "bin" / "toxiproxy-server")


class TestRepositoryScripts:
    """This repository's set-up scripts: thin calls of the package code, and quiet when fine."""

    def test_install_sh_installs_through_the_package(self, tmp_path: Path) -> None:
        """toxiproxy/install.sh DEST gives what `wsconn install toxiproxy --dest DEST` gives."""
        dest = tmp_path / "bin"
        for name in ("toxiproxy-server", "toxiproxy-cli"):
            dest.mkdir(exist_ok=True)
            _script(dest / name, f"echo '{name} version 2.12.0'")
        result = subprocess.run(
            [BASH, str(REPO_ROOT / "toxiproxy" / "install.sh"), str(dest)],
            capture_output=True,
            text=True,
            timeout=scaled(60),
            env={**os.environ, "PYTHON": sys.executable},
            check=False,
        )
        assert (result.returncode, result.stdout) == (
            0,
            f"toxiproxy 2.12.0 already installed in {dest}\n",
        ), result.stderr

    def test_docker_up_starts_dockerd_without_a_log_yet(self, tmp_path: Path) -> None:
        """The first dockerd start has no log file to count lines of: no error is printed.

        `docker` and `dockerd` are stand-ins (the engine answers once dockerd has started);
        PYTHON=true makes the image build a no-op.
        """
        if os.geteuid() != 0:
            unavailable("docker-up starts dockerd only as root")
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        started, pid_file = tmp_path / "started", tmp_path / "dockerd.pid"
        _script(
            bin_dir / "docker",
            f'case "$1" in info) test -e {started} ;; compose) echo v2.40.3 ;; esac',
        )
        _script(bin_dir / "dockerd", f"echo $$ > {pid_file}; touch {started}; exec sleep 30")
        log = tmp_path / "logs" / "dockerd.log"
        try:
            result = subprocess.run(
                [BASH, str(REPO_ROOT / "scripts" / "docker-up")],
                capture_output=True,
                text=True,
                timeout=scaled(60),
                env={
                    **os.environ,
                    "PATH": f"{bin_dir}:{os.environ['PATH']}",
                    "WSCONN_DOCKERD_LOG": str(log),
                    "PYTHON": shutil.which("true") or "/bin/true",
                    "CI": "true",
                },
                check=False,
            )
        finally:
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
        assert result.returncode == 0, result.stderr
        said = result.stderr.splitlines()
        assert said[0] == (
            f"docker-up: starting dockerd --iptables=false --storage-driver=vfs (log: {log})"
        )
        assert said[1].startswith("docker-up: dockerd answers after "), said
        assert [line for line in said if not line.startswith("docker-up: ")] == []
