"""Backfill: one pipeline execution (per manifest) for every object already under a prefix of the watched bucket.

The prefix must lie inside the project's watched prefix: the pipeline's execution role is granted read access to
the watched prefix only (README, *Deploying as a platform admin*), and what a project ingests stays what lands
under its prefix. Objects are chosen as the start Lambda chooses uploads: the project's suffix filter, no folder
markers (keys ending in ``/``), no empty objects; archived objects (S3 Glacier Flexible Retrieval, Deep Archive)
are left out unless restored, since GetObject refuses them otherwise (S3 User Guide, "Working with archived
objects").
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..cli import CliError
from ..release.aws import describe, error_code
from ._common import Clients, Printer, StartFunction, aws_error, printable, start_function
from ._manifest import MANIFEST_MAX_BYTES, S3Object, execution_token, manifest_body, manifest_key, split

MANIFEST_PARAMETER = "InputManifestUrl"
# The instance count parameter of each product's pipeline: the first one the deployed pipeline defines is set.
INSTANCE_PARAMETERS = ("ProcessingInstanceCount", "TransformInstanceCount")
ARCHIVED = frozenset({"GLACIER", "DEEP_ARCHIVE"})
DISPLAY_NAME_MAX = 82
_TOKEN_ALREADY_USED = re.compile(
    r"idempoten|token\b[^.]*\b(already|reused|in use)\b|\b(already|previously)\b[^.]*\btoken", re.IGNORECASE
)


@dataclass
class Listing:
    objects: list[S3Object]
    skipped: Counter[str]

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)


def list_objects(s3: Any, bucket: str, prefix: str, suffix: str) -> Listing:
    """Every object under ``prefix`` the project would ingest, sorted by key (ListObjectsV2 returns UTF-8 binary
    order already; sorting keeps the manifest independent of paging)."""
    objects: list[S3Object] = []
    skipped: Counter[str] = Counter()
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, OptionalObjectAttributes=["RestoreStatus"]
    )
    for page in pages:
        for item in page.get("Contents", []):
            key, size = item["Key"], int(item.get("Size", 0))
            restored = item.get("RestoreStatus", {}).get("RestoreExpiryDate") is not None
            if key.endswith("/"):
                skipped["folder markers"] += 1
            elif suffix and not key.endswith(suffix):
                skipped[f"not ending with {suffix!r}"] += 1
            elif size <= 0:
                skipped["empty objects"] += 1
            elif item.get("StorageClass") in ARCHIVED and not restored:
                skipped["archived objects (restore them first)"] += 1
            else:
                objects.append(S3Object(key, str(item.get("ETag", "")), size))
    objects.sort(key=lambda o: o.key.encode("utf-8"))
    return Listing(objects, skipped)


@dataclass(frozen=True)
class Execution:
    """One manifest and the pipeline execution that reads it."""

    number: int
    total: int
    objects: tuple[S3Object, ...]
    bucket: str  # the data bucket the manifest's prefix names
    token: str
    manifest_bucket: str
    manifest_key: str
    instances: int | None  # None: the pipeline's default

    @property
    def body(self) -> bytes:
        return manifest_body(self.bucket, [o.key for o in self.objects])

    @property
    def manifest_url(self) -> str:
        return f"s3://{self.manifest_bucket}/{self.manifest_key}"

    def request(self, pipeline: str, prefix: str, instance_parameter: str | None) -> dict[str, Any]:
        """The StartPipelineExecution arguments: a function of the objects and the project only."""
        parameters = [{"Name": MANIFEST_PARAMETER, "Value": self.manifest_url}]
        if self.instances is not None and instance_parameter:
            parameters.append({"Name": instance_parameter, "Value": str(self.instances)})
        part = f"-{self.number}-of-{self.total}" if self.total > 1 else ""
        return {
            "PipelineName": pipeline,
            "PipelineExecutionDisplayName": f"backfill{part}-{self.token[:12]}"[:DISPLAY_NAME_MAX],
            "PipelineExecutionDescription": printable(
                f"Backfill of {len(self.objects)} objects under s3://{self.bucket}/{prefix} "
                f"(manifest {self.number} of {self.total}: {self.manifest_url})"
            ),
            "PipelineParameters": parameters,
            "ClientRequestToken": self.token,
        }


def plan(function: StartFunction, objects: Sequence[S3Object], instances: int | None,
         max_bytes: int = MANIFEST_MAX_BYTES) -> list[Execution]:
    parts = split(function.bucket, objects, max_bytes)
    executions = []
    for number, part in enumerate(parts, start=1):
        token = execution_token(function.pipeline, function.bucket, part)
        executions.append(Execution(
            number=number, total=len(parts), objects=tuple(part), bucket=function.bucket, token=token,
            manifest_bucket=function.manifest_bucket, manifest_key=manifest_key(function.manifest_prefix, token),
            instances=None if instances is None else min(instances, len(part)),
        ))
    return executions


def pipeline_parameters(sm: Any, pipeline: str) -> set[str]:
    """The parameter names of the deployed pipeline (DescribePipeline: its definition)."""
    try:
        definition = sm.describe_pipeline(PipelineName=pipeline)["PipelineDefinition"]
    except ClientError as error:
        if error_code(error) in ("ResourceNotFound", "ResourceNotFoundException"):
            raise CliError(f"pipeline {pipeline} does not exist yet: the project's seed-code build deploys it "
                           "(push to the project's repository), then backfill") from None
        raise aws_error(f"reading pipeline {pipeline}", error) from None
    except BotoCoreError as error:
        raise aws_error(f"reading pipeline {pipeline}", error) from None
    try:
        return {str(p["Name"]) for p in json.loads(definition).get("Parameters", [])}
    except (ValueError, TypeError, KeyError, AttributeError):
        raise CliError(f"pipeline {pipeline}: cannot read its definition's parameters") from None


def instance_parameter(names: set[str], pipeline: str, instances: int | None) -> str | None:
    if MANIFEST_PARAMETER not in names:
        raise CliError(f"pipeline {pipeline} takes no {MANIFEST_PARAMETER}: it was deployed by seed code older than "
                       "input manifests; push the current seed code to the project's repository, then backfill")
    found = next((name for name in INSTANCE_PARAMETERS if name in names), None)
    if instances is not None and found is None:
        raise CliError(f"pipeline {pipeline} has none of the parameters {', '.join(INSTANCE_PARAMETERS)}: "
                       "leave out --instances")
    return found


def _already_started(error: ClientError) -> bool:
    details = error.response.get("Error", {})
    code, message = str(details.get("Code", "")), str(details.get("Message", ""))
    if code.startswith("IdempotentParameterMismatch"):
        return True
    return code in ("ConflictException", "ValidationException") and bool(_TOKEN_ALREADY_USED.search(message))


def start(sm: Any, s3: Any, function: StartFunction, prefix: str, executions: Sequence[Execution],
          parameter: str | None, out: Printer) -> Counter[str]:
    """Write each manifest, then start its execution; a manifest's key and bytes derive from its objects, so a
    re-run rewrites the same object and sends the same token."""
    outcome: Counter[str] = Counter()
    for execution in executions:
        try:
            s3.put_object(Bucket=execution.manifest_bucket, Key=execution.manifest_key, Body=execution.body,
                          ContentType="application/json")
        except (ClientError, BotoCoreError) as error:
            raise aws_error(f"writing manifest {execution.manifest_url}", error) from None
        request = execution.request(function.pipeline, prefix, parameter)
        try:
            arn = sm.start_pipeline_execution(**request)["PipelineExecutionArn"]
        except ClientError as error:
            if _already_started(error):
                outcome["already started"] += 1
                out(f"already started: execution {execution.number}/{execution.total} "
                    f"({len(execution.objects):,} objects, token {execution.token[:12]}...)")
                continue
            hint = ""
            if error_code(error) == "ResourceLimitExceeded":
                hint = "; re-run the same command later: the executions already started are not started again"
            raise CliError(f"starting execution {execution.number}/{execution.total} of {function.pipeline}: "
                           f"{describe(error)}{hint}") from None
        except BotoCoreError as error:
            raise aws_error(f"starting execution {execution.number}/{execution.total}", error) from None
        outcome["started"] += 1
        out(f"started {arn} ({len(execution.objects):,} objects)")
    return outcome


def _describe_plan(function: StartFunction, prefix: str, listing: Listing, executions: Sequence[Execution],
                   requested: int | None, out: Printer) -> None:
    where = f"s3://{function.bucket}/{prefix}" + (f" (suffix {function.suffix!r})" if function.suffix else "")
    out(f"backfill {where}: {len(listing.objects):,} objects, {listing.size:,} bytes -> pipeline {function.pipeline}")
    for reason, count in sorted(listing.skipped.items()):
        out(f"  left out: {count:,} {reason}")
    for execution in executions:
        instances = "the pipeline's default instances" if execution.instances is None else (
            f"{execution.instances} instance(s)")
        if requested is not None and execution.instances is not None and execution.instances < requested:
            instances += f", not {requested}: more instances than files would sit idle"
        out(f"manifest {execution.number}/{execution.total}: {execution.manifest_url} "
            f"({len(execution.objects):,} objects, {instances})")


def run(args: argparse.Namespace, clients: Clients | None = None, out: Printer = print,
        max_bytes: int = MANIFEST_MAX_BYTES) -> int:
    clients = clients or Clients(args.region)
    function = start_function(clients.client("lambda"), args.project, args.region)
    prefix: str = args.prefix
    if not prefix.startswith(function.prefix):
        raise CliError(f"--prefix {prefix!r} is outside the project's watched prefix {function.prefix!r} of bucket "
                       f"{function.bucket}: give a key prefix that starts with it (the pipeline may read nothing else)")
    if not function.manifest_bucket:
        raise CliError(f"function {function.name} sets no MANIFEST_BUCKET: the project predates input manifests; "
                       "upgrade it (python -m generators projects upgrade), then backfill")
    try:
        listing = list_objects(clients.client("s3"), function.bucket, prefix, function.suffix)
    except (ClientError, BotoCoreError) as error:
        raise aws_error(f"listing s3://{function.bucket}/{prefix}", error) from None
    if not listing.objects:
        left_out = ", ".join(f"{count} {reason}" for reason, count in sorted(listing.skipped.items()))
        raise CliError(f"nothing to backfill: no object to ingest under s3://{function.bucket}/{prefix}"
                       + (f" ({left_out} left out)" if left_out else ""))
    executions = plan(function, listing.objects, args.instances, max_bytes)
    _describe_plan(function, prefix, listing, executions, args.instances, out)
    sm = clients.client("sagemaker")
    parameter = instance_parameter(pipeline_parameters(sm, function.pipeline), function.pipeline, args.instances)
    if args.dry_run:
        out(f"dry run: would write {len(executions)} manifest(s) and start {len(executions)} execution(s); "
            "nothing written, nothing started")
        return 0
    outcome = start(sm, clients.client("s3"), function, prefix, executions, parameter, out)
    out(f"backfill: {len(listing.objects):,} objects in {len(executions)} execution(s): "
        f"{outcome['started']} started, {outcome['already started']} already started")
    return 0
