"""Building the `Target`: from a URL (`--url`), or from an Ansible inventory (`-i DIR`).

An inventory is read as data — YAML files parsed with PyYAML's safe loader — never run:
no Ansible, no inventory scripts or plugins, no Jinja. The Secure Chat Ansible collection
writes inventories this module reads:

    inventory/<site>/
        hosts.yml                 (or hosts.yaml)
        group_vars/all.yml        (or group_vars/all/*.yml)
        group_vars/<group>.yml    (or group_vars/<group>/*.yml; optional)
        host_vars/<host>.yml      (or host_vars/<host>/*.yml; optional)

`-i` may also name the hosts file itself; its directory is then the inventory directory.

hosts.yml is an Ansible YAML inventory: top-level groups (usually `all`), each with optional
`hosts` (name -> variables), `vars` and `children` (nested groups). A host's roles are the
groups among these it belongs to, directly or through `children`:

    securechat_front   the TLS reverse proxy that clients connect to
    securechat_app     the Secure Chat application server (at least one host is required)
    securechat_db      the database server
    securechat_redis   the Redis server

Hosts in none of these groups are ignored.

Site variables, read from the `all` group (`all: vars:` in hosts.yml, or group_vars/all):

    securechat_public_url      the URL clients open, https://chat.example.lan (required
                               unless --url is given)
    securechat_ca_cert         the site CA certificate (PEM), absolute or relative to the
                               inventory directory; optional: without it the system trust
                               store is used (--ca overrides it)
    securechat_client_names    list of the extra DNS names and IP addresses clients use to
                               reach the chat; the certificate must cover each (--name adds)
    securechat_admin_networks, securechat_client_networks
                               read by the collection, ignored here

Host variables, from the usual places with Ansible's precedence (the `all` group, then the
other groups from least to most nested, then the host itself; in each, hosts.yml before the
group_vars/host_vars files):

    ansible_host               address to reach the host (default: the inventory host name)
    ansible_connection         `ssh` (default) or `local` (inspect this machine); others are
                               refused
    ansible_user               SSH user (default: ssh's own default)
    ansible_port               SSH port (default 22)
    ansible_ssh_private_key_file (or ansible_private_key_file)
                               SSH key; `~` is expanded, a relative path is relative to the
                               inventory directory
    ansible_ssh_common_args, ansible_ssh_extra_args
                               extra ssh arguments (a jump host: `-o ProxyJump=bastion`)
    ansible_become             whether to become root for the commands that need it
                               (default false): a boolean, or one of Ansible's strings
                               (yes/no, true/false, on/off, y/n, t/f, 1/0; any case); other
                               values are refused. With it, and an SSH user other than root,
                               only those commands (`nft -j list ruleset`) run as
                               `sudo -n -- COMMAND`, which needs passwordless sudo for them;
                               every other command runs as the SSH user. With
                               `ansible_connection: local` commands run as the tool does
                               (run it under sudo to list the ruleset)
    ansible_become_method      how to become root: only `sudo` (the default) is supported;
                               read only when ansible_become is true
    securechat_verify_expected_ports
                               list of the TCP ports that must answer from where the tool
                               runs; every other probed port must not. Default by role:
                               the SSH port for a host reached over SSH; 80, 443 and the
                               URL's port for a front host; the URL's port for an app host
                               when no host is a front (the app serves TLS itself); nothing
                               else (db, redis, app behind a front).

Values must be literal: a `{{ template }}` or a `!vault` value in a variable this tool reads is
refused with a message naming the file, as is any missing or ill-typed variable
(`InventoryError`). Vault-encrypted files are skipped.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from securechat_verify.remote import CommandRunner, LocalRunner, SshRunner
from securechat_verify.target import DEFAULT_MIN_KDF_ITERATIONS, Host, Target

ROLE_GROUPS: Final = {
    "securechat_front": "front",
    "securechat_app": "app",
    "securechat_db": "db",
    "securechat_redis": "redis",
}
HOSTS_FILES: Final = ("hosts.yml", "hosts.yaml")
VARS_SUFFIXES: Final = (".yml", ".yaml", ".json")
MAX_FILE_BYTES: Final = 1024 * 1024
MAX_GROUP_DEPTH: Final = 32
MAX_CA_BYTES: Final = 1024 * 1024
SSH_CONNECTIONS: Final = frozenset({"ssh", "smart", "paramiko", "paramiko_ssh"})


class ConfigError(Exception):
    """A configuration problem: `what` is wrong, `fix` tells how to put it right."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(f"{what} — {fix}")
        self.what = what
        self.fix = fix


