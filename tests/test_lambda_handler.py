"""The start-ingestion Lambda: one S3 upload event in, exactly one SageMaker pipeline execution out.

SageMaker is a real boto3 client behind botocore's Stubber (requests validated against the API model);
one smoke test runs against moto. Nothing reaches AWS.
"""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from lambda_support import (
    BUCKET,
    CLOUDTRAIL_STARTS,
    DISPLAY_NAME_PATTERN,
    LOGGER_NAME,
    MANIFEST_BUCKET,
    OTHER_BUCKET,
    PIPELINE,
    S3_STARTS,
    S3Stub,
    SageMakerStub,
    assert_valid_request,
    lambda_json_line,
    load_app,
    new_upload_of,
    object_of,
    set_lambda_env,
    with_object,
)
from loading import load_event

STARTS = CLOUDTRAIL_STARTS + S3_STARTS


@pytest.fixture
def app(monkeypatch):
    module = load_app()
    set_lambda_env(monkeypatch)
    monkeypatch.setattr(module, "_client", None)
    return module


@pytest.fixture
def sagemaker(app, monkeypatch):
    stub = SageMakerStub()
    monkeypatch.setattr(app, "_sagemaker_client", lambda: stub.client)
    yield stub
    stub.close()


@pytest.fixture
def s3(app, monkeypatch):
    stub = S3Stub()
    monkeypatch.setattr(app, "_s3_client", lambda: stub.client)
    yield stub
    stub.close()


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)

    def records():
        return [r for r in caplog.records if r.name == LOGGER_NAME]

    return records


def only_record(logs):
    records = logs()
    assert len(records) == 1, [r.getMessage() for r in records]
    return records[0]


# --- starting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", STARTS)
def test_upload_starts_one_execution(app, sagemaker, logs, fixture):
    event = load_event(fixture)
    bucket, key = object_of(event)
    [arn] = sagemaker.will_start()

    result = app.lambda_handler(event, None)

    assert result["status"] == "started"
    assert result["executionArn"] == arn
    assert len(sagemaker.requests) == 1
    request = sagemaker.requests[0]
    assert_valid_request(request)
    assert request["PipelineName"] == PIPELINE
    assert request["PipelineParameters"] == [{"Name": "InputDataUrl", "Value": f"s3://{bucket}/{key}"}]
    assert re.fullmatch(r"[0-9a-f]{64}", request["ClientRequestToken"])
    assert DISPLAY_NAME_PATTERN.fullmatch(request["PipelineExecutionDisplayName"])
    assert f"s3://{bucket}/{key}" in request["PipelineExecutionDescription"]
    sagemaker.stubber.assert_no_pending_responses()
    json.dumps(result)  # a Lambda destination receives it as JSON

    record = only_record(logs)
    assert record.levelno == logging.INFO
    assert record.outcome == "started"
    assert (record.bucket, record.key, record.execution_arn) == (bucket, key, arn)
    assert record.event_id == event["id"]


def test_display_name_is_the_readable_file_name_plus_a_hash(app, sagemaker):
    sagemaker.will_start()
    app.lambda_handler(load_event("s3-object-created.json"), None)
    name = sagemaker.requests[0]["PipelineExecutionDisplayName"]
    token = sagemaker.requests[0]["ClientRequestToken"]
    assert name == f"abalone-2025-03-14-csv-{token[:12]}"


def test_cloudtrail_description_names_the_operation_and_event(app, sagemaker):
    event = load_event("cloudtrail-completemultipartupload.json")
    sagemaker.will_start()
    app.lambda_handler(event, None)
    text = sagemaker.requests[0]["PipelineExecutionDescription"]
    assert text.startswith("CompleteMultipartUpload of s3://amzn-s3-demo-bucket/incoming/large-batch")
    assert event["detail"]["eventID"] in text


def test_s3_event_key_is_used_as_sent_not_url_decoded(app, sagemaker):
    """S3's EventBridge events carry the key itself; '+' and '%20' are part of the name."""
    event = with_object(load_event("s3-object-created.json"), key="incoming/a+b%20c d.csv")
    sagemaker.will_start()
    app.lambda_handler(event, None)
    assert sagemaker.requests[0]["PipelineParameters"][0]["Value"] == f"s3://{BUCKET}/incoming/a+b%20c d.csv"


