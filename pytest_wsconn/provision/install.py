"""``wsconn install toxiproxy``: the pinned Toxiproxy where the plugin finds it.

With Go: ``go install`` of server and CLI, static (``CGO_ENABLED=0``, so the same binary runs
in a ``FROM scratch`` image) and stamped with the version, so ``--version`` says 2.12.0 and
not ``git``. Without Go: the release's toxiproxy-server, checked against its pinned sha256
before it is made executable (the release's CLI has no pinned hash here, so none is fetched).
Either way the result must report the pinned version, or nothing counts as installed.

The default destination is the user cache (``$XDG_CACHE_HOME/pytest-wsconn/bin``), the last
place the plugin looks; this repository's ``toxiproxy/install.sh`` passes ``--dest``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from pytest_wsconn.exceptions import StackError
from pytest_wsconn.provision import pins
from pytest_wsconn.provision.pins import CLI, SERVER, TOXIPROXY_VERSION, ReleaseAsset
from pytest_wsconn.timing import scaled

GO_FALLBACK = Path("/usr/local/go/bin/go")
"""Where Go's official installer puts it, without touching PATH."""
_CHUNK = 1 << 16
_REINSTALL_HINT = (
    f"`wsconn install toxiproxy --force` installs Toxiproxy {TOXIPROXY_VERSION} afresh"
)


def find_go(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The Go toolchain: ``--go``, else ``go`` on PATH, else Go's default install folder."""
    if explicit:
        if shutil.which(explicit, path=environ.get("PATH", os.defpath)) is None:
            raise StackError(f"--go is {explicit!r}, which is not an executable")
        return explicit
    on_path = shutil.which("go", path=environ.get("PATH", os.defpath))
    if on_path is not None:
        return on_path
    return str(GO_FALLBACK) if os.access(GO_FALLBACK, os.X_OK) else None


def binary_version(binary: Path, program: str = SERVER) -> str:
    """The version ``binary --version`` reports, e.g. ``"2.12.0"`` (``"git"``: built without -X).

    The one place a Toxiproxy binary's version is read; StackError says what it printed instead.
    """
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=scaled(10),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"could not run {binary} --version: {exc}", hint=_REINSTALL_HINT) from exc
    version = pins.reported_version(result.stdout + result.stderr, program)
    if version is None:
        output = (result.stdout + result.stderr).strip()[-500:]
        raise StackError(
            f"{binary} --version did not say '{program} version X' "
            f"(exit code {result.returncode}): {output!r}",
            hint=_REINSTALL_HINT,
        )
    return version


def _has_pinned_version(binary: Path, program: str = SERVER) -> bool:
    try:
        return binary_version(binary, program) == TOXIPROXY_VERSION
    except StackError:  # missing, or not a Toxiproxy binary: not installed
        return False


def _place(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` as an executable, atomically (a reader never sees half)."""
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    partial.chmod(0o755)
    partial.replace(target)


def build_with_go(go: str, dest: Path) -> None:
    """``go install`` server and CLI into a temporary GOBIN, then place them in ``dest``."""
    with tempfile.TemporaryDirectory(prefix="wsconn-go-") as gobin:
        argv, extra = pins.go_install(go, Path(gobin))
        try:
            result = subprocess.run(
                argv,
                env={**os.environ, **extra},
                capture_output=True,
                text=True,
                timeout=scaled(900),
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(
                f"`go install` of Toxiproxy {TOXIPROXY_VERSION} did not run: {exc}",
                hint="check the Go toolchain with `go version`, or rerun with --no-go",
            ) from exc
        if result.returncode != 0:
            said = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise StackError(
                f"`go install` of Toxiproxy {TOXIPROXY_VERSION} failed "
                f"(exit code {result.returncode}):\n{said}",
                hint="it fetches the module through the Go module proxy (GOPROXY); "
                "or rerun with --no-go to download the release binary",
            )
        dest.mkdir(parents=True, exist_ok=True)
        _place(Path(gobin) / "server", dest / SERVER)
        _place(Path(gobin) / "cli", dest / CLI)


def download_release(asset: ReleaseAsset, dest: Path, *, timeout: float | None = None) -> None:
    """Download ``asset`` to ``dest/toxiproxy-server`` if its sha256 is the pinned one.

    It is written beside the target and hashed while it streams; a wrong hash or a failed
    download leaves nothing behind.
    """
    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / f"{SERVER}.download"
    hashed = hashlib.sha256()
    try:
        with (
            urllib.request.urlopen(asset.url, timeout=timeout or scaled(60)) as response,  # noqa: S310 - https (or a test's loopback) URL built from pins
            partial.open("wb") as out,
        ):
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                hashed.update(chunk)
                out.write(chunk)
    except OSError as exc:  # URLError, HTTPError and timeouts are OSErrors
        partial.unlink(missing_ok=True)
        raise StackError(
            f"could not download {asset.url}: {exc}",
            hint="check this machine can reach GitHub's release downloads (HTTPS_PROXY?), "
            "or install Go and rerun: it builds Toxiproxy from source instead",
        ) from exc
    if hashed.hexdigest() != asset.sha256:
        partial.unlink()
        raise StackError(
            f"{asset.url} has sha256 {hashed.hexdigest()}, not the pinned {asset.sha256}; "
            "nothing was installed",
            hint="something between here and GitHub changed the file; retry elsewhere, or "
            "install Go and rerun: it builds Toxiproxy from source instead",
        )
    partial.chmod(0o755)
    partial.replace(dest / SERVER)


def install_toxiproxy(
    dest: Path,
    *,
    go: str | None,
    asset: ReleaseAsset | None,
    force: bool = False,
    say: Callable[[str], None] = lambda _: None,
) -> str:
    """Install the pinned Toxiproxy into ``dest`` unless it is there; return what was done.

    ``go`` builds server and CLI; without it ``asset`` is downloaded (server only).
    """
    server_ok = _has_pinned_version(dest / SERVER)
    cli_ok = _has_pinned_version(dest / CLI, CLI)
    if not force and server_ok and (cli_ok or go is None):
        return f"toxiproxy {TOXIPROXY_VERSION} already installed in {dest}"
    if go is not None:
        say(f"building Toxiproxy {TOXIPROXY_VERSION} with {go} install (a minute or two at first)")
        build_with_go(go, dest)
        done = f"built {SERVER} and {CLI} with go install into {dest}"
    elif asset is not None:
        say(f"downloading {asset.url}")
        download_release(asset, dest)
        done = f"downloaded {SERVER} (sha256 checked) into {dest}"
    else:
        raise StackError(
            f"no Go toolchain, and no release binary of Toxiproxy {TOXIPROXY_VERSION} is pinned "
            f"for {platform.system()} {platform.machine()}",
            hint="install Go (https://go.dev/dl/) and rerun: it builds Toxiproxy from source",
        )
    reported = binary_version(dest / SERVER)
    if reported != TOXIPROXY_VERSION:
        raise StackError(
            f"{dest / SERVER} reports version {reported}, "
            f"not {TOXIPROXY_VERSION}, after it was installed",
            hint=f"run `{dest / SERVER} --version` to see what it says",
        )
    return f"toxiproxy {TOXIPROXY_VERSION}: {done}"
