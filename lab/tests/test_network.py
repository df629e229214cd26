from __future__ import annotations

from pathlib import Path

import pytest

from securechat_lab import network
from securechat_lab.commands import LabError
from securechat_lab.network import Rule


def test_addresses() -> None:
    assert network.bridge_name(3) == "sclab3"
    assert network.controller_address(3) == "10.231.3.1"
    assert [network.host_address(3, i) for i in range(2)] == ["10.231.3.11", "10.231.3.12"]
    assert str(network.subnet(3)) == "10.231.3.0/24"


def test_choose_index_prefers_the_previous_one_when_free() -> None:
    assert network.choose_index({1, 2}, preferred=5) == 5
    assert network.choose_index({1, 2, 5}, preferred=5) == 3
    assert network.choose_index(set()) == 1
    with pytest.raises(LabError):
        network.choose_index(set(network.INDEXES))


def test_forward_rules_need_iptables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(network.shutil, "which", lambda binary: None)
    assert network.forward_rules("single", "sclab1") == []


def test_forward_rules_accept_the_bridge_only_with_bridge_netfilter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(network.shutil, "which", lambda binary: f"/usr/sbin/{binary}")
    monkeypatch.setattr(network, "BRIDGE_NF", tmp_path)
    (tmp_path / "bridge-nf-call-iptables").write_text("1\n")
    (tmp_path / "bridge-nf-call-ip6tables").write_text("0\n")
    rules = network.forward_rules("single", "sclab1")
    accepts = [rule for rule in rules if rule.spec[-1] == "ACCEPT"]
    assert accepts == [
        Rule(
            "iptables",
            ("-i", "sclab1", "-o", "sclab1", "-m", "comment", "--comment", "securechat-lab single",
             "-j", "ACCEPT"),
        )
    ]  # fmt: skip
    drops = [rule for rule in rules if rule.spec[-1] == "DROP"]
    assert {rule.binary for rule in drops} == {"iptables", "ip6tables"}
    assert all("!" in rule.spec for rule in drops)
    assert [Rule.from_json(rule.to_json()) for rule in rules] == rules