def test_nested_folders_under_the_prefix_are_watched(app, sagemaker):
    event = with_object(load_event("cloudtrail-putobject.json"), key="incoming/2025/03/14/part-0001.csv")
    sagemaker.will_start()
    assert app.lambda_handler(event, None)["status"] == "started"


# Keys a data scientist may well upload; every one needs a valid display name and request.
NASTY_KEYS = [
    "incoming/with spaces in the name.csv",
    "incoming/  leading and trailing spaces  .csv",
    "incoming/report (1) - copy.csv",
    "incoming/Données été 2025 – naïve façon.csv",
    "incoming/日本語のファイル名.csv",
    "incoming/данные.csv",
    "incoming/بيانات.csv",
    "incoming/emoji-📈-data-🚀.csv",
    "incoming/e\u0301te\u0301-combining-accents.csv",
    "incoming/zero\u200bwidth\u200bspaces.csv",
    "incoming/.hidden",
    "incoming/...",
    "incoming/a",
    "incoming/-",
    "incoming/---leading-dashes---.csv",
    "incoming/%%%%",
    "incoming/%20%2B+encoded-looking.csv",
    "incoming/a..b...c....csv",
    "incoming/tab\tand\nnewline\r\n.csv",
    "incoming/nul\x00byte.csv",
    "incoming/line\u2028separator\u0085next-line.csv",
    "incoming/back\\slash/and:colon;semi,comma?query#hash&amp=eq@at.csv",
    "incoming/<angle> {curly} [square] |pipe| ^caret~ `tick`.csv",
    "incoming/" + "x" * 200 + ".csv",
    "incoming/" + "deep/" * 150 + "file.csv",
    "incoming/" + "ü" * 986 + ".csv",  # 999 characters: s3://amzn-s3-demo-bucket/<key> is 1,024 long,
    "incoming/" + "a-" * 493 + ".csv",  # the most a pipeline parameter value holds
]


def _needs_manifest(key: str) -> bool:
    """What the pipeline cannot take as InputDataUrl: a URL over the 1,024-character parameter limit
    (botocore's SageMaker model, shape String1024 of Parameter.Value) or a file name over 255 bytes
    (NAME_MAX of the processing instance's Linux file system, where the object is downloaded)."""
    return len(f"s3://{BUCKET}/{key}") > 1024 or len(key.rsplit("/", 1)[-1].encode()) > 255


@pytest.mark.parametrize("key", NASTY_KEYS, ids=range(len(NASTY_KEYS)))
@pytest.mark.parametrize("fixture", ["cloudtrail-putobject.json", "s3-object-created.json"])
def test_any_key_gives_a_valid_request(app, sagemaker, s3, fixture, key):
    event = with_object(load_event(fixture), key=key)
    sagemaker.will_start()
    if _needs_manifest(key):
        s3.will_put()

    result = app.lambda_handler(event, None)

    assert result["status"] == "started", result
    request = sagemaker.requests[0]
    assert_valid_request(request)
    name = request["PipelineExecutionDisplayName"]
    assert len(name) <= 82 and DISPLAY_NAME_PATTERN.fullmatch(name), name
    [parameter] = request["PipelineParameters"]
    if _needs_manifest(key):
        [put] = s3.puts
        assert parameter == {"Name": "InputManifestUrl", "Value": f"s3://{put['Bucket']}/{put['Key']}"}
        _assert_names_exactly(put, key)
    else:
        assert parameter == {"Name": "InputDataUrl", "Value": f"s3://{BUCKET}/{key}"}
        assert s3.puts == []


def _assert_names_exactly(put: dict, key: str) -> None:
    """The manifest is SageMaker's ManifestFile format (CreateProcessingJob API reference, S3DataType
    ManifestFile): a prefix object, then keys relative to it; prefix + entry must be the uploaded object."""
    assert put["Bucket"] == MANIFEST_BUCKET
    assert re.fullmatch(r"input-manifests/[0-9a-f]{64}\.manifest", put["Key"]), put["Key"]
    prefix, *entries = json.loads(put["Body"])
    assert [prefix["prefix"] + entry for entry in entries] == [f"s3://{BUCKET}/{key}"]
    assert put["ContentType"] == "application/json"


