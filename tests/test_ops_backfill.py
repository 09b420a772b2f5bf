"""``python -m generators backfill``: one manifest of the files under a prefix, one pipeline execution that reads it.

S3 is moto 5.2.5; the start function's configuration is moto's Lambda; SageMaker is :class:`SageMakerFake`
(tests/test_ops_support.py: requests checked against botocore's model, idempotent on ``ClientRequestToken``). The
manifest is read back with the processing script's own parser and sharded with its own function
(seed-code/s3-fs-ingestion/processing/inputs.py), as the job's instances do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from lambda_support import load_app
from loading import load_module
from moto import mock_aws
from test_ops_support import (
    ARTIFACT_BUCKET,
    DATA_BUCKET,
    PIPELINE,
    PROJECT,
    REGION,
    SageMakerFake,
    create_start_function,
    function_environment,
)

from generators.cli import CliError, main
from generators.ops import _backfill
from generators.ops._common import Clients
from generators.ops._manifest import S3Object, execution_token, manifest_body, split

PROCESSING = Path(__file__).resolve().parent.parent / "seed-code" / "s3-fs-ingestion" / "processing"


def processing_inputs():
    """The processing script's inputs module; its modules import each other by name from their folder."""
    if str(PROCESSING) not in sys.path:
        sys.path.insert(0, str(PROCESSING))
    return load_module("inputs", PROCESSING / "inputs.py")


@pytest.fixture
def aws():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (DATA_BUCKET, ARTIFACT_BUCKET):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield s3


def _put(s3, key: str, body: bytes = b"a,b\n1,2\n", **extra) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body, **extra)


class Harness:
    def __init__(self, s3, sagemaker: SageMakerFake | None = None, **env: str) -> None:
        create_start_function(function_environment(**env))
        self.s3 = s3
        self.sagemaker = sagemaker or SageMakerFake()
        self.clients = Clients(REGION, {"lambda": boto3.client("lambda", region_name=REGION), "s3": s3,
                                        "sagemaker": self.sagemaker})
        self.lines: list[str] = []

    def run(self, prefix: str = "incoming/", *, instances: int | None = None, dry_run: bool = False,
            max_bytes: int = _backfill.MANIFEST_MAX_BYTES) -> int:
        args = argparse.Namespace(project=PROJECT, prefix=prefix, instances=instances, dry_run=dry_run, region=REGION)
        return _backfill.run(args, self.clients, self.lines.append, max_bytes=max_bytes)

    def manifests(self) -> dict[str, bytes]:
        listed = self.s3.list_objects_v2(Bucket=ARTIFACT_BUCKET, Prefix="input-manifests/").get("Contents", [])
        return {o["Key"]: self.s3.get_object(Bucket=ARTIFACT_BUCKET, Key=o["Key"])["Body"].read() for o in listed}

    def manifest_urls(self, manifest: bytes) -> list[str]:
        return processing_inputs().parse_manifest(manifest.decode("utf-8"), "manifest")


KEYS = [f"incoming/2024/{month:02d}/part-{n}.csv" for month in range(1, 4) for n in range(7)]


def test_every_object_under_the_prefix_is_listed_exactly_once(aws) -> None:
    for key in KEYS:
        _put(aws, key)
    _put(aws, "incoming/2024/", b"")  # folder marker
    _put(aws, "incoming/2024/empty.csv", b"")
    _put(aws, "incoming/2025/not-this-year.csv")
    _put(aws, "incoming-old/2024/x.csv")
    harness = Harness(aws)

    assert harness.run("incoming/2024/") == 0

    [(key, manifest)] = harness.manifests().items()
    urls = harness.manifest_urls(manifest)
    assert sorted(urls) == sorted(f"s3://{DATA_BUCKET}/{k}" for k in KEYS)
    assert len(urls) == len(set(urls)) == len(KEYS)
    [request] = harness.sagemaker.requests
    assert request["PipelineName"] == PIPELINE
    assert request["PipelineParameters"] == [{"Name": "InputManifestUrl", "Value": f"s3://{ARTIFACT_BUCKET}/{key}"}]
    assert re.fullmatch(r"input-manifests/backfill-[0-9a-f]{64}\.manifest", key)
    assert harness.lines[-1] == "backfill: 21 objects in 1 execution(s): 1 started, 0 already started"
    assert any(line.startswith("started arn:aws:sagemaker:") and "(21 objects)" in line for line in harness.lines)


