"""CloudFormation custom resource ``Custom::DataBucketEvents``: check the watched data bucket and, in the
``S3EventBridge`` trigger mode, turn on the bucket's EventBridge notifications (and off again on delete).

Every project stack creates one. Resource properties (strings, as CloudFormation sends them):

* ``BucketName`` -- the existing, user-owned bucket the project watches;
* ``EnableEventBridge`` -- ``"true"`` in the ``S3EventBridge`` trigger mode, ``"false"`` in ``CloudTrail`` mode;
* ``UploadRuleName`` -- this project's upload rule, so Delete can tell other projects' rules from it.

Create / Update:

1. Find the bucket's Region: HeadBucket's ``x-amz-bucket-region`` header (sent whatever the permissions,
   S3 API reference "HeadBucket"), else GetBucketLocation (``None``/``""`` means us-east-1, ``"EU"`` the
   legacy name of eu-west-1). A missing bucket, a bucket in another Region than the function, or a denied
   call is FAILED with one reason that says what to do. Both trigger modes need the bucket in the stack's
   Region: S3 sends events to EventBridge only in the bucket's Region (S3 User Guide, "Using
   EventBridge") and a single-Region trail logs only its own Region's data events.
2. With ``EnableEventBridge``: read the notification configuration; when ``EventBridgeConfiguration`` is
   there, change nothing. Otherwise write the configuration back unchanged plus ``EventBridgeConfiguration:
   {}``. PutBucketNotificationConfiguration *replaces* the whole configuration (S3 API reference), so the
   SNS/SQS/Lambda configurations read are sent back as they were, with ``SkipDestinationValidation`` so S3
   does not re-test destinations this function did not touch. S3 needs about five minutes before the
   events flow (S3 User Guide, "Enabling Amazon EventBridge").
3. The PhysicalResourceId records what the stack did: ``<bucket>|eventbridge-enabled-by-stack``,
   ``<bucket>|eventbridge-already-on`` or ``<bucket>|checked`` (``<bucket>|not-created`` for a failed
   Create, which CloudFormation then deletes: a no-op). A new id on Update makes CloudFormation delete the
   old one afterwards ("Custom resource response objects"), which is how a changed bucket or a switch to
   CloudTrail mode restores the old bucket. Data attributes: ``BucketRegion``, ``EventBridgeEnabledByStack``.

Delete: only for ``...|eventbridge-enabled-by-stack``, remove ``EventBridgeConfiguration`` again (the rest of
the configuration kept) -- unless another project of this product still relies on it: an EventBridge rule
named ``sagemaker-*-upload`` on the default bus, other than ``UploadRuleName``, whose pattern matches
"Object Created" events of this bucket. Then it stays on and the log names those rules. A bucket that is
gone or already without EventBridge is SUCCESS.

Remaining risks (documented, not solved):

* A consumer *outside* this product (another team's rule, an EventBridge pipe, an archive) that started
  to rely on the bucket's EventBridge notifications after this stack turned them on loses its events when
  the stack is deleted. This function cannot see those consumers; tell bucket owners, or turn the setting
  on yourself before creating the project (then the stack records ``eventbridge-already-on`` and never
  turns it off).
* The configuration is read, then written: a change made by someone else between the two calls is lost
  (S3 has no conditional write for it). The window is a fraction of a second.
* Two projects on one bucket: if the one that turned EventBridge on is deleted first, the other's rule
  keeps it on; the other one recorded ``already-on`` and leaves it on too. The setting then outlives both.
* If the function dies after turning EventBridge on but before responding, Lambda retries the event; the
  retry sees EventBridge on and records ``already-on``. The stack then leaves it on when deleted (the safe
  direction: nobody loses events).

Protocol ("Custom resource request objects" / "Custom resource response objects", AWS CloudFormation User
Guide): the response is an HTTPS PUT of a JSON body (at most 4096 bytes) to the pre-signed ``ResponseURL``
with an empty content type (as AWS's ``cfn-response`` module sends it), retried a few times, and sent before
the function times out: a timer answers FAILED shortly before ``context.get_remaining_time_in_millis()``
runs out. Every failure, expected or not, is answered FAILED with its reason; the handler never raises (a
raise would make Lambda re-run the request). The ResponseURL is a pre-signed URL: only its host is logged.

Logs are plain ``logging`` records with ``extra`` fields; the function's ``LoggingConfig`` (JSON format)
turns them into JSON objects. IAM: s3:ListBucket (HeadBucket), s3:GetBucketLocation,
s3:GetBucketNotification and s3:PutBucketNotification on the data bucket; events:ListRules (no
resource-level permissions: ``*``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger("data_bucket_events")

EVENTBRIDGE = "EventBridgeConfiguration"
ENABLED_BY_STACK = "eventbridge-enabled-by-stack"
ALREADY_ON = "eventbridge-already-on"
CHECKED = "checked"
NOT_CREATED = "not-created"
SEPARATOR = "|"  # never part of a bucket name
UNKNOWN_BUCKET = "data-bucket-events"

# Upload rules of this product's projects: resource prefix + project name + "-upload" (generators/settings.py).
RULE_PREFIX = "sagemaker-"
RULE_SUFFIX = "-upload"
OBJECT_CREATED = "Object Created"

# GetBucketLocation's LocationConstraint -> Region (S3 API reference "GetBucketLocation").
LEGACY_LOCATIONS = {"": "us-east-1", "EU": "eu-west-1"}

# The IAM action behind each API call (Service Authorization Reference, Amazon S3 / Amazon EventBridge).
IAM_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "ListRules": "events:ListRules",
}
DENIED_CODES = frozenset({"403", "AccessDenied", "AccessDeniedException", "Forbidden", "AllAccessDisabled"})
MISSING_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})

RESPONSE_BODY_MAX = 4096  # bytes ("Custom resource response objects")
REASON_MAX = 1500  # characters, before the body limit is applied
SEND_ATTEMPTS = 4
SEND_TIMEOUT = 10.0  # seconds per attempt
SEND_BACKOFF = 1.0  # seconds, doubled after each failed attempt
TIMEOUT_MARGIN = 15.0  # seconds before the function's timeout at which the timer answers FAILED

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=5,
    read_timeout=15,
)

_clients: dict[str, Any] = {}


def _client(service: str) -> Any:
    """One client per service and container, in the function's Region. Tests replace this function."""
    if service not in _clients:
        _clients[service] = boto3.client(service, region_name=home_region(), config=CLIENT_CONFIG)
    return _clients[service]


