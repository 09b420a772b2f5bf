"""Building blocks shared by the template modules: ARNs, trust policies, buckets, suppressions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import awacs.s3 as s3
from awacs.aws import (
    Action,
    BaseARN,
    Bool,
    Condition,
    Deny,
    Policy,
    PolicyDocument,
    Principal,
    Statement,
)
from awacs.helpers.trust import make_simple_assume_policy
from troposphere import AWSObject, GetAtt, Join, Ref, Sub, Tags, Template
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

POLICY_VERSION = "2012-10-17"
REGION = "${AWS::Region}"  # makes awacs emit ${AWS::Partition}
ACCOUNT = "${AWS::AccountId}"


def policy_document(*statements: Statement) -> PolicyDocument:
    return PolicyDocument(Version=POLICY_VERSION, Statement=list(statements))


def arn(service: str, resource: str, **variables: object) -> Sub:
    """``arn:${AWS::Partition}:<service>:${AWS::Region}:${AWS::AccountId}:<resource>`` as an ``Fn::Sub``.

    Given the region ``${AWS::Region}``, awacs writes the partition as ``${AWS::Partition}``; it leaves the
    region out of IAM and S3 ARNs (global); S3 bucket and object ARNs carry no account either.
    """
    text = BaseARN(service, resource, region=REGION, account="" if service == "s3" else ACCOUNT).JSONrepr()
    return Sub(text, **variables) if variables else Sub(text)


def service_role_arn(role_name: str, path: str = "/service-role/") -> Sub:
    """ARN of an account role, e.g. the SageMaker Projects service roles (one helper, no copy-paste)."""
    return arn("iam", f"role{path}{role_name}")


def service_principal(service: str) -> str:
    """``lambda`` -> ``lambda.amazonaws.com``; a full principal name is returned unchanged."""
    return service if "." in service else f"{service}.amazonaws.com"


def trust_policy(*services: str) -> Policy:
    """Assume-role policy for AWS service principals (each principal a separate argument).

    Short names are expanded (``trust_policy("lambda")`` trusts ``lambda.amazonaws.com``): IAM rejects a
    bare ``lambda`` principal with MalformedPolicyDocument, and cfn-lint does not catch it.
    """
    return make_simple_assume_policy(*(service_principal(s) for s in services))


def unique_actions(actions: Iterable[Action]) -> list[Action]:
    """Sorted, de-duplicated actions: a policy never lists the same action twice."""
    by_name = {action.JSONrepr(): action for action in actions}
    return [by_name[name] for name in sorted(by_name)]


CHECKOV_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")
CFN_LINT_ID = re.compile(r"^[EWI]\d{4}$")
GUARD_RULE_ID = re.compile(r"^[A-Z][A-Z0-9_]+$")
MIN_REASON_WORDS = 8


@dataclass(frozen=True)
class Suppression:
    """A scanner finding accepted on purpose, with the reason it is acceptable.

    The reason is mandatory (a sentence, not a ticket number) and is written next to every skip, so a
    reviewer reading the template sees why; ``tests/test_security_suppressions.py`` and the README's
    Security section list every one of them.
    """

    reason: str
    checkov: tuple[str, ...] = ()
    cfn_lint: tuple[str, ...] = ()
    guard: tuple[str, ...] = ()  # cfn-guard rule names (AWS Control Tower proactive controls)

    def __post_init__(self) -> None:
        checks = self.checkov + self.cfn_lint + self.guard
        if len(self.reason.split()) < MIN_REASON_WORDS:
            raise ValueError(
                f"suppression of {checks or 'no check'} needs a written reason "
                f"(at least {MIN_REASON_WORDS} words saying why the finding is acceptable)"
            )
        if not checks:
            raise ValueError("a suppression must name at least one check")
        for check in self.checkov:
            if not CHECKOV_ID.match(check):
                raise ValueError(f"{check!r} is not a checkov check id (CKV_AWS_123, CKV2_AWS_12)")
        for check in self.cfn_lint:
            if not CFN_LINT_ID.match(check):
                raise ValueError(f"{check!r} is not a cfn-lint rule id (E3012, W1020, I3042)")
        for check in self.guard:
            if not GUARD_RULE_ID.match(check):
                raise ValueError(f"{check!r} is not a cfn-guard rule name (S3_BUCKET_LOGGING_ENABLED)")


def suppress(resource: AWSObject, *suppressions: Suppression) -> AWSObject:
    """Write every suppression into the resource's Metadata, for checkov and cfn-lint, with its reason.

    - ``Metadata.checkov.skip``: ``[{id, comment}]``, the comment being the reason;
    - ``Metadata.cfn-lint.config.ignore_checks``: the cfn-lint rule ids;
    - ``Metadata.SuppressionReasons``: check id -> reason, for both tools (what reviewers read).

    Calling it again on the same resource adds to the earlier suppressions; a check suppressed twice
    is an error (one reason per check and resource).
    """
    if not suppressions:
        raise ValueError("suppress() needs at least one Suppression")
    metadata = dict(getattr(resource, "Metadata", {}) or {})
    reasons = dict(metadata.get("SuppressionReasons", {}))
    skips = list(metadata.get("checkov", {}).get("skip", []))
    ignores = set(metadata.get("cfn-lint", {}).get("config", {}).get("ignore_checks", []))
    guarded = set(metadata.get("guard", {}).get("SuppressedRules", []))
    for suppression in suppressions:
        for check in suppression.checkov + suppression.cfn_lint + suppression.guard:
            if check in reasons:
                raise ValueError(f"{check} is already suppressed on {resource.title}")
            reasons[check] = suppression.reason
        skips.extend({"id": check, "comment": suppression.reason} for check in suppression.checkov)
        ignores.update(suppression.cfn_lint)
        guarded.update(suppression.guard)
    if skips:
        metadata["checkov"] = {"skip": sorted(skips, key=lambda skip: skip["id"])}
    if ignores:
        metadata["cfn-lint"] = {"config": {"ignore_checks": sorted(ignores)}}
    if guarded:
        metadata["guard"] = {"SuppressedRules": sorted(guarded)}
    metadata["SuppressionReasons"] = dict(sorted(reasons.items()))
    resource.Metadata = metadata
    return resource


def deny_insecure_transport(service_actions: Action, resources: list) -> Statement:
    """Deny every request to ``resources`` that does not use TLS (bucket and queue policies)."""
    return Statement(
        Sid="DenyInsecureTransport",
        Effect=Deny,
        Principal=Principal("*"),
        Action=[service_actions],
        Resource=resources,
        # A string, not a JSON boolean: some rule engines only match "false".
        Condition=Condition(Bool("aws:SecureTransport", "false")),
    )


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


def interface(groups: list[tuple[str, list[object]]], labels: dict[str, str]) -> dict:
    """``AWS::CloudFormation::Interface`` metadata: parameter groups and labels, in display order."""
    return {
        "AWS::CloudFormation::Interface": {
            "ParameterGroups": [
                {"Label": {"default": label}, "Parameters": [p.title for p in params]}  # type: ignore[attr-defined]
                for label, params in groups
            ],
            "ParameterLabels": {name: {"default": text} for name, text in labels.items()},
        }
    }
