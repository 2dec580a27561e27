"""A known token appears in no output, log file or report of any command or of the plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import Service

from pytest_wsconn.timing import scaled

FAILING_TESTS = """
import pytest
from pytest_wsconn import assert_closes_with, assert_connects

pytestmark = pytest.mark.asyncio

@pytest.mark.parametrize("auth", ["query:token", "header", "subprotocol", "cookie:wsconn_token"])
async def test_fails_after_connecting(wsconn_connect, auth):
    conn = await assert_connects(wsconn_connect, auth=auth)
    await assert_closes_with(conn, 4000, within=0.1)

async def test_fails_to_connect(wsconn_connect, wsconn_proxy):
    with wsconn_proxy.down():
        await wsconn_connect()
"""


def wsconn(*args: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_wsconn", *args],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        cwd=cwd,
        env={**os.environ, **env},
        check=False,
    )
    return result.stdout + result.stderr


@pytest.mark.usefixtures("user_env")
class TestTokenNeverShown:
    def test_plugin_output_log_and_report(
        self, pytester: pytest.Pytester, reference_service: Service
    ) -> None:
        """Failing tests in every auth mode print, log and report no token."""
        pytester.makepyfile(test_user=FAILING_TESTS)
        log, report = pytester.path / "events.jsonl", pytester.path / "report.json"
        result = pytester.runpytest_subprocess(
            "--wsconn-stack=external",
            f"--wsconn-url={reference_service.url}",
            f"--wsconn-token={reference_service.token}",
            f"--wsconn-log-file={log}",
            f"--wsconn-report={report}",
        )
        result.assert_outcomes(failed=5)
        result.stdout.fnmatch_lines(["*- wsconn connection timeline -*"])
        written = "\n".join(
            [*result.outlines, *result.errlines, log.read_text(), report.read_text()]
        )
        assert reference_service.token not in written
        assert "token=***" in written

    def test_commands(self, tmp_path: Path, reference_service: Service) -> None:
        """wsconn diagnose and wsconn check never print the token they were given or read."""
        token = reference_service.token
        env = {"WSCONN_TEST_TOKEN": token}
        diagnose = wsconn(
            "diagnose",
            reference_service.url,
            "--token-env",
            "WSCONN_TEST_TOKEN",
            cwd=tmp_path,
            env=env,
        )
        assert "all checks passed" in diagnose
        as_json = wsconn(
            "diagnose",
            reference_service.url.replace("ws://", f"ws://user:{token}@"),
            "--token-env",
            "WSCONN_TEST_TOKEN",
            "--json",
            cwd=tmp_path,
            env=env,
        )
        assert '"ok": true' in as_json
        assert token not in as_json
        (tmp_path / ".env").write_text(
            f"VITE_WS_URL=ws://app.example.com/ws?token={token}\n"
            f"WS_URL=ws://other.example.com:9/ws?access_token={token}\n"
        )
        for args in ([], ["--json"], ["--format", "github"]):
            checked = wsconn(
                "check", "--frontend-origin", "https://app.example.com", *args, cwd=tmp_path, env={}
            )
            assert "env-" in checked
            assert token not in checked
        assert token not in diagnose


SWEEP_TOKEN = "wsconnSweep7Q2xZ9k4Lm8Tokn"
"""Distinctive, long enough that any one-character variant in an output is ours."""

SWEEP_TESTS = """
import pytest
from pytest_wsconn import assert_connects

pytestmark = pytest.mark.asyncio

async def test_passes(wsconn_connect):
    conn = await assert_connects(wsconn_connect)
    assert await conn.echo("hi", timeout=5) == "hi"

async def test_fails_after_connecting(wsconn_connect):
    conn = await assert_connects(wsconn_connect)
    assert conn is None, "the user test fails"

async def test_fails_to_connect(wsconn_connect, wsconn_proxy):
    with wsconn_proxy.down():
        await wsconn_connect()

async def test_fails_with_tokens_in_its_locals(wsconn_connect, wsconn_token):
    valid, forged = wsconn_token.get("valid"), wsconn_token.get("forged")
    assert (valid, forged) == ("a", "b"), "fails with the tokens in its locals and message"
