"""The Toxiproxy client, the server runner and each fault's effect, against a real toxiproxy-server.

Traffic goes test socket -> Toxiproxy proxy -> a threaded TCP echo server. Every wait has a
deadline (socket timeouts or ``wait_until``) scaled by ``WSCONN_TIMEOUT_FACTOR``.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import FAKE_TOXIPROXY, unavailable

from pytest_wsconn import faults
from pytest_wsconn.exceptions import ConfigError, StackError, ToxiproxyError
from pytest_wsconn.provision.install import binary_version
from pytest_wsconn.stack import toxiproxy_server
from pytest_wsconn.stack.toxiproxy_server import (
    ToxiproxyServer,
    UnpinnedToxiproxyWarning,
    find_toxiproxy_binary,
)
from pytest_wsconn.timing import scaled, wait_until
from pytest_wsconn.toxiproxy import Proxy, ToxiproxyClient

WAIT = scaled(3.0)
"""Upper bound for anything that should happen; tests normally finish far sooner."""

_names = itertools.count()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            return  # a reset_peer test resets this side too


@pytest.fixture(scope="module")
def echo_address() -> Iterator[tuple[str, int]]:
    """A TCP echo server on 127.0.0.1 that echoes until the peer closes, then closes."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    host, port = server.socket.getsockname()
    yield host, port
    server.shutdown()
    server.server_close()
    thread.join(WAIT)


@pytest.fixture
def client(toxiproxy_server: ToxiproxyServer) -> ToxiproxyClient:
    """The session server's API client."""
    return toxiproxy_server.client


@pytest.fixture
def proxy(client: ToxiproxyClient, echo_address: tuple[str, int]) -> Iterator[Proxy]:
    """A fresh proxy on a server-chosen port in front of the echo server; deleted afterwards."""
    host, port = echo_address
    created = client.create_proxy(f"echo{next(_names)}", "127.0.0.1:0", f"{host}:{port}")
    yield created
    client.delete_proxy(created.name)


def _connect(proxy: Proxy) -> socket.socket:
    return socket.create_connection(proxy.listen_address, timeout=WAIT)


def _recv_exactly(sock: socket.socket, size: int) -> list[bytes]:
    """Read ``size`` bytes; return them as the chunks recv() delivered."""
    chunks: list[bytes] = []
    while sum(map(len, chunks)) < size:
        chunk = sock.recv(size)
        assert chunk, f"closed after {sum(map(len, chunks))} of {size} bytes"
        chunks.append(chunk)
    return chunks


def _read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _echo_once(proxy: Proxy, payload: bytes = b"ping") -> bytes:
    with _connect(proxy) as sock:
        sock.sendall(payload)
        return b"".join(_recv_exactly(sock, len(payload)))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie left for a non-reaping init counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rpartition(")")[2].split()[0] not in {"Z", "X"}
    except FileNotFoundError:
        return False


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


