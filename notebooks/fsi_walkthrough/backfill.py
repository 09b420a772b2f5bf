"""Backfill from a notebook: ingest the files already under the watched prefix with one pipeline execution.

The same work as ``python -m generators backfill`` (``generators/ops/_backfill.py``): list the objects under a
prefix inside the watched prefix (the project's suffix filter; no folder markers, empty or archived objects), write
them to a SageMaker ManifestFile document ``[{"prefix": "s3://bucket/"}, "key", ...]`` in the project's artifact
bucket under ``input-manifests/``, and start ONE execution with ``InputManifestUrl`` (several for a listing too large
for one manifest). The processing job's instances share the listed files by a hash of their URL, each file
ingested once. The execution's ``ClientRequestToken`` derives from the listed objects and their ETags, so running
it again for the same objects -- from here or from the command line -- starts nothing new.

The notebooks run in Studio, where the repository's ``generators`` package (Python 3.11+, troposphere) is not
installed, so this module keeps its own copy of the small manifest and token builders;
``tests/test_notebooks_backfill.py`` holds both copies to the same bytes and tokens.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, WalkthroughError, error_code, error_message

LOG = logging.getLogger("fsi_walkthrough")

MANIFEST_PREFIX = "input-manifests/"
MANIFEST_PARAMETER = "InputManifestUrl"
INSTANCE_PARAMETERS = ("ProcessingInstanceCount", "TransformInstanceCount")
MANIFEST_MAX_BYTES = 64 * 1024 * 1024  # the processing script reads a manifest whole
ARCHIVED = ("GLACIER", "DEEP_ARCHIVE")  # GetObject refuses them until restored
BACKFILL_SCHEME = "backfill-v1"
ARTIFACT_BUCKET_OUTPUT = "ArtifactBucketName"


@dataclass(frozen=True)
class S3Object:
    key: str
    etag: str
    size: int


@dataclass
class BackfillResult:
    objects: int
    manifests: list[str] = field(default_factory=list)  # s3:// URLs
    executions: list[str] = field(default_factory=list)  # ARNs of the executions started (or found started)
    already_started: int = 0
    left_out: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False


def manifest_body(bucket: str, keys: Sequence[str]) -> bytes:
    return json.dumps([{"prefix": f"s3://{bucket}/"}, *keys], ensure_ascii=False).encode("utf-8")


def split(bucket: str, objects: Sequence[S3Object], max_bytes: int = MANIFEST_MAX_BYTES) -> list[list[S3Object]]:
    """``objects`` in order, in runs whose manifest is at most ``max_bytes`` long (one object at least)."""
    empty = len(manifest_body(bucket, []))
    parts: list[list[S3Object]] = []
    current: list[S3Object] = []
    size = empty
    for obj in objects:
        grow = 2 + len(json.dumps(obj.key, ensure_ascii=False).encode("utf-8"))
        if current and size + grow > max_bytes:
            parts.append(current)
            current, size = [], empty
        current.append(obj)
        size += grow
    if current:
        parts.append(current)
    return parts


def execution_token(pipeline: str, bucket: str, objects: Sequence[S3Object]) -> str:
    material = json.dumps([BACKFILL_SCHEME, pipeline, bucket, [[o.key, o.etag] for o in objects]])
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def list_objects(s3: Any, bucket: str, prefix: str, suffix: str = "") -> tuple[list[S3Object], dict[str, int]]:
    """The objects under ``prefix`` the project ingests, sorted by key, and how many were left out (by reason)."""
    objects: list[S3Object] = []
    left_out: dict[str, int] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                          OptionalObjectAttributes=["RestoreStatus"])
    for page in pages:
        for item in page.get("Contents", []):
            key, size = item["Key"], int(item.get("Size", 0))
            restored = item.get("RestoreStatus", {}).get("RestoreExpiryDate") is not None
            reason = ""
            if key.endswith("/"):
                reason = "folder markers"
            elif suffix and not key.endswith(suffix):
                reason = f"not ending with {suffix!r}"
            elif size <= 0:
                reason = "empty objects"
            elif item.get("StorageClass") in ARCHIVED and not restored:
                reason = "archived objects (restore them first)"
            if reason:
                left_out[reason] = left_out.get(reason, 0) + 1
            else:
                objects.append(S3Object(key, str(item.get("ETag", "")), size))
    objects.sort(key=lambda o: o.key.encode("utf-8"))
    return objects, left_out


def _pipeline_parameters(sm: Any, pipeline: str) -> set[str]:
    try:
        definition = sm.describe_pipeline(PipelineName=pipeline)["PipelineDefinition"]
    except ClientError as error:
        if error_code(error) in ("ResourceNotFound", "ResourceNotFoundException"):
            raise WalkthroughError(f"pipeline {pipeline} does not exist yet: wait until the project's build has "
                                   "deployed it (fsi.wait_for_pipeline), then backfill") from error
        raise
    return {str(p["Name"]) for p in json.loads(definition).get("Parameters", [])}


def _already_started(error: ClientError) -> bool:
    code, message = error_code(error), error_message(error).lower()
    return code.startswith("IdempotentParameterMismatch") or (
        code in ("ConflictException", "ValidationException") and "token" in message
        and any(word in message for word in ("already", "reused", "in use", "previously")))


def backfill(
    s3: Any,
    sm: Any,
    *,
    pipeline: str,
    manifest_bucket: str,
    bucket: str,
    prefix: str,
    watched_prefix: str,
    suffix: str = "",
    instances: int | None = None,
    dry_run: bool = False,
    max_bytes: int = MANIFEST_MAX_BYTES,
) -> BackfillResult:
    """Start the pipeline for every object under ``prefix`` (inside ``watched_prefix``) of ``bucket``."""
    if not prefix.startswith(watched_prefix):
        raise WalkthroughError(f"prefix {prefix!r} is outside the watched prefix {watched_prefix!r}: the pipeline's "
                               "execution role may read nothing else; use a prefix that starts with it")
    if instances is not None and not 1 <= instances <= 100:
        raise WalkthroughError(f"instances={instances}: a processing job takes 1 to 100 instances")
    objects, left_out = list_objects(s3, bucket, prefix, suffix)
    if not objects:
        raise WalkthroughError(f"nothing to backfill under s3://{bucket}/{prefix}"
                               + (f" (left out: {left_out})" if left_out else ""))
    names = _pipeline_parameters(sm, pipeline)
    if MANIFEST_PARAMETER not in names:
        raise WalkthroughError(f"pipeline {pipeline} takes no {MANIFEST_PARAMETER}: push the current seed code to the "
                               "project's repository first")
    instance_parameter = next((name for name in INSTANCE_PARAMETERS if name in names), None)
    result = BackfillResult(objects=len(objects), left_out=left_out, dry_run=dry_run)
    parts = split(bucket, objects, max_bytes)
    for number, part in enumerate(parts, start=1):
        token = execution_token(pipeline, bucket, part)
        key = f"{MANIFEST_PREFIX}backfill-{token}.manifest"
        url = f"s3://{manifest_bucket}/{key}"
        result.manifests.append(url)
        parameters = [{"Name": MANIFEST_PARAMETER, "Value": url}]
        if instances is not None and instance_parameter:
            parameters.append({"Name": instance_parameter, "Value": str(min(instances, len(part)))})
        LOG.info("manifest %d/%d: %s (%d objects)", number, len(parts), url, len(part))
        if dry_run:
            continue
        s3.put_object(Bucket=manifest_bucket, Key=key, Body=manifest_body(bucket, [o.key for o in part]),
                      ContentType="application/json")
        part_name = f"-{number}-of-{len(parts)}" if len(parts) > 1 else ""
        try:
            response = sm.start_pipeline_execution(
                PipelineName=pipeline,
                PipelineExecutionDisplayName=f"backfill{part_name}-{token[:12]}",
                PipelineExecutionDescription=f"Backfill of {len(part)} objects under s3://{bucket}/{prefix} (manifest "
                f"{number} of {len(parts)}: {url})"[:3072],
                PipelineParameters=parameters,
                ClientRequestToken=token,
            )
        except ClientError as error:
            if not _already_started(error):
                raise
            result.already_started += 1
            LOG.info("execution %d/%d already started (same objects)", number, len(parts))
            continue
        result.executions.append(response["PipelineExecutionArn"])
        LOG.info("started %s", response["PipelineExecutionArn"])
    return result


def backfill_project(aws: Aws, resources: Mapping[str, Any], bucket: str, watched_prefix: str, prefix: str = "",
                     suffix: str = "", instances: int | None = None, dry_run: bool = False) -> BackfillResult:
    """:func:`backfill` for a project described by :func:`fsi_walkthrough.project_resources` (its pipeline and
    artifact bucket); ``prefix`` defaults to the whole watched prefix."""
    manifest_bucket = resources.get("Outputs", {}).get(ARTIFACT_BUCKET_OUTPUT, "")
    if not resources.get("PipelineName") or not manifest_bucket:
        raise WalkthroughError("the project's stack names no pipeline or artifact bucket yet: run "
                               "fsi.project_resources(...) once the project is created")
    return backfill(aws.s3, aws.sagemaker, pipeline=resources["PipelineName"], manifest_bucket=manifest_bucket,
                    bucket=bucket, prefix=prefix or watched_prefix, watched_prefix=watched_prefix, suffix=suffix,
                    instances=instances, dry_run=dry_run)
