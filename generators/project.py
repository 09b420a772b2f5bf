"""project-s3-fs-ingestion: the SageMaker Project a Studio user creates from the catalog.

Watches an S3 bucket/prefix (CloudTrail data events or S3's own EventBridge events), starts the
project's SageMaker Pipeline for every uploaded file through a Lambda, and redeploys that pipeline with
CodePipeline + CodeBuild whenever the project's seed code changes.
"""

from __future__ import annotations

import awacs.events as awacs_events
import awacs.logs as logs
import awacs.s3 as awacs_s3
import awacs.sagemaker as sagemaker
import awacs.sqs as sqs
from awacs.aws import Allow, Condition, Principal, Statement, StringEquals
from troposphere import (
    Equals,
    GetAtt,
    If,
    Not,
    Output,
    Parameter,
    Ref,
    Sub,
    Tags,
    Template,
    awslambda,
    cloudtrail,
    codebuild,
    codecommit,
    codepipeline,
    events,
    iam,
)
from troposphere import logs as cwlogs
from troposphere import sqs as sqs_resources
from troposphere.cloudformation import CustomResource

from . import event_patterns
from .common import (
    Suppression,
    add_secure_bucket,
    arn,
    deny_insecure_transport,
    interface,
    policy_document,
    secure_bucket,
    service_role_arn,
    suppress,
    trust_policy,
)
from .data_wrangler import DATA_WRANGLER_REGIONS
from .settings import (
    BUCKET_EVENTS_LAMBDA,
    LAMBDA_NAME,
    PROJECT_ID_MAX,
    PROJECT_ID_PATTERN,
    PROJECT_NAME_MAX,
    PROJECT_NAME_PATTERN,
    SEED_CODE_ZIP,
    ProjectNames,
    Settings,
    check_budgets,
    lambda_zip_name,
)

LAMBDA_RUNTIME = "python3.12"
CODEBUILD_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"  # Python 3.12 and 3.13
# Roles SageMaker creates when projects are enabled for a domain (the AWS-managed project roles).
CODEBUILD_ROLE = "AmazonSageMakerServiceCatalogProductsCodeBuildRole"
CODEPIPELINE_ROLE = "AmazonSageMakerServiceCatalogProductsCodePipelineRole"
EVENTS_ROLE = "AmazonSageMakerServiceCatalogProductsEventsRole"
EXECUTION_ROLE = "AmazonSageMakerServiceCatalogProductsExecutionRole"
UPLOAD_RULE_ID = "UploadRule"
TRANSIENT_DAYS = 30
MANIFEST_PREFIX = "input-manifests/"  # one-object manifests the Lambda writes for very long keys
# CloudTrail quotas (CloudTrail User Guide, "Quotas in AWS CloudTrail"): 5 trails per Region, not adjustable.
TRAILS_PER_REGION = 5


class LambdaLoggingConfig(awslambda.LoggingConfig):
    """troposphere 4.11's LoggingConfig lacks ``LogFormat`` (needed for JSON logs)."""

    props = {**awslambda.LoggingConfig.props, "LogFormat": (str, False)}


