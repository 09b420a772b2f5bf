"""One place that creates the boto3 clients the walkthrough uses.

The clients honour ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` (boto3 does that itself), so
the notebooks run unchanged against a local stand-in such as a moto server; ``endpoint_url`` overrides
the endpoint of every client when set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# Adaptive retries: the walkthrough polls several APIs and must not fail on a throttled describe call.
CLIENT_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, user_agent_extra="fsi-walkthrough/1")


class WalkthroughError(RuntimeError):
    """A step cannot go on; the message says what failed and what to do."""

    def _render_traceback_(self) -> list[str]:
        """What IPython (Jupyter, papermill) prints instead of a traceback: the message is the whole story."""
        return [f"{type(self).__name__}: {self}"]


NO_CREDENTIALS = (
    "no AWS credentials found: run the notebook in SageMaker Studio (the execution role), or configure "
    "credentials (aws configure / AWS_PROFILE / AWS_ACCESS_KEY_ID) before starting Jupyter"
)


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message", ""))
    return str(error)


@dataclass
class Aws:
    """A boto3 session for one region, and its clients created on first use."""

    region: str
    endpoint_url: str | None = None
    session: boto3.session.Session = field(init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.session = boto3.session.Session(region_name=self.region)

    def client(self, service: str, region: str = "") -> Any:
        """The client of ``service`` in the session's region (or in ``region``, e.g. a resource's home region)."""
        region = region or self.region
        key = service if region == self.region else f"{service}@{region}"
        if key not in self._clients:
            kwargs: dict[str, Any] = {"config": CLIENT_CONFIG, "region_name": region}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            self._clients[key] = self.session.client(service, **kwargs)
        return self._clients[key]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def featurestore(self) -> Any:
        return self.client("sagemaker-featurestore-runtime")

    @cached_property
    def identity(self) -> dict[str, str]:
        """The caller's account and ARN (sts:GetCallerIdentity needs no permission)."""
        response = self.client("sts").get_caller_identity()
        return {"Account": response["Account"], "Arn": response["Arn"]}

    @property
    def account(self) -> str:
        return self.identity["Account"]


def connect(region: str = "", endpoint_url: str = "") -> Aws:
    """An :class:`Aws` for ``region`` (default: the session's region, as Studio configures it). Refuses, in one
    line, a configuration without a region or without credentials (which botocore would report only at the
    first call, as a long traceback)."""
    try:
        region = region or boto3.session.Session().region_name or ""
        if not region:
            raise WalkthroughError(
                "no AWS region configured: set REGION in the parameters cell (for example 'eu-west-1')"
            )
        aws = Aws(region=region, endpoint_url=endpoint_url or None)
        credentials = aws.session.get_credentials()
    except BotoCoreError as error:  # e.g. AWS_PROFILE names a missing profile, a broken credentials file
        raise WalkthroughError(f"{NO_CREDENTIALS} ({error})") from None
    if credentials is None:
        raise WalkthroughError(NO_CREDENTIALS)
    return aws
