"""Settings from the environment (plugin_server/config.py) and credentials at rest
(plugin_server/crypto.py), DESIGN.md §3."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest

from plugin_server import config, create_app
from plugin_server.config import DEV_SECRET, ConfigError, Settings, load_settings
from plugin_server.crypto import CredentialsError, decrypt_json, encrypt_json

REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "ENCRYPTION_KEY", "DATABASE_URL", "APP_URL",
                          "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET")
PRODUCTION = {
    "LOYALTY_ENV": "production",
    "SECRET_KEY": "s" * 32,
    "ENCRYPTION_KEY": "e" * 32,
    "DATABASE_URL": "postgresql+psycopg://loyalty@127.0.0.1/loyalty",
    "APP_URL": "https://loyalty.example.com",
    "SHOPIFY_API_KEY": "key",
    "SHOPIFY_API_SECRET": "secret",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """create_app reads os.environ: keep the developer's own settings out of these tests."""
    for item in fields(Settings):
        monkeypatch.delenv(item.name, raising=False)


def named_in(message: str) -> set[str]:
    """The setting names a 'production needs these settings: A, B' message lists."""
    prefix = "production needs these settings: "
    assert message.startswith(prefix), message
    return set(message[len(prefix):].split(", "))


# --- Production -------------------------------------------------------------------------


def test_complete_production_settings_load() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.is_production
    assert settings.APP_URL == "https://loyalty.example.com"
    assert settings.SECRET_KEY == "s" * 32


def test_production_with_nothing_set_names_every_missing_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"LOYALTY_ENV": "production"})
    assert named_in(str(caught.value)) == set(REQUIRED_IN_PRODUCTION)


@pytest.mark.parametrize("missing", REQUIRED_IN_PRODUCTION)
def test_production_names_exactly_the_missing_setting(missing: str) -> None:
    environ = {name: value for name, value in PRODUCTION.items() if name != missing}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert named_in(str(caught.value)) == {missing}


@pytest.mark.parametrize("missing", [("SECRET_KEY", "SHOPIFY_API_SECRET"),
                                     ("ENCRYPTION_KEY", "DATABASE_URL", "SHOPIFY_API_KEY")])
def test_production_names_several_missing_settings(missing: tuple[str, ...]) -> None:
    environ = {name: value for name, value in PRODUCTION.items() if name not in missing}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert named_in(str(caught.value)) == set(missing)


def test_empty_values_count_as_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**PRODUCTION, "SHOPIFY_API_SECRET": ""})
    assert named_in(str(caught.value)) == {"SHOPIFY_API_SECRET"}


def test_production_refuses_the_admin_url_override() -> None:
    with pytest.raises(ConfigError, match="SHOPIFY_ADMIN_URL_OVERRIDE"):
        load_settings({**PRODUCTION, "SHOPIFY_ADMIN_URL_OVERRIDE": "http://127.0.0.1:9999"})
    with pytest.raises(ConfigError, match="SHOPIFY_ADMIN_URL_OVERRIDE"):
        load_settings(PRODUCTION, overrides={"SHOPIFY_ADMIN_URL_OVERRIDE": "http://127.0.0.1:1"})


def test_admin_url_override_is_fine_outside_production() -> None:
    settings = load_settings({"LOYALTY_ENV": "test",
                              "SHOPIFY_ADMIN_URL_OVERRIDE": "http://127.0.0.1:9999"})
    assert settings.SHOPIFY_ADMIN_URL_OVERRIDE == "http://127.0.0.1:9999"


@pytest.mark.parametrize("name", ["SECRET_KEY", "ENCRYPTION_KEY"])
def test_production_refuses_the_development_secret(name: str) -> None:
    with pytest.raises(ConfigError, match="development SECRET_KEY/ENCRYPTION_KEY"):
        load_settings({**PRODUCTION, name: DEV_SECRET})


def test_create_app_refuses_to_start_in_production_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="production needs these settings"):
        create_app({"LOYALTY_ENV": "production",
                     "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})


# --- Environments and defaults ----------------------------------------------------------


@pytest.mark.parametrize("value", ["staging", "prod", "Production", "dev"])
def test_unknown_loyalty_env_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=f"LOYALTY_ENV must be one of development, test, "
                                          f"production, got '{value}'"):
        load_settings({"LOYALTY_ENV": value})


def test_development_defaults() -> None:
    settings = load_settings({})
    assert settings.LOYALTY_ENV == "development"
    assert not settings.is_production
    assert f"sqlite:///{config.INSTANCE_DIR / 'loyalty.sqlite3'}" == settings.DATABASE_URL
    assert settings.DATABASE_URL.endswith("/loyalty.sqlite3")
    assert settings.SECRET_KEY == DEV_SECRET
    assert settings.ENCRYPTION_KEY == DEV_SECRET
    assert settings.JOBS_MODE == "thread"
    assert settings.REDIS_URL == ""
    assert settings.SHOPIFY_API_VERSION == "2026-01"


def test_instance_dir_defaults_to_instance_under_the_working_directory() -> None:
    if os.environ.get("LOYALTY_INSTANCE_DIR"):
        pytest.skip("LOYALTY_INSTANCE_DIR is set")
    assert config.INSTANCE_DIR.name == "instance"


def test_test_environment_runs_jobs_eagerly() -> None:
    assert load_settings({"LOYALTY_ENV": "test"}).JOBS_MODE == "eager"
    assert load_settings({"LOYALTY_ENV": "test", "JOBS_MODE": "thread"}).JOBS_MODE == "thread"
    assert load_settings({"LOYALTY_ENV": "test"}, {"JOBS_MODE": "thread"}).JOBS_MODE == "thread"


def test_environment_values_are_read_and_coerced() -> None:
    settings = load_settings({"LOYALTY_ENV": "test", "SWEEP_INTERVAL_SECONDS": "15",
                              "REDEMPTION_HOLD_TIMEOUT_SECONDS": "600",
                              "DATABASE_URL": "sqlite:////tmp/x.sqlite3",
                              "UNRELATED": "ignored"})
    assert settings.SWEEP_INTERVAL_SECONDS == 15
    assert settings.REDEMPTION_HOLD_TIMEOUT_SECONDS == 600
    assert settings.DATABASE_URL == "sqlite:////tmp/x.sqlite3"
    assert "UNRELATED" not in settings.extra


def test_non_integer_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="SWEEP_INTERVAL_SECONDS must be a whole number, "
                                          "got 'soon'"):
        load_settings({"SWEEP_INTERVAL_SECONDS": "soon"})


