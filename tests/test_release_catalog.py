"""Registering a version in Service Catalog, with botocore's Stubber (it checks every request against the
API model; moto has no provisioning artifacts)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from test_release_support import (
    BUCKET,
    MANIFEST_KEY,
    PREFIX,
    PRODUCT_ID,
    REGION,
    RELAY,
    VERSION,
    create_bucket,
    detail,
    expect_describe,
    expect_list,
    expect_search,
    expect_status,
    keys,
    make_repo_root,
    one_error_line,
    run_release,
    template_url,
    view,
)
from test_release_support import expect_create as expect_create_for

from generators.products import registered
from generators.release import command as release
from generators.release.aws import AwsClients, PreconditionError, ReleaseError
from generators.release.catalog import (
    CatalogProduct,
    CatalogRef,
    OptionError,
    WaitPolicy,
    catalog_refs,
    find_product,
    find_products,
    idempotency_token,
    register_version,
    semver_key,
)
from generators.settings import Settings

TEMPLATE_URL = template_url()
PRODUCT = CatalogProduct(PRODUCT_ID, "S3 to Feature Store ingestion")
DESCRIPTION = f"s3-fs-ingestion {VERSION}"
NEW_ID = "pa-newversion0001"
SLUGS = {"relay-echo": "Relay echo", "s3-fs-ingestion": "S3 to Feature Store ingestion"}


def expect_create(stubber: Stubber, status: str = "AVAILABLE", version: str = VERSION) -> None:
    expect_create_for(stubber, NEW_ID, status=status, version=version)


def register(sc, **kwargs):
    return register_version(sc.client, PRODUCT, VERSION, TEMPLATE_URL, description=DESCRIPTION, **kwargs)


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
    expect_status(sc.stubber, "CREATING", NEW_ID)
    expect_status(sc.stubber, "AVAILABLE", NEW_ID)
    fake = FakeTime()
    result = register(sc, sleep=fake.sleep, clock=fake.clock)
    assert (result.artifact_id, result.status, result.created) == (NEW_ID, "AVAILABLE", True)
    assert result.deprecated == []
    assert fake.sleeps == [2.0, 4.0], "exponential backoff"


def test_existing_version_of_that_name_is_not_created_again(sc) -> None:
    expect_list(sc.stubber, detail("pa-old", "1.1.0"), detail("pa-same", VERSION))
    expect_status(sc.stubber, "AVAILABLE", "pa-same")
    result = register(sc)
    assert (result.artifact_id, result.created) == ("pa-same", False)


def test_failed_version_names_the_status_and_the_template(sc) -> None:
    expect_list(sc.stubber)
    expect_create(sc.stubber, status="CREATING")
    expect_status(sc.stubber, "FAILED", NEW_ID)
    fake = FakeTime()
    with pytest.raises(ReleaseError, match=rf"{NEW_ID}.*is FAILED.*{re.escape(TEMPLATE_URL)}"):
        register(sc, sleep=fake.sleep, clock=fake.clock)


def test_rejected_template_shows_service_catalogs_reason(sc) -> None:
    expect_list(sc.stubber)
    sc.stubber.add_client_error("create_provisioning_artifact", service_error_code="InvalidParametersException",
                                service_message="Template format error: unsupported structure.")
    with pytest.raises(ReleaseError, match="InvalidParametersException: Template format error"):
        register(sc)


def test_waiting_gives_up_after_the_timeout(sc) -> None:
    expect_list(sc.stubber)
    expect_create(sc.stubber, status="CREATING")
    for _ in range(4):
        expect_status(sc.stubber, "CREATING", NEW_ID)
    fake = FakeTime()
    with pytest.raises(ReleaseError, match="still CREATING after 20s: re-run"):
        register(sc, wait=WaitPolicy(timeout=20, first_delay=2, max_delay=8), sleep=fake.sleep, clock=fake.clock)
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
    result = register(sc, deprecate_previous=True)
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
    assert MANIFEST_KEY in keys(command.s3)


def test_template_url_of_the_portfolio_matches_the_registered_url(tmp_path) -> None:
    """The portfolio stack and the release register the same object for every product, in the bucket's region."""
    from generators.build import build
    from generators.products import products

    result = build(Settings(VERSION, BUCKET), tmp_path / "b", make_repo_root(tmp_path / "repo"))
    portfolio = result.templates["sm-project-sc-portfolio"].read_text(encoding="utf-8")
    for product in products():
        key = f"releases/{product.slug}/{VERSION}/project-{product.slug}.yaml"
        assert f"https://{BUCKET}.s3.${{AWS::Region}}.${{AWS::URLSuffix}}/{key}" in portfolio
        assert template_url(product.slug) == f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{key}"
    assert f"{PREFIX}/project-s3-fs-ingestion.yaml" in portfolio


