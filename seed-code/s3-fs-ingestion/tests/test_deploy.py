"""The build entry point (deploy.py) against moto: settings, feature group, pipeline code, upsert."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import moto_feature_groups
import pytest
from botocore.exceptions import ClientError
from conftest import DATA_DIR, PROCESSING_DIR, REGION
from featurestore_standin import FeatureStoreStandIn
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


def uploaded(bucket: str = BUCKET, prefix: str = "pipeline-code/") -> dict[str, bytes]:
    """Every object under ``prefix``: key -> bytes."""
    s3 = boto3.client("s3")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def code_input(step: dict) -> dict:
    return next(i["S3Input"] for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")


def test_script_mode_applies_the_group_uploads_the_code_and_creates_the_pipeline(aws: dict, capsys) -> None:
    assert deploy.main([]) == 0
    arn = only_line(capsys.readouterr().out)
    assert arn == f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/{aws['SAGEMAKER_PIPELINE_NAME']}"

    group = boto3.client("sagemaker").describe_feature_group(FeatureGroupName="demo-abalone")
    assert group["RecordIdentifierFeatureName"] == "record_id"
    assert group["RoleArn"] == aws["SAGEMAKER_PIPELINE_ROLE_ARN"]
    assert group["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] == aws["OFFLINE_STORE_S3_URI"]

    # The whole processing/ folder, every module, under one prefix named after its content.
    shipped = deploy.code_files(PROCESSING_DIR)
    modules = sorted(path.name for path in PROCESSING_DIR.glob("*.py"))
    assert sorted(shipped) == modules and deploy.ENTRY_POINT in shipped and len(modules) > 1
    prefix = f"pipeline-code/{deploy.code_hash(shipped)}/"
    assert uploaded() == {prefix + relative: body for relative, body in shipped.items()}

    steps = processing_steps(pipeline_definition(aws["SAGEMAKER_PIPELINE_NAME"]))
    assert sorted(steps) == ["TransformAndIngest", "TransformAndIngestManifest"]
    for step in steps.values():
        assert code_input(step)["S3Uri"] == f"s3://{BUCKET}/{prefix}"
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


# -- the processing code: the whole folder, content-hashed -------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of processing/ to change."""
    return Path(shutil.copytree(PROCESSING_DIR, tmp_path / "processing",
                                ignore=shutil.ignore_patterns("__pycache__")))


def prefix_of(folder: Path) -> str:
    return deploy.code_hash(deploy.code_files(folder))


def test_the_code_prefix_changes_with_any_module_and_only_then(folder: Path) -> None:
    original = prefix_of(folder)
    assert original == deploy.code_hash(deploy.code_files(PROCESSING_DIR))  # where it lives does not matter
    os.utime(folder / "transform.py", (0, 0))
    assert prefix_of(folder) == original  # times and modes are not content
    # Not shipped, so not hashed: caches, tests, hidden files.
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "transform.cpython-39.pyc").write_bytes(b"\x00compiled")
    (folder / "tests").mkdir()
    (folder / "tests" / "test_transform.py").write_text("def test(): pass\n")
    (folder / "test_local.py").write_text("def test(): pass\n")
    (folder / "conftest.py").write_text("")
    (folder / ".DS_Store").write_bytes(b"\x00")
    assert prefix_of(folder) == original
    assert deploy.ENTRY_POINT in deploy.code_files(folder)

    seen = {original}

    def assert_new_prefix() -> None:
        now = prefix_of(folder)
        assert now not in seen, "a change of the code kept an earlier prefix"
        seen.add(now)

    (folder / "transform.py").write_text((folder / "transform.py").read_text() + "\n# changed\n")
    assert_new_prefix()
    (folder / "helpers").mkdir()
    (folder / "helpers" / "units.py").write_text("GRAMS = 1000\n")
    assert_new_prefix()
    (folder / "helpers" / "units.py").rename(folder / "helpers" / "scale.py")
    assert_new_prefix()
    before = prefix_of(folder)
    (folder / "lookup.csv").write_text("a,b\n")
    assert_new_prefix()
    (folder / "lookup.csv").unlink()
    assert prefix_of(folder) == before  # the same code again: the same prefix again


def test_files_are_told_apart_by_path_and_content_not_by_their_concatenation() -> None:
    assert deploy.code_hash({"a.py": b"xb.py"}) != deploy.code_hash({"a.py": b"x", "b.py": b""})
    assert deploy.code_hash({"a.py": b"1", "b.py": b"2"}) != deploy.code_hash({"a.py": b"2", "b.py": b"1"})


def test_the_upload_is_idempotent_and_a_change_goes_to_a_new_prefix(aws: dict, folder: Path) -> None:
    """Same code, same prefix, nothing rewritten (PutObject with If-None-Match: *, "Conditional requests",
    Amazon S3 user guide: the write fails with 412 PreconditionFailed when the key exists)."""
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = deploy.upload_code(s3, BUCKET, folder)
    assert deploy.upload_code(s3, BUCKET, folder) == first
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="pipeline-code/")["Versions"]
    assert sorted(v["Key"] for v in versions) == sorted(uploaded())  # one version each: written once
    assert first.endswith("/") and first.startswith(f"s3://{BUCKET}/pipeline-code/")

    (folder / "transform.py").write_text((folder / "transform.py").read_text() + "\n# adapted\n")
    second = deploy.upload_code(s3, BUCKET, folder)
    assert second != first
    objects = uploaded()
    new = {key.removeprefix(second.removeprefix(f"s3://{BUCKET}/")): body for key, body in objects.items()
           if f"s3://{BUCKET}/{key}".startswith(second)}
    assert new == deploy.code_files(folder)  # the whole folder again, the changed module included
    assert len(objects) == 2 * len(new)  # the first prefix stays as it was: running pipelines may use it


