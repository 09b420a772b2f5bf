"""``python -m generators redrive``: the project's dead letters handed back to its start function.

SQS is moto 5.2.5; the start function is the real handler behind :class:`LambdaRunningHandler`
(tests/test_ops_support.py), its SageMaker a fake that starts nothing twice for one ``ClientRequestToken``. The
messages are what AWS puts in the queue: the EventBridge event as body, with EventBridge's attributes
(``ERROR_CODE``, ``ERROR_MESSAGE``, ...: EventBridge User Guide, "Using dead-letter queues to process undelivered
events") or Lambda's (``RequestID``, ``ErrorCode``, ``ErrorMessage``: Lambda Developer Guide, asynchronous
invocation, dead-letter queues: "the original event payload with no modifications to the message body"), or, from
the batched start mode, ``reason`` and ``error_code``.
"""

from __future__ import annotations

import argparse
import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from lambda_support import new_upload_of, with_object
from loading import load_event
from moto import mock_aws
from test_ops_support import (
    FUNCTION,
    PROJECT,
    QUEUE,
    REGION,
    LambdaRunningHandler,
    SageMakerFake,
    create_start_function,
    function_environment,
)

from generators.cli import CliError, main
from generators.ops import _redrive
from generators.ops._common import Clients


@pytest.fixture
def aws():
    with mock_aws():
        yield


def _queue(name: str = QUEUE) -> str:
    return boto3.client("sqs", region_name=REGION).create_queue(QueueName=name)["QueueUrl"]


def _send(url: str, event: dict | str, **attributes: str) -> None:
    body = event if isinstance(event, str) else json.dumps(event)
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=url, MessageBody=body,
        MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
    )


