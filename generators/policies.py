"""sm-policies: managed policies for the roles that create, run and use the project.

- the Service Catalog launch role: what the project template creates beyond the AWS-managed launch
  policy, including update and delete paths (so UpdateProject and DeleteProject work);
- the project's build and execution roles: feature group, pipeline and Feature Store writes;
- optionally the Studio execution role: read the project's stacks, clean up its buckets;
- optionally a release role: publish versions (see the README's release section).

Every resource is scoped to the names :class:`ProjectNames` gives the project's resources.
"""

from __future__ import annotations

import awacs.awslambda as lam
import awacs.cloudformation as cfn
import awacs.cloudtrail as ct
import awacs.codebuild as cb
import awacs.codecommit as cc
import awacs.codeconnections as conn
import awacs.codepipeline as cp
import awacs.codestar_connections as csc
import awacs.events as ev
import awacs.iam as iam_actions
import awacs.logs as logs
import awacs.s3 as s3
import awacs.sagemaker as sm
import awacs.servicecatalog as sc
import awacs.sqs as sqs
from awacs.aws import Action, Allow, Condition, Statement, StringEquals
from troposphere import Equals, Export, If, Not, Output, Parameter, Ref, Sub, Template
from troposphere.iam import ManagedPolicy

from .common import arn, interface, policy_document, service_role_arn, unique_actions
from .project import CODEBUILD_ROLE, CODEPIPELINE_ROLE, EVENTS_ROLE, EXECUTION_ROLE
from .settings import PRODUCT, PolicyNames, ProjectNames, Settings

LAUNCH_ROLE = "AmazonSageMakerServiceCatalogProductsLaunchRole"
# The AWS-managed project roles the project's resources run as, and the service each is passed to.
PASSED_SERVICE_ROLES = {
    CODEBUILD_ROLE: "codebuild.amazonaws.com",
    CODEPIPELINE_ROLE: "codepipeline.amazonaws.com",
    EVENTS_ROLE: "events.amazonaws.com",
}


def _wild(name: str) -> str:
    """A ProjectNames string with the project's name and id replaced by ``*``."""
    return name.replace("${SageMakerProjectName}", "*").replace("${SageMakerProjectId}", "*")


def _allow(sid: str, actions: list[Action], resources: list, condition: Condition | None = None) -> Statement:
    statement = Statement(Sid=sid, Effect=Allow, Action=unique_actions(actions), Resource=resources)
    if condition is not None:
        statement.Condition = condition
    return statement


def _pass_role(sid: str, role_arns: list, service: str) -> Statement:
    return _allow(sid, [iam_actions.PassRole], role_arns, Condition(StringEquals({"iam:PassedToService": service})))


