"""Delete what the walkthrough and its project created, and nothing else, after an explicit yes.

The project's stack keeps its buckets when it is deleted (``DeletionPolicy: Retain``: they hold the
pipeline's artifacts, failed rows and the CloudTrail logs), and the SageMaker pipeline is deployed by
the project's CI/CD build rather than by the stack: both are deleted here explicitly. Buckets are emptied
of every object version and delete marker first (they are versioned).

A batch-inference project (``02-batch-inference``) adds what no stack holds: the models its pipeline
created (one per execution, found through the executions' steps, so they are deleted before the pipeline and
its execution history), and the model packages and the model package group the walkthrough registered.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from .aws import Aws, WalkthroughError, error_code, error_message
from .feature_group import delete_glue_table, offline_data_location
from .steps import State

if TYPE_CHECKING:
    from .batch_inference import BatchState

LOG = logging.getLogger("fsi_walkthrough")

DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


class CleanupNotConfirmed(WalkthroughError):
    """Raised when the clean-up runs without CONFIRM_DELETE = True."""


def cleanup_plan(state: State, batch: BatchState | None = None) -> list[str]:
    """What the clean-up will delete, in order, for the user to read before confirming."""
    plan = batch_plan(batch) if batch is not None else []
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


def batch_plan(batch: BatchState) -> list[str]:
    """The batch-inference part of :func:`cleanup_plan` (nothing when 02-batch-inference recorded nothing)."""
    plan = []
    project = batch.project
    if project:
        plan.append(f"SageMaker project {project['ProjectName']} ({project['ProjectId']}) and its stack "
                    f"{project.get('StackName', '?')}")
        if project.get("PipelineName"):
            plan.append(f"the models SageMaker pipeline {project['PipelineName']} created (one per execution), "
                        "then the pipeline and its execution history")
        plan += [f"bucket {bucket}, every object version in it (input manifests, predictions)"
                 for bucket in project.get("Buckets", [])]
        plan += [f"log group {group}" for group in project.get("LogGroups", [])]
    plan += [f"model package {arn}" for arn in batch.model_packages]
    if batch.created.get("model_package_group"):
        plan.append(f"model package group {batch.model_package_group} if it holds no other package (the "
                    "walkthrough created it)")
    plan += [f"model artifact {url}" for url in batch.model_artifacts]
    plan += [f"file uploaded for scoring {url}" for url in batch.uploads]
    if batch.created.get("model_bucket"):
        plan.append(f"bucket {batch.model_bucket} if nothing else is left in it (the walkthrough created it)")
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


# --- models and the model registry (batch inference) ----------------------------------------------------


def _missing(error: BaseException) -> bool:
    """A SageMaker "no such resource" answer: ValidationException (with "does not exist", "not found" or "could
    not find") or ResourceNotFound, as DeleteModel, DeleteModelPackage(Group) and ListPipelineExecutions answer."""
    message = error_message(error).lower()
    return error_code(error) in ("ResourceNotFound", "ResourceNotFoundException") or (
        error_code(error) == "ValidationException"
        and any(text in message for text in ("does not exist", "not found", "could not find"))
    )


def pipeline_models(sm: Any, pipeline: str) -> list[str]:
    """The names of the models the pipeline's executions created (CreateModel steps), oldest execution first.

    ListPipelineExecutionSteps names each model step's model by ARN (``Metadata.Model.Arn``). SageMaker may
    write resource names in ARNs in lowercase (boto/boto3#4606 shows it for tuning jobs), and DeleteModel
    takes the name: the exact names come from ListModels, whose summaries hold both, matched by ARN without
    regard to case and limited to models created since the first execution started.
    """
    arns: set[str] = set()
    first: dt.datetime | None = None
    try:
        for page in sm.get_paginator("list_pipeline_executions").paginate(PipelineName=pipeline):
            for summary in page.get("PipelineExecutionSummaries", []):
                started = summary.get("StartTime")
                if isinstance(started, dt.datetime) and (first is None or started < first):
                    first = started
                steps = sm.get_paginator("list_pipeline_execution_steps").paginate(
                    PipelineExecutionArn=summary["PipelineExecutionArn"])
                for step_page in steps:
                    for step in step_page.get("PipelineExecutionSteps", []):
                        arn = step.get("Metadata", {}).get("Model", {}).get("Arn")
                        if arn:
                            arns.add(arn.lower())
    except ClientError as error:
        if _missing(error):
            LOG.info("pipeline %s does not exist: no models to find", pipeline)
            return []
        raise
    if not arns:
        LOG.info("the executions of pipeline %s created no model", pipeline)
        return []
    request: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Ascending"}
    if first is not None:
        request["CreationTimeAfter"] = first - dt.timedelta(minutes=1)
    names = [model["ModelName"]
             for page in sm.get_paginator("list_models").paginate(**request)
             for model in page.get("Models", []) if model["ModelArn"].lower() in arns]
    if len(names) < len(arns):
        LOG.info("%d of the %d models pipeline %s created are gone already", len(arns) - len(names), len(arns),
                 pipeline)
    return names


def delete_models(sm: Any, names: Iterable[str]) -> list[str]:
    """Delete these models (DeleteModel; transform jobs keep their history); a missing one is skipped."""
    deleted = []
    for name in names:
        try:
            sm.delete_model(ModelName=name)
        except ClientError as error:
            if _missing(error):
                LOG.info("model %s does not exist", name)
                continue
            raise
        deleted.append(name)
        LOG.info("deleted model %s", name)
    return deleted


def delete_model_packages(sm: Any, arns: Iterable[str]) -> list[str]:
    """Delete these model packages (DeleteModelPackage); a missing one is skipped."""
    deleted = []
    for arn in arns:
        try:
            sm.delete_model_package(ModelPackageName=arn)
        except ClientError as error:
            if _missing(error):
                LOG.info("model package %s does not exist", arn)
                continue
            raise
        deleted.append(arn)
        LOG.info("deleted model package %s", arn)
    return deleted


def delete_model_package_group(sm: Any, name: str) -> bool:
    """Delete the group unless it still holds model packages (someone else's); False when it was kept or gone."""
    try:
        remaining = sm.list_model_packages(ModelPackageGroupName=name, MaxResults=1).get("ModelPackageSummaryList")
        if remaining:
            LOG.info("model package group %s still holds other model packages (e.g. %s): left in place", name,
                     remaining[0].get("ModelPackageArn"))
            return False
        sm.delete_model_package_group(ModelPackageGroupName=name)
    except ClientError as error:
        if _missing(error):
            LOG.info("model package group %s does not exist", name)
            return False
        if error_code(error) == "ConflictException":
            LOG.info("model package group %s cannot be deleted now (%s): left in place", name, error_message(error))
            return False
        raise
    LOG.info("deleted model package group %s", name)
    return True
