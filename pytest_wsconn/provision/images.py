"""``wsconn images build``: the compose stack's images, built without any container registry.

    pytest-wsconn/toxiproxy   FROM scratch around the static toxiproxy-server and toxiproxy-cli
                              that ``wsconn install toxiproxy`` builds
    pytest-wsconn/debian      Debian bookworm made by debootstrap (python3, nginx-light) and
                              ``docker import``ed: the backend's base, and the nginx image
    pytest-wsconn/backend     docker/backend/Dockerfile on that base, fed with this installed
                              package, websockets and prometheus_client wheels (nothing is
                              downloaded in the build)
    pytest-wsconn/prometheus  Debian's prometheus package, debootstrapped and imported the same
                              way: the compose file's ``monitoring`` profile

Each tag carries a hash of what went into it (``pins``), so a warm run finds every image and
does nothing; the debootstrap tarballs are kept in the cache folder, so even an emptied image
store costs a ``docker import``, not a new debootstrap. Older tags of ours are removed. The
names go to ``images.env`` in the user cache, where the compose provider reads them (exported
``WSCONN_*_IMAGE`` variables win), and to each ``--env-file``.

debootstrap needs Debian's mirror (once per root; ``WSCONN_DEBIAN_MIRROR`` names another), and
the wheels the package index (once per version: they are kept in the cache folder too). Where
neither is reachable, build here, ``docker save`` the four images, and ``docker load`` them
there.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.provision import bundle_dir, pins
from pytest_wsconn.provision.install import find_go, install_toxiproxy
from pytest_wsconn.timing import scaled

PACKAGE = Path(__file__).resolve().parent.parent
_OUTPUT_TAIL_LINES = 20


def say(text: str) -> None:
    print(f"wsconn images: {text}", file=sys.stderr)


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_OUTPUT_TAIL_LINES:])


def _run(argv: Sequence[str], *, timeout: float, what: str, hint: str) -> str:
    """Run ``argv``; its stdout, or a StackError with the end of its output."""
    try:
        result = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},  # the legacy builder: no buildx needed
            check=False,
        )
    except FileNotFoundError as exc:
        raise StackError(f"{what}: {argv[0]} is not installed", hint=hint) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"{what}: {exc}", hint=hint) from exc
    if result.returncode != 0:
        raise StackError(
            f"{what} failed (exit code {result.returncode}):\n"
            f"{_tail(result.stdout + result.stderr)}",
            hint=hint,
        )
    return result.stdout


_DOCKER_HINT = "is the Docker engine running (docker info)? scripts/docker-up in the repository"


def _docker(*args: str, timeout: float = 60.0) -> str:
    return _run(
        ["docker", *args], timeout=scaled(timeout), what=f"docker {args[0]}", hint=_DOCKER_HINT
    )


def have_image(tag: str) -> bool:
    try:
        _docker("image", "inspect", tag)
    except StackError:
        return False
    return True


def _build(tag: str, context: Path, *extra: str) -> None:
    started = time.monotonic()
    _run(
        pins.docker_build_argv(tag, context, *extra),
        timeout=scaled(1200),
        what=f"building {tag}",
        hint="its output is above; the inputs are in the build context " + str(context),
    )
    say(f"built {tag} in {time.monotonic() - started:.0f} s")


def _remove(tags: Sequence[str]) -> None:
    """Remove older builds of ours; an image a container still uses stays (best effort)."""
    if tags:
        with contextlib.suppress(StackError):
            _docker("image", "rm", *tags)


# The images ------------------------------------------------------------------------------------


def toxiproxy_image(binaries: Path, bundle: Path) -> str:
    """FROM scratch around ``binaries``/toxiproxy-server and toxiproxy-cli."""
    go = find_go(None, os.environ)
    asset = pins.release_asset(platform.system(), platform.machine())
    say(install_toxiproxy(binaries, go=go, asset=asset, say=say))
    cli = binaries / pins.CLI
    if not cli.is_file():
        raise StackError(
            f"the Toxiproxy image needs {cli} (its healthcheck runs it), and only the Go build "
            "makes one",
            hint="install Go (https://go.dev/dl/) and run `wsconn install toxiproxy --force`",
        )
    dockerfile = bundle / "docker" / "toxiproxy" / "Dockerfile"
    tag = pins.toxiproxy_tag(
        dockerfile.read_bytes(), (binaries / pins.SERVER).read_bytes(), cli.read_bytes()
    )
    if have_image(tag):
        say(f"{tag} is cached")
    else:
        _build(tag, binaries, "-f", str(dockerfile))
    return tag


def debian_image(root: pins.DebianRoot, cache: Path, mirror: str) -> str:
    """``root`` from debootstrap, ``docker import``ed; the tarball is kept in ``cache``."""
    tag = root.tag()
    tarball = cache / root.tarball()
    if have_image(tag):
        say(f"{tag} is cached")
    else:
        if not tarball.is_file() or tarball.stat().st_size == 0:
            _debootstrap(root, cache, tarball, mirror)
        started = time.monotonic()
        _docker("import", "--change", 'CMD ["/bin/bash"]', str(tarball), tag, timeout=600)
        say(f"imported {tag} in {time.monotonic() - started:.0f} s")
    return tag


def _drop_old_tarballs(cache: Path) -> None:
    """Debian roots of earlier pins: their images are superseded, their tarballs unused."""
    current = {root.tarball() for root in pins.DEBIAN_ROOTS}
    for other in cache.glob(f"debian-{pins.DEBIAN_SUITE}-*.tar"):
        if other.name not in current:
            other.unlink()


def _debootstrap(root: pins.DebianRoot, cache: Path, tarball: Path, mirror: str) -> None:
    if os.geteuid() != 0:
        raise StackError(
            "debootstrap needs root, once",
            hint=f"run `wsconn images build` as root (sudo); the tarball it makes in {cache} "
            "lets later runs go without",
        )
    if shutil.which("debootstrap") is None:
        _apt_install("debootstrap")
    started = time.monotonic()
    log = cache / "debootstrap.log"
    with tempfile.TemporaryDirectory(prefix="rootfs.", dir=cache) as rootfs:
        with log.open("w") as out:
            try:
                code = subprocess.run(
                    pins.debootstrap_argv(root, Path(rootfs), mirror),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=scaled(1800),
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                code = -1
        if code != 0:
            raise StackError(
                f"debootstrap {pins.DEBIAN_SUITE} failed; the end of its log ({log}):\n"
                f"{_tail(log.read_text(errors='replace'))}",
                hint=f"it needs Debian's mirror ({mirror}); set {pins.MIRROR_ENV} to a "
                "reachable one",
            )
        for folder in pins.SLIMMED:  # vfs copies every layer whole: each megabyte costs
            for child in (Path(rootfs) / folder).glob("*"):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        partial = tarball.with_name(tarball.name + ".partial")
        _run(
            ["tar", "-C", rootfs, "--numeric-owner", "-cf", str(partial), "."],
            timeout=scaled(600),
            what="packing the Debian root",
            hint=f"is there room in {cache}?",
        )
        partial.replace(tarball)
    say(
        f"debootstrap {pins.DEBIAN_SUITE} ({root.packages}) took {time.monotonic() - started:.0f} s"
    )


def _apt_install(package: str) -> None:
    """``apt-get install``, with ``apt-get update`` first only if the lists are too stale."""
    argv = ["apt-get", "install", "-y", "-q", package]
    hint = f"install {package} yourself (apt-get install {package})"
    with contextlib.suppress(StackError):
        _run(argv, timeout=scaled(600), what=f"apt-get install {package}", hint=hint)
        return
    _run(["apt-get", "update", "-q"], timeout=scaled(600), what="apt-get update", hint=hint)
    _run(argv, timeout=scaled(600), what=f"apt-get install {package}", hint=hint)


def package_files(suffix: str = "") -> Iterator[tuple[str, Path]]:
    """The package's files (ending in ``suffix``) as ``pytest_wsconn/...`` paths, in the order
    the backend's key reads them: a source checkout hashes as scripts/build-images always did."""
    found = {
        path.relative_to(PACKAGE.parent).as_posix(): path
        for path in PACKAGE.rglob(f"*{suffix}")
        if path.is_file() and "__pycache__" not in path.parts
    }
    for name in pins.backend_files(found):
        yield name, found[name]


