"""`securechat`: serve, db upgrade|current, admin create|disable|enable; a shim over the library."""

from __future__ import annotations

import logging
import secrets
import sys
from typing import NoReturn

import click

from securechat import __version__
from securechat.settings import Settings, SettingsError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2  # bad configuration or arguments
EXIT_SCHEMA = 3  # the database schema is not at head

GENERATED_PASSWORD_BYTES = 18  # 24 characters of base64url


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"securechat: error: {message}", err=True)
    sys.exit(code)


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        fail(str(error), EXIT_USAGE)


@click.group()
@click.version_option(__version__, prog_name="securechat")
def main() -> None:
    """Secure Chat M2M server. Configuration comes from SECURECHAT_* environment variables."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="SECURECHAT_HOST")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    envvar="SECURECHAT_PORT",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    envvar="SECURECHAT_FORWARDED_ALLOW_IPS",
    help="Proxies whose X-Forwarded-For/Proto headers are trusted (the nginx front).",
)
def serve(host: str, port: int, forwarded_allow_ips: str) -> None:
    """Serve the HTTP API, Socket.IO and the static client."""
    import uvicorn

    from securechat.db.migrate import SchemaOutdatedError
    from securechat.main import create_app

    settings = load_settings()
    try:
        app = create_app(settings)
    except SchemaOutdatedError as error:
        fail(str(error), EXIT_SCHEMA)
    # uvicorn's DEBUG level logs WebSocket frames, which would put ciphertext in the log:
    # debug applies to our own loggers only.
    logging.basicConfig(format="%(levelname)s: %(name)s: %(message)s")
    logging.getLogger("securechat").setLevel(settings.log_level.upper())
    uvicorn_level = "info" if settings.log_level == "debug" else settings.log_level
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    click.echo(f"securechat {__version__}: serving on http://{shown}:{port}", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=uvicorn_level,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        # Compression costs memory and CPU per connection; envelopes are ciphertext anyway.
        ws_per_message_deflate=False,
        server_header=False,
    )


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the schema to REVISION (default: the newest)."""
    from securechat.db.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url, revision)
    click.echo(f"schema upgraded to {revision}")


@db.command("current")
def db_current() -> None:
    """Print the schema revision of the database and whether it is current."""
    from securechat.db.engine import make_engine
    from securechat.db.migrate import current_revision, head_revision

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    state = (
        "(head)" if current == head else f"(outdated: head is {head}; run `securechat db upgrade`)"
    )
    click.echo(f"{current or 'empty'} {state}")
    if current != head:
        sys.exit(EXIT_SCHEMA)


@main.group()
def admin() -> None:
    """Administrator accounts."""


@admin.command("create")
@click.argument("username")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input instead of generating one.",
)
def admin_create(username: str, password_stdin: bool) -> None:
    """Create an admin account USERNAME; prints a generated password once unless one is given."""
    from securechat.admin import create_admin
    from securechat.db.migrate import SchemaOutdatedError
    from securechat.services.errors import ServiceError

    settings = load_settings()
    generated = not password_stdin
    password = (
        secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        if generated
        else sys.stdin.readline().rstrip("\n")
    )
    try:
        user_id = create_admin(settings, username, password)
    except ServiceError as error:
        fail(error.message, EXIT_FAILURE)
    except SchemaOutdatedError as error:
        fail(str(error), EXIT_SCHEMA)
    except ValueError as error:
        fail(str(error), EXIT_USAGE)
    click.echo(f"admin {username} created (id {user_id})")
    if generated:
        click.echo(f"password (shown once, store it now): {password}")


@admin.command("disable")
@click.argument("username")
def admin_disable(username: str) -> None:
    """Disable an account and end its sessions (open sockets close within seconds)."""
    _set_disabled(username, disabled=True)


@admin.command("enable")
@click.argument("username")
def admin_enable(username: str) -> None:
    """Enable a disabled account."""
    _set_disabled(username, disabled=False)


def _set_disabled(username: str, *, disabled: bool) -> None:
    from securechat.admin import set_disabled
    from securechat.db.migrate import SchemaOutdatedError
    from securechat.services.errors import ServiceError

    try:
        ended = set_disabled(load_settings(), username, disabled=disabled)
    except ServiceError as error:
        fail(f"{error.message}: {username}", EXIT_FAILURE)
    except SchemaOutdatedError as error:
        fail(str(error), EXIT_SCHEMA)
    state = f"disabled, {ended} session(s) ended" if disabled else "enabled"
    click.echo(f"{username} {state}")


if __name__ == "__main__":
    main()
