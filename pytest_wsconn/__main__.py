"""``python -m pytest_wsconn``: the ``wsconn`` command."""

import sys

from pytest_wsconn.cli import main

sys.exit(main())
