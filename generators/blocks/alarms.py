"""Alarms and notifications of a project: what goes wrong after an upload reaches someone.

Every project gets an SNS topic (``names.notification_topic``, output ``NotificationTopicArn``), optionally
subscribed by e-mail (parameter ``AlarmEmail``), and these publishers:

- CloudWatch alarms (:func:`queue_alarm`, :func:`dead_letter_alarm`, :func:`start_function_alarms`): events
  parked in the dead-letter queue, start-Lambda errors, malformed events counted by a metric filter on the
  Lambda's JSON logs; other blocks register their own queues with :func:`queue_alarm`;
- an EventBridge rule on the project's pipeline executions that end ``Failed`` (:func:`pipeline_failure_rule`),
  watched itself by an alarm on its failed deliveries.

Encryption. CloudWatch and EventBridge can publish to a KMS-encrypted topic only when the key policy lets
``cloudwatch.amazonaws.com`` / ``events.amazonaws.com`` use the key (``kms:GenerateDataKey*``, ``kms:Decrypt``);
the AWS managed key ``alias/aws/sns`` has a policy nobody can change, so alarms on such a topic fail with
"CloudWatch Alarms does not have authorization to access the SNS topic encryption key" (Amazon SNS Developer
Guide, "Managing Amazon SNS encryption keys": *Enable compatibility between event sources from AWS services
and encrypted topics*; AWS re:Post Knowledge Center, "How do I configure a CloudWatch alarm with an
encrypted Amazon SNS topic?"). A customer managed key per project would need ``kms:CreateKey`` for the launch
role, an action IAM cannot scope to a resource. So one key per account and Region is created by a platform
stack (:func:`notifications_key`, alias :data:`~generators.names.NOTIFICATIONS_KEY_ALIAS`, rotation on) and
every topic names it by alias: SNS accepts an alias name as ``KmsMasterKeyId`` (SNS API Reference,
CreateTopic: "For more examples, see KeyId in the AWS Key Management Service API Reference") and resolves it
when it encrypts, and SNS checks the key only when a message is published, not when the topic is created.

Conditions. CloudWatch sends ``aws:SourceAccount``/``aws:SourceArn`` (the alarm) with its publishes. EventBridge
may not: "You can't use Condition blocks in Amazon SNS topic policies for EventBridge" (EventBridge User Guide,
"Using resource-based policies for Amazon EventBridge", Amazon SNS permissions), and "Adding the
aws:SourceAccount and aws:SourceArn to a AWS KMS policy is not supported for EventBridge-to-encrypted topics"
(SNS Developer Guide, "Managing Amazon SNS encryption keys"): a plain condition on them would drop every failure
notification. So the topic policy binds both services with ``...IfExists`` conditions (a key that is sent must
name this account and the project's alarms or rules; an absent one passes), and the key policy binds CloudWatch
to the account and leaves EventBridge unconditioned. What that leaves open is bounded: when EventBridge sends
no source keys it may publish to this topic (and use the key) for a rule of another account that names this
topic's ARN, which can send noise but read nothing; the pipeline-failure rule's failed deliveries have their own
alarm, which publishes through CloudWatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import awacs.cloudwatch as cw
import awacs.kms as kms_actions
import awacs.logs as logs
import awacs.sns as sns_actions
from awacs.aws import (
    Allow,
    ArnLikeIfExists,
    BoolIfExists,
    Condition,
    Deny,
    Principal,
    Statement,
    StringEquals,
    StringEqualsIfExists,
)
from troposphere import AWSObject, Equals, GetAtt, Not, Output, Ref, Sub, Template, awslambda, cloudwatch, events, sns
from troposphere import kms as kms_resources
from troposphere import logs as cwlogs
from troposphere import sqs as sqs_resources

from .. import event_patterns
from ..common import arn, deny_insecure_transport, policy_document
from ..grants import Grant
from ..names import NOTIFICATIONS_KEY_ALIAS, wild
from ..parameters import ParameterSpec
from .project import ProjectTemplate
from .upload_trigger import UploadTrigger, rule_grant

NOTIFICATIONS = "Notifications"
NOTIFICATION_PARAMETERS = (
    ParameterSpec(
        "AlarmEmail",
        NOTIFICATIONS,
        "Alarm e-mail address (optional)",
        {
            "Type": "String",
            "Default": "",
            "MaxLength": 254,
            "AllowedPattern": "([^\\s@]+@[^\\s@]+\\.[^\\s@]+)?",
            "ConstraintDescription": "an e-mail address such as ml-team@example.com, or empty",
            "Description": "Optional e-mail address subscribed to the project's notification topic (alarms and "
            "failed pipeline executions); SNS sends it a confirmation e-mail first. Empty: no subscription.",
        },
        readme="optional address subscribed to the project's notification topic (alarms, failed pipeline "
        "executions); it receives nothing until it confirms the e-mail SNS sends. Empty: subscribe to the "
        "`NotificationTopicArn` output yourself",
    ),
)

# Five minutes: a standard-resolution period every metric here reports within (SQS, Lambda and EventBridge
# publish per minute); one breaching period is enough, since every alarm counts failures (threshold 0).
PERIOD_SECONDS = 300
MALFORMED_EVENTS_METRIC = "MalformedEvents"
# Matches the start Lambda's JSON log line for an event it cannot read. The function logs with the standard
# logging module and ``extra={"malformed_event": 1, ...}``; with LoggingConfig.LogFormat JSON the Python runtime
# writes each record as one JSON object whose top-level keys include every ``extra`` field, numbers as JSON
# numbers (Lambda Developer Guide, "Using Lambda advanced logging controls with Python").
MALFORMED_EVENT_FILTER = "{ $.malformed_event = 1 }"


@dataclass(frozen=True)
class Notifications:
    """The project's notification topic; blocks register alarms and rules that publish to it."""

    pt: ProjectTemplate
    topic: sns.Topic


