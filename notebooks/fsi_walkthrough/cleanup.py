"""Delete what the walkthrough and its project created, and nothing else, after an explicit yes.

The project's stack keeps its buckets when it is deleted (``DeletionPolicy: Retain``: they hold the
pipeline's artifacts, failed rows and the CloudTrail logs), and the SageMaker pipeline is deployed by
the project's CI/CD build rather than by the stack: both are deleted here explicitly. Buckets are emptied
of every object version and delete marker first (they are versioned).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from .aws import Aws, WalkthroughError, error_code, error_message
from .feature_group import delete_glue_table, offline_data_location
from .steps import State

LOG = logging.getLogger("fsi_walkthrough")

DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


class CleanupNotConfirmed(WalkthroughError):
    """Raised when the clean-up runs without CONFIRM_DELETE = True."""


def cleanup_plan(state: State) -> list[str]:
    """What the clean-up will delete, in order, for the user to read before confirming."""
    plan = []
    project = state.project
    if project:
        plan.append(f"SageMaker project {project['ProjectName']} ({project['ProjectId']}) and its stack "
                    f"{project.get('StackName', '?')}")
        if project.get("PipelineName"):
            plan.append(f"SageMaker pipeline {project['PipelineName']} and its execution history")
        plan += [f"bucket {bucket}, every object version in it" for bucket in project.get("Buckets", [])]
        plan += [f"log group {group}" for group in project.get("LogGroups", [])]
    plan.append(f"feature group {state.feature_group_name}, its online store, offline store data and Glue table")
    plan += [f"uploaded file {url}" for url in state.uploads]
    if state.work_prefix:
        location = f"s3://{state.data_bucket}/{state.work_prefix}"
        plan.append(f"everything under {location} (offline store files, query results)")
    if state.created.get("data_bucket"):
        plan.append(f"bucket {state.data_bucket} if nothing else is left in it (the walkthrough created it)")
    if state.created.get("eventbridge_notifications"):
        plan.append(f"EventBridge notifications of bucket {state.data_bucket} (an earlier 00-setup turned them on)")
    return plan


def require_confirmation(confirmed: bool, plan: Iterable[str]) -> None:
    """Log the plan; raise :class:`CleanupNotConfirmed` unless the user set CONFIRM_DELETE = True."""
    lines = list(plan)
    LOG.info("The clean-up deletes:\n%s", "\n".join(f"  - {line}" for line in lines))
    if confirmed is not True:
        raise CleanupNotConfirmed(
            "Nothing was deleted. Read the list above, then set CONFIRM_DELETE = True in the parameters cell "
            "and run this notebook again."
        )


def delete_objects(s3: Any, bucket: str, prefix: str = "") -> int:
    """Delete every version and delete marker under ``prefix`` (the whole bucket when empty)."""
    deleted = 0
    batch: list[dict[str, str]] = []
    paginator = s3.get_paginator("list_object_versions")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                batch.append({"Key": item["Key"], "VersionId": item["VersionId"]})
                if len(batch) == DELETE_BATCH:
                    deleted += _delete_batch(s3, bucket, batch)
                    batch = []
    except ClientError as error:
        if error_code(error) == "NoSuchBucket":
            return deleted
        raise
    if batch:
        deleted += _delete_batch(s3, bucket, batch)
    LOG.info("deleted %d object version(s) from s3://%s/%s", deleted, bucket, prefix)
    return deleted


def _delete_batch(s3: Any, bucket: str, batch: list[dict[str, str]]) -> int:
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    errors = response.get("Errors", [])
    if errors:
        first = errors[0]
        raise WalkthroughError(
            f"could not delete {len(errors)} object(s) from bucket {bucket}, e.g. {first.get('Key')}: "
            f"{first.get('Code')} {first.get('Message')}"
        )
    return len(batch)


def delete_bucket(s3: Any, bucket: str) -> bool:
    """Empty (all versions) and delete ``bucket``; False when it does not exist."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchBucket", "NotFound"):
            LOG.info("bucket %s does not exist", bucket)
            return False
        raise
    delete_objects(s3, bucket)
    s3.delete_bucket(Bucket=bucket)
    LOG.info("deleted bucket %s", bucket)
    return True


def delete_buckets(s3: Any, buckets: Iterable[str]) -> list[str]:
    return [bucket for bucket in buckets if delete_bucket(s3, bucket)]


def delete_if_empty(s3: Any, bucket: str) -> bool:
    """Delete a bucket the walkthrough created, unless something else was put in it meanwhile."""
    try:
        remaining = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    except ClientError as error:
        if error_code(error) == "NoSuchBucket":
            return False
        raise
    if remaining.get("Versions") or remaining.get("DeleteMarkers"):
        LOG.info("bucket %s still holds other objects: left in place", bucket)
        return False
    s3.delete_bucket(Bucket=bucket)
    LOG.info("deleted bucket %s", bucket)
    return True


def delete_urls(s3: Any, urls: Iterable[str]) -> int:
    """Delete the objects (every version) at these ``s3://`` URLs."""
    deleted = 0
    for url in urls:
        parsed = urlparse(url)
        key = parsed.path.lstrip("/")
        versions = s3.list_object_versions(Bucket=parsed.netloc, Prefix=key)
        batch = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
            if item["Key"] == key
        ]
        if batch:
            deleted += _delete_batch(s3, parsed.netloc, batch)
    LOG.info("deleted %d uploaded object version(s)", deleted)
    return deleted


def delete_pipeline(sm: Any, name: str) -> bool:
    """Delete the project's SageMaker pipeline (deployed by its build, not by its stack)."""
    try:
        sm.delete_pipeline(PipelineName=name)
    except ClientError as error:
        message = error_message(error).lower()
        if error_code(error) in ("ResourceNotFound", "ResourceNotFoundException") or (
            error_code(error) == "ValidationException" and ("does not exist" in message or "could not find" in message)
        ):
            LOG.info("pipeline %s does not exist", name)
            return False
        raise
    LOG.info("deleted pipeline %s", name)
    return True


def delete_log_groups(aws: Aws, names: Iterable[str]) -> list[str]:
    """Delete log groups the project left (its build's); a missing permission is reported, not fatal."""
    logs = aws.client("logs")
    deleted = []
    for name in names:
        try:
            logs.delete_log_group(logGroupName=name)
            deleted.append(name)
            LOG.info("deleted log group %s", name)
        except ClientError as error:
            code = error_code(error)
            if code == "ResourceNotFoundException":
                continue
            if code in ("AccessDeniedException", "AccessDenied"):
                LOG.warning("not allowed to delete log group %s: ask an admin to delete it", name)
                continue
            raise
    return deleted


def delete_offline_store(aws: Aws, description: dict[str, Any] | None) -> int:
    """Delete the group's offline store objects and its Glue table (DeleteFeatureGroup keeps both)."""
    if not description:
        LOG.info("no feature group: no offline store to delete")
        return 0
    bucket, prefix = offline_data_location(description)
    if not prefix.strip("/"):
        raise WalkthroughError(f"refusing to empty the whole bucket {bucket}: the offline store has no own prefix")
    deleted = delete_objects(aws.s3, bucket, prefix)
    delete_glue_table(aws, description)
    return deleted
