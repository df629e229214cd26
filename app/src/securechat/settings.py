"""The only place configuration is read: environment variables, once, into a frozen object."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from securechat.protocol import KDF_ITERATIONS

PREFIX = "SECURECHAT_"
MIN_SECRET_KEY_CHARS = 32
# Tests may lower the PBKDF2 cost; production clients refuse anything under 600,000 anyway.
MIN_KDF_ITERATIONS = 1000

T = TypeVar("T")


class SettingsError(ValueError):
    """A configuration variable is missing or malformed; the message names it and the fix."""


@dataclass(frozen=True)
class RateLimits:
    """Abuse limits on the unauthenticated auth endpoints."""

    auth_per_ip: int  # prelogin, login and register requests per IP per window
    auth_window_seconds: int
    login_failures_per_account: int  # failed logins per account per lockout window
    lockout_seconds: int


@dataclass(frozen=True)
class Argon2Params:
    """Cost of argon2id(auth_key) on the server (RFC 9106 second recommendation by default)."""

    time_cost: int
    memory_kib: int
    parallelism: int


@dataclass(frozen=True)
class RedisSettings:
    """The shared Redis of several server processes (rooms across processes, presence)."""

    url: str  # redis://[[user]:password@]host[:port][/db]; holds the password
    prefix: str  # of every key and of the pub/sub channel
    presence_ttl_seconds: int  # a process that has not beaten its heart for this long is gone

    def masked_url(self) -> str:
        """The URL with the password replaced by `***`, for logs and the audit trail."""
        return _mask_password(self.url)


@dataclass(frozen=True)
class Settings:
    """Every setting of the server. Built by `Settings.from_env`, then passed on explicitly."""

    database_url: str
    secret_key: str
    audit_key: bytes
    allowed_origins: tuple[str, ...]
    upload_dir: Path
    max_upload_bytes: int
    upload_quota_bytes: int
    file_grace_seconds: int
    maintenance_seconds: float
    max_request_bytes: int
    max_ciphertext_bytes: int
    session_ttl_seconds: int
    session_sweep_seconds: float
    kdf_iterations: int
    rate_limits: RateLimits
    argon2: Argon2Params
    writer_max_batch: int
    log_level: str
    redis: RedisSettings | None  # None: one process, rooms and presence in memory

    def public_view(self) -> list[str]:
        """The settings as `NAME=value` lines, secrets left out: for the audit trail."""
        shown = {
            "ALLOWED_ORIGINS": ",".join(self.allowed_origins),
            "UPLOAD_DIR": str(self.upload_dir),
            "MAX_UPLOAD_BYTES": self.max_upload_bytes,
            "UPLOAD_QUOTA_BYTES": self.upload_quota_bytes,
            "FILE_GRACE_SECONDS": self.file_grace_seconds,
            "MAX_REQUEST_BYTES": self.max_request_bytes,
            "MAX_CIPHERTEXT_BYTES": self.max_ciphertext_bytes,
            "SESSION_TTL_SECONDS": self.session_ttl_seconds,
            "KDF_ITERATIONS": self.kdf_iterations,
            "RATE_AUTH_PER_IP": self.rate_limits.auth_per_ip,
            "RATE_AUTH_WINDOW_SECONDS": self.rate_limits.auth_window_seconds,
            "RATE_LOGIN_FAILURES_PER_ACCOUNT": self.rate_limits.login_failures_per_account,
            "RATE_LOCKOUT_SECONDS": self.rate_limits.lockout_seconds,
            "ARGON2_TIME_COST": self.argon2.time_cost,
            "ARGON2_MEMORY_KIB": self.argon2.memory_kib,
            "ARGON2_PARALLELISM": self.argon2.parallelism,
            "WRITER_MAX_BATCH": self.writer_max_batch,
            "SESSION_SWEEP_SECONDS": self.session_sweep_seconds,
            "MAINTENANCE_SECONDS": self.maintenance_seconds,
            "LOG_LEVEL": self.log_level,
        }
        # Only when set, so that an installation without Redis sees no change on upgrading.
        if self.redis is not None:
            shown["REDIS_URL"] = self.redis.masked_url()
            shown["REDIS_PREFIX"] = self.redis.prefix
            shown["PRESENCE_TTL_SECONDS"] = self.redis.presence_ttl_seconds
        return [f"{name}={value}" for name, value in shown.items()]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        database_url = env.get("DATABASE_URL", _database_url)
        secret_key = env.get("SECRET_KEY", _secret_key)
        return cls(
            database_url=database_url,
            secret_key=secret_key,
            audit_key=env.get(
                "AUDIT_KEY", _secret_key, default=_derived_audit_key(secret_key)
            ).encode(),
            allowed_origins=env.get("ALLOWED_ORIGINS", _origins, default=""),
            upload_dir=env.get("UPLOAD_DIR", Path, default="./var/uploads"),
            max_upload_bytes=env.get(
                "MAX_UPLOAD_BYTES", _int(1024, 1 << 40), default=str(100 << 20)
            ),
            upload_quota_bytes=env.get(
                "UPLOAD_QUOTA_BYTES", _int(1024, 1 << 50), default=str(1 << 30)
            ),
            file_grace_seconds=env.get("FILE_GRACE_SECONDS", _int(0, 365 * 86400), default="86400"),
            maintenance_seconds=env.get("MAINTENANCE_SECONDS", _float(0.1, 86400), default="600"),
            max_request_bytes=env.get("MAX_REQUEST_BYTES", _int(1024, 1 << 30), default="1048576"),
            max_ciphertext_bytes=env.get(
                "MAX_CIPHERTEXT_BYTES", _int(1024, (16 << 20) - 1), default="65536"
            ),
            session_ttl_seconds=env.get(
                "SESSION_TTL_SECONDS", _int(60, 90 * 86400), default="43200"
            ),
            session_sweep_seconds=env.get("SESSION_SWEEP_SECONDS", _float(0.1, 3600), default="5"),
            kdf_iterations=env.get(
                "KDF_ITERATIONS", _int(MIN_KDF_ITERATIONS, 10_000_000), default=str(KDF_ITERATIONS)
            ),
            rate_limits=RateLimits(
                auth_per_ip=env.get("RATE_AUTH_PER_IP", _int(1, 1_000_000), default="30"),
                auth_window_seconds=env.get(
                    "RATE_AUTH_WINDOW_SECONDS", _int(1, 86400), default="60"
                ),
                login_failures_per_account=env.get(
                    "RATE_LOGIN_FAILURES_PER_ACCOUNT", _int(1, 1000), default="5"
                ),
                lockout_seconds=env.get("RATE_LOCKOUT_SECONDS", _int(1, 86400), default="900"),
            ),
            argon2=Argon2Params(
                time_cost=env.get("ARGON2_TIME_COST", _int(1, 100), default="3"),
                memory_kib=env.get("ARGON2_MEMORY_KIB", _int(8, 4 << 20), default="65536"),
                parallelism=env.get("ARGON2_PARALLELISM", _int(1, 64), default="4"),
            ),
            writer_max_batch=env.get("WRITER_MAX_BATCH", _int(1, 10_000), default="256"),
            log_level=env.get("LOG_LEVEL", _log_level, default="info"),
            redis=_redis_settings(env),
        )


class _Env:
    """Reads one prefixed variable at a time and turns a parse error into a SettingsError."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def is_set(self, name: str) -> bool:
        return bool(self._environ.get(PREFIX + name))

    def get(self, name: str, parse: Callable[[str], T], default: str | None = None) -> T:
        full = PREFIX + name
        raw = self._environ.get(full)
        if raw is None or raw == "":
            if default is None:
                raise SettingsError(f"{full} is not set; {_HINTS.get(name, 'set it')}")
            raw = default
        try:
            return parse(raw)
        except ValueError as error:
            raise SettingsError(f"{full} is invalid: {error}") from None


