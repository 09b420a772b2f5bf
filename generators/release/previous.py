"""The version published before this one, and whether ``sm-policies`` must be redeployed before it is used.

Service Catalog creates and updates every project as the launch role, and ``sm-policies`` grants that role
what the project templates create. When those grants changed since the previous published version, the
platform admin must deploy ``sm-policies`` of the new version before anyone creates or upgrades a project of
it. Each manifest records a SHA-256 of the grants (:func:`generators.upgrade.launch_role_digest`); the
release compares it with the previous version's manifest, and falls back on what ``CHANGELOG.md`` declares for
manifests written before the digest existed (format 1, or format 2 without it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..settings import PLATFORM, semver_key
from .aws import PreconditionError, describe, error_code, http_status
from .options import DEFAULT_PRODUCT
from .s3 import LAUNCH_ROLE_DIGEST, MANIFEST

# Format 1 manifests (one product, before the platform prefix) live beside that product's files.
LEGACY_MANIFEST_FOLDER = DEFAULT_PRODUCT


@dataclass(frozen=True)
class PreviousVersion:
    version: str
    manifest_key: str
    launch_role_sha256: str | None  # None: the manifest predates the digest


def _folders(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            yield str(common["Prefix"])


def _read(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404", "NotFound") or http_status(error) == 404:
            return None
        raise


def previous_version(s3: Any, bucket: str, artifacts_prefix: str, version: str) -> PreviousVersion | None:
    """The newest complete version (one with a manifest) older than ``version`` under the prefix: listed with
    ListObjectsV2 (``s3:ListBucket``), the manifest read with GetObject. Raises PreconditionError when S3 cannot
    be read (nothing is published yet at that point)."""
    current = semver_key(version)
    assert current is not None, version
    candidates: dict[str, list[str]] = {}
    try:
        for folder in (PLATFORM, LEGACY_MANIFEST_FOLDER):
            base = "/".join(part for part in (artifacts_prefix, folder) if part) + "/"
            for found in _folders(s3, bucket, base):
                name = found[len(base):].rstrip("/")
                key = semver_key(name)
                if key is not None and key < current:
                    candidates.setdefault(name, []).append(f"{base}{name}/{MANIFEST}")
        for name in sorted(candidates, key=lambda v: semver_key(v) or (), reverse=True):
            for manifest_key in candidates[name]:
                body = _read(s3, bucket, manifest_key)
                if body is None:  # an incomplete version, or a product folder of a format-2 version
                    continue
                try:
                    document = json.loads(body)
                except ValueError:
                    raise PreconditionError(f"s3://{bucket}/{manifest_key} is not JSON: fix or remove it") from None
                digest = document.get(LAUNCH_ROLE_DIGEST) if isinstance(document, dict) else None
                return PreviousVersion(name, manifest_key, str(digest) if digest else None)
    except (ClientError, BotoCoreError) as error:
        raise PreconditionError(f"cannot read the earlier versions under s3://{bucket}/{artifacts_prefix}/ "
                                f"(s3:ListBucket, s3:GetObject): {describe(error)}") from None
    return None


@dataclass(frozen=True)
class LaunchRoleNotice:
    """Whether sm-policies must be redeployed before this version is used, and how that is known."""

    changed: bool | None  # None: cannot tell
    source: str  # how it is known
    previous: str | None = None  # the previous version, when one was found
    first: bool = False  # no earlier version under the prefix

    def line(self, version: str, policies_location: str) -> str:
        if self.first:
            return (f"sm-policies: first version under this prefix: deploy sm-policies ({policies_location}) and "
                    f"the portfolio before anyone creates a project of {version}")
        since = f" since version {self.previous}" if self.previous else ""
        if self.changed:
            return (f"REDEPLOY sm-policies FIRST: the launch role's policy changed{since} ({self.source}): deploy "
                    f"sm-policies of {version} ({policies_location}) before anyone creates or upgrades a project "
                    f"of {version}")
        if self.changed is False:
            return (f"sm-policies: the launch role's policy is unchanged{since} ({self.source}): projects of "
                    f"{version} need no sm-policies redeploy")
        return (f"sm-policies: cannot tell whether the launch role's policy changed{since} ({self.source}): "
                f"redeploy sm-policies of {version} ({policies_location}) first to be safe")


def launch_role_notice(digest: str, previous: PreviousVersion | None, changelog_says: bool | None,
                       changelog_section: str) -> LaunchRoleNotice:
    """From the previous manifest's digest when it has one, else from CHANGELOG.md's marker for this version."""
    if previous is None:
        return LaunchRoleNotice(None, "no earlier version published", first=True)
    if previous.launch_role_sha256:
        return LaunchRoleNotice(previous.launch_role_sha256 != digest,
                                f"launch-role digest of {previous.manifest_key}", previous.version)
    if changelog_says is not None:
        return LaunchRoleNotice(changelog_says, f"its manifest has no launch-role digest; {changelog_section} "
                                "says so", previous.version)
    return LaunchRoleNotice(None, f"its manifest has no launch-role digest and {changelog_section} has no "
                            "'Launch role changed' line", previous.version)


def planned_notice(changelog_says: bool | None, changelog_section: str) -> LaunchRoleNotice:
    """What a dry run can tell without AWS: CHANGELOG.md's marker (a real run reads the previous manifest)."""
    if changelog_says is None:
        return LaunchRoleNotice(None, f"{changelog_section} has no 'Launch role changed' line; a real run "
                                "compares with the previous version's manifest")
    return LaunchRoleNotice(changelog_says, f"{changelog_section} says so; a real run compares with the previous "
                            "version's manifest")
