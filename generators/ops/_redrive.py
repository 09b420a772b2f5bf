"""Redrive a project's dead-letter queue through its start function.

What the queue holds: the upload rule's undeliverable events and the start function's failed asynchronous
invocations, both as the original EventBridge event in the message body. EventBridge adds the attributes
``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE``, ``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION`` and ``RETRY_ATTEMPTS``
(EventBridge User Guide, "Using dead-letter queues to process undelivered events"); Lambda sends "the original event
payload with no modifications to the message body" with the attributes ``RequestID``, ``ErrorCode`` and
``ErrorMessage`` (Lambda Developer Guide, asynchronous invocation, "Dead-letter queues"). A start function fed by an
SQS queue (batched mode) sends what it can never start to the queue its ``DEAD_LETTER_QUEUE_URL`` names, with the
event as body and the attributes ``reason`` and ``error_code``; a redrive reads that queue too when it is another
one. Every body is therefore a start function's input as is (the function's per-file path).

Each message is handed to the function with a synchronous ``Invoke`` (RequestResponse), whose answer says what it
did: ``started``, ``duplicate`` (the execution exists) and ``ignored`` (not an upload the project watches) end the
message's life; a function error, an event the function cannot read, or a failed call keeps it. Repeating a
redrive is safe: the function derives the execution's ``ClientRequestToken`` from the upload (bucket, key, version,
sequencer or CloudTrail event id), so SageMaker does not start a second execution for the same upload.

A message being handled is invisible to other consumers (its visibility timeout); kept messages are made visible
again (``ChangeMessageVisibility`` 0) when the run ends, so the next run or an operator sees them at once.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..cli import CliError
from ..release.aws import describe, error_code
from ._common import Clients, Printer, StartFunction, aws_error, queue_name, start_function

KEPT = "kept"
OUTCOMES = ("started", "already started", "skipped", KEPT)
BATCH = 10  # ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibilityBatch take at most 10
MAX_VISIBILITY = 12 * 3600  # SQS: a visibility timeout is at most 12 hours
# Invoke waits for the function: the read timeout must outlast the longest function timeout (900 s).
LAMBDA_CONFIG = Config(read_timeout=910, connect_timeout=10, retries={"mode": "standard", "max_attempts": 3})
# Errors after which no other message can fare better: stop instead of keeping every message for the same reason.
FATAL_INVOKE_ERRORS = frozenset({"ResourceNotFoundException", "AccessDeniedException", "AccessDenied"})
REASON_ATTRIBUTES = (("error_code", "reason"), ("ERROR_CODE", "ERROR_MESSAGE"), ("ErrorCode", "ErrorMessage"))


@dataclass(frozen=True)
class Answer:
    outcome: str  # one of OUTCOMES
    detail: str = ""

    @property
    def delete(self) -> bool:
        return self.outcome != KEPT


@dataclass(frozen=True)
class Message:
    id: str
    receipt: str
    body: str
    attributes: dict[str, str]

    @classmethod
    def of(cls, message: dict[str, Any]) -> Message:
        attributes = {name: str(value.get("StringValue", "")) for name, value in
                      message.get("MessageAttributes", {}).items()}
        return cls(message["MessageId"], message["ReceiptHandle"], message.get("Body", ""), attributes)

    @property
    def dead_letter_reason(self) -> str:
        """Why the message is here, from whoever put it here (batched start function, EventBridge, Lambda)."""
        for names in REASON_ATTRIBUTES:
            values = [self.attributes[name] for name in names if self.attributes.get(name)]
            if values:
                return ": ".join(values)
        return ""

    def event(self) -> dict[str, Any] | None:
        try:
            event = json.loads(self.body)
        except ValueError:
            return None
        return event if isinstance(event, dict) else None

    @property
    def label(self) -> str:
        """The upload the event names (either event shape), else the message id."""
        event = self.event() or {}
        bucket = _dig(event, "detail", "requestParameters", "bucketName") or _dig(event, "detail", "bucket", "name")
        key = _dig(event, "detail", "requestParameters", "key") or _dig(event, "detail", "object", "key")
        name = f"s3://{bucket}/{key}" if bucket and key else f"message {self.id}"
        event_id = _dig(event, "id")
        return f"{name} (event {event_id})" if event_id else name


def _dig(value: Any, *path: str) -> str:
    """The string at ``path`` of nested objects, "" when any step is missing or of another type."""
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


Invoke = Callable[[bytes], Answer]


def interpret(function_error: str | None, payload: bytes) -> Answer:
    """The function's answer (``lambda_handler``'s summary, or Lambda's error document) as an outcome."""
    try:
        decoded = json.loads(payload) if payload else None
    except ValueError:
        decoded = None
    answer: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    if function_error:
        if answer:
            function_error = f"{answer.get('errorType', function_error)}: {answer.get('errorMessage', '')}"
        return Answer(KEPT, f"the function failed ({function_error}); its log line for this event says what to fix")
    status = answer.get("status")
    if status == "started":
        return Answer("started", str(answer.get("executionArn", "")))
    if status == "duplicate":
        return Answer("already started")
    if status == "ignored":
        return Answer("skipped", str(answer.get("reason", "")))
    if status == "malformed":
        return Answer(KEPT, f"the function cannot read this event ({answer.get('reason', '')}): inspect it and "
                      "delete it by hand")
    return Answer(KEPT, f"unexpected answer from the function: {payload[:200]!r}")


