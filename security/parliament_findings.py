"""The parliament findings accepted on purpose, each with its reason, and the config that applies them.

parliament's community auditors judge a policy by its actions alone: a launch role that must create an IAM
role, a bucket policy and a Lambda function is "permissions management" and "privilege escalation" to
them, whatever the resource scope. The scope is what ``tests/test_security_iam.py`` and
``tests/test_security_launch_role.py`` check. Every accepted finding names the policy, the issue and, where
parliament reports it, the action; ``python -m security.parliament_gate`` fails on any other finding and on
an acceptance that no longer matches anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AcceptedFinding:
    issue: str
    policy: str  # "<template>.<LogicalId>" of the resolved policy file
    reason: str
    location: dict[str, str] = field(default_factory=dict)  # further location fields parliament reports
    location_patterns: dict[str, str] = field(default_factory=dict)  # the same, as regular expressions

    def ignore_location(self) -> dict[str, str]:
        """Regular expressions, matched lowercased in full, as parliament's ``ignore_locations`` would be.

        (parliament 1.6.4's CLI cannot apply ``ignore_locations`` read from a YAML ``--config``: its
        ``make_list`` returns an empty list for plain YAML values, so the gate applies them itself.)
        """
        # A managed policy IAM's size quota splits is written as <LogicalId>, <LogicalId>2, ...: which statements
        # land in which part depends on the others, so an acceptance covers every part.
        return {
            "filepath": f".*/{re.escape(self.policy)}\\d*\\.[^/]*json".lower(),
            **{key: re.escape(value).lower() for key, value in self.location.items()},
            **{key: pattern.lower() for key, pattern in self.location_patterns.items()},
        }


LAUNCH_ROLE_POLICY = "sm-policies.LaunchRolePolicy"
ACCEPTED: tuple[AcceptedFinding, ...] = (
    AcceptedFinding(
        issue="PERMISSIONS_MANAGEMENT_ACTIONS",
        policy=LAUNCH_ROLE_POLICY,
        reason="Creating a project means creating its Lambda role, its bucket and queue policies and the "
        "Lambda permission for its upload rule; each of these actions is limited to the product's own names "
        "(role/sagemaker-fsi/sagemaker-fsi-*, sagemaker-*-artifacts-ACCOUNT, ...), and only Service "
        "Catalog can assume the launch role.",
    ),
    AcceptedFinding(
        issue="PRIVILEGE_ESCALATION",
        policy=LAUNCH_ROLE_POLICY,
        location={"type": "EditExistingLambdaFunctionWithRole"},
        reason="lambda:UpdateFunctionCode is how CloudFormation deploys a new release of the project's Lambdas "
        "on UpdateProject. It is limited to the product's functions (sagemaker-*-start-ingest, "
        "sagemaker-*-bucket-events), whose roles may only start the project's pipeline, write its manifests, "
        "dead-letter queue and logs, and read or set the data bucket's notification configuration.",
    ),
    AcceptedFinding(
        issue="PRIVILEGE_ESCALATION",
        policy=LAUNCH_ROLE_POLICY,
        # parliament names one pattern per policy part; which one depends on how IAM's size quota splits the
        # launch policy (LaunchRolePolicy, LaunchRolePolicy2, ...): Invoke or TriggerWithExistingDynamo.
        location_patterns={"type": "PassExistingRoleToNewLambdaThen.*"},
        reason="CloudFormation invokes the project's custom resource (data bucket check and EventBridge "
        "notifications) with the launch role's credentials, so the role needs lambda:InvokeFunction, limited to "
        "the sagemaker-*-bucket-events functions; and it creates the batched start mode's event source mapping, "
        "lambda:CreateEventSourceMapping limited by lambda:FunctionArn to the sagemaker-*-start-ingest functions, "
        "whose role may read only the project's own batch queue. PassRole to Lambda is limited to the product's "
        "roles (role/sagemaker-fsi/sagemaker-fsi-*), whose inline policies the same template writes.",
    ),
    AcceptedFinding(
        issue="CREDENTIALS_EXPOSURE",
        policy="sm-policies.ExecutionRolePolicy",
        location={"actions": "ecr:getauthorizationtoken"},
        reason="A processing job pulls its image with a registry token: ecr:GetAuthorizationToken has no "
        "resource type, and the token only lets the role pull what its ECR grants allow, the two AWS images "
        "(sagemaker-scikit-learn, sagemaker-data-wrangler-container).",
    ),
    AcceptedFinding(
        issue="PERMISSIONS_MANAGEMENT_ACTIONS",
        policy="sm-policies.ExecutionRolePolicy",
        location={"actions": "s3:putobjectacl"},
        reason="The Feature Store offline store writes its files with the bucket-owner-full-control ACL under "
        "the execution role (Feature Store offline store permissions); s3:PutObjectAcl is limited to "
        "feature-store/* of the project artifact buckets, whose BucketOwnerEnforced setting ignores ACLs.",
    ),
    AcceptedFinding(
        issue="RESOURCE_POLICY_PRIVILEGE_ESCALATION",
        policy=LAUNCH_ROLE_POLICY,
        reason="The launch role writes the bucket policy and lifecycle rules the template defines on the "
        "project's own buckets, which it creates; it has no object access to them. parliament flags any "
        "policy that may change a bucket policy without object access, whatever the bucket.",
    ),
    AcceptedFinding(
        issue="UNKNOWN_ACTION",
        policy="sm-policies.ProjectRolesPolicy",
        location={"string": "sagemaker:BatchWriteRecord"},
        reason="Feature Store's BatchWriteRecord is newer than parliament 1.6.4's bundled IAM database; awacs "
        "2.6.1 and botocore define it, and the seed code's ingestion uses it where the runtime has it.",
    ),
)


def is_accepted(finding: AcceptedFinding, issue: str, location: dict) -> bool:
    """Does the accepted finding cover a reported (issue, location)? Same rule as parliament's CLI."""
    if finding.issue != issue:
        return False
    def text(value: object) -> str:  # a list of actions is matched as "a,b,c"
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    return all(
        re.fullmatch(pattern, text(location.get(key, "")).lower()) for key, pattern in finding.ignore_location().items()
    )
