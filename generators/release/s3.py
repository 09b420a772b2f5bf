"""Publish a built version to S3: immutable objects, SHA-256 checked, tagged, the manifest last.

Every object is written with ``IfNoneMatch="*"`` (S3 refuses to overwrite) and ``ChecksumSHA256`` (S3
refuses bytes that do not match the hash of the file on disk). What is already published is compared
first: identical bytes are left alone, different bytes under the same version stop the release before
anything is uploaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError

from ..build import BuildResult
from ..products import Product
from ..settings import PLATFORM, PLATFORM_TEMPLATES, Settings, SettingsError, validate_bucket, validate_prefix
from .aws import ConflictError, ReleaseError, describe, error_code, http_status

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2  # 2: one manifest for every product, under <prefix>/platform/<version>/
# SHA-256 of the launch role's grants in sm-policies (generators.upgrade.launch_role_digest): the next release
# compares it to say whether sm-policies must be redeployed first. Derived from sm-policies.yaml, whose own
# SHA-256 the manifest lists, so like "source" it does not count when comparing manifests.
LAUNCH_ROLE_DIGEST = "launch_role_policy_sha256"
_METADATA = ("source", LAUNCH_ROLE_DIGEST)
PROVISIONING_TAG = ("servicecatalog:provisioning", "true")  # the launch role reads only tagged objects
STUDIO_VISIBILITY_TAG = ("sagemaker:studio-visibility", "true")  # Studio lists only tagged S3 templates
CONTENT_TYPES = {".yaml": "application/yaml", ".zip": "application/zip", ".json": "application/json"}
CONFLICT_RETRIES = 3  # S3 answers 409 ConditionalRequestConflict while a concurrent write is in flight
STUDIO_ORIGIN = "https://*.sagemaker.aws"


@dataclass(frozen=True)
class Artifact:
    """One object to publish: its bytes, key and tags."""

    name: str
    key: str
    body: bytes = field(repr=False)
    tags: tuple[tuple[str, str], ...] = ()

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def checksum(self) -> str:
        """The base64 SHA-256 S3 stores and returns as ``ChecksumSHA256``."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(Path(self.name).suffix, "application/octet-stream")

    @property
    def tagging(self) -> str:
        return urlencode(self.tags)

    def same_content(self, published: bytes) -> bool:
        return published == self.body


@dataclass(frozen=True)
class Manifest(Artifact):
    """The manifest: identical when it lists the same files, whichever commit published them."""

    def same_content(self, published: bytes) -> bool:
        try:
            return bool(_without_source(json.loads(published)) == _without_source(json.loads(self.body)))
        except ValueError:
            return False

    @property
    def source(self) -> dict[str, Any]:
        return dict(json.loads(self.body).get("source", {}))


def _without_source(manifest: Any) -> Any:
    return {k: v for k, v in manifest.items() if k not in _METADATA} if isinstance(manifest, dict) else manifest


class State(Enum):
    ABSENT = "absent"
    IDENTICAL = "identical"
    DIFFERENT = "different"


@dataclass(frozen=True)
class Published:
    """What is at an artifact's key now."""

    state: State
    sha256: str | None = None  # hex, when known
    body: bytes | None = field(default=None, repr=False)


class Outcome(Enum):
    UPLOADED = "uploaded"
    IDENTICAL = "already published, identical"
    TAGGED = "already published, identical; tags added"
    RACED = "published concurrently, identical"


@dataclass(frozen=True)
class ObjectResult:
    artifact: Artifact
    bucket: str
    outcome: Outcome
    note: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.artifact.key}"


# ---------------------------------------------------------------------------------------------------------
# What to publish
# ---------------------------------------------------------------------------------------------------------


def _artifact(name: str, key: str, path: Path) -> Artifact:
    return Artifact(name, key, path.read_bytes(), (PROVISIONING_TAG,))


@dataclass(frozen=True)
class ProductFiles:
    """One product's published objects, in upload order: its zips, then the project template that names them."""

    product: Product
    artifacts: tuple[Artifact, ...]

    @property
    def project_template(self) -> Artifact:
        name = f"{self.product.template_name}.yaml"
        return next(a for a in self.artifacts if a.name == name)


def product_files(settings: Settings, product: Product, result: BuildResult) -> ProductFiles:
    """``product.files`` from the build, under ``<prefix>/<slug>/<version>/`` (the keys its template names)."""
    built = {**result.archives, **{f"{name}.yaml": path for name, path in result.templates.items()}}
    missing = [name for name in product.files if name not in built]
    if missing:
        raise ValueError(f"the build did not produce {', '.join(missing)} for product {product.slug}")
    template = f"{product.template_name}.yaml"
    ordered = [*sorted(name for name in product.files if name != template), template]
    return ProductFiles(product, tuple(_artifact(name, product.key(settings, name), built[name]) for name in ordered))


