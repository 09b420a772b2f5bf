"""Start the project's SageMaker pipeline for the files uploaded under the watched S3 location.

Two start modes, told apart by the event:

* per file: EventBridge invokes the function (asynchronously) with one upload event; one execution per
  upload (below);
* batched: a Lambda event source mapping delivers a batch of SQS messages (``Records`` with ``eventSource``
  ``aws:sqs``), each body an upload event as an EventBridge rule delivers it to an SQS target. The
  function starts ONE execution for the whole batch through a manifest and answers with a partial batch
  response (see *Batched mode* below).

Each upload event has one of two shapes:

* ``AWS API Call via CloudTrail`` (trigger mode ``CloudTrail``): an S3 data event recorded by the
  project's trail; the object is ``detail.requestParameters.bucketName`` / ``key``.
* ``Object Created`` (trigger mode ``S3EventBridge``): S3's own EventBridge event; the object is
  ``detail.bucket.name`` / ``detail.object.key``. The key is used as sent: the form-URL-encoding
  ("red+flower.jpg") belongs to S3 *notification configuration* messages (SQS, SNS, Lambda), which
  this function does not receive.

Configuration, read on every invocation from the environment:

* ``PIPELINE_NAME`` -- name (or ARN) of the SageMaker pipeline to start;
* ``DATA_BUCKET`` -- the watched bucket;
* ``DATA_PREFIX`` -- the watched key prefix, ending with "/" ("incoming-old/x" is not in "incoming/");
* ``DATA_SUFFIX`` -- optional file-name suffix such as ".csv"; empty or unset: every file;
* ``MANIFEST_BUCKET`` -- the project's artifact bucket, where the function writes a one-object manifest
  for an upload the pipeline cannot take as ``InputDataUrl`` (see below); optional: without it such
  uploads are refused (dead-letter queue);
* ``MANIFEST_PREFIX`` -- key prefix of those manifests (default ``input-manifests/``);
* ``START_WITH_MANIFEST`` -- ``always``: every upload reaches the pipeline through a manifest (products whose
  pipeline reads manifests only, e.g. batch inference, where the manifest keeps the full key in the output's
  path); ``when-needed`` (default): only the uploads ``InputDataUrl`` cannot carry;
* ``MISSING_PIPELINE_HINT`` -- optional: what to do when the pipeline does not exist yet, added to the error
  (e.g. "approve a model package in group X");
* ``DEAD_LETTER_QUEUE_URL`` -- batched mode: URL of the queue that takes, with their reason, the messages
  that can never start the pipeline; optional: without it such messages are reported as failed until the
  batch queue's redrive policy moves them there (without a reason, which the log line still gives);
* ``BACKOFF_BASE_SECONDS`` (default 60) and ``BACKOFF_MAX_SECONDS`` (default 900) -- batched mode: the
  visibility timeout given to the messages of a batch SageMaker refused for a transient reason grows from
  the base, doubling with every receive, up to the maximum (at most 42,000: SQS caps a message's visibility
  timeout at 12 hours, less the batching window and the function's run time).

Each invocation writes exactly one log line and returns a small summary:

* ``started`` -- one pipeline execution with ``InputDataUrl=s3://bucket/key``. The
  ``ClientRequestToken`` is derived from the upload (bucket, key and the S3 version-id/sequencer/etag
  or the CloudTrail event id), so a redelivered event cannot start a second execution. Every valid S3
  key is accepted: when ``s3://bucket/key`` is longer than a pipeline parameter value may be (1,024
  characters) or the key's file name is longer than a file name on the processing instance may be
  (255 bytes), the function writes a manifest (SageMaker's ManifestFile format, naming exactly that
  object) to ``s3://MANIFEST_BUCKET/MANIFEST_PREFIX<token>.manifest`` and starts the execution with
  ``InputManifestUrl`` instead. Its key and bytes derive from the upload only, so a redelivery rewrites
  the same manifest and reuses the same token;
* ``duplicate`` -- SageMaker reported the token as already used: the execution exists, nothing to do;
* ``ignored`` -- an event the function must not act on (other bucket, outside the prefix, wrong
  suffix, folder marker, empty object, failed or non-upload operation), logged at INFO with the reason;
* ``malformed`` -- an event it cannot read, logged at WARNING with ``"malformed_event": 1`` (a
  CloudWatch metric filter on that field counts them); never raised.

SageMaker errors (throttling, 5xx, missing pipeline, access denied) and configuration errors are
logged with what to do and raised, so Lambda retries the event and finally sends it to the function's
dead-letter queue. Logs are plain ``logging`` records with ``extra`` fields: the function's
``LoggingConfig`` (JSON format) turns them into JSON objects.

Batched mode (an SQS event source mapping with ``FunctionResponseTypes: [ReportBatchItemFailures]``):

* every message is read like a per-file event; messages about uploads outside the watched location are
  dropped (one ``ignored`` log line each), messages that cannot be read at all are sent to
  ``DEAD_LETTER_QUEUE_URL`` with their reason (one ``malformed`` line each, ``"malformed_event": 1``);
* the remaining uploads are listed in ONE manifest, ``MANIFEST_PREFIX<token>.manifest`` (same format as
  above, one key per distinct object), and ONE execution starts with ``InputManifestUrl``. Token and
  manifest derive from the set of uploads only (sorted, duplicates merged), so a redelivered batch of the
  same messages, in any order, rewrites the same manifest and cannot start a second execution;
* the answer is ``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`` (AWS Lambda Developer
  Guide, "Handling errors for an SQS event source in Lambda", section "Implementing partial batch
  responses"): the event source mapping deletes every other message;
* SageMaker refusing for a transient reason (``ResourceLimitExceeded`` -- e.g. the account's concurrent
  pipeline executions --, throttling, 5xx, connection errors) or a manifest that could not be written for
  such a reason: every message of the batch is reported as failed AND its visibility timeout is raised
  (``ChangeMessageVisibility``) to ``BACKOFF_BASE_SECONDS * 2^(receive count - 1)``, capped at
  ``BACKOFF_MAX_SECONDS``, with equal jitter, so the batch comes back later instead of going to the
  dead-letter queue (the queue's ``maxReceiveCount`` is set high for that);
* a reason that retrying cannot fix (no pipeline, access denied, a request SageMaker rejects, no
  ``MANIFEST_BUCKET``): each message goes to ``DEAD_LETTER_QUEUE_URL`` with message attributes ``reason``,
  ``error_code`` and ``source_message_id``, its body unchanged (the upload event, which the per-file path
  takes as is), and counts as processed; only a failed send is reported as a failure. Nothing ever fails
  a neighbour that could be processed.

One summary line per batch (``outcome`` ``batch_started``, ``batch_duplicate``, ``batch_deferred``,
``batch_dead_lettered`` or ``batch_empty``) names the token, the manifest and the counts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

logger = logging.getLogger("start_ingestion_pipeline")

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
OBJECT_CREATED_DETAIL_TYPE = "Object Created"
UPLOAD_OPERATIONS = frozenset({"PutObject", "CompleteMultipartUpload", "CopyObject"})
INPUT_PARAMETER = "InputDataUrl"
MANIFEST_PARAMETER = "InputManifestUrl"
REQUIRED_SETTINGS = ("PIPELINE_NAME", "DATA_BUCKET", "DATA_PREFIX")
DEFAULT_MANIFEST_PREFIX = "input-manifests/"

# Batched mode. SQS: a message's visibility timeout is 0 to 43,200 seconds, and ChangeMessageVisibility
# cannot extend it beyond 12 hours (Amazon SQS API Reference, ChangeMessageVisibility). The back-off
# ceiling keeps a margin for the batching window (at most 300 s) and the function's run time (at most 900 s)
# that passed since the messages were received.
SQS_EVENT_SOURCE = "aws:sqs"
SQS_MAX_VISIBILITY_SECONDS = 43_200
VISIBILITY_MARGIN_SECONDS = 1_200
MAX_BACKOFF_SECONDS = SQS_MAX_VISIBILITY_SECONDS - VISIBILITY_MARGIN_SECONDS
DEFAULT_BACKOFF_BASE_SECONDS = 60
DEFAULT_BACKOFF_MAX_SECONDS = 900
SQS_BATCH_ENTRIES = 10  # ChangeMessageVisibilityBatch takes at most 10 entries
REASON_MAX = 1_000  # characters of the reason attribute of a dead letter (a message holds at most 256 KiB)
# Manifest-write errors that retrying cannot fix (S3 error codes).
PERMANENT_S3_ERRORS = frozenset({"AccessDenied", "NoSuchBucket", "AllAccessDisabled", "InvalidBucketName"})

# Limits of sagemaker:StartPipelineExecution (botocore's service model; tests check them against it).
DISPLAY_NAME_MAX = 82
PARAMETER_VALUE_MAX = 1024
DESCRIPTION_MAX = 3072
DISPLAY_HASH_CHARS = 12
# NAME_MAX of the Linux file systems the processing instance downloads the object to: a longer last key
# component cannot become a local file, so such an upload goes through a manifest as well.
FILE_NAME_MAX_BYTES = 255

# Standard retry mode, 3 attempts in all: worst case 3 x (3 s connect + 5 s read) plus back-off
# stays within the function's 30 s timeout. What is still failing after that is raised.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=3,
    read_timeout=5,
)

# Error codes that retrying cannot fix: the hint says what to change before redriving the event.
CONFIGURATION_ERRORS = {
    "ResourceNotFound": (
        "pipeline {pipeline} does not exist in this account and region: let the project's CI/CD "
        "pipeline deploy it (push to the seed-code repository), then redrive the dead-letter queue"
    ),
    "AccessDeniedException": (
        "the function's role may not call sagemaker:StartPipelineExecution on {pipeline}: check the "
        "role policy, permissions boundary and SCPs, then redrive the dead-letter queue"
    ),
    "ValidationException": (
        "SageMaker rejected the request: check that PIPELINE_NAME ({pipeline}) is the project's "
        "pipeline and that it defines the parameters " + INPUT_PARAMETER + " and " + MANIFEST_PARAMETER
        + " (a pipeline deployed by older seed code lacks the latter: push the current seed code to the "
        "project's repository to redeploy it)"
    ),
}
CONFIGURATION_ERRORS["AccessDenied"] = CONFIGURATION_ERRORS["AccessDeniedException"]

_TOKEN_ALREADY_USED = re.compile(
    r"idempoten|token\b[^.]*\b(already|reused|in use)\b|\b(already|previously)\b[^.]*\btoken", re.IGNORECASE
)
_NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]+")
_MISSING = object()

_client: Any = None
_s3: Any = None
_sqs: Any = None


def _sagemaker_client() -> Any:
    """One SageMaker client per container, created on first use.

    boto3 applies ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SAGEMAKER`` itself. Tests replace this
    function or set ``_client``.
    """
    global _client
    if _client is None:
        _client = boto3.client("sagemaker", config=CLIENT_CONFIG)
    return _client


def _s3_client() -> Any:
    """One S3 client per container, created the first time a manifest is written."""
    global _s3
    if _s3 is None:
        _s3 = boto3.client("s3", config=CLIENT_CONFIG)
    return _s3


def _sqs_client() -> Any:
    """One SQS client per container, created the first time a batch needs it (back-off, dead letters)."""
    global _sqs
    if _sqs is None:
        _sqs = boto3.client("sqs", config=CLIENT_CONFIG)
    return _sqs


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete: fix the stack, not the event."""