"""

SWEEP_INPUTS = {
    "option": ([f"--wsconn-token={SWEEP_TOKEN}"], {}, "", ""),
    "env": ([], {"WSCONN_TOKEN": SWEEP_TOKEN}, "", ""),
    "ini": ([], {}, f"wsconn_token = {SWEEP_TOKEN}\n", ""),
    "url-query": (["--wsconn-auth=none"], {}, "", f"?token={SWEEP_TOKEN}"),
    "url-query-other-name": (["--wsconn-auth=none"], {}, "", f"?sig={SWEEP_TOKEN}"),
    "url-userinfo": (["--wsconn-auth=none"], {}, "", f"user:{SWEEP_TOKEN}@"),
    "cookie": ([f"--wsconn-token={SWEEP_TOKEN}", "--wsconn-auth=cookie:session"], {}, "", ""),
    "subprotocol": ([f"--wsconn-token={SWEEP_TOKEN}", "--wsconn-auth=subprotocol"], {}, "", ""),
    "header": ([f"--wsconn-token={SWEEP_TOKEN}", "--wsconn-auth=header"], {}, "", ""),
    "hook": ([], {}, "", ""),
}


def leaks(text: str, token: str = SWEEP_TOKEN) -> list[str]:
    """Every stretch of ``text`` equal to ``token`` or one character away from it."""
    size = len(token)
    found = []
    for start in range(len(text) - size + 1):
        window = text[start : start + size]
        if sum(a != b for a, b in zip(window, token, strict=True)) <= 1:
            found.append(window)
    return found


def _with_credentials(url: str, where: str) -> str:
    """``url`` with ``where`` as its query (``?…``) or userinfo (``…@``)."""
    if where.startswith("?"):
        return url + where
    if where.endswith("@"):
        return url.replace("ws://", f"ws://{where}", 1)
    return url


@pytest.mark.usefixtures("user_env")
class TestSecretsSweep:
    """One distinctive token through every input, looked for in every output."""

    @pytest.mark.parametrize("path", list(SWEEP_INPUTS))
    def test_no_output_shows_the_token(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        broken_service: Callable[[str], Service],
        path: str,
    ) -> None:
        """Terminal (-rA, long tracebacks, locals, DEBUG logs), junit XML, event log, report."""
        args, env, ini, in_url = SWEEP_INPUTS[path]
        service = broken_service("accept-anything")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}")
        if path == "hook":
            pytester.makeconftest(
                f"def pytest_wsconn_token(kind, config):\n    return {SWEEP_TOKEN!r}\n"
            )
        pytester.makepyfile(test_user=SWEEP_TESTS)
        files = {name: pytester.path / name for name in ("junit.xml", "events.jsonl", "r.json")}
        result = pytester.runpytest_subprocess(
            f"--wsconn-url={_with_credentials(service.url, in_url)}",
            *args,
            "-rA",
            "--tb=long",
            "--showlocals",
            "--log-level=DEBUG",
            f"--junitxml={files['junit.xml']}",
            f"--wsconn-log-file={files['events.jsonl']}",
            f"--wsconn-report={files['r.json']}",
        )
        result.assert_outcomes(passed=1, failed=3)
        ran = [line for line in result.outlines if not line.startswith("running: ")]  # pytester's
        outputs = {
            "stdout": "\n".join(ran),
            "stderr": result.stderr.str(),
            **{name: file.read_text() for name, file in files.items()},
        }
        assert "> GET /ws" in outputs["stdout"], "websockets' DEBUG lines were not captured"
        found = {name: leaks(text) for name, text in outputs.items() if leaks(text)}
        assert not found, f"the token (or a one-character variant) leaked: {found}"

    def test_load_outputs_and_child_argv(self, tmp_path: Path, reference_service: Service) -> None:
        """``wsconn load``'s output, report files and every child's argv carry no token."""
        out = tmp_path / "out"
        command = [sys.executable, "-m", "pytest_wsconn", "load", "steady_messaging"]
        command += ["--host", reference_service.url, "--users", "2", "--duration", "2"]
        command += ["--out", str(out), "--workers", "1"]
        with (tmp_path / "output").open("w+") as output:
            load = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "WSCONN_TOKEN": reference_service.token},
            )
            argvs: set[str] = set()
            try:
                deadline = time.monotonic() + scaled(60)
                while load.poll() is None and time.monotonic() < deadline:
                    argvs |= _argvs_of_descendants(load.pid)
                    time.sleep(0.05)  # sampling /proc while the run lasts
            finally:
                if load.poll() is None:
                    load.kill()
                load.wait()
            output.seek(0)
            printed = output.read()
        assert load.returncode == 0, printed
        assert any("locust" in argv for argv in argvs), argvs
        written = [printed, *(f.read_text() for f in out.iterdir() if f.is_file())]
        assert not [text for text in [*written, *argvs] if reference_service.token in text]


def _argvs_of_descendants(root: int) -> set[str]:
    """The command lines of ``root``'s descendants, read from /proc."""
    parents: dict[int, int] = {}
    cmdlines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
        cmdlines[int(entry.name)] = cmdline
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found |= frontier
    return {cmdlines[pid] for pid in found}
