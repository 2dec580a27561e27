"""Network faults, described in our words and turned into Toxiproxy toxic JSON.

Pure: no sockets, no HTTP. ``toxiproxy.py`` sends what this module builds, so a fault can be
checked (by the ``wsconn_fault`` marker at collection time) long before a proxy exists.

The constructors take the user-facing parameter names (``latency(ms=200)``); a :class:`Fault`
holds Toxiproxy's attribute names (``{"latency": 200, "jitter": 0}``), taken from the v2.12.0
sources (``toxics/*.go``). ``down`` is not a toxic: it disables the whole proxy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypedDict, get_args

from pytest_wsconn.exceptions import ConfigError

FaultKind = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "down"
]
Stream = Literal["downstream", "upstream"]

KINDS: tuple[str, ...] = get_args(FaultKind)
STREAMS: tuple[str, ...] = get_args(Stream)

# Go decodes every attribute into an int64 (or a 64-bit int); larger numbers are a 400.
_MAX_ATTRIBUTE = 2**63 - 1

# kind -> Toxiproxy attribute -> (our parameter name, smallest allowed value). Validation and
# error messages both read this table, so they name what the user typed.
_ATTRIBUTES: Mapping[str, Mapping[str, tuple[str, int]]] = {
    "latency": {"latency": ("ms", 0), "jitter": ("jitter", 0)},
    "bandwidth": {"rate": ("kbps", 0)},
    "slow_close": {"delay": ("ms", 0)},
    "timeout": {"timeout": ("ms", 0)},
    "reset_peer": {"timeout": ("timeout_ms", 0)},
    # Toxiproxy's slicer splits until chunks are <= average_size: 0 would recurse forever.
    "slicer": {
        "average_size": ("average_size", 1),
        "size_variation": ("size_variation", 0),
        "delay": ("delay_us", 0),
    },
    "limit_data": {"bytes": ("bytes", 0)},
    "down": {},
}


class ToxicJson(TypedDict):
    """The body of ``POST /proxies/{proxy}/toxics``."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Fault:
    """One network fault: a Toxiproxy toxic, or ``down`` (the proxy disabled).

    ``toxicity`` is the chance (0-1) that a new connection gets the toxic; Toxiproxy draws it
    once per connection, so it shapes a population of connections, not one.
    """

    kind: FaultKind
    attributes: Mapping[str, int] = field(default_factory=dict, hash=False)
    stream: Stream = "downstream"
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ConfigError(
                f"unknown fault kind {self.kind!r}", hint=f"valid kinds: {', '.join(KINDS)}"
            )
        if not isinstance(self.stream, str) or self.stream not in STREAMS:
            raise ConfigError(
                f"{self.kind}: stream must be 'downstream' (server to client) or 'upstream' "
                f"(client to server), got {self.stream!r}"
            )
        if not (
            isinstance(self.toxicity, int | float)
            and not isinstance(self.toxicity, bool)
            and 0 <= self.toxicity <= 1
        ):
            raise ConfigError(
                f"{self.kind}: toxicity must be a number from 0 to 1 (the share of connections "
                f"affected), got {self.toxicity!r}"
            )
        object.__setattr__(self, "toxicity", float(self.toxicity))
        object.__setattr__(self, "attributes", MappingProxyType(self._checked_attributes()))

    def _checked_attributes(self) -> dict[str, int]:
        spec = _ATTRIBUTES[self.kind]
        if not isinstance(self.attributes, Mapping) or set(self.attributes) != set(spec):
            raise ConfigError(
                f"{self.kind}: attributes must be exactly {sorted(spec)}, got {self.attributes!r}"
            )
        for attribute, (parameter, minimum) in spec.items():
            value = self.attributes[attribute]
            if not (_is_int(value) and minimum <= value <= _MAX_ATTRIBUTE):
                raise ConfigError(
                    f"{self.kind}: {parameter} must be a whole number >= {minimum}, got {value!r}"
                )
        if (
            self.kind == "slicer"
            and self.attributes["size_variation"] >= self.attributes["average_size"]
        ):
            # Toxiproxy asks for this; a larger variation can split at a negative offset.
            raise ConfigError(
                f"slicer: size_variation must be less than average_size, got "
                f"{self.attributes['size_variation']} >= {self.attributes['average_size']}"
            )
        return dict(self.attributes)

    @property
    def default_name(self) -> str:
        """The name Toxiproxy itself would give the toxic: ``{type}_{stream}``."""
        return f"{self.kind}_{self.stream}"

    def toxic_json(self, name: str | None = None) -> ToxicJson:
        """The toxic to create for this fault; ``down`` has none (it disables the proxy)."""
        if self.kind == "down":
            raise ConfigError(
                "down is not a toxic: it disables the proxy",
                hint="apply it with Proxy.apply(fault) or Proxy.down()",
            )
        return {
            "name": self.default_name if name is None else name,
            "type": self.kind,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


def latency(
    ms: int, jitter: int = 0, *, stream: Stream = "downstream", toxicity: float = 1.0
) -> Fault:
    """Delay every chunk by ``ms`` milliseconds, plus or minus ``jitter`` milliseconds."""
    return Fault("latency", {"latency": ms, "jitter": jitter}, stream, toxicity)


def bandwidth(kbps: int, *, stream: Stream = "downstream", toxicity: float = 1.0) -> Fault:
    """Cap throughput at ``kbps`` kilobytes (not kilobits) per second, Toxiproxy's unit.

    0 lets no byte through: the connection stays open and stalls.
    """
    return Fault("bandwidth", {"rate": kbps}, stream, toxicity)


def slow_close(ms: int, *, stream: Stream = "downstream", toxicity: float = 1.0) -> Fault:
    """Hold a closing connection open for ``ms`` milliseconds before passing the close on."""
    return Fault("slow_close", {"delay": ms}, stream, toxicity)


def timeout(ms: int, *, stream: Stream = "downstream", toxicity: float = 1.0) -> Fault:
    """Drop all data and close after ``ms`` milliseconds.

    0 never closes: data stalls on an open connection, the silent dead peer that only
    heartbeats (ping/pong timeouts) can detect.
    """
    return Fault("timeout", {"timeout": ms}, stream, toxicity)


def reset_peer(
    timeout_ms: int = 0, *, stream: Stream = "downstream", toxicity: float = 1.0
) -> Fault:
    """Reset (TCP RST) the connection ``timeout_ms`` after the first data arrives.

    Toxiproxy arms the RST only on connections opened after the toxic was added.
    """
    return Fault("reset_peer", {"timeout": timeout_ms}, stream, toxicity)


def slicer(
    average_size: int,
    size_variation: int = 0,
    delay_us: int = 0,
    *,
    stream: Stream = "downstream",
    toxicity: float = 1.0,
) -> Fault:
    """Split data into chunks of about ``average_size`` bytes, ``delay_us`` microseconds apart.

    This exercises frame reassembly: a WebSocket frame arrives in several reads.
    """
    return Fault(
        "slicer",
        {"average_size": average_size, "size_variation": size_variation, "delay": delay_us},
        stream,
        toxicity,
    )


def limit_data(bytes: int, *, stream: Stream = "downstream", toxicity: float = 1.0) -> Fault:
    """Close the connection once ``bytes`` bytes have passed."""
    return Fault("limit_data", {"bytes": bytes}, stream, toxicity)


def down() -> Fault:
    """Disable the proxy: new connections are refused and open ones are dropped."""
    return Fault("down")


_CONSTRUCTORS: Mapping[str, Callable[..., Fault]] = {
    "latency": latency,
    "bandwidth": bandwidth,
    "slow_close": slow_close,
    "timeout": timeout,
    "reset_peer": reset_peer,
    "slicer": slicer,
    "limit_data": limit_data,
    "down": down,
}


def make_fault(kind: str, **params: Any) -> Fault:
    """Build a fault from a kind name and our parameter names, as the marker passes them.

    ``@pytest.mark.wsconn_fault("latency", ms=200)`` becomes ``make_fault("latency", ms=200)``.
    """
    constructor = _CONSTRUCTORS.get(kind) if isinstance(kind, str) else None
    if constructor is None:
        raise ConfigError(f"unknown fault kind {kind!r}", hint=f"valid kinds: {', '.join(KINDS)}")
    signature = inspect.signature(constructor).parameters
    accepted = ", ".join(signature) or "none"
    unknown = sorted(set(params) - set(signature))
    if unknown:
        raise ConfigError(
            f"{kind}: unknown parameter(s) {', '.join(unknown)}",
            hint=f"{kind} accepts: {accepted}",
        )
    missing = [
        name
        for name, parameter in signature.items()
        if parameter.default is inspect.Parameter.empty and name not in params
    ]
    if missing:
        raise ConfigError(
            f"{kind}: missing parameter(s) {', '.join(missing)}",
            hint=f"{kind} accepts: {accepted}",
        )
    return constructor(**params)


# Container faults: what the compose stack does to a service's container, not to its traffic.

ContainerFaultKind = Literal["restart", "kill", "pause", "partition"]
CONTAINER_FAULTS: tuple[str, ...] = get_args(ContainerFaultKind)
_CONTAINER_PARAMETERS: Mapping[str, frozenset[str]] = {
    "restart": frozenset({"timeout"}),  # seconds between SIGTERM and SIGKILL
    "kill": frozenset({"signal"}),
    "pause": frozenset(),
    "partition": frozenset(),
}


@dataclass(frozen=True)
class ContainerFaultSpec:
    """A checked container fault: ``restart``, ``kill``, ``pause`` or ``partition`` a service.

    The compose stack carries it out (``ComposeStack.fault``); this only says what to do.
    """

    kind: ContainerFaultKind
    service: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)


def check_container_fault(
    kind: str, service: object, params: Mapping[str, Any]
) -> ContainerFaultSpec:
    """Check a container fault's arguments (``wsconn_container_fault`` markers, at collection)."""
    allowed = _CONTAINER_PARAMETERS.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        raise ConfigError(f"unknown container fault {kind!r}; valid: {', '.join(CONTAINER_FAULTS)}")
    if not isinstance(service, str) or not service:
        raise ConfigError(f"container fault {kind!r} needs service='NAME' (a compose service)")
    unknown = sorted(set(params) - allowed)
    if unknown:
        valid = ", ".join(sorted(allowed)) or "none"
        raise ConfigError(
            f"container fault {kind!r} takes no {', '.join(unknown)}; its parameters: {valid}"
        )
    return ContainerFaultSpec(kind, service, MappingProxyType(dict(params)))  # type: ignore[arg-type]