LONGEST_KEYS = [
    "incoming/" + "k" * 1011 + ".csv",  # 1,024 bytes: the longest key S3 allows (S3 User Guide, "Naming objects")
    "incoming/" + "ü" * 505 + ".csv",  # 1,023 bytes in UTF-8, 518 characters, a 1,014-byte file name
    "incoming/" + "d/" * 400 + "x" * 200 + ".csv",  # 1,013 bytes in short folders: only the URL is too long
    "incoming/" + "n" * 252 + ".csv",  # a 256-byte file name in a short URL
]


@pytest.mark.parametrize("key", LONGEST_KEYS, ids=["1024-bytes", "utf8", "deep", "long-file-name"])
@pytest.mark.parametrize("fixture", ["cloudtrail-putobject.json", "s3-object-created.json"])
def test_keys_the_pipeline_cannot_take_directly_start_through_a_manifest(app, sagemaker, s3, fixture, key):
    """Every valid S3 key starts the pipeline: up to 1,024 bytes of UTF-8 (S3 User Guide, "Naming Amazon S3
    objects"), where ``s3://bucket/key`` can exceed the 1,024-character parameter limit."""
    assert len(key.encode()) <= 1024 and _needs_manifest(key)
    sagemaker.will_start()
    s3.will_put()

    result = app.lambda_handler(with_object(load_event(fixture), key=key), None)

    assert result["status"] == "started"
    assert result["inputManifestUrl"].startswith(f"s3://{MANIFEST_BUCKET}/input-manifests/")
    [request] = sagemaker.requests
    assert_valid_request(request)
    assert request["PipelineParameters"] == [{"Name": "InputManifestUrl", "Value": result["inputManifestUrl"]}]
    [put] = s3.puts
    _assert_names_exactly(put, key)


def test_a_redelivered_long_key_rewrites_the_same_manifest_and_reuses_the_token(app, sagemaker, s3):
    event = with_object(load_event("s3-object-created.json"), key="incoming/" + "k" * 1011 + ".csv")
    sagemaker.will_start(2)
    s3.will_put(2)
    app.lambda_handler(event, None)
    app.lambda_handler(event, None)
    assert s3.puts[0] == s3.puts[1]
    assert sagemaker.requests[0] == sagemaker.requests[1]
    assert s3.puts[0]["Key"] == f"input-manifests/{sagemaker.requests[0]['ClientRequestToken']}.manifest"


def test_a_manifest_that_cannot_be_written_raises_before_any_start(app, sagemaker, s3, logs):
    """No manifest, no execution: the event is retried and finally parked in the dead-letter queue."""
    s3.will_fail("AccessDenied")
    event = with_object(load_event("s3-object-created.json"), key="incoming/" + "k" * 1011 + ".csv")
    with pytest.raises(ClientError):
        app.lambda_handler(event, None)
    assert sagemaker.requests == []
    record = only_record(logs)
    assert record.outcome == "failed" and record.error_code == "AccessDenied" and record.retryable is False


def test_without_a_manifest_bucket_a_long_key_is_raised_not_dropped(app, sagemaker, s3, logs, monkeypatch):
    """Only the project stack's MANIFEST_BUCKET makes such uploads possible; without it (a function
    configured by hand) the event goes to the dead-letter queue (after Lambda's retries) instead of vanishing."""
    monkeypatch.delenv("MANIFEST_BUCKET")
    event = with_object(load_event("s3-object-created.json"), key="incoming/" + "k" * 1020 + ".csv")
    with pytest.raises(app.UnprocessableUpload, match="1,024|1024"):
        app.lambda_handler(event, None)
    assert sagemaker.requests == [] and s3.puts == []
    record = only_record(logs)
    assert record.levelno == logging.ERROR and record.outcome == "unprocessable"


@pytest.mark.parametrize("key", [
    "incoming/" + "k" * 1000 + ".csv",
    "incoming/" + "名" * 3000,
    "incoming/" + ".-()" * 400,
])
def test_display_name_for_very_long_keys(app, key):
    name = app.display_name(key, "f" * 64)
    assert len(name) <= 82 and DISPLAY_NAME_PATTERN.fullmatch(name), name
    assert name.endswith("-ffffffffffff")


# --- ignoring ------------------------------------------------------------------------------------


def _ct(key=None, bucket=None):
    return with_object(load_event("cloudtrail-putobject.json"), key=key, bucket=bucket)


