"""The notebooks' steps: each takes the session and the walkthrough state and calls the helpers.

A notebook cell is one call to one of these (through :class:`~fsi_walkthrough.steps.Steps`), so what a
cell does is tested here rather than hidden in the notebook.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from . import cleanup, dataset, features, ingestion, project, resources
from . import feature_group as fg
from .aws import Aws, WalkthroughError
from .steps import State

LOG = logging.getLogger("fsi_walkthrough")


# --- 00-setup -------------------------------------------------------------------------------------


def prepare_data_bucket(aws: Aws, bucket: str, trigger_mode: str) -> dict[str, bool]:
    """Create the bucket if needed; in S3EventBridge mode turn its EventBridge notifications on."""
    created = {"data_bucket": resources.ensure_bucket(aws, bucket)}
    if resources.check_trigger_mode(trigger_mode) == "S3EventBridge":
        created["eventbridge_notifications"] = resources.enable_eventbridge(aws, bucket)
    return created


# --- 01-feature-store-ingest-pipeline -------------------------------------------------------------


def template_parameters(
    state: State,
    *,
    source_provider: str = "CodeCommit",
    code_connection_arn: str = "",
    repository_id: str = "",
    extra: dict[str, str] | None = None,
) -> list[dict[str, str]]:
    """The project's parameters for the data location and feature group set up by 00-setup."""
    values = {
        "DataBucketName": state.data_bucket,
        "DataPrefix": state.data_prefix,
        "DataSuffix": state.data_suffix,
        "FeatureGroupName": state.feature_group_name,
        "TriggerMode": state.trigger_mode,
        "SourceProvider": source_provider,
        "CodeConnectionArn": code_connection_arn,
        "RepositoryId": repository_id,
        **(extra or {}),
    }
    return project.project_parameters(values)


def create_project(
    aws: Aws,
    name: str,
    parameters: list[dict[str, str]],
    *,
    source: str = "ServiceCatalog",
    product_name: str = project.PRODUCT_NAME,
    version: str = "",
    template_url: str = "",
    description: str = "Ingest files uploaded to S3 into a SageMaker feature group",
) -> dict[str, str]:
    """Create the project from the published template, through Service Catalog or the S3 template."""
    if source == "ServiceCatalog":
        product = project.find_product_version(aws.client("servicecatalog"), product_name, version)
        request = project.service_catalog_request(name, description, product, parameters)
    elif source == "S3Template":
        request = project.s3_template_request(name, description, template_url, parameters)
    else:
        raise WalkthroughError(f"TEMPLATE_SOURCE must be one of {', '.join(project.TEMPLATE_SOURCES)}, not {source!r}")
    return project.create_project(aws.sagemaker, request)


def wait_for_deployment(aws: Aws, state: State, *, timeout: float = 1200, poll: float = 20) -> dict[str, Any]:
    """Wait until the project's first build has deployed its SageMaker pipeline (upload only then)."""
    pipeline = ingestion.require(state.project.get("PipelineName"), "the project's pipeline name")
    ci_cd = state.project.get("Outputs", {}).get("SeedCodePipelineName")
    return ingestion.wait_for_pipeline(
        aws.sagemaker, pipeline, timeout=timeout, poll=poll, diagnostics=f"(CodePipeline: {ci_cd})" if ci_cd else ""
    )


def prepare_upload(state: State, rows: int, work_dir: str | Path, now: dt.datetime | None = None) -> Path:
    """A CSV of ``rows`` rows of the data set, named after the current time (each run a new file)."""
    frame = pd.read_csv(ingestion.require(state.local_csv, "the data set's CSV (00-setup)"))
    now = now or dt.datetime.now(dt.timezone.utc)  # noqa: UP017 - Studio kernels may run Python 3.10
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    return dataset.write_csv(dataset.sample(frame, rows), Path(work_dir) / f"abalone-{stamp}.csv")


def upload(aws: Aws, state: State, path: str | Path) -> dict[str, Any]:
    """Upload ``path`` to the watched prefix and remember it for the clean-up."""
    uploaded = ingestion.upload_file(aws.s3, path, state.data_bucket, state.data_prefix)
    state.remember_upload(uploaded["url"])
    return uploaded


