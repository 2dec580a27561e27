"""The README's examples. The container-fault one needs the compose stack, so the suite runs it
with --wsconn-stack=compose (tests/test_compose_plugin.py) instead of collecting it here."""

collect_ignore = ["test_readme_container_faults.py"]
