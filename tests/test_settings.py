import pytest

from pipeline.worker import RetryPolicy
from service.settings import DEFAULT_DATABASE_URL, Settings, SettingsError

CLOUD = {
    "JIRA_URL": "https://acme.atlassian.net/",
    "JIRA_EMAIL": "bot@acme.example",
    "JIRA_API_TOKEN": "api-token-value",
    "JIRA_WEBHOOK_SECRET": "whsec-value-0123",
}


def test_cloud_settings_with_defaults():
    s = Settings.from_env(CLOUD)
    assert s.jira_url == "https://acme.atlassian.net"
    assert s.jira_auth_kind == "basic"
    assert s.impact_config == "config/impact.toml"
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.redis_url is None
    assert s.port == 8000
    assert s.max_body_bytes == 1024 * 1024
    assert s.notify_users is False


def test_retry_policy_defaults_are_the_settings_defaults():
    assert RetryPolicy() == RetryPolicy.from_settings(Settings.from_env(CLOUD))


def test_data_center_settings_with_pat_and_token():
    s = Settings.from_env(
        {
            "JIRA_URL": "https://jira.acme.example",
            "JIRA_PAT": "pat",
            "JIRA_WEBHOOK_TOKEN": "url-token-0123",
        }
    )
    assert s.jira_auth_kind == "pat"
    assert s.webhook_token == "url-token-0123"


def test_secrets_never_in_repr():
    env = CLOUD | {
        "ADMIN_TOKEN": "admin-token-value",
        "JIRA_WEBHOOK_TOKEN": "token-value-0123",
        "METRICS_TOKEN": "scrape-token-value",
        "VIEWER_TOKEN": "colleagues-token",
    }
    settings = Settings.from_env(env)
    text = repr(settings)
    assert {"scrape-token-value", "colleagues-token"} <= set(settings.secrets())
    for secret in (
        "api-token-value",
        "whsec-value",
        "admin-token-value",
        "token-value",
        "scrape",
        "colleagues",
    ):
        assert secret not in text


