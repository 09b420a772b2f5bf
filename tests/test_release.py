"""``python -m generators release`` against moto's S3: every product under its own prefix, the platform files and
one manifest under ``<prefix>/platform/<version>/``; immutable, checksummed, tagged objects, the manifest last.

What AWS does and the tests model:
- S3 API Reference, "PutObject": ``If-None-Match: *`` makes S3 refuse to overwrite an existing key (412
  PreconditionFailed), and ``x-amz-checksum-sha256`` makes it refuse bytes whose SHA-256 differs;
  S3 User Guide, "Checking object integrity": HeadObject with ``ChecksumMode=ENABLED`` returns the stored one.
- SageMaker Developer Guide, "AWS Managed Policies for SageMaker projects":
  AmazonSageMakerServiceCatalogProductsLaunchRole reads S3 objects only when they carry the tag
  ``servicecatalog:provisioning=true``, so every object a project needs is tagged.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws
from test_release_support import (
    BUCKET,
    INGESTION_KEYS,
    MANIFEST_KEY,
    PLATFORM_KEYS,
    PLATFORM_PREFIX,
    PREFIX,
    PRODUCT_ID,
    REGION,
    RELAY,
    VERSION,
    catalog_id,
    create_bucket,
    expect_create,
    expect_describe,
    expect_list,
    expect_search,
    keys,
    make_repo_root,
    one_error_line,
    product_keys,
    published_keys,
    run_release,
    sha256_b64,
    spy_puts,
    tags,
    template_url,
    view,
)

from generators import policies
from generators.cli import parser as cli_parser
from generators.policies import release_statements
from generators.products import products, registered
from generators.release import command as release
from generators.release.aws import AwsClients, PreconditionError
from generators.release.previous import previous_version
from generators.release.s3 import PROVISIONING_TAG, Manifest
from generators.settings import Settings
from generators.upgrade import launch_role_digest
from security.policy_eval import allows


@pytest.fixture
def repo_root(tmp_path: Path) -> Path:
    return make_repo_root(tmp_path / "repo")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, repo_root: Path, tmp_path: Path):
    """moto S3 with the artifacts bucket; the release command uses these clients and the small repo."""
    with mock_aws():
        s3 = create_bucket(BUCKET)
        overrides: dict = {}
        monkeypatch.setattr(release, "aws_clients", lambda: AwsClients(overrides=overrides))
        monkeypatch.setattr(release, "REPO_ROOT", repo_root)
        yield SimpleNamespace(s3=s3, overrides=overrides, out=tmp_path / "build", repo_root=repo_root)


def args(aws, *extra: str) -> list[str]:
    return ["--version", VERSION, "--bucket", BUCKET, "--out", str(aws.out), *extra]


def read_manifest(s3) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=MANIFEST_KEY)["Body"].read())


def test_publishes_every_product_and_the_platform_tagged_with_sha256_and_the_manifest_last(aws, capsys) -> None:
    spy = spy_puts(aws.s3)
    aws.overrides["s3"] = aws.s3
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    published = published_keys()
    assert INGESTION_KEYS | PLATFORM_KEYS | {MANIFEST_KEY} <= published, "today's product keeps its keys"
    assert keys(aws.s3) == published
    assert spy.calls[-1] == MANIFEST_KEY and len(spy.calls) == len(published)
    for product in products():
        template = f"releases/{product.slug}/{VERSION}/{product.template_name}.yaml"
        own = [i for i, key in enumerate(spy.calls) if key.startswith(f"releases/{product.slug}/")]
        assert spy.calls.index(template) == max(own), f"{product.slug}: its zips go first, the template names them"
        assert spy.calls.index(template) < spy.calls.index(f"{PLATFORM_PREFIX}/sm-project-sc-portfolio.yaml"), \
            "the portfolio names every project template"

    for key in published - {MANIFEST_KEY}:
        local = (aws.out / key.rsplit("/", 1)[1]).read_bytes()
        head = aws.s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == sha256_b64(local), key
        assert head["ContentLength"] == len(local)
        assert tags(aws.s3, key) == dict([PROVISIONING_TAG]), key
    assert tags(aws.s3, MANIFEST_KEY) == {}
    assert aws.s3.head_object(Bucket=BUCKET, Key=f"{PLATFORM_PREFIX}/sm-policies.yaml")["ContentType"] \
        == "application/yaml"

    manifest = read_manifest(aws.s3)
    assert manifest["version"] == VERSION and manifest["platform"]["prefix"] == PLATFORM_PREFIX
    assert manifest["source"]["git_commit"] == "unknown"  # the temporary repo is no git checkout
    assert [p["slug"] for p in manifest["products"]] == sorted(p.slug for p in products())
    listed = {f["key"] for f in manifest["platform"]["files"]}
    assert listed == PLATFORM_KEYS
    for entry in manifest["products"]:
        product_files = {f["key"] for f in entry["files"]}
        assert all(key.startswith(f"{entry['prefix']}/") for key in product_files)
        assert entry["project_template"] in product_files
        listed |= product_files
    assert listed == published - {MANIFEST_KEY}
    for entry in [*manifest["platform"]["files"], *(f for p in manifest["products"] for f in p["files"])]:
        body = aws.s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
        assert entry["size"] == len(body)
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]

    assert out.count("uploaded") == len(published)
    assert f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{PREFIX}/project-s3-fs-ingestion.yaml" in out
    assert out.count("registration skipped") == len(products())


def test_templates_reference_exactly_the_published_objects(aws, capsys) -> None:
    """CloudFormation reads the Lambda code and the seed code from the keys the project template names
    (AWS::Lambda::Function Code.S3Key, AWS::CodeCommit::Repository Code.S3.Key); Service Catalog reads the
    project template from the portfolio's LoadTemplateFromURL: each must be a published key."""
    code, _, err = run_release(capsys, *args(aws))
    assert code == 0, err
    published = keys(aws.s3)
    key_pattern = re.compile(rf"releases/[a-z0-9-]+/{re.escape(VERSION)}/[A-Za-z0-9._-]+")
    portfolio = (aws.out / "sm-project-sc-portfolio.yaml").read_text(encoding="utf-8")
    for product in products():
        own = product_keys(product.slug, product.files)
        template_key = f"releases/{product.slug}/{VERSION}/{product.template_name}.yaml"
        text = (aws.out / f"{product.template_name}.yaml").read_text(encoding="utf-8")
        referenced = set(key_pattern.findall(text))
        assert referenced == own - {template_key}, product.slug
        assert template_key in portfolio, product.slug
    referenced = {key for t in aws.out.glob("*.yaml") for key in key_pattern.findall(t.read_text(encoding="utf-8"))}
    assert referenced <= published


