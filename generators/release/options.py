"""The release command's options: plain argparse, no boto3 (``--help`` and ``build`` stay light)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

DEFAULT_WAIT_TIMEOUT = 600.0  # seconds to wait for a new version to become AVAILABLE
# The product a bare --product-id/--product-name value means: the only product these options could name before
# there were several. A published interface: it does not follow the registry.
DEFAULT_PRODUCT = "s3-fs-ingestion"


def add_release_arguments(commands: argparse._SubParsersAction[Any],
                          add_release_coordinates: Callable[..., None]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "release",
        help="publish a version of every product to S3 and register it in Service Catalog",
        description="Build the templates and zips for VERSION and upload them (immutable, SHA-256 checked, tagged): "
        "each registered product's project template, seed-code zip and Lambda zips to "
        "s3://BUCKET/PREFIX/<product>/VERSION/, the platform templates (sm-policies, sm-project-sc-portfolio) and "
        "one manifest.json listing every product and file to s3://BUCKET/PREFIX/platform/VERSION/, the manifest "
        "last. Optionally register the version on each product's Service Catalog product. Re-running a published "
        "version with identical bytes changes nothing; different bytes are refused.",
        epilog="Credentials, region and endpoint come from the environment (AWS_PROFILE, AWS_REGION, "
        "AWS_ENDPOINT_URL). Permissions: the ReleasePolicy of sm-policies; see docs/release.md.",
    )
    add_release_coordinates(parser, bucket_required=True)
    parser.add_argument("--register", action="store_true",
                        help="register the version on every product's Service Catalog product, each found by its "
                        "display name (exact match); all are looked up before anything is published")
    parser.add_argument("--product-id", action="append", default=[], metavar="[SLUG=]ID",
                        help="register on this Service Catalog product (prod-...). A bare ID means the "
                        f"{DEFAULT_PRODUCT} product; SLUG=ID names the product it is for. Repeatable; registers "
                        "the products it names (all of them with --register)")
    parser.add_argument("--product-name", action="append", default=[], metavar="[SLUG=]NAME",
                        help="same, the Service Catalog product found by its exact name. A bare NAME means the "
                        f"{DEFAULT_PRODUCT} product; SLUG=NAME names the product it is for. Repeatable")
    parser.add_argument("--deprecate-previous", action="store_true",
                        help="mark every older version of each registered product DEPRECATED (none is ever deleted)")
    parser.add_argument("--s3-template-location", metavar="s3://BUCKET/PREFIX",
                        help="also publish every product's project template as a SageMaker Projects S3 template "
                        "there, and print the domain tag and bucket CORS configuration Studio needs")
    parser.add_argument("--wait-timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, metavar="SECONDS",
                        help="how long to wait for each new version to become AVAILABLE (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true",
                        help="build (in a temporary directory unless --out) and print the plan for every product "
                        "(keys, sizes, SHA-256, API calls, whether sm-policies must be redeployed first); no AWS call")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="build directory (default: build/VERSION/ for a release, so build/ keeps what you built; "
                        "a temporary directory, removed afterwards, for --dry-run)")
    return parser
