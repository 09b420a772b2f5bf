"""Build entry point: the project's CodeBuild runs ``python deploy.py`` after the seed code's tests.

1. apply ``feature_group.json`` to the feature group ``FEATURE_GROUP_NAME`` (create it, add new features,
   or refuse an incompatible change);
2. ``Script`` mode: upload every file of ``processing/`` (not its tests, not ``__pycache__``) to
   ``s3://$ARTIFACT_BUCKET/pipeline-code/<hash of the folder's content>/``; the same code keeps the same
   prefix and is not uploaded again. ``DataWranglerFlow`` mode: read the flow from ``DATA_WRANGLER_FLOW_URL``;
3. upsert the SageMaker pipeline ``SAGEMAKER_PIPELINE_NAME`` with the project's tags;
4. print the pipeline's ARN on standard output.

All settings come from the environment variables the CodeBuild project sets (see ``ENVIRONMENT``).
Any failure ends the build with one line on standard error: exit status 2 for a missing or invalid
setting, 1 for a failed AWS step.

``DataWranglerFlow`` mode is refused before anything is changed when it cannot work:

* the flow must be in a bucket named ``sagemaker-*`` or ``aws-glue-*``: the project's CodeBuild role,
  ``AmazonSageMakerServiceCatalogProductsCodeBuildRole``, reads S3 through the AWS-managed policy
  ``AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy``, which allows ``s3:GetObject`` on
  ``arn:aws:s3:::sagemaker-*`` and ``arn:aws:s3:::aws-glue-*`` only;
* the build's Region must have a Data Wrangler image: the pinned SDK's ``image_uri_config/data-wrangler.json``
  lists the Regions (Data Wrangler is not offered in every Region).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from feature_store.apply import FeatureGroupError, apply, load_definition

LOG = logging.getLogger("deploy")
SEED_DIR = Path(__file__).resolve().parent
FEATURE_GROUP_FILE = SEED_DIR / "feature_group.json"
PROCESSING_DIR = SEED_DIR / "processing"  # Script mode: the processing job's code, shipped whole
ENTRY_POINT = "transform_and_ingest.py"  # the file of PROCESSING_DIR the processing job runs
CODE_PREFIX = "pipeline-code"
# Not shipped: tests, caches, hidden files (the processing job needs none of them).
SKIPPED_DIRS = frozenset({"__pycache__", "tests"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})
SCRIPT = "Script"
DATA_WRANGLER_FLOW = "DataWranglerFlow"

# The variables the CodeBuild project sets, and what they mean.
ENVIRONMENT = {
    "SAGEMAKER_PROJECT_NAME": "the SageMaker project's name (tag sagemaker:project-name)",
    "SAGEMAKER_PROJECT_ID": "the SageMaker project's id (tag sagemaker:project-id)",
    "SAGEMAKER_PIPELINE_NAME": "the pipeline to create or update",
    "SAGEMAKER_PIPELINE_ROLE_ARN": "the pipeline's execution role, also the offline store's role",
    "ARTIFACT_BUCKET": "the project's artifact bucket (pipeline code, failed rows, input manifests)",
    "OFFLINE_STORE_S3_URI": "where the offline store writes, s3://...",
    "FEATURE_GROUP_NAME": "the feature group to create or extend",
    "TRANSFORM_MODE": f"{SCRIPT} or {DATA_WRANGLER_FLOW}",
    "DATA_WRANGLER_FLOW_URL": f"the .flow file, s3://sagemaker-.../... or s3://aws-glue-.../... ({DATA_WRANGLER_FLOW} "
                              "mode; empty otherwise)",
    "DATA_WRANGLER_OUTPUT_NAME": f"the flow's output, '<node id>.<output>' ({DATA_WRANGLER_FLOW} mode)",
    "PROCESSING_INSTANCE_TYPE": "default processing instance type, e.g. ml.m5.xlarge",
    "PROCESSING_INSTANCE_COUNT": "default processing instance count",
    "AWS_REGION": "the region (CodeBuild sets it)",
}
FLOW_ONLY = ("DATA_WRANGLER_FLOW_URL", "DATA_WRANGLER_OUTPUT_NAME")
# The buckets the CodeBuild role may read (AWS-managed policy
# AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy: s3:GetObject on these ARNs only).
CODEBUILD_READABLE_BUCKETS = ("sagemaker-", "aws-glue-")
CODEBUILD_POLICY = "AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy"


class ConfigError(Exception):
    """A missing or invalid setting."""


class DeployError(Exception):
    """An AWS step of the build failed."""


@dataclass(frozen=True)
class BuildEnvironment:
    project_name: str
    project_id: str
    pipeline_name: str
    pipeline_role_arn: str
    artifact_bucket: str
    offline_store_s3_uri: str
    feature_group_name: str
    transform_mode: str
    flow_url: str
    flow_output_name: str
    instance_type: str
    instance_count: int
    region: str

    @classmethod
    def from_environ(cls, environ: dict) -> BuildEnvironment:
        """Read and check every setting; the error names all the missing or invalid ones."""
        mode = environ.get("TRANSFORM_MODE", "")
        needed = [name for name in ENVIRONMENT if name not in FLOW_ONLY or mode == DATA_WRANGLER_FLOW]
        missing = [name for name in needed if not environ.get(name, "").strip()]
        if missing:
            raise ConfigError(f"missing environment variable(s) {', '.join(missing)}: "
                              "the project's CodeBuild project sets them")
        problems = []
        if mode not in (SCRIPT, DATA_WRANGLER_FLOW):
            problems.append(f"TRANSFORM_MODE is {mode!r}, expected {SCRIPT} or {DATA_WRANGLER_FLOW}")
        count = environ["PROCESSING_INSTANCE_COUNT"].strip()
        if not count.isdigit() or int(count) < 1:
            problems.append(f"PROCESSING_INSTANCE_COUNT is {count!r}, expected a positive integer")
        uris = ["OFFLINE_STORE_S3_URI"] + (["DATA_WRANGLER_FLOW_URL"] if mode == DATA_WRANGLER_FLOW else [])
        for name in uris:
            parsed = urlparse(environ[name].strip())
            if parsed.scheme != "s3" or not parsed.netloc:
                problems.append(f"{name} is {environ[name]!r}, expected s3://bucket/key")
            elif name == "DATA_WRANGLER_FLOW_URL" and not parsed.netloc.startswith(CODEBUILD_READABLE_BUCKETS):
                problems.append(
                    f"DATA_WRANGLER_FLOW_URL is in bucket {parsed.netloc!r}, which the project's CodeBuild role "
                    f"cannot read ({CODEBUILD_POLICY} allows s3:GetObject on buckets named sagemaker-* or "
                    "aws-glue-* only): copy the .flow file to such a bucket, e.g. the SageMaker default bucket "
                    "sagemaker-<region>-<account>")
        if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/", environ["SAGEMAKER_PIPELINE_ROLE_ARN"]):
            problems.append("SAGEMAKER_PIPELINE_ROLE_ARN is not an IAM role ARN")
        if problems:
            raise ConfigError("; ".join(problems))
        value = {name: environ.get(name, "").strip() for name in ENVIRONMENT}
        return cls(
            project_name=value["SAGEMAKER_PROJECT_NAME"],
            project_id=value["SAGEMAKER_PROJECT_ID"],
            pipeline_name=value["SAGEMAKER_PIPELINE_NAME"],
            pipeline_role_arn=value["SAGEMAKER_PIPELINE_ROLE_ARN"],
            artifact_bucket=value["ARTIFACT_BUCKET"],
            offline_store_s3_uri=value["OFFLINE_STORE_S3_URI"],
            feature_group_name=value["FEATURE_GROUP_NAME"],
            transform_mode=mode,
            flow_url=value["DATA_WRANGLER_FLOW_URL"],
            flow_output_name=value["DATA_WRANGLER_OUTPUT_NAME"],
            instance_type=value["PROCESSING_INSTANCE_TYPE"],
            instance_count=int(count),
            region=value["AWS_REGION"],
        )

    @property
    def tags(self) -> list[dict]:
        return [
            {"Key": "sagemaker:project-name", "Value": self.project_name},
            {"Key": "sagemaker:project-id", "Value": self.project_id},
        ]


def code_files(directory: Path = PROCESSING_DIR) -> dict[str, bytes]:
    """What the processing job gets of ``directory``: every file by its path below it (``/``-separated, sorted),
    without tests (``tests/``, ``test_*.py``, ``*_test.py``, ``conftest.py``), ``__pycache__``, compiled or
    hidden files."""
    files = {}
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        name = relative.name
        if (not path.is_file() or path.suffix in SKIPPED_SUFFIXES
                or any(part in SKIPPED_DIRS or part.startswith(".") for part in relative.parts)
                or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"):
            continue
        files[relative.as_posix()] = path.read_bytes()
    return dict(sorted(files.items()))


def code_hash(files: dict[str, bytes]) -> str:
    """The hash of a folder's content: each file's path, size and bytes, in path order (SHA-256, 64 bits)."""
    digest = hashlib.sha256()
    for relative, body in sorted(files.items()):
        digest.update(f"{relative}\0{len(body)}\0".encode())
        digest.update(body)
    return digest.hexdigest()[:16]


def upload_code(s3, bucket: str, directory: Path = PROCESSING_DIR) -> str:
    """Upload the folder under the hash of its content; return the prefix, ``s3://bucket/pipeline-code/<hash>/``.

    The same code keeps the same prefix, any change makes a new one. Objects already there are kept
    (``IfNoneMatch``): their key names their content, so a re-run after a partial upload completes the set.
    """
    files = code_files(directory)
    if ENTRY_POINT not in files:
        raise DeployError(f"{directory} has no {ENTRY_POINT}: the processing job runs that file")
    prefix = f"{CODE_PREFIX}/{code_hash(files)}/"
    for relative, body in files.items():
        key = prefix + relative
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "PreconditionFailed":
                raise
            LOG.info("s3://%s/%s is already there", bucket, key)
    LOG.info("processing code: %d file(s) under s3://%s/%s", len(files), bucket, prefix)
    return f"s3://{bucket}/{prefix}"


def read_flow(s3, url: str) -> dict:
    parsed = urlparse(url)
    body = s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    try:
        return json.loads(body)
    except ValueError as error:
        raise DeployError(f"the Data Wrangler flow {url} is not JSON: {error}") from error


def check_data_wrangler_region(region: str) -> None:
    """DataWranglerFlow mode needs a Data Wrangler image in ``region``: ask the pinned SDK's image config."""
    os.environ.setdefault("AWS_DEFAULT_REGION", region)  # the SDK needs a region when imported
    from pipelines.pipeline import data_wrangler_regions

    regions = data_wrangler_regions()
    if region not in regions:
        raise ConfigError(f"TRANSFORM_MODE is {DATA_WRANGLER_FLOW} but the build's Region {region} has no Data "
                          "Wrangler image (the pinned SageMaker SDK's image_uri_config/data-wrangler.json lists "
                          f"{', '.join(regions)}): use {SCRIPT} mode or create the project in one of those Regions")