def test_rerun_with_identical_bytes_changes_nothing(aws, capsys) -> None:
    assert run_release(capsys, *args(aws))[0] == 0
    published = published_keys()
    before = {k: aws.s3.head_object(Bucket=BUCKET, Key=k)["LastModified"] for k in published}
    spy = spy_puts(aws.s3)
    aws.overrides["s3"] = aws.s3
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    assert spy.calls == []
    assert out.count("already published, identical") == len(published)
    assert "with identical bytes: nothing uploaded" in out
    assert before == {k: aws.s3.head_object(Bucket=BUCKET, Key=k)["LastModified"] for k in published}


def test_different_bytes_under_a_published_version_are_refused_before_any_upload(aws, capsys) -> None:
    assert run_release(capsys, *args(aws))[0] == 0
    published_zip = aws.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/seed-code-s3-fs-ingestion.zip")["Body"].read()
    (aws.repo_root / "seed-code" / "s3-fs-ingestion" / "pipelines" / "pipeline.py").write_text("PIPELINE = 'x'\n")
    spy = spy_puts(aws.s3)
    aws.overrides["s3"] = aws.s3
    code, out, err = run_release(capsys, *args(aws))
    assert code == 1
    line = one_error_line(err)
    assert "seed-code-s3-fs-ingestion.zip" in line and "different bytes" in line and "new version" in line
    assert spy.calls == []
    assert aws.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/seed-code-s3-fs-ingestion.zip")["Body"].read() \
        == published_zip


def test_failure_in_the_middle_leaves_no_manifest_and_a_rerun_completes(aws, capsys) -> None:
    spy = spy_puts(aws.s3, fail_on=3)
    aws.overrides["s3"] = aws.s3
    code, out, err = run_release(capsys, *args(aws))
    assert code == 1
    line = one_error_line(err)
    failed = spy.calls[2]
    assert failed.rsplit("/", 1)[1] in line and "InternalError" in line and "re-run the same command" in line
    assert keys(aws.s3) == set(spy.calls[:2]), "nothing after the failed object"
    assert MANIFEST_KEY not in keys(aws.s3)

    spy.fail_on = None
    spy.calls.clear()
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    assert keys(aws.s3) == published_keys()
    assert out.count("already published, identical") == 2
    assert spy.calls[-1] == MANIFEST_KEY and len(spy.calls) == len(published_keys()) - 2