class Parameters:
    """The template's parameters, added in display order; each generator reads them from here."""

    def __init__(self, t: Template) -> None:
        self.project_name = t.add_parameter(
            Parameter(
                "SageMakerProjectName",
                Type="String",
                MinLength=1,
                MaxLength=PROJECT_NAME_MAX,
                AllowedPattern=PROJECT_NAME_PATTERN.strip("^$"),
                Description="Name of the project (set by SageMaker).",
            )
        )
        self.project_id = t.add_parameter(
            Parameter(
                "SageMakerProjectId",
                Type="String",
                MinLength=1,
                MaxLength=PROJECT_ID_MAX,
                AllowedPattern=PROJECT_ID_PATTERN.strip("^$"),
                Description="Service-generated id of the project (set by SageMaker).",
            )
        )
        self.data_bucket = t.add_parameter(
            Parameter(
                "DataBucketName",
                Type="String",
                MinLength=3,
                MaxLength=63,
                AllowedPattern="[a-z0-9][a-z0-9.-]*[a-z0-9]",
                Description="Existing bucket whose uploads start the ingestion.",
            )
        )
        self.data_prefix = t.add_parameter(
            Parameter(
                "DataPrefix",
                Type="String",
                MinLength=2,
                MaxLength=512,
                Default="incoming/",
                AllowedPattern="[^/*?\\\\][^*?\\\\]*/",
                ConstraintDescription="a key prefix ending with '/', not starting with '/', without *, ? or backslash",
                Description="Key prefix (folder) to watch, ending with '/'; 'incoming/' excludes 'incoming-old/'.",
            )
        )
        self.data_suffix = t.add_parameter(
            Parameter(
                "DataSuffix",
                Type="String",
                Default="",
                MaxLength=64,
                AllowedPattern="[^*?/\\\\]*",
                Description="Optional file-name suffix, e.g. '.csv'. Empty: every file under the prefix.",
            )
        )
        self.feature_group = t.add_parameter(
            Parameter(
                "FeatureGroupName",
                Type="String",
                MinLength=1,
                MaxLength=64,
                AllowedPattern="[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}",
                Description="Feature group the rows are ingested into (created by the seed code's build).",
            )
        )
        self.transform_mode = t.add_parameter(
            Parameter(
                "TransformMode",
                Type="String",
                Default="Script",
                AllowedValues=["Script", "DataWranglerFlow"],
                Description="Script: the seed code's pandas job. DataWranglerFlow: a Data Wrangler flow.",
            )
        )
        self.flow_url = t.add_parameter(
            Parameter(
                "DataWranglerFlowUrl",
                Type="String",
                Default="",
                AllowedPattern="(s3://(sagemaker-|aws-glue-)[a-z0-9.-]*[a-z0-9]/.+)?",
                ConstraintDescription="an s3:// URL in a bucket named sagemaker-* or aws-glue-* (the only buckets "
                "the project's CodeBuild role may read)",
                Description="s3:// URL of the .flow file (DataWranglerFlow mode only), in a bucket named "
                "sagemaker-* or aws-glue-*: the AWS-managed CodeBuild project role reads no other bucket.",
            )
        )
        self.flow_output = t.add_parameter(
            Parameter(
                "DataWranglerOutputName",
                Type="String",
                Default="",
                Description="Output node of the flow to ingest, e.g. '<node-id>.default' (DataWranglerFlow mode only).",
            )
        )
        self.trigger_mode = t.add_parameter(
            Parameter(
                "TriggerMode",
                Type="String",
                Default="S3EventBridge",
                AllowedValues=["S3EventBridge", "CloudTrail"],
                Description="S3EventBridge (default): the project turns on the data bucket's EventBridge "
                "notifications (merged with its other notifications, undone on delete); no trail, cheaper, faster. "
                f"CloudTrail: one data-event trail per project; a Region holds at most {TRAILS_PER_REGION} trails "
                "(hard quota), so use it only where bucket notifications cannot be changed.",
            )
        )
        self.source_provider = t.add_parameter(
            Parameter(
                "SourceProvider",
                Type="String",
                Default="CodeCommit",
                AllowedValues=["CodeCommit", "CodeConnection"],
                Description="Where the project's seed code lives. CodeCommit is closed to new AWS customers.",
            )
        )
        self.connection_arn = t.add_parameter(
            Parameter(
                "CodeConnectionArn",
                Type="String",
                Default="",
                AllowedPattern="(arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:[0-9]{12}:connection/.+)?",
                Description="ARN of an AVAILABLE CodeConnections connection (GitHub, GitLab, Bitbucket), tagged "
                "sagemaker=true: the AWS-managed project roles may use only such connections. CodeConnection only.",
            )
        )
        self.repository_id = t.add_parameter(
            Parameter(
                "RepositoryId",
                Type="String",
                Default="",
                AllowedPattern="([^/\\s]+/[^\\s]+)?",
                Description="Full repository id, 'owner/name' (CodeConnection only); push the seed code there.",
            )
        )
        self.branch = t.add_parameter(
            Parameter(
                "RepositoryBranch",
                Type="String",
                Default="main",
                MinLength=1,
                MaxLength=100,
                Description="Branch whose changes redeploy the pipeline.",
            )
        )
        self.instance_type = t.add_parameter(
            Parameter(
                "ProcessingInstanceType",
                Type="String",
                Default="ml.m5.xlarge",
                AllowedPattern="ml\\.[a-z0-9]+\\.[a-z0-9]+",
                Description="Instance type of the processing job.",
            )
        )
        self.instance_count = t.add_parameter(
            Parameter(
                "ProcessingInstanceCount",
                Type="Number",
                Default=1,
                MinValue=1,
                MaxValue=20,
                Description="Instances of the processing job; above 1 the input is sharded by S3 key.",
            )
        )
        self.reserved_concurrency = t.add_parameter(
            Parameter(
                "StartIngestionReservedConcurrency",
                Type="Number",
                Default="0",
                MinValue=0,
                MaxValue=1000,
                Description="Concurrent executions reserved for the start-ingestion Lambda; 0 (default): none. "
                "Lambda keeps at least 100 unreserved executions per account, so any reservation fails in "
                "accounts whose concurrency quota is below 100 plus the reservation.",
            )
        )

    def interface(self) -> dict:
        groups = [
            ("Data location", [self.data_bucket, self.data_prefix, self.data_suffix]),
            ("Destination", [self.feature_group]),
            (
                "Transformation",
                [self.transform_mode, self.flow_url, self.flow_output, self.instance_type, self.instance_count],
            ),
            ("Trigger", [self.trigger_mode, self.reserved_concurrency]),
            ("Source repository", [self.source_provider, self.connection_arn, self.repository_id, self.branch]),
            ("SageMaker project (set by SageMaker)", [self.project_name, self.project_id]),
        ]
        labels = {
            "DataBucketName": "Data bucket",
            "DataPrefix": "Key prefix to watch",
            "DataSuffix": "File-name suffix (optional)",
            "FeatureGroupName": "Feature group name",
            "TransformMode": "Transformation",
            "DataWranglerFlowUrl": "Data Wrangler flow S3 URL",
            "DataWranglerOutputName": "Data Wrangler output name",
            "ProcessingInstanceType": "Processing instance type",
            "ProcessingInstanceCount": "Processing instance count",
            "TriggerMode": "Trigger",
            "StartIngestionReservedConcurrency": "Reserved concurrency of the start Lambda (0: none)",
            "SourceProvider": "Source repository provider",
            "CodeConnectionArn": "CodeConnections connection ARN",
            "RepositoryId": "Repository (owner/name)",
            "RepositoryBranch": "Branch",
            "SageMakerProjectName": "Project name",
            "SageMakerProjectId": "Project id",
        }
        return interface(groups, labels)


