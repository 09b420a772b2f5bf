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
TRIGGER_MODES = ("S3EventBridge", "CloudTrail")
LEGACY_LOCATIONS = {"": "us-east-1", "EU": "eu-west-1"}  # GetBucketLocation's LocationConstraint -> region
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
    """Create ``bucket`` in the session's region unless it exists; True when it was created here.

    An existing bucket must be in the session's region (see :func:`check_bucket_region`).
    """
    head = _head_bucket(aws, bucket)
    if head is not None:
        region = _require_same_region(aws, bucket, bucket_region(aws.s3, bucket, head))
        LOG.info("using existing bucket %s (%s)", bucket, region)
        return False
    s3 = aws.s3
    request: dict[str, Any] = {"Bucket": bucket}
    if aws.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
    s3.create_bucket(**request)
    try:
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    except ClientError as error:
        if error_code(error) not in ("AccessDenied", "AccessDeniedException"):
            raise
        # S3 turns every Block Public Access setting on for new buckets (default since April 2023); setting
        # them again needs s3:PutBucketPublicAccessBlock, which AmazonSageMakerFullAccess does not grant.
        LOG.info("bucket %s keeps S3's default Block Public Access settings (all on)", bucket)
    LOG.info("created bucket %s in %s", bucket, aws.region)
    return True


def _head_bucket(aws: Aws, bucket: str) -> dict[str, Any] | None:
    """HeadBucket's answer, None when the bucket does not exist; refuses a bucket of another account."""
    try:
        return aws.s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=aws.account)
    except ClientError as error:
        code = error_code(error)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return None
        raise WalkthroughError(
            f"bucket {bucket} exists but is not usable from account {aws.account} ({code or error}): "
            "choose another DATA_BUCKET"
        ) from error


def bucket_region(s3: Any, bucket: str, head: dict[str, Any] | None = None) -> str:
    """The region ``bucket`` lives in.

    HeadBucket reports it (``BucketRegion``, the ``x-amz-bucket-region`` header): the S3 API reference
    recommends it over GetBucketLocation. GetBucketLocation is the fallback; it answers
    ``LocationConstraint`` null for us-east-1 and the legacy ``EU`` for eu-west-1.
    """
    head = head if head is not None else s3.head_bucket(Bucket=bucket)
    headers = head.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = head.get("BucketRegion") or headers.get("x-amz-bucket-region")
    if region:
        return str(region)
    location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    return LEGACY_LOCATIONS.get(location or "", location or "")


def check_bucket_region(aws: Aws, bucket: str) -> str:
    """The bucket's region; refuses a missing bucket or one outside the session's region.

    S3 publishes a bucket's events (to EventBridge, and as CloudTrail data events) only in the bucket's
    own region: a project watching a bucket of another region would never see an upload, and nothing
    would report an error.
    """
    head = _head_bucket(aws, bucket)
    if head is None:
        raise WalkthroughError(f"data bucket {bucket} does not exist: run 00-setup.ipynb first (or set DATA_BUCKET)")
    return _require_same_region(aws, bucket, bucket_region(aws.s3, bucket, head))


def _require_same_region(aws: Aws, bucket: str, region: str) -> str:
    if region != aws.region:
        raise WalkthroughError(
            f"data bucket {bucket} is in {region} but the project would be in {aws.region}: S3 sends a bucket's "
            f"upload events only in its own Region, so choose a bucket in {aws.region} (DATA_BUCKET) or run the "
            f"walkthrough in {region} (REGION)"
        )
    LOG.info("data bucket %s is in %s, the project's region", bucket, region)
    return region


def eventbridge_enabled(aws: Aws, bucket: str) -> bool | None:
    """Does the bucket send its events to EventBridge (``EventBridgeConfiguration`` present)?

    None when the caller may not read the bucket's notification configuration (s3:GetBucketNotification is
    not in AmazonSageMakerFullAccess, for example).
    """
    try:
        response = aws.s3.get_bucket_notification_configuration(Bucket=bucket)
    except ClientError as error:
        if error_code(error) in ("AccessDenied", "AccessDeniedException"):
            return None
        raise WalkthroughError(
            f"cannot read the notification configuration of bucket {bucket}: {error_message(error)}"
        ) from error
    return "EventBridgeConfiguration" in response


def disable_eventbridge(aws: Aws, bucket: str) -> None:
    """Turn the bucket's EventBridge notifications off, keeping its other notification targets.

    Only for states saved by earlier versions of 00-setup, which turned them on themselves; today the
    project's stack turns them on and restores the bucket's configuration when it is deleted.
    PutBucketNotificationConfiguration replaces the whole configuration: the other targets are written back.
    """
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
