"""Every name, prefix and length budget of the generated templates lives here.

The generators never invent a name inline: they ask :class:`Settings` (release coordinates: where the
published artifacts live) or :class:`ProjectNames` (names of what a provisioned project creates).
Length limits are computed, not written in comments, and checked by :func:`check_budgets` at import-free
call time (the tests call it too).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

PRODUCT = "s3-fs-ingestion"
PROJECT_TEMPLATE = "project-s3-fs-ingestion"
POLICIES_TEMPLATE = "sm-policies"
PORTFOLIO_TEMPLATE = "sm-project-sc-portfolio"
TEMPLATE_NAMES = (POLICIES_TEMPLATE, PORTFOLIO_TEMPLATE, PROJECT_TEMPLATE)

SEED_CODE_DIR = "seed-code/s3-fs-ingestion"
SEED_CODE_ZIP = "seed-code-s3-fs-ingestion.zip"
LAMBDA_NAME = "start_ingestion_pipeline"
BUCKET_EVENTS_LAMBDA = "data_bucket_events"

DEFAULT_ARTIFACTS_BUCKET = "sagemaker-reusable-components-${AWS::AccountId}-${AWS::Region}"
DEFAULT_ARTIFACTS_PREFIX = "releases"

# What the SageMaker Projects contract allows: botocore's SageMaker model, shape ProjectEntityName
# (CreateProject ProjectName): "2024-ingest" and "a--b" are valid project names.
PROJECT_NAME_MAX = 32
PROJECT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$"
# SageMaker generates ids such as "p-abcdefghijkl" (lowercase, single hyphens); the API allows up to 20
# characters. Names that must not hold adjacent hyphens (CloudTrail trails) are derived from the id.
PROJECT_ID_MAX = 20
PROJECT_ID_PATTERN = r"^[a-z0-9](-?[a-z0-9])*$"

# Worst-case lengths of pseudo parameters, used to check name budgets.
ACCOUNT_ID_LEN = 12
REGION_MAX_LEN = 16  # longest today is 14 ("ap-southeast-7"); keep headroom

BUCKET_NAME_MAX = 63
IAM_ROLE_NAME_MAX = 64
LAMBDA_NAME_MAX = 64
RULE_NAME_MAX = 64
QUEUE_NAME_MAX = 80
PIPELINE_NAME_MAX = 82  # display names and pipeline names share the 82-char budget we keep
CODEBUILD_NAME_MAX = 150
CODEPIPELINE_NAME_MAX = 100
REPOSITORY_NAME_MAX = 100
TRAIL_NAME_MAX = 128

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_PSEUDO = {"${AWS::AccountId}": "1" * ACCOUNT_ID_LEN, "${AWS::Region}": "a" * REGION_MAX_LEN}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]*$")


class SettingsError(ValueError):
    """A release coordinate that cannot produce valid templates."""


def package_version() -> str:
    """The version of the installed package, used when no --version is given."""
    try:
        return metadata.version("sagemaker-reusable-components")
    except metadata.PackageNotFoundError:  # running from a checkout without installing it
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]


def validate_version(version: str) -> str:
    if not SEMVER.match(version):
        raise SettingsError(f"version {version!r} is not semantic versioning (X.Y.Z, e.g. 1.2.0)")
    return version


def validate_bucket(bucket: str) -> str:
    """A bucket name, or a pattern using ${AWS::AccountId}/${AWS::Region}, valid in every account/region."""
    worst_case = bucket
    for pseudo, longest in _PSEUDO.items():
        worst_case = worst_case.replace(pseudo, longest)
    if "${" in worst_case:
        raise SettingsError(f"bucket {bucket!r}: only ${{AWS::AccountId}} and ${{AWS::Region}} may be substituted")
    if len(worst_case) > BUCKET_NAME_MAX:
        raise SettingsError(
            f"bucket {bucket!r} can reach {len(worst_case)} characters once substituted (S3 allows {BUCKET_NAME_MAX})"
        )
    if not _BUCKET.match(worst_case) or ".." in worst_case or worst_case.startswith("xn--"):
        raise SettingsError(
            f"bucket {bucket!r} is not a valid S3 bucket name "
            "(3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)"
        )
    return bucket


def validate_prefix(prefix: str) -> str:
    cleaned = prefix.strip("/")
    if not _PREFIX.match(cleaned) or "//" in cleaned or len(cleaned) > 200:
        raise SettingsError(
            f"prefix {prefix!r} is not a safe S3 key prefix (letters, digits and !_.*'()/- only, <= 200 chars)"
        )
    return cleaned


@dataclass(frozen=True)
class Settings:
    """Release coordinates: where the published artifacts of one version live."""

    version: str = field(default_factory=package_version)
    artifacts_bucket: str = DEFAULT_ARTIFACTS_BUCKET
    artifacts_prefix: str = DEFAULT_ARTIFACTS_PREFIX

    def __post_init__(self) -> None:
        validate_version(self.version)
        validate_bucket(self.artifacts_bucket)
        object.__setattr__(self, "artifacts_prefix", validate_prefix(self.artifacts_prefix))

    @property
    def release_prefix(self) -> str:
        """Key prefix of this version: ``<prefix>/<product>/<version>``."""
        parts = [self.artifacts_prefix, PRODUCT, self.version]
        return "/".join(p for p in parts if p)

    def key(self, filename: str) -> str:
        return f"{self.release_prefix}/{filename}"

    @property
    def lambda_zips(self) -> dict[str, str]:
        """Lambda directory name -> zip file name."""
        return {name: lambda_zip_name(name) for name in (LAMBDA_NAME, BUCKET_EVENTS_LAMBDA)}


def lambda_zip_name(function_dir: str) -> str:
    return f"lambda-{function_dir.replace('_', '-')}.zip"


@dataclass(frozen=True)
class ProjectNames:
    """Names of what one provisioned project creates, as ``Fn::Sub`` strings.

    Regional resources are named after the project name (readable, unique per region); global or
    lowercase-only names (IAM roles, buckets) after the project id, which SageMaker generates in lowercase.
    """

    role_path: str = "/sagemaker-fsi/"
    role_prefix: str = "sagemaker-fsi-"
    resource_prefix: str = "sagemaker-"

    @property
    def artifact_bucket(self) -> str:
        return "sagemaker-${SageMakerProjectId}-artifacts-${AWS::AccountId}"

    @property
    def trail_bucket(self) -> str:
        return "sagemaker-${SageMakerProjectId}-trail-${AWS::AccountId}"

    @property
    def lambda_role(self) -> str:
        return self.role_prefix + "${SageMakerProjectId}-start-ingestion"

    @property
    def lambda_function(self) -> str:
        return self.resource_prefix + "${SageMakerProjectName}-start-ingest"

    @property
    def sagemaker_pipeline(self) -> str:
        # SageMaker lowercases pipeline ARNs and IAM matches ARNs case-sensitively: name the pipeline
        # after the (lowercase) project id so the Lambda's policy can name its exact ARN.
        return self.resource_prefix + "${SageMakerProjectId}-fs-ingestion"

    @property
    def upload_rule(self) -> str:
        return self.resource_prefix + "${SageMakerProjectName}-upload"

    @property
    def repository_rule(self) -> str:
        return self.resource_prefix + "${SageMakerProjectName}-repo-change"

    @property
    def dead_letter_queue(self) -> str:
        return self.resource_prefix + "${SageMakerProjectName}-ingestion-dlq"

    @property
    def build_project(self) -> str:
        return self.resource_prefix + "${SageMakerProjectName}-deploy-pipeline"

    @property
    def code_pipeline(self) -> str:
        return self.resource_prefix + "${SageMakerProjectName}-seed-code"

    @property
    def repository(self) -> str:
        return self.resource_prefix + "${SageMakerProjectName}-fs-ingestion"

    @property
    def trail(self) -> str:
        # CloudTrail refuses adjacent hyphens ("my--namespace"), which project names may hold: use the id.
        return self.resource_prefix + "${SageMakerProjectId}-uploads"

    @property
    def bucket_events_role(self) -> str:
        return self.role_prefix + "${SageMakerProjectId}-bucket-events"

    @property
    def bucket_events_function(self) -> str:
        return self.resource_prefix + "${SageMakerProjectName}-bucket-events"

    @property
    def bucket_events_log_group(self) -> str:
        return "/aws/lambda/" + self.bucket_events_function

    @property
    def log_group(self) -> str:
        return "/aws/lambda/" + self.lambda_function

    def budgets(self) -> dict[str, tuple[str, int]]:
        """Name -> (Fn::Sub string, service limit) for every name with a length limit."""
        return {
            "artifact_bucket": (self.artifact_bucket, BUCKET_NAME_MAX),
            "trail_bucket": (self.trail_bucket, BUCKET_NAME_MAX),
            "lambda_role": (self.lambda_role, IAM_ROLE_NAME_MAX),
            "lambda_function": (self.lambda_function, LAMBDA_NAME_MAX),
            "sagemaker_pipeline": (self.sagemaker_pipeline, PIPELINE_NAME_MAX),
            "upload_rule": (self.upload_rule, RULE_NAME_MAX),
            "repository_rule": (self.repository_rule, RULE_NAME_MAX),
            "dead_letter_queue": (self.dead_letter_queue, QUEUE_NAME_MAX),
            "build_project": (self.build_project, CODEBUILD_NAME_MAX),
            "code_pipeline": (self.code_pipeline, CODEPIPELINE_NAME_MAX),
            "repository": (self.repository, REPOSITORY_NAME_MAX),
            "trail": (self.trail, TRAIL_NAME_MAX),
            "bucket_events_role": (self.bucket_events_role, IAM_ROLE_NAME_MAX),
            "bucket_events_function": (self.bucket_events_function, LAMBDA_NAME_MAX),
        }


@dataclass(frozen=True)
class PolicyNames:
    """Names of the sm-policies managed policies: one set per account and region."""

    path: str = "/sagemaker-fsi/"

    def name(self, purpose: str) -> str:
        return f"sagemaker-fsi-{purpose}-${{AWS::Region}}"

    def arn_resource(self, purpose: str) -> str:
        """The ``policy/...`` part of the policy ARN."""
        return f"policy{self.path}{self.name(purpose)}"


def substitute(template: str, project_name: str, project_id: str, account: str, region: str) -> str:
    """Resolve a ``ProjectNames`` string for concrete values (used by checks and tests)."""
    return (
        template.replace("${SageMakerProjectName}", project_name)
        .replace("${SageMakerProjectId}", project_id)
        .replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
    )


def check_budgets(names: ProjectNames | None = None) -> None:
    """Raise SettingsError when a name could exceed its service limit for the longest allowed inputs."""
    names = names or ProjectNames()
    for label, (template, limit) in names.budgets().items():
        longest = substitute(
            template, "P" * PROJECT_NAME_MAX, "p" * PROJECT_ID_MAX, "1" * ACCOUNT_ID_LEN, "a" * REGION_MAX_LEN
        )
        if len(longest) > limit:
            raise SettingsError(f"{label} can reach {len(longest)} characters (limit {limit}): {template}")
