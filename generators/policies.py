"""sm-policies: managed policies for the roles that create, run and use the project.

- the Service Catalog launch role: what the project template creates beyond the AWS-managed launch
  policy, including update and delete paths (so UpdateProject and DeleteProject work);
- the project's build and execution roles: feature group, pipeline and Feature Store writes;
- optionally the Studio execution role: read the project's stacks, clean up its buckets;
- optionally a release role: publish versions (see the README's release section).

Every resource is scoped to the names :class:`ProjectNames` gives the project's resources.
"""

from __future__ import annotations

import json
import re

import awacs.awslambda as lam
import awacs.cloudformation as cfn
import awacs.cloudtrail as ct
import awacs.cloudwatch as cw
import awacs.codebuild as cb
import awacs.codecommit as cc
import awacs.codeconnections as conn
import awacs.codepipeline as cp
import awacs.codestar_connections as csc
import awacs.ecr as ecr
import awacs.events as ev
import awacs.iam as iam_actions
import awacs.logs as logs
import awacs.s3 as s3
import awacs.sagemaker as sm
import awacs.servicecatalog as sc
import awacs.sqs as sqs
from awacs.aws import Action, Allow, Condition, Statement, StringEquals, StringLike
from troposphere import Equals, Export, If, Not, Output, Parameter, Ref, Sub, Template, encode_to_dict
from troposphere.iam import ManagedPolicy

from .common import arn, interface, policy_document, service_role_arn, unique_actions
from .project import CODEBUILD_ROLE, CODEPIPELINE_ROLE, EVENTS_ROLE, EXECUTION_ROLE
from .settings import ACCOUNT_ID_LEN, PRODUCT, REGION_MAX_LEN, PolicyNames, ProjectNames, Settings

LAUNCH_ROLE = "AmazonSageMakerServiceCatalogProductsLaunchRole"
# The AWS-managed project roles the project's resources run as, and the service each is passed to.
PASSED_SERVICE_ROLES = {
    CODEBUILD_ROLE: "codebuild.amazonaws.com",
    CODEPIPELINE_ROLE: "codepipeline.amazonaws.com",
    EVENTS_ROLE: "events.amazonaws.com",
}


# IAM and AWS STS quotas: a managed policy document holds at most 6,144 characters, white space excluded.
MANAGED_POLICY_SIZE_MAX = 6144
# The longest values the pseudo parameters take, for the size a document reaches once CloudFormation resolves it.
_WORST_CASE = {"${AWS::Partition}": "aws-us-gov", "${AWS::Region}": "a" * REGION_MAX_LEN,
               "${AWS::AccountId}": "1" * ACCOUNT_ID_LEN}
_SUB = re.compile(r'\{"Fn::Sub":"((?:[^"\\]|\\.)*)"\}')


def resolved_size(statements: list[Statement]) -> int:
    """Characters (white space excluded) of the policy document once CloudFormation resolves it, with the
    longest partition, Region and account id: what IAM compares with its size quota."""
    text = json.dumps(encode_to_dict(policy_document(*statements)), separators=(",", ":"))

    def resolve(match: re.Match) -> str:
        value = match.group(1)
        for pseudo, longest in _WORST_CASE.items():
            value = value.replace(pseudo, longest)
        return f'"{value}"'

    text = _SUB.sub(resolve, text)
    if "Fn::" in text or "${" in text:
        raise ValueError(f"cannot size a policy with intrinsic functions other than plain Fn::Sub: {text[:200]}")
    return len("".join(text.split()))