def add_conditions_and_rules(t: Template, p: Parameters) -> None:
    t.add_condition("UseCloudTrail", Equals(Ref(p.trigger_mode), "CloudTrail"))
    t.add_condition("HasDataSuffix", Not(Equals(Ref(p.data_suffix), "")))
    t.add_condition("UseCodeCommit", Equals(Ref(p.source_provider), "CodeCommit"))
    t.add_condition("HasReservedConcurrency", Not(Equals(Ref(p.reserved_concurrency), "0")))
    t.add_rule(
        "CodeConnectionNeedsRepository",
        {
            "RuleCondition": {"Fn::Equals": [{"Ref": "SourceProvider"}, "CodeConnection"]},
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "CodeConnectionArn"}, ""]}]},
                    "AssertDescription": "SourceProvider CodeConnection needs CodeConnectionArn.",
                },
                {
                    "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "RepositoryId"}, ""]}]},
                    "AssertDescription": "SourceProvider CodeConnection needs RepositoryId (owner/name).",
                },
            ],
        },
    )
    t.add_rule(
        "DataWranglerNeedsFlow",
        {
            "RuleCondition": {"Fn::Equals": [{"Ref": "TransformMode"}, "DataWranglerFlow"]},
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DataWranglerFlowUrl"}, ""]}]},
                    "AssertDescription": "TransformMode DataWranglerFlow needs DataWranglerFlowUrl.",
                },
                {
                    "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DataWranglerOutputName"}, ""]}]},
                    "AssertDescription": "TransformMode DataWranglerFlow needs DataWranglerOutputName.",
                },
                {
                    "Assert": {"Fn::Contains": [list(DATA_WRANGLER_REGIONS), {"Ref": "AWS::Region"}]},
                    "AssertDescription": "TransformMode DataWranglerFlow: the Data Wrangler container does not "
                    "exist in this Region; use Script, or create the project in one of "
                    + ", ".join(DATA_WRANGLER_REGIONS) + ".",
                },
            ],
        },
    )


def project_tags(p: Parameters) -> Tags:
    return Tags({"sagemaker:project-name": Ref(p.project_name), "sagemaker:project-id": Ref(p.project_id)})


def artifact_bucket(t: Template, names: ProjectNames, p: Parameters):
    bucket = secure_bucket(
        "ArtifactBucket",
        Sub(names.artifact_bucket),
        versioned=True,
        expirations={"failed-rows/": 90, MANIFEST_PREFIX: TRANSIENT_DAYS},
        noncurrent_days=TRANSIENT_DAYS,
        tags=project_tags(p),
    )
    suppress(
        bucket,
        Suppression(
            checkov=("CKV_AWS_18",),
            guard=("S3_BUCKET_LOGGING_ENABLED_CHECK",),
            reason="Server access logging would need a separate log bucket per project. Bucket-level changes "
            "are recorded by the account's CloudTrail management events; object-level auditing, where an "
            "organisation requires it, belongs in its organisation trail (S3 data events), not per project.",
        ),
        OBJECT_LOCK_NOT_USED,
    )
    return add_secure_bucket(t, bucket)


