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

from . import cleanup, connection, dataset, features, ingestion, project, resources
from . import feature_group as fg
from .aws import Aws, WalkthroughError
from .steps import State

LOG = logging.getLogger("fsi_walkthrough")


# --- 00-setup -------------------------------------------------------------------------------------


def prepare_data_bucket(aws: Aws, bucket: str, trigger_mode: str) -> dict[str, bool]:
    """Create the bucket if needed; an existing bucket must be in the session's region.

    Nothing else changes on the bucket: in S3EventBridge mode the project's stack turns the bucket's
    EventBridge notifications on (and restores the configuration when it is deleted).
    """
    resources.check_trigger_mode(trigger_mode)
    return {"data_bucket": resources.ensure_bucket(aws, bucket)}


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


def check_before_create(aws: Aws, name: str, parameters: list[dict[str, str]]) -> dict[str, str]:
    """What AWS would refuse or silently ignore later, checked before CreateProject.

    The project name (SageMaker's pattern); the data bucket's region (S3 sends upload events only in the
    bucket's region); with ``SourceProvider = CodeConnection`` the connection (exists, AVAILABLE, tagged
    sagemaker=true); with ``TransformMode = DataWranglerFlow`` (the notebooks do not offer it; ``extra`` of
    :func:`template_parameters` can set it) the flow's bucket (the CodeBuild role reads sagemaker-*/aws-glue-*).
    """
    values = {p["Key"]: str(p["Value"]) for p in parameters}
    checked = {"ProjectName": project.check_project_name(name)}
    bucket = values.get("DataBucketName", "")
    if not bucket:
        raise WalkthroughError("the project's parameters name no DataBucketName: run 00-setup.ipynb first")
    checked["DataBucketRegion"] = resources.check_bucket_region(aws, bucket)
    if values.get("SourceProvider") == "CodeConnection":
        arn, _ = connection.connection_parameters(parameters)
        checked["ConnectionStatus"] = connection.check_connection(aws, arn)["ConnectionStatus"] or "not checked"
    if values.get("TransformMode") == "DataWranglerFlow":
        flow_url = values.get("DataWranglerFlowUrl", "")
        if not flow_url:
            raise WalkthroughError("TransformMode DataWranglerFlow needs DataWranglerFlowUrl (the flow's s3:// URL)")
        checked["DataWranglerFlowUrl"] = project.check_flow_url(flow_url, resources.default_bucket_name(aws))
    return checked


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
    """Create the project from the published template, through Service Catalog or the S3 template.

    :func:`check_before_create` runs first: a project that AWS would create but that could never work is
    refused here, with what to do.
    """
    if source not in project.TEMPLATE_SOURCES:
        raise WalkthroughError(f"TEMPLATE_SOURCE must be one of {', '.join(project.TEMPLATE_SOURCES)}, not {source!r}")
    if source == "S3Template":
        request = project.s3_template_request(name, description, template_url, parameters)
        check_before_create(aws, name, parameters)
    else:
        check_before_create(aws, name, parameters)
        product = project.find_product_version(aws.client("servicecatalog"), product_name, version)
        request = project.service_catalog_request(name, description, product, parameters)
    return project.create_project(aws.sagemaker, request)


def check_eventbridge_notifications(aws: Aws, state: State) -> bool:
    """In S3EventBridge mode, check that the data bucket sends its events to EventBridge.

    The project's stack turns that on; without it S3 emits no "Object Created" events and uploads start
    nothing, with no error anywhere. True when it is on; False in CloudTrail mode (nothing to check) or when
    the caller may not read the configuration (a warning then says what to verify).
    """
    if state.trigger_mode != "S3EventBridge":
        LOG.info("trigger mode %s: the project's trail records the uploads", state.trigger_mode)
        return False
    enabled = resources.eventbridge_enabled(aws, state.data_bucket)
    if enabled is None:
        LOG.warning("cannot read the notification configuration of bucket %s (AccessDenied): make sure it sends "
                    "its events to EventBridge (S3 console: bucket > Properties > Amazon EventBridge)",
                    state.data_bucket)
        return False
    if not enabled:
        stack = state.project.get("StackName", "the project's stack")
        raise WalkthroughError(
            f"bucket {state.data_bucket} does not send its events to EventBridge, so uploads start nothing: the "
            f"project's stack should have turned this on (see the events of {stack}); turn it on in the S3 console "
            "(bucket > Properties > Amazon EventBridge > Send notifications to Amazon EventBridge: On)"
        )
    # S3 User Guide, "Amazon S3 Event Notifications": a changed configuration takes effect in about five minutes.
    LOG.info("bucket %s sends its events to EventBridge (about five minutes after they were turned on)",
             state.data_bucket)
    return True


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
    """Undo what 00-setup changed on the data bucket: the bucket if it created it (and it is empty now).

    Earlier versions of 00-setup also turned the bucket's EventBridge notifications on themselves; a state
    they saved says so (``created["eventbridge_notifications"]``), and they are turned off again here.
    Today the project's stack turns them on and restores the bucket's configuration when it is deleted.
    """
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
