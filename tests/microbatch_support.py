"""Micro-batching, simulated offline: the real start Lambda driven as AWS drives it, on a simulated clock.

What is real and what is a stand-in:

* **SQS and S3 are moto 5.2.5**, in process (``mock_aws``), with moto's clock replaced by the simulation's
  (:class:`SimClock` patches ``unix_time``/``unix_time_millis`` of ``moto.sqs.models``): visibility timeouts,
  ``ApproximateReceiveCount``, the redrive policy (``maxReceiveCount``) and ChangeMessageVisibility's 12-hour
  limit are moto's. Nothing sleeps: the clock jumps from one event to the next.
* **The Lambda is the real** ``lambda_functions/start_ingestion_pipeline/app.py:lambda_handler``, configured
  through its environment variables as the project stack configures it, with its own boto3 S3 and SQS
  clients (served by moto) and a SageMaker client replaced by :class:`SageMakerStandIn`.
* **Batched mode** (:func:`run_batched`): EventBridge delivers each upload event to the batch queue
  (the rule's SQS target: the message body is the whole event); :class:`EventSourceMapping` models the
  Lambda SQS event source mapping as documented in the AWS Lambda Developer Guide, "Using Lambda with
  Amazon SQS" and its pages "Configuring scaling behavior for SQS event source mappings", "Lambda parameters
  for Amazon SQS event source mappings" and "Handling errors for an SQS event source in Lambda":

  - pollers (five at first: "Lambda starts processing five batches at a time with five concurrent
    invocations") receive up to 10 messages per ReceiveMessage, with the queue's visibility timeout;
  - a poller gathers until ``BatchSize`` messages, the end of ``MaximumBatchingWindowInSeconds`` (counted
    from its first message), or the 6 MB synchronous invocation payload (Lambda quotas); a message that
    would not fit goes back (visibility 0);
  - it invokes the function synchronously with ``{"Records": [...]}`` in the documented record format,
    deletes the messages not listed in ``batchItemFailures`` and leaves the listed ones to reappear after
    their visibility timeout; a function error, or an ``itemIdentifier`` that is empty or not a message of
    the batch, fails the whole batch ("Implementing partial batch responses");
  - not modelled: scaling beyond the initial pollers (300 more per minute), the back-off of concurrency after
    function errors, long polling's 20 s cost (an idle poller wakes exactly when a message arrives or becomes
    visible), invocation throttling.
* **Per-file mode** (:func:`run_per_file`, today's wiring): EventBridge invokes the function asynchronously
  with each upload event; on an error Lambda retries twice, one minute then two minutes later, and then sends
  the event to the function's dead-letter queue ("How Lambda handles errors and retries with asynchronous
  invocation", AWS Lambda Developer Guide) with the attributes ``RequestID``, ``ErrorCode`` and
  ``ErrorMessage``. To get every file ingested, an operator then runs ``generators redrive --max <quota>``
  every ``redrive_every_seconds`` (invoke the function with each message's body; delete on success, keep
  otherwise) until the dead-letter queue is empty: the simulation's assumption of how a burst gets finished.
* **SageMaker** (:class:`SageMakerStandIn`): ``StartPipelineExecution`` validated against botocore's service
  model, idempotent on ``ClientRequestToken`` (a repeated token returns the first execution: "An idempotent
  operation completes no more than once", SageMaker API Reference, StartPipelineExecution), refusing with
  ``ResourceLimitExceeded`` -- an error parsed by botocore from the JSON wire format and raised as the real
  client's modeled exception class -- while ``limit`` executions (default 20: "Maximum concurrent pipeline
  executions allowed per account: 20", SageMaker Developer Guide, "Feature Processor constraints, limits,
  and quotas") are running, this project's and other projects' (``background``) alike.
* **Jobs** (:class:`JobModel`, the model's assumptions, not measured): one processing job per execution on
  one instance, ``startup_minutes`` (4) of provisioning and image pull before the first byte, then
  ``minutes_per_file`` (0.1) per listed file; instance-minutes = duration x instances.
* **Feature Store**: on completion each file's rows are counted into :class:`FeatureStoreCounter` (the
  manifest and the objects are read back from moto S3 and their CSV data rows counted, instead of running
  the pandas script 1,000 times, which takes about 30 ms a file); :func:`ingest_with_real_script` runs the
  seed code's real ``transform_and_ingest.main`` on one manifest the Lambda wrote, against the seed code's
  Feature Store stand-in, to show that what the simulation counts is what the script ingests.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import moto.s3.models as moto_s3
import moto.sqs.models as moto_sqs
from botocore.parsers import create_parser
from botocore.validate import validate_parameters
from lambda_support import assert_valid_request, load_app
from loading import load_event, load_module
from moto import mock_aws

from generators.blocks.upload_trigger import (
    BATCH_MAX_CONCURRENCY,
    BATCH_MAX_RECEIVE_COUNT,
    BATCH_QUEUE_VISIBILITY,
    TRIGGER_PARAMETERS,
)

_DEFAULTS = {spec.name: spec.properties.get("Default") for spec in TRIGGER_PARAMETERS}

REPO = Path(__file__).resolve().parent.parent
SEED_DIR = REPO / "seed-code" / "s3-fs-ingestion"
REGION = "eu-west-1"
MOTO_ACCOUNT = "123456789012"  # moto's default account
PARTITION = "aws"
DATA_BUCKET = "microbatch-data"
ARTIFACT_BUCKET = "sagemaker-p-microbatch01-artifacts-123456789012"
PREFIX = "incoming/"
PIPELINE = "sagemaker-p-microbatch01-fs-ingestion"
BATCH_QUEUE = "sagemaker-microbatch-ingestion-batch"
DEAD_LETTER_QUEUE = "sagemaker-microbatch-ingestion-dlq"
FEATURE_GROUP = "microbatch-abalone"
CSV_HEADER = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings"
CSV_ROWS = (
    "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15",
    "M,0.35,0.265,0.09,0.2255,0.0995,0.0485,0.07,7",
    "F,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9",
    "M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,10",
    "I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7",
)
# Lambda quotas: 6 MB invocation payload for synchronous invocations (the event source mapping invokes so).
INVOKE_PAYLOAD_MAX = 6 * 1024 * 1024
SQS_RECEIVE_MAX = 10  # ReceiveMessage returns at most 10 messages
ASYNC_RETRY_DELAYS = (60.0, 120.0)  # Lambda asynchronous invocation: two retries, 1 min then 2 min later
LAMBDA_RECORD_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")

SAGEMAKER_MODEL = botocore.session.get_session().get_service_model("sagemaker")
_START = SAGEMAKER_MODEL.operation_model("StartPipelineExecution")


# --- the clock ------------------------------------------------------------------------------------


class SimulationStuck(RuntimeError):
    """The simulation ran past its time or event budget: something never converges."""


class SimClock:
    """Simulated seconds since the burst began, and the events scheduled on them (a heap)."""

    EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z, simulated time 0

    def __init__(self) -> None:
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._serial = itertools.count()

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (max(when, self.now), next(self._serial), action))

    def unix(self) -> float:
        return self.EPOCH + self.now

    def run(self, *, until: float, max_events: int = 2_000_000) -> None:
        for _ in range(max_events):
            if not self._events:
                return
            when, _, action = heapq.heappop(self._events)
            if when > until:
                raise SimulationStuck(f"still busy after {until / 3600:.1f} simulated hours")
            self.now = when
            action()
        raise SimulationStuck(f"more than {max_events} events")

    @contextmanager
    def driving_moto_sqs(self) -> Iterator[None]:
        """moto's SQS reads time through ``unix_time``/``unix_time_millis``: point them at the simulated clock.
        Also replaces moto's retention check by the same rule read from the queue directly (moto recomputes
        every queue attribute, counting all messages, for each message it returns: quadratic in a 1,000-message
        queue)."""
        backend = moto_sqs.SQSBackend
        original = moto_sqs.unix_time, moto_sqs.unix_time_millis, backend.is_message_valid_based_on_retention_period

        def unix_time(dt: Any = None) -> float:
            return self.unix() if dt is None else original[0](dt)

        def unix_time_millis(dt: Any = None) -> float:
            return self.unix() * 1000.0 if dt is None else original[1](dt)

        def retained(sqs_backend: Any, queue_name: str, message: Any) -> bool:
            period = int(sqs_backend.get_queue(queue_name).message_retention_period)
            return period + message.sent_timestamp / 1000 > self.unix()

        moto_sqs.unix_time, moto_sqs.unix_time_millis = unix_time, unix_time_millis
        backend.is_message_valid_based_on_retention_period = retained
        try:
            yield
        finally:
            moto_sqs.unix_time, moto_sqs.unix_time_millis, backend.is_message_valid_based_on_retention_period = original


# --- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobModel:
    """How long one execution's processing job runs (the model's assumptions, see the module docstring)."""

    startup_minutes: float = 4.0
    minutes_per_file: float = 0.1
    instances: int = 1

    def minutes(self, files: int) -> float:
        return self.startup_minutes + files * self.minutes_per_file


@dataclass(frozen=True)
class Scenario:
    files: int = 1_000
    burst_seconds: float = 60.0  # the uploads arrive evenly over this time
    limit: int = 20  # concurrent pipeline executions in the account
    job: JobModel = JobModel()
    background: tuple[tuple[float, float], ...] = ()  # other projects' executions: (start s, end s)
    # The project template's values: its parameter defaults, its queue and its event source mapping.
    batch_size: int = int(_DEFAULTS["BatchSize"])
    batch_window_seconds: int = int(_DEFAULTS["BatchWindowSeconds"])
    pollers: int = BATCH_MAX_CONCURRENCY
    function_seconds: float = 1.0  # simulated duration of one invocation
    queue_visibility_seconds: int = BATCH_QUEUE_VISIBILITY
    max_receive_count: int = BATCH_MAX_RECEIVE_COUNT
    backoff_base_seconds: int = 60
    backoff_max_seconds: int = 900
    redrive_every_seconds: float = 300.0  # per-file mode: the operator's `redrive --max <limit>` rhythm
    max_simulated_seconds: float = 3 * 86_400


@dataclass
class Execution:
    arn: str
    token: str
    started: float
    ends: float
    urls: list[str]
    manifest_url: str | None
    instances: int

    @property
    def instance_minutes(self) -> float:
        return (self.ends - self.started) / 60.0 * self.instances


@dataclass
class Outcome:
    mode: str
    scenario: Scenario
    executions: list[Execution]
    refused: int
    start_calls: int
    duplicates: int
    invocations: int
    files_dead_lettered: int
    dlq_at_end: int
    records: Counter[str]
    ingestions: Counter[str]
    rows: dict[str, int]
    deferred_batches: int = 0
    host_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def executions_started(self) -> int:
        return len(self.executions)

    @property
    def instance_minutes(self) -> float:
        return sum(execution.instance_minutes for execution in self.executions)

    @property
    def wall_minutes(self) -> float:
        return max((execution.ends for execution in self.executions), default=0.0) / 60.0

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "files": len(self.rows),
            "executions started": self.executions_started,
            "executions refused": self.refused,
            "simulated instance-minutes": round(self.instance_minutes, 1),
            "simulated wall time (min)": round(self.wall_minutes, 1),
            "files dead-lettered": self.files_dead_lettered,
            "files in DLQ at the end": self.dlq_at_end,
            "Lambda invocations": self.invocations,
            "host seconds": round(self.host_seconds, 1),
        }


# --- SageMaker ------------------------------------------------------------------------------------


_EXCEPTIONS: Any = None


def service_error(code: str, message: str, status: int = 400, operation: str = "StartPipelineExecution") -> Exception:
    """The exception a real boto3 SageMaker client raises for this wire answer: botocore's JSON-protocol parser
    reads ``{"__type": code, "Message": message}`` and the client's exception factory picks the modeled class
    (``client.exceptions.ResourceLimitExceeded`` for that code, a plain ClientError for others)."""
    global _EXCEPTIONS
    if _EXCEPTIONS is None:
        _EXCEPTIONS = boto3.client("sagemaker", region_name=REGION).exceptions
    parser = create_parser(SAGEMAKER_MODEL.metadata["protocol"])
    wire = {"status_code": status, "headers": {"x-amzn-requestid": "00000000-0000-4000-8000-000000000000"},
            "body": json.dumps({"__type": code, "Message": message}).encode("utf-8")}
    parsed = parser.parse(wire, SAGEMAKER_MODEL.operation_model(operation).output_shape)
    return _EXCEPTIONS.from_code(code)(parsed, operation)


class SageMakerStandIn:
    """StartPipelineExecution with the account's concurrent-execution quota (see the module docstring)."""

    def __init__(self, clock: SimClock, s3: Any, *, limit: int, job: JobModel,
                 background: tuple[tuple[float, float], ...] = (),
                 on_complete: Callable[[Execution], None] | None = None, pipeline: str = PIPELINE) -> None:
        self.clock, self.s3, self.limit, self.job = clock, s3, limit, job
        self.background = background
        self.on_complete = on_complete
        self.pipeline = pipeline
        self.executions: list[Execution] = []
        self.requests: list[dict] = []
        self._by_token: dict[str, tuple[dict, Execution]] = {}
        self.refused = 0
        self.duplicates = 0
        self.failures: dict[str, str] = {}  # code -> message: answer every start with this error (unit tests)

    def running(self) -> int:
        now = self.clock.now
        own = sum(1 for execution in self.executions if execution.started <= now < execution.ends)
        return own + sum(1 for start, end in self.background if start <= now < end)

    def start_pipeline_execution(self, **params: Any) -> dict[str, str]:
        validate_parameters(params, _START.input_shape)  # what the real client checks before sending
        assert_valid_request(params)  # lengths and patterns the service checks
        self.requests.append(copy.deepcopy(params))
        for code, message in self.failures.items():
            raise service_error(code, message)
        if params["PipelineName"] != self.pipeline:
            raise service_error("ResourceNotFound", f"Pipeline {params['PipelineName']} does not exist")
        token = params["ClientRequestToken"]
        if token in self._by_token:
            first, execution = self._by_token[token]
            assert first == params, f"token {token} reused with other parameters:\n{first}\n{params}"
            self.duplicates += 1
            return {"PipelineExecutionArn": execution.arn}
        if self.running() >= self.limit:
            self.refused += 1
            raise service_error("ResourceLimitExceeded", "You have reached the maximum number of concurrent "
                                f"pipeline executions ({self.limit}) for this account.")
        urls, manifest_url = self._inputs(params)
        now = self.clock.now
        execution = Execution(
            arn=f"arn:aws:sagemaker:{REGION}:{MOTO_ACCOUNT}:pipeline/{self.pipeline}/execution/"
                f"sim{len(self.executions) + 1:08d}",
            token=token, started=now, ends=now + 60.0 * self.job.minutes(len(urls)), urls=urls,
            manifest_url=manifest_url, instances=self.job.instances,
        )
        self.executions.append(execution)
        self._by_token[token] = (copy.deepcopy(params), execution)
        if self.on_complete is not None:
            callback = self.on_complete
            self.clock.at(execution.ends, lambda: callback(execution))
        return {"PipelineExecutionArn": execution.arn}

    def _inputs(self, params: dict) -> tuple[list[str], str | None]:
        values = {p["Name"]: p["Value"] for p in params.get("PipelineParameters", [])}
        assert ("InputDataUrl" in values) != ("InputManifestUrl" in values), values
        if "InputDataUrl" in values:
            return [values["InputDataUrl"]], None
        url = values["InputManifestUrl"]
        bucket, key = url.removeprefix("s3://").split("/", 1)
        return manifest_urls(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()), url


