"""Run the seed code's build entry point (deploy.py) under moto and record its AWS calls.

Started by ``tests/test_runtime_calls_recorded.py`` in a new process (the SageMaker SDK reads its region and
configuration when imported, and the seed code's packages must not mix with this repository's):

    python tests/runtime_record_deploy.py SPEC.json OUT.json

SPEC: ``{"environment": {...}, "buckets": [...], "objects": {"s3://b/k": "/local/file"}, "roles": [arn, ...],
"runs": [{"name": ..., "environment": {...overrides}, "deny": [[service, operation], ...]}]}``. Each run calls
``deploy.main([])`` inside one moto account (runs share state: the second build of a pipeline updates it).
OUT: ``{"runs": [{"name": ..., "status": exit status, "stderr": ..., "calls": [[service, operation, params]]}]}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED_DIR = REPO / "seed-code" / "s3-fs-ingestion"
SDK_CONFIG = SEED_DIR / "tests" / "sagemaker-config.yaml"  # telemetry opted out


def _environment() -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS")) or name in (
            "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "SAGEMAKER_VALIDATE_ROLE",
        ):
            del os.environ[name]
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(SDK_CONFIG),
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(SDK_CONFIG),
    })


def main(spec_path: str, out_path: str) -> int:
    _environment()
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    sys.path[:0] = [str(SEED_DIR), str(SEED_DIR / "tests"), str(REPO / "tests"), str(REPO)]
    import boto3
    import moto_feature_groups
    import pytest
    from moto import mock_aws
    from runtime_recording import recording

    patches = pytest.MonkeyPatch()
    moto_feature_groups.patch(patches)  # the seed code's own fixes for moto's feature group gaps
    import deploy

    region = os.environ["AWS_REGION"]
    results = []
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in spec["buckets"]:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        for url, local in spec.get("objects", {}).items():
            bucket, key = url.removeprefix("s3://").split("/", 1)
            s3.put_object(Bucket=bucket, Key=key, Body=Path(local).read_bytes())
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "sagemaker.amazonaws.com"}}]}
        for arn in spec["roles"]:
            path, name = "/" + arn.split(":role/", 1)[1].rsplit("/", 1)[0] + "/", arn.rsplit("/", 1)[1]
            boto3.client("iam").create_role(RoleName=name, Path=path.replace("//", "/"),
                                            AssumeRolePolicyDocument=json.dumps(trust))
        for run in spec["runs"]:
            os.environ.update({**spec["environment"], **run.get("environment", {})})
            stderr = io.StringIO()
            with recording(deny=[tuple(d) for d in run.get("deny", [])]) as calls, \
                    contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                status = deploy.main([])
            results.append({"name": run["name"], "status": status, "stderr": stderr.getvalue()[-4000:],
                            "calls": calls})
    patches.undo()
    Path(out_path).write_text(json.dumps({"runs": results}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
