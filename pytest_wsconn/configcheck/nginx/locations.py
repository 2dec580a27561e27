"""Locations: the one nginx picks for a path, and the directives in force in it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence

from pytest_wsconn.configcheck.nginx.config import Directive, NginxConfig


@dataclasses.dataclass(frozen=True, eq=False)
class Location:
    """A ``location`` block: how it matches, and the blocks whose settings it inherits."""

    modifier: str  # "", "=", "^~", "~", "~*" or "@"
    pattern: str
    directive: Directive
    chain: tuple[tuple[Directive, ...], ...]  # outermost first, its own block last
    children: tuple[Location, ...]

    @property
    def label(self) -> str:
        return f"location {self.modifier} {self.pattern}".replace("  ", " ")

    def matches(self, path: str) -> bool:
        if self.modifier == "=":
            return path == self.pattern
        if self.modifier in ("", "^~"):
            return path.startswith(self.pattern)
        if self.modifier in ("~", "~*"):
            flags = re.IGNORECASE if self.modifier == "~*" else 0
            try:
                return re.search(self.pattern, path, flags) is not None
            except re.error:
                return False
        return False

    def walk(self) -> Iterator[Location]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclasses.dataclass(frozen=True)
class Server:
    """A ``server`` block (None for a file of bare locations) and its locations."""

    directive: Directive | None
    file: str
    locations: tuple[Location, ...]

    def walk(self) -> Iterator[Location]:
        for location in self.locations:
            yield from location.walk()


def _modifier(args: tuple[str, ...]) -> tuple[str, str]:
    if len(args) >= 2 and args[0] in ("=", "~", "~*", "^~"):
        return args[0], args[1]
    first = args[0] if args else ""
    for modifier in ("^~", "~*", "=", "~", "@"):
        if first.startswith(modifier) and len(first) > len(modifier):
            return modifier, first if modifier == "@" else first[len(modifier) :]
    return "", first


def _locations(
    block: tuple[Directive, ...], chain: tuple[tuple[Directive, ...], ...]
) -> tuple[Location, ...]:
    found = []
    for d in block:
        if d.name == "location" and d.block is not None:
            modifier, pattern = _modifier(d.args)
            own = (*chain, d.block)
            found.append(Location(modifier, pattern, d, own, _locations(d.block, own)))
    return tuple(found)


def servers(configs: Sequence[NginxConfig]) -> list[Server]:
    """Every http ``server`` block; a file of bare ``location`` blocks counts as one server."""
    found: list[Server] = []

    def visit(block: tuple[Directive, ...], chain: tuple[tuple[Directive, ...], ...]) -> None:
        for d in block:
            if d.block is not None and d.name == "http":
                visit(d.block, (*chain, d.block))
            elif d.block is not None and d.name == "server":
                own = (*chain, d.block)
                found.append(Server(d, d.file, _locations(d.block, own)))

    for config in configs:
        top = config.directives
        visit(top, (top,))
        if any(d.name == "location" for d in top):
            found.append(Server(None, config.file, _locations(top, (top,))))
    return found


def select_location(locations: Sequence[Location], path: str) -> Location | None:
    """The location nginx picks for ``path``: exact, then ``^~`` prefix, regexes, longest prefix."""
    exact = next((loc for loc in locations if loc.modifier == "=" and loc.matches(path)), None)
    if exact is not None:
        return exact
    prefixes = [loc for loc in locations if loc.modifier in ("", "^~") and loc.matches(path)]
    best = max(prefixes, key=lambda loc: len(loc.pattern), default=None)
    chosen = best
    if best is None or best.modifier != "^~":
        regex = (loc for loc in locations if loc.modifier in ("~", "~*") and loc.matches(path))
        chosen = next(regex, best)
    if chosen is not None and chosen.children:
        return select_location(chosen.children, path) or chosen
    return chosen


def own_directive(location: Location, name: str) -> Directive | None:
    """The location's own last ``name`` directive (``proxy_pass`` is not inherited)."""
    return next((d for d in reversed(location.chain[-1]) if d.name == name), None)


def directive_in_force(location: Location, name: str) -> Directive | None:
    """The ``name`` directive in force: the innermost level that sets it."""
    for block in reversed(location.chain):
        found = next((d for d in reversed(block) if d.name == name), None)
        if found is not None:
            return found
    return None


def headers_in_force(location: Location) -> dict[str, Directive]:
    """The ``proxy_set_header`` set in force: all of them from the innermost level with any.

    nginx inherits the list only when a level sets none, so one header set in a location drops
    every header set on the server.
    """
    for block in reversed(location.chain):
        headers = [d for d in block if d.name == "proxy_set_header" and len(d.args) >= 2]
        if headers:
            return {d.args[0].lower(): d for d in headers}
    return {}


def header_shadowed(location: Location, header: str) -> bool:
    """Whether ``header`` is set further out than the level whose headers are in force."""
    levels = [
        [d.args[0].lower() for d in block if d.name == "proxy_set_header" and d.args]
        for block in location.chain
    ]
    inner = max((i for i, names in enumerate(levels) if names), default=-1)
    return any(header in names for names in levels[:inner])