class UnprocessableUpload(ValueError):
    """A real upload the pipeline cannot take; raised so the event ends in the dead-letter queue."""


@dataclass(frozen=True)
class Settings:
    pipeline_name: str
    bucket: str
    prefix: str
    suffix: str = ""
    manifest_bucket: str = ""
    manifest_prefix: str = DEFAULT_MANIFEST_PREFIX
    always_manifest: bool = False
    missing_pipeline_hint: str = ""
    dead_letter_queue_url: str = ""
    backoff_base: int = DEFAULT_BACKOFF_BASE_SECONDS
    backoff_max: int = DEFAULT_BACKOFF_MAX_SECONDS

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED_SETTINGS if not env.get(name, "").strip()]
        if missing:
            raise ConfigurationError(
                f"environment variable(s) {', '.join(missing)} missing or empty: the project stack sets "
                "them on the function; update the stack (or the function configuration), then redrive "
                "the dead-letter queue"
            )
        backoff_base = _seconds(env, "BACKOFF_BASE_SECONDS", DEFAULT_BACKOFF_BASE_SECONDS, 1, MAX_BACKOFF_SECONDS)
        backoff_max = _seconds(env, "BACKOFF_MAX_SECONDS", DEFAULT_BACKOFF_MAX_SECONDS, backoff_base,
                               MAX_BACKOFF_SECONDS)
        return cls(
            pipeline_name=env["PIPELINE_NAME"].strip(),
            bucket=env["DATA_BUCKET"].strip(),
            prefix=env["DATA_PREFIX"],
            suffix=env.get("DATA_SUFFIX", ""),
            manifest_bucket=env.get("MANIFEST_BUCKET", "").strip(),
            manifest_prefix=env.get("MANIFEST_PREFIX", "").strip() or DEFAULT_MANIFEST_PREFIX,
            always_manifest=_manifest_mode(env.get("START_WITH_MANIFEST", "")),
            missing_pipeline_hint=env.get("MISSING_PIPELINE_HINT", "").strip(),
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL", "").strip(),
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )


def _seconds(env: Mapping[str, str], name: str, default: int, lowest: int, highest: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return max(default, lowest)
    try:
        value = int(text)
    except ValueError:
        value = lowest - 1
    if not lowest <= value <= highest:
        raise ConfigurationError(f"{name} is {text!r}: use a whole number of seconds from {lowest} to {highest}")
    return value


def _manifest_mode(value: str) -> bool:
    mode = value.strip().lower() or "when-needed"
    if mode not in ("always", "when-needed"):
        raise ConfigurationError(
            f"START_WITH_MANIFEST is {value!r}: use 'always' or 'when-needed' (the project stack sets it)"
        )
    return mode == "always"


@dataclass(frozen=True)
class Upload:
    """One object written to S3, as told by either event shape."""

    bucket: str
    key: str
    operation: str  # PutObject, CompleteMultipartUpload, CopyObject (S3 events: their "reason")
    origin: str  # "CloudTrail" or "S3"
    identity: tuple[str, ...]  # what tells this write of the key from earlier and later ones
    size: float | None = None  # bytes, when the event says

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def needs_manifest(self) -> bool:
        """True when the pipeline cannot take the object as ``InputDataUrl`` (see the module docstring)."""
        file_name = self.key.rsplit("/", 1)[-1]
        return len(self.url) > PARAMETER_VALUE_MAX or len(file_name.encode("utf-8")) > FILE_NAME_MAX_BYTES


class Skip(Exception):
    """The event is not acted on; ``malformed`` when it could not even be read."""

    def __init__(self, reason: str, *, malformed: bool = False, upload: Upload | None = None):
        super().__init__(reason)
        self.reason = reason
        self.malformed = malformed
        self.upload = upload


# --- reading events -------------------------------------------------------------------------------


def parse_event(event: Any) -> Upload:
    """The upload an EventBridge event describes; raises :class:`Skip` for anything else."""
    if not isinstance(event, dict):
        raise Skip(f"the event is {_json_type(event)}, expected an object", malformed=True)
    detail_type = _field(event, "detail-type", str, "event")
    source = _field(event, "source", str, "event")
    if source != "aws.s3":
        raise Skip(f"event source {source!r} is not aws.s3")
    if detail_type == CLOUDTRAIL_DETAIL_TYPE:
        return _from_cloudtrail(_field(event, "detail", dict, "event"))
    if detail_type == OBJECT_CREATED_DETAIL_TYPE:
        return _from_object_created(_field(event, "detail", dict, "event"))
    raise Skip(f"detail-type {detail_type!r} is not an upload")


def _from_cloudtrail(detail: dict) -> Upload:
    event_source = _field(detail, "eventSource", str, "detail")
    if event_source != "s3.amazonaws.com":
        raise Skip(f"CloudTrail event from {event_source!r}, not S3")
    operation = _field(detail, "eventName", str, "detail")
    if "errorCode" in detail:
        raise Skip(f"{operation} failed with errorCode {detail['errorCode']!r}: nothing was written")
    if operation not in UPLOAD_OPERATIONS:
        raise Skip(f"operation {operation!r} does not create an object")
    parameters = _field(detail, "requestParameters", dict, "detail")
    bucket = _text(parameters, "bucketName", "detail.requestParameters")
    key = _text(parameters, "key", "detail.requestParameters")
    event_id = detail.get("eventID") or detail.get("requestID")
    if not isinstance(event_id, str):
        raise Skip("detail.eventID and detail.requestID are missing: cannot tell this upload from another",
                   malformed=True)
    size = None
    extra = detail.get("additionalEventData")
    if operation == "PutObject" and isinstance(extra, dict) and _is_number(extra.get("bytesTransferredIn")):
        # The request body of a PutObject is the object. (CompleteMultipartUpload and CopyObject
        # transfer no body, so for them the field says nothing about the object's size.)
        size = extra["bytesTransferredIn"]
    return Upload(bucket, key, operation, "CloudTrail", (f"eventID={event_id}",), size)


def _from_object_created(detail: dict) -> Upload:
    bucket = _text(_field(detail, "bucket", dict, "detail"), "name", "detail.bucket")
    obj = _field(detail, "object", dict, "detail")
    key = _text(obj, "key", "detail.object")
    size = obj.get("size")
    if size is not None and not _is_number(size):
        raise Skip(f"detail.object.size is {_json_type(size)}, expected a number", malformed=True)
    identity = tuple(
        f"{name}={obj[name]}" for name in ("version-id", "sequencer", "etag") if isinstance(obj.get(name), str)
    )
    if not identity:
        raise Skip("detail.object has no version-id, sequencer or etag: cannot tell this upload from another",
                   malformed=True)
    reason = detail.get("reason")
    operation = reason if isinstance(reason, str) and reason else "ObjectCreated"
    return Upload(bucket, key, operation, "S3", identity, size)


def _field(container: dict, name: str, kind: type, where: str) -> Any:
    value = container.get(name, _MISSING)
    if value is _MISSING:
        raise Skip(f"{where}.{name} is missing", malformed=True)
    if not isinstance(value, kind):
        raise Skip(f"{where}.{name} is {_json_type(value)}, expected {_json_type(kind())}", malformed=True)
    return value


def _text(container: dict, name: str, where: str) -> str:
    value = _field(container, name, str, where)
    if not value:
        raise Skip(f"{where}.{name} is empty", malformed=True)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Skip(f"{where}.{name} is not valid Unicode", malformed=True) from None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --- deciding -------------------------------------------------------------------------------------


def check_watched(upload: Upload, settings: Settings) -> None:
    """Raise :class:`Skip` unless the upload is a non-empty file under the watched location.

    Bucket, prefix and suffix are the rule's event pattern again (the function must not depend on
    the rule); folder markers and, for CloudTrail, empty objects are what the pattern cannot express.
    """

    def skip(reason: str) -> Skip:
        return Skip(reason, upload=upload)

    if upload.bucket != settings.bucket:
        raise skip(f"bucket {upload.bucket!r} is not the watched bucket {settings.bucket!r}")
    if not upload.key.startswith(settings.prefix):
        raise skip(f"key is outside the watched prefix {settings.prefix!r}")
    if settings.suffix and not upload.key.endswith(settings.suffix):
        raise skip(f"key does not end with the suffix {settings.suffix!r}")
    if upload.key.endswith("/"):
        raise skip("folder marker (the key ends with '/')")
    if upload.size is not None and upload.size <= 0:
        raise skip("empty object (0 bytes)")


# --- the request ----------------------------------------------------------------------------------


def client_request_token(settings: Settings, upload: Upload) -> str:
    """64 hex characters, the same for every delivery of one upload, new for every new upload."""
    material = json.dumps(["v1", settings.pipeline_name, upload.origin, upload.bucket, upload.key,
                           *upload.identity])  # ASCII-only JSON: unambiguous, whatever the key holds
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def display_name(key: str, token: str) -> str:
    """The file name reduced to ``[A-Za-z0-9-]`` plus a short hash: at most 82 characters, always
    matching ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}``, distinct for distinct uploads."""
    file_name = key.rstrip("/").rsplit("/", 1)[-1]
    ascii_name = unicodedata.normalize("NFKD", file_name).encode("ascii", "ignore").decode("ascii")
    readable = _NOT_ALPHANUMERIC.sub("-", ascii_name).strip("-")
    readable = readable[: DISPLAY_NAME_MAX - DISPLAY_HASH_CHARS - 1].rstrip("-") or "upload"
    return f"{readable}-{token[:DISPLAY_HASH_CHARS]}"


def description(upload: Upload) -> str:
    """What started the execution, on one line (the API's pattern ``.*`` excludes line breaks)."""
    text = f"{upload.operation} of {upload.url} ({upload.origin} event {', '.join(upload.identity)})"
    printable = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)
    return printable[:DESCRIPTION_MAX]


