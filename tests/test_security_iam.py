"""IAM deny-list over every policy of every template, resolved for every combination of conditions.

Complements parliament (``tox -e security``), which judges actions without their resource scope: these
tests check the scoping rules the product promises (README "Security").
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from generators.products import products
from security.iam_policies import IDENTITY, RESOURCE, TRUST, resolved_policies
from security.policy_eval import as_list, statements
from security.scenarios import ACCOUNT

# Each product's own roles: role/sagemaker-<short>/sagemaker-<short>-* (ProjectNames).
PRODUCT_ROLES = tuple(
    f"arn:aws:iam::{ACCOUNT}:role{product.names.role_path}{product.names.role_prefix}" for product in products()
)
READ_VERBS = ("Get", "List", "Describe", "Search", "BatchGet", "Head")
# Write actions that IAM cannot scope to a resource, allowed on "*" with the reason.
WRITE_ACTIONS_WITHOUT_RESOURCE_SCOPE: dict[str, str] = {
    "cloudwatch:PutMetricData": "it has no resource type in the Service Authorization Reference; the execution "
    "role's grant is limited by the cloudwatch:namespace condition to /aws/sagemaker/ProcessingJobs",
    "lambda:CreateEventSourceMapping": "it has no resource type in the Service Authorization Reference (AWS "
    "Lambda); the launch role's grant is limited by the lambda:FunctionArn condition to the projects' start "
    "functions (the batched start mode's event source mapping)",
    "sns:Unsubscribe": "it names a subscription and has no resource type in the Service Authorization Reference "
    "(Amazon SNS); CloudFormation calls it with the launch role to delete or replace a project's e-mail "
    "subscription (AWS::SNS::Subscription handler permissions), and only Service Catalog assumes that role",
}
# Of those, the ones for which the Service Authorization Reference lists no condition key either (nothing but
# the action can scope them).
WITHOUT_CONDITION_KEYS = {"sns:Unsubscribe"}
BROAD_MANAGED_POLICIES = (
    "AdministratorAccess",
    "PowerUserAccess",
    "IAMFullAccess",
    "AmazonS3FullAccess",
    "AmazonSageMakerFullAccess",
)
ROLE_WRITE = re.compile(r"^iam:(Create|Put|Attach|Detach|Update|Delete|Tag|Untag)\w*Role\w*$", re.I)


@pytest.fixture(scope="module")
def policies(templates):
    found = resolved_policies(templates)
    assert {p.kind for p in found} == {IDENTITY, RESOURCE, TRUST}
    return found


def _allow_statements(policies, *kinds):
    for policy in policies:
        if policy.kind in kinds:
            for statement in statements(policy.document):
                if statement["Effect"] == "Allow":
                    yield policy, statement


def _is_read(action: str) -> bool:
    return action.split(":", 1)[1].startswith(READ_VERBS)


def test_no_wildcard_actions_and_no_not_elements(policies) -> None:
    for policy, statement in _allow_statements(policies, IDENTITY, RESOURCE, TRUST):
        where = f"{policy.scenario} {policy.logical_id} {statement.get('Sid', '')}"
        assert "NotAction" not in statement and "NotResource" not in statement and "NotPrincipal" not in statement
        for action in as_list(statement["Action"]):
            assert "*" not in action and "?" not in action, f"{where}: wildcard action {action}"


def test_no_write_action_on_every_resource(policies) -> None:
    for policy, statement in _allow_statements(policies, IDENTITY):
        if "*" not in as_list(statement["Resource"]):
            continue
        for action in as_list(statement["Action"]):
            assert _is_read(action) or action in WRITE_ACTIONS_WITHOUT_RESOURCE_SCOPE, (
                f"{policy.file_stem} {statement.get('Sid')}: write action {action} on Resource '*'"
            )
            if not _is_read(action) and action not in WITHOUT_CONDITION_KEYS:
                assert statement.get("Condition"), f"{policy.file_stem}: {action} on '*' needs a scoping condition"
    for action, reason in WRITE_ACTIONS_WITHOUT_RESOURCE_SCOPE.items():
        assert len(reason.split()) >= 8, action


def test_no_resource_is_a_whole_service_wildcard(policies) -> None:
    whole_service = re.compile(r"^arn:[^:]+:[^:]+:[^:]*:[^:]*:\*$|^arn:[^:]+:s3:::\*$")
    for policy, statement in _allow_statements(policies, IDENTITY, RESOURCE):
        for resource in as_list(statement["Resource"]):
            assert not whole_service.match(resource), f"{policy.file_stem} {statement.get('Sid')}: {resource}"


def test_role_writes_only_on_the_product_roles(policies) -> None:
    for policy, statement in _allow_statements(policies, IDENTITY):
        role_writes = [a for a in as_list(statement["Action"]) if ROLE_WRITE.match(a)]
        if not role_writes:
            continue
        for resource in as_list(statement["Resource"]):
            assert resource.startswith(PRODUCT_ROLES), f"{policy.file_stem}: {role_writes} on {resource}"
        if any(a.lower() == "iam:attachrolepolicy" for a in role_writes):
            keys = {key for pairs in statement.get("Condition", {}).values() for key in pairs}
            assert keys & {"iam:PolicyARN", "iam:PermissionsBoundary"}, "AttachRolePolicy needs a policy condition"


def test_pass_role_always_names_the_service(policies) -> None:
    passes = 0
    for policy, statement in _allow_statements(policies, IDENTITY):
        if not any(a.lower() == "iam:passrole" for a in as_list(statement["Action"])):
            continue
        passes += 1
        assert as_list(statement["Action"]) == ["iam:PassRole"], "keep PassRole in its own statement"
        services = [
            value
            for operator, pairs in statement.get("Condition", {}).items()
            if operator in ("StringEquals", "StringLike")
            for key, value in pairs.items()
            if key == "iam:PassedToService"
        ]
        assert services, f"{policy.file_stem} {statement.get('Sid')}: iam:PassRole without iam:PassedToService"
        for resource in as_list(statement["Resource"]):
            assert resource != "*" and not resource.endswith(":role/*"), resource
    assert passes >= 5


def test_no_broad_aws_managed_policy_anywhere(templates) -> None:
    broad = re.compile(r"policy/(?:\S*/)?(" + "|".join(BROAD_MANAGED_POLICIES) + r")\b")
    for name, template in templates.items():
        text = json.dumps(template)
        assert not broad.search(text), f"{name} refers to {broad.search(text).group(1)}"
        for logical_id, resource in template["Resources"].items():
            assert "ManagedPolicyArns" not in resource.get("Properties", {}), f"{name} {logical_id}"


def test_no_action_is_granted_twice_in_any_scenario(policies) -> None:
    for policy in policies:
        grants = Counter(
            (action.lower(), json.dumps(resource), json.dumps(statement.get("Condition"), sort_keys=True))
            for statement in statements(policy.document)
            if statement["Effect"] == "Allow"
            for action in as_list(statement["Action"])
            for resource in as_list(statement.get("Resource", "*"))
        )
        twice = [g for g, n in grants.items() if n > 1]
        assert not twice, f"{policy.scenario} {policy.file_stem}: {twice}"


def test_trust_policies_trust_only_aws_services(policies) -> None:
    trusts = [p for p in policies if p.kind == TRUST]
    assert trusts
    for policy in trusts:
        for statement in statements(policy.document):
            assert statement["Effect"] == "Allow"
            assert as_list(statement["Action"]) == ["sts:AssumeRole"]
            assert set(statement["Principal"]) == {"Service"}, statement["Principal"]
            for service in as_list(statement["Principal"]["Service"]):
                assert re.fullmatch(r"[a-z0-9-]+\.amazonaws\.com", service), service


def test_resource_policies_bind_service_principals_to_their_source(policies) -> None:
    for policy, statement in _allow_statements(policies, RESOURCE):
        principal = statement["Principal"]
        assert principal != "*" and "AWS" not in principal, f"{policy.file_stem}: {principal}"
        keys = {key for pairs in statement.get("Condition", {}).values() for key in pairs}
        assert "aws:SourceArn" in keys, f"{policy.file_stem} {statement.get('Sid')}: confused deputy"
