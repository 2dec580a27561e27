"""Helpers for pytest-wsconn's own tests; ``tests/`` is on ``sys.path``, so ``from support...``."""