def trail(t: Template, names: ProjectNames, p: Parameters) -> cloudtrail.Trail:
    """Data-event trail for the three upload operations under the watched prefix only (CloudTrail mode)."""
    trail_arn = arn("cloudtrail", f"trail/{names.trail}")
    bucket = secure_bucket(
        "TrailBucket",
        Sub(names.trail_bucket),
        expirations={"": TRANSIENT_DAYS},
        noncurrent_days=TRANSIENT_DAYS,
        tags=project_tags(p),
        versioned=True,
        kms=False,
    )
    bucket.Condition = "UseCloudTrail"
    suppress(
        bucket,
        Suppression(
            checkov=("CKV_AWS_18",),
            guard=("S3_BUCKET_LOGGING_ENABLED_CHECK",),
            reason="The bucket only receives the trail's log files, which expire after 30 days; server access "
            "logging would need another bucket per project for transient data, and the trail's log file "
            "validation already detects tampering.",
        ),
        OBJECT_LOCK_NOT_USED,
        Suppression(
            guard=("S3_BUCKET_DEFAULT_ENCRYPTION_KMS_CHECK",),
            reason="CloudTrail delivers to an SSE-KMS bucket only when the key policy grants "
            "cloudtrail.amazonaws.com GenerateDataKey and DescribeKey (CloudTrail User Guide, 'Encrypting "
            "CloudTrail log files with AWS KMS keys'); the AWS managed aws/s3 key cannot grant that, so it would "
            "take a customer managed key per project for the optional trail's transient upload events (SSE-S3, "
            "expired after 30 days). Accounts enforcing CT.S3.PR.10 use the default S3EventBridge trigger, which "
            "creates no trail bucket.",
        ),
    )
    source = Condition(StringEquals({"aws:SourceArn": trail_arn, "aws:SourceAccount": Ref("AWS::AccountId")}))
    cloudtrail_principal = Principal("Service", "cloudtrail.amazonaws.com")
    _, policy = add_secure_bucket(
        t,
        bucket,
        Statement(
            Sid="CloudTrailAclCheck",
            Effect=Allow,
            Principal=cloudtrail_principal,
            Action=[awacs_s3.GetBucketAcl],
            Resource=[GetAtt(bucket, "Arn")],
            Condition=source,
        ),
        Statement(
            Sid="CloudTrailWrite",
            Effect=Allow,
            Principal=cloudtrail_principal,
            Action=[awacs_s3.PutObject],
            Resource=[Sub("arn:${AWS::Partition}:s3:::${Bucket}/AWSLogs/${AWS::AccountId}/*", Bucket=Ref(bucket))],
            Condition=source,
        ),
    )
    policy.Condition = "UseCloudTrail"
    selector = cloudtrail.AdvancedEventSelector(
        Name="Uploads under the watched prefix",
        FieldSelectors=[
            cloudtrail.AdvancedFieldSelector(Field="eventCategory", Equals=["Data"]),
            cloudtrail.AdvancedFieldSelector(Field="resources.type", Equals=["AWS::S3::Object"]),
            cloudtrail.AdvancedFieldSelector(Field="readOnly", Equals=["false"]),
            cloudtrail.AdvancedFieldSelector(Field="eventName", Equals=event_patterns.UPLOAD_EVENT_NAMES),
            cloudtrail.AdvancedFieldSelector(
                Field="resources.ARN",
                StartsWith=[Sub("arn:${AWS::Partition}:s3:::${DataBucketName}/${DataPrefix}")],
            ),
        ],
    )
    resource = t.add_resource(
        cloudtrail.Trail(
            "UploadTrail",
            Condition="UseCloudTrail",
            DependsOn=[policy],
            TrailName=Sub(names.trail),
            S3BucketName=Ref(bucket),
            IsLogging=True,
            IsMultiRegionTrail=False,
            IncludeGlobalServiceEvents=False,
            EnableLogFileValidation=True,
            AdvancedEventSelectors=[selector],
            Tags=project_tags(p),
        )
    )
    suppress(
        resource,
        Suppression(
            checkov=("CKV_AWS_35",),
            guard=("CLOUD_TRAIL_ENCRYPTION_ENABLED_CHECK",),
            reason="The trail records only object-upload events (bucket and key) under one prefix; SSE-S3 "
            "protects them at rest, and a customer managed KMS key per project would add cost and a key "
            "policy the launch role would need to manage. Accounts enforcing CT.CLOUDTRAIL.PR.1 use the "
            "default S3EventBridge trigger, which creates no trail.",
        ),
        Suppression(
            guard=("CLOUD_TRAIL_CLOUD_WATCH_LOGS_ENABLED_CHECK",),
            reason="The trail only feeds the upload rule through EventBridge and nobody reads its log files; "
            "CloudWatch Logs delivery would add a log group and a delivery role per project. Accounts enforcing "
            "CT.CLOUDTRAIL.PR.3 use the default S3EventBridge trigger, which creates no trail.",
        ),
        Suppression(
            checkov=("CKV_AWS_67",),
            reason="This is not the account's audit trail but a per-project data-event trail: it records "
            "uploads under one prefix of one bucket for the upload rule, which only receives events of its "
            "own region. The account-wide multi-region trail belongs to the platform's baseline.",
        ),
    )
    return resource