def platform_files(settings: Settings, result: BuildResult) -> tuple[Artifact, ...]:
    """``sm-policies.yaml`` and ``sm-project-sc-portfolio.yaml`` under ``<prefix>/platform/<version>/``."""
    return tuple(
        _artifact(f"{name}.yaml", settings.key(PLATFORM, f"{name}.yaml"), result.templates[name])
        for name in PLATFORM_TEMPLATES
    )


def _entries(artifacts: Iterable[Artifact]) -> list[dict[str, Any]]:
    return [{"name": a.name, "key": a.key, "size": a.size, "sha256": a.sha256, "content_type": a.content_type}
            for a in artifacts]


def manifest(settings: Settings, products: Sequence[ProductFiles], platform: Sequence[Artifact],
             source: dict[str, Any], launch_role_sha256: str | None = None) -> Manifest:
    """``manifest.json`` under the platform prefix: every product and every file with size and SHA-256, the
    version, the git commit and the launch role's digest; no timestamp, so the same build gives the same
    manifest."""
    document: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "version": settings.version,
        "artifacts_bucket": settings.artifacts_bucket,
        "artifacts_prefix": settings.artifacts_prefix,
        "platform": {"prefix": settings.platform_prefix, "files": _entries(platform)},
        "products": [
            {
                "slug": files.product.slug,
                "display_name": files.product.display_name,
                "prefix": settings.release_prefix(files.product.slug),
                "project_template": files.project_template.key,
                "files": _entries(files.artifacts),
            }
            for files in sorted(products, key=lambda f: f.product.slug)
        ],
        "source": source,
    }
    if launch_role_sha256:
        document[LAUNCH_ROLE_DIGEST] = launch_role_sha256
    body = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return Manifest(MANIFEST, settings.key(PLATFORM, MANIFEST), body)


def git_source(repo_root: Path) -> dict[str, Any]:
    """The commit the release is built from ("unknown" outside a git checkout) and whether the tree is dirty."""
    try:
        commit = _git(repo_root, "rev-parse", "HEAD")
        dirty = bool(_git(repo_root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


def _git(repo_root: Path, *args: str) -> str:
    completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        ["git", *args], cwd=repo_root, capture_output=True, text=True, check=True, timeout=30  # noqa: S607
    )
    return completed.stdout.strip()


# ---------------------------------------------------------------------------------------------------------
# SageMaker Projects S3 templates
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        """The value of the domain's ``sagemaker:projectS3TemplatesLocation`` tag."""
        return f"s3://{self.bucket}/{self.prefix}/" if self.prefix else f"s3://{self.bucket}/"

    def key(self, filename: str) -> str:
        return f"{self.prefix}/{filename}" if self.prefix else filename


def parse_s3_location(uri: str) -> S3Location:
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri.strip())
    if not match:
        raise SettingsError(f"S3 template location {uri!r} is not of the form s3://BUCKET/PREFIX")
    bucket, prefix = match.groups()
    if "${" in bucket:
        raise SettingsError(f"S3 template location {uri!r}: give a concrete bucket name")
    return S3Location(validate_bucket(bucket), validate_prefix(prefix))


def s3_template_filename(slug: str, version: str) -> str:
    """``s3-fs-ingestion-1-2-0.yaml``: one immutable object per product and version, a name made only of
    letters, digits and hyphens (what CreateProject allows in a template name)."""
    return f"{slug}-{re.sub(r'[^A-Za-z0-9]+', '-', version).strip('-')}.yaml"


def s3_template_artifact(settings: Settings, files: ProductFiles, location: S3Location) -> Artifact:
    """A product's project template as a SageMaker Projects S3 template: Studio lists it, the launch role may
    read it."""
    name = s3_template_filename(files.product.slug, settings.version)
    body = files.project_template.body
    return Artifact(name, location.key(name), body, (STUDIO_VISIBILITY_TAG, PROVISIONING_TAG))


def studio_cors_configuration() -> dict[str, Any]:
    """What Studio needs to read templates from the bucket in the browser: GET/HEAD from its origin."""
    return {
        "CORSRules": [
            {
                "AllowedHeaders": ["*"],
                "AllowedMethods": ["GET", "HEAD"],
                "AllowedOrigins": [STUDIO_ORIGIN],
                "ExposeHeaders": ["ETag", "x-amz-version-id"],
                "MaxAgeSeconds": 3000,
            }
        ]
    }


# ---------------------------------------------------------------------------------------------------------
# Publishing
# ---------------------------------------------------------------------------------------------------------


class UploadError(ReleaseError):
    """An upload failed part-way: no manifest was written, a re-run resumes."""


