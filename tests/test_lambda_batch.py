"""The start Lambda's batched mode: an SQS batch in, one manifest and one execution out, a partial batch response.

SQS and S3 are moto (its clock driven by the test, so visibility timeouts can be watched expire); SageMaker is
the simulation's stand-in (requests validated against botocore's model, idempotent tokens, the concurrency
quota) or botocore's Stubber where an exact error answer matters. The AWS behaviour modelled, with its sources:

* the event: "Using Lambda with Amazon SQS" (AWS Lambda Developer Guide), example standard queue message event;
  each body is the EventBridge event as an EventBridge rule delivers it to an SQS target (the whole event);
* the answer: ``{"batchItemFailures": [{"itemIdentifier": <messageId>}]}``, "Handling errors for an SQS event
  source in Lambda", section "Implementing partial batch responses";
* visibility: ChangeMessageVisibility(Batch) takes 0 to 43,200 seconds and cannot extend a message beyond
  12 hours (Amazon SQS API Reference, ChangeMessageVisibility);
* the refusal: ``ResourceLimitExceeded`` is a modeled error of StartPipelineExecution (botocore's SageMaker model).
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from lambda_support import (
    BUCKET,
    DISPLAY_NAME_PATTERN,
    LOGGER_NAME,
    MANIFEST_BUCKET,
    OTHER_BUCKET,
    PIPELINE,
    REGION,
    S3Stub,
    SageMakerStub,
    assert_valid_request,
    lambda_json_line,
    load_app,
    new_upload_of,
    set_lambda_env,
    with_object,
)
from loading import load_event
from microbatch_support import JobModel, LambdaContext, SageMakerStandIn, SimClock, sqs_event
from moto import mock_aws

from generators.blocks.upload_trigger import BATCH_MAX_RECEIVE_COUNT, BATCH_QUEUE_VISIBILITY, SqsScalingConfig
from generators.cfn_resolve import resolve_template

QUEUE_VISIBILITY = BATCH_QUEUE_VISIBILITY  # the project template's batch queue


@dataclass
class Env:
    app: Any
    clock: SimClock
    s3: Any
    sqs: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    sagemaker: SageMakerStandIn
    visibility_requests: list[dict]
    send_requests: list[dict]

    def send(self, bodies: list[str]) -> list[str]:
        ids = []
        for body in bodies:
            ids.append(self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)["MessageId"])
        return ids

    def receive(self, count: int) -> list[dict]:
        messages: list[dict] = []
        while len(messages) < count:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, count - len(messages)),
                                           MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
                                           WaitTimeSeconds=0).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        return messages

    def deliver(self, events: list[Any]) -> list[dict]:
        """Each event as the rule's SQS target receives it, then received as the event source mapping does."""
        bodies = [event if isinstance(event, str) else json.dumps(event) for event in events]
        self.send(bodies)
        messages = self.receive(len(bodies))
        assert len(messages) == len(bodies)
        return messages

    def invoke(self, messages: list[dict]) -> dict:
        return self.app.lambda_handler(sqs_event(messages, self.queue_arn), LambdaContext(1))

    def dead_letters(self) -> list[dict]:
        got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                       WaitTimeSeconds=0).get("Messages", [])
        return got

    def manifest(self, url: str) -> list:
        bucket, key = url.removeprefix("s3://").split("/", 1)
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    app = load_app()
    set_lambda_env(monkeypatch)
    for name in ("START_WITH_MANIFEST", "MISSING_PIPELINE_HINT", "BACKOFF_BASE_SECONDS", "BACKOFF_MAX_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    clock = SimClock()
    with mock_aws(), clock.driving_moto_sqs():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        s3.create_bucket(Bucket=MANIFEST_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        dlq_url = sqs.create_queue(QueueName="ingestion-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(QueueName="ingestion-batch", Attributes={
            "VisibilityTimeout": str(QUEUE_VISIBILITY),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": BATCH_MAX_RECEIVE_COUNT}),
        })["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
        function_sqs = boto3.client("sqs", region_name=REGION)  # the function's own client, watched
        requests: list[dict] = []
        function_sqs.meta.events.register("before-parameter-build.sqs.ChangeMessageVisibilityBatch",
                                          lambda params, **_: requests.append(json.loads(json.dumps(params))))
        sends: list[dict] = []
        function_sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch",
                                          lambda params, **_: sends.append(json.loads(json.dumps(params))))
        sagemaker = SageMakerStandIn(clock, s3, limit=20, job=JobModel(), pipeline=PIPELINE)
        monkeypatch.setattr(app, "_client", sagemaker)
        monkeypatch.setattr(app, "_s3", boto3.client("s3", region_name=REGION))
        monkeypatch.setattr(app, "_sqs", function_sqs)
        yield Env(app, clock, s3, sqs, queue_url, queue_arn, dlq_url, sagemaker, requests, sends)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch):
    """The module and the project stack's environment, without AWS (pure functions and settings)."""
    module = load_app()
    set_lambda_env(monkeypatch)
    for name in ("BACKOFF_BASE_SECONDS", "BACKOFF_MAX_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    return module


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    return lambda: [record for record in caplog.records if record.name == LOGGER_NAME]


def s3_event(key: str, serial: int = 1) -> dict:
    return new_upload_of(with_object(load_event("s3-object-created.json"), key=key), serial)


def cloudtrail_event(key: str, serial: int = 1, fixture: str = "cloudtrail-putobject.json") -> dict:
    return new_upload_of(with_object(load_event(fixture), key=key), serial)


def started(env: Env) -> dict:
    [execution] = env.sagemaker.executions
    [request] = [r for r in env.sagemaker.requests if r["ClientRequestToken"] == execution.token][:1]
    return request


# --- one batch, one execution ------------------------------------------------------------------------


def test_a_batch_starts_one_execution_with_one_manifest(env: Env, logs) -> None:
    keys = ["incoming/c.csv", "incoming/a.csv", "incoming/sub/b.csv"]
    messages = env.deliver([s3_event(key, serial) for serial, key in enumerate(keys, start=1)])

    answer = env.invoke(messages)

    assert answer == {"batchItemFailures": []}
    request = started(env)
    assert_valid_request(request)
    [parameter] = request["PipelineParameters"]
    assert parameter["Name"] == "InputManifestUrl"
    assert re.fullmatch(rf"s3://{MANIFEST_BUCKET}/input-manifests/[0-9a-f]{{64}}\.manifest", parameter["Value"])
    assert parameter["Value"].endswith(f"/{request['ClientRequestToken']}.manifest")
    # SageMaker's ManifestFile format (CreateProcessingJob, S3DataSource): a prefix, then keys relative to it
    assert env.manifest(parameter["Value"]) == [{"prefix": f"s3://{BUCKET}/"}, *sorted(keys)]
    assert DISPLAY_NAME_PATTERN.fullmatch(request["PipelineExecutionDisplayName"])
    assert request["PipelineExecutionDisplayName"].startswith("batch-3-files-")
    assert env.dead_letters() == []
    [summary] = [lambda_json_line(r) for r in logs() if r.outcome.startswith("batch_")]
    assert summary["outcome"] == "batch_started" and summary["uploads"] == 3 and summary["messages"] == 3
    assert summary["execution_arn"] == env.sagemaker.executions[0].arn
    assert summary["input_manifest_url"] == parameter["Value"]


def test_a_batch_of_both_event_kinds_starts_one_execution(env: Env) -> None:
    """S3 "Object Created" and CloudTrail "AWS API Call via CloudTrail" events (both trigger modes) mixed."""
    events = [
        s3_event("incoming/s3-put.csv", 1),
        new_upload_of(with_object(load_event("s3-object-created-multipart.json"), key="incoming/s3-mpu.csv"), 2),
        new_upload_of(with_object(load_event("s3-object-created-copy.json"), key="incoming/s3-copy.csv"), 3),
        cloudtrail_event("incoming/ct-put.csv", 4),
        cloudtrail_event("incoming/ct-mpu.csv", 5, "cloudtrail-completemultipartupload.json"),
        cloudtrail_event("incoming/ct-copy.csv", 6, "cloudtrail-copyobject.json"),
    ]
    assert env.invoke(env.deliver(events)) == {"batchItemFailures": []}
    request = started(env)
    prefix, *keys = env.manifest(request["PipelineParameters"][0]["Value"])
    assert prefix == {"prefix": f"s3://{BUCKET}/"}
    assert keys == sorted(f"incoming/{name}.csv" for name in ("s3-put", "s3-mpu", "s3-copy", "ct-put", "ct-mpu",
                                                              "ct-copy"))


def test_mixed_valid_ignored_and_unreadable_messages(env: Env, logs) -> None:
    """Uploads outside the watched location are dropped (logged); unreadable messages go to the dead-letter queue
    with their reason; none of them fails a neighbour."""
    malformed_event = s3_event("incoming/x.csv", 9)
    del malformed_event["detail"]["object"]["key"]
    bodies = [
        json.dumps(s3_event("incoming/good-1.csv", 1)),
        json.dumps(with_object(s3_event("incoming/other.csv", 2), bucket=OTHER_BUCKET)),
        json.dumps(s3_event("incoming-old/sibling.csv", 3)),
        json.dumps(load_event("s3-object-created-folder-marker.json")),
        json.dumps(load_event("cloudtrail-getobject.json")),
        "this is not JSON {",
        json.dumps(malformed_event),
        json.dumps(cloudtrail_event("incoming/good-2.csv", 4)),
    ]
    messages = env.deliver(bodies)
    ids = [m["MessageId"] for m in messages]

    answer = env.invoke(messages)

    assert answer == {"batchItemFailures": []}  # every message is done with: started, dropped or dead-lettered
    request = started(env)
    assert env.manifest(request["PipelineParameters"][0]["Value"])[1:] == ["incoming/good-1.csv", "incoming/good-2.csv"]
    dead = env.dead_letters()
    assert sorted(letter["Body"] for letter in dead) == sorted([bodies[5], bodies[6]])  # bodies unchanged
    by_body = {letter["Body"]: letter["MessageAttributes"] for letter in dead}
    assert "not JSON" in by_body[bodies[5]]["reason"]["StringValue"]
    assert by_body[bodies[6]]["reason"]["StringValue"] == "detail.object.key is missing"
    assert {a["error_code"]["StringValue"] for a in by_body.values()} == {"MalformedEvent"}
    assert {a["source_message_id"]["StringValue"] for a in by_body.values()} == {ids[5], ids[6]}
    lines = [lambda_json_line(r) for r in logs()]
    assert sum(1 for line in lines if line.get("malformed_event") == 1) == 2
    ignored = [line for line in lines if line["outcome"] == "ignored"]
    assert len(ignored) == 4 and {line["message_id"] for line in ignored} == set(ids[1:5])


def test_a_batch_with_nothing_to_start_starts_nothing(env: Env, logs) -> None:
    messages = env.deliver([s3_event("incoming-old/a.csv"), load_event("s3-object-deleted.json")])
    assert env.invoke(messages) == {"batchItemFailures": []}
    assert env.sagemaker.requests == []
    assert env.s3.list_objects_v2(Bucket=MANIFEST_BUCKET).get("KeyCount", 0) == 0
    assert [r.outcome for r in logs()][-1] == "batch_empty"


def test_two_deliveries_of_one_upload_in_a_batch_are_listed_once(env: Env) -> None:
    """EventBridge delivers at least once, and CloudTrail may wrap one API call in two envelopes."""
    upload = s3_event("incoming/a.csv", 1)
    trail = cloudtrail_event("incoming/b.csv", 2)
    trail_again = json.loads(json.dumps(trail)) | {"id": "ffffffff-0000-4000-8000-000000000009"}
    messages = env.deliver([upload, upload, trail, trail_again, s3_event("incoming/a.csv", 3)])
    assert env.invoke(messages) == {"batchItemFailures": []}
    request = started(env)
    # two writes of incoming/a.csv (serials 1 and 3) are one object to read: listed once
    assert env.manifest(request["PipelineParameters"][0]["Value"])[1:] == ["incoming/a.csv", "incoming/b.csv"]


# --- idempotency ---------------------------------------------------------------------------------------


def test_a_redelivered_batch_starts_no_second_execution(env: Env) -> None:
    """The function timed out after starting (or the event source mapping could not delete): the same messages
    come back after the visibility timeout, in another order, with new receipt handles."""
    events = [s3_event(f"incoming/f{n}.csv", n) for n in range(1, 6)]
    first = env.deliver(events)
    assert env.invoke(first) == {"batchItemFailures": []}
    env.clock.now += QUEUE_VISIBILITY + 1  # not deleted: visible again
    again = env.receive(5)
    assert {m["MessageId"] for m in again} == {m["MessageId"] for m in first}
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in again} == {"2"}
    random.Random(7).shuffle(again)

    assert env.invoke(again) == {"batchItemFailures": []}

    assert len(env.sagemaker.executions) == 1 and env.sagemaker.duplicates == 1
    one, two = env.sagemaker.requests
    assert one == two  # same token, same manifest URL, same display name
    assert env.s3.list_objects_v2(Bucket=MANIFEST_BUCKET)["KeyCount"] == 1


