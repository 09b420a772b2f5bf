"""What CloudFormation needs from the launch role to create, update and delete a project.

For every resource type of the project templates: the API actions CloudFormation calls for the
properties the template sets (create, update, delete, and the read it does after each), and on which ARN.
The list is checked both ways against the CloudFormation registry schemas that cfn-lint ships (their
``handlers.*.permissions``): every action here appears in the schema, and every schema action is either
here or excluded below with the reason it is not needed (``tests/test_security_launch_role.py``).

Service Catalog itself relies on the AWS-managed ``AmazonSageMakerAdmin-ServiceCatalogProductsServiceRolePolicy``
that SageMaker attaches to the launch role when projects are enabled (see ``MANAGED_POLICY_RELIANCE``);
every resource-level action below is granted by the product's own ``LaunchRolePolicy`` (sm-policies), so
a project does not depend on what the managed policy happens to contain for CodeBuild, Lambda and so on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .scenarios import ACCOUNT, PARTITION, REGION, resource_arn

# Targets other than the resource itself.
CODE_OBJECT = "code object"  # the S3 object CloudFormation reads the code from
PASSED_ROLE = "passed role"  # a role given to the service (needs iam:PassRole with iam:PassedToService)
CONNECTION = "connection"  # the CodeConnections connection the pipeline's source action uses
SERVICE_TOKEN = "service token"  # noqa: S105 - the Lambda function behind a custom resource, not a secret
ANY = "*"  # list actions that IAM cannot scope to a resource
SUBSCRIBED_TOPIC = "subscribed topic"  # sns:Subscribe is authorized on the topic, not on the subscription

# resource type -> action -> target ("self" unless given). Grouped by what the template sets.
REQUIRED: dict[str, dict[str, str]] = {
    "AWS::S3::Bucket": {
        **dict.fromkeys(
            [
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:ListBucket",
                "s3:GetBucketAcl",
                "s3:PutBucketTagging",  # Tags
                "s3:GetBucketTagging",
                "s3:TagResource",  # Tags, through the ABAC tagging API the handler also lists
                "s3:UntagResource",
                "s3:ListTagsForResource",
                "s3:PutEncryptionConfiguration",  # BucketEncryption
                "s3:GetEncryptionConfiguration",
                "s3:PutBucketPublicAccessBlock",  # PublicAccessBlockConfiguration
                "s3:GetBucketPublicAccessBlock",
                "s3:PutBucketOwnershipControls",  # OwnershipControls
                "s3:GetBucketOwnershipControls",
                "s3:PutLifecycleConfiguration",  # LifecycleConfiguration
                "s3:GetLifecycleConfiguration",
                "s3:PutBucketNotification",  # NotificationConfiguration (EventBridge)
                "s3:GetBucketNotification",
                "s3:PutBucketVersioning",  # VersioningConfiguration
                "s3:GetBucketVersioning",
            ],
            "self",
        ),
    },
    "AWS::S3::BucketPolicy": dict.fromkeys(
        ["s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"], "self"
    ),
    "AWS::SQS::Queue": dict.fromkeys(
        [
            "sqs:CreateQueue",
            "sqs:DeleteQueue",
            "sqs:GetQueueUrl",
            "sqs:GetQueueAttributes",
            "sqs:SetQueueAttributes",
            "sqs:ListQueueTags",
            "sqs:TagQueue",
            "sqs:UntagQueue",
        ],
        "self",
    ),
    "AWS::SQS::QueuePolicy": {"sqs:SetQueueAttributes": "self"},
    "AWS::IAM::Role": dict.fromkeys(
        [
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:GetRole",
            "iam:UpdateRole",
            "iam:UpdateRoleDescription",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",  # Policies (inline)
            "iam:GetRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
            "iam:TagRole",
            "iam:UntagRole",
        ],
        "self",
    ),
    "AWS::Logs::LogGroup": {
        **dict.fromkeys(
            [
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",  # RetentionInDays
                "logs:DeleteRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
                "logs:ListTagsForResource",
                "logs:GetDataProtectionPolicy",
            ],
            "self",
        ),
        **dict.fromkeys(["logs:DescribeLogGroups", "logs:DescribeIndexPolicies", "logs:DescribeResourcePolicies"], ANY),
    },
    "AWS::Lambda::Function": {
        **dict.fromkeys(
            [
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:GetFunction",
                "lambda:UpdateFunctionCode",  # Code (a new release)
                "lambda:UpdateFunctionConfiguration",
                "lambda:PutFunctionConcurrency",  # ReservedConcurrentExecutions
                "lambda:DeleteFunctionConcurrency",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetFunctionRecursionConfig",
                "lambda:GetRuntimeManagementConfig",
            ],
            "self",
        ),
        "s3:GetObject": CODE_OBJECT,
        "s3:GetObjectVersion": CODE_OBJECT,
        "iam:PassRole": PASSED_ROLE,
    },
    "AWS::Lambda::Permission": dict.fromkeys(
        ["lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"], "self"
    ),
    "AWS::Lambda::EventInvokeConfig": dict.fromkeys(
        [
            "lambda:PutFunctionEventInvokeConfig",
            "lambda:UpdateFunctionEventInvokeConfig",
            "lambda:DeleteFunctionEventInvokeConfig",
            "lambda:GetFunctionEventInvokeConfig",
        ],
        "self",
    ),
    # The batched start mode's mapping. CreateEventSourceMapping and ListEventSourceMappings have no resource type
    # (Service Authorization Reference, AWS Lambda); create, read, update and delete carry lambda:FunctionArn.
    "AWS::Lambda::EventSourceMapping": {
        "lambda:CreateEventSourceMapping": ANY,
        **dict.fromkeys(
            [
                "lambda:GetEventSourceMapping",
                "lambda:UpdateEventSourceMapping",  # BatchSize, MaximumBatchingWindowInSeconds, Enabled
                "lambda:DeleteEventSourceMapping",
                "lambda:TagResource",  # Tags
                "lambda:UntagResource",
                "lambda:ListTags",
            ],
            "self",
        ),
    },
    "AWS::Events::Rule": {
        **dict.fromkeys(
            [
                "events:PutRule",
                "events:DeleteRule",
                "events:DescribeRule",
                "events:PutTargets",
                "events:RemoveTargets",
                "events:ListTargetsByRule",
                "events:TagResource",
                "events:UntagResource",
                "events:ListTagsForResource",
            ],
            "self",
        ),
        "iam:PassRole": PASSED_ROLE,  # targets with a RoleArn
    },
    "AWS::CloudTrail::Trail": dict.fromkeys(
        [
            "cloudtrail:CreateTrail",
            "cloudtrail:UpdateTrail",
            "cloudtrail:DeleteTrail",
            "cloudtrail:GetTrail",
            "cloudtrail:GetTrailStatus",
            "cloudtrail:StartLogging",  # IsLogging
            "cloudtrail:StopLogging",
            "cloudtrail:PutEventSelectors",  # AdvancedEventSelectors
            "cloudtrail:GetEventSelectors",
            "cloudtrail:GetInsightSelectors",
            "cloudtrail:AddTags",
            "cloudtrail:RemoveTags",
            "cloudtrail:ListTags",
        ],
        "self",
    )
    | {"cloudtrail:DescribeTrails": ANY},
    "AWS::CodeCommit::Repository": {
        **dict.fromkeys(
            [
                "codecommit:CreateRepository",
                "codecommit:CreateCommit",  # Code (the seed code's initial commit)
                "codecommit:DeleteRepository",
                "codecommit:GetRepository",
                "codecommit:GetRepositoryTriggers",
                "codecommit:UpdateRepositoryDescription",
                "codecommit:TagResource",
                "codecommit:UntagResource",
                "codecommit:ListTagsForResource",
            ],
            "self",
        ),
        "codecommit:ListRepositories": ANY,
        "s3:GetObject": CODE_OBJECT,
        "s3:GetObjectVersion": CODE_OBJECT,
    },
    # No registry schema (CodeBuild projects are still a legacy resource type): from the CodeBuild API.
    "AWS::CodeBuild::Project": {
        **dict.fromkeys(
            [
                "codebuild:CreateProject",
                "codebuild:UpdateProject",
                "codebuild:DeleteProject",
                "codebuild:BatchGetProjects",
            ],
            "self",
        ),
        "iam:PassRole": PASSED_ROLE,
    },
    "AWS::CodePipeline::Pipeline": {
        **dict.fromkeys(
            [
                "codepipeline:CreatePipeline",
                "codepipeline:UpdatePipeline",
                "codepipeline:DeletePipeline",
                "codepipeline:GetPipeline",
                "codepipeline:GetPipelineState",
                "codepipeline:TagResource",
                "codepipeline:UntagResource",
                "codepipeline:ListTagsForResource",
            ],
            "self",
        ),
        "iam:GetRole": PASSED_ROLE,
        "iam:PassRole": PASSED_ROLE,
        "codestar-connections:PassConnection": CONNECTION,
    },
    "AWS::SNS::Topic": dict.fromkeys(
        [
            "sns:CreateTopic",
            "sns:DeleteTopic",
            "sns:GetTopicAttributes",
            "sns:SetTopicAttributes",  # DisplayName, KmsMasterKeyId
            "sns:ListSubscriptionsByTopic",
            "sns:TagResource",  # Tags
            "sns:UntagResource",
            "sns:ListTagsForResource",
            "sns:GetDataProtectionPolicy",
        ],
        "self",
    ),
    "AWS::SNS::TopicPolicy": {"sns:SetTopicAttributes": "self"},
    # The optional e-mail subscription. Unsubscribe and GetSubscriptionAttributes name the subscription and have
    # no resource type in the Service Authorization Reference (Amazon SNS): IAM evaluates them on "*".
    "AWS::SNS::Subscription": {
        "sns:Subscribe": SUBSCRIBED_TOPIC,
        "sns:Unsubscribe": ANY,
        "sns:GetSubscriptionAttributes": ANY,
    },
    "AWS::CloudWatch::Alarm": dict.fromkeys(
        [
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:DeleteAlarms",
            "cloudwatch:TagResource",  # Tags
            "cloudwatch:UntagResource",
            "cloudwatch:ListTagsForResource",
        ],
        "self",
    ),
    # A metric filter is authorized on its log group.
    "AWS::Logs::MetricFilter": dict.fromkeys(
        ["logs:PutMetricFilter", "logs:DeleteMetricFilter", "logs:DescribeMetricFilters"], "self"
    ),
    # CloudFormation invokes the custom resource's function with the launch role (custom resources,
    # "Service token" in the CloudFormation User Guide); the function then acts with its own role.
    "Custom::DataBucketEvents": {"lambda:InvokeFunction": SERVICE_TOKEN},
}

# Schema handler permissions the project does not need, by resource type: action pattern -> reason.
EXCLUDED: dict[str, dict[str, str]] = {
    "AWS::S3::Bucket": {
        "s3tables:*": "S3 Tables (MetadataTableConfiguration) are not used",
        "s3:*MetadataTableConfiguration": "S3 Metadata tables are not configured",
        "s3:*MetadataJournalTableConfiguration": "S3 Metadata tables are not configured",
        "s3:*MetadataInventoryTableConfiguration": "S3 Metadata tables are not configured",
        "s3:*MetadataAnnotationTableConfiguration": "S3 Metadata tables are not configured",
        "s3:*AnalyticsConfiguration": "AnalyticsConfigurations are not set",
        "s3:*BucketCORS": "CorsConfiguration is not set",
        "s3:*BucketCors": "CorsConfiguration is not set",
        "s3:*InventoryConfiguration": "InventoryConfigurations are not set",
        "s3:*MetricsConfiguration": "MetricsConfigurations are not set",
        "s3:*BucketReplication": "ReplicationConfiguration is not set",
        "s3:*ReplicationConfiguration": "ReplicationConfiguration is not set",
        "s3:*BucketWebsite": "WebsiteConfiguration is not set",
        "s3:*AccelerateConfiguration": "AccelerateConfiguration is not set",
        "s3:*ObjectLockConfiguration": "ObjectLockConfiguration is not set",
        "s3:*BucketLogging": "LoggingConfiguration is not set (see the CKV_AWS_18 suppression)",
        "s3:*IntelligentTieringConfiguration": "IntelligentTieringConfigurations are not set",
        "s3:*BucketAbac": "attribute-based access control is not enabled on the buckets",
        "s3:PutBucketAcl": "ACLs are disabled (ObjectOwnership BucketOwnerEnforced); AccessControl is not set",
        "s3:PutObjectAcl": "ACLs are disabled (ObjectOwnership BucketOwnerEnforced)",
        "s3:DeleteObject": "the template writes no objects into its buckets; the buckets are retained on delete",
        "s3:DeleteBucketEncryption": "BucketEncryption is always set, never removed",
        "s3:DeleteBucketLifecycle": "LifecycleConfiguration is always set, never removed",
        "iam:PassRole": "no replication or inventory role is configured",
    },
    "AWS::SQS::Queue": {},
    "AWS::IAM::Role": {
        "iam:AttachRolePolicy": "the role has no ManagedPolicyArns (inline policy only)",
        "iam:DetachRolePolicy": "the role has no ManagedPolicyArns (inline policy only)",
        "iam:*RolePermissionsBoundary": "no PermissionsBoundary is set",
    },
    "AWS::Logs::LogGroup": {
        "logs:*DataProtectionPolicy": "DataProtectionPolicy is not set (reading it is granted)",
        "logs:CreateLogDelivery": "no log delivery is configured",
        "s3:REST.PUT.OBJECT": "no log delivery to S3 is configured",
        "firehose:*": "no log delivery to Firehose is configured",
        "logs:*IndexPolic*": "FieldIndexPolicies are not set (describing them is granted)",
        "logs:*ResourcePolic*": "ResourcePolicyDocument is not set (describing them is granted)",
        "logs:*KmsKey": "KmsKeyId is not set (see the CKV_AWS_158 suppression)",
        "logs:PutLogGroupDeletionProtection": "deletion protection is not set",
        "logs:PutBearerTokenAuthentication": "bearer token authentication is not set",
    },
    "AWS::Lambda::Function": {
        "ec2:*": "the function has no VpcConfig (see the CKV_AWS_117 suppression)",
        "elasticfilesystem:*": "the function mounts no file system (no FileSystemConfigs)",
        "s3files:*": "the function mounts no file system (no FileSystemConfigs)",
        "kms:*": "no KmsKeyArn (see the CKV_AWS_173 suppression)",
        "lambda:*CodeSigningConfig": "no CodeSigningConfigArn (reading the function's config is granted)",
        "lambda:GetLayerVersion": "the function uses no Layers",
        "lambda:PutRuntimeManagementConfig": "RuntimeManagementConfig is not set (reading it is granted)",
        "lambda:PutFunctionRecursionConfig": "RecursiveLoop is not set (reading it is granted)",
        "lambda:*FunctionScalingConfig": "no capacity provider (Lambda Managed Instances) is used",
        "lambda:PassCapacityProvider": "no capacity provider (Lambda Managed Instances) is used",
        "lambda:AssociateRuntimeAlias": "no runtime alias is used",
        "lambda:PublishVersion": "no SnapStart or AutoPublish; the function runs as $LATEST",
    },
    "AWS::Lambda::Permission": {},
    "AWS::Lambda::EventInvokeConfig": {},
    "AWS::Lambda::EventSourceMapping": {
        "kms:*": "no KmsKeyArn (the mapping's filter criteria are not encrypted with a customer managed key)",
    },
    "AWS::Events::Rule": {},
    "AWS::S3::BucketPolicy": {},
    "AWS::SQS::QueuePolicy": {},
    "AWS::CloudTrail::Trail": {
        "cloudtrail:PutInsightSelectors": "InsightSelectors are not set (reading them is granted)",
        "cloudtrail:*EventConfiguration": "no event aggregation or maximum event size is configured",
        "iam:GetRole": "no CloudWatchLogsRoleArn (the trail does not deliver to CloudWatch Logs)",
        "iam:PassRole": "no CloudWatchLogsRoleArn (the trail does not deliver to CloudWatch Logs)",
        "iam:CreateServiceLinkedRole": "not an organization trail",
        "organizations:*": "not an organization trail",
    },
    "AWS::CodeCommit::Repository": {
        "codecommit:*RepositoryTriggers": "Triggers are not set (reading them is granted)",
        "codecommit:UpdateRepositoryName": "the repository name never changes for a project",
        "codecommit:UpdateRepositoryEncryptionKey": "KmsKeyId is not set",
    },
    "Custom::DataBucketEvents": {},  # no registry schema: CloudFormation only invokes the service token
    "AWS::SNS::Topic": {
        "sns:Subscribe": "the Subscription property is not set: the e-mail subscription is an AWS::SNS::Subscription",
        "sns:Unsubscribe": "the Subscription property is not set: the e-mail subscription is an AWS::SNS::Subscription",
        "sns:PutDataProtectionPolicy": "DataProtectionPolicy is not set (reading it is granted)",
        "iam:GetRole": "DeliveryStatusLogging is not set (no feedback role)",
        "iam:PassRole": "DeliveryStatusLogging is not set (no feedback role)",
    },
    "AWS::SNS::TopicPolicy": {},
    "AWS::SNS::Subscription": {
        "sns:SetSubscriptionAttributes": "FilterPolicy, RawMessageDelivery, DeliveryPolicy, RedrivePolicy and "
        "ReplayPolicy are not set; Protocol, Endpoint and TopicArn are create-only, so a new address replaces "
        "the subscription",
        "iam:GetRole": "no SubscriptionRoleArn (Firehose subscriptions only)",
        "iam:PassRole": "no SubscriptionRoleArn (Firehose subscriptions only)",
    },
    "AWS::CloudWatch::Alarm": {},
    "AWS::Logs::MetricFilter": {},
    "AWS::CodePipeline::Pipeline": {
        "codepipeline:*StageTransition": "DisableInboundStageTransitions is not set",
        "codepipeline:StartPipelineExecution": "RestartExecutionOnUpdate is not set",
    },
}

# What the launch role gets from the AWS-managed policy instead of from LaunchRolePolicy.
MANAGED_POLICY = "AmazonSageMakerAdmin-ServiceCatalogProductsServiceRolePolicy"
MANAGED_POLICY_RELIANCE: dict[str, str] = {
    "cloudformation:CreateStack, UpdateStack, DeleteStack, DescribeStacks, DescribeStackEvents on stack/SC-*": (
        "Service Catalog provisions every product as an SC-* stack; SageMaker attaches the managed policy to "
        "the launch role when projects are enabled, and this product's template cannot change that"
    ),
    "s3:GetObject on objects tagged servicecatalog:provisioning=true": (
        "Service Catalog reads the product template; the release command tags every object it publishes"
    ),
}


@dataclass(frozen=True)
class Requirement:
    """One action CloudFormation calls with the launch role, on one ARN (and for PassRole, one service)."""

    logical_id: str
    resource_type: str
    action: str
    arn: str
    passed_to: str | None = None
    context: tuple[tuple[str, str], ...] = ()  # condition keys the request carries (policy_eval.allows(context=))


# The service each role-carrying property passes its role to.
PASSED_TO = {
    "AWS::Lambda::Function": "lambda.amazonaws.com",
    "AWS::CodeBuild::Project": "codebuild.amazonaws.com",
    "AWS::CodePipeline::Pipeline": "codepipeline.amazonaws.com",
    "AWS::Events::Rule": "events.amazonaws.com",
}


def _s3_object(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


def _queue_arn(url: str) -> str:
    return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[-1]}"


def _function_arn(name_or_arn: str, qualifier: str | None = None) -> str:
    base = (
        name_or_arn
        if name_or_arn.startswith("arn:")
        else f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name_or_arn}"
    )
    return f"{base}:{qualifier}" if qualifier else base


def _self_arns(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == "AWS::S3::BucketPolicy":
        return [f"arn:{PARTITION}:s3:::{props['Bucket']}"]
    if resource_type == "AWS::SQS::QueuePolicy":
        return [_queue_arn(url) for url in props["Queues"]]
    if resource_type == "AWS::SNS::TopicPolicy":
        return list(props["Topics"])
    if resource_type == "AWS::Lambda::Permission":
        return [_function_arn(props["FunctionName"])]
    if resource_type == "AWS::Lambda::EventInvokeConfig":
        return [_function_arn(props["FunctionName"], props.get("Qualifier"))]
    found = resource_arn(resource_type, props)
    if found is None:
        raise KeyError(f"no ARN rule for {resource_type}: add one to security/scenarios.py")
    return [found]


def _targets(resource_type: str, props: Mapping[str, Any], target: str) -> list[str]:  # noqa: C901 - a table
    if target == "self":
        return _self_arns(resource_type, props)
    if target == ANY:
        return ["*"]
    if target == CODE_OBJECT:
        code = props["Code"]
        if resource_type == "AWS::CodeCommit::Repository":
            return [_s3_object(code["S3"]["Bucket"], code["S3"]["Key"])]
        return [_s3_object(code["S3Bucket"], code["S3Key"])]
    if target == PASSED_ROLE:
        if resource_type == "AWS::Lambda::Function":
            return [props["Role"]]
        if resource_type == "AWS::CodeBuild::Project":
            return [props["ServiceRole"]]
        if resource_type == "AWS::CodePipeline::Pipeline":
            return [props["RoleArn"]]
        if resource_type == "AWS::Events::Rule":
            return [t["RoleArn"] for t in props.get("Targets", []) if "RoleArn" in t]
    if target == SUBSCRIBED_TOPIC and resource_type == "AWS::SNS::Subscription":
        return [props["TopicArn"]]
    if target == SERVICE_TOKEN:
        return [_function_arn(props["ServiceToken"])]
    if target == CONNECTION and resource_type == "AWS::CodePipeline::Pipeline":
        return [
            action["Configuration"]["ConnectionArn"]
            for stage in props["Stages"]
            for action in stage["Actions"]
            if "ConnectionArn" in action.get("Configuration", {})
        ]
    raise KeyError(f"no target rule {target!r} for {resource_type}")


# Requests that carry lambda:FunctionArn (Service Authorization Reference, AWS Lambda: the event source mapping
# actions' condition keys): the function the mapping invokes.
FUNCTION_ARN_ACTIONS = frozenset({
    "lambda:CreateEventSourceMapping",
    "lambda:GetEventSourceMapping",
    "lambda:UpdateEventSourceMapping",
    "lambda:DeleteEventSourceMapping",
})


def _context(resource_type: str, action: str, props: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    if resource_type == "AWS::Lambda::EventSourceMapping" and action in FUNCTION_ARN_ACTIONS:
        return (("lambda:FunctionArn", _function_arn(props["FunctionName"])),)
    return ()


def requirements(resources: Mapping[str, Mapping[str, Any]]) -> Iterator[Requirement]:
    """Every (action, ARN) CloudFormation needs for the resolved resources of one scenario."""
    for logical_id, resource in sorted(resources.items()):
        resource_type = resource["Type"]
        if resource_type not in REQUIRED:
            raise KeyError(f"{logical_id}: {resource_type} is not in security/launch_role.py REQUIRED")
        props = resource.get("Properties", {})
        for action, target in sorted(REQUIRED[resource_type].items()):
            passed_to = PASSED_TO.get(resource_type) if action == "iam:PassRole" else None
            for arn in _targets(resource_type, props, target):
                if target == CONNECTION:
                    # Either prefix's action may be evaluated against a connection ARN of either prefix
                    # (codeconnections, or the earlier codestar-connections): both must be granted.
                    for prefix in ("codeconnections", "codestar-connections"):
                        yield Requirement(logical_id, resource_type, f"{prefix}:PassConnection", arn,
                                          "codepipeline.amazonaws.com")
                    continue
                yield Requirement(logical_id, resource_type, action, arn, passed_to,
                                  _context(resource_type, action, props))
