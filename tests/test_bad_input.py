"""Bad input on the command line: one line saying what is wrong, exit 2, never a traceback."""

from __future__ import annotations

import pytest
from support.commands import wsconn


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["diagnose", "ws://[::1/ws"],
            "wsconn diagnose: cannot diagnose ws://[::1/ws: the URL is malformed (host or port)",
        ),
        (["check", "--compose", "/bin/ls"], "wsconn check: --compose /bin/ls: not a text file"),
        (
            ["load", "connect_storm", "--out", "/proc/nope"],
            "wsconn load: --out /proc/nope: cannot create it: No such file or directory",
        ),
        (
            ["load", "connect_storm", "--open-timeout", "0"],
            "wsconn load: error: argument --open-timeout: '0' is not a positive number of seconds",
        ),
        (
            ["serve", "--port", "abc"],
            "wsconn serve: error: argument --port: 'abc' is not a port (0-65535; 0 picks a free "
            "one)",
        ),
    ],
    ids=["diagnose-url", "check-binary", "load-out", "load-timeout", "serve-port"],
)
def test_one_line_and_exit_2(argv: list[str], line: str) -> None:
    """Each bad input ends the command at once with exit 2 and its one-line reason last."""
    result = wsconn(*argv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.rstrip("\n").splitlines()[-1] == line
    assert "Traceback" not in result.stdout + result.stderr
