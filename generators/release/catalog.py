"""Register a published version on the Service Catalog product of each product; never delete one.

Which Service Catalog product a product (by slug) is registered on is a :class:`CatalogRef`: its display name
(``--register``), or an explicit id or exact name (``--product-id``/``--product-name``, ``SLUG=VALUE`` or a bare
value for :data:`~.options.DEFAULT_PRODUCT`). A version is a *provisioning artifact* named after the semantic
version. Registering is idempotent: a version of that name is never created twice, and
``CreateProvisioningArtifact`` carries an idempotency token derived from the version, so a retried request
cannot create a duplicate either.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..products import SLUG
from ..settings import semver_key
from .aws import PreconditionError, ReleaseError, describe, error_code
from .options import DEFAULT_PRODUCT

log = logging.getLogger(__name__)

TOKEN_MAX = 128  # CreateProvisioningArtifact IdempotencyToken: [a-zA-Z0-9][a-zA-Z0-9_-]*, 1-128 chars
CLOUDFORMATION = "CLOUD_FORMATION_TEMPLATE"


@dataclass(frozen=True)
class CatalogProduct:
    """A Service Catalog product, as found."""

    id: str
    name: str


@dataclass(frozen=True)
class CatalogRef:
    """How to find the Service Catalog product of one product (``slug``): by id, or by exact name."""

    slug: str
    product_id: str | None = None
    product_name: str | None = None

    def __post_init__(self) -> None:
        if bool(self.product_id) == bool(self.product_name):
            raise ValueError(f"{self.slug}: give a product id or a product name")

    @property
    def lookup(self) -> str:
        return f"Id={self.product_id}" if self.product_id else f"named {self.product_name!r}"


class OptionError(ValueError):
    """A --register/--product-id/--product-name combination that names no product, or one twice."""


def split_product_option(option: str, value: str, slugs: Iterable[str]) -> tuple[str, str]:
    """``SLUG=VALUE`` -> (slug, value); a bare value is for :data:`DEFAULT_PRODUCT` (what it meant when there
    was one product). A value whose part before ``=`` is not slug-shaped (``My=Name``) is a bare value."""
    if not value.strip():
        raise OptionError(f"{option} is empty: give a Service Catalog product "
                          f"{'id (prod-...)' if option == '--product-id' else 'name'}, or SLUG=VALUE")
    slug, sep, rest = value.partition("=")
    if not sep or not SLUG.match(slug):
        return DEFAULT_PRODUCT, value
    known = sorted(slugs)
    if slug not in known:
        raise OptionError(
            f"{option} {value}: no product {slug!r} (registered: {', '.join(known)}); for a {DEFAULT_PRODUCT} "
            f"value that contains '=', write {option} {DEFAULT_PRODUCT}={value}"
        )
    if not rest.strip():
        raise OptionError(f"{option} {value}: give a value after '='")
    return slug, rest


def catalog_refs(slugs_to_names: dict[str, str], *, register_all: bool, product_ids: Sequence[str] = (),
                 product_names: Sequence[str] = ()) -> tuple[CatalogRef, ...]:
    """What to register, by slug: every product by display name with ``register_all``, plus (or, without it,
    only) the products ``--product-id``/``--product-name`` point at. ``slugs_to_names`` maps every registered
    product's slug to its display name."""
    explicit: dict[str, CatalogRef] = {}
    for option, values in (("--product-id", product_ids), ("--product-name", product_names)):
        for value in values:
            slug, target = split_product_option(option, value, slugs_to_names)
            if slug not in slugs_to_names:
                raise OptionError(f"{option} {value}: product {slug} is not registered")
            if slug in explicit:
                raise OptionError(f"{option} {value}: product {slug} is already pointed at the Service Catalog "
                                  f"product {explicit[slug].lookup}; give one --product-id or --product-name per "
                                  "product")
            explicit[slug] = CatalogRef(slug, product_id=target) if option == "--product-id" \
                else CatalogRef(slug, product_name=target)
    refs = dict(explicit)
    if register_all:
        for slug, name in slugs_to_names.items():
            refs.setdefault(slug, CatalogRef(slug, product_name=name))
    return tuple(refs[slug] for slug in sorted(refs))


@dataclass(frozen=True)
class WaitPolicy:
    """How long to wait for a new version to become AVAILABLE: exponential backoff, capped."""

    timeout: float = 600.0
    first_delay: float = 2.0
    max_delay: float = 30.0


@dataclass
class Registration:
    product: CatalogProduct
    version: str
    artifact_id: str
    status: str
    created: bool
    deprecated: list[tuple[str, str]] = field(default_factory=list)  # (artifact id, name)
    left_alone: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