def notifications(pt: ProjectTemplate) -> Notifications:
    """The encrypted topic, its policy, the optional e-mail subscription and the ``NotificationTopicArn`` output."""
    names = pt.names
    t = pt.template
    t.add_condition("HasAlarmEmail", Not(Equals(pt.ref("AlarmEmail"), "")))
    topic = t.add_resource(
        sns.Topic(
            "NotificationTopic",
            TopicName=Sub(names.notification_topic),
            DisplayName=Sub("SageMaker project ${SageMakerProjectName}"),
            KmsMasterKeyId=NOTIFICATIONS_KEY_ALIAS,
            Tags=pt.tags(),
        )
    )
    t.add_resource(sns.TopicPolicy("NotificationTopicPolicy", Topics=[Ref(topic)],
                                   PolicyDocument=topic_policy(pt, topic)))
    t.add_resource(
        sns.SubscriptionResource(
            "AlarmEmailSubscription",
            Condition="HasAlarmEmail",
            TopicArn=Ref(topic),
            Protocol="email",
            Endpoint=pt.ref("AlarmEmail"),
        )
    )
    t.add_output(Output("NotificationTopicArn", Value=Ref(topic),
                        Description="SNS topic of the project's alarms and failed pipeline executions"))
    pt.launch.extend(launch_grants(pt))
    return Notifications(pt, topic)


def topic_policy(pt: ProjectTemplate, topic: sns.Topic) -> object:
    """CloudWatch and EventBridge may publish for the project's own alarms and rules (by name prefix) of this
    account; nothing over plain HTTP.

    One statement for both services, its conditions ``...IfExists``: CloudWatch sends ``aws:SourceAccount`` and
    ``aws:SourceArn`` (the alarm) and is held to them; EventBridge is documented not to work with conditions in
    a topic policy (module docstring), which these pass when it sends no source keys, while they still refuse a
    rule of another account or project whenever EventBridge does name its rule."""
    names = pt.names
    sources = [
        arn("cloudwatch", f"alarm:{names.alarm_prefix}*"),
        arn("events", f"rule/{names.alarm_prefix}*"),  # the project's rules share the prefix (names.py)
    ]
    return policy_document(
        Statement(
            Sid="ProjectAlarmsAndRules",
            Effect=Allow,
            Principal=Principal("Service", ["cloudwatch.amazonaws.com", "events.amazonaws.com"]),
            Action=[sns_actions.Publish],
            Resource=[Ref(topic)],
            Condition=Condition([
                StringEqualsIfExists({"aws:SourceAccount": Ref("AWS::AccountId")}),
                ArnLikeIfExists({"aws:SourceArn": sources}),
            ]),
        ),
        deny_insecure_transport(sns_actions.Publish, [Ref(topic)]),
    )