def lambda_invoker(lam: Any, function: str) -> Invoke:
    """Invoke ``function`` synchronously with a message body; fatal errors (no function, no permission) stop the run."""

    def invoke(payload: bytes) -> Answer:
        try:
            response = lam.invoke(FunctionName=function, InvocationType="RequestResponse", Payload=payload)
        except ClientError as error:
            if error_code(error) in FATAL_INVOKE_ERRORS:
                raise aws_error(f"invoking {function}", error) from None
            return Answer(KEPT, f"invoking the function failed: {describe(error)}")
        except BotoCoreError as error:
            return Answer(KEPT, f"invoking the function failed: {describe(error)}")
        return interpret(response.get("FunctionError"), response["Payload"].read())

    return invoke


@dataclass
class Queue:
    sqs: Any
    url: str

    def receive(self, count: int, visibility: int, wait_seconds: int) -> list[Message]:
        response = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=count, VisibilityTimeout=visibility,
                                            WaitTimeSeconds=wait_seconds, MessageAttributeNames=["All"])
        return [Message.of(m) for m in response.get("Messages", [])]

    def delete(self, messages: Sequence[Message]) -> list[str]:
        """Delete; the ids SQS did not delete (they come back later and are redriven again, harmlessly)."""
        failed: list[str] = []
        for start in range(0, len(messages), BATCH):
            chunk = messages[start:start + BATCH]
            response = self.sqs.delete_message_batch(
                QueueUrl=self.url, Entries=[{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(chunk)]
            )
            failed += [chunk[int(f["Id"])].id for f in response.get("Failed", [])]
        return failed

    def release(self, receipts: Sequence[str]) -> int:
        """Make the messages visible again at once; how many SQS refused."""
        refused = 0
        for start in range(0, len(receipts), BATCH):
            chunk = receipts[start:start + BATCH]
            response = self.sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0} for i, r in enumerate(chunk)],
            )
            refused += len(response.get("Failed", []))
        return refused


def redrive(queue: Queue, invoke: Invoke | None, *, max_messages: int | None, visibility: int, wait_seconds: int,
            out: Printer) -> Counter[str]:
    """Handle the queue's messages (``invoke`` None: a dry run); the count per outcome. Whatever happens, every
    message received and not deleted is visible again when this returns or raises."""
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    started: set[str] = set()  # execution ARNs: SageMaker may answer a reused token with the first execution
    release: list[str] = []  # receipts of messages to make visible again
    pending: list[Message] = []  # received, not decided yet
    handled = 0
    try:
        while max_messages is None or handled < max_messages:
            wanted = BATCH if max_messages is None else min(BATCH, max_messages - handled)
            messages = queue.receive(wanted, visibility, wait_seconds)
            pending = [m for m in messages if m.id not in seen]
            release += [m.receipt for m in messages if m.id in seen]  # kept earlier and visible again: leave it
            if not pending:
                break
            done: list[Message] = []
            for message in list(pending):
                seen.add(message.id)
                handled += 1
                answer = _handle(message, invoke)
                if answer.outcome == "started":
                    if answer.detail in started:
                        answer = Answer("already started", answer.detail)
                    started.add(answer.detail)
                counts[answer.outcome] += 1
                out(_line(message, answer))
                if invoke is not None and answer.delete:
                    done.append(message)
                else:
                    release.append(message.receipt)
                pending.remove(message)
            for message_id in queue.delete(done):
                out(f"  warning: SQS did not delete message {message_id}; a later redrive hands it over again (the "
                    "function will answer 'already started')")
    finally:
        refused = queue.release(release + [m.receipt for m in pending])
        if refused:
            out(f"  warning: {refused} message(s) stay invisible until their visibility timeout ({visibility} s) ends")
    return counts