class TestToxiproxyClient:
    """ToxiproxyClient: the server-wide API calls and how errors reach the user."""

    def test_version(self, client: ToxiproxyClient) -> None:
        """The pinned build reports 2.12.0 (not "git"): the install stamped the version in."""
        assert client.version() == "2.12.0"

    def test_port_zero_proxy_echoes(self, client: ToxiproxyClient, proxy: Proxy) -> None:
        """A proxy created on 127.0.0.1:0 reports its real port and carries traffic."""
        assert proxy.listen_address[1] != 0
        assert _echo_once(proxy, b"hello") == b"hello"
        assert client.proxies()[proxy.name].listen == proxy.listen

    def test_duplicate_proxy(self, client: ToxiproxyClient, proxy: Proxy) -> None:
        """Creating a proxy twice is a 409 carrying Toxiproxy's own message."""
        with pytest.raises(ToxiproxyError, match="proxy already exists") as info:
            client.create_proxy(proxy.name, "127.0.0.1:0", proxy.upstream)
        assert info.value.status == 409

    def test_unknown_toxic_type(self, client: ToxiproxyClient, proxy: Proxy) -> None:
        """A toxic type Toxiproxy lacks is a 400 with the server's message."""
        with pytest.raises(ToxiproxyError, match="invalid toxic type") as info:
            client.request("POST", f"/proxies/{proxy.name}/toxics", {"type": "packet_loss"})
        assert info.value.status == 400

    def test_deleted_proxy_not_found(
        self, client: ToxiproxyClient, echo_address: tuple[str, int]
    ) -> None:
        """After delete_proxy the proxy is gone: a 404 saying so."""
        host, port = echo_address
        created = client.create_proxy(f"gone{next(_names)}", "127.0.0.1:0", f"{host}:{port}")
        client.delete_proxy(created.name)
        with pytest.raises(ToxiproxyError, match="proxy not found") as info:
            client.proxy(created.name)
        assert info.value.status == 404

    def test_reset_clears_everything(self, client: ToxiproxyClient, proxy: Proxy) -> None:
        """reset() removes every toxic and re-enables every proxy."""
        proxy.add_toxic(faults.latency(10))
        proxy.disable()
        client.reset()
        assert proxy.toxics() == []
        assert client.proxy(proxy.name).enabled
        assert _echo_once(proxy) == b"ping"

    def test_unreachable(self) -> None:
        """A server nobody runs is a ToxiproxyError whose hint asks whether it is running."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(ToxiproxyError) as info:
            ToxiproxyClient(url, timeout=WAIT).version()
        assert info.value.message == (
            f"Toxiproxy at {url} refused the connection (GET /version): nothing listens there"
        )
        assert (
            info.value.hint
            == "start toxiproxy-server, or point --wsconn-toxiproxy at where it runs"
        )
        assert info.value.status is None
        assert info.value.__cause__ is None

    def test_silent(self) -> None:
        """A port that accepts but never answers times out, saying so in one sentence."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            with pytest.raises(ToxiproxyError) as info:
                ToxiproxyClient(url, timeout=0.2).version()
        assert info.value.message == f"Toxiproxy at {url} did not answer GET /version within 0.2 s"

    @pytest.mark.parametrize("url", ["127.0.0.1:8474", "https://127.0.0.1:8474", "http://"])
    def test_bad_url(self, url: str) -> None:
        """Only http://host[:port] URLs are accepted, with an example in the hint."""
        with pytest.raises(ConfigError, match="is not an http://host:port URL"):
            ToxiproxyClient(url)


class TestProxy:
    """Proxy: toxics, enable/disable and the context managers that undo themselves."""

    def test_add_and_remove_toxic(self, proxy: Proxy) -> None:
        """add_toxic returns Toxiproxy's default name and remove_toxic takes it away."""
        assert proxy.add_toxic(faults.latency(5, stream="upstream")) == "latency_upstream"
        assert proxy.add_toxic(faults.latency(5), name="mine") == "mine"
        assert {toxic["name"] for toxic in proxy.toxics()} == {"latency_upstream", "mine"}
        proxy.remove_toxic("mine")
        assert [toxic["name"] for toxic in proxy.toxics()] == ["latency_upstream"]

    def test_update_toxic(self, proxy: Proxy) -> None:
        """update_toxic PATCHes attributes and toxicity, and the server reports the new values."""
        name = proxy.add_toxic(faults.latency(10, jitter=2))
        proxy.update_toxic(name, {"latency": 50}, toxicity=0.5)
        (toxic,) = proxy.toxics()
        assert toxic["attributes"] == {"latency": 50, "jitter": 2}
        assert toxic["toxicity"] == 0.5

    def test_update_toxic_unknown_attribute(self, proxy: Proxy) -> None:
        """A misspelt attribute, which Toxiproxy would silently ignore, is an error."""
        name = proxy.add_toxic(faults.latency(10))
        with pytest.raises(ToxiproxyError, match=r"has no attribute\(s\) latancy") as info:
            proxy.update_toxic(name, {"latancy": 50})
        assert info.value.hint == "its attributes: jitter, latency"

    def test_update_missing_toxic(self, proxy: Proxy) -> None:
        """Updating a toxic that does not exist is Toxiproxy's 404."""
        with pytest.raises(ToxiproxyError, match="toxic not found") as info:
            proxy.update_toxic("nope", {"latency": 1})
        assert info.value.status == 404

    def test_apply_undoes_on_exception(self, proxy: Proxy) -> None:
        """apply removes its toxic when the block raises, and the error still propagates."""

        def fail_inside() -> None:
            with proxy.apply(faults.latency(10)):
                assert len(proxy.toxics()) == 1
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            fail_inside()
        assert proxy.toxics() == []

    def test_apply_survives_reset_inside(self, proxy: Proxy) -> None:
        """A reset inside the block already removed the toxic; leaving the block is still fine."""
        with proxy.slow_close(10):
            proxy.reset()
        assert proxy.toxics() == []

    def test_down_refuses_then_recovers(self, proxy: Proxy) -> None:
        """down() refuses connections for the block and the same address works after it."""
        with proxy.down():
            assert not proxy.enabled
            with pytest.raises(ConnectionRefusedError):
                _connect(proxy)
        assert proxy.enabled
        assert _echo_once(proxy) == b"ping"

    def test_reset_only_this_proxy(self, client: ToxiproxyClient, proxy: Proxy) -> None:
        """Proxy.reset clears its own toxics and disabled state but leaves other proxies alone."""
        other = client.create_proxy(f"other{next(_names)}", "127.0.0.1:0", proxy.upstream)
        try:
            other.add_toxic(faults.latency(10))
            proxy.add_toxic(faults.bandwidth(1))
            proxy.add_toxic(faults.latency(1))
            proxy.disable()
            proxy.reset()
            assert proxy.toxics() == []
            assert client.proxy(proxy.name).enabled
            assert len(other.toxics()) == 1
        finally:
            client.delete_proxy(other.name)

    def test_down_is_not_a_toxic(self, proxy: Proxy) -> None:
        """add_toxic refuses down, pointing at Proxy.down() instead."""
        with pytest.raises(ConfigError, match="down is not a toxic"):
            proxy.add_toxic(faults.down())


