"""Check a CodeConnections connection before a project uses it (``SourceProvider = CodeConnection``).

The project's CodePipeline and CodeBuild run as the AWS-managed project roles. Their managed policies
(AmazonSageMakerServiceCatalogProductsCodePipelineServiceRolePolicy and ...CodeBuildServiceRolePolicy) allow
``codeconnections:UseConnection`` / ``codestar-connections:UseConnection`` only on connections tagged
``sagemaker=true`` (``StringEqualsIgnoreCase`` on ``aws:ResourceTag/sagemaker``; IAM matches the tag key
without regard to case). And only an ``AVAILABLE`` connection works: one created by the CLI, an SDK or
CloudFormation stays ``PENDING`` until its owner completes it in the console.

Connections made with the older ``codestar-connections`` API, or in the console before July 2024, have
``codestar-connections`` ARNs; newer ones ``codeconnections`` ARNs. Both APIs remain, and IAM wants the
service prefix of the resource, so each ARN is read with the client of its own prefix. A connection is a
global resource whose data (tags included) is managed in the region named in its ARN: it is read, and
tagged, there.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from botocore.exceptions import ClientError

from .aws import Aws, WalkthroughError, error_code, error_message

LOG = logging.getLogger("fsi_walkthrough")

CONNECTION_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):(?P<service>codeconnections|codestar-connections):(?P<region>[a-z0-9-]+):"
    r"(?P<account>\d{12}):connection/(?P<id>[\w-]+)"
)
REQUIRED_TAG = ("sagemaker", "true")
DENIED = ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation")


def parse_connection_arn(arn: str) -> dict[str, str]:
    """The parts of a connection ARN (either service prefix); refuses anything else."""
    match = CONNECTION_ARN.fullmatch(arn.strip())
    if not match:
        raise WalkthroughError(
            f"CODE_CONNECTION_ARN {arn!r} is not a connection ARN "
            "(arn:aws:codeconnections:<region>:<account>:connection/<id>, or codestar-connections for older ones)"
        )
    return match.groupdict()


def tag_command(arn: str) -> str:
    """The AWS CLI command that tags the connection so the project roles may use it."""
    parts = parse_connection_arn(arn)
    key, value = REQUIRED_TAG
    return (
        f"aws {parts['service']} tag-resource --region {parts['region']} --resource-arn {arn} "
        f"--tags Key={key},Value={value}"
    )


def is_tagged_for_sagemaker(tags: list[dict[str, str]]) -> bool:
    """Would ``aws:ResourceTag/sagemaker`` StringEqualsIgnoreCase "true" match these tags?"""
    key, value = REQUIRED_TAG
    matching = [tag for tag in tags if tag.get("Key", "").lower() == key]
    return len(matching) == 1 and matching[0].get("Value", "").lower() == value


def check_connection(aws: Aws, arn: str) -> dict[str, str]:
    """Refuse a connection the project could not use: missing, not AVAILABLE, or not tagged sagemaker=true.

    When the caller may not read the connection, the check is skipped with a warning that says what to
    verify by hand. Returns ``{"ConnectionArn", "ConnectionStatus", "ProviderType", "checked"}``.
    """
    arn = arn.strip()
    parts = parse_connection_arn(arn)
    client = aws.client(parts["service"], parts["region"])
    unchecked = {"ConnectionArn": arn, "ConnectionStatus": "", "ProviderType": "", "checked": "no"}
    try:
        connection = client.get_connection(ConnectionArn=arn)["Connection"]
        status = connection.get("ConnectionStatus", "")
        if status != "AVAILABLE":
            raise WalkthroughError(_status_advice(arn, status))
        tags = client.list_tags_for_resource(ResourceArn=arn).get("Tags", [])
    except ClientError as error:
        code = error_code(error)
        if code in DENIED:
            LOG.warning(
                "cannot check connection %s (%s): make sure it is AVAILABLE and tagged sagemaker=true (%s)",
                arn, code, tag_command(arn),
            )
            return unchecked
        if code == "ResourceNotFoundException":
            raise WalkthroughError(
                f"connection {arn} does not exist in account {parts['account']}: create it in the console "
                "(Developer Tools > Settings > Connections) and set CODE_CONNECTION_ARN to its ARN"
            ) from error
        raise WalkthroughError(f"cannot read connection {arn}: {code} {error_message(error)}") from error
    if not is_tagged_for_sagemaker(tags):
        raise WalkthroughError(
            f"connection {arn} is not tagged sagemaker=true, so the project's CodePipeline and CodeBuild roles may "
            f"not use it: run `{tag_command(arn)}`, then run this cell again"
        )
    LOG.info("connection %s (%s) is AVAILABLE and tagged sagemaker=true", arn, connection.get("ProviderType", "?"))
    return {"ConnectionArn": arn, "ConnectionStatus": status, "ProviderType": connection.get("ProviderType", ""),
            "checked": "yes"}


def _status_advice(arn: str, status: str) -> str:
    if status == "PENDING":
        return (
            f"connection {arn} is PENDING: complete it in the console (Developer Tools > Settings > Connections > "
            "choose it > Update pending connection), then run this cell again"
        )
    return (
        f"connection {arn} is {status or 'in an unknown state'}, not AVAILABLE: open it in the console "
        "(Developer Tools > Settings > Connections), update it or create a new one, then run this cell again"
    )


def connection_parameters(parameters: list[dict[str, Any]]) -> tuple[str, str]:
    """(CodeConnectionArn, RepositoryId) of a CodeConnection project; refuses missing values."""
    values = {p["Key"]: str(p["Value"]) for p in parameters}
    arn, repository = values.get("CodeConnectionArn", ""), values.get("RepositoryId", "")
    if not arn or not repository:
        raise WalkthroughError(
            "SOURCE_PROVIDER 'CodeConnection' needs CODE_CONNECTION_ARN and REPOSITORY_ID (owner/name of the "
            "repository holding the seed code)"
        )
    return arn, repository
