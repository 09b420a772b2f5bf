"""The data the run-time IAM gate works on: recorded API calls, IAM requests, verdicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..scenarios import ACCOUNT, PARTITION, REGION

RECORDED = "recorded"  # made by our code, captured by a botocore hook while it ran
LISTED = "listed"  # made by an AWS service on the role's behalf (cannot be recorded), listed from AWS docs


@dataclass(frozen=True)
class ApiCall:
    """One call our code made: botocore service name, operation name, the parameters the table reads."""

    service: str
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApiCall:
        return cls(data["service"], data["operation"], data.get("params", {}))

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "operation": self.operation, "params": dict(self.params)}


@dataclass(frozen=True)
class Env:
    """Where the calls happen, and how role names become ARNs (GetRole takes a name, IAM checks the ARN)."""

    account: str = ACCOUNT
    region: str = REGION
    partition: str = PARTITION
    role_arns: Mapping[str, str] = field(default_factory=dict)  # role name -> ARN
    object_tags: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # S3 object ARN -> its tags

    def arn(self, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region is None else region}:"
            f"{self.account if account is None else account}:{resource}"
        )

    def s3(self, bucket: str, key: str | None = None) -> str:
        return f"arn:{self.partition}:s3:::{bucket}" + ("" if key is None else f"/{key}")

    def role_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return self.role_arns.get(name_or_arn, self.arn("iam", f"role/{name_or_arn}", region=""))


@dataclass(frozen=True)
class IamRequest:
    """One authorization IAM makes for a role: action on resource with the request context that matters."""

    role: str  # key of the role in security.runtime_iam.roles.ROLES
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)
    origin: str = RECORDED  # RECORDED or LISTED
    activity: str = ""  # what was running: "deploy.py (Script, first build)", "CodePipeline source action", ...
    source: str = ""  # the AWS document that says the call is made (listed) or the operation it maps from

    @property
    def key(self) -> tuple:
        return (self.role, self.action, self.resource, tuple(sorted((k, str(v)) for k, v in self.context.items())))


@dataclass(frozen=True)
class Verdict:
    request: IamRequest
    scenario: str
    allowed: bool
    explanation: str
    tolerated: str = ""  # why a denial does not break anything (see roles.TOLERATED_DENIALS)
