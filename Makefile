# The two commands of the README. Each does all set-up first (scripts/bootstrap).
.PHONY: demo test test-fast bootstrap

bootstrap:
	@scripts/bootstrap

# The check battery against the embedded stack: reference server behind a real toxiproxy-server.
demo: bootstrap
	.venv/bin/wsconn demo

# Lint, type-check and the whole test suite. .ci/run calls this. Two sessions at once (output
# shown per session when it ends): the tests that use the Docker engine, one after another, and
# the rest in parallel; then the load runs, alone.
test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	$(MAKE) --no-print-directory --output-sync=target -j2 test-docker test-parallel
	.venv/bin/pytest -m serial

.PHONY: test-docker test-parallel
test-docker:
	.venv/bin/pytest -m docker
test-parallel:
	.venv/bin/pytest -n 3 -m "not docker and not serial"

# The edit loop: lint, types and the tests that need no Docker, wheel build or load run.
test-fast: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest -n 3 -m "not docker and not serial and not slow"