def test_heroku_postgres_url_is_normalised():
    s = Settings.from_env(CLOUD | {"DATABASE_URL": "postgres://u:p@db/impact"})
    assert s.database_url == "postgresql://u:p@db/impact"


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"JIRA_URL": ""}, "JIRA_URL is not set"),
        ({"JIRA_URL": "acme.atlassian.net"}, "JIRA_URL='acme.atlassian.net' is not an http(s) URL"),
        ({"JIRA_API_TOKEN": ""}, "JIRA_API_TOKEN is not set: JIRA_AUTH=basic signs in with"),
        ({"JIRA_EMAIL": ""}, "JIRA_EMAIL is not set: JIRA_AUTH=basic signs in with"),
        ({"JIRA_EMAIL": "", "JIRA_API_TOKEN": ""}, "no Jira credentials"),
        ({"JIRA_PAT": "pat"}, "JIRA_PAT is set but JIRA_AUTH=basic uses JIRA_EMAIL + JIRA_API"),
        ({"JIRA_AUTH": "kerberos"}, "JIRA_AUTH='kerberos' is not one of basic, scoped, oauth, pat"),
        ({"JIRA_AUTH": "oauth"}, "JIRA_CLIENT_ID and JIRA_CLIENT_SECRET are not set: JIRA_AUTH"),
        (
            {"JIRA_AUTH": "scoped", "ATLASSIAN_API_URL": "http://gw.example"},
            "ATLASSIAN_API_URL='http://gw.example' is http://",
        ),
        ({"JIRA_TOKEN_EXPIRES": "next May"}, "JIRA_TOKEN_EXPIRES='next May' is not a date"),
        ({"JIRA_API_TOKEN_FILE": "/nonexistent/token"}, "both JIRA_API_TOKEN and JIRA_API_TOKEN_F"),
        (
            {"JIRA_API_TOKEN": "", "JIRA_API_TOKEN_FILE": "/nonexistent/token"},
            "JIRA_API_TOKEN_FILE='/nonexistent/token' cannot be read",
        ),
        ({"JIRA_WEBHOOK_SECRET": ""}, "neither JIRA_WEBHOOK_SECRET nor JIRA_WEBHOOK_TOKEN"),
        ({"JIRA_WEBHOOK_SECRET": "short"}, "JIRA_WEBHOOK_SECRET is 5 characters long; use at"),
        ({"JIRA_WEBHOOK_TOKEN": "abc"}, "JIRA_WEBHOOK_TOKEN is 3 characters long; use at least 12"),
        ({"ADMIN_TOKEN": "admin"}, "ADMIN_TOKEN is 5 characters long; use at least 12"),
        ({"PORT": "http"}, "PORT='http' is not a whole number"),
        ({"PORT": "70000"}, "PORT=70000 is out of range"),
        ({"MAX_WEBHOOK_BYTES": "1"}, "MAX_WEBHOOK_BYTES=1 is out of range (1024 to 67108864)"),
        ({"RETRY_MAX_SECONDS": "0"}, "RETRY_MAX_SECONDS=0 is out of range (0.01 to 86400)"),
        ({"RETRY_MAX_SECONDS": "1e9"}, "RETRY_MAX_SECONDS=1e9 is out of range (0.01 to 86400)"),
        ({"JIRA_NOTIFY_USERS": "maybe"}, "JIRA_NOTIFY_USERS='maybe' is not a yes/no value"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL must be a redis://"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN is 5 characters long; use at least 12"),
        ({"TRUSTED_PROXIES": "many"}, "TRUSTED_PROXIES='many' is not a whole number"),
        ({"TRUSTED_PROXIES": "9"}, "TRUSTED_PROXIES=9 is out of range (0 to 5)"),
        ({"ADMIN_COOKIE_SECURE": "always"}, "ADMIN_COOKIE_SECURE='always' is not a yes/no"),
        ({"ALLOW_HTTP_JIRA": "sure"}, "ALLOW_HTTP_JIRA='sure' is not a yes/no value"),
        ({"VIEWER_TOKEN": "viewer"}, "VIEWER_TOKEN is 6 characters long; use at least 12"),
        (
            {"VIEWER_TOKEN": "same-token-0123", "ADMIN_TOKEN": "same-token-0123"},
            "VIEWER_TOKEN is the same as ADMIN_TOKEN: give viewers a token of their own",
        ),
        ({"PUBLIC_PRIORITIES": "intranet"}, "PUBLIC_PRIORITIES='intranet' is not a yes/no"),
        ({"PRIORITIES_CACHE_SECONDS": "-1"}, "PRIORITIES_CACHE_SECONDS=-1 is out of range (0"),
        ({"PRIORITIES_READ_SECONDS": "0.5"}, "PRIORITIES_READ_SECONDS=0.5 is out of range (1 to"),
        ({"PRIORITIES_READ_SECONDS": "soon"}, "PRIORITIES_READ_SECONDS='soon' is not a number"),
    ],
)
def test_bad_setting_names_the_variable(change, variable):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(CLOUD | change)
    assert variable in str(info.value)


def test_every_problem_is_listed_at_once():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"PORT": "x"})
    assert len(info.value.problems) == 4  # URL, credentials, webhook auth, port


def test_unsigned_allowed_only_explicitly(caplog):
    env = CLOUD | {"JIRA_WEBHOOK_SECRET": "", "ALLOW_UNSIGNED_WEBHOOKS": "1"}
    assert Settings.from_env(env).allow_unsigned
    assert "ALLOW_UNSIGNED_WEBHOOKS=1" in caplog.text


def test_a_jira_url_with_a_password_is_refused_without_showing_it(caplog):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(CLOUD | {"JIRA_URL": "https://svc:hunter2-pass@acme.atlassian.net"})
    text = str(info.value)
    assert "JIRA_URL has a user name or password in it" in text
    assert "hunter2" not in text and "hunter2" not in caplog.text


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://jira.corp.example", False),
        ("http://10.0.0.7:8080/jira", False),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:2990/jira", True),
        ("http://[::1]:8080", True),
        ("https://jira.corp.example", True),
    ],
)
def test_an_http_jira_url_is_refused_unless_on_this_machine(url, allowed):
    env = CLOUD | {"JIRA_URL": url}
    if allowed:
        assert Settings.from_env(env).jira_url == url
        return
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert "is http://, so the service account's credentials would cross" in str(info.value)
    assert "ALLOW_HTTP_JIRA=1" in str(info.value)
    assert Settings.from_env(env | {"ALLOW_HTTP_JIRA": "1"}).allow_http_jira


