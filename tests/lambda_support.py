"""Helpers for the Lambda tests: the handler module, event fixtures and a stubbed SageMaker client.

The handler lives in ``lambda_functions/start_ingestion_pipeline/app.py``, a directory zipped as-is
into the Lambda package, not a Python package of this repository: it is loaded here by path, once,
under a unique module name.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.session
from botocore.stub import Stubber
from loading import load_module

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_PATH = REPO_ROOT / "lambda_functions" / "start_ingestion_pipeline" / "app.py"
MODULE_NAME = "start_ingestion_pipeline_app"

REGION = "eu-west-1"
ACCOUNT = "111122223333"
BUCKET = "amzn-s3-demo-bucket"  # the bucket every fixture in tests/events uses
OTHER_BUCKET = "amzn-s3-demo-bucket-other"
PREFIX = "incoming/"
PIPELINE = "sagemaker-demo-p-abc123def456-ingestion"
MANIFEST_BUCKET = "sagemaker-p-abc123def456-artifacts-111122223333"
LOGGER_NAME = "start_ingestion_pipeline"

# What the real API accepts (botocore validates types and minimum lengths only; patterns and maximum
# lengths are checked by assert_valid_request below, against the same service model).
DISPLAY_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}")
JAVA_LINE_TERMINATORS = "\n\r\u0085\u2028\u2029"  # what '.' does not match in the service's regexes

CLOUDTRAIL_STARTS = (
    "cloudtrail-putobject.json",
    "cloudtrail-completemultipartupload.json",
    "cloudtrail-copyobject.json",
)
S3_STARTS = (
    "s3-object-created.json",
    "s3-object-created-multipart.json",
    "s3-object-created-copy.json",
)


def load_app(name: str = MODULE_NAME) -> ModuleType:
    """The handler module, imported by path (cached under ``name``)."""
    return load_module(name, APP_PATH)


def is_cloudtrail(event: dict) -> bool:
    return event["detail-type"] == "AWS API Call via CloudTrail"


def object_of(event: dict) -> tuple[str, str]:
    """(bucket, key) of an event of either shape."""
    detail = event["detail"]
    if is_cloudtrail(event):
        return detail["requestParameters"]["bucketName"], detail["requestParameters"]["key"]
    return detail["bucket"]["name"], detail["object"]["key"]


def with_object(event: dict, *, bucket: str | None = None, key: str | None = None) -> dict:
    """A copy of ``event`` about another bucket and/or key (every place the shape names them)."""
    event = copy.deepcopy(event)
    old_bucket, old_key = object_of(event)
    bucket = old_bucket if bucket is None else bucket
    key = old_key if key is None else key
    detail = event["detail"]
    if is_cloudtrail(event):
        detail["requestParameters"].update(bucketName=bucket, key=key,
                                           Host=f"{bucket}.s3.{REGION}.amazonaws.com")
        for resource in detail.get("resources", []):
            if resource.get("type") == "AWS::S3::Object":
                resource["ARN"] = f"arn:aws:s3:::{bucket}/{key}"
            elif resource.get("type") == "AWS::S3::Bucket":
                resource["ARN"] = f"arn:aws:s3:::{bucket}"
    else:
        detail["bucket"]["name"] = bucket
        detail["object"]["key"] = key
        event["resources"] = [f"arn:aws:s3:::{bucket}"]
    return event


def new_upload_of(event: dict, serial: int = 2) -> dict:
    """The same key written again later: a new CloudTrail event, or a new S3 version/sequencer."""
    event = copy.deepcopy(event)
    event["id"] = f"00000000-0000-4000-8000-{serial:012d}"
    detail = event["detail"]
    if is_cloudtrail(event):
        detail["eventID"] = f"11111111-2222-4333-8444-{serial:012d}"
        detail["requestID"] = f"NEWREQUEST{serial:06d}"
    else:
        obj = detail["object"]
        obj["sequencer"] = f"{int(obj['sequencer'], 16) + serial:018X}"
        if "version-id" in obj:
            obj["version-id"] = f"newVersion{serial:022d}"
    return event


def set_lambda_env(
    monkeypatch: Any,
    *,
    prefix: str = PREFIX,
    suffix: str | None = "",
    bucket: str = BUCKET,
    pipeline: str = PIPELINE,
    manifest_bucket: str | None = MANIFEST_BUCKET,
) -> None:
    """The function's environment as the project stack sets it (``suffix=None``: unset)."""
    monkeypatch.setenv("PIPELINE_NAME", pipeline)
    monkeypatch.setenv("DATA_BUCKET", bucket)
    monkeypatch.setenv("DATA_PREFIX", prefix)
    if manifest_bucket is None:
        monkeypatch.delenv("MANIFEST_BUCKET", raising=False)
    else:
        monkeypatch.setenv("MANIFEST_BUCKET", manifest_bucket)
    monkeypatch.delenv("MANIFEST_PREFIX", raising=False)
    if suffix is None:
        monkeypatch.delenv("DATA_SUFFIX", raising=False)
    else:
        monkeypatch.setenv("DATA_SUFFIX", suffix)


