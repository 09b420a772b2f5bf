"""Python Lambdas of a project: code packaged by the build, their roles and log groups, JSON logs, arm64.

:func:`python_function` and :func:`function_role` add the launch-role grants CloudFormation needs for
what they create (the function, its role, its log group, the code object it reads).
"""

from __future__ import annotations

import awacs.awslambda as lam
import awacs.iam as iam_actions
import awacs.logs as logs
import awacs.s3 as s3
from awacs.aws import Allow, Condition, Statement, StringEquals
from troposphere import GetAtt, Ref, Sub, awslambda, iam
from troposphere import logs as cwlogs

from ..common import Suppression, arn, policy_document, suppress, trust_policy
from ..grants import Grant
from ..names import wild
from ..settings import lambda_zip_name
from .project import ProjectTemplate

LAMBDA_RUNTIME = "python3.12"
LOG_RETENTION_DAYS = 365  # a year, the least Control Tower's CT.CLOUDWATCH.PR.2 accepts

NO_VPC = Suppression(
    checkov=("CKV_AWS_117",),
    guard=("LAMBDA_INSIDE_VPC_CHECK",),
    reason="The function only calls public AWS APIs (SageMaker, S3, EventBridge); running it in a VPC would "
    "need subnets and a NAT gateway or VPC endpoints in every account, which a project template cannot assume.",
)
NO_RESERVED_CONCURRENCY = Suppression(
    checkov=("CKV_AWS_115",),
    reason="Lambda keeps at least 100 unreserved concurrent executions per account, so a reservation fails "
    "the whole stack in new accounts whose quota is 10 to 50; the start-ingestion function takes an optional "
    "reservation as a parameter (StartIngestionReservedConcurrency) and the custom resource runs once per "
    "stack operation.",
)
LOGS_NOT_KMS = Suppression(
    checkov=("CKV_AWS_158",),
    guard=("CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK",),
    reason="Log lines hold bucket, key, rule and pipeline names and execution ARNs, no data; CloudWatch "
    "Logs encrypts them at rest with service keys, and a customer managed key per project would add a "
    "key policy granting CloudWatch Logs.",
)

# What CloudFormation calls for AWS::Lambda::Function, ::Permission and ::EventInvokeConfig (registry schemas).
FUNCTION_ACTIONS = (
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
)
ROLE_ACTIONS = (
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
)
LOG_GROUP_ACTIONS = (
    logs.CreateLogGroup,
    logs.DeleteLogGroup,
    logs.PutRetentionPolicy,
    logs.DeleteRetentionPolicy,
    logs.TagResource,
    logs.UntagResource,
    logs.ListTagsForResource,
    logs.GetDataProtectionPolicy,
)


class LambdaLoggingConfig(awslambda.LoggingConfig):
    """troposphere 4.11's LoggingConfig lacks ``LogFormat`` (needed for JSON logs)."""

    props = {**awslambda.LoggingConfig.props, "LogFormat": (str, False)}


def product_artifacts_grant(pt: ProjectTemplate) -> Grant:
    """Read the product's published objects (Lambda code, seed code) of every version."""
    settings = pt.settings
    key = f"{settings.artifacts_prefix}/{pt.product.slug}/*".lstrip("/")
    return Grant(
        "ProjectArtifacts", [s3.GetObject, s3.GetObjectVersion], [arn("s3", f"{settings.artifacts_bucket}/{key}")]
    )


def function_role(pt: ProjectTemplate, logical_id: str, role_and_log_group: tuple[str, str], policy_name: str,
                  *statements: Statement) -> iam.Role:
    """The role of one of the project's Lambdas (name and log group as ProjectNames strings): an inline policy
    ``policy_name`` with ``statements`` plus writing to its own log group."""
    role_name, log_group_name = role_and_log_group
    names = pt.names
    logs_statement = Statement(
        Sid="Logs",
        Effect=Allow,
        Action=[logs.CreateLogStream, logs.PutLogEvents],
        Resource=[arn("logs", f"log-group:{log_group_name}:*")],
    )
    role_arn = arn("iam", f"role{names.role_path}{names.role_prefix}*")
    pt.launch.extend([
        Grant("ProjectRoles", ROLE_ACTIONS, [role_arn]),
        Grant("PassProjectRoleToLambda", [iam_actions.PassRole], [role_arn],
              Condition(StringEquals({"iam:PassedToService": "lambda.amazonaws.com"}))),
    ])
    return pt.template.add_resource(
        iam.Role(
            logical_id,
            RoleName=Sub(role_name),
            Path=names.role_path,
            AssumeRolePolicyDocument=trust_policy("lambda"),
            Policies=[iam.Policy(PolicyName=policy_name, PolicyDocument=policy_document(*statements, logs_statement))],
        )
    )


def python_function(
    pt: ProjectTemplate,
    logical_prefix: str,
    names: tuple[str, str],
    lambda_dir: str,
    role: iam.Role,
    *,
    description: str,
    timeout: int,
    **properties: object,
) -> awslambda.Function:
    """A Python Lambda packaged by the build (``lambda_functions/<lambda_dir>``), with its own log group;
    ``names`` is (function name, log group name) as ProjectNames strings."""
    if lambda_dir not in pt.product.lambdas:
        raise ValueError(f"{pt.product.slug}: add {lambda_dir!r} to the product's lambdas so the build packages it")
    function_name, log_group_name = names
    settings = pt.settings
    log_group = pt.template.add_resource(
        cwlogs.LogGroup(
            f"{logical_prefix}LogGroup", LogGroupName=Sub(log_group_name), RetentionInDays=LOG_RETENTION_DAYS
        )
    )
    suppress(log_group, LOGS_NOT_KMS)
    function = pt.template.add_resource(
        awslambda.Function(
            f"{logical_prefix}Function",
            FunctionName=Sub(function_name),
            Description=description,
            Runtime=LAMBDA_RUNTIME,
            Handler="app.lambda_handler",
            Architectures=["arm64"],
            Code=awslambda.Code(
                S3Bucket=Sub(settings.artifacts_bucket), S3Key=pt.product.key(settings, lambda_zip_name(lambda_dir))
            ),
            Role=GetAtt(role, "Arn"),
            Timeout=timeout,
            MemorySize=256,
            LoggingConfig=LambdaLoggingConfig(
                LogFormat="JSON", LogGroup=Ref(log_group), ApplicationLogLevel="INFO", SystemLogLevel="WARN"
            ),
            TracingConfig=awslambda.TracingConfig(Mode="PassThrough"),
            Tags=pt.tags(),
            **properties,
        )
    )
    function_arn = f"function:{wild(function_name)}"
    pt.launch.extend([
        # The function itself, and its qualified ARNs (an event invoke configuration is set on $LATEST).
        Grant("ProjectFunction", FUNCTION_ACTIONS, [arn("lambda", function_arn), arn("lambda", f"{function_arn}:*")]),
        product_artifacts_grant(pt),
        Grant("ProjectLogGroup", LOG_GROUP_ACTIONS, [arn("logs", f"log-group:{wild(log_group_name)}*")]),
        # List actions that IAM cannot scope to a resource (the resource must be "*"); read-only.
        Grant("ListWithoutResourceScope",
              [logs.DescribeLogGroups, logs.DescribeResourcePolicies, logs.DescribeIndexPolicies], ["*"]),
    ])
    return function


def invoke_grant(function_name: str) -> Grant:
    """CloudFormation invokes a custom resource's function with the stack's (the launch role's) credentials."""
    return Grant("InvokeCustomResource", [lam.InvokeFunction], [arn("lambda", f"function:{wild(function_name)}")])