def dead_letter_queue(t: Template, names: ProjectNames, p: Parameters) -> sqs_resources.Queue:
    queue = sqs_resources.Queue(
        "IngestionDeadLetterQueue",
        QueueName=Sub(names.dead_letter_queue),
        SqsManagedSseEnabled=True,
        MessageRetentionPeriod=14 * 24 * 3600,
        # SQS's default, written out: it marks the queue as a dead-letter queue for Control Tower CT.SQS.PR.1.
        RedriveAllowPolicy={"redrivePermission": "allowAll"},
        Tags=project_tags(p),
    )
    suppress(
        queue,
        Suppression(
            checkov=("CKV_AWS_27",),
            reason="The queue is encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); checkov only "
            "accepts a KMS key. The AWS managed key alias/aws/sqs cannot be used, because EventBridge can "
            "only deliver dead letters to a KMS-encrypted queue whose key policy grants it, and a customer "
            "managed key per project would add a key policy for the launch role to manage.",
        ),
    )
    return t.add_resource(queue)


def dead_letter_queue_policy(t: Template, queue, rule) -> None:
    t.add_resource(
        sqs_resources.QueuePolicy(
            "IngestionDeadLetterQueuePolicy",
            Queues=[Ref(queue)],
            PolicyDocument=policy_document(
                Statement(
                    Sid="EventBridgeDeadLetters",
                    Effect=Allow,
                    Principal=Principal("Service", "events.amazonaws.com"),
                    Action=[sqs.SendMessage],
                    Resource=[GetAtt(queue, "Arn")],
                    Condition=Condition(StringEquals({"aws:SourceArn": GetAtt(rule, "Arn")})),
                ),
                deny_insecure_transport(sqs.Action("*"), [GetAtt(queue, "Arn")]),
            ),
        )
    )


def function_role(t: Template, logical_id: str, names: ProjectNames, role_and_log_group: tuple[str, str],
                  policy_name: str, *statements: Statement) -> iam.Role:
    """The role of one of the project's Lambdas (name and log group as ``Fn::Sub`` strings): an inline policy
    ``policy_name`` with ``statements`` plus writing to its own log group."""
    role_name, log_group_name = role_and_log_group
    logs_statement = Statement(
        Sid="Logs",
        Effect=Allow,
        Action=[logs.CreateLogStream, logs.PutLogEvents],
        Resource=[arn("logs", f"log-group:{log_group_name}:*")],
    )
    return t.add_resource(
        iam.Role(
            logical_id,
            RoleName=Sub(role_name),
            Path=names.role_path,
            AssumeRolePolicyDocument=trust_policy("lambda"),
            Policies=[iam.Policy(PolicyName=policy_name, PolicyDocument=policy_document(*statements, logs_statement))],
        )
    )


def lambda_role(t: Template, names: ProjectNames, queue, bucket) -> iam.Role:
    return function_role(
        t,
        "StartIngestionRole",
        names,
        (names.lambda_role, names.log_group),
        "start-ingestion",
        Statement(
            Sid="StartPipeline",
            Effect=Allow,
            Action=[sagemaker.StartPipelineExecution],
            Resource=[arn("sagemaker", f"pipeline/{names.sagemaker_pipeline}")],
        ),
        Statement(
            Sid="WriteInputManifests",
            Effect=Allow,
            Action=[awacs_s3.PutObject],
            Resource=[Sub(f"arn:${{AWS::Partition}}:s3:::${{Bucket}}/{MANIFEST_PREFIX}*", Bucket=Ref(bucket))],
        ),
        Statement(Sid="DeadLetters", Effect=Allow, Action=[sqs.SendMessage], Resource=[GetAtt(queue, "Arn")]),
    )


OBJECT_LOCK_NOT_USED = Suppression(
    guard=("S3_BUCKET_OBJECT_LOCK_ENABLED_CHECK",),
    reason="Object Lock protects only object versions given a retention period or legal hold; these buckets hold "
    "regenerable pipeline artifacts and transient logs that lifecycle rules expire and project clean-up deletes. "
    "A retention period would block both, and Object Lock without one protects nothing and cannot be turned off.",
)
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