def pack(statements: list[Statement], limit: int = MANAGED_POLICY_SIZE_MAX) -> list[list[Statement]]:
    """The statements, in order, in as few documents as fit IAM's size quota each."""
    documents: list[list[Statement]] = [[]]
    for statement in statements:
        if resolved_size([statement]) > limit:
            raise ValueError(f"statement {statement.Sid} alone exceeds the {limit}-character policy quota")
        if documents[-1] and resolved_size([*documents[-1], statement]) > limit:
            documents.append([])
        documents[-1].append(statement)
    return documents


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
    functions = [f"function:{_wild(name)}" for name in (names.lambda_function, names.bucket_events_function)]
    # The functions themselves, and their qualified ARNs (the event invoke configuration is set on $LATEST).
    function_arns = [arn("lambda", f) for f in functions] + [arn("lambda", f"{f}:*") for f in functions]
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
        # CloudFormation invokes a custom resource's function with the stack's (the launch role's) credentials.
        _allow(
            "InvokeCustomResource",
            [lam.InvokeFunction],
            [arn("lambda", f"function:{_wild(names.bucket_events_function)}")],
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
            [arn("logs", f"log-group:{_wild(name)}*") for name in (names.log_group, names.bucket_events_log_group)],
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
        # A connection ARN may use either service prefix (codeconnections, or the earlier codestar-connections),
        # and IAM evaluates the action of either prefix against either ARN: grant both actions on both, each
        # with its own PassedToService key (CodeConnections User Guide, "service prefix update").
        *(
            _allow(
                f"PassConnectionToCodePipeline{label}",
                [action],
                [arn("codeconnections", "connection/*"), arn("codestar-connections", "connection/*")],
                Condition(StringEquals({f"{prefix}:PassedToService": "codepipeline.amazonaws.com"})),
            )
            for label, prefix, action in (
                ("", "codeconnections", conn.PassConnection),
                ("Legacy", "codestar-connections", csc.PassConnection),
            )
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
        # The SageMaker SDK reads the pipeline role's trust policy before Pipeline.upsert().
        _allow("ReadExecutionRole", [iam_actions.GetRole], [execution_role_arn]),
        _allow(
            "PipelineCode",
            [s3.PutObject, s3.GetObject],
            [
                arn("s3", _wild(names.artifact_bucket) + "/*"),
            ],
        ),
    ]


# What the project's pipeline and processing jobs need (SageMaker Developer Guide, "CreateProcessingJob API:
# Execution Role Permissions"; "Feature Store offline store" permissions), granted to the execution role
# only. The images are AWS's own, in one AWS account per Region.
PROCESSING_IMAGE_REPOSITORIES = ("sagemaker-scikit-learn", "sagemaker-data-wrangler-container")
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
PIPELINE_INPUT_PREFIXES = ("pipeline-code/*", "input-manifests/*")


def execution_role_statements(names: ProjectNames) -> list[Statement]:
    """What the SageMaker execution role does while a project runs, beyond ProjectRolesPolicy."""
    artifact_bucket = arn("s3", _wild(names.artifact_bucket))
    return [
        _allow(
            "PipelineProcessingJobs",
            [sm.CreateProcessingJob, sm.DescribeProcessingJob, sm.StopProcessingJob, sm.AddTags],
            [arn("sagemaker", "processing-job/pipelines-*")],
        ),
        _allow(
            "ProcessingJobLogGroup",
            [logs.CreateLogGroup, logs.DescribeLogStreams],
            [arn("logs", f"log-group:{PROCESSING_LOG_GROUP}")],
        ),
        _allow(
            "ProcessingJobLogStreams",
            [logs.CreateLogStream, logs.PutLogEvents],
            [arn("logs", f"log-group:{PROCESSING_LOG_GROUP}:log-stream:*")],
        ),
        # PutMetricData has no resource type (Service Authorization Reference): scoped by its namespace.
        _allow(
            "ProcessingJobMetrics",
            [cw.PutMetricData],
            ["*"],
            Condition(StringEquals({"cloudwatch:namespace": PROCESSING_LOG_GROUP})),
        ),
        # GetAuthorizationToken has no resource type; it only returns a registry login token.
        _allow("ImageRegistryLogin", [ecr.GetAuthorizationToken], ["*"]),
        _allow(
            "PullProcessingImages",
            [ecr.BatchCheckLayerAvailability, ecr.GetDownloadUrlForLayer, ecr.BatchGetImage],
            [
                Sub(f"arn:${{AWS::Partition}}:ecr:${{AWS::Region}}:*:repository/{repository}")
                for repository in PROCESSING_IMAGE_REPOSITORIES
            ],
        ),
        # SageMaker lists a processing input's S3 prefix before downloading it.
        _allow(
            "ListPipelineInputs",
            [s3.ListBucket],
            [artifact_bucket],
            Condition(StringLike({"s3:prefix": list(PIPELINE_INPUT_PREFIXES)})),
        ),
        _allow("OfflineStoreBucketAcl", [s3.GetBucketAcl], [artifact_bucket]),
        _allow(
            "OfflineStoreObjectAcl", [s3.PutObjectAcl], [arn("s3", _wild(names.artifact_bucket) + "/feature-store/*")]
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

    # More than one document fits in one managed policy: as many parts as the size quota needs.
    launch_parts = [
        t.add_resource(
            ManagedPolicy(
                "LaunchRolePolicy" + (str(part) if part > 1 else ""),
                **named("launch" + (f"-{part}" if part > 1 else "")),
                Description=f"Create, update and delete s3-fs-ingestion projects (part {part})",
                PolicyDocument=policy_document(*statements),
                Roles=[Ref(launch_role)],
            )
        )
        for part, statements in enumerate(pack(launch_role_statements(settings, names)), start=1)
    ]
    project_roles = t.add_resource(
        ManagedPolicy(
            "ProjectRolesPolicy",
            **named("project-roles"),
            Description="Deploy and run the s3-fs-ingestion pipeline",
            PolicyDocument=policy_document(*project_role_statements(names)),
            Roles=[Ref(build_role), Ref(execution_role)],
        )
    )
    execution = t.add_resource(
        ManagedPolicy(
            "ExecutionRolePolicy",
            **named("execution"),
            Description="Run the s3-fs-ingestion pipeline's processing jobs",
            PolicyDocument=policy_document(*execution_role_statements(names)),
            Roles=[Ref(execution_role)],
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
    return t
