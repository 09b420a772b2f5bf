"""``python -m generators backfill``: ingest the files already under a project's watched prefix (plain argparse here;
the work, with boto3, is in :mod:`._backfill`)."""

from __future__ import annotations

import argparse
from typing import Any

MAX_INSTANCES = 100  # CreateProcessingJob ProcessingResources.ClusterConfig.InstanceCount: 1-100


def instance_count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= count <= MAX_INSTANCES:
        raise argparse.ArgumentTypeError(f"{count} is not between 1 and {MAX_INSTANCES}")
    return count


def add_arguments(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "backfill",
        help="start the project's pipeline once for every file already under a prefix",
        description="List the objects under PREFIX of the project's watched bucket (with the project's suffix filter; "
        "folder markers, empty and archived objects left out), write them to an input manifest in the project's "
        "artifact bucket (input-manifests/) and start ONE pipeline execution with InputManifestUrl: the processing "
        "job's instances share the files by a hash of their URL, each file ingested exactly once. A very large "
        "listing is split into several manifests, one execution each. Re-running it for the same objects starts "
        "nothing new (the execution's ClientRequestToken derives from the listed objects and their ETags).",
        epilog="Credentials, region and endpoint come from the environment (AWS_PROFILE, AWS_REGION, "
        "AWS_ENDPOINT_URL). Permissions and examples: docs/operations.md.",
    )
    parser.add_argument("--project", required=True, metavar="NAME", help="the SageMaker project's name")
    parser.add_argument("--prefix", required=True, metavar="KEYPREFIX",
                        help="key prefix to backfill, inside the project's watched prefix (e.g. incoming/2024/; the "
                        "watched prefix itself backfills everything)")
    parser.add_argument("--instances", type=instance_count, metavar="N",
                        help="processing instances of the execution (default: the project's ProcessingInstanceCount); "
                        "never more than the manifest has files")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the objects and print the plan; write no manifest, start no execution")
    parser.add_argument("--region", help="the project's Region (default: the configured one)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ._backfill import run as backfill  # boto3 only here

    return backfill(args)
