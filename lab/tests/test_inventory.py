"""The inventory the lab writes is one securechat-verify reads, with the right groups."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from securechat_verify.inventory import target_from_inventory

from securechat_lab import inventory
from securechat_lab.bundle import BundleChoice
from securechat_lab.layouts import LAYOUTS
from securechat_lab.network import host_address

FINGERPRINT = "6685AA687125B25801AB44359B8937F2F2C21F2E"


def write_lab(tmp_path: Path, layout: str, bundle: BundleChoice | None = None) -> Path:
    directory = tmp_path / f"lab-{layout}"
    hosts = [
        inventory.InventoryHost(spec.name, host_address(7, position), spec.groups)
        for position, spec in enumerate(LAYOUTS[layout])
    ]
    inventory.write(
        directory,
        lab=layout,
        hosts=hosts,
        index=7,
        private_key=tmp_path / "id_ed25519",
        bundle=bundle,
        verify_command=Path("/repo/.venv/bin/securechat-verify"),
    )
    return directory


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    # pki/ca.crt is made by the tls role later; verify checks that it is a PEM certificate.
    path = tmp_path / "ca.crt"
    path.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    return path


@pytest.mark.parametrize(
    ("layout", "roles", "ports"),
    [
        ("single", {"chat1": {"front", "app", "db"}}, {"chat1": {22, 80, 443}}),
        (
            "distributed",
            {"app1": {"front", "app"}, "db1": {"db"}},
            {"app1": {22, 80, 443}, "db1": {22}},
        ),
        (
            "ha",
            {"front1": {"front"}, "app1": {"app"}, "app2": {"app"}, "db1": {"db", "redis"}},
            {"front1": {22, 80, 443}, "app1": {22}, "app2": {22}, "db1": {22}},
        ),
    ],
)
def test_verify_reads_the_lab_inventory(
    tmp_path: Path, ca: Path, layout: str, roles: dict[str, set[str]], ports: dict[str, set[int]]
) -> None:
    target = target_from_inventory(write_lab(tmp_path, layout), ca=ca)
    first_front = host_address(7, 0)
    assert target.url == f"https://{first_front}"
    assert target.client_names == (first_front, "chat.local")
    assert {host.name: set(host.roles) for host in target.hosts} == roles
    # verify's default expected ports are the lab's: nothing else answers the controller.
    assert {host.name: set(host.expected_ports) for host in target.hosts} == ports
    for host in target.hosts:
        assert host.address.startswith("10.231.7.")


def test_site_variables_follow_the_contract(tmp_path: Path) -> None:
    bundle = BundleChoice(tmp_path / "securechat-m2m-1.0.tar.gz", FINGERPRINT)
    directory = write_lab(tmp_path, "single", bundle)
    site = yaml.safe_load((directory / "group_vars" / "all.yml").read_text())
    assert site == {
        "securechat_public_url": "https://10.231.7.11",
        "securechat_client_names": ["10.231.7.11", "chat.local"],
        "securechat_admin_networks": ["10.231.7.1/32"],
        "securechat_client_networks": ["10.231.7.0/24"],
        "securechat_lan_prefix": 24,
        "securechat_mdns_name": "chat",
        "securechat_bundle_path": str(bundle.path),
        "securechat_bundle_fingerprint": FINGERPRINT,
        "securechat_ca_cert": "pki/ca.crt",
        "securechat_verify_command": "/repo/.venv/bin/securechat-verify",
    }
    hosts = yaml.safe_load((directory / "hosts.yml").read_text())
    chat1 = hosts["all"]["hosts"]["chat1"]
    assert chat1["ansible_user"] == "root"
    assert chat1["securechat_address"] == chat1["ansible_host"] == "10.231.7.11"
    assert Path(chat1["ansible_ssh_private_key_file"]).is_absolute()
    assert chat1["ansible_ssh_common_args"] == (
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"
    )


def test_the_docker_layout_is_a_docker_host_that_fronts_the_site(tmp_path: Path) -> None:
    directory = write_lab(tmp_path, "docker")
    hosts = yaml.safe_load((directory / "hosts.yml").read_text())
    assert hosts["all"]["children"] == {"docker_hosts": {"hosts": {"docker1": {}}}}
    site = yaml.safe_load((directory / "group_vars" / "all.yml").read_text())
    assert site["securechat_public_url"] == "https://10.231.7.11"


def test_without_a_bundle_the_bundle_variables_are_left_out(tmp_path: Path) -> None:
    directory = write_lab(tmp_path, "single")
    text = (directory / "group_vars" / "all.yml").read_text()
    assert "# No bundle" in text
    assert "securechat_bundle_path" not in yaml.safe_load(text)


def test_remove_keeps_what_the_roles_made(tmp_path: Path) -> None:
    directory = write_lab(tmp_path, "single")
    (directory / "secrets").mkdir()
    (directory / "secrets" / "db_password").write_text("x")
    inventory.remove(directory)
    assert sorted(p.name for p in directory.rglob("*")) == ["db_password", "secrets"]
