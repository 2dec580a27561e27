"""nginx in front of the reference server: what ``wsconn check`` predicts is what a client meets.

Each broken config is judged twice: ``wsconn check`` must flag it with the expected rule, and a
real connection through a real nginx must fail with the category that finding predicts. nginx
runs as a child of the test (``/usr/sbin/nginx``, all its paths inside ``tmp_path``) and is
always stopped; every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest
from support import Service, unavailable

from pytest_wsconn.cli.check import main
from pytest_wsconn.client import connect
from pytest_wsconn.configcheck.nginx import (
    check_nginx,
    proxy_targets,
    read_nginx,
    select_location,
    servers,
)
from pytest_wsconn.exceptions import ConnectFailed
from pytest_wsconn.expect import classify
from pytest_wsconn.stack.processes import spawn, stop
from pytest_wsconn.timing import scaled, wait_until

NGINX = Path("/usr/sbin/nginx")
TEMPLATES = Path(__file__).parent / "fixtures" / "configcheck" / "nginx"
PREDICTION = re.compile(r"wsconn classifies the failure as (\w+)")
PING_INTERVAL = "20"

MAIN_CONF = """\
worker_processes 1;
{user}
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def nginx_binary() -> Path:
    """The nginx to test against; missing is a failure on CI, a skip elsewhere."""
    if not os.access(NGINX, os.X_OK):
        unavailable(f"nginx is not installed at {NGINX} (apt-get install nginx-light)")
    return NGINX


@pytest.fixture
def nginx(
    tmp_path: Path, nginx_binary: Path, reference_service: Service
) -> Iterator[Callable[[str], tuple[Path, int]]]:
    """Start nginx with a fixture template in front of the reference server: (conf, port)."""
    processes = []

    def start(template: str) -> tuple[Path, int]:
        port = free_port()
        upstream = urlsplit(reference_service.url).netloc
        site = (TEMPLATES / template).read_text()
        site = site.replace("__LISTEN__", f"127.0.0.1:{port}").replace("__UPSTREAM__", upstream)
        (tmp_path / "site.conf").write_text(site)
        # As root, workers would run as nobody and could not read tmp_path: a 403, not a 404.
        user = "user root;" if os.geteuid() == 0 else ""
        conf = tmp_path / "nginx.conf"
        conf.write_text(MAIN_CONF.format(tmp=tmp_path, user=user))
        log = (tmp_path / "nginx.log").open("wb")
        process = spawn(
            [
                str(nginx_binary),
                "-e",
                "stderr",
                "-p",
                str(tmp_path),
                "-c",
                str(conf),
                "-g",
                f"daemon off; pid {tmp_path}/nginx.pid; error_log stderr;",
            ],
            stdout=log,
            stderr=log,
            env=os.environ,
        )
        log.close()
        processes.append(process)
        up = wait_until(lambda: process.poll() is not None or accepts(port), scaled(10))
        if not up or process.poll() is not None:
            pytest.fail(f"nginx did not start:\n{(tmp_path / 'nginx.log').read_text()}")
        return conf, port

    yield start
    for process in processes:
        stop(process, scaled(5))


class Broken(NamedTuple):
    """A broken template, the rules the check must raise, and the HTTP status nginx returns."""

    template: str
    rules: tuple[str, ...]
    status: int


