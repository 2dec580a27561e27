"""The config model: crossplane's payload as directive trees, includes inlined; nginx times."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_INT32_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Directive:
    """One nginx directive, where it is written, and its block if it has one."""

    name: str
    args: tuple[str, ...]
    file: str
    line: int
    block: tuple[Directive, ...] | None = None


@dataclasses.dataclass(frozen=True)
class NginxConfig:
    """A config file with its includes inlined, and what could not be parsed."""

    file: str
    directives: tuple[Directive, ...]
    errors: tuple[tuple[str, int | None, str], ...] = ()  # (file, line, message)
    files: tuple[str, ...] = ()  # every file read, the main one first


def _directives(
    stmts: Sequence[Mapping[str, Any]],
    file: str,
    configs: Sequence[Mapping[str, Any]],
    seen: tuple[int, ...],
) -> Iterator[Directive]:
    for stmt in stmts:
        includes = stmt.get("includes")
        if includes is not None:
            for index in includes:
                if index not in seen and 0 <= index < len(configs):
                    included = configs[index]
                    yield from _directives(
                        included.get("parsed", []), included["file"], configs, (*seen, index)
                    )
            continue
        block = stmt.get("block")
        yield Directive(
            str(stmt["directive"]),
            tuple(str(arg) for arg in stmt.get("args", [])),
            file,
            int(stmt.get("line", 0)),
            None if block is None else tuple(_directives(block, file, configs, seen)),
        )


UNEXPECTED_END = 'the file ends inside a directive or block: a ";" or "}" is missing at its end'
"""crossplane's error (empty, with no line) when the last directive or block is not closed."""


def config_from_payload(payload: Mapping[str, Any]) -> NginxConfig:
    """Build the directive tree of the first file of a crossplane payload, includes inlined.

    crossplane's own ``combine`` misnames the file of directives after an include, so the
    includes are followed here.
    """
    configs = payload.get("config", [])
    errors = tuple(
        (str(e.get("file", "")), e.get("line"), str(e.get("error", "")) or UNEXPECTED_END)
        for e in payload.get("errors", [])
    )
    if not configs:
        return NginxConfig("", (), errors)
    main = configs[0]
    return NginxConfig(
        main["file"],
        tuple(_directives(main.get("parsed", []), main["file"], configs, (0,))),
        errors,
        tuple(config["file"] for config in configs),
    )


def read_nginx(path: str) -> NginxConfig:
    """Parse an nginx config file and the files it includes with crossplane."""
    import crossplane  # type: ignore[import-untyped]

    try:
        payload = crossplane.parse(path, check_ctx=False, comments=False)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # crossplane reads the file itself
        return NginxConfig(path, (), ((path, None, str(exc)),), (path,))
    return config_from_payload(payload)


_TIME_UNITS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}
_TIME_ORDER = ("w", "d", "h", "m", "s", "ms", " ")


def parse_nginx_time(text: str) -> int | None:
    """Milliseconds of an nginx time such as ``30s``, ``1m30s``, ``500ms`` or ``75``; else None.

    Follows ``ngx_parse_time`` for millisecond settings (``proxy_read_timeout``): units ``w d h
    m s ms`` in that order, each at most once, no unit meaning seconds, spaces between parts,
    and nothing above 2^31-1 ms. Years and months, allowed in second settings only, are refused.
    """
    total, value, valid, step = 0, 0, False, -1
    i = 0
    while i < len(text):
        char = text[i]
        i += 1
        if "0" <= char <= "9":
            value = value * 10 + int(char)
            valid = True
            if value > _INT32_MAX:
                return None
            continue
        if char == "m" and text[i : i + 1] == "s":
            unit, scale = "ms", 1
            i += 1
        elif char in _TIME_UNITS:
            unit, scale = char, _TIME_UNITS[char]
        elif char == " ":
            unit, scale = " ", 1000
        else:
            return None
        order = _TIME_ORDER.index(unit)
        if order <= step or (unit == " " and step >= _TIME_ORDER.index("s")):
            return None
        step = order
        total += value * scale
        if total > _INT32_MAX:
            return None
        value = 0
        while text[i : i + 1] == " ":
            i += 1
    total += value * 1000
    return total if valid and total <= _INT32_MAX else None
