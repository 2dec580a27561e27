"""The ``wsconn_load`` fixture and marker: a short load scenario inside a test, for CI.

A pytest plugin module (registered by ``pytest_wsconn.plugin``). Locust never enters the pytest
process — it monkey-patches for gevent whatever imports it, which would break asyncio tests —
so the fixture runs ``python -m pytest_wsconn.load`` as a child process and reads back its
``summary.json``. By default the load goes to the session's stack (``wsconn_stack``), through
its proxy, with its token; a reconnect storm breaks that same proxy::

    @pytest.mark.wsconn_load(scenario="steady_messaging", users=5, duration=3)
    def test_rtt_under_load(wsconn_load):
        result = wsconn_load(max_p95_rtt_ms=50)
        assert result.ok, result.output
        assert result.steps["message"].requests > 100
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_wsconn.config import parse_duration
from pytest_wsconn.redact import reveal
from pytest_wsconn.timing import scaled

MARKER = "wsconn_load"
MARKER_HELP = (
    "wsconn_load(scenario=..., users=..., duration=..., **options): default arguments of the "
    "wsconn_load fixture for this test (pytest-wsconn)"
)
_FLAGS = {  # keyword -> wsconn load option
    "users": "--users",
    "spawn_rate": "--spawn-rate",
    "duration": "--duration",
    "workers": "--workers",
    "host": "--host",
    "auth": "--auth",
    "origin": "--origin",
    "message_size": "--message-size",
    "message_interval": "--message-interval",
    "reply_timeout": "--reply-timeout",
    "reply_id_field": "--reply-id-field",
    "ping_interval": "--ping-interval",
    "ping_timeout": "--ping-timeout",
    "connections_per_user": "--connections-per-user",
    "open_timeout": "--open-timeout",
    "backoff_initial": "--backoff-initial",
    "backoff_max": "--backoff-max",
    "storm_every": "--storm-every",
    "storm_for": "--storm-for",
    "storm_faults": "--storm-faults",
    "max_failure_ratio": "--max-failure-ratio",
    "max_p95_connect_ms": "--max-p95-connect-ms",
    "max_p95_rtt_ms": "--max-p95-rtt-ms",
    "toxiproxy": "--toxiproxy",
    "proxy": "--proxy",
}
_SWITCHES = {"storm": "--storm", "direct": "--direct"}
KEYWORDS = frozenset({"scenario", "token", *_FLAGS, *_SWITCHES})  # token: by environment


@dataclasses.dataclass(frozen=True)
class StepStats:
    """One request type of the run."""

    name: str
    requests: int
    failures: int
    rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    other_messages: int = 0  # received during the step, not its reply (broadcasts, pushes)


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """What a ``wsconn load`` run reported: exit status, per-step stats and its summary.

    ``ok`` is ``wsconn load``'s verdict: False when no connection ever opened, when a request
    failed (beyond ``max_failure_ratio``; in a storm, outside its faults), when the storm's users
    did not all come back, or when a threshold failed — ``problems`` says which, one line each.
    """

    exit_code: int
    output: str  # the printed summary and errors
    summary: dict[str, Any]  # summary.json; empty when Locust did not complete
    out_dir: Path

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def steps(self) -> dict[str, StepStats]:
        return {n: StepStats(**s) for n, s in self.summary.get("steps", {}).items()}

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Locust's failure table: ``step``, ``error``, ``occurrences``."""
        return list(self.summary.get("failures", []))

    @property
    def problems(self) -> list[str]:
        """Why the run failed, one line each (empty when it passed)."""
        return list(self.summary.get("problems", []))

    @property
    def failed_thresholds(self) -> list[str]:
        return list(self.summary.get("failed_thresholds", []))

    @property
    def recovery(self) -> dict[str, Any] | None:
        return self.summary.get("recovery")

    @property
    def workers(self) -> dict[str, int]:
        return dict(self.summary.get("workers", {}))


def load_argv(scenario: str, out: Path, options: dict[str, Any]) -> list[str]:
    """The ``wsconn load`` arguments for ``scenario`` and fixture keywords; pure."""
    unknown = sorted(set(options) - KEYWORDS)
    if unknown:
        raise TypeError(f"wsconn_load got unknown keyword(s) {', '.join(unknown)}")
    argv = [scenario, "--out", str(out), "--quiet"]
    for key, value in options.items():
        if key == "token":
            continue  # never on a command line: run_load passes it in the environment
        if key in _SWITCHES:
            flag = _SWITCHES[key]
            argv.append(flag if value else f"--no-{flag[2:]}")
        elif value is not None:
            text = ",".join(value) if isinstance(value, list | tuple) else str(value)
            argv.append(f"{_FLAGS[key]}={text}")
    return argv


def run_load(scenario: str, out: Path, timeout: float, **options: Any) -> LoadResult:
    """Run ``wsconn load`` in a child process and read what it reported.

    The token goes through the child's environment (``WSCONN_TOKEN``), never its command line,
    which ``ps`` and a timeout's error show.
    """
    env = dict(os.environ)
    token = reveal(options.pop("token", None))
    if token:
        env["WSCONN_TOKEN"] = token
    argv = load_argv(scenario, out, options)
    command = [sys.executable, "-m", "pytest_wsconn.load", *argv]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        code, output = -1, f"wsconn load did not finish within {timeout:g} s: {expired}"
    path = out / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else {}
    return LoadResult(code, output, summary, out)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Check ``wsconn_load`` markers before anything runs."""
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            continue
        unknown = sorted(set(marker.kwargs) - KEYWORDS)
        if marker.args or unknown:
            valid = ", ".join(sorted(KEYWORDS))
            extra = f"; unknown: {', '.join(unknown)}" if unknown else ""
            raise pytest.UsageError(
                f"{item.nodeid}: @wsconn_load takes keywords only, from: {valid}{extra}"
            )


@pytest.fixture
def wsconn_load(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., LoadResult]:
    """``wsconn_load(scenario=None, **options) -> LoadResult``: run a load scenario now.

    Keywords are ``wsconn load``'s options in snake case (``users``, ``duration``,
    ``workers``, ``max_p95_rtt_ms``, ...); the test's ``wsconn_load`` marker gives defaults.
    Without ``host`` the load goes to the session's ``wsconn_stack`` through its proxy.
    """
    marker = request.node.get_closest_marker(MARKER)
    defaults = dict(marker.kwargs) if marker else {}
    runs = 0

    def wsconn_load(scenario: str | None = None, **options: Any) -> LoadResult:
        nonlocal runs
        merged = {**defaults, **options}
        name = scenario or merged.pop("scenario", None)
        merged.pop("scenario", None)
        if not name:
            raise TypeError("wsconn_load needs a scenario (argument or marker keyword)")
        if "host" not in merged:
            stack = request.getfixturevalue("wsconn_stack")
            token = request.getfixturevalue("wsconn_token").get("valid")
            merged["host"] = stack.url
            merged.setdefault("token", token)
            settings = request.getfixturevalue("wsconn_settings")
            merged.setdefault("auth", str(settings.auth))
            merged["_proxy"] = stack
        stack = merged.pop("_proxy", None)
        runs += 1
        out = tmp_path_factory.mktemp(f"wsconn_load_{runs}")
        argv_extra: dict[str, Any] = {}
        if stack is not None:
            argv_extra = {"toxiproxy": stack.toxiproxy.url, "proxy": stack.proxy.name}
        duration = parse_duration(str(merged.get("duration", 10)))
        timeout = scaled(90 + duration)
        return run_load(str(name), out, timeout, **merged, **argv_extra)

    return wsconn_load
