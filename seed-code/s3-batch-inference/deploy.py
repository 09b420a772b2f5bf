"""Build entry point: the project's CodeBuild runs ``python deploy.py`` after the seed code's tests.

1. resolve the latest Approved model package of the group ``MODEL_PACKAGE_GROUP_NAME``: ListModelPackages
   with ``ModelApprovalStatus=Approved``, ``SortBy=CreationTime``, ``SortOrder=Descending`` (the default
   order is ascending), following ``NextToken`` until a page holds a package ("ListModelPackages", SageMaker
   API reference, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html);
2. check that package (DescribeModelPackage): it must be ``Completed`` and have an inference specification,
   or CreateModel cannot use it;
3. upsert the SageMaker pipeline ``SAGEMAKER_PIPELINE_NAME`` (a model step on that package, a batch
   transform of the uploaded file) with the project's tags, its description naming the package;
4. print the pipeline's ARN on standard output.

The project redeploys itself (an EventBridge rule restarts its CodePipeline) whenever a package of the group
is approved or rejected, so new uploads use the newly approved model, and rejecting the latest package brings
back the previous approved one. When no package is Approved any more, the build deletes the project's
pipeline before failing: uploads must not be scored by a rejected model. They then go to the project's
dead-letter queue, whose messages say to approve a model, and the next approval deploys the pipeline again.

All settings come from the environment variables the CodeBuild project sets (see ``ENVIRONMENT``).
Any failure ends the build with one line on standard error: exit status 2 for a missing or invalid
setting, 1 for a failed AWS step, a group that does not exist or holds no Approved package.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

LOG = logging.getLogger("deploy")
DEFAULT_CONTENT_TYPE = "text/csv"
PAGE_SIZE = 100  # ListModelPackages MaxResults: 1..100

# The variables the CodeBuild project sets, and what they mean.
ENVIRONMENT = {
    "SAGEMAKER_PROJECT_NAME": "the SageMaker project's name (tag sagemaker:project-name)",
    "SAGEMAKER_PROJECT_ID": "the SageMaker project's id (tag sagemaker:project-id)",
    "SAGEMAKER_PIPELINE_NAME": "the pipeline to create or update",
    "SAGEMAKER_PIPELINE_ROLE_ARN": "the pipeline's execution role (also the model's execution role)",
    "ARTIFACT_BUCKET": "the project's artifact bucket (input manifests, predictions)",
    "MODEL_PACKAGE_GROUP_NAME": "the model package group whose latest Approved package scores the uploads",
    "PREDICTIONS_PREFIX": "key prefix of the predictions in the artifact bucket, ending with '/', e.g. predictions/",
    "TRANSFORM_INSTANCE_TYPE": "default batch transform instance type, e.g. ml.m5.large",
    "TRANSFORM_INSTANCE_COUNT": "default batch transform instance count (the manifest path)",
    "CONTENT_TYPE": f"MIME type of the uploaded files and of the predictions (default {DEFAULT_CONTENT_TYPE})",
    "AWS_REGION": "the region (CodeBuild sets it)",
}
OPTIONAL = ("CONTENT_TYPE",)
REDEPLOY_HINT = "the project redeploys itself when a package's approval status changes"
# botocore's SageMaker model: ListModelPackages ModelPackageGroupName (a name, not an ARN, here).
GROUP_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
MIME_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+(\s*;.*)?")


class ConfigError(Exception):
    """A missing or invalid setting."""


class NoApprovedPackage(Exception):
    """The group exists but holds no Approved package (a DeployError once the pipeline is withdrawn)."""


class DeployError(Exception):
    """An AWS step of the build failed, or there is no model to deploy."""


@dataclass(frozen=True)
class BuildEnvironment:
    project_name: str
    project_id: str
    pipeline_name: str
    pipeline_role_arn: str
    artifact_bucket: str
    model_package_group: str
    predictions_prefix: str
    instance_type: str
    instance_count: int
    content_type: str
    region: str

    @classmethod
    def from_environ(cls, environ: dict) -> BuildEnvironment:
        """Read and check every setting; the error names all the missing or invalid ones."""
        missing = [name for name in ENVIRONMENT if name not in OPTIONAL and not environ.get(name, "").strip()]
        if missing:
            raise ConfigError(f"missing environment variable(s) {', '.join(missing)}: "
                              "the project's CodeBuild project sets them")
        value = {name: environ.get(name, "").strip() for name in ENVIRONMENT}
        content_type = value["CONTENT_TYPE"] or DEFAULT_CONTENT_TYPE
        problems = []
        count = value["TRANSFORM_INSTANCE_COUNT"]
        if not count.isdigit() or int(count) < 1:
            problems.append(f"TRANSFORM_INSTANCE_COUNT is {count!r}, expected a positive integer")
        prefix = value["PREDICTIONS_PREFIX"]
        if not prefix.endswith("/") or prefix.startswith("/") or "//" in prefix:
            problems.append(f"PREDICTIONS_PREFIX is {prefix!r}, expected a key prefix ending with '/', "
                            "e.g. predictions/")
        if not GROUP_NAME.fullmatch(value["MODEL_PACKAGE_GROUP_NAME"]):
            problems.append(f"MODEL_PACKAGE_GROUP_NAME is {value['MODEL_PACKAGE_GROUP_NAME']!r}, not a model "
                            "package group name")
        if not value["TRANSFORM_INSTANCE_TYPE"].startswith("ml."):
            problems.append(f"TRANSFORM_INSTANCE_TYPE is {value['TRANSFORM_INSTANCE_TYPE']!r}, expected ml.*")
        if not MIME_TYPE.fullmatch(content_type):
            problems.append(f"CONTENT_TYPE is {content_type!r}, expected a MIME type such as {DEFAULT_CONTENT_TYPE}")
        if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/", value["SAGEMAKER_PIPELINE_ROLE_ARN"]):
            problems.append("SAGEMAKER_PIPELINE_ROLE_ARN is not an IAM role ARN")
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(
            project_name=value["SAGEMAKER_PROJECT_NAME"],
            project_id=value["SAGEMAKER_PROJECT_ID"],
            pipeline_name=value["SAGEMAKER_PIPELINE_NAME"],
            pipeline_role_arn=value["SAGEMAKER_PIPELINE_ROLE_ARN"],
            artifact_bucket=value["ARTIFACT_BUCKET"],
            model_package_group=value["MODEL_PACKAGE_GROUP_NAME"],
            predictions_prefix=prefix,
            instance_type=value["TRANSFORM_INSTANCE_TYPE"],
            instance_count=int(count),
            content_type=content_type,
            region=value["AWS_REGION"],
        )

    @property
    def tags(self) -> list[dict]:
        return [
            {"Key": "sagemaker:project-name", "Value": self.project_name},
            {"Key": "sagemaker:project-id", "Value": self.project_id},
        ]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def latest_approved_package(sagemaker, group: str) -> dict:
    """The ModelPackageSummary of the most recently created Approved package of ``group``.

    The group must exist (DescribeModelPackageGroup answers ValidationException "... does not exist" otherwise).
    Pages are followed while they are empty: a filtered list may return an empty page with a NextToken.
    """
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as error:
        if _error_code(error) in ("ValidationException", "ResourceNotFound") and "not exist" in str(error):
            raise DeployError(f"model package group {group} does not exist: create it (or set the project's "
                              f"ModelPackageGroupName to an existing group) and approve a model package in it; "
                              f"{REDEPLOY_HINT}") from error
        raise
    pages = sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending",
        PaginationConfig={"PageSize": PAGE_SIZE},
    )
    for page in pages:
        packages = page.get("ModelPackageSummaryList", [])
        if packages:
            return packages[0]
    raise NoApprovedPackage(f"no Approved model package in group {group}: approve one; {REDEPLOY_HINT}")


def check_package(sagemaker, arn: str) -> dict:
    """DescribeModelPackage: CreateModel needs a ``Completed`` package with an inference specification."""
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    problems = []
    if package.get("ModelPackageStatus") != "Completed":
        problems.append(f"its status is {package.get('ModelPackageStatus')}, not Completed")
    if not package.get("InferenceSpecification", {}).get("Containers"):
        problems.append("it has no inference specification (no container to run)")
    if problems:
        raise DeployError(f"the latest Approved model package {arn} cannot be deployed: {'; '.join(problems)}; "
                          f"fix it, or reject it so that the previous Approved package is used; {REDEPLOY_HINT}")
    return package


def withdraw_pipeline(sagemaker, name: str) -> None:
    """Delete the project's pipeline if it exists (DeletePipeline), so no upload is scored by a model that is no
    longer approved; a pipeline that does not exist is fine."""
    try:
        sagemaker.delete_pipeline(PipelineName=name, ClientRequestToken=f"withdraw-{name}"[:128].ljust(32, "-"))
    except ClientError as error:
        if _error_code(error) in ("ResourceNotFound", "ValidationException"):
            return
        raise DeployError(
            f"no Approved model package, and the pipeline {name} could not be withdrawn: {error}"
        ) from error
    LOG.warning("pipeline %s deleted: its model package is no longer Approved", name)


def description(env: BuildEnvironment, package_arn: str) -> str:
    """The pipeline's description: which package it deploys (PipelineDescription: at most 3,072 characters)."""
    return (f"S3 upload -> batch transform with model package {package_arn} (latest Approved in group "
            f"{env.model_package_group}; SageMaker project {env.project_name})")


