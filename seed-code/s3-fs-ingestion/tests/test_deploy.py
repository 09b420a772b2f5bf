"""The build entry point (deploy.py) against moto: settings, feature group, pipeline code, upsert."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import boto3
import moto_feature_groups
import pytest
from botocore.exceptions import ClientError
from conftest import DATA_DIR, REGION
from moto import mock_aws

import deploy

BUCKET = "demo-p-abc123-artifacts"
FLOW_BUCKET = "sagemaker-eu-west-1-123456789012"  # the CodeBuild role reads sagemaker-* and aws-glue-* buckets only
ROLE_NAME = "demo-p-abc123-execution"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
FLOW_OUTPUT = "7e3f1c2d-5b4a-4f6e-8d9c-0a1b2c3d4e5f.default"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """moto with the project's artifact bucket and execution role, and the CodeBuild environment."""
    moto_feature_groups.patch(monkeypatch)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        role = boto3.client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST))
        environment = {
            "SAGEMAKER_PROJECT_NAME": "demo",
            "SAGEMAKER_PROJECT_ID": "p-abc123",
            "SAGEMAKER_PIPELINE_NAME": "demo-p-abc123-s3-fs-ingestion",
            "SAGEMAKER_PIPELINE_ROLE_ARN": role["Role"]["Arn"],
            "ARTIFACT_BUCKET": BUCKET,
            "OFFLINE_STORE_S3_URI": f"s3://{BUCKET}/feature-store",
            "FEATURE_GROUP_NAME": "demo-abalone",
            "TRANSFORM_MODE": "Script",
            "DATA_WRANGLER_FLOW_URL": "",
            "DATA_WRANGLER_OUTPUT_NAME": "",
            "PROCESSING_INSTANCE_TYPE": "ml.m5.xlarge",
            "PROCESSING_INSTANCE_COUNT": "1",
            "AWS_REGION": REGION,
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        yield environment


def pipeline_definition(name: str) -> dict:
    return json.loads(boto3.client("sagemaker").describe_pipeline(PipelineName=name)["PipelineDefinition"])


def processing_steps(document: dict) -> dict:
    """The processing steps by name; they sit in the branches of the top-level condition steps."""
    found = {}
    for step in document["Steps"]:
        for child in step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []):
            if child["Type"] == "Processing":
                found[child["Name"]] = child
    return found


def nothing_deployed(group: str = "demo-abalone") -> bool:
    client = boto3.client("sagemaker")
    try:
        client.describe_feature_group(FeatureGroupName=group)
    except ClientError:
        return client.list_pipelines()["PipelineSummaries"] == []
    return False


