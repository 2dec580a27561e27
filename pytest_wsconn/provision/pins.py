"""What set-up pins and where it puts things: versions, hashes, cache paths, tags, command lines.

Pure: no process, socket or file is touched here, so every decision of ``wsconn install
toxiproxy`` and ``wsconn images build`` is tested without Go, Docker or a network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePath

TOXIPROXY_VERSION = "2.12.0"
"""The Toxiproxy the tests were written against; its toxics are what the README describes."""
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
RELEASES = f"https://github.com/Shopify/toxiproxy/releases/download/v{TOXIPROXY_VERSION}"
RELEASE_SHA256 = {
    # sha256 of toxiproxy-server-{system}-{arch} of the v2.12.0 release, as published with it.
    ("linux", "amd64"): "556d891134a3c582dc1e1a3f7335fd55142e5965769855a00b944e13e48302fc",
    ("linux", "arm64"): "53e770c1c3035b5a9f1bc629fce537db1f95f62b26f4ebe6e756afd701cf077c",
    ("darwin", "amd64"): "9625bba4bd96117eedae49f982aba4c2f462b268dd406c9ff18186f9b1ef8afe",
    ("darwin", "arm64"): "aa299966b52f16a8594f1cd0d1e9049dc2e8fe2c04a90c19860e2719b2b95d15",
}
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

SERVER = "toxiproxy-server"
CLI = "toxiproxy-cli"

IMAGE_VARS = (
    "WSCONN_TOXIPROXY_IMAGE",
    "WSCONN_BACKEND_IMAGE",
    "WSCONN_NGINX_IMAGE",
    "WSCONN_PROMETHEUS_IMAGE",
)
"""What points docker-compose.test.yml at the images ``wsconn images build`` makes."""
IMAGE_CACHE_ENV = "WSCONN_IMAGE_CACHE"
MIRROR_ENV = "WSCONN_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITE = "bookworm"
DEBIAN_RECIPE = "1"  # bump when SLIMMED changes what a root holds: it is part of their tags
SLIMMED = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
    "var/log",
    "usr/share/javascript/moment-timezone/data",  # 212 MB of time zone JSON no page loads
)
"""Folders of the debootstrapped roots emptied before import: vfs copies every layer whole."""
PROMETHEUS_CLIENT_VERSION = "0.26.0"
"""The backend image's prometheus_client (its ``/metrics``): pinned, so the image does not
depend on whether the ``metrics`` extra is installed where it is built."""
BACKEND_PYTHONS = ("3.11", "3.12", "3.13")
"""CPythons a backend base image may have (Debian's 3.11, python:3.12-slim, ...)."""
SHIPPED_DATA = ("_bundle", "_scenarios")
"""Folders a wheel adds to the package (compose bundle, Locust scenarios): the backend needs
neither, so they stay out of its image and its key, and an installed package and a source
checkout of one version share one backend image."""
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


# Toxiproxy ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReleaseAsset:
    """A release binary and the sha256 it must have."""

    url: str
    sha256: str


def release_asset(system: str, machine: str) -> ReleaseAsset | None:
    """The pinned toxiproxy-server release binary for this platform (``platform.system()``,
    ``platform.machine()``); None where the release has none we know the hash of."""
    key = (system.lower(), _ARCHES.get(machine.lower(), machine.lower()))
    sha256 = RELEASE_SHA256.get(key)
    if sha256 is None:
        return None
    return ReleaseAsset(f"{RELEASES}/{SERVER}-{key[0]}-{key[1]}", sha256)


def cache_dir(environ: Mapping[str, str], home: Path) -> Path:
    """``$XDG_CACHE_HOME/pytest-wsconn``, else ``~/.cache/pytest-wsconn`` (a relative
    XDG_CACHE_HOME is ignored, as the XDG spec says)."""
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and PurePath(xdg).is_absolute() else home / ".cache"
    return base / "pytest-wsconn"


def toxiproxy_dir(environ: Mapping[str, str], home: Path) -> Path:
    """Where ``wsconn install toxiproxy`` puts the binaries and the plugin looks last."""
    return cache_dir(environ, home) / "bin"


def images_env_file(environ: Mapping[str, str], home: Path) -> Path:
    """Where ``wsconn images build`` writes the image names the compose provider reads."""
    return cache_dir(environ, home) / "images.env"


def go_install(go: str, gobin: Path) -> tuple[list[str], dict[str, str]]:
    """``go install`` of server and CLI: static, and stamped so it reports the pinned version
    (without ``-X`` a build says ``git``). Returns argv and the environment to add."""
    argv = [
        go,
        "install",
        "-ldflags",
        f"-X {TOXIPROXY_MODULE}.Version={TOXIPROXY_VERSION}",
        f"{TOXIPROXY_MODULE}/cmd/server@v{TOXIPROXY_VERSION}",
        f"{TOXIPROXY_MODULE}/cmd/cli@v{TOXIPROXY_VERSION}",
    ]
    return argv, {"CGO_ENABLED": "0", "GOBIN": str(gobin)}


def reported_version(output: str, program: str = SERVER) -> str | None:
    """The version in ``toxiproxy-server version 2.12.0`` (``--version``'s output), if any."""
    match = re.search(rf"{re.escape(program)} version (\S+)", output)
    return match.group(1) if match else None


# Images ------------------------------------------------------------------------------------


def digest(parts: Iterable[bytes]) -> str:
    """The first 12 hex digits of the sha256 of ``parts`` joined: what a tag carries."""
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part)
    return hashed.hexdigest()[:12]


