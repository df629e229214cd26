"""`offline-bundle.sh [build] [options]` and `offline-bundle.sh verify BUNDLE --key PUBKEY`
(or `--fingerprint FPR` alone: the bundle's own key, accepted only with that fingerprint)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from securechat_bundle.build import build, elapsed
from securechat_bundle.debian import DEFAULT_CACHE, DebianError
from securechat_bundle.images import ImagesError
from securechat_bundle.signing import DEFAULT_HOME, SigningError, signing_key
from securechat_bundle.verify import verify_bundle
from securechat_bundle.wheelhouse import TARGETS, WheelhouseError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if not arguments or (arguments[0].startswith("-") and arguments[0] not in ("-h", "--help")):
        arguments = ["build", *arguments]  # `build` is the default command
    args = _parser().parse_args(arguments)
    if args.command == "verify":
        return _verify(args)
    return _build(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="offline-bundle.sh", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    make = commands.add_parser("build", help="build and sign dist/securechat-m2m-<version>.tar.gz")
    make.add_argument("--target", default="manylinux_x86_64-cp311", choices=sorted(TARGETS))
    make.add_argument("--out", type=Path, default=Path("dist"))
    make.add_argument(
        "--gpg-home", type=Path, default=DEFAULT_HOME, help="where the signing key lives"
    )
    make.add_argument("--key-id", help="fingerprint of the signing key (default: the only one)")
    make.add_argument("--no-debs", action="store_true", help="leave out the apt repository")
    make.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="download cache")
    make.add_argument(
        "--with-docker-images",
        action="store_true",
        help="also build the Docker images and add them (needs a running Docker Engine)",
    )
    check = commands.add_parser("verify", help="check a bundle's signature and every file")
    check.add_argument("bundle", type=Path)
    check.add_argument(
        "--key",
        type=Path,
        help="the bundle signing public key (default: the bundle's own, with --fingerprint)",
    )
    check.add_argument("--fingerprint", help="refuse a signature by any other key")
    parser.set_defaults(
        command="build",
        target="manylinux_x86_64-cp311",
        out=Path("dist"),
        gpg_home=DEFAULT_HOME,
        key_id=None,
        no_debs=False,
        cache=DEFAULT_CACHE,
        with_docker_images=False,
    )
    return parser


def _build(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[3]
    if args.with_docker_images and args.no_debs:
        print(
            "offline-bundle.sh: error: --with-docker-images needs the apt repository: "
            "drop --no-debs",
            file=sys.stderr,
        )
        return EXIT_USAGE
    started = time.monotonic()
    try:
        key = signing_key(args.gpg_home, args.key_id)
        platform = TARGETS[args.target]
        result = build(
            root,
            args.out.resolve(),
            platform,
            key,
            debs=not args.no_debs,
            cache=args.cache,
            docker_images=args.with_docker_images,
        )
    except (SigningError, WheelhouseError, DebianError, ImagesError) as error:
        print(f"offline-bundle.sh: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"built {result.tarball} in {elapsed(started)}")
    for part, size in result.parts.items():
        print(f"  {part:<20} {size / 1e6:9.1f} MB")
    print(f"signing key fingerprint: {key.fingerprint} (pin it in the inventory)")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    if args.key is None and not args.fingerprint:
        print(
            "offline-bundle.sh: error: give --key PUBKEY, or --fingerprint FPR to check the "
            "bundle's own key against the pinned fingerprint",
            file=sys.stderr,
        )
        return EXIT_USAGE
    for path, what in ((args.bundle, "bundle"), (args.key, "public key")):
        if path is not None and not path.is_file():
            print(f"offline-bundle.sh: error: no {what} at {path}", file=sys.stderr)
            return EXIT_USAGE
    report = verify_bundle(args.bundle, args.key, args.fingerprint)
    for line in report.lines():
        print(line)
    if not report.ok:
        print(f"{args.bundle.name}: verification FAILED", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.bundle.name}: signature by {report.fingerprint} and {report.checked} files OK")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