def test_token_reuse_reported_by_sagemaker_is_a_success(env: Env, logs, monkeypatch: pytest.MonkeyPatch) -> None:
    stub = SageMakerStub()
    monkeypatch.setattr(env.app, "_client", stub.client)
    stub.will_fail("ConflictException", "The ClientRequestToken has already been used for a pipeline execution.")
    assert env.invoke(env.deliver([s3_event("incoming/a.csv")])) == {"batchItemFailures": []}
    assert [r.outcome for r in logs()][-1] == "batch_duplicate"
    stub.close()


def test_the_token_depends_on_the_uploads_not_their_order_or_envelopes(app: Any) -> None:
    settings = app.Settings(PIPELINE, BUCKET, "incoming/")
    a = app.parse_event(s3_event("incoming/a.csv", 1))
    b = app.parse_event(cloudtrail_event("incoming/b.csv", 2))
    a_later = app.parse_event(s3_event("incoming/a.csv", 3))
    token = app.batch_request_token(settings, [a, b])
    assert token == app.batch_request_token(settings, [b, a, a])
    assert token != app.batch_request_token(settings, [a, b, a_later])  # a new write of a: a new batch
    assert token != app.batch_request_token(settings, [a])
    assert token != app.client_request_token(settings, a)  # never the per-file token of an upload
    assert_valid_request({"PipelineName": PIPELINE, "ClientRequestToken": token})


