"""Create the SageMaker project from the published template, wait for it, read what it created.

Two delivery channels, as published by the release command:

* ``ServiceCatalog``: the product "S3 to Feature Store ingestion" that the platform admin shared with
  your role (Studio lists it under *Organization templates*); its newest non-deprecated version is used
  unless a version name is given;
* ``S3Template``: the project template's S3 URL (``CreateProject`` with ``TemplateProviders``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, WalkthroughError, error_code, error_message

LOG = logging.getLogger("fsi_walkthrough")

PRODUCT_NAME = "S3 to Feature Store ingestion"
TEMPLATE_NAME = "s3-fs-ingestion"  # CfnTemplateProvider.TemplateName: 1-32 letters, digits, hyphens
TEMPLATE_SOURCES = ("ServiceCatalog", "S3Template")
# SageMaker's own rule for project names (API model shape ProjectEntityName): 1-32 characters.
PROJECT_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}")
PROJECT_NAME_MAX = 32
# The AWS-managed policy of the project's CodeBuild role
# (AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy) lets it read objects only in buckets named
# like this: the Data Wrangler flow file the build reads must be in one of them.
FLOW_BUCKET_PREFIXES = ("sagemaker-", "aws-glue-")
DONE = {"CreateCompleted", "UpdateCompleted"}
FAILED = {"CreateFailed", "UpdateFailed", "DeleteFailed"}
PIPELINE_OUTPUT = "SageMakerPipelineName"


def check_project_name(name: str) -> str:
    """``name`` if SageMaker accepts it as a project name (``ProjectEntityName``: 1-32 characters)."""
    if len(name) > PROJECT_NAME_MAX or not PROJECT_NAME_PATTERN.fullmatch(name):
        raise WalkthroughError(
            f"PROJECT_NAME {name!r} is not a valid SageMaker project name: 1-32 letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


def check_flow_url(url: str, suggested_bucket: str = "") -> str:
    """``url`` if the project's build can read the Data Wrangler flow there (``sagemaker-*``/``aws-glue-*``)."""
    match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
    if not match:
        raise WalkthroughError(f"DataWranglerFlowUrl must be an s3://bucket/key URL of a .flow file, not {url!r}")
    bucket, key = match.groups()
    if not bucket.startswith(FLOW_BUCKET_PREFIXES):
        target = f"s3://{suggested_bucket}/{key}" if suggested_bucket else "a bucket named sagemaker-..."
        raise WalkthroughError(
            f"the project's CodeBuild role can read only buckets named sagemaker-* or aws-glue-*, not {bucket}: "
            f"copy the flow to {target} and use that DataWranglerFlowUrl"
        )
    return url


def project_parameters(values: Mapping[str, str]) -> list[dict[str, str]]:
    """Template parameters as ``[{Key, Value}]``, leaving out empty values (the template's defaults apply).

    SageMaker sets ``SageMakerProjectName`` and ``SageMakerProjectId`` itself.
    """
    reserved = {"SageMakerProjectName", "SageMakerProjectId"}
    return [{"Key": k, "Value": str(v)} for k, v in values.items() if k not in reserved and str(v) != ""]