def _fail(action: str, error: Exception, precondition: bool = False) -> ReleaseError:
    kind = PreconditionError if precondition else ReleaseError
    return kind(f"{action} failed: {describe(error)}")


def find_product(sc: Any, *, product_id: str | None = None, product_name: str | None = None,
                 region: str | None = None, slug: str = DEFAULT_PRODUCT) -> CatalogProduct:
    """The Service Catalog product of ``slug`` by id (DescribeProductAsAdmin) or by exact name
    (SearchProductsAsAdmin)."""
    where = f" in {region}" if region else ""
    if product_id:
        try:
            view = sc.describe_product_as_admin(Id=product_id)["ProductViewDetail"]["ProductViewSummary"]
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                raise PreconditionError(
                    f"Service Catalog product {product_id!r} (for {slug}) not found{where}: check --product-id "
                    "and AWS_REGION"
                ) from None
            raise _fail(f"describing Service Catalog product {product_id!r}", error, precondition=True) from None
        except BotoCoreError as error:
            raise _fail(f"describing Service Catalog product {product_id!r}", error, precondition=True) from None
        return _checked(view)
    if not product_name:
        raise ValueError("find_product needs product_id or product_name")
    try:
        pages = sc.get_paginator("search_products_as_admin").paginate(Filters={"FullTextSearch": [product_name]})
        views = [d["ProductViewSummary"] for page in pages for d in page.get("ProductViewDetails", [])]
    except (ClientError, BotoCoreError) as error:
        raise _fail(f"searching Service Catalog for product {product_name!r}", error, precondition=True) from None
    exact = [v for v in views if v.get("Name") == product_name]  # FullTextSearch also matches partial names
    if not exact:
        raise PreconditionError(
            f"no Service Catalog product named {product_name!r} (for {slug}){where}: check the exact name and "
            f"AWS_REGION, deploy sm-project-sc-portfolio first, or pass --product-id {slug}=prod-..."
        )
    if len(exact) > 1:
        ids = ", ".join(sorted(v["ProductId"] for v in exact))
        raise PreconditionError(f"{len(exact)} products are named {product_name!r} ({ids}): "
                                f"use --product-id {slug}=ID")
    return _checked(exact[0])


def find_products(sc: Any, refs: Sequence[CatalogRef], region: str | None = None) -> dict[str, CatalogProduct]:
    """Every product's Service Catalog product, by slug; every failure in one PreconditionError."""
    found: dict[str, CatalogProduct] = {}
    problems: list[str] = []
    for ref in refs:
        try:
            found[ref.slug] = find_product(sc, product_id=ref.product_id, product_name=ref.product_name,
                                           region=region, slug=ref.slug)
        except PreconditionError as error:
            problems.append(str(error))
    by_id: dict[str, list[str]] = {}
    for slug, product in found.items():
        by_id.setdefault(product.id, []).append(slug)
    problems += [f"products {' and '.join(slugs)} would be registered on the same Service Catalog product {pid}: "
                 "point each at its own with --product-id SLUG=ID" for pid, slugs in by_id.items() if len(slugs) > 1]
    if problems:
        raise PreconditionError("; ".join(problems))
    return found


def _checked(view: dict[str, Any]) -> CatalogProduct:
    product = CatalogProduct(id=view["ProductId"], name=view.get("Name", ""))
    if view.get("Type", CLOUDFORMATION) != CLOUDFORMATION:
        raise PreconditionError(
            f"Service Catalog product {product.id} is of type {view['Type']}, not {CLOUDFORMATION}"
        )
    return product


def idempotency_token(version: str, product_id: str) -> str:
    """``release-1-2-0-prod-abc``: the version with dots replaced, scoped to the product (the same version
    may be registered on a test and a production product of one account). Versions whose characters map
    ambiguously (``1.2.0-rc.1`` and ``1.2.0-rc-1``) also get a short hash of the exact version."""
    slug = re.sub(r"[^A-Za-z0-9-]", "-", version)
    if "-" in version or "+" in version:
        slug += "-" + hashlib.sha256(version.encode()).hexdigest()[:8]
    token = f"release-{slug}-{product_id}"
    if len(token) > TOKEN_MAX:
        digest = hashlib.sha256(f"{version}|{product_id}".encode()).hexdigest()[:16]
        token = f"{token[:TOKEN_MAX - len(digest) - 1]}-{digest}"
    return token


