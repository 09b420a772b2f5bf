"""``python -m generators release``: build a version of every product, publish it to S3, register it.

The steps, in order (docs/release.md explains them and the permissions they need):

1. preconditions, before anything changes: credentials (STS), the artifacts bucket (in the release's Region:
   Lambda reads its code only from a bucket in the function's Region), the S3 template bucket, the Service
   Catalog product of every product to register, the previous published version (its manifest);
2. build into ``build/<version>/`` (a dry run: a temporary directory) with the release coordinates, so the
   templates reference exactly the published keys and ``build/`` keeps what the developer built;
3. compare with what is published: identical objects are skipped, a different object stops the release;
4. upload each product's zips and project template under ``<prefix>/<slug>/<version>/``, then the platform
   templates and ``manifest.json`` under ``<prefix>/platform/<version>/`` (the manifest's presence means
   "this version is complete");
5. optionally publish every project template as a SageMaker Projects S3 template;
6. optionally register the version on each product's Service Catalog product, wait until it is AVAILABLE,
   deprecate older versions.

Functions here return results; only :func:`run` (the CLI handler) prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from botocore.exceptions import BotoCoreError

from .. import policies
from ..build import REPO_ROOT, BuildResult, build
from ..products import products
from ..settings import PLATFORM, POLICIES_TEMPLATE, PORTFOLIO_TEMPLATE, Settings, SettingsError
from ..upgrade import launch_role_digest, read_changelog
from .aws import (
    AwsClients,
    PreconditionError,
    ReleaseError,
    bucket_region,
    caller_identity,
    object_url,
    resolve_bucket,
)
from .catalog import (
    CatalogProduct,
    CatalogRef,
    OptionError,
    Registration,
    WaitPolicy,
    catalog_refs,
    find_products,
    idempotency_token,
    register_version,
)
from .previous import LaunchRoleNotice, PreviousVersion, launch_role_notice, planned_notice, previous_version
from .s3 import (
    Artifact,
    Manifest,
    ObjectResult,
    Outcome,
    ProductFiles,
    Publisher,
    S3Location,
    UploadError,
    git_source,
    manifest,
    parse_s3_location,
    platform_files,
    product_files,
    s3_template_artifact,
    studio_cors_configuration,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[ObjectResult], None]
RegisteredCallback = Callable[[str, Registration], None]

# Every IAM action a release calls (sts:GetCallerIdentity needs none). The ReleasePolicy of sm-policies
# must grant them; a test checks it does. docs/release.md maps each to the API calls.
REQUIRED_ACTIONS = (
    "s3:ListBucket",  # HeadBucket, ListObjectsV2 (earlier versions); HeadObject answers 404 (not 403) for
    # missing keys only with it
    "s3:GetBucketLocation",
    "s3:GetObject",  # HeadObject, GetObject (comparison with what is published, the previous manifest)
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


DEFAULT_OUT = Path("build")  # a release builds into build/<version>/, a dry run into a temporary directory
CHANGELOG = "CHANGELOG.md"


def default_out_dir(version: str) -> Path:
    return DEFAULT_OUT / version


def version_description(slug: str, version: str) -> str:
    """The description of a registered version; the portfolio template gives the first version the same."""
    return f"{slug} {version}"


@dataclass(frozen=True)
class ReleaseRequest:
    settings: Settings
    out_dir: Path
    repo_root: Path = REPO_ROOT
    catalog: tuple[CatalogRef, ...] = ()  # the products to register, by slug (empty: no registration)
    deprecate_previous: bool = False
    template_location: S3Location | None = None
    wait: WaitPolicy = field(default_factory=WaitPolicy)

    @property
    def registers(self) -> bool:
        return bool(self.catalog)


@dataclass(frozen=True)
class BuiltRelease:
    """The built files as the objects to publish."""

    result: BuildResult
    products: tuple[ProductFiles, ...]  # by slug
    platform: tuple[Artifact, ...]
    manifest: Manifest
    s3_templates: tuple[Artifact, ...] = ()  # one per product, with --s3-template-location
    launch_role_sha256: str = ""  # generators.upgrade.launch_role_digest of the built sm-policies

    @property
    def objects(self) -> list[Artifact]:
        """Upload order: each product's zips then its template, the platform templates (the portfolio names
        every product's template), the manifest last (it marks the version complete)."""
        return [*(a for files in self.products for a in files.artifacts), *self.platform, self.manifest]

    def files(self, slug: str) -> ProductFiles:
        return next(files for files in self.products if files.product.slug == slug)