def package_wheel(folder: Path) -> Path:
    """This installed package as a wheel, made from its own files: no build backend, no source
    tree and no network needed (the Dockerfile unpacks wheels; it does not run pip)."""
    version = importlib.metadata.version("pytest-wsconn")
    wheel = folder / f"pytest_wsconn-{version}-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: pytest-wsconn\nVersion: {version}\n"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in package_files():
            archive.write(path, name)
        archive.writestr(f"pytest_wsconn-{version}.dist-info/METADATA", metadata)
    return wheel


def backend_wheels(requirements: Sequence[str], cache: Path) -> list[Path]:
    """Wheels of ``requirements`` for every CPython a base may have, kept in ``cache/wheels``:
    the package index is asked only when some are not there yet (a rebuild needs no network)."""
    folder = cache / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    for python in pins.BACKEND_PYTHONS:
        try:
            _pip_download(requirements, python, folder, offline=True)
        except StackError:
            _pip_download(requirements, python, folder, offline=False)
    for stale in pins.stale_wheels((path.name for path in folder.glob("*.whl")), requirements):
        (folder / stale).unlink()
    distributions = tuple(f"{r.partition('==')[0]}-" for r in requirements)
    return sorted(path for path in folder.glob("*.whl") if path.name.startswith(distributions))


