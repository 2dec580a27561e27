"""The shipped alert rules: valid for promtool, each with unit tests that promtool runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from support import REPO_ROOT

from pytest_wsconn.monitoring import ALERT_RULES
from pytest_wsconn.timing import scaled

RULE_TESTS = [REPO_ROOT / "tests" / "prometheus" / f"{n}_test.yml" for n in ("alerts", "nightly")]


def promtool_run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )


def alert_names(rules: dict[str, list[dict[str, list[dict[str, str]]]]]) -> set[str]:
    return {
        rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule
    }


class TestAlertRules:
    def test_rules_are_valid(self, promtool: str) -> None:
        """promtool check rules parses every expression and template of the shipped file."""
        result = promtool_run(promtool, "check", "rules", ALERT_RULES)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS: 8 rules found" in result.stdout

    def test_rules_pass_their_unit_tests(self, promtool: str) -> None:
        """Each alert fires on its series, with its annotations, and not on a near miss."""
        result = promtool_run(promtool, "test", "rules", *RULE_TESTS)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count("SUCCESS") == len(RULE_TESTS)

    def test_every_alert_has_a_unit_test(self) -> None:
        """A rule added without a promtool test that expects it to fire fails here."""
        shipped = alert_names(yaml.safe_load(ALERT_RULES.read_text()))
        tests = [t for f in RULE_TESTS for t in yaml.safe_load(f.read_text())["tests"]]
        fired = {
            case["alertname"]
            for test in tests
            for case in test["alert_rule_test"]
            if case["exp_alerts"]
        }
        assert shipped == fired

    def test_rules_ship_in_the_package(self) -> None:
        """The rules file lives inside the package, so a wheel install has it."""
        assert ALERT_RULES.is_file()
        assert Path(ALERT_RULES).parent.name == "monitoring"
