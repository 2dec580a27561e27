"""The README shows tested code and documents every option the plugin has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_wsconn.config import OPTIONS as _OPTIONS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


class TestReadme:
    @pytest.mark.parametrize(
        "example", ["test_readme_example.py", "test_readme_container_faults.py"]
    )
    def test_example_is_the_tested_file(self, example: str) -> None:
        """Each README example is its file in tests/examples/, verbatim."""
        text = (ROOT / "tests" / "examples" / example).read_text()
        assert f"```python\n{text}```" in README

    def test_nightly_job_is_the_tested_file(self) -> None:
        """The nightly CI job in the README is tests/examples/nightly-chaos.yml, verbatim."""
        text = (ROOT / "tests" / "examples" / "nightly-chaos.yml").read_text()
        assert f"```yaml\n{text}```" in README

    def test_every_container_fault_example_is_tested(self) -> None:
        """Code in the README that calls a container fault is inside a tested example."""
        tested = (ROOT / "tests" / "examples" / "test_readme_container_faults.py").read_text()
        blocks = re.findall(r"```python\n(.*?)```", README, re.S)
        faults = re.compile(
            r"wsconn_stack\.(restart|kill|pause|partition)\(|wsconn_container_fault"
        )
        assert [block for block in blocks if faults.search(block) and block != tested] == []
        assert any(block == tested for block in blocks)

    def test_every_option_is_documented(self) -> None:
        """Each --wsconn-* option and its ini key has a row in the options table."""
        rows = set(re.findall(r"^\| `(--wsconn-[a-z-]+)` \| `(wsconn_[a-z_]+)` \|", README, re.M))
        expected = {(f"--wsconn-{o.name}", f"wsconn_{o.name.replace('-', '_')}") for o in _OPTIONS}
        assert rows == expected

    def test_screenshot_is_a_committed_png(self) -> None:
        """The README shows the reference frontend's screenshot, a PNG in docs/ of this repo."""
        images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", README)
        assert "docs/frontend-backend-stopped.png" in images
        for image in images:
            path = ROOT / image
            assert path.is_file(), f"the README shows {image}, which does not exist"
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{image} is not a PNG"