def build_release(request: ReleaseRequest) -> BuiltRelease:
    """Build into ``request.out_dir`` (local files only) and describe what to publish."""
    settings = request.settings
    try:
        result = build(settings, request.out_dir, request.repo_root)
        files = tuple(product_files(settings, product, result) for product in products())
    except (OSError, ValueError) as error:
        raise PreconditionError(f"build failed: {error}") from None
    platform = platform_files(settings, result)
    location = request.template_location
    templates = tuple(s3_template_artifact(settings, f, location) for f in files) if location else ()
    digest = launch_role_digest(json.loads(policies.build(settings).to_json()))
    return BuiltRelease(result, files, platform,
                        manifest(settings, files, platform, git_source(request.repo_root), digest), templates, digest)


def changelog_marker(request: ReleaseRequest) -> tuple[bool | None, str]:
    """CHANGELOG.md's 'Launch role changed' answer for the version being released, and where it was read."""
    where = f"{CHANGELOG} [{request.settings.version}]"
    try:
        section = read_changelog(request.repo_root / CHANGELOG).get(request.settings.version)
    except ValueError as error:
        raise PreconditionError(str(error)) from None
    return (section.launch_role_changed if section else None), where


@dataclass(frozen=True)
class Target:
    """Where the release goes: established before anything changes."""

    publisher_arn: str
    bucket: str
    region: str
    catalog: dict[str, CatalogProduct]  # slug -> its Service Catalog product
    template_region: str | None
    previous: PreviousVersion | None = None  # the newest published version older than this one


@dataclass
class ReleaseReport:
    settings: Settings
    publisher_arn: str
    bucket: str
    region: str
    objects: list[ObjectResult]
    template_urls: dict[str, str]  # slug -> the project template's HTTPS URL
    s3_templates: list[ObjectResult] = field(default_factory=list)
    template_location: S3Location | None = None
    template_location_region: str | None = None
    registrations: dict[str, Registration] = field(default_factory=dict)  # slug -> registration
    platform_urls: dict[str, str] = field(default_factory=dict)  # sm-policies, portfolio -> HTTPS URL
    launch_role: LaunchRoleNotice | None = None

    @property
    def changed(self) -> bool:
        return any(r.outcome is not Outcome.IDENTICAL for r in [*self.objects, *self.s3_templates])

    def s3_template_url(self, result: ObjectResult) -> str | None:
        if not (self.template_location and self.template_location_region):
            return None
        return object_url(self.template_location.bucket, self.template_location_region, result.artifact.key)


def check_preconditions(request: ReleaseRequest, clients: AwsClients) -> Target:
    """Region, credentials, buckets and products; raises PreconditionError (nothing changed)."""
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
    if region != clients.region:
        # Lambda API Reference, "FunctionCode": S3Bucket is "an Amazon S3 bucket in the same AWS Region as your
        # function": projects of this release (its Region) could not create their Lambda functions.
        raise PreconditionError(
            f"artifacts bucket {bucket} is in {region}, but the release's region is {clients.region}: Lambda reads "
            f"function code only from a bucket in the function's Region; use a bucket in {clients.region}, a "
            f"name pattern with ${{AWS::Region}} (one bucket per Region), or release with AWS_REGION={region}"
        )
    catalog = find_products(clients.client("servicecatalog"), request.catalog, clients.region) \
        if request.registers else {}
    template_region = None
    if request.template_location:
        template_region = bucket_region(clients, request.template_location.bucket, "S3 template")
    previous = previous_version(clients.client("s3", region), bucket, settings.artifacts_prefix, settings.version)
    return Target(identity.arn, bucket, region, catalog, template_region, previous)