def _pip_download(requirements: Sequence[str], python: str, folder: Path, *, offline: bool) -> None:
    _run(
        pins.wheel_download_argv(sys.executable, requirements, python, folder, offline=offline),
        timeout=scaled(300),
        what=f"downloading the wheels of {' '.join(requirements)} for CPython {python}",
        hint="pip needs the package index (or PIP_INDEX_URL naming a mirror of it)",
    )


def backend_image(base: str, bundle: Path, cache: Path) -> str:
    """The reference server on ``base``: this package, websockets and prometheus_client,
    unpacked into a venv."""
    requirements = pins.backend_requirements(importlib.metadata.version("websockets"))
    base_id = _docker("image", "inspect", "--format", "{{.Id}}", base).strip()
    dockerfile = bundle / "docker" / "backend" / "Dockerfile"
    tag = pins.backend_tag(
        base_id,
        requirements,
        dockerfile.read_bytes(),
        (path.read_bytes() for _, path in package_files(".py")),
    )
    if have_image(tag):
        say(f"{tag} is cached")
        return tag
    with tempfile.TemporaryDirectory(prefix="wsconn-backend-") as context:
        shutil.copyfile(dockerfile, Path(context) / "Dockerfile")
        wheels = Path(context) / "wheels"
        wheels.mkdir()
        package_wheel(wheels)
        for wheel in backend_wheels(requirements, cache):
            shutil.copyfile(wheel, wheels / wheel.name)
        _build(tag, Path(context), "--build-arg", f"BASE_IMAGE={base}")
    return tag


def build_images(binaries: Path, cache: Path, mirror: str) -> dict[str, str]:
    """Build (or find) the images; their ``WSCONN_*_IMAGE`` variables."""
    bundle = bundle_dir()
    cache.mkdir(parents=True, exist_ok=True)
    toxiproxy = toxiproxy_image(binaries, bundle)
    debian = debian_image(pins.DEBIAN, cache, mirror)
    nginx = pins.DEBIAN.tag("nginx")
    _docker("tag", debian, nginx)
    backend = backend_image(debian, bundle, cache)
    prometheus = debian_image(pins.PROMETHEUS, cache, mirror)
    _drop_old_tarballs(cache)
    return dict(zip(pins.IMAGE_VARS, (toxiproxy, backend, nginx, prometheus), strict=True))


def publish_images_env(images: dict[str, str], paths: Sequence[Path]) -> str:
    """Write the images' ``WSCONN_*_IMAGE`` lines to each path; those lines.

    Images a file named before and ``images`` replaces are removed first, so rebuilds do not
    pile up.
    """
    text = pins.images_env(images)
    for path in paths:
        with contextlib.suppress(OSError):
            _remove(pins.superseded(pins.parse_images_env(path.read_text()), images))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text