def launch_grants(pt: ProjectTemplate) -> list[Grant]:
    """What CloudFormation calls for the topic, its policy and subscription, the alarms, the metric filter and
    the pipeline-failure rule (their registry schemas' handler permissions; security/launch_role.py)."""
    names = pt.names
    return [
        Grant(
            "ProjectTopics",
            [sns_actions.CreateTopic, sns_actions.DeleteTopic, sns_actions.GetTopicAttributes,
             sns_actions.SetTopicAttributes, sns_actions.Subscribe, sns_actions.ListSubscriptionsByTopic,
             sns_actions.TagResource, sns_actions.UntagResource, sns_actions.ListTagsForResource,
             sns_actions.GetDataProtectionPolicy],
            [arn("sns", wild(names.notification_topic))],
        ),
        # GetSubscriptionAttributes and Unsubscribe name a subscription, not a topic, and have no resource type in
        # the Service Authorization Reference (Amazon SNS): CloudFormation deletes the e-mail subscription with them.
        Grant("ListWithoutResourceScope", [sns_actions.GetSubscriptionAttributes], ["*"]),
        Grant("UnsubscribeWithoutResourceScope", [sns_actions.Unsubscribe], ["*"]),
        Grant(
            "ProjectAlarms",
            [cw.PutMetricAlarm, cw.DescribeAlarms, cw.DeleteAlarms, cw.TagResource, cw.UntagResource,
             cw.ListTagsForResource],
            [arn("cloudwatch", f"alarm:{wild(names.alarm_prefix)}*")],
        ),
        Grant(
            "ProjectMetricFilters",
            [logs.PutMetricFilter, logs.DeleteMetricFilter, logs.DescribeMetricFilters],
            [arn("logs", f"log-group:{wild(names.log_group)}*")],
        ),
        rule_grant(names.pipeline_failure_rule),
    ]


def _alarm(n: Notifications, logical_id: str, suffix: str, *, description: str, namespace: object, metric: str,
           statistic: str, dimensions: dict[str, object], treat_missing_data: str = "notBreaching",
           threshold: float = 0) -> cloudwatch.Alarm:
    """An alarm that fires when ``statistic`` of ``metric`` exceeds ``threshold`` in one five-minute period."""
    alarm: cloudwatch.Alarm = n.pt.template.add_resource(
        cloudwatch.Alarm(
            logical_id,
            AlarmName=Sub(n.pt.names.alarm(suffix)),
            AlarmDescription=description,
            Namespace=namespace,
            MetricName=metric,
            Statistic=statistic,
            Period=PERIOD_SECONDS,
            EvaluationPeriods=1,
            DatapointsToAlarm=1,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData=treat_missing_data,
            AlarmActions=[Ref(n.topic)],
            Tags=n.pt.tags(),
        )
    )
    if dimensions:
        alarm.Dimensions = [cloudwatch.MetricDimension(Name=name, Value=value) for name, value in dimensions.items()]
    return alarm


def queue_alarm(n: Notifications, logical_id: str, queue: sqs_resources.Queue, *, suffix: str, description: str,
                metric: str = "ApproximateNumberOfMessagesVisible", threshold: float = 0) -> cloudwatch.Alarm:
    """An alarm on a queue's ``metric`` (Maximum over five minutes above ``threshold``).

    Missing data keeps the alarm's state: SQS publishes a queue's metrics only while it is active, "for up to
    six hours if it contains any messages or if any action accesses it" (SQS Developer Guide, "Monitoring
    Amazon SQS queues using CloudWatch"), so a dead-letter queue nobody touches stops reporting while it still
    holds messages; treating that as not breaching would clear the alarm with the messages still there."""
    return _alarm(n, logical_id, suffix, description=description, namespace="AWS/SQS", metric=metric,
                  statistic="Maximum", dimensions={"QueueName": GetAtt(queue, "QueueName")},
                  treat_missing_data="ignore", threshold=threshold)


