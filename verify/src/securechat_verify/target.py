"""What is being verified: the chat URL, the site CA and the hosts behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from securechat_verify.remote import CommandRunner

DEFAULT_MIN_KDF_ITERATIONS = 600_000


@dataclass(frozen=True)
class Host:
    """A deployment host. `roles` among: app, db, front, redis."""

    name: str
    address: str
    roles: frozenset[str] = frozenset()
    # Ports that must answer from where the tool runs; every other probed port must not.
    expected_ports: frozenset[int] = frozenset()
    # How to run inspection commands on the host (SSH, or locally); None: cannot inspect.
    runner: CommandRunner | None = None


@dataclass(frozen=True)
class Target:
    url: str
    ca_file: Path | None = None
    hosts: tuple[Host, ...] = ()
    # Every name and address clients use to reach the chat: the certificate must cover each.
    client_names: tuple[str, ...] = ()
    timeout: float = 10.0
    min_kdf_iterations: int = DEFAULT_MIN_KDF_ITERATIONS
    chromium: Path | None = field(default=None)

    @property
    def hostname(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def is_https(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.hostname, *self.client_names)))
