"""Fault specs and the Toxiproxy toxic JSON they become (pure, no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_wsconn import faults
from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.faults import KINDS, Fault, make_fault


def _toxic(kind: str, attributes: dict[str, int], stream: str = "downstream") -> dict[str, Any]:
    return {
        "name": f"{kind}_{stream}",
        "type": kind,
        "stream": stream,
        "toxicity": 1.0,
        "attributes": attributes,
    }


CONSTRUCTED = [
    (faults.latency(200), _toxic("latency", {"latency": 200, "jitter": 0})),
    (faults.latency(200, jitter=50), _toxic("latency", {"latency": 200, "jitter": 50})),
    (faults.bandwidth(64), _toxic("bandwidth", {"rate": 64})),
    (faults.slow_close(300), _toxic("slow_close", {"delay": 300})),
    (faults.timeout(0), _toxic("timeout", {"timeout": 0})),
    (faults.timeout(1500), _toxic("timeout", {"timeout": 1500})),
    (faults.reset_peer(), _toxic("reset_peer", {"timeout": 0})),
    (faults.reset_peer(timeout_ms=100), _toxic("reset_peer", {"timeout": 100})),
    (
        faults.slicer(10, size_variation=3, delay_us=500),
        _toxic("slicer", {"average_size": 10, "size_variation": 3, "delay": 500}),
    ),
    (faults.limit_data(1024), _toxic("limit_data", {"bytes": 1024})),
    (
        faults.latency(5, stream="upstream"),
        _toxic("latency", {"latency": 5, "jitter": 0}, stream="upstream"),
    ),
]

# Our parameter names for every kind, as make_fault accepts them.
MARKER_PARAMS: list[tuple[str, dict[str, Any], Fault]] = [
    ("latency", {"ms": 100, "jitter": 10}, faults.latency(100, 10)),
    ("bandwidth", {"kbps": 8}, faults.bandwidth(8)),
    ("slow_close", {"ms": 50}, faults.slow_close(50)),
    ("timeout", {"ms": 0}, faults.timeout(0)),
    ("reset_peer", {"timeout_ms": 20}, faults.reset_peer(20)),
    ("slicer", {"average_size": 4, "delay_us": 10}, faults.slicer(4, delay_us=10)),
    ("limit_data", {"bytes": 9}, faults.limit_data(9)),
    ("down", {}, faults.down()),
    (
        "latency",
        {"ms": 1, "stream": "upstream", "toxicity": 0.5},
        faults.latency(1, stream="upstream", toxicity=0.5),
    ),
]


class TestConstructors:
    """The user-facing constructors map our parameter names onto Toxiproxy's attributes."""

    @pytest.mark.parametrize(
        ("fault", "expected"), CONSTRUCTED, ids=lambda v: getattr(v, "kind", "")
    )
    def test_toxic_json(self, fault: Fault, expected: dict[str, Any]) -> None:
        """Each constructor produces exactly the toxic Toxiproxy expects."""
        assert fault.toxic_json() == expected

    @given(
        average=st.integers(1, 10_000),
        variation=st.integers(0, 10_000),
        delay=st.integers(0, 10**6),
    )
    def test_slicer_variation_below_average(self, average: int, variation: int, delay: int) -> None:
        """A slicer is valid exactly when size_variation < average_size, as Toxiproxy requires."""
        if variation < average:
            assert (
                faults.slicer(average, variation, delay).attributes["size_variation"] == variation
            )
        else:
            with pytest.raises(ConfigError, match="size_variation must be less than average_size"):
                faults.slicer(average, variation, delay)

    def test_slicer_average_size_zero(self) -> None:
        """average_size 0 is refused: Toxiproxy's slicer would split forever."""
        with pytest.raises(ConfigError, match="average_size must be a whole number >= 1"):
            faults.slicer(0)

    @given(ms=st.integers(0, 2**63 - 1), jitter=st.integers(0, 2**63 - 1))
    def test_json_serialisable(self, ms: int, jitter: int) -> None:
        """Any valid latency survives a JSON round trip unchanged."""
        toxic = faults.latency(ms, jitter).toxic_json()
        assert json.loads(json.dumps(toxic)) == toxic

    @pytest.mark.parametrize(
        ("build", "parameter"),
        [
            (lambda: faults.latency(-1), "ms"),
            (lambda: faults.latency(1, jitter=-1), "jitter"),
            (lambda: faults.bandwidth(-5), "kbps"),
            (lambda: faults.reset_peer(timeout_ms=-1), "timeout_ms"),
            (lambda: faults.slicer(4, delay_us=-1), "delay_us"),
            (lambda: faults.limit_data(True), "bytes"),
            (lambda: faults.slow_close(1.5), "ms"),  # type: ignore[arg-type]
            (lambda: faults.timeout(2**63), "ms"),
        ],
    )
    def test_invalid_value_names_our_parameter(self, build: Any, parameter: str) -> None:
        """A negative, fractional, boolean or too large value names the parameter as typed."""
        with pytest.raises(ConfigError, match=f": {parameter} must be a whole number"):
            build()


