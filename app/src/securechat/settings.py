"""The only place configuration is read: environment variables, once, into a frozen object."""

from __future__ import annotations

import hashlib
import hmac
import os
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
        )


class _Env:
    """Reads one prefixed variable at a time and turns a parse error into a SettingsError."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

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