def manifest_urls(body: bytes) -> list[str]:
    """The objects a SageMaker ManifestFile document lists (prefix + each entry)."""
    prefix, *entries = json.loads(body)
    return [prefix["prefix"] + entry for entry in entries]


# --- Feature Store --------------------------------------------------------------------------------


class FeatureStoreCounter:
    """Records ingested per file: each ingestion of a file adds its CSV data rows. ``objects`` holds the bytes
    of every uploaded object by URL (what GetObject would return: nothing rewrites them during a run); a URL
    that names no uploaded object raises KeyError."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.records: Counter[str] = Counter()
        self.ingestions: Counter[str] = Counter()

    def ingest(self, url: str) -> None:
        lines = [line for line in self.objects[url].decode("utf-8").splitlines() if line.strip()]
        self.records[url] += max(0, len(lines) - 1)
        self.ingestions[url] += 1


# --- events ---------------------------------------------------------------------------------------


def object_created_event(bucket: str, key: str, *, size: int, etag: str, serial: int) -> dict:
    """S3's "Object Created" EventBridge event (shape of tests/events/s3-object-created.json) for an upload to
    an unversioned bucket (no version-id): its sequencer orders the writes of a key."""
    event = copy.deepcopy(load_event("s3-object-created.json"))
    event["id"] = f"00000000-0000-4000-8000-{serial:012d}"
    event["account"] = MOTO_ACCOUNT
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    obj = event["detail"]["object"]
    obj.pop("version-id", None)
    obj.update(key=key, size=size, etag=etag, sequencer=f"{0x0067D4B1A2C3D4E5F6 + serial:018X}")
    return event


def lambda_record(message: dict, queue_arn: str) -> dict:
    """A received SQS message as the event source mapping hands it to the function ("Using Lambda with Amazon
    SQS", example standard queue message event)."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {name: attributes[name] for name in LAMBDA_RECORD_ATTRIBUTES if name in attributes},
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "stringListValues": [], "binaryListValues": [],
                   "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    return {"Records": [lambda_record(message, queue_arn) for message in messages]}


class LambdaContext:
    """The two context members the handler reads."""

    def __init__(self, serial: int) -> None:
        self.aws_request_id = f"11111111-2222-4333-8444-{serial:012d}"
        self.function_name = "sagemaker-microbatch-start-ingest"


# --- the world ------------------------------------------------------------------------------------

LAMBDA_ENV_NAMES = ("PIPELINE_NAME", "DATA_BUCKET", "DATA_PREFIX", "DATA_SUFFIX", "MANIFEST_BUCKET", "MANIFEST_PREFIX",
                    "START_WITH_MANIFEST", "MISSING_PIPELINE_HINT", "DEAD_LETTER_QUEUE_URL", "BACKOFF_BASE_SECONDS",
                    "BACKOFF_MAX_SECONDS")
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    names = set(values) | set(LAMBDA_ENV_NAMES) | {n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")}
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class World:
    """moto S3 + SQS on the simulated clock, the uploaded files, the Lambda wired to the SageMaker stand-in."""

    def __init__(self, scenario: Scenario, clock: SimClock, app: Any) -> None:
        self.scenario = scenario
        self.clock = clock
        self.app = app
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        location = {"LocationConstraint": REGION}
        self.s3.create_bucket(Bucket=DATA_BUCKET, CreateBucketConfiguration=location)
        self.s3.create_bucket(Bucket=ARTIFACT_BUCKET, CreateBucketConfiguration=location)
        retention = {"MessageRetentionPeriod": str(14 * 86_400)}
        self.dlq_url = self.sqs.create_queue(QueueName=DEAD_LETTER_QUEUE, Attributes=retention)["QueueUrl"]
        self.dlq_arn = self._arn(self.dlq_url)
        self.queue_url = self.sqs.create_queue(QueueName=BATCH_QUEUE, Attributes={
            **retention,
            "VisibilityTimeout": str(scenario.queue_visibility_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": self.dlq_arn,
                                         "maxReceiveCount": scenario.max_receive_count}),
        })["QueueUrl"]
        self.queue_arn = self._arn(self.queue_url)
        self.objects: dict[str, bytes] = {}
        self.features = FeatureStoreCounter(self.objects)
        self.sagemaker = SageMakerStandIn(self.clock, self.s3, limit=scenario.limit, job=scenario.job,
                                          background=scenario.background, on_complete=self._complete)
        self.rows: dict[str, int] = {}
        self.events: list[dict] = []
        self.invocations = 0
        self._upload_files()

    def _arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def _upload_files(self) -> None:
        """The burst's files, 1 to 5 data rows each, written through moto's S3 backend (a PutObject without
        botocore's signing and serialisation: they are the premise of the simulation, not under test)."""
        s3_backend = moto_s3.s3_backends[MOTO_ACCOUNT][PARTITION]
        for serial in range(self.scenario.files):
            key = f"{PREFIX}burst/part-{serial:05d}.csv"
            rows = CSV_ROWS[: 1 + serial % len(CSV_ROWS)]
            body = ("\n".join((CSV_HEADER, *rows)) + "\n").encode()
            etag = s3_backend.put_object(DATA_BUCKET, key, body).etag.strip('"')
            url = f"s3://{DATA_BUCKET}/{key}"
            self.rows[url], self.objects[url] = len(rows), body
            self.events.append(object_created_event(DATA_BUCKET, key, size=len(body), etag=etag, serial=serial))

    def arrival_time(self, serial: int) -> float:
        return self.scenario.burst_seconds * serial / max(1, self.scenario.files)

    def _complete(self, execution: Execution) -> None:
        for url in execution.urls:
            self.features.ingest(url)

    def invoke(self, event: Any) -> Any:
        """The real handler, at the current simulated time."""
        self.invocations += 1
        return self.app.lambda_handler(event, LambdaContext(self.invocations))

    def dlq_messages(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def next_visible(self, queue_name: str) -> float:
        """When the next invisible (in flight or delayed) message of the queue becomes receivable; inf if none.
        Reads moto's queue: a long-polling poller wakes exactly then."""
        queue = moto_sqs.sqs_backends[MOTO_ACCOUNT][REGION].queues[queue_name]
        now_ms = self.clock.unix() * 1000.0
        times = [max(message.visible_at, message.delayed_until) for message in queue._messages]
        future = [moment for moment in times if moment >= now_ms]
        if not future:
            return math.inf
        return (min(future) + 1.0) / 1000.0 - SimClock.EPOCH  # moto: visible once now > visible_at

    def outcome(self, mode: str, files_dead_lettered: int, deferred: int = 0) -> Outcome:
        return Outcome(
            mode=mode, scenario=self.scenario, executions=list(self.sagemaker.executions),
            refused=self.sagemaker.refused, start_calls=len(self.sagemaker.requests),
            duplicates=self.sagemaker.duplicates, invocations=self.invocations,
            files_dead_lettered=files_dead_lettered, dlq_at_end=self.dlq_messages(),
            records=Counter(self.features.records), ingestions=Counter(self.features.ingestions), rows=dict(self.rows),
            deferred_batches=deferred,
        )


@contextmanager
def world(scenario: Scenario) -> Iterator[World]:
    """Fake credentials, moto on the simulated clock, the Lambda configured as the project stack configures it
    (its environment), its clients (SageMaker: the stand-in) restored afterwards."""
    app = load_app()
    saved = {name: getattr(app, name) for name in ("_client", "_s3", "_sqs")}
    logger = app.logger
    disabled = logger.disabled
    clock = SimClock()
    with _environment(dict(FAKE_AWS)), mock_aws(), clock.driving_moto_sqs():
        the_world = World(scenario, clock, app)
        env = {
            **FAKE_AWS,
            "PIPELINE_NAME": PIPELINE, "DATA_BUCKET": DATA_BUCKET, "DATA_PREFIX": PREFIX, "DATA_SUFFIX": ".csv",
            "MANIFEST_BUCKET": ARTIFACT_BUCKET, "MANIFEST_PREFIX": "input-manifests/",
            "DEAD_LETTER_QUEUE_URL": the_world.dlq_url,
            "BACKOFF_BASE_SECONDS": str(scenario.backoff_base_seconds),
            "BACKOFF_MAX_SECONDS": str(scenario.backoff_max_seconds),
        }
        try:
            with _environment(env):
                app._client, app._s3, app._sqs = the_world.sagemaker, None, None
                logger.disabled = True  # thousands of refusals; the unit tests check the log lines
                yield the_world
        finally:
            logger.disabled = disabled
            for name, value in saved.items():
                setattr(app, name, value)


# --- batched mode ---------------------------------------------------------------------------------


class EventSourceMapping:
    """The Lambda SQS event source mapping as modelled (see the module docstring)."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.s = w.scenario
        self.pending_arrivals = 0
        self.next_arrival = 0.0
        self.pollers = [_Poller(self, index) for index in range(self.s.pollers)]
        self.invocation_errors = 0
        self.deferred = 0
        self._turn = 0

    def receive(self, count: int) -> list[dict]:
        return self.w.sqs.receive_message(
            QueueUrl=self.w.queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])

    def wake_idle(self, messages: int) -> None:
        """New messages wake one long-polling poller per 10 of them, in turn."""
        for _ in range(min(len(self.pollers), math.ceil(messages / SQS_RECEIVE_MAX))):
            self.pollers[self._turn % len(self.pollers)].wake_at(self.w.clock.now)
            self._turn += 1

    def next_event(self) -> float:
        arrival = self.next_arrival if self.pending_arrivals else math.inf
        return min(arrival, self.w.next_visible(BATCH_QUEUE))

    def invoke(self, messages: list[dict]) -> None:
        ids = [message["MessageId"] for message in messages]
        try:
            answer = self.w.invoke(sqs_event(messages, self.w.queue_arn))
            failed = {item.get("itemIdentifier") for item in (answer or {}).get("batchItemFailures") or []}
            if not failed <= set(ids) or None in failed or "" in failed:
                failed = set(ids)  # the whole batch fails ("Implementing partial batch responses")
        except Exception:  # a function error: every message comes back after its visibility timeout
            self.invocation_errors += 1
            failed = set(ids)
        if failed:
            self.deferred += 1
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), SQS_RECEIVE_MAX):
            chunk = done[start:start + SQS_RECEIVE_MAX]
            self.w.sqs.delete_message_batch(QueueUrl=self.w.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]} for i, message in enumerate(chunk)])


class _Poller:
    def __init__(self, mapping: EventSourceMapping, index: int) -> None:
        self.mapping = mapping
        self.index = index
        self.batch: list[dict] = []
        self.payload = 0
        self.window_end = math.inf
        self.busy_until = -1.0
        self.scheduled = math.inf

    def wake_at(self, when: float) -> None:
        if when < self.scheduled and when >= self.busy_until:
            self.scheduled = when
            self.mapping.w.clock.at(when, lambda: self._wake(when))

    def _wake(self, when: float) -> None:
        if when != self.scheduled:
            return  # superseded by an earlier wake
        self.scheduled = math.inf
        m, clock = self.mapping, self.mapping.w.clock
        size = m.s.batch_size
        full = False
        while len(self.batch) < size and not full:
            got = m.receive(min(SQS_RECEIVE_MAX, size - len(self.batch)))
            if not got:
                break
            if not self.batch:
                self.window_end = clock.now + m.s.batch_window_seconds
            for message in got:
                record_size = len(json.dumps(lambda_record(message, m.w.queue_arn)))
                if full or self.payload + record_size > INVOKE_PAYLOAD_MAX - 1024:
                    full = True
                    m.w.sqs.change_message_visibility(QueueUrl=m.w.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                      VisibilityTimeout=0)
                    continue
                self.batch.append(message)
                self.payload += record_size
        if self.batch and (full or len(self.batch) >= size or clock.now >= self.window_end):
            messages, self.batch, self.payload, self.window_end = self.batch, [], 0, math.inf
            m.invoke(messages)
            self.busy_until = clock.now + m.s.function_seconds
            self.wake_at(self.busy_until)
            return
        nxt = min(self.window_end, m.next_event())
        if nxt < math.inf:
            self.wake_at(max(nxt, clock.now))


def run_batched(scenario: Scenario, inspect: Callable[[World], Any] | None = None) -> Outcome:
    """Every upload through the batch queue and the event source mapping, until nothing is left to do."""
    started = time.perf_counter()
    with world(scenario) as w:
        mapping = EventSourceMapping(w)
        mapping.pending_arrivals = len(w.events)
        ticks: dict[int, list[int]] = {}
        for serial in range(len(w.events)):  # EventBridge's deliveries, sent together per simulated second
            ticks.setdefault(math.floor(w.arrival_time(serial)), []).append(serial)

        def arrive(serials: list[int]) -> None:
            for start in range(0, len(serials), SQS_RECEIVE_MAX):
                w.sqs.send_message_batch(QueueUrl=w.queue_url, Entries=[
                    {"Id": str(serial), "MessageBody": json.dumps(w.events[serial])}
                    for serial in serials[start:start + SQS_RECEIVE_MAX]])
            mapping.pending_arrivals -= len(serials)
            later = [tick for tick in ticks if tick > w.clock.now]
            mapping.next_arrival = min(later) if later else math.inf
            mapping.wake_idle(len(serials))

        for tick, serials in ticks.items():
            w.clock.at(float(tick), lambda serials=serials: arrive(serials))
        w.clock.run(until=scenario.max_simulated_seconds)
        outcome = w.outcome("batched", files_dead_lettered=_dead_lettered_files(w), deferred=mapping.deferred)
        outcome.extra["invocation_errors"] = mapping.invocation_errors
        if inspect is not None:
            outcome.extra["inspected"] = inspect(w)
    outcome.host_seconds = time.perf_counter() - started
    return outcome


def _dead_lettered_files(w: World) -> int:
    """Distinct uploads whose event is in the dead-letter queue now (read without consuming: visibility 0)."""
    urls: set[str] = set()
    handles = []
    while True:
        got = w.sqs.receive_message(QueueUrl=w.dlq_url, MaxNumberOfMessages=SQS_RECEIVE_MAX, WaitTimeSeconds=0,
                                    VisibilityTimeout=3600).get("Messages", [])
        if not got:
            break
        for message in got:
            handles.append(message["ReceiptHandle"])
            detail = json.loads(message["Body"]).get("detail", {})
            urls.add(f"s3://{detail.get('bucket', {}).get('name')}/{detail.get('object', {}).get('key')}")
    for handle in handles:
        w.sqs.change_message_visibility(QueueUrl=w.dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return len(urls)


# --- per-file mode --------------------------------------------------------------------------------


def run_per_file(scenario: Scenario) -> Outcome:
    """Today's wiring: EventBridge -> asynchronous invocation (2 retries) -> dead-letter queue, then the
    operator's `redrive --max <limit>` rounds until the dead-letter queue is empty."""
    started = time.perf_counter()
    with world(scenario) as w:
        dead_lettered: set[int] = set()
        redrive = {"scheduled": False, "rounds": 0}

        def attempt(serial: int, number: int) -> None:
            try:
                w.invoke(copy.deepcopy(w.events[serial]))
            except Exception as error:  # a function error, as Lambda sees it
                if number <= len(ASYNC_RETRY_DELAYS):
                    w.clock.at(w.clock.now + ASYNC_RETRY_DELAYS[number - 1], lambda: attempt(serial, number + 1))
                    return
                dead_letter(serial, error)

        def dead_letter(serial: int, error: Exception) -> None:
            """What Lambda sends to the function's dead-letter queue: the event, and three attributes."""
            dead_lettered.add(serial)
            w.sqs.send_message(QueueUrl=w.dlq_url, MessageBody=json.dumps(w.events[serial]), MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": f"request-{serial}"},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": str(error)[:1024]},
            })
            if not redrive["scheduled"]:
                redrive["scheduled"] = True
                w.clock.at(w.clock.now + scenario.redrive_every_seconds, redrive_round)

        def redrive_round() -> None:
            """`generators redrive --max <limit>`: invoke with each message's body; delete when it started (or had
            started), keep it otherwise."""
            redrive["rounds"] += 1
            taken: list[dict] = []
            while len(taken) < scenario.limit:
                got = w.sqs.receive_message(QueueUrl=w.dlq_url, WaitTimeSeconds=0,
                                            MaxNumberOfMessages=min(SQS_RECEIVE_MAX, scenario.limit - len(taken)))
                if not got.get("Messages"):
                    break
                taken.extend(got["Messages"])
            for message in taken:
                try:
                    w.invoke(json.loads(message["Body"]))
                except Exception:  # kept for the next round
                    w.sqs.change_message_visibility(QueueUrl=w.dlq_url, ReceiptHandle=message["ReceiptHandle"],
                                                    VisibilityTimeout=0)
                else:
                    w.sqs.delete_message(QueueUrl=w.dlq_url, ReceiptHandle=message["ReceiptHandle"])
            if w.dlq_messages():
                w.clock.at(w.clock.now + scenario.redrive_every_seconds, redrive_round)
            else:
                redrive["scheduled"] = False

        for serial in range(len(w.events)):
            w.clock.at(w.arrival_time(serial), lambda serial=serial: attempt(serial, 1))
        w.clock.run(until=scenario.max_simulated_seconds)
        outcome = w.outcome("per-file", files_dead_lettered=len(dead_lettered))
        outcome.extra["redrive_rounds"] = redrive["rounds"]
    outcome.host_seconds = time.perf_counter() - started
    return outcome


