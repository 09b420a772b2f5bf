"""Alarms and notifications of every project (generators/blocks/alarms.py), read from the built templates.

What AWS does and the offline stand-ins do not, modelled here with the document each rule comes from:
who may publish to the encrypted topic (topic and key policies, evaluated with security/iam_conditions.py
against the request context each service sends), the EventBridge pattern of the pipeline-failure rule
(moto's EventBridge matcher, on the AWS sample event) and the log metric filter (a matcher of CloudWatch Logs'
JSON filter syntax, on the JSON line the Lambda Python runtime writes).
"""

from __future__ import annotations

import copy
import json
import logging
import re
from datetime import UTC, datetime

import pytest
from lambda_support import LOGGER_NAME, SageMakerStub, lambda_json_line, load_app, set_lambda_env
from loading import load_event
from moto.events.models import EventPattern

from generators.blocks import alarms
from generators.cfn_resolve import resolve, resolve_template
from generators.names import ALARM_SUFFIX_MAX, NOTIFICATIONS_KEY_ALIAS, ProjectNames, check_budgets
from generators.products import products
from generators.settings import POLICIES_TEMPLATE, PORTFOLIO_TEMPLATE, PROJECT_NAME_MAX, Settings
from security.iam_conditions import Policy, Request, evaluate
from security.scenarios import ACCOUNT, PARTITION, REGION, resolve_references, scenarios

PRODUCTS = {product.slug: product for product in products()}
PLATFORM_TEMPLATES = (POLICIES_TEMPLATE, PORTFOLIO_TEMPLATE)
OTHER_ACCOUNT = "444455556666"
ALARM_TYPE = "AWS::CloudWatch::Alarm"
# The alarms generators/blocks/alarms.py gives every project.
BLOCK_ALARMS = ("DeadLetterQueueAlarm", "MalformedEventsAlarm", "PipelineFailureRuleAlarm", "StartIngestionErrorsAlarm")


def _resolved(templates, product, **overrides: str) -> dict:
    """The product's resources for its sample project, references replaced by what CloudFormation returns."""
    template = templates[product.template_name]
    parameters = {**product.sample_parameters, **overrides}
    resolved = resolve_template(template, {k: v for k, v in parameters.items() if k in template["Parameters"]})
    return resolve_references(resolved["Resources"])


def _service_view(document: dict, service: str) -> Policy:
    """The statements of a resource or key policy that apply to ``service`` (its service principal, or "*"),
    as an identity policy for the evaluator (which matches role principals only)."""
    kept = []
    for statement in document["Statement"]:
        principal = statement.get("Principal")
        if principal == "*" or service in _as_list((principal or {}).get("Service", [])):
            kept.append({k: v for k, v in statement.items() if k != "Principal"})
    return Policy(f"{service} view", {"Version": "2012-10-17", "Statement": kept})


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _alarm_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:cloudwatch:{REGION}:{account}:alarm:{name}"


# --- the resources, in both products -----------------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(PRODUCTS))
def test_every_project_has_the_encrypted_topic_alarms_and_failure_rule(templates, slug) -> None:
    resources = templates[PRODUCTS[slug].template_name]["Resources"]
    topic = resources["NotificationTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"] == NOTIFICATIONS_KEY_ALIAS
    assert not NOTIFICATIONS_KEY_ALIAS.startswith("alias/aws/"), "AWS managed keys cannot grant CloudWatch"
    alarm_ids = {k for k, v in resources.items() if v["Type"] == ALARM_TYPE}
    assert alarm_ids >= set(BLOCK_ALARMS)  # other blocks may register more (alarms.queue_alarm)
    assert resources["MalformedEventsMetricFilter"]["Type"] == "AWS::Logs::MetricFilter"
    assert resources["PipelineFailureRule"]["Type"] == "AWS::Events::Rule"
    assert resources["NotificationTopicPolicy"]["Properties"]["Topics"] == [{"Ref": "NotificationTopic"}]
    outputs = templates[PRODUCTS[slug].template_name]["Outputs"]
    assert outputs["NotificationTopicArn"]["Value"] == {"Ref": "NotificationTopic"}  # Ref of a topic: its ARN


