from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fake_checks import PEM_CERT
from securechat_verify.inventory import (
    ConfigError,
    InventoryError,
    target_from_inventory,
    target_from_url,
)
from securechat_verify.remote import LocalRunner, SshRunner
from securechat_verify.target import Host

HOSTS = """\
all:
  children:
    securechat_front:
      hosts:
        front1:
          ansible_host: 10.0.0.10
    securechat_app:
      hosts:
        app1:
          ansible_host: 10.0.0.20
        app2:
          ansible_host: 10.0.0.21
    securechat_db:
      hosts:
        db1:
          ansible_host: 10.0.0.30
    securechat_redis:
      hosts:
        db1:
    monitoring:
      hosts:
        grafana:
"""

ALL_VARS = """\
securechat_public_url: https://chat.example.lan
securechat_ca_cert: pki/ca.crt
securechat_client_names: [chat, 10.0.0.10]
securechat_admin_networks: [10.0.1.0/24]
securechat_client_networks: [10.0.2.0/24]
ansible_user: deploy
ansible_ssh_private_key_file: keys/deploy
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
    return directory


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write(
        tmp_path / "inventory" / "site",
        {"hosts.yml": HOSTS, "group_vars/all.yml": ALL_VARS, "pki/ca.crt": PEM_CERT},
    )


def hosts_by_name(path: Path, **kwargs: object) -> dict[str, Host]:
    target = target_from_inventory(path, **kwargs)  # type: ignore[arg-type]
    return {host.name: host for host in target.hosts}


def test_a_good_inventory(site: Path) -> None:
    target = target_from_inventory(site, timeout=3.0, min_kdf_iterations=1000)
    assert target.url == "https://chat.example.lan"
    assert target.ca_file == site / "pki/ca.crt"
    assert target.client_names == ("chat", "10.0.0.10")
    assert target.names == ("chat.example.lan", "chat", "10.0.0.10")
    assert (target.timeout, target.min_kdf_iterations) == (3.0, 1000)
    hosts = {host.name: host for host in target.hosts}
    assert list(hosts) == ["front1", "app1", "app2", "db1"]  # grafana has no securechat role
    assert hosts["front1"].roles == {"front"}
    assert hosts["db1"].roles == {"db", "redis"}
    assert hosts["app1"].address == "10.0.0.20"
    assert hosts["db1"].address == "10.0.0.30"
    assert hosts["app2"].runner == SshRunner(
        destination="deploy@10.0.0.21", port=22, identity_file=str(site / "keys/deploy")
    )
    assert hosts["front1"].expected_ports == {22, 80, 443}
    assert hosts["app1"].expected_ports == {22}
    assert hosts["db1"].expected_ports == {22}


def test_the_hosts_file_can_be_named_directly_and_may_be_hosts_yaml(site: Path) -> None:
    (site / "hosts.yml").rename(site / "hosts.yaml")
    assert len(target_from_inventory(site / "hosts.yaml").hosts) == 4
    assert len(target_from_inventory(site).hosts) == 4


def test_variable_precedence_and_vars_directories(site: Path) -> None:
    write(
        site,
        {
            "hosts.yml": """\
                all:
                  vars:
                    ansible_port: 2200
                    securechat_public_url: https://overridden.example.lan
                  children:
                    securechat_app:
                      vars:
                        ansible_user: from-group-inline
                      hosts:
                        app1:
                          ansible_port: 2201
                        app2:
                      children:
                        special:
                          hosts:
                            app3:
                """,
            "group_vars/securechat_app/main.yml": "ansible_user: from-group-file\n",
            "group_vars/special.yaml": "ansible_user: from-child-group\n",
            "host_vars/app1/ssh.yml": "ansible_port: '2202'\n",
        },
    )
    target = target_from_inventory(site)
    # group_vars/all.yml comes after the `all` vars of hosts.yml.
    assert target.url == "https://chat.example.lan"
    hosts = {host.name: host for host in target.hosts}
    assert hosts["app1"].runner == SshRunner(
        "from-group-file@app1", 2202, str(site / "keys/deploy")
    )
    assert hosts["app2"].runner == SshRunner(
        "from-group-file@app2", 2200, str(site / "keys/deploy")
    )
    assert hosts["app3"].runner == SshRunner(
        "from-child-group@app3", 2200, str(site / "keys/deploy")
    )
    assert hosts["app3"].roles == {"app"}
    # No front: the app serves the URL itself.
    assert hosts["app1"].expected_ports == {2202, 443}


def test_single_host_and_explicit_ports(tmp_path: Path) -> None:
    site = write(
        tmp_path,
        {
            "hosts.yml": """\
                securechat_front:
                  hosts:
                    chat: {ansible_host: 192.0.2.5, ansible_port: 2222}
                securechat_app:
                  hosts:
                    chat:
                    worker: {securechat_verify_expected_ports: [8000, "9000"]}
                """,
            "group_vars/all/main.yml": "securechat_public_url: https://chat.lan:8443/\n",
        },
    )
    target = target_from_inventory(site)
    assert target.ca_file is None
    hosts = {host.name: host for host in target.hosts}
    assert hosts["chat"].roles == {"front", "app"}
    assert hosts["chat"].expected_ports == {2222, 80, 443, 8443}
    assert hosts["worker"].expected_ports == {8000, 9000}


def test_local_connection_and_ssh_arguments(tmp_path: Path) -> None:
    site = write(
        tmp_path,
        {
            "hosts.yml": """\
                securechat_app:
                  hosts:
                    here: {ansible_connection: local}
                    there:
                      ansible_ssh_private_key_file: /abs/key
                      ansible_ssh_common_args: "-o ProxyJump=bastion -o 'User Known'"
                """,
            "group_vars/all.yml": "securechat_public_url: http://chat.lan\n",
        },
    )
    hosts = hosts_by_name(site)
    assert isinstance(hosts["here"].runner, LocalRunner)
    assert hosts["here"].expected_ports == {80}
    assert hosts["there"].runner == SshRunner(
        "there", 22, "/abs/key", ("-o", "ProxyJump=bastion", "-o", "User Known")
    )


def test_command_line_overrides(site: Path, tmp_path: Path) -> None:
    (site / "pki/ca.crt").unlink()  # the inventory's CA is not needed when --ca is given
    ca = tmp_path / "other-ca.pem"
    ca.write_text(PEM_CERT)
    target = target_from_inventory(
        site, url="https://other.lan:444", ca=ca, names=("extra", "chat", " ")
    )
    assert target.url == "https://other.lan:444"
    assert target.ca_file == ca
    assert target.client_names == ("chat", "10.0.0.10", "extra")
    assert {h.name: h for h in target.hosts}["front1"].expected_ports == {22, 80, 443, 444}


def test_absolute_and_home_ca_paths(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absolute = tmp_path / "abs-ca.pem"
    absolute.write_text(PEM_CERT)
    (site / "group_vars/all.yml").write_text(ALL_VARS.replace("pki/ca.crt", str(absolute)))
    assert target_from_inventory(site).ca_file == absolute
    monkeypatch.setenv("HOME", str(tmp_path))
    (site / "group_vars/all.yml").write_text(ALL_VARS.replace("pki/ca.crt", "~/abs-ca.pem"))
    assert target_from_inventory(site).ca_file == absolute


def expect_error(site: Path, *fragments: str, **kwargs: object) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        target_from_inventory(site, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(caught.value, ConfigError)
    assert caught.value.fix
    return caught.value


def test_missing_url(site: Path) -> None:
    (site / "group_vars/all.yml").write_text(ALL_VARS.replace("securechat_public_url", "x"))
    error = expect_error(site, str(site / "group_vars/all.yml"), "securechat_public_url")
    assert "--url" in error.fix
    # --url fills the gap.
    assert target_from_inventory(site, url="https://x.lan").url == "https://x.lan"


def test_missing_url_and_no_group_vars(site: Path) -> None:
    (site / "group_vars/all.yml").unlink()
    expect_error(site, str(site / "group_vars/all.yml"), "(missing)", "securechat_public_url")


def test_missing_ca_file_names_the_defining_file(site: Path) -> None:
    (site / "pki/ca.crt").unlink()
    error = expect_error(
        site, str(site / "group_vars/all.yml"), "securechat_ca_cert", str(site / "pki/ca.crt")
    )
    assert "relative to the inventory directory" in error.fix


def test_ca_that_is_a_private_key(site: Path) -> None:
    (site / "pki/ca.crt").write_text("-----BEGIN EC PRIVATE KEY-----\nxx\n")
    expect_error(site, "securechat_ca_cert", "private key")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://chat.lan", "scheme 'ftp'"),
        ("https://", "no host name"),
        ("https://chat.lan:99999", "malformed"),
        ("https://user:pw@chat.lan", "credentials"),
        ("https://chat .lan", "spaces"),
    ],
)
def test_bad_url_in_inventory(site: Path, url: str, fragment: str) -> None:
    (site / "group_vars/all.yml").write_text(
        ALL_VARS.replace("https://chat.example.lan", f"'{url}'")
    )
    expect_error(site, str(site / "group_vars/all.yml"), "securechat_public_url", fragment)


def test_bad_yaml_names_file_and_line(site: Path) -> None:
    (site / "host_vars").mkdir()
    (site / "host_vars/app1.yml").write_text("ansible_port: 22\nbroken: [unclosed\n")
    expect_error(site, str(site / "host_vars/app1.yml"), "invalid YAML", "line")


def test_bad_yaml_in_hosts_file(site: Path) -> None:
    (site / "hosts.yml").write_text("all:\n  children: {\n")
    expect_error(site, str(site / "hosts.yml"), "invalid YAML")


@pytest.mark.parametrize(
    ("variables", "fragments"),
    [
        ("ansible_port: ssh", ("ansible_port", "port number")),
        ("ansible_port: true", ("ansible_port", "port number")),
        ("ansible_port: 70000", ("ansible_port",)),
        ("ansible_port: [22]", ("ansible_port",)),
        ("ansible_host: [a, b]", ("ansible_host", "a list")),
        ("ansible_host: 12", ("ansible_host", "a number")),
        ("ansible_host: -oProxyCommand=touch", ("ansible_host", "not a valid value")),
        ("ansible_host: ''", ("ansible_host", "non-empty")),
        ("ansible_user: {a: 1}", ("ansible_user", "a mapping")),
        ("ansible_user: a@b", ("ansible_user", "'@'")),
        ("ansible_user: -lroot", ("ansible_user",)),
        ("ansible_connection: docker", ("ansible_connection", "not supported")),
        ('ansible_ssh_common_args: "-o \'unterminated"', ("ansible_ssh_common_args",)),
        ("ansible_ssh_private_key_file: 7", ("ansible_ssh_private_key_file",)),
        ("securechat_verify_expected_ports: 443", ("securechat_verify_expected_ports", "list")),
        ("securechat_verify_expected_ports: [443, web]", ("securechat_verify_expected_ports",)),
        ("ansible_host: '{{ inventory_hostname }}.lan'", ("ansible_host", "Jinja template")),
        ("ansible_host: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162", ("vault-encrypted",)),
    ],
)
def test_ill_typed_host_variables(site: Path, variables: str, fragments: tuple[str, ...]) -> None:
    write(site, {"host_vars/app2.yml": variables + "\n"})
    expect_error(site, str(site / "host_vars/app2.yml"), *fragments)


@pytest.mark.parametrize(
    ("variables", "fragments"),
    [
        ("securechat_client_names: chat.lan", ("securechat_client_names", "list")),
        ("securechat_client_names: [chat, 1.5]", ("securechat_client_names", "a number")),
        ("securechat_client_names: [chat, [x]]", ("securechat_client_names",)),
        ("securechat_public_url: 42", ("securechat_public_url", "string")),
        ("securechat_ca_cert: [a]", ("securechat_ca_cert",)),
        ("securechat_public_url: '{{ url }}'", ("securechat_public_url", "Jinja")),
    ],
)
def test_ill_typed_site_variables(site: Path, variables: str, fragments: tuple[str, ...]) -> None:
    write(site, {"group_vars/all/zz-override.yml": variables + "\n"})
    expect_error(site, str(site / "group_vars/all/zz-override.yml"), *fragments)


@pytest.mark.parametrize(
    ("hosts", "fragments"),
    [
        ("- a list\n", ("mapping of groups", "a list")),
        ("all: 3\n", ("group all must be a mapping",)),
        ("all:\n  host: {a: }\n", ("unexpected key 'host'",)),
        ("all:\n  hosts: [a, b]\n", ("hosts of group all", "a list")),
        ("all:\n  children: [a]\n", ("children of group all",)),
        ("all:\n  hosts:\n    1: \n", ("host name 1",)),
        ("all:\n  hosts:\n    'web[1:3]': \n", ("web[1:3]", "not supported")),
        ("all:\n  hosts:\n    -evil: \n", ("-evil",)),
        ("all:\n  hosts:\n    '..': \n", ("'..'", "not supported")),
        ("all:\n  hosts:\n    'a/b': \n", ("'a/b'", "not supported")),
        ("'../../etc': {hosts: {a: }}\n", ("group name '../../etc'",)),
        ("all: {children: {'x y': }}\n", ("group name 'x y'",)),
        ("all:\n  hosts:\n    a: [1]\n", ("host a", "mapping")),
        ("all:\n  vars: [1]\n", ("vars of group all",)),
        ("all:\n  vars: {1: x}\n", ("not a string",)),
        ("a: {children: {b: }}\nb: {children: {a: }}\n", ("contains itself",)),
        ("a: &a {children: {b: *a}}\n", ("contains itself",)),
        ("all:\n  hosts: {x: }\n", ("no host in group securechat_app",)),
        ("", ("no host in group securechat_app",)),
    ],
)
def test_hostile_hosts_files(site: Path, hosts: str, fragments: tuple[str, ...]) -> None:
    (site / "hosts.yml").write_text(hosts)
    expect_error(site, str(site / "hosts.yml"), *fragments)


def test_binary_and_huge_files(site: Path) -> None:
    (site / "hosts.yml").write_bytes(b"all: \xff\xfe\n")
    expect_error(site, str(site / "hosts.yml"), "not UTF-8")
    (site / "hosts.yml").write_text("a" * (1024 * 1024 + 10))
    expect_error(site, str(site / "hosts.yml"), "larger than")


def test_yaml_tags_that_could_run_code_are_refused(site: Path) -> None:
    (site / "hosts.yml").write_text("all: !!python/object/apply:os.system ['touch /tmp/x']\n")
    expect_error(site, str(site / "hosts.yml"), "invalid YAML")


def test_vault_encrypted_files(site: Path) -> None:
    write(site, {"group_vars/all/vault.yml": "$ANSIBLE_VAULT;1.1;AES256\n6162636465\n"})
    assert target_from_inventory(site).url == "https://chat.example.lan"  # skipped
    (site / "group_vars/all.yml").write_text(ALL_VARS.replace("securechat_public_url", "x"))
    expect_error(site, "securechat_public_url is not set", "skipped vault-encrypted")
    (site / "hosts.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    expect_error(site, str(site / "hosts.yml"), "vault-encrypted")


def test_unsafe_tag_is_a_plain_value(site: Path) -> None:
    write(site, {"host_vars/app1.yml": "ansible_user: !unsafe deploy\n"})
    runner = hosts_by_name(site)["app1"].runner
    assert isinstance(runner, SshRunner)
    assert runner.destination == "deploy@10.0.0.20"


def test_missing_or_unsupported_inventories(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope", "nope", "does not exist")
    expect_error(tmp_path, str(tmp_path), "no hosts.yml")
    (tmp_path / "hosts").write_text("[securechat_app]\napp1\n")
    expect_error(tmp_path, "INI inventory")
    (tmp_path / "hosts.yml").write_text("")
    (tmp_path / "hosts.yaml").write_text("")
    expect_error(tmp_path, "both hosts.yml and hosts.yaml")


def test_target_from_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text(PEM_CERT)
    target = target_from_url(
        "https://chat.lan:8443/",
        ca,
        local=True,
        names=("alias", "alias"),
        timeout=2.0,
        min_kdf_iterations=5,
        chromium=Path("/usr/bin/chromium"),
    )
    (host,) = target.hosts
    assert (host.name, host.address) == ("chat.lan", "chat.lan")
    assert host.roles == {"front", "app"}
    assert host.expected_ports == {8443}
    assert isinstance(host.runner, LocalRunner)
    assert target.client_names == ("alias",)
    assert (target.ca_file, target.timeout, target.min_kdf_iterations) == (ca, 2.0, 5)
    assert target.chromium == Path("/usr/bin/chromium")

    plain = target_from_url("http://localhost:8000", None)
    assert plain.hosts[0].runner is None
    assert plain.hosts[0].expected_ports == {8000}
    assert target_from_url("https://chat.lan", None).hosts[0].expected_ports == {443}


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("chat.lan", "scheme ''"),
        ("ws://chat.lan", "scheme 'ws'"),
        ("https:///path", "no host"),
        ("https://chat.lan:port", "malformed"),
        ("", "empty"),
        (" https://chat.lan", "spaces"),
    ],
)
def test_target_from_url_rejects_bad_urls(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="URL") as caught:
        target_from_url(url, None)
    assert fragment in caught.value.what
    assert "--url" in caught.value.fix


def test_target_from_url_checks_the_ca(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        target_from_url("https://chat.lan", tmp_path / "missing.crt")
    with pytest.raises(ConfigError, match="is a directory"):
        target_from_url("https://chat.lan", tmp_path)
    (tmp_path / "junk.crt").write_text("hello")
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        target_from_url("https://chat.lan", tmp_path / "junk.crt")


# --- become: sudo for the commands that need root ---------------------------------------------

# The shape of inventory/example-*/hosts.yml: an `ops` SSH user that becomes root.
EXAMPLE_HOSTS = """\
all:
  children:
    securechat_front:
      hosts:
        app1:
    securechat_app:
      hosts:
        app1:
    securechat_db:
      hosts:
        db1:
  hosts:
    app1:
      ansible_host: 192.168.50.10
    db1:
      ansible_host: 192.168.50.20
  vars:
    ansible_user: ops
    ansible_become: true
