"""The seed-code loop: a repository (CodeCommit, or a CodeConnections connection to GitHub, GitLab or
Bitbucket), CodePipeline and CodeBuild that run the seed code's ``buildspec.yml`` and deploy the project's
SageMaker pipeline whenever the branch changes.

CodeBuild, CodePipeline and the repository-change rule run as the AWS-managed project roles SageMaker
creates when projects are enabled; the connection must be tagged ``sagemaker=true`` for them to use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import awacs.codebuild as cb
import awacs.codecommit as cc
import awacs.codeconnections as conn
import awacs.codepipeline as cp
import awacs.codestar_connections as csc
import awacs.iam as iam_actions
import awacs.logs as logs
import awacs.s3 as s3
import awacs.sagemaker as sm
from awacs.aws import Condition, StringEquals
from troposphere import Equals, GetAtt, If, Output, Ref, Sub, codebuild, codecommit, codepipeline, events
from troposphere.s3 import Bucket

from .. import event_patterns
from ..common import arn, service_role_arn
from ..grants import Grant
from ..names import wild
from ..parameters import ParameterSpec
from .lambdas import product_artifacts_grant
from .project import ProjectTemplate
from .upload_trigger import rule_grant

CODEBUILD_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"  # Python 3.12 and 3.13
# Roles SageMaker creates when projects are enabled for a domain (the AWS-managed project roles).
CODEBUILD_ROLE = "AmazonSageMakerServiceCatalogProductsCodeBuildRole"
CODEPIPELINE_ROLE = "AmazonSageMakerServiceCatalogProductsCodePipelineRole"
EVENTS_ROLE = "AmazonSageMakerServiceCatalogProductsEventsRole"
EXECUTION_ROLE = "AmazonSageMakerServiceCatalogProductsExecutionRole"
# The AWS-managed project roles the project's resources run as, and the service each is passed to.
PASSED_SERVICE_ROLES = {
    CODEBUILD_ROLE: "codebuild.amazonaws.com",
    CODEPIPELINE_ROLE: "codepipeline.amazonaws.com",
    EVENTS_ROLE: "events.amazonaws.com",
}

SOURCE = "Source repository"
SOURCE_PARAMETERS = (
    ParameterSpec(
        "SourceProvider",
        SOURCE,
        "Source repository provider",
        {
            "Type": "String",
            "Default": "CodeCommit",
            "AllowedValues": ["CodeCommit", "CodeConnection"],
            "Description": "Where the project's seed code lives. CodeCommit is closed to new AWS customers.",
        },
        readme="`CodeCommit` (seeded automatically) or `CodeConnection` (GitHub, GitLab, Bitbucket; CodeCommit is "
        "closed to new AWS customers since July 2024)",
    ),
    ParameterSpec(
        "CodeConnectionArn",
        SOURCE,
        "CodeConnections connection ARN",
        {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "(arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:[0-9]{12}"
            ":connection/.+)?",
            "Description": "ARN of an AVAILABLE CodeConnections connection (GitHub, GitLab, Bitbucket), tagged "
            "sagemaker=true: the AWS-managed project roles may use only such connections. CodeConnection only.",
        },
        readme="connection ARN (`CodeConnection` only); the connection must be `AVAILABLE` and tagged "
        "`sagemaker=true`, the only connections the AWS-managed project roles may use",
    ),
    ParameterSpec(
        "RepositoryId",
        SOURCE,
        "Repository (owner/name)",
        {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "([^/\\s]+/[^\\s]+)?",
            "Description": "Full repository id, 'owner/name' (CodeConnection only); push the seed code there.",
        },
        readme="`owner/name` (`CodeConnection` only; push the seed code there yourself)",
    ),
    ParameterSpec(
        "RepositoryBranch",
        SOURCE,
        "Branch",
        {
            "Type": "String",
            "Default": "main",
            "MinLength": 1,
            "MaxLength": 100,
            "Description": "Branch whose changes redeploy the pipeline.",
        },
        readme="branch whose changes redeploy the pipeline",
    ),
)


@dataclass(frozen=True)
class SeedCodeCicd:
    repository: codecommit.Repository
    build: codebuild.Project
    pipeline: codepipeline.Pipeline


def seed_code_cicd(pt: ProjectTemplate, bucket: Bucket, *, build_description: str,
                   build_variables: Mapping[str, object]) -> SeedCodeCicd:
    """Repository + CodeBuild + CodePipeline (+ the CodeCommit change rule) of the project's seed code.
    ``build_variables`` are the product's own CodeBuild environment variables, beside the common ones."""
    pt.template.add_condition("UseCodeCommit", Equals(pt.ref("SourceProvider"), "CodeCommit"))
    pt.add_rule(
        "CodeConnectionNeedsRepository",
        {"Fn::Equals": [pt.table.ref("SourceProvider"), "CodeConnection"]},
        [
            ({"Fn::Not": [{"Fn::Equals": [pt.table.ref("CodeConnectionArn"), ""]}]},
             "SourceProvider CodeConnection needs CodeConnectionArn."),
            ({"Fn::Not": [{"Fn::Equals": [pt.table.ref("RepositoryId"), ""]}]},
             "SourceProvider CodeConnection needs RepositoryId (owner/name)."),
        ],
    )
    repo = repository(pt)
    build = build_project(pt, bucket, build_description, build_variables)
    pipeline = code_pipeline(pt, bucket, repo, build)
    repository_change_rule(pt, repo, pipeline)
    pt.launch.extend(launch_grants(pt))
    pt.project_roles.extend(pipeline_deploy_grants(pt))
    pt.studio_user.extend(studio_user_grants(pt))
    pt.template.add_output([
        Output("SeedCodePipelineName", Value=Ref(pipeline)),
        Output("RepositoryCloneUrlHttp", Condition="UseCodeCommit", Value=GetAtt(repo, "CloneUrlHttp")),
        Output("RepositoryName", Condition="UseCodeCommit", Value=GetAtt(repo, "Name")),
    ])
    return SeedCodeCicd(repo, build, pipeline)


