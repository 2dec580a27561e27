"""The battery's opt-in browser group: real Chromium at the frontend origin and at a foreign one.

Deselected unless ``--wsconn-frontend-origin`` is given; then it passes on the reference server
and catches a server that lets any page connect (Cross-Site WebSocket Hijacking).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import Service
from support.battery import run_against, run_battery

ONLY_BROWSER = ("-k", "test_browser_at")


@pytest.mark.usefixtures("user_env", "chromium_present")
class TestBrowserGroup:
    def test_off_unless_asked_for(self, pytester: pytest.Pytester) -> None:
        """Without --wsconn-frontend-origin both browser checks are deselected, not failed."""
        listed = run_battery(pytester, "--collect-only", "-q").stdout.str()
        assert "test_connect_and_echo" in listed
        assert "test_browser_at" not in listed
        asked = run_battery(pytester, "--collect-only", "-q", "--wsconn-frontend-origin=http://a")
        asked.stdout.fnmatch_lines(["*test_browser.py::test_browser_at_frontend_origin_connects"])

    def test_passes_on_the_embedded_stack(self, pytester: pytest.Pytester) -> None:
        """The reference server accepts http://localhost's page and refuses a foreign one."""
        result = run_battery(pytester, "--wsconn-frontend-origin=http://localhost", *ONLY_BROWSER)
        result.assert_outcomes(passed=2)

    def test_catches_a_server_that_takes_any_origin(
        self, pytester: pytest.Pytester, broken_service: Callable[[str], Service]
    ) -> None:
        """A server that accepts every Origin fails the foreign-page check, naming CSWSH."""
        result = run_against(
            pytester,
            broken_service("accept-anything"),
            "--wsconn-frontend-origin=http://localhost",
            *ONLY_BROWSER,
        )
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*a page at http://wsconn-foreign-page.invalid opened a WebSocket: the service "
                "does not check the Origin (Cross-Site WebSocket Hijacking)*",
            ]
        )

    def test_a_bad_frontend_origin_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """A value that is no page origin stops the run, listing the valid form."""
        result = run_battery(pytester, "--wsconn-frontend-origin=localhost:3000", *ONLY_BROWSER)
        result.stderr.fnmatch_lines(["*invalid page origin 'localhost:3000'; valid: http(s)://*"])
        assert result.ret == pytest.ExitCode.USAGE_ERROR
