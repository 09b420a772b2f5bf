"""sm-policies: managed policies for the roles that create, run and use every registered product's projects.

- the Service Catalog launch role: what the project templates create beyond the AWS-managed launch
  policy, including update and delete paths (so UpdateProject and DeleteProject work);
- the project's build and execution roles: what their pipelines and jobs need;
- optionally the Studio execution role: read the project's stacks, clean up its buckets;
- optionally a release role: publish versions (see the README's release section).

The grants come from the building blocks each product's template uses (:mod:`generators.blocks`), collected
while the template is built and merged across products (:mod:`generators.grants`); every resource is
scoped to the names the products' ProjectNames give.
"""

from __future__ import annotations

import json
import re

import awacs.cloudformation as cfn
import awacs.s3 as s3
import awacs.servicecatalog as sc
from awacs.aws import Statement
from troposphere import Equals, Export, If, Not, Output, Parameter, Ref, Sub, Template, encode_to_dict
from troposphere.iam import ManagedPolicy

from .blocks.alarms import notifications_key
from .blocks.seed_code_cicd import CODEBUILD_ROLE, EXECUTION_ROLE
from .common import arn, interface, policy_document
from .grants import Grant, statements
from .products import products
from .settings import ACCOUNT_ID_LEN, REGION_MAX_LEN, PolicyNames, Settings

LAUNCH_ROLE = "AmazonSageMakerServiceCatalogProductsLaunchRole"
# An AWS::IAM::ManagedPolicy is replaced when its Description changes, and CloudFormation cannot replace a
# resource with a custom name (ManagedPolicyName): the descriptions of published policies never change.
FROZEN_DESCRIPTIONS = {
    "LaunchRolePolicy": "Create, update and delete s3-fs-ingestion projects",
    "ProjectRolesPolicy": "Deploy and run the s3-fs-ingestion pipeline",
    "StudioUserPolicy": "Use and clean up s3-fs-ingestion projects",
    "ReleasePolicy": "Publish s3-fs-ingestion versions",
}


# IAM and AWS STS quotas: a managed policy document holds at most 6,144 characters, white space excluded.
MANAGED_POLICY_SIZE_MAX = 6144
# The longest values the pseudo parameters take, for the size a document reaches once CloudFormation resolves it.
_WORST_CASE = {"${AWS::Partition}": "aws-us-gov", "${AWS::Region}": "a" * REGION_MAX_LEN,
               "${AWS::AccountId}": "1" * ACCOUNT_ID_LEN}
_SUB = re.compile(r'\{"Fn::Sub":"((?:[^"\\]|\\.)*)"\}')


def resolved_size(document_statements: list[Statement]) -> int:
    """Characters (white space excluded) of the policy document once CloudFormation resolves it, with the
    longest partition, Region and account id: what IAM compares with its size quota."""
    text = json.dumps(encode_to_dict(policy_document(*document_statements)), separators=(",", ":"))

    def resolve(match: re.Match[str]) -> str:
        value = match.group(1)
        for pseudo, longest in _WORST_CASE.items():
            value = value.replace(pseudo, longest)
        return f'"{value}"'

    text = _SUB.sub(resolve, text)
    if "Fn::" in text or "${" in text:
        raise ValueError(f"cannot size a policy with intrinsic functions other than plain Fn::Sub: {text[:200]}")
    return len("".join(text.split()))


def pack(all_statements: list[Statement], limit: int = MANAGED_POLICY_SIZE_MAX) -> list[list[Statement]]:
    """The statements, in order, in as few documents as fit IAM's size quota each."""
    envelope = resolved_size([])  # {"Statement":[],"Version":"2012-10-17"}
    documents: list[list[Statement]] = [[]]
    size = envelope
    for statement in all_statements:
        own = resolved_size([statement]) - envelope
        if envelope + own > limit:
            raise ValueError(f"statement {statement.Sid} alone exceeds the {limit}-character policy quota")
        added = own + (1 if documents[-1] else 0)  # and a comma after the previous statement
        if documents[-1] and size + added > limit:
            documents.append([])
            size, added = envelope, own
        documents[-1].append(statement)
        size += added
    return documents


def _grants(settings: Settings) -> dict[str, list[Grant]]:
    """Every registered product's grants, by role kind, in product order."""
    found: dict[str, list[Grant]] = {"launch": [], "project_roles": [], "execution": [], "studio_user": []}
    for product in products():
        built = product.build(settings)
        for kind, grants in found.items():
            grants.extend(getattr(built, kind))
    found["studio_user"].insert(
        0, Grant("ReadProjectStacks", [cfn.DescribeStacks, cfn.DescribeStackEvents, cfn.ListStackResources],
                 [arn("cloudformation", "stack/SC-*/*")]))
    return found


def launch_role_statements(settings: Settings) -> list[Statement]:
    """What the launch role needs to create, update and delete every product's projects."""
    return statements(_grants(settings)["launch"])


def release_grants(settings: Settings) -> list[Grant]:
    release_keys = arn("s3", f"{settings.artifacts_bucket}/{settings.artifacts_prefix}/*".replace("//", "/"))
    return [
        Grant(
            "ListReleases",
            [s3.ListBucket, s3.GetBucketLocation],
            [arn("s3", settings.artifacts_bucket)],
        ),
        Grant(
            "PublishReleaseObjects",
            [s3.PutObject, s3.GetObject, s3.PutObjectTagging, s3.GetObjectTagging],
            [release_keys],
        ),
        Grant(
            "RegisterVersions",
            [
                sc.CreateProvisioningArtifact,
                sc.DescribeProvisioningArtifact,
                sc.ListProvisioningArtifacts,
                sc.UpdateProvisioningArtifact,
                sc.DescribeProductAsAdmin,
            ],
            [arn("catalog", "product/*")],
        ),
        # SearchProductsAsAdmin cannot be scoped to a resource; it only lists products.
        Grant("FindProductByName", [sc.SearchProductsAsAdmin], ["*"]),
    ]


