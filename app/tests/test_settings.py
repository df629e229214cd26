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


# -- SECURECHAT_REDIS_URL ------------------------------------------------------------------

SECRET = "hunter2-pw"


def test_without_redis_everything_stays_in_the_process() -> None:
    settings = Settings.from_env(BASE)
    assert settings.redis is None
    assert not any(line.startswith(("REDIS", "PRESENCE")) for line in settings.public_view())


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://localhost", "redis://localhost"),
        (f"redis://:{SECRET}@db1.example.lan:6379/2", "redis://:***@db1.example.lan:6379/2"),
        (f"redis://app:{SECRET}@10.0.0.20:6380/15", "redis://app:***@10.0.0.20:6380/15"),
        ("redis://:p%40ss%2Fw%3Ard@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("redis://[fe80::1]/3", "redis://[fe80::1]/3"),
    ],
)
def test_good_redis_urls_are_kept_and_shown_without_the_password(url: str, shown: str) -> None:
    settings = Settings.from_env({**BASE, "SECURECHAT_REDIS_URL": url})
    assert settings.redis is not None
    assert settings.redis.url == url
    assert settings.redis.prefix == "securechat"
    assert settings.redis.presence_ttl_seconds == 15
    assert settings.redis.masked_url() == shown
    view = settings.public_view()
    assert f"REDIS_URL={shown}" in view
    assert not any(SECRET in line or "ss%2F" in line for line in view)


HOSTILE_REDIS_URLS = [
    ("rediss://h:6379/0", "scheme must be redis://"),
    ("unix:///run/redis.sock", "scheme must be redis://"),
    ("redis+sentinel://h:26379/0/main", "scheme must be redis://"),
    ("valkey://h", "scheme must be redis://"),
    ("REDIS://h", "scheme must be redis://"),
    ("h:6379", "scheme must be redis://"),
    ("redis:/h", "scheme must be redis://"),
    (f"//:{SECRET}@h", "scheme must be redis://"),
    ("redis://", "no host"),
    ("redis:///0", "no host"),
    (f"redis://:{SECRET}@:6379", "no host"),
    (f"redis://:{SECRET}@h:6379/0?ssl_cert_reqs=none", "no query string"),
    ("redis://h/0?socket_timeout=0&health_check_interval=-1", "no query string"),
    (f"redis://:{SECRET}@h#fragment", "no query string"),
    (f"redis://:{SECRET}@h:6379/0\r\nFLUSHALL", "printable ASCII"),
    (f"redis://:{SECRET}\n@h", "printable ASCII"),
    (f"redis://:{SECRET}@h\x00evil:6379", "printable ASCII"),
    (f"redis://:{SECRET} @h", "printable ASCII"),
    (f"redis://:{SECRET}@hé.lan", "printable ASCII"),
    (f"redis://:{SECRET}@h\u202e:6379", "printable ASCII"),
    (f"redis://:{SECRET}@h:0", "port must be a number from 1 to 65535"),
    (f"redis://:{SECRET}@h:65536", "port must be a number from 1 to 65535"),
    (f"redis://:{SECRET}@h:-1", "port must be a number from 1 to 65535"),
    (f"redis://:{SECRET}@h:+6379", "port must be a number from 1 to 65535"),
    (f"redis://:{SECRET}@h:63a9", "port must be a number from 1 to 65535"),
    (f"redis://:{SECRET}@h:6379:6380", "port must be a number from 1 to 65535"),
    (f"redis://:{SECRET}@h:99999999999999999999", "port must be a number from 1 to 65535"),
    (f"redis://:{SECRET}@h/x", "database number"),
    (f"redis://:{SECRET}@h/-1", "database number"),
    (f"redis://:{SECRET}@h/0/1", "database number"),
    (f"redis://:{SECRET}@h/99999999999", "database number"),
    (f"redis://:{SECRET}@h/../../etc/passwd", "database number"),
    ("redis://:@h", "password is empty"),
    ("redis://admin@h", "user name without a password"),
    (f"redis://:{SECRET}@evil@h", "must be percent-encoded"),
    (f"redis://:{SECRET}%zz@h", "must be percent-encoded"),
    (f'redis://:{SECRET}"<>@h', "must be percent-encoded"),
    (f"redis://us:er:{SECRET}@h", "must be percent-encoded"),
    (f"redis://:{SECRET}@under_score", "DNS name"),
    (f"redis://:{SECRET}@-leading.lan", "DNS name"),
    (f"redis://:{SECRET}@a..b", "DNS name"),
    (f"redis://:{SECRET}@{'a' * 64}.lan", "DNS name"),
    (f"redis://:{SECRET}@999.1.1.1", "not a valid IPv4"),
    (f"redis://:{SECRET}@[::1", "malformed IPv6 host"),
    (f"redis://:{SECRET}@[zz::1]:6379", "not an IPv6 address"),
    (f"redis://:{SECRET}@[::1]x", "malformed IPv6 host"),
    ("redis://h/" + "0" * 2000, "longer than 1024"),
]


@pytest.mark.parametrize(("url", "message"), HOSTILE_REDIS_URLS)
def test_bad_and_hostile_redis_urls_are_refused_without_echoing_them(
    url: str, message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**BASE, "SECURECHAT_REDIS_URL": url})
    text = str(error.value)
    assert text.startswith("SECURECHAT_REDIS_URL is invalid: ")
    assert message in text
    assert SECRET not in text
    assert not any(character in text for character in "\r\n\x00")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SECURECHAT_REDIS_PREFIX", "chat:prod", "letters, digits"),
        ("SECURECHAT_REDIS_PREFIX", "*", "letters, digits"),
        ("SECURECHAT_REDIS_PREFIX", "-x", "starting with a letter or digit"),
        ("SECURECHAT_REDIS_PREFIX", "p" * 65, "1 to 64 characters"),
        ("SECURECHAT_REDIS_PREFIX", "prod\r\n", "letters, digits"),
        ("SECURECHAT_PRESENCE_TTL_SECONDS", "2", "from 3 to 3600"),
        ("SECURECHAT_PRESENCE_TTL_SECONDS", "soon", "whole number"),
    ],
)
def test_bad_redis_companions_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**BASE, "SECURECHAT_REDIS_URL": "redis://h", name: value})
    assert name in str(error.value)
    assert message in str(error.value)


@pytest.mark.parametrize("name", ["SECURECHAT_REDIS_PREFIX", "SECURECHAT_PRESENCE_TTL_SECONDS"])
def test_redis_companions_without_the_url_are_refused(name: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**BASE, name: "10"})
    assert str(error.value) == f"{name} needs SECURECHAT_REDIS_URL"


def test_redis_prefix_and_ttl_are_read() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "SECURECHAT_REDIS_URL": "redis://h",
            "SECURECHAT_REDIS_PREFIX": "chat-prod.2",
            "SECURECHAT_PRESENCE_TTL_SECONDS": "30",
        }
    )
    assert settings.redis is not None
    assert (settings.redis.prefix, settings.redis.presence_ttl_seconds) == ("chat-prod.2", 30)
    assert "REDIS_PREFIX=chat-prod.2" in settings.public_view()
