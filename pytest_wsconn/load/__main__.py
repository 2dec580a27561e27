"""``python -m pytest_wsconn.load``: the same as ``wsconn load``."""

from pytest_wsconn.load.runner import main

raise SystemExit(main())
