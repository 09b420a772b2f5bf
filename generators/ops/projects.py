"""``python -m generators projects list|upgrade``: the Region's projects of our products, their versions, and moving
them to a newer published version (plain argparse here; the work, with boto3, is in :mod:`._projects`)."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_WAIT_TIMEOUT = 3600.0  # seconds to wait for one project's update (its stack update)


def add_arguments(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "projects",
        help="list the Region's projects created from our products, and upgrade them to a newer version",
        description="Projects created from the Service Catalog products of this repository (SageMaker ListProjects + "
        "DescribeProject), with their product, version and the newest published version of that product.",
        epilog="Credentials, region and endpoint come from the environment (AWS_PROFILE, AWS_REGION, "
        "AWS_ENDPOINT_URL). Upgrading, and when sm-policies must be redeployed first: docs/operations.md.",
    )
    actions = parser.add_subparsers(dest="projects_action", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list",
        help="every project of our products, its version and the newest one (behind ones marked)",
        description="List the Region's SageMaker projects created from our products: product, version (the "
        "provisioning artifact's name), the newest published version of the product (active, not deprecated, "
        "no pre-release), and '*' for projects behind it.",
    )
    listing.add_argument("--portfolio-id", metavar="ID", help="only projects of the products in this portfolio")
    listing.add_argument("--region", help="the Region (default: the configured one)")
    listing.set_defaults(handler=run_list)

    upgrade = actions.add_parser(
        "upgrade",
        help="move projects to a newer published version (SageMaker UpdateProject)",
        description="Update a project (or every project of our products that is behind) to a newer version of its "
        "product with SageMaker UpdateProject, carrying every current parameter value over explicitly (a parameter "
        "left out of an update takes the template's default, not its current value); parameters new in the target "
        "version take their default. Refuses older versions and projects that are being created, updated or "
        "deleted. Waits for each update and reports UpdateCompleted or UpdateFailed with the reason.",
    )
    which = upgrade.add_mutually_exclusive_group(required=True)
    which.add_argument("--project", metavar="NAME", help="the project to upgrade")
    which.add_argument("--all", action="store_true", help="every project of our products that is behind")
    upgrade.add_argument("--to-version", metavar="V",
                         help="the version to move to (default: the newest published version of the project's product)")
    upgrade.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                         help="set a parameter instead of carrying its value over (e.g. one the target version adds "
                         "without a default); repeatable")
    upgrade.add_argument("--portfolio-id", metavar="ID", help="with --all: only projects of this portfolio's products")
    upgrade.add_argument("--dry-run", action="store_true", help="print each project's plan and request; update nothing")
    upgrade.add_argument("--wait-timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, metavar="SECONDS",
                         help="how long to wait for each update (default: %(default)s)")
    upgrade.add_argument("--region", help="the Region (default: the configured one)")
    upgrade.set_defaults(handler=run_upgrade)


def run_list(args: argparse.Namespace) -> int:
    from ._projects import run_list as list_projects  # boto3 only here

    return list_projects(args)


def run_upgrade(args: argparse.Namespace) -> int:
    from ._projects import run_upgrade as upgrade  # boto3 only here

    return upgrade(args)
