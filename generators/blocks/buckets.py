"""Private buckets: public access blocked, encrypted, ownership enforced, TLS only, events to EventBridge.

Every project bucket is retained on delete (its data outlives the stack); the launch role's grants for
them come from :func:`launch_grants`, the Studio user's clean-up grants from :func:`studio_user_grants`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import awacs.s3 as s3
from awacs.aws import Statement
from troposphere import GetAtt, Join, Ref, Sub, Tags, Template
from troposphere.s3 import (
    AbortIncompleteMultipartUpload,
    Bucket,
    BucketEncryption,
    BucketPolicy,
    EventBridgeConfiguration,
    LifecycleConfiguration,
    LifecycleRule,
    NoncurrentVersionExpiration,
    NotificationConfiguration,
    OwnershipControls,
    OwnershipControlsRule,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
    VersioningConfiguration,
)

from ..common import Suppression, arn, deny_insecure_transport, policy_document, suppress
from ..grants import Grant
from ..names import wild
from .project import ProjectTemplate

TRANSIENT_DAYS = 30
OBJECT_LOCK_NOT_USED = Suppression(
    guard=("S3_BUCKET_OBJECT_LOCK_ENABLED_CHECK",),
    reason="Object Lock protects only object versions given a retention period or legal hold; these buckets hold "
    "regenerable pipeline artifacts and transient logs that lifecycle rules expire and project clean-up deletes. "
    "A retention period would block both, and Object Lock without one protects nothing and cannot be turned off.",
)
# What CloudFormation calls to create, update, read and delete the buckets secure_bucket builds (registry
# schema of AWS::S3::Bucket and AWS::S3::BucketPolicy; security/launch_role.py checks it both ways).
BUCKET_ACTIONS = (
    s3.CreateBucket,
    s3.DeleteBucket,
    s3.PutBucketPolicy,
    s3.DeleteBucketPolicy,
    s3.GetBucketPolicy,
    s3.PutEncryptionConfiguration,
    s3.GetEncryptionConfiguration,
    s3.PutBucketPublicAccessBlock,
    s3.GetBucketPublicAccessBlock,
    s3.PutBucketOwnershipControls,
    s3.GetBucketOwnershipControls,
    s3.PutLifecycleConfiguration,
    s3.GetLifecycleConfiguration,
    s3.PutBucketNotification,  # NotificationConfiguration (EventBridge)
    s3.GetBucketNotification,
    s3.PutBucketVersioning,
    s3.GetBucketVersioning,
    s3.PutBucketTagging,
    s3.GetBucketTagging,
    # The AWS::S3::Bucket handler's newer tagging API (registry schema: create/update/read).
    s3.TagResource,
    s3.UntagResource,
    s3.ListTagsForResource,
    s3.GetBucketLocation,
    s3.GetBucketAcl,
    s3.ListBucket,
)


def launch_grants(*bucket_names: str) -> list[Grant]:
    """Create, update, read and delete the buckets named ``bucket_names`` (ProjectNames strings)."""
    return [Grant("ProjectBuckets", BUCKET_ACTIONS, [arn("s3", wild(name)) for name in bucket_names])]


def studio_user_grants(*bucket_names: str) -> list[Grant]:
    """Empty and delete the retained buckets once the project is deleted (99-clean-up)."""
    return [
        Grant("CleanUpProjectBuckets", [s3.ListBucket, s3.ListBucketVersions, s3.DeleteBucket],
              [arn("s3", wild(name)) for name in bucket_names]),
        Grant("CleanUpProjectObjects", [s3.GetObject, s3.DeleteObject, s3.DeleteObjectVersion],
              [arn("s3", f"{wild(name)}/*") for name in bucket_names]),
    ]


def tls_only_statement(bucket: Bucket) -> Statement:
    """Deny every request to the bucket and its objects that does not use TLS.

    The resources are written as ``Fn::GetAtt [bucket, Arn]`` and ``Fn::Join ["", [that, "/*"]]``: the AWS
    Control Tower control CT.S3.PR.8 (s3_bucket_policy_ssl_requests_only_check) recognises only that form
    (or literal ARNs), so an ``Fn::Sub`` ARN would make accounts enforcing it refuse the stack.
    """
    bucket_arn = GetAtt(bucket, "Arn")
    return deny_insecure_transport(s3.Action("*"), [bucket_arn, Join("", [bucket_arn, "/*"])])


def secure_bucket(
    logical_id: str,
    name: object,
    *,
    expirations: dict[str, int] | None = None,
    noncurrent_days: int | None = None,
    tags: Tags | None = None,
    versioned: bool = False,
    kms: bool = True,
) -> Bucket:
    """A private bucket: public access blocked, encrypted, ownership enforced, events sent to EventBridge.

    ``expirations`` maps a key prefix ("" for the whole bucket) to the days after which its objects
    expire; ``noncurrent_days`` expires old versions of a versioned bucket. ``kms``: SSE-KMS with the AWS
    managed key ``aws/s3`` and an S3 Bucket Key (Control Tower CT.S3.PR.10), usable by every same-account
    principal through S3 without a key policy of ours; otherwise SSE-S3 (for writers such as CloudTrail
    that cannot use ``aws/s3``).
    """
    rules = [
        LifecycleRule(
            Id="AbortIncompleteUploads",
            Status="Enabled",
            AbortIncompleteMultipartUpload=AbortIncompleteMultipartUpload(DaysAfterInitiation=7),
        )
    ]
    for prefix, days in sorted((expirations or {}).items()):
        rules.append(
            LifecycleRule(
                Id=f"Expire{''.join(part.title() for part in re.split('[^a-zA-Z0-9]+', prefix)) or 'All'}",
                Status="Enabled",
                Prefix=prefix or Ref("AWS::NoValue"),
                ExpirationInDays=days,
            )
        )
    if versioned != (noncurrent_days is not None):
        raise ValueError(f"{logical_id}: a versioned bucket needs noncurrent_days, and only a versioned one takes it")
    if noncurrent_days is not None:
        # Expiring a current version leaves a delete marker; once its old versions are gone, the same rule
        # removes it. ExpiredObjectDeleteMarker must share a rule with an action: CloudFormation rejects a
        # rule without AbortIncompleteMultipartUpload, Expiration*, NoncurrentVersion* or Transition*
        # (AWS::S3::Bucket Rule reference; cloudformation-coverage-roadmap#1124), and S3 rejects it beside
        # ExpirationInDays/ExpirationDate (PutBucketLifecycleConfiguration, LifecycleExpiration).
        rules.append(
            LifecycleRule(
                Id="ExpireNoncurrentVersions",
                Status="Enabled",
                NoncurrentVersionExpiration=NoncurrentVersionExpiration(NoncurrentDays=noncurrent_days),
                ExpiredObjectDeleteMarker=True,
            )
        )
    bucket = Bucket(
        logical_id,
        BucketName=name,
        BucketEncryption=BucketEncryption(
            ServerSideEncryptionConfiguration=[
                ServerSideEncryptionRule(
                    BucketKeyEnabled=True,
                    ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(
                        SSEAlgorithm="aws:kms" if kms else "AES256"
                    ),
                )
            ]
        ),
        PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
        ),
        OwnershipControls=OwnershipControls(Rules=[OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        # Object-level events to EventBridge (free to send; Control Tower CT.S3.PR.4 asks for notifications).
        NotificationConfiguration=NotificationConfiguration(
            EventBridgeConfiguration=EventBridgeConfiguration(EventBridgeEnabled=True)
        ),
        LifecycleConfiguration=LifecycleConfiguration(Rules=rules),
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
    )
    if versioned:
        bucket.VersioningConfiguration = VersioningConfiguration(Status="Enabled")
    if tags is not None:
        bucket.Tags = tags
    return bucket


def add_secure_bucket(template: Template, bucket: Bucket, *extra_statements: Statement) -> tuple[Bucket, BucketPolicy]:
    """Add ``bucket`` with its TLS-only bucket policy (plus ``extra_statements``) to the template."""
    template.add_resource(bucket)
    policy = template.add_resource(
        BucketPolicy(
            f"{bucket.title}Policy",
            Bucket=Ref(bucket),
            PolicyDocument=policy_document(tls_only_statement(bucket), *extra_statements),
        )
    )
    return bucket, policy


def project_bucket(
    pt: ProjectTemplate,
    logical_id: str,
    name: str,
    *suppressions: Suppression,
    condition: str | None = None,
    extra_statements: Callable[[Bucket], list[Statement]] | None = None,
    **options: Any,
) -> tuple[Bucket, BucketPolicy]:
    """A secure, tagged bucket of the project named ``name`` (a ProjectNames string) with its TLS-only
    policy (plus ``extra_statements(bucket)``), both under ``condition`` when given; its launch-role and
    Studio clean-up grants are added to ``pt``."""
    bucket = secure_bucket(logical_id, Sub(name), tags=pt.tags(), **options)
    suppress(bucket, *suppressions, OBJECT_LOCK_NOT_USED)
    bucket, policy = add_secure_bucket(pt.template, bucket, *(extra_statements(bucket) if extra_statements else []))
    if condition:
        bucket.Condition = policy.Condition = condition
    pt.launch.extend(launch_grants(name))
    pt.studio_user.extend(studio_user_grants(name))
    return bucket, policy


def artifact_bucket(pt: ProjectTemplate, expirations: dict[str, int]) -> Bucket:
    """The project's versioned bucket for pipeline code, CodePipeline artifacts, manifests and outputs;
    ``expirations``: key prefix -> days after which its objects expire."""
    bucket, _ = project_bucket(
        pt,
        "ArtifactBucket",
        pt.names.artifact_bucket,
        Suppression(
            checkov=("CKV_AWS_18",),
            guard=("S3_BUCKET_LOGGING_ENABLED_CHECK",),
            reason="Server access logging would need a separate log bucket per project. Bucket-level changes "
            "are recorded by the account's CloudTrail management events; object-level auditing, where an "
            "organisation requires it, belongs in its organisation trail (S3 data events), not per project.",
        ),
        versioned=True,
        expirations=expirations,
        noncurrent_days=TRANSIENT_DAYS,
    )
    return bucket