def repository(pt: ProjectTemplate) -> codecommit.Repository:
    settings, product = pt.settings, pt.product
    return pt.template.add_resource(
        codecommit.Repository(
            "SeedCodeRepository",
            Condition="UseCodeCommit",
            RepositoryName=Sub(pt.names.repository),
            RepositoryDescription=Sub("Seed code of SageMaker project ${SageMakerProjectName} (${SageMakerProjectId})"),
            Code=codecommit.Code(
                BranchName=pt.ref("RepositoryBranch"),
                S3=codecommit.S3(
                    Bucket=Sub(settings.artifacts_bucket), Key=product.key(settings, product.seed_code_zip)
                ),
            ),
            Tags=pt.tags(),
        )
    )


def build_project(pt: ProjectTemplate, bucket: Bucket, description: str,
                  product_variables: Mapping[str, object]) -> codebuild.Project:
    variables = {
        "SAGEMAKER_PROJECT_NAME": pt.ref("SageMakerProjectName"),
        "SAGEMAKER_PROJECT_ID": pt.ref("SageMakerProjectId"),
        "SAGEMAKER_PIPELINE_NAME": Sub(pt.names.sagemaker_pipeline),
        "SAGEMAKER_PIPELINE_ROLE_ARN": service_role_arn(EXECUTION_ROLE),
        "ARTIFACT_BUCKET": Ref(bucket),
        **product_variables,
    }
    return pt.template.add_resource(
        codebuild.Project(
            "DeployPipelineBuild",
            Name=Sub(pt.names.build_project),
            Description=description,
            ServiceRole=service_role_arn(CODEBUILD_ROLE),
            Artifacts=codebuild.Artifacts(Type="CODEPIPELINE"),
            Source=codebuild.Source(Type="CODEPIPELINE", BuildSpec="buildspec.yml"),
            Environment=codebuild.Environment(
                Type="LINUX_CONTAINER",
                ComputeType="BUILD_GENERAL1_SMALL",
                Image=CODEBUILD_IMAGE,
                EnvironmentVariables=[
                    codebuild.EnvironmentVariable(Name=name, Type="PLAINTEXT", Value=value)
                    for name, value in variables.items()
                ],
            ),
            TimeoutInMinutes=60,
            # CodeBuild's default, written out for Control Tower CT.CODEBUILD.PR.3.
            LogsConfig=codebuild.LogsConfig(CloudWatchLogs=codebuild.CloudWatchLogs(Status="ENABLED")),
            Tags=pt.tags(),
        )
    )