class InventoryError(ConfigError):
    """The inventory cannot be used; the message names the file and the variable."""

    def __init__(
        self,
        what: str,
        fix: str = "correct the inventory "
        "(its variables: python -m pydoc securechat_verify.inventory)",
    ) -> None:
        super().__init__(what, fix)


# --- URL and CA, shared by --url and -i -------------------------------------------------------


def check_url(url: str, *, source: str = "--url") -> str:
    """`url` if it is a usable chat URL (http or https, with a host), else `ConfigError`."""
    fix = f"give the address clients open, like https://chat.example.lan, in {source}"
    if not url or url != url.strip() or any(c.isspace() or ord(c) < 32 for c in url):
        raise ConfigError(f"the URL {url!r} is empty or contains spaces", fix)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"the URL {url!r} is malformed: {exc}", fix) from exc
    if parts.scheme not in ("https", "http"):
        raise ConfigError(f"the URL {url!r} has scheme {parts.scheme!r}, not https (or http)", fix)
    if not parts.hostname:
        raise ConfigError(f"the URL {url!r} has no host name", fix)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"the URL {url!r} contains credentials", fix)
    return url


def check_ca_file(path: Path, *, source: str = "--ca") -> Path:
    """`path` if it is a readable PEM certificate, else `ConfigError` saying what to pass."""
    fix = f"give the site CA certificate (PEM, usually ca.crt) in {source}"
    try:
        with path.open("rb") as handle:
            head = handle.read(MAX_CA_BYTES)
    except FileNotFoundError as exc:
        raise ConfigError(f"the CA file {path} does not exist", fix) from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"the CA file {path} is a directory", fix) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the CA file {path}: {exc.strerror or exc}", fix) from exc
    if b"PRIVATE KEY-----" in head:
        raise ConfigError(
            f"{path} contains a private key",
            f"{fix}; the CA certificate is public, the CA key must never leave its safe",
        )
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise ConfigError(f"{path} is not a PEM certificate", fix)
    return path


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def target_from_url(
    url: str,
    ca: Path | None,
    *,
    local: bool = False,
    names: Sequence[str] = (),
    timeout: float = 10.0,
    min_kdf_iterations: int = DEFAULT_MIN_KDF_ITERATIONS,
    chromium: Path | None = None,
) -> Target:
    """A target with one host, the URL's; inspected on this machine if `local`."""
    check_url(url)
    if ca is not None:
        check_ca_file(ca)
    hostname = urlsplit(url).hostname or ""
    host = Host(
        name=hostname,
        address=hostname,
        roles=frozenset({"front", "app"}),
        expected_ports=frozenset({_url_port(url)}),
        runner=LocalRunner() if local else None,
    )
    return Target(
        url=url,
        ca_file=ca,
        hosts=(host,),
        client_names=_client_names(names),
        timeout=timeout,
        min_kdf_iterations=min_kdf_iterations,
        chromium=chromium,
    )


def _client_names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name.strip() for name in names if name.strip()))


# --- reading YAML ---------------------------------------------------------------------------


class _Vaulted:
    """A `!vault` value: encrypted, unreadable here."""


class _InventoryLoader(yaml.SafeLoader):
    """The safe loader, plus Ansible's `!vault` and `!unsafe` tags (as inert values)."""


def _construct_vault(loader: yaml.SafeLoader, node: yaml.Node) -> _Vaulted:
    return _Vaulted()


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(None, None, "bad !unsafe value", node.start_mark)


