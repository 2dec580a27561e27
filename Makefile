# The two commands of the README. Each does all set-up first (scripts/bootstrap).
.PHONY: demo test test-fast bootstrap

bootstrap:
	@scripts/bootstrap

# The check battery against the embedded stack: reference server behind a real toxiproxy-server.
demo: bootstrap
	.venv/bin/wsconn demo

# Lint, type-check and the whole test suite. .ci/run calls this.
test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/pytest -n 4 --dist loadgroup -m "not serial"
	.venv/bin/pytest -m serial

# The edit loop: lint, types and the tests that need no Docker, wheel or load run, in parallel.
test-fast: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest -n 4 -m "not slow"