def source_actions(pt: ProjectTemplate, repo: codecommit.Repository) -> If:
    codecommit_action = codepipeline.Actions(
        Name="Source",
        RunOrder=1,
        OutputArtifacts=[codepipeline.OutputArtifacts(Name="SeedCode")],
        ActionTypeId=codepipeline.ActionTypeId(Category="Source", Owner="AWS", Provider="CodeCommit", Version="1"),
        Configuration={
            "RepositoryName": GetAtt(repo, "Name"),
            "BranchName": pt.ref("RepositoryBranch"),
            "PollForSourceChanges": False,
        },
    )
    connection_action = codepipeline.Actions(
        Name="Source",
        RunOrder=1,
        OutputArtifacts=[codepipeline.OutputArtifacts(Name="SeedCode")],
        ActionTypeId=codepipeline.ActionTypeId(
            Category="Source", Owner="AWS", Provider="CodeStarSourceConnection", Version="1"
        ),
        Configuration={
            "ConnectionArn": pt.ref("CodeConnectionArn"),
            "FullRepositoryId": pt.ref("RepositoryId"),
            "BranchName": pt.ref("RepositoryBranch"),
            "DetectChanges": True,
        },
    )
    return If("UseCodeCommit", [codecommit_action], [connection_action])


def code_pipeline(pt: ProjectTemplate, bucket: Bucket, repo: codecommit.Repository,
                  build: codebuild.Project) -> codepipeline.Pipeline:
    return pt.template.add_resource(
        codepipeline.Pipeline(
            "SeedCodePipeline",
            Name=Sub(pt.names.code_pipeline),
            RoleArn=service_role_arn(CODEPIPELINE_ROLE),
            PipelineType="V2",
            ArtifactStore=codepipeline.ArtifactStore(Type="S3", Location=Ref(bucket)),
            Stages=[
                codepipeline.Stages(Name="Source", Actions=source_actions(pt, repo)),
                codepipeline.Stages(
                    Name="Build",
                    Actions=[
                        codepipeline.Actions(
                            Name="DeployPipeline",
                            RunOrder=1,
                            ActionTypeId=codepipeline.ActionTypeId(
                                Category="Build", Owner="AWS", Provider="CodeBuild", Version="1"
                            ),
                            InputArtifacts=[codepipeline.InputArtifacts(Name="SeedCode")],
                            Configuration={"ProjectName": Ref(build)},
                        )
                    ],
                ),
            ],
            Tags=pt.tags(),
        )
    )


def repository_change_rule(pt: ProjectTemplate, repo: codecommit.Repository,
                           pipeline: codepipeline.Pipeline) -> events.Rule:
    return redeploy_rule(
        pt,
        "RepositoryChangeRule",
        pt.names.repository_rule,
        pipeline,
        description="Redeploys the SageMaker pipeline when the seed code branch changes.",
        pattern=event_patterns.repository_change_pattern(GetAtt(repo, "Arn"), pt.ref("RepositoryBranch")),
        condition="UseCodeCommit",
    )


def redeploy_rule(pt: ProjectTemplate, logical_id: str, name: str, pipeline: codepipeline.Pipeline, *,
                  description: str, pattern: dict[str, Any], condition: str | None = None) -> events.Rule:
    """An EventBridge rule (named ``name``, a ProjectNames string) that starts the seed-code CodePipeline, as the
    AWS-managed Events project role, whenever ``pattern`` matches."""
    pt.launch.append(rule_grant(name))
    rule = events.Rule(
        logical_id,
        Name=Sub(name),
        Description=description,
        EventPattern=pattern,
        State="ENABLED",
        Targets=[
            events.Target(
                Id="SeedCodePipeline",
                Arn=arn("codepipeline", "${Pipeline}", Pipeline=Ref(pipeline)),
                RoleArn=service_role_arn(EVENTS_ROLE),
            )
        ],
    )
    if condition:
        rule.Condition = condition
    resource: events.Rule = pt.template.add_resource(rule)
    return resource


def _pass_role(sid: str, role_arn: object, service: str) -> Grant:
    return Grant(sid, [iam_actions.PassRole], [role_arn], Condition(StringEquals({"iam:PassedToService": service})))