@pytest.mark.parametrize("instances", [2, 3, 5])
def test_the_instances_share_the_files_each_exactly_once(aws, instances) -> None:
    """Each processing instance takes the listed objects whose URL hashes to its index among the job's hosts
    (resourceconfig.json: "algo-1" ... "algo-N"); together they take every file, no file twice."""
    for key in KEYS:
        _put(aws, key)
    harness = Harness(aws)

    assert harness.run(instances=instances) == 0

    [manifest] = harness.manifests().values()
    urls = harness.manifest_urls(manifest)
    inputs = processing_inputs()
    hosts = [f"algo-{n}" for n in range(1, instances + 1)]
    shares = [inputs.my_share(urls, host, hosts) for host in hosts]
    assert sorted(url for share in shares for url in share) == sorted(urls)
    assert sum(len(share) for share in shares) == len(KEYS)
    [request] = harness.sagemaker.requests
    assert {"Name": "ProcessingInstanceCount", "Value": str(instances)} in request["PipelineParameters"]


def test_the_project_suffix_filter_applies(aws) -> None:
    for key in ("incoming/a.csv", "incoming/b.json", "incoming/c.CSV", "incoming/d.csv"):
        _put(aws, key)
    harness = Harness(aws, DATA_SUFFIX=".csv")

    assert harness.run() == 0

    [manifest] = harness.manifests().values()
    assert harness.manifest_urls(manifest) == [f"s3://{DATA_BUCKET}/incoming/a.csv", f"s3://{DATA_BUCKET}/incoming/d.csv"]
    assert "  left out: 2 not ending with '.csv'" in harness.lines


def test_archived_objects_are_left_out(aws) -> None:
    """GetObject refuses an object in S3 Glacier Flexible Retrieval or Deep Archive until it is restored (S3 User
    Guide, "Working with archived objects"): the job would fail on it."""
    _put(aws, "incoming/live.csv")
    _put(aws, "incoming/cold.csv", StorageClass="GLACIER")
    _put(aws, "incoming/frozen.csv", StorageClass="DEEP_ARCHIVE")
    harness = Harness(aws)

    assert harness.run() == 0

    [manifest] = harness.manifests().values()
    assert harness.manifest_urls(manifest) == [f"s3://{DATA_BUCKET}/incoming/live.csv"]
    assert "  left out: 2 archived objects (restore them first)" in harness.lines


def test_a_prefix_with_nothing_to_ingest_is_a_clear_error(aws) -> None:
    _put(aws, "incoming/2023/", b"")
    harness = Harness(aws)
    with pytest.raises(CliError, match=r"nothing to backfill: no object to ingest under "
                                       r"s3://amzn-s3-demo-bucket/incoming/2023/ \(1 folder markers left out\)"):
        harness.run("incoming/2023/")
    assert harness.sagemaker.requests == [] and harness.manifests() == {}


@pytest.mark.parametrize("prefix", ["", "archive/", "incoming", "incoming-old/"])
def test_a_prefix_outside_the_watched_prefix_is_refused(aws, prefix) -> None:
    """The pipeline's execution role may read the watched prefix only (README, "Deploying as a platform admin")."""
    _put(aws, "archive/x.csv")
    harness = Harness(aws)
    with pytest.raises(CliError, match="is outside the project's watched prefix 'incoming/'"):
        harness.run(prefix)


def test_dry_run_writes_no_manifest_and_starts_nothing(aws) -> None:
    for key in KEYS[:3]:
        _put(aws, key)
    harness = Harness(aws)

    assert harness.run(dry_run=True, instances=2) == 0

    assert harness.sagemaker.requests == [] and harness.manifests() == {}
    assert harness.lines[-1].startswith("dry run: would write 1 manifest(s) and start 1 execution(s)")
    assert any(line.startswith("manifest 1/1: s3://") and "(3 objects, 2 instance(s))" in line
               for line in harness.lines)


def test_running_it_again_starts_nothing_new(aws) -> None:
    for key in KEYS:
        _put(aws, key)
    harness = Harness(aws, SageMakerFake(repeat_answer="conflict"))

    assert harness.run() == 0
    first = harness.manifests()
    assert harness.run() == 0

    assert harness.manifests() == first, "the same manifest object, byte for byte"
    assert len(harness.sagemaker.executions) == 1
    first_token, second_token = (r["ClientRequestToken"] for r in harness.sagemaker.requests)
    assert first_token == second_token
    assert harness.lines[-1].endswith("0 started, 1 already started")


def test_rewritten_objects_are_a_new_backfill(aws) -> None:
    for key in KEYS:
        _put(aws, key)
    harness = Harness(aws)
    assert harness.run() == 0
    _put(aws, KEYS[0], b"a,b\n3,4\n")  # a new version: a new ETag

    assert harness.run() == 0

    assert len(harness.sagemaker.executions) == 2 and len(harness.manifests()) == 2