@dataclass(frozen=True)
class Manifest:
    """A one-object manifest in SageMaker's ManifestFile format, and where it is written."""

    bucket: str
    key: str
    body: bytes

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def manifest_for(settings: Settings, upload: Upload, token: str) -> Manifest:
    """``[{"prefix": "s3://bucket/"}, "<key>"]`` at ``MANIFEST_PREFIX<token>.manifest``: the same bytes and
    key for every delivery of one upload."""
    if not settings.manifest_bucket:
        raise UnprocessableUpload(
            f"{upload.url[:100]}... {_why_manifest(upload)}, so the pipeline can only read it through a manifest, "
            "and MANIFEST_BUCKET is not set: update the project stack, then redrive the dead-letter queue"
        )
    body = json.dumps([{"prefix": f"s3://{upload.bucket}/"}, upload.key], ensure_ascii=False).encode("utf-8")
    return Manifest(settings.manifest_bucket, f"{settings.manifest_prefix}{token}.manifest", body)


def _why_manifest(upload: Upload) -> str:
    if not upload.needs_manifest:
        return "is read through a manifest (START_WITH_MANIFEST=always)"
    if len(upload.url) > PARAMETER_VALUE_MAX:
        return f"is {len(upload.url)} characters long (a pipeline parameter value takes at most {PARAMETER_VALUE_MAX})"
    return f"has a file name over {FILE_NAME_MAX_BYTES} bytes (the longest a processing instance can store)"


