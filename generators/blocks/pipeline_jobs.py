"""What the SageMaker execution role needs to run a project pipeline's jobs (SageMaker Developer Guide,
"CreateProcessingJob API: Execution Role Permissions"): the jobs, their logs and metrics, the images (AWS's
own, one AWS account per Region) and the project's pipeline inputs."""

from __future__ import annotations

from collections.abc import Sequence

import awacs.cloudwatch as cw
import awacs.ecr as ecr
import awacs.logs as logs
import awacs.s3 as s3
import awacs.sagemaker as sm
from awacs.aws import Condition, StringEquals, StringLike
from troposphere import Sub

from ..common import arn
from ..grants import Grant
from ..names import wild
from .project import ProjectTemplate

PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
PIPELINE_INPUT_PREFIXES = ("pipeline-code/*", "input-manifests/*")


def processing_job_grants(pt: ProjectTemplate, image_repositories: Sequence[str]) -> list[Grant]:
    """Run the pipeline's processing jobs with images from ``image_repositories`` (AWS's ECR repositories)."""
    return [
        Grant(
            "PipelineProcessingJobs",
            [sm.CreateProcessingJob, sm.DescribeProcessingJob, sm.StopProcessingJob, sm.AddTags],
            [arn("sagemaker", "processing-job/pipelines-*")],
        ),
        *log_grants("ProcessingJob", PROCESSING_LOG_GROUP),
        # PutMetricData has no resource type (Service Authorization Reference): scoped by its namespace.
        Grant("ProcessingJobMetrics", [cw.PutMetricData], ["*"],
              Condition(StringEquals({"cloudwatch:namespace": PROCESSING_LOG_GROUP}))),
        image_grant(image_repositories),
        *input_grants(pt),
    ]


def log_grants(sid_prefix: str, log_group: str) -> list[Grant]:
    """A job type's logs: its log group (``<sid_prefix>LogGroup``) and the streams in it (``...LogStreams``)."""
    return [
        Grant(f"{sid_prefix}LogGroup", [logs.CreateLogGroup, logs.DescribeLogStreams],
              [arn("logs", f"log-group:{log_group}")]),
        Grant(f"{sid_prefix}LogStreams", [logs.CreateLogStream, logs.PutLogEvents],
              [arn("logs", f"log-group:{log_group}:log-stream:*")]),
    ]


def input_grants(pt: ProjectTemplate) -> list[Grant]:
    """What every job of a project pipeline needs: a registry login for its image, and listing the pipeline's
    inputs in the artifact bucket (SageMaker lists an input's S3 prefix before downloading it)."""
    return [
        # GetAuthorizationToken has no resource type; it only returns a registry login token.
        Grant("ImageRegistryLogin", [ecr.GetAuthorizationToken], ["*"]),
        Grant("ListPipelineInputs", [s3.ListBucket], [arn("s3", wild(pt.names.artifact_bucket))],
              Condition(StringLike({"s3:prefix": list(PIPELINE_INPUT_PREFIXES)}))),
    ]


def image_grant(repositories: Sequence[object]) -> Grant:
    """Pull a job's image: AWS's repositories by name (each Region's images live in an AWS account of that
    Region), or ARNs given as they are."""
    return Grant(
        "PullJobImages",
        [ecr.BatchCheckLayerAvailability, ecr.GetDownloadUrlForLayer, ecr.BatchGetImage],
        [
            Sub(f"arn:${{AWS::Partition}}:ecr:${{AWS::Region}}:*:repository/{name}") if isinstance(name, str) else name
            for name in repositories
        ],
    )
