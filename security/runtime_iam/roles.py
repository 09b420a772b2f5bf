"""The roles that act while a project is deployed and runs, and the policies each one carries.

One entry per role in :data:`ROLES`. A role is either an account role SageMaker creates when project
templates are enabled (``name``, path ``/service-role/``) or a role the project template creates
(``logical_id``). Its policies are found, not listed: every ``AWS::IAM::ManagedPolicy``/``AWS::IAM::Policy``
of the built templates whose ``Roles`` name it, and the inline ``Policies`` of the ``AWS::IAM::Role`` that
creates it -- in every condition scenario -- plus the AWS-managed policies in ``managed`` (vendored in
``security/managed_policies``, see its SOURCE.md for which role carries which). ``informational`` policies
are attachments nobody documents: the gate reports what would change with them, they never decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from generators.blocks.seed_code_cicd import CODEBUILD_ROLE, CODEPIPELINE_ROLE, EVENTS_ROLE, EXECUTION_ROLE
from generators.policies import LAUNCH_ROLE

from ..iam_conditions import Policy
from ..scenarios import ACCOUNT, PARTITION, Scenario

MANAGED_POLICY_DIR = Path(__file__).resolve().parent.parent / "managed_policies"
SERVICE_ROLE_PATH = "/service-role/"


@dataclass(frozen=True)
class RuntimeRole:
    key: str
    acts_as: str  # what it does, for the table
    name: str | None = None  # an account role (the AWS-managed SageMaker project roles)
    logical_id: str | None = None  # a role the project template creates
    path: str = SERVICE_ROLE_PATH
    managed: tuple[str, ...] = ()  # AWS-managed policies SageMaker attaches (documented)
    informational: tuple[str, ...] = ()  # undocumented attachments: reported, never decisive


ROLES: dict[str, RuntimeRole] = {
    role.key: role
    for role in (
        RuntimeRole(
            "launch",
            "Service Catalog + CloudFormation: create, update, delete the project stack",
            name=LAUNCH_ROLE,
            managed=("AmazonSageMakerAdmin-ServiceCatalogProductsServiceRolePolicy",),
        ),
        RuntimeRole(
            "codepipeline",
            "CodePipeline: source action, artifact store, build action",
            name=CODEPIPELINE_ROLE,
            managed=("AmazonSageMakerServiceCatalogProductsCodePipelineServiceRolePolicy",),
        ),
        RuntimeRole(
            "codebuild",
            "CodeBuild: the build (logs, input artifact) and seed-code deploy.py",
            name=CODEBUILD_ROLE,
            managed=("AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy",),
        ),
        RuntimeRole(
            "events",
            "EventBridge: the repository-change rule starting the CodePipeline",
            name=EVENTS_ROLE,
            managed=("AmazonSageMakerServiceCatalogProductsEventsServiceRolePolicy",),
        ),
        RuntimeRole(
            "execution",
            "SageMaker pipeline, processing job, feature group offline store",
            name=EXECUTION_ROLE,
            informational=("AmazonSageMakerFullAccess",),
        ),
        RuntimeRole("start-ingestion", "start-ingestion Lambda", logical_id="StartIngestionRole"),
        RuntimeRole(
            "data-bucket-events", "data-bucket-events custom resource Lambda", logical_id="DataBucketEventsRole"
        ),
    )
}

# Denials that break nothing, with the reason and the test that shows it (key: role, action).
TOLERATED_DENIALS: dict[tuple[str, str], str] = {
    ("codebuild", "iam:GetRole"): (
        "the SageMaker SDK reads the pipeline role's trust policy before Pipeline.upsert() "
        "(sagemaker-core iam_role_resolver._role_trusts_service) and carries on with the role when iam:GetRole "
        "is denied (verdict unknown, no error); tests/test_runtime_calls_recorded.py runs deploy.py with "
        "GetRole denied and the build still succeeds"
    ),
}


@cache
def managed_policy(name: str) -> Policy:
    path = MANAGED_POLICY_DIR / f"{name}.json"
    return Policy(f"aws-managed:{name}", json.loads(path.read_text(encoding="utf-8")))


def _resources_of(scenario: Scenario) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for logical_id, resource in sorted(scenario.resources.items()):
        yield logical_id, resource["Type"], resource.get("Properties", {})


def role_name(role: RuntimeRole, project: Scenario) -> str | None:
    """The role's name in this project scenario; None when the scenario does not create the role."""
    if role.name:
        return role.name
    resource = project.resources.get(role.logical_id or "")
    return None if resource is None else resource["Properties"]["RoleName"]


def role_arn(role: RuntimeRole, project: Scenario) -> str | None:
    name = role_name(role, project)
    if name is None:
        return None
    path = role.path if role.name else project.resources[role.logical_id]["Properties"].get("Path", "/")
    return f"arn:{PARTITION}:iam::{ACCOUNT}:role{path}{name}"


def template_policies(role: RuntimeRole, project: Scenario, *others: Scenario) -> list[Policy]:
    """The policies the built templates give the role in these scenarios (managed, customer-managed, inline)."""
    name = role_name(role, project)
    found: list[Policy] = []
    for scenario in (project, *others):
        for logical_id, resource_type, props in _resources_of(scenario):
            label = f"{scenario.template_name}.{logical_id}"
            if resource_type in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and name in props.get("Roles", []):
                found.append(Policy(label, props["PolicyDocument"]))
            elif resource_type == "AWS::IAM::Role" and props.get("RoleName") == name:
                for inline in props.get("Policies", []):
                    found.append(Policy(f"{label}.{inline['PolicyName']}", inline["PolicyDocument"]))
                for attached in props.get("ManagedPolicyArns", []):
                    if ":iam::aws:policy/" not in str(attached):
                        raise ValueError(f"{label}: resolve the attached policy {attached} in security/runtime_iam")
                    found.append(managed_policy(attached.rsplit("/", 1)[-1]))
    return found


def resource_policies(resource_arn: str, *scenarios: Scenario) -> list[Policy]:
    """Bucket and queue policies of the templates that govern ``resource_arn``."""
    found = []
    for scenario in scenarios:
        for logical_id, resource_type, props in _resources_of(scenario):
            label = f"{scenario.template_name}.{logical_id}"
            if resource_type == "AWS::S3::BucketPolicy":
                bucket = f"arn:{PARTITION}:s3:::{props['Bucket']}"
                if resource_arn == bucket or resource_arn.startswith(bucket + "/"):
                    found.append(Policy(label, props["PolicyDocument"]))
            elif resource_type == "AWS::SQS::QueuePolicy":
                names = {url.rsplit("/", 1)[-1] for url in props["Queues"]}
                if resource_arn.startswith(f"arn:{PARTITION}:sqs:") and resource_arn.rsplit(":", 1)[-1] in names:
                    found.append(Policy(label, props["PolicyDocument"]))
    return found
