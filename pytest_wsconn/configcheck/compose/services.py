"""Compose YAML read into Service records with PyYAML's node API: every setting keeps its line."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pytest_wsconn.configcheck.env import EnvVar


@dataclasses.dataclass(frozen=True)
class PortMapping:
    """One ``ports`` entry: the container's port and the host port that publishes it."""

    container: int
    published: int | None
    line: int


@dataclasses.dataclass(frozen=True)
class Dependency:
    """One ``depends_on`` entry; the short list syntax means ``service_started``."""

    service: str
    condition: str
    line: int
    listed: bool = False  # the short list syntax, ``depends_on: [backend]``


@dataclasses.dataclass(frozen=True)
class Service:
    """What the checks need of a compose service, each setting with its line."""

    name: str
    line: int
    image: str = ""
    network_mode: str | None = None
    networks: tuple[str, ...] = ("default",)
    aliases: tuple[str, ...] = ()  # hostname, container_name, network aliases
    ports: tuple[PortMapping, ...] = ()
    expose: tuple[int, ...] = ()
    healthcheck: bool = False
    depends_on: tuple[Dependency, ...] = ()
    environment: tuple[EnvVar, ...] = ()
    volumes: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ComposeFile:
    """A parsed compose file, or the line and message of why it could not be read."""

    file: str
    services: tuple[Service, ...] = ()
    error: tuple[int | None, str] | None = None


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _text(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def _get(node: Node | None, key: str) -> Node | None:
    """The value under ``key`` of a mapping node (the last one, as YAML loaders do)."""
    if not isinstance(node, MappingNode):
        return None
    found = None
    for k, v in node.value:
        if _text(k) == key:
            found = v
    return found


def _items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def _ports(text: str) -> list[int] | None:
    """``8000`` or ``8000-8002`` (protocol stripped) as port numbers, None if not that."""
    text = text.split("/", maxsplit=1)[0].strip()
    match = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", text)
    if match is None:
        return None
    first = int(match.group(1))
    last = int(match.group(2) or first)
    return list(range(first, last + 1)) if first <= last <= first + 1024 else None


def parse_port_mapping(text: str, line: int) -> list[PortMapping]:
    """A short-syntax ``ports`` entry (``[ip:][published:]container[/proto]``); [] if invalid."""
    parts = text.rsplit(":", 2)
    container = _ports(parts[-1])
    if container is None:
        return []
    published = _ports(parts[-2]) if len(parts) >= 2 and parts[-2] else None
    if published is None:
        return [PortMapping(port, None, line) for port in container]
    if len(published) == 1 and len(container) > 1:
        published = published * len(container)
    return [PortMapping(c, p, line) for c, p in zip(container, published, strict=False)]


def _port_entries(node: Node | None) -> tuple[PortMapping, ...]:
    mappings: list[PortMapping] = []
    for item in _items(node):
        text = _text(item)
        if text is not None:
            mappings += parse_port_mapping(text, _line(item))
            continue
        target = _ports(_text(_get(item, "target")) or "")
        published = _ports(_text(_get(item, "published")) or "")
        for port in target or []:
            mappings.append(PortMapping(port, published[0] if published else None, _line(item)))
    return tuple(mappings)


def _environment(node: Node | None, file: str) -> tuple[EnvVar, ...]:
    """``environment`` as a mapping or a ``NAME=value`` list; unset values are skipped."""
    pairs: list[tuple[str, str | None, int]] = []
    if isinstance(node, MappingNode):
        pairs = [(_text(k) or "", _text(v), _line(k)) for k, v in node.value]
    for item in _items(node):
        name, sep, value = (_text(item) or "").partition("=")
        pairs.append((name, value if sep else None, _line(item)))
    return tuple(
        EnvVar(name, value, file, line, resolved="$" not in value)
        for name, value, line in pairs
        if name and value is not None
    )


def _networks(node: Node | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The service's network names and its aliases on them."""
    if node is None:
        return ("default",), ()
    if isinstance(node, MappingNode):
        names = tuple(_text(k) or "" for k, _ in node.value)
        aliases = tuple(
            alias
            for _, v in node.value
            for alias in (_text(a) for a in _items(_get(v, "aliases")))
            if alias
        )
        return names, aliases
    return tuple(name for name in (_text(i) for i in _items(node)) if name), ()


def _depends_on(node: Node | None) -> tuple[Dependency, ...]:
    if isinstance(node, MappingNode):
        return tuple(
            Dependency(
                _text(k) or "",
                _text(_get(v, "condition")) or "service_started",
                _line(k),
            )
            for k, v in node.value
        )
    return tuple(
        Dependency(name, "service_started", _line(item), listed=True)
        for item in _items(node)
        if (name := _text(item))
    )


def _healthcheck(node: Node | None) -> bool:
    """A healthcheck that is there and not switched off (``disable: true`` or ``NONE``)."""
    if node is None or _text(_get(node, "disable")) in ("true", "True", "yes"):
        return False
    test = _get(node, "test")
    first = _text(_items(test)[0]) if _items(test) else _text(test)
    return first != "NONE"


def _service(name: str, key: Node, node: Node, file: str) -> Service:
    networks, aliases = _networks(_get(node, "networks"))
    own_names = (_text(_get(node, "hostname")), _text(_get(node, "container_name")))
    return Service(
        name=name,
        line=_line(key),
        image=_text(_get(node, "image")) or "",
        network_mode=_text(_get(node, "network_mode")),
        networks=networks,
        aliases=tuple(a for a in (*own_names, *aliases) if a),
        ports=_port_entries(_get(node, "ports")),
        expose=tuple(
            port
            for item in _items(_get(node, "expose"))
            for port in _ports(_text(item) or "") or []
        ),
        healthcheck=_healthcheck(_get(node, "healthcheck")),
        depends_on=_depends_on(_get(node, "depends_on")),
        environment=_environment(_get(node, "environment"), file),
        volumes=tuple(
            v
            for v in (_text(i) or _text(_get(i, "source")) for i in _items(_get(node, "volumes")))
            if v
        ),
        extra_hosts=tuple(
            host.split(":")[0].split("=")[0]
            for host in (_text(i) or "" for i in _items(_get(node, "extra_hosts")))
        ),
    )


def _merge_keys(loader: yaml.SafeLoader, node: Node | None) -> None:
    """Resolve ``<<: *anchor`` merge keys in place, everywhere, as YAML loaders do."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, MappingNode):
            loader.flatten_mapping(current)
            stack += [v for _, v in current.value]
        elif isinstance(current, SequenceNode):
            stack += current.value


def parse_compose(text: str, file: str) -> ComposeFile:
    """Parse compose YAML into services; a YAML or shape error is returned, never raised."""
    try:
        loader = yaml.SafeLoader(text)  # reads the first chunk: a binary file fails here
    except yaml.YAMLError as exc:
        return ComposeFile(file, error=(None, f"not a YAML file: {exc}".splitlines()[0]))
    try:
        root = loader.get_single_node()
        _merge_keys(loader, root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return ComposeFile(file, error=(mark.line + 1 if mark else None, str(exc.problem)))
    except yaml.YAMLError as exc:
        return ComposeFile(file, error=(None, str(exc).splitlines()[0]))
    finally:
        loader.dispose()
    services = _get(root, "services")
    if not isinstance(services, MappingNode):
        line = _line(services) if services is not None else 1
        return ComposeFile(file, error=(line, "there is no services: mapping"))
    return ComposeFile(
        file,
        tuple(_service(_text(k) or "", k, v, file) for k, v in services.value),
    )


def read_compose(path: Path, label: str) -> ComposeFile:
    """Read and parse a compose file; ``label`` is how findings name it."""
    return parse_compose(path.read_text(encoding="utf-8", errors="replace"), label)