def home_region() -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise Refusal("AWS_REGION is not set: the Lambda runtime sets it; run the function in Lambda")
    return region


class Refusal(Exception):
    """A failure with a reason written for the person reading the stack events."""


@dataclass(frozen=True)
class Properties:
    bucket: str
    enable_eventbridge: bool
    upload_rule: str

    @classmethod
    def from_event(cls, properties: Any) -> Properties:
        if not isinstance(properties, dict):
            raise Refusal("the request has no ResourceProperties object")
        bucket = properties.get("BucketName")
        if not isinstance(bucket, str) or not bucket.strip() or SEPARATOR in bucket or len(bucket) > 255:
            raise Refusal(f"BucketName {bucket!r} is not a bucket name: pass the DataBucketName parameter")
        flag = properties.get("EnableEventBridge", "false")
        flag_text = str(flag).strip().lower()
        if flag_text not in ("true", "false"):
            raise Refusal(f"EnableEventBridge is {flag!r}, expected \"true\" or \"false\"")
        rule = properties.get("UploadRuleName", "")
        if not isinstance(rule, str):
            raise Refusal(f"UploadRuleName is {rule!r}, expected the project's upload rule name")
        return cls(bucket=bucket.strip(), enable_eventbridge=flag_text == "true", upload_rule=rule)


def physical_id(bucket: str, state: str) -> str:
    return f"{bucket}{SEPARATOR}{state}"


def parse_physical_id(value: Any) -> tuple[str, str]:
    """(bucket, state) of an id this function returned; ("", "") for anything else."""
    if isinstance(value, str) and value.count(SEPARATOR) == 1:
        bucket, state = value.split(SEPARATOR)
        return bucket, state
    return "", ""


def bucket_arn(bucket: str, region: str) -> str:
    try:
        partition = boto3.session.Session().get_partition_for_region(region)
    except Exception:  # noqa: BLE001 -- an unknown Region still gets a readable ARN
        partition = "aws"
    return f"arn:{partition}:s3:::{bucket}"


# --- AWS calls ------------------------------------------------------------------------------------


def _call(operation: str, bucket: str, call: Any, **kwargs: Any) -> Any:
    """Run one API call; a denied call becomes a :class:`Refusal` naming the missing permission."""
    try:
        return call(**kwargs)
    except ClientError as error:
        if error_code(error) in DENIED_CODES:
            raise denied(operation, bucket) from error
        raise