def record_ids(path: str | Path, count: int = 5) -> list[str]:
    """The first ``count`` record ids of an uploaded file."""
    frame = pd.read_csv(path, dtype=str)
    return frame[dataset.RECORD_ID].head(count).tolist()


def follow_upload(
    aws: Aws, state: State, uploaded: dict[str, Any], *, find_timeout: float = 600, timeout: float = 1800
) -> dict[str, Any]:
    """Find the execution the upload started and wait until it ends (raises unless it succeeded)."""
    pipeline = ingestion.require(state.project.get("PipelineName"), "the project's pipeline name")
    outputs = state.project.get("Outputs", {})
    names = ("StartIngestionFunctionName", "DeadLetterQueueUrl")
    hints = ", ".join(f"{k}: {outputs[k]}" for k in names if k in outputs)
    arn = ingestion.find_execution(
        aws.sagemaker,
        pipeline,
        uploaded["url"],
        since=dt.datetime.fromisoformat(uploaded["uploaded_at"]),
        timeout=find_timeout,
        diagnostics=f"({hints})" if hints else "",
    )
    return ingestion.wait_for_execution(aws.sagemaker, arn, timeout=timeout)


def read_online(aws: Aws, state: State, ids: list[str]) -> pd.DataFrame:
    return features.get_records(aws.featurestore, state.feature_group_name, ids)


def read_offline(aws: Aws, state: State, ids: list[str], *, workgroup: str = "primary", timeout: float = 1200
                 ) -> pd.DataFrame:
    description = aws.sagemaker.describe_feature_group(FeatureGroupName=state.feature_group_name)
    output = f"s3://{state.data_bucket}/{state.work_prefix}athena-results/"
    return features.read_offline_store(
        aws.client("athena"), description, ids, output, workgroup=workgroup, timeout=timeout
    )


# --- 99-clean-up ----------------------------------------------------------------------------------


def delete_project(aws: Aws, state: State, *, timeout: float = 1800) -> bool:
    if not state.project:
        LOG.info("no project recorded in the state: nothing to delete")
        return False
    return project.delete_project(aws.sagemaker, state.project["ProjectName"], timeout=timeout)


def delete_project_pipeline(aws: Aws, state: State) -> bool:
    name = state.project.get("PipelineName")
    return cleanup.delete_pipeline(aws.sagemaker, name) if name else False


def delete_project_buckets(aws: Aws, state: State) -> list[str]:
    return cleanup.delete_buckets(aws.s3, state.project.get("Buckets", []))


def delete_project_log_groups(aws: Aws, state: State) -> list[str]:
    return cleanup.delete_log_groups(aws, state.project.get("LogGroups", []))


def delete_feature_group(aws: Aws, state: State, *, timeout: float = 600) -> bool:
    return fg.delete_feature_group(aws.sagemaker, state.feature_group_name, timeout=timeout)


def delete_walkthrough_files(aws: Aws, state: State) -> int:
    """The uploaded files (all versions) and everything under the walkthrough's work prefix."""
    deleted = cleanup.delete_urls(aws.s3, state.uploads)
    if state.work_prefix.strip("/"):
        deleted += cleanup.delete_objects(aws.s3, state.data_bucket, state.work_prefix)
    return deleted


def restore_data_bucket(aws: Aws, state: State) -> dict[str, bool]:
    """Undo what 00-setup changed on the data bucket: notifications turned on, the bucket if it created it."""
    done = {"eventbridge_notifications": False, "data_bucket": False}
    if state.created.get("eventbridge_notifications"):
        resources.disable_eventbridge(aws, state.data_bucket)
        done["eventbridge_notifications"] = True
    if state.created.get("data_bucket"):
        done["data_bucket"] = cleanup.delete_if_empty(aws.s3, state.data_bucket)
    return done


def forget(state_file: str | Path) -> None:
    """Remove the state file: the walkthrough starts afresh with 00-setup."""
    Path(state_file).unlink(missing_ok=True)
    LOG.info("removed %s", state_file)