def dead_letter_alarm(n: Notifications, queue: sqs_resources.Queue) -> cloudwatch.Alarm:
    """Any message in the project's dead-letter queue: an upload that did not start the pipeline."""
    return queue_alarm(
        n,
        "DeadLetterQueueAlarm",
        queue,
        suffix="dead-letters",
        description="Uploads that could not start the pipeline are in the dead-letter queue (the rule's deliveries "
        "after their retries, and the start Lambda's failed invocations). Read a message to see the upload and the "
        "error, fix the cause, then send the messages back (redrive) or delete them.",
    )


def start_function_alarms(n: Notifications, function: awslambda.Function) -> list[AWSObject]:
    """Errors of the start Lambda, and the malformed events it logs (a metric filter on its JSON logs)."""
    errors = _alarm(
        n,
        "StartIngestionErrorsAlarm",
        "start-errors",
        description="The start Lambda failed (throttling, a service error, a missing pipeline). EventBridge and "
        "Lambda retry; what still fails ends in the dead-letter queue. Read the function's log group for the error.",
        namespace="AWS/Lambda",
        metric="Errors",
        statistic="Sum",
        dimensions={"FunctionName": Ref(function)},
    )
    namespace = Sub(n.pt.names.metric_namespace)
    metric_filter = n.pt.template.add_resource(
        cwlogs.MetricFilter(
            "MalformedEventsMetricFilter",
            # The log group the function writes to (its LoggingConfig), so the filter depends on it.
            LogGroupName=function.LoggingConfig.LogGroup,
            FilterName="malformed-events",
            FilterPattern=MALFORMED_EVENT_FILTER,
            MetricTransformations=[
                cwlogs.MetricTransformation(
                    MetricNamespace=namespace, MetricName=MALFORMED_EVENTS_METRIC, MetricValue="1", Unit="Count"
                )
            ],
        )
    )
    malformed = _alarm(
        n,
        "MalformedEventsAlarm",
        "malformed-events",
        description="The start Lambda received events it could not read (logged with malformed_event: 1) and "
        "ignored them. Search its log group for malformed_event to see the event and the reason; a rule or "
        "a caller sends events of an unexpected shape.",
        namespace=namespace,
        metric=MALFORMED_EVENTS_METRIC,
        statistic="Sum",
        dimensions={},
    )
    return [errors, metric_filter, malformed]


def pipeline_failure_rule(n: Notifications) -> events.Rule:
    """Publishes a readable message for every execution of the project's pipeline that ends ``Failed``, and
    alarms when EventBridge cannot deliver it."""
    names = n.pt.names
    rule = n.pt.template.add_resource(
        events.Rule(
            "PipelineFailureRule",
            Name=Sub(names.pipeline_failure_rule),
            Description="Notifies the project's topic when an execution of its SageMaker pipeline fails.",
            EventPattern=event_patterns.pipeline_execution_failed_pattern(
                arn("sagemaker", f"pipeline/{names.sagemaker_pipeline}")
            ),
            State="ENABLED",
            Targets=[
                events.Target(
                    Id="NotificationTopic",
                    Arn=Ref(n.topic),
                    InputTransformer=events.InputTransformer(
                        InputPathsMap={
                            "execution": "$.detail.pipelineExecutionArn",
                            "name": "$.detail.pipelineExecutionDisplayName",
                            "time": "$.time",
                        },
                        InputTemplate=Sub(
                            '"SageMaker project ${SageMakerProjectName}: pipeline execution <name> failed at <time> '
                            "(execution <execution>). The failed step and its reason: SageMaker Studio, Pipelines, "
                            'or aws sagemaker list-pipeline-execution-steps --pipeline-execution-arn <execution>"'
                        ),
                    ),
                )
            ],
        )
    )
    _alarm(
        n,
        "PipelineFailureRuleAlarm",
        "notification-failures",
        description="EventBridge could not deliver a failed-pipeline notification to the project's topic (its "
        "FailedInvocations). Check the topic's policy and that the platform's notification key exists "
        f"({NOTIFICATIONS_KEY_ALIAS}) and lets events.amazonaws.com use it.",
        namespace="AWS/Events",
        metric="FailedInvocations",
        statistic="Sum",
        dimensions={"RuleName": Ref(rule)},
    )
    return rule