def find_product_version(sc: Any, product_name: str = PRODUCT_NAME, version: str = "") -> dict[str, str]:
    """Product id and provisioning artifact (version) to create the project from.

    ``DescribeProduct`` is the end-user call: it sees only products shared with your role, and only
    their active versions. Without ``version`` the newest version not marked DEPRECATED is used.
    """
    try:
        product = sc.describe_product(Name=product_name)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise WalkthroughError(
                f"Service Catalog product {product_name!r} is not available to your role: ask the platform admin "
                "to deploy the portfolio stack with your Studio execution role as principal (README, 'Deploying')"
            ) from error
        raise
    product_id = product["ProductViewSummary"]["ProductId"]
    artifacts = product.get("ProvisioningArtifacts", [])
    if version:
        chosen = [a for a in artifacts if a.get("Name") == version]
        if not chosen:
            names = ", ".join(a.get("Name", "?") for a in artifacts) or "none"
            raise WalkthroughError(f"product {product_name!r} has no active version {version!r} (available: {names})")
    else:
        chosen = sorted(
            (a for a in artifacts if a.get("Guidance") != "DEPRECATED"),
            key=lambda a: a.get("CreatedTime") or 0,
        )[-1:]
        if not chosen:
            raise WalkthroughError(f"product {product_name!r} has no active version: ask the release engineer")
    artifact = chosen[-1]
    LOG.info("product %s (%s), version %s (%s)", product_name, product_id, artifact.get("Name"), artifact["Id"])
    return {"ProductId": product_id, "ProvisioningArtifactId": artifact["Id"], "Version": artifact.get("Name", "")}


def service_catalog_request(
    name: str, description: str, product: Mapping[str, str], parameters: list[dict[str, str]]
) -> dict[str, Any]:
    """CreateProject arguments for the Service Catalog channel."""
    return {
        "ProjectName": check_project_name(name),
        "ProjectDescription": description,
        "ServiceCatalogProvisioningDetails": {
            "ProductId": product["ProductId"],
            "ProvisioningArtifactId": product["ProvisioningArtifactId"],
            "ProvisioningParameters": parameters,
        },
    }


def s3_template_request(
    name: str, description: str, template_url: str, parameters: list[dict[str, str]], role_arn: str = ""
) -> dict[str, Any]:
    """CreateProject arguments for the S3 template channel (``TemplateURL`` must be an https:// URL)."""
    if not template_url.startswith("https://"):
        raise WalkthroughError(
            f"TEMPLATE_URL must be the https:// URL of the published project template, not {template_url!r}"
        )
    provider: dict[str, Any] = {"TemplateName": TEMPLATE_NAME, "TemplateURL": template_url, "Parameters": parameters}
    if role_arn:
        provider["RoleARN"] = role_arn
    return {
        "ProjectName": check_project_name(name),
        "ProjectDescription": description,
        "TemplateProviders": [{"CfnTemplateProvider": provider}],
    }


def create_project(sm: Any, request: dict[str, Any]) -> dict[str, str]:
    """Create the project; an existing project of that name is reused (re-running the notebook is safe)."""
    name = request["ProjectName"]
    try:
        response = sm.create_project(**request)
        LOG.info("creating project %s (%s)", name, response["ProjectId"])
        return {"ProjectName": name, "ProjectId": response["ProjectId"], "ProjectArn": response["ProjectArn"]}
    except ClientError as error:
        if error_code(error) not in ("ValidationException", "ResourceInUse") or "exist" not in error_message(error):
            raise
    existing = sm.describe_project(ProjectName=name)
    LOG.info("project %s exists already (%s): using it", name, existing["ProjectId"])
    return {k: existing[k] for k in ("ProjectName", "ProjectId", "ProjectArn")}