@pytest.mark.parametrize("slug", sorted(PRODUCTS))
def test_every_alarm_notifies_the_topic_and_watches_the_right_resource(templates, slug) -> None:
    """CloudWatch User Guide, "Using Amazon CloudWatch alarms": an alarm acts when it enters ALARM; metrics by
    namespace and dimension (AWS/SQS QueueName, AWS/Lambda FunctionName, AWS/Events RuleName)."""
    resources = templates[PRODUCTS[slug].template_name]["Resources"]
    alarms_found = {k: v["Properties"] for k, v in resources.items() if v["Type"] == ALARM_TYPE}
    for logical_id, alarm in alarms_found.items():  # every alarm of the project, whichever block registered it
        assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}], logical_id
        assert alarm.get("ActionsEnabled", True) is True, logical_id
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (300, 1, 1), logical_id
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold", logical_id
        assert alarm["AlarmName"]["Fn::Sub"].startswith(PRODUCTS[slug].names.alarm_prefix), logical_id
    for logical_id in BLOCK_ALARMS:  # these count failures: any is one too many
        assert alarms_found[logical_id]["Threshold"] == 0, logical_id
    dead_letters = alarms_found["DeadLetterQueueAlarm"]
    assert (dead_letters["Namespace"], dead_letters["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dead_letters["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["IngestionDeadLetterQueue", "QueueName"]}}
    ]
    # SQS Developer Guide, "Monitoring Amazon SQS queues using CloudWatch": a queue reports only while active, so a
    # dead-letter queue nobody reads goes quiet with its messages still in it: keep the state, do not clear it.
    assert dead_letters["TreatMissingData"] == "ignore"
    errors = alarms_found["StartIngestionErrorsAlarm"]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "StartIngestionFunction"}}]
    deliveries = alarms_found["PipelineFailureRuleAlarm"]
    assert (deliveries["Namespace"], deliveries["MetricName"]) == ("AWS/Events", "FailedInvocations")
    assert deliveries["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": "PipelineFailureRule"}}]
    for logical_id in ("StartIngestionErrorsAlarm", "MalformedEventsAlarm", "PipelineFailureRuleAlarm"):
        assert alarms_found[logical_id]["TreatMissingData"] == "notBreaching"  # no data: nothing failed


def test_other_blocks_can_register_their_queues() -> None:
    """A block that adds a queue (e.g. a batching queue) gets an alarm on the same topic, named under the
    project's alarm prefix, which the topic policy lets CloudWatch publish for."""
    from troposphere import sqs

    product = PRODUCTS["s3-fs-ingestion"]
    pt = product.build_template(Settings(), product)  # a fresh build: the registry's cached one stays untouched
    n = alarms.Notifications(pt, pt.template.resources["NotificationTopic"])
    queue = pt.template.add_resource(sqs.Queue("BatchQueue", QueueName="sagemaker-batch"))
    alarm = alarms.queue_alarm(n, "BatchQueueAgeAlarm", queue, suffix="batch-queue-age",
                               metric="ApproximateAgeOfOldestMessage", threshold=900,
                               description="Uploads wait in the batching queue for more than 15 minutes.")
    rendered = json.loads(pt.template.to_json())["Resources"]["BatchQueueAgeAlarm"]["Properties"]
    assert rendered["AlarmActions"] == [{"Ref": "NotificationTopic"}]
    assert rendered["AlarmName"] == {"Fn::Sub": "sagemaker-${SageMakerProjectName}-batch-queue-age"}
    assert rendered["Threshold"] == 900 and rendered["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm.title == "BatchQueueAgeAlarm"
    with pytest.raises(ValueError, match="alarm suffix"):
        alarms.queue_alarm(n, "Bad", queue, suffix="Batch Queue", description="An alarm with an invalid suffix.")


# --- the e-mail subscription -----------------------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(PRODUCTS))
def test_the_email_subscription_exists_only_with_an_address(templates, slug) -> None:
    product = PRODUCTS[slug]
    template = templates[product.template_name]
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    with_email = _resolved(templates, product, AlarmEmail="ml-team@example.com")
    subscription = with_email["AlarmEmailSubscription"]["Properties"]
    project = product.sample_parameters["SageMakerProjectName"]
    assert subscription == {
        "Endpoint": "ml-team@example.com",
        "Protocol": "email",  # SNS sends a confirmation e-mail; nothing is delivered until it is confirmed
        "TopicArn": f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:sagemaker-{project}-notifications",
    }
    assert "AlarmEmailSubscription" not in _resolved(templates, product, AlarmEmail="")


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("", True), ("ml-team@example.com", True), ("first.last+alarms@sub.example.co.uk", True),
     ("ml-team", False), ("ml team@example.com", False), ("@example.com", False), ("a@b", False)],
)
def test_the_email_parameter_accepts_an_address_or_nothing(templates, value, accepted) -> None:
    """CloudFormation matches AllowedPattern against the whole value (Java regular expressions; this pattern
    uses only syntax that Python's re reads the same way)."""
    spec = templates[PRODUCTS["s3-fs-ingestion"].template_name]["Parameters"]["AlarmEmail"]
    assert (re.fullmatch(spec["AllowedPattern"], value) is not None and len(value) <= spec["MaxLength"]) is accepted