def denied(operation: str, bucket: str) -> Refusal:
    action = IAM_ACTIONS[operation]
    resource = "*" if action.startswith("events:") else bucket_arn(bucket, home_region())
    return Refusal(
        f"access denied: {operation} needs {action} on {resource} for the function's role "
        "(check the role policy, the bucket policy, permissions boundaries and SCPs)"
    )


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _header(response: dict, name: str) -> str | None:
    return response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(name)


def locate_bucket(s3: Any, bucket: str, region: str) -> str:
    """The bucket's Region, which must be ``region``; :class:`Refusal` otherwise."""
    refusal: Refusal | None = None
    try:
        response = s3.head_bucket(Bucket=bucket)
        found = response.get("BucketRegion") or _header(response, "x-amz-bucket-region")
    except ClientError as error:
        code = error_code(error)
        if code in MISSING_BUCKET_CODES:
            raise Refusal(
                f"bucket {bucket} does not exist (or was deleted): the project watches an existing bucket; "
                "check the DataBucketName parameter"
            ) from error
        found = _header(error.response, "x-amz-bucket-region")  # S3 sends it whatever the permissions
        if code in DENIED_CODES:
            refusal = denied("HeadBucket", bucket)
        elif not found or found == region:
            raise
    if not found:
        try:
            found = bucket_location(s3, bucket)
        except Refusal:
            if refusal is not None:
                raise refusal from None
            raise
    if found != region:
        raise Refusal(
            f"bucket {bucket} is in Region {found}; S3 delivers upload events to EventBridge and CloudTrail "
            f"only in the bucket's own Region: create the project in {found}, or watch a bucket in {region}"
        )
    if refusal is not None:
        raise refusal
    return found


def bucket_location(s3: Any, bucket: str) -> str:
    try:
        response = _call("GetBucketLocation", bucket, s3.get_bucket_location, Bucket=bucket)
    except ClientError as error:
        if error_code(error) in MISSING_BUCKET_CODES:
            raise Refusal(f"bucket {bucket} does not exist: check the DataBucketName parameter") from error
        raise
    constraint = response.get("LocationConstraint") or ""
    return LEGACY_LOCATIONS.get(constraint, constraint)


def read_configuration(s3: Any, bucket: str) -> dict[str, Any]:
    """The notification configuration as the API returns it, without the response metadata."""
    response = _call(
        "GetBucketNotificationConfiguration", bucket, s3.get_bucket_notification_configuration, Bucket=bucket
    )
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def write_configuration(s3: Any, bucket: str, configuration: dict[str, Any]) -> None:
    _call(
        "PutBucketNotificationConfiguration",
        bucket,
        s3.put_bucket_notification_configuration,
        Bucket=bucket,
        NotificationConfiguration=configuration,
        SkipDestinationValidation=True,
    )


# --- other projects' rules ------------------------------------------------------------------------


def relying_rules(events: Any, bucket: str, own_rule: str) -> list[str]:
    """Upload rules of other projects of this product that match "Object Created" events of ``bucket``."""
    names = []
    try:
        for page in events.get_paginator("list_rules").paginate(NamePrefix=RULE_PREFIX):
            for rule in page.get("Rules", []):
                name = rule.get("Name", "")
                if name == own_rule or not name.endswith(RULE_SUFFIX):
                    continue
                if pattern_watches(rule.get("EventPattern"), bucket):
                    names.append(name)
    except ClientError as error:
        if error_code(error) in DENIED_CODES:
            raise denied("ListRules", bucket) from error
        raise
    return sorted(names)


def pattern_watches(pattern_text: Any, bucket: str) -> bool:
    """Whether an event pattern can match S3 "Object Created" events of ``bucket``.

    Conservative: a pattern this function cannot read or evaluate counts as watching (keeping EventBridge
    on is harmless; turning it off under a rule that needs it silently stops that project).
    """
    if not isinstance(pattern_text, str) or not pattern_text:
        return False  # a scheduled rule: no event pattern
    try:
        pattern = json.loads(pattern_text)
    except ValueError:
        return True
    if not isinstance(pattern, dict):
        return True
    return (
        _path_matches(pattern, ("source",), "aws.s3")
        and _path_matches(pattern, ("detail-type",), OBJECT_CREATED)
        and _path_matches(pattern, ("detail", "bucket", "name"), bucket)
    )