def start_request(settings: Settings, upload: Upload, manifest: Manifest | None = None) -> dict[str, Any]:
    """The StartPipelineExecution arguments: a function of the upload and settings only, so a
    redelivered event sends byte-identical requests with the same token. With a manifest, the
    execution reads the object through it (``InputManifestUrl``) instead of ``InputDataUrl``."""
    if (upload.needs_manifest or settings.always_manifest) and manifest is None:
        raise UnprocessableUpload(f"{upload.url[:100]}... can only reach the pipeline through a manifest")
    token = client_request_token(settings, upload)
    parameter = {"Name": MANIFEST_PARAMETER, "Value": manifest.url} if manifest else {
        "Name": INPUT_PARAMETER, "Value": upload.url}
    return {
        "PipelineName": settings.pipeline_name,
        "PipelineExecutionDisplayName": display_name(upload.key, token),
        "PipelineExecutionDescription": description(upload),
        "PipelineParameters": [parameter],
        "ClientRequestToken": token,
    }


def write_manifest(s3: Any, manifest: Manifest) -> None:
    """Write the manifest (idempotent: a redelivery writes the same bytes under the same key)."""
    s3.put_object(Bucket=manifest.bucket, Key=manifest.key, Body=manifest.body, ContentType="application/json")


def _is_token_reuse(error: ClientError) -> bool:
    details = error.response.get("Error", {})
    code, message = details.get("Code", ""), details.get("Message", "")
    if code.startswith("IdempotentParameterMismatch"):
        return True
    return code in ("ConflictException", "ValidationException") and bool(_TOKEN_ALREADY_USED.search(message))


# --- the handler ----------------------------------------------------------------------------------


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    try:
        settings = Settings.from_environment()
    except ConfigurationError as error:
        logger.error("Configuration error: %s", error, extra={"outcome": "configuration_error"})
        raise
    if is_sqs_batch(event):
        return handle_batch(event["Records"], settings, getattr(context, "aws_request_id", None))
    try:
        upload = parse_event(event)
        check_watched(upload, settings)
    except Skip as skip:
        return _skipped(skip, event)
    try:
        client = _sagemaker_client()
    except BotoCoreError as error:  # no region, unreadable AWS config: nothing a retry would fix
        logger.error("Cannot create the SageMaker client: %s", error, extra={"outcome": "configuration_error"})
        raise
    return start_execution(client, settings, upload, _event_id(event))


def start_execution(client: Any, settings: Settings, upload: Upload, event_id: str | None = None,
                    s3: Any = None) -> dict:
    fields: dict[str, Any] = {"bucket": upload.bucket, "key": upload.key, "event_id": event_id,
                              "pipeline": settings.pipeline_name}
    token = client_request_token(settings, upload)
    manifest = None
    if upload.needs_manifest or settings.always_manifest:
        try:
            manifest = manifest_for(settings, upload, token)
        except UnprocessableUpload as error:
            logger.error("Cannot start the pipeline: %s", error, extra={**fields, "outcome": "unprocessable"})
            raise
        _write_manifest_or_raise(s3 if s3 is not None else _s3_client(), manifest, fields)
    request = start_request(settings, upload, manifest)
    fields.update(client_request_token=token, display_name=request["PipelineExecutionDisplayName"],
                  input_data_url=upload.url)
    summary = {"pipeline": settings.pipeline_name, "inputDataUrl": upload.url,
               "displayName": request["PipelineExecutionDisplayName"], "clientRequestToken": token}
    if manifest is not None:
        fields["input_manifest_url"] = summary["inputManifestUrl"] = manifest.url
    try:
        response = client.start_pipeline_execution(**request)
    except ClientError as error:
        if _is_token_reuse(error):
            logger.info("Execution for %s already started (duplicate event)", upload.url,
                        extra={**fields, "outcome": "duplicate"})
            return {"status": "duplicate", **summary}
        _log_failure(error, settings, fields)
        raise
    except BotoCoreError as error:  # connection failures, timeouts, missing credentials, bad parameters
        retryable = not isinstance(error, ParamValidationError)
        logger.error("Could not call SageMaker to start %s: %s", settings.pipeline_name, error,
                     extra={**fields, "outcome": "failed", "error_code": type(error).__name__,
                            "retryable": retryable})
        raise
    arn = response["PipelineExecutionArn"]
    logger.info("Started pipeline execution %s for %s", arn, upload.url,
                extra={**fields, "outcome": "started", "execution_arn": arn})
    return {"status": "started", "executionArn": arn, **summary}


def _write_manifest_or_raise(s3: Any, manifest: Manifest, fields: dict[str, Any]) -> None:
    try:
        write_manifest(s3, manifest)
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code", "Unknown") if isinstance(error, ClientError) else (
            type(error).__name__)
        logger.error("Could not write the input manifest %s (%s): %s; the event will be retried and then sent "
                     "to the dead-letter queue", manifest.url, code, error,
                     extra={**fields, "outcome": "failed", "error_code": code, "input_manifest_url": manifest.url,
                            "retryable": code not in ("AccessDenied", "NoSuchBucket")})
        raise


