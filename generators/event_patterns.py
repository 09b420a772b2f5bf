"""EventBridge patterns of the project template, as Python data.

Both patterns match the watched bucket **and** key prefix (and suffix when one is set), only for the
three upload operations, so the Lambda is not invoked for uploads it would ignore anyway.
"""

from __future__ import annotations

from typing import Any

from troposphere import If, Ref, Sub

UPLOAD_EVENT_NAMES = ["PutObject", "CompleteMultipartUpload", "CopyObject"]


def key_filter() -> If:
    """Key in the watched prefix; with a suffix, a wildcard ``<prefix>*<suffix>`` (EventBridge cannot AND
    a prefix and a suffix filter on one field)."""
    return If(
        "HasDataSuffix",
        [{"wildcard": Sub("${DataPrefix}*${DataSuffix}")}],
        [{"prefix": Ref("DataPrefix")}],
    )


def cloudtrail_pattern() -> dict[str, Any]:
    """'AWS API Call via CloudTrail' events for successful object uploads (needs the data-event trail)."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["s3.amazonaws.com"],
            "eventName": UPLOAD_EVENT_NAMES,
            "errorCode": [{"exists": False}],
            "requestParameters": {
                "bucketName": [Ref("DataBucketName")],
                "key": key_filter(),
            },
        },
    }


def s3_eventbridge_pattern() -> dict[str, Any]:
    """S3's native 'Object Created' events (the bucket must have EventBridge notifications on)."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [Ref("DataBucketName")]},
            "object": {"key": key_filter(), "size": [{"numeric": [">", 0]}]},
        },
    }


def upload_pattern() -> If:
    return If("UseCloudTrail", cloudtrail_pattern(), s3_eventbridge_pattern())


def repository_change_pattern(repository_arn: object, branch: object) -> dict[str, Any]:
    """CodeCommit pushes to the project's branch restart the CI/CD pipeline."""
    return {
        "source": ["aws.codecommit"],
        "detail-type": ["CodeCommit Repository State Change"],
        "resources": [repository_arn],
        "detail": {
            "event": ["referenceCreated", "referenceUpdated"],
            "referenceType": ["branch"],
            "referenceName": [branch],
        },
    }


MODEL_APPROVAL_CHANGES = ["Approved", "Rejected"]


def model_package_state_pattern(group_name: object) -> dict[str, Any]:
    """A model package of the group was approved or rejected (created as Approved, or its status changed):
    the latest approved package may have changed, so the project redeploys its pipeline. Packages created
    pending approval change nothing (SageMaker Developer Guide, "Events that Amazon SageMaker sends to
    EventBridge": SageMaker Model Package State Change)."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [group_name], "ModelApprovalStatus": MODEL_APPROVAL_CHANGES},
    }


PIPELINE_FAILED_STATUSES = ["Failed"]


def pipeline_execution_failed_pattern(pipeline_arn: object) -> dict[str, Any]:
    """An execution of the project's pipeline ended ``Failed`` (SageMaker Developer Guide, "Events that Amazon
    SageMaker sends to Amazon EventBridge": SageMaker pipeline execution state change; the event carries
    ``detail.pipelineArn``, which SageMaker writes in lowercase, like the project's pipeline name)."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
        "detail": {"currentPipelineExecutionStatus": PIPELINE_FAILED_STATUSES, "pipelineArn": [pipeline_arn]},
    }
