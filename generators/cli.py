"""Command line: ``python -m generators build|release ...``. The only place that prints."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .settings import (
    DEFAULT_ARTIFACTS_BUCKET,
    DEFAULT_ARTIFACTS_PREFIX,
    Settings,
    SettingsError,
    package_version,
)

DEFAULT_OUT = Path("build")


class CliError(Exception):
    """A user error: printed as one line on stderr, exit status 2, no traceback."""


def add_release_coordinates(parser: argparse.ArgumentParser, *, bucket_required: bool = False) -> None:
    parser.add_argument(
        "--version",
        default=None,
        help="semantic version written into the templates and artifact keys "
        f"(default: the package version, now {package_version()})",
    )
    bucket_help = (
        "bucket that holds the published artifacts; may contain ${AWS::AccountId} and ${AWS::Region} "
        "so that one build serves every account and region"
    )
    if bucket_required:
        parser.add_argument("--bucket", dest="artifacts_bucket", required=True, help=bucket_help)
    else:
        parser.add_argument(
            "--artifacts-bucket",
            default=DEFAULT_ARTIFACTS_BUCKET,
            help=f"{bucket_help} (default: {DEFAULT_ARTIFACTS_BUCKET})",
        )
    parser.add_argument(
        "--artifacts-prefix" if not bucket_required else "--prefix",
        dest="artifacts_prefix",
        default=DEFAULT_ARTIFACTS_PREFIX,
        help="key prefix under which versions are published: <prefix>/<product>/<version>/ "
        f"(default: {DEFAULT_ARTIFACTS_PREFIX})",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    try:
        return Settings(
            version=args.version or package_version(),
            artifacts_bucket=args.artifacts_bucket,
            artifacts_prefix=args.artifacts_prefix,
        )
    except SettingsError as error:
        raise CliError(str(error)) from None


def run_build(args: argparse.Namespace) -> int:
    from .build import build

    settings = settings_from(args)
    started = time.perf_counter()
    try:
        result = build(settings, Path(args.out))
    except (OSError, ValueError) as error:
        raise CliError(f"build failed: {error}") from None
    for path in result.files:
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    print(f"built version {settings.version} in {time.perf_counter() - started:.2f}s")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m generators",
        description="Generate, check and publish the SageMaker S3-to-Feature-Store project templates.",
    )
    root.add_argument("-v", "--verbose", action="store_true", help="log every step")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build_parser = commands.add_parser(
        "build",
        help="write the templates and the deterministic zips",
        description="Write sm-policies.yaml, sm-project-sc-portfolio.yaml, project-s3-fs-ingestion.yaml, "
        "the seed-code zip and one zip per Lambda into the output directory. Same inputs, same bytes.",
    )
    build_parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: build)")
    add_release_coordinates(build_parser)
    build_parser.set_defaults(handler=run_build)
    from . import release  # imported here: release imports this module for CliError

    release.register(commands, add_release_coordinates)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.handler(args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