def python_function(
    t: Template,
    logical_prefix: str,
    settings: Settings,
    names: tuple[str, str],
    lambda_dir: str,
    role: iam.Role,
    p: Parameters,
    *,
    description: str,
    timeout: int,
    **properties: object,
) -> awslambda.Function:
    """A Python Lambda packaged by the build (``lambda_functions/<lambda_dir>``), with its own log group,
    JSON logs, arm64; ``names`` is (function name, log group name) as ``Fn::Sub`` strings."""
    function_name, log_group_name = names
    # A year, the least Control Tower's CT.CLOUDWATCH.PR.2 accepts.
    log_group = t.add_resource(cwlogs.LogGroup(f"{logical_prefix}LogGroup", LogGroupName=Sub(log_group_name),
                                               RetentionInDays=365))
    suppress(
        log_group,
        Suppression(
            checkov=("CKV_AWS_158",),
            guard=("CLOUDWATCH_LOG_GROUP_ENCRYPTED_CHECK",),
            reason="Log lines hold bucket, key, rule and pipeline names and execution ARNs, no data; CloudWatch "
            "Logs encrypts them at rest with service keys, and a customer managed key per project would add a "
            "key policy granting CloudWatch Logs.",
        ),
    )
    function = t.add_resource(
        awslambda.Function(
            f"{logical_prefix}Function",
            FunctionName=Sub(function_name),
            Description=description,
            Runtime=LAMBDA_RUNTIME,
            Handler="app.lambda_handler",
            Architectures=["arm64"],
            Code=awslambda.Code(
                S3Bucket=Sub(settings.artifacts_bucket), S3Key=settings.key(lambda_zip_name(lambda_dir))
            ),
            Role=GetAtt(role, "Arn"),
            Timeout=timeout,
            MemorySize=256,
            LoggingConfig=LambdaLoggingConfig(
                LogFormat="JSON", LogGroup=Ref(log_group), ApplicationLogLevel="INFO", SystemLogLevel="WARN"
            ),
            TracingConfig=awslambda.TracingConfig(Mode="PassThrough"),
            Tags=project_tags(p),
            **properties,
        )
    )
    return function


def start_ingestion_lambda(t: Template, settings: Settings, names: ProjectNames, p: Parameters, role, queue, bucket):
    function = python_function(
        t,
        "StartIngestion",
        settings,
        (names.lambda_function, names.log_group),
        LAMBDA_NAME,
        role,
        p,
        description="Starts the project's SageMaker pipeline for each uploaded file.",
        timeout=30,
        ReservedConcurrentExecutions=If("HasReservedConcurrency", Ref(p.reserved_concurrency), Ref("AWS::NoValue")),
        Environment=awslambda.Environment(
            Variables={
                "PIPELINE_NAME": Sub(names.sagemaker_pipeline),
                "DATA_BUCKET": Ref(p.data_bucket),
                "DATA_PREFIX": Ref(p.data_prefix),
                "DATA_SUFFIX": Ref(p.data_suffix),
                "MANIFEST_BUCKET": Ref(bucket),
                "MANIFEST_PREFIX": MANIFEST_PREFIX,
            }
        ),
        DeadLetterConfig=awslambda.DeadLetterConfig(TargetArn=GetAtt(queue, "Arn")),
    )
    suppress(
        function,
        NO_VPC,
        NO_RESERVED_CONCURRENCY,
        Suppression(
            checkov=("CKV_AWS_173",),
            reason="The environment holds names only (pipeline, buckets, prefixes, suffix), no secrets; Lambda "
            "encrypts it at rest with its service key, and a customer managed key would add a key policy.",
        ),
    )
    t.add_resource(
        awslambda.EventInvokeConfig(
            "StartIngestionInvokeConfig",
            FunctionName=Ref(function),
            Qualifier="$LATEST",
            MaximumRetryAttempts=2,
            MaximumEventAgeInSeconds=6 * 3600,
        )
    )
    return function


class DataBucketEvents(CustomResource):
    """Checks the data bucket's Region and, in S3EventBridge mode, turns its EventBridge notifications on
    (lambda_functions/data_bucket_events)."""

    resource_type = "Custom::DataBucketEvents"
    props = {
        "ServiceToken": (str, True),
        "BucketName": (str, True),
        "EnableEventBridge": (str, True),
        "UploadRuleName": (str, True),
        "ServiceTimeout": (str, False),
    }