def deploy(env: BuildEnvironment, boto_session: boto3.session.Session | None = None) -> str:
    """Apply the feature group definition and upsert the pipeline; return the pipeline's ARN."""
    if env.transform_mode == DATA_WRANGLER_FLOW:
        check_data_wrangler_region(env.region)  # before anything is changed
    session = boto_session or boto3.session.Session(region_name=env.region)
    definition = load_definition(FEATURE_GROUP_FILE)
    try:
        outcome = apply(session.client("sagemaker"), definition, env.feature_group_name,
                        role_arn=env.pipeline_role_arn, offline_store_s3_uri=env.offline_store_s3_uri,
                        tags=env.tags)
    except (ClientError, BotoCoreError) as error:
        raise DeployError(f"feature group {env.feature_group_name}: {error}") from error
    LOG.info("feature group %s: %s", env.feature_group_name, outcome)

    s3 = session.client("s3")
    try:
        if env.transform_mode == SCRIPT:
            code_uri, flow = upload_code(s3, env.artifact_bucket), None
        else:
            code_uri, flow = None, read_flow(s3, env.flow_url)
    except (ClientError, BotoCoreError) as error:
        raise DeployError(f"pipeline code: {error}") from error

    os.environ.setdefault("AWS_DEFAULT_REGION", env.region)  # the SDK needs a region when imported
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    from pipelines.pipeline import PipelineSettings, build_pipeline

    settings = PipelineSettings(
        name=env.pipeline_name, role_arn=env.pipeline_role_arn, region=env.region,
        feature_group_name=env.feature_group_name, instance_type=env.instance_type,
        instance_count=env.instance_count, artifact_bucket=env.artifact_bucket,
        transform_mode=env.transform_mode, code_s3_uri=code_uri, flow_s3_uri=env.flow_url or None,
        flow=flow, flow_output_name=env.flow_output_name or None,
    )
    pipeline = build_pipeline(settings, PipelineSession(boto_session=session, default_bucket=env.artifact_bucket))
    try:
        response = pipeline.upsert(
            role_arn=env.pipeline_role_arn,
            description=f"S3 upload -> {env.transform_mode} -> feature group {env.feature_group_name} "
            f"(SageMaker project {env.project_name})",
            tags=env.tags,
        )
    except Exception as error:  # the SDK raises ClientError, RoleValidationError, ValueError, ...
        raise DeployError(f"upserting pipeline {env.pipeline_name} failed: {type(error).__name__}: {error}") from error
    return response["PipelineArn"]


def one_line(message: object) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="environment variables:\n" + "\n".join(f"  {name:<27} {text}" for name, text in ENVIRONMENT.items()))
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "sagemaker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Running within a PipelineSession")  # that is the point here
    try:
        env = BuildEnvironment.from_environ(dict(os.environ))
        arn = deploy(env)
    except ConfigError as error:
        print(f"deploy: configuration error: {one_line(error)}", file=sys.stderr)
        return 2
    except (DeployError, FeatureGroupError, ValueError) as error:
        print(f"deploy: failed: {one_line(error)}", file=sys.stderr)
        return 1
    print(arn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