def _log_failure(error: ClientError, settings: Settings, fields: dict[str, Any]) -> None:
    details = error.response.get("Error", {})
    code = details.get("Code", "Unknown")
    hint = CONFIGURATION_ERRORS.get(code)
    extra = {**fields, "outcome": "failed", "error_code": code, "retryable": hint is None}
    if hint is None:
        logger.error("SageMaker could not start %s (%s: %s); the event will be retried and then sent to "
                     "the dead-letter queue", settings.pipeline_name, code, details.get("Message", ""),
                     extra=extra)
    else:
        advice = hint.format(pipeline=settings.pipeline_name)
        if code == "ResourceNotFound" and settings.missing_pipeline_hint:
            advice = f"{advice}; {settings.missing_pipeline_hint}"
        logger.error("Cannot start %s (%s): %s", settings.pipeline_name, code, advice, extra=extra)


def _skipped(skip: Skip, event: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"reason": skip.reason, "event_id": _event_id(event)}
    if skip.malformed:
        logger.warning("Malformed event ignored: %s", skip.reason,
                       extra={**fields, "outcome": "malformed", "malformed_event": 1,
                              "event_excerpt": _excerpt(event)})
        return {"status": "malformed", "reason": skip.reason}
    if skip.upload is not None:
        fields.update(bucket=skip.upload.bucket, key=skip.upload.key)
    logger.info("Event ignored: %s", skip.reason, extra={**fields, "outcome": "ignored"})
    return {"status": "ignored", "reason": skip.reason}


def _event_id(event: Any) -> str | None:
    event_id = event.get("id") if isinstance(event, dict) else None
    return event_id if isinstance(event_id, str) else None


def _excerpt(event: Any, limit: int = 500) -> str:
    try:
        text = json.dumps(event, default=repr)
    except (TypeError, ValueError):
        text = repr(event)
    return text if len(text) <= limit else text[:limit] + "..."



# --- batched mode ---------------------------------------------------------------------------------


def is_sqs_batch(event: Any) -> bool:
    """True for what a Lambda event source mapping delivers from an SQS queue: ``Records``, each with
    ``eventSource`` ``aws:sqs`` (AWS Lambda Developer Guide, "Using Lambda with Amazon SQS")."""
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and isinstance(records, list) and all(
        isinstance(record, dict) and record.get("eventSource") == SQS_EVENT_SOURCE for record in records)


@dataclass(frozen=True)
class QueueMessage:
    """One SQS record of a batch: what the function needs to answer for it, delay it or dead-letter it."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    queue_arn: str

    @property
    def queue_url(self) -> str:
        """``https://sqs.<region>.<domain>/<account>/<name>`` from ``arn:<partition>:sqs:<region>:<account>:<name>``."""
        parts = self.queue_arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise ValueError(f"not an SQS queue ARN: {self.queue_arn!r}")
        partition, region, account, name = parts[1], parts[3], parts[4], parts[5]
        domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
        return f"https://sqs.{region}.{domain}/{account}/{name}"


@dataclass(frozen=True)
class DeadLetter:
    message: QueueMessage
    reason: str
    code: str


@dataclass
class BatchResult:
    """What happens to each message of a batch: deleted by the event source mapping (every message not in
    ``failed``), delayed (``failed`` with a raised visibility timeout) or dead-lettered with a reason."""

    failed: list[str]
    dead: list[DeadLetter]


def handle_batch(records: list[dict], settings: Settings, request_id: str | None = None) -> dict[str, Any]:
    """One execution for the uploads of an SQS batch; the answer is a partial batch response."""
    result = BatchResult(failed=[], dead=[])
    accepted: list[tuple[QueueMessage, Upload]] = []
    for record in records:
        message = _queue_message(record)
        if message is None:
            continue
        try:
            event = json.loads(message.body)
        except ValueError as error:
            skip = Skip(f"the message body is not JSON ({error})", malformed=True)
            _log_message_skip(skip, message, message.body)
            result.dead.append(DeadLetter(message, skip.reason, "MalformedEvent"))
            continue
        try:
            upload = parse_event(event)
            check_watched(upload, settings)
        except Skip as skip:
            _log_message_skip(skip, message, event)
            if skip.malformed:
                result.dead.append(DeadLetter(message, skip.reason, "MalformedEvent"))
            continue
        accepted.append((message, upload))
    if accepted:
        _start_batch(settings, accepted, len(records), result)
    else:
        logger.info("No upload to start the pipeline with in a batch of %d message(s)", len(records),
                    extra={"outcome": "batch_empty", "messages": len(records), "pipeline": settings.pipeline_name})
    result.failed.extend(_dead_letter(settings, result.dead, request_id))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in dict.fromkeys(result.failed)]}


def _queue_message(record: dict) -> QueueMessage | None:
    message_id, receipt, body = record.get("messageId"), record.get("receiptHandle"), record.get("body")
    if not (isinstance(message_id, str) and message_id and isinstance(receipt, str) and isinstance(body, str)):
        # Without a messageId the message cannot even be reported; the event source mapping always sends one.
        logger.warning("Malformed SQS record ignored: messageId, receiptHandle or body missing",
                       extra={"outcome": "malformed", "malformed_event": 1, "event_excerpt": _excerpt(record)})
        return None
    attributes = record.get("attributes") if isinstance(record.get("attributes"), dict) else {}
    try:
        receive_count = max(1, int(attributes.get("ApproximateReceiveCount", 1)))
    except (TypeError, ValueError):
        receive_count = 1
    arn = record.get("eventSourceARN")
    return QueueMessage(message_id, receipt, body, receive_count, arn if isinstance(arn, str) else "")


def _log_message_skip(skip: Skip, message: QueueMessage, event: Any) -> None:
    fields: dict[str, Any] = {"reason": skip.reason, "message_id": message.message_id,
                              "event_id": _event_id(event)}
    if skip.malformed:
        logger.warning("Malformed message sent to the dead-letter queue: %s", skip.reason,
                       extra={**fields, "outcome": "malformed", "malformed_event": 1, "event_excerpt": _excerpt(event)})
        return
    if skip.upload is not None:
        fields.update(bucket=skip.upload.bucket, key=skip.upload.key)
    logger.info("Message ignored: %s", skip.reason, extra={**fields, "outcome": "ignored"})