def only_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_script_mode_applies_the_group_uploads_the_script_and_creates_the_pipeline(aws: dict, capsys) -> None:
    assert deploy.main([]) == 0
    arn = only_line(capsys.readouterr().out)
    assert arn == f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/{aws['SAGEMAKER_PIPELINE_NAME']}"

    group = boto3.client("sagemaker").describe_feature_group(FeatureGroupName="demo-abalone")
    assert group["RecordIdentifierFeatureName"] == "record_id"
    assert group["RoleArn"] == aws["SAGEMAKER_PIPELINE_ROLE_ARN"]
    assert group["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] == aws["OFFLINE_STORE_S3_URI"]

    script = deploy.PROCESSING_SCRIPT.read_bytes()
    key = f"pipeline-code/{hashlib.sha256(script).hexdigest()[:16]}/transform_and_ingest.py"
    assert boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read() == script

    steps = processing_steps(pipeline_definition(aws["SAGEMAKER_PIPELINE_NAME"]))
    assert sorted(steps) == ["TransformAndIngest", "TransformAndIngestManifest"]
    for step in steps.values():
        code = next(i for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
        assert code["S3Input"]["S3Uri"] == f"s3://{BUCKET}/{key}"
    tags = boto3.client("sagemaker").list_tags(ResourceArn=arn)["Tags"]
    assert {"Key": "sagemaker:project-name", "Value": "demo"} in tags
    assert {"Key": "sagemaker:project-id", "Value": "p-abc123"} in tags


def test_a_second_build_updates_the_pipeline(aws: dict, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    assert deploy.main([]) == 0
    monkeypatch.setenv("PROCESSING_INSTANCE_TYPE", "ml.m5.2xlarge")
    assert deploy.main([]) == 0
    first, second = capsys.readouterr().out.split()
    assert first == second
    parameters = {p["Name"]: p for p in pipeline_definition(aws["SAGEMAKER_PIPELINE_NAME"])["Parameters"]}
    assert parameters["ProcessingInstanceType"]["DefaultValue"] == "ml.m5.2xlarge"


def test_data_wrangler_mode_reads_the_flow_and_binds_the_feature_group(
    aws: dict, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = (DATA_DIR / "abalone.flow").read_bytes()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=FLOW_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=FLOW_BUCKET, Key="flows/abalone.flow", Body=flow)
    monkeypatch.setenv("TRANSFORM_MODE", "DataWranglerFlow")
    monkeypatch.setenv("DATA_WRANGLER_FLOW_URL", f"s3://{FLOW_BUCKET}/flows/abalone.flow")
    monkeypatch.setenv("DATA_WRANGLER_OUTPUT_NAME", FLOW_OUTPUT)
    assert deploy.main([]) == 0
    steps = processing_steps(pipeline_definition(aws["SAGEMAKER_PIPELINE_NAME"]))
    assert sorted(steps) == ["DataWranglerFlowToFeatureStore", "DataWranglerFlowToFeatureStoreManifest"]
    for step in steps.values():
        assert [i["InputName"] for i in step["Arguments"]["ProcessingInputs"]] == ["flow", "abalone.csv"]
        (output,) = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
        assert output["FeatureStoreOutput"] == {"FeatureGroupName": {"Get": "Parameters.FeatureGroupName"}}


def test_a_flow_the_codebuild_role_cannot_read_fails_the_build_early(
    aws: dict, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project's CodeBuild role reads S3 through the AWS-managed policy
    AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy: s3:GetObject on arn:aws:s3:::sagemaker-*
    and arn:aws:s3:::aws-glue-* only. A flow elsewhere would fail later with AccessDenied."""
    flow = (DATA_DIR / "abalone.flow").read_bytes()
    boto3.client("s3").put_object(Bucket=BUCKET, Key="flows/abalone.flow", Body=flow)
    monkeypatch.setenv("TRANSFORM_MODE", "DataWranglerFlow")
    monkeypatch.setenv("DATA_WRANGLER_FLOW_URL", f"s3://{BUCKET}/flows/abalone.flow")
    monkeypatch.setenv("DATA_WRANGLER_OUTPUT_NAME", FLOW_OUTPUT)
    assert deploy.main([]) == 2
    message = only_line(capsys.readouterr().err)
    assert message.startswith(
        "deploy: configuration error: DATA_WRANGLER_FLOW_URL is in bucket 'demo-p-abc123-artifacts'")
    assert "AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy" in message
    assert "sagemaker-* or aws-glue-*" in message
    assert nothing_deployed()


@pytest.mark.parametrize("bucket", ["sagemaker-eu-west-1-123456789012", "aws-glue-assets-123456789012-eu-west-1"])
def test_flows_in_the_buckets_the_codebuild_role_reads_are_accepted(
    aws: dict, monkeypatch: pytest.MonkeyPatch, bucket: str
) -> None:
    aws.update(TRANSFORM_MODE="DataWranglerFlow", DATA_WRANGLER_FLOW_URL=f"s3://{bucket}/f.flow",
               DATA_WRANGLER_OUTPUT_NAME=FLOW_OUTPUT)
    assert deploy.BuildEnvironment.from_environ(aws).flow_url == f"s3://{bucket}/f.flow"


def test_a_region_without_data_wrangler_fails_the_build_early(
    aws: dict, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data Wrangler is not offered in every Region; the pinned SDK's image_uri_config/data-wrangler.json
    lists the Regions that have its image (mx-central-1, a Region since 2025, is not among them in 3.27.0)."""
    from pipelines.pipeline import data_wrangler_regions

    assert "mx-central-1" not in data_wrangler_regions()
    monkeypatch.setenv("TRANSFORM_MODE", "DataWranglerFlow")
    monkeypatch.setenv("DATA_WRANGLER_FLOW_URL", f"s3://{FLOW_BUCKET}/flows/abalone.flow")
    monkeypatch.setenv("DATA_WRANGLER_OUTPUT_NAME", FLOW_OUTPUT)
    monkeypatch.setenv("AWS_REGION", "mx-central-1")
    assert deploy.main([]) == 2
    message = only_line(capsys.readouterr().err)
    assert message.startswith("deploy: configuration error: TRANSFORM_MODE is DataWranglerFlow but the build's "
                              "Region mx-central-1 has no Data Wrangler image")
    assert "eu-west-1" in message and "use Script mode" in message
    assert nothing_deployed()


def test_missing_settings_fail_the_build_in_one_line(
    aws: dict, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAGEMAKER_PROJECT_ID")
    monkeypatch.setenv("ARTIFACT_BUCKET", " ")
    assert deploy.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert only_line(captured.err) == (
        "deploy: configuration error: missing environment variable(s) SAGEMAKER_PROJECT_ID, ARTIFACT_BUCKET: "
        "the project's CodeBuild project sets them")


def test_data_wrangler_mode_needs_its_settings(aws: dict, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFORM_MODE", "DataWranglerFlow")
    assert deploy.main([]) == 2
    assert "DATA_WRANGLER_FLOW_URL, DATA_WRANGLER_OUTPUT_NAME" in only_line(capsys.readouterr().err)


def test_invalid_settings_are_all_named(aws: dict, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFORM_MODE", "Spark")
    monkeypatch.setenv("PROCESSING_INSTANCE_COUNT", "0")
    monkeypatch.setenv("OFFLINE_STORE_S3_URI", "/feature-store")
    message = only_line(capsys.readouterr().err) if deploy.main([]) == 2 else pytest.fail("accepted")
    assert "TRANSFORM_MODE is 'Spark'" in message
    assert "PROCESSING_INSTANCE_COUNT is '0'" in message
    assert "OFFLINE_STORE_S3_URI is '/feature-store'" in message


def test_a_failed_upsert_fails_the_build_in_one_line(
    aws: dict, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGEMAKER_PIPELINE_ROLE_ARN", "arn:aws:iam::123456789012:role/does-not-exist")
    assert deploy.main([]) == 1
    message = only_line(capsys.readouterr().err)
    assert message.startswith(f"deploy: failed: upserting pipeline {aws['SAGEMAKER_PIPELINE_NAME']} failed: ")
    assert "does-not-exist" in message


def test_an_incompatible_feature_group_fails_the_build(aws: dict, capsys) -> None:
    boto3.client("sagemaker").create_feature_group(
        FeatureGroupName="demo-abalone", RecordIdentifierFeatureName="id", EventTimeFeatureName="event_time",
        FeatureDefinitions=[{"FeatureName": "id", "FeatureType": "String"},
                            {"FeatureName": "event_time", "FeatureType": "String"}],
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": aws["OFFLINE_STORE_S3_URI"]}},
        OnlineStoreConfig={"EnableOnlineStore": True}, RoleArn=aws["SAGEMAKER_PIPELINE_ROLE_ARN"],
    )
    assert deploy.main([]) == 1
    message = only_line(capsys.readouterr().err)
    assert message.startswith("deploy: failed: feature group 'demo-abalone' cannot be changed")
    assert "feature 'id' was removed" in message
    assert boto3.client("sagemaker").list_pipelines()["PipelineSummaries"] == []  # nothing deployed


def test_an_unreadable_flow_fails_the_build(aws: dict, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("s3").create_bucket(Bucket=FLOW_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    monkeypatch.setenv("TRANSFORM_MODE", "DataWranglerFlow")
    monkeypatch.setenv("DATA_WRANGLER_FLOW_URL", f"s3://{FLOW_BUCKET}/flows/missing.flow")
    monkeypatch.setenv("DATA_WRANGLER_OUTPUT_NAME", FLOW_OUTPUT)
    assert deploy.main([]) == 1
    assert only_line(capsys.readouterr().err).startswith("deploy: failed: pipeline code: An error occurred (NoSuchKey)")