def _path_matches(pattern: Any, path: tuple[str, ...], value: str) -> bool:
    node = pattern
    for key in path:
        if not isinstance(node, dict) or "$or" in node:
            return True
        if key not in node:
            return True  # no filter on this field
        node = node[key]
    if not isinstance(node, list):
        return True
    return any(_matcher_matches(matcher, value) for matcher in node)


def _matcher_matches(matcher: Any, value: str) -> bool:
    if isinstance(matcher, str):
        return matcher == value
    if not isinstance(matcher, dict) or len(matcher) != 1:
        return not isinstance(matcher, int | float | bool) and matcher is not None
    operator, operand = next(iter(matcher.items()))
    if not isinstance(operand, str | list):
        return True
    if operator == "prefix" and isinstance(operand, str):
        return value.startswith(operand)
    if operator == "suffix" and isinstance(operand, str):
        return value.endswith(operand)
    if operator == "equals-ignore-case" and isinstance(operand, str):
        return value.lower() == operand.lower()
    if operator == "wildcard" and isinstance(operand, str):
        return _wildcard(operand).fullmatch(value) is not None
    if operator == "anything-but":
        excluded = operand if isinstance(operand, list) else [operand]
        return value not in excluded
    return operator != "numeric"  # a bucket name is a string; any other operator: assume it matches


def _wildcard(expression: str) -> re.Pattern[str]:
    """EventBridge wildcard: ``*`` matches any run of characters, ``\\*`` a literal star."""
    parts = re.split(r"(\\\*|\*)", expression)
    return re.compile("".join(".*" if p == "*" else re.escape("*" if p == "\\*" else p) for p in parts), re.DOTALL)


# --- the operations -------------------------------------------------------------------------------


@dataclass
class Outcome:
    physical_id: str
    reason: str = ""
    data: dict[str, str] | None = None


def create_or_update(props: Properties, previous_id: str | None = None) -> Outcome:
    region = home_region()
    s3 = _client("s3")
    locate_bucket(s3, props.bucket, region)
    enabled_by_stack = False
    if not props.enable_eventbridge:
        state, reason = CHECKED, f"bucket {props.bucket} is in {region}; EventBridge notifications not managed"
        logger.info("Bucket checked", extra={"bucket": props.bucket, "bucket_region": region, "state": state})
    else:
        configuration = read_configuration(s3, props.bucket)
        previous_bucket, previous_state = parse_physical_id(previous_id)
        if EVENTBRIDGE not in configuration:
            write_configuration(s3, props.bucket, {**configuration, EVENTBRIDGE: {}})
            state, enabled_by_stack = ENABLED_BY_STACK, True
            reason = f"EventBridge notifications turned on for bucket {props.bucket} by this stack"
            logger.info(
                "EventBridge notifications turned on",
                extra={"bucket": props.bucket, "bucket_region": region, "state": state,
                       "kept_configurations": sorted(configuration)},
            )
        elif previous_bucket == props.bucket and previous_state == ENABLED_BY_STACK:
            state, enabled_by_stack = ENABLED_BY_STACK, True  # still ours from an earlier Create/Update
            reason = f"EventBridge notifications on bucket {props.bucket} stay on (turned on by this stack)"
            logger.info("EventBridge notifications already on (by this stack)",
                        extra={"bucket": props.bucket, "bucket_region": region, "state": state})
        else:
            state = ALREADY_ON
            reason = f"EventBridge notifications were already on for bucket {props.bucket}; left as they are"
            logger.info("EventBridge notifications already on: nothing changed",
                        extra={"bucket": props.bucket, "bucket_region": region, "state": state})
    return Outcome(
        physical_id=physical_id(props.bucket, state),
        reason=reason,
        data={"BucketRegion": region, "EventBridgeEnabledByStack": "true" if enabled_by_stack else "false"},
    )