def test_a_partial_upload_is_completed_by_the_next_build(aws: dict, folder: Path) -> None:
    s3 = boto3.client("s3")
    uri = deploy.upload_code(s3, BUCKET, folder)
    prefix = uri.removeprefix(f"s3://{BUCKET}/")
    s3.delete_object(Bucket=BUCKET, Key=prefix + "inputs.py")  # as if the build died before that file
    assert deploy.upload_code(s3, BUCKET, folder) == uri
    assert uploaded(prefix=prefix) == {prefix + r: body for r, body in deploy.code_files(folder).items()}


def test_a_folder_without_the_entry_point_fails_the_build(aws: dict, folder: Path) -> None:
    (folder / deploy.ENTRY_POINT).unlink()
    with pytest.raises(deploy.DeployError, match="has no transform_and_ingest.py"):
        deploy.upload_code(boto3.client("s3"), BUCKET, folder)
    assert uploaded() == {}


def container_path(root: Path, path: str) -> Path:
    """A container path (/opt/ml/...) below ``root``."""
    return root / path.lstrip("/")


def test_the_uploaded_folder_runs_as_the_processing_step_runs_it(
    aws: dict, capsys, tmp_path: Path, abalone_definition: dict
) -> None:
    """End to end: the build uploads the code and upserts the pipeline (moto); the object step's code input
    is downloaded the way SageMaker downloads an S3Prefix input (every object under the prefix, by its key
    below it, into LocalPath), and its ContainerEntrypoint and ContainerArguments run in a new interpreter
    from another working directory, against the Feature Store stand-in. The job's configuration file names the
    data input as SageMaker writes it ("How Amazon SageMaker Processing Configures Your Processing Container",
    SageMaker developer guide)."""
    assert deploy.main([]) == 0
    step = processing_steps(pipeline_definition(aws["SAGEMAKER_PIPELINE_NAME"]))["TransformAndIngest"]
    arguments = step["Arguments"]
    root = tmp_path / "container"
    code = code_input(step)
    bucket, prefix = code["S3Uri"].removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3")
    for key in uploaded(bucket, prefix):
        target = container_path(root, code["LocalPath"]) / key.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))

    data = next(i["S3Input"] for i in arguments["ProcessingInputs"] if i["InputName"] == "data")
    data_url = "s3://data-bucket/uploads/abalone_sample.csv"  # what the Lambda passes as InputDataUrl
    data_dir = container_path(root, data["LocalPath"])
    data_dir.mkdir(parents=True)
    shutil.copyfile(DATA_DIR / "abalone_sample.csv", data_dir / "abalone_sample.csv")
    job_config = container_path(root, "/opt/ml/config/processingjobconfig.json")
    job_config.parent.mkdir(parents=True)
    job_config.write_text(json.dumps({"ProcessingInputs": [
        {"InputName": "data", "S3Input": {**data, "S3Uri": data_url, "LocalPath": str(data_dir)}},
        {"InputName": "code", "S3Input": {**code, "LocalPath": str(container_path(root, code["LocalPath"]))}},
    ]}), encoding="utf-8")

    parameters = {p["Name"]: p.get("DefaultValue") for p in pipeline_definition(aws["SAGEMAKER_PIPELINE_NAME"])[
        "Parameters"]}

    def resolved(value: object) -> str:
        if isinstance(value, dict):
            return str(parameters[value["Get"].removeprefix("Parameters.")])
        return str(container_path(root, value)) if str(value).startswith("/opt/ml/") else str(value)

    app = arguments["AppSpecification"]
    interpreter, entry_point = app["ContainerEntrypoint"]
    assert interpreter == "python3"
    command = [sys.executable, resolved(entry_point), *(resolved(a) for a in app["ContainerArguments"]),
               "--job-config", str(job_config), "--resource-config", str(root / "no-resourceconfig.json")]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with FeatureStoreStandIn() as store:
        store.add_group(aws["FEATURE_GROUP_NAME"], abalone_definition)
        environment = {**os.environ, "PYTHONPATH": "", "AWS_ENDPOINT_URL_SAGEMAKER": store.url,
                       "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": store.url}
        completed = subprocess.run(command, cwd=elsewhere, env=environment, capture_output=True, text=True,
                                   timeout=120, check=False)
        records = store.latest(aws["FEATURE_GROUP_NAME"])
    assert completed.returncode == 0, completed.stderr
    assert sorted(records) == sorted(f"{data_url}#{row}" for row in range(1, 41))
    assert records[f"{data_url}#1"]["sex_m"] == "1" and records[f"{data_url}#1"]["rings"] == "15"
