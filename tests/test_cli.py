"""The ``wsconn`` command as a user runs it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from support.commands import wsconn

from pytest_wsconn.cli import SUBCOMMANDS
from pytest_wsconn.reference.tokens import TokenVerdict, verify_token


class TestCli:
    def test_token_verifies_with_the_secret(self) -> None:
        """``wsconn token`` prints a token the reference server accepts."""
        result = wsconn("token", "--ttl", "60", env={"WSCONN_REFERENCE_SECRET": "s3cret"})
        assert result.returncode == 0
        assert verify_token(b"s3cret", result.stdout.strip(), time.time()) is TokenVerdict.VALID

    def test_token_without_a_secret(self) -> None:
        """Without the secret ``wsconn token`` says which variable to set and exits 2."""
        result = wsconn("token", unset=["WSCONN_REFERENCE_SECRET"])
        assert (result.returncode, result.stderr.strip()) == (
            2,
            "wsconn token: set WSCONN_REFERENCE_SECRET to the server's secret",
        )

    @pytest.mark.parametrize("name", sorted(set(SUBCOMMANDS) - {"demo"}))  # demo: pytest's help
    def test_every_subcommand_has_its_help(self, name: str) -> None:
        """``wsconn NAME --help`` reaches that subcommand's own parser and exits 0."""
        result = wsconn(name, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: wsconn {name}")

    def test_version(self) -> None:
        """``wsconn version`` names the package and its version."""
        assert wsconn("version").stdout.startswith("pytest-wsconn 0.")

    def test_demo_runs_the_battery(self) -> None:
        """``wsconn demo`` runs every check against the embedded stack and they pass."""
        result = wsconn("demo", "-q")
        assert result.returncode == 0, result.stdout + result.stderr
        last = result.stdout.strip().splitlines()[-1].strip("= ")
        assert re.fullmatch(r"\d+ passed(, \d+ skipped)?(, \d+ deselected)? in .*", last), (
            result.stdout
        )
        assert int(last.split()[0]) >= 40, "the battery ran fewer checks than it has"
        assert "wsconn summary" in result.stdout

    def test_load_help_lists_the_thresholds(self) -> None:
        """``wsconn load --help`` reaches the load runner's own options."""
        result = wsconn("load", "--help")
        assert result.returncode == 0
        assert "--max-p95-rtt-ms" in result.stdout

    def test_install_toxiproxy_reaches_the_installer(self, tmp_path: Path) -> None:
        """``wsconn install toxiproxy --dest DIR`` with the pinned binaries there does nothing."""
        for name in ("toxiproxy-server", "toxiproxy-cli"):
            (tmp_path / name).write_text(f"#!/bin/sh\necho '{name} version 2.12.0'\n")
            (tmp_path / name).chmod(0o755)
        result = wsconn("install", "toxiproxy", "--dest", str(tmp_path))
        assert (result.returncode, result.stdout) == (
            0,
            f"toxiproxy 2.12.0 already installed in {tmp_path}\n",
        ), result.stderr

    def test_install_something_else_is_a_usage_error(self) -> None:
        """Only what the plugin needs can be installed; argparse lists it."""
        result = wsconn("install", "nginx")
        assert result.returncode == 2
        assert re.search(r"invalid choice: 'nginx' \(choose from '?toxiproxy'?\)", result.stderr)

    def test_images_help_names_where_the_names_go(self) -> None:
        """``wsconn images --help`` says where the compose stack finds the images."""
        result = wsconn("images", "--help", env={"XDG_CACHE_HOME": "/cache"})
        assert result.returncode == 0
        assert "/cache/pytest-wsconn/images.env" in result.stdout
