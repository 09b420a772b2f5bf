"""Registering a version in Service Catalog, with botocore's Stubber (it checks every request against the
API model; moto has no provisioning artifacts)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from test_release_support import (
    BUCKET,
    PREFIX,
    PRODUCT_ID,
    REGION,
    VERSION,
    create_bucket,
    keys,
    make_repo_root,
    one_error_line,
    run_release,
)

from generators import release
from generators.release_aws import AwsClients, PreconditionError, ReleaseError
from generators.release_catalog import (
    Product,
    WaitPolicy,
    find_product,
    idempotency_token,
    register_version,
    semver_key,
)
from generators.settings import Settings

TEMPLATE_URL = f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{PREFIX}/project-s3-fs-ingestion.yaml"
PRODUCT = Product(PRODUCT_ID, "S3 to Feature Store ingestion")
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
NEW_ID = "pa-newversion0001"


def detail(artifact_id: str, name: str, guidance: str = "DEFAULT") -> dict:
    return {"Id": artifact_id, "Name": name, "Type": "CLOUD_FORMATION_TEMPLATE", "CreatedTime": CREATED,
            "Active": True, "Guidance": guidance}


def view(product_id: str, name: str) -> dict:
    return {"ProductViewSummary": {"Id": f"prodview-{product_id[-6:]}", "ProductId": product_id, "Name": name,
                                   "Type": "CLOUD_FORMATION_TEMPLATE"}}


def expect_create(stubber: Stubber, status: str = "AVAILABLE", version: str = VERSION) -> None:
    stubber.add_response(
        "create_provisioning_artifact",
        {"ProvisioningArtifactDetail": detail(NEW_ID, version), "Status": status,
         "Info": {"TemplateUrl": "https://s3.amazonaws.com/sc-copy/template.yaml"}},
        {
            "ProductId": PRODUCT_ID,
            "Parameters": {
                "Name": version,
                "Description": f"s3-fs-ingestion {version}",
                "Info": {"LoadTemplateFromURL": TEMPLATE_URL},
                "Type": "CLOUD_FORMATION_TEMPLATE",
                "DisableTemplateValidation": False,
            },
            "IdempotencyToken": idempotency_token(version, PRODUCT_ID),
        },
    )


def expect_list(stubber: Stubber, *details: dict) -> None:
    stubber.add_response("list_provisioning_artifacts", {"ProvisioningArtifactDetails": list(details)},
                         {"ProductId": PRODUCT_ID})


def expect_status(stubber: Stubber, status: str, artifact_id: str = NEW_ID, name: str = VERSION) -> None:
    stubber.add_response("describe_provisioning_artifact",
                         {"ProvisioningArtifactDetail": detail(artifact_id, name), "Status": status},
                         {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": artifact_id})


@pytest.fixture
def sc():
    client = boto3.client("servicecatalog", region_name=REGION)
    with Stubber(client) as stubber:
        yield SimpleNamespace(client=client, stubber=stubber)
        stubber.assert_no_pending_responses()


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_creates_the_version_and_waits_until_available(sc) -> None:
    expect_list(sc.stubber, detail("pa-old", "1.1.0"))
    expect_create(sc.stubber, status="CREATING")
    expect_status(sc.stubber, "CREATING")
    expect_status(sc.stubber, "AVAILABLE")
    fake = FakeTime()
    result = register_version(sc.client, PRODUCT, VERSION, TEMPLATE_URL, sleep=fake.sleep, clock=fake.clock)
    assert (result.artifact_id, result.status, result.created) == (NEW_ID, "AVAILABLE", True)
    assert result.deprecated == []
    assert fake.sleeps == [2.0, 4.0], "exponential backoff"


def test_existing_version_of_that_name_is_not_created_again(sc) -> None:
    expect_list(sc.stubber, detail("pa-old", "1.1.0"), detail("pa-same", VERSION))
    expect_status(sc.stubber, "AVAILABLE", "pa-same")
    result = register_version(sc.client, PRODUCT, VERSION, TEMPLATE_URL)
    assert (result.artifact_id, result.created) == ("pa-same", False)


def test_failed_version_names_the_status_and_the_template(sc) -> None:
    expect_list(sc.stubber)
    expect_create(sc.stubber, status="CREATING")
    expect_status(sc.stubber, "FAILED")
    fake = FakeTime()
    with pytest.raises(ReleaseError, match=rf"{NEW_ID}.*is FAILED.*{re.escape(TEMPLATE_URL)}"):
        register_version(sc.client, PRODUCT, VERSION, TEMPLATE_URL, sleep=fake.sleep, clock=fake.clock)


def test_rejected_template_shows_service_catalogs_reason(sc) -> None:
    expect_list(sc.stubber)
    sc.stubber.add_client_error("create_provisioning_artifact", service_error_code="InvalidParametersException",
                                service_message="Template format error: unsupported structure.")
    with pytest.raises(ReleaseError, match="InvalidParametersException: Template format error"):
        register_version(sc.client, PRODUCT, VERSION, TEMPLATE_URL)


def test_waiting_gives_up_after_the_timeout(sc) -> None:
    expect_list(sc.stubber)
    expect_create(sc.stubber, status="CREATING")
    for _ in range(4):
        expect_status(sc.stubber, "CREATING")
    fake = FakeTime()
    with pytest.raises(ReleaseError, match="still CREATING after 20s: re-run"):
        register_version(sc.client, PRODUCT, VERSION, TEMPLATE_URL, wait=WaitPolicy(timeout=20, first_delay=2,
                         max_delay=8), sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [2, 4, 8, 6], "backoff capped, never sleeping past the deadline"


def test_deprecate_previous_marks_only_older_semantic_versions(sc) -> None:
    expect_list(
        sc.stubber,
        detail("pa-100", "1.0.0"),
        detail("pa-110", "1.1.0", guidance="DEPRECATED"),
        detail("pa-rc", "1.2.0-rc.1"),
        detail("pa-200", "2.0.0"),
        detail("pa-v1", "v1"),
    )
    expect_create(sc.stubber)
    for artifact_id in ("pa-100", "pa-rc"):
        sc.stubber.add_response(
            "update_provisioning_artifact",
            {"ProvisioningArtifactDetail": detail(artifact_id, "x", "DEPRECATED"), "Status": "AVAILABLE"},
            {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": artifact_id, "Guidance": "DEPRECATED"},
        )
    result = register_version(sc.client, PRODUCT, VERSION, TEMPLATE_URL, deprecate_previous=True)
    assert result.deprecated == [("pa-100", "1.0.0"), ("pa-rc", "1.2.0-rc.1")]
    assert dict(result.left_alone) == {"1.1.0": "already deprecated", "2.0.0": "not older",
                                       "v1": "not a semantic version"}


def test_product_is_found_by_its_exact_name(sc) -> None:
    sc.stubber.add_response(
        "search_products_as_admin",
        {"ProductViewDetails": [view("prod-otherotherot", "S3 to Feature Store ingestion (legacy)"),
                                view(PRODUCT_ID, "S3 to Feature Store ingestion")]},
        {"Filters": {"FullTextSearch": ["S3 to Feature Store ingestion"]}},
    )
    assert find_product(sc.client, product_name="S3 to Feature Store ingestion") == PRODUCT


def test_two_products_of_the_same_name_need_an_id(sc) -> None:
    sc.stubber.add_response(
        "search_products_as_admin",
        {"ProductViewDetails": [view("prod-aaaaaaaaaaaaa", "Ingest"), view("prod-bbbbbbbbbbbbb", "Ingest")]},
        {"Filters": {"FullTextSearch": ["Ingest"]}},
    )
    with pytest.raises(PreconditionError, match="2 products are named 'Ingest'.*use --product-id"):
        find_product(sc.client, product_name="Ingest")


def test_product_of_another_type_is_refused(sc) -> None:
    summary = view(PRODUCT_ID, "Terraform thing")["ProductViewSummary"] | {"Type": "TERRAFORM_OPEN_SOURCE"}
    sc.stubber.add_response("describe_product_as_admin", {"ProductViewDetail": {"ProductViewSummary": summary}},
                            {"Id": PRODUCT_ID})
    with pytest.raises(PreconditionError, match="TERRAFORM_OPEN_SOURCE"):
        find_product(sc.client, product_id=PRODUCT_ID)


@pytest.mark.parametrize("version", ["1.2.0", "1.2.0-rc.1", "10.20.30+build.2024-01-01", "1.0.0-" + "a" * 200])
def test_idempotency_token_fits_the_api(version: str) -> None:
    token = idempotency_token(version, PRODUCT_ID)
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_-]*", token) and len(token) <= 128


def test_idempotency_token_is_the_version_with_dots_replaced() -> None:
    assert idempotency_token("1.2.0", PRODUCT_ID) == f"release-1-2-0-{PRODUCT_ID}"
    assert idempotency_token("1.2.0-rc.1", PRODUCT_ID) != idempotency_token("1.2.0-rc-1", PRODUCT_ID)
    assert idempotency_token("1.2.0", "prod-a") != idempotency_token("1.2.0", "prod-b")


def test_semver_precedence() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    assert sorted(ordered, key=semver_key) == ordered
    assert semver_key("1.0.0+build.1") == semver_key("1.0.0")
    assert semver_key("v1") is None


# ---------------------------------------------------------------------------------------------------------
# Through the command: S3 in moto, Service Catalog stubbed
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sc):
    with mock_aws():
        s3 = create_bucket(BUCKET)
        monkeypatch.setattr(release, "aws_clients", lambda: AwsClients(overrides={"servicecatalog": sc.client}))
        monkeypatch.setattr(release, "REPO_ROOT", make_repo_root(tmp_path / "repo"))
        yield SimpleNamespace(s3=s3, stubber=sc.stubber,
                              args=["--version", VERSION, "--bucket", BUCKET, "--out", str(tmp_path / "build")])


def test_release_registers_the_published_template_and_deprecates_older(command, capsys) -> None:
    command.stubber.add_response(
        "describe_product_as_admin",
        {"ProductViewDetail": view(PRODUCT_ID, "S3 to Feature Store ingestion")}, {"Id": PRODUCT_ID})
    expect_list(command.stubber, detail("pa-100", "1.0.0"))
    expect_create(command.stubber)
    command.stubber.add_response(
        "update_provisioning_artifact",
        {"ProvisioningArtifactDetail": detail("pa-100", "1.0.0", "DEPRECATED"), "Status": "AVAILABLE"},
        {"ProductId": PRODUCT_ID, "ProvisioningArtifactId": "pa-100", "Guidance": "DEPRECATED"},
    )
    code, out, err = run_release(capsys, *command.args, "--product-id", PRODUCT_ID, "--deprecate-previous")
    assert code == 0, err
    assert f"{PREFIX}/project-s3-fs-ingestion.yaml" in keys(command.s3)
    assert f"registered version {VERSION} on product {PRODUCT_ID}" in out and NEW_ID in out
    assert "deprecated version 1.0.0 (pa-100)" in out


def test_release_by_product_name_on_an_already_registered_version(command, capsys) -> None:
    command.stubber.add_response(
        "search_products_as_admin", {"ProductViewDetails": [view(PRODUCT_ID, "Ingestion")]},
        {"Filters": {"FullTextSearch": ["Ingestion"]}})
    expect_list(command.stubber, detail("pa-same", VERSION))
    expect_status(command.stubber, "AVAILABLE", "pa-same")
    code, out, err = run_release(capsys, *command.args, "--product-name", "Ingestion")
    assert code == 0, err
    assert f"version {VERSION} is already registered on product {PRODUCT_ID}" in out
    assert "not creating another" in out


def test_registration_failure_after_publishing_says_what_is_done(command, capsys) -> None:
    command.stubber.add_response(
        "describe_product_as_admin", {"ProductViewDetail": view(PRODUCT_ID, "Ingestion")}, {"Id": PRODUCT_ID})
    expect_list(command.stubber)
    command.stubber.add_client_error("create_provisioning_artifact", service_error_code="LimitExceededException",
                                     service_message="Too many versions")
    code, out, err = run_release(capsys, *command.args, "--product-id", PRODUCT_ID)
    assert code == 1
    line = one_error_line(err)
    assert "is published (manifest written)" in line and "LimitExceededException" in line
    assert f"{PREFIX}/manifest.json" in keys(command.s3)


def test_template_url_of_the_portfolio_matches_the_registered_url(tmp_path) -> None:
    """The portfolio stack and the release register the same object, in the bucket's region."""
    from generators.build import build

    result = build(Settings(VERSION, BUCKET), tmp_path / "b", make_repo_root(tmp_path / "repo"))
    portfolio = result.templates["sm-project-sc-portfolio"].read_text(encoding="utf-8")
    assert f"https://{BUCKET}.s3.${{AWS::Region}}.${{AWS::URLSuffix}}/{PREFIX}/project-s3-fs-ingestion.yaml" \
        in portfolio
