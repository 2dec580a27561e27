"""``python -m pytest_wsconn.load``: the same as ``wsconn load``."""

from pytest_wsconn.cli.load import main

raise SystemExit(main())
