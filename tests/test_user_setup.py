"""The set-up a pip user goes through, outside this repository, with no variable exported by hand.

A wheel of this checkout is installed (not editable) into a fresh venv in a temporary folder;
its dependencies come from this venv through a ``.pth`` line, so nothing is downloaded. Every
command runs from an empty folder with ``XDG_CACHE_HOME`` pointing at a temporary cache.
Go's own caches stay the warm ones (``GOCACHE``), so ``go install`` only links.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml
from support import FAKE_TOXIPROXY, REPO_ROOT, Service, unavailable

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.provision import pins
from pytest_wsconn.provision.images import have_image
from pytest_wsconn.provision.install import find_go
from pytest_wsconn.stack import compose
from pytest_wsconn.timing import scaled

DOCKER = shutil.which("docker") or "docker"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclasses.dataclass(frozen=True)
class UserVenv:
    """A venv with pytest-wsconn installed from its wheel, and a user's empty folders."""

    python: Path
    wheel: Path
    cache: Path
    work: Path
    env: dict[str, str]

    def run(
        self, *argv: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv (``wsconn`` or ``python``) in the empty work folder."""
        command = [str(self.python.parent / argv[0]), *argv[1:]]
        return subprocess.run(
            command,
            cwd=self.work,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=scaled(timeout),
            check=False,
        )

    def pytest(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run("python", "-m", "pytest", "-p", "no:cacheprovider", *args, timeout=timeout)


def _go_cache() -> str:
    """Go's build cache as it is now: a temporary XDG_CACHE_HOME would move it (a cold build)."""
    go = find_go(None, os.environ)
    if go is None:
        return ""
    return subprocess.run(
        [go, "env", "GOCACHE"], capture_output=True, text=True, timeout=scaled(30), check=False
    ).stdout.strip()


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> UserVenv:
    """pip install of a wheel of this checkout into a fresh venv; nothing else of the repo."""
    try:
        importlib.metadata.version("hatchling")
    except importlib.metadata.PackageNotFoundError:
        unavailable("hatchling is not installed here to build the wheel (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("user")
    pip = [sys.executable, "-m", "pip"]
    build = subprocess.run(
        [
            *pip,
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(root / "dist"),
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (root / "dist").glob("pytest_wsconn-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            *pip,
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert install.returncode == 0, install.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=scaled(30),
    ).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = root / "work"
    work.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WSCONN_", "PYTEST_", "PYTHON")) and key != "CI"
    }
    env |= {
        "PATH": f"{venv / 'bin'}:{SYSTEM_PATH}",
        "XDG_CACHE_HOME": str(root / "cache"),
        "GOCACHE": _go_cache() or env.get("GOCACHE", ""),
    }
    return UserVenv(python, wheel, root / "cache" / "pytest-wsconn", work, env)


BATTERY_CHECKS = 14
"""The connection, auth, reconnect and fault checks: at least these pass on a correct service
(the security checks add more, some of which skip where the service cannot be given them)."""


def _passed(stdout: str) -> int:
    """How many tests pytest's last line says passed (0 when none did)."""
    found = re.findall(r"(\d+) passed", stdout.strip().splitlines()[-1] if stdout.strip() else "")
    return int(found[0]) if found else 0


class TestInstalledPackage:
    def test_the_package_comes_from_the_wheel(self, user_venv: UserVenv) -> None:
        """The venv imports the installed copy, with the compose bundle inside it: every file
        the compose file mounts (in every profile) and the Dockerfiles it builds with."""
        result = user_venv.run(
            "python", "-c", "import pytest_wsconn.provision as p; print(p.bundle_dir())"
        )
        assert result.returncode == 0, result.stderr
        bundle = Path(result.stdout.strip())
        assert bundle.name == "_bundle"
        assert REPO_ROOT not in bundle.parents
        services = yaml.safe_load((REPO_ROOT / "docker-compose.test.yml").read_text())["services"]
        mounted = [
            volume.partition(":")[0].removeprefix("./")
            for service in services.values()
            for volume in service.get("volumes", [])
        ]
        assert "pytest_wsconn/monitoring/alerts.yml" in mounted  # the monitoring profile's
        for shipped in [
            "docker-compose.test.yml",
            *mounted,
            "docker/backend/Dockerfile",
            "docker/toxiproxy/Dockerfile",
        ]:
            assert (bundle / shipped).read_bytes() == (REPO_ROOT / shipped).read_bytes()

    def test_without_toxiproxy_the_error_names_the_command(self, user_venv: UserVenv) -> None:
        """Before `wsconn install toxiproxy` the battery stops and says to run it."""
        cached = user_venv.cache / "bin" / "toxiproxy-server"
        assert not cached.exists(), "this test must run before the install test of this module"
        result = user_venv.pytest("-p", "wsconn", "--pyargs", "pytest_wsconn.checks", "-x")
        assert result.returncode != 0
        assert "hint: run `wsconn install toxiproxy`" in result.stdout + result.stderr


class TestToxiproxyForPipUsers:
    def test_install_then_the_battery_against_a_users_service(
        self, user_venv: UserVenv, reference_service: Service
    ) -> None:
        """`wsconn install toxiproxy`, then the README's battery command passes from anywhere."""
        if find_go(None, os.environ) is None:
            unavailable("no Go toolchain: the download path is tested in test_provision.py")
        installed = user_venv.run("wsconn", "install", "toxiproxy")
        assert installed.returncode == 0, installed.stderr
        assert installed.stdout == (
            "toxiproxy 2.12.0: built toxiproxy-server and toxiproxy-cli with go install into "
            f"{user_venv.cache / 'bin'}\n"
        )
        again = user_venv.run("wsconn", "install", "toxiproxy")
        assert again.stdout == f"toxiproxy 2.12.0 already installed in {user_venv.cache / 'bin'}\n"
        result = user_venv.pytest(
            "-p",
            "wsconn",
            "--pyargs",
            "pytest_wsconn.checks",
            "--wsconn-stack=external",
            "--wsconn-url",
            reference_service.url,
            "--wsconn-token",
            reference_service.token,
            "--wsconn-auth",
            "header",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        binary = user_venv.cache / "bin" / "toxiproxy-server"
        assert f"toxiproxy-server 2.12.0 ({binary})" in result.stdout
        assert _passed(result.stdout) >= BATTERY_CHECKS, result.stdout
        assert "Warning" not in result.stdout


class TestOfflineImagesForPipUsers:
    def test_images_build_then_the_compose_battery(self, user_venv: UserVenv) -> None:
        """`wsconn images build` writes the names the compose stack then uses by itself."""
        _require_docker()
        if not (user_venv.cache / "bin" / "toxiproxy-cli").exists():
            installed = user_venv.run("wsconn", "install", "toxiproxy")
            assert installed.returncode == 0, installed.stderr
        images_env = user_venv.cache / "images.env"
        # The Debian tarball and websockets wheels this machine's own builds keep; no index.
        offline = {pins.IMAGE_CACHE_ENV: str(_home_cache()), "PIP_NO_INDEX": "1"}
        try:
            built = user_venv.run("wsconn", "images", "build", env=offline, timeout=900)
            assert built.returncode == 0, built.stderr
            assert f"written to {images_env}:" in built.stderr
            names = pins.parse_images_env(images_env.read_text())
            assert names["WSCONN_BACKEND_IMAGE"] == _backend_of(user_venv.wheel)
            result = user_venv.pytest(
                "-p", "wsconn", "--pyargs", "pytest_wsconn.checks", "--wsconn-stack=compose"
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert _passed(result.stdout) >= BATTERY_CHECKS, result.stdout
            header = next(line for line in result.stdout.splitlines() if line.startswith("wsconn:"))
            assert header.endswith(f"images {', '.join(names.values())} (from {images_env})"), (
                header
            )
        finally:
            _remove_images_only_this_test_built(images_env)


def _require_docker() -> None:
    """Docker works and the Debian images are built (scripts/docker-up), so the user's build
    needs no Debian mirror; the backend's wheels come from the same cache."""
    try:
        compose.docker_client().close()
        compose.find_compose_cli()
    except StackError as exc:
        unavailable(f"no Docker to run the compose stack: {exc}")
    for root in pins.DEBIAN_ROOTS:
        if not have_image(root.tag()):
            unavailable(f"{root.tag()} is not built: run scripts/docker-up")
    kept = [path.name for path in (_home_cache() / "wheels").glob("*.whl")]
    for requirement in pins.backend_requirements(importlib.metadata.version("websockets")):
        if not any(name.startswith(requirement.replace("==", "-") + "-") for name in kept):
            unavailable(f"no {requirement} wheel kept in the image cache: run scripts/build-images")


def _backend_of(wheel: Path) -> str:
    """The backend tag the wheel's files give when keyed as a source checkout is keyed: the
    same sources share one image, installed or not."""
    base_id = subprocess.run(
        [DOCKER, "image", "inspect", "--format", "{{.Id}}", pins.DEBIAN.tag()],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=True,
    ).stdout.strip()
    with zipfile.ZipFile(wheel) as archive:
        sources = pins.backend_files(n for n in archive.namelist() if n.endswith(".py"))
        dockerfile = archive.read("pytest_wsconn/_bundle/docker/backend/Dockerfile")
        return pins.backend_tag(
            base_id,
            pins.backend_requirements(importlib.metadata.version("websockets")),
            dockerfile,
            [archive.read(name) for name in sources],
        )


def _remove_images_only_this_test_built(images_env: Path) -> None:
    """Tags the user's build made that no images.env of this machine's own builds records."""
    with contextlib.suppress(OSError):
        built = set(pins.parse_images_env(images_env.read_text()).values())
        kept: set[str] = set()
        home_env = pins.images_env_file(os.environ, Path.home())
        for recorded in [REPO_ROOT / "docker" / "images.env", home_env]:
            with contextlib.suppress(OSError):
                kept |= set(pins.parse_images_env(recorded.read_text()).values())
        leftovers = sorted(built - kept)
        if leftovers:
            subprocess.run(
                [DOCKER, "image", "rm", *leftovers],
                capture_output=True,
                timeout=scaled(60),
                check=False,
            )


def _home_cache() -> Path:
    return Path(os.environ.get(pins.IMAGE_CACHE_ENV) or pins.cache_dir(os.environ, Path.home()))


class TestUnpinnedToxiproxy:
    def test_one_warning_line(self, pytester: pytest.Pytester, tmp_path: Path) -> None:
        """A toxiproxy-server reporting `git` runs the tests, with one warning naming the fix."""
        fake = tmp_path / "toxiproxy-server"
        fake.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_TOXIPROXY} "$@"\n')
        fake.chmod(0o755)
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        pytester.makepyfile(
            test_user="""
            def test_uses_the_stack(wsconn_stack):
                assert wsconn_stack.kind == "local"

            def test_and_again(wsconn_stack):
                assert wsconn_stack.kind == "local"
            """
        )
        result = pytester.runpytest_subprocess(f"--wsconn-toxiproxy-bin={fake}")
        result.assert_outcomes(passed=2, warnings=1)
        result.stdout.fnmatch_lines(
            [
                f"wsconn: stack=local, target=the reference server, toxiproxy-server git ({fake})",
                f"*UnpinnedToxiproxyWarning: {fake} reports version 'git', not the pinned 2.12.0: "
                "its toxics may not behave as these tests expect; `wsconn install toxiproxy` "
                "installs the pinned one",
            ]
        )
        assert result.stdout.str().count("UnpinnedToxiproxyWarning") == 1
