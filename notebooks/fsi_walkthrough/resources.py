"""What the walkthrough needs before a project exists: an execution role and the data bucket."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, WalkthroughError, error_code, error_message

LOG = logging.getLogger("fsi_walkthrough")

STUDIO_METADATA = Path("/opt/ml/metadata/resource-metadata.json")
TRIGGER_MODES = ("CloudTrail", "S3EventBridge")
_ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/")


def default_bucket_name(aws: Aws) -> str:
    """The bucket the SageMaker SDK would use by default: ``sagemaker-<region>-<account>``."""
    return f"sagemaker-{aws.region}-{aws.account}"


def execution_role(aws: Aws, explicit: str = "", metadata_file: Path = STUDIO_METADATA) -> str:
    """The role Feature Store uses to write the offline store.

    ``explicit`` wins; in Studio, the user profile's (or domain's default) execution role; otherwise the
    role of the current assumed-role session.
    """
    if explicit:
        return explicit
    if metadata_file.is_file():
        metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
        role = _studio_role(aws, metadata.get("DomainId", ""), metadata.get("UserProfileName", ""))
        if role:
            return role
    match = _ASSUMED_ROLE.match(aws.identity["Arn"])
    if match:
        try:
            return aws.client("iam").get_role(RoleName=match["role"])["Role"]["Arn"]
        except ClientError as error:
            LOG.debug("iam:GetRole(%s) failed: %s", match["role"], error)
    raise WalkthroughError(
        f"cannot tell which execution role to use (caller {aws.identity['Arn']}): set EXECUTION_ROLE_ARN in the "
        "parameters cell to your Studio execution role's ARN"
    )


def _studio_role(aws: Aws, domain_id: str, user_profile: str) -> str:
    if not domain_id:
        return ""
    sm = aws.sagemaker
    if user_profile:
        profile = sm.describe_user_profile(DomainId=domain_id, UserProfileName=user_profile)
        role = profile.get("UserSettings", {}).get("ExecutionRole", "")
        if role:
            return role
    return sm.describe_domain(DomainId=domain_id)["DefaultUserSettings"]["ExecutionRole"]


def ensure_bucket(aws: Aws, bucket: str) -> bool:
    """Create ``bucket`` in the session's region unless it exists; True when it was created here."""
    s3 = aws.s3
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=aws.account)
        LOG.info("using existing bucket %s", bucket)
        return False
    except ClientError as error:
        code = error_code(error)
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise WalkthroughError(
                f"bucket {bucket} exists but is not usable from account {aws.account} ({code or error}): "
                "choose another DATA_BUCKET"
            ) from error
    request: dict[str, Any] = {"Bucket": bucket}
    if aws.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
    s3.create_bucket(**request)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    LOG.info("created bucket %s in %s", bucket, aws.region)
    return True


def enable_eventbridge(aws: Aws, bucket: str) -> bool:
    """Turn on S3's EventBridge notifications (trigger mode S3EventBridge), keeping the bucket's other
    notification targets. True when this call turned them on."""
    s3 = aws.s3
    config = _notification_config(s3, bucket)
    if "EventBridgeConfiguration" in config:
        LOG.info("bucket %s already sends its events to EventBridge", bucket)
        return False
    config["EventBridgeConfiguration"] = {}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    LOG.info("bucket %s now sends its events to EventBridge", bucket)
    return True


def disable_eventbridge(aws: Aws, bucket: str) -> None:
    """Undo :func:`enable_eventbridge`, keeping the bucket's other notification targets."""
    s3 = aws.s3
    config = _notification_config(s3, bucket)
    config.pop("EventBridgeConfiguration", None)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    LOG.info("bucket %s no longer sends its events to EventBridge", bucket)


def _notification_config(s3: Any, bucket: str) -> dict[str, Any]:
    try:
        response = s3.get_bucket_notification_configuration(Bucket=bucket)
    except ClientError as error:
        raise WalkthroughError(
            f"cannot read the notification configuration of bucket {bucket}: {error_message(error)}"
        ) from error
    keys = (
        "TopicConfigurations",
        "QueueConfigurations",
        "LambdaFunctionConfigurations",
        "EventBridgeConfiguration",
    )
    return {key: response[key] for key in keys if key in response}


def check_trigger_mode(mode: str) -> str:
    if mode not in TRIGGER_MODES:
        raise WalkthroughError(f"TRIGGER_MODE must be one of {', '.join(TRIGGER_MODES)}, not {mode!r}")
    return mode


def watched_prefix(prefix: str) -> str:
    """The data prefix as the project template expects it: no leading '/', exactly one trailing '/'."""
    cleaned = prefix.strip().strip("/")
    if not cleaned:
        raise WalkthroughError("DATA_PREFIX must not be empty (the project watches one key prefix, e.g. 'incoming/')")
    return cleaned + "/"