_InventoryLoader.add_constructor("!vault", _construct_vault)
_InventoryLoader.add_constructor("!unsafe", _construct_unsafe)

_VAULT_FILE = object()  # marker: the whole file is vault-encrypted


def _load_yaml(path: Path) -> Any:
    """The YAML document in `path` (None if empty), `_VAULT_FILE`, or `InventoryError`."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise InventoryError(f"{path}: larger than {MAX_FILE_BYTES} bytes, not an inventory file")
    if raw.lstrip().startswith(b"$ANSIBLE_VAULT;"):
        return _VAULT_FILE
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        return yaml.load(text, Loader=_InventoryLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InventoryError(f"{path}: invalid YAML{where}: {problem}") from exc
    except RecursionError as exc:
        raise InventoryError(f"{path}: YAML nested too deeply") from exc


@dataclass(frozen=True)
class _Value:
    value: Any
    source: Path


_Vars = dict[str, _Value]


def _vars_mapping(data: Any, path: Path, what: str) -> _Vars:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(f"{path}: {what} must be a mapping of variables, not {_kind(data)}")
    result: _Vars = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise InventoryError(
                f"{path}: {what} has a variable name that is not a string: {key!r}"
            )
        result[key] = _Value(value, path)
    return result


def _vars_files(directory: Path, name: str) -> list[Path]:
    """group_vars/<name>.yml and friends, then group_vars/<name>/*.yml, as Ansible reads them."""
    files = [directory / (name + suffix) for suffix in VARS_SUFFIXES]
    found = [path for path in files if path.is_file()]
    folder = directory / name
    if folder.is_dir():
        found += sorted(
            path
            for path in folder.iterdir()
            if path.is_file() and path.suffix in VARS_SUFFIXES and not path.name.startswith(".")
        )
    return found


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, _Vaulted):
        return "a !vault value"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


# --- the hosts file ---------------------------------------------------------------------------


@dataclass
class _Group:
    name: str
    hosts: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)
    vars: _Vars = field(default_factory=dict)


@dataclass
class _Inventory:
    directory: Path
    hosts_file: Path
    groups: dict[str, _Group]
    host_vars: dict[str, _Vars]  # inline host variables from the hosts file, by host
    skipped_vault_files: list[Path] = field(default_factory=list)

    def group(self, name: str) -> _Group:
        return self.groups.setdefault(name, _Group(name))


def _find_hosts_file(path: Path) -> tuple[Path, Path]:
    """(inventory directory, hosts file) for `-i path`."""
    if path.is_file():
        return path.parent, path
    if not path.is_dir():
        raise InventoryError(
            f"the inventory {path} does not exist",
            "give the inventory directory of the site with -i, like -i inventory/<site>",
        )
    found = [path / name for name in HOSTS_FILES if (path / name).is_file()]
    if len(found) > 1:
        raise InventoryError(
            f"{path} has both {found[0].name} and {found[1].name}", "keep only one hosts file"
        )
    if not found:
        ini = [name for name in ("hosts", "hosts.ini", "inventory") if (path / name).is_file()]
        fix = "write the hosts in YAML in hosts.yml (INI inventories are not read)"
        if ini:
            raise InventoryError(f"{path}: only an INI inventory ({ini[0]}) found", fix)
        raise InventoryError(f"{path}: no hosts.yml in the inventory directory", fix)
    return path, found[0]


def _parse_hosts_file(directory: Path, hosts_file: Path) -> _Inventory:
    data = _load_yaml(hosts_file)
    if data is _VAULT_FILE:
        raise InventoryError(
            f"{hosts_file}: the hosts file is vault-encrypted",
            "keep hosts.yml in clear; put secrets in a vault-encrypted vars file",
        )
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InventoryError(f"{hosts_file}: must be a mapping of groups, not {_kind(data)}")
    inventory = _Inventory(directory, hosts_file, {"all": _Group("all")}, {})
    for name, definition in data.items():
        _parse_group(inventory, name, definition, parent=None, stack=())
    return inventory


def _parse_group(
    inventory: _Inventory, name: Any, definition: Any, *, parent: str | None, stack: tuple[str, ...]
) -> None:
    path = inventory.hosts_file
    if not isinstance(name, str) or not name:
        raise InventoryError(f"{path}: group name {name!r} is not a string")
    if not _safe_name(name):
        raise InventoryError(
            f"{path}: group name {name!r} is not supported",
            "name groups with letters, digits and underscores",
        )
    if name in stack:
        raise InventoryError(f"{path}: group {name} contains itself ({' > '.join((*stack, name))})")
    if len(stack) > MAX_GROUP_DEPTH:
        raise InventoryError(f"{path}: groups nested more than {MAX_GROUP_DEPTH} deep")
    group = inventory.group(name)
    if parent is not None and name != "all":
        group.parents.add(parent)
    elif name != "all":
        group.parents.add("all")
    if definition is None:
        return
    if not isinstance(definition, dict):
        raise InventoryError(f"{path}: group {name} must be a mapping, not {_kind(definition)}")
    unknown = sorted(str(key) for key in definition if key not in ("hosts", "vars", "children"))
    if unknown:
        raise InventoryError(
            f"{path}: group {name} has unexpected key {unknown[0]!r}",
            "a group has only hosts, vars and children",
        )
    group.vars.update(_vars_mapping(definition.get("vars"), path, f"vars of group {name}"))
    for host, host_vars in _mapping(definition.get("hosts"), path, f"hosts of group {name}"):
        _check_host_name(path, host)
        if host not in group.hosts:
            group.hosts.append(host)
        inventory.host_vars.setdefault(host, {}).update(
            _vars_mapping(host_vars, path, f"host {host}")
        )
    for child, child_definition in _mapping(
        definition.get("children"), path, f"children of group {name}"
    ):
        _parse_group(inventory, child, child_definition, parent=name, stack=(*stack, name))


def _mapping(value: Any, path: Path, what: str) -> list[tuple[Any, Any]]:
    """The items of an optional mapping in the hosts file."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise InventoryError(f"{path}: {what} must be a mapping of names, not {_kind(value)}")
    return list(value.items())


def _check_host_name(path: Path, host: Any) -> None:
    if not isinstance(host, str) or not host.strip():
        raise InventoryError(f"{path}: host name {host!r} is not a string")
    if "[" in host or host.startswith("-") or not _safe_name(host):
        raise InventoryError(
            f"{path}: host name {host!r} is not supported",
            "list each host by name (no ranges like web[1:3], no spaces or slashes)",
        )


def _safe_name(name: str) -> bool:
    """A name usable as a file name under group_vars/ or host_vars/, without spaces."""
    return (
        name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and not any(c.isspace() or ord(c) < 32 for c in name)
    )


def _depths(inventory: _Inventory) -> dict[str, int]:
    """Each group's depth below `all` (its longest path), to order variable precedence."""
    depths: dict[str, int] = {}

    def depth(name: str, seen: tuple[str, ...]) -> int:
        if name in depths:
            return depths[name]
        if name in seen:
            raise InventoryError(f"{inventory.hosts_file}: group {name} contains itself")
        parents = inventory.groups[name].parents - {name}
        value = 0 if name == "all" else 1 + max(depth(p, (*seen, name)) for p in parents)
        depths[name] = value
        return value

    for name in inventory.groups:
        depth(name, ())
    return depths


def _groups_of(inventory: _Inventory, host: str) -> set[str]:
    """Every group `host` belongs to, directly or through children (always `all`)."""
    found = {"all"}
    pending = [group.name for group in inventory.groups.values() if host in group.hosts]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(inventory.groups[name].parents)
    return found


# --- variables --------------------------------------------------------------------------------


class _Resolver:
    def __init__(self, inventory: _Inventory) -> None:
        self.inventory = inventory
        self.depths = _depths(inventory)
        self._group_files: dict[str, _Vars] = {}
        self._host_files: dict[str, _Vars] = {}

    def _load_vars_files(self, directory: str, name: str) -> _Vars:
        merged: _Vars = {}
        for path in _vars_files(self.inventory.directory / directory, name):
            data = _load_yaml(path)
            if data is _VAULT_FILE:
                self.inventory.skipped_vault_files.append(path)
                continue
            merged.update(_vars_mapping(data, path, "the file"))
        return merged

    def group_files(self, group: str) -> _Vars:
        if group not in self._group_files:
            self._group_files[group] = self._load_vars_files("group_vars", group)
        return self._group_files[group]

    def site_vars(self) -> _Vars:
        return {**self.inventory.groups["all"].vars, **self.group_files("all")}

    def host_vars(self, host: str) -> _Vars:
        groups = sorted(
            _groups_of(self.inventory, host) - {"all"}, key=lambda g: (self.depths[g], g)
        )
        merged = self.site_vars()
        for group in groups:
            merged.update(self.inventory.groups[group].vars)
        for group in groups:
            merged.update(self.group_files(group))
        merged.update(self.inventory.host_vars.get(host, {}))
        if host not in self._host_files:
            self._host_files[host] = self._load_vars_files("host_vars", host)
        merged.update(self._host_files[host])
        return merged

    def all_vars_location(self) -> str:
        directory = self.inventory.directory / "group_vars"
        existing = _vars_files(directory, "all")
        if existing:
            return str(existing[0]) if len(existing) == 1 else f"{directory / 'all'}*"
        return f"{directory / 'all.yml'} (missing)"


def _literal(name: str, entry: _Value) -> Any:
    value = entry.value
    if isinstance(value, _Vaulted):
        raise InventoryError(
            f"{entry.source}: {name} is vault-encrypted",
            "securechat-verify does not decrypt Ansible Vault; "
            "write this variable in clear (it is not a secret) or give it on the command line",
        )
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        raise InventoryError(
            f"{entry.source}: {name} is a Jinja template ({value!r})",
            "securechat-verify reads the inventory without Ansible and cannot render templates; "
            "write the literal value",
        )
    return value


def _string(name: str, entry: _Value, *, option_like_ok: bool = True) -> str:
    value = _literal(name, entry)
    if not isinstance(value, str) or not value.strip():
        raise InventoryError(
            f"{entry.source}: {name} must be a non-empty string, not {_kind(value)}"
        )
    if not option_like_ok and (value.startswith("-") or any(c.isspace() for c in value)):
        raise InventoryError(f"{entry.source}: {name} {value!r} is not a valid value")
    return value


def _port(name: str, entry: _Value) -> int:
    value = _literal(name, entry)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InventoryError(
            f"{entry.source}: {name} must be a port number (1-65535), not {value!r}"
        )
    return value


def _ports(name: str, entry: _Value) -> frozenset[int]:
    value = _literal(name, entry)
    if not isinstance(value, list):
        raise InventoryError(
            f"{entry.source}: {name} must be a list of port numbers, not {_kind(value)}"
        )
    return frozenset(_port(name, _Value(item, entry.source)) for item in value)


def _names(name: str, entry: _Value) -> tuple[str, ...]:
    value = _literal(name, entry)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InventoryError(
            f"{entry.source}: {name} must be a list of names and addresses, not {_kind(value)}"
        )
    return tuple(_string(name, _Value(item, entry.source), option_like_ok=False) for item in value)


# Ansible's boolean strings (ansible.module_utils.parsing.convert_bool), matched after
# lowercasing and stripping; YAML itself already reads unquoted yes/no/on/off as booleans.
TRUE_STRINGS: Final = frozenset({"y", "yes", "on", "1", "true", "t"})
FALSE_STRINGS: Final = frozenset({"n", "no", "off", "0", "false", "f"})


def _boolean(name: str, entry: _Value) -> bool:
    """A boolean as Ansible reads one: true/false, 1/0, or one of its yes/no strings."""
    value = _literal(name, entry)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_STRINGS:
            return True
        if word in FALSE_STRINGS:
            return False
    raise InventoryError(
        f"{entry.source}: {name} must be a boolean (true or false), not {value!r}",
        f"write {name}: true or {name}: false (Ansible also reads yes/no, on/off and 1/0)",
    )


def _path(name: str, entry: _Value, directory: Path) -> Path:
    path = Path(_string(name, entry)).expanduser()
    return path if path.is_absolute() else directory / path


# --- the target -------------------------------------------------------------------------------


def _connection(
    inventory: _Inventory, host: str, variables: _Vars
) -> tuple[str, CommandRunner, int | None]:
    """(address, command runner, SSH port or None when the host is not reached over SSH)."""
    address = host
    if "ansible_host" in variables:
        address = _string("ansible_host", variables["ansible_host"], option_like_ok=False)
    connection = "ssh"
    if "ansible_connection" in variables:
        entry = variables["ansible_connection"]
        connection = _string("ansible_connection", entry)
        if connection == "local":
            _become(host, variables)  # checked, but this machine runs commands as the tool does
            return address, LocalRunner(), None
        if connection not in SSH_CONNECTIONS:
            raise InventoryError(
                f"{entry.source}: ansible_connection {connection!r} of host {host} "
                "is not supported",
                "use ssh, or local for this machine",
            )
    destination = address
    user: str | None = None
    if "ansible_user" in variables:
        entry = variables["ansible_user"]
        user = _string("ansible_user", entry, option_like_ok=False)
        if "@" in user:
            raise InventoryError(f"{entry.source}: ansible_user {user!r} contains '@'")
        destination = f"{user}@{address}"
    become = _become(host, variables) and user != "root"
    port = _port("ansible_port", variables["ansible_port"]) if "ansible_port" in variables else 22
    identity: str | None = None
    for key_var in ("ansible_ssh_private_key_file", "ansible_private_key_file"):
        if key_var in variables:
            identity = str(_path(key_var, variables[key_var], inventory.directory))
            break
    options: list[str] = []
    for args_var in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        if args_var in variables:
            entry = variables[args_var]
            try:
                options += shlex.split(_string(args_var, entry))
            except ValueError as exc:
                raise InventoryError(f"{entry.source}: {args_var} cannot be split: {exc}") from exc
    runner: CommandRunner = SshRunner(
        destination=destination,
        port=port,
        identity_file=identity,
        extra_options=tuple(options),
        become=become,
    )
    return address, runner, port


def _become(host: str, variables: _Vars) -> bool:
    """Whether the inventory has this host become root (with sudo, the only method here)."""
    if "ansible_become" not in variables or not _boolean(
        "ansible_become", variables["ansible_become"]
    ):
        return False
    if "ansible_become_method" in variables:
        entry = variables["ansible_become_method"]
        method = _string("ansible_become_method", entry)
        if method != "sudo":
            raise InventoryError(
                f"{entry.source}: ansible_become_method {method!r} of host {host} is not supported",
                "securechat-verify becomes root with `sudo -n` only: set "
                "ansible_become_method: sudo (or remove it) and give the SSH user passwordless "
                "sudo for `/usr/sbin/nft -j list ruleset`, or connect as root",
            )
    return True


def _role_hosts(inventory: _Inventory) -> Iterator[tuple[str, frozenset[str]]]:
    """(host, roles) of every host in a securechat_* group, in order of first mention."""
    order: dict[str, None] = {}
    for group in inventory.groups.values():
        for host in group.hosts:
            order.setdefault(host, None)
    for host in order:
        groups = _groups_of(inventory, host)
        roles = frozenset(role for group, role in ROLE_GROUPS.items() if group in groups)
        if roles:
            yield host, roles


def _site_url(resolver: _Resolver, url: str | None) -> str:
    """The command line's URL, else the inventory's securechat_public_url."""
    if url is not None:
        return check_url(url)
    site = resolver.site_vars()
    if "securechat_public_url" not in site:
        skipped = resolver.inventory.skipped_vault_files
        vault = f" (skipped vault-encrypted {', '.join(map(str, skipped))})" if skipped else ""
        raise InventoryError(
            f"{resolver.all_vars_location()}: securechat_public_url is not set{vault}",
            "set securechat_public_url: https://chat.example.lan in group_vars/all.yml, "
            "or give --url",
        )
    entry = site["securechat_public_url"]
    try:
        return check_url(
            _string("securechat_public_url", entry),
            source=f"securechat_public_url in {entry.source}",
        )
    except InventoryError:
        raise
    except ConfigError as exc:
        raise InventoryError(f"{entry.source}: securechat_public_url: {exc.what}", exc.fix) from exc


def _site_ca(resolver: _Resolver, ca: Path | None) -> Path | None:
    """The command line's CA, else the inventory's securechat_ca_cert, else None."""
    if ca is not None:
        return check_ca_file(ca)
    site = resolver.site_vars()
    if "securechat_ca_cert" not in site:
        return None
    entry = site["securechat_ca_cert"]
    path = _path("securechat_ca_cert", entry, resolver.inventory.directory)
    try:
        return check_ca_file(
            path,
            source=f"securechat_ca_cert in {entry.source} "
            "(a relative path is relative to the inventory directory)",
        )
    except ConfigError as exc:
        raise InventoryError(f"{entry.source}: securechat_ca_cert: {exc.what}", exc.fix) from exc


def _expected_ports(
    variables: _Vars, roles: frozenset[str], ssh_port: int | None, url_port: int, has_front: bool
) -> frozenset[int]:
    if "securechat_verify_expected_ports" in variables:
        return _ports(
            "securechat_verify_expected_ports", variables["securechat_verify_expected_ports"]
        )
    ports: set[int] = set() if ssh_port is None else {ssh_port}
    if "front" in roles:
        ports |= {80, 443, url_port}
    if "app" in roles and not has_front:
        ports.add(url_port)
    return frozenset(ports)


def target_from_inventory(
    path: Path,
    *,
    url: str | None = None,
    ca: Path | None = None,
    names: Sequence[str] = (),
    timeout: float = 10.0,
    min_kdf_iterations: int = DEFAULT_MIN_KDF_ITERATIONS,
    chromium: Path | None = None,
) -> Target:
    """The target an inventory describes; `url` and `ca` (command line) override its own."""
    directory, hosts_file = _find_hosts_file(path)
    inventory = _parse_hosts_file(directory, hosts_file)
    resolver = _Resolver(inventory)
    site = resolver.site_vars()

    url = _site_url(resolver, url)
    ca = _site_ca(resolver, ca)
    client_names: tuple[str, ...] = ()
    if "securechat_client_names" in site:
        client_names = _names("securechat_client_names", site["securechat_client_names"])

    url_port = _url_port(url)
    role_hosts = list(_role_hosts(inventory))
    if not any("app" in roles for _host, roles in role_hosts):
        raise InventoryError(
            f"{hosts_file}: no host in group securechat_app",
            "list the application servers under securechat_app "
            "(and the proxy, database and Redis hosts under securechat_front, securechat_db "
            "and securechat_redis)",
        )
    has_front = any("front" in roles for _host, roles in role_hosts)

    hosts: list[Host] = []
    for name, roles in role_hosts:
        variables = resolver.host_vars(name)
        address, runner, ssh_port = _connection(inventory, name, variables)
        expected = _expected_ports(variables, roles, ssh_port, url_port, has_front)
        hosts.append(
            Host(
                name=name,
                address=address,
                roles=roles,
                expected_ports=expected,
                runner=runner,
            )
        )

    return Target(
        url=url,
        ca_file=ca,
        hosts=tuple(hosts),
        client_names=_client_names((*client_names, *names)),
        timeout=timeout,
        min_kdf_iterations=min_kdf_iterations,
        chromium=chromium,
    )
