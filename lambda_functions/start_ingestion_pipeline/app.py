"""Start the project's SageMaker pipeline once for each file uploaded under the watched S3 location.

EventBridge invokes this function with one of two event shapes:

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
  (e.g. "approve a model package in group X").

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
        return cls(
            pipeline_name=env["PIPELINE_NAME"].strip(),
            bucket=env["DATA_BUCKET"].strip(),
            prefix=env["DATA_PREFIX"],
            suffix=env.get("DATA_SUFFIX", ""),
            manifest_bucket=env.get("MANIFEST_BUCKET", "").strip(),
            manifest_prefix=env.get("MANIFEST_PREFIX", "").strip() or DEFAULT_MANIFEST_PREFIX,
            always_manifest=_manifest_mode(env.get("START_WITH_MANIFEST", "")),
            missing_pipeline_hint=env.get("MISSING_PIPELINE_HINT", "").strip(),
        )


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