# --- back-pressure ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [
    ("ResourceLimitExceeded", 400),
    ("ThrottlingException", 400),
    ("InternalFailure", 500),
    ("ServiceUnavailable", 503),
    ("ConflictException", 409),  # not about the token
])
def test_transient_refusals_defer_the_whole_batch(env: Env, logs, monkeypatch: pytest.MonkeyPatch, code: str,
                                                  status: int) -> None:
    stub = SageMakerStub()
    monkeypatch.setattr(env.app, "_client", stub.client)
    stub.will_fail(code, "Rate exceeded" if status == 400 else "try again", status)
    messages = env.deliver([s3_event(f"incoming/f{n}.csv", n) for n in range(1, 4)])

    answer = env.invoke(messages)

    assert answer == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
    assert env.dead_letters() == []
    [line] = [lambda_json_line(r) for r in logs() if r.outcome == "batch_deferred"]
    assert line["error_code"] == code and line["retryable"] is True and line["receive_count"] == 1
    seconds = line["visibility_timeout"]
    assert 30 <= seconds <= 60  # first receive: between half and all of BACKOFF_BASE_SECONDS (60)
    # the messages stay away for exactly that long, then come back (not to the dead-letter queue)
    env.clock.now += seconds - 1
    assert env.receive(3) == []
    env.clock.now += 2
    back = env.receive(3)
    assert sorted(m["MessageId"] for m in back) == sorted(m["MessageId"] for m in messages)
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in back} == {"2"}
    stub.close()