def delete(resource_id: Any, properties: Any) -> Outcome:
    bucket, state = parse_physical_id(resource_id)
    keep_id = resource_id if isinstance(resource_id, str) and resource_id else physical_id(UNKNOWN_BUCKET, CHECKED)
    if state != ENABLED_BY_STACK:
        logger.info("Nothing to restore", extra={"physical_resource_id": keep_id, "state": state or None})
        return Outcome(keep_id, "nothing to restore")
    own_rule = properties.get("UploadRuleName", "") if isinstance(properties, dict) else ""
    s3 = _client("s3")
    try:
        configuration = read_configuration(s3, bucket)
    except ClientError as error:
        if error_code(error) in MISSING_BUCKET_CODES:
            logger.info("Bucket is gone: nothing to restore", extra={"bucket": bucket})
            return Outcome(keep_id, f"bucket {bucket} no longer exists")
        raise
    if EVENTBRIDGE not in configuration:
        logger.info("EventBridge notifications already off", extra={"bucket": bucket})
        return Outcome(keep_id, f"EventBridge notifications already off for bucket {bucket}")
    others = relying_rules(_client("events"), bucket, own_rule if isinstance(own_rule, str) else "")
    if others:
        logger.info(
            "EventBridge notifications left on: other projects' upload rules watch the bucket",
            extra={"bucket": bucket, "relying_rules": others},
        )
        return Outcome(keep_id, f"EventBridge notifications left on for bucket {bucket}: used by {', '.join(others)}")
    remaining = {key: value for key, value in configuration.items() if key != EVENTBRIDGE}
    try:
        write_configuration(s3, bucket, remaining)
    except ClientError as error:
        if error_code(error) in MISSING_BUCKET_CODES:
            return Outcome(keep_id, f"bucket {bucket} no longer exists")
        raise
    logger.info("EventBridge notifications turned off again",
                extra={"bucket": bucket, "kept_configurations": sorted(remaining)})
    return Outcome(keep_id, f"EventBridge notifications turned off again for bucket {bucket}")


# --- responding -----------------------------------------------------------------------------------


def response_body(event: dict, status: str, outcome: Outcome) -> bytes:
    """The JSON response, its Reason shortened until the body fits in 4096 bytes."""
    reason = outcome.reason[:REASON_MAX]
    while True:
        body = {
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": outcome.physical_id,
            "StackId": event.get("StackId", ""),
            "RequestId": event.get("RequestId", ""),
            "LogicalResourceId": event.get("LogicalResourceId", ""),
            "Data": outcome.data or {},
        }
        encoded = json.dumps(body).encode("utf-8")
        if len(encoded) <= RESPONSE_BODY_MAX or not reason:
            return encoded
        reason = reason[: max(0, len(reason) - (len(encoded) - RESPONSE_BODY_MAX) - 3)] + "..."
        if len(reason) <= 3:
            reason = ""