class TestFault:
    """The Fault value itself: validation, naming and immutability."""

    def test_down_has_no_toxic(self) -> None:
        """down disables the proxy, so asking for its toxic is an error saying how to apply it."""
        with pytest.raises(ConfigError, match="down is not a toxic") as info:
            faults.down().toxic_json()
        assert "Proxy.down()" in str(info.value)

    def test_custom_name(self) -> None:
        """A given name replaces Toxiproxy's default ``{type}_{stream}``."""
        assert faults.latency(1).toxic_json("slow")["name"] == "slow"

    @pytest.mark.parametrize("toxicity", [-0.1, 1.01, float("nan"), float("inf"), "1", None, True])
    def test_toxicity_out_of_range(self, toxicity: Any) -> None:
        """Toxicity must be a number from 0 to 1."""
        with pytest.raises(ConfigError, match="toxicity must be a number from 0 to 1"):
            faults.latency(1, toxicity=toxicity)

    @given(toxicity=st.floats(0, 1))
    def test_toxicity_in_range(self, toxicity: float) -> None:
        """Every toxicity in [0, 1] is kept as a float."""
        assert faults.bandwidth(1, toxicity=toxicity).toxic_json()["toxicity"] == toxicity

    @pytest.mark.parametrize("stream", ["down", "UPSTREAM", "", None])
    def test_invalid_stream(self, stream: Any) -> None:
        """Only downstream and upstream are streams, and the message says which is which."""
        with pytest.raises(ConfigError, match=r"'downstream' \(server to client\) or 'upstream'"):
            faults.timeout(0, stream=stream)

    def test_unknown_kind(self) -> None:
        """Constructing a Fault of an unknown kind lists the valid kinds."""
        with pytest.raises(ConfigError, match="unknown fault kind 'jitter'") as info:
            Fault("jitter")  # type: ignore[arg-type]
        assert "latency, bandwidth, slow_close" in str(info.value)

    @pytest.mark.parametrize(
        "attributes", [{}, {"latency": 1}, {"latency": 1, "jitter": 0, "x": 1}]
    )
    def test_attributes_must_match_kind(self, attributes: dict[str, int]) -> None:
        """A Fault built by hand must carry exactly its kind's Toxiproxy attributes."""
        with pytest.raises(
            ConfigError, match=r"attributes must be exactly \['jitter', 'latency'\]"
        ):
            Fault("latency", attributes)

    def test_attributes_are_frozen(self) -> None:
        """The attributes cannot change after construction, not even through the caller's dict."""
        source = {"bytes": 1}
        fault = Fault("limit_data", source)
        source["bytes"] = 2
        assert fault.attributes["bytes"] == 1
        with pytest.raises(TypeError):
            fault.attributes["bytes"] = 3  # type: ignore[index]

    def test_hashable_and_equal(self) -> None:
        """Equal faults compare and hash equal, so they can key a dict."""
        assert faults.latency(5) == faults.latency(5)
        assert hash(faults.latency(5)) == hash(faults.latency(5))
        assert faults.latency(5) != faults.latency(6)


class TestMakeFault:
    """make_fault builds faults from the wsconn_fault marker's arguments."""

    @pytest.mark.parametrize(("kind", "params", "expected"), MARKER_PARAMS)
    def test_builds_like_the_constructor(
        self, kind: str, params: dict[str, Any], expected: Fault
    ) -> None:
        """make_fault(kind, **params) equals calling the constructor of that name."""
        assert make_fault(kind, **params) == expected

    def test_unknown_kind_lists_kinds(self) -> None:
        """An unknown kind names every valid kind."""
        with pytest.raises(ConfigError, match="unknown fault kind 'packet_loss'") as info:
            make_fault("packet_loss")
        assert str(info.value).endswith(f"valid kinds: {', '.join(KINDS)}")

    def test_unknown_parameter_lists_parameters(self) -> None:
        """A Toxiproxy attribute name where ours is expected names the accepted parameters."""
        with pytest.raises(ConfigError, match="latency: unknown parameter") as info:
            make_fault("latency", latency=100)
        assert "latency accepts: ms, jitter, stream, toxicity" in str(info.value)

    def test_missing_parameter(self) -> None:
        """A required parameter left out is named."""
        with pytest.raises(ConfigError, match=r"bandwidth: missing parameter\(s\) kbps"):
            make_fault("bandwidth")

    def test_down_takes_nothing(self) -> None:
        """down accepts no parameters at all."""
        with pytest.raises(ConfigError, match="down accepts: none"):
            make_fault("down", ms=1)

    @given(
        kind=st.one_of(st.sampled_from(KINDS), st.text(max_size=12), st.none(), st.integers()),
        params=st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "ms",
                        "jitter",
                        "kbps",
                        "timeout_ms",
                        "average_size",
                        "size_variation",
                        "delay_us",
                        "bytes",
                        "stream",
                        "toxicity",
                    ]
                ),
                st.text(min_size=1, max_size=8).filter(str.isidentifier),
            ),
            st.one_of(
                st.integers(-5, 2**64),
                st.floats(allow_nan=True),
                st.booleans(),
                st.none(),
                st.text(max_size=5),
                st.sampled_from(["downstream", "upstream"]),
                st.lists(st.integers(), max_size=2),
            ),
            max_size=4,
        ),
    )
    def test_total(self, kind: Any, params: dict[str, Any]) -> None:
        """For any kind and parameters make_fault returns a valid Fault or raises ConfigError."""
        try:
            fault = make_fault(kind, **params)
        except ConfigError:
            return
        assert fault.kind == kind
        if kind != "down":
            json.dumps(fault.toxic_json())