def test_network_failure_is_one_line_naming_the_object(aws, capsys) -> None:
    spy = spy_puts(aws.s3, fail_on=1,
                   error=EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com"))
    aws.overrides["s3"] = aws.s3
    code, _, err = run_release(capsys, *args(aws))
    assert code == 1
    line = one_error_line(err)
    assert spy.calls[0].rsplit("/", 1)[1] in line and "Could not connect" in line  # the first upload
    assert keys(aws.s3) == set()


def test_dry_run_makes_no_aws_call_and_prints_the_plan_of_every_product(aws, capsys, monkeypatch) -> None:
    def no_aws():
        raise AssertionError("a dry run must not create AWS clients")

    monkeypatch.setattr(release, "aws_clients", no_aws)
    code, out, err = run_release(capsys, *args(aws, "--dry-run", "--register", "--product-id", PRODUCT_ID,
                                                 "--deprecate-previous"))
    assert code == 0, err
    assert keys(aws.s3) == set()
    for key in published_keys():
        assert key in out
    seed = (aws.out / "seed-code-s3-fs-ingestion.zip").read_bytes()
    assert hashlib.sha256(seed).hexdigest() in out
    assert f"CreateProvisioningArtifact ProductId={PRODUCT_ID} Name=1.2.0" in out
    assert f"IdempotencyToken=release-1-2-0-{PRODUCT_ID}" in out
    assert f"UpdateProvisioningArtifact ProductId={PRODUCT_ID} Guidance=DEPRECATED" in out
    for product in products():
        assert f"product {product.slug} (" in out
        if product.slug != "s3-fs-ingestion":  # the bare --product-id is for s3-fs-ingestion
            assert f"SearchProductsAsAdmin FullTextSearch={product.display_name!r}" in out


def test_bucket_pattern_is_resolved_for_the_publishing_account_and_region(aws, capsys) -> None:
    create_bucket(f"rel-123456789012-{REGION}")
    code, out, err = run_release(capsys, "--version", VERSION, "--bucket", "rel-${AWS::AccountId}-${AWS::Region}",
                                 "--out", str(aws.out))
    assert code == 0, err
    assert keys(aws.s3, f"rel-123456789012-{REGION}") == published_keys()
    project = (aws.out / "project-s3-fs-ingestion.yaml").read_text()
    assert "rel-${AWS::AccountId}-${AWS::Region}" in project, "one build serves every account and region"


def test_bucket_in_another_default_region_gets_that_regions_url(aws, capsys, monkeypatch) -> None:
    """S3 User Guide, "Virtual hosting of buckets": https://BUCKET.s3.REGION.amazonaws.com/KEY (us-east-1
    buckets too, whose GetBucketLocation answers null)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    create_bucket("release-artifacts-use1", region="us-east-1")
    code, out, err = run_release(capsys, "--version", VERSION, "--bucket", "release-artifacts-use1",
                                 "--out", str(aws.out))
    assert code == 0, err
    assert f"https://release-artifacts-use1.s3.us-east-1.amazonaws.com/{PREFIX}/project-s3-fs-ingestion.yaml" in out


def test_fixed_name_bucket_in_another_region_is_refused_before_anything_is_built(aws, capsys) -> None:
    """AWS Lambda API Reference, "FunctionCode": S3Bucket is "an Amazon S3 bucket in the same AWS Region as your
    function". Projects of this release are provisioned in its region and read their Lambda code from a bucket
    with a fixed name: in another region, CreateFunction fails for every project."""
    s3_use1 = create_bucket("release-artifacts-use1", region="us-east-1")
    code, _, err = run_release(capsys, "--version", VERSION, "--bucket", "release-artifacts-use1",
                               "--out", str(aws.out))
    assert code == 2
    line = one_error_line(err)
    assert "release-artifacts-use1 is in us-east-1, but the release's region is eu-west-1" in line
    assert "${AWS::Region}" in line and "nothing was published" in line
    assert not aws.out.exists(), "refused before the build"
    assert keys(s3_use1, "release-artifacts-use1") == set()


# ---------------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit status != 0, nothing published
# ---------------------------------------------------------------------------------------------------------


def test_version_that_is_not_semver(aws, capsys) -> None:
    code, _, err = run_release(capsys, "--version", "1.2", "--bucket", BUCKET, "--out", str(aws.out))
    assert code == 2 and "not semantic versioning" in one_error_line(err)
    assert keys(aws.s3) == set()


def test_bucket_that_does_not_exist(aws, capsys) -> None:
    code, _, err = run_release(capsys, "--version", VERSION, "--bucket", "no-such-release-bucket",
                               "--out", str(aws.out))
    assert code == 2
    line = one_error_line(err)
    assert "'no-such-release-bucket' does not exist" in line and "nothing was published" in line


def test_bucket_that_cannot_be_read(aws, capsys) -> None:
    """S3 API Reference, "HeadBucket": 403 without s3:ListBucket, with no body (only the status code)."""
    s3 = boto3.client("s3", region_name=REGION)
    stubber = Stubber(s3)
    stubber.add_client_error("head_bucket", service_error_code="403", service_message="Forbidden",
                             http_status_code=403, expected_params={"Bucket": BUCKET})
    stubber.activate()
    aws.overrides["s3"] = s3
    code, _, err = run_release(capsys, *args(aws))
    assert code == 2 and "access denied to artifacts bucket" in one_error_line(err)
    stubber.assert_no_pending_responses()


def test_bucket_that_cannot_be_written_leaves_nothing(aws, capsys) -> None:
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                          "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")
    spy = spy_puts(aws.s3, fail_on=1, error=denied)
    aws.overrides["s3"] = aws.s3
    code, _, err = run_release(capsys, *args(aws))
    assert code == 1
    line = one_error_line(err)
    assert "AccessDenied" in line and spy.calls[0].rsplit("/", 1)[1] in line  # the first upload
    assert keys(aws.s3) == set()


def test_missing_credentials(monkeypatch, capsys, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never AWS, even if a check slipped
    monkeypatch.setattr(release, "REPO_ROOT", make_repo_root(tmp_path / "repo"))
    code, _, err = run_release(capsys, "--version", VERSION, "--bucket", BUCKET, "--out", str(tmp_path / "b"))
    assert code == 2 and "no AWS credentials found" in one_error_line(err)


def test_deprecate_previous_needs_a_product(aws, capsys) -> None:
    code, _, err = run_release(capsys, *args(aws, "--deprecate-previous"))
    assert code == 2 and "--register, --product-id or --product-name" in one_error_line(err)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--product-id", "no-such-product=prod-abcdefghijklm"], "no product 'no-such-product'"),
        (["--product-id", "s3-fs-ingestion="], "give a value after '='"),
        (["--product-id", PRODUCT_ID, "--product-name", "S3 to Feature Store ingestion"],
         "product s3-fs-ingestion is already pointed at"),
        (["--product-id", PRODUCT_ID, "--product-id", f"s3-fs-ingestion={PRODUCT_ID}"],
         "product s3-fs-ingestion is already pointed at"),
    ],
)
def test_product_options_that_name_no_product_or_one_twice(aws, capsys, options, message) -> None:
    code, _, err = run_release(capsys, *args(aws, *options))
    assert code == 2 and message in one_error_line(err)
    assert keys(aws.s3) == set()


def test_product_that_does_not_exist_is_found_before_any_upload(aws, capsys) -> None:
    """Service Catalog API Reference, "DescribeProductAsAdmin": ResourceNotFoundException for an unknown id."""
    sc = boto3.client("servicecatalog", region_name=REGION)
    stubber = Stubber(sc)
    stubber.add_client_error("describe_product_as_admin", service_error_code="ResourceNotFoundException",
                             service_message="Product not found", expected_params={"Id": "prod-doesnotexist"})
    stubber.activate()
    aws.overrides["servicecatalog"] = sc
    code, _, err = run_release(capsys, *args(aws, "--product-id", "prod-doesnotexist"))
    assert code == 2
    assert "product 'prod-doesnotexist' (for s3-fs-ingestion) not found in eu-west-1" in one_error_line(err)
    assert keys(aws.s3) == set()


def test_product_name_that_does_not_exist(aws, capsys) -> None:
    sc = boto3.client("servicecatalog", region_name=REGION)
    stubber = Stubber(sc)
    expect_search(stubber, "Nope")
    stubber.activate()
    aws.overrides["servicecatalog"] = sc
    code, _, err = run_release(capsys, *args(aws, "--product-name", "Nope"))
    assert code == 2 and "no Service Catalog product named 'Nope' (for s3-fs-ingestion)" in one_error_line(err)
    assert keys(aws.s3) == set()


def test_register_looks_every_product_up_before_anything_is_published(aws, capsys) -> None:
    """--register finds each product by its display name (SearchProductsAsAdmin, exact match): one product
    missing in the account (its portfolio stack not updated yet) stops the release before any upload."""
    sc = boto3.client("servicecatalog", region_name=REGION)
    stubber = Stubber(sc)
    everything = products()
    missing = everything[-1]
    for product in everything:
        found = [] if product is missing else [view(catalog_id(product.slug), product.display_name)]
        expect_search(stubber, product.display_name, *found)
    stubber.activate()
    aws.overrides["servicecatalog"] = sc
    code, _, err = run_release(capsys, *args(aws, "--register"))
    assert code == 2
    line = one_error_line(err)
    assert f"no Service Catalog product named {missing.display_name!r} (for {missing.slug})" in line
    assert "nothing was published" in line
    assert keys(aws.s3) == set()
    stubber.assert_no_pending_responses()


def test_bad_s3_template_location(aws, capsys) -> None:
    code, _, err = run_release(capsys, *args(aws, "--s3-template-location", "https://bucket/prefix"))
    assert code == 2 and "s3://BUCKET/PREFIX" in one_error_line(err)


# ---------------------------------------------------------------------------------------------------------
# A second product, registered for this test only: published, listed, registered beside the first
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def relay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """RELAY registered beside the real products, its seed code and Lambda in a temporary repository."""
    with registered(RELAY), mock_aws():
        root = make_repo_root(tmp_path / "repo")
        (root / "seed-code" / "relay-echo" / "README.md").write_text("relay\n", encoding="utf-8")
        (root / "lambda_functions" / "relay_echo" / "app.py").write_text(
            "def lambda_handler(event, context):\n    return event\n", encoding="utf-8")
        sc = boto3.client("servicecatalog", region_name=REGION)
        stubber = Stubber(sc)
        stubber.activate()
        monkeypatch.setattr(release, "aws_clients", lambda: AwsClients(overrides={"servicecatalog": sc}))
        monkeypatch.setattr(release, "REPO_ROOT", root)
        yield SimpleNamespace(s3=create_bucket(BUCKET), stubber=stubber, out=tmp_path / "build")
        stubber.assert_no_pending_responses()


def test_a_second_product_is_published_listed_and_registered_beside_the_first(relay, capsys) -> None:
    """Service Catalog API Reference: SearchProductsAsAdmin (FullTextSearch also matches partial names, so the
    release keeps the exact one), CreateProvisioningArtifact (one version per product, from its own template)."""
    everything = products()
    assert {"relay-echo", "s3-fs-ingestion"} <= {p.slug for p in everything}
    for product in everything:  # preconditions: every product looked up first, by display name
        expect_search(relay.stubber, product.display_name,
                      view("prod-elsewhere00001", f"{product.display_name} (legacy)"),
                      view(catalog_id(product.slug), product.display_name))
    for product in everything:  # after publishing: one new version per product, each from its own template
        expect_list(relay.stubber, product_id=catalog_id(product.slug))
        expect_create(relay.stubber, f"pa-{product.slug[:10]}", product_id=catalog_id(product.slug),
                      slug=product.slug)

    code, out, err = run_release(capsys, "--version", VERSION, "--bucket", BUCKET, "--out", str(relay.out),
                                 "--register")
    assert code == 0, err
    relay_keys = {f"releases/relay-echo/{VERSION}/{name}"
                  for name in ("project-relay-echo.yaml", "seed-code-relay-echo.zip", "lambda-relay-echo.zip")}
    assert relay_keys | INGESTION_KEYS | PLATFORM_KEYS | {MANIFEST_KEY} <= keys(relay.s3)
    assert keys(relay.s3) == published_keys()

    project = yaml.safe_load((relay.out / "project-relay-echo.yaml").read_text(encoding="utf-8"))
    function = project["Resources"]["RelayFunction"]["Properties"]["Code"]
    repository = project["Resources"]["SeedCodeRepository"]["Properties"]["Code"]["S3"]
    assert function["S3Key"] == f"releases/relay-echo/{VERSION}/lambda-relay-echo.zip"
    assert repository["Key"] == f"releases/relay-echo/{VERSION}/seed-code-relay-echo.zip"
    lambda_zip = relay.s3.get_object(Bucket=BUCKET, Key=function["S3Key"])["Body"].read()
    assert lambda_zip == (relay.out / "lambda-relay-echo.zip").read_bytes()

    manifest = read_manifest(relay.s3)
    entries = {p["slug"]: p for p in manifest["products"]}
    assert entries["relay-echo"]["display_name"] == "Relay echo (test only)"
    assert {f["key"] for f in entries["relay-echo"]["files"]} == relay_keys
    assert {f["key"] for f in entries["s3-fs-ingestion"]["files"]} == INGESTION_KEYS
    assert entries["relay-echo"]["project_template"] == f"releases/relay-echo/{VERSION}/project-relay-echo.yaml"

    for product in everything:
        assert f"{product.slug}: registered version {VERSION} on product {catalog_id(product.slug)}" in out
    assert f"project template URL of relay-echo: {template_url('relay-echo')}" in out


def test_explicit_ids_point_products_at_their_catalog_products(relay, capsys) -> None:
    """SLUG=ID registers only the products named (without --register); a bare --product-name is for
    s3-fs-ingestion, as before there were several products."""
    expect_describe(relay.stubber, "prod-relay0000001", "Relay echo")  # relay-echo=ID (products by slug)
    expect_search(relay.stubber, "Ingestion", view(PRODUCT_ID, "Ingestion"))  # bare name: s3-fs-ingestion
    expect_list(relay.stubber, product_id="prod-relay0000001")
    expect_create(relay.stubber, "pa-relay", product_id="prod-relay0000001", slug="relay-echo")
    expect_list(relay.stubber, product_id=PRODUCT_ID)
    expect_create(relay.stubber, "pa-ingestion", product_id=PRODUCT_ID, slug="s3-fs-ingestion")

    code, out, err = run_release(capsys, "--version", VERSION, "--bucket", BUCKET, "--out", str(relay.out),
                                 "--product-id", "relay-echo=prod-relay0000001", "--product-name", "Ingestion")
    assert code == 0, err
    assert "relay-echo: registered version 1.2.0 on product prod-relay0000001 (Relay echo) as pa-relay" in out
    assert f"s3-fs-ingestion: registered version 1.2.0 on product {PRODUCT_ID} (Ingestion) as pa-ingestion" in out
    for product in products():
        if product.slug not in ("relay-echo", "s3-fs-ingestion"):
            assert f"{product.slug}: registration skipped" in out


def test_two_products_on_one_catalog_product_are_refused(relay, capsys) -> None:
    """Each product's versions are registered on its own Service Catalog product: two on one would mix
    their templates under the same version name."""
    expect_describe(relay.stubber, PRODUCT_ID, "Ingestion")
    expect_describe(relay.stubber, PRODUCT_ID, "Ingestion")
    code, _, err = run_release(capsys, "--version", VERSION, "--bucket", BUCKET, "--out", str(relay.out),
                               "--product-id", f"relay-echo={PRODUCT_ID}", "--product-id", PRODUCT_ID)
    assert code == 2
    assert f"products relay-echo and s3-fs-ingestion would be registered on the same Service Catalog product " \
           f"{PRODUCT_ID}" in one_error_line(err)
    assert keys(relay.s3) == set()


# ---------------------------------------------------------------------------------------------------------
# SageMaker Projects S3 templates
# ---------------------------------------------------------------------------------------------------------


def test_s3_templates_are_published_tagged_for_studio_with_domain_instructions(aws, capsys) -> None:
    """SageMaker Developer Guide, custom project templates in Amazon S3: Studio lists templates tagged
    sagemaker:studio-visibility=true under the location the domain tag sagemaker:projectS3TemplatesLocation
    names, and reads them from the browser (CORS)."""
    create_bucket("studio-templates")
    code, out, err = run_release(capsys, *args(aws, "--s3-template-location", "s3://studio-templates/templates"))
    assert code == 0, err
    expected = {f"templates/{p.slug}-1-2-0.yaml": p for p in products()}
    assert "templates/s3-fs-ingestion-1-2-0.yaml" in expected
    assert keys(aws.s3, "studio-templates") == set(expected)
    for key, product in expected.items():
        assert tags(aws.s3, key, "studio-templates") == {"sagemaker:studio-visibility": "true",
                                                        "servicecatalog:provisioning": "true"}
        body = aws.s3.get_object(Bucket="studio-templates", Key=key)["Body"].read()
        assert body == (aws.out / f"{product.template_name}.yaml").read_bytes()
    assert "sagemaker:projectS3TemplatesLocation=s3://studio-templates/templates/" in out
    cors, _ = json.JSONDecoder().raw_decode(out[out.index("{"):])
    (rule,) = cors["CORSRules"]
    assert rule["AllowedOrigins"] == ["https://*.sagemaker.aws"] and set(rule["AllowedMethods"]) == {"GET", "HEAD"}

    code, out, err = run_release(capsys, *args(aws, "--s3-template-location", "s3://studio-templates/templates"))
    assert code == 0 and "nothing uploaded" in out


def test_s3_template_bucket_must_exist_before_anything_is_published(aws, capsys) -> None:
    code, _, err = run_release(capsys, *args(aws, "--s3-template-location", "s3://missing-templates/t"))
    assert code == 2 and "S3 template bucket 'missing-templates' does not exist" in one_error_line(err)
    assert keys(aws.s3) == set()


# ---------------------------------------------------------------------------------------------------------
# The policy and the documentation stay true to the code
# ---------------------------------------------------------------------------------------------------------


def test_release_policy_grants_every_action_the_release_calls() -> None:
    granted = {action.JSONrepr() for statement in release_statements(Settings(VERSION, BUCKET))
               for action in statement.Action}
    assert set(release.REQUIRED_ACTIONS) <= granted, set(release.REQUIRED_ACTIONS) - granted


def test_release_policy_allows_writing_every_published_key() -> None:
    """IAM User Guide, "IAM JSON policy elements: Resource": a trailing * matches any characters, / included;
    the ReleasePolicy must cover every product's prefix and the platform prefix."""
    template = json.loads(policies.build(Settings(VERSION, BUCKET)).to_json())
    document = template["Resources"]["ReleasePolicy"]["Properties"]["PolicyDocument"]
    resolved = json.loads(json.dumps(document).replace("${AWS::Partition}", "aws"),
                          object_hook=lambda o: o["Fn::Sub"] if set(o) == {"Fn::Sub"} else o)
    for key in published_keys():
        for action in ("s3:PutObject", "s3:GetObject", "s3:PutObjectTagging", "s3:GetObjectTagging"):
            assert allows([resolved], action, f"arn:aws:s3:::{BUCKET}/{key}"), (action, key)


def test_release_doc_covers_every_option_and_action() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "release.md").read_text(encoding="utf-8")
    subparsers = next(a for a in cli_parser()._actions if a.dest == "command")
    options = {o for a in subparsers.choices["release"]._actions for o in a.option_strings if o.startswith("--")}
    assert {"--register", "--product-id", "--product-name"} <= options
    missing = sorted(o for o in options - {"--help"} if o not in doc)
    assert not missing, f"docs/release.md does not mention {missing}"
    missing = sorted(a for a in release.REQUIRED_ACTIONS if a not in doc)
    assert not missing, f"docs/release.md does not list {missing}"