def release_statements(settings: Settings) -> list[Statement]:
    return statements(release_grants(settings))


def build(settings: Settings) -> Template:
    grants = _grants(settings)
    slugs = ", ".join(product.slug for product in products())
    t = Template(Description=f"Managed policies for the SageMaker projects {slugs} ({settings.version})")
    launch_role = t.add_parameter(
        Parameter(
            "LaunchRoleName",
            Type="String",
            Default=LAUNCH_ROLE,
            Description="Role Service Catalog uses to create projects (name only, no path).",
        )
    )
    build_role = t.add_parameter(
        Parameter(
            "CodeBuildRoleName",
            Type="String",
            Default=CODEBUILD_ROLE,
            Description="Role the project's CodeBuild runs as (name only).",
        )
    )
    execution_role = t.add_parameter(
        Parameter(
            "ExecutionRoleName",
            Type="String",
            Default=EXECUTION_ROLE,
            Description="Role the project's SageMaker pipeline runs as (name only).",
        )
    )
    studio_role = t.add_parameter(
        Parameter(
            "StudioExecutionRoleName",
            Type="String",
            Default="",
            Description="Optional: Studio execution role to attach the project-user policy to (name only).",
        )
    )
    release_role = t.add_parameter(
        Parameter(
            "ReleaseRoleName",
            Type="String",
            Default="",
            Description="Optional: role that publishes versions (python -m generators release).",
        )
    )
    t.set_metadata(
        interface(
            [
                ("Project roles", [launch_role, build_role, execution_role]),
                ("Optional roles", [studio_role, release_role]),
            ],
            {
                "LaunchRoleName": "Service Catalog launch role",
                "CodeBuildRoleName": "Project CodeBuild role",
                "ExecutionRoleName": "Project SageMaker execution role",
                "StudioExecutionRoleName": "Studio execution role",
                "ReleaseRoleName": "Release role",
            },
        )
    )
    t.add_condition("HasStudioRole", Not(Equals(Ref(studio_role), "")))
    t.add_condition("HasReleaseRole", Not(Equals(Ref(release_role), "")))

    policy_names = PolicyNames()

    def named(purpose: str) -> dict[str, object]:
        return {"ManagedPolicyName": Sub(policy_names.name(purpose)), "Path": policy_names.path}

    # More than one document fits in one managed policy: as many parts as the size quota needs.
    launch_parts = [
        t.add_resource(
            ManagedPolicy(
                "LaunchRolePolicy" + (str(part) if part > 1 else ""),
                **named("launch" + (f"-{part}" if part > 1 else "")),
                Description=FROZEN_DESCRIPTIONS["LaunchRolePolicy"]
                if part == 1
                else f"Create, update and delete the products' projects (part {part})",
                PolicyDocument=policy_document(*launch_statements),
                Roles=[Ref(launch_role)],
            )
        )
        for part, launch_statements in enumerate(pack(statements(grants["launch"])), start=1)
    ]
    project_roles = t.add_resource(
        ManagedPolicy(
            "ProjectRolesPolicy",
            **named("project-roles"),
            Description=FROZEN_DESCRIPTIONS["ProjectRolesPolicy"],
            PolicyDocument=policy_document(*statements(grants["project_roles"])),
            Roles=[Ref(build_role), Ref(execution_role)],
        )
    )
    execution = t.add_resource(
        ManagedPolicy(
            "ExecutionRolePolicy",
            **named("execution"),
            Description="Run the projects' pipeline jobs",
            PolicyDocument=policy_document(*statements(grants["execution"])),
            Roles=[Ref(execution_role)],
        )
    )
    studio = t.add_resource(
        ManagedPolicy(
            "StudioUserPolicy",
            **named("studio-user"),
            Condition="HasStudioRole",
            Description=FROZEN_DESCRIPTIONS["StudioUserPolicy"],
            PolicyDocument=policy_document(*statements(grants["studio_user"])),
            Roles=[Ref(studio_role)],
        )
    )
    release = t.add_resource(
        ManagedPolicy(
            "ReleasePolicy",
            **named("release"),
            Condition="HasReleaseRole",
            Description=FROZEN_DESCRIPTIONS["ReleasePolicy"],
            PolicyDocument=policy_document(*release_statements(settings)),
            Roles=[Ref(release_role)],
        )
    )

    launch_outputs = [(f"{part.title}Arn", part) for part in launch_parts]
    for logical, policy in (
        *launch_outputs,
        ("ProjectRolesPolicyArn", project_roles),
        ("ExecutionRolePolicyArn", execution),
    ):
        t.add_output(Output(logical, Value=Ref(policy), Export=Export(Sub(f"${{AWS::StackName}}-{logical}"))))
    t.add_output(
        Output(
            "StudioUserPolicyArn",
            Value=If("HasStudioRole", Ref(studio), ""),
            Export=Export(Sub("${AWS::StackName}-StudioUserPolicyArn")),
        )
    )
    t.add_output(Output("ReleasePolicyArn", Condition="HasReleaseRole", Value=Ref(release)))
    # sm-policies is deployed once per account and Region, before the first project and again before projects
    # move to a version whose launch role changed: the projects' notification topics find the key by its alias.
    notifications_key(t)
    return t
