"""Helpers for the release tests (no tests here): a minimal source tree, a moto S3, spies on put_object."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from generators.blocks import buckets, lambdas, seed_code_cicd
from generators.blocks.project import PROJECT_PARAMETERS, ProjectTemplate
from generators.cli import main
from generators.names import ProjectNames
from generators.parameters import ParameterTable
from generators.products import PortfolioEntry, Product, products
from generators.release.catalog import idempotency_token
from generators.settings import Settings

REGION = "eu-west-1"
BUCKET = "release-artifacts"
VERSION = "1.2.0"
PRODUCT = "s3-fs-ingestion"  # what a bare --product-id/--product-name means
PREFIX = f"releases/{PRODUCT}/{VERSION}"
PLATFORM_PREFIX = f"releases/platform/{VERSION}"
MANIFEST_KEY = f"{PLATFORM_PREFIX}/manifest.json"
PRODUCT_ID = "prod-abcdefghijklm"
# Today's product's keys: unchanged since its first release (its project template and the portfolio name them).
INGESTION_KEYS = {
    f"{PREFIX}/{name}"
    for name in (
        "lambda-start-ingestion-pipeline.zip",
        "lambda-data-bucket-events.zip",
        "seed-code-s3-fs-ingestion.zip",
        "project-s3-fs-ingestion.yaml",
    )
}
PLATFORM_KEYS = {f"{PLATFORM_PREFIX}/{name}" for name in ("sm-policies.yaml", "sm-project-sc-portfolio.yaml")}


def product_keys(slug: str, files: tuple[str, ...]) -> set[str]:
    return {f"releases/{slug}/{VERSION}/{name}" for name in files}


def published_keys() -> set[str]:
    """Every key a release of VERSION writes for the products registered now, the manifest included."""
    return {key for p in products() for key in product_keys(p.slug, p.files)} | PLATFORM_KEYS | {MANIFEST_KEY}


def make_repo_root(root: Path) -> Path:
    """Seed code and Lambda sources of every registered product: the release does not depend on their contents."""
    for product in products():
        seed = root / product.seed_code
        (seed / "pipelines").mkdir(parents=True, exist_ok=True)
        (seed / "pipelines" / "pipeline.py").write_text(f"PIPELINE = {product.slug!r}\n", encoding="utf-8")
        (seed / "buildspec.yml").write_text("version: 0.2\n", encoding="utf-8")
        for name in product.lambdas:
            function = root / "lambda_functions" / name
            function.mkdir(parents=True, exist_ok=True)
            (function / "app.py").write_text("def lambda_handler(event, context):\n    return None\n",
                                             encoding="utf-8")
    return root


def sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def create_bucket(name: str, region: str = REGION) -> Any:
    s3 = boto3.client("s3", region_name=region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return s3


def keys(s3: Any, bucket: str = BUCKET) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def tags(s3: Any, key: str, bucket: str = BUCKET) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


@dataclass
class PutSpy:
    """Records every put_object key; raises on the ``fail_on``-th call (1-based) when set."""

    real: Any
    fail_on: int | None = None
    error: Exception | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs["Key"])
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise self.error or ClientError(
                {"Error": {"Code": "InternalError", "Message": "We encountered an internal error."},
                 "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutObject")
        return self.real(**kwargs)


def spy_puts(s3: Any, fail_on: int | None = None, error: Exception | None = None) -> PutSpy:
    spy = PutSpy(s3.put_object, fail_on, error)
    s3.put_object = spy
    return spy


def run_release(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["release", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------------------------------------
# Service Catalog answers for botocore's Stubber (it checks each request against the API model)
# ---------------------------------------------------------------------------------------------------------

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def template_url(slug: str = PRODUCT, bucket: str = BUCKET, region: str = REGION) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/releases/{slug}/{VERSION}/project-{slug}.yaml"


def detail(artifact_id: str, name: str, guidance: str = "DEFAULT") -> dict:
    return {"Id": artifact_id, "Name": name, "Type": "CLOUD_FORMATION_TEMPLATE", "CreatedTime": CREATED,
            "Active": True, "Guidance": guidance}


def view(product_id: str, name: str) -> dict:
    return {"ProductViewSummary": {"Id": f"prodview-{product_id[-6:]}", "ProductId": product_id, "Name": name,
                                   "Type": "CLOUD_FORMATION_TEMPLATE"}}


def expect_search(stubber: Stubber, name: str, *views: dict) -> None:
    """SearchProductsAsAdmin with FullTextSearch: it also answers partial matches, the release keeps exact ones."""
    stubber.add_response("search_products_as_admin", {"ProductViewDetails": list(views)},
                         {"Filters": {"FullTextSearch": [name]}})


def expect_describe(stubber: Stubber, product_id: str, name: str) -> None:
    stubber.add_response("describe_product_as_admin", {"ProductViewDetail": view(product_id, name)},
                         {"Id": product_id})


def expect_list(stubber: Stubber, *details: dict, product_id: str = PRODUCT_ID) -> None:
    stubber.add_response("list_provisioning_artifacts", {"ProvisioningArtifactDetails": list(details)},
                         {"ProductId": product_id})


def expect_create(stubber: Stubber, artifact_id: str, *, status: str = "AVAILABLE", version: str = VERSION,
                  product_id: str = PRODUCT_ID, slug: str = PRODUCT) -> None:
    stubber.add_response(
        "create_provisioning_artifact",
        {"ProvisioningArtifactDetail": detail(artifact_id, version), "Status": status,
         "Info": {"TemplateUrl": "https://s3.amazonaws.com/sc-copy/template.yaml"}},
        {
            "ProductId": product_id,
            "Parameters": {
                "Name": version,
                "Description": f"{slug} {version}",
                "Info": {"LoadTemplateFromURL": template_url(slug)},
                "Type": "CLOUD_FORMATION_TEMPLATE",
                "DisableTemplateValidation": False,
            },
            "IdempotencyToken": idempotency_token(version, product_id),
        },
    )


def expect_status(stubber: Stubber, status: str, artifact_id: str, name: str = VERSION,
                  product_id: str = PRODUCT_ID) -> None:
    stubber.add_response("describe_provisioning_artifact",
                         {"ProvisioningArtifactDetail": detail(artifact_id, name), "Status": status},
                         {"ProductId": product_id, "ProvisioningArtifactId": artifact_id})


def catalog_id(slug: str) -> str:
    """A Service Catalog product id for a product of the registry (prod- and 13 characters, as AWS issues them)."""
    return "prod-" + hashlib.sha256(slug.encode()).hexdigest()[:13]


# ---------------------------------------------------------------------------------------------------------
# A throwaway second product (register it with generators.products.registered)
# ---------------------------------------------------------------------------------------------------------

RELAY_PARAMETERS = ParameterTable.of(seed_code_cicd.SOURCE_PARAMETERS, PROJECT_PARAMETERS)


def build_relay(settings: Settings, product: Product) -> ProjectTemplate:
    """A tiny product: its seed code in a repository with its CI/CD, and a Lambda of its own."""
    pt = ProjectTemplate.start(settings, product, RELAY_PARAMETERS, "relay (test only)")
    bucket = buckets.artifact_bucket(pt, {})
    seed_code_cicd.seed_code_cicd(pt, bucket, build_description="Deploys the relay.", build_variables={})
    names = (pt.names.lambda_function, pt.names.log_group)
    role = lambdas.function_role(pt, "RelayRole", (pt.names.lambda_role, pt.names.log_group), "relay")
    lambdas.python_function(pt, "Relay", names, "relay_echo", role, description="Echoes.", timeout=30)
    return pt


RELAY = Product(
    slug="relay-echo",
    display_name="Relay echo (test only)",
    description="A throwaway product: the release publishes and registers every product.",
    names=ProjectNames(short="rly", suffix="relay-echo"),
    build_template=build_relay,
    lambdas=("relay_echo",),
    sample_parameters={"SageMakerProjectName": "Relay", "SageMakerProjectId": "p-abcdefghijkl"},
    portfolio=PortfolioEntry.named("RelayEcho"),
)
