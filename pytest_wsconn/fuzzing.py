"""Frame fuzzing's pure core: the frames and fragment sequences the fuzz check sends, as bytes.

The hypothesis strategies that draw them are in ``pytest_wsconn.fuzz_strategies`` (hypothesis
imports subprocess, which this pure core must not). A drawn sequence mixes well-formed frames
with broken ones (reserved bits, unknown opcodes, unmasked, oversized or fragmented control
frames, bad close payloads) and messages split into fragments with pings between them.
``pytest_wsconn.checks.test_fuzz`` sends each after a real handshake, then a close frame, and
checks the service answers with a close frame and still serves. Frames are serialized by
websockets' sans-I/O layer with its checks turned off.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Final, cast

from websockets.frames import Close, CloseCode, Opcode

from pytest_wsconn.security import UncheckedFrame

MAX_PAYLOAD: Final = 200  # bytes: enough for a control frame over 125, small enough to be fast
MAX_FRAMES: Final = 5


@dataclasses.dataclass(frozen=True)
class FuzzFrame:
    """One frame as a client could write it, valid or not."""

    opcode: int  # 0-15; RFC 6455 defines 0-2 and 8-10
    payload: bytes = b""
    fin: bool = True
    rsv: tuple[bool, bool, bool] = (False, False, False)
    masked: bool = True

    def serialize(self) -> bytes:
        rsv1, rsv2, rsv3 = self.rsv
        frame = UncheckedFrame(cast(Opcode, self.opcode), self.payload, self.fin, rsv1, rsv2, rsv3)
        return frame.serialize(mask=self.masked)

    def __str__(self) -> str:
        try:
            name = Opcode(self.opcode).name
        except ValueError:
            name = f"opcode 0x{self.opcode:x}"
        flags = [] if self.fin else ["not fin"]
        flags += [f"rsv{n}" for n, bit in enumerate(self.rsv, 1) if bit]
        flags += [] if self.masked else ["unmasked"]
        return f"{name} {len(self.payload)} bytes {self.payload[:16]!r}" + (
            f" ({', '.join(flags)})" if flags else ""
        )


def serialize(frames: list[FuzzFrame]) -> bytes:
    """The frames' bytes, then a normal close frame (1000) that the service must answer."""
    close = FuzzFrame(Opcode.CLOSE, Close(CloseCode.NORMAL_CLOSURE, "").serialize())
    return b"".join(frame.serialize() for frame in [*frames, close])


def describe(frames: list[FuzzFrame]) -> str:
    return "; ".join(str(frame) for frame in frames)


def fragments(opcode: int, pieces: list[bytes], ping_at: int | None) -> list[FuzzFrame]:
    """One message split into ``pieces``, with a ping before piece ``ping_at`` (if any)."""
    frames = [
        FuzzFrame(opcode if n == 0 else Opcode.CONT, piece, fin=n == len(pieces) - 1)
        for n, piece in enumerate(pieces)
    ]
    if ping_at is not None:
        frames.insert(min(ping_at, len(frames)), FuzzFrame(Opcode.PING, b"wsconn"))
    return frames


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at each of ``cuts`` (modulo its length): at least one piece, maybe empty."""
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
