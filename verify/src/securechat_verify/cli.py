"""The `securechat-verify` command: run the checks against a deployment and report.

Results go to stdout (a table, or JSON with --json); progress and errors go to stderr.
Exit codes are in `securechat_verify.exit_codes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from securechat_verify import __version__, registry
from securechat_verify.checks import Check
from securechat_verify.exit_codes import EXIT_USAGE, exit_code_for
from securechat_verify.inventory import ConfigError, target_from_inventory, target_from_url
from securechat_verify.output import render_table, to_json, write_junit
from securechat_verify.registry import CHECK_IDS, CheckUnavailable
from securechat_verify.runner import run_checks
from securechat_verify.target import DEFAULT_MIN_KDF_ITERATIONS, Target

PROG = "securechat-verify"
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")


def load_check(check_id: str) -> Check:
    """Load one check by id (tests replace this to inject fake checks)."""
    return registry.load_check(check_id)


def load_checks(check_ids: Sequence[str]) -> list[Check]:
    """The checks to run; one that cannot be loaded is run as a stand-in reporting `error`."""
    checks = []
    for check_id in check_ids:
        try:
            checks.append(load_check(check_id))
        except CheckUnavailable as exc:
            checks.append(registry.unavailable_check(check_id, exc.reason))
    return checks


def _check_ids(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> set[str] | None:
    """`--only tls,socket --only e2e` -> {"tls", "socket", "e2e"}; None when not given."""
    if not values:
        return None
    ids = {item.strip() for value in values for item in value.split(",") if item.strip()}
    unknown = sorted(ids - set(CHECK_IDS))
    if unknown:
        raise click.BadParameter(
            f"unknown check {', '.join(map(repr, unknown))}; valid checks: {', '.join(CHECK_IDS)}",
            ctx=ctx,
            param=param,
        )
    return ids


def _fail(what: str, fix: str) -> click.exceptions.Exit:
    click.echo(f"{PROG}: error: {what} — {fix}", err=True)
    return click.exceptions.Exit(EXIT_USAGE)


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[str], None]]:
    """A spinner with the latest line on a terminal (erased at the end); plain lines otherwise."""
    if console.is_terminal:
        with console.status("starting…") as status:
            yield lambda line: status.update(Text(line))
    else:
        yield lambda line: console.print(Text(line), soft_wrap=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name=PROG, message="%(prog)s %(version)s")
def main() -> None:
    """Check a Secure Chat M2M deployment: TLS, Socket.IO, Web Crypto, end-to-end, isolation.

    Exit codes: 0 all passed (warnings allowed), 1 a check failed, 2 usage or configuration
    error, 3 no failure but a check could not run.
    """


@main.command("all")
@click.option(
    "--url",
    envvar="SECURECHAT_VERIFY_URL",
    metavar="URL",
    help="The URL clients open, like https://chat.example.lan [env: SECURECHAT_VERIFY_URL].",
)
@click.option(
    "--ca",
    envvar="SECURECHAT_VERIFY_CA",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="The site CA certificate (PEM) [env: SECURECHAT_VERIFY_CA]; "
    "default: the system trust store.",
)
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="The site's Ansible inventory (inventory/<site>): URL, CA and hosts from it. "
    "--url and --ca given on the command line override the inventory's; "
    "their environment variables do not.",
)
@click.option(
    "--local",
    is_flag=True,
    help="With --url: inspect this machine (services, firewall, isolation) as the chat's host.",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="NAME",
    help="Another DNS name or address clients use; the certificate must cover it. Repeatable.",
)
@click.option(
    "--only",
    multiple=True,
    callback=_check_ids,
    metavar="ID[,ID…]",
    help=f"Run only these checks ({', '.join(CHECK_IDS)}).",
)
@click.option(
    "--skip",
    multiple=True,
    callback=_check_ids,
    metavar="ID[,ID…]",
    help="Do not run these checks.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of the table.")
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write a JUnit XML report to FILE (for CI).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True, max=600),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Timeout of each network operation and remote command.",
)
@click.option(
    "--min-kdf-iterations",
    type=click.IntRange(min=1),
    default=DEFAULT_MIN_KDF_ITERATIONS,
    show_default=True,
    help="Lowest acceptable PBKDF2 iteration count (lower it only for test deployments).",
)
@click.option(
    "--chromium",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="PATH",
    help=f"Chromium for the browser checks [default: {DEFAULT_CHROMIUM} if it exists].",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=32),
    default=4,
    show_default=True,
    help="How many checks run at once.",
)
@click.pass_context
def run_all(
    ctx: click.Context,
    *,
    url: str | None,
    ca: Path | None,
    inventory: Path | None,
    local: bool,
    names: tuple[str, ...],
    only: set[str] | None,
    skip: set[str] | None,
    as_json: bool,
    junit: Path | None,
    timeout: float,
    min_kdf_iterations: int,
    chromium: Path | None,
    concurrency: int,
) -> None:
    """Run the checks (all, or those chosen with --only/--skip) and report.

    Give either --url (checks from the outside; add --local to inspect this machine too) or
    -i with the site's Ansible inventory (hosts inspected over SSH).
    """
    selected = [c for c in CHECK_IDS if (only is None or c in only) and c not in (skip or set())]
    if not selected:
        raise click.UsageError("nothing selected: --only and --skip leave no check to run", ctx)
    if junit is not None and not junit.parent.is_dir():
        raise _fail(
            f"cannot write the JUnit report {junit}: {junit.parent} is not a directory",
            "create the directory or choose another --junit path",
        )
    if chromium is None and DEFAULT_CHROMIUM.is_file():
        chromium = DEFAULT_CHROMIUM
    target = _target(
        ctx,
        url=url,
        ca=ca,
        inventory=inventory,
        local=local,
        names=names,
        timeout=timeout,
        min_kdf_iterations=min_kdf_iterations,
        chromium=chromium,
    )

    checks = load_checks(selected)
    with _progress(Console(stderr=True)) as progress:
        results = run_checks(checks, target, concurrency=concurrency, progress=progress)

    if as_json:
        click.echo(json.dumps(to_json(results, target), indent=2, allow_nan=False))
    else:
        render_table(results, Console(), target=target)
    if junit is not None:
        try:
            write_junit(results, junit)
        except OSError as exc:
            raise _fail(
                f"cannot write the JUnit report {junit}: {exc.strerror or exc}",
                "choose another --junit path",
            ) from exc
    ctx.exit(exit_code_for(results))


def _target(
    ctx: click.Context,
    *,
    url: str | None,
    ca: Path | None,
    inventory: Path | None,
    local: bool,
    names: tuple[str, ...],
    timeout: float,
    min_kdf_iterations: int,
    chromium: Path | None,
) -> Target:
    """The target from --url or -i; usage and configuration errors exit with 2."""
    try:
        if inventory is None:
            if url is None:
                raise click.UsageError(
                    "give the chat URL with --url (or SECURECHAT_VERIFY_URL), "
                    "or the site's Ansible inventory with -i",
                    ctx,
                )
            return target_from_url(
                url,
                ca,
                local=local,
                names=names,
                timeout=timeout,
                min_kdf_iterations=min_kdf_iterations,
                chromium=chromium,
            )
        if local:
            raise click.UsageError(
                "--local goes with --url; with -i, set ansible_connection: local "
                "on the inventory host that is this machine",
                ctx,
            )
        # With -i, only explicit options override the inventory: an exported
        # SECURECHAT_VERIFY_URL for another site must not silently redirect the checks.
        from_env = click.core.ParameterSource.ENVIRONMENT
        return target_from_inventory(
            inventory,
            url=None if ctx.get_parameter_source("url") is from_env else url,
            ca=None if ctx.get_parameter_source("ca") is from_env else ca,
            names=names,
            timeout=timeout,
            min_kdf_iterations=min_kdf_iterations,
            chromium=chromium,
        )
    except ConfigError as exc:
        raise _fail(exc.what, exc.fix) from exc


@main.command("list")
def list_checks() -> None:
    """List the checks: id, severity and title, in the order they are reported."""
    for check_id in CHECK_IDS:
        try:
            check = load_check(check_id)
        except CheckUnavailable as exc:
            click.echo(f"{PROG}: {check_id}: unavailable: {exc.reason}", err=True)
            continue
        click.echo(f"{check.id:<14} {check.severity.value:<9} {check.title}")
