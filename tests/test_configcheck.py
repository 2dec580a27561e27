"""``wsconn check``: the .env and compose checks on fixture files, the parsers, and the command."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.commands import wsconn

from pytest_wsconn.cli.check import main
from pytest_wsconn.configcheck import frontend_origin
from pytest_wsconn.configcheck.compose import (
    PortMapping,
    check_compose,
    parse_compose,
    parse_port_mapping,
    read_compose,
)
from pytest_wsconn.configcheck.env import (
    EnvNames,
    EnvVar,
    check_dotenv,
    parse_dotenv,
    read_env_file,
)
from pytest_wsconn.configcheck.nginx import (
    HttpsSite,
    https_sites,
    parse_nginx_time,
    proxy_targets,
    read_nginx,
)
from pytest_wsconn.results import Finding

FIXTURES = Path(__file__).parent / "fixtures" / "configcheck"
PACKAGE = Path(__file__).resolve().parents[1] / "pytest_wsconn" / "configcheck"
CHECK_MODULES = [
    "env/__init__",
    "env/checks",
    "env/dotenv",
    "compose/__init__",
    "compose/checks",
    "compose/references",
    "compose/services",
    "nginx/__init__",
    "nginx/checks",
    "nginx/config",
    "nginx/location_checks",
    "nginx/locations",
    "nginx/sites",
]
IO_MODULES = {"asyncio", "socket", "subprocess", "ssl", "http", "select"}
INT32_MAX = 2**31 - 1

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
VALUES = {
    "double": st.text(),
    "single": st.text(st.characters(exclude_characters="'\n\r")),
    # unquoted: no quotes first, no comment or reference, nothing str.strip() would eat
    "plain": st.text(
        st.characters(exclude_characters="#$'\"", exclude_categories=["Cc", "Zs", "Zl", "Zp"])
    ),
}
TIME_UNITS = [("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)]
TIME_UNITS += [("s", 1000), ("ms", 1)]


def written(style: str, value: str) -> str:
    """``value`` as a .env file writes it in ``style``."""
    if style == "double":
        escapes = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r"}
        return '"' + "".join(escapes.get(c, c) for c in value) + '"'
    return f"'{value}'" if style == "single" else value


def where(findings: list[Finding]) -> list[tuple[int | None, str]]:
    return [(f.line, f.rule) for f in findings]


class TestPurity:
    @pytest.mark.parametrize("module", CHECK_MODULES)
    def test_checks_import_no_io(self, module: str) -> None:
        """The check modules import no asyncio, socket or subprocess: they only read files."""
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        imported = {
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert not {name for name in imported if name.split(".")[0] in IO_MODULES}


class TestDotenvParser:
    def test_syntax(self) -> None:
        """export, comments, both quotes, multi-line values and ${NAME} references parse."""
        text = (
            "# comment\n"
            "export A=1 # trailing comment\n"
            "B='literal $A # kept'\n"
            'C="line one\n'
            'line two ${A} \\$A"\n'
            "D=${MISSING:-fallback}/x#not-a-comment\n"
            "E=$NOPE\n"
            "F\n"
            "not an assignment\n"
            'G="never closed\n'
        )
        env = parse_dotenv(text, "x.env")
        assert [(v.name, v.value, v.line, v.resolved) for v in env.variables] == [
            ("A", "1", 2, True),
            ("B", "literal $A # kept", 3, True),
            ("C", "line one\nline two 1 $A", 4, True),
            ("D", "fallback/x#not-a-comment", 6, True),
            ("E", "$NOPE", 7, False),
        ]
        assert env.bad_lines == (9, 10)

    @given(st.text())
    def test_total(self, text: str) -> None:
        """Any text parses without raising; every line number points into the text."""
        env = parse_dotenv(text)
        lines = text.replace("\r\n", "\n").count("\n") + 1
        assert all(1 <= v.line <= lines for v in env.variables)
        assert all(1 <= line <= lines for line in env.bad_lines)

    @given(st.data(), st.sampled_from(["double", "single", "plain"]))
    def test_round_trip(self, data: st.DataObject, style: str) -> None:
        """Values written the way each quoting style allows read back unchanged."""
        values = data.draw(st.dictionaries(NAMES, VALUES[style], max_size=8))
        env = parse_dotenv("\n".join(f"export {k}={written(style, v)}" for k, v in values.items()))
        assert {v.name: v.value for v in env.variables} == values
        assert env.bad_lines == ()


class TestNginxTime:
    @given(st.text())
    def test_total(self, text: str) -> None:
        """Any text is either refused or a time within nginx's 32-bit millisecond range."""
        millis = parse_nginx_time(text)
        assert millis is None or 0 <= millis <= INT32_MAX

    @given(
        st.integers(0, INT32_MAX),
        st.sets(st.sampled_from(TIME_UNITS), min_size=1),
        st.booleans(),
    )
    def test_round_trip(self, millis: int, units: set[tuple[str, int]], spaced: bool) -> None:
        """A time written in any units, in nginx's order (w d h m s ms), reads back whole."""
        ordered = sorted(units, key=lambda unit: -unit[1])
        total = millis - millis % ordered[-1][1]
        parts, rest = [], total
        for unit, scale in ordered:
            parts.append(f"{rest // scale}{unit}")
            rest %= scale
        assert parse_nginx_time((" " if spaced else "").join(parts)) == total

    @given(st.integers(0, INT32_MAX // 1000))
    def test_bare_number_means_seconds(self, seconds: int) -> None:
        """A number without a unit is seconds, as ``{n}s`` is."""
        assert parse_nginx_time(str(seconds)) == parse_nginx_time(f"{seconds}s") == seconds * 1000

    @pytest.mark.parametrize(
        ("text", "millis"),
        [
            ("30s", 30_000),
            ("1m", 60_000),
            ("1h", 3_600_000),
            ("1m30s", 90_000),
            ("75", 75_000),
            ("500ms", 500),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1h 30m", 5_400_000),
        ],
    )
    def test_time_units(self, text: str, millis: int) -> None:
        """nginx time values in each unit, combined and bare, as nginx reads them."""
        assert parse_nginx_time(text) == millis

    @pytest.mark.parametrize("text", ["", "s", "1x", "1s1m", "1m1m", "1y", "1M", "-1s", "1.5s"])
    def test_invalid_times(self, text: str) -> None:
        """Units out of order, repeated, unknown or only valid for second settings are refused."""
        assert parse_nginx_time(text) is None


class TestEnvChecks:
    def test_good_file_has_no_findings(self) -> None:
        """Consistent URLs, wss from an https page and a matching CORS list pass."""
        env = read_env_file(FIXTURES / "good.env", "good.env")
        assert check_dotenv(env, EnvNames()) == []

    def test_broken_file(self) -> None:
        """Each broken line is flagged with its rule at its line."""
        env = read_env_file(FIXTURES / "broken.env", "broken.env")
        findings = check_dotenv(env, EnvNames())
        assert where(findings) == [
            (5, "env-host-mismatch"),
            (5, "env-scheme-mismatch"),
            (6, "env-url-invalid"),
            (7, "env-cors-wildcard-credentials"),
            (9, "env-cors-origin-format"),
            (9, "env-cors-origin-format"),
            (9, "env-cors-origin-missing"),
            (10, "env-syntax"),
        ]
        assert {f.file for f in findings} == {"broken.env"}
        by_rule = {f.rule: f for f in findings}
        assert (
            by_rule["env-scheme-mismatch"].fix
            == "use wss://app.example.com:8000/ws (TLS terminated by the proxy)"
        )
        assert "https://app.example.com" in by_rule["env-cors-origin-missing"].fix

    def test_explicit_frontend_origin_wins(self) -> None:
        """--frontend-origin replaces FRONTEND_URL: an http page may use ws://."""
        env = parse_dotenv("WS_URL=ws://localhost:8000/ws\nCORS_ORIGINS=http://localhost:5173\n")
        assert check_dotenv(env, EnvNames(), "http://localhost:5173") == []
        findings = check_dotenv(env, EnvNames(), "https://localhost:5173")
        assert where(findings) == [(1, "env-scheme-mismatch"), (2, "env-cors-origin-missing")]

    def test_names_are_configurable(self) -> None:
        """A project's own variable names are checked once added."""
        env = parse_dotenv("SOCKET_ENDPOINT=localhost:8000\n")
        assert check_dotenv(env, EnvNames()) == []
        names = EnvNames().extended(ws=["SOCKET_ENDPOINT"])
        assert where(check_dotenv(env, names)) == [(1, "env-url-invalid")]

    def test_scheme_mismatch_without_a_frontend(self) -> None:
        """ws:// next to an https API of the same app is a warning: the page is likely https."""
        env = parse_dotenv("VITE_API_URL=https://x.example.com\nVITE_WS_URL=ws://x.example.com/ws")
        (finding,) = check_dotenv(env, EnvNames())
        assert (finding.rule, finding.severity, finding.line) == (
            "env-scheme-mismatch",
            "warning",
            2,
        )


class TestComposeParser:
    @pytest.mark.parametrize(
        ("text", "ports"),
        [
            ("8000", [(8000, None)]),
            ("8080:8000", [(8000, 8080)]),
            ("127.0.0.1:8080:8000/tcp", [(8000, 8080)]),
            ("[::1]:8080:8000", [(8000, 8080)]),
            ("9000-9001:8000-8001", [(8000, 9000), (8001, 9001)]),
            ("127.0.0.1::8000", [(8000, None)]),
            ("${PORT}:8000", [(8000, None)]),
            ("nonsense", []),
        ],
    )
    def test_port_mappings(self, text: str, ports: list[tuple[int, int | None]]) -> None:
        """Short-syntax ports give container and published ports; nonsense gives none."""
        assert parse_port_mapping(text, 3) == [PortMapping(c, p, 3) for c, p in ports]

    def test_services_keep_their_lines(self) -> None:
        """Services, merge keys, list and mapping environments keep their YAML lines."""
        compose = read_compose(FIXTURES / "docker-compose.good.yml", "c.yml")
        services = {s.name: s for s in compose.services}
        assert services["backend"].line == 18
        assert services["backend"].healthcheck and services["cache"].healthcheck
        assert [(v.name, v.line) for v in services["frontend"].environment] == [("VITE_WS_URL", 45)]
        assert services["proxy"].depends_on[0].condition == "service_healthy"

    @pytest.mark.parametrize(
        ("text", "line"),
        [("services:\n  a: [\n", 3), ("version: '3'\n", 1), ("services: 5\n", 1)],
    )
    def test_unreadable_files(self, text: str, line: int) -> None:
        """Broken YAML or a file without services is one compose-syntax error with its line."""
        (finding,) = check_compose(parse_compose(text, "c.yml"), EnvNames())
        assert (finding.rule, finding.line) == ("compose-syntax", line)

    def test_an_unterminated_last_directive_is_named(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """crossplane's empty error for a file that ends mid-directive becomes a sentence."""
        conf = tmp_path / "nginx.conf"
        conf.write_text("events {}\nworker_processes 1")
        assert main(["--nginx", str(conf)]) == 1
        assert '[nginx-syntax] the file ends inside a directive or block: a ";"' in (
            capsys.readouterr().out
        )

    def test_control_characters_are_a_syntax_finding(self) -> None:
        """YAML that cannot even be read is one compose-syntax finding, not a traceback."""
        compose = parse_compose("services:\x7f", "bad.yml")
        assert compose.error is not None
        assert compose.error[1].startswith("not a YAML file: unacceptable character #x007f")


class TestComposeChecks:
    def test_good_file_has_no_findings(self) -> None:
        """Service names, shared networks, healthchecks and healthy dependencies pass."""
        compose = read_compose(FIXTURES / "docker-compose.good.yml", "good.yml")
        assert check_compose(compose, EnvNames(), "https://app.example.com") == []

    def test_broken_file(self) -> None:
        """Each broken setting is flagged with its rule at its line."""
        compose = read_compose(FIXTURES / "docker-compose.broken.yml", "broken.yml")
        findings = check_compose(compose, EnvNames())
        assert sorted(where(findings)) == [
            (7, "compose-localhost"),
            (9, "compose-depends-on-started"),
            (12, "compose-depends-on"),
            (12, "compose-healthcheck-missing"),
            (18, "env-cors-wildcard-credentials"),
            (25, "compose-unknown-service"),
            (26, "compose-port-mismatch"),
            (28, "compose-depends-on"),
            (35, "compose-browser-service-name"),
            (35, "env-host-mismatch"),
            (36, "compose-port-unpublished"),
            (39, "compose-healthcheck-missing"),
        ]
        by_rule = {f.rule: f for f in findings}
        assert (
            by_rule["compose-localhost"].fix == "use the backend's service name, e.g. backend:8000"
        )
        assert "inside the network use 8000" in by_rule["compose-port-mismatch"].what

    def test_nginx_upstreams_are_connections_of_the_proxy(self) -> None:
        """nginx's proxy_pass to backend is judged as the proxy service's connection."""
        nginx = read_nginx(str(FIXTURES / "nginx" / "site.conf"))
        compose = read_compose(FIXTURES / "docker-compose.broken.yml", "broken.yml")
        findings = check_compose(compose, EnvNames(), None, proxy_targets([nginx]), nginx.files)
        found = [(Path(f.file).name, f.line, f.rule) for f in findings]
        assert ("site.conf", 11, "compose-no-shared-network") in found
        assert ("broken.yml", 9, "compose-depends-on") in found

    @pytest.mark.parametrize(
        ("web", "backend", "found"),
        [
            ("depends_on: [backend]", "", [(4, "compose-depends-on-started")]),
            ("depends_on:\n      - backend", "", [(5, "compose-depends-on-started")]),
            ("depends_on: [backend]", "healthcheck: {test: [CMD, true]}", []),
            ("depends_on: {backend: {condition: service_started}}", "", []),
            ("depends_on: [db]", "", []),
            (
                "depends_on: [backend]\n    environment: {WS_URL: ws://backend:8000/ws}",
                "",
                [(4, "compose-depends-on"), (6, "compose-healthcheck-missing")],
            ),
        ],
    )
    def test_listed_depends_on(self, web: str, backend: str, found: list[tuple[int, str]]) -> None:
        """The list form waits for a start only: flagged once when nothing tells it healthy."""
        text = f"services:\n  web:\n    image: nginx\n    {web}\n  backend:\n    image: b\n"
        text += f"    {backend}\n" if backend else ""
        findings = check_compose(parse_compose(text, "c.yml"), EnvNames())
        assert where(findings) == found
        for finding in findings:
            if finding.rule == "compose-depends-on-started":
                assert finding.what == (
                    "web lists backend in depends_on, which waits only for it to start, and "
                    "backend has no healthcheck"
                )
                assert finding.fix == (
                    "add a healthcheck to backend and write depends_on: "
                    "{backend: {condition: service_healthy}}"
                )

    def test_host_network_mode_may_use_localhost(self) -> None:
        """A service on the host's network reaches the host's ports through localhost."""
        text = "services:\n  a:\n    network_mode: host\n    environment:\n      API_URL: http://localhost:8000\n"
        assert check_compose(parse_compose(text, "c.yml"), EnvNames()) == []


def sites_of(tmp_path: Path, text: str) -> list[HttpsSite]:
    """The https sites of an nginx config with ``text`` inside its http block."""
    path = tmp_path / "nginx.conf"
    path.write_text(f"http {{ {text} }}\n")
    return https_sites([read_nginx(str(path))])


class TestFrontendOrigin:
    @pytest.mark.parametrize(
        ("text", "origins"),
        [
            (
                "server { listen 443 ssl; server_name app.example.com; }",
                ["https://app.example.com"],
            ),
            ("server { listen [::]:443 ssl http2; server_name A.example; }", ["https://a.example"]),
            ("server { listen 8443 ssl; server_name h; }", ["https://h:8443"]),
            (
                "server { listen 10.0.0.1:443 ssl; server_name _ app.example; }",
                ["https://app.example"],
            ),
            ("server { listen 443; server_name app.example; }", []),
            ("server { listen 443 ssl; server_name _; }", []),
            ("server { listen 443 ssl; server_name *.example.com .example.org; }", []),
            ("server { listen 443 ssl; server_name ~^(?<sub>.+)\\.example$; }", []),
            ("server { listen unix:/run/n.sock ssl; server_name app.example; }", []),
            (
                "server { listen 443 ssl; server_name a.example; }"
                "server { listen 443 ssl; server_name b.example; }",
                ["https://a.example", "https://b.example"],
            ),
        ],
    )
    def test_https_sites(self, tmp_path: Path, text: str, origins: list[str]) -> None:
        """A listen ... ssl server with a concrete name is an https origin; _ and wildcards not."""
        assert [site.origin for site in sites_of(tmp_path, text)] == origins

    def test_one_site_is_inferred(self) -> None:
        """Without --frontend-origin or FRONTEND_URL, the one https site is the page's origin."""
        sites = https_sites([read_nginx(str(FIXTURES / "nginx" / "tls-site.conf"))])
        origin, note = frontend_origin(None, [], EnvNames(), sites)
        assert origin == "https://app.example.com"
        assert note is not None
        assert note.startswith("frontend origin https://app.example.com (inferred from ")
        assert note.endswith("tls-site.conf:14 listen 443 ssl + server_name app.example.com)")

    def test_declared_origins_win(self) -> None:
        """--frontend-origin, then a FRONTEND_URL variable, come before nginx's guess."""
        sites = https_sites([read_nginx(str(FIXTURES / "nginx" / "tls-site.conf"))])
        explicit = frontend_origin("http://localhost:5173", [], EnvNames(), sites)
        assert explicit == ("http://localhost:5173", None)
        variable = EnvVar("FRONTEND_URL", "http://localhost:5173", ".env", 1)
        assert frontend_origin(None, [variable], EnvNames(), sites) == (None, None)

    def test_several_sites_are_not_guessed(self, tmp_path: Path) -> None:
        """Of two https sites none is taken, and the note says why and what to pass."""
        text = (
            "server { listen 443 ssl; server_name a.example; } "
            "server { listen 443 ssl; server_name b.example; }"
        )
        sites = sites_of(tmp_path, text)
        origin, note = frontend_origin(None, [], EnvNames(), sites)
        assert origin is None
        assert note is not None
        assert note.startswith("frontend origin not inferred: nginx serves https://a.example (")
        assert note.endswith("; pass --frontend-origin")


class TestCommand:
    @pytest.fixture
    def project(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """A project folder with a broken .env, a good compose file and an nginx config."""
        shutil.copy(FIXTURES / "broken.env", tmp_path / ".env")
        shutil.copy(FIXTURES / "docker-compose.good.yml", tmp_path / "docker-compose.yml")
        (tmp_path / "nginx").mkdir()
        shutil.copy(FIXTURES / "nginx" / "site.conf", tmp_path / "nginx" / "site.conf")
        monkeypatch.chdir(tmp_path)
        return tmp_path

    def test_discovers_the_files_here(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without file options it reads .env, compose and nginx files here and names them."""
        assert main([]) == 1
        out = capsys.readouterr().out
        assert out.splitlines()[0] == "wsconn check: read .env, docker-compose.yml, nginx/site.conf"
        assert ".env:10: error [env-syntax] this line is not NAME=value" in out
        assert out.endswith("5 error(s), 3 warning(s)\n")

    def test_nothing_to_check(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An empty folder is no error: it says it found nothing and how to name files."""
        monkeypatch.chdir(tmp_path)
        assert main([]) == 0
        captured = capsys.readouterr()
        assert captured.out == "wsconn check: read no file\n\nno problems found\n"
        assert "found no .env, docker-compose*.yml" in captured.err
        assert "--env-file, --compose or --nginx" in captured.err

    def test_json(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints what was read, whether it is ok, and each finding with its location."""
        assert main(["--env-file", ".env", "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        assert (report["checked"], report["ok"]) == ([".env"], False)
        assert report["findings"][0]["location"] == ".env:5"
        assert {"rule", "severity", "what", "why", "fix", "line", "file"} <= set(
            report["findings"][0]
        )

    def test_github_annotations(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--format github prints one workflow command per finding, with file and line."""
        assert main(["--env-file", ".env", "--format", "github"]) == 1
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 8
        assert lines[-1].startswith("::error file=.env,line=10,title=wsconn env-syntax::")

    def test_warnings_only_exit_zero(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Findings that are only warnings or notes leave the exit status at 0."""
        (project / "w.env").write_text(
            "VITE_API_URL=https://a.example.com\nVITE_WS_URL=ws://a.example.com/ws\n"
        )
        assert main(["--env-file", "w.env"]) == 0
        assert "warning [env-scheme-mismatch]" in capsys.readouterr().out

    def test_nginx_options_reach_the_checks(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--ping-interval and --ws-path are what the nginx checks judge against."""
        assert main(["--nginx", "nginx/site.conf"]) == 0
        assert main(["--nginx", "nginx/site.conf", "--ping-interval", "90"]) == 1
        assert main(["--nginx", "nginx/site.conf", "--ws-path", "/socket"]) == 1
        out = capsys.readouterr().out
        assert "[nginx-read-timeout]" in out
        assert "[nginx-ws-path-unrouted] no location of this server passes /socket" in out

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--nginx", "missing.conf"], "wsconn check: --nginx missing.conf: no such file\n"),
            (["--compose", "nope.yml"], "wsconn check: --compose nope.yml: no such file\n"),
            (["--compose", "binary.yml"], "wsconn check: --compose binary.yml: not a text file\n"),
        ],
    )
    def test_missing_file_is_a_usage_error(
        self, project: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
    ) -> None:
        """A file named on the command line that is missing or binary: exit 2 and one sentence."""
        (project / "binary.yml").write_bytes(b"\x7fELF\x02\x01\x00\x00")
        assert main(args) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", message)

    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            (["--ping-interval", "0"], "'0' is not a positive number of seconds"),
            (["--frontend-origin", "app.example.com"], "is not an origin like https://"),
            (["--ws-path", "ws"], "'ws' is not a path like /ws"),
            (["--json", "--format", "github"], "not allowed with argument"),
            (["--format", "xml"], "invalid choice: 'xml'"),
        ],
    )
    def test_bad_options_are_usage_errors(
        self, project: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
    ) -> None:
        """Bad option values exit 2 with argparse's usage line naming the problem."""
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: wsconn check")
        assert fragment in err

    @pytest.fixture
    def tls_site(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """A .env with ws:// and a CORS list for localhost, behind nginx serving https."""
        shutil.copy(FIXTURES / "tls-site.env", tmp_path / ".env")
        shutil.copy(FIXTURES / "nginx" / "tls-site.conf", tmp_path / "nginx.conf")
        monkeypatch.chdir(tmp_path)
        return tmp_path

    def test_frontend_origin_inferred_from_nginx(
        self, tls_site: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """nginx's listen 443 ssl + server_name is the page's origin: said, then judged."""
        assert main([]) == 1
        out = capsys.readouterr().out
        assert out.startswith(
            "wsconn check: read .env, nginx.conf\n"
            "frontend origin https://app.example.com (inferred from nginx.conf:14 listen 443 ssl "
            "+ server_name app.example.com)\n\n"
        )
        assert ".env:1: error [env-scheme-mismatch] VITE_WS_URL uses ws:// but the page is " in out
        assert (
            "[env-cors-origin-missing] ALLOWED_ORIGINS does not allow the frontend origin " in out
        )

    def test_inferred_origin_in_json_and_github(
        self, tls_site: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Machines read the inference too: a JSON note and a GitHub notice."""
        assert main(["--json"]) == 1
        (note,) = json.loads(capsys.readouterr().out)["notes"]
        assert note.startswith("frontend origin https://app.example.com (inferred from ")
        assert main(["--format", "github"]) == 1
        first = capsys.readouterr().out.splitlines()[0]
        assert first.startswith("::notice title=wsconn check::frontend origin https://app.exa")

    def test_explicit_origin_is_not_overridden(
        self, tls_site: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--frontend-origin is used as given, with no inference line."""
        assert main(["--frontend-origin", "http://localhost:5173"]) == 0
        out = capsys.readouterr().out
        assert "inferred" not in out
        assert out.endswith("no problems found\n")

    def test_runs_as_a_command(self, project: Path) -> None:
        """In a fresh interpreter the exit status and the report are the same."""
        result = wsconn("check", "--compose", "docker-compose.yml", cwd=project)
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout == "wsconn check: read docker-compose.yml\n\nno problems found\n"
