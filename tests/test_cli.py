import re

from click.testing import CliRunner

from commands.cli import main
from tests.conftest import FIXTURES, ROOT


def test_config_check_accepts_shipped_config():
    result = CliRunner().invoke(
        main, ["config", "check", "--config", str(ROOT / "config" / "impact.toml")]
    )
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "SHOP" in result.output


def test_config_check_lists_every_error_and_exits_1():
    path = FIXTURES / "config" / "many-errors.toml"
    result = CliRunner().invoke(main, ["config", "check", "--config", str(path)])
    assert result.exit_code == 1
    assert str(path) in result.output
    assert result.output.count(str(path)) >= 9


def test_config_check_reads_impact_config_variable(monkeypatch):
    monkeypatch.setenv("IMPACT_CONFIG", str(FIXTURES / "config" / "not-toml.toml"))
    result = CliRunner().invoke(main, ["config", "check"])
    assert result.exit_code == 1
    assert "not-toml.toml" in result.output


def test_check_refuses_a_jira_url_with_a_password_naming_it_without_a_traceback(monkeypatch):
    monkeypatch.setenv("JIRA_URL", "https://svc:hunter2-pass@acme.atlassian.net")
    monkeypatch.setenv("JIRA_EMAIL", "bot@acme.example")
    monkeypatch.setenv("JIRA_API_TOKEN", "api-token-value")
    monkeypatch.setenv("JIRA_WEBHOOK_SECRET", "whsec-value-0123")
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1
    assert "JIRA_URL has a user name or password in it" in result.output
    assert "hunter2" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_config_check_warns_of_patterns_that_grow_slow_on_long_text(tmp_path):
    shipped = (ROOT / "config" / "impact.toml").read_text()
    old_rule = r"text = ['(?is)\b(outage|down)\b.*\bcustomers?\b', '(\w+\s?)+:']"
    path = tmp_path / "impact.toml"
    path.write_text(re.sub(r"(?m)^text = \['\(\?is\)\\A.*$", lambda _m: old_rule, shipped))
    result = CliRunner().invoke(main, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output  # a warning, not an error
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert warnings[0].startswith("warning: rules[0].text[0]: may be slow on a long description")
    assert "the time grows with the square of the text" in warnings[0]
    assert warnings[1].startswith("warning: rules[0].text[1]:")
    assert "holds a repeat itself" in warnings[1]
    shipped_check = CliRunner().invoke(
        main, ["config", "check", "--config", str(ROOT / "config" / "impact.toml")]
    )
    assert "warning" not in shipped_check.output
