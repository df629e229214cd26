"""`securechat`: serve, db upgrade|current, admin create|disable|enable; a shim over the library."""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click

from securechat import __version__
from securechat.settings import Settings, SettingsError

T = TypeVar("T")

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
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False),
    envvar="SECURECHAT_SSL_CERTFILE",
    help="Serve HTTPS directly with this certificate chain (without a TLS front).",
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(exists=True, dir_okay=False),
    envvar="SECURECHAT_SSL_KEYFILE",
    help="The private key of --ssl-certfile.",
)
def serve(
    host: str,
    port: int,
    forwarded_allow_ips: str,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
) -> None:
    """Serve the HTTP API, Socket.IO and the static client."""
    import uvicorn

    from securechat.db.migrate import SchemaOutdatedError
    from securechat.main import create_app
    from securechat.security.logs import uvicorn_log_config

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
    if (ssl_certfile is None) != (ssl_keyfile is None):
        fail("--ssl-certfile and --ssl-keyfile go together", EXIT_USAGE)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    scheme = "https" if ssl_certfile else "http"
    click.echo(f"securechat {__version__}: serving on {scheme}://{shown}:{port}", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=uvicorn_level,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        # Compression costs memory and CPU per connection; envelopes are ciphertext anyway.
        ws_per_message_deflate=False,
        # No WebSocket-level pings: Engine.IO pings every socket already (and drops the silent
        # ones); a second ping per socket doubled an idle server's work (docs/benchmarks.md, S1).
        ws_ping_interval=None,
        server_header=False,
        log_config=uvicorn_log_config(),
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the schema to REVISION (default: the newest)."""
    from securechat.admin import upgrade_schema

    before, after = upgrade_schema(load_settings(), revision)
    if before == after:
        click.echo(f"schema already at {after}")
    else:
        click.echo(f"schema upgraded from {before or 'empty'} to {after}")


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


@main.group()
def audit() -> None:
    """The tamper-evident audit trail."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the HMAC chain; name the first bad entry and exit 1 if any entry was tampered with."""
    from securechat.admin import verify_audit

    verdict = _with_schema(verify_audit)
    if verdict.ok:
        click.echo(f"audit trail intact: {verdict.checked} entries")
        return
    fail(f"audit trail broken at entry {verdict.bad_id}: {verdict.reason}", EXIT_FAILURE)


@audit.command("export")
@click.option("--json", "as_json", is_flag=True, required=True, help="Print the entries as JSON.")
def audit_export(as_json: bool) -> None:
    """Print every audit entry, oldest first, as a JSON array."""
    import json

    from securechat.admin import export_audit

    entries = _with_schema(export_audit)
    click.echo(json.dumps(entries, indent=2, ensure_ascii=True))


@main.group()
def files() -> None:
    """Encrypted file blobs."""


@files.command("gc")
def files_gc() -> None:
    """Delete files that no message shares, once past SECURECHAT_FILE_GRACE_SECONDS."""
    from securechat.admin import collect_files

    removed = _with_schema(collect_files)
    click.echo(f"{removed} unshared file(s) deleted")


def _with_schema(work: Callable[[Settings], T]) -> T:
    from securechat.db.migrate import SchemaOutdatedError

    settings = load_settings()
    try:
        return work(settings)
    except SchemaOutdatedError as error:
        fail(str(error), EXIT_SCHEMA)


if __name__ == "__main__":
    main()