def test_the_visibility_timeout_grows_with_every_receive_up_to_the_cap(env: Env, logs) -> None:
    """Under a full account (no execution slot for hours) a batch keeps coming back, later each time, never to
    the dead-letter queue; moto accepts every value (at most 12 hours after sending)."""
    env.sagemaker.limit = 0
    messages = env.deliver([s3_event(f"incoming/f{n}.csv", n) for n in range(1, 4)])
    seen = []
    for receive in range(1, 13):
        assert len(env.invoke(messages)["batchItemFailures"]) == 3
        [request] = env.visibility_requests[-1:]
        [seconds] = {entry["VisibilityTimeout"] for entry in request["Entries"]}
        ceiling = min(900, 60 * 2 ** (receive - 1))
        assert ceiling / 2 <= seconds <= ceiling, (receive, seconds)
        seen.append(seconds)
        env.clock.now += seconds + 1
        messages = env.receive(3)
        assert {m["Attributes"]["ApproximateReceiveCount"] for m in messages} == {str(receive + 1)}
    assert max(seen[:4]) < min(seen[-4:])  # it grew
    assert all(seconds <= 900 for seconds in seen)
    assert env.dead_letters() == []


def test_visibility_timeouts_spread_and_stay_within_the_sqs_limit(app: Any) -> None:
    settings = app.Settings(PIPELINE, BUCKET, "incoming/", backoff_base=60, backoff_max=app.MAX_BACKOFF_SECONDS)
    for attempt in (1, 2, 5, 10, 20, 60, 1_000):
        values = {app.visibility_timeout(settings, f"{n:064x}", attempt) for n in range(50)}
        ceiling = min(app.MAX_BACKOFF_SECONDS, 60 * 2 ** min(attempt - 1, 30))
        assert all(ceiling / 2 - 1 <= value <= ceiling for value in values)
        assert len(values) > 10  # jitter: batches refused together come back apart
    assert app.MAX_BACKOFF_SECONDS + app.VISIBILITY_MARGIN_SECONDS == 43_200  # SQS: at most 12 hours
    assert app.visibility_timeout(settings, "0" * 64, 3) == app.visibility_timeout(settings, "0" * 64, 3)