class TestFaultEffects:
    """Each fault, seen from a TCP client: what a WebSocket client would meet."""

    def test_latency(self, proxy: Proxy) -> None:
        """With latency(100) a round trip takes at least 100 ms."""
        with proxy.latency(100), _connect(proxy) as sock:
            start = time.monotonic()
            sock.sendall(b"ping")
            _recv_exactly(sock, 4)
            assert time.monotonic() - start >= 0.1

    def test_bandwidth(self, proxy: Proxy) -> None:
        """With bandwidth(100) 20 kB take about 200 ms: throughput is capped near 100 KB/s."""
        payload = os.urandom(20_000)
        with proxy.bandwidth(100), _connect(proxy) as sock:
            start = time.monotonic()
            sock.sendall(payload)
            assert b"".join(_recv_exactly(sock, len(payload))) == payload
            assert time.monotonic() - start >= 0.15

    def test_slicer(self, proxy: Proxy) -> None:
        """With slicer 50 bytes arrive in several recv() chunks, in order."""
        payload = bytes(range(50))
        with proxy.slicer(10, delay_us=10_000), _connect(proxy) as sock:
            sock.sendall(payload)
            chunks = _recv_exactly(sock, len(payload))
        assert b"".join(chunks) == payload
        assert len(chunks) >= 3

    def test_limit_data(self, proxy: Proxy) -> None:
        """With limit_data(10) the client gets exactly 10 bytes, then the connection closes."""
        with proxy.limit_data(10), _connect(proxy) as sock:
            sock.sendall(b"x" * 30)
            assert _read_to_eof(sock) == b"x" * 10

    def test_reset_peer(self, proxy: Proxy) -> None:
        """With reset_peer the first data back resets the connection (ECONNRESET)."""
        with proxy.reset_peer(), _connect(proxy) as sock:
            sock.sendall(b"ping")
            with pytest.raises(ConnectionResetError):
                _read_to_eof(sock)

    def test_timeout_stalls(self, proxy: Proxy) -> None:
        """With timeout(0) nothing arrives and nothing closes: the silent dead peer."""
        with proxy.timeout(0), _connect(proxy) as sock:
            sock.sendall(b"ping")
            sock.settimeout(scaled(0.3))
            with pytest.raises(TimeoutError):
                sock.recv(1)

    def test_timeout_closes(self, proxy: Proxy) -> None:
        """With timeout(50) no data arrives and the connection closes after the timeout."""
        with proxy.timeout(50), _connect(proxy) as sock:
            start = time.monotonic()
            sock.sendall(b"ping")
            assert _read_to_eof(sock) == b""
            assert time.monotonic() - start >= 0.05

    def test_slow_close(self, proxy: Proxy) -> None:
        """With slow_close(200) the server's close reaches the client 200 ms late."""
        with proxy.slow_close(200), _connect(proxy) as sock:
            sock.sendall(b"ping")
            _recv_exactly(sock, 4)
            start = time.monotonic()
            sock.shutdown(socket.SHUT_WR)
            assert _read_to_eof(sock) == b""
            assert time.monotonic() - start >= 0.2


