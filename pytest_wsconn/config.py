"""Settings of a wsconn session, every option that sets them, and their precedence.

The parsers behind the options are in ``parsers`` and importable from here too. Each takes the
raw text of an option, ini key or env var and returns a typed value or raises ``ConfigError``
naming the valid values; ``plugin.py`` turns that into a usage error, ``cli.types`` into an
argparse type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pytest_wsconn.chaos import ChaosSeed, parse_chaos_seed
from pytest_wsconn.exceptions import ConfigError

# The option parsers, importable from here (mypy: implicit_reexport for this module).
from pytest_wsconn.parsers import (  # noqa: F401 - re-exported
    DEFAULT_PORTS,
    origin_of,
    parse_duration,
    parse_flag,
    parse_health_url,
    parse_http_url,
    parse_non_negative_int,
    parse_origin,
    parse_page_origin,
    parse_port,
    parse_positive_int,
    parse_pushgateway_url,
    parse_seconds,
    parse_seconds_or_off,
    parse_timeout,
    parse_url_path,
    parse_ws_url,
    target_address,
)
from pytest_wsconn.redact import Secret

if TYPE_CHECKING:
    from pytest_wsconn.stack.compose.spec import Target

AuthKind = Literal["query", "header", "subprotocol", "cookie", "none"]
StackKind = Literal["local", "external", "compose"]
STACKS: tuple[StackKind, ...] = ("local", "external", "compose")
DEFAULT_AUTH = "query:token"
DEFAULT_CHROMIUM = "/usr/bin/chromium"  # Debian's; wsconn_browser and diagnose --browser drive it
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_MESSAGE = 16 * 2**20  # bytes; the security battery's limit check sends one more
DEFAULT_HANDSHAKE_DEADLINE = 15.0  # seconds a stalled handshake may stay open (slow checks)
DEFAULT_FUZZ_EXAMPLES = 50  # frame sequences the fuzz check sends at most, within:
DEFAULT_FUZZ_SECONDS = 3.0
AUTH_SYNTAX = "query:<param>, header, subprotocol[:<prefix>], cookie:<name>, none"


@dataclasses.dataclass(frozen=True)
class AuthMode:
    """Where a client puts its token: query parameter, Bearer header, subprotocol or cookie."""

    kind: AuthKind
    name: str = ""  # query parameter, subprotocol prefix or cookie name

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


def parse_auth_mode(text: str) -> AuthMode:
    """Parse an auth mode; the syntax is ``AUTH_SYNTAX``."""
    kind, _, name = text.strip().partition(":")
    if kind == "query" and name:
        return AuthMode("query", name)
    if kind == "header" and not name:
        return AuthMode("header")
    if kind == "none" and not name:
        return AuthMode("none")
    if kind == "subprotocol":
        return AuthMode("subprotocol", name or "token.")
    if kind == "cookie" and name:
        return AuthMode("cookie", name)
    raise ConfigError(f"invalid auth mode {text!r}; valid: {AUTH_SYNTAX}")


def parse_stack(text: str) -> StackKind:
    """Validate a stack name."""
    for stack in STACKS:
        if text == stack:
            return stack
    raise ConfigError(f"invalid stack {text!r}; valid: {', '.join(STACKS)}")


def resolve_stack(
    stack: StackKind | None, url: str | None, *, stack_from: str, url_from: str
) -> StackKind:
    """The stack a session tests: a URL means ``external`` unless a stack is named.

    A URL beside ``local`` or ``compose`` would be ignored, and the session would go green on
    the wrong service: that is a usage error naming both settings (``*_from`` say where each
    came from, e.g. ``--wsconn-url`` or ``ini wsconn_url``).
    """
    if stack is None:
        return "external" if url else "local"
    if url and stack != "external":
        raise ConfigError(
            f"{url_from} names a service but {stack_from}={stack} tests "
            f"{'the reference server' if stack == 'local' else 'a compose project'}, "
            "which would leave that URL untested",
            hint=f"drop {stack_from} to test the URL (it means --wsconn-stack=external), "
            f"or drop {url_from}",
        )
    return stack


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every wsconn setting of one session, after the command line has won over the ini file."""

    stack: StackKind = "local"
    url: str | None = None
    token: Secret | None = None
    auth: AuthMode = dataclasses.field(default_factory=lambda: parse_auth_mode(DEFAULT_AUTH))
    origin: str | None = None
    toxiproxy_url: str | None = None
    toxiproxy_bin: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    log_file: str | None = None
    report: str | None = None
    compose_files: tuple[str, ...] = ()
    compose_services: tuple[Target, ...] = ()  # --wsconn-compose-service SERVICE:PORT[/PATH]
    compose_project: str | None = None
    keep_stack: bool = False
    metrics_file: str | None = None
    pushgateway: str | None = None
    metrics_job: str = "wsconn"
    metrics_instance: str | None = None  # None: the host name
    max_message: int = DEFAULT_MAX_MESSAGE
    broadcasts: bool = False
    health_url: str | None = None  # GET after each abuse; None: the local stack's /health only
    slow: bool = False  # run the slow security checks (marker wsconn_slow)
    handshake_deadline: float = DEFAULT_HANDSHAKE_DEADLINE
    max_connections: int | None = None  # the service's connection maximum, when it has one
    fuzz_examples: int = DEFAULT_FUZZ_EXAMPLES
    fuzz_seconds: float = DEFAULT_FUZZ_SECONDS
    fuzz_seed: int | None = None  # None: drawn per run, printed to replay
    chaos: ChaosSeed | None = None  # --wsconn-chaos[=SEED]: a seed, or "random"
    chaos_rounds: int = 1
    chaos_containers: tuple[str, ...] = ()  # compose services chaos may restart, kill, pause …
    history: str | None = None  # --wsconn-history PATH (chaos mode: .wsconn/history.sqlite)
    browser_path: str | None = None  # Chromium for wsconn_browser; None: /usr/bin/chromium
    frontend_origin: str | None = None  # turns on the battery's browser checks

    def __post_init__(self) -> None:
        if self.chaos_rounds > 1 and self.chaos is None:
            raise ConfigError(
                "--wsconn-chaos-rounds repeats chaos runs, but chaos mode is off",
                hint="add --wsconn-chaos (or --wsconn-chaos=SEED)",
            )
        if self.chaos_containers and self.chaos is None:
            raise ConfigError(
                "--wsconn-chaos-containers adds container faults to chaos runs, but chaos mode "
                "is off",
                hint="add --wsconn-chaos (or --wsconn-chaos=SEED)",
            )
        if self.chaos_containers and self.stack != "compose":
            raise ConfigError(
                f"--wsconn-chaos-containers faults compose containers, but the stack is "
                f"{self.stack}",
                hint="add --wsconn-stack=compose, or drop --wsconn-chaos-containers",
            )
        if self.stack == "external" and not self.url:
            raise ConfigError(
                "--wsconn-stack=external needs --wsconn-url",
                hint="e.g. --wsconn-url ws://localhost:8080/ws",
            )


