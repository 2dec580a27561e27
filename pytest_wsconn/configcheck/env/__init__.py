"""The variables that tell a frontend and a backend where the WebSocket is, and who may use it.

Pure: ``parse_dotenv`` turns the text of a ``.env`` file into variables with their line numbers,
``check_env`` turns variables (from a ``.env`` file or a compose service) into findings. Only
``read_env_file`` touches the disk.

Layout::

    dotenv.py  the .env parser and the variables it reads; read_env_file
    checks.py  the checks of WebSocket URLs, schemes, hosts and CORS; the names they look for
"""

from __future__ import annotations

from pytest_wsconn.configcheck.env.checks import (
    BROWSER_PREFIXES,
    HTTP_SCHEMES,
    LOOPBACK_HOSTS,
    WS_SCHEMES,
    EnvNames,
    check_dotenv,
    check_env,
    endpoint,
    parse_origins,
    split_url,
)
from pytest_wsconn.configcheck.env.dotenv import DotEnv, EnvVar, parse_dotenv, read_env_file

__all__ = [
    "BROWSER_PREFIXES",
    "HTTP_SCHEMES",
    "LOOPBACK_HOSTS",
    "WS_SCHEMES",
    "DotEnv",
    "EnvNames",
    "EnvVar",
    "check_dotenv",
    "check_env",
    "endpoint",
    "parse_dotenv",
    "parse_origins",
    "read_env_file",
    "split_url",
]
