"""Hypothesis strategies over the pure ``pytest_wsconn.fuzzing`` core: what the fuzz check draws."""

from __future__ import annotations

from hypothesis import strategies as st
from websockets.frames import Opcode

from pytest_wsconn.fuzzing import MAX_FRAMES, MAX_PAYLOAD, FuzzFrame, fragments, split


@st.composite
def fragmented_messages(draw: st.DrawFn) -> list[FuzzFrame]:
    """A text or binary message in fragments: valid UTF-8 may be cut inside a character."""
    text = draw(st.booleans())
    data = draw(st.text(max_size=60)).encode() if text else draw(st.binary(max_size=MAX_PAYLOAD))
    cuts = draw(st.lists(st.integers(0, MAX_PAYLOAD), max_size=3))
    ping_at = draw(st.none() | st.integers(0, 4))
    return fragments(Opcode.TEXT if text else Opcode.BINARY, split(data, cuts), ping_at)


def frames() -> st.SearchStrategy[FuzzFrame]:
    """Any single frame, mostly masked and without reserved bits so other faults show."""
    opcodes = st.sampled_from([int(op) for op in Opcode]) | st.integers(0, 15)
    rare = st.just(False) | st.booleans()  # a reserved bit is set in 1 of 4 draws
    return st.builds(
        FuzzFrame,
        opcode=opcodes,
        payload=st.binary(max_size=MAX_PAYLOAD),
        fin=st.booleans(),
        rsv=st.tuples(rare, rare, rare),
        masked=st.just(True) | st.booleans(),
    )


def frame_sequences() -> st.SearchStrategy[list[FuzzFrame]]:
    """What one fuzz example sends: a few frames of any kind, or one fragmented message."""
    return st.lists(frames(), min_size=1, max_size=MAX_FRAMES) | fragmented_messages()
