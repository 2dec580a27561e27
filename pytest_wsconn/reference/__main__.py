"""``python -m pytest_wsconn.reference``: run the reference server (same as ``wsconn serve``)."""

from pytest_wsconn.cli.serve import main

raise SystemExit(main())
