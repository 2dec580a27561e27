"""A known token appears in no output, log file or report of any command or of the plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Service

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