def test_a_huge_listing_is_split_into_manifests_each_object_in_one(aws) -> None:
    for key in KEYS:
        _put(aws, key)
    harness = Harness(aws)
    size = len(manifest_body(DATA_BUCKET, KEYS))

    assert harness.run(max_bytes=size // 3) == 0

    manifests = harness.manifests()
    assert len(manifests) == len(harness.sagemaker.requests) >= 3
    assert all(len(body) <= size // 3 for body in manifests.values())
    urls = [url for body in manifests.values() for url in harness.manifest_urls(body)]
    assert sorted(urls) == sorted(f"s3://{DATA_BUCKET}/{k}" for k in KEYS)
    names = [r["PipelineExecutionDisplayName"] for r in harness.sagemaker.requests]
    assert len(set(names)) == len(names) and all("-of-" in name for name in names)


def test_instances_never_outnumber_the_files(aws) -> None:
    _put(aws, "incoming/a.csv")
    _put(aws, "incoming/b.csv")
    harness = Harness(aws)

    assert harness.run(instances=8) == 0

    [request] = harness.sagemaker.requests
    assert {"Name": "ProcessingInstanceCount", "Value": "2"} in request["PipelineParameters"]
    assert any("2 instance(s), not 8: more instances than files would sit idle" in line for line in harness.lines)


def test_the_batch_inference_pipeline_gets_its_transform_instance_count(aws) -> None:
    _put(aws, "incoming/a.csv")
    _put(aws, "incoming/b.csv")
    sagemaker = SageMakerFake(parameters=("InputDataUrl", "InputManifestUrl", "TransformInstanceType",
                                          "TransformInstanceCount"))
    harness = Harness(aws, sagemaker, PIPELINE_NAME="sagemaker-p-abcdefghijkl-batch-inference")

    assert harness.run(instances=2) == 0

    [request] = sagemaker.requests
    assert {"Name": "TransformInstanceCount", "Value": "2"} in request["PipelineParameters"]


@pytest.mark.parametrize(
    ("sagemaker", "instances", "message"),
    [
        (SageMakerFake(exists=False), None, "does not exist yet: the project's seed-code build deploys it"),
        (SageMakerFake(parameters=("InputDataUrl",)), None, "takes no InputManifestUrl"),
        (SageMakerFake(parameters=("InputDataUrl", "InputManifestUrl")), 2, "leave out --instances"),
    ],
)
def test_a_pipeline_that_cannot_take_the_backfill_is_refused_before_anything_is_written(aws, sagemaker, instances,
                                                                                          message) -> None:
    _put(aws, "incoming/a.csv")
    harness = Harness(aws, sagemaker)
    with pytest.raises(CliError, match=message):
        harness.run(instances=instances)
    assert harness.manifests() == {} and sagemaker.requests == []


def test_a_project_without_manifest_bucket_is_refused(aws) -> None:
    _put(aws, "incoming/a.csv")
    harness = Harness(aws, MANIFEST_BUCKET=None)
    with pytest.raises(CliError, match="sets no MANIFEST_BUCKET"):
        harness.run()


def test_the_concurrent_executions_quota_is_reported_with_what_to_do(aws) -> None:
    """SageMaker refuses a pipeline execution beyond the account's concurrent executions (ResourceLimitExceeded)."""
    _put(aws, "incoming/a.csv")
    sagemaker = SageMakerFake()
    sagemaker.failure = ("ResourceLimitExceeded", "The account-level service limit 'Maximum number of concurrent "
                         "pipeline executions' is 20")
    harness = Harness(aws, sagemaker)
    with pytest.raises(CliError, match="ResourceLimitExceeded.*re-run the same command later"):
        harness.run()


def test_the_command_line_dry_run(aws, capsys) -> None:
    """Through ``main``, with moto's SageMaker serving DescribePipeline."""
    create_start_function(function_environment())
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="AmazonSageMakerServiceCatalogProductsExecutionRole",
                           AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    definition = {"Version": "2020-12-01", "Steps": [],
                  "Parameters": [{"Name": "InputManifestUrl", "Type": "String"},
                                 {"Name": "ProcessingInstanceCount", "Type": "Integer", "DefaultValue": 1}]}
    boto3.client("sagemaker", region_name=REGION).create_pipeline(
        PipelineName=PIPELINE, RoleArn=role["Role"]["Arn"], PipelineDefinition=json.dumps(definition))
    _put(aws, "incoming/a.csv")

    assert main(["backfill", "--project", PROJECT, "--prefix", "incoming/", "--instances", "2", "--dry-run",
                 "--region", REGION]) == 0

    out = capsys.readouterr().out
    assert "backfill s3://amzn-s3-demo-bucket/incoming/: 1 objects" in out and "dry run: would write" in out


@pytest.mark.parametrize("value", ["0", "101", "two"])
def test_instances_outside_what_a_processing_job_takes_are_refused(value, capsys) -> None:
    """CreateProcessingJob ClusterConfig.InstanceCount: 1 to 100 (SageMaker API Reference)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["backfill", "--project", PROJECT, "--prefix", "incoming/", "--instances", value])
    assert exit_info.value.code == 2
    assert "--instances" in capsys.readouterr().err


# The manifest format, the same as the start function's


@pytest.mark.parametrize("key", ["incoming/a.csv", "incoming/with space & \"quote\".csv", "incoming/ünïcödé/数据.csv",
                                 "incoming/" + "k" * 1100])
def test_the_manifest_is_byte_for_byte_the_start_functions(key) -> None:
    """One object: the start function (manifest_for) and the backfill write the same document, so the pipeline's
    manifest path reads both alike."""
    app = load_app()
    settings = app.Settings(pipeline_name=PIPELINE, bucket=DATA_BUCKET, prefix="incoming/",
                            manifest_bucket=ARTIFACT_BUCKET)
    upload = app.Upload(DATA_BUCKET, key, "PutObject", "S3", ("sequencer=1",))
    lambda_body = app.manifest_for(settings, upload, app.client_request_token(settings, upload)).body
    assert manifest_body(DATA_BUCKET, [key]) == lambda_body


def test_split_keeps_order_and_every_part_under_the_limit() -> None:
    objects = [S3Object(f"incoming/{n:04d}-{'x' * (n % 50)}.csv", f'"{n}"', 1) for n in range(300)]
    limit = 2_000
    parts = split(DATA_BUCKET, objects, limit)
    assert [o for part in parts for o in part] == objects
    for part in parts:
        assert len(manifest_body(DATA_BUCKET, [o.key for o in part])) <= limit
    # greedy: adding the next object would have crossed the limit
    for part, following in zip(parts, parts[1:], strict=False):
        assert len(manifest_body(DATA_BUCKET, [o.key for o in [*part, following[0]]])) > limit


def test_the_token_changes_with_any_object_version_and_fits_the_api() -> None:
    objects = [S3Object("incoming/a.csv", '"1"', 1), S3Object("incoming/b.csv", '"2"', 1)]
    token = execution_token(PIPELINE, DATA_BUCKET, objects)
    assert re.fullmatch(r"[0-9a-f]{64}", token)  # ClientRequestToken: 32 to 128 characters
    assert execution_token(PIPELINE, DATA_BUCKET, list(objects)) == token
    assert execution_token(PIPELINE, DATA_BUCKET, [objects[0], S3Object("incoming/b.csv", '"3"', 1)]) != token
    assert execution_token("another-pipeline", DATA_BUCKET, objects) != token


def test_restored_archived_objects_are_taken() -> None:
    """ListObjectsV2 with OptionalObjectAttributes=RestoreStatus gives a restored copy's RestoreExpiryDate (S3 API
    Reference, RestoreStatus: "populated only if the object has already been restored"); a restore in progress has
    none. Served by botocore's Stubber: moto does not report restore status."""
    s3 = boto3.client("s3", region_name=REGION)
    stub = Stubber(s3)
    expiry = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    stub.add_response("list_objects_v2", {"Contents": [
        {"Key": "incoming/restored.csv", "ETag": '"1"', "Size": 5, "StorageClass": "GLACIER",
         "RestoreStatus": {"IsRestoreInProgress": False, "RestoreExpiryDate": expiry}},
        {"Key": "incoming/restoring.csv", "ETag": '"2"', "Size": 5, "StorageClass": "DEEP_ARCHIVE",
         "RestoreStatus": {"IsRestoreInProgress": True}},
        {"Key": "incoming/warm.csv", "ETag": '"3"', "Size": 5, "StorageClass": "GLACIER_IR"},
    ]}, {"Bucket": DATA_BUCKET, "Prefix": "incoming/", "OptionalObjectAttributes": ["RestoreStatus"]})
    with stub:
        listing = _backfill.list_objects(s3, DATA_BUCKET, "incoming/", "")
    assert [o.key for o in listing.objects] == ["incoming/restored.csv", "incoming/warm.csv"]
    assert listing.skipped == {"archived objects (restore them first)": 1}
