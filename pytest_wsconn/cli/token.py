"""``wsconn token``: a token the reference server accepts, signed with its secret."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from pytest_wsconn.reference.tokens import SECRET_ENV, sign_token


def main(argv: Sequence[str]) -> int:
    """Print a token for the reference server; 2 when its secret is not set."""
    parser = argparse.ArgumentParser(
        prog="wsconn token", description="Print a token for the reference server (pytest-wsconn)."
    )
    parser.add_argument("--secret-env", default=SECRET_ENV, metavar="VAR")
    parser.add_argument("--subject", default="wsconn-user")
    parser.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    args = parser.parse_args(argv)
    secret = os.environ.get(args.secret_env)
    if not secret:
        print(f"wsconn token: set {args.secret_env} to the server's secret", file=sys.stderr)
        return 2
    print(sign_token(secret.encode(), args.subject, time.time() + args.ttl))
    return 0