# ---------------------------------------------------------------------------------------------------------
# Where a release builds: never over build/
# ---------------------------------------------------------------------------------------------------------


def test_a_dry_run_never_writes_build(aws, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_release(capsys, "--version", VERSION, "--bucket", BUCKET, "--dry-run")
    assert code == 0, err
    assert not (tmp_path / "build").exists()
    scratch = Path(re.search(r"built into the temporary directory (\S+) \(removed", out).group(1))
    assert not scratch.exists(), "removed once the plan is printed"
    assert f"{PREFIX}/project-s3-fs-ingestion.yaml" in out and keys(aws.s3) == set()


def test_a_release_builds_into_its_own_version_folder_and_names_the_published_copies(aws, capsys, monkeypatch,
                                                                                       tmp_path) -> None:
    """build/ keeps what the developer built; admins deploy the published templates (CloudFormation
    CreateStack/UpdateStack TemplateURL: an S3 URL), the copies the portfolio and the projects refer to."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "sm-policies.yaml").write_text("# the developer's own build\n", encoding="utf-8")
    code, out, err = run_release(capsys, "--version", VERSION, "--bucket", BUCKET)
    assert code == 0, err
    assert (tmp_path / "build" / "sm-policies.yaml").read_text(encoding="utf-8") == "# the developer's own build\n"
    own = tmp_path / "build" / VERSION
    published = aws.s3.get_object(Bucket=BUCKET, Key=f"{PLATFORM_PREFIX}/sm-policies.yaml")["Body"].read()
    assert (own / "sm-policies.yaml").read_bytes() == published
    for name in ("sm-policies", "sm-project-sc-portfolio"):
        url = f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{PLATFORM_PREFIX}/{name}.yaml"
        assert f"deploy the published {name}: --template-url {url}" in out


# ---------------------------------------------------------------------------------------------------------
# Refused before anything is built or published
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--product-id", ""], "--product-id is empty"),
        (["--product-id", "  "], "--product-id is empty"),
        (["--product-name", ""], "--product-name is empty"),
        (["--product-name", "s3-fs-ingestion="], "give a value after '='"),
        (["--product-id", "s3-fs-ingestion= "], "give a value after '='"),
        (["--version", "1.2.0+build.5"], "has build metadata"),
    ],
)
def test_empty_product_values_and_build_metadata_are_refused_before_the_build(aws, capsys, options, message) -> None:
    """An empty id or name would register nothing (Service Catalog API Reference, "DescribeProductAsAdmin": Id
    has a minimum length of 1); a '+' version breaks the template URLs (see tests/test_cli.py)."""
    code, _, err = run_release(capsys, *args(aws, *options))
    assert code == 2 and message in one_error_line(err)
    assert not aws.out.exists() and keys(aws.s3) == set()


# ---------------------------------------------------------------------------------------------------------
# "Redeploy sm-policies first": the launch role's digest against the previous published version
# ---------------------------------------------------------------------------------------------------------


def _put_manifest(s3, key: str, **fields) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"format": 2, **fields}).encode())


def _changelog(repo_root: Path, version: str, answer: str) -> None:
    (repo_root / "CHANGELOG.md").write_text(f"# Changelog\n\n## [{version}] - Unreleased\n\n### Upgrade\n\n"
                                            f"- Launch role changed: {answer}\n", encoding="utf-8")


def test_the_manifest_records_the_launch_role_digest_of_the_published_policies(aws, capsys) -> None:
    code, _, err = run_release(capsys, *args(aws))
    assert code == 0, err
    policies_yaml = aws.s3.get_object(Bucket=BUCKET, Key=f"{PLATFORM_PREFIX}/sm-policies.yaml")["Body"].read()
    expected = launch_role_digest(yaml.safe_load(policies_yaml))
    assert read_manifest(aws.s3)["launch_role_policy_sha256"] == expected


def test_first_release_under_a_prefix_says_to_deploy_sm_policies(aws, capsys) -> None:
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    assert "sm-policies: first version under this prefix: deploy sm-policies (https://" in out


def test_unchanged_launch_role_since_the_previous_version_needs_no_redeploy(aws, capsys) -> None:
    code, _, err = run_release(capsys, "--version", "1.1.0", "--bucket", BUCKET, "--out", str(aws.out / "a"))
    assert code == 0, err
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    assert "the launch role's policy is unchanged since version 1.1.0" in out
    assert "REDEPLOY" not in out


def test_changed_launch_role_since_the_previous_version_says_redeploy_first(aws, capsys) -> None:
    """The newest complete version older than this one counts: a newer one (2.0.0) and one without a
    manifest (1.1.5, an interrupted release) are skipped."""
    _put_manifest(aws.s3, "releases/platform/1.1.0/manifest.json", version="1.1.0",
                  launch_role_policy_sha256="0" * 64)
    aws.s3.put_object(Bucket=BUCKET, Key="releases/platform/1.1.5/sm-policies.yaml", Body=b"incomplete")
    _put_manifest(aws.s3, "releases/platform/2.0.0/manifest.json", version="2.0.0",
                  launch_role_policy_sha256="1" * 64)
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("REDEPLOY sm-policies FIRST"))
    assert "changed since version 1.1.0" in line and "releases/platform/1.1.0/manifest.json" in line
    assert f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{PLATFORM_PREFIX}/sm-policies.yaml" in line


@pytest.mark.parametrize(("answer", "expected"), [("yes", "REDEPLOY sm-policies FIRST"),
                                                  ("no", "is unchanged since version 0.1.0"),
                                                  (None, "cannot tell whether the launch role's policy changed")])
def test_a_format_1_manifest_without_digest_falls_back_on_the_changelog(aws, capsys, answer, expected) -> None:
    """0.1.0 was published with a format-1 manifest beside its only product's files, without a digest."""
    _put_manifest(aws.s3, "releases/s3-fs-ingestion/0.1.0/manifest.json", version="0.1.0")
    if answer:
        _changelog(aws.repo_root, VERSION, answer)
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    assert expected in out
    if answer:
        assert f"CHANGELOG.md [{VERSION}] says so" in out


def test_dry_run_says_what_the_changelog_declares(aws, capsys, monkeypatch) -> None:
    monkeypatch.setattr(release, "aws_clients", lambda: pytest.fail("a dry run makes no AWS call"))
    _changelog(aws.repo_root, VERSION, "yes")
    code, out, err = run_release(capsys, *args(aws, "--dry-run"))
    assert code == 0, err
    assert f"REDEPLOY sm-policies FIRST: the launch role's policy changed (CHANGELOG.md [{VERSION}] says so; a " \
        "real run compares with the previous version's manifest)" in out
    assert "s3:ListObjectsV2 Prefix=releases/platform/ Delimiter=/" in out


def test_a_manifest_without_the_digest_is_identical_to_one_with_it(aws, capsys) -> None:
    """Re-running a version published before the digest existed changes nothing: the digest is derived from
    sm-policies.yaml, whose SHA-256 both manifests list."""
    code, _, err = run_release(capsys, *args(aws))
    assert code == 0, err
    body = aws.s3.get_object(Bucket=BUCKET, Key=MANIFEST_KEY)["Body"].read()
    built = Manifest("manifest.json", MANIFEST_KEY, body)
    older = json.loads(body)
    del older["launch_role_policy_sha256"]
    assert built.same_content(json.dumps(older).encode())
    older["platform"]["files"][0]["sha256"] = "0" * 64
    assert not built.same_content(json.dumps(older).encode())


def test_earlier_versions_that_cannot_be_listed_stop_the_release_before_any_upload() -> None:
    """S3 API Reference, "ListObjectsV2": 403 AccessDenied without s3:ListBucket on the bucket."""
    s3 = boto3.client("s3", region_name=REGION)
    stubber = Stubber(s3)
    stubber.add_client_error("list_objects_v2", service_error_code="AccessDenied", service_message="Access Denied",
                             http_status_code=403,
                             expected_params={"Bucket": BUCKET, "Prefix": "releases/platform/", "Delimiter": "/"})
    stubber.activate()
    with pytest.raises(PreconditionError, match=r"cannot read the earlier versions under s3://release-artifacts/"
                                                r"releases/ \(s3:ListBucket, s3:GetObject\): AccessDenied"):
        previous_version(s3, BUCKET, "releases", VERSION)
    stubber.assert_no_pending_responses()