def launch_role_statements(settings: Settings, names: ProjectNames) -> list[Statement]:
    """What the launch role needs to create, update and delete a project (see security/launch_role.py)."""
    role_arn = arn("iam", f"role{names.role_path}{names.role_prefix}*")
    buckets = [
        arn("s3", _wild(names.artifact_bucket)),
        arn("s3", _wild(names.trail_bucket)),
    ]
    function = f"function:{_wild(names.lambda_function)}"
    # The function itself, and its qualified ARNs (the event invoke configuration is set on $LATEST).
    function_arns = [arn("lambda", function), arn("lambda", f"{function}:*")]
    passed_roles = [
        _pass_role(
            f"Pass{role.removeprefix('AmazonSageMakerServiceCatalogProducts')}",
            [service_role_arn(role)],
            service,
        )
        for role, service in sorted(PASSED_SERVICE_ROLES.items())
    ]
    return [
        _allow(
            "ProjectRoles",
            [
                iam_actions.CreateRole,
                iam_actions.DeleteRole,
                iam_actions.GetRole,
                iam_actions.UpdateRole,
                iam_actions.UpdateRoleDescription,
                iam_actions.UpdateAssumeRolePolicy,
                iam_actions.PutRolePolicy,
                iam_actions.DeleteRolePolicy,
                iam_actions.GetRolePolicy,
                iam_actions.ListRolePolicies,
                iam_actions.ListAttachedRolePolicies,
                iam_actions.TagRole,
                iam_actions.UntagRole,
            ],
            [role_arn],
        ),
        _pass_role("PassProjectRoleToLambda", [role_arn], "lambda.amazonaws.com"),
        *passed_roles,
        _allow(
            "ReadServiceRoles",
            [iam_actions.GetRole],
            [service_role_arn(role) for role in sorted(PASSED_SERVICE_ROLES)],
        ),
        _allow(
            "ProjectFunction",
            [
                lam.CreateFunction,
                lam.DeleteFunction,
                lam.GetFunction,
                lam.GetFunctionConfiguration,
                lam.GetFunctionCodeSigningConfig,
                lam.GetFunctionRecursionConfig,
                lam.GetRuntimeManagementConfig,
                lam.UpdateFunctionCode,
                lam.UpdateFunctionConfiguration,
                lam.AddPermission,
                lam.RemovePermission,
                lam.GetPolicy,
                lam.TagResource,
                lam.UntagResource,
                lam.ListTags,
                lam.PutFunctionConcurrency,
                lam.DeleteFunctionConcurrency,
                lam.GetFunctionConcurrency,
                lam.PutFunctionEventInvokeConfig,
                lam.UpdateFunctionEventInvokeConfig,
                lam.DeleteFunctionEventInvokeConfig,
                lam.GetFunctionEventInvokeConfig,
            ],
            function_arns,
        ),
        _allow(
            "ProjectArtifacts",
            [s3.GetObject, s3.GetObjectVersion],
            [arn("s3", f"{settings.artifacts_bucket}/{settings.artifacts_prefix}/{PRODUCT}/*".replace("//", "/"))],
        ),
        _allow(
            "ProjectLogGroup",
            [
                logs.CreateLogGroup,
                logs.DeleteLogGroup,
                logs.PutRetentionPolicy,
                logs.DeleteRetentionPolicy,
                logs.TagResource,
                logs.UntagResource,
                logs.ListTagsForResource,
                logs.GetDataProtectionPolicy,
            ],
            [arn("logs", f"log-group:{_wild(names.log_group)}*")],
        ),
        # List actions that IAM cannot scope to a resource (the resource must be "*"); read-only.
        _allow(
            "ListWithoutResourceScope",
            [
                logs.DescribeLogGroups,
                logs.DescribeResourcePolicies,
                logs.DescribeIndexPolicies,
                cc.ListRepositories,
                ct.DescribeTrails,
            ],
            ["*"],
        ),
        _allow(
            "ProjectQueue",
            [
                sqs.CreateQueue,
                sqs.DeleteQueue,
                sqs.GetQueueAttributes,
                sqs.SetQueueAttributes,
                sqs.GetQueueUrl,
                sqs.TagQueue,
                sqs.UntagQueue,
                sqs.ListQueueTags,
            ],
            [arn("sqs", _wild(names.dead_letter_queue))],
        ),
        _allow(
            "ProjectRules",
            [
                ev.PutRule,
                ev.DeleteRule,
                ev.DescribeRule,
                ev.EnableRule,
                ev.DisableRule,
                ev.PutTargets,
                ev.RemoveTargets,
                ev.ListTargetsByRule,
                ev.TagResource,
                ev.UntagResource,
                ev.ListTagsForResource,
            ],
            [arn("events", f"rule/{_wild(names.upload_rule)}"), arn("events", f"rule/{_wild(names.repository_rule)}")],
        ),
        _allow(
            "ProjectTrail",
            [
                ct.CreateTrail,
                ct.DeleteTrail,
                ct.UpdateTrail,
                ct.GetTrail,
                ct.GetTrailStatus,
                ct.StartLogging,
                ct.StopLogging,
                ct.PutEventSelectors,
                ct.GetEventSelectors,
                ct.GetInsightSelectors,
                ct.AddTags,
                ct.RemoveTags,
                ct.ListTags,
            ],
            [arn("cloudtrail", f"trail/{_wild(names.trail)}")],
        ),
        _allow(
            "ProjectBuckets",
            [
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
                s3.PutBucketVersioning,
                s3.GetBucketVersioning,
                s3.PutBucketTagging,
                s3.GetBucketTagging,
                s3.GetBucketLocation,
                s3.GetBucketAcl,
                s3.ListBucket,
            ],
            buckets,
        ),
        _allow(
            "ProjectRepository",
            [
                cc.CreateRepository,
                cc.CreateCommit,
                cc.DeleteRepository,
                cc.GetRepository,
                cc.GetRepositoryTriggers,
                cc.UpdateRepositoryDescription,
                cc.TagResource,
                cc.UntagResource,
                cc.ListTagsForResource,
            ],
            [arn("codecommit", _wild(names.repository))],
        ),
        _allow(
            "ProjectBuild",
            [
                cb.CreateProject,
                cb.DeleteProject,
                cb.UpdateProject,
                cb.BatchGetProjects,
            ],
            [arn("codebuild", f"project/{_wild(names.build_project)}")],
        ),
        _allow(
            "ProjectCodePipeline",
            [
                cp.CreatePipeline,
                cp.DeletePipeline,
                cp.UpdatePipeline,
                cp.GetPipeline,
                cp.GetPipelineState,
                cp.TagResource,
                cp.UntagResource,
                cp.ListTagsForResource,
            ],
            [arn("codepipeline", _wild(names.code_pipeline))],
        ),
        _allow(
            "PassConnectionToCodePipeline",
            [conn.PassConnection],
            [arn("codeconnections", "connection/*")],
            Condition(StringEquals({"codeconnections:PassedToService": "codepipeline.amazonaws.com"})),
        ),
        _allow(
            "PassLegacyConnectionToCodePipeline",
            [csc.PassConnection],
            [arn("codestar-connections", "connection/*")],
            Condition(StringEquals({"codestar-connections:PassedToService": "codepipeline.amazonaws.com"})),
        ),
    ]