def register_version(
    sc: Any,
    product: CatalogProduct,
    version: str,
    template_url: str,
    *,
    description: str,
    deprecate_previous: bool = False,
    wait: WaitPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Registration:
    """Create the version unless one of that name exists, wait until AVAILABLE, optionally deprecate older ones."""
    existing = _list_versions(sc, product)
    same_name = [d for d in existing if d.get("Name") == version]
    if same_name:
        detail = same_name[0]
        artifact_id, status, created = detail["Id"], _status(sc, product, detail["Id"]), False
        log.info("version %s already registered on %s as %s", version, product.id, artifact_id)
    else:
        artifact_id, status = _create(sc, product, version, template_url, description)
        created = True
    status = _wait_available(sc, product, version, artifact_id, status, template_url, wait or WaitPolicy(),
                             sleep, clock)
    registration = Registration(product, version, artifact_id, status, created)
    if deprecate_previous:
        _deprecate_older(sc, product, version, existing, registration)
    return registration


def _list_versions(sc: Any, product: CatalogProduct) -> list[dict[str, Any]]:
    try:
        return list(sc.list_provisioning_artifacts(ProductId=product.id).get("ProvisioningArtifactDetails", []))
    except (ClientError, BotoCoreError) as error:
        raise _fail(f"listing the versions of product {product.id}", error) from None


def _create(sc: Any, product: CatalogProduct, version: str, template_url: str,
            description: str) -> tuple[str, str]:
    try:
        response = sc.create_provisioning_artifact(
            ProductId=product.id,
            Parameters={
                "Name": version,
                "Description": description,
                "Info": {"LoadTemplateFromURL": template_url},
                "Type": CLOUDFORMATION,
                "DisableTemplateValidation": False,
            },
            IdempotencyToken=idempotency_token(version, product.id),
        )
    except ClientError as error:
        # InvalidParametersException carries the template validation error: that is the cause to show.
        raise ReleaseError(
            f"Service Catalog refused version {version} of product {product.id} "
            f"(template {template_url}): {describe(error)}"
        ) from None
    except BotoCoreError as error:
        raise _fail(f"registering version {version} on product {product.id}", error) from None
    artifact_id = response["ProvisioningArtifactDetail"]["Id"]
    log.info("created version %s on %s as %s", version, product.id, artifact_id)
    return artifact_id, response.get("Status", "CREATING")


def _status(sc: Any, product: CatalogProduct, artifact_id: str) -> str:
    try:
        response = sc.describe_provisioning_artifact(ProductId=product.id, ProvisioningArtifactId=artifact_id)
    except (ClientError, BotoCoreError) as error:
        raise _fail(f"reading the status of version {artifact_id} of product {product.id}", error) from None
    return str(response.get("Status", "CREATING"))


def _wait_available(sc: Any, product: CatalogProduct, version: str, artifact_id: str, status: str, template_url: str,
                    wait: WaitPolicy, sleep: Callable[[float], None], clock: Callable[[], float]) -> str:
    deadline, delay = clock() + wait.timeout, wait.first_delay
    while status == "CREATING":
        if clock() >= deadline:
            raise ReleaseError(
                f"version {version} ({artifact_id}) of product {product.id} is still CREATING after "
                f"{wait.timeout:.0f}s: re-run the same command to keep waiting"
            )
        sleep(min(delay, max(deadline - clock(), 0.0)))
        delay = min(delay * 2, wait.max_delay)
        status = _status(sc, product, artifact_id)
    if status != "AVAILABLE":
        raise ReleaseError(
            f"version {version} ({artifact_id}) of product {product.id} is {status}: Service Catalog could not "
            f"load {template_url} (check that the object exists, is tagged and readable, and that the template "
            "passes `cfn-lint`); the artifact is kept: fix it in the console or release a new version"
        )
    return status


def _deprecate_older(sc: Any, product: CatalogProduct, version: str, existing: list[dict[str, Any]],
                     registration: Registration) -> None:
    """Guidance DEPRECATED on every version that sorts before ``version``; newer or unparsable ones are kept."""
    current = semver_key(version)
    for detail in existing:
        name, artifact_id = detail.get("Name", ""), detail["Id"]
        if artifact_id == registration.artifact_id or name == version:
            continue
        key = semver_key(name)
        if key is None:
            registration.left_alone.append((name, "not a semantic version"))
        elif current is None or key >= current:
            registration.left_alone.append((name, "not older"))
        elif detail.get("Guidance") == "DEPRECATED":
            registration.left_alone.append((name, "already deprecated"))
        else:
            try:
                sc.update_provisioning_artifact(
                    ProductId=product.id, ProvisioningArtifactId=artifact_id, Guidance="DEPRECATED"
                )
            except (ClientError, BotoCoreError) as error:
                raise _fail(f"deprecating version {name} ({artifact_id}) of product {product.id}", error) from None
            log.info("deprecated version %s (%s) of %s", name, artifact_id, product.id)
            registration.deprecated.append((artifact_id, name))
