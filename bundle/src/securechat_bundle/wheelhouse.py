"""The wheelhouse: every third-party wheel from the hash-locked requirements, for the target
platform only (no sdist, ever), plus the two local packages built as wheels."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from securechat_bundle.digests import sha256_file

LOCKS = ("server", "verify", "controller")
LOCAL_PACKAGES = {"server": ("app",), "verify": ("app", "verify")}


@dataclass(frozen=True)
class Platform:
    """What `pip download` must fetch for: Debian 12's CPython 3.11 on x86_64 by default."""

    name: str
    platforms: tuple[str, ...]
    python_version: str
    abis: tuple[str, ...]


TARGETS = {
    "manylinux_x86_64-cp311": Platform(
        "manylinux_x86_64-cp311",
        (
            "manylinux_2_36_x86_64",
            "manylinux_2_28_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux2014_x86_64",
            "manylinux_2_5_x86_64",
            "manylinux1_x86_64",
        ),
        "3.11",
        ("cp311", "abi3", "none"),
    ),
    "manylinux_aarch64-cp311": Platform(
        "manylinux_aarch64-cp311",
        (
            "manylinux_2_36_aarch64",
            "manylinux_2_28_aarch64",
            "manylinux_2_17_aarch64",
            "manylinux2014_aarch64",
        ),
        "3.11",
        ("cp311", "abi3", "none"),
    ),
}


class WheelhouseError(RuntimeError):
    pass


def download(lock: Path, destination: Path, platform: Platform) -> None:
    """Fetch exactly the locked wheels (hash-checked by pip) for `platform`."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--require-hashes",
        "--only-binary",
        ":all:",
        "--implementation",
        "cp",
        "--python-version",
        platform.python_version,
        *(arg for p in platform.platforms for arg in ("--platform", p)),
        *(arg for abi in platform.abis for arg in ("--abi", abi)),
        "--requirement",
        str(lock),
        "--dest",
        str(destination),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise WheelhouseError(
            f"could not fetch the wheels of {lock.name} for {platform.name}: "
            f"{_last_lines(result.stderr)}"
        )


def build_local(root: Path, destination: Path, source_date_epoch: int) -> dict[str, Path]:
    """Build `securechat` and `securechat-verify` wheels; returns {project dir: wheel}."""
    built: dict[str, Path] = {}
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(source_date_epoch)}
    for project in ("app", "verify"):
        before = set(destination.glob("*.whl"))
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--wheel-dir",
                str(destination),
                str(root / project),
            ],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if result.returncode != 0:
            raise WheelhouseError(f"could not build {project}: {_last_lines(result.stderr)}")
        new = set(destination.glob("*.whl")) - before
        built[project] = next(iter(new)) if new else _existing_wheel(destination, project)
    return built


def _existing_wheel(destination: Path, project: str) -> Path:
    prefix = "securechat-" if project == "app" else "securechat_verify-"
    matches = sorted(destination.glob(f"{prefix}*.whl"))
    if not matches:
        raise WheelhouseError(f"no wheel for {project} in {destination}")
    return matches[-1]


def local_requirements(wheels: dict[str, Path], projects: tuple[str, ...]) -> str:
    """Requirement lines with hashes for the local wheels, to install beside a lock."""
    lines = []
    for project in projects:
        wheel = wheels[project]
        name, version = wheel.name.split("-")[:2]
        lines.append(f"{name.replace('_', '-')}=={version} --hash=sha256:{sha256_file(wheel)}\n")
    return "".join(lines)


def _last_lines(text: str, count: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-count:])
