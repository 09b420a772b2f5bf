"""The launch role can create, update and delete every resource of a project, for every parameter combination.

The table of what CloudFormation calls per resource type lives in ``security/launch_role.py``; it is checked
here against the CloudFormation registry schemas cfn-lint ships, and the resolved ``LaunchRolePolicy``
(sm-policies) is checked to grant every action on the ARN the project template gives a sample project.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from generators.products import products
from generators.products.s3_fs_ingestion import PRODUCT as INGESTION
from generators.settings import POLICIES_TEMPLATE
from security.launch_role import (
    EXCLUDED,
    MANAGED_POLICY,
    MANAGED_POLICY_RELIANCE,
    REQUIRED,
    requirements,
)
from security.policy_eval import allows
from security.scenarios import scenarios

PROJECT_TEMPLATE = INGESTION.template_name
PROJECT_TEMPLATES = [product.template_name for product in products()]
cfnlint_schema = pytest.importorskip("cfnlint.schema")
README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _launch_documents(scenario) -> list[dict]:
    """LaunchRolePolicy and its further parts (IAM's size quota splits it), in order."""
    parts = sorted(k for k in scenario.resources if k.startswith("LaunchRolePolicy"))
    assert parts and parts[0] == "LaunchRolePolicy", parts
    return [scenario.resources[part]["Properties"]["PolicyDocument"] for part in parts]


def _launch_policy(templates) -> dict:
    """The launch role's policy parts as one document (IAM unions a role's policies)."""
    documents = {str(_launch_documents(s)) for s in scenarios(POLICIES_TEMPLATE, templates[POLICIES_TEMPLATE])}
    assert len(documents) == 1, "the launch role policy must not depend on the optional roles"
    (scenario, *_) = scenarios(POLICIES_TEMPLATE, templates[POLICIES_TEMPLATE])
    statements = [statement for document in _launch_documents(scenario) for statement in document["Statement"]]
    return {"Version": "2012-10-17", "Statement": statements}


def _handler_permissions(resource_type: str) -> set[str] | None:
    schema = cfnlint_schema.PROVIDER_SCHEMA_MANAGER.get_resource_schema("eu-west-1", resource_type).schema
    handlers = schema.get("handlers")
    if not handlers:
        return None
    return {
        permission
        for name in ("create", "update", "delete", "read")
        for permission in handlers.get(name, {}).get("permissions", [])
    }


def _normalise(action: str) -> str:
    service, _, name = action.partition(":")
    return f"{service.lower()}:{name}"


@pytest.mark.parametrize("project_template", PROJECT_TEMPLATES)
def test_every_project_resource_type_is_in_the_table(templates, project_template) -> None:
    types = {r["Type"] for r in templates[project_template]["Resources"].values()}
    assert types <= set(REQUIRED), f"add to security/launch_role.py REQUIRED: {sorted(types - set(REQUIRED))}"
    assert types <= set(EXCLUDED) | {"AWS::CodeBuild::Project"}


@pytest.mark.parametrize("resource_type", sorted(REQUIRED))
def test_table_matches_the_cloudformation_handler_schema(resource_type: str) -> None:
    if resource_type.startswith("Custom::"):
        # A custom resource has no handler of its own: CloudFormation invokes its service token with the
        # stack's credentials (CloudFormation User Guide, "Custom resources"), and the function acts with its role.
        assert set(REQUIRED[resource_type]) == {"lambda:InvokeFunction"}
        return
    schema = _handler_permissions(resource_type)
    required = {_normalise(a).lower() for a in REQUIRED[resource_type]}
    if schema is None:
        # A legacy type without a registry schema (CodeBuild): the actions must at least exist.
        import awacs.codebuild

        for action in REQUIRED[resource_type]:
            service, _, name = action.partition(":")
            if service == "codebuild":
                assert hasattr(awacs.codebuild, name), action
        return
    known = {_normalise(a).lower() for a in schema}
    invented = required - known
    assert not invented, f"{resource_type}: not in CloudFormation's handler permissions: {sorted(invented)}"
    exclusions = EXCLUDED[resource_type]
    unexplained = sorted(
        action
        for action in {_normalise(a) for a in schema}
        if action.lower() not in required
        and not any(fnmatchcase(action.lower(), pattern.lower()) for pattern in exclusions)
    )
    assert not unexplained, (
        f"{resource_type}: CloudFormation may call {unexplained}: grant them in generators/policies.py and list them "
        "in security/launch_role.py REQUIRED, or exclude them there with the reason"
    )
    for pattern, reason in exclusions.items():
        assert any(fnmatchcase(_normalise(a).lower(), pattern.lower()) for a in schema), f"stale exclusion {pattern}"
        assert len(reason.split()) >= 4, f"{resource_type} {pattern}: give a reason"


@pytest.mark.parametrize("project_template", PROJECT_TEMPLATES)
def test_launch_role_policy_covers_create_update_delete_for_every_scenario(templates, project_template) -> None:
    policy = _launch_policy(templates)
    project_scenarios = scenarios(project_template, templates[project_template])
    assert len(project_scenarios) >= 8, [s.label for s in project_scenarios]  # trigger x suffix x source
    missing = []
    checked = 0
    for scenario in project_scenarios:
        for need in requirements(scenario.resources):
            checked += 1
            if not allows([policy], need.action, need.arn, passed_to=need.passed_to, context=dict(need.context)):
                missing.append(f"{scenario.label} {need.logical_id}: {need.action} on {need.arn} ({need.passed_to})")
    assert checked > 500
    assert not missing, "LaunchRolePolicy does not grant:\n" + "\n".join(sorted(set(missing)))


def test_every_pass_role_requirement_names_its_service(templates) -> None:
    for scenario in scenarios(PROJECT_TEMPLATE, templates[PROJECT_TEMPLATE]):
        passes = [n for n in requirements(scenario.resources) if n.action == "iam:PassRole"]
        assert passes and all(n.passed_to for n in passes)
        roles = {n.arn.rsplit("/", 1)[-1]: n.passed_to for n in passes}
        assert roles["AmazonSageMakerServiceCatalogProductsCodeBuildRole"] == "codebuild.amazonaws.com"
        assert roles["AmazonSageMakerServiceCatalogProductsCodePipelineRole"] == "codepipeline.amazonaws.com"
        assert roles["sagemaker-fsi-p-abcdefghijkl-start-ingestion"] == "lambda.amazonaws.com"
        if scenario.conditions["UseCodeCommit"]:
            assert roles["AmazonSageMakerServiceCatalogProductsEventsRole"] == "events.amazonaws.com"


def test_launch_role_cannot_pass_roles_to_other_services(templates) -> None:
    policy = _launch_policy(templates)
    lambda_role = "arn:aws:iam::123456789012:role/sagemaker-fsi/sagemaker-fsi-p-abcdefghijkl-start-ingestion"
    assert allows([policy], "iam:PassRole", lambda_role, passed_to="lambda.amazonaws.com")
    assert not allows([policy], "iam:PassRole", lambda_role, passed_to="ec2.amazonaws.com")
    assert not allows([policy], "iam:PassRole", lambda_role)
    other = "arn:aws:iam::123456789012:role/Admin"
    assert not allows([policy], "iam:CreateRole", other)
    assert not allows([policy], "iam:PutRolePolicy", other)


def test_managed_policy_reliance_is_documented() -> None:
    assert MANAGED_POLICY in README
    for reason in MANAGED_POLICY_RELIANCE.values():
        assert len(reason.split()) >= 8