def data_bucket_events(t: Template, settings: Settings, names: ProjectNames, p: Parameters) -> DataBucketEvents:
    """The custom resource that makes the data bucket deliver upload events, and refuses a bucket in another
    Region (S3 sends its events to EventBridge in the bucket's Region only; a single-Region trail logs only
    its Region's data events)."""
    bucket_arn = Sub("arn:${AWS::Partition}:s3:::${DataBucketName}")
    role = function_role(
        t,
        "DataBucketEventsRole",
        names,
        (names.bucket_events_role, names.bucket_events_log_group),
        "data-bucket-events",
        Statement(
            Sid="DataBucketNotifications",
            Effect=Allow,
            Action=[
                awacs_s3.GetBucketNotification,
                awacs_s3.PutBucketNotification,
                awacs_s3.GetBucketLocation,
                awacs_s3.ListBucket,
            ],
            Resource=[bucket_arn],
        ),
        # ListRules has no resource type (Service Authorization Reference): it lists rule names and patterns,
        # which the function reads to leave notifications on while another project still relies on them.
        Statement(Sid="FindOtherProjectsRules", Effect=Allow, Action=[awacs_events.ListRules], Resource=["*"]),
    )
    function = python_function(
        t,
        "DataBucketEvents",
        settings,
        (names.bucket_events_function, names.bucket_events_log_group),
        BUCKET_EVENTS_LAMBDA,
        role,
        p,
        description="Checks the data bucket's Region and turns its EventBridge notifications on (and back off).",
        timeout=120,
    )
    suppress(
        function,
        NO_VPC,
        NO_RESERVED_CONCURRENCY,
        Suppression(
            checkov=("CKV_AWS_116",),
            reason="CloudFormation invokes the function asynchronously and waits at the response URL; the handler "
            "answers every request itself (FAILED on any error, a timer before the timeout) and never raises, so a "
            "dead-letter queue would only catch crashes, which CloudFormation reports after ServiceTimeout.",
        ),
    )
    return t.add_resource(
        DataBucketEvents(
            "DataBucketEvents",
            ServiceToken=GetAtt(function, "Arn"),
            BucketName=Ref(p.data_bucket),
            EnableEventBridge=If("UseCloudTrail", "false", "true"),
            UploadRuleName=Sub(names.upload_rule),
            # Seconds CloudFormation waits for an answer (default: an hour): room for Lambda's two retries.
            ServiceTimeout="600",
        )
    )


def upload_rule(t: Template, names: ProjectNames, function, queue) -> events.Rule:
    rule = t.add_resource(
        events.Rule(
            UPLOAD_RULE_ID,
            Name=Sub(names.upload_rule),
            Description="Starts the ingestion for uploads under the watched bucket and prefix.",
            EventPattern=event_patterns.upload_pattern(),
            State="ENABLED",
            Targets=[
                events.Target(
                    Id="StartIngestion",
                    Arn=GetAtt(function, "Arn"),
                    RetryPolicy=events.RetryPolicy(MaximumRetryAttempts=20, MaximumEventAgeInSeconds=6 * 3600),
                    DeadLetterConfig=events.DeadLetterConfig(Arn=GetAtt(queue, "Arn")),
                )
            ],
        )
    )
    t.add_resource(
        awslambda.Permission(
            "UploadRuleInvokePermission",
            FunctionName=Ref(function),
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=GetAtt(rule, "Arn"),
            SourceAccount=Ref("AWS::AccountId"),
        )
    )
    return rule


def repository(t: Template, settings: Settings, names: ProjectNames, p: Parameters) -> codecommit.Repository:
    return t.add_resource(
        codecommit.Repository(
            "SeedCodeRepository",
            Condition="UseCodeCommit",
            RepositoryName=Sub(names.repository),
            RepositoryDescription=Sub("Seed code of SageMaker project ${SageMakerProjectName} (${SageMakerProjectId})"),
            Code=codecommit.Code(
                BranchName=Ref(p.branch),
                S3=codecommit.S3(Bucket=Sub(settings.artifacts_bucket), Key=settings.key(SEED_CODE_ZIP)),
            ),
            Tags=project_tags(p),
        )
    )


def build_project(t: Template, names: ProjectNames, p: Parameters, bucket) -> codebuild.Project:
    variables = {
        "SAGEMAKER_PROJECT_NAME": Ref(p.project_name),
        "SAGEMAKER_PROJECT_ID": Ref(p.project_id),
        "SAGEMAKER_PIPELINE_NAME": Sub(names.sagemaker_pipeline),
        "SAGEMAKER_PIPELINE_ROLE_ARN": service_role_arn(EXECUTION_ROLE),
        "ARTIFACT_BUCKET": Ref(bucket),
        "OFFLINE_STORE_S3_URI": Sub("s3://${ArtifactBucket}/feature-store"),
        "FEATURE_GROUP_NAME": Ref(p.feature_group),
        "TRANSFORM_MODE": Ref(p.transform_mode),
        "DATA_WRANGLER_FLOW_URL": Ref(p.flow_url),
        "DATA_WRANGLER_OUTPUT_NAME": Ref(p.flow_output),
        "PROCESSING_INSTANCE_TYPE": Ref(p.instance_type),
        "PROCESSING_INSTANCE_COUNT": Ref(p.instance_count),
    }
    project = t.add_resource(
        codebuild.Project(
            "DeployPipelineBuild",
            Name=Sub(names.build_project),
            Description="Applies the feature group definition and upserts the SageMaker pipeline.",
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
            Tags=project_tags(p),
        )
    )
    return project


