"""Argument types shared by the subcommands: the pure parsers of ``config``, adapted.

argparse calls a type with the argument's text and prints an ``ArgumentTypeError``'s message as
one usage line, exit status 2. Each type here is one ``config`` parser whose ``ConfigError``
becomes that error, so an option means the same on every subcommand and in the plugin's ini.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from pytest_wsconn import config
from pytest_wsconn.exceptions import ConfigError

T = TypeVar("T")


def argtype(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as an argparse type: its ``ConfigError`` becomes an ``ArgumentTypeError``."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__.removeprefix("parse_")  # argparse's fallback names it
    return convert


positive_int = argtype(config.parse_positive_int)
non_negative_int = argtype(config.parse_non_negative_int)
port = argtype(config.parse_port)
positive_seconds = argtype(config.parse_seconds)
seconds_or_off = argtype(config.parse_seconds_or_off)
duration = argtype(config.parse_duration)
ws_url = argtype(config.parse_ws_url)
auth_mode = argtype(config.parse_auth_mode)
origin = argtype(config.parse_origin)
url_path = argtype(config.parse_url_path)