def _s3(key=None, bucket=None):
    return with_object(load_event("s3-object-created.json"), key=key, bucket=bucket)


IGNORED = {
    "cloudtrail-other-bucket": (lambda: _ct(bucket=OTHER_BUCKET), "", "not the watched bucket"),
    "s3-other-bucket": (lambda: _s3(bucket=OTHER_BUCKET), "", "not the watched bucket"),
    "cloudtrail-sibling-prefix": (lambda: _ct(key="incoming-old/a.csv"), "", "outside the watched prefix"),
    "s3-sibling-prefix": (lambda: _s3(key="incoming-old/a.csv"), "", "outside the watched prefix"),
    "s3-prefix-without-slash": (lambda: _s3(key="incomingdata.csv"), "", "outside the watched prefix"),
    "s3-prefix-other-case": (lambda: _s3(key="Incoming/a.csv"), "", "outside the watched prefix"),
    "cloudtrail-root-key": (lambda: _ct(key="a.csv"), "", "outside the watched prefix"),
    "cloudtrail-wrong-suffix": (lambda: _ct(key="incoming/a.json"), ".csv", "does not end with"),
    "s3-wrong-suffix": (lambda: _s3(key="incoming/a.json"), ".csv", "does not end with"),
    "s3-suffix-other-case": (lambda: _s3(key="incoming/a.CSV"), ".csv", "does not end with"),
    "cloudtrail-folder-marker": (lambda: load_event("cloudtrail-putobject-folder-marker.json"), "",
                                 "folder marker"),
    "s3-folder-marker": (lambda: load_event("s3-object-created-folder-marker.json"), "", "folder marker"),
    "s3-prefix-itself": (lambda: _s3(key="incoming/"), "", "folder marker"),
    "cloudtrail-empty-object": (lambda: load_event("cloudtrail-putobject-empty.json"), "", "empty object"),
    "s3-empty-object": (lambda: load_event("s3-object-created-empty.json"), "", "empty object"),
    "cloudtrail-getobject": (lambda: load_event("cloudtrail-getobject.json"), "", "does not create"),
    "cloudtrail-deleteobject": (lambda: load_event("cloudtrail-deleteobject.json"), "", "does not create"),
    "cloudtrail-failed-putobject": (lambda: load_event("cloudtrail-putobject-accessdenied.json"), "",
                                    "errorCode 'AccessDenied'"),
    "s3-object-deleted": (lambda: load_event("s3-object-deleted.json"), "", "not an upload"),
    "not-s3": (lambda: {**_ct(), "source": "aws.sagemaker"}, "", "is not aws.s3"),
    "cloudtrail-not-s3": (lambda: _with_detail(_ct(), eventSource="sagemaker.amazonaws.com"), "",
                          "not S3"),
}


def _with_detail(event, **changes):
    event["detail"].update(changes)
    return event


@pytest.mark.parametrize("case", IGNORED)
def test_ignored_events_make_no_call_and_log_one_reason(app, sagemaker, logs, monkeypatch, case):
    make, suffix, reason = IGNORED[case]
    set_lambda_env(monkeypatch, suffix=suffix)

    result = app.lambda_handler(make(), None)

    assert result == {"status": "ignored", "reason": result["reason"]}
    assert reason in result["reason"]
    assert sagemaker.requests == []
    record = only_record(logs)
    assert record.levelno == logging.INFO
    assert record.outcome == "ignored" and reason in record.getMessage()


def test_suffix_filter_accepts_matching_keys(app, sagemaker, monkeypatch):
    set_lambda_env(monkeypatch, suffix=".csv")
    sagemaker.will_start()
    assert app.lambda_handler(_s3(key="incoming/sub/data.csv"), None)["status"] == "started"


def test_unset_suffix_means_every_file(app, sagemaker, monkeypatch):
    set_lambda_env(monkeypatch, suffix=None)
    sagemaker.will_start()
    assert app.lambda_handler(_s3(key="incoming/data.parquet"), None)["status"] == "started"


def test_settings_are_read_on_every_invocation(app, sagemaker, monkeypatch):
    event = _s3(key="archive/data.csv")
    assert app.lambda_handler(event, None)["status"] == "ignored"
    set_lambda_env(monkeypatch, prefix="archive/")
    sagemaker.will_start()
    assert app.lambda_handler(event, None)["status"] == "started"


