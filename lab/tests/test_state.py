from __future__ import annotations

from pathlib import Path

import pytest

from securechat_lab.commands import LabError
from securechat_lab.network import Rule
from securechat_lab.state import (
    HostState,
    LabState,
    check_name,
    lab_names,
    previous_index,
    recorded_indexes,
    remember_index,
)


def test_state_round_trip(tmp_path: Path) -> None:
    lab = LabState(
        name="net",
        layout="distributed",
        index=4,
        bridge="sclab4",
        directory=tmp_path / "net",
        hosts=[HostState("app1", "app1-4", "10.231.4.11", ["securechat_front", "securechat_app"])],
        rules=[Rule("iptables", ("-i", "sclab4", "-j", "ACCEPT"))],
        inventory="/repo/inventory/lab-net",
    )
    lab.save()
    assert LabState.load(tmp_path / "net") == lab
    assert lab_names(tmp_path) == ["net"]
    assert recorded_indexes(tmp_path) == {4}


def test_missing_lab(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no lab"):
        LabState.load(tmp_path / "nope")


@pytest.mark.parametrize("name", ["", "Net", "-x", "a/b", "x" * 25, "1abc"])
def test_bad_names(name: str) -> None:
    with pytest.raises(LabError):
        check_name(name)


def test_index_is_remembered(tmp_path: Path) -> None:
    assert previous_index(tmp_path, "tls") is None
    remember_index(tmp_path, "tls", 9)
    remember_index(tmp_path, "net", 3)
    assert previous_index(tmp_path, "tls") == 9