# --- the real processing script on one manifest ----------------------------------------------------


def processing_script() -> Any:
    folder = SEED_DIR / "processing"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return load_module("seed_transform_and_ingest", folder / "transform_and_ingest.py")


def ingest_with_real_script(w: World, execution: Execution, workdir: Path) -> tuple[int, Counter[str]]:
    """Run the seed code's ``transform_and_ingest.main`` as the pipeline's manifest step runs it (``--manifest-dir``
    holding the execution's manifest, one host) against the seed code's Feature Store stand-in; returns the exit
    status and the records written per source object (record identifiers are ``<object URL>#<row>``)."""
    assert execution.manifest_url, "a manifest execution"
    standin = load_module("seed_featurestore_standin", SEED_DIR / "tests" / "featurestore_standin.py")
    definition = json.loads((SEED_DIR / "feature_group.json").read_text(encoding="utf-8"))
    bucket, key = execution.manifest_url.removeprefix("s3://").split("/", 1)
    manifest_dir = workdir / "manifest"
    manifest_dir.mkdir(parents=True)
    (manifest_dir / key.rsplit("/", 1)[-1]).write_bytes(w.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    with standin.FeatureStoreStandIn() as store:
        store.add_group(FEATURE_GROUP, definition)
        endpoints = {"AWS_ENDPOINT_URL_SAGEMAKER": store.url,
                     "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": store.url}
        saved = {name: os.environ.get(name) for name in endpoints}
        os.environ.update(endpoints)
        try:
            status = processing_script().main([
                "--manifest-dir", str(manifest_dir), "--download-dir", str(workdir / "downloads"),
                "--feature-group-name", FEATURE_GROUP, "--region", REGION, "--max-workers", "2",
                "--failed-rows-dir", str(workdir / "failed-rows"), "--job-config", str(workdir / "no-job-config"),
                "--resource-config", str(workdir / "no-resource-config"),
                "--exit-message-file", str(workdir / "exit-message"),
            ])
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        written = Counter(record["record_id"].rsplit("#", 1)[0] for _, record in store.written)
    return status, written


def table(outcomes: list[Outcome]) -> str:
    """The side-by-side table (Markdown)."""
    rows = [outcome.summary() for outcome in outcomes]
    names = list(rows[0])
    lines = ["| | " + " | ".join(str(row["mode"]) for row in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    for name in names[1:]:
        lines.append(f"| {name} | " + " | ".join(f"{row[name]:,}" if isinstance(row[name], int) else str(row[name])
                                                 for row in rows) + " |")
    return "\n".join(lines)
