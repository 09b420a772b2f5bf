"""The watch on an S3 bucket/prefix: uploads start the project's SageMaker pipeline.

Two trigger modes (parameter ``TriggerMode``): ``S3EventBridge`` (S3's "Object Created" events; the
``DataBucketEvents`` custom resource turns the bucket's EventBridge notifications on) or ``CloudTrail`` (a
data-event trail for the three upload operations under the prefix). The rule matches bucket **and** prefix
(and suffix), retries, and parks undeliverable events in a dead-letter queue; the start Lambda
(``lambda_functions/start_ingestion_pipeline``) has the same queue for failed invocations.

Two start modes (parameter ``StartMode``, docs/batching.md): ``Batched`` (default) -- the rule sends the upload
events to an SQS queue that the start Lambda consumes through an event source mapping, ``BatchSize`` events or
``BatchWindowSeconds`` at a time, one pipeline execution (one manifest) per batch, refused batches coming back
later; ``PerFile`` -- the rule invokes the Lambda for each upload (one execution per file). Both modes' resources
always exist (the queue stays, the mapping is disabled in ``PerFile`` mode), so switching is a stack update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import awacs.awslambda as awacs_lambda
import awacs.cloudtrail as ct
import awacs.events as awacs_events
import awacs.s3 as awacs_s3
import awacs.sagemaker as sagemaker
import awacs.sqs as sqs
from awacs.aws import Allow, ArnLike, Condition, Principal, Statement, StringEquals
from troposphere import Equals, GetAtt, If, Not, Output, Ref, Sub, awslambda, cloudtrail, events
from troposphere import sqs as sqs_resources
from troposphere.cloudformation import CustomResource
from troposphere.s3 import Bucket
from troposphere.validators import integer

from .. import event_patterns
from ..common import Suppression, arn, deny_insecure_transport, policy_document, suppress
from ..grants import Grant
from ..names import wild
from ..parameters import ParameterSpec
from . import buckets
from .lambdas import NO_RESERVED_CONCURRENCY, NO_VPC, function_role, invoke_grant, python_function
from .project import ProjectTemplate

START_LAMBDA = "start_ingestion_pipeline"
BUCKET_EVENTS_LAMBDA = "data_bucket_events"
LAMBDAS = (START_LAMBDA, BUCKET_EVENTS_LAMBDA)
UPLOAD_RULE_ID = "UploadRule"
MANIFEST_PREFIX = "input-manifests/"  # one-object manifests the Lambda writes for very long keys
# CloudTrail User Guide, "Quotas in AWS CloudTrail": 5 trails per Region, not adjustable.
TRAILS_PER_REGION = 5

# Batched start mode.
START_FUNCTION_TIMEOUT = 30  # seconds; the function's worst case is ~3 SageMaker attempts (see app.py)
# Lambda Developer Guide, "Lambda parameters for Amazon SQS event source mappings": BatchSize up to 10,000 for a
# standard queue, and above 10 only with MaximumBatchingWindowInSeconds >= 1 (Lambda API Reference,
# CreateEventSourceMapping); the window takes 0 to 300 seconds. Ours stops at 1,000 uploads per batch: the
# function changes the visibility of a refused batch ten messages a call within its 30-second timeout, and
# 1,000 records of ~3 KB stay well under the 6 MB synchronous invocation payload the mapping must respect.
ESM_BATCH_SIZE_MAX = 10_000
BATCH_SIZE_MAX = 1_000
BATCH_WINDOW_MAX = 300
# "Using Lambda with Amazon SQS" / "Understanding SQS retries" (Lambda Developer Guide): the queue's visibility
# timeout at least six times the function's timeout. Plus the longest batching window: a message received at the
# start of a window waits in the poller's batch until the invocation, and must not reappear meanwhile.
BATCH_QUEUE_VISIBILITY = 6 * START_FUNCTION_TIMEOUT + BATCH_WINDOW_MAX
# The function answers a refused batch with growing visibility timeouts (at most 15 minutes, app.py), so 100
# receives are more than a day of continuous refusal before SQS moves a message to the dead-letter queue; the
# messages stay up to 14 days (SQS's maximum retention), and a dead-lettered message keeps its first enqueue time
# (SQS Developer Guide, "Using dead-letter queues"), so the dead-letter queue keeps 14 days too.
BATCH_MAX_RECEIVE_COUNT = 100
QUEUE_RETENTION_SECONDS = 14 * 24 * 3600
# Each invocation starts at most one execution; five concurrent batches (where the mapping starts: "Configuring
# scaling behavior for SQS event source mappings") are plenty under a 20-execution account quota, and keep a
# backlog from scaling to hundreds of concurrent StartPipelineExecution calls (ScalingConfig: 2 to 1,000).
BATCH_MAX_CONCURRENCY = 5

DATA_LOCATION = "Data location"
TRIGGER = "Trigger"
DATA_LOCATION_PARAMETERS = (
    ParameterSpec(
        "DataBucketName",
        DATA_LOCATION,
        "Data bucket",
        {
            "Type": "String",
            "MinLength": 3,
            "MaxLength": 63,
            "AllowedPattern": "[a-z0-9][a-z0-9.-]*[a-z0-9]",
            "Description": "Existing bucket whose uploads start the ingestion.",
        },
        readme="existing bucket whose uploads start the pipeline, in the project's Region",
    ),
    ParameterSpec(
        "DataPrefix",
        DATA_LOCATION,
        "Key prefix to watch",
        {
            "Type": "String",
            "MinLength": 2,
            "MaxLength": 512,
            "Default": "incoming/",
            "AllowedPattern": "[^/*?\\\\][^*?\\\\]*/",
            "ConstraintDescription": "a key prefix ending with '/', not starting with '/', without *, ? or backslash",
            "Description": "Key prefix (folder) to watch, ending with '/'; 'incoming/' excludes 'incoming-old/'.",
        },
        readme="key prefix to watch, ending with `/` (`incoming/` does not match `incoming-old/`)",
    ),
    ParameterSpec(
        "DataSuffix",
        DATA_LOCATION,
        "File-name suffix (optional)",
        {
            "Type": "String",
            "Default": "",
            "MaxLength": 64,
            "AllowedPattern": "[^*?/\\\\]*",
            "Description": "Optional file-name suffix, e.g. '.csv'. Empty: every file under the prefix.",
        },
        readme="optional file-name suffix such as `.csv`",
    ),
)
TRIGGER_PARAMETERS = (
    ParameterSpec(
        "TriggerMode",
        TRIGGER,
        "Trigger",
        {
            "Type": "String",
            "Default": "S3EventBridge",
            "AllowedValues": ["S3EventBridge", "CloudTrail"],
            "Description": "S3EventBridge (default): the project turns on the data bucket's EventBridge "
            "notifications (merged with its other notifications, undone on delete); no trail, cheaper, faster. "
            f"CloudTrail: one data-event trail per project; a Region holds at most {TRAILS_PER_REGION} trails "
            "(hard quota), so use it only where bucket notifications cannot be changed.",
        },
        readme="`S3EventBridge` (the stack turns on the data bucket's EventBridge notifications, merged with its "
        "other notifications and undone on delete: no trail, cheaper, faster) or `CloudTrail` (one data-event "
        "trail per project for the three upload operations under the prefix; a Region holds at most "
        f"{TRAILS_PER_REGION} trails, a hard quota)",
    ),
    ParameterSpec(
        "StartIngestionReservedConcurrency",
        TRIGGER,
        "Reserved concurrency of the start Lambda (0: none)",
        {
            "Type": "Number",
            "Default": "0",
            "MinValue": 0,
            "MaxValue": 1000,
            "Description": "Concurrent executions reserved for the start-ingestion Lambda; 0 (default): none. "
            "Lambda keeps at least 100 unreserved executions per account, so any reservation fails in "
            "accounts whose concurrency quota is below 100 plus the reservation.",
        },
        readme="concurrent executions reserved for the start Lambda; `0`: none. Lambda keeps 100 unreserved "
        "executions per account, so a reservation fails in accounts whose quota is below 100 plus the reservation",
    ),
    ParameterSpec(
        "StartMode",
        TRIGGER,
        "Start mode",
        {
            "Type": "String",
            "Default": "Batched",
            "AllowedValues": ["Batched", "PerFile"],
            "Description": "Batched (default): uploads wait in an SQS queue and start one pipeline execution per "
            "batch (BatchSize, BatchWindowSeconds); a batch SageMaker refuses (account quota) comes back later. "
            "PerFile: one execution per upload, started at once (lowest latency, one job start-up per file).",
        },
        readme="`Batched`: uploads wait in an SQS queue and start one execution per batch (`BatchSize` uploads or "
        "`BatchWindowSeconds`), a batch SageMaker refuses for its quota coming back later; `PerFile`: one execution "
        "per upload, at once (lowest latency, one job start-up per file). See [docs/batching.md](docs/batching.md)",
    ),
    ParameterSpec(
        "BatchSize",
        TRIGGER,
        "Uploads per execution, at most (Batched)",
        {
            "Type": "Number",
            "Default": "100",
            "MinValue": 1,
            "MaxValue": BATCH_SIZE_MAX,
            "Description": f"Batched mode: at most this many uploads per execution (1 to {BATCH_SIZE_MAX:,}).",
        },
        readme=f"`Batched`: at most this many uploads per execution, 1 to {BATCH_SIZE_MAX:,} (the event source "
        f"mapping allows {ESM_BATCH_SIZE_MAX:,}; the start Lambda's 30-second timeout and the 6 MB invocation "
        "payload set this limit)",
    ),
    ParameterSpec(
        "BatchWindowSeconds",
        TRIGGER,
        "Seconds to gather a batch (Batched)",
        {
            "Type": "Number",
            "Default": "60",
            "MinValue": 1,
            "MaxValue": BATCH_WINDOW_MAX,
            "Description": f"Batched mode: the longest an upload waits for others before its batch starts (1 to "
            f"{BATCH_WINDOW_MAX} seconds).",
        },
        readme=f"`Batched`: the longest an upload waits for others before its batch starts, 1 to {BATCH_WINDOW_MAX} "
        "seconds (the event source mapping's batching window; above 10 uploads per batch it must be at least 1)",
    ),
)


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


class SqsScalingConfig(awslambda.ScalingConfig):
    """troposphere 4.11's ``awslambda.ScalingConfig`` carries another type's props (``MaxEnvironments``); the
    event source mapping's ScalingConfig has ``MaximumConcurrency`` (CloudFormation, AWS::Lambda::EventSourceMapping
    ScalingConfig)."""

    props = {"MaximumConcurrency": (integer, False)}


@dataclass(frozen=True)
class UploadTrigger:
    function: awslambda.Function
    rule: events.Rule
    queue: sqs_resources.Queue  # the dead-letter queue
    trail: cloudtrail.Trail
    batch_queue: sqs_resources.Queue
    event_source: awslambda.EventSourceMapping


def upload_trigger(pt: ProjectTemplate, artifact_bucket: Bucket, *, description: str, rule_description: str,
                   environment: Mapping[str, object] | None = None) -> UploadTrigger:
    """Everything between an upload and ``StartPipelineExecution`` of the project's pipeline. ``environment``:
    the product's settings of the start Lambda (START_WITH_MANIFEST, MISSING_PIPELINE_HINT)."""
    t = pt.template
    t.add_condition("UseCloudTrail", Equals(pt.ref("TriggerMode"), "CloudTrail"))
    t.add_condition("HasDataSuffix", Not(Equals(pt.ref("DataSuffix"), "")))
    t.add_condition("HasReservedConcurrency", Not(Equals(pt.ref("StartIngestionReservedConcurrency"), "0")))
    t.add_condition("StartBatched", Equals(pt.ref("StartMode"), "Batched"))
    t.add_condition("StartPerFile", Equals(pt.ref("StartMode"), "PerFile"))
    upload_trail = trail(pt)
    queue = dead_letter_queue(pt)
    batch = batch_queue(pt, queue)
    function = start_function(pt, queue, batch, artifact_bucket, description, environment or {})
    rule = upload_rule(pt, function, queue, batch, rule_description)
    dead_letter_queue_policy(pt, queue, rule)
    batch_queue_policy(pt, batch, rule)
    mapping = batch_event_source(pt, function, batch)
    data_bucket_events(pt)
    t.add_output([
        Output("StartIngestionFunctionName", Value=Ref(function)),
        Output("UploadRuleArn", Value=GetAtt(rule, "Arn")),
        Output("DeadLetterQueueUrl", Value=Ref(queue), Description="Events that could not start the pipeline"),
        Output("DeadLetterQueueArn", Value=GetAtt(queue, "Arn")),
        Output("BatchQueueUrl", Value=Ref(batch),
               Description="Upload events waiting for their batch (StartMode Batched)"),
        Output("TrailName", Condition="UseCloudTrail", Value=Ref(upload_trail)),
    ])
    return UploadTrigger(function, rule, queue, upload_trail, batch, mapping)


