"""The ``Custom::DataBucketEvents`` custom resource: checks the data bucket's Region and turns the bucket's
EventBridge notifications on (S3EventBridge mode) and off again on delete, merging with what is there.

``lambda_handler`` is called directly with CloudFormation request events (``tests/events/custom-resource-*``);
a small HTTP server on 127.0.0.1 stands in for the pre-signed ``ResponseURL`` and records each PUT.

Stand-ins: moto 5.2.5 stores ``EventBridgeConfiguration`` on PutBucketNotificationConfiguration but leaves it
out of GetBucketNotificationConfiguration (``moto/s3/responses.py``, ``get_bucket_notification`` builds only
the Topic/Queue/LambdaFunction lists), so every test that needs S3 to *report* EventBridge as on uses a real
boto3 client behind botocore's Stubber (requests validated against the S3 model, the PUT compared with
``expected_params`` exactly). moto serves the rest: bucket Regions, missing buckets, the stored configuration
after an enable, and EventBridge ListRules.

AWS documents modelled here:
- "Custom resource request objects" / "Custom resource response objects" (AWS CloudFormation User Guide):
  request fields, response fields copied from the request, body <= 4096 bytes, a changed PhysicalResourceId
  on Update makes CloudFormation delete the old one;
- "cfn-response module" (AWS CloudFormation User Guide): the response is a PUT with an empty content type;
- S3 API reference "PutBucketNotificationConfiguration": the call replaces the whole configuration;
  ``SkipDestinationValidation`` (header ``x-amz-skip-destination-validation``, botocore's S3 model);
- S3 API reference "HeadBucket": ``x-amz-bucket-region`` is returned whatever the permissions; missing bucket
  404, denied 403 (no body); "GetBucketLocation": us-east-1 has no LocationConstraint, ``EU`` is eu-west-1;
- S3 User Guide "Using EventBridge": events are delivered in the bucket's Region only;
- EventBridge API reference "ListRules": at most 100 rules per page, ``NextToken``; the Rule object carries
  ``EventPattern``.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from lambda_support import lambda_json_line
from loading import load_event, load_module
from moto import mock_aws
from troposphere import encode_to_dict

from generators import event_patterns
from generators.cfn_resolve import resolve
from generators.products import products

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_PATH = REPO_ROOT / "lambda_functions" / "data_bucket_events" / "app.py"
LOGGER_NAME = "data_bucket_events"
REGION = "eu-west-1"  # conftest's AWS_REGION: the function's Region
MOTO_ACCOUNT = "123456789012"
BUCKET = "amzn-s3-demo-bucket"  # the fixtures' BucketName
NEW_BUCKET = "amzn-s3-demo-bucket-2"
OWN_RULE = "sagemaker-demo-upload"  # the fixtures' UploadRuleName
SIGNATURE = "6a1d5d3b0c4e8f2a9b7c1d0e3f5a7b9c2d4e6f8a0b1c3d5e7f9a2b4c6d8e0f1a"  # in the fixtures' ResponseURL
PUT_ARGS = {"SkipDestinationValidation": True}

# A configuration as GetBucketNotificationConfiguration returns it (S3 returns filter rule names capitalised).
EXISTING = {
    "TopicConfigurations": [
        {
            "Id": "audit-deletes",
            "TopicArn": "arn:aws:sns:eu-west-1:111122223333:audit",
            "Events": ["s3:ObjectRemoved:*"],
        }
    ],
    "QueueConfigurations": [
        {
            "Id": "ingest-queue",
            "QueueArn": "arn:aws:sqs:eu-west-1:111122223333:ingest",
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "raw/"}]}},
        }
    ],
    "LambdaFunctionConfigurations": [
        {
            "Id": "thumbnails",
            "LambdaFunctionArn": "arn:aws:lambda:eu-west-1:111122223333:function:thumbnails",
            "Events": ["s3:ObjectCreated:Put"],
            "Filter": {"Key": {"FilterRules": [{"Name": "Suffix", "Value": ".jpg"}]}},
        }
    ],
}


# --- fixtures -------------------------------------------------------------------------------------


class ResponseServer:
    """The pre-signed response URL: records every request; answers the queued statuses, then 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 -- http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.requests.append({"method": "PUT", "path": self.path, "headers": self.headers, "body": body})
                self.send_response(server.statuses.pop(0) if server.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def local(self, url: str) -> str:
        """``url`` with CloudFormation's host replaced by this server (path and signed query kept)."""
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(("http", f"127.0.0.1:{self.httpd.server_port}", parts.path, parts.query, ""))

    def only_response(self) -> dict:
        assert len(self.requests) == 1, [json.loads(r["body"]) for r in self.requests]
        return json.loads(self.requests[0]["body"])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeContext:
    """The Lambda context parts the handler uses."""

    log_stream_name = "2026/01/15/[$LATEST]0123456789abcdef0123456789abcdef"

    def __init__(self, seconds: float = 120.0) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class S3Stub:
    """A real S3 client behind botocore's Stubber; unexpected calls fail the request."""

    def __init__(self) -> None:
        self.client = boto3.client("s3", region_name=REGION)
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def head(self, region: str = REGION, bucket: str = BUCKET) -> None:
        self.stubber.add_response("head_bucket", {"BucketRegion": region}, {"Bucket": bucket})

    def head_error(self, status: int, region: str | None, bucket: str = BUCKET) -> None:
        headers = {"x-amz-bucket-region": region} if region else {}
        self.stubber.add_client_error("head_bucket", service_error_code=str(status), http_status_code=status,
                                      response_meta={"HTTPHeaders": headers}, expected_params={"Bucket": bucket})

    def get(self, configuration: dict, bucket: str = BUCKET) -> None:
        self.stubber.add_response("get_bucket_notification_configuration", copy.deepcopy(configuration),
                                  {"Bucket": bucket})

    def put(self, configuration: dict, bucket: str = BUCKET) -> None:
        self.stubber.add_response("put_bucket_notification_configuration", {},
                                  {"Bucket": bucket, "NotificationConfiguration": configuration, **PUT_ARGS})

    def error(self, method: str, code: str, status: int) -> None:
        self.stubber.add_client_error(method, service_error_code=code, http_status_code=status)

    def done(self) -> None:
        self.stubber.assert_no_pending_responses()
        self.stubber.deactivate()


class EventsStub:
    def __init__(self) -> None:
        self.client = boto3.client("events", region_name=REGION)
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def rules(self, rules: list[dict], next_page: str | None = None, page: str | None = None) -> None:
        """One ListRules page; ``next_page`` is the NextToken it returns, ``page`` the one it was asked for."""
        response: dict = {"Rules": rules}
        if next_page:
            response["NextToken"] = next_page
        expected = {"NamePrefix": "sagemaker-", **({"NextToken": page} if page else {})}
        self.stubber.add_response("list_rules", response, expected)

    def done(self) -> None:
        self.stubber.assert_no_pending_responses()
        self.stubber.deactivate()


@pytest.fixture
def app(monkeypatch):
    module = load_module("data_bucket_events_app", APP_PATH)
    monkeypatch.setattr(module, "_clients", {})
    return module


@pytest.fixture
def server(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    instance = ResponseServer()
    yield instance
    instance.close()


@pytest.fixture
def s3():
    stub = S3Stub()
    yield stub
    stub.done()


@pytest.fixture
def events():
    stub = EventsStub()
    yield stub
    stub.done()


@pytest.fixture
def stubbed(app, monkeypatch, s3, events):
    """The handler's clients are the stubbed ones."""
    clients = {"s3": s3.client, "events": events.client}
    monkeypatch.setattr(app, "_client", clients.__getitem__)
    return clients


@pytest.fixture
def moto(app, monkeypatch):
    with mock_aws():
        clients = {"s3": boto3.client("s3", region_name=REGION), "events": boto3.client("events", region_name=REGION)}
        monkeypatch.setattr(app, "_client", clients.__getitem__)
        yield clients


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    return lambda: [r for r in caplog.records if r.name == LOGGER_NAME]


def request(server: ResponseServer, fixture: str, **changes) -> dict:
    """A fixture event answered by ``server``; ``properties`` updates ResourceProperties."""
    event = load_event(fixture)
    event["ResponseURL"] = server.local(event["ResponseURL"])
    event["ResourceProperties"].update(changes.pop("properties", {}))
    event.update(changes)
    return event


def handle(app, event: dict, context: FakeContext | None = None) -> dict:
    return app.lambda_handler(event, context or FakeContext())


def upload_rule(name: str, bucket: str = BUCKET, *, cloudtrail: bool = False, suffix: str = "") -> dict:
    """An upload rule as a project stack of this product creates it (its real pattern, resolved)."""
    parameters = {"DataBucketName": bucket, "DataPrefix": "incoming/", "DataSuffix": suffix}
    conditions = {"UseCloudTrail": cloudtrail, "HasDataSuffix": bool(suffix)}
    pattern = resolve(encode_to_dict(event_patterns.upload_pattern()), parameters, conditions)
    return {"Name": name, "Arn": f"arn:aws:events:{REGION}:111122223333:rule/{name}",
            "EventPattern": json.dumps(pattern), "State": "ENABLED", "EventBusName": "default"}


# --- Create ---------------------------------------------------------------------------------------


def test_create_enables_eventbridge_and_keeps_every_existing_configuration(app, server, s3, stubbed, logs):
    """PutBucketNotificationConfiguration replaces the configuration: the PUT must carry the topic, queue
    and Lambda configurations exactly as read, plus EventBridgeConfiguration (Stubber compares exactly)."""
    s3.head()
    s3.get(EXISTING)
    s3.put({**EXISTING, "EventBridgeConfiguration": {}})

    result = handle(app, request(server, "custom-resource-create.json"))

    response = server.only_response()
    assert response["Status"] == "SUCCESS", response
    assert response["PhysicalResourceId"] == f"{BUCKET}|eventbridge-enabled-by-stack"
    assert response["Data"] == {"BucketRegion": REGION, "EventBridgeEnabledByStack": "true"}
    assert result["sent"] is True
    for record in logs():
        lambda_json_line(record)  # every log line is valid JSON under the function's LoggingConfig


def test_create_on_moto_stores_eventbridge_and_keeps_queue_and_lambda_configurations(app, server, moto):
    """The same enable against moto's S3: the request serialises (SkipDestinationValidation header
    included) and the bucket keeps its SQS and Lambda configurations."""
    client = moto["s3"]
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="ingest")["QueueUrl"]
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"Id": "ingest-queue", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}],
        "LambdaFunctionConfigurations": [{
            "Id": "thumbnails", "Events": ["s3:ObjectCreated:Put"],
            "LambdaFunctionArn": f"arn:aws:lambda:{REGION}:{MOTO_ACCOUNT}:function:thumbnails"}],
    })
    before = client.get_bucket_notification_configuration(Bucket=BUCKET)
    before.pop("ResponseMetadata")

    handle(app, request(server, "custom-resource-create.json"))

    assert server.only_response()["Status"] == "SUCCESS"
    after = client.get_bucket_notification_configuration(Bucket=BUCKET)
    after.pop("ResponseMetadata")
    assert after == before
    from moto.s3.models import s3_backends

    stored = s3_backends[MOTO_ACCOUNT]["aws"].buckets[BUCKET].notification_configuration
    assert stored.event_bridge == {}  # what moto's GET does not show