@pytest.mark.parametrize(("base", "maximum", "problem"), [
    ("0", "", "BACKOFF_BASE_SECONDS"),
    ("abc", "", "BACKOFF_BASE_SECONDS"),
    ("60", "43200", "BACKOFF_MAX_SECONDS"),  # would exceed 12 hours once the batching window has passed
    ("600", "300", "BACKOFF_MAX_SECONDS"),
])
def test_backoff_settings_are_checked(app: Any, monkeypatch: pytest.MonkeyPatch, base: str, maximum: str,
                                      problem: str) -> None:
    monkeypatch.setenv("BACKOFF_BASE_SECONDS", base)
    monkeypatch.setenv("BACKOFF_MAX_SECONDS", maximum)
    with pytest.raises(app.ConfigurationError, match=problem):
        app.Settings.from_environment()


def test_backoff_settings_are_read(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKOFF_BASE_SECONDS", "120")
    monkeypatch.setenv("BACKOFF_MAX_SECONDS", "42000")
    settings = app.Settings.from_environment()
    assert (settings.backoff_base, settings.backoff_max) == (120, 42_000)
    monkeypatch.setenv("BACKOFF_MAX_SECONDS", "")
    assert app.Settings.from_environment().backoff_max == 900


def test_visibility_is_changed_ten_messages_a_call(env: Env) -> None:
    env.sagemaker.limit = 0
    messages = env.deliver([s3_event(f"incoming/f{n:02d}.csv", n) for n in range(1, 26)])
    assert len(env.invoke(messages)["batchItemFailures"]) == 25
    assert [len(request["Entries"]) for request in env.visibility_requests] == [10, 10, 5]
    assert env.receive(25) == []  # all 25 invisible


def test_a_visibility_change_that_fails_still_reports_the_failure(env: Env, logs) -> None:
    env.sagemaker.limit = 0
    messages = env.deliver([s3_event("incoming/a.csv", 1), s3_event("incoming/b.csv", 2)])
    messages[0] = messages[0] | {"ReceiptHandle": "not-a-receipt-handle"}
    answer = env.invoke(messages)
    assert sorted(item["itemIdentifier"] for item in answer["batchItemFailures"]) == sorted(
        m["MessageId"] for m in messages)
    [line] = [lambda_json_line(r) for r in logs() if r.outcome == "batch_deferred"]
    assert line["visibility_unchanged"] == 1


def test_connection_errors_defer_the_batch(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import EndpointConnectionError

    class Unreachable:
        def start_pipeline_execution(self, **_: Any) -> dict:
            raise EndpointConnectionError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com")

    monkeypatch.setattr(env.app, "_client", Unreachable())
    messages = env.deliver([s3_event("incoming/a.csv")])
    assert env.invoke(messages) == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert env.dead_letters() == []


# --- dead letters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "advice"), [
    ("ResourceNotFound", "approve a model package in group churn-models"),
    ("AccessDeniedException", "sagemaker:StartPipelineExecution"),
    ("ValidationException", "PIPELINE_NAME"),
])
def test_errors_retrying_cannot_fix_dead_letter_every_message_with_the_reason(
        env: Env, logs, monkeypatch: pytest.MonkeyPatch, code: str, advice: str) -> None:
    monkeypatch.setenv("MISSING_PIPELINE_HINT", "approve a model package in group churn-models")
    stub = SageMakerStub()
    monkeypatch.setattr(env.app, "_client", stub.client)
    stub.will_fail(code, "Pipeline does not exist" if code == "ResourceNotFound" else "no")
    events = [s3_event("incoming/a.csv", 1), cloudtrail_event("incoming/b.csv", 2)]
    messages = env.deliver(events)

    assert env.invoke(messages) == {"batchItemFailures": []}  # processed: parked with the reason

    dead = env.dead_letters()
    assert sorted(letter["Body"] for letter in dead) == sorted(json.dumps(event) for event in events)
    for letter in dead:
        attributes = letter["MessageAttributes"]
        assert advice in attributes["reason"]["StringValue"] and PIPELINE in attributes["reason"]["StringValue"]
        assert attributes["error_code"]["StringValue"] == code
        assert attributes["request_id"]["StringValue"] == LambdaContext(1).aws_request_id
    assert {letter["MessageAttributes"]["source_message_id"]["StringValue"] for letter in dead} == {
        m["MessageId"] for m in messages}
    [line] = [r for r in logs() if r.outcome == "batch_dead_lettered"]
    assert line.levelno == logging.ERROR and line.retryable is False
    stub.close()


