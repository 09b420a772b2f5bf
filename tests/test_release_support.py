"""Helpers for the release tests (no tests here): a minimal source tree, a moto S3, spies on put_object."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from generators.cli import main
from generators.settings import SEED_CODE_DIR, Settings

REGION = "eu-west-1"
BUCKET = "release-artifacts"
VERSION = "1.2.0"
PREFIX = f"releases/s3-fs-ingestion/{VERSION}"
PRODUCT_ID = "prod-abcdefghijklm"


def make_repo_root(root: Path) -> Path:
    """Seed code and Lambda sources: the release mechanics do not depend on their contents."""
    seed = root / SEED_CODE_DIR
    (seed / "pipelines").mkdir(parents=True)
    (seed / "pipelines" / "pipeline.py").write_text("PIPELINE = 'ingest'\n", encoding="utf-8")
    (seed / "buildspec.yml").write_text("version: 0.2\n", encoding="utf-8")
    for name in Settings().lambda_zips:
        function = root / "lambda_functions" / name
        function.mkdir(parents=True)
        (function / "app.py").write_text("def handler(event, context):\n    return None\n", encoding="utf-8")
    return root


def sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def create_bucket(name: str, region: str = REGION) -> Any:
    s3 = boto3.client("s3", region_name=region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return s3


def keys(s3: Any, bucket: str = BUCKET) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def tags(s3: Any, key: str, bucket: str = BUCKET) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


@dataclass
class PutSpy:
    """Records every put_object key; raises on the ``fail_on``-th call (1-based) when set."""

    real: Any
    fail_on: int | None = None
    error: Exception | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs["Key"])
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise self.error or ClientError(
                {"Error": {"Code": "InternalError", "Message": "We encountered an internal error."},
                 "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutObject")
        return self.real(**kwargs)


def spy_puts(s3: Any, fail_on: int | None = None, error: Exception | None = None) -> PutSpy:
    spy = PutSpy(s3.put_object, fail_on, error)
    s3.put_object = spy
    return spy


def run_release(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["release", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]