# --- who may publish: the topic policy -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ingestion(templates) -> dict:
    return _resolved(templates, PRODUCTS["s3-fs-ingestion"])


def _publish(ingestion, service: str, **context: str) -> bool:
    topic = ingestion["NotificationTopic"]["Properties"]["TopicName"]
    request = Request("sns:Publish", f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{topic}",
                      {"aws:SecureTransport": "true", **context})
    document = ingestion["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]
    return evaluate(request, [_service_view(document, service)]).allowed


def test_cloudwatch_may_publish_for_this_projects_alarms_only(ingestion) -> None:
    """CloudWatch sends aws:SourceAccount and aws:SourceArn (the alarm's ARN) when it publishes (AWS re:Post
    Knowledge Center, "Why didn't I receive an SNS notification for my CloudWatch alarm trigger?": topic
    policy for cloudwatch.amazonaws.com with ArnLike aws:SourceArn)."""
    for logical_id, resource in ingestion.items():
        if resource["Type"] == ALARM_TYPE:
            name = resource["Properties"]["AlarmName"]
            assert _publish(ingestion, "cloudwatch.amazonaws.com", **{
                "aws:SourceAccount": ACCOUNT, "aws:SourceArn": _alarm_arn(name)}), logical_id
            assert not _publish(ingestion, "cloudwatch.amazonaws.com", **{
                "aws:SourceAccount": OTHER_ACCOUNT, "aws:SourceArn": _alarm_arn(name, OTHER_ACCOUNT)}), logical_id
    other_project = _alarm_arn("sagemaker-Other-Project-dead-letters")
    assert not _publish(ingestion, "cloudwatch.amazonaws.com", **{
        "aws:SourceAccount": ACCOUNT, "aws:SourceArn": other_project})


def test_eventbridge_may_publish_with_or_without_source_keys(ingestion) -> None:
    """EventBridge User Guide, "Using resource-based policies for Amazon EventBridge", Amazon SNS permissions:
    "You can't use Condition blocks in Amazon SNS topic policies for EventBridge". The statement's conditions
    are ...IfExists (IAM User Guide, "IAM JSON policy elements: Condition operators": a missing key makes them
    true), so a publish without source keys passes, and one naming another account's or project's rule does not."""
    rule_name = ingestion["PipelineFailureRule"]["Properties"]["Name"]
    rule_arn = f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{rule_name}"
    assert _publish(ingestion, "events.amazonaws.com")
    assert _publish(ingestion, "events.amazonaws.com", **{"aws:SourceAccount": ACCOUNT, "aws:SourceArn": rule_arn})
    assert not _publish(ingestion, "events.amazonaws.com", **{
        "aws:SourceAccount": OTHER_ACCOUNT, "aws:SourceArn": rule_arn.replace(ACCOUNT, OTHER_ACCOUNT)})
    assert not _publish(ingestion, "events.amazonaws.com", **{
        "aws:SourceArn": rule_arn.replace("Churn-Features1", "Other-Project")})
    (allow,) = [s for s in ingestion["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
                if s["Effect"] == "Allow"]
    assert set(allow["Condition"]) == {"StringEqualsIfExists", "ArnLikeIfExists"}, "a plain operator drops deliveries"
    assert allow["Action"] == ["sns:Publish"]


def test_nobody_publishes_over_plain_http(ingestion) -> None:
    """Amazon SNS Developer Guide, "Amazon SNS security best practices": enforce encryption of data in transit
    with a Deny on aws:SecureTransport false."""
    for service, context in (("cloudwatch.amazonaws.com", {"aws:SourceAccount": ACCOUNT, "aws:SourceArn":
                                                           _alarm_arn("sagemaker-Churn-Features1-dead-letters")}),
                             ("events.amazonaws.com", {})):
        assert _publish(ingestion, service, **context)
        assert not _publish(ingestion, service, **{**context, "aws:SecureTransport": "false"})


def test_no_other_service_may_publish(ingestion) -> None:
    document = ingestion["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]
    services = {service for s in document["Statement"] if s["Effect"] == "Allow"
                for service in _as_list(s["Principal"]["Service"])}
    assert services == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    assert not _publish(ingestion, "s3.amazonaws.com", **{"aws:SourceAccount": ACCOUNT})


# --- the platform's key ------------------------------------------------------------------------------


def _key_stack(templates) -> tuple[str, dict]:
    """(template, resources) of the one platform template that creates the notifications key's alias."""
    found = []
    for name in PLATFORM_TEMPLATES:
        resources = resolve_template(templates[name], _platform_parameters(name))["Resources"]
        aliases = [r for r in resources.values()
                   if r["Type"] == "AWS::KMS::Alias" and r["Properties"]["AliasName"] == NOTIFICATIONS_KEY_ALIAS]
        if aliases:
            found.append((name, resources))
    assert len(found) == 1, f"exactly one platform stack must create {NOTIFICATIONS_KEY_ALIAS}: {found}"
    return found[0]


def _platform_parameters(name: str) -> dict[str, str]:
    from security.scenarios import sample_parameters

    return sample_parameters(name)


def test_one_platform_stack_creates_the_key_every_topic_names(templates) -> None:
    """KMS Developer Guide, "Aliases in AWS KMS": an alias names one key per account and Region; aliases
    starting with alias/aws/ are AWS managed keys, whose key policies nobody can change."""
    _, resources = _key_stack(templates)
    (alias,) = [r for r in resources.values() if r["Type"] == "AWS::KMS::Alias"]
    (key_id, key), = [(k, r) for k, r in resources.items() if r["Type"] == "AWS::KMS::Key"]
    assert alias["Properties"]["TargetKeyId"] == f"<{key_id}>"
    assert key["Properties"]["EnableKeyRotation"] is True  # Control Tower CT.KMS.PR.1
    assert key["Properties"].get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"  # SNS: symmetric keys only
    # sm-policies can be deleted and deployed again: a retained alias would refuse the new stack's alias
    # ("AlreadyExists", KMS CreateAlias), and nothing outlives the stack that needs the key.
    assert "DeletionPolicy" not in key and "DeletionPolicy" not in alias
    assert key["Properties"]["PendingWindowInDays"] == 7
    for product in products():
        topic = templates[product.template_name]["Resources"]["NotificationTopic"]["Properties"]
        assert topic["KmsMasterKeyId"] == alias["Properties"]["AliasName"]


def _key_use(resources, service: str, action: str, **context: str) -> bool:
    (key,) = [r for r in resources.values() if r["Type"] == "AWS::KMS::Key"]
    request = Request(action, "*", context)
    return evaluate(request, [_service_view(key["Properties"]["KeyPolicy"], service)]).allowed


@pytest.mark.parametrize("action", ["kms:GenerateDataKey", "kms:Decrypt"])
def test_the_key_policy_lets_both_publishers_use_the_key(templates, action) -> None:
    """SNS Developer Guide, "Managing Amazon SNS encryption keys": an AWS service that publishes to an encrypted
    topic needs kms:GenerateDataKey* and kms:Decrypt in the key policy. CloudWatch is bound to this account;
    "Adding the aws:SourceAccount and aws:SourceArn to a AWS KMS policy is not supported for
    EventBridge-to-encrypted topics" (same page), so the EventBridge statement carries no condition."""
    _, resources = _key_stack(templates)
    assert _key_use(resources, "cloudwatch.amazonaws.com", action, **{"aws:SourceAccount": ACCOUNT})
    assert not _key_use(resources, "cloudwatch.amazonaws.com", action, **{"aws:SourceAccount": OTHER_ACCOUNT})
    assert _key_use(resources, "events.amazonaws.com", action)
    assert not _key_use(resources, "sns.amazonaws.com", action)
    assert not _key_use(resources, "cloudwatch.amazonaws.com", "kms:ScheduleKeyDeletion",
                        **{"aws:SourceAccount": ACCOUNT})


def test_the_key_policy_keeps_the_account_in_charge_and_grants_for_aws_resources_only(templates) -> None:
    """KMS Developer Guide, "Default key policy": the account principal's kms:* statement lets IAM policies
    grant the key (without it the key can become unmanageable); Control Tower CT.KMS.PR.3 denies kms:CreateGrant
    unless the grant is for an AWS resource or the caller is an AWS service."""
    _, resources = _key_stack(templates)
    (key,) = [r for r in resources.values() if r["Type"] == "AWS::KMS::Key"]
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert statements["AccountAdministersTheKey"]["Principal"] == {"AWS": f"arn:{PARTITION}:iam::{ACCOUNT}:root"}
    deny = statements["GrantsOnlyForAwsResources"]
    assert (deny["Effect"], deny["Action"], deny["Principal"]) == ("Deny", ["kms:CreateGrant"], "*")
    assert deny["Condition"] == {"BoolIfExists": {"kms:GrantIsForAWSResource": "false",
                                                   "aws:PrincipalIsAWSService": "false"}}


def test_the_launch_role_needs_no_key_permission(templates) -> None:
    """The key exists before any project (a platform stack): the launch role never calls KMS, so it gets no
    kms:CreateKey, which IAM cannot scope to a resource. SNS checks the key only when a message is published
    (the AWS::SNS::Topic handler permissions list no KMS action)."""
    for scenario in scenarios(POLICIES_TEMPLATE, templates[POLICIES_TEMPLATE]):
        for logical_id, resource in scenario.resources.items():
            if logical_id.startswith("LaunchRolePolicy"):
                for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                    assert not [a for a in _as_list(statement["Action"]) if a.startswith("kms:")], statement["Sid"]


# --- the pipeline-failure rule -------------------------------------------------------------------


def _pipeline_event(pipeline_arn: str, status: str = "Failed", **detail: str) -> dict:
    """The AWS sample event (SageMaker Developer Guide, "Events that Amazon SageMaker sends to Amazon EventBridge":
    SageMaker pipeline execution state change; tests/events/sagemaker-pipeline-execution-succeeded.json), for
    another pipeline, Region and account and with another status."""
    event = copy.deepcopy(load_event("sagemaker-pipeline-execution-succeeded.json"))
    execution = f"{pipeline_arn}/execution/p4jn9xou8a8s"
    event.update(account=ACCOUNT, region=REGION, resources=[pipeline_arn, execution])
    event["detail"].update(currentPipelineExecutionStatus=status, pipelineArn=pipeline_arn,
                           pipelineExecutionArn=execution, **detail)
    return event


@pytest.mark.parametrize("slug", sorted(PRODUCTS))
def test_the_failure_rule_matches_only_failed_executions_of_the_projects_pipeline(templates, slug) -> None:
    product = PRODUCTS[slug]
    resources = _resolved(templates, product)
    rule = resources["PipelineFailureRule"]["Properties"]
    pipeline = f"sagemaker-{product.sample_parameters['SageMakerProjectId']}-{product.names.suffix}"
    arn = f"arn:{PARTITION}:sagemaker:{REGION}:{ACCOUNT}:pipeline/{pipeline}"
    assert pipeline == resources["StartIngestionFunction"]["Properties"]["Environment"]["Variables"]["PIPELINE_NAME"]
    matcher = EventPattern.load(json.dumps(rule["EventPattern"]))
    cases = {
        "failed": (_pipeline_event(arn), True),
        "succeeded": (_pipeline_event(arn, "Succeeded"), False),
        "executing": (_pipeline_event(arn, "Executing"), False),
        "stopped": (_pipeline_event(arn, "Stopped"), False),
        "other-pipeline-failed": (_pipeline_event(arn.replace(pipeline, "sagemaker-p-other0000000-x")), False),
        "pipeline-name-prefix": (_pipeline_event(arn + "-v2"), False),
        "step-failed": ({**_pipeline_event(arn), "detail-type": "SageMaker Model Building Pipeline Execution Step "
                                                               "Status Change"}, False),
        "other-source": ({**_pipeline_event(arn), "source": "custom.sagemaker"}, False),
    }
    for case, (event, expected) in cases.items():
        assert matcher.matches_event(event) is expected, case
    assert rule["State"] == "ENABLED"


def _transform(transformer: dict, event: dict) -> str:
    """EventBridge's input transformer for the simple JSON paths used here (EventBridge User Guide, "Amazon
    EventBridge input transformation"): each <name> of the template replaced by the value at its path."""
    def value(path: str):
        node = event
        for part in path.removeprefix("$.").split("."):
            node = node[part]
        return node

    text = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        text = text.replace(f"<{name}>", str(value(path)))
    return text


def test_the_failure_notification_is_a_readable_message(ingestion) -> None:
    """The target publishes the transformed input (a JSON string: EventBridge keeps the quotes) instead of the
    raw event; every path of the InputPathsMap exists in the AWS sample event."""
    (target,) = ingestion["PipelineFailureRule"]["Properties"]["Targets"]
    assert target["Arn"] == f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:sagemaker-Churn-Features1-notifications"
    assert "RoleArn" not in target, "SNS targets use the topic policy (a RoleArn can break KMS-encrypted topics)"
    arn = f"arn:{PARTITION}:sagemaker:{REGION}:{ACCOUNT}:pipeline/sagemaker-p-abcdefghijkl-fs-ingestion"
    message = json.loads(_transform(target["InputTransformer"], _pipeline_event(arn)))
    assert message.startswith("SageMaker project Churn-Features1: pipeline execution SomeDisplayName failed at ")
    assert f"{arn}/execution/p4jn9xou8a8s" in message and "list-pipeline-execution-steps" in message


# --- the malformed-events metric filter -------------------------------------------------------------

_FILTER = re.compile(r'^\{\s*\$\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)\s*(=|!=)\s*(-?\d+(?:\.\d+)?|"[^"]*")\s*\}$')


def filter_matches(pattern: str, log_event: str) -> bool:
    """CloudWatch Logs filter patterns for JSON log events, the ``{ $.selector = value }`` subset (CloudWatch
    Logs User Guide, "Filter pattern syntax for metric filters": JSON log events): only a log event that is a
    JSON object can match; a number compares numerically with a JSON number, a quoted string exactly with a
    JSON string."""
    match = _FILTER.match(pattern)
    if not match:
        raise ValueError(f"filter pattern outside the supported subset: {pattern}")
    selector, operator, literal = match.groups()
    try:
        node = json.loads(log_event)
    except ValueError:
        return False
    for part in selector.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    if literal.startswith('"'):
        equal = isinstance(node, str) and node == literal[1:-1]
    else:
        equal = isinstance(node, int | float) and not isinstance(node, bool) and node == float(literal)
    return equal if operator == "=" else not equal


@pytest.fixture
def lambda_logs(monkeypatch, caplog):
    """The start Lambda's log lines as its LoggingConfig (LogFormat JSON) writes them for a few invocations."""
    app = load_app()
    set_lambda_env(monkeypatch)
    monkeypatch.setattr(app, "_client", None, raising=False)
    stub = SageMakerStub()
    monkeypatch.setattr(app, "_sagemaker_client", lambda: stub.client)
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    stub.will_start()
    results = [app.lambda_handler(load_event("s3-object-created.json"), None),
               app.lambda_handler(["not", "an", "event"], None),
               app.lambda_handler({**load_event("s3-object-created.json"), "detail": None}, None)]
    stub.close()
    assert [r["status"] for r in results] == ["started", "malformed", "malformed"]
    lines = []
    for record in caplog.records:
        if record.name == LOGGER_NAME:
            line = lambda_json_line(record)
            # Lambda Developer Guide, "Using Lambda advanced logging controls with Python": the JSON object also
            # carries the timestamp and the request id.
            stamp = datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            lines.append(json.dumps({"timestamp": stamp, **line, "requestId": "79b4f56e-95b1-4643-9700-2807f4e68189"}))
    return lines


@pytest.mark.parametrize("slug", sorted(PRODUCTS))
def test_the_metric_filter_counts_the_malformed_lines_the_lambda_writes(templates, slug, lambda_logs) -> None:
    resources = templates[PRODUCTS[slug].template_name]["Resources"]
    function = resources["StartIngestionFunction"]["Properties"]
    metric_filter = resources["MalformedEventsMetricFilter"]["Properties"]
    # The filter reads the log group the function writes to, and the function writes JSON at INFO and above.
    assert metric_filter["LogGroupName"] == function["LoggingConfig"]["LogGroup"]
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert function["LoggingConfig"]["ApplicationLogLevel"] in ("TRACE", "DEBUG", "INFO", "WARN")
    pattern = metric_filter["FilterPattern"]
    matched = [line for line in lambda_logs if filter_matches(pattern, line)]
    assert len(lambda_logs) == 3 and len(matched) == 2
    assert all(json.loads(line)["outcome"] == "malformed" for line in matched)
    (transformation,) = metric_filter["MetricTransformations"]
    alarm = resources["MalformedEventsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (transformation["MetricNamespace"],
                                                        transformation["MetricName"])
    assert transformation["MetricValue"] == "1" and alarm["Statistic"] == "Sum" and "Dimensions" not in alarm


def test_the_filter_needs_json_logs(lambda_logs) -> None:
    """With LogFormat Text the runtime writes "[WARNING]\\t<time>\\t<request id>\\t<message>": no JSON field to
    match, which is why the function's LoggingConfig must stay JSON."""
    malformed = json.loads(lambda_logs[1])
    text_line = f"[WARNING]\t{malformed['timestamp']}\t{malformed['requestId']}\t{malformed['message']}"
    assert filter_matches(alarms.MALFORMED_EVENT_FILTER, lambda_logs[1])
    assert not filter_matches(alarms.MALFORMED_EVENT_FILTER, text_line)
    assert not filter_matches(alarms.MALFORMED_EVENT_FILTER, json.dumps({**malformed, "malformed_event": "1"}))
    assert filter_matches('{ $.outcome = "malformed" }', lambda_logs[1])


# --- names ------------------------------------------------------------------------------------------


def test_the_new_names_fit_their_limits_for_every_project() -> None:
    """SNS CreateTopic: topic names 1-256 characters of letters, digits, '-' and '_'; CloudWatch PutMetricAlarm:
    AlarmName 1-255; EventBridge PutRule: Name 1-64; CloudWatch namespaces 1-255 (budgeted by check_budgets)."""
    for product in products():
        budgets = product.names.budgets()
        for label in ("notification_topic", "alarm", "pipeline_failure_rule", "metric_namespace"):
            assert label in budgets
        check_budgets(product.names)
        longest = product.names.alarm("x" * ALARM_SUFFIX_MAX).replace("${SageMakerProjectName}", "P" * PROJECT_NAME_MAX)
        assert len(longest) <= 255
        assert not product.names.metric_namespace.startswith("AWS/")  # reserved for AWS services
    with pytest.raises(ValueError, match="alarm suffix"):
        ProjectNames(short="x", suffix="y").alarm("x" * (ALARM_SUFFIX_MAX + 1))


# --- moto: what the stand-in can deploy -------------------------------------------------------------


def test_the_key_and_alias_deploy_on_moto(templates) -> None:
    """A smoke test of the platform's key on moto's CloudFormation (which evaluates no key policy)."""
    import boto3
    from moto import mock_aws

    name, _ = _key_stack(templates)
    template = templates[name]
    subset = {"Resources": {k: copy.deepcopy(v) for k, v in template["Resources"].items()
                            if v["Type"].startswith("AWS::KMS::")}}
    for resource in subset["Resources"].values():
        if resource["Type"] == "AWS::KMS::Key":
            # moto 5.2.5 keeps a KeyPolicy object as is and later json.loads() it; CloudFormation takes the
            # object or its JSON text ("KeyPolicy: Type: Json"), so hand moto the resolved text.
            policy = resolve(resource["Properties"]["KeyPolicy"], {}, {})
            resource["Properties"]["KeyPolicy"] = json.dumps(policy)
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName="key", TemplateBody=json.dumps(subset))
        assert cfn.describe_stacks(StackName="key")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        kms = boto3.client("kms", region_name=REGION)
        key = kms.describe_key(KeyId=NOTIFICATIONS_KEY_ALIAS)["KeyMetadata"]
        assert key["KeyManager"] == "CUSTOMER" and key["KeySpec"] == "SYMMETRIC_DEFAULT"
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
