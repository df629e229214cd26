"""The build machine's Debian mirror, read from its apt sources (deb822 or one-line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat_bundle.debian import DebianError, host_mirror


def test_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# http://old.example/debian\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm\nComponents: main\n"
    )
    assert host_mirror(tmp_path) == "http://mirror.example/debian"


def test_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb https://mirror.example/debian/ bookworm main\n"
    )
    assert host_mirror(tmp_path) == "https://mirror.example/debian"


def test_no_mirror(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb https://packages.example/apt stable main\n")
    with pytest.raises(DebianError, match="no Debian mirror"):
        host_mirror(tmp_path)
