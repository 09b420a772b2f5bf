"""The notebooks' backfill helper (notebooks/fsi_walkthrough/backfill.py).

Studio does not have the repository's ``generators`` package, so the helper keeps its own copy of the manifest
and token builders of ``python -m generators backfill`` (generators/ops/_manifest.py): these tests hold the two
copies to the same bytes, tokens and object choice, so a backfill started from a notebook and one started from the
command line for the same objects are one execution. S3 is moto 5.2.5; SageMaker the fake of tests/test_ops_support.py
(requests checked against botocore's model, idempotent on ``ClientRequestToken``).
"""

from __future__ import annotations

import argparse
import json

import boto3
import pytest
from e2e_support import walkthrough_helpers
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

from generators.ops import _backfill, _manifest
from generators.ops._common import Clients

fsi = walkthrough_helpers()
from fsi_walkthrough import backfill as helper  # noqa: E402  (the package is importable once walkthrough_helpers ran)

KEYS = ["incoming/a.csv", "incoming/sub dir/b.csv", "incoming/ünï/数据.csv", 'incoming/q"uote.csv',
        "incoming/" + "k" * 900 + ".csv"]


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        for bucket in (DATA_BUCKET, ARTIFACT_BUCKET):
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def _put(s3, key: str, body: bytes = b"a,b\n1,2\n", **extra) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body, **extra)


def _manifests(s3) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=ARTIFACT_BUCKET, Prefix="input-manifests/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=ARTIFACT_BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def _run(s3, sm, **changes):
    arguments = {"pipeline": PIPELINE, "manifest_bucket": ARTIFACT_BUCKET, "bucket": DATA_BUCKET,
                 "prefix": "incoming/", "watched_prefix": "incoming/"}
    arguments.update(changes)
    return helper.backfill(s3, sm, **arguments)


# --- the two copies agree ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, len(KEYS)])
def test_the_manifest_bytes_are_the_commands(count) -> None:
    assert helper.manifest_body(DATA_BUCKET, KEYS[:count]) == _manifest.manifest_body(DATA_BUCKET, KEYS[:count])


def test_the_token_and_the_split_are_the_commands() -> None:
    pairs = [(f"incoming/{n:03d}-{'x' * (n % 40)}.csv", f'"{n:032x}"') for n in range(200)]
    ours = [helper.S3Object(k, e, 10) for k, e in pairs]
    theirs = [_manifest.S3Object(k, e, 10) for k, e in pairs]
    assert helper.execution_token(PIPELINE, DATA_BUCKET, ours) == _manifest.execution_token(PIPELINE, DATA_BUCKET,
                                                                                            theirs)
    assert ([[o.key for o in part] for part in helper.split(DATA_BUCKET, ours, 1_500)]
            == [[o.key for o in part] for part in _manifest.split(DATA_BUCKET, theirs, 1_500)])


def test_both_choose_the_same_objects(s3) -> None:
    for key in KEYS:
        _put(s3, key)
    _put(s3, "incoming/folder/", b"")
    _put(s3, "incoming/empty.csv", b"")
    _put(s3, "incoming/notes.txt")
    _put(s3, "incoming/cold.csv", StorageClass="GLACIER")
    objects, left_out = helper.list_objects(s3, DATA_BUCKET, "incoming/", ".csv")
    listing = _backfill.list_objects(s3, DATA_BUCKET, "incoming/", ".csv")
    assert [(o.key, o.etag, o.size) for o in objects] == [(o.key, o.etag, o.size) for o in listing.objects]
    assert left_out == dict(listing.skipped) == {"folder markers": 1, "empty objects": 1,
                                                 "not ending with '.csv'": 1,
                                                 "archived objects (restore them first)": 1}


def test_a_notebook_backfill_and_a_command_backfill_are_one_execution(s3) -> None:
    for key in KEYS:
        _put(s3, key)
    sm = SageMakerFake(repeat_answer="conflict")
    result = _run(s3, sm)
    assert len(result.executions) == 1 and len(sm.executions) == 1

    create_start_function(function_environment())
    clients = Clients(REGION, {"lambda": boto3.client("lambda", region_name=REGION), "s3": s3, "sagemaker": sm})
    lines: list[str] = []
    args = argparse.Namespace(project=PROJECT, prefix="incoming/", instances=None, dry_run=False, region=REGION)
    assert _backfill.run(args, clients, lines.append) == 0

    assert len(sm.executions) == 1 and lines[-1].endswith("0 started, 1 already started")
    assert len(_manifests(s3)) == 1, "the command rewrote the notebook's manifest, same key, same bytes"


# --- the helper on its own --------------------------------------------------------------------------------------


def test_backfill_starts_one_execution_that_lists_every_object_once(s3) -> None:
    for key in KEYS:
        _put(s3, key)
    sm = SageMakerFake()

    result = _run(s3, sm, instances=3)

    [(key, body)] = _manifests(s3).items()
    prefix, *entries = json.loads(body)
    assert prefix == {"prefix": f"s3://{DATA_BUCKET}/"} and sorted(entries) == sorted(KEYS)
    assert result.objects == len(KEYS) and result.manifests == [f"s3://{ARTIFACT_BUCKET}/{key}"]
    [request] = sm.requests
    assert request["PipelineParameters"] == [{"Name": "InputManifestUrl", "Value": result.manifests[0]},
                                             {"Name": "ProcessingInstanceCount", "Value": "3"}]
    assert result.executions == list(sm.executions.values())


def test_dry_run_writes_and_starts_nothing(s3) -> None:
    _put(s3, "incoming/a.csv")
    sm = SageMakerFake()

    result = _run(s3, sm, dry_run=True)

    assert result.dry_run and result.objects == 1 and len(result.manifests) == 1
    assert _manifests(s3) == {} and sm.requests == [] and result.executions == []


def test_refusals_are_one_clear_line(s3) -> None:
    _put(s3, "incoming/a.csv")
    sm = SageMakerFake()
    with pytest.raises(fsi.WalkthroughError, match="outside the watched prefix 'incoming/'"):
        _run(s3, sm, prefix="archive/")
    with pytest.raises(fsi.WalkthroughError, match="nothing to backfill under s3://amzn-s3-demo-bucket/incoming/2030/"):
        _run(s3, sm, prefix="incoming/2030/")
    with pytest.raises(fsi.WalkthroughError, match="does not exist yet"):
        _run(s3, SageMakerFake(exists=False))
    with pytest.raises(fsi.WalkthroughError, match="1 to 100 instances"):
        _run(s3, sm, instances=0)
    assert _manifests(s3) == {} and sm.requests == []


def test_backfill_project_takes_the_pipeline_and_bucket_from_the_stack(s3) -> None:
    _put(s3, "incoming/a.csv")
    sm = SageMakerFake()

    class Clients:
        def __init__(self) -> None:
            self.s3, self.sagemaker = s3, sm

    resources = {"PipelineName": PIPELINE, "Outputs": {"ArtifactBucketName": ARTIFACT_BUCKET}}
    result = helper.backfill_project(Clients(), resources, DATA_BUCKET, "incoming/")  # type: ignore[arg-type]

    assert len(result.executions) == 1 and result.manifests[0].startswith(f"s3://{ARTIFACT_BUCKET}/input-manifests/")
    with pytest.raises(fsi.WalkthroughError, match="names no pipeline or artifact bucket"):
        helper.backfill_project(Clients(), {"Outputs": {}}, DATA_BUCKET, "incoming/")  # type: ignore[arg-type]
