"""Names of what one provisioned project creates, as ``Fn::Sub`` strings, with their length budgets.

Regional resources are named after the project name (readable, unique per Region, since SageMaker
project names are); global or lowercase-only names (IAM roles, buckets, the pipeline, the trail) after the
project id, which SageMaker generates in lowercase with single hyphens. Every name starts with
``sagemaker-``: the AWS-managed project roles' policies only reach ``sagemaker-*`` resources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .settings import (
    ACCOUNT_ID_LEN,
    BUCKET_NAME_MAX,
    CODEBUILD_NAME_MAX,
    CODEPIPELINE_NAME_MAX,
    IAM_ROLE_NAME_MAX,
    LAMBDA_NAME_MAX,
    PIPELINE_NAME_MAX,
    PROJECT_ID_MAX,
    PROJECT_NAME_MAX,
    QUEUE_NAME_MAX,
    REGION_MAX_LEN,
    REPOSITORY_NAME_MAX,
    RULE_NAME_MAX,
    TRAIL_NAME_MAX,
    SettingsError,
    substitute,
)

RESOURCE_PREFIX = "sagemaker-"
# The customer managed KMS key every project's notification topic is encrypted with: one per account and
# Region, created by a platform stack (generators/blocks/alarms.py explains why not one per project).
NOTIFICATIONS_KEY_ALIAS = "alias/sagemaker-reusable-components-notifications"
# Amazon SNS API Reference, CreateTopic: "Topic names must be made up of only uppercase and lowercase ASCII
# letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long."
TOPIC_NAME_MAX = 256
# Amazon CloudWatch API Reference, PutMetricAlarm: AlarmName, length 1-255; PutMetricData: Namespace, length 1-255.
ALARM_NAME_MAX = 255
METRIC_NAMESPACE_MAX = 255
# What a block may append to the project's alarm prefix (names.alarm(suffix)): checked once here, so any
# suffix up to this length fits the alarm name limit for every project name.
ALARM_SUFFIX = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
ALARM_SUFFIX_MAX = 48


@dataclass(frozen=True)
class ProjectNames:
    """``short``: the product's IAM namespace (role path ``/sagemaker-<short>/``, role names
    ``sagemaker-<short>-*``); ``suffix``: what its pipeline and repository are called after."""

    short: str
    suffix: str

    @property
    def role_path(self) -> str:
        return f"/sagemaker-{self.short}/"

    @property
    def role_prefix(self) -> str:
        return f"sagemaker-{self.short}-"

    @property
    def resource_prefix(self) -> str:
        return RESOURCE_PREFIX

    @property
    def artifact_bucket(self) -> str:
        return "sagemaker-${SageMakerProjectId}-artifacts-${AWS::AccountId}"

    @property
    def trail_bucket(self) -> str:
        return "sagemaker-${SageMakerProjectId}-trail-${AWS::AccountId}"

    @property
    def lambda_role(self) -> str:
        return self.role_prefix + "${SageMakerProjectId}-start-ingestion"

    @property
    def lambda_function(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-start-ingest"

    @property
    def log_group(self) -> str:
        return "/aws/lambda/" + self.lambda_function

    @property
    def sagemaker_pipeline(self) -> str:
        # SageMaker lowercases pipeline ARNs and IAM matches ARNs case-sensitively: name the pipeline
        # after the (lowercase) project id so the Lambda's policy can name its exact ARN.
        return RESOURCE_PREFIX + "${SageMakerProjectId}-" + self.suffix

    @property
    def upload_rule(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-upload"

    @property
    def repository_rule(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-repo-change"

    @property
    def dead_letter_queue(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-ingestion-dlq"

    @property
    def batch_queue(self) -> str:
        """The queue the upload rule fills in batched start mode (the start Lambda consumes it in batches)."""
        return RESOURCE_PREFIX + "${SageMakerProjectName}-ingestion-batch"

    @property
    def build_project(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-deploy-pipeline"

    @property
    def code_pipeline(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-seed-code"

    @property
    def repository(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-" + self.suffix

    @property
    def trail(self) -> str:
        # CloudTrail refuses adjacent hyphens ("my--namespace"), which project names may hold: use the id.
        return RESOURCE_PREFIX + "${SageMakerProjectId}-uploads"

    @property
    def model_approval_rule(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-model-approval"

    @property
    def bucket_events_role(self) -> str:
        return self.role_prefix + "${SageMakerProjectId}-bucket-events"

    @property
    def bucket_events_function(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-bucket-events"

    @property
    def bucket_events_log_group(self) -> str:
        return "/aws/lambda/" + self.bucket_events_function

    @property
    def notification_topic(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-notifications"

    @property
    def alarm_prefix(self) -> str:
        """Every alarm of the project is named ``<alarm_prefix><suffix>``: the topic policy names the prefix."""
        return RESOURCE_PREFIX + "${SageMakerProjectName}-"

    def alarm(self, suffix: str) -> str:
        """The name of the project's alarm ``suffix`` (lowercase words joined by '-', at most ALARM_SUFFIX_MAX)."""
        if not ALARM_SUFFIX.match(suffix) or len(suffix) > ALARM_SUFFIX_MAX:
            raise ValueError(f"alarm suffix {suffix!r}: lowercase words and digits joined by '-', "
                             f"at most {ALARM_SUFFIX_MAX} characters")
        return self.alarm_prefix + suffix

    @property
    def pipeline_failure_rule(self) -> str:
        return RESOURCE_PREFIX + "${SageMakerProjectName}-pipeline-failed"

    @property
    def metric_namespace(self) -> str:
        """CloudWatch namespace of the project's own metrics (from log metric filters)."""
        return "SageMakerReusableComponents/${SageMakerProjectName}"

    def budgets(self) -> dict[str, tuple[str, int]]:
        """Name -> (Fn::Sub string, service limit) for every name with a length limit."""
        return {
            "artifact_bucket": (self.artifact_bucket, BUCKET_NAME_MAX),
            "trail_bucket": (self.trail_bucket, BUCKET_NAME_MAX),
            "lambda_role": (self.lambda_role, IAM_ROLE_NAME_MAX),
            "lambda_function": (self.lambda_function, LAMBDA_NAME_MAX),
            "sagemaker_pipeline": (self.sagemaker_pipeline, PIPELINE_NAME_MAX),
            "upload_rule": (self.upload_rule, RULE_NAME_MAX),
            "repository_rule": (self.repository_rule, RULE_NAME_MAX),
            "model_approval_rule": (self.model_approval_rule, RULE_NAME_MAX),
            "dead_letter_queue": (self.dead_letter_queue, QUEUE_NAME_MAX),
            "batch_queue": (self.batch_queue, QUEUE_NAME_MAX),
            "build_project": (self.build_project, CODEBUILD_NAME_MAX),
            "code_pipeline": (self.code_pipeline, CODEPIPELINE_NAME_MAX),
            "repository": (self.repository, REPOSITORY_NAME_MAX),
            "trail": (self.trail, TRAIL_NAME_MAX),
            "bucket_events_role": (self.bucket_events_role, IAM_ROLE_NAME_MAX),
            "bucket_events_function": (self.bucket_events_function, LAMBDA_NAME_MAX),
            "notification_topic": (self.notification_topic, TOPIC_NAME_MAX),
            "alarm": (self.alarm("x" * ALARM_SUFFIX_MAX), ALARM_NAME_MAX),
            "pipeline_failure_rule": (self.pipeline_failure_rule, RULE_NAME_MAX),
            "metric_namespace": (self.metric_namespace, METRIC_NAMESPACE_MAX),
        }


def wild(name: str) -> str:
    """A name with the project's name and id replaced by ``*`` (for the policies that cover every project)."""
    return name.replace("${SageMakerProjectName}", "*").replace("${SageMakerProjectId}", "*")


def check_budgets(names: ProjectNames) -> None:
    """Raise SettingsError when a name could exceed its service limit for the longest allowed inputs."""
    for label, (template, limit) in names.budgets().items():
        longest = substitute(
            template, "P" * PROJECT_NAME_MAX, "p" * PROJECT_ID_MAX, "1" * ACCOUNT_ID_LEN, "a" * REGION_MAX_LEN
        )
        if len(longest) > limit:
            raise SettingsError(f"{label} can reach {len(longest)} characters (limit {limit}): {template}")