def toxiproxy_tag(dockerfile: bytes, server: bytes, cli: bytes) -> str:
    return f"pytest-wsconn/toxiproxy:{TOXIPROXY_VERSION}-{digest([dockerfile, server, cli])}"


@dataclasses.dataclass(frozen=True)
class DebianRoot:
    """A Debian root that debootstrap makes with ``packages`` and ``docker import`` tags
    ``pytest-wsconn/NAME``; its tarball is kept, so an emptied image store costs an import."""

    name: str
    packages: str

    def key(self) -> str:
        """Suite, packages and slimming recipe."""
        return digest([f"{DEBIAN_SUITE} {self.packages} {DEBIAN_RECIPE}\n".encode()])

    def tag(self, name: str | None = None) -> str:
        """Its image's tag; ``name``: the same image under another name."""
        return f"pytest-wsconn/{name or self.name}:{DEBIAN_SUITE}-{self.key()}"

    def tarball(self) -> str:
        return f"debian-{DEBIAN_SUITE}-{self.key()}.tar"


DEBIAN = DebianRoot("debian", "python3,python3-venv,ca-certificates,nginx-light")
"""The backend's base; with nginx-light it is the nginx image too (tagged ``nginx``)."""
PROMETHEUS = DebianRoot("prometheus", "prometheus")
"""Debian's Prometheus (and promtool, which its healthcheck runs): the monitoring profile's
image. A root of its own: in the base it would double what every container copies on vfs."""
DEBIAN_ROOTS = (DEBIAN, PROMETHEUS)


def backend_requirements(websockets_version: str) -> tuple[str, ...]:
    """What the backend's wheels are: the websockets installed here, the pinned
    prometheus_client."""
    return (f"websockets=={websockets_version}", f"prometheus_client=={PROMETHEUS_CLIENT_VERSION}")


def backend_tag(
    base_id: str, requirements: Sequence[str], dockerfile: bytes, sources: Iterable[bytes]
) -> str:
    """The backend's tag: its base, its wheels' requirements, its Dockerfile and every ``.py`` of
    the package in path order (the image runs the reference server and, in tests,
    ``wsconn diagnose``)."""
    head = f"{base_id} {' '.join(requirements)}\n".encode()
    return f"pytest-wsconn/backend:{digest([head, dockerfile, *sources])}"


def stale_wheels(names: Iterable[str], requirements: Sequence[str]) -> list[str]:
    """Wheel file names of the required distributions at other versions: a rebuild drops them."""
    pinned = dict(requirement.split("==", 1) for requirement in requirements)
    stale = []
    for name in names:
        distribution, _, rest = name.partition("-")  # a wheel's name has no "-" of its own
        if distribution in pinned and rest.partition("-")[0] != pinned[distribution]:
            stale.append(name)
    return stale


