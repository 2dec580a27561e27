"""The README shows tested code and documents every option the plugin has."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_wsconn.plugin import _OPTIONS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


class TestReadme:
    def test_example_is_the_tested_file(self) -> None:
        """The README's example is tests/examples/test_readme_example.py, verbatim."""
        example = (ROOT / "tests" / "examples" / "test_readme_example.py").read_text()
        assert f"```python\n{example}```" in README

    def test_every_option_is_documented(self) -> None:
        """Each --wsconn-* option and its ini key has a row in the options table."""
        rows = set(re.findall(r"^\| `(--wsconn-[a-z-]+)` \| `(wsconn_[a-z_]+)` \|", README, re.M))
        expected = {(f"--wsconn-{o.name}", f"wsconn_{o.name.replace('-', '_')}") for o in _OPTIONS}
        assert rows == expected