def test_create_when_eventbridge_is_already_on_changes_nothing(app, server, s3, stubbed):
    """No PUT at all: the Stubber has none queued, so a PUT would fail the request."""
    s3.head()
    s3.get({**EXISTING, "EventBridgeConfiguration": {}})
    puts = []
    s3.client.meta.events.register("before-call.s3.PutBucketNotificationConfiguration",
                                   lambda **kwargs: puts.append(kwargs))

    handle(app, request(server, "custom-resource-create.json"))

    response = server.only_response()
    assert response["Status"] == "SUCCESS", response
    assert puts == []
    assert response["PhysicalResourceId"] == f"{BUCKET}|eventbridge-already-on"
    assert response["Data"]["EventBridgeEnabledByStack"] == "false"


def test_create_in_cloudtrail_mode_only_checks_the_bucket(app, server, s3, stubbed):
    s3.head()

    handle(app, request(server, "custom-resource-create.json", properties={"EnableEventBridge": "false"}))

    response = server.only_response()
    assert response["Status"] == "SUCCESS", response
    assert response["PhysicalResourceId"] == f"{BUCKET}|checked"
    assert response["Data"] == {"BucketRegion": REGION, "EventBridgeEnabledByStack": "false"}


def test_bucket_in_another_region_fails_naming_both_regions(app, server, moto):
    """S3 delivers EventBridge events in the bucket's Region only ("Using EventBridge"); a single-Region
    trail logs only its Region: a project in eu-west-1 would never see uploads to a us-west-2 bucket."""
    boto3.client("s3", region_name="us-west-2").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})

    handle(app, request(server, "custom-resource-create.json"))

    response = server.only_response()
    assert response["Status"] == "FAILED"
    assert f"bucket {BUCKET} is in Region us-west-2" in response["Reason"]
    assert "create the project in us-west-2, or watch a bucket in eu-west-1" in response["Reason"]
    assert response["PhysicalResourceId"] == f"{BUCKET}|not-created"  # Delete treats it as a no-op