def backend_files(paths: Iterable[str]) -> list[str]:
    """The package's files (``pytest_wsconn/...``) that go into the backend, in byte order of
    their paths: the order their bytes enter its key, as ``find | sort`` always gave it."""
    kept = (p for p in paths if not set(PurePath(p).parts[1:2]) & set(SHIPPED_DATA))
    return sorted(kept, key=lambda path: path.encode())


def superseded(previous: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """Tags an earlier build recorded (its ``images.env``) that this one replaced: ours to
    remove. Tags recorded by no ``images.env`` of ours (another cache's) are never touched."""
    old = [image for name, image in previous.items() if current.get(name) not in (None, image)]
    nginx = previous.get("WSCONN_NGINX_IMAGE", "")
    if nginx in old and nginx.startswith("pytest-wsconn/nginx:"):
        old.append(nginx.replace("pytest-wsconn/nginx:", "pytest-wsconn/debian:", 1))
    return old


def debootstrap_argv(root: DebianRoot, rootfs: Path, mirror: str) -> list[str]:
    return [
        "debootstrap",
        "--variant=minbase",
        f"--include={root.packages}",
        DEBIAN_SUITE,
        str(rootfs),
        mirror,
    ]


def docker_build_argv(tag: str, context: Path, *extra: str) -> list[str]:
    """The legacy builder (no buildx needed); ``--force-rm``: a failed step leaves no container."""
    return ["docker", "build", "--quiet", "--force-rm", *extra, "-t", tag, str(context)]


def wheel_download_argv(
    python: str, requirements: Sequence[str], version: str, dest: Path, *, offline: bool
) -> list[str]:
    """``pip download`` of binary wheels for CPython ``version`` on x86_64 Linux into ``dest``;
    ``offline``: only from the wheels already there (no package index)."""
    platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
    source = ["--no-index", "--find-links", str(dest)] if offline else []
    return [
        python,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        version,
        "--implementation",
        "cp",
        *platforms,
        *source,
        "-d",
        str(dest),
        *requirements,
    ]


def images_env(images: Mapping[str, str]) -> str:
    """The ``images.env`` text: ``NAME=IMAGE`` lines, in IMAGE_VARS order."""
    return "".join(f"{name}={images[name]}\n" for name in IMAGE_VARS if name in images)


def parse_images_env(text: str) -> dict[str, str]:
    """``NAME=IMAGE`` lines of ``images.env`` (others ignored; an ``export`` prefix allowed)."""
    found = {}
    for line in text.splitlines():
        name, equals, value = line.strip().removeprefix("export ").partition("=")
        if equals and name in IMAGE_VARS and value.strip():
            found[name] = value.strip()
    return found


@dataclasses.dataclass(frozen=True)
class ImageChoice:
    """An image variable's value and where it came from (``environment`` or a file's path)."""

    image: str
    source: str


def choose_images(
    environ: Mapping[str, str], built: Mapping[str, str], source: str
) -> dict[str, ImageChoice]:
    """The image variables to use: exported ones win over those ``wsconn images build`` wrote."""
    chosen = {name: ImageChoice(image, source) for name, image in built.items()}
    for name in IMAGE_VARS:
        if environ.get(name):
            chosen[name] = ImageChoice(environ[name], "environment")
    return {name: chosen[name] for name in IMAGE_VARS if name in chosen}


def used_images(
    chosen: Mapping[str, ImageChoice], compose_texts: Iterable[str]
) -> dict[str, ImageChoice]:
    """The chosen images the compose files refer to (``${WSCONN_..._IMAGE``), and Toxiproxy's,
    which an injected Toxiproxy service runs."""
    texts = list(compose_texts)
    return {
        name: choice
        for name, choice in chosen.items()
        if name == IMAGE_VARS[0]
        or any(f"${{{name}" in text or f"${name}" in text for text in texts)
    }


def describe_images(chosen: Mapping[str, ImageChoice]) -> str:
    """The report header's words for the images, e.g. ``images a, b (from ~/.cache/…)``."""
    if not chosen:
        return "images as the compose file names them"
    sources = sorted({choice.source for choice in chosen.values()})
    names = ", ".join(choice.image for choice in chosen.values())
    return f"images {names} (from {' and '.join(sources)})"