def check(conf: Path, *options: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """``wsconn check --nginx conf --ping-interval 20 --json`` as a user runs it."""
    main(["--nginx", str(conf), "--ping-interval", PING_INTERVAL, "--json", *options])
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return report


def predicted(report: dict[str, object], rule: str) -> str:
    """The category the finding with ``rule`` predicts in its ``why``."""
    findings = report["findings"]
    assert isinstance(findings, list)
    rules = [f["rule"] for f in findings]
    finding = next((f for f in findings if f["rule"] == rule), None)
    assert finding is not None, f"expected {rule}, got {rules}"
    match = PREDICTION.search(finding["why"])
    assert match is not None, finding["why"]
    return match.group(1)


@pytest.mark.asyncio
class TestBehindNginx:
    async def test_good_config_passes_and_echoes(
        self,
        nginx: Callable[[str], tuple[Path, int]],
        reference_service: Service,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The documented config has no findings, and a message echoes through it."""
        conf, port = nginx("good.conf")
        report = check(conf, "--ws-path", "/ws", capsys=capsys)
        assert (report["ok"], report["findings"]) == (True, [])
        conn = await connect(
            f"ws://127.0.0.1:{port}/ws", token=reference_service.token, open_timeout=scaled(5)
        )
        try:
            assert await conn.echo("through nginx", timeout=scaled(5)) == "through nginx"
        finally:
            await conn.close()

    @pytest.mark.parametrize(
        "case",
        [
            Broken(
                "no-upgrade-headers.conf", ("nginx-upgrade-header", "nginx-connection-header"), 426
            ),
            Broken("http10.conf", ("nginx-http-version",), 505),
            Broken("wrong-location.conf", ("nginx-ws-path-unrouted",), 404),
            Broken("wrong-upstream-path.conf", ("nginx-proxy-pass-uri",), 404),
        ],
        ids=lambda case: case.template,
    )
    async def test_broken_handshake_fails_as_predicted(
        self,
        nginx: Callable[[str], tuple[Path, int]],
        reference_service: Service,
        capsys: pytest.CaptureFixture[str],
        case: Broken,
    ) -> None:
        """The check flags the config, and the handshake fails with the predicted category."""
        conf, port = nginx(case.template)
        report = check(conf, "--ws-path", "/ws", capsys=capsys)
        predictions = {predicted(report, rule) for rule in case.rules}
        with pytest.raises(ConnectFailed) as failed:
            await connect(
                f"ws://127.0.0.1:{port}/ws", token=reference_service.token, open_timeout=scaled(5)
            )
        attempt = failed.value.attempt
        assert attempt.http_status == case.status
        assert predictions == {classify(attempt).category}

    async def test_short_read_timeout_cuts_idle_connections(
        self,
        nginx: Callable[[str], tuple[Path, int]],
        reference_service: Service,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A 1 s read timeout is flagged, and an idle connection drops (1006) after about 1 s."""
        conf, port = nginx("short-read-timeout.conf")
        prediction = predicted(check(conf, capsys=capsys), "nginx-read-timeout")
        conn = await connect(
            f"ws://127.0.0.1:{port}/ws",
            token=reference_service.token,
            open_timeout=scaled(5),
            ping_interval=None,  # idle as between two pings 20 s apart
        )
        assert await conn.echo("before the cut", timeout=scaled(5)) == "before the cut"
        opened = time.monotonic()
        assert await conn.wait_closed_within(scaled(5)), "nginx kept the idle connection open"
        lived = time.monotonic() - opened
        assert conn.attempt is not None and conn.attempt.close is not None
        assert (conn.attempt.close.code, conn.attempt.close.received) == (1006, False)
        assert 0.8 <= lived <= scaled(3)
        assert classify(conn.attempt).category == prediction == "network"


def write(tmp_path: Path, text: str, name: str = "nginx.conf") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def rules_of(tmp_path: Path, text: str, *, ws_path: str = "/ws", known: bool = True) -> list[str]:
    config = read_nginx(write(tmp_path, text))
    findings = check_nginx([config], ws_path=ws_path, path_known=known, ping_interval=20)
    return sorted(f.rule for f in findings)


GOOD_HEADERS = """
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
"""


class TestNginxRules:
    def test_map_idiom_is_recognised(self, tmp_path: Path) -> None:
        """``$connection_upgrade`` from the documented map counts as Connection: upgrade."""
        text = (
            "map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
            f"server {{ location /ws {{ proxy_pass http://b:8000; {GOOD_HEADERS} }} }}"
        )
        assert rules_of(tmp_path, text) == []

    def test_map_with_wrong_default_and_undefined_variable(self, tmp_path: Path) -> None:
        """A map that yields ``close`` is an error; a variable no map defines is a warning."""
        wrong = "map $http_upgrade $connection_upgrade { default close; }\n"
        text = f"{wrong}server {{ location /ws {{ proxy_pass http://b; {GOOD_HEADERS} }} }}"
        assert rules_of(tmp_path, text) == ["nginx-connection-header"]
        config = read_nginx(write(tmp_path, text.replace(wrong, ""), "other.conf"))
        findings = check_nginx([config], ws_path="/ws", path_known=True, ping_interval=20)
        assert [(f.rule, f.severity) for f in findings] == [("nginx-connection-header", "warning")]

    def test_location_headers_replace_server_headers(self, tmp_path: Path) -> None:
        """One proxy_set_header in the location drops the Upgrade headers set on the server."""
        text = (
            f"server {{ {GOOD_HEADERS}\n"
            "  location /ws { proxy_pass http://b; proxy_set_header X-Request-Id $request_id; }\n}"
        )
        config = read_nginx(write(tmp_path, text))
        findings = check_nginx([config], ws_path="/ws", path_known=True, ping_interval=20)
        upgrade = next(f for f in findings if f.rule == "nginx-upgrade-header")
        assert "replace the ones set further out" in upgrade.what
        assert upgrade.line == len(text.splitlines()) - 1  # the location's own line

    def test_default_timeout_below_a_long_ping_interval(self, tmp_path: Path) -> None:
        """nginx's default 60 s read timeout is flagged for a 90 s ping interval."""
        text = f"server {{ location /ws {{ proxy_pass http://b; {GOOD_HEADERS} }} }}"
        text = "map $http_upgrade $connection_upgrade { default upgrade; }\n" + text
        config = read_nginx(write(tmp_path, text))
        findings = check_nginx([config], ws_path="/ws", path_known=True, ping_interval=90)
        assert sorted(f.rule for f in findings) == ["nginx-read-timeout", "nginx-send-timeout"]
        assert "60 s (nginx's default)" in findings[0].what

    def test_socket_io_needs_buffering_off(self, tmp_path: Path) -> None:
        """A socket.io location (long-polling fallback) warns while proxy_buffering is on."""
        text = (
            "map $http_upgrade $connection_upgrade { default upgrade; }\n"
            f"server {{ location /socket.io/ {{ proxy_pass http://b; {GOOD_HEADERS} }} }}"
        )
        assert rules_of(tmp_path, text, ws_path="/socket.io/") == ["nginx-buffering"]
        fixed = text.replace("proxy_pass http://b;", "proxy_pass http://b; proxy_buffering off;")
        assert rules_of(tmp_path, fixed, ws_path="/socket.io/") == []

    def test_guessed_path_judges_only_websocket_locations(self, tmp_path: Path) -> None:
        """Without a known path a plain ``location /`` proxy is not judged, only noted."""
        text = "server { location / { proxy_pass http://frontend:3000; } }"
        assert rules_of(tmp_path, text, known=False) == ["nginx-no-websocket-location"]
        assert rules_of(tmp_path, text, known=True) == [
            "nginx-connection-header",
            "nginx-forwarded-headers",
            "nginx-host-header",
            "nginx-http-version",
            "nginx-upgrade-header",
        ]

    def test_syntax_errors_and_missing_includes(self, tmp_path: Path) -> None:
        """A broken file is an error at its line; a missing include is only noted."""
        assert rules_of(tmp_path, "server {\n  location /ws {\n") == ["nginx-syntax"]
        text = "server { include /nonexistent/proxy_params; }"
        assert rules_of(tmp_path, text) == ["nginx-include-missing"]

    @pytest.mark.parametrize(
        ("path", "chosen"),
        [
            ("/ws", "= /ws"),
            ("/ws/room", "~ ^/ws/"),
            ("/static/ws/x", "^~ /static/"),
            ("/api/x", "/api"),
            ("/other", "/"),
        ],
    )
    def test_location_selection(self, tmp_path: Path, path: str, chosen: str) -> None:
        """Exact, then ^~ prefixes, then regexes in order, then the longest prefix."""
        text = (
            "server { location / {} location /api {} location = /ws {} "
            "location ^~ /static/ {} location ~ ^/ws/ {} location ~ ws {} }"
        )
        (server,) = servers([read_nginx(write(tmp_path, text))])
        location = select_location(server.locations, path)
        assert location is not None
        assert f"{location.modifier} {location.pattern}".strip() == chosen

    def test_proxy_targets_follow_upstreams(self, tmp_path: Path) -> None:
        """proxy_pass hosts, and the servers of a named upstream, with their lines."""
        text = (
            "upstream api { server backend:8000; server unix:/tmp/s.sock; }\n"
            "server {\n location /ws { proxy_pass http://api; }\n"
            " location /x { proxy_pass https://localhost/x; } }"
        )
        targets = proxy_targets([read_nginx(write(tmp_path, text))])
        assert [(t.host, t.port, t.line) for t in targets] == [
            ("backend", 8000, 1),
            ("localhost", 443, 4),
        ]


class TestNginxRefusesToStart:
    @pytest.mark.parametrize(
        ("site", "rule"),
        [
            ("server {\n  location /ws {\n", "nginx-syntax"),
            (
                "server { location /ws { proxy_pass http://127.0.0.1:9; proxy_read_timeout 1x; } }",
                "nginx-syntax",
            ),
            ("server { include /nonexistent/proxy_params; }", "nginx-include-missing"),
        ],
    )
    def test_real_nginx_refuses_what_check_flags(
        self, tmp_path: Path, nginx_binary: Path, site: str, rule: str
    ) -> None:
        """What `wsconn check` flags here, `nginx -t` refuses too: nothing would be proxied."""
        assert rule in rules_of(tmp_path, site)
        (tmp_path / "site.conf").write_text(site)
        conf = tmp_path / "main.conf"
        conf.write_text(MAIN_CONF.format(tmp=tmp_path, user=""))
        result = subprocess.run(
            [
                str(nginx_binary),
                "-t",
                "-e",
                "stderr",
                "-p",
                str(tmp_path),
                "-c",
                str(conf),
                "-g",
                f"pid {tmp_path}/nginx.pid; error_log stderr;",
            ],
            capture_output=True,
            text=True,
            timeout=scaled(30),
            check=False,
        )
        assert result.returncode != 0, result.stderr
        assert "[emerg]" in result.stderr
