"""``python -m pytest_wsconn.reference``: run the reference server (same as ``wsconn serve``)."""

from pytest_wsconn.reference.server import main

raise SystemExit(main())