# An upload older than this still waiting in the batch queue: the batches keep being refused (the account's
# pipeline executions are taken for that long) or the event source mapping does not run.
BATCH_BACKLOG_SECONDS = 3600


def batch_backlog_alarm(n: Notifications, queue: sqs_resources.Queue) -> cloudwatch.Alarm:
    """Batched start mode: the oldest upload in the batch queue has waited more than an hour."""
    return queue_alarm(
        n,
        "BatchQueueBacklogAlarm",
        queue,
        suffix="batch-backlog",
        description="Uploads have waited more than an hour in the batch queue: SageMaker keeps refusing their "
        "batches (the account's concurrent pipeline executions are taken; the start Lambda's log lines with outcome "
        "batch_deferred name the error) or the event source mapping is disabled (StartMode PerFile) while events "
        "still arrive. They are not lost: they start when an execution slot frees, or reach the dead-letter queue "
        "after 100 refusals.",
        metric="ApproximateAgeOfOldestMessage",
        threshold=BATCH_BACKLOG_SECONDS,
    )


def project_alarms(pt: ProjectTemplate, trigger: UploadTrigger) -> Notifications:
    """The topic and every alarm of a project whose uploads go through ``trigger``."""
    n = notifications(pt)
    dead_letter_alarm(n, trigger.queue)
    batch_backlog_alarm(n, trigger.batch_queue)
    start_function_alarms(n, trigger.function)
    pipeline_failure_rule(n)
    return n


# --- the platform's key -------------------------------------------------------------------------------


def key_policy() -> object:
    """The account administers the key (IAM policies may grant it); CloudWatch alarms of this account and
    EventBridge may encrypt and decrypt the topics' messages; grants only for AWS resources (Control Tower
    CT.KMS.PR.3)."""
    publish = [kms_actions.Decrypt, kms_actions.Action("GenerateDataKey*")]
    return policy_document(
        Statement(
            Sid="AccountAdministersTheKey",
            Effect=Allow,
            Principal=Principal("AWS", arn("iam", "root")),
            Action=[kms_actions.Action("*")],
            Resource=["*"],
        ),
        Statement(
            Sid="CloudWatchAlarmsOfThisAccount",
            Effect=Allow,
            Principal=Principal("Service", "cloudwatch.amazonaws.com"),
            Action=publish,
            Resource=["*"],
            Condition=Condition(StringEquals({"aws:SourceAccount": Ref("AWS::AccountId")})),
        ),
        Statement(
            Sid="EventBridgeRules",
            Effect=Allow,
            Principal=Principal("Service", "events.amazonaws.com"),
            Action=publish,
            Resource=["*"],
        ),
        Statement(
            Sid="GrantsOnlyForAwsResources",
            Effect=Deny,
            Principal=Principal("*"),
            Action=[kms_actions.CreateGrant],
            Resource=["*"],
            Condition=Condition(
                BoolIfExists({"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"})
            ),
        ),
    )


def notifications_key(t: Template) -> kms_resources.Key:
    """The customer managed key of every project's notification topic in this account and Region, and its alias,
    in sm-policies (deployed per account and Region, like the key). Not retained: nothing outlives it that needs it
    (SNS keeps a message, encrypted, only until it is delivered), and a retained alias would make a redeployed stack
    fail on "alias already exists". Deleting sm-policies stops every project anyway (its launch role's policies)."""
    key = t.add_resource(
        kms_resources.Key(
            "NotificationsKey",
            Description="Encrypts the SageMaker projects' notification topics (CloudWatch alarms, EventBridge rules)",
            EnableKeyRotation=True,
            KeyPolicy=key_policy(),
            PendingWindowInDays=7,
        )
    )
    alias = t.add_resource(
        kms_resources.Alias(
            "NotificationsKeyAlias",
            AliasName=NOTIFICATIONS_KEY_ALIAS,
            TargetKeyId=Ref(key),
        )
    )
    t.add_output([
        Output("NotificationsKeyArn", Value=GetAtt(key, "Arn"),
               Description="KMS key of the projects' notification topics"),
        Output("NotificationsKeyAlias", Value=Ref(alias)),
    ])
    return key
