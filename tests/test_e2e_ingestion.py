"""End to end, without AWS: an upload to S3 becomes records in the feature group, in both trigger modes.

    upload (moto S3) -> EventBridge event of the trigger mode -> the built template's UploadRule pattern
    (moto's matcher, and moto's EventBridge delivering to a queue in place of the Lambda target)
    -> the start-ingestion Lambda handler, configured as the template configures it
    -> StartPipelineExecution (moto SageMaker) -> the execution's InputDataUrl
    -> the seed code's processing script on that object -> the Feature Store stand-in

What moto cannot do is replaced, not skipped: the Lambda is called directly (moto cannot run it without
Docker) with the event the rule delivered; the processing job's container is the script run in this
process on the downloaded object (what ProcessingInput does); the Feature Store runtime is the seed code's
local stand-in. The notebooks' helpers create the data file and the feature group, as a user would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from e2e_support import (
    ACCOUNT,
    REGION,
    SEED_CODE_DIR,
    cloudtrail_put_event,
    feature_group_definition,
    feature_store_standin,
    lambda_app,
    moto_feature_group_fixes,
    moto_server,
    processing_script,
    walkthrough_helpers,
    write_abalone_zip,
)
from moto.events.models import EventPattern

from generators.cfn_resolve import resolve_template

fsi = walkthrough_helpers()
BUCKET = "fsi-e2e-data"
PREFIX = "incoming/"
GROUP = "abalone-e2e"
KEY = "incoming/abalone-2025-03-14.csv"
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
MODES = {"CloudTrail": "", "S3EventBridge": ".csv"}  # trigger mode -> DataSuffix


def decoys(mode: str) -> list[str]:
    """Uploads the rule must not deliver: a sibling prefix, and with a suffix another file type."""
    return ["incoming-old/abalone.csv"] + (["incoming/readme.txt"] if MODES[mode] else [])


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch):
    moto_feature_group_fixes().patch(monkeypatch)
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield url


@pytest.fixture
def feature_store(moto: str, monkeypatch: pytest.MonkeyPatch):
    """The Feature Store runtime stand-in; every other service stays on moto."""
    with feature_store_standin().FeatureStoreStandIn() as store:
        store.add_group(GROUP, feature_group_definition())
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME", store.url)
        yield store


def provisioned_project(templates: dict[str, dict], mode: str) -> dict:
    """The project template resolved for one project, as CloudFormation would resolve it."""
    parameters = {
        "SageMakerProjectName": "abalone-e2e",
        "SageMakerProjectId": "p-e2etest00001",
        "DataBucketName": BUCKET,
        "DataPrefix": PREFIX,
        "DataSuffix": MODES[mode],
        "FeatureGroupName": GROUP,
        "TriggerMode": mode,
    }
    return resolve_template(templates["project-s3-fs-ingestion"], parameters)["Resources"]


def deploy_trigger(resources: dict, mode: str) -> str:
    """The data bucket, the upload rule with the template's pattern and, in place of the Lambda target,
    a queue; the pipeline the Lambda starts. Returns the queue URL."""
    s3, events, sqs = boto3.client("s3"), boto3.client("events"), boto3.client("sqs")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    if mode == "S3EventBridge":  # what 00-setup does in this mode
        s3.put_bucket_notification_configuration(Bucket=BUCKET,
                                                 NotificationConfiguration={"EventBridgeConfiguration": {}})
    rule = resources["UploadRule"]["Properties"]
    queue = sqs.create_queue(QueueName="upload-rule-target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=rule["Name"], EventPattern=json.dumps(rule["EventPattern"]), State=rule["State"])
    events.put_targets(Rule=rule["Name"], Targets=[{"Id": "StartIngestion", "Arn": queue_arn}])
    pipeline = resources["StartIngestionFunction"]["Properties"]["Environment"]["Variables"]["PIPELINE_NAME"]
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "InputDataUrl", "Type": "String"}], "Steps": []}
    boto3.client("sagemaker").create_pipeline(
        PipelineName=pipeline, PipelineDefinition=json.dumps(definition),
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMakerServiceCatalogProductsExecutionRole",
        ClientRequestToken="e2e-pipeline-token-0000000000000",
    )
    return queue


def upload_abalone(tmp_path: Path, mode: str) -> tuple[Path, dict]:
    """The data file as 00-setup writes it (header, record_id), uploaded under the watched prefix."""
    raw = fsi.download_abalone(str(write_abalone_zip(tmp_path / "abalone.zip")), tmp_path / "download")
    path = fsi.write_csv(fsi.load_abalone(raw), tmp_path / "abalone.csv")
    s3 = boto3.client("s3")
    response = s3.put_object(Bucket=BUCKET, Key=KEY, Body=path.read_bytes())
    for decoy in decoys(mode):
        s3.put_object(Bucket=BUCKET, Key=decoy, Body=path.read_bytes())
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    return path, {"version_id": response["VersionId"], "size": head["ContentLength"], "etag": head["ETag"].strip('"')}


def object_created_event(key: str, upload: dict) -> dict:
    """S3's own 'Object Created' event (shape of tests/events/s3-object-created.json) for an upload."""
    event = json.loads((Path(__file__).parent / "events" / "s3-object-created.json").read_text(encoding="utf-8"))
    event["account"] = ACCOUNT
    event["resources"] = [f"arn:aws:s3:::{BUCKET}"]
    event["detail"]["bucket"]["name"] = BUCKET
    event["detail"]["object"].update(key=key, size=upload["size"], etag=upload["etag"],
                                     **{"version-id": upload["version_id"]})
    return event