class TestFindToxiproxyBinary:
    """find_toxiproxy_binary: option, env var, toxiproxy/bin, PATH, then the user cache."""

    @pytest.fixture
    def layout(self, tmp_path: Path) -> dict[str, Path]:
        """An executable toxiproxy-server in every place the lookup searches."""
        places = {"explicit": tmp_path / "opt", "env": tmp_path / "env", "path": tmp_path / "path"}
        places["local"] = tmp_path / "project" / "toxiproxy" / "bin"
        places["cache"] = tmp_path / "cache" / "pytest-wsconn" / "bin"
        for directory in places.values():
            directory.mkdir(parents=True)
        return {name: _script(d / "toxiproxy-server", "exit 0") for name, d in places.items()}

    def test_precedence(self, tmp_path: Path, layout: dict[str, Path]) -> None:
        """Each source wins over every later one, and falls through when absent."""
        project = tmp_path / "project"
        environ = {
            "WSCONN_TOXIPROXY_BIN": str(layout["env"]),
            "PATH": str(layout["path"].parent),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        }
        assert (
            find_toxiproxy_binary(str(layout["explicit"]), project, environ) == layout["explicit"]
        )
        assert find_toxiproxy_binary(None, project, environ) == layout["env"]
        del environ["WSCONN_TOXIPROXY_BIN"]
        assert find_toxiproxy_binary(None, project, environ) == layout["local"]
        layout["local"].unlink()
        assert find_toxiproxy_binary(None, project, environ) == layout["path"]
        layout["path"].unlink()
        assert find_toxiproxy_binary(None, project, environ) == layout["cache"]

    def test_user_cache_defaults_to_home(self, tmp_path: Path) -> None:
        """Without XDG_CACHE_HOME the user cache is ~/.cache/pytest-wsconn/bin."""
        folder = tmp_path / ".cache" / "pytest-wsconn" / "bin"
        folder.mkdir(parents=True)
        binary = _script(folder / "toxiproxy-server", "exit 0")
        environ = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
        assert find_toxiproxy_binary(None, tmp_path, environ) == binary

    def test_not_found_says_how_to_install(self, tmp_path: Path) -> None:
        """With no binary anywhere the error names every place and the command that installs."""
        environ = {"PATH": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
        with pytest.raises(StackError, match="toxiproxy-server not found") as info:
            find_toxiproxy_binary(None, tmp_path, environ)
        message = str(info.value)
        for advice in [
            str(tmp_path / "toxiproxy" / "bin" / "toxiproxy-server"),
            str(tmp_path / "cache" / "pytest-wsconn" / "bin" / "toxiproxy-server"),
            "hint: run `wsconn install toxiproxy`",
            "WSCONN_TOXIPROXY_BIN",
            "--wsconn-toxiproxy-bin",
        ]:
            assert advice in message

    def test_explicit_not_executable(self, tmp_path: Path) -> None:
        """A non-executable --wsconn-toxiproxy-bin is named, with the chmod to fix it."""
        binary = tmp_path / "toxiproxy-server"
        binary.write_text("")
        with pytest.raises(
            StackError, match=r"--wsconn-toxiproxy-bin is .*, which is not executable"
        ) as info:
            find_toxiproxy_binary(str(binary), tmp_path, {})
        assert info.value.hint == f"chmod +x {binary}"

    def test_env_missing_file(self, tmp_path: Path) -> None:
        """A WSCONN_TOXIPROXY_BIN pointing nowhere is an error, not a silent fallback."""
        missing = str(tmp_path / "nope")
        with pytest.raises(StackError, match=f"WSCONN_TOXIPROXY_BIN is '{missing}', which is not"):
            find_toxiproxy_binary(None, tmp_path, {"WSCONN_TOXIPROXY_BIN": missing})


class TestBinaryVersion:
    """binary_version reads ``--version`` output."""

    def test_real_binary(self, toxiproxy_binary: Path) -> None:
        """The installed binary is the pinned version."""
        assert binary_version(toxiproxy_binary) == "2.12.0"

    def test_unpinned_build(self, tmp_path: Path) -> None:
        """A go install without -ldflags reports "git", which is returned as is."""
        fake = _script(tmp_path / "fake", 'echo "toxiproxy-server version git"')
        assert binary_version(fake) == "git"

    def test_not_toxiproxy(self, tmp_path: Path) -> None:
        """A binary that is not toxiproxy-server is an error quoting what it said."""
        fake = _script(tmp_path / "fake", "echo 'usage: something else' >&2; exit 2")
        with pytest.raises(StackError, match=r"exit code 2\): 'usage: something else'"):
            binary_version(fake)


class TestToxiproxyServer:
    """ToxiproxyServer: a child process that starts fast and never outlives its owner."""

    def test_stop_leaves_no_process(self, toxiproxy_binary: Path) -> None:
        """After stop() the server's pid is gone, and a second stop() is harmless."""
        server = ToxiproxyServer(toxiproxy_binary).start()
        pid = server.pid
        assert server.client.version() == "2.12.0"
        server.stop()
        server.stop()
        assert not _alive(pid)
        assert "Shutdown started" in server.output()

    def test_retries_a_taken_port(
        self, toxiproxy_binary: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When another process holds the chosen port the server retries on a fresh one."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            ports = iter([taken.getsockname()[1]])
            real = toxiproxy_server._free_port
            monkeypatch.setattr(
                toxiproxy_server, "_free_port", lambda host: next(ports, None) or real(host)
            )
            with ToxiproxyServer(toxiproxy_binary) as server:
                assert server.url != f"http://127.0.0.1:{taken.getsockname()[1]}"
                assert server.client.version() == "2.12.0"

    def test_early_exit_shows_output(self, tmp_path: Path) -> None:
        """A binary that exits at once is a StackError quoting its exit code and last output."""
        fake = _script(
            tmp_path / "toxiproxy-server", "echo 'flag provided but not defined'; exit 3"
        )
        with pytest.raises(StackError, match="exited with code 3; its last output:\nflag provided"):
            ToxiproxyServer(fake).start()

    def test_not_a_program(self, tmp_path: Path) -> None:
        """An executable file the kernel cannot run is a StackError naming it."""
        fake = tmp_path / "toxiproxy-server"
        fake.write_bytes(b"\x00not an ELF")
        fake.chmod(0o755)
        with pytest.raises(StackError, match=f"could not run {fake}: .*Exec format error"):
            ToxiproxyServer(fake).start()

    def test_another_version_warns_once(self, tmp_path: Path) -> None:
        """A server whose API says ``git`` runs, with one warning that names the fix."""
        fake = _script(
            tmp_path / "toxiproxy-server", f'exec {sys.executable} {FAKE_TOXIPROXY} "$@"'
        )
        with pytest.warns(UnpinnedToxiproxyWarning) as warned, ToxiproxyServer(fake) as server:
            assert server.version == "git"
        assert len(warned) == 1
        assert str(warned[0].message) == (
            f"{fake} reports version 'git', not the pinned 2.12.0: its toxics may not behave as "
            "these tests expect; `wsconn install toxiproxy` installs the pinned one"
        )

    def test_the_pinned_version_does_not_warn(self, toxiproxy_binary: Path) -> None:
        """The pinned server starts without a warning (warnings are errors in this suite)."""
        with ToxiproxyServer(toxiproxy_binary) as server:
            assert server.version == "2.12.0"

    def test_never_answers(self, tmp_path: Path) -> None:
        """A binary that never serves the API times out and is stopped, not left running."""
        pid_file = tmp_path / "pid"
        fake = _script(tmp_path / "toxiproxy-server", f"echo $$ > {pid_file}; exec sleep 30")
        server = ToxiproxyServer(fake, startup_timeout=scaled(0.2))
        with pytest.raises(StackError, match="did not answer within"):
            server.start()
        assert not _alive(int(pid_file.read_text()))

    def test_dies_with_killed_parent(self, toxiproxy_binary: Path, tmp_path: Path) -> None:
        """SIGKILLing the owning process (no cleanup runs) still takes the server down."""
        if sys.platform != "linux":
            unavailable("PR_SET_PDEATHSIG is Linux-only")
        pid_file = tmp_path / "pid"
        code = (
            "import sys, time\n"
            "from pathlib import Path\n"
            "from pytest_wsconn.stack.toxiproxy_server import ToxiproxyServer\n"
            "server = ToxiproxyServer(Path(sys.argv[1])).start()\n"
            "Path(sys.argv[2]).write_text(str(server.pid))\n"
            "time.sleep(60)\n"
        )
        owner = subprocess.Popen([sys.executable, "-c", code, str(toxiproxy_binary), str(pid_file)])
        try:
            assert wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", WAIT)
            pid = int(pid_file.read_text())
            assert _alive(pid)
        finally:
            owner.kill()
            owner.wait(WAIT)
        try:
            assert wait_until(lambda: not _alive(pid), WAIT)
        finally:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
