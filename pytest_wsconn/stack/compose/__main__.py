"""``python -m pytest_wsconn.stack.compose reap``: remove what runs that died left behind."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_wsconn.stack.compose.engine import docker_client
from pytest_wsconn.stack.compose.reaper import reap
from pytest_wsconn.stack.compose.state import default_base, reap_state


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_wsconn.stack.compose reap``: remove stacks of runs that died."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pytest_wsconn.stack.compose")
    parser.add_argument("command", choices=["reap"])
    parser.parse_args(argv)
    client = docker_client()
    try:
        removed = reap(client)
    finally:
        client.close()
    folders = reap_state(default_base())
    print(f"removed {len(removed)} stack(s) left by runs that died: {', '.join(removed) or '-'}")
    print(f"removed {len(folders)} state folder(s) of runs that died: {', '.join(folders) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
