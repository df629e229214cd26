"""The `securechat` command: exit codes and messages, with CliRunner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from securechat.cli import EXIT_SCHEMA, EXIT_USAGE, main
from tests.conftest import server_environment


def run(args: list[str], env: dict[str, str], stdin: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, args, env=env, input=stdin, catch_exceptions=False)


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert "securechat" in result.output


def test_missing_settings_name_the_variable() -> None:
    result = run(["db", "current"], {"SECURECHAT_DATABASE_URL": "", "SECURECHAT_SECRET_KEY": ""})
    assert result.exit_code == EXIT_USAGE
    assert "SECURECHAT_DATABASE_URL is not set" in result.output


def test_db_upgrade_current_and_admin_lifecycle(database_url: str) -> None:
    env = server_environment(database_url)
    result = run(["db", "current"], env)
    assert result.exit_code == EXIT_SCHEMA
    assert "securechat db upgrade" in result.output
    result = run(["admin", "create", "too-early"], env)
    assert result.exit_code == EXIT_SCHEMA
    result = run(["serve"], env)
    assert result.exit_code == EXIT_SCHEMA
    assert "run `securechat db upgrade`" in result.output
    assert run(["db", "upgrade"], env).exit_code == 0
    result = run(["db", "current"], env)
    assert result.exit_code == 0
    assert "(head)" in result.output

    created = run(["admin", "create", "root-admin"], env)
    assert created.exit_code == 0, created.output
    password = created.output.split("store it now): ", 1)[1].strip()
    assert len(password) >= 20
    again = run(["admin", "create", "root-admin"], env)
    assert again.exit_code == 1
    assert "taken" in again.output

    given = run(["admin", "create", "second-admin", "--password-stdin"], env, stdin="short\n")
    assert given.exit_code == EXIT_USAGE
    assert "at least 12 characters" in given.output
    given = run(
        ["admin", "create", "second-admin", "--password-stdin"],
        env,
        stdin="a long enough password\n",
    )
    assert given.exit_code == 0
    assert "password" not in given.output.split("\n", 1)[1]  # never echoed back

    assert "disabled" in run(["admin", "disable", "root-admin"], env).output
    assert "enabled" in run(["admin", "enable", "root-admin"], env).output
    missing = run(["admin", "disable", "nobody-here"], env)
    assert missing.exit_code == 1


@pytest.mark.parametrize("username", ["Bad Name", "x", "../etc"])
def test_admin_create_refuses_bad_usernames(migrated_url: str, username: str) -> None:
    result = run(["admin", "create", username], server_environment(migrated_url))
    assert result.exit_code != 0
    assert "username" in result.output
