import pytest

from rapport.settings import PLACEHOLDER_SECRET, SettingsError, load_settings


def test_database_urls_get_async_drivers(monkeypatch):
    monkeypatch.setenv("RAPPORT_DATABASE_URL", "postgresql://u@h/db")
    assert load_settings().database_url == "postgresql+asyncpg://u@h/db"
    monkeypatch.setenv("RAPPORT_DATABASE_URL", "sqlite:///x.db")
    assert load_settings().database_url == "sqlite+aiosqlite:///x.db"


def test_a_bad_database_url_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("RAPPORT_DATABASE_URL", "mysql://u@h/db")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith("RAPPORT_DATABASE_URL: must start with")
    assert "\n" not in str(error.value)


def test_the_placeholder_secret_is_refused_in_production(monkeypatch):
    monkeypatch.setenv("RAPPORT_ENV", "production")
    monkeypatch.delenv("RAPPORT_SECRET_KEY", raising=False)
    with pytest.raises(SettingsError, match="RAPPORT_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "x" * 48)
    assert load_settings().secret_key.get_secret_value() == "x" * 48


def test_the_placeholder_is_fine_for_the_demo(monkeypatch):
    monkeypatch.setenv("RAPPORT_ENV", "demo")
    monkeypatch.delenv("RAPPORT_SECRET_KEY", raising=False)
    assert load_settings().secret_key.get_secret_value() == PLACEHOLDER_SECRET


def test_trusted_proxies_are_a_comma_list_of_networks(monkeypatch):
    monkeypatch.setenv("RAPPORT_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    assert load_settings().trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    monkeypatch.setenv("RAPPORT_TRUSTED_PROXIES", "not-an-ip")
    with pytest.raises(SettingsError):
        load_settings()


def test_redis_url_is_optional_and_checked(monkeypatch):
    monkeypatch.setenv("RAPPORT_REDIS_URL", "")
    assert load_settings().redis_url is None
    monkeypatch.setenv("RAPPORT_REDIS_URL", "http://nope")
    with pytest.raises(SettingsError, match="RAPPORT_REDIS_URL"):
        load_settings()
