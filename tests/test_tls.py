"""TLS as ``wsconn diagnose`` and the client meet it, with certificates made here by trustme.

Each server is the reference server's behaviour (``ReferenceServer``) served over TLS by
websockets, on an event loop in a thread, so that ``main`` can run its own loop in the test.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from support import Service
from websockets.asyncio.server import Server, serve

from pytest_wsconn import ConnectFailed, Outcome, connect
from pytest_wsconn.cli.diagnose import main
from pytest_wsconn.diagnostics import diagnose
from pytest_wsconn.reference.server import ReferenceServer, ServerSettings
from pytest_wsconn.reference.tokens import reference_token
from pytest_wsconn.results import CheckResult
from pytest_wsconn.timing import scaled

SECRET = b"tls-test-secret-of-at-least-32-bytes!"
TOKEN = reference_token(SECRET, "valid")
WAIT = scaled(5)
NOW = datetime.datetime.now(datetime.UTC)
DAYS = datetime.timedelta(days=1)


class TlsServers:
    """Reference servers behind TLS certificates, on one event loop in a background thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[Server] = []

    def __enter__(self) -> TlsServers:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for server in self._servers:
            server.close()
            asyncio.run_coroutine_threadsafe(server.wait_closed(), self._loop).result(WAIT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)
        self._loop.close()

    def start(self, cert: trustme.LeafCert) -> int:
        """Serve with ``cert``; return the loopback port."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        reference = ReferenceServer(ServerSettings(secret=SECRET))

        async def start() -> Server:
            return await serve(
                reference.handler,
                "127.0.0.1",
                0,
                ssl=context,
                process_request=reference.process_request,
                select_subprotocol=reference.select_subprotocol,
            )

        server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(WAIT)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """The test CA; clients that trust it verify the servers' chains."""
    return trustme.CA()


@pytest.fixture(scope="module")
def ports(ca: trustme.CA) -> Iterator[dict[str, int]]:
    """A TLS server per certificate case, by name: its loopback port."""
    certs = {
        "valid": ca.issue_cert("localhost", "127.0.0.1"),
        "expiring": ca.issue_cert("localhost", not_after=NOW + 5.5 * DAYS),
        "expired": ca.issue_cert("localhost", not_before=NOW - 30 * DAYS, not_after=NOW - DAYS),
        "wrong_host": ca.issue_cert("other.example"),
        "unknown_ca": trustme.CA().issue_cert("localhost"),
    }
    with TlsServers() as servers:
        yield {name: servers.start(cert) for name, cert in certs.items()}


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """The default client context, trusting the test CA as well."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def diagnose_tls(port: int, context: ssl.SSLContext) -> dict[str, CheckResult]:
    """Diagnose ``wss://localhost:<port>/ws``, dialling loopback, by check name."""
    results = await diagnose(
        f"wss://localhost:{port}/ws",
        token=TOKEN,
        dial=("127.0.0.1", port),
        ssl_context=context,
        timeout=WAIT,
    )
    return {result.name: result for result in results}