def _counts(url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _bodies(url: str) -> list[str]:
    messages = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return sorted(m["Body"] for m in messages)


class Harness:
    def __init__(self, monkeypatch, sagemaker: SageMakerFake, env: dict[str, str] | None = None) -> None:
        self.env = env or function_environment()
        create_start_function(self.env)
        self.sagemaker = sagemaker
        self.lam = LambdaRunningHandler(boto3.client("lambda", region_name=REGION), sagemaker, monkeypatch, self.env)
        self.clients = Clients(REGION, {"lambda": self.lam, "sqs": boto3.client("sqs", region_name=REGION)})
        self.lines: list[str] = []

    def run(self, *, dry_run: bool = False, max_messages: int | None = None) -> int:
        args = argparse.Namespace(project=PROJECT, dry_run=dry_run, max_messages=max_messages, region=REGION)
        return _redrive.run(args, self.clients, self.lines.append, wait_seconds=0)

    def lines_starting(self, outcome: str) -> list[str]:
        return [line for line in self.lines if line.startswith(outcome)]


@pytest.fixture
def harness(aws, monkeypatch):
    return Harness(monkeypatch, SageMakerFake())


UPLOAD = load_event("s3-object-created.json")
OTHER_UPLOAD = load_event("cloudtrail-putobject.json")


def test_each_event_starts_its_execution_and_its_message_is_deleted(harness) -> None:
    url = _queue()
    first, second = UPLOAD, with_object(OTHER_UPLOAD, key="incoming/other.csv")
    _send(url, first, ERROR_CODE="SDK_CLIENT_ERROR", ERROR_MESSAGE="Unable to invoke Lambda")
    _send(url, second, RequestID="a1b2", ErrorCode="200", ErrorMessage="ResourceNotFound: no pipeline yet")

    assert harness.run() == 0

    assert _counts(url) == (0, 0)
    assert len(harness.sagemaker.executions) == 2
    # The function receives each body byte for byte: the event EventBridge would have delivered.
    assert sorted(harness.lam.payloads) == sorted(json.dumps(event).encode() for event in (first, second))
    assert len(harness.lines_starting("started")) == 2
    assert harness.lines[-1] == "redrive: 2 message(s): 2 started, 0 already started, 0 skipped, 0 kept"


@pytest.mark.parametrize("repeat_answer", ["first-execution", "conflict"])
def test_duplicate_messages_start_one_execution(aws, monkeypatch, repeat_answer) -> None:
    """EventBridge delivers at least once, so one upload can be dead-lettered twice; its ClientRequestToken is the
    same both times and SageMaker starts the execution once, however it answers the second request."""
    harness = Harness(monkeypatch, SageMakerFake(repeat_answer=repeat_answer))
    url = _queue()
    _send(url, UPLOAD)
    _send(url, UPLOAD)

    assert harness.run() == 0

    assert len(harness.sagemaker.requests) == 2 and len(harness.sagemaker.executions) == 1
    assert _counts(url) == (0, 0)
    assert len(harness.lines_starting("started")) == 1 and len(harness.lines_starting("already started")) == 1


def test_redriving_an_upload_whose_execution_exists_starts_nothing(harness) -> None:
    url = _queue()
    _send(url, UPLOAD)
    assert harness.run() == 0
    _send(url, UPLOAD)  # the same event again, in a later run
    harness.sagemaker.repeat_answer = "conflict"

    assert harness.run() == 0

    assert len(harness.sagemaker.executions) == 1 and _counts(url) == (0, 0)
    assert harness.lines[-1].endswith("0 started, 1 already started, 0 skipped, 0 kept")


def test_a_new_write_of_the_same_key_is_a_new_execution(harness) -> None:
    url = _queue()
    _send(url, UPLOAD)
    _send(url, new_upload_of(UPLOAD))

    assert harness.run() == 0

    assert len(harness.sagemaker.executions) == 2


def test_a_poison_message_is_kept_visible_and_never_invoked(harness) -> None:
    url = _queue()
    _send(url, "this is not an event")
    _send(url, UPLOAD)

    assert harness.run() == 1  # something was kept

    assert _counts(url) == (1, 0), "the kept message is visible again at once"
    assert _bodies(url) == ["this is not an event"]
    assert len(harness.lam.payloads) == 1
    [kept] = harness.lines_starting("kept")
    assert "not a JSON object" in kept


def test_a_failing_start_keeps_the_message_with_the_reason(aws, monkeypatch) -> None:
    """The pipeline does not exist yet: the function raises (Invoke answers FunctionError), the event stays in the
    queue for the next redrive, and the line says why and why it was dead-lettered in the first place."""
    harness = Harness(monkeypatch, SageMakerFake(exists=False))
    url = _queue()
    _send(url, UPLOAD, ERROR_CODE="SDK_CLIENT_ERROR", ERROR_MESSAGE="Lambda function failed")

    assert harness.run() == 1

    assert _counts(url) == (1, 0)
    [kept] = harness.lines_starting("kept")
    assert "s3://amzn-s3-demo-bucket/incoming/abalone-2025-03-14.csv" in kept
    assert "ClientError" in kept and "ResourceNotFound" in kept
    assert kept.endswith("[dead-lettered: SDK_CLIENT_ERROR: Lambda function failed]")


def test_events_the_function_does_not_act_on_are_deleted(harness) -> None:
    """An upload outside the watched prefix (the project's prefix changed since): the function ignores it, so does
    every later redrive; the message is removed."""
    url = _queue()
    _send(url, with_object(UPLOAD, key="archive/old.csv"))

    assert harness.run() == 0

    assert _counts(url) == (0, 0) and not harness.sagemaker.requests
    [skipped] = harness.lines_starting("skipped")
    assert "outside the watched prefix" in skipped


def test_an_event_the_function_cannot_read_is_kept(harness) -> None:
    url = _queue()
    _send(url, {"source": "aws.s3", "detail-type": "Object Created"})  # no detail

    assert harness.run() == 1

    assert _counts(url) == (1, 0)
    [kept] = harness.lines_starting("kept")
    assert "cannot read this event" in kept


def test_dry_run_leaves_the_queue_as_it_was(harness) -> None:
    url = _queue()
    for event in (UPLOAD, OTHER_UPLOAD, "not json"):
        _send(url, event)
    before = _counts(url)

    assert harness.run(dry_run=True) == 0

    assert _counts(url) == before == (3, 0)
    assert harness.lam.payloads == [] and harness.sagemaker.requests == []
    assert len(harness.lines_starting("would redrive")) == 2
    assert harness.lines[-1].startswith("redrive (dry run): 3 message(s) received, 2 would be handed")
    assert len(_bodies(url)) == 3, "every message can be received again right away"


def test_batched_mode_dead_letters_are_redriven_with_their_reason_shown(aws, monkeypatch) -> None:
    """The batched start function sends what it cannot start to the queue its DEAD_LETTER_QUEUE_URL names, body
    unchanged, with ``reason`` and ``error_code``: the redrive reads that queue as well and hands each body to the
    function's per-file path."""
    batch_dlq = _queue("sagemaker-Churn-Features1-batch-dlq")
    harness = Harness(monkeypatch, SageMakerFake(exists=False), function_environment(DEAD_LETTER_QUEUE_URL=batch_dlq))
    url = _queue()
    _send(url, OTHER_UPLOAD)
    _send(batch_dlq, UPLOAD, reason="pipeline sagemaker-p-abcdefghijkl-fs-ingestion does not exist",
          error_code="ResourceNotFound", source_message_id="m-1")

    assert harness.run(dry_run=True) == 0
    redriven = harness.lines_starting("would redrive")
    assert len(redriven) == 2
    assert any(line.endswith("[dead-lettered: ResourceNotFound: pipeline sagemaker-p-abcdefghijkl-fs-ingestion "
                             "does not exist]") for line in redriven)

    harness.sagemaker.exists = True
    assert harness.run() == 0
    assert _counts(url) == _counts(batch_dlq) == (0, 0)
    assert len(harness.sagemaker.executions) == 2


def test_max_handles_that_many_messages_and_leaves_the_rest(harness) -> None:
    url = _queue()
    for serial in range(2, 5):
        _send(url, new_upload_of(UPLOAD, serial))

    assert harness.run(max_messages=2) == 0

    assert len(harness.sagemaker.executions) == 2
    assert _counts(url) == (1, 0)


def test_wrong_project_name_is_one_clear_line(aws) -> None:
    clients = Clients(REGION, {"lambda": boto3.client("lambda", region_name=REGION)})
    args = argparse.Namespace(project="NoSuchProject", dry_run=True, max_messages=None, region=REGION)
    with pytest.raises(CliError, match="no function sagemaker-NoSuchProject-start-ingest in eu-west-1"):
        _redrive.run(args, clients, print, wait_seconds=0)


def test_missing_queue_is_one_clear_line(harness) -> None:
    with pytest.raises(CliError, match=f"no queue {QUEUE} in eu-west-1"):
        harness.run()


def test_an_invalid_project_name_is_refused_before_any_call(capsys) -> None:
    assert main(["redrive", "--project", "bad_name"]) == 2
    assert "is not a SageMaker project name" in capsys.readouterr().err


def test_the_command_line_dry_run_reads_the_queue_and_changes_nothing(aws, capsys) -> None:
    create_start_function(function_environment())
    url = _queue()
    _send(url, UPLOAD)

    assert main(["redrive", "--project", PROJECT, "--dry-run", "--region", REGION]) == 0

    out = capsys.readouterr().out
    assert f"about 1 message(s) in {QUEUE}" in out and "would redrive" in out
    assert _counts(url) == (1, 0)


# The invoke call itself, on a real boto3 Lambda client behind botocore's Stubber (which checks each request
# against the Lambda API model).


def _stubbed_lambda():
    client = boto3.client("lambda", region_name=REGION)
    return client, Stubber(client)


def _payload(document: dict) -> StreamingBody:
    data = json.dumps(document).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def test_invoke_is_synchronous_with_the_body_as_payload() -> None:
    client, stub = _stubbed_lambda()
    body = json.dumps(UPLOAD)
    stub.add_response("invoke", {"StatusCode": 200, "Payload": _payload({"status": "started", "executionArn": "arn"})},
                      {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": body.encode()})
    with stub:
        answer = _redrive.lambda_invoker(client, FUNCTION)(body.encode())
    assert answer == _redrive.Answer("started", "arn")


def test_a_throttled_invoke_keeps_the_message() -> None:
    client, stub = _stubbed_lambda()
    stub.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429)
    with stub:
        answer = _redrive.lambda_invoker(client, FUNCTION)(b"{}")
    assert answer.outcome == "kept" and "TooManyRequestsException" in answer.detail


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException"])
def test_an_invoke_no_message_can_pass_stops_the_run(code) -> None:
    client, stub = _stubbed_lambda()
    stub.add_client_error("invoke", code, "not allowed", 403)
    with stub, pytest.raises(CliError, match=f"invoking {FUNCTION}: {code}"):
        _redrive.lambda_invoker(client, FUNCTION)(b"{}")


def test_a_stopped_run_makes_every_received_message_visible_again(aws) -> None:
    url = _queue()
    _send(url, UPLOAD)
    _send(url, OTHER_UPLOAD)

    def denied(payload: bytes) -> _redrive.Answer:
        raise CliError("invoking: AccessDeniedException")

    with pytest.raises(CliError):
        _redrive.redrive(_redrive.Queue(boto3.client("sqs", region_name=REGION), url), denied, max_messages=None,
                         visibility=600, wait_seconds=0, out=print)
    assert _counts(url) == (2, 0), "every message received is visible again at once"
