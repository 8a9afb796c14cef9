"""The factory refuses to start on a bad environment or config, naming what to fix."""

import json

import pytest

from impact.config import ConfigError
from pipeline.delivery_log import SchemaError
from service.settings import SettingsError
from tests.conftest import FIXTURES, FakeJira, issue_payload
from tests.servers import silent_port
from webhooks import create_app
from webhooks.signature import sign

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


def test_a_delivery_log_that_does_not_answer_does_not_stop_the_web(env, tmp_path, caplog):
    with silent_port() as port:
        env.setenv("DATABASE_URL", f"postgresql://impact:pw@127.0.0.1:{port}/impact")
        env.setenv("QUEUE_PATH", str(tmp_path / "queue.db"))
        app = create_app({"TESTING": True})
    assert "delivery log at postgresql+psycopg://impact:***@127.0.0.1" in caplog.text
    assert "does not answer" in caplog.text and ":pw@" not in caplog.text
    body = json.dumps(issue_payload()).encode()
    answer = app.test_client().post(
        "/webhooks/jira",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature": sign(body, secret=ENV["JIRA_WEBHOOK_SECRET"]),
        },
    )
    assert answer.status_code == 202
    assert answer.json["status"] == "queued"


def test_a_delivery_log_behind_its_schema_stops_start_up(env, tmp_path):
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")  # reachable, never migrated
    env.setenv("QUEUE_PATH", str(tmp_path / "queue.db"))
    with pytest.raises(SchemaError, match="run `jira-impact db upgrade`"):
        create_app({"TESTING": True})