def publish_release(
    request: ReleaseRequest,
    clients: AwsClients,
    on_progress: ProgressCallback = lambda result: None,
    sleep: Callable[[float], None] = time.sleep,
    on_registered: RegisteredCallback = lambda slug, registration: None,
) -> ReleaseReport:
    """Run the whole release; raises PreconditionError (nothing changed), ConflictError or ReleaseError."""
    settings = request.settings
    target = check_preconditions(request, clients)
    built = build_release(request)
    publisher = Publisher(clients.client("s3", target.region), target.bucket, sleep=sleep)
    release_objects = built.objects
    template_publisher = None
    if request.template_location and built.s3_templates:
        template_publisher = Publisher(clients.client("s3", target.template_region),
                                       request.template_location.bucket, sleep=sleep)
    # Compare everything before uploading anything: a conflict leaves every bucket untouched.
    known = [publisher.verify(artifact) for artifact in release_objects]
    template_known = [template_publisher.verify(a) for a in built.s3_templates] if template_publisher else []

    changelog_says, changelog_section = changelog_marker(request)
    report = ReleaseReport(
        settings, target.publisher_arn, target.bucket, target.region, [],
        template_urls={f.product.slug: object_url(target.bucket, target.region, f.project_template.key)
                       for f in built.products},
        template_location=request.template_location, template_location_region=target.template_region,
        platform_urls={a.name.removesuffix(".yaml"): object_url(target.bucket, target.region, a.key)
                       for a in built.platform},
        launch_role=launch_role_notice(built.launch_role_sha256, target.previous, changelog_says, changelog_section),
    )
    for artifact, found in zip(release_objects, known, strict=True):
        try:
            report.objects.append(publisher.publish(artifact, found))
        except UploadError as error:
            raise UploadError(f"{error} ({len(report.objects)} of {len(release_objects)} objects published, "
                              "no manifest written: re-run the same command to finish)") from None
        on_progress(report.objects[-1])
    done = f"version {settings.version} is published (manifest written) but"
    if template_publisher:
        for artifact, found in zip(built.s3_templates, template_known, strict=True):
            try:
                report.s3_templates.append(template_publisher.publish(artifact, found))
            except UploadError as error:
                raise UploadError(f"{done} {error}: re-run the same command to finish") from None
            on_progress(report.s3_templates[-1])
    for slug, catalog_product in sorted(target.catalog.items()):
        try:
            report.registrations[slug] = register_version(
                clients.client("servicecatalog"), catalog_product, settings.version, report.template_urls[slug],
                description=version_description(slug, settings.version),
                deprecate_previous=request.deprecate_previous, wait=request.wait, sleep=sleep,
            )
        except ReleaseError as error:
            registered = f" ({', '.join(report.registrations)} registered; re-run the same command to finish)" \
                if report.registrations else ""
            raise ReleaseError(f"{done} registering {slug} on product {catalog_product.id} failed: "
                               f"{error}{registered}") from None
        on_registered(slug, report.registrations[slug])
    return report


# ---------------------------------------------------------------------------------------------------------
# Dry run: what a real run would do, without any AWS call
# ---------------------------------------------------------------------------------------------------------


def plan_calls(request: ReleaseRequest, built: BuiltRelease, region: str | None) -> list[str]:
    """The AWS calls a real run makes, in order (every one of them is covered by the ReleasePolicy)."""
    settings = request.settings
    bucket_region_guess = region or "<bucket region>"
    calls = [
        "sts:GetCallerIdentity (who is publishing; needs no permission)",
        f"s3:HeadBucket, s3:GetBucketLocation {settings.artifacts_bucket} (must be in the release's region)",
    ]
    for ref in request.catalog:
        if ref.product_id:
            calls.append(f"servicecatalog:DescribeProductAsAdmin Id={ref.product_id} ({ref.slug})")
        else:
            calls.append(f"servicecatalog:SearchProductsAsAdmin FullTextSearch={ref.product_name!r} "
                         f"(exact match; {ref.slug})")
    if request.template_location:
        calls.append(f"s3:HeadBucket, s3:GetBucketLocation {request.template_location.bucket}")
    calls += [
        f"s3:ListObjectsV2 Prefix={'/'.join(p for p in (settings.artifacts_prefix, PLATFORM) if p)}/ Delimiter=/ "
        "(and the format-1 folder), s3:GetObject of the newest earlier manifest.json (its launch-role digest)",
        "s3:HeadObject ChecksumMode=ENABLED for every object (s3:GetObject when no SHA-256 is stored)",
        "s3:PutObject IfNoneMatch=* ChecksumSHA256=<sha256> Tagging=servicecatalog:provisioning=true "
        "for every object not yet published, manifest.json last (untagged)",
        "s3:GetObjectTagging (+ s3:PutObjectTagging if a tag is missing) for objects already published",
    ]
    if request.template_location:
        for artifact in built.s3_templates:
            calls.append(f"s3:PutObject s3://{request.template_location.bucket}/{artifact.key} "
                         "Tagging=sagemaker:studio-visibility=true&servicecatalog:provisioning=true")
    for ref in request.catalog:
        product = ref.product_id or f"<id of {ref.slug}>"
        token = idempotency_token(settings.version, ref.product_id) if ref.product_id \
            else f"{idempotency_token(settings.version, '')}<product id>"
        url = object_url(settings.artifacts_bucket, bucket_region_guess, built.files(ref.slug).project_template.key)
        calls += [
            f"servicecatalog:ListProvisioningArtifacts ProductId={product}",
            f"servicecatalog:CreateProvisioningArtifact ProductId={product} Name={settings.version} "
            f"LoadTemplateFromURL={url} IdempotencyToken={token} "
            f"(skipped if version {settings.version} exists)",
            f"servicecatalog:DescribeProvisioningArtifact until AVAILABLE (timeout {request.wait.timeout:.0f}s)",
        ]
        if request.deprecate_previous:
            calls.append(f"servicecatalog:UpdateProvisioningArtifact ProductId={product} Guidance=DEPRECATED "
                         "for every older version")
    return calls


