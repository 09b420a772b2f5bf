"""``python -m generators release``: build a version, publish it to S3, register it in Service Catalog.

The steps, in order (docs/release.md explains them and the permissions they need):

1. preconditions, before anything changes: credentials (STS), the artifacts bucket (and the S3 template
   bucket), the Service Catalog product;
2. build into ``build/`` with the release coordinates, so the templates reference exactly the published keys;
3. compare with what is published: identical objects are skipped, a different object stops the release;
4. upload the zips, then the templates, then ``manifest.json`` (its presence means "this version is complete");
5. optionally publish the project template as a SageMaker Projects S3 template;
6. optionally register the version on the product, wait until it is AVAILABLE, deprecate older versions.

Functions here return results; only :func:`run` (the CLI handler) prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import BotoCoreError

from .build import REPO_ROOT, BuildResult, build
from .release_aws import (
    AwsClients,
    PreconditionError,
    ReleaseError,
    bucket_region,
    caller_identity,
    object_url,
    resolve_bucket,
)
from .release_catalog import Product, Registration, WaitPolicy, find_product, idempotency_token, register_version
from .release_s3 import (
    Artifact,
    Manifest,
    ObjectResult,
    Outcome,
    Publisher,
    S3Location,
    UploadError,
    git_source,
    manifest,
    parse_s3_location,
    release_artifacts,
    s3_template_artifact,
    studio_cors_configuration,
)
from .settings import PROJECT_TEMPLATE, Settings, SettingsError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[ObjectResult], None]

# Every IAM action a release calls (sts:GetCallerIdentity needs none). The ReleasePolicy of sm-policies
# must grant them; a test checks it does. docs/release.md maps each to the API calls.
REQUIRED_ACTIONS = (
    "s3:ListBucket",  # HeadBucket; HeadObject answers 404 (not 403) for missing keys only with it
    "s3:GetBucketLocation",
    "s3:GetObject",  # HeadObject, GetObject (comparison with what is published)
    "s3:PutObject",
    "s3:PutObjectTagging",  # PutObject with Tagging, tags added to identical objects
    "s3:GetObjectTagging",
    "servicecatalog:DescribeProductAsAdmin",
    "servicecatalog:SearchProductsAsAdmin",
    "servicecatalog:ListProvisioningArtifacts",
    "servicecatalog:CreateProvisioningArtifact",
    "servicecatalog:DescribeProvisioningArtifact",
    "servicecatalog:UpdateProvisioningArtifact",
)


@dataclass(frozen=True)
class ReleaseRequest:
    settings: Settings
    out_dir: Path
    repo_root: Path = REPO_ROOT
    product_id: str | None = None
    product_name: str | None = None
    deprecate_previous: bool = False
    template_location: S3Location | None = None
    wait: WaitPolicy = field(default_factory=WaitPolicy)

    @property
    def registers(self) -> bool:
        return bool(self.product_id or self.product_name)


@dataclass(frozen=True)
class BuiltRelease:
    """The built files as the objects to publish, in upload order (manifest last)."""

    result: BuildResult
    artifacts: list[Artifact]
    manifest: Manifest
    s3_template: Artifact | None

    @property
    def project_template(self) -> Artifact:
        return next(a for a in self.artifacts if a.name == f"{PROJECT_TEMPLATE}.yaml")


@dataclass
class ReleaseReport:
    settings: Settings
    publisher_arn: str
    bucket: str
    region: str
    objects: list[ObjectResult]
    template_url: str
    s3_template: ObjectResult | None = None
    template_location: S3Location | None = None
    template_location_region: str | None = None
    registration: Registration | None = None

    @property
    def changed(self) -> bool:
        results = [*self.objects, *([self.s3_template] if self.s3_template else [])]
        return any(r.outcome is not Outcome.IDENTICAL for r in results)

    @property
    def s3_template_url(self) -> str | None:
        if not (self.s3_template and self.template_location and self.template_location_region):
            return None
        return object_url(self.template_location.bucket, self.template_location_region, self.s3_template.artifact.key)


def build_release(request: ReleaseRequest) -> BuiltRelease:
    """Build into ``request.out_dir`` (local files only) and describe what to publish."""
    try:
        result = build(request.settings, request.out_dir, request.repo_root)
    except (OSError, ValueError) as error:
        raise PreconditionError(f"build failed: {error}") from None
    artifacts = release_artifacts(request.settings, result)
    source = git_source(request.repo_root)
    template = s3_template_artifact(request.settings, result, request.template_location) \
        if request.template_location else None
    return BuiltRelease(result, artifacts, manifest(request.settings, artifacts, source), template)


@dataclass(frozen=True)
class Target:
    """Where the release goes: established before anything changes."""

    publisher_arn: str
    bucket: str
    region: str
    product: Product | None
    template_region: str | None


def check_preconditions(request: ReleaseRequest, clients: AwsClients) -> Target:
    """Region, credentials, buckets and product; raises PreconditionError (nothing changed)."""
    settings = request.settings
    clients.require_region()  # Service Catalog, STS and ${AWS::Region} need one: say so before anything else
    identity = caller_identity(clients)
    bucket = resolve_bucket(settings.artifacts_bucket, identity.account, clients.region)
    region = bucket_region(clients, bucket, "artifacts")
    if "${AWS::Region}" in settings.artifacts_bucket and region != clients.region:
        raise PreconditionError(
            f"bucket {bucket} is in {region}, but its pattern {settings.artifacts_bucket} names the "
            f"configured region {clients.region}: publish with AWS_REGION={region}"
        )
    product = None
    if request.registers:
        product = find_product(clients.client("servicecatalog"), product_id=request.product_id,
                               product_name=request.product_name, region=clients.region)
    template_region = None
    if request.template_location:
        template_region = bucket_region(clients, request.template_location.bucket, "S3 template")
    return Target(identity.arn, bucket, region, product, template_region)


def publish_release(
    request: ReleaseRequest,
    clients: AwsClients,
    on_progress: ProgressCallback = lambda result: None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReleaseReport:
    """Run the whole release; raises PreconditionError (nothing changed), ConflictError or ReleaseError."""
    settings = request.settings
    target = check_preconditions(request, clients)
    built = build_release(request)
    publisher = Publisher(clients.client("s3", target.region), target.bucket, sleep=sleep)
    release_objects = [*built.artifacts, built.manifest]  # the manifest last: it marks the version complete
    template_upload = None
    if request.template_location and built.s3_template:
        template_publisher = Publisher(clients.client("s3", target.template_region),
                                       request.template_location.bucket, sleep=sleep)
        template_upload = (template_publisher, built.s3_template)
    # Compare everything before uploading anything: a conflict leaves every bucket untouched.
    known = [publisher.verify(artifact) for artifact in release_objects]
    template_known = template_upload[0].verify(template_upload[1]) if template_upload else None

    report = ReleaseReport(
        settings, target.publisher_arn, target.bucket, target.region, [],
        template_url=object_url(target.bucket, target.region, built.project_template.key),
        template_location=request.template_location, template_location_region=target.template_region,
    )
    for artifact, found in zip(release_objects, known, strict=True):
        try:
            report.objects.append(publisher.publish(artifact, found))
        except UploadError as error:
            raise UploadError(f"{error} ({len(report.objects)} of {len(release_objects)} objects published, "
                              "no manifest written: re-run the same command to finish)") from None
        on_progress(report.objects[-1])
    done = f"version {settings.version} is published (manifest written) but"
    if template_upload:
        try:
            report.s3_template = template_upload[0].publish(template_upload[1], template_known)
        except UploadError as error:
            raise UploadError(f"{done} {error}: re-run the same command to finish") from None
        on_progress(report.s3_template)
    if target.product:
        try:
            report.registration = register_version(
                clients.client("servicecatalog"), target.product, settings.version, report.template_url,
                deprecate_previous=request.deprecate_previous, wait=request.wait, sleep=sleep,
            )
        except ReleaseError as error:
            raise ReleaseError(f"{done} registering it on product {target.product.id} failed: {error}") from None
    return report


# ---------------------------------------------------------------------------------------------------------
# Dry run: what a real run would do, without any AWS call
# ---------------------------------------------------------------------------------------------------------


def plan_calls(request: ReleaseRequest, built: BuiltRelease, region: str | None) -> list[str]:
    """The AWS calls a real run makes, in order (every one of them is covered by the ReleasePolicy)."""
    settings = request.settings
    bucket_region_guess = region or "<bucket region>"
    url = object_url(settings.artifacts_bucket, bucket_region_guess, built.project_template.key)
    calls = [
        "sts:GetCallerIdentity (who is publishing; needs no permission)",
        f"s3:HeadBucket, s3:GetBucketLocation {settings.artifacts_bucket}",
    ]
    if request.product_id:
        calls.append(f"servicecatalog:DescribeProductAsAdmin Id={request.product_id}")
    elif request.product_name:
        calls.append(f"servicecatalog:SearchProductsAsAdmin FullTextSearch={request.product_name!r} (exact match)")
    if request.template_location:
        calls.append(f"s3:HeadBucket, s3:GetBucketLocation {request.template_location.bucket}")
    calls += [
        "s3:HeadObject ChecksumMode=ENABLED for every object (s3:GetObject when no SHA-256 is stored)",
        "s3:PutObject IfNoneMatch=* ChecksumSHA256=<sha256> Tagging=servicecatalog:provisioning=true "
        "for every object not yet published, manifest.json last (untagged)",
        "s3:GetObjectTagging (+ s3:PutObjectTagging if a tag is missing) for objects already published",
    ]
    if request.template_location and built.s3_template:
        calls.append(f"s3:PutObject s3://{request.template_location.bucket}/{built.s3_template.key} "
                     "Tagging=sagemaker:studio-visibility=true&servicecatalog:provisioning=true")
    if request.registers:
        product = request.product_id or "<product id>"
        calls += [
            f"servicecatalog:ListProvisioningArtifacts ProductId={product}",
            f"servicecatalog:CreateProvisioningArtifact Name={settings.version} LoadTemplateFromURL={url} "
            f"IdempotencyToken={idempotency_token(settings.version, product)} "
            f"(skipped if version {settings.version} exists)",
            f"servicecatalog:DescribeProvisioningArtifact until AVAILABLE (timeout {request.wait.timeout:.0f}s)",
        ]
        if request.deprecate_previous:
            calls.append("servicecatalog:UpdateProvisioningArtifact Guidance=DEPRECATED for every older version")
    return calls


# ---------------------------------------------------------------------------------------------------------
# CLI layer
# ---------------------------------------------------------------------------------------------------------


def aws_clients() -> AwsClients:
    """boto3 clients from the environment (credentials, region, AWS_ENDPOINT_URL)."""
    return AwsClients()


def register(commands: argparse._SubParsersAction, add_release_coordinates: Callable[..., None]) -> None:
    parser = commands.add_parser(
        "release",
        help="publish a version to S3 and register it in Service Catalog",
        description="Build the templates and zips for VERSION, upload them to "
        "s3://BUCKET/PREFIX/s3-fs-ingestion/VERSION/ (immutable, SHA-256 checked, tagged, manifest.json last) "
        "and optionally register the version on a Service Catalog product. Re-running a published version "
        "with identical bytes changes nothing; different bytes are refused.",
        epilog="Credentials, region and endpoint come from the environment (AWS_PROFILE, AWS_REGION, "
        "AWS_ENDPOINT_URL). Permissions: the ReleasePolicy of sm-policies; see docs/release.md.",
    )
    add_release_coordinates(parser, bucket_required=True)
    product = parser.add_mutually_exclusive_group()
    product.add_argument("--product-id", help="Service Catalog product to add the version to (prod-...)")
    product.add_argument("--product-name", help="same, found by its exact name")
    parser.add_argument("--deprecate-previous", action="store_true",
                        help="mark every older version of the product DEPRECATED (none is ever deleted)")
    parser.add_argument("--s3-template-location", metavar="s3://BUCKET/PREFIX",
                        help="also publish the project template as a SageMaker Projects S3 template there, "
                        "and print the domain tag and bucket CORS configuration Studio needs")
    parser.add_argument("--wait-timeout", type=float, default=WaitPolicy.timeout, metavar="SECONDS",
                        help="how long to wait for the new version to become AVAILABLE (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true",
                        help="build locally and print the plan (keys, sizes, SHA-256, API calls); no AWS call")
    parser.add_argument("--out", default="build", help="build directory (default: build)")
    parser.set_defaults(handler=run)


def request_from(args: argparse.Namespace) -> ReleaseRequest:
    from .cli import CliError, settings_from

    settings = settings_from(args)
    if args.deprecate_previous and not (args.product_id or args.product_name):
        raise CliError("--deprecate-previous needs --product-id or --product-name")
    if args.wait_timeout <= 0:
        raise CliError("--wait-timeout must be a positive number of seconds")
    try:
        location = parse_s3_location(args.s3_template_location) if args.s3_template_location else None
    except SettingsError as error:
        raise CliError(str(error)) from None
    return ReleaseRequest(
        settings=settings, out_dir=Path(args.out), repo_root=REPO_ROOT, product_id=args.product_id,
        product_name=args.product_name, deprecate_previous=args.deprecate_previous, template_location=location,
        wait=WaitPolicy(timeout=args.wait_timeout),
    )


def run(args: argparse.Namespace) -> int:
    from .cli import CliError

    request = request_from(args)
    if args.dry_run:
        try:
            built = build_release(request)
        except PreconditionError as error:
            raise CliError(str(error)) from None
        _print_plan(request, built, aws_clients_region())
        return 0
    try:
        report = publish_release(request, aws_clients(), on_progress=_print_progress)
    except PreconditionError as error:
        raise CliError(f"{error} (nothing was published)") from None
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    _print_report(report)
    return 0


def aws_clients_region() -> str | None:
    """The configured region, read from the environment/config files only (no AWS call)."""
    try:
        return AwsClients().region
    except BotoCoreError:  # e.g. AWS_PROFILE names a missing profile: a dry run still works
        return None


def _print_progress(result: ObjectResult) -> None:
    note = f" ({result.note})" if result.note else ""
    print(f"{result.outcome.value:<42} {result.uri}  {result.artifact.size:,} bytes{note}", flush=True)


def _print_plan(request: ReleaseRequest, built: BuiltRelease, region: str | None) -> None:
    settings = request.settings
    print(f"dry run: version {settings.version} built into {built.result.out_dir}; no AWS call made, nothing published")
    print(f"would publish to s3://{settings.artifacts_bucket}/{settings.release_prefix}/ "
          "(objects already published with identical bytes are skipped):")
    for artifact in [*built.artifacts, built.manifest]:
        tags = ",".join(f"{k}={v}" for k, v in artifact.tags) or "-"
        print(f"  {artifact.key}  {artifact.size:,} bytes  sha256 {artifact.sha256}  tags {tags}")
    if request.template_location and built.s3_template:
        print(f"would publish the SageMaker Projects S3 template "
              f"s3://{request.template_location.bucket}/{built.s3_template.key} "
              f"{built.s3_template.size:,} bytes sha256 {built.s3_template.sha256}")
    if not request.registers:
        print("Service Catalog: registration would be skipped (no --product-id or --product-name)")
    if region:
        print(f"(URLs assume the bucket is in the configured region {region}; a real run asks S3)")
    print("API calls a real run makes:")
    for call in plan_calls(request, built, region):
        print(f"  {call}")


def _print_report(report: ReleaseReport) -> None:
    settings = report.settings
    prefix = f"s3://{report.bucket}/{settings.release_prefix}/"
    if report.changed:
        print(f"published version {settings.version} to {prefix} ({report.region}) as {report.publisher_arn}")
    else:
        print(f"version {settings.version} is already published at {prefix} with identical bytes: nothing uploaded")
    print(f"project template URL: {report.template_url}")
    if report.s3_template and report.template_location:
        _print_studio_setup(report)
    registration = report.registration
    if registration is None:
        print("Service Catalog: registration skipped (pass --product-id or --product-name to register this version)")
        return
    product = f"{registration.product.id} ({registration.product.name})" if registration.product.name \
        else registration.product.id
    if registration.created:
        print(f"Service Catalog: registered version {registration.version} on product {product} as "
              f"{registration.artifact_id} ({registration.status})")
    else:
        print(f"Service Catalog: version {registration.version} is already registered on product {product} as "
              f"{registration.artifact_id} ({registration.status}); not creating another")
    for artifact_id, name in registration.deprecated:
        print(f"Service Catalog: deprecated version {name} ({artifact_id})")
    for name, why in registration.left_alone:
        log.info("left version %s alone: %s", name, why)


def _print_studio_setup(report: ReleaseReport) -> None:
    location = report.template_location
    assert location is not None and report.s3_template is not None
    print(f"SageMaker Projects S3 template: {report.s3_template.uri} ({report.s3_template_url})")
    print("For Studio to list it, the SageMaker domain needs the tag "
          f"sagemaker:projectS3TemplatesLocation={location.uri}, e.g.")
    print(f"  aws sagemaker add-tags --resource-arn <domain ARN> "
          f"--tags Key=sagemaker:projectS3TemplatesLocation,Value={location.uri}")
    print(f"and bucket {location.bucket} needs this CORS configuration "
          f"(aws s3api put-bucket-cors --bucket {location.bucket} --cors-configuration file://cors.json):")
    print(json.dumps(studio_cors_configuration(), indent=2))
