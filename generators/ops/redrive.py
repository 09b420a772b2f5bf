"""``python -m generators redrive``: hand a project's dead letters back to its start function (plain argparse here; the
work, with boto3, is in :mod:`._redrive`)."""

from __future__ import annotations

import argparse
from typing import Any


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not a positive number")
    return number


def add_arguments(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "redrive",
        help="invoke the project's start function again with each event of its dead-letter queue",
        description="Receive the messages of the project's dead-letter queue (sagemaker-<project>-ingestion-dlq: "
        "events the upload rule could not deliver and events the start function failed on) and invoke the start "
        "function (sagemaker-<project>-start-ingest) synchronously with each. A message is deleted when the function "
        "started the pipeline, found the execution already started, or decided the event is not for it; otherwise "
        "it is kept, with the reason. Safe to repeat: the function derives the execution's ClientRequestToken from "
        "the upload, so an event cannot start a second execution.",
        epilog="Credentials, region and endpoint come from the environment (AWS_PROFILE, AWS_REGION, "
        "AWS_ENDPOINT_URL). Exit status 1 when messages were kept. More: docs/operations.md.",
    )
    parser.add_argument("--project", required=True, metavar="NAME", help="the SageMaker project's name")
    parser.add_argument("--dry-run", action="store_true",
                        help="receive the messages and show what would be done; invoke nothing, delete nothing (the "
                        "messages are made visible again at once)")
    parser.add_argument("--max", type=positive, metavar="N", dest="max_messages",
                        help="handle at most N messages (default: all)")
    parser.add_argument("--region", help="the project's Region (default: the configured one)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ._redrive import run as redrive  # boto3 only here

    return redrive(args)
