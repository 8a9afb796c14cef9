import re

from click.testing import CliRunner

from commands.cli import main
from pipeline.delivery import Delivery
from pipeline.delivery_log import DeliveryLog, make_engine, migrate
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


ESC_ERROR = "Jira said: \x1b[2J\x1b[31mpwned\x07\r\u202eevil"


def test_deliveries_list_and_show_print_no_terminal_control_codes_from_jira(tmp_path, monkeypatch):
    """A summary or an error message from Jira may carry escape sequences; printed raw they
    would clear the screen or rewrite a line. They are shown as escapes instead."""
    url = f"sqlite:///{tmp_path}/impact.db"
    monkeypatch.setenv("DATABASE_URL", url)
    delivery_log = DeliveryLog(make_engine(url))
    migrate(delivery_log.engine)
    delivery = Delivery("wh-\x1b]0;title\x07", "jira:issue_updated", "SHOP-1", "{}", 0, 1.0)
    assert delivery_log.start(delivery, now=1.0, lease=60.0) is not None
    delivery_log.finish(delivery.id, "failed", now=2.0, error=ESC_ERROR)
    shown = CliRunner().invoke(main, ["deliveries", "show", delivery.id])
    listed = CliRunner().invoke(main, ["deliveries", "list"])
    for result in (shown, listed):
        assert result.exit_code == 0, result.output
        assert not any(ch in result.output for ch in "\x1b\x07\r\u202e"), repr(result.output)
        assert "\\x1b[2J\\x1b[31mpwned\\x07" in result.output
        assert "wh-\\x1b]0;title\\x07" in result.output
    assert "\\r\\u202eevil" in shown.output  # (the list shows the error's first line only)


def test_commands_print_only_through_the_one_neutraliser():
    """Every command module prints with commands.output.echo, so Jira's data never reaches the
    terminal another way (backfill --details, rerank, check, webhook list alike)."""
    for path in sorted((ROOT / "commands").glob("*.py")):
        if path.name == "output.py":
            continue
        source = path.read_text()
        for raw in ("click.echo(", "click.secho(", "print(", "sys.stdout.write("):
            assert raw not in source, f"{path.name} prints with {raw}"