class Responder:
    """Sends the one response of a request: the outcome, or FAILED from the timer when time runs out."""

    def __init__(self, event: dict, context: Any) -> None:
        self.event = event
        self.url = event["ResponseURL"]
        self.host = urllib.parse.urlsplit(self.url).hostname or "?"
        self._lock = threading.Lock()
        self._sent = False
        stream = getattr(context, "log_stream_name", None)
        self.log_stream = stream if isinstance(stream, str) else ""
        remaining = _remaining_seconds(context)
        self.deadline = time.monotonic() + (remaining - 0.5 if remaining is not None else 300.0)
        self._timer: threading.Timer | None = None
        if remaining is not None:
            self._timer = threading.Timer(max(remaining - TIMEOUT_MARGIN, remaining / 2), self._time_out)
            self._timer.daemon = True
            self._timer.start()

    def _time_out(self) -> None:
        logger.error("The request is about to time out: answering FAILED", extra={"outcome": "timeout"})
        self.send("FAILED", Outcome(self.failure_id(), "the function ran out of time (see its log)"))

    def failure_id(self) -> str:
        """The id a FAILED response keeps: the current one, or a Create id that Delete ignores."""
        current = self.event.get("PhysicalResourceId")
        if isinstance(current, str) and current:
            return current
        props = self.event.get("ResourceProperties")
        bucket = props.get("BucketName") if isinstance(props, dict) else None
        if not isinstance(bucket, str) or not bucket or SEPARATOR in bucket or len(bucket) > 255:
            bucket = UNKNOWN_BUCKET
        return physical_id(bucket, NOT_CREATED)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def wait(self) -> None:
        """Let a response the timer is still sending finish before the handler returns (and Lambda freezes)."""
        if self._timer is not None and self._timer.is_alive():
            self._timer.join(max(0.0, self.deadline - time.monotonic()))

    def send(self, status: str, outcome: Outcome) -> bool:
        with self._lock:
            if self._sent:
                logger.warning("Response already sent; this %s result is dropped", status,
                               extra={"outcome": "late", "status": status, "reason": outcome.reason})
                return False
            self._sent = True
        if status == "FAILED" and self.log_stream:
            outcome.reason += f" (log stream {self.log_stream})"
        body = response_body(self.event, status, outcome)
        fields = {"status": status, "physical_resource_id": outcome.physical_id, "reason": outcome.reason,
                  "response_host": self.host}
        delay = SEND_BACKOFF
        for attempt in range(1, SEND_ATTEMPTS + 1):
            timeout = min(SEND_TIMEOUT, self.deadline - time.monotonic())
            if timeout <= 0:
                break
            # The scheme was checked in lambda_handler (http or https only).
            request = urllib.request.Request(  # noqa: S310
                self.url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
                    reply.read()
                logger.info("Response sent", extra={**fields, "attempts": attempt})
                return True
            except urllib.error.HTTPError as error:
                problem = f"HTTP {error.code}"
                if 400 <= error.code < 500 and error.code != 429:
                    logger.error("The response URL refused the response (%s)", problem,
                                 extra={**fields, "attempts": attempt})
                    return False
            except (urllib.error.URLError, OSError) as error:  # connection failures, timeouts
                problem = type(error).__name__
            logger.warning("Sending the response failed (%s), attempt %d of %d", problem, attempt, SEND_ATTEMPTS,
                           extra={**fields, "attempts": attempt})
            if attempt < SEND_ATTEMPTS:
                time.sleep(max(0.0, min(delay, self.deadline - time.monotonic())))
                delay *= 2
        logger.error("Could not send the response: CloudFormation will time out the request",
                     extra={**fields, "outcome": "unsent"})
        return False


def _remaining_seconds(context: Any) -> float | None:
    try:
        return float(context.get_remaining_time_in_millis()) / 1000.0
    except Exception:  # noqa: BLE001 -- no Lambda context (tests, local runs)
        return None


# --- the handler ----------------------------------------------------------------------------------


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    url = event.get("ResponseURL") if isinstance(event, dict) else None
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        keys = sorted(map(str, event)) if isinstance(event, dict) else type(event).__name__
        logger.error("Not a CloudFormation custom resource request (no http(s) ResponseURL): nobody to answer",
                     extra={"outcome": "malformed", "event_keys": keys})
        return {"status": "malformed"}
    request_type = event.get("RequestType")
    fields = {
        "request_type": request_type,
        "stack_id": event.get("StackId"),
        "request_id": event.get("RequestId"),
        "logical_resource_id": event.get("LogicalResourceId"),
        "physical_resource_id": event.get("PhysicalResourceId"),
        "resource_properties": _safe_properties(event.get("ResourceProperties")),
    }
    logger.info("Custom resource request", extra=fields)
    responder = Responder(event, context)
    status = "FAILED"
    try:
        outcome = _dispatch(event, request_type)
        status = "SUCCESS"
    except Refusal as refusal:
        outcome = Outcome(responder.failure_id(), str(refusal))
        logger.error("Request refused: %s", refusal, extra={**fields, "outcome": "refused"})
    except (ClientError, BotoCoreError) as error:
        outcome = Outcome(responder.failure_id(), f"AWS call failed: {error}")
        logger.error("AWS call failed: %s", error, extra={**fields, "outcome": "failed"})
    except Exception as error:  # noqa: BLE001 -- every failure is answered, never raised
        outcome = Outcome(responder.failure_id(), f"unexpected error: {type(error).__name__}: {error}")
        logger.exception("Unexpected error", extra={**fields, "outcome": "error"})
    responder.cancel()
    sent = responder.send(status, outcome)
    responder.wait()
    return {"status": status, "physicalResourceId": outcome.physical_id, "reason": outcome.reason, "sent": sent}


def _dispatch(event: dict, request_type: Any) -> Outcome:
    if request_type == "Delete":
        return delete(event.get("PhysicalResourceId"), event.get("ResourceProperties"))
    if request_type == "Create":
        return create_or_update(Properties.from_event(event.get("ResourceProperties")))
    if request_type == "Update":
        return create_or_update(Properties.from_event(event.get("ResourceProperties")),
                                event.get("PhysicalResourceId"))
    raise Refusal(f"RequestType {request_type!r} is not Create, Update or Delete")


def _safe_properties(properties: Any) -> Any:
    """The resource properties for the log (they hold no secrets; ServiceToken is a function ARN)."""
    if not isinstance(properties, dict):
        return None
    return {key: value for key, value in properties.items() if isinstance(value, str) and len(value) <= 512}
