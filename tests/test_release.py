"""``python -m generators release`` against moto's S3: immutable, checksummed, tagged objects, manifest last."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws
from test_release_support import (
    BUCKET,
    PREFIX,
    REGION,
    VERSION,
    create_bucket,
    keys,
    make_repo_root,
    one_error_line,
    run_release,
    sha256_b64,
    spy_puts,
    tags,
)

from generators import release
from generators.cli import parser as cli_parser
from generators.policies import release_statements
from generators.release_aws import AwsClients
from generators.release_s3 import MANIFEST, PROVISIONING_TAG
from generators.settings import Settings

PUBLISHED = {
    f"{PREFIX}/{name}"
    for name in (
        "lambda-start-ingestion-pipeline.zip",
        "lambda-data-bucket-events.zip",
        "seed-code-s3-fs-ingestion.zip",
        "project-s3-fs-ingestion.yaml",
        "sm-policies.yaml",
        "sm-project-sc-portfolio.yaml",
        MANIFEST,
    )
}
MANIFEST_KEY = f"{PREFIX}/{MANIFEST}"


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


def test_publishes_every_file_tagged_with_sha256_and_the_manifest_last(aws, capsys) -> None:
    spy = spy_puts(aws.s3)
    aws.overrides["s3"] = aws.s3
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    assert keys(aws.s3) == PUBLISHED
    assert spy.calls[-1] == MANIFEST_KEY and len(spy.calls) == len(PUBLISHED)
    assert spy.calls.index(f"{PREFIX}/seed-code-s3-fs-ingestion.zip") < spy.calls.index(
        f"{PREFIX}/project-s3-fs-ingestion.yaml"), "zips go first: the templates reference them"

    for key in PUBLISHED - {MANIFEST_KEY}:
        local = (aws.out / key.rsplit("/", 1)[1]).read_bytes()
        head = aws.s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == sha256_b64(local), key
        assert head["ContentLength"] == len(local)
        assert tags(aws.s3, key) == dict([PROVISIONING_TAG]), key
    assert tags(aws.s3, MANIFEST_KEY) == {}
    assert aws.s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/sm-policies.yaml")["ContentType"] == "application/yaml"

    manifest = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=MANIFEST_KEY)["Body"].read())
    assert manifest["version"] == VERSION and manifest["prefix"] == PREFIX
    assert manifest["source"]["git_commit"] == "unknown"  # the temporary repo is no git checkout
    assert {f["key"] for f in manifest["files"]} == PUBLISHED - {MANIFEST_KEY}
    for entry in manifest["files"]:
        body = aws.s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
        assert entry["size"] == len(body)
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]

    assert out.count("uploaded") == len(PUBLISHED)
    assert f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{PREFIX}/project-s3-fs-ingestion.yaml" in out
    assert "registration skipped" in out


def test_templates_reference_exactly_the_published_objects(aws, capsys) -> None:
    code, _, err = run_release(capsys, *args(aws))
    assert code == 0, err
    published = keys(aws.s3)
    referenced = set()
    for template in aws.out.glob("*.yaml"):
        text = template.read_text(encoding="utf-8")
        referenced |= set(re.findall(rf"{re.escape(PREFIX)}/[A-Za-z0-9._-]+", text))
        assert BUCKET in text or template.name == "sm-policies.yaml"
    assert {f"{PREFIX}/seed-code-s3-fs-ingestion.zip", f"{PREFIX}/lambda-start-ingestion-pipeline.zip",
            f"{PREFIX}/project-s3-fs-ingestion.yaml"} <= referenced
    assert referenced <= published


def test_rerun_with_identical_bytes_changes_nothing(aws, capsys) -> None:
    assert run_release(capsys, *args(aws))[0] == 0
    before = {k: aws.s3.head_object(Bucket=BUCKET, Key=k)["LastModified"] for k in PUBLISHED}
    spy = spy_puts(aws.s3)
    aws.overrides["s3"] = aws.s3
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    assert spy.calls == []
    assert out.count("already published, identical") == len(PUBLISHED)
    assert "with identical bytes: nothing uploaded" in out
    assert before == {k: aws.s3.head_object(Bucket=BUCKET, Key=k)["LastModified"] for k in PUBLISHED}


def test_different_bytes_under_a_published_version_are_refused_before_any_upload(aws, capsys) -> None:
    assert run_release(capsys, *args(aws))[0] == 0
    published_zip = aws.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/seed-code-s3-fs-ingestion.zip")["Body"].read()
    (aws.repo_root / "seed-code/s3-fs-ingestion/pipelines/pipeline.py").write_text("PIPELINE = 'changed'\n")
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
    assert failed.rsplit("/", 1)[1] in line and "InternalError" in line
    assert keys(aws.s3) == set(spy.calls[:2]), "nothing after the failed object"
    assert MANIFEST_KEY not in keys(aws.s3)

    spy.fail_on = None
    spy.calls.clear()
    code, out, err = run_release(capsys, *args(aws))
    assert code == 0, err
    assert keys(aws.s3) == PUBLISHED
    assert out.count("already published, identical") == 2
    assert spy.calls[-1] == MANIFEST_KEY and len(spy.calls) == len(PUBLISHED) - 2


def test_network_failure_is_one_line_naming_the_object(aws, capsys) -> None:
    spy_puts(aws.s3, fail_on=1, error=EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com"))
    aws.overrides["s3"] = aws.s3
    code, _, err = run_release(capsys, *args(aws))
    assert code == 1
    line = one_error_line(err)
    assert "lambda-data-bucket-events.zip" in line and "Could not connect" in line  # the first upload
    assert keys(aws.s3) == set()


def test_dry_run_makes_no_aws_call_and_prints_the_plan(aws, capsys, monkeypatch) -> None:
    def no_aws():
        raise AssertionError("a dry run must not create AWS clients")

    monkeypatch.setattr(release, "aws_clients", no_aws)
    code, out, err = run_release(capsys, *args(aws, "--dry-run", "--product-id", "prod-abcdefghijklm",
                                                 "--deprecate-previous"))
    assert code == 0, err
    assert keys(aws.s3) == set()
    for key in PUBLISHED:
        assert key in out
    seed = (aws.out / "seed-code-s3-fs-ingestion.zip").read_bytes()
    assert hashlib.sha256(seed).hexdigest() in out
    assert "CreateProvisioningArtifact Name=1.2.0" in out and "IdempotencyToken=release-1-2-0-" in out
    assert "UpdateProvisioningArtifact Guidance=DEPRECATED" in out


def test_bucket_pattern_is_resolved_for_the_publishing_account_and_region(aws, capsys) -> None:
    create_bucket(f"rel-123456789012-{REGION}")
    code, out, err = run_release(capsys, "--version", VERSION, "--bucket", "rel-${AWS::AccountId}-${AWS::Region}",
                                 "--out", str(aws.out))
    assert code == 0, err
    assert keys(aws.s3, f"rel-123456789012-{REGION}") == PUBLISHED
    project = (aws.out / "project-s3-fs-ingestion.yaml").read_text()
    assert "rel-${AWS::AccountId}-${AWS::Region}" in project, "one build serves every account and region"


def test_bucket_in_another_region_gets_that_regions_url(aws, capsys) -> None:
    create_bucket("release-artifacts-use1", region="us-east-1")
    code, out, err = run_release(capsys, "--version", VERSION, "--bucket", "release-artifacts-use1",
                                 "--out", str(aws.out))
    assert code == 0, err
    assert f"https://release-artifacts-use1.s3.us-east-1.amazonaws.com/{PREFIX}/project-s3-fs-ingestion.yaml" in out


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
    spy_puts(aws.s3, fail_on=1, error=denied)
    aws.overrides["s3"] = aws.s3
    code, _, err = run_release(capsys, *args(aws))
    assert code == 1
    line = one_error_line(err)
    assert "AccessDenied" in line and "lambda-data-bucket-events.zip" in line  # the first upload
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
    assert code == 2 and "--product-id or --product-name" in one_error_line(err)


def test_product_that_does_not_exist_is_found_before_any_upload(aws, capsys) -> None:
    sc = boto3.client("servicecatalog", region_name=REGION)
    stubber = Stubber(sc)
    stubber.add_client_error("describe_product_as_admin", service_error_code="ResourceNotFoundException",
                             service_message="Product not found", expected_params={"Id": "prod-doesnotexist"})
    stubber.activate()
    aws.overrides["servicecatalog"] = sc
    code, _, err = run_release(capsys, *args(aws, "--product-id", "prod-doesnotexist"))
    assert code == 2
    assert "product 'prod-doesnotexist' not found in eu-west-1" in one_error_line(err)
    assert keys(aws.s3) == set()


def test_product_name_that_does_not_exist(aws, capsys) -> None:
    sc = boto3.client("servicecatalog", region_name=REGION)
    stubber = Stubber(sc)
    stubber.add_response("search_products_as_admin", {"ProductViewDetails": []},
                         {"Filters": {"FullTextSearch": ["Nope"]}})
    stubber.activate()
    aws.overrides["servicecatalog"] = sc
    code, _, err = run_release(capsys, *args(aws, "--product-name", "Nope"))
    assert code == 2 and "no Service Catalog product named 'Nope'" in one_error_line(err)
    assert keys(aws.s3) == set()


def test_bad_s3_template_location(aws, capsys) -> None:
    code, _, err = run_release(capsys, *args(aws, "--s3-template-location", "https://bucket/prefix"))
    assert code == 2 and "s3://BUCKET/PREFIX" in one_error_line(err)


# ---------------------------------------------------------------------------------------------------------
# SageMaker Projects S3 template
# ---------------------------------------------------------------------------------------------------------


def test_s3_template_is_published_tagged_for_studio_with_domain_instructions(aws, capsys) -> None:
    create_bucket("studio-templates")
    code, out, err = run_release(capsys, *args(aws, "--s3-template-location", "s3://studio-templates/templates"))
    assert code == 0, err
    key = "templates/s3-fs-ingestion-1-2-0.yaml"
    assert keys(aws.s3, "studio-templates") == {key}
    assert tags(aws.s3, key, "studio-templates") == {"sagemaker:studio-visibility": "true",
                                                    "servicecatalog:provisioning": "true"}
    body = aws.s3.get_object(Bucket="studio-templates", Key=key)["Body"].read()
    assert body == (aws.out / "project-s3-fs-ingestion.yaml").read_bytes()
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


def test_release_doc_covers_every_option_and_action() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "release.md").read_text(encoding="utf-8")
    subparsers = next(a for a in cli_parser()._actions if a.dest == "command")
    options = {o for a in subparsers.choices["release"]._actions for o in a.option_strings if o.startswith("--")}
    assert options - {"--help"}, "the release command has options"
    missing = sorted(o for o in options - {"--help"} if o not in doc)
    assert not missing, f"docs/release.md does not mention {missing}"
    missing = sorted(a for a in release.REQUIRED_ACTIONS if a not in doc)
    assert not missing, f"docs/release.md does not list {missing}"
