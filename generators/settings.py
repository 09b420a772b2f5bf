"""Release coordinates, service name limits and the platform's own names.

The generators never invent a name inline: they ask :class:`Settings` (release coordinates: where the
published artifacts live), :class:`PolicyNames` (the ``sm-policies`` policies) or a product's
:class:`generators.names.ProjectNames` (what a provisioned project creates). Length limits are computed,
not written in comments, and checked by :func:`generators.names.check_budgets`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

POLICIES_TEMPLATE = "sm-policies"
PORTFOLIO_TEMPLATE = "sm-project-sc-portfolio"
PLATFORM_TEMPLATES = (POLICIES_TEMPLATE, PORTFOLIO_TEMPLATE)
# Key prefix (under <prefix>/) of the files that belong to no single product: sm-policies, the portfolio,
# the release manifest. Product slugs may not take it.
PLATFORM = "platform"

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


# ``version = "X.Y.Z"`` on its own line in the ``[project]`` table (before the next table header);
# tests/test_cli.py holds it to what tomllib reads.
_PROJECT_VERSION = re.compile(r'^\[project\][ \t]*$(?:(?!^\[).)*?^version[ \t]*=[ \t]*"([^"\n]+)"', re.M | re.S)


class SettingsError(ValueError):
    """A release coordinate that cannot produce valid templates."""


@cache
def package_version() -> str:
    """The package version: ``pyproject.toml`` of the checkout when there is one (the source of truth, even for
    an editable install whose metadata may be older), else the installed distribution's metadata. Imported
    lazily: the light commands (build, --help) should not pay for importlib.metadata."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        match = _PROJECT_VERSION.search(text)
        if match:  # the usual one-line form, without loading a TOML parser (every command asks)
            return match.group(1)
        import tomllib

        return str(tomllib.loads(text)["project"]["version"])
    from importlib import metadata

    return metadata.version("sagemaker-reusable-components")


def validate_version(version: str) -> str:
    """A semantic version without build metadata: the version is a key segment of every published object and
    of the template URLs, and a ``+`` in a URL path is not read back as ``+`` by every client (S3 decodes it
    as a space in some request styles), so ``1.2.0+build.5`` could publish objects that the templates cannot
    load. A pre-release (``1.2.0-rc.1``) is fine."""
    match = SEMVER.match(version)
    if not match:
        raise SettingsError(f"version {version!r} is not semantic versioning (X.Y.Z, e.g. 1.2.0)")
    if match.group(5) is not None:
        raise SettingsError(
            f"version {version!r} has build metadata ('+{match.group(5)}'): a '+' breaks the template URLs; "
            f"use a pre-release such as {version.split('+')[0]}-{match.group(5)} or a new patch version"
        )
    return version


def semver_key(version: str) -> tuple[Any, ...] | None:
    """Semantic-versioning precedence as a sortable key (build metadata ignored); None if not a version."""
    match = SEMVER.match(version)
    if not match:
        return None
    major, minor, patch, pre, _build = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, ids)


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

    def release_prefix(self, slug: str) -> str:
        """Key prefix of one product's files of this version: ``<prefix>/<slug>/<version>`` (the platform's
        files use the slug ``platform``)."""
        return "/".join(part for part in (self.artifacts_prefix, slug, self.version) if part)

    def key(self, slug: str, filename: str) -> str:
        return f"{self.release_prefix(slug)}/{filename}"

    @property
    def platform_prefix(self) -> str:
        return self.release_prefix(PLATFORM)


def lambda_zip_name(function_dir: str) -> str:
    return f"lambda-{function_dir.replace('_', '-')}.zip"


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