def project_role_statements(names: ProjectNames) -> list[Statement]:
    """What the project's CodeBuild (deploy) and SageMaker execution (ingest) roles need beyond AWS's."""
    pipeline_arn = arn("sagemaker", f"pipeline/{_wild(names.sagemaker_pipeline)}")
    feature_group_arn = arn("sagemaker", "feature-group/*")
    execution_role_arn = arn("iam", f"role/service-role/{EXECUTION_ROLE}")
    return [
        _allow(
            "FeatureGroupDefinition",
            [
                sm.CreateFeatureGroup,
                sm.DescribeFeatureGroup,
                sm.UpdateFeatureGroup,
                sm.AddTags,
                sm.ListTags,
            ],
            [feature_group_arn],
        ),
        _allow("FeatureStoreWrites", [sm.PutRecord, sm.BatchWriteRecord, sm.GetRecord], [feature_group_arn]),
        _allow(
            "ProjectPipeline",
            [
                sm.CreatePipeline,
                sm.UpdatePipeline,
                sm.DescribePipeline,
                sm.AddTags,
                sm.ListTags,
            ],
            [pipeline_arn],
        ),
        _pass_role("PassExecutionRoleToSageMaker", execution_role_arn, "sagemaker.amazonaws.com"),
        _allow(
            "PipelineCode",
            [s3.PutObject, s3.GetObject],
            [
                arn("s3", _wild(names.artifact_bucket) + "/*"),
            ],
        ),
    ]