def _handle(message: Message, invoke: Invoke | None) -> Answer:
    if message.event() is None:
        return Answer(KEPT, "the body is not a JSON object, so not an EventBridge event: inspect it and delete it "
                      "by hand")
    if invoke is None:
        return Answer("would redrive", "")
    return invoke(message.body.encode("utf-8"))


def _line(message: Message, answer: Answer) -> str:
    line = f"{answer.outcome:<15} {message.label}"
    if answer.detail:
        line += f": {answer.detail}" if answer.outcome in (KEPT, "skipped") else f" -> {answer.detail}"
    reason = message.dead_letter_reason
    if reason and answer.outcome in (KEPT, "would redrive"):
        line += f" [dead-lettered: {reason}]"
    return line


def queue_url(sqs: Any, project: str, region: str) -> str:
    name = queue_name(project)
    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as error:
        if error_code(error) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise CliError(f"no queue {name} in {region}: is {project!r} the project's name, and is this its "
                           "Region (--region)?") from None
        raise aws_error(f"finding queue {name}", error) from None


def waiting(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))


def queues(sqs: Any, project: str, function: StartFunction, region: str) -> list[tuple[str, str]]:
    """(name, URL) of each queue to redrive: the project's dead-letter queue, and the batched mode's if another."""
    found = [(queue_name(project), queue_url(sqs, project, region))]
    extra = function.dead_letter_queue_url
    if extra and extra.rstrip("/") != found[0][1].rstrip("/"):
        found.append((extra.rstrip("/").rsplit("/", 1)[-1], extra))
    return found


def run(args: argparse.Namespace, clients: Clients | None = None, out: Printer = print, wait_seconds: int = 2) -> int:
    clients = clients or Clients(args.region)
    lam = clients.client("lambda", LAMBDA_CONFIG)
    function = start_function(lam, args.project, args.region)
    sqs = clients.client("sqs")
    # Long enough for a batch of 10 synchronous invocations at the function's timeout, so no message of the batch
    # reappears while it is handled; kept ones are released at the end.
    visibility = min(MAX_VISIBILITY, BATCH * (function.timeout + 15) + 60)
    invoke = None if args.dry_run else lambda_invoker(lam, function.name)
    counts: Counter[str] = Counter()
    for name, url in queues(sqs, args.project, function, clients.region):
        left = None if args.max_messages is None else args.max_messages - sum(counts.values())
        if left is not None and left <= 0:
            break
        try:
            count = waiting(sqs, url)
            mode = "dry run, nothing is invoked or deleted" if args.dry_run else f"to function {function.name}"
            out(f"redrive: about {count} message(s) in {name} ({mode})")
            counts += redrive(Queue(sqs, url), invoke, max_messages=left, visibility=visibility,
                              wait_seconds=wait_seconds, out=out)
        except (ClientError, BotoCoreError) as error:
            raise aws_error(f"redriving {name}", error) from None
    total = sum(counts.values())
    if args.dry_run:
        out(f"redrive (dry run): {total} message(s) received, {counts['would redrive']} would be handed to "
            f"{function.name}, {counts[KEPT]} would be kept; all are visible again")
        return 0
    summary = ", ".join(f"{counts[outcome]} {outcome}" for outcome in OUTCOMES)
    out(f"redrive: {total} message(s): {summary}")
    return 1 if counts[KEPT] else 0