def test_a_dead_lettered_event_is_what_the_per_file_path_takes(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The redrive command invokes the function with a dead letter's body: the per-file path starts it."""
    stub = SageMakerStub()
    monkeypatch.setattr(env.app, "_client", stub.client)
    stub.will_fail("ResourceNotFound", "Pipeline does not exist")
    env.invoke(env.deliver([s3_event("incoming/a.csv")]))
    [letter] = env.dead_letters()
    stub.stubber.add_response("start_pipeline_execution", {"PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:"
                              "111122223333:pipeline/p/execution/abcdefabcdef"})
    assert env.app.lambda_handler(json.loads(letter["Body"]), None)["status"] == "started"
    stub.close()


@pytest.mark.parametrize(("code", "status", "dead_lettered"), [
    ("AccessDenied", 403, True),
    ("NoSuchBucket", 404, True),
    ("SlowDown", 503, False),
    ("InternalError", 500, False),
])
def test_a_manifest_that_cannot_be_written(env: Env, monkeypatch: pytest.MonkeyPatch, code: str, status: int,
                                           dead_lettered: bool) -> None:
    s3 = S3Stub()
    monkeypatch.setattr(env.app, "_s3", s3.client)
    s3.will_fail(code, status)
    messages = env.deliver([s3_event("incoming/a.csv")])
    answer = env.invoke(messages)
    assert env.sagemaker.requests == []  # no manifest, no start
    if dead_lettered:
        assert answer == {"batchItemFailures": []}
        [letter] = env.dead_letters()
        assert code in letter["MessageAttributes"]["reason"]["StringValue"]
    else:
        assert answer == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
        assert env.dead_letters() == []
    s3.close()


def test_dead_letters_are_sent_ten_at_a_time_and_large_bodies_alone(env: Env) -> None:
    """SendMessageBatch takes at most 10 entries whose messages together fit the message size quota (Amazon SQS
    API Reference, SendMessageBatch; 256 KiB before SQS raised it to 1 MiB): 25 refused uploads and one 200 KB
    unreadable body."""
    env.sagemaker.failures = {"ResourceNotFound": "Pipeline does not exist"}
    large = "x" * 200_000  # not JSON
    messages = env.deliver([s3_event(f"incoming/f{n:02d}.csv", n) for n in range(1, 26)] + [large])
    assert env.invoke(messages) == {"batchItemFailures": []}
    assert sum(len(request["Entries"]) for request in env.send_requests) == 26
    assert len(env.send_requests) <= 4
    for request in env.send_requests:
        assert 1 <= len(request["Entries"]) <= 10
        size = sum(len(e["MessageBody"].encode()) + sum(len(k) + len(v["StringValue"].encode()) + len(v["DataType"])
                                                        for k, v in e["MessageAttributes"].items())
                   for e in request["Entries"])
        assert size <= 256 * 1024, size
    received = []
    while got := env.dead_letters():
        received.extend(got)
        for letter in got:
            env.sqs.delete_message(QueueUrl=env.dlq_url, ReceiptHandle=letter["ReceiptHandle"])
    assert len(received) == 26
    assert {letter["MessageAttributes"]["error_code"]["StringValue"] for letter in received} == {
        "ResourceNotFound", "MalformedEvent"}


def test_without_a_manifest_bucket_the_batch_is_dead_lettered(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MANIFEST_BUCKET")
    assert env.invoke(env.deliver([s3_event("incoming/a.csv")])) == {"batchItemFailures": []}
    assert env.sagemaker.requests == []
    [letter] = env.dead_letters()
    assert "MANIFEST_BUCKET" in letter["MessageAttributes"]["reason"]["StringValue"]


def test_without_a_dead_letter_queue_unprocessable_messages_are_reported_failed(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """They come back until the batch queue's redrive policy (maxReceiveCount) moves them to its dead-letter
    queue; the valid neighbour is started and not reported."""
    monkeypatch.delenv("DEAD_LETTER_QUEUE_URL")
    messages = env.deliver(["not json", s3_event("incoming/a.csv")])
    assert env.invoke(messages) == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert len(env.sagemaker.executions) == 1


def test_a_dead_letter_that_cannot_be_sent_fails_only_that_message(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", env.dlq_url.replace("ingestion-dlq", "no-such-queue"))
    messages = env.deliver([s3_event("incoming/a.csv", 1), "{}", s3_event("incoming/b.csv", 2)])
    assert env.invoke(messages) == {"batchItemFailures": [{"itemIdentifier": messages[1]["MessageId"]}]}
    assert env.manifest(started(env)["PipelineParameters"][0]["Value"])[1:] == ["incoming/a.csv", "incoming/b.csv"]


def test_a_configuration_error_fails_the_whole_invocation(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PIPELINE_NAME nothing can be decided: the function raises, and the event source mapping makes every
    message visible again after the queue's visibility timeout (then, after maxReceiveCount, its dead-letter queue)."""
    monkeypatch.delenv("PIPELINE_NAME")
    with pytest.raises(env.app.ConfigurationError):
        env.invoke(env.deliver([s3_event("incoming/a.csv")]))


# --- keys and products ----------------------------------------------------------------------------------


LONG_KEYS = [
    "incoming/" + "k" * 1011 + ".csv",  # 1,024 bytes: the longest key S3 allows (S3 User Guide, "Naming objects")
    "incoming/" + "ü" * 505 + ".csv",  # 1,023 bytes of UTF-8
    "incoming/" + "n" * 252 + ".csv",  # a 256-byte file name
    "incoming/with spaces, ünïcödé & 日本語.csv",
]


def test_very_long_keys_in_a_batch_are_listed_exactly(env: Env) -> None:
    messages = env.deliver([s3_event(key, serial) for serial, key in enumerate(LONG_KEYS, start=1)])
    assert env.invoke(messages) == {"batchItemFailures": []}
    request = started(env)
    assert_valid_request(request)
    prefix, *keys = env.manifest(request["PipelineParameters"][0]["Value"])
    assert [prefix["prefix"] + key for key in keys] == [f"s3://{BUCKET}/{key}" for key in sorted(LONG_KEYS)]
    assert len(request["PipelineExecutionDescription"]) <= 3072


def test_a_manifest_only_product_uses_the_same_batch_path(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch inference (START_WITH_MANIFEST=always): a batch is one manifest either way."""
    monkeypatch.setenv("START_WITH_MANIFEST", "always")
    monkeypatch.setenv("MISSING_PIPELINE_HINT", "approve a model package in group churn-models")
    messages = env.deliver([s3_event("incoming/a.csv", 1), s3_event("incoming/b.csv", 2)])
    assert env.invoke(messages) == {"batchItemFailures": []}
    assert env.manifest(started(env)["PipelineParameters"][0]["Value"])[1:] == ["incoming/a.csv", "incoming/b.csv"]


# --- telling the modes apart ------------------------------------------------------------------------------


def test_a_direct_event_keeps_the_per_file_path(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    stub = SageMakerStub()
    monkeypatch.setattr(env.app, "_client", stub.client)
    stub.will_start()
    result = env.app.lambda_handler(s3_event("incoming/a.csv"), None)
    assert result["status"] == "started"
    assert stub.requests[0]["PipelineParameters"] == [{"Name": "InputDataUrl", "Value": f"s3://{BUCKET}/incoming/a.csv"}]
    stub.close()


@pytest.mark.parametrize("event", [
    {"Records": []},
    {"Records": [{"eventSource": "aws:s3", "s3": {}}]},  # an S3 notification: not ours
    {"Records": [{"eventSource": "aws:sqs"}, {"eventSource": "aws:sns"}]},
])
def test_what_is_not_an_sqs_batch_is_read_as_a_per_file_event(env: Env, event: dict) -> None:
    assert not env.app.is_sqs_batch(event)
    assert env.app.lambda_handler(event, None)["status"] == "malformed"


def test_a_record_without_a_message_id_is_logged_and_skipped(env: Env, logs) -> None:
    messages = env.deliver([s3_event("incoming/a.csv")])
    event = sqs_event(messages, env.queue_arn)
    event["Records"].append({"eventSource": "aws:sqs", "body": "{}"})
    assert env.app.lambda_handler(event, None) == {"batchItemFailures": []}
    assert any(getattr(r, "malformed_event", 0) == 1 for r in logs())


@pytest.mark.parametrize(("arn", "url"), [
    ("arn:aws:sqs:eu-west-1:111122223333:q", "https://sqs.eu-west-1.amazonaws.com/111122223333/q"),
    ("arn:aws-cn:sqs:cn-north-1:111122223333:q", "https://sqs.cn-north-1.amazonaws.com.cn/111122223333/q"),
    ("arn:aws-us-gov:sqs:us-gov-west-1:111122223333:q", "https://sqs.us-gov-west-1.amazonaws.com/111122223333/q"),
])
def test_the_queue_url_comes_from_the_event_source_arn(app: Any, arn: str, url: str) -> None:
    assert app.QueueMessage("id", "handle", "{}", 1, arn).queue_url == url


def test_the_sqs_client_is_created_once_with_standard_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    app = load_app()
    monkeypatch.setattr(app, "_sqs", None)
    client = app._sqs_client()
    assert app._sqs_client() is client
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_errors_are_client_errors_the_handler_knows(env: Env) -> None:
    """Guard: the stand-in raises what a real client raises, so the handler's except clauses are exercised."""
    env.sagemaker.limit = 0
    with pytest.raises(ClientError) as raised:
        env.sagemaker.start_pipeline_execution(
            PipelineName=PIPELINE, ClientRequestToken="0" * 64,
            PipelineParameters=[{"Name": "InputDataUrl", "Value": f"s3://{BUCKET}/incoming/a.csv"}])
    assert raised.value.response["Error"]["Code"] == "ResourceLimitExceeded"


# --- the project template wires the function as this path expects ------------------------------------------

PROJECTS = ("project-s3-fs-ingestion", "project-s3-batch-inference")
SAMPLE = {"SageMakerProjectName": "churn", "SageMakerProjectId": "p-abcdefghijkl", "DataBucketName": BUCKET,
          "FeatureGroupName": "churn", "ModelPackageGroupName": "churn-models"}


def _resolved(template: dict, **parameters: str) -> dict:
    declared = template["Parameters"]
    values = {k: v for k, v in {**SAMPLE, **parameters}.items() if k in declared}
    return resolve_template(template, values)["Resources"]


@pytest.mark.parametrize("name", PROJECTS)
def test_the_template_feeds_the_batch_queue_to_the_function(templates: dict, name: str) -> None:
    """Lambda Developer Guide: "Using Lambda with Amazon SQS" (visibility timeout at least six times the function
    timeout), "Lambda parameters for Amazon SQS event source mappings" (BatchSize up to 10,000, above 10 a
    window of at least 1 s, window up to 300 s), "Handling errors for an SQS event source in Lambda"
    (ReportBatchItemFailures)."""
    template = templates[name]
    resources = template["Resources"]
    parameters = template["Parameters"]
    queue = resources["IngestionBatchQueue"]["Properties"]
    function = resources["StartIngestionFunction"]["Properties"]
    mapping = resources["StartIngestionEventSourceMapping"]["Properties"]
    window_max = parameters["BatchWindowSeconds"]["MaxValue"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"] + window_max
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestionDeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 100  # back-pressure must not dead-letter
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["IngestionBatchQueue", "Arn"]}
    assert mapping["BatchSize"] == {"Ref": "BatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"] == {"Ref": "BatchWindowSeconds"}
    assert 2 <= mapping["ScalingConfig"]["MaximumConcurrency"] <= 1_000
    assert parameters["BatchSize"]["MinValue"] >= 1 and parameters["BatchSize"]["MaxValue"] <= 10_000
    assert parameters["BatchWindowSeconds"]["MinValue"] >= 1 and window_max <= 300  # BatchSize > 10 needs >= 1
    variables = function["Environment"]["Variables"]
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": "IngestionDeadLetterQueue"}
    assert variables["MANIFEST_BUCKET"] == {"Ref": "ArtifactBucket"}
    statements = resources["StartIngestionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    on_queue = {action for st in statements if st["Resource"] == [{"Fn::GetAtt": ["IngestionBatchQueue", "Arn"]}]
                for action in st["Action"]}
    consume = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}
    assert consume <= on_queue
    policy = resources["IngestionBatchQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Principal"] == {"Service": "events.amazonaws.com"} and policy["Action"] == ["sqs:SendMessage"]
    assert policy["Condition"] == {"StringEquals": {"aws:SourceArn": {"Fn::GetAtt": ["UploadRule", "Arn"]}}}


@pytest.mark.parametrize("name", PROJECTS)
@pytest.mark.parametrize(("mode", "target", "enabled"), [
    ("Batched", "IngestionBatchQueue", True),
    ("PerFile", "StartIngestionFunction", False),
])
def test_the_start_mode_switches_the_rule_target_and_the_mapping(templates: dict, name: str, mode: str,
                                                                 target: str, enabled: bool) -> None:
    resources = _resolved(templates[name], StartMode=mode)
    [rule_target] = resources["UploadRule"]["Properties"]["Targets"]
    assert rule_target["Arn"] == f"<{target}.Arn>"
    assert rule_target["DeadLetterConfig"]["Arn"] == "<IngestionDeadLetterQueue.Arn>"
    assert resources["StartIngestionEventSourceMapping"]["Properties"]["Enabled"] is enabled
    assert ("UploadRuleInvokePermission" in resources) is (mode == "PerFile")  # only the rule may invoke, only then
    assert templates[name]["Parameters"]["StartMode"]["Default"] == "Batched"


def test_the_mapping_scaling_config_renders_maximum_concurrency() -> None:
    """troposphere 4.11's awslambda.ScalingConfig carries another type's props (MaxEnvironments)."""
    assert SqsScalingConfig(MaximumConcurrency=5).to_dict() == {"MaximumConcurrency": 5}