"""


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return write(
        tmp_path / "inventory" / "example",
        {
            "hosts.yml": EXAMPLE_HOSTS,
            "group_vars/all.yml": "securechat_public_url: https://chat.example.lan\n",
        },
    )


def runners(path: Path) -> dict[str, SshRunner]:
    found: dict[str, SshRunner] = {}
    for name, host in hosts_by_name(path).items():
        assert isinstance(host.runner, SshRunner), host
        found[name] = host.runner
    return found


def test_the_example_inventories_become_root_with_sudo(example: Path) -> None:
    found = runners(example)
    assert found["app1"] == SshRunner("ops@192.168.50.10", become=True)
    assert found["db1"] == SshRunner("ops@192.168.50.20", become=True)
    assert found["app1"].user == "ops"


def test_become_defaults_to_false(site: Path) -> None:
    assert not any(runner.become for runner in runners(site).values())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("yes", True),
        ("on", True),
        ("'yes'", True),
        ("'Yes '", True),
        ("'TRUE'", True),
        ("'1'", True),
        ("'y'", True),
        ("'t'", True),
        ("1", True),
        ("1.0", True),
        ("!unsafe 'on'", True),
        ("false", False),
        ("no", False),
        ("'no'", False),
        ("'False'", False),
        ("'off'", False),
        ("'0'", False),
        ("'n'", False),
        ("0", False),
    ],
)
def test_become_reads_ansible_booleans(example: Path, value: str, expected: bool) -> None:
    write(example, {"host_vars/db1.yml": f"ansible_become: {value}\n"})
    found = runners(example)
    assert found["db1"].become is expected
    assert found["app1"].become is True  # the `all` value still holds for the other host


@pytest.mark.parametrize(
    "value",
    [
        "maybe",
        "'yes please'",
        "''",
        "",
        "2",
        "-1",
        "0.5",
        ".nan",
        "[true]",
        "{sudo: true}",
    ],
)
def test_become_refuses_anything_but_a_boolean(example: Path, value: str) -> None:
    write(example, {"host_vars/db1.yml": f"ansible_become: {value}\n"})
    error = expect_error(
        example, str(example / "host_vars/db1.yml"), "ansible_become must be a boolean"
    )
    assert "ansible_become: true" in error.fix


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("'{{ become }}'", "Jinja template"),
        ("!vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162", "vault-encrypted"),
    ],
)
def test_become_must_be_literal(example: Path, value: str, fragment: str) -> None:
    write(example, {"host_vars/db1.yml": f"ansible_become: {value}\n"})
    expect_error(example, str(example / "host_vars/db1.yml"), "ansible_become", fragment)


def test_become_precedence(example: Path) -> None:
    write(
        example,
        {
            # group_vars come after the `all` vars of hosts.yml, host_vars after the groups.
            "group_vars/securechat_db.yml": "ansible_become: 'no'\n",
            "group_vars/securechat_front/ssh.yml": "ansible_become: false\n",
            "host_vars/app1.yml": "ansible_become: 'yes'\n",
        },
    )
    found = runners(example)
    assert found["app1"].become is True
    assert found["db1"].become is False


def test_become_is_not_needed_as_root_or_possible_without_sudo(example: Path) -> None:
    write(example, {"host_vars/db1.yml": "ansible_user: root\n"})
    found = runners(example)
    assert found["db1"] == SshRunner("root@192.168.50.20", become=False)
    # Without ansible_user, ssh picks the user: it may not be root, so sudo stays.
    (example / "hosts.yml").write_text(EXAMPLE_HOSTS.replace("    ansible_user: ops\n", ""))
    (example / "host_vars/db1.yml").unlink()
    found = runners(example)
    assert found["db1"] == SshRunner("192.168.50.20", become=True)
    assert found["db1"].user is None


def test_become_method_sudo_is_accepted(example: Path) -> None:
    (example / "group_vars/all.yml").write_text(
        "securechat_public_url: https://chat.example.lan\nansible_become_method: sudo\n"
    )
    assert all(runner.become for runner in runners(example).values())


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("su", "'su'"),
        ("doas", "'doas'"),
        ("pbrun", "'pbrun'"),
        ("SUDO", "'SUDO'"),
        ("' sudo'", "' sudo'"),
        ("sudo -u postgres", "'sudo -u postgres'"),
    ],
)
def test_become_methods_other_than_sudo_are_refused(example: Path, value: str, shown: str) -> None:
    write(example, {"host_vars/db1.yml": f"ansible_become_method: {value}\n"})
    error = expect_error(
        example,
        str(example / "host_vars/db1.yml"),
        f"ansible_become_method {shown} of host db1 is not supported",
    )
    assert "sudo -n" in error.fix
    assert "ansible_become_method: sudo" in error.fix
    assert "/usr/sbin/nft -j list ruleset" in error.fix


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("[sudo]", "a list"),
        ("''", "non-empty"),
        ("", "non-empty"),
        ("'{{ method }}'", "Jinja template"),
        ("!vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162", "vault-encrypted"),
    ],
)
def test_ill_typed_become_methods_are_refused(example: Path, value: str, fragment: str) -> None:
    write(example, {"host_vars/db1.yml": f"ansible_become_method: {value}\n"})
    expect_error(example, str(example / "host_vars/db1.yml"), "ansible_become_method", fragment)


def test_become_method_is_read_only_when_becoming(example: Path) -> None:
    write(example, {"host_vars/db1.yml": "ansible_become: false\nansible_become_method: su\n"})
    assert runners(example)["db1"].become is False


def test_become_on_a_local_host_is_checked_but_changes_nothing(tmp_path: Path) -> None:
    site = write(
        tmp_path,
        {
            "hosts.yml": """\
                securechat_app:
                  hosts:
                    here: {ansible_connection: local, ansible_become: 'yes'}
                """,
            "group_vars/all.yml": "securechat_public_url: https://chat.lan\n",
        },
    )
    assert isinstance(hosts_by_name(site)["here"].runner, LocalRunner)
    write(site, {"host_vars/here.yml": "ansible_become: sometimes\n"})
    expect_error(site, str(site / "host_vars/here.yml"), "ansible_become", "boolean")