def test_overrides_beat_the_environment() -> None:
    settings = load_settings({"LOYALTY_ENV": "development", "SECRET_KEY": "from-env"},
                             {"SECRET_KEY": "from-override", "CUSTOM_FLAG": True})
    assert settings.SECRET_KEY == "from-override"
    assert settings.extra == {"CUSTOM_FLAG": True}
    assert settings.as_flask_config()["CUSTOM_FLAG"] is True
    assert "extra" not in settings.as_flask_config()


def test_create_app_applies_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    app = create_app({"LOYALTY_ENV": "test", "DATABASE_URL": url, "SECRET_KEY": "override",
                      "SWEEP_INTERVAL_SECONDS": 5, "FEATURE_X": "on"})
    try:
        runtime = app.extensions["loyalty"]
        assert url == runtime.settings.DATABASE_URL
        assert runtime.database.url == url
        assert runtime.settings.JOBS_MODE == "eager"
        assert runtime.jobs.mode == "eager"
        assert app.config["SECRET_KEY"] == "override"
        assert app.config["SWEEP_INTERVAL_SECONDS"] == 5
        assert app.config["FEATURE_X"] == "on"
        assert app.config["LOYALTY_ENV"] == "test"
    finally:
        app.extensions["loyalty"].database.dispose()


def test_create_app_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'env.sqlite3'}"
    monkeypatch.setenv("LOYALTY_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    app = create_app()
    try:
        assert app.config["SECRET_KEY"] == "from-the-environment"
        assert url == app.extensions["loyalty"].settings.DATABASE_URL
    finally:
        app.extensions["loyalty"].database.dispose()


# --- Credentials at rest ----------------------------------------------------------------


def test_credentials_round_trip() -> None:
    secret = {"access_token": "shpat_123", "refresh_token": "r-456", "scopes": ["read_orders"],
              "expires": 3600, "note": "caf\u00e9 \u65e5\u672c"}
    token = encrypt_json("operator chosen key", secret)
    assert isinstance(token, bytes)
    assert b"shpat_123" not in token and b"r-456" not in token
    assert decrypt_json("operator chosen key", token) == secret


def test_encryption_is_randomised() -> None:
    value = {"access_token": "same"}
    assert encrypt_json("k", value) != encrypt_json("k", value)


def test_wrong_key_raises_credentials_error() -> None:
    token = encrypt_json("right key", {"access_token": "shpat_123"})
    with pytest.raises(CredentialsError, match="cannot be decrypted with this ENCRYPTION_KEY"):
        decrypt_json("wrong key", token)


def flip_one_character(token: bytes) -> bytes:
    middle = len(token) // 2
    return token[:middle] + (b"B" if token[middle:middle + 1] == b"A" else b"A") + \
        token[middle + 1:]


@pytest.mark.parametrize("damage", [
    flip_one_character,
    lambda token: token[:20],
    lambda token: b"not a token at all",
    lambda token: b"",
], ids=["flipped", "truncated", "garbage", "empty"])
def test_damaged_token_raises_credentials_error(damage: Callable[[bytes], bytes]) -> None:
    token = encrypt_json("key", {"access_token": "shpat_123"})
    with pytest.raises(CredentialsError):
        decrypt_json("key", damage(token))



@pytest.mark.parametrize(("hops", "seen"), [(0, "10.0.0.2"), (1, "203.0.113.9")])
def test_behind_a_proxy_the_shoppers_address_is_seen(tmp_path: Path, hops: int,
                                                     seen: str) -> None:
    """PROXY_HOPS=1 trusts one router's X-Forwarded-For; without it the header is ignored
    (anyone could send one)."""
    from flask import request

    app = create_app({"LOYALTY_ENV": "test", "SECRET_KEY": "s", "ENCRYPTION_KEY": "e",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
                      "PROXY_HOPS": hops})
    app.add_url_rule("/address", "address", lambda: request.remote_addr or "")
    answer = app.test_client().get("/address", headers={"X-Forwarded-For": "203.0.113.9"},
                                   environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert answer.get_data(as_text=True) == seen
