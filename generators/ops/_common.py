"""What the operations commands share: AWS clients for one Region, one-line errors, the project's start function.

A provisioned project names its resources after its name and id (:mod:`generators.names`). The commands compute
the start function's and the dead-letter queue's names from the project name, and read everything else they need
(pipeline, watched bucket, prefix and suffix, artifact bucket) from the deployed start function's environment,
which the project stack sets: what the project runs, not what its template would compute for today's defaults.
Imported only when a command runs (boto3).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from ..cli import CliError
from ..names import ProjectNames
from ..products import products
from ..release.aws import describe, error_code
from ..settings import PROJECT_NAME_PATTERN, substitute

# Standard retry mode (botocore "Retries" guide): throttled describe/list calls are retried with backoff.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
DEFAULT_MANIFEST_PREFIX = "input-manifests/"  # the start Lambda's default for MANIFEST_PREFIX

Printer = Callable[[str], None]


class Clients:
    """boto3 clients of one Region (``region`` None: the configured one); ``overrides`` serve tests."""

    def __init__(self, region: str | None = None, overrides: dict[str, Any] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self._session: Any = None
        self._region = region
        self._cache: dict[str, Any] = {}

    def session(self) -> Any:
        if self._session is None:
            self._session = boto3.session.Session(region_name=self._region)
        return self._session

    def client(self, service: str, config: Config | None = None) -> Any:
        if service in self.overrides:
            return self.overrides[service]
        if service not in self._cache:
            try:
                self._cache[service] = self.session().client(service, config=config or CLIENT_CONFIG)
            except NoRegionError:
                raise CliError("no AWS region configured: pass --region or set AWS_REGION") from None
        return self._cache[service]

    @property
    def region(self) -> str:
        if self._region:
            return self._region
        for client in self.overrides.values():
            return str(client.meta.region_name)
        region = self.session().region_name
        if not region:
            raise CliError("no AWS region configured: pass --region or set AWS_REGION")
        return str(region)


def aws_error(action: str, error: BaseException) -> CliError:
    """One line: what failed, AWS's code and message, and what to do for the usual causes."""
    if isinstance(error, NoCredentialsError):
        return CliError(f"{action}: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    hint = ""
    if isinstance(error, ClientError) and error_code(error) in ("AccessDenied", "AccessDeniedException"):
        hint = " (docs/operations.md lists the permissions each command needs)"
    return CliError(f"{action}: {describe(error)}{hint}")


def check_project_name(name: str) -> str:
    if not re.fullmatch(PROJECT_NAME_PATTERN, name):
        raise CliError(f"project name {name!r} is not a SageMaker project name (1-32 letters, digits and hyphens, "
                       "starting and ending with a letter or digit)")
    return name


def _shared_name(project_name: str, pick: Callable[[ProjectNames], str], what: str) -> str:
    """The name every registered product gives ``what`` for this project (the upload trigger block names it for all
    products alike); several different names would need the project's product, which these commands do not read."""
    names = {substitute(pick(product.names), project_name, "", "", "") for product in products()}
    if len(names) != 1:
        raise CliError(f"the registered products name the {what} differently ({', '.join(sorted(names))}): "
                       "this command cannot tell which one the project has")
    [name] = names
    return name


def function_name(project_name: str) -> str:
    """``sagemaker-<project>-start-ingest``: the start Lambda of the project's upload trigger."""
    return _shared_name(check_project_name(project_name), lambda names: names.lambda_function, "start function")


def queue_name(project_name: str) -> str:
    """``sagemaker-<project>-ingestion-dlq``: the dead-letter queue of the upload rule and of the start Lambda."""
    return _shared_name(check_project_name(project_name), lambda names: names.dead_letter_queue, "dead-letter queue")


@dataclass(frozen=True)
class StartFunction:
    """The project's start Lambda as deployed: its name, timeout and the environment the project stack set."""

    name: str
    arn: str
    timeout: int
    pipeline: str
    bucket: str
    prefix: str
    suffix: str
    manifest_bucket: str
    manifest_prefix: str
    dead_letter_queue_url: str = ""  # batched start mode: where the function itself sends what it cannot start


def start_function(lam: Any, project_name: str, region: str | None = None) -> StartFunction:
    """Read the project's start function (lambda:GetFunctionConfiguration)."""
    name = function_name(project_name)
    where = f" in {region}" if region else ""
    try:
        config = lam.get_function_configuration(FunctionName=name)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise CliError(f"no function {name}{where}: is {project_name!r} the project's name, is it created, and is "
                           "this its Region (--region)?") from None
        raise aws_error(f"reading function {name}", error) from None
    except BotoCoreError as error:
        raise aws_error(f"reading function {name}", error) from None
    env = config.get("Environment", {}).get("Variables", {})
    missing = [v for v in ("PIPELINE_NAME", "DATA_BUCKET", "DATA_PREFIX") if not env.get(v)]
    if missing:
        raise CliError(f"function {name} has no {', '.join(missing)} in its environment: it is not a start function "
                       "of this project template, or its stack was changed by hand (update the project)")
    return StartFunction(
        name=name,
        arn=str(config.get("FunctionArn", name)),
        timeout=int(config.get("Timeout", 30)),
        pipeline=env["PIPELINE_NAME"],
        bucket=env["DATA_BUCKET"],
        prefix=env["DATA_PREFIX"],
        suffix=env.get("DATA_SUFFIX", ""),
        manifest_bucket=env.get("MANIFEST_BUCKET", ""),
        manifest_prefix=env.get("MANIFEST_PREFIX", "") or DEFAULT_MANIFEST_PREFIX,
        dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL", ""),
    )


def printable(text: str, limit: int = 3072) -> str:
    """One line of at most ``limit`` characters (API fields with the pattern ``.*`` refuse line breaks)."""
    line = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)
    return line if len(line) <= limit else line[: limit - 3] + "..."
