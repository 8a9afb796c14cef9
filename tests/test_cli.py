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