# ---------------------------------------------------------------------------------------------------------
# CLI layer
# ---------------------------------------------------------------------------------------------------------


def aws_clients() -> AwsClients:
    """boto3 clients from the environment (credentials, region, AWS_ENDPOINT_URL)."""
    return AwsClients()


def request_from(args: argparse.Namespace) -> ReleaseRequest:
    from ..cli import CliError, settings_from

    settings = settings_from(args)
    try:
        refs = catalog_refs({p.slug: p.display_name for p in products()}, register_all=args.register,
                            product_ids=args.product_id, product_names=args.product_name)
    except OptionError as error:
        raise CliError(str(error)) from None
    if args.deprecate_previous and not refs:
        raise CliError("--deprecate-previous needs --register, --product-id or --product-name")
    if args.wait_timeout <= 0:
        raise CliError("--wait-timeout must be a positive number of seconds")
    try:
        location = parse_s3_location(args.s3_template_location) if args.s3_template_location else None
    except SettingsError as error:
        raise CliError(str(error)) from None
    out_dir = Path(args.out) if args.out else default_out_dir(settings.version)
    return ReleaseRequest(
        settings=settings, out_dir=out_dir, repo_root=REPO_ROOT, catalog=refs,
        deprecate_previous=args.deprecate_previous, template_location=location,
        wait=WaitPolicy(timeout=args.wait_timeout),
    )


def run(args: argparse.Namespace) -> int:
    from ..cli import CliError

    request = request_from(args)
    if args.dry_run:
        try:
            if args.out:  # the engineer asked for the files
                _print_plan(request, build_release(request), aws_clients_region())
                return 0
            # A dry run never writes build/: it builds into a temporary directory, removed once the plan is printed.
            with tempfile.TemporaryDirectory(prefix=f"release-{request.settings.version}-") as scratch:
                dry = replace(request, out_dir=Path(scratch))
                _print_plan(dry, build_release(dry), aws_clients_region(), temporary=True)
            return 0
        except PreconditionError as error:
            raise CliError(str(error)) from None
    try:
        report = publish_release(request, aws_clients(), on_progress=_print_progress,
                                 on_registered=_print_registration)
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


def _print_artifact(artifact: Artifact) -> None:
    tags = ",".join(f"{k}={v}" for k, v in artifact.tags) or "-"
    print(f"  {artifact.key}  {artifact.size:,} bytes  sha256 {artifact.sha256}  tags {tags}")