def aws_event(mode: str, key: str, upload: dict) -> dict:
    if mode == "CloudTrail":
        return cloudtrail_put_event(BUCKET, key, version_id=upload["version_id"], size=upload["size"])
    return object_created_event(key, upload)


def delivered(queue: str) -> list[dict]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


@pytest.mark.parametrize("mode", MODES)
def test_an_upload_becomes_feature_records(
    mode: str, templates: dict[str, dict], feature_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = provisioned_project(templates, mode)
    pattern = resources["UploadRule"]["Properties"]["EventPattern"]
    queue = deploy_trigger(resources, mode)
    fsi.apply_definition(boto3.client("sagemaker"), SEED_CODE_DIR, GROUP, f"s3://{BUCKET}/offline-store",
                         f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMakerServiceCatalogProductsExecutionRole",
                         poll=0)
    data_file, upload = upload_abalone(tmp_path, mode)

    # 1. The event AWS sends for the upload matches the rule; those for the decoys do not.
    event = aws_event(mode, KEY, upload)
    matcher = EventPattern.load(json.dumps(pattern))
    assert matcher.matches_event(event), f"{mode}: the rule does not match the upload's event"
    for decoy in decoys(mode):
        assert not matcher.matches_event(aws_event(mode, decoy, upload)), decoy

    # 2. EventBridge delivers it to the rule's target: S3 emits its own events (S3EventBridge mode);
    #    CloudTrail's are put on the bus as the trail would.
    if mode == "CloudTrail":
        for key in (KEY, *decoys(mode)):
            sent = aws_event(mode, key, upload)
            boto3.client("events").put_events(Entries=[{
                "Source": sent["source"], "DetailType": sent["detail-type"], "Detail": json.dumps(sent["detail"])}])
    [target_event] = delivered(queue)

    # 3. The Lambda, configured as the template configures it, starts one execution for the file.
    environment = resources["StartIngestionFunction"]["Properties"]["Environment"]["Variables"]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    app = lambda_app()
    monkeypatch.setattr(app, "_client", None)  # a client for the moto server, created by the handler
    result = app.lambda_handler(target_event, None)
    assert result["status"] == "started", result
    sagemaker = boto3.client("sagemaker")
    [execution] = sagemaker.list_pipeline_executions(PipelineName=environment["PIPELINE_NAME"])[
        "PipelineExecutionSummaries"]
    parameters = sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"])["PipelineParameters"]
    input_url = {p["Name"]: p["Value"] for p in parameters}["InputDataUrl"]
    assert input_url == f"s3://{BUCKET}/{KEY}"

    # 4. The processing job: the object at InputDataUrl, transformed and ingested by the seed code's script.
    input_dir = tmp_path / "processing" / "input"
    input_dir.mkdir(parents=True)
    bucket, key = input_url.removeprefix("s3://").split("/", 1)
    boto3.client("s3").download_file(bucket, key, str(input_dir / Path(key).name))
    status = processing_script().main([
        "--input-dir", str(input_dir), "--feature-group-name", GROUP, "--region", REGION,
        "--max-workers", "4", "--failed-rows-dir", str(tmp_path / "failed-rows"), "--source-uri", input_url,
    ])
    assert status == 0

    # 5. The records that arrived: one per row, under the file's record ids, with the transformed values.
    records = feature_store.latest(GROUP)
    source_rows = data_file.read_text().splitlines()[1:]
    assert len(records) == len(source_rows) == 12
    assert sorted(records) == [f"abalone-{i:04d}" for i in range(1, 13)]
    first = records["abalone-0001"]  # M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15
    assert {k: v for k, v in first.items() if k != "event_time"} == {
        "record_id": "abalone-0001", "sex_m": "1", "sex_f": "0", "sex_i": "0", "length": "0.455",
        "diameter": "0.365", "height": "0.095", "whole_weight": "0.514", "shucked_weight": "0.2245",
        "viscera_weight": "0.101", "shell_weight": "0.15", "rings": "15",
    }
    assert ISO_TIME.match(first["event_time"])
    assert records["abalone-0005"]["sex_i"] == "1" and records["abalone-0003"]["sex_f"] == "1"
    assert not (tmp_path / "failed-rows").exists() or not any((tmp_path / "failed-rows").iterdir())
