"""AWS plumbing shared by the release steps: clients, one-line error descriptions, partition-aware URLs.

Every client comes from one :class:`AwsClients`, so the endpoint (``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>``), credentials and region are whatever boto3 resolves from the
environment; tests hand in stubbed or moto-backed clients instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from botocore.loaders import create_loader

from ..settings import SettingsError, validate_bucket

ACCOUNT_PSEUDO = "${AWS::AccountId}"
REGION_PSEUDO = "${AWS::Region}"
MESSAGE_MAX = 300  # an HTML error page from a proxy must not flood the one-line error


class ReleaseError(Exception):
    """A release step failed. The message is one line naming what failed, the cause and what to do."""


class PreconditionError(ReleaseError):
    """Found before anything was uploaded or registered: nothing changed."""


class ConflictError(ReleaseError):
    """An object of this version is already published with different bytes."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def http_status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def describe(error: BaseException) -> str:
    """``Code: message`` of an AWS error, on one line (HEAD responses carry only a status code)."""
    if isinstance(error, ClientError):
        code = error_code(error)
        message = str(error.response.get("Error", {}).get("Message", "")).strip()
        readable = {"403": "AccessDenied", "404": "NotFound", "412": "PreconditionFailed"}.get(code, code)
        text = f"{readable}: {message}" if message and message != readable else readable
    else:
        text = str(error) or type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 3] + "..."


@dataclass
class AwsClients:
    """Creates (and caches) boto3 clients; ``overrides`` maps a service name to a ready client."""

    session: Any = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _cache: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.session is None:
            # botocore reads AWS_DEFAULT_REGION; CodeBuild, Lambda and many CI systems set only AWS_REGION.
            self.session = boto3.session.Session(
                region_name=None if os.environ.get("AWS_DEFAULT_REGION") else os.environ.get("AWS_REGION") or None
            )

    @property
    def region(self) -> str | None:
        region = self.session.region_name
        return str(region) if region else None

    def require_region(self) -> str:
        if not self.region:
            raise PreconditionError(
                "no AWS region configured: set AWS_REGION or AWS_DEFAULT_REGION (or use a profile with a region)"
            )
        return self.region

    def client(self, service: str, region: str | None = None) -> Any:
        if service in self.overrides:
            return self.overrides[service]
        key = (service, region or self.region)
        if key not in self._cache:
            try:
                self._cache[key] = self.session.client(service, region_name=key[1])
            except NoRegionError:
                raise PreconditionError(
                    f"no AWS region configured for {service}: set AWS_REGION (or a profile with a region)"
                ) from None
        return self._cache[key]


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str


def caller_identity(clients: AwsClients) -> Identity:
    """Who is publishing (sts:GetCallerIdentity needs no permission): fails early on bad credentials."""
    try:
        response = clients.client("sts").get_caller_identity()
    except NoCredentialsError:
        raise PreconditionError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or run where an IAM role is available"
        ) from None
    except ClientError as error:
        raise PreconditionError(f"AWS rejected the credentials ({describe(error)}): refresh them") from None
    except BotoCoreError as error:
        raise PreconditionError(f"cannot check the AWS credentials: {describe(error)}") from None
    return Identity(account=response["Account"], arn=response["Arn"])


def resolve_bucket(pattern: str, account: str, region: str | None) -> str:
    """Replace ``${AWS::AccountId}``/``${AWS::Region}`` in a bucket pattern with the publishing account/region."""
    name = pattern.replace(ACCOUNT_PSEUDO, account)
    if REGION_PSEUDO in name:
        if not region:
            raise PreconditionError(
                f"bucket {pattern!r} uses {REGION_PSEUDO} but no AWS region is configured: set AWS_REGION"
            )
        name = name.replace(REGION_PSEUDO, region)
    try:
        return validate_bucket(name)
    except SettingsError as error:
        raise PreconditionError(str(error)) from None


def location_to_region(location: str | None) -> str:
    """GetBucketLocation's answer as a region: us-east-1 answers null, old eu-west-1 buckets ``EU``."""
    if not location:
        return "us-east-1"
    return "eu-west-1" if location == "EU" else location


def bucket_region(clients: AwsClients, bucket: str, purpose: str) -> str:
    """Check that ``bucket`` exists and is reachable, and return its region (s3:ListBucket, GetBucketLocation)."""
    s3 = clients.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except ClientError as error:
        code, status = error_code(error), http_status(error)
        if code in ("404", "NoSuchBucket") or status == 404:
            raise PreconditionError(
                f"{purpose} bucket {bucket!r} does not exist: create it or check the bucket name"
            ) from None
        if code in ("403", "AccessDenied", "AllAccessDisabled") or status == 403:
            raise PreconditionError(
                f"access denied to {purpose} bucket {bucket!r} (s3:ListBucket/s3:GetBucketLocation): "
                "use a role with the sm-policies ReleasePolicy"
            ) from None
        raise PreconditionError(f"cannot check {purpose} bucket {bucket!r}: {describe(error)}") from None
    except NoCredentialsError:
        raise PreconditionError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID") from None
    except BotoCoreError as error:
        raise PreconditionError(f"cannot check {purpose} bucket {bucket!r}: {describe(error)}") from None
    return location_to_region(location)


@cache
def _partitions() -> list[dict[str, Any]]:
    return list(create_loader().load_data("partitions")["partitions"])


def dns_suffix(region: str) -> str:
    """The partition's DNS suffix: amazonaws.com, amazonaws.com.cn for cn- regions, ... (botocore's data)."""
    partitions = _partitions()
    for partition in partitions:
        if region in partition.get("regions", {}):
            return str(partition["outputs"]["dnsSuffix"])
    for partition in partitions:
        if re.match(partition["regionRegex"], region):
            return str(partition["outputs"]["dnsSuffix"])
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def object_url(bucket: str, region: str, key: str) -> str:
    """Virtual-hosted HTTPS URL of an object, as CloudFormation and Service Catalog expect it."""
    return f"https://{bucket}.s3.{region}.{dns_suffix(region)}/{quote(key, safe='/')}"