def _print_plan(request: ReleaseRequest, built: BuiltRelease, region: str | None, temporary: bool = False) -> None:
    settings = request.settings
    bucket = settings.artifacts_bucket
    where = f"the temporary directory {built.result.out_dir} (removed after this plan; --out DIR keeps the " \
        "files)" if temporary else str(built.result.out_dir)
    print(f"dry run: version {settings.version} of {len(built.products)} product(s) built into {where}; "
          "no AWS call made, nothing published")
    print("would publish (objects already published with identical bytes are skipped), in this order:")
    for files in built.products:
        product = files.product
        print(f"product {product.slug} ({product.display_name!r}) -> "
              f"s3://{bucket}/{settings.release_prefix(product.slug)}/")
        for artifact in files.artifacts:
            _print_artifact(artifact)
    print(f"platform -> s3://{bucket}/{settings.platform_prefix}/ (manifest.json last)")
    for artifact in [*built.platform, built.manifest]:
        _print_artifact(artifact)
    if request.template_location:
        for artifact in built.s3_templates:
            print(f"would publish the SageMaker Projects S3 template s3://{request.template_location.bucket}/"
                  f"{artifact.key} {artifact.size:,} bytes sha256 {artifact.sha256}")
    refs = {ref.slug: ref for ref in request.catalog}
    for files in built.products:
        ref = refs.get(files.product.slug)
        how = f"on the Service Catalog product {ref.lookup}" if ref else \
            "skipped (not named by --register, --product-id or --product-name)"
        print(f"Service Catalog: {files.product.slug}: registration {how}")
    print(planned_notice(*changelog_marker(request)).line(
        settings.version, f"s3://{bucket}/{settings.platform_prefix}/{POLICIES_TEMPLATE}.yaml"))
    if region:
        print(f"(URLs assume the bucket is in the configured region {region}; a real run asks S3)")
    print("API calls a real run makes:")
    for call in plan_calls(request, built, region):
        print(f"  {call}")


def _print_report(report: ReleaseReport) -> None:
    settings = report.settings
    prefix = f"s3://{report.bucket}/{settings.artifacts_prefix}/<product>/{settings.version}/".replace("//<", "/<")
    if report.changed:
        print(f"published version {settings.version} of {', '.join(report.template_urls)} to {prefix} and "
              f"s3://{report.bucket}/{settings.platform_prefix}/ ({report.region}) as {report.publisher_arn}")
    else:
        print(f"version {settings.version} is already published at s3://{report.bucket}/ with identical bytes: "
              "nothing uploaded")
    for slug, url in report.template_urls.items():
        print(f"project template URL of {slug}: {url}")
    for name in (POLICIES_TEMPLATE, PORTFOLIO_TEMPLATE):
        if name in report.platform_urls:
            print(f"deploy the published {name}: --template-url {report.platform_urls[name]}")
    if report.launch_role:
        print(report.launch_role.line(settings.version, report.platform_urls.get(POLICIES_TEMPLATE, POLICIES_TEMPLATE)))
    if report.s3_templates and report.template_location:
        _print_studio_setup(report)
    for slug in report.template_urls:  # the registrations were printed as they happened
        if slug not in report.registrations:
            print(f"Service Catalog: {slug}: registration skipped (pass --register, or --product-id {slug}=ID)")


def _print_registration(slug: str, registration: Registration) -> None:
    product = f"{registration.product.id} ({registration.product.name})" if registration.product.name \
        else registration.product.id
    if registration.created:
        print(f"Service Catalog: {slug}: registered version {registration.version} on product {product} as "
              f"{registration.artifact_id} ({registration.status})")
    else:
        print(f"Service Catalog: {slug}: version {registration.version} is already registered on product {product} "
              f"as {registration.artifact_id} ({registration.status}); not creating another")
    for artifact_id, name in registration.deprecated:
        print(f"Service Catalog: {slug}: deprecated version {name} ({artifact_id})")
    for name, why in registration.left_alone:
        log.info("%s: left version %s alone: %s", slug, name, why)


def _print_studio_setup(report: ReleaseReport) -> None:
    location = report.template_location
    assert location is not None
    for result in report.s3_templates:
        print(f"SageMaker Projects S3 template: {result.uri} ({report.s3_template_url(result)})")
    print("For Studio to list them, the SageMaker domain needs the tag "
          f"sagemaker:projectS3TemplatesLocation={location.uri}, e.g.")
    print(f"  aws sagemaker add-tags --resource-arn <domain ARN> "
          f"--tags Key=sagemaker:projectS3TemplatesLocation,Value={location.uri}")
    print(f"and bucket {location.bucket} needs this CORS configuration "
          f"(aws s3api put-bucket-cors --bucket {location.bucket} --cors-configuration file://cors.json):")
    print(json.dumps(studio_cors_configuration(), indent=2))