def trail(pt: ProjectTemplate) -> cloudtrail.Trail:
    """Data-event trail for the three upload operations under the watched prefix only (CloudTrail mode)."""
    names = pt.names
    trail_arn = arn("cloudtrail", f"trail/{names.trail}")
    source = Condition(StringEquals({"aws:SourceArn": trail_arn, "aws:SourceAccount": Ref("AWS::AccountId")}))
    cloudtrail_principal = Principal("Service", "cloudtrail.amazonaws.com")
    bucket, policy = buckets.project_bucket(
        pt,
        "TrailBucket",
        names.trail_bucket,
        Suppression(
            checkov=("CKV_AWS_18",),
            guard=("S3_BUCKET_LOGGING_ENABLED_CHECK",),
            reason="The bucket only receives the trail's log files, which expire after 30 days; server access "
            "logging would need another bucket per project for transient data, and the trail's log file "
            "validation already detects tampering.",
        ),
        Suppression(
            guard=("S3_BUCKET_DEFAULT_ENCRYPTION_KMS_CHECK",),
            reason="CloudTrail delivers to an SSE-KMS bucket only when the key policy grants "
            "cloudtrail.amazonaws.com GenerateDataKey and DescribeKey (CloudTrail User Guide, 'Encrypting "
            "CloudTrail log files with AWS KMS keys'); the AWS managed aws/s3 key cannot grant that, so it would "
            "take a customer managed key per project for the optional trail's transient upload events (SSE-S3, "
            "expired after 30 days). Accounts enforcing CT.S3.PR.10 use the default S3EventBridge trigger, which "
            "creates no trail bucket.",
        ),
        expirations={"": buckets.TRANSIENT_DAYS},
        noncurrent_days=buckets.TRANSIENT_DAYS,
        versioned=True,
        kms=False,
        condition="UseCloudTrail",
        extra_statements=lambda bucket: [
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
        ],
    )
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
    resource = pt.template.add_resource(
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
            Tags=pt.tags(),
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
    pt.launch.extend([
        Grant("ListWithoutResourceScope", [ct.DescribeTrails], ["*"]),
        Grant(
            "ProjectTrail",
            [
                ct.CreateTrail, ct.DeleteTrail, ct.UpdateTrail, ct.GetTrail, ct.GetTrailStatus, ct.StartLogging,
                ct.StopLogging, ct.PutEventSelectors, ct.GetEventSelectors, ct.GetInsightSelectors, ct.AddTags,
                ct.RemoveTags, ct.ListTags,
            ],
            [arn("cloudtrail", f"trail/{wild(names.trail)}")],
        ),
    ])
    return resource


SQS_MANAGED_ENCRYPTION = Suppression(
    checkov=("CKV_AWS_27",),
    reason="The queue is encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); checkov only "
    "accepts a KMS key. The AWS managed key alias/aws/sqs cannot be used, because EventBridge can "
    "only deliver to a KMS-encrypted queue whose key policy grants it, and a customer "
    "managed key per project would add a key policy for the launch role to manage.",
)


def queue_grant(queue_name: str) -> Grant:
    """What CloudFormation calls for an AWS::SQS::Queue (and its QueuePolicy) named ``queue_name``."""
    return Grant(
        "ProjectQueue",
        [sqs.CreateQueue, sqs.DeleteQueue, sqs.GetQueueAttributes, sqs.SetQueueAttributes, sqs.GetQueueUrl,
         sqs.TagQueue, sqs.UntagQueue, sqs.ListQueueTags],
        [arn("sqs", wild(queue_name))],
    )


def dead_letter_queue(pt: ProjectTemplate) -> sqs_resources.Queue:
    queue = sqs_resources.Queue(
        "IngestionDeadLetterQueue",
        QueueName=Sub(pt.names.dead_letter_queue),
        SqsManagedSseEnabled=True,
        MessageRetentionPeriod=QUEUE_RETENTION_SECONDS,
        # SQS's default, written out: it marks the queue as a dead-letter queue for Control Tower CT.SQS.PR.1.
        RedriveAllowPolicy={"redrivePermission": "allowAll"},
        Tags=pt.tags(),
    )
    suppress(queue, SQS_MANAGED_ENCRYPTION)
    pt.launch.append(queue_grant(pt.names.dead_letter_queue))
    return pt.template.add_resource(queue)


def batch_queue(pt: ProjectTemplate, dead_letters: sqs_resources.Queue) -> sqs_resources.Queue:
    """The upload events of batched mode, waiting for the start Lambda (its event source mapping). Encrypted with
    SQS-managed keys like the dead-letter queue; what SQS cannot deliver after BATCH_MAX_RECEIVE_COUNT receives
    goes to that same dead-letter queue, so one alarm and one redrive cover both modes."""
    queue = sqs_resources.Queue(
        "IngestionBatchQueue",
        QueueName=Sub(pt.names.batch_queue),
        SqsManagedSseEnabled=True,
        MessageRetentionPeriod=QUEUE_RETENTION_SECONDS,
        VisibilityTimeout=BATCH_QUEUE_VISIBILITY,
        RedrivePolicy=sqs_resources.RedrivePolicy(deadLetterTargetArn=GetAtt(dead_letters, "Arn"),
                                                  maxReceiveCount=BATCH_MAX_RECEIVE_COUNT),
        Tags=pt.tags(),
    )
    suppress(queue, SQS_MANAGED_ENCRYPTION)
    pt.launch.append(queue_grant(pt.names.batch_queue))
    return pt.template.add_resource(queue)


def dead_letter_queue_policy(pt: ProjectTemplate, queue: sqs_resources.Queue, rule: events.Rule) -> None:
    _rule_may_send(pt, "IngestionDeadLetterQueuePolicy", "EventBridgeDeadLetters", queue, rule)


def batch_queue_policy(pt: ProjectTemplate, queue: sqs_resources.Queue, rule: events.Rule) -> None:
    _rule_may_send(pt, "IngestionBatchQueuePolicy", "EventBridgeUploadEvents", queue, rule)


def _rule_may_send(pt: ProjectTemplate, logical_id: str, sid: str, queue: sqs_resources.Queue,
                   rule: events.Rule) -> None:
    """Only the upload rule may send to ``queue`` (EventBridge User Guide, "Using resource-based policies for
    Amazon EventBridge", Amazon SQS permissions: aws:SourceArn = the rule); nothing over plain HTTP."""
    pt.template.add_resource(
        sqs_resources.QueuePolicy(
            logical_id,
            Queues=[Ref(queue)],
            PolicyDocument=policy_document(
                Statement(
                    Sid=sid,
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


def start_function(pt: ProjectTemplate, queue: sqs_resources.Queue, batch: sqs_resources.Queue, bucket: Bucket,
                   description: str, environment: Mapping[str, object]) -> awslambda.Function:
    names = pt.names
    role = function_role(
        pt,
        "StartIngestionRole",
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
        # Lambda's asynchronous invocations (per-file mode) and the function itself (batched mode: messages that
        # can never start the pipeline, with their reason).
        Statement(Sid="DeadLetters", Effect=Allow, Action=[sqs.SendMessage], Resource=[GetAtt(queue, "Arn")]),
        # The event source mapping reads and deletes with the function's role (Lambda Developer Guide, "Using
        # Lambda with Amazon SQS", execution role permissions); the function delays refused batches.
        Statement(
            Sid="ConsumeBatches",
            Effect=Allow,
            Action=[sqs.ReceiveMessage, sqs.DeleteMessage, sqs.GetQueueAttributes, sqs.ChangeMessageVisibility],
            Resource=[GetAtt(batch, "Arn")],
        ),
    )
    function = python_function(
        pt,
        "StartIngestion",
        (names.lambda_function, names.log_group),
        START_LAMBDA,
        role,
        description=description,
        timeout=START_FUNCTION_TIMEOUT,
        ReservedConcurrentExecutions=If(
            "HasReservedConcurrency", pt.ref("StartIngestionReservedConcurrency"), Ref("AWS::NoValue")
        ),
        Environment=awslambda.Environment(
            Variables={
                "PIPELINE_NAME": Sub(names.sagemaker_pipeline),
                "DATA_BUCKET": pt.ref("DataBucketName"),
                "DATA_PREFIX": pt.ref("DataPrefix"),
                "DATA_SUFFIX": pt.ref("DataSuffix"),
                "MANIFEST_BUCKET": Ref(bucket),
                "MANIFEST_PREFIX": MANIFEST_PREFIX,
                "DEAD_LETTER_QUEUE_URL": Ref(queue),
                **environment,
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
            reason="The environment holds names only (pipeline, buckets, prefixes, suffix, queue), no secrets; Lambda "
            "encrypts it at rest with its service key, and a customer managed key would add a key policy.",
        ),
    )
    pt.template.add_resource(
        awslambda.EventInvokeConfig(
            "StartIngestionInvokeConfig",
            FunctionName=Ref(function),
            Qualifier="$LATEST",
            MaximumRetryAttempts=2,
            MaximumEventAgeInSeconds=6 * 3600,
        )
    )
    return function


def upload_rule(pt: ProjectTemplate, function: awslambda.Function, queue: sqs_resources.Queue,
                batch: sqs_resources.Queue, description: str) -> events.Rule:
    """The rule's one target: the batch queue (Batched) or the start Lambda (PerFile); undeliverable events go to
    the dead-letter queue after the retries."""
    t = pt.template

    def target(target_id: str, destination: object) -> events.Target:
        return events.Target(
            Id=target_id,
            Arn=destination,
            RetryPolicy=events.RetryPolicy(MaximumRetryAttempts=20, MaximumEventAgeInSeconds=6 * 3600),
            DeadLetterConfig=events.DeadLetterConfig(Arn=GetAtt(queue, "Arn")),
        )

    rule = t.add_resource(
        events.Rule(
            UPLOAD_RULE_ID,
            Name=Sub(pt.names.upload_rule),
            Description=description,
            EventPattern=event_patterns.upload_pattern(),
            State="ENABLED",
            Targets=[If("StartBatched", target("StartIngestionBatch", GetAtt(batch, "Arn")),
                        target("StartIngestion", GetAtt(function, "Arn")))],
        )
    )
    t.add_resource(
        awslambda.Permission(
            "UploadRuleInvokePermission",
            Condition="StartPerFile",
            FunctionName=Ref(function),
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=GetAtt(rule, "Arn"),
            SourceAccount=Ref("AWS::AccountId"),
        )
    )
    pt.launch.append(rule_grant(pt.names.upload_rule))
    return rule


def batch_event_source(pt: ProjectTemplate, function: awslambda.Function,
                       batch: sqs_resources.Queue) -> awslambda.EventSourceMapping:
    """The start Lambda consumes the batch queue (enabled in Batched mode only): partial batch responses
    (ReportBatchItemFailures: "Handling errors for an SQS event source in Lambda"), BatchSize and window from the
    project's parameters, at most BATCH_MAX_CONCURRENCY batches at once."""
    mapping: awslambda.EventSourceMapping = pt.template.add_resource(
        awslambda.EventSourceMapping(
            "StartIngestionEventSourceMapping",
            EventSourceArn=GetAtt(batch, "Arn"),
            FunctionName=Ref(function),
            Enabled=If("StartBatched", True, False),
            BatchSize=pt.ref("BatchSize"),
            MaximumBatchingWindowInSeconds=pt.ref("BatchWindowSeconds"),
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig=SqsScalingConfig(MaximumConcurrency=BATCH_MAX_CONCURRENCY),
            Tags=pt.tags(),
        )
    )
    pt.launch.extend(event_source_grants(pt.names.lambda_function))
    return mapping


def event_source_grants(function_name: str) -> list[Grant]:
    """What CloudFormation calls for an AWS::Lambda::EventSourceMapping of the function ``function_name`` (a
    ProjectNames string). CreateEventSourceMapping has no resource type (Service Authorization Reference, AWS
    Lambda): "*", scoped by ``lambda:FunctionArn`` to the projects' start functions; a mapping's ARN ends in a
    UUID Lambda picks, so the other calls name every mapping, scoped by the same key. Tagging takes no
    ``lambda:FunctionArn``: CloudFormation tags mappings (and propagates the stack's tags) with it."""
    by_function = Condition(
        ArnLike({"lambda:FunctionArn": arn("lambda", f"function:{wild(function_name)}")})
    )
    mappings = arn("lambda", "event-source-mapping:*")
    return [
        Grant("ProjectEventSourceMappingCreate", [awacs_lambda.CreateEventSourceMapping], ["*"], by_function),
        Grant("ProjectEventSourceMappings", [awacs_lambda.GetEventSourceMapping, awacs_lambda.UpdateEventSourceMapping,
                                             awacs_lambda.DeleteEventSourceMapping], [mappings], by_function),
        Grant("EventSourceMappingTags", [awacs_lambda.TagResource, awacs_lambda.UntagResource, awacs_lambda.ListTags],
              [mappings]),
    ]


def rule_grant(rule_name: str) -> Grant:
    """What CloudFormation calls for an AWS::Events::Rule named ``rule_name`` (a ProjectNames string)."""
    return Grant(
        "ProjectRules",
        [awacs_events.PutRule, awacs_events.DeleteRule, awacs_events.DescribeRule, awacs_events.EnableRule,
         awacs_events.DisableRule, awacs_events.PutTargets, awacs_events.RemoveTargets,
         awacs_events.ListTargetsByRule, awacs_events.TagResource, awacs_events.UntagResource,
         awacs_events.ListTagsForResource],
        [arn("events", f"rule/{wild(rule_name)}")],
    )


def data_bucket_events(pt: ProjectTemplate) -> DataBucketEvents:
    """The custom resource that makes the data bucket deliver upload events, and refuses a bucket in another
    Region (S3 sends its events to EventBridge in the bucket's Region only; a single-Region trail logs only
    its Region's data events)."""
    names = pt.names
    role = function_role(
        pt,
        "DataBucketEventsRole",
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
            Resource=[Sub("arn:${AWS::Partition}:s3:::${DataBucketName}")],
        ),
        # ListRules has no resource type (Service Authorization Reference): it lists rule names and patterns,
        # which the function reads to leave notifications on while another project still relies on them.
        Statement(Sid="FindOtherProjectsRules", Effect=Allow, Action=[awacs_events.ListRules], Resource=["*"]),
    )
    function = python_function(
        pt,
        "DataBucketEvents",
        (names.bucket_events_function, names.bucket_events_log_group),
        BUCKET_EVENTS_LAMBDA,
        role,
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
    pt.launch.append(invoke_grant(names.bucket_events_function))
    resource: DataBucketEvents = pt.template.add_resource(
        DataBucketEvents(
            "DataBucketEvents",
            ServiceToken=GetAtt(function, "Arn"),
            BucketName=pt.ref("DataBucketName"),
            EnableEventBridge=If("UseCloudTrail", "false", "true"),
            UploadRuleName=Sub(names.upload_rule),
            # Seconds CloudFormation waits for an answer (default: an hour): room for Lambda's two retries.
            ServiceTimeout="600",
        )
    )
    return resource
