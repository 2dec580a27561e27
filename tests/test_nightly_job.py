"""The README's nightly CI job, run: its chaos, history and dashboard steps on a user's project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import USER_INI

from pytest_wsconn.history import store
from pytest_wsconn.timing import scaled

JOB = Path(__file__).resolve().parent / "examples" / "nightly-chaos.yml"
RUN_NUMBER = "7"  # what ${{ github.run_number }} is on the night under test
OURS = ("chaos run", "regressions", "dashboard")  # the steps that run pytest-wsconn
STEP_TIMEOUT = 120.0  # seconds for one step (scaled)

PROJECT = """
import pytest

pytestmark = pytest.mark.asyncio

@pytest.mark.wsconn_chaos(survives=["latency", "slicer"])
@pytest.mark.parametrize("n", range(3))
async def test_echo(wsconn_connect, n):
    conn = await wsconn_connect()
    assert await conn.echo(f"m{n}", timeout=5) == f"m{n}"
"""

BASH = shutil.which("bash") or "/bin/bash"  # what a CI runner's `run:` steps use


def steps() -> list[dict[str, Any]]:
    job = yaml.safe_load(JOB.read_text())
    found: list[dict[str, Any]] = job["jobs"]["chaos"]["steps"]
    return found


class TestNightlyJob:
    def test_the_job_is_nightly_and_keeps_the_dashboard(self) -> None:
        """Scheduled, the history cached between nights, the dashboard uploaded even after a
        failing run, and nothing else but setup besides the steps the next test runs."""
        job = yaml.safe_load(JOB.read_text())
        assert job[True]["schedule"] == [{"cron": "0 3 * * *"}]  # YAML 1.1 reads `on` as True
        by_name = {step.get("name", step.get("uses")): step for step in steps()}
        assert by_name["keep the history from night to night"]["with"]["path"] == (
            ".wsconn/history.sqlite"
        )
        upload = by_name["actions/upload-artifact@v4"]
        assert upload["with"]["path"] == "wsconn-dashboard.html"
        assert upload["if"] == by_name["dashboard"]["if"] == "${{ !cancelled() }}"
        runs = [step.get("name") for step in steps() if "run" in step]
        assert runs == ["install", *OURS]

    @pytest.mark.usefixtures("user_env")
    def test_two_nights_leave_a_history_and_a_dashboard(self, pytester: pytest.Pytester) -> None:
        """Each night's steps, as the job runs them, on a user's project: the chaos run appends
        to the history, --check compares with the night before, the dashboard is written."""
        pytester.makeini(USER_INI)
        pytester.makepyfile(test_user=PROJECT)
        commands = {s["name"]: s["run"] for s in steps() if s.get("name") in OURS}
        # On CI, setup-python puts the installed pytest and wsconn on PATH; here, this venv's.
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        said = {}
        for night in ("6", RUN_NUMBER):
            for name in OURS:
                command = commands[name].replace("${{ github.run_number }}", night)
                assert "${{" not in command
                done = subprocess.run(  # the job's own shell line, as CI's bash runs it
                    [BASH, "-c", command],
                    cwd=pytester.path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=scaled(STEP_TIMEOUT),
                    check=False,
                )
                assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
                said[night, name] = done.stdout
        assert "run #2: no regression against 1 earlier run(s)" in said[RUN_NUMBER, "regressions"]
        runs = store.read(pytester.path / ".wsconn" / "history.sqlite")
        assert [run.chaos_seed for run in runs] == [6, 7]
        assert [len(run.tests) for run in runs] == [3, 3]
        page = (pytester.path / "wsconn-dashboard.html").read_text()
        assert "2 run(s) in .wsconn/history.sqlite" in page
        pairs = {(t.test_id, t.fault_kind) for run in runs for t in run.tests}
        assert None not in {kind for _, kind in pairs}
        cells = re.findall(r'data-fault="[^"]+" data-survived="(\d+)" data-failed="(\d+)"', page)
        assert len(cells) == len(pairs)
        assert sorted({failed for _, failed in cells}) == ["0"]
        assert sum(int(survived) for survived, _ in cells) == 6