def _compose_service(text: str) -> Target:
    """``SERVICE:PORT[/PATH]``, parsed now so a typo is a usage error, not a failed session."""
    from pytest_wsconn.stack.compose.spec import parse_target  # pure, like this module

    return parse_target(text)


@dataclasses.dataclass(frozen=True)
class Option:
    """One setting: its ``--wsconn-NAME`` option, ``wsconn_NAME`` ini key and env var, if any."""

    name: str
    field: str  # in Settings
    help: str
    parse: Callable[[Any], Any]
    env: str | None = None
    multiple: bool = False  # repeatable option, linelist ini key; the field is a tuple
    flag: bool = False  # an option without a value; the ini key takes true/false
    const: str | None = None  # the value of the option given alone (--wsconn-NAME[=VALUE])

    @property
    def key(self) -> str:
        """The option's name as a Python identifier: ``compose-file`` → ``compose_file``."""
        return self.name.replace("-", "_")


OPTIONS = (
    Option(
        "stack", "stack", "stack to test against: local (default), external or compose", parse_stack
    ),
    Option("url", "url", "WebSocket URL of your running service (ws:// or wss://)", parse_ws_url),
    Option(
        "token", "token", "token for your service (or env WSCONN_TOKEN)", Secret, env="WSCONN_TOKEN"
    ),
    Option("auth", "auth", f"where the token goes: {AUTH_SYNTAX}", parse_auth_mode),
    Option("origin", "origin", "Origin header sent by test connections", str),
    Option("toxiproxy", "toxiproxy_url", "URL of a running Toxiproxy API to use", parse_http_url),
    Option(
        "toxiproxy-bin",
        "toxiproxy_bin",
        "path of toxiproxy-server (or env WSCONN_TOXIPROXY_BIN)",
        str,
    ),
    Option("log-file", "log_file", "write connection events as JSON lines to this file", str),
    Option("report", "report", "write a JSON report of the session to this file", str),
    Option(
        "metrics-file",
        "metrics_file",
        "write the session's figures in the Prometheus text format to this file",
        str,
    ),
    Option(
        "pushgateway",
        "pushgateway",
        "push the session's figures to this Prometheus Pushgateway (or env WSCONN_PUSHGATEWAY)",
        parse_pushgateway_url,
        env="WSCONN_PUSHGATEWAY",
    ),
    Option("metrics-job", "metrics_job", "job label of pushed metrics (default wsconn)", str),
    Option(
        "metrics-instance",
        "metrics_instance",
        "instance label of pushed metrics (default: the host name)",
        str,
    ),
    Option(
        "timeout", "timeout", "opening-handshake timeout in seconds (default 10)", parse_timeout
    ),
    Option(
        "compose-file",
        "compose_files",
        "compose file of --wsconn-stack=compose, repeatable (default docker-compose.test.yml)",
        str,
        multiple=True,
    ),
    Option(
        "compose-service",
        "compose_services",
        "the WebSocket service of the compose project, SERVICE:PORT[/PATH], repeatable; "
        "wsconn_proxy fronts the first (default: the bundled nginx:80/ws and backend:8765/ws)",
        _compose_service,
        multiple=True,
    ),
    Option(
        "compose-project",
        "compose_project",
        "compose project name (default: unique per run, shared by its xdist workers)",
        str,
    ),
    Option(
        "max-message",
        "max_message",
        "the largest message your service takes, in bytes: the security battery sends one "
        "byte more and expects a refusal (default 16777216, 16 MiB)",
        parse_positive_int,
    ),
    Option(
        "broadcasts",
        "broadcasts",
        "your service sends every message to every connection by design: the security "
        "battery's isolation check skips",
        parse_flag,
        flag=True,
    ),
    Option(
        "health-url",
        "health_url",
        "your service's health endpoint, http(s)://host:port/path: the security battery "
        "checks it answers 2xx after each abuse (local stack: the reference server's /health)",
        parse_health_url,
    ),
    Option(
        "slow",
        "slow",
        "run the slow security checks too (marker wsconn_slow)",
        parse_flag,
        flag=True,
    ),
    Option(
        "handshake-deadline",
        "handshake_deadline",
        "seconds within which your service must close a stalled opening handshake (default 15)",
        parse_seconds,
    ),
    Option(
        "max-connections",
        "max_connections",
        "your service's connection maximum: the slow checks open one more and expect a refusal",
        parse_positive_int,
    ),
    Option(
        "fuzz-examples",
        "fuzz_examples",
        "frame sequences the fuzz check sends at most (default 50)",
        parse_positive_int,
    ),
    Option(
        "fuzz-seconds", "fuzz_seconds", "seconds the fuzz check may take (default 3)", parse_seconds
    ),
    Option(
        "fuzz-seed",
        "fuzz_seed",
        "seed of the fuzz check, to replay a run (default: drawn, and printed)",
        parse_non_negative_int,
    ),
    Option(
        "keep-stack",
        "keep_stack",
        "leave the compose stack running at the end, and reuse it next run",
        parse_flag,
        flag=True,
    ),
    Option(
        "chaos",
        "chaos",
        "chaos mode: apply a fault drawn from a schedule seeded by SEED to each test that "
        "connects (--wsconn-chaos alone draws a seed); --wsconn-chaos=SEED replays a run",
        parse_chaos_seed,
        const="random",
    ),
    Option(
        "chaos-rounds",
        "chaos_rounds",
        "run each chaos test N times, each under its own draw (default 1)",
        parse_positive_int,
    ),
    Option(
        "chaos-containers",
        "chaos_containers",
        "a compose service chaos mode may also restart, kill, pause or partition, repeatable "
        "(--wsconn-stack=compose only)",
        str,
        multiple=True,
    ),
    Option(
        "history",
        "history",
        "append this run to the SQLite run history at PATH (chaos mode: .wsconn/history.sqlite)",
        str,
    ),
    Option(
        "browser-path",
        "browser_path",
        "Chromium for wsconn_browser (default /usr/bin/chromium; or env WSCONN_BROWSER_PATH)",
        str,
        env="WSCONN_BROWSER_PATH",
    ),
    Option(
        "frontend-origin",
        "frontend_origin",
        "the origin your frontend is served from: turns on the battery's browser checks "
        "(Chromium at that origin connects, at a foreign one is refused)",
        parse_page_origin,
    ),
)


def resolve(cli: Mapping[str, Any], env: Mapping[str, str], ini: Mapping[str, Any]) -> Settings:
    """The session's settings: the command line wins over the environment, which wins over ini.

    Each mapping is keyed by ``Option.key``; an option not given is None, an empty env var or
    ini value is unset. A bad value is a ``ConfigError`` naming where it came from.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # field -> where its value came from, for usage errors
    for option in OPTIONS:
        raw, source = cli.get(option.key), f"--wsconn-{option.name}"
        if raw is None and option.env:
            raw, source = env.get(option.env) or None, option.env
        if raw is None:
            raw, source = ini.get(option.key) or None, f"ini wsconn_{option.key}"
        if raw is None:
            continue
        parsed = [option.parse(r) for r in raw] if option.multiple else option.parse(raw)
        values[option.field] = tuple(parsed) if option.multiple else parsed
        sources[option.field] = source
    values["stack"] = resolve_stack(
        values.get("stack"),
        values.get("url"),
        stack_from=sources.get("stack", "--wsconn-stack"),
        url_from=sources.get("url", "--wsconn-url"),
    )
    return Settings(**values)
