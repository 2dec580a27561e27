"""Each `.env` finding that predicts a failure is shown failing that way with the real server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pytest_wsconn import ConnectFailed, classify, connect
from pytest_wsconn.configcheck.env import EnvNames, check_dotenv, parse_dotenv
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.results import Finding
from pytest_wsconn.stack.reference_process import REFERENCE_COMMAND, ReferenceProcess
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.asyncio

FRONTEND = "http://localhost:3000"


def findings(text: str) -> list[Finding]:
    return check_dotenv(parse_dotenv(text), EnvNames(), FRONTEND)


def predicted(finding: Finding) -> str:
    """The category a finding says a real connection fails with."""
    return finding.why.rsplit("wsconn classifies the failure as ", 1)[1].rstrip(")")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    """A reference server whose allowed origins come from the .env under test."""
    command = (
        *REFERENCE_COMMAND,
        "--allowed-origin",
        "https://admin.example.com",
        "--allowed-origin",
        f"{FRONTEND}/",
    )
    with ReferenceProcess(command) as process:
        yield process.wait_ready(scaled(10)), reference_token(process.secret, "valid")


async def attempt(url: str, token: str | None = None, origin: str | None = None) -> ConnectFailed:
    with pytest.raises(ConnectFailed) as failed:
        await connect(url, token=token, origin=origin, open_timeout=scaled(5))
    return failed.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestCors:
    async def test_origin_missing(self, server: tuple[str, str]) -> None:
        """ALLOWED_ORIGINS without the frontend: flagged, and the server answers HTTP 403."""
        url, token = server
        (finding,) = findings(f"VITE_WS_URL={url}\nALLOWED_ORIGINS=https://admin.example.com\n")
        assert finding.rule == "env-cors-origin-missing"
        failed = await attempt(url, token, origin=FRONTEND)
        assert failed.attempt.http_status == 403
        assert classify(failed.attempt).category == predicted(finding)

    async def test_origin_with_a_trailing_slash(self, server: tuple[str, str]) -> None:
        """An allowed origin written with a slash is flagged and never matches a browser's."""
        url, token = server
        rules = {f.rule for f in findings(f"VITE_WS_URL={url}\nALLOWED_ORIGINS={FRONTEND}/\n")}
        assert "env-cors-origin-format" in rules
        failed = await attempt(url, token, origin=FRONTEND)
        assert failed.attempt.http_status == 403


class TestUrls:
    async def test_host_mismatch(self, server: tuple[str, str]) -> None:
        """Two variables for one server that disagree: the wrong one is refused (network)."""
        url, token = server
        wrong = f"ws://127.0.0.1:{closed_port()}/ws"
        finding = next(f for f in findings(f"VITE_WS_URL={url}\nWS_URL={wrong}\n"))
        assert finding.rule == "env-host-mismatch"
        failed = await attempt(wrong, token)
        assert classify(failed.attempt).category == predicted(finding)

    @pytest.mark.parametrize(
        ("value", "rule"),
        [("127.0.0.1:8765/ws", "env-url-invalid"), ("http://127.0.0.1:8765/ws", "env-ws-scheme")],
    )
    async def test_urls_a_client_cannot_open(self, value: str, rule: str) -> None:
        """A URL without a ws scheme is flagged, and a WebSocket client refuses to dial it."""
        assert [f.rule for f in findings(f"VITE_WS_URL={value}\n")] == [rule]
        failed = await attempt(value)
        assert failed.attempt.error_type == "InvalidURI"
