"""The factory refuses to start on a bad environment or config, naming what to fix."""

import pytest

from impact.config import ConfigError
from tests.conftest import FIXTURES, FakeJira
from webhooks import create_app
from webhooks.settings import SettingsError

ENV = {
    "JIRA_URL": "https://jira.invalid",
    "JIRA_PAT": "pat-value",
    "JIRA_WEBHOOK_SECRET": "s3cret-for-tests",
}


@pytest.fixture
def env(monkeypatch):
    for name in ("JIRA_EMAIL", "JIRA_API_TOKEN", "REDIS_URL", "DATABASE_URL", "IMPACT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_bad_config_file_stops_start_up_with_every_error(env):
    path = FIXTURES / "config" / "many-errors.toml"
    env.setenv("IMPACT_CONFIG", str(path))
    with pytest.raises(ConfigError) as info:
        create_app({"JIRA": FakeJira()})
    assert len(info.value.errors) >= 9
    assert str(path) in str(info.value)
    assert "IMPACT_CONFIG" in str(info.value)


def test_missing_setting_stops_start_up_naming_it(env):
    env.delenv("JIRA_WEBHOOK_SECRET")
    with pytest.raises(SettingsError, match="JIRA_WEBHOOK_SECRET"):
        create_app({"JIRA": FakeJira()})


def test_app_starts_from_environment(env):
    app = create_app({"JIRA": FakeJira()})
    assert app.extensions["impact.settings"].jira_auth_kind == "pat"
    assert [p.key for p in app.extensions["impact.config"].projects] == ["SHOP"]
