"""The Ansible inventory of a lab: inventory/lab-<name>/{hosts.yml, group_vars/all.yml}.

It follows the collection's variable contract (docs/collection.md) and is read as is by
`securechat-verify -i` (securechat_verify.inventory). Only these two files are the lab's:
secrets/ and pki/ beside them belong to the roles and are left alone, also by `down`.

Expected ports: verify's defaults (SSH everywhere, 80 and 443 on a front, nothing else on an
app behind a front, on db or on redis) are right for every layout, since the controller is
the admin network (SSH) and a client (80, 443) but neither an app host (MariaDB, Redis) nor
the front (port 8000). So securechat_verify_expected_ports is not written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from securechat_lab.bundle import BundleChoice
from securechat_lab.layouts import FRONTS, GROUPS
from securechat_lab.network import PREFIX, controller_address, subnet
from securechat_lab.sshkey import COMMON_ARGS

MARK: Final = "# Written by securechat-lab"
MDNS_NAME: Final = "chat"


@dataclass(frozen=True)
class InventoryHost:
    name: str
    address: str
    groups: tuple[str, ...]


def hosts_document(hosts: list[InventoryHost], private_key: Path) -> dict[str, Any]:
    connection = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(private_key.resolve()),
        "ansible_ssh_common_args": COMMON_ARGS,
    }
    children: dict[str, Any] = {}
    for group in GROUPS:
        members: dict[str, dict[str, Any]] = {
            host.name: {} for host in hosts if group in host.groups
        }
        if members:
            children[group] = {"hosts": members}
    return {
        "all": {
            "hosts": {
                host.name: {
                    "ansible_host": host.address,
                    "securechat_address": host.address,
                    **connection,
                }
                for host in hosts
            },
            "children": children,
        }
    }


def site_document(
    hosts: list[InventoryHost], index: int, bundle: BundleChoice | None, verify_command: Path
) -> dict[str, Any]:
    fronts = [host for host in hosts if set(FRONTS) & set(host.groups)]
    if not fronts:
        raise ValueError(f"a lab layout needs a host in one of {', '.join(FRONTS)}")
    front = fronts[0].address
    site: dict[str, Any] = {
        "securechat_public_url": f"https://{front}",
        "securechat_client_names": [front, f"{MDNS_NAME}.local"],
        "securechat_admin_networks": [f"{controller_address(index)}/32"],
        "securechat_client_networks": [str(subnet(index))],
        "securechat_lan_prefix": PREFIX,
        "securechat_mdns_name": MDNS_NAME,
    }
    if bundle is not None:
        site["securechat_bundle_path"] = str(bundle.path)
        site["securechat_bundle_fingerprint"] = bundle.fingerprint
    site["securechat_ca_cert"] = "pki/ca.crt"
    site["securechat_verify_command"] = str(verify_command)
    return site


def write(
    directory: Path,
    *,
    lab: str,
    hosts: list[InventoryHost],
    index: int,
    private_key: Path,
    bundle: BundleChoice | None,
    verify_command: Path,
) -> None:
    header = (
        f"{MARK} for lab {lab!r} (10.231.{index}.0/24 on bridge sclab{index}); "
        "rewritten by every `up`, removed by `down`.\n"
    )
    (directory / "group_vars").mkdir(parents=True, exist_ok=True)
    _write_yaml(directory / "hosts.yml", header, hosts_document(hosts, private_key))
    site = site_document(hosts, index, bundle, verify_command)
    note = ""
    if bundle is None:
        note = (
            "# No bundle: no dist/securechat-m2m-*.tar.gz when the lab came up, so\n"
            "# securechat_bundle_path and securechat_bundle_fingerprint are missing (make bundle,\n"
            "# then `securechat-lab up` again, or pass --bundle PATH --fingerprint FPR).\n"
        )
    _write_yaml(directory / "group_vars" / "all.yml", header + note, site)


def remove(directory: Path) -> None:
    """The files `write` made, if they are still the lab's (they carry its mark)."""
    for path in (directory / "hosts.yml", directory / "group_vars" / "all.yml"):
        if path.is_file() and path.read_text().startswith(MARK):
            path.unlink()
    for empty in (directory / "group_vars", directory):
        if empty.is_dir() and not any(empty.iterdir()):
            empty.rmdir()


def _write_yaml(path: Path, header: str, document: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(
        header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)
    )
    partial.replace(path)