class TestTlsCheck:
    @pytest.mark.asyncio
    async def test_valid(self, ports: dict[str, int], client_context: ssl.SSLContext) -> None:
        """A trusted, current certificate passes with its version, names and days to expiry."""
        found = await diagnose_tls(ports["valid"], client_context)
        tls = found["tls"]
        assert tls.status == "pass"
        assert "chain verified, hostname matches localhost, 127.0.0.1" in tls.detail
        assert tls.fields["days_left"] > 300
        assert tls.fields["version"] in ("TLSv1.2", "TLSv1.3")
        assert {result.status for result in found.values()} == {"pass"}

    @pytest.mark.asyncio
    async def test_expiring_soon(
        self, ports: dict[str, int], client_context: ssl.SSLContext
    ) -> None:
        """Five days left is a warning to renew; the connection itself still works."""
        found = await diagnose_tls(ports["expiring"], client_context)
        assert found["tls"].status == "warn"
        assert found["tls"].detail.startswith("the certificate expires in 5 days: renew it")
        assert found["ping"].status == "pass"

    @pytest.mark.parametrize(
        ("case", "detail", "message"),
        [
            ("expired", "certificate has expired", "has expired"),
            ("wrong_host", "hostname mismatch: ", "does not cover the host name"),
            ("unknown_ca", "unknown certificate authority: ", "does not chain to a CA"),
        ],
    )
    @pytest.mark.asyncio
    async def test_failures_are_distinct(
        self,
        ports: dict[str, int],
        client_context: ssl.SSLContext,
        case: str,
        detail: str,
        message: str,
    ) -> None:
        """Expired, wrong host and unknown CA each fail TLS with their own detail and error."""
        found = await diagnose_tls(ports[case], client_context)
        tls = found["tls"]
        assert (tls.status, tls.detail[: len(detail)]) == ("fail", detail)
        assert tls.error is not None
        assert tls.error.category == "tls"
        assert message in tls.error.message
        assert found["handshake"].detail == "skipped: TLS failed"
        assert found["health"].detail == "skipped: TLS failed"

    @pytest.mark.asyncio
    async def test_plain_server(self, reference_service: Service) -> None:
        """wss:// to a plain ws:// server fails TLS and says the port may not speak it."""
        url = reference_service.url.replace("ws://", "wss://")
        found = {r.name: r for r in await diagnose(url, token=reference_service.token)}
        assert found["tls"].status == "fail"
        assert "(a plain ws:// port?)" in found["tls"].detail


class TestCafileOption:
    def test_trusted_with_cafile(
        self,
        capsys: pytest.CaptureFixture[str],
        ca: trustme.CA,
        ports: dict[str, int],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``--cafile`` makes the command trust a private CA; every check passes."""
        cafile = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(cafile))
        monkeypatch.setenv("WSCONN_TLS_TOKEN", TOKEN)
        url = f"wss://127.0.0.1:{ports['valid']}/ws"
        options = ["--cafile", str(cafile), "--token-env", "WSCONN_TLS_TOKEN"]
        assert main([url, *options, "--timeout", str(WAIT)]) == 0
        out = capsys.readouterr().out
        assert "\ntls               pass" in out
        assert out.endswith("\nall checks passed\n")

    def test_untrusted_without_cafile(
        self, capsys: pytest.CaptureFixture[str], ports: dict[str, int]
    ) -> None:
        """Without ``--cafile`` the same server's CA is unknown, and the command exits 1."""
        assert main([f"wss://127.0.0.1:{ports['valid']}/ws", "--timeout", str(WAIT)]) == 1
        assert "\ntls               fail" in capsys.readouterr().out


class TestClientConnect:
    @pytest.mark.parametrize("case", ["expired", "wrong_host", "unknown_ca"])
    @pytest.mark.asyncio
    async def test_tls_outcome(
        self, ports: dict[str, int], client_context: ssl.SSLContext, case: str
    ) -> None:
        """The instrumented client records each bad certificate as a TLS outcome."""
        port = ports[case]
        with pytest.raises(ConnectFailed) as failed:
            await connect(
                f"wss://localhost:{port}/ws",
                token=TOKEN,
                dial=("127.0.0.1", port),
                ssl=client_context,
                open_timeout=WAIT,
            )
        assert failed.value.attempt.outcome is Outcome.TLS

    @pytest.mark.asyncio
    async def test_valid_opens(self, ports: dict[str, int], client_context: ssl.SSLContext) -> None:
        """With a trusted certificate the same client opens and echoes."""
        port = ports["valid"]
        conn = await connect(
            f"wss://localhost:{port}/ws",
            token=TOKEN,
            dial=("127.0.0.1", port),
            ssl=client_context,
            open_timeout=WAIT,
        )
        try:
            assert await conn.echo("over tls", WAIT) == "over tls"
        finally:
            await conn.close()