# --- malformed events ----------------------------------------------------------------------------


def _drop(event, *path):
    node = event
    for name in path[:-1]:
        node = node[name]
    del node[path[-1]]
    return event


def _set(event, path, value):
    node = event
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = value
    return event


MALFORMED = {
    "null": lambda: None,
    "true": lambda: True,
    "zero": lambda: 0,
    "number": lambda: 3.25,
    "string": lambda: "s3://amzn-s3-demo-bucket/incoming/a.csv",
    "empty-string": lambda: "",
    "empty-list": lambda: [],
    "list-of-events": lambda: [_s3()],
    "empty-object": lambda: {},
    "no-detail-type": lambda: _drop(_s3(), "detail-type"),
    "detail-type-number": lambda: _set(_s3(), ["detail-type"], 7),
    "no-source": lambda: _drop(_s3(), "source"),
    "no-detail": lambda: _drop(_s3(), "detail"),
    "detail-null": lambda: _set(_s3(), ["detail"], None),
    "detail-list": lambda: _set(_ct(), ["detail"], []),
    "detail-string": lambda: _set(_ct(), ["detail"], "{}"),
    "s3-no-bucket": lambda: _drop(_s3(), "detail", "bucket"),
    "s3-bucket-string": lambda: _set(_s3(), ["detail", "bucket"], BUCKET),
    "s3-bucket-name-null": lambda: _set(_s3(), ["detail", "bucket", "name"], None),
    "s3-bucket-name-empty": lambda: _set(_s3(), ["detail", "bucket", "name"], ""),
    "s3-no-object": lambda: _drop(_s3(), "detail", "object"),
    "s3-object-list": lambda: _set(_s3(), ["detail", "object"], [{"key": "incoming/a.csv"}]),
    "s3-no-key": lambda: _drop(_s3(), "detail", "object", "key"),
    "s3-key-number": lambda: _set(_s3(), ["detail", "object", "key"], 12345),
    "s3-key-list": lambda: _set(_s3(), ["detail", "object", "key"], ["incoming/a.csv"]),
    "s3-key-empty": lambda: _set(_s3(), ["detail", "object", "key"], ""),
    "s3-key-lone-surrogate": lambda: _set(_s3(), ["detail", "object", "key"], "incoming/\ud800.csv"),
    "s3-size-string": lambda: _set(_s3(), ["detail", "object", "size"], "191873"),
    "s3-size-boolean": lambda: _set(_s3(), ["detail", "object", "size"], True),
    "s3-no-identity": lambda: _set(_s3(), ["detail", "object"], {"key": "incoming/a.csv", "size": 3}),
    "cloudtrail-no-event-name": lambda: _drop(_ct(), "detail", "eventName"),
    "cloudtrail-event-name-list": lambda: _set(_ct(), ["detail", "eventName"], ["PutObject"]),
    "cloudtrail-no-event-source": lambda: _drop(_ct(), "detail", "eventSource"),
    "cloudtrail-no-request-parameters": lambda: _drop(_ct(), "detail", "requestParameters"),
    "cloudtrail-request-parameters-null": lambda: _set(_ct(), ["detail", "requestParameters"], None),
    "cloudtrail-no-key": lambda: _drop(_ct(), "detail", "requestParameters", "key"),
    "cloudtrail-key-object": lambda: _set(_ct(), ["detail", "requestParameters", "key"], {"S": "a"}),
    "cloudtrail-no-bucket-name": lambda: _drop(_ct(), "detail", "requestParameters", "bucketName"),
    "cloudtrail-no-event-ids": lambda: _drop(_drop(_ct(), "detail", "eventID"), "detail", "requestID"),
    "cloudtrail-event-id-number": lambda: _drop(_set(_ct(), ["detail", "eventID"], 42), "detail", "requestID"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_events_never_raise_and_are_counted(app, sagemaker, logs, case):
    event = MALFORMED[case]()

    result = app.lambda_handler(event, None)

    assert result["status"] == "malformed" and result["reason"]
    assert sagemaker.requests == []
    record = only_record(logs)
    assert record.levelno == logging.WARNING
    assert record.malformed_event == 1 and record.outcome == "malformed"
    assert result["reason"] in record.getMessage()
    assert len(record.event_excerpt) <= 503
    json.dumps(result)


def test_malformed_reason_names_the_field_and_its_type(app, sagemaker):
    result = app.lambda_handler(MALFORMED["s3-key-number"](), None)
    assert result["reason"] == "detail.object.key is a number, expected a string"
    assert app.lambda_handler(None, None)["reason"] == "the event is null, expected an object"


# --- idempotency ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", STARTS)
def test_redelivered_event_sends_the_identical_request(app, sagemaker, fixture):
    event = load_event(fixture)
    sagemaker.will_start(2)
    app.lambda_handler(event, None)
    app.lambda_handler(json.loads(json.dumps(event)), None)
    first, second = sagemaker.requests
    assert first == second


def test_cloudtrail_redelivery_in_a_new_envelope_keeps_the_token(app, sagemaker):
    """CloudTrail may deliver one API call twice; EventBridge then wraps it in two envelopes."""
    event = load_event("cloudtrail-putobject.json")
    again = {**json.loads(json.dumps(event)), "id": "ffffffff-0000-4000-8000-000000000001",
             "time": "2025-03-14T09:26:00Z"}
    sagemaker.will_start(2)
    app.lambda_handler(event, None)
    app.lambda_handler(again, None)
    assert sagemaker.requests[0]["ClientRequestToken"] == sagemaker.requests[1]["ClientRequestToken"]


@pytest.mark.parametrize("fixture", STARTS)
def test_a_later_upload_of_the_same_key_gets_a_new_token(app, sagemaker, fixture):
    event = load_event(fixture)
    sagemaker.will_start(2)
    app.lambda_handler(event, None)
    app.lambda_handler(new_upload_of(event), None)
    first, second = sagemaker.requests
    assert first["PipelineParameters"] == second["PipelineParameters"]
    assert first["ClientRequestToken"] != second["ClientRequestToken"]
    assert first["PipelineExecutionDisplayName"] != second["PipelineExecutionDisplayName"]


def test_tokens_differ_per_key_bucket_and_pipeline(app):
    settings = app.Settings(PIPELINE, BUCKET, "incoming/")
    upload = app.Upload(BUCKET, "incoming/a.csv", "PutObject", "S3", ("sequencer=01",))
    tokens = {
        app.client_request_token(settings, upload),
        app.client_request_token(settings, app.Upload(BUCKET, "incoming/b.csv", "PutObject", "S3",
                                                      ("sequencer=01",))),
        app.client_request_token(settings, app.Upload(OTHER_BUCKET, "incoming/a.csv", "PutObject", "S3",
                                                      ("sequencer=01",))),
        app.client_request_token(app.Settings("other-pipeline", BUCKET, "incoming/"), upload),
        # a key holding the separator must not collide with another split of the same text
        app.client_request_token(settings, app.Upload(BUCKET, 'incoming/a.csv", "sequencer=01', "PutObject",
                                                      "S3", ())),
    }
    assert len(tokens) == 5
    for token in tokens:
        assert_valid_request({"PipelineName": PIPELINE, "ClientRequestToken": token})


def test_token_already_used_is_an_idempotent_success(app, sagemaker, logs):
    sagemaker.will_fail("ConflictException", "The ClientRequestToken has already been used for a "
                        "pipeline execution.")
    result = app.lambda_handler(load_event("s3-object-created.json"), None)
    assert result["status"] == "duplicate"
    record = only_record(logs)
    assert record.levelno == logging.INFO and record.outcome == "duplicate"


def test_idempotent_parameter_mismatch_is_a_duplicate_too(app, sagemaker):
    sagemaker.will_fail("IdempotentParameterMismatchException", "token reused with other parameters")
    assert app.lambda_handler(load_event("cloudtrail-putobject.json"), None)["status"] == "duplicate"


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [
    ("ThrottlingException", 400),
    ("ResourceLimitExceeded", 400),
    ("InternalFailure", 500),
    ("ServiceUnavailable", 503),
    ("ConflictException", 409),  # not about the token: a real conflict, retried
])
def test_transient_errors_raise_so_the_event_is_retried(app, sagemaker, logs, code, status):
    sagemaker.will_fail(code, "Rate exceeded" if status == 400 else "try again", status)
    with pytest.raises(ClientError) as raised:
        app.lambda_handler(load_event("s3-object-created.json"), None)
    assert raised.value.response["Error"]["Code"] == code
    record = only_record(logs)
    assert record.levelno == logging.ERROR
    assert record.outcome == "failed" and record.error_code == code and record.retryable is True
    assert "dead-letter queue" in record.getMessage()


@pytest.mark.parametrize(("code", "advice"), [
    ("ResourceNotFound", "CI/CD"),
    ("AccessDeniedException", "sagemaker:StartPipelineExecution"),
    ("ValidationException", "PIPELINE_NAME"),
])
def test_configuration_errors_raise_with_an_actionable_message(app, sagemaker, logs, code, advice):
    sagemaker.will_fail(code, "Pipeline not found" if code == "ResourceNotFound" else "no")
    with pytest.raises(ClientError):
        app.lambda_handler(load_event("cloudtrail-putobject.json"), None)
    record = only_record(logs)
    assert record.levelno == logging.ERROR and record.retryable is False
    assert advice in record.getMessage() and PIPELINE in record.getMessage()


def test_validation_error_about_the_token_is_not_mistaken_for_a_duplicate(app, sagemaker):
    sagemaker.will_fail("ValidationException", "1 validation error detected: Value at 'clientRequestToken' "
                        "failed to satisfy constraint: Member must have length greater than or equal to 32")
    with pytest.raises(ClientError):
        app.lambda_handler(load_event("s3-object-created.json"), None)


def test_connection_errors_raise(app, monkeypatch, logs):
    class Unreachable:
        def start_pipeline_execution(self, **_):
            raise EndpointConnectionError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com")

    monkeypatch.setattr(app, "_sagemaker_client", Unreachable)
    with pytest.raises(EndpointConnectionError):
        app.lambda_handler(load_event("s3-object-created.json"), None)
    record = only_record(logs)
    assert record.levelno == logging.ERROR and record.retryable is True


@pytest.mark.parametrize("name", ["PIPELINE_NAME", "DATA_BUCKET", "DATA_PREFIX"])
@pytest.mark.parametrize("value", [None, "", "  "])
def test_missing_configuration_raises_a_clear_error(app, sagemaker, logs, monkeypatch, name, value):
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(app.ConfigurationError, match=name):
        app.lambda_handler(load_event("s3-object-created.json"), None)
    assert sagemaker.requests == []
    record = only_record(logs)
    assert record.levelno == logging.ERROR and name in record.getMessage()


# --- logs ----------------------------------------------------------------------------------------


def test_every_outcome_logs_one_json_line_with_its_fields(app, sagemaker, logs):
    """Through the runtime's JSON log format, each line carries the outcome and what it is about;
    a CloudWatch metric filter on {$.malformed_event = 1} counts malformed events."""
    sagemaker.will_start()
    sagemaker.will_fail("ThrottlingException", "Rate exceeded")
    app.lambda_handler(load_event("s3-object-created.json"), None)
    app.lambda_handler(_s3(bucket=OTHER_BUCKET), None)
    app.lambda_handler(["not", "an", "event"], None)
    with pytest.raises(ClientError):
        app.lambda_handler(load_event("cloudtrail-putobject.json"), None)

    started, ignored, malformed, failed = (lambda_json_line(r) for r in logs())
    assert started["outcome"] == "started" and started["level"] == "INFO"
    assert started["execution_arn"].startswith("arn:aws:sagemaker:")
    assert started["input_data_url"] == f"s3://{BUCKET}/incoming/abalone-2025-03-14.csv"
    assert ignored["outcome"] == "ignored" and ignored["bucket"] == OTHER_BUCKET
    assert "malformed_event" not in started and "malformed_event" not in ignored
    assert malformed["malformed_event"] == 1 and malformed["level"] == "WARNING"
    assert failed["error_code"] == "ThrottlingException" and failed["retryable"] is True
    assert failed["level"] == "ERROR"


# --- the client ----------------------------------------------------------------------------------


def test_client_is_created_once_with_standard_retries(app):
    client = app._sagemaker_client()
    assert app._sagemaker_client() is client
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert client.meta.region_name == "eu-west-1"


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER"])
def test_client_honours_the_endpoint_url_environment(app, monkeypatch, variable):
    monkeypatch.setenv(variable, "http://127.0.0.1:4566")
    assert app._sagemaker_client().meta.endpoint_url == "http://127.0.0.1:4566"


def test_importing_the_module_does_no_work(monkeypatch):
    module = load_app("start_ingestion_pipeline_fresh_import")
    try:
        assert module._client is None
    finally:
        sys.modules.pop("start_ingestion_pipeline_fresh_import")


def test_against_moto(app, monkeypatch):
    """The real client path (no stub): moto records one execution with the pipeline parameter."""
    from moto import mock_aws

    with mock_aws():
        client = app._sagemaker_client()
        client.create_pipeline(
            PipelineName=PIPELINE, RoleArn="arn:aws:iam::123456789012:role/service-role/pipeline",
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": [],
                                           "Parameters": [{"Name": "InputDataUrl", "Type": "String"}]}),
        )
        result = app.lambda_handler(load_event("cloudtrail-putobject.json"), None)
        [summary] = client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
        described = client.describe_pipeline_execution(PipelineExecutionArn=result["executionArn"])
    assert summary["PipelineExecutionArn"] == result["executionArn"]
    assert described["PipelineExecutionDisplayName"] == result["displayName"]


