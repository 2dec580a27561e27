"""A small blocking WebSocket client (RFC 6455) for load users: gevent-friendly, timed per step.

Plain ``socket`` calls, so under gevent's monkey patching (which Locust applies) every blocking
read is a cooperative switch. It does only what a load user needs — the opening handshake with
the TCP and upgrade parts timed apart, masked text/binary frames, ping/pong, fragmented
messages, the closing handshake — and does it with few allocations per frame. It was chosen by
measurement against websocket-client and websockets' sync client; ``benchmarks/bench_load.py
--clients`` measures the three side by side.

Failures raise the exceptions of :mod:`pytest_wsconn.load.errors`, whose ``classify_load_error``
turns any of them (and ``OSError``/``TimeoutError``) into a classified ``WebSocketError``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import os
import socket
import ssl
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

try:  # websockets' C speedup where it was built, as websockets.frames does
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a pure-Python build of websockets
    from websockets.utils import apply_mask
from websockets.utils import accept_key

from pytest_wsconn.load.errors import (
    Closed,
    HandshakeInvalid,
    HandshakeRejected,
    ProtocolViolation,
    WsClientError,
)

MAX_HEADER_BYTES = 65536
MAX_BODY_BYTES = 4096
RECV_SIZE = 65536

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_CONTROL = frozenset({OP_CLOSE, OP_PING, OP_PONG})
_LEN16 = struct.Struct("!H")
_LEN64 = struct.Struct("!Q")


@dataclass(frozen=True)
class Handshake:
    """How the opening handshake went: seconds for the TCP (and TLS) connect and the upgrade."""

    tcp_seconds: float
    upgrade_seconds: float
    subprotocol: str | None

    @property
    def seconds(self) -> float:
        return self.tcp_seconds + self.upgrade_seconds


class MaskKeys:
    """Masking keys cut four bytes at a time from one ``os.urandom`` read of ``POOL`` bytes, as
    Node's ``ws`` does: a ``getrandom`` system call per 1,024 frames instead of one per frame
    (~5 % of an echo round trip). A forked process (Locust's ``--processes``) starts afresh."""

    POOL = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> bytes:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(self.POOL), 0
        self._at = at + 4
        return self._pool[at : at + 4]

    def forget(self) -> None:
        self._pool, self._at = b"", 0


mask_keys = MaskKeys()
os.register_at_fork(after_in_child=mask_keys.forget)


def encode_frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """One final, masked client frame (a client must mask every frame it sends)."""
    key = mask_keys.next() if key is None else key
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + _LEN16.pack(n)
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + _LEN64.pack(n)
    return header + key + apply_mask(payload, key)


def _send(sock: socket.socket, data: bytes) -> None:
    """Send all of ``data``: one plain ``send`` where it fits the socket's buffer (nearly
    always), ``sendall`` for the rest. gevent's ``sendall`` costs a ``getsockopt`` and a loop
    on top of it: ~3 % of an echo round trip, ~4 % of a connect storm."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


def _close_payload(code: int, reason: str) -> bytes:
    return _LEN16.pack(code) + reason.encode()[:123]


class WsClient:
    """One open client connection; make it with :meth:`connect`."""

    __slots__ = (  # one per idle connection of a load run: no __dict__
        "_buffer",
        "_close_sent",
        "_first_opcode",
        "_fragments",
        "_timeout",
        "closed",
        "last_pong",
        "pong_payload",
        "secure",
        "skipped",
        "sock",
        "subprotocol",
    )

    def __init__(self, sock: socket.socket, buffered: bytes, subprotocol: str | None) -> None:
        self.sock = sock
        self.secure = isinstance(sock, ssl.SSLSocket)
        self._timeout: float | None = -1.0  # the socket's read timeout once we set it (-1: not yet)
        self.subprotocol = subprotocol
        self._buffer = bytearray(buffered)
        self._fragments: list[bytes] = []  # of a message whose last frame has not come yet
        self._first_opcode = 0  # the opcode of that message's first frame
        self._close_sent: int | None = None
        self.closed: Closed | None = None
        self.last_pong: float | None = None
        self.pong_payload = b""  # of the last pong ``next_message`` read
        self.skipped = 0  # messages ``ping_pong`` and ``idle`` read and dropped

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        subprotocols: Sequence[str] = (),
        origin: str | None = None,
        timeout: float | None = 10.0,
        dial: tuple[str, int] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> tuple[WsClient, Handshake]:
        """Open a connection to ``url`` (``dial`` sends the TCP connection elsewhere)."""
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        host = parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        started = time.perf_counter()
        sock = _open_tcp(dial or (host, port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if secure:
                context = ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
            connected = time.perf_counter()
            key = base64.b64encode(os.urandom(16)).decode()
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            authority = parts.netloc.rpartition("@")[2]
            lines = [
                f"GET {path} HTTP/1.1",
                f"Host: {authority}",
                "Upgrade: websocket",
                "Connection: Upgrade",
                f"Sec-WebSocket-Key: {key}",
                "Sec-WebSocket-Version: 13",
            ]
            if origin:
                lines.append(f"Origin: {origin}")
            if subprotocols:
                lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
            lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
            _send(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
            answer, rest = _read_upgrade(sock, key)
            upgraded = time.perf_counter()
        except BaseException:
            sock.close()
            raise
        client = cls(sock, rest, answer.get("sec-websocket-protocol"))
        return client, Handshake(connected - started, upgraded - connected, client.subprotocol)

    # Sending

    def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message."""
        if isinstance(message, str):
            self._send_frame(OP_TEXT, message.encode())
        else:
            self._send_frame(OP_BINARY, message)

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping; its pong sets ``last_pong`` when a later ``recv`` reads it."""
        self._send_frame(OP_PING, payload)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if self.closed is not None:
            raise self.closed
        frame = encode_frame(opcode, payload)
        try:
            _send(self.sock, frame)
        except OSError:
            self._lost()
            raise

    # Receiving

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next message; answers pings on the way; raises ``Closed`` when the peer closes."""
        self._wait_at_most(timeout)
        while (message := self.next_message()) is None:
            self.receive()
        return message

    def next_message(self) -> str | bytes | None:
        """The next whole message among the bytes received so far, answering pings on the way;
        None until more bytes arrive (``receive``). Raises ``Closed`` when the peer closed."""
        fragments = self._fragments
        while (frame := self._parse_frame()) is not None:
            opcode, fin, payload = frame
            if opcode in _CONTROL:
                self._control(opcode, payload)
                continue
            if opcode == OP_CONT:
                if not fragments:
                    self._fail("a continuation frame without a message to continue")
            elif fragments:
                self._fail("a new message began before the last one ended")
            else:
                self._first_opcode = opcode
            if not fin:
                fragments.append(payload)
                continue
            data = b"".join((*fragments, payload)) if fragments else payload
            fragments.clear()
            if self._first_opcode == OP_TEXT:
                try:
                    return data.decode()
                except UnicodeDecodeError:
                    self._fail("a text message that is not UTF-8", 1007)
            return data
        return None

    def ping_pong(self, timeout: float) -> float:
        """Send a ping and read until its pong: the round trip in seconds.

        Messages that arrive meanwhile are dropped (a keepalive user does not read them) and
        counted in ``skipped``; ``TimeoutError`` if no pong comes within ``timeout``.
        """
        payload = os.urandom(4)
        started = time.perf_counter()
        self.ping(payload)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no pong within {timeout:g} s")
            self._wait_at_most(remaining)
            opcode, _, data = self._read_frame()
            if opcode == OP_PONG and data == payload:
                self.last_pong = time.monotonic()
                return time.perf_counter() - started
            if opcode in _CONTROL:
                self._control(opcode, data)
            elif opcode != OP_CONT:
                self.skipped += 1

    def idle(self, seconds: float | None) -> None:
        """Sit on the connection for ``seconds``, answering pings and dropping (counting)
        messages; ``None``: until a ``TimeoutError`` thrown into the waiting greenlet ends it
        (a load user's wake-up, kept by one timer for all of them: a socket timeout would cost
        each idle connection a gevent ``Timeout`` of its own, ~0.9 KB).

        Returns when the time is up; raises ``Closed`` if the connection ends meanwhile.
        """
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
            self._wait_at_most(remaining)
            try:
                opcode, _, data = self._read_frame()
            except TimeoutError:
                return
            if opcode in _CONTROL:
                self._control(opcode, data)
            elif opcode != OP_CONT:
                self.skipped += 1

    def _wait_at_most(self, timeout: float | None) -> None:
        """Give the socket's reads this timeout (None: no limit), unless it has it already."""
        if timeout != self._timeout:
            self.sock.settimeout(timeout)
            self._timeout = timeout

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self._send_frame(OP_PONG, payload)
        elif opcode == OP_PONG:
            self.last_pong = time.monotonic()
            self.pong_payload = payload
        else:
            code = _LEN16.unpack_from(payload)[0] if len(payload) >= 2 else 1005
            reason = payload[2:].decode(errors="replace")
            if self._close_sent is None:
                self._close_sent = code if code != 1005 else 1000
                # The peer may already be gone; its close frame is what counts.
                with contextlib.suppress(OSError):
                    _send(self.sock, encode_frame(OP_CLOSE, payload[:2]))
            self.closed = Closed(code, reason, received=True, sent_code=self._close_sent)
            self.sock.close()
            raise self.closed

    def receive(self) -> None:
        """One read from the socket into the buffer: waits for bytes (a cooperative switch
        under gevent), raises ``Closed`` when the connection is gone."""
        try:
            chunk = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            raise
        except OSError:
            self._lost()
            raise
        if not chunk:
            raise self._lost()
        self._buffer += chunk

    def _read_frame(self) -> tuple[int, bool, bytes]:
        while (frame := self._parse_frame()) is None:
            self.receive()
        return frame

    def _parse_frame(self) -> tuple[int, bool, bytes] | None:
        """The next whole frame in the buffer (taken out of it), or None if it has not all come."""
        if self.closed is not None:
            raise self.closed
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        b0, b1 = buffer[0], buffer[1]
        if b0 & 0x70:
            self._fail("a frame with reserved bits set (no extension was agreed)")
        opcode, fin, length, offset = b0 & 0x0F, bool(b0 & 0x80), b1 & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return None
            length, offset = _LEN16.unpack_from(buffer, 2)[0], 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            length, offset = _LEN64.unpack_from(buffer, 2)[0], 10
        masked = b1 & 0x80
        if masked:
            offset += 4
        if len(buffer) < offset + length:
            return None
        payload = bytes(buffer[offset : offset + length])
        if masked:
            payload = apply_mask(payload, bytes(buffer[offset - 4 : offset]))
        del buffer[: offset + length]
        if opcode in _CONTROL and (length > 125 or not fin):
            self._fail("a control frame longer than 125 bytes or fragmented")
        if opcode not in _CONTROL and opcode > OP_BINARY:
            self._fail(f"an unknown opcode {opcode}")
        return opcode, fin, payload

    def _fail(self, message: str, code: int = 1002) -> None:
        """The server broke the protocol: close with ``code`` and raise."""
        error = ProtocolViolation(f"the server sent {message}", code)
        with contextlib.suppress(OSError):  # closing anyway
            _send(self.sock, encode_frame(OP_CLOSE, _close_payload(code, "")))
        self._close_sent = code
        self._lost()
        raise error

    def _lost(self) -> Closed:
        """The connection is gone (or we give up on it): hang up; how it ended."""
        if self.closed is None:
            self.closed = Closed(1006, "", received=False, sent_code=self._close_sent)
        self.sock.close()
        return self.closed

    # Closing

    def close(self, code: int = 1000, reason: str = "", timeout: float | None = 5.0) -> Closed:
        """The closing handshake: send our close frame, read until the server's, then hang up.

        Returns how it closed; the code the server answered (1006: it hung up without one, or
        none came within ``timeout``; None: no limit of its own, a ``TimeoutError`` thrown into
        the waiting greenlet ends it).
        """
        if self.closed is not None:
            return self.closed
        self._close_sent = code
        try:
            _send(self.sock, encode_frame(OP_CLOSE, _close_payload(code, reason)))
        except OSError:
            return self._lost()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                remaining = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError  # noqa: TRY301 - handled below with the other ways out
                self._wait_at_most(remaining)
                opcode, _, payload = self._read_frame()
                if opcode == OP_CLOSE:
                    answer = _LEN16.unpack_from(payload)[0] if len(payload) >= 2 else 1005
                    reason = payload[2:].decode(errors="replace")
                    self.closed = Closed(answer, reason, received=True, sent_code=code)
                    self.sock.close()
                    return self.closed
        except (TimeoutError, OSError, WsClientError):
            return self._lost()

    def abort(self) -> None:
        """Hang up without a closing handshake."""
        self._lost()


@functools.cache
def _ip_family(host: str) -> int | None:
    """The address family of an IP literal (None: a name), parsed once per host (parsing it
    per connection was 3 % of a connect storm)."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


def _open_tcp(address: tuple[str, int], timeout: float | None) -> socket.socket:
    """A TCP connection; an IP literal skips ``getaddrinfo``.

    Under gevent, ``getaddrinfo`` runs in a thread pool: profiling a connect storm showed half
    of the user process's CPU in that hand-off, for an address that needs no resolving.
    """
    host, port = address
    family = _ip_family(host)
    if family is None:
        return socket.create_connection(address, timeout=timeout)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _read_upgrade(sock: socket.socket, key: str) -> tuple[dict[str, str], bytes]:
    """Read and check the answer to our upgrade: its headers and the bytes that followed."""
    status, answer, rest = _read_response(sock)
    if status != 101:
        raise HandshakeRejected(status, answer, _read_body(sock, answer, rest))
    if answer.get("upgrade", "").lower() != "websocket":
        raise HandshakeInvalid("the answer has no 'Upgrade: websocket'")
    if answer.get("sec-websocket-accept") != accept_key(key):
        raise HandshakeInvalid("the answer's Sec-WebSocket-Accept does not match our key")
    return answer, rest


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read the HTTP answer head: status, lower-cased headers and the bytes after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise HandshakeInvalid("the server hung up before answering the upgrade")
        data += chunk
        if len(data) > MAX_HEADER_BYTES:
            raise HandshakeInvalid("the server's answer has over 64 KiB of headers")
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, tail = status_line.partition(" ")
    code = tail[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise HandshakeInvalid(f"the server did not answer in HTTP: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return int(code), headers, rest


def _read_body(sock: socket.socket, headers: Mapping[str, str], rest: bytes) -> bytes:
    """Up to ``MAX_BODY_BYTES`` of a refusal's body, for the report; never fails."""
    try:
        wanted = min(int(headers.get("content-length", "0")), MAX_BODY_BYTES)
        while len(rest) < wanted:
            chunk = sock.recv(wanted - len(rest))
            if not chunk:
                break
            rest += chunk
    except (OSError, ValueError):
        pass
    return rest[:MAX_BODY_BYTES]
