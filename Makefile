# The two commands of the README. Each does all set-up first (scripts/bootstrap).
.PHONY: demo test bootstrap

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
	.venv/bin/pytest