def wait_for_project(
    sm: Any,
    name: str,
    *,
    timeout: float = 1800,
    poll: float = 15,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait until the project's stack is created; a failed creation raises with the stack's reason."""
    deadline = clock() + timeout
    while True:
        project = sm.describe_project(ProjectName=name)
        status = project["ProjectStatus"]
        if status in DONE:
            LOG.info("project %s is %s", name, status)
            return project
        if status in FAILED:
            raise WalkthroughError(f"project {name} is {status}: {_status_message(project)}")
        if clock() >= deadline:
            raise TimeoutError(
                f"project {name} is still {status} after {timeout / 60:.0f} min: watch it in Studio "
                "(Deployments > Projects) or in the CloudFormation console, then re-run this cell"
            )
        LOG.info("project %s is %s", name, status)
        sleep(poll)


def _status_message(project: Mapping[str, Any]) -> str:
    details = project.get("ServiceCatalogProvisionedProductDetails", {})
    messages = [details.get("ProvisionedProductStatusMessage", "")]
    for provider in project.get("TemplateProviderDetails", []):
        messages.append(provider.get("CfnTemplateProviderDetail", {}).get("StackDetail", {}).get("StatusMessage", ""))
    return "; ".join(m for m in messages if m) or "no reason given: see the stack events in CloudFormation"


def stack_name(project: Mapping[str, Any], account: str) -> str:
    """The CloudFormation stack that holds the project's resources.

    S3 template projects report their stack; Service Catalog names a provisioned product's stack
    ``SC-<account>-<provisioned product id>``.
    """
    for provider in project.get("TemplateProviderDetails", []):
        stack = provider.get("CfnTemplateProviderDetail", {}).get("StackDetail", {})
        if stack.get("Id") or stack.get("Name"):
            return stack.get("Id") or stack["Name"]
    product_id = project.get("ServiceCatalogProvisionedProductDetails", {}).get("ProvisionedProductId")
    if not product_id:
        raise WalkthroughError(f"project {project.get('ProjectName')} names no stack yet: wait until it is created")
    return f"SC-{account}-{product_id}"


def project_resources(aws: Aws, project: Mapping[str, Any]) -> dict[str, Any]:
    """What the walkthrough needs to know about a created project: stack outputs, buckets, log groups."""
    cfn = aws.client("cloudformation")
    stack = stack_name(project, aws.account)
    try:
        outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    except ClientError as error:
        raise WalkthroughError(
            f"cannot read stack {stack} of project {project.get('ProjectName')}: {error_message(error)}. "
            "The platform admin can attach the sm-policies studio-user policy to your role."
        ) from error
    resources = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        resources.extend(page["StackResourceSummaries"])
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        if resource.get("PhysicalResourceId"):
            by_type.setdefault(resource["ResourceType"], []).append(resource["PhysicalResourceId"])
    info = {
        "ProjectName": project["ProjectName"],
        "ProjectId": project["ProjectId"],
        "ProjectArn": project.get("ProjectArn", ""),
        "StackName": stack,
        "Outputs": {o["OutputKey"]: o.get("OutputValue", "") for o in outputs},
        "Buckets": sorted(by_type.get("AWS::S3::Bucket", [])),
        "LogGroups": sorted(
            [f"/aws/codebuild/{name}" for name in by_type.get("AWS::CodeBuild::Project", [])]
            + by_type.get("AWS::Logs::LogGroup", [])
        ),
    }
    info["PipelineName"] = info["Outputs"].get(PIPELINE_OUTPUT, "")
    LOG.info("project %s: stack %s, pipeline %s", info["ProjectName"], stack, info["PipelineName"] or "?")
    return info


def delete_project(
    sm: Any,
    name: str,
    *,
    timeout: float = 1800,
    poll: float = 15,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Delete the project (its stack; retained buckets stay) and wait until it is gone; False if none."""
    try:
        sm.delete_project(ProjectName=name)
    except ClientError as error:
        if _project_missing(error):
            LOG.info("project %s does not exist", name)
            return False
        raise
    deadline = clock() + timeout
    while True:
        try:
            project = sm.describe_project(ProjectName=name)
        except ClientError as error:
            if _project_missing(error):
                LOG.info("deleted project %s", name)
                return True
            raise
        status = project["ProjectStatus"]
        if status == "DeleteCompleted":
            LOG.info("deleted project %s", name)
            return True
        if status == "DeleteFailed":
            raise WalkthroughError(f"deleting project {name} failed: {_status_message(project)}")
        if clock() >= deadline:
            raise TimeoutError(f"project {name} is still {status} after {timeout / 60:.0f} min")
        sleep(poll)


def _project_missing(error: BaseException) -> bool:
    message = error_message(error).lower()
    return error_code(error) in ("ValidationException", "ResourceNotFound") and (
        "does not exist" in message or "not found" in message
    )
