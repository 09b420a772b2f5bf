"""Command line: ``python -m generators build|parameters|release ...``. The only place that prints.

The light commands (``build``, ``parameters``, ``--help``, ``--version``) import neither boto3 nor botocore:
the release command's options come from :mod:`generators.release.options` (plain argparse), and its
implementation (:mod:`generators.release.command`, boto3) is imported only when ``release`` runs.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
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
# Commands that allocate, write and end; the others call AWS and may wait for minutes, with the garbage
# collector on (``python -m generators`` starts with it off, :mod:`generators.__main__`).
ONE_SHOT_COMMANDS = frozenset({"build", "parameters"})


def ops_commands() -> list[str]:
    """Operations on deployed projects: every module ``generators/ops/<name>.py`` (no leading underscore)
    defines ``add_arguments(commands)`` with plain argparse and imports boto3 only inside the function that
    runs its command, so ``--help`` and ``build`` stay light."""
    folder = Path(__file__).with_name("ops")
    return sorted(path.stem for path in folder.glob("*.py") if not path.stem.startswith("_"))


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
    if args.lint:
        templates = sorted(result.templates.values())
        status = lint_templates(templates)
        if status:
            print(f"error: cfn-lint found problems in the templates of {result.out_dir} (exit status {status})",
                  file=sys.stderr)
            return 1
        print(f"cfn-lint: {len(templates)} templates in {result.out_dir}: no error, warning or I3042 finding")
    return 0


LINT_OPTIONS = ("--include-checks", "I3042")  # I3042: an ARN with a hard-coded partition in a template


def lint_templates(paths: list[Path]) -> int:
    """Run the installed cfn-lint (the ``lint`` extra) on exactly these templates; its exit status (0: clean).
    Its findings go to stdout as cfn-lint prints them."""
    import shutil
    import subprocess

    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    executable = shutil.which("cfn-lint", path=search)
    if executable is None:
        raise CliError("--lint needs cfn-lint: pip install -e '.[lint]' (tox -e build installs it)")
    completed = subprocess.run([executable, *LINT_OPTIONS, "--", *map(str, paths)], check=False)  # noqa: S603
    return completed.returncode


def run_parameters(args: argparse.Namespace) -> int:
    from .products import get, products

    chosen = [get(args.product)] if args.product else list(products())
    for product in chosen:
        table = product.build(Settings()).table
        print(f"**`{product.template_name}`** (Studio shows them grouped and labelled)\n")
        print("\n".join(table.readme_rows()))
        print()
    return 0


def run_release(args: argparse.Namespace) -> int:
    from .release.command import run  # boto3 only here

    return run(args)


def parser() -> argparse.ArgumentParser:
    from .release.options import add_release_arguments

    root = argparse.ArgumentParser(
        prog="python -m generators",
        description="Generate, check and publish the SageMaker reusable components (project templates, the "
        "policies and the Service Catalog portfolio).",
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                      help="print the package version and exit")
    root.add_argument("-v", "--verbose", action="store_true", help="log every step")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build_parser = commands.add_parser(
        "build",
        help="write the templates and the deterministic zips",
        description="Write sm-policies.yaml, sm-project-sc-portfolio.yaml, one project-<product>.yaml per "
        "registered product, each product's seed-code zip and one zip per Lambda into the output directory. "
        "Same inputs, same bytes.",
    )
    build_parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: build)")
    build_parser.add_argument("--lint", action="store_true",
                              help="then check every template written with cfn-lint, rule I3042 included (needs the "
                              "lint extra; what tox -e build runs, so `tox -e build -- --out DIR` lints DIR)")
    add_release_coordinates(build_parser)
    build_parser.set_defaults(handler=run_build)
    parameters_parser = commands.add_parser(
        "parameters",
        help="print each product's parameter table (Markdown, as in the README)",
        description="Print the parameter table of every registered product's project template, or of one.",
    )
    parameters_parser.add_argument("--product", default="", help="one product's slug, e.g. s3-fs-ingestion")
    parameters_parser.set_defaults(handler=run_parameters)
    release_parser = add_release_arguments(commands, add_release_coordinates)
    release_parser.set_defaults(handler=run_release)
    for name in ops_commands():
        importlib.import_module(f"{__package__}.ops.{name}").add_arguments(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command not in ONE_SHOT_COMMANDS:
        gc.enable()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return int(args.handler(args))
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
