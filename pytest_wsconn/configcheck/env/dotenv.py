"""A ``.env`` file parsed as Docker Compose and python-dotenv read it, each variable with a line."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class EnvVar:
    """One variable and where it was set; ``resolved`` is False while it holds a ``$REF``."""

    name: str
    value: str
    file: str
    line: int
    resolved: bool = True


@dataclasses.dataclass(frozen=True)
class DotEnv:
    """A parsed ``.env`` file: its variables in order and the lines that are not assignments."""

    file: str
    variables: tuple[EnvVar, ...]
    bad_lines: tuple[int, ...]


_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=(.*))?", re.DOTALL)
_REFERENCE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _interpolate(text: str, known: Mapping[str, str]) -> tuple[str, bool]:
    """Expand ``${NAME}``, ``${NAME:-default}`` and ``$NAME``; False if a name is unknown."""
    resolved = True

    def replace(match: re.Match[str]) -> str:
        nonlocal resolved
        name = match.group(1) or match.group(4)
        value = known.get(name)
        if match.group(2) and (value is None or (match.group(2) == ":-" and not value)):
            return match.group(3) or ""
        if value is None:
            resolved = False
            return match.group(0)
        return value

    return _REFERENCE.sub(replace, text), resolved


def _quoted(quote: str, body: str) -> list[tuple[str, bool]] | None:
    """The text of a quoted value (``body`` follows the opening quote), None while unclosed.

    The text comes in pieces that say whether ``$`` references in them are expanded: nothing
    in single quotes is, and an escaped ``\\$`` in double quotes is a literal dollar.
    """
    if quote == "'":
        end = body.find("'")
        return None if end < 0 else [(body[:end], False)]
    pieces: list[tuple[str, bool]] = []
    current: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == '"':
            return [*pieces, ("".join(current), True)]
        if char == "\\" and i + 1 < len(body) and body[i + 1] in _ESCAPES:
            if body[i + 1] == "$":
                pieces += [("".join(current), True), ("$", False)]
                current = []
            else:
                current.append(_ESCAPES[body[i + 1]])
            i += 2
            continue
        current.append(char)
        i += 1
    return None


def parse_dotenv(text: str, file: str = ".env") -> DotEnv:
    """Parse ``.env`` text the way Docker Compose and python-dotenv read it; never raises.

    ``NAME=value``, optional ``export``, ``#`` comments (after whitespace on unquoted values),
    single quotes (literal), double quotes (escapes, may span lines) and ``${NAME}`` references
    to earlier variables. A bare ``NAME`` (taken from the environment) sets nothing.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    variables: list[EnvVar] = []
    known: dict[str, str] = {}
    bad: list[int] = []
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index].lstrip()
        index += 1
        if not line.strip() or line.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(line)
        if match is None:
            bad.append(number)
            continue
        name, raw = match.group(1), match.group(2)
        if raw is None:
            continue
        raw = raw.lstrip()
        if raw.startswith(("'", '"')):
            quote, body = raw[0], raw[1:]
            pieces = _quoted(quote, body)
            while pieces is None and index < len(lines):  # a quoted value may span lines
                body += "\n" + lines[index]
                index += 1
                pieces = _quoted(quote, body)
            if pieces is None:
                bad.append(number)
                continue
            value, resolved = "", True
            for piece, expand in pieces:
                expanded, ok = _interpolate(piece, known) if expand else (piece, True)
                value += expanded
                resolved = resolved and ok
        else:
            value = re.split(r"\s#", raw, maxsplit=1)[0].strip()
            value, resolved = _interpolate(value, known)
        variables.append(EnvVar(name, value, file, number, resolved))
        known[name] = value
    return DotEnv(file, tuple(variables), tuple(bad))


def read_env_file(path: Path, label: str) -> DotEnv:
    """Read and parse a ``.env`` file; ``label`` is how findings name it."""
    return parse_dotenv(path.read_text(encoding="utf-8", errors="replace"), label)