def batch_request_token(settings: Settings, uploads: list[Upload]) -> str:
    """64 hex characters from the set of uploads (order and duplicates do not matter)."""
    tokens = sorted({client_request_token(settings, upload) for upload in uploads})
    material = json.dumps(["v1-batch", settings.pipeline_name, *tokens])
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def batch_manifest(settings: Settings, uploads: list[Upload], token: str) -> Manifest:
    """Every distinct object of the batch, sorted, in SageMaker's ManifestFile format, at
    ``MANIFEST_PREFIX<token>.manifest``. All uploads are in the watched bucket (check_watched)."""
    if not settings.manifest_bucket:
        raise UnprocessableUpload("MANIFEST_BUCKET is not set: the batched mode starts the pipeline with one "
                                  "manifest per batch; update the project stack, then redrive the dead-letter queue")
    keys = sorted({upload.key for upload in uploads})
    body = json.dumps([{"prefix": f"s3://{settings.bucket}/"}, *keys], ensure_ascii=False).encode("utf-8")
    return Manifest(settings.manifest_bucket, f"{settings.manifest_prefix}{token}.manifest", body)


def batch_start_request(settings: Settings, uploads: list[Upload], manifest: Manifest, token: str) -> dict[str, Any]:
    objects = sorted({upload.url for upload in uploads})
    listed = ", ".join(objects[:5]) + (", ..." if len(objects) > 5 else "")
    text = f"{len(objects)} upload(s) under s3://{settings.bucket}/{settings.prefix} (SQS batch): {listed}"
    printable = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)
    return {
        "PipelineName": settings.pipeline_name,
        "PipelineExecutionDisplayName": f"batch-{len(objects)}-files-{token[:DISPLAY_HASH_CHARS]}",
        "PipelineExecutionDescription": printable[:DESCRIPTION_MAX],
        "PipelineParameters": [{"Name": MANIFEST_PARAMETER, "Value": manifest.url}],
        "ClientRequestToken": token,
    }


