"""An HTTP 403 at the upgrade, told apart against real services: no such path, Origin, token.

Starlette (and so FastAPI) under uvicorn answers 403 for a path it has no WebSocket route for
and for every endpoint that closes before accepting; the reference server (websockets) answers
403 only for a foreign Origin. See tests/support/starletteapp.py.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from typing import Any

import pytest
from support import REPO_ROOT, STARLETTE_APP, STARLETTE_TOKEN, Service, unavailable

from pytest_wsconn.cli.diagnose import main
from pytest_wsconn.config import parse_auth_mode
from pytest_wsconn.diagnostics import ConnectionDiagnostics
from pytest_wsconn.stack.reference_process import ReferenceProcess
from pytest_wsconn.timing import scaled

TOKEN, ADMIN_TOKEN = STARLETTE_TOKEN, "starlette-admin-token"  # what starletteapp.py accepts
TOKEN_ENV = "WSCONN_REFUSAL_TEST_TOKEN"
FOREIGN = "https://evil.example"


@pytest.fixture(scope="module")
def starlette_base() -> Iterator[str]:
    """A Starlette service under uvicorn on loopback; yields its ws://host:port."""
    if not all(importlib.util.find_spec(name) for name in ("starlette", "uvicorn")):
        unavailable("starlette and uvicorn are not installed (pip install -e '.[test]')")
    with ReferenceProcess((str(STARLETTE_APP),)) as server:
        yield server.wait_ready(scaled(15)).removesuffix("/ws")


def handshake(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """Run ``wsconn diagnose --json``; return its handshake check, which must have failed."""
    code = main([*argv, "--timeout", str(scaled(5)), "--json"])
    assert code == 1
    found = {check["name"]: check for check in json.loads(capsys.readouterr().out)["checks"]}
    check: dict[str, Any] = found["handshake"]
    assert check["status"] == "fail"
    return check


class TestStarlette:
    def test_unknown_path(self, capsys: pytest.CaptureFixture[str], starlette_base: str) -> None:
        """A path the service has no route for is no such path, never a refused Origin."""
        main([f"{starlette_base}/chat", "--timeout", str(scaled(5))])
        out = capsys.readouterr().out
        assert (
            "\nhandshake: http_rejected: HTTP 403 at /chat is what a made-up path gets too: no "
            "WebSocket endpoint there, or one that wants a token (none was sent).\n"
        ) in out
        assert "Origin the server does not allow" not in out
        assert "; looks like no such path: on the made-up path /wsconn-no-such-path-" in out
        advice = out[out.index("\nhandshake: http_rejected") :]
        assert advice in (REPO_ROOT / "README.md").read_text(), "the README shows this verbatim"

    def test_unknown_path_with_token(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        starlette_base: str,
    ) -> None:
        """With a token the service accepts elsewhere, a wrong path is most likely the cause."""
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        check = handshake(capsys, f"{starlette_base}/chat", "--token-env", TOKEN_ENV)
        assert check["fields"]["refusal"]["cause"] == "path"
        assert check["error"]["category"] == "http_rejected"
        assert check["error"]["message"].endswith(
            "most likely the service has no WebSocket endpoint there."
        )
        assert set(check["fields"]["refusal"]["probes"].values()) == {"HTTP 403"}

    def test_foreign_origin(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        starlette_base: str,
    ) -> None:
        """An Origin the endpoint refuses is named: without it the same request is accepted."""
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        argv = [f"{starlette_base}/ws", "--token-env", TOKEN_ENV, "--origin", FOREIGN]
        check = handshake(capsys, *argv)
        assert check["fields"]["refusal"]["cause"] == "origin"
        assert check["error"]["message"] == (
            f"HTTP 403 for the Origin {FOREIGN}: without it the same request was accepted, so "
            "the service does not allow this Origin."
        )
        assert check["error"]["steps"][0] == f"add {FOREIGN} to the service's allowed origins"

    def test_token_without_permission(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        starlette_base: str,
    ) -> None:
        """A token the endpoint reads and refuses is named: without it the answer changes."""
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        check = handshake(capsys, f"{starlette_base}/admin", "--token-env", TOKEN_ENV)
        assert check["fields"]["refusal"]["cause"] == "auth"
        assert check["error"]["message"] == (
            "HTTP 403 for this token: without it the same request got HTTP 401 'token missing' "
            "instead, so the service reads the token and refuses it."
        )

    def test_token_never_in_the_probes(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        starlette_base: str,
    ) -> None:
        """The probes' answers are reported without the token, like every other detail."""
        monkeypatch.setenv(TOKEN_ENV, ADMIN_TOKEN)
        main([f"{starlette_base}/chat", "--token-env", TOKEN_ENV, "--json"])
        assert ADMIN_TOKEN not in capsys.readouterr().out

    @pytest.mark.asyncio
    async def test_connection_diagnostics(self, starlette_base: str) -> None:
        """``ConnectionDiagnostics``, which the plugin runs when no connection opens, tells too."""
        diagnostics = ConnectionDiagnostics(
            f"{starlette_base}/chat?token={TOKEN}",
            token=TOKEN,
            auth=parse_auth_mode("query:token"),
            origin="http://localhost",
            timeout=scaled(5),
        )
        found = {result.name: result for result in await diagnostics.run()}
        error = found["handshake"].error
        assert error is not None
        assert (error.category, error.code) == ("http_rejected", 403)
        assert found["handshake"].fields["refusal"]["cause"] == "path"


class TestReferenceServer:
    def test_foreign_origin(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        reference_service: Service,
    ) -> None:
        """The reference server's 403 for a foreign Origin is told as the Origin, token kept."""
        monkeypatch.setenv(TOKEN_ENV, reference_service.token)
        argv = [reference_service.url, "--token-env", TOKEN_ENV, "--origin", FOREIGN]
        check = handshake(capsys, *argv)
        assert check["fields"]["refusal"]["cause"] == "origin"
        message = check["error"]["message"]
        assert message.startswith("HTTP 403 'Failed to open a WebSocket connection: ")
        assert f"for the Origin {FOREIGN}: without it the same request was accepted" in message