def test_missing_bucket_fails_clearly(app, server, moto):
    handle(app, request(server, "custom-resource-create.json"))

    response = server.only_response()
    assert response["Status"] == "FAILED"
    assert f"bucket {BUCKET} does not exist" in response["Reason"]
    assert "DataBucketName" in response["Reason"]


def test_us_east_1_bucket_without_region_header_uses_get_bucket_location(app, server, moto, monkeypatch):
    """GetBucketLocation returns no LocationConstraint (botocore: None) for us-east-1 buckets. The header is
    stripped from HeadBucket's answer so the fallback runs against moto's real GetBucketLocation."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    assert client.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] is None
    calls = []

    def strip_region(parsed, **_):
        parsed.pop("BucketRegion", None)
        parsed["ResponseMetadata"]["HTTPHeaders"].pop("x-amz-bucket-region", None)

    client.meta.events.register("after-call.s3.HeadBucket", strip_region)
    client.meta.events.register("before-call.s3.GetBucketLocation", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(app, "_client", {"s3": client}.__getitem__)

    handle(app, request(server, "custom-resource-create.json", properties={"EnableEventBridge": "false"}))

    response = server.only_response()
    assert response["Status"] == "SUCCESS", response
    assert response["Data"]["BucketRegion"] == "us-east-1"
    assert len(calls) == 1


def test_legacy_eu_location_is_eu_west_1(app, server, s3, stubbed):
    s3.stubber.add_response("head_bucket", {}, {"Bucket": BUCKET})  # no x-amz-bucket-region header
    s3.stubber.add_response("get_bucket_location", {"LocationConstraint": "EU"}, {"Bucket": BUCKET})

    handle(app, request(server, "custom-resource-create.json", properties={"EnableEventBridge": "false"}))

    assert server.only_response()["Data"]["BucketRegion"] == "eu-west-1"


def test_head_bucket_denied_names_the_missing_permission(app, server, s3, stubbed):
    """HeadBucket needs s3:ListBucket; a denied HEAD is a bare 403 that still carries the Region header."""
    s3.head_error(403, REGION)

    handle(app, request(server, "custom-resource-create.json"))

    reason = server.only_response()["Reason"]
    assert "s3:ListBucket" in reason and f"arn:aws:s3:::{BUCKET}" in reason


def test_denied_head_bucket_in_another_region_reports_the_region(app, server, s3, stubbed):
    s3.head_error(403, "ap-southeast-2")

    handle(app, request(server, "custom-resource-create.json"))

    reason = server.only_response()["Reason"]
    assert "is in Region ap-southeast-2" in reason


@pytest.mark.parametrize(
    ("failing", "permission"),
    [
        ("get_bucket_notification_configuration", "s3:GetBucketNotification"),
        ("put_bucket_notification_configuration", "s3:PutBucketNotification"),
    ],
)
def test_notification_calls_denied_name_the_missing_permission(app, server, s3, stubbed, failing, permission):
    s3.head()
    if failing.startswith("put"):
        s3.get({})
    s3.error(failing, "AccessDenied", 403)

    handle(app, request(server, "custom-resource-create.json"))

    response = server.only_response()
    assert response["Status"] == "FAILED"
    assert permission in response["Reason"] and f"arn:aws:s3:::{BUCKET}" in response["Reason"]
    assert FakeContext.log_stream_name in response["Reason"]


@pytest.mark.parametrize("value", ["yes", "", "1"])
def test_invalid_enable_flag_fails(app, server, s3, stubbed, value):
    handle(app, request(server, "custom-resource-create.json", properties={"EnableEventBridge": value}))

    assert "EnableEventBridge" in server.only_response()["Reason"]


# --- Update ---------------------------------------------------------------------------------------


def test_update_to_a_new_bucket_returns_a_new_id_and_the_old_bucket_is_restored(app, server, s3, events, stubbed):
    """A new PhysicalResourceId makes CloudFormation send Delete for the old one after the update
    ("Custom resource response objects"): that Delete turns EventBridge off on the old bucket."""
    s3.head(bucket=NEW_BUCKET)
    s3.get({}, bucket=NEW_BUCKET)
    s3.put({"EventBridgeConfiguration": {}}, bucket=NEW_BUCKET)
    update = request(server, "custom-resource-update.json", properties={"BucketName": NEW_BUCKET})

    handle(app, update)

    response = server.only_response()
    assert response["Status"] == "SUCCESS", response
    assert response["PhysicalResourceId"] == f"{NEW_BUCKET}|eventbridge-enabled-by-stack"

    # CloudFormation's cleanup: Delete of the old resource (old id).
    server.requests.clear()
    s3.get({**EXISTING, "EventBridgeConfiguration": {}})
    events.rules([upload_rule(OWN_RULE, NEW_BUCKET)])
    s3.put(EXISTING)
    handle(app, request(server, "custom-resource-delete.json", properties={"BucketName": NEW_BUCKET}))

    assert server.only_response()["Status"] == "SUCCESS"


def test_update_of_a_bucket_this_stack_enabled_keeps_its_id(app, server, s3, stubbed):
    """EventBridge is on because of this stack's Create: the id stays 'enabled-by-stack', no PUT."""
    s3.head()
    s3.get({"EventBridgeConfiguration": {}})

    handle(app, request(server, "custom-resource-update.json"))

    response = server.only_response()
    assert response["PhysicalResourceId"] == f"{BUCKET}|eventbridge-enabled-by-stack"
    assert response["Data"]["EventBridgeEnabledByStack"] == "true"