_HINTS = {
    "DATABASE_URL": (
        "set it to sqlite:///./var/securechat.db or "
        "mysql+pymysql://USER:PASSWORD@HOST:3306/DATABASE?charset=utf8mb4"
    ),
    "SECRET_KEY": (
        "set it to at least 32 random characters, "
        "for example: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
    ),
}


def _derived_audit_key(secret_key: str) -> str:
    # Without SECURECHAT_AUDIT_KEY the audit key follows the secret key; set it explicitly in
    # production so that rotating the secret key does not orphan the existing audit chain.
    return hmac.new(secret_key.encode(), b"securechat audit key", hashlib.sha256).hexdigest()


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low} to {high}, got {value}")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low} to {high}, got {value}")
        return value

    return parse


def _database_url(raw: str) -> str:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in ("sqlite", "mysql+pymysql", "mariadb+pymysql"):
        raise ValueError(
            "expected a URL starting with sqlite:/// or mysql+pymysql:// "
            f"(got scheme {scheme or 'none'!r})"
        )
    if scheme != "sqlite" and "charset=utf8mb4" not in raw:
        raise ValueError("a MySQL/MariaDB URL must end with ?charset=utf8mb4")
    return raw


def _secret_key(raw: str) -> str:
    if len(raw) < MIN_SECRET_KEY_CHARS:
        raise ValueError(
            f"must be at least {MIN_SECRET_KEY_CHARS} characters, got {len(raw)}; "
            "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    origins: list[str] = []
    for item in raw.split(","):
        origin = item.strip().rstrip("/")
        if not origin:
            continue
        if origin == "*":
            raise ValueError("'*' is not allowed; list the exact origins, e.g. https://chat.lan")
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise ValueError(f"{origin!r} is not an origin like https://chat.example.lan[:port]")
        origins.append(origin)
    return tuple(origins)


def _log_level(raw: str) -> str:
    level = raw.strip().lower()
    if level not in ("critical", "error", "warning", "info", "debug"):
        raise ValueError(f"expected critical, error, warning, info or debug, got {raw!r}")
    return level


def _redis_settings(env: _Env) -> RedisSettings | None:
    if not env.is_set("REDIS_URL"):
        for name in ("REDIS_PREFIX", "PRESENCE_TTL_SECONDS"):
            if env.is_set(name):
                raise SettingsError(f"{PREFIX}{name} needs {PREFIX}REDIS_URL")
        return None
    return RedisSettings(
        url=env.get("REDIS_URL", _redis_url),
        prefix=env.get("REDIS_PREFIX", _redis_prefix, default="securechat"),
        presence_ttl_seconds=env.get("PRESENCE_TTL_SECONDS", _int(3, 3600), default="15"),
    )


MAX_REDIS_URL_CHARS = 1024
MAX_REDIS_DB = 100_000
# RFC 3986 userinfo characters: unreserved, sub-delims and percent escapes. Anything else in a
# password (`@`, `/`, `:`, `?`, `#`, spaces) must be percent-encoded.
_USERINFO_RE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
REDIS_URL_FORM = "redis://[:PASSWORD@]HOST[:PORT][/DB], e.g. redis://:PASSWORD@10.0.0.20:6379/0"


def _redis_url(raw: str) -> str:
    """Check the URL strictly; error messages never repeat it, since it may hold a password."""
    if len(raw) > MAX_REDIS_URL_CHARS:
        raise ValueError(f"longer than {MAX_REDIS_URL_CHARS} characters")
    if not raw.isascii() or not raw.isprintable() or any(c.isspace() for c in raw):
        raise ValueError(
            f"only printable ASCII without spaces is allowed; expected {REDIS_URL_FORM}"
        )
    scheme, separator, rest = raw.partition("://")
    if scheme != "redis" or not separator:
        shown = scheme if separator and re.fullmatch(r"[A-Za-z+]{1,16}", scheme) else "none"
        raise ValueError(f"the scheme must be redis:// (got {shown!r}); expected {REDIS_URL_FORM}")
    if "?" in rest or "#" in rest:
        # redis-py would take connection options from a query string.
        raise ValueError(f"no query string or fragment is allowed; expected {REDIS_URL_FORM}")
    netloc, _, database = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        _check_userinfo(userinfo)
    _check_host_and_port(hostport)
    if database and not (database.isdigit() and int(database) <= MAX_REDIS_DB):
        raise ValueError(f"the path must be a database number like /0; expected {REDIS_URL_FORM}")
    return raw


def _check_userinfo(userinfo: str) -> None:
    user, colon, password = userinfo.partition(":")
    if not colon:
        raise ValueError(f"a user name without a password; expected {REDIS_URL_FORM}")
    if not password:
        raise ValueError(f"the password is empty; expected {REDIS_URL_FORM}")
    if not (_USERINFO_RE.fullmatch(user) and _USERINFO_RE.fullmatch(password)):
        raise ValueError(
            "the user or password holds a character that must be percent-encoded "
            "(for example @ as %40, / as %2F, : as %3A, % as %25)"
        )


def _check_host_and_port(hostport: str) -> None:
    if hostport.startswith("["):
        host, bracket, port = hostport[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("the host in brackets is not an IPv6 address") from None
        if not bracket or (port and not port.startswith(":")):
            raise ValueError("a malformed IPv6 host; expected redis://[::1]:6379/0")
        colon = port.startswith(":")
        port = port.removeprefix(":")
    else:
        host, colon_text, port = hostport.partition(":")
        colon = bool(colon_text)
        if not host:
            raise ValueError(f"no host; expected {REDIS_URL_FORM}")
        if not _HOSTNAME_RE.fullmatch(host):
            raise ValueError("the host must be a DNS name, an IPv4 address or [an IPv6 address]")
        if re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError("the host is not a valid IPv4 address") from None
    if colon and not (port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        raise ValueError("the port must be a number from 1 to 65535")


def _redis_prefix(raw: str) -> str:
    if not _PREFIX_RE.fullmatch(raw):
        raise ValueError(
            "expected 1 to 64 characters of letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return raw


def _mask_password(url: str) -> str:
    scheme, separator, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{separator}{user}:***@{hostport}{slash}{path}"