def deploy(env: BuildEnvironment, boto_session: boto3.session.Session | None = None) -> str:
    """Resolve the model package and upsert the pipeline; return the pipeline's ARN."""
    session = boto_session or boto3.session.Session(region_name=env.region)
    sagemaker = session.client("sagemaker")
    try:
        summary = latest_approved_package(sagemaker, env.model_package_group)
        package_arn = summary["ModelPackageArn"]
        check_package(sagemaker, package_arn)
    except NoApprovedPackage as error:
        withdraw_pipeline(sagemaker, env.pipeline_name)
        raise DeployError(str(error)) from error
    except (ClientError, BotoCoreError) as error:
        raise DeployError(f"model package group {env.model_package_group}: {error}") from error
    LOG.info("model package %s (version %s, created %s)", package_arn, summary.get("ModelPackageVersion"),
             summary.get("CreationTime"))

    os.environ.setdefault("AWS_DEFAULT_REGION", env.region)  # the SDK needs a region when imported
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    from pipelines.pipeline import PipelineSettings, build_pipeline

    settings = PipelineSettings(
        name=env.pipeline_name, role_arn=env.pipeline_role_arn, model_package_arn=package_arn,
        artifact_bucket=env.artifact_bucket, predictions_prefix=env.predictions_prefix,
        instance_type=env.instance_type, instance_count=env.instance_count, content_type=env.content_type,
        accept=env.content_type, tags=tuple((tag["Key"], tag["Value"]) for tag in env.tags),
    )
    pipeline = build_pipeline(settings, PipelineSession(boto_session=session, default_bucket=env.artifact_bucket))
    try:
        response = pipeline.upsert(role_arn=env.pipeline_role_arn, description=description(env, package_arn),
                                   tags=env.tags)
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
    except (DeployError, ValueError) as error:
        print(f"deploy: failed: {one_line(error)}", file=sys.stderr)
        return 1
    print(arn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