def test_update_to_cloudtrail_mode_hands_the_restore_to_the_old_ids_delete(app, server, s3, stubbed):
    s3.head()

    handle(app, request(server, "custom-resource-update.json", properties={"EnableEventBridge": "false"}))

    assert server.only_response()["PhysicalResourceId"] == f"{BUCKET}|checked"


def test_failed_update_keeps_the_current_id(app, server, moto):
    """A FAILED update must not look like a replacement: the response keeps the request's id."""
    handle(app, request(server, "custom-resource-update.json", properties={"BucketName": NEW_BUCKET}))

    response = server.only_response()
    assert response["Status"] == "FAILED"
    assert response["PhysicalResourceId"] == f"{BUCKET}|eventbridge-enabled-by-stack"


# --- Delete ---------------------------------------------------------------------------------------


def test_delete_turns_eventbridge_off_and_keeps_the_rest(app, server, s3, events, stubbed):
    """Own rule, a CloudTrail-mode project on the same bucket and a project on another bucket do not
    need the bucket's EventBridge notifications: they go, every other configuration stays."""
    s3.get({**EXISTING, "EventBridgeConfiguration": {}})
    events.rules([
        upload_rule(OWN_RULE),
        upload_rule("sagemaker-trail-project-upload", cloudtrail=True),
        upload_rule("sagemaker-elsewhere-upload", "amzn-s3-demo-bucket-other"),
        {"Name": "sagemaker-nightly-repo-change", "Arn": "arn:aws:events:eu-west-1:111122223333:rule/x",
         "EventPattern": json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"]})},
    ])
    s3.put(EXISTING)

    handle(app, request(server, "custom-resource-delete.json"))

    response = server.only_response()
    assert response["Status"] == "SUCCESS", response
    assert response["PhysicalResourceId"] == f"{BUCKET}|eventbridge-enabled-by-stack"


def test_delete_keeps_eventbridge_while_another_project_watches_the_bucket(app, server, s3, events, stubbed, logs):
    """ListRules pages hold at most 100 rules: the other project's rule is on the second page."""
    s3.get({"EventBridgeConfiguration": {}})
    events.rules([upload_rule(OWN_RULE)], next_page="page-2")
    events.rules([upload_rule("sagemaker-other-team-upload", suffix=".csv")], page="page-2")
    puts = []
    s3.client.meta.events.register("before-call.s3.PutBucketNotificationConfiguration",
                                   lambda **kwargs: puts.append(kwargs))

    handle(app, request(server, "custom-resource-delete.json"))

    response = server.only_response()
    assert response["Status"] == "SUCCESS", response
    assert puts == []
    assert "sagemaker-other-team-upload" in response["Reason"]
    assert any(getattr(r, "relying_rules", None) == ["sagemaker-other-team-upload"] for r in logs())


def test_delete_keeps_eventbridge_for_a_rule_found_through_moto(app, server, moto, monkeypatch):
    """The same decision with the rules served by moto's EventBridge (real ListRules pagination code)."""
    for name in (OWN_RULE, "sagemaker-other-upload"):
        rule = upload_rule(name)
        moto["events"].put_rule(Name=name, EventPattern=rule["EventPattern"], State="ENABLED")
    s3 = S3Stub()
    s3.get({"EventBridgeConfiguration": {}})
    monkeypatch.setattr(app, "_client", {"s3": s3.client, "events": moto["events"]}.__getitem__)

    handle(app, request(server, "custom-resource-delete.json"))

    assert "sagemaker-other-upload" in server.only_response()["Reason"]
    s3.done()


def test_delete_when_the_bucket_is_gone_succeeds(app, server, moto):
    handle(app, request(server, "custom-resource-delete.json"))

    response = server.only_response()
    assert response["Status"] == "SUCCESS", response
    assert "no longer exists" in response["Reason"]


def test_delete_when_eventbridge_is_already_off_succeeds_without_writing(app, server, s3, stubbed):
    s3.get(EXISTING)

    handle(app, request(server, "custom-resource-delete.json"))

    assert server.only_response()["Status"] == "SUCCESS"


@pytest.mark.parametrize(
    "resource_id",
    [f"{BUCKET}|eventbridge-already-on", f"{BUCKET}|checked", f"{BUCKET}|not-created", "some-other-id"],
)
def test_delete_of_what_this_stack_did_not_enable_touches_nothing(app, server, s3, stubbed, resource_id):
    """Nothing queued on the stubs: any AWS call would fail the request."""
    handle(app, request(server, "custom-resource-delete.json", PhysicalResourceId=resource_id))

    response = server.only_response()
    assert response["Status"] == "SUCCESS", response
    assert response["PhysicalResourceId"] == resource_id


def test_delete_denied_fails_with_the_permission(app, server, s3, events, stubbed):
    s3.get({"EventBridgeConfiguration": {}})
    events.stubber.add_client_error("list_rules", service_error_code="AccessDeniedException", http_status_code=400)

    handle(app, request(server, "custom-resource-delete.json"))

    response = server.only_response()
    assert response["Status"] == "FAILED"
    assert "events:ListRules on *" in response["Reason"]


# --- event patterns -------------------------------------------------------------------------------


def test_rule_names_follow_the_project_template(app):
    """Every product names its upload rule ``sagemaker-<project>-upload`` (generators/names.py): the function
    recognises other projects' rules by that name, whichever product created them."""
    for product in products():
        name = product.names.upload_rule.replace("${SageMakerProjectName}", "demo")
        assert name.startswith(app.RULE_PREFIX) and name.endswith(app.RULE_SUFFIX), product.slug


@pytest.mark.parametrize(
    ("pattern", "watches"),
    [
        ({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [BUCKET]}}}, True),
        ({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": ["other"]}}}, False),
        ({"source": ["aws.s3"], "detail-type": ["Object Deleted"], "detail": {"bucket": {"name": [BUCKET]}}}, False),
        ({"source": ["aws.s3"], "detail-type": ["Object Created"]}, True),  # every bucket
        ({"detail": {"bucket": {"name": [{"prefix": "amzn-s3-demo"}]}}}, True),
        ({"detail": {"bucket": {"name": [{"wildcard": "amzn-*-bucket"}]}}}, True),
        ({"detail": {"bucket": {"name": [{"wildcard": "other-*"}]}}}, False),
        ({"detail": {"bucket": {"name": [{"anything-but": ["other"]}]}}}, True),
        ({"detail": {"bucket": {"name": [{"anything-but": BUCKET}]}}}, False),
        ({"detail": {"bucket": {"name": [{"equals-ignore-case": BUCKET.upper()}]}}}, True),
        ({"$or": [{"detail-type": ["Object Created"]}, {"detail-type": ["Object Deleted"]}]}, True),
        ({"detail": {"bucket": {"name": [{"some-future-operator": "x"}]}}}, True),  # unknown: keep it on
    ],
)
def test_pattern_evaluation(app, pattern, watches):
    assert app.pattern_watches(json.dumps(pattern), BUCKET) is watches


def test_unreadable_patterns_count_as_watching(app):
    assert app.pattern_watches("{not json", BUCKET) is True
    assert app.pattern_watches(None, BUCKET) is False  # a scheduled rule


# --- the response protocol ------------------------------------------------------------------------


def test_response_is_a_put_of_json_with_empty_content_type_to_the_presigned_url(app, server, s3, stubbed):
    s3.head()
    event = request(server, "custom-resource-create.json", properties={"EnableEventBridge": "false"})

    handle(app, event)

    [put] = server.requests
    assert put["method"] == "PUT"
    assert put["path"] == urllib.parse.urlsplit(event["ResponseURL"]).path + "?" + urllib.parse.urlsplit(
        event["ResponseURL"]).query
    assert put["headers"].get("Content-Type") == ""  # what the pre-signed URL was signed for
    body = json.loads(put["body"])
    assert set(body) == {"Status", "Reason", "PhysicalResourceId", "StackId", "RequestId", "LogicalResourceId",
                         "Data"}
    for field in ("StackId", "RequestId", "LogicalResourceId"):
        assert body[field] == event[field]


def test_reason_is_shortened_to_fit_the_4096_byte_limit(app, server, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise app.Refusal("é" * 5000)

    monkeypatch.setattr(app, "create_or_update", refuse)

    handle(app, request(server, "custom-resource-create.json"))

    [put] = server.requests
    assert len(put["body"]) <= 4096
    assert json.loads(put["body"])["Status"] == "FAILED"


def test_response_put_is_retried(app, server, monkeypatch):
    monkeypatch.setattr(app, "SEND_BACKOFF", 0.01)
    monkeypatch.setattr(app, "delete", lambda *_: app.Outcome("x|checked", "ok"))
    server.statuses = [500, 503]

    result = handle(app, request(server, "custom-resource-delete.json"))

    assert len(server.requests) == 3
    assert result["sent"] is True


def test_refused_response_is_not_retried(app, server, monkeypatch):
    """A 403 from the pre-signed URL (expired, or a body it was not signed for) will not change."""
    monkeypatch.setattr(app, "delete", lambda *_: app.Outcome("x|checked", "ok"))
    server.statuses = [403]

    result = handle(app, request(server, "custom-resource-delete.json"))

    assert len(server.requests) == 1
    assert result["sent"] is False


def test_unexpected_exception_still_sends_failed(app, server, monkeypatch, logs):
    def explode(*_args, **_kwargs):
        raise KeyError("Rules")

    monkeypatch.setattr(app, "locate_bucket", explode)
    monkeypatch.setattr(app, "_client", lambda service: None)

    result = handle(app, request(server, "custom-resource-create.json"))

    response = server.only_response()
    assert response["Status"] == "FAILED"
    assert "KeyError" in response["Reason"]
    assert result["status"] == "FAILED"
    assert any(r.exc_info for r in logs())


def test_timeout_answers_failed_before_the_function_is_killed(app, server, monkeypatch):
    """With 2 s left the timer answers at 1 s; the late result is dropped (one response per request)."""

    def slow(*_args, **_kwargs):
        time.sleep(2.5)
        return app.Outcome(f"{BUCKET}|checked", "late", {})

    monkeypatch.setattr(app, "create_or_update", slow)

    handle(app, request(server, "custom-resource-create.json"), FakeContext(seconds=2.0))

    response = server.only_response()
    assert response["Status"] == "FAILED"
    assert "ran out of time" in response["Reason"] and FakeContext.log_stream_name in response["Reason"]
    assert response["PhysicalResourceId"] == f"{BUCKET}|not-created"


@pytest.mark.parametrize(
    "event", [{}, {"RequestType": "Create"}, {"ResponseURL": "file:///etc/passwd"}, None, "text", []]
)
def test_event_without_response_url_is_logged_not_raised(app, server, event, logs):
    assert app.lambda_handler(event, FakeContext()) == {"status": "malformed"}
    assert server.requests == []
    assert logs()[-1].levelno == logging.ERROR


def test_request_without_properties_is_answered_failed(app, server):
    event = request(server, "custom-resource-create.json")
    del event["ResourceProperties"]

    handle(app, event)

    response = server.only_response()
    assert response["Status"] == "FAILED"
    assert response["PhysicalResourceId"] == "data-bucket-events|not-created"


def test_unknown_request_type_is_answered_failed(app, server):
    handle(app, request(server, "custom-resource-create.json", RequestType="Replace"))

    assert "Replace" in server.only_response()["Reason"]


def test_logs_never_hold_the_presigned_url(app, server, s3, stubbed, logs):
    """The ResponseURL's query string is a credential (X-Amz-Signature): only the host may be logged."""
    s3.head_error(403, REGION)

    handle(app, request(server, "custom-resource-create.json"))

    records = logs()
    assert records
    for record in records:
        line = json.dumps(lambda_json_line(record))
        assert SIGNATURE not in line and "X-Amz-Credential" not in line, line
    assert any(getattr(r, "response_host", None) == "127.0.0.1" for r in records)