class Publisher:
    """Writes artifacts into one bucket; never overwrites, never deletes."""

    def __init__(self, s3: Any, bucket: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.sleep = sleep

    def published(self, artifact: Artifact) -> Published:
        """Compare the object at ``artifact.key`` with the artifact (s3:GetObject only)."""
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=artifact.key, ChecksumMode="ENABLED")
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound") or http_status(error) == 404:
                return Published(State.ABSENT)
            raise ReleaseError(f"cannot read s3://{self.bucket}/{artifact.key}: {describe(error)}") from None
        except BotoCoreError as error:
            raise ReleaseError(f"cannot read s3://{self.bucket}/{artifact.key}: {describe(error)}") from None
        checksum = head.get("ChecksumSHA256") or ""
        if checksum and "-" not in checksum and type(artifact) is Artifact:  # a full-object SHA-256
            sha = base64.b64decode(checksum).hex()
            return Published(State.IDENTICAL if sha == artifact.sha256 else State.DIFFERENT, sha)
        if head.get("ContentLength") != artifact.size and type(artifact) is Artifact:
            return Published(State.DIFFERENT)
        body = self._read(artifact.key)  # no usable checksum (uploaded by another tool), or the manifest
        state = State.IDENTICAL if artifact.same_content(body) else State.DIFFERENT
        return Published(state, hashlib.sha256(body).hexdigest(), body)

    def verify(self, artifact: Artifact) -> Published:
        """What is published at the artifact's key; raises ConflictError (naming the file) when it differs."""
        found = self.published(artifact)
        if found.state is State.DIFFERENT:
            raise self._conflict(artifact, found)
        return found

    def publish(self, artifact: Artifact, known: Published | None = None) -> ObjectResult:
        found = known or self.published(artifact)
        if found.state is State.DIFFERENT:
            raise self._conflict(artifact, found)
        if found.state is State.IDENTICAL:
            return self._identical(artifact, found, Outcome.IDENTICAL)
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                self._put(artifact)
                log.info("uploaded s3://%s/%s (%d bytes, sha256 %s)", self.bucket, artifact.key, artifact.size,
                         artifact.sha256)
                return ObjectResult(artifact, self.bucket, Outcome.UPLOADED)
            except ClientError as error:
                code = error_code(error)
                if code == "PreconditionFailed" or http_status(error) == 412:
                    found = self.published(artifact)  # someone wrote it between our check and our write
                    if found.state is State.DIFFERENT:
                        raise self._conflict(artifact, found) from None
                    return self._identical(artifact, found, Outcome.RACED)
                if code == "ConditionalRequestConflict" and attempt < CONFLICT_RETRIES:
                    self.sleep(2**attempt)
                    continue
                raise UploadError(f"uploading {artifact.name} to s3://{self.bucket}/{artifact.key} failed: "
                                  f"{describe(error)}") from None
            except BotoCoreError as error:
                raise UploadError(f"uploading {artifact.name} to s3://{self.bucket}/{artifact.key} failed: "
                                  f"{describe(error)}") from None
        raise UploadError(f"uploading {artifact.name}: S3 kept reporting a concurrent write")  # pragma: no cover

    def _put(self, artifact: Artifact) -> None:
        extra = {"Tagging": artifact.tagging} if artifact.tags else {}
        self.s3.put_object(
            Bucket=self.bucket, Key=artifact.key, Body=artifact.body, ContentType=artifact.content_type,
            ChecksumAlgorithm="SHA256", ChecksumSHA256=artifact.checksum, IfNoneMatch="*", **extra,
        )

    def _read(self, key: str) -> bytes:
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except (ClientError, BotoCoreError) as error:
            raise ReleaseError(f"cannot read s3://{self.bucket}/{key}: {describe(error)}") from None

    def _identical(self, artifact: Artifact, found: Published, outcome: Outcome) -> ObjectResult:
        note = ""
        if isinstance(artifact, Manifest) and found.body is not None and found.body != artifact.body:
            commit = json.loads(found.body).get("source", {}).get("git_commit", "unknown")
            note = f"published from commit {commit}"
        if artifact.tags and self._add_missing_tags(artifact):
            outcome = Outcome.TAGGED if outcome is Outcome.IDENTICAL else outcome
        return ObjectResult(artifact, self.bucket, outcome, note)

    def _add_missing_tags(self, artifact: Artifact) -> bool:
        """An identical object published without our tags (by hand, by another tool): tag it, keep its tags."""
        try:
            tag_set = self.s3.get_object_tagging(Bucket=self.bucket, Key=artifact.key)["TagSet"]
            current = {t["Key"]: t["Value"] for t in tag_set}
            wanted = dict(artifact.tags)
            if all(current.get(k) == v for k, v in wanted.items()):
                return False
            merged = {**current, **wanted}
            self.s3.put_object_tagging(
                Bucket=self.bucket, Key=artifact.key,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(merged.items())]},
            )
        except (ClientError, BotoCoreError) as error:
            raise UploadError(f"tagging s3://{self.bucket}/{artifact.key} failed: {describe(error)}") from None
        log.info("tagged s3://%s/%s", self.bucket, artifact.key)
        return True

    def _conflict(self, artifact: Artifact, found: Published) -> ConflictError:
        published = f"published sha256 {found.sha256}" if found.sha256 else "published size differs"
        return ConflictError(
            f"{artifact.name} is already published at s3://{self.bucket}/{artifact.key} with different bytes "
            f"({published}, built sha256 {artifact.sha256}); published versions are immutable: "
            "release a new version"
        )