@pytest.fixture
def with_relay(command, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The command fixture with the throwaway RELAY product registered beside the real ones."""
    with registered(RELAY):
        monkeypatch.setattr(release, "REPO_ROOT", make_repo_root(tmp_path / "relay-repo"))
        yield command


def test_second_registration_failing_names_the_product_and_what_is_registered(with_relay, capsys) -> None:
    """Registration runs product by product (by slug) after the manifest is written: a failure names the
    product, its Service Catalog product and the cause, and says which products are already registered."""
    command = with_relay
    first, second = RELAY.slug, "s3-fs-ingestion"
    expect_describe(command.stubber, "prod-first0000001", "First")
    expect_describe(command.stubber, "prod-second000001", "Second")
    expect_list(command.stubber, product_id="prod-first0000001")
    expect_create_for(command.stubber, "pa-first", product_id="prod-first0000001", slug=first)
    expect_list(command.stubber, product_id="prod-second000001")
    command.stubber.add_client_error("create_provisioning_artifact", service_error_code="LimitExceededException",
                                     service_message="Too many versions")
    code, out, err = run_release(capsys, *command.args, "--product-id", f"{first}=prod-first0000001",
                                 "--product-id", f"{second}=prod-second000001")
    assert code == 1
    line = one_error_line(err)
    assert f"registering {second} on product prod-second000001 failed" in line and "LimitExceededException" in line
    assert f"({first} registered; re-run the same command to finish)" in line
    assert f"{first}: registered version {VERSION} on product prod-first0000001" in out


# ---------------------------------------------------------------------------------------------------------
# Which products are registered where: --register, --product-id, --product-name
# ---------------------------------------------------------------------------------------------------------


def test_register_finds_every_product_by_its_display_name() -> None:
    assert catalog_refs(SLUGS, register_all=True) == (
        CatalogRef("relay-echo", product_name="Relay echo"),
        CatalogRef("s3-fs-ingestion", product_name="S3 to Feature Store ingestion"),
    )
    assert catalog_refs(SLUGS, register_all=False) == (), "registration only when asked for"


def test_bare_values_keep_meaning_the_ingestion_product() -> None:
    assert catalog_refs(SLUGS, register_all=False, product_ids=[PRODUCT_ID]) == (
        CatalogRef("s3-fs-ingestion", product_id=PRODUCT_ID),)
    # A Service Catalog product name may contain '=': only a registered slug before it selects a product.
    assert catalog_refs(SLUGS, register_all=False, product_names=["Ingestion (A=B)"]) == (
        CatalogRef("s3-fs-ingestion", product_name="Ingestion (A=B)"),)
    assert catalog_refs(SLUGS, register_all=False, product_names=["Team=Ingestion"]) == (
        CatalogRef("s3-fs-ingestion", product_name="Team=Ingestion"),)


def test_slug_values_point_one_product_and_override_the_display_name() -> None:
    refs = catalog_refs(SLUGS, register_all=True, product_ids=["relay-echo=prod-relay0000001"],
                        product_names=["s3-fs-ingestion=Ingestion = v2"])
    assert refs == (CatalogRef("relay-echo", product_id="prod-relay0000001"),
                    CatalogRef("s3-fs-ingestion", product_name="Ingestion = v2"))
    assert catalog_refs(SLUGS, register_all=False, product_ids=["relay-echo=prod-relay0000001"]) == (
        CatalogRef("relay-echo", product_id="prod-relay0000001"),), "only the products named"


@pytest.mark.parametrize(
    ("ids", "names", "message"),
    [
        (["nope=prod-abcdefghijklm"], [], "no product 'nope' (registered: relay-echo, s3-fs-ingestion)"),
        (["relay-echo="], [], "give a value after '='"),
        ([PRODUCT_ID], ["S3 to Feature Store ingestion"],
         "s3-fs-ingestion is already pointed at the Service Catalog product Id="),
        (["relay-echo=prod-a", "relay-echo=prod-b"], [],
         "relay-echo is already pointed at the Service Catalog product Id=prod-a"),
    ],
)
def test_product_options_naming_no_product_or_one_twice_are_refused(ids, names, message) -> None:
    with pytest.raises(OptionError, match=re.escape(message)):
        catalog_refs(SLUGS, register_all=False, product_ids=ids, product_names=names)


def test_bare_value_when_the_ingestion_product_is_not_registered() -> None:
    with pytest.raises(OptionError, match="product s3-fs-ingestion is not registered"):
        catalog_refs({"relay-echo": "Relay echo"}, register_all=False, product_ids=[PRODUCT_ID])


def test_every_missing_product_is_named_in_one_line(sc) -> None:
    expect_search(sc.stubber, "Relay echo")
    sc.stubber.add_client_error("describe_product_as_admin", service_error_code="ResourceNotFoundException",
                                service_message="Product not found", expected_params={"Id": "prod-gone"})
    refs = (CatalogRef("relay-echo", product_name="Relay echo"), CatalogRef("s3-fs-ingestion", product_id="prod-gone"))
    with pytest.raises(PreconditionError) as raised:
        find_products(sc.client, refs, REGION)
    message = str(raised.value)
    assert "\n" not in message
    assert "no Service Catalog product named 'Relay echo' (for relay-echo) in eu-west-1" in message
    assert "product 'prod-gone' (for s3-fs-ingestion) not found in eu-west-1" in message
