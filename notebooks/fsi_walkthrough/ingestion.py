"""Upload a file to the watched prefix and follow the pipeline execution it starts."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .aws import WalkthroughError, error_code

LOG = logging.getLogger("fsi_walkthrough")

INPUT_PARAMETER = "InputDataUrl"
RUNNING = {"Executing", "Stopping"}


def upload_file(s3: Any, path: str | Path, bucket: str, prefix: str, name: str = "") -> dict[str, Any]:
    """Upload ``path`` as ``<prefix><name>`` (default: the file's name); this starts the ingestion."""
    path = Path(path)
    key = prefix + (name or path.name)
    started = dt.datetime.now(dt.timezone.utc)  # noqa: UP017 - Studio kernels may run Python 3.10
    with path.open("rb") as body:
        response = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv")
    url = f"s3://{bucket}/{key}"
    LOG.info("uploaded %s to %s", path.name, url)
    return {"url": url, "bucket": bucket, "key": key, "version_id": response.get("VersionId", ""),
            "uploaded_at": started.isoformat()}


def wait_for_pipeline(
    sm: Any,
    pipeline_name: str,
    *,
    timeout: float = 1200,
    poll: float = 20,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    diagnostics: str = "",
) -> dict[str, Any]:
    """Wait until the project's build has deployed the SageMaker pipeline.

    Upload only then: before, the Lambda cannot start the pipeline and the upload's event ends in the
    dead-letter queue after the retries.
    """
    deadline = clock() + timeout
    while True:
        try:
            pipeline = sm.describe_pipeline(PipelineName=pipeline_name)
        except ClientError as error:
            if error_code(error) not in ("ResourceNotFound", "ResourceNotFoundException"):
                raise
        else:
            LOG.info("pipeline %s is deployed (%s)", pipeline_name, pipeline.get("PipelineStatus", "?"))
            return pipeline
        if clock() >= deadline:
            raise TimeoutError(
                f"pipeline {pipeline_name} is still not deployed after {timeout / 60:.0f} min: the project's "
                f"CI/CD pipeline deploys it; check its latest run in the CodePipeline console. {diagnostics}".strip()
            )
        LOG.info("waiting for the project's build to deploy pipeline %s", pipeline_name)
        sleep(poll)


def find_execution(
    sm: Any,
    pipeline_name: str,
    input_url: str,
    *,
    since: dt.datetime | None = None,
    timeout: float = 300,
    poll: float = 10,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    diagnostics: str = "",
) -> str:
    """The ARN of the execution whose ``InputDataUrl`` is ``input_url`` (waits until one appears)."""
    deadline = clock() + timeout
    while True:
        arn = _execution_for(sm, pipeline_name, input_url, since)
        if arn:
            LOG.info("execution %s ingests %s", arn, input_url)
            return arn
        if clock() >= deadline:
            raise TimeoutError(
                f"no execution of pipeline {pipeline_name} started for {input_url} within {timeout / 60:.0f} min. "
                "Check that the file is under the watched prefix (and suffix), the upload rule, the start-ingestion "
                f"Lambda's log group and its dead-letter queue. {diagnostics}".strip()
            )
        sleep(poll)


def _execution_for(sm: Any, pipeline_name: str, input_url: str, since: dt.datetime | None) -> str:
    request: dict[str, Any] = {"PipelineName": pipeline_name, "SortBy": "CreationTime", "SortOrder": "Descending"}
    if since is not None:
        request["CreatedAfter"] = since - dt.timedelta(minutes=1)
    for page in sm.get_paginator("list_pipeline_executions").paginate(**request):
        for summary in page.get("PipelineExecutionSummaries", []):
            arn = summary["PipelineExecutionArn"]
            parameters = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
            if any(p["Name"] == INPUT_PARAMETER and p["Value"] == input_url for p in parameters):
                return arn
    return ""


PROCESSING_LOGS = ("The processing job's logs are in CloudWatch (/aws/sagemaker/ProcessingJobs); the rows that "
                   "could not be written are in the project's artifact bucket under failed-rows/.")


def wait_for_execution(
    sm: Any,
    execution_arn: str,
    *,
    timeout: float = 1800,
    poll: float = 30,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    logs: str = PROCESSING_LOGS,
) -> dict[str, Any]:
    """Wait until the execution ends; raise with the failing steps' reasons, and ``logs`` (where the jobs' logs
    are), unless it succeeded."""
    deadline = clock() + timeout
    while True:
        execution = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        status = execution["PipelineExecutionStatus"]
        if status == "Succeeded":
            LOG.info("execution %s succeeded", execution_arn)
            return execution
        if status not in RUNNING:
            reasons = failed_steps(sm, execution_arn)
            reason = execution.get("FailureReason") or "no reason given"
            raise WalkthroughError(
                f"execution {execution_arn} is {status}: {reason}"
                + (f"; failed steps: {'; '.join(reasons)}" if reasons else "")
                + f". {logs}"
            )
        if clock() >= deadline:
            raise TimeoutError(
                f"execution {execution_arn} is still {status} after {timeout / 60:.0f} min: it keeps running; "
                "follow it in Studio (Pipelines) and re-run this cell to wait again"
            )
        LOG.info("execution is %s", status)
        sleep(poll)


def failed_steps(sm: Any, execution_arn: str) -> list[str]:
    reasons = []
    for page in sm.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=execution_arn):
        for step in page.get("PipelineExecutionSteps", []):
            if step.get("StepStatus") == "Failed":
                reasons.append(f"{step.get('StepName')}: {step.get('FailureReason', 'no reason given')}")
    return reasons


def require(value: Any, what: str) -> Any:
    """``value``, or a clear error when an earlier step did not produce it."""
    if not value:
        raise WalkthroughError(f"{what} is unknown: run the earlier cells of this notebook first")
    return value
