"""Primitives shared by every template module: ARNs, policy documents, trust policies, suppressions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
from troposphere import AWSObject, Sub

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


def deny_insecure_transport(service_actions: Action, resources: list[object]) -> Statement:
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


def interface(groups: list[tuple[str, list[object]]], labels: dict[str, str]) -> dict[str, Any]:
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
