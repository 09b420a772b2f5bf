"""Recording the AWS calls the project's code makes, for the run-time IAM gate (security/runtime_iam).

:func:`recording` patches botocore so that every client created inside it registers a
``before-parameter-build`` handler: each call is kept as (service, operation, parameters) before botocore
sends it, whatever the code under test does with the client (its own sessions, the SageMaker SDK's).
Operations listed in ``deny`` fail with ``AccessDenied`` as IAM would answer, to check that the code
tolerates a denial. Nothing here reaches AWS: the recorded code talks to moto or a local stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import botocore.session
from botocore.exceptions import ClientError

from security.runtime_iam import operations, pipeline_steps
from security.runtime_iam.model import ApiCall
from security.runtime_iam.recordings import Activity

RawCall = tuple[str, str, dict[str, Any]]
PIPELINE_UPSERTS = (("sagemaker", "CreatePipeline"), ("sagemaker", "UpdatePipeline"))


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return f"<{type(value).__name__}>"  # bodies, streams


@contextmanager
def recording(deny: Iterable[tuple[str, str]] = ()) -> Iterator[list[RawCall]]:
    """Record every API call made by clients created inside the block (and deny the ``deny`` ones)."""
    denied = set(deny)
    calls: list[RawCall] = []
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls.append((service_name, model.name, _json_safe(params)))
            if (service_name, model.name) in denied:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied by the IAM gate's test"}},
                                  model.name)

        client.meta.events.register("before-parameter-build", record)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]


def activity(name: str, role: str, raw: Iterable[RawCall | list]) -> Activity:
    """The recorded calls of one activity: reduced to what the operation table reads, first occurrence kept;
    every pipeline definition the activity upserted, reduced to its processing steps."""
    calls: dict[str, ApiCall] = {}
    pipelines: list[dict[str, Any]] = []
    for service, operation, params in raw:
        call = ApiCall(service, operation, params)
        if (service, operation) in PIPELINE_UPSERTS and "PipelineDefinition" in params:
            pipelines.append(pipeline_steps.processing_steps(params["PipelineDefinition"], params["RoleArn"]))
        reduced = operations.reduce(call)  # raises UnknownOperation for a call the table does not know
        calls.setdefault(json.dumps(reduced.to_json(), sort_keys=True), reduced)
    unique_pipelines = {json.dumps(p, sort_keys=True): p for p in pipelines}
    return Activity(name, role, tuple(calls.values()), tuple(unique_pipelines.values()))


def moto_eventbridge_notifications(monkeypatch: Any) -> None:
    """moto 5.2.5 stores a bucket's ``EventBridgeConfiguration`` but leaves it out of
    GetBucketNotificationConfiguration; S3 returns it ("GetBucketNotificationConfiguration", S3 API
    reference). Fixed for one test, so the data-bucket-events function sees what it turned on."""
    from moto.core.responses import ActionResult
    from moto.s3.responses import S3Response

    original = S3Response.get_bucket_notification

    def get_bucket_notification(self: S3Response) -> Any:
        configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
        response = original(self)
        if configuration is None or configuration.event_bridge is None:
            return response
        status, headers, body = response
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        if "<EventBridgeConfiguration" in text:
            return response
        closing = "</NotificationConfiguration>"
        if closing in text:
            return status, headers, text.replace(closing, "<EventBridgeConfiguration/>" + closing)
        return self.serialized(ActionResult({"EventBridgeConfiguration": {}}))

    monkeypatch.setattr(S3Response, "get_bucket_notification", get_bucket_notification)