def source_actions(p: Parameters, repo) -> If:
    codecommit_action = codepipeline.Actions(
        Name="Source",
        RunOrder=1,
        OutputArtifacts=[codepipeline.OutputArtifacts(Name="SeedCode")],
        ActionTypeId=codepipeline.ActionTypeId(Category="Source", Owner="AWS", Provider="CodeCommit", Version="1"),
        Configuration={
            "RepositoryName": GetAtt(repo, "Name"),
            "BranchName": Ref(p.branch),
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
            "ConnectionArn": Ref(p.connection_arn),
            "FullRepositoryId": Ref(p.repository_id),
            "BranchName": Ref(p.branch),
            "DetectChanges": True,
        },
    )
    return If("UseCodeCommit", [codecommit_action], [connection_action])


def seed_code_pipeline(t: Template, names: ProjectNames, p: Parameters, bucket, repo, build) -> codepipeline.Pipeline:
    return t.add_resource(
        codepipeline.Pipeline(
            "SeedCodePipeline",
            Name=Sub(names.code_pipeline),
            RoleArn=service_role_arn(CODEPIPELINE_ROLE),
            PipelineType="V2",
            ArtifactStore=codepipeline.ArtifactStore(Type="S3", Location=Ref(bucket)),
            Stages=[
                codepipeline.Stages(Name="Source", Actions=source_actions(p, repo)),
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
            Tags=project_tags(p),
        )
    )


def repository_change_rule(t: Template, names: ProjectNames, p: Parameters, repo, pipeline) -> events.Rule:
    return t.add_resource(
        events.Rule(
            "RepositoryChangeRule",
            Condition="UseCodeCommit",
            Name=Sub(names.repository_rule),
            Description="Redeploys the SageMaker pipeline when the seed code branch changes.",
            EventPattern=event_patterns.repository_change_pattern(GetAtt(repo, "Arn"), Ref(p.branch)),
            State="ENABLED",
            Targets=[
                events.Target(
                    Id="SeedCodePipeline",
                    Arn=arn("codepipeline", "${Pipeline}", Pipeline=Ref(pipeline)),
                    RoleArn=service_role_arn(EVENTS_ROLE),
                )
            ],
        )
    )


def outputs(t: Template, names: ProjectNames, bucket, function, rule, queue, repo, pipeline) -> None:
    t.add_output(
        [
            Output(
                "SageMakerPipelineName",
                Value=Sub(names.sagemaker_pipeline),
                Description="SageMaker pipeline started for each upload",
            ),
            Output("ArtifactBucketName", Value=Ref(bucket)),
            Output("StartIngestionFunctionName", Value=Ref(function)),
            Output("UploadRuleArn", Value=GetAtt(rule, "Arn")),
            Output("DeadLetterQueueUrl", Value=Ref(queue), Description="Events that could not start the pipeline"),
            Output("DeadLetterQueueArn", Value=GetAtt(queue, "Arn")),
            Output("SeedCodePipelineName", Value=Ref(pipeline)),
            Output("RepositoryCloneUrlHttp", Condition="UseCodeCommit", Value=GetAtt(repo, "CloneUrlHttp")),
            Output("RepositoryName", Condition="UseCodeCommit", Value=GetAtt(repo, "Name")),
            Output("TrailName", Condition="UseCloudTrail", Value=Ref("UploadTrail")),
        ]
    )


def build(settings: Settings) -> Template:
    names = ProjectNames()
    check_budgets(names)
    t = Template(
        Description=f"SageMaker project: S3 upload -> SageMaker Pipeline -> Feature Store "
        f"(s3-fs-ingestion {settings.version})"
    )
    p = Parameters(t)
    t.set_metadata(p.interface())
    add_conditions_and_rules(t, p)

    bucket, _ = artifact_bucket(t, names, p)
    trail(t, names, p)
    queue = dead_letter_queue(t, names, p)
    role = lambda_role(t, names, queue, bucket)
    function = start_ingestion_lambda(t, settings, names, p, role, queue, bucket)
    rule = upload_rule(t, names, function, queue)
    data_bucket_events(t, settings, names, p)
    dead_letter_queue_policy(t, queue, rule)
    repo = repository(t, settings, names, p)
    build_job = build_project(t, names, p, bucket)
    pipeline = seed_code_pipeline(t, names, p, bucket, repo, build_job)
    repository_change_rule(t, names, p, repo, pipeline)
    outputs(t, names, bucket, function, rule, queue, repo, pipeline)
    return t