def test_the_webhook_token_is_ignored_while_a_secret_is_set(caplog):
    Settings.from_env(CLOUD | {"JIRA_WEBHOOK_TOKEN": "url-token-0123"})
    assert "JIRA_WEBHOOK_TOKEN is ignored while JIRA_WEBHOOK_SECRET is set" in caplog.text


def test_the_priorities_pages_settings_and_their_defaults(caplog):
    assert Settings.from_env(CLOUD).priorities_cache_seconds == 60.0
    assert Settings.from_env(CLOUD).priorities_read_seconds == 10.0
    assert not Settings.from_env(CLOUD).public_priorities
    s = Settings.from_env(CLOUD | {"PRIORITIES_CACHE_SECONDS": "0", "PUBLIC_PRIORITIES": "1"})
    assert (s.priorities_cache_seconds, s.public_priorities) == (0.0, True)
    assert "VIEWER_TOKEN is ignored" not in caplog.text
    Settings.from_env(CLOUD | {"PUBLIC_PRIORITIES": "1", "VIEWER_TOKEN": "viewer-token-0123"})
    assert "VIEWER_TOKEN is ignored while PUBLIC_PRIORITIES=1" in caplog.text


def test_every_kind_of_credential_is_chosen_by_jira_auth():
    site = {"JIRA_URL": "https://acme.atlassian.net", "JIRA_WEBHOOK_SECRET": "whsec-value-0123"}
    scoped = Settings.from_env(site | CLOUD | {"JIRA_AUTH": "scoped"})
    assert (scoped.jira_auth, scoped.atlassian_api_url) == ("scoped", "https://api.atlassian.com")
    oauth = Settings.from_env(
        site
        | {
            "JIRA_CLIENT_ID": "client-id",
            "JIRA_CLIENT_SECRET": "client-secret-value",
            "ATLASSIAN_AUTH_URL": "https://auth.example/",
        }
    )
    assert oauth.jira_auth == "oauth"  # the default when only a client id is given
    assert oauth.atlassian_auth_url == "https://auth.example"
    assert "client-secret-value" in oauth.secrets()
    assert "client-secret-value" not in repr(oauth)
    assert Settings.from_env(site | {"JIRA_PAT": "pat"}).jira_auth == "pat"
    assert Settings.from_env(CLOUD).jira_auth == "basic"  # today's way stays the default


def test_secrets_are_read_from_the_files_named_by_NAME_FILE(tmp_path):
    token = tmp_path / "token"
    token.write_text("token-from-a-file\n")
    secret = tmp_path / "webhook"
    secret.write_text("whsec-from-a-file")
    env = CLOUD | {"JIRA_API_TOKEN": "", "JIRA_API_TOKEN_FILE": str(token)}
    env |= {"JIRA_WEBHOOK_SECRET": "", "JIRA_WEBHOOK_SECRET_FILE": str(secret)}
    settings = Settings.from_env(env)
    assert settings.jira_api_token == "token-from-a-file"
    assert settings.webhook_secret == "whsec-from-a-file"
    assert settings.secret_files == {
        "JIRA_API_TOKEN": str(token),
        "JIRA_WEBHOOK_SECRET": str(secret),
    }
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match=r"JIRA_PAT_FILE=.* is empty"):
        Settings.from_env({"JIRA_URL": "https://jira.example", "JIRA_PAT_FILE": str(empty)})


def test_the_token_s_expiry_is_warned_of_from_14_days_before():
    import datetime as dt

    settings = Settings.from_env(CLOUD | {"JIRA_TOKEN_EXPIRES": "2026-05-20"})
    assert settings.expiry_warning(dt.date(2026, 5, 5)) is None
    assert "expires in 14 days, on 2026-05-20" in str(settings.expiry_warning(dt.date(2026, 5, 6)))
    assert "expires today" in str(settings.expiry_warning(dt.date(2026, 5, 20)))
    assert "API token expired on 2026-05-20" in str(settings.expiry_warning(dt.date(2026, 5, 21)))
    assert Settings.from_env(CLOUD).expiry_warning() is None