def studio_user_statements(names: ProjectNames) -> list[Statement]:
    buckets = [_wild(names.artifact_bucket), _wild(names.trail_bucket)]
    return [
        _allow(
            "ReadProjectStacks",
            [cfn.DescribeStacks, cfn.DescribeStackEvents, cfn.ListStackResources],
            [arn("cloudformation", "stack/SC-*/*")],
        ),
        _allow(
            "CleanUpProjectBuckets",
            [s3.ListBucket, s3.ListBucketVersions, s3.DeleteBucket],
            [arn("s3", b) for b in buckets],
        ),
        _allow(
            "CleanUpProjectObjects",
            [s3.GetObject, s3.DeleteObject, s3.DeleteObjectVersion],
            [arn("s3", f"{b}/*") for b in buckets],
        ),
        _allow(
            "CleanUpProjectPipeline",
            [sm.DeletePipeline, sm.DescribePipeline],
            [arn("sagemaker", f"pipeline/{_wild(names.sagemaker_pipeline)}")],
        ),
        _allow(
            "CleanUpProjectBuildLogs",
            [logs.DeleteLogGroup],
            [arn("logs", f"log-group:/aws/codebuild/{_wild(names.build_project)}:*")],
        ),
    ]


def release_statements(settings: Settings) -> list[Statement]:
    release_keys = arn("s3", f"{settings.artifacts_bucket}/{settings.artifacts_prefix}/*".replace("//", "/"))
    return [
        _allow(
            "ListReleases",
            [s3.ListBucket, s3.GetBucketLocation],
            [arn("s3", settings.artifacts_bucket)],
        ),
        _allow(
            "PublishReleaseObjects",
            [s3.PutObject, s3.GetObject, s3.PutObjectTagging, s3.GetObjectTagging],
            [release_keys],
        ),
        _allow(
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
        _allow("FindProductByName", [sc.SearchProductsAsAdmin], ["*"]),
    ]


def build(settings: Settings) -> Template:
    names = ProjectNames()
    t = Template(Description=f"Managed policies for the s3-fs-ingestion SageMaker project ({settings.version})")
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

    def named(purpose: str) -> dict:
        return {"ManagedPolicyName": Sub(policy_names.name(purpose)), "Path": policy_names.path}

    launch = t.add_resource(
        ManagedPolicy(
            "LaunchRolePolicy",
            **named("launch"),
            Description="Create, update and delete s3-fs-ingestion projects",
            PolicyDocument=policy_document(*launch_role_statements(settings, names)),
            Roles=[Ref(launch_role)],
        )
    )
    project_roles = t.add_resource(
        ManagedPolicy(
            "ProjectRolesPolicy",
            **named("project-roles"),
            Description="Deploy and run the s3-fs-ingestion pipeline",
            PolicyDocument=policy_document(*project_role_statements(names)),
            Roles=[Ref(build_role), Ref(execution_role)],
        )
    )
    studio = t.add_resource(
        ManagedPolicy(
            "StudioUserPolicy",
            **named("studio-user"),
            Condition="HasStudioRole",
            Description="Use and clean up s3-fs-ingestion projects",
            PolicyDocument=policy_document(*studio_user_statements(names)),
            Roles=[Ref(studio_role)],
        )
    )
    release = t.add_resource(
        ManagedPolicy(
            "ReleasePolicy",
            **named("release"),
            Condition="HasReleaseRole",
            Description="Publish s3-fs-ingestion versions",
            PolicyDocument=policy_document(*release_statements(settings)),
            Roles=[Ref(release_role)],
        )
    )

    for logical, policy in (("LaunchRolePolicyArn", launch), ("ProjectRolesPolicyArn", project_roles)):
        t.add_output(Output(logical, Value=Ref(policy), Export=Export(Sub(f"${{AWS::StackName}}-{logical}"))))
    t.add_output(
        Output(
            "StudioUserPolicyArn",
            Value=If("HasStudioRole", Ref(studio), ""),
            Export=Export(Sub("${AWS::StackName}-StudioUserPolicyArn")),
        )
    )
    t.add_output(Output("ReleasePolicyArn", Condition="HasReleaseRole", Value=Ref(release)))
    return t