def test_long_key_against_moto(app, monkeypatch):
    """The real client path for a 1,024-byte key: the manifest lands in the bucket, the execution names it."""
    from moto import mock_aws

    monkeypatch.setattr(app, "_s3", None)
    key = "incoming/" + "k" * 1011 + ".csv"
    with mock_aws():
        client = app._sagemaker_client()
        client.create_pipeline(
            PipelineName=PIPELINE, RoleArn="arn:aws:iam::123456789012:role/service-role/pipeline",
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": [], "Parameters": [
                {"Name": "InputDataUrl", "Type": "String", "DefaultValue": ""},
                {"Name": "InputManifestUrl", "Type": "String", "DefaultValue": ""}]}),
        )
        s3 = app._s3_client()
        s3.create_bucket(Bucket=MANIFEST_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        result = app.lambda_handler(with_object(load_event("s3-object-created.json"), key=key), None)
        manifest_key = result["inputManifestUrl"].removeprefix(f"s3://{MANIFEST_BUCKET}/")
        body = s3.get_object(Bucket=MANIFEST_BUCKET, Key=manifest_key)["Body"].read()
        described = client.describe_pipeline_execution(PipelineExecutionArn=result["executionArn"])
    prefix, entry = json.loads(body)
    assert prefix["prefix"] + entry == f"s3://{BUCKET}/{key}"
    assert described["PipelineExecutionDisplayName"] == result["displayName"]


# --- products whose pipeline reads manifests only ------------------------------------------------


def test_start_with_manifest_always_sends_every_upload_through_a_manifest(app, sagemaker, s3, monkeypatch):
    """Batch inference reads its input through a ManifestFile so that the transform's output keeps the input's
    full key (CreateTransformJob, S3DataSource ManifestFile): even a short key gets a manifest."""
    monkeypatch.setenv("START_WITH_MANIFEST", "always")
    sagemaker.will_start()
    s3.will_put()
    key = "incoming/short.csv"
    result = app.lambda_handler(with_object(load_event("s3-object-created.json"), key=key), None)
    assert result["status"] == "started"
    [request] = sagemaker.requests
    assert request["PipelineParameters"] == [{"Name": "InputManifestUrl", "Value": result["inputManifestUrl"]}]
    _assert_names_exactly(s3.puts[0], key)


def test_start_with_manifest_takes_only_known_values(app, sagemaker, monkeypatch, logs):
    monkeypatch.setenv("START_WITH_MANIFEST", "sometimes")
    with pytest.raises(app.ConfigurationError, match="START_WITH_MANIFEST"):
        app.lambda_handler(load_event("s3-object-created.json"), None)
    assert sagemaker.requests == []


def test_a_missing_pipeline_names_what_to_do_for_the_product(app, sagemaker, monkeypatch, logs):
    """A batch-inference project has no pipeline until a model is approved: the event goes to the dead-letter
    queue with that reason, not a generic one."""
    monkeypatch.setenv("MISSING_PIPELINE_HINT", "approve a model package in group churn-models")
    sagemaker.will_fail("ResourceNotFound", "Pipeline does not exist", 400)
    with pytest.raises(ClientError):
        app.lambda_handler(load_event("s3-object-created.json"), None)
    record = only_record(logs)
    assert "approve a model package in group churn-models" in record.getMessage()
    assert record.error_code == "ResourceNotFound" and record.retryable is False
