"""The ``--ws-*`` options of load users, and the settings a run's users share.

Every option is a Locust command-line option, so a master passes them on to its workers; they
are parsed once per run (``settings_of``), not once per user: idle users are many.
"""

from __future__ import annotations

import dataclasses
import os
import weakref
from typing import Any

from locust.env import Environment

from pytest_wsconn.backoff import BackoffPolicy
from pytest_wsconn.config import DEFAULT_AUTH, AuthMode, parse_auth_mode

# name, default, help; every option is a Locust option, so workers get the master's values.
OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("ws-auth", os.environ.get("WSCONN_AUTH", DEFAULT_AUTH), "where the token goes"),
    ("ws-token", os.environ.get("WSCONN_TOKEN", ""), "token sent by every user"),
    ("ws-origin", "", "Origin header"),
    ("ws-dial", "", "host:port to dial instead of the URL's (a proxy); Host stays the URL's"),
    ("ws-open-timeout", "10", "opening-handshake timeout, s"),
    ("ws-close-timeout", "5", "closing-handshake timeout, s"),
    ("ws-message-size", "32", "characters per message (the unique id is never cut)"),
    ("ws-message-interval", "1", "seconds between a user's messages (0: back to back)"),
    ("ws-reply-timeout", "5", "seconds to wait for the echo of (or reply to) our message"),
    ("ws-reply-id-field", "", "JSON field a reply shares with our message (default: exact echo)"),
    ("ws-ping-interval", "20", "keepalive: seconds between pings of an idle user"),
    ("ws-ping-timeout", "10", "keepalive: seconds to wait for a pong"),
    ("ws-connections-per-user", "1", "idle_hold: connections each user holds"),
    ("ws-backoff-initial", "0.1", "reconnect backoff: first delay, s (full jitter)"),
    ("ws-backoff-max", "2", "reconnect backoff: longest delay, s"),
    ("ws-timeline", "", "on: record connection events whatever the scenario (a storm needs them)"),
    ("ws-result", "", "master: write histograms, workers and timeline to this JSON file"),
)


def add_options(parser: Any) -> None:
    """Locust's ``init_command_line_parser`` listener: the ``--ws-*`` options."""
    for name, default, help_text in OPTIONS:
        parser.add_argument(
            f"--{name}",
            default=default,
            help=f"{help_text} (pytest-wsconn)",
            include_in_web_ui=name != "ws-result",
            is_secret=name == "ws-token",
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """The ``--ws-*`` options of a run, parsed once and shared by its users."""

    auth: AuthMode
    token: str | None
    origin: str | None
    dial: tuple[str, int] | None
    open_timeout: float
    close_timeout: float
    message_size: int
    message_interval: float
    reply_timeout: float
    reply_id_field: str | None
    ping_interval: float
    ping_timeout: float
    connections_per_user: int
    backoff: BackoffPolicy
    timeline: bool

    @classmethod
    def parse(cls, environment: Environment) -> Settings:
        def value(name: str) -> str:
            return option(environment, name)

        dial_host, _, dial_port = value("ws-dial").rpartition(":")
        connections_per_user = int(value("ws-connections-per-user"))
        if connections_per_user < 1:
            raise ValueError("--ws-connections-per-user must be 1 or more")
        return cls(
            auth=parse_auth_mode(value("ws-auth")),
            token=value("ws-token") or None,
            origin=value("ws-origin") or None,
            dial=(dial_host, int(dial_port)) if dial_host else None,
            open_timeout=float(value("ws-open-timeout")),
            close_timeout=float(value("ws-close-timeout")),
            message_size=int(value("ws-message-size")),
            message_interval=float(value("ws-message-interval")),
            reply_timeout=float(value("ws-reply-timeout")),
            reply_id_field=value("ws-reply-id-field") or None,
            ping_interval=float(value("ws-ping-interval")),
            ping_timeout=float(value("ws-ping-timeout")),
            connections_per_user=connections_per_user,
            backoff=BackoffPolicy(
                initial=float(value("ws-backoff-initial")),
                max_delay=float(value("ws-backoff-max")),
                max_attempts=None,
                reset_after=1.0,
            ),
            timeline=value("ws-timeline") == "on",
        )


_parsed: weakref.WeakKeyDictionary[Environment, Settings] = weakref.WeakKeyDictionary()


def settings_of(environment: Environment) -> Settings:
    """The run's settings, parsed on first use."""
    settings = _parsed.get(environment)
    if settings is None:
        settings = _parsed[environment] = Settings.parse(environment)
    return settings


def option(environment: Environment, name: str) -> str:
    """One ``--ws-*`` option's value as Locust parsed it (its default without Locust's parser)."""
    value = getattr(environment.parsed_options, name.replace("-", "_"), None)
    if value is None:  # run without Locust's parser (run_single_user, tests)
        value = next(default for option, default, _ in OPTIONS if option == name)
    return str(value)
