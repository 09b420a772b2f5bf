"""The registry of products: one declaration per product, found by scanning this package.

A product is a module of this package with a module-level ``PRODUCT`` (a :class:`Product`): its slug,
names, template builder, seed code, Lambdas, portfolio entry and the sample parameters the offline checks
deploy it with. ``build``, the portfolio, ``sm-policies``, the release, the security gates and the tests
iterate over :func:`products`; adding a product is one new module here plus its ``seed-code/<slug>/`` folder
(and Lambdas, if it brings new ones). Tests register a throwaway product with :func:`registered`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from troposphere import Sub

from ..cfn_resolve import PSEUDO_DEFAULTS
from ..names import ProjectNames
from ..settings import PLATFORM, Settings, lambda_zip_name

if TYPE_CHECKING:
    from ..blocks.project import ProjectTemplate

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


# The sample values of the parameters the shared blocks add (upload trigger, seed-code CI/CD, alarms): each
# product's sample project starts from them. The connection is in the offline checks' account, Region and
# partition (cfn_resolve's pseudo parameters): a parameter value, not an ARN the templates build.
BLOCK_SAMPLE_PARAMETERS: Mapping[str, str] = {
    "DataBucketName": "my-data-bucket",
    "DataSuffix": ".csv",
    "CodeConnectionArn": ":".join((
        "arn", PSEUDO_DEFAULTS["AWS::Partition"], "codeconnections", PSEUDO_DEFAULTS["AWS::Region"],
        PSEUDO_DEFAULTS["AWS::AccountId"], "connection/0a1b2c3d")),
    "AlarmEmail": "ml-team@example.com",
}


@dataclass(frozen=True)
class PortfolioEntry:
    """How the product appears in the portfolio template. The logical ids must never change once
    published: a new id would replace the Service Catalog product, and with it every version and the
    link of the projects provisioned from it."""

    product_id: str  # logical id of the AWS::ServiceCatalog::CloudFormationProduct
    association_id: str  # logical id of its AWS::ServiceCatalog::PortfolioProductAssociation
    constraint_id: str  # logical id of its AWS::ServiceCatalog::LaunchRoleConstraint
    output_prefix: str  # prefix of its outputs (ProductId, ProvisioningArtifactIds, ProductTemplateUrl)

    @classmethod
    def named(cls, name: str) -> PortfolioEntry:
        """The ids of a product called ``name`` (CamelCase) in the portfolio template."""
        return cls(f"{name}Product", f"{name}ProductAssociation", f"{name}LaunchConstraint", name)

    @property
    def logical_ids(self) -> tuple[str, str, str]:
        return self.product_id, self.association_id, self.constraint_id


@dataclass(frozen=True)
class Product:
    slug: str  # s3-fs-ingestion: template, seed-code zip, release key prefix
    display_name: str  # the Service Catalog product name Studio shows
    description: str
    names: ProjectNames
    build_template: Callable[[Settings, Product], ProjectTemplate]
    lambdas: tuple[str, ...]  # folders under lambda_functions/
    sample_parameters: Mapping[str, str]  # a sample project's parameters for the offline checks
    portfolio: PortfolioEntry
    seed_code: str = ""  # folder with the repository's initial content; default seed-code/<slug>
    notes: tuple[str, ...] = field(default=())  # extra lines for the README's component section

    def __post_init__(self) -> None:
        if not SLUG.match(self.slug) or self.slug == PLATFORM:
            raise ValueError(f"product slug {self.slug!r}: lowercase words and digits joined by '-', not {PLATFORM!r}")
        if not self.seed_code:
            object.__setattr__(self, "seed_code", f"seed-code/{self.slug}")

    @property
    def template_name(self) -> str:
        return f"project-{self.slug}"

    @property
    def seed_code_zip(self) -> str:
        return f"seed-code-{self.slug}.zip"

    @property
    def lambda_zips(self) -> dict[str, str]:
        """Lambda folder -> zip file name."""
        return {name: lambda_zip_name(name) for name in self.lambdas}

    @property
    def files(self) -> tuple[str, ...]:
        """What a release publishes under the product's prefix."""
        return (f"{self.template_name}.yaml", self.seed_code_zip, *self.lambda_zips.values())

    def key(self, settings: Settings, filename: str) -> str:
        return settings.key(self.slug, filename)

    def template_url(self, settings: Settings) -> Sub:
        """HTTPS URL of the published project template (the bucket is in the stack's Region)."""
        key = self.key(settings, f"{self.template_name}.yaml")
        return Sub(f"https://{settings.artifacts_bucket}.s3.${{AWS::Region}}.${{AWS::URLSuffix}}/{key}")

    def build(self, settings: Settings) -> ProjectTemplate:
        """The product's template and grants for ``settings`` (built once per settings: sm-policies and the
        project template of one build share it; neither changes it afterwards)."""
        key = (id(self), settings)
        if key not in _BUILT:  # the product is kept with its build, so its id cannot be reused meanwhile
            _BUILT[key] = (self, self.build_template(settings, self))
        return _BUILT[key][1]


_REGISTERED: dict[str, Product] = {}
_BUILT: dict[tuple[int, Settings], tuple[Product, ProjectTemplate]] = {}
_DISCOVERED = False


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        product = getattr(importlib.import_module(f"{__name__}.{module.name}"), "PRODUCT", None)
        if isinstance(product, Product):
            _add(product)
    _DISCOVERED = True


def _add(product: Product) -> None:
    if product.slug in _REGISTERED:
        raise ValueError(f"product {product.slug} is registered twice")
    taken = {logical_id for p in _REGISTERED.values() for logical_id in p.portfolio.logical_ids}
    outputs = {p.portfolio.output_prefix for p in _REGISTERED.values()}
    if set(product.portfolio.logical_ids) & taken or product.portfolio.output_prefix in outputs:
        raise ValueError(f"product {product.slug}: its portfolio logical ids are taken")
    _REGISTERED[product.slug] = product


def products() -> tuple[Product, ...]:
    """Every registered product, by slug."""
    _discover()
    return tuple(_REGISTERED[slug] for slug in sorted(_REGISTERED))


def get(slug: str) -> Product:
    _discover()
    try:
        return _REGISTERED[slug]
    except KeyError:
        raise KeyError(f"no product {slug!r}; registered: {', '.join(sorted(_REGISTERED))}") from None


@contextmanager
def registered(product: Product) -> Iterator[Product]:
    """Register ``product`` for the duration of the block (tests: a throwaway product)."""
    _discover()
    _add(product)
    try:
        yield product
    finally:
        del _REGISTERED[product.slug]