def visibility_timeout(settings: Settings, token: str, attempt: int) -> int:
    """Seconds a refused batch stays invisible: base x 2^(attempt - 1), capped, with equal jitter ("Exponential
    Backoff And Jitter", AWS Architecture Blog) drawn from the token, so batches refused together spread out
    and a redelivery of the same batch gets the same value."""
    ceiling = min(settings.backoff_max, MAX_BACKOFF_SECONDS)
    delay = min(ceiling, settings.backoff_base * 2 ** min(max(attempt, 1) - 1, 30))
    fraction = int(hashlib.sha256(f"{token}:{attempt}".encode("ascii")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return max(1, min(ceiling, round(delay / 2 + fraction * delay / 2)))


def _start_batch(settings: Settings, accepted: list[tuple[QueueMessage, Upload]], batch_size: int,
                 result: BatchResult) -> None:
    uploads = [upload for _, upload in accepted]
    messages = [message for message, _ in accepted]
    token = batch_request_token(settings, uploads)
    fields: dict[str, Any] = {"pipeline": settings.pipeline_name, "client_request_token": token,
                              "messages": batch_size, "uploads": len(uploads),
                              "objects": len({upload.key for upload in uploads})}
    try:
        manifest = batch_manifest(settings, uploads, token)
        fields["input_manifest_url"] = manifest.url
        write_manifest(_s3_client(), manifest)
        request = batch_start_request(settings, uploads, manifest, token)
        fields["display_name"] = request["PipelineExecutionDisplayName"]
        response = _sagemaker_client().start_pipeline_execution(**request)
    except UnprocessableUpload as error:
        _give_up(messages, str(error), "Unprocessable", fields, result)
        return
    except ClientError as error:
        details = error.response.get("Error", {})
        code = details.get("Code", "Unknown")
        if error.operation_name == "PutObject":
            why = f"could not write the manifest {fields['input_manifest_url']} ({code}: {details.get('Message', '')})"
            if code in PERMANENT_S3_ERRORS:
                _give_up(messages, why + ": the function's role needs s3:PutObject on the manifest prefix of the "
                         "artifact bucket; fix the stack, then redrive the dead-letter queue", code, fields, result)
            else:
                _back_off(settings, messages, token, why, code, fields, result)
            return
        if _is_token_reuse(error):
            logger.info("Execution for this batch already started (redelivered batch)",
                        extra={**fields, "outcome": "batch_duplicate"})
            return
        hint = CONFIGURATION_ERRORS.get(code)
        if hint is None:
            _back_off(settings, messages, token, f"SageMaker refused the start ({code}: {details.get('Message', '')})",
                      code, fields, result)
            return
        advice = hint.format(pipeline=settings.pipeline_name)
        if code == "ResourceNotFound" and settings.missing_pipeline_hint:
            advice = f"{advice}; {settings.missing_pipeline_hint}"
        _give_up(messages, f"cannot start {settings.pipeline_name} ({code}): {advice}", code, fields, result)
        return
    except ParamValidationError as error:
        _give_up(messages, f"the start request is invalid: {error}", "ParamValidationError", fields, result)
        return
    except BotoCoreError as error:  # connection failures, timeouts, missing credentials
        _back_off(settings, messages, token, f"could not call AWS: {error}", type(error).__name__, fields, result)
        return
    arn = response["PipelineExecutionArn"]
    logger.info("Started pipeline execution %s for %d upload(s)", arn, len(uploads),
                extra={**fields, "outcome": "batch_started", "execution_arn": arn})


def _back_off(settings: Settings, messages: list[QueueMessage], token: str, why: str, code: str,
              fields: dict[str, Any], result: BatchResult) -> None:
    """Report every message as failed, and keep it invisible for a growing time so it comes back later."""
    attempt = max(message.receive_count for message in messages)
    seconds = visibility_timeout(settings, token, attempt)
    unchanged = _change_visibility(messages, seconds)
    result.failed.extend(message.message_id for message in messages)
    logger.warning("%s; the %d message(s) come back in about %d s (receive %d)", why, len(messages), seconds, attempt,
                   extra={**fields, "outcome": "batch_deferred", "error_code": code, "retryable": True,
                          "visibility_timeout": seconds, "receive_count": attempt,
                          "visibility_unchanged": len(unchanged)})


def _change_visibility(messages: list[QueueMessage], seconds: int) -> list[str]:
    """ChangeMessageVisibilityBatch, 10 entries a call; returns the ids whose timeout could not be changed
    (they come back after the queue's own visibility timeout instead)."""
    unchanged: list[str] = []
    by_queue: dict[str, list[QueueMessage]] = {}
    for message in messages:
        by_queue.setdefault(message.queue_arn, []).append(message)
    for queue_arn, queued in by_queue.items():
        for start in range(0, len(queued), SQS_BATCH_ENTRIES):
            chunk = queued[start:start + SQS_BATCH_ENTRIES]
            entries = [{"Id": str(index), "ReceiptHandle": message.receipt_handle, "VisibilityTimeout": seconds}
                       for index, message in enumerate(chunk)]
            try:
                answer = _sqs_client().change_message_visibility_batch(QueueUrl=chunk[0].queue_url, Entries=entries)
                failed = [chunk[int(entry["Id"])].message_id for entry in answer.get("Failed", [])]
            except (ClientError, BotoCoreError, ValueError) as error:
                logger.warning("Could not change the visibility timeout of %d message(s) of %s: %s", len(chunk),
                               queue_arn, error, extra={"outcome": "visibility_unchanged"})
                failed = [message.message_id for message in chunk]
            unchanged.extend(failed)
    return unchanged


def _give_up(messages: list[QueueMessage], reason: str, code: str, fields: dict[str, Any],
             result: BatchResult) -> None:
    logger.error("%s; %d message(s) go to the dead-letter queue", reason, len(messages),
                 extra={**fields, "outcome": "batch_dead_lettered", "error_code": code, "retryable": False})
    result.dead.extend(DeadLetter(message, reason, code) for message in messages)


def _dead_letter(settings: Settings, dead: list[DeadLetter], request_id: str | None) -> list[str]:
    """Send each message to the dead-letter queue with its reason; returns the ids that could not be sent
    (reported as failed: they come back and are tried again)."""
    if not dead:
        return []
    if not settings.dead_letter_queue_url:
        logger.error("DEAD_LETTER_QUEUE_URL is not set: %d message(s) that cannot be processed are reported as "
                     "failed until the queue's redrive policy moves them to its dead-letter queue", len(dead),
                     extra={"outcome": "dead_letter_unavailable", "messages": len(dead)})
        return [letter.message.message_id for letter in dead]
    unsent: list[str] = []
    for chunk in _send_batches(dead):
        entries = [{"Id": str(index), "MessageBody": letter.message.body,
                    "MessageAttributes": _dead_letter_attributes(letter, request_id)}
                   for index, letter in enumerate(chunk)]
        try:
            answer = _sqs_client().send_message_batch(QueueUrl=settings.dead_letter_queue_url, Entries=entries)
            failed = {int(entry["Id"]): entry.get("Code", "") for entry in answer.get("Failed", [])}
        except (ClientError, BotoCoreError) as error:
            failed = dict.fromkeys(range(len(chunk)), str(error))
        for index, why in sorted(failed.items()):
            message_id = chunk[index].message.message_id
            logger.error("Could not send message %s to the dead-letter queue (%s); it is reported as failed and will "
                         "be tried again", message_id, why,
                         extra={"outcome": "dead_letter_failed", "message_id": message_id})
            unsent.append(message_id)
    return unsent


# SendMessageBatch: at most 10 entries, and their bodies and attributes together within the message size quota
# (Amazon SQS API Reference, SendMessageBatch); 256 KiB, the quota before SQS raised it to 1 MiB, is safe everywhere.
SEND_BATCH_BYTES = 256 * 1024


def _send_batches(dead: list[DeadLetter]) -> list[list[DeadLetter]]:
    """The dead letters in SendMessageBatch calls: up to 10 each, their bodies (plus a margin per entry for the
    attributes) within SEND_BATCH_BYTES; a body too large for company travels alone."""
    chunks: list[list[DeadLetter]] = []
    size = 0
    for letter in dead:
        weight = len(letter.message.body.encode("utf-8")) + REASON_MAX * 4 + 512
        if not chunks or len(chunks[-1]) == SQS_BATCH_ENTRIES or size + weight > SEND_BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(letter)
        size += weight
    return chunks


def _dead_letter_attributes(letter: DeadLetter, request_id: str | None) -> dict[str, dict[str, str]]:
    attributes = {
        "reason": {"DataType": "String", "StringValue": _printable(letter.reason)[:REASON_MAX] or "unknown"},
        "error_code": {"DataType": "String", "StringValue": letter.code or "Unknown"},
        "source_message_id": {"DataType": "String", "StringValue": letter.message.message_id},
    }
    if request_id:
        attributes["request_id"] = {"DataType": "String", "StringValue": request_id}
    return attributes


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)