def execution_arn(serial: int = 1, pipeline: str = PIPELINE) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{pipeline}/execution/exec{serial:08d}"


class SageMakerStub:
    """A real boto3 SageMaker client behind botocore's Stubber.

    The client validates every request against the service model before the stub answers; each
    StartPipelineExecution request is also recorded in ``requests``.
    """

    operation = "start_pipeline_execution"

    def __init__(self) -> None:
        # Credentials come from the environment (conftest's fake_aws); a stubbed call never signs anything.
        self.client = boto3.client("sagemaker", region_name=REGION)
        self.requests: list[dict] = []
        self.client.meta.events.register(
            "before-parameter-build.sagemaker.StartPipelineExecution", self._record
        )
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self._served = 0

    def _record(self, params: dict, **_: Any) -> None:
        self.requests.append(copy.deepcopy(params))

    def will_start(self, count: int = 1) -> list[str]:
        arns = []
        for _ in range(count):
            self._served += 1
            arns.append(execution_arn(self._served))
            self.stubber.add_response(self.operation, {"PipelineExecutionArn": arns[-1]})
        return arns

    def will_fail(self, code: str, message: str = "", status: int = 400) -> None:
        self.stubber.add_client_error(self.operation, service_error_code=code, service_message=message,
                                      http_status_code=status)

    def close(self) -> None:
        self.stubber.deactivate()


class S3Stub:
    """A real boto3 S3 client behind botocore's Stubber: records every PutObject request (the manifests)."""

    def __init__(self) -> None:
        self.client = boto3.client("s3", region_name=REGION)
        self.puts: list[dict] = []
        self.client.meta.events.register("before-parameter-build.s3.PutObject", self._record)
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def _record(self, params: dict, **_: Any) -> None:
        self.puts.append(copy.deepcopy(params))

    def will_put(self, count: int = 1) -> None:
        for serial in range(count):
            self.stubber.add_response("put_object", {"ETag": f'"{serial:032x}"'})

    def will_fail(self, code: str, status: int = 403) -> None:
        self.stubber.add_client_error("put_object", service_error_code=code, http_status_code=status)

    def close(self) -> None:
        self.stubber.deactivate()


_MODEL = None


def _operation_input_shape(operation: str = "StartPipelineExecution"):
    global _MODEL
    if _MODEL is None:
        _MODEL = botocore.session.get_session().get_service_model("sagemaker")
    return _MODEL.operation_model(operation).input_shape


def assert_valid_request(params: dict, operation: str = "StartPipelineExecution") -> None:
    """Check ``params`` against the service model's lengths and patterns (which botocore skips)."""
    problems: list[str] = []
    _check(_operation_input_shape(operation), params, operation, problems)
    assert not problems, "request not accepted by the API model:\n" + "\n".join(problems)


def _check(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    if shape.type_name == "structure":
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}.{name}: required")
        for name, item in value.items():
            if name not in shape.members:
                problems.append(f"{path}.{name}: unknown member")
            else:
                _check(shape.members[name], item, f"{path}.{name}", problems)
    elif shape.type_name == "list":
        if not meta.get("min", 0) <= len(value) <= meta.get("max", len(value)):
            problems.append(f"{path}: {len(value)} items, allowed {meta.get('min')}..{meta.get('max')}")
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", problems)
    elif shape.type_name == "string":
        if not meta.get("min", 0) <= len(value) <= meta.get("max", len(value)):
            problems.append(f"{path}: {len(value)} characters, allowed {meta.get('min')}..{meta.get('max')}")
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            problems.append(f"{path}: {value!r} does not match {pattern}")
        if pattern and "." in pattern and any(ch in value for ch in JAVA_LINE_TERMINATORS):
            problems.append(f"{path}: {value!r} holds a line terminator that {pattern} rejects")


# The fields awslambdaric's JsonFormatter (the Python runtime's JSON log format) does not copy from a
# LogRecord; every other attribute, i.e. each ``extra`` field, becomes a key of the JSON line.
_LAMBDA_RESERVED_LOG_FIELDS = {
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
    "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread",
    "threadName", "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
}
_STRICT_JSON = json.JSONEncoder(ensure_ascii=False)  # like the runtime's: no default= fallback


def lambda_json_line(record: Any) -> dict:
    """The JSON object the function's LoggingConfig (LogFormat JSON) writes for ``record``."""
    line = {"level": record.levelname, "message": record.getMessage(), "logger": record.name}
    line.update((k, v) for k, v in vars(record).items() if k not in _LAMBDA_RESERVED_LOG_FIELDS and k not in line)
    return json.loads(_STRICT_JSON.encode({k: v for k, v in line.items() if v is not None}))