def launch_grants(pt: ProjectTemplate) -> list[Grant]:
    """What CloudFormation calls to create, update and delete the repository, build project and pipeline."""
    names = pt.names
    connections = [arn("codeconnections", "connection/*"), arn("codestar-connections", "connection/*")]
    return [
        *(
            _pass_role(f"Pass{role.removeprefix('AmazonSageMakerServiceCatalogProducts')}", service_role_arn(role),
                       service)
            for role, service in sorted(PASSED_SERVICE_ROLES.items())
        ),
        Grant(
            "ReadServiceRoles", [iam_actions.GetRole], [service_role_arn(role) for role in sorted(PASSED_SERVICE_ROLES)]
        ),
        product_artifacts_grant(pt),
        Grant("ListWithoutResourceScope", [cc.ListRepositories], ["*"]),
        Grant(
            "ProjectRepository",
            [cc.CreateRepository, cc.CreateCommit, cc.DeleteRepository, cc.GetRepository, cc.GetRepositoryTriggers,
             cc.UpdateRepositoryDescription, cc.TagResource, cc.UntagResource, cc.ListTagsForResource],
            [arn("codecommit", wild(names.repository))],
        ),
        Grant(
            "ProjectBuild",
            [cb.CreateProject, cb.DeleteProject, cb.UpdateProject, cb.BatchGetProjects],
            [arn("codebuild", f"project/{wild(names.build_project)}")],
        ),
        Grant(
            "ProjectCodePipeline",
            [cp.CreatePipeline, cp.DeletePipeline, cp.UpdatePipeline, cp.GetPipeline, cp.GetPipelineState,
             cp.TagResource, cp.UntagResource, cp.ListTagsForResource],
            [arn("codepipeline", wild(names.code_pipeline))],
        ),
        # A connection ARN may use either service prefix (codeconnections, or the earlier codestar-connections),
        # and IAM evaluates the action of either prefix against either ARN: grant both actions on both, each
        # with its own PassedToService key (CodeConnections User Guide, "service prefix update").
        Grant("PassConnectionToCodePipeline", [conn.PassConnection], connections,
              Condition(StringEquals({"codeconnections:PassedToService": "codepipeline.amazonaws.com"}))),
        Grant("PassConnectionToCodePipelineLegacy", [csc.PassConnection], connections,
              Condition(StringEquals({"codestar-connections:PassedToService": "codepipeline.amazonaws.com"}))),
    ]


def pipeline_deploy_grants(pt: ProjectTemplate) -> list[Grant]:
    """What the CodeBuild role needs to upsert the project's SageMaker pipeline (and the execution role to
    read its code), beyond its AWS-managed policy."""
    names = pt.names
    execution_role_arn = service_role_arn(EXECUTION_ROLE)
    return [
        Grant(
            "ProjectPipeline",
            [sm.CreatePipeline, sm.UpdatePipeline, sm.DescribePipeline, sm.AddTags, sm.ListTags],
            [arn("sagemaker", f"pipeline/{wild(names.sagemaker_pipeline)}")],
        ),
        _pass_role("PassExecutionRoleToSageMaker", execution_role_arn, "sagemaker.amazonaws.com"),
        # The SageMaker SDK reads the pipeline role's trust policy before Pipeline.upsert().
        Grant("ReadExecutionRole", [iam_actions.GetRole], [execution_role_arn]),
        Grant("PipelineCode", [s3.PutObject, s3.GetObject], [arn("s3", wild(names.artifact_bucket) + "/*")]),
    ]


def studio_user_grants(pt: ProjectTemplate) -> list[Grant]:
    """Clean up what the project's build created outside its stack (the pipeline, the build's logs)."""
    names = pt.names
    return [
        Grant(
            "CleanUpProjectPipeline",
            [sm.DeletePipeline, sm.DescribePipeline],
            [arn("sagemaker", f"pipeline/{wild(names.sagemaker_pipeline)}")],
        ),
        Grant(
            "CleanUpProjectBuildLogs",
            [logs.DeleteLogGroup],
            [arn("logs", f"log-group:/aws/codebuild/{wild(names.build_project)}:*")],
        ),
    ]
