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
