"""Settings: read once from the environment, every bad value named with its fix."""

from __future__ import annotations

import pytest

from securechat.settings import Settings, SettingsError

BASE = {
    "SECURECHAT_DATABASE_URL": "sqlite:///./var/x.db",
    "SECURECHAT_SECRET_KEY": "k" * 40,
}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings.allowed_origins == ()
    assert settings.kdf_iterations == 600_000
    assert settings.max_ciphertext_bytes == 65536
    assert settings.rate_limits.login_failures_per_account == 5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SECURECHAT_DATABASE_URL", "", "SECURECHAT_DATABASE_URL is not set"),
        ("SECURECHAT_DATABASE_URL", "postgres://x", "sqlite:/// or mysql+pymysql://"),
        ("SECURECHAT_DATABASE_URL", "mysql+pymysql://u@h/db", "charset=utf8mb4"),
        ("SECURECHAT_SECRET_KEY", "short", "at least 32 characters"),
        ("SECURECHAT_ALLOWED_ORIGINS", "*", "'*' is not allowed"),
        ("SECURECHAT_ALLOWED_ORIGINS", "https://a.lan/path", "not an origin"),
        ("SECURECHAT_ALLOWED_ORIGINS", "ftp://a.lan", "not an origin"),
        ("SECURECHAT_MAX_REQUEST_BYTES", "lots", "whole number"),
        ("SECURECHAT_MAX_REQUEST_BYTES", "-1", "from 1024"),
        ("SECURECHAT_KDF_ITERATIONS", "10", "from 1000"),
        ("SECURECHAT_SESSION_SWEEP_SECONDS", "nan?", "expected a number"),
        ("SECURECHAT_LOG_LEVEL", "chatty", "expected critical"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**BASE, name: value})
    assert name in str(error.value)
    assert message in str(error.value)


def test_origins_are_parsed() -> None:
    settings = Settings.from_env(
        {**BASE, "SECURECHAT_ALLOWED_ORIGINS": " https://chat.lan , http://10.0.0.5:8080/ "}
    )
    assert settings.allowed_origins == ("https://chat.lan", "http://10.0.0.5:8080")
