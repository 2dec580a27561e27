"""What ``wsconn diagnose`` and ``wsconn check`` found, rendered for people, machines and CI.

Pure: the commands collect ``CheckResult`` (one per diagnostic step) and ``Finding`` (one per
configuration problem); this module turns them into an aligned table (colour only when asked,
i.e. on a TTY), JSON, GitHub annotations and an exit code: 0 all good, 1 a failure (2, a usage
error, is the command's own).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pytest_wsconn.closecodes import WebSocketError

Status = Literal["pass", "warn", "fail", "skipped"]
Severity = Literal["error", "warning", "info"]

_COLOURS = {
    "pass": "32",
    "warn": "33",
    "fail": "31",
    "skipped": "90",
    "error": "31",
    "warning": "33",
    "info": "36",
}


def _paint(text: str, key: str, color: bool) -> str:
    return f"\033[{_COLOURS[key]}m{text}\033[0m" if color else text


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One diagnostic step: its status, how long it took, what it saw and, if it failed, why."""

    name: str
    status: Status
    detail: str
    duration: float = 0.0
    error: WebSocketError | None = None
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        error = None
        if self.error is not None:
            error = {
                "category": self.error.category,
                "code": self.error.code,
                "message": self.error.message,
                "causes": list(self.error.causes),
                "steps": list(self.error.steps),
                "retryable": self.error.retryable,
            }
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "duration_ms": round(self.duration * 1000, 3),
            "error": error,
            "fields": dict(self.fields),
        }


@dataclasses.dataclass(frozen=True)
class Finding:
    """One configuration problem: where, what, why it breaks WebSockets, and the fix."""

    severity: Severity
    rule: str
    file: str
    line: int | None
    what: str
    why: str
    fix: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "location": self.location}


def render_checks(target: str, results: Sequence[CheckResult], *, color: bool = False) -> str:
    """The diagnose report: one aligned row per check, then the first failure's advice."""
    header = ("check", "status", "time", "detail")
    rows = [(r.name, r.status, f"{r.duration * 1000:.1f} ms", r.detail) for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]

    def line(row: Sequence[str], painted: bool) -> str:
        name, status, took, detail = row
        pad = " " * (widths[1] - len(status))
        shown = _paint(status, status, color) if painted else status
        return f"{name.ljust(widths[0])}  {shown}{pad}  {took.ljust(widths[2])}  {detail}".rstrip()

    lines = [line(header, painted=False), *(line(row, painted=True) for row in rows)]
    failed = [r for r in results if r.status == "fail"]
    summary = f"{len(failed)} failed" if failed else "all checks passed"
    warned = sum(r.status == "warn" for r in results)
    if warned:
        summary += f", {warned} warning{'s' if warned > 1 else ''}"
    out = [f"wsconn diagnose {target}", "", *lines, "", summary]
    first = next((r for r in failed if r.error is not None), None)
    if first is not None and first.error is not None:
        out += ["", f"{first.name}: {first.error}", first.error.advice()]
    return "\n".join(out) + "\n"


def checks_json(target: str, results: Sequence[CheckResult]) -> dict[str, Any]:
    return {
        "target": target,
        "ok": checks_exit_code(results) == 0,
        "checks": [r.to_json() for r in results],
    }


def checks_exit_code(results: Sequence[CheckResult]) -> int:
    return 1 if any(r.status == "fail" for r in results) else 0


def render_findings(
    findings: Sequence[Finding], checked: Sequence[str], *, color: bool = False
) -> str:
    """The check report: what was read, then each finding with its why and fix."""
    out = ["wsconn check: read " + (", ".join(checked) if checked else "no file")]
    for finding in findings:
        severity = _paint(finding.severity, finding.severity, color)
        out += [
            "",
            f"{finding.location}: {severity} [{finding.rule}] {finding.what}",
            f"  why: {finding.why}",
            f"  fix: {finding.fix}",
        ]
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    out += ["", f"{errors} error(s), {warnings} warning(s)" if findings else "no problems found"]
    return "\n".join(out) + "\n"


def findings_json(findings: Sequence[Finding], checked: Sequence[str]) -> dict[str, Any]:
    return {
        "checked": list(checked),
        "ok": findings_exit_code(findings) == 0,
        "findings": [f.to_json() for f in findings],
    }


def findings_github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands that annotate the files in a pull request."""
    level = {"error": "error", "warning": "warning", "info": "notice"}
    lines = []
    for f in findings:
        where = f"file={f.file}" + (f",line={f.line}" if f.line is not None else "")
        message = f"{f.what} — {f.why} Fix: {f.fix}".replace("%", "%25").replace("\n", "%0A")
        lines.append(f"::{level[f.severity]} {where},title=wsconn {f.rule}::{message}")
    return "\n".join(lines) + ("\n" if lines else "")


def findings_exit_code(findings: Sequence[Finding]) -> int:
    return 1 if any(f.severity == "error" for f in findings) else 0
