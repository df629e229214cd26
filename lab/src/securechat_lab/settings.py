"""Where the lab keeps things: read once from the environment, then passed on.

The defaults suit the shared lab machine (root): state under /var/lib, the debootstrap base in
root's cache, the SSH key in root's data directory (so it outlives any checkout), inventories
in this repository. Each can be moved with an environment variable, which the tests use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# lab/src/securechat_lab/settings.py -> the repository root (an editable install, as in make venv)
_SOURCE_REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Settings:
    state_root: Path  # one directory per lab: state.json, host trees, logs
    cache_dir: Path  # the debootstrap base image
    key_dir: Path  # the lab's SSH key pair
    repo: Path  # inventories go to repo/inventory/lab-<name>

    @property
    def inventory_root(self) -> Path:
        return self.repo / "inventory"

    @property
    def dist_dir(self) -> Path:
        return self.repo / "dist"

    @property
    def verify_command(self) -> Path:
        return self.repo / ".venv" / "bin" / "securechat-verify"

    @property
    def private_key(self) -> Path:
        return self.key_dir / "id_ed25519"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        home = Path(environ.get("HOME", "/root"))
        repo_default = _SOURCE_REPO if (_SOURCE_REPO / "galaxy.yml").is_file() else Path.cwd()
        return cls(
            state_root=Path(environ.get("SECURECHAT_LAB_STATE", "/var/lib/securechat-lab")),
            cache_dir=Path(
                environ.get("SECURECHAT_LAB_CACHE", str(home / ".cache" / "securechat-lab"))
            ),
            key_dir=Path(
                environ.get(
                    "SECURECHAT_LAB_KEYS", str(home / ".local" / "share" / "securechat-lab" / "ssh")
                )
            ),
            repo=Path(environ.get("SECURECHAT_LAB_REPO", str(repo_default))),
        )
