"""The Region's projects of our products, their versions, and upgrades (SageMaker UpdateProject).

Which projects are ours: a project created through Service Catalog names its product
(``DescribeProject`` -> ``ServiceCatalogProvisioningDetails.ProductId``). A product is one of ours when one of its
versions is described ``"<slug> <version>"`` (what the portfolio template and the release write) for a registered
product, or when its name is a registered product's display name. A version is a provisioning artifact named after
the semantic version.

What an update does with parameters: SageMaker's ``ProvisioningParameter`` is a ``Key`` and a ``Value`` only (API
Reference, ``UpdateProject`` / ``ServiceCatalogProvisioningUpdateDetails``); keeping a previous value takes an explicit
``UsePreviousValue`` in Service Catalog (``UpdateProvisioningParameter``: "If set to true, Value is ignored and the
previous parameter value is kept"), which SageMaker cannot send; and for a parameter the request does not specify,
"CloudFormation uses the default value that's specified in your template" (CloudFormation API Reference,
``Parameter``). So an update that leaves a parameter out resets it to the template default. The upgrade therefore
sends every parameter of the target version with the project's current value, read from the project's stack
(``DescribeStacks``: the values in effect, defaults included); parameters new in the target version are left out and
take their default (or ``--parameter`` gives them a value); parameters the target version no longer has are dropped.
``SageMakerProjectName`` and ``SageMakerProjectId`` are SageMaker's to set and never sent.

The plan also repeats what ``CHANGELOG.md`` says of the versions on the way: a changed launch role (``sm-policies``
of the target version must be deployed first: the update runs as the launch role) and the stateful resources the
stack update replaces or removes.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ..cli import CliError
from ..products import products
from ..release.aws import describe
from ..settings import semver_key
from ._common import Clients, Printer, aws_error, check_project_name

if TYPE_CHECKING:
    from ..upgrade import Section

SAGEMAKER_PARAMETERS = frozenset({"SageMakerProjectName", "SageMakerProjectId"})
# UpdateProject API Reference: "You must not update a project that is in use ... active or being created, or
# updated"; an update may follow a completed creation or update, or retry a failed update.
UPGRADABLE = frozenset({"CreateCompleted", "UpdateCompleted", "UpdateFailed"})
IN_PROGRESS = frozenset({"Pending", "UpdateInProgress"})
POLL_SECONDS = 15.0


class Refused(Exception):
    """This project cannot be upgraded as asked; the message says why."""


@dataclass(frozen=True)
class Version:
    id: str
    name: str
    description: str = ""
    active: bool = True
    guidance: str = "DEFAULT"

    @property
    def key(self) -> tuple[Any, ...] | None:
        return semver_key(self.name)

    @property
    def published(self) -> bool:
        """Offered to new projects: active and not deprecated."""
        return self.active and self.guidance != "DEPRECATED"


@dataclass
class CatalogProduct:
    id: str
    name: str
    slug: str | None
    versions: list[Version]

    def version(self, artifact_id: str) -> Version | None:
        return next((v for v in self.versions if v.id == artifact_id), None)

    def named(self, name: str) -> Version | None:
        return next((v for v in self.versions if v.name == name), None)

    def newest(self) -> Version | None:
        """The highest published release (semantic versioning precedence; pre-releases only when there is no
        release)."""
        candidates = [v for v in self.versions if v.published and v.key is not None]
        releases = [v for v in candidates if "-" not in v.name.split("+")[0]]
        pool = releases or candidates
        return max(pool, key=lambda v: v.key or ()) if pool else None


def _slug(name: str, descriptions: Iterable[str]) -> str | None:
    registered = {product.slug: product for product in products()}
    for description in descriptions:
        first = description.split(" ", 1)[0]
        if first in registered:
            return first
    return next((p.slug for p in registered.values() if p.display_name == name), None)


class Catalog:
    """Service Catalog products and versions, read once each (admin API: DescribeProductAsAdmin,
    ListProvisioningArtifacts, DescribeProvisioningArtifact, SearchProductsAsAdmin)."""

    def __init__(self, sc: Any) -> None:
        self.sc = sc
        self._products: dict[str, CatalogProduct] = {}

    def product(self, product_id: str) -> CatalogProduct:
        if product_id not in self._products:
            try:
                view = self.sc.describe_product_as_admin(Id=product_id)["ProductViewDetail"]["ProductViewSummary"]
                details = self.sc.list_provisioning_artifacts(ProductId=product_id).get(
                    "ProvisioningArtifactDetails", [])
            except (ClientError, BotoCoreError) as error:
                raise aws_error(f"reading Service Catalog product {product_id}", error) from None
            versions = [Version(d["Id"], d.get("Name", ""), d.get("Description", ""), bool(d.get("Active", True)),
                                d.get("Guidance", "DEFAULT")) for d in details]
            name = str(view.get("Name", ""))
            slug = _slug(name, (v.description for v in versions))
            self._products[product_id] = CatalogProduct(product_id, name, slug, versions)
        return self._products[product_id]

    def portfolio_products(self, portfolio_id: str) -> set[str]:
        try:
            pages = self.sc.get_paginator("search_products_as_admin").paginate(PortfolioId=portfolio_id)
            return {d["ProductViewSummary"]["ProductId"] for page in pages for d in page.get("ProductViewDetails", [])}
        except (ClientError, BotoCoreError) as error:
            raise aws_error(f"listing the products of portfolio {portfolio_id}", error) from None

    def parameters(self, product: CatalogProduct, version: Version) -> dict[str, str | None]:
        """The version's template parameters: key -> default value (None: no default)."""
        try:
            response = self.sc.describe_provisioning_artifact(
                ProductId=product.id, ProvisioningArtifactId=version.id, IncludeProvisioningArtifactParameters=True)
        except (ClientError, BotoCoreError) as error:
            raise aws_error(f"reading the parameters of version {version.name} of {product.id}", error) from None
        return {p["ParameterKey"]: p.get("DefaultValue") for p in response.get("ProvisioningArtifactParameters", [])}


@dataclass(frozen=True)
class Project:
    name: str
    id: str
    arn: str
    status: str
    product_id: str
    artifact_id: str
    provisioned_product_id: str
    status_message: str
    last_modified: Any = None

    @classmethod
    def of(cls, described: Mapping[str, Any]) -> Project:
        details = described.get("ServiceCatalogProvisioningDetails") or {}
        provisioned = described.get("ServiceCatalogProvisionedProductDetails") or {}
        return cls(
            name=described["ProjectName"], id=described.get("ProjectId", ""), arn=described.get("ProjectArn", ""),
            status=described.get("ProjectStatus", ""), product_id=details.get("ProductId", ""),
            artifact_id=details.get("ProvisioningArtifactId", ""),
            provisioned_product_id=provisioned.get("ProvisionedProductId", ""),
            status_message=provisioned.get("ProvisionedProductStatusMessage", ""),
            last_modified=described.get("LastModifiedTime"),
        )

    @property
    def account(self) -> str:
        parts = self.arn.split(":")
        return parts[4] if len(parts) > 4 else ""

    @property
    def stack_name(self) -> str:
        """Service Catalog names a provisioned product's stack ``SC-<account>-<provisioned product id>`` (the
        walkthrough reads the same stack: notebooks/fsi_walkthrough/project.py)."""
        return f"SC-{self.account}-{self.provisioned_product_id}"


def describe_project(sm: Any, name: str) -> Project:
    try:
        return Project.of(sm.describe_project(ProjectName=name))
    except (ClientError, BotoCoreError) as error:  # a missing project: ValidationException "... does not exist"
        raise aws_error(f"describing project {name} (is it in this Region?)", error) from None


@dataclass
class Row:
    project: Project
    product: CatalogProduct
    current: Version | None
    newest: Version | None

    @property
    def behind(self) -> bool:
        if self.current is None or self.newest is None or self.current.key is None or self.newest.key is None:
            return False
        return self.newest.key > self.current.key


@dataclass
class Survey:
    rows: list[Row] = field(default_factory=list)
    others: Counter[str] = field(default_factory=Counter)  # projects left out, by reason


def survey(sm: Any, catalog: Catalog, portfolio_id: str | None = None) -> Survey:
    """Every project of the Region created from one of our products (in ``portfolio_id``'s products, if given)."""
    in_portfolio = catalog.portfolio_products(portfolio_id) if portfolio_id else None
    result = Survey()
    try:
        pages = sm.get_paginator("list_projects").paginate(SortBy="Name", SortOrder="Ascending")
        names = [s["ProjectName"] for page in pages for s in page.get("ProjectSummaryList", [])
                 if s.get("ProjectStatus") not in ("DeleteInProgress", "DeleteCompleted")]
    except (ClientError, BotoCoreError) as error:
        raise aws_error("listing the Region's projects", error) from None
    for name in names:
        project = describe_project(sm, name)
        if not project.product_id:
            result.others["not created from Service Catalog"] += 1
            continue
        if in_portfolio is not None and project.product_id not in in_portfolio:
            result.others[f"of products outside portfolio {portfolio_id}"] += 1
            continue
        product = catalog.product(project.product_id)
        if product.slug is None:
            result.others["of other products"] += 1
            continue
        result.rows.append(Row(project, product, product.version(project.artifact_id), product.newest()))
    return result


def run_list(args: argparse.Namespace, clients: Clients | None = None, out: Printer = print) -> int:
    clients = clients or Clients(args.region)
    found = survey(clients.client("sagemaker"), Catalog(clients.client("servicecatalog")), args.portfolio_id)
    header = ("PROJECT", "STATUS", "PRODUCT", "VERSION", "NEWEST", "")
    table = [header] + [
        (row.project.name, row.project.status, row.product.slug or "", _name(row.current, row.project.artifact_id),
         _name(row.newest, "-"), "*" if row.behind else "")
        for row in found.rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        out("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    behind = sum(row.behind for row in found.rows)
    others = "".join(f"; {count} {reason} left out" for reason, count in sorted(found.others.items()))
    out(f"{len(found.rows)} project(s) of our products, {behind} behind the newest version (*){others}")
    return 0


def _name(version: Version | None, fallback: str) -> str:
    return version.name if version else fallback


# --- upgrade --------------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    row: Row
    target: Version
    values: dict[str, str]  # what the request sends, by key
    carried: list[str]  # keys whose current value is carried over
    given: list[str]  # keys set by --parameter
    defaulted: dict[str, str]  # keys new in the target version -> the default they take
    dropped: list[str]  # keys the target version no longer has

    @property
    def request(self) -> dict[str, Any]:
        return {
            "ProjectName": self.row.project.name,
            "ServiceCatalogProvisioningUpdateDetails": {
                "ProvisioningArtifactId": self.target.id,
                "ProvisioningParameters": [{"Key": key, "Value": self.values[key]} for key in sorted(self.values)],
            },
        }


def choose_target(row: Row, to_version: str | None) -> Version:
    product, project = row.product, row.project
    if to_version:
        target = product.named(to_version)
        if target is None:
            names = ", ".join(v.name for v in product.versions) or "none"
            raise Refused(f"product {product.slug} ({product.id}) has no version {to_version!r} (versions: {names})")
        if not target.published:
            state = "deprecated" if target.active else "inactive"
            raise Refused(f"version {to_version} of {product.slug} is {state}: choose a published version")
    else:
        newest = product.newest()
        if newest is None:
            raise Refused(f"product {product.slug} ({product.id}) has no published version")
        target = newest
    if row.current is None:
        raise Refused(f"project {project.name} names version {project.artifact_id}, which product {product.id} does "
                      "not list: cannot tell whether the target is newer")
    if row.current.key is None or target.key is None:
        raise Refused(f"cannot compare versions {row.current.name!r} and {target.name!r} (not semantic versions)")
    if target.key < row.current.key:
        raise Refused(f"project {project.name} is at {row.current.name}; {target.name} is older: downgrades are "
                      "refused (an older template may not undo what a newer one created)")
    return target


def make_plan(row: Row, target: Version, current: Mapping[str, str], target_parameters: Mapping[str, str | None],
              overrides: Mapping[str, str]) -> Plan:
    """The parameters to send: every parameter of the target version (SageMaker's own excepted) with its current
    value, an override, or -- when new -- nothing (its default applies)."""
    unknown = sorted(set(overrides) - set(target_parameters))
    if unknown:
        raise Refused(f"version {target.name} has no parameter {', '.join(unknown)}")
    values: dict[str, str] = {}
    carried, given, defaulted, missing = [], [], {}, []
    for key, default in target_parameters.items():
        if key in SAGEMAKER_PARAMETERS:
            continue
        if key in overrides:
            values[key] = overrides[key]
            given.append(key)
        elif key in current:
            values[key] = current[key]
            carried.append(key)
        elif default is not None:
            defaulted[key] = default
        else:
            missing.append(key)
    if missing:
        raise Refused(f"version {target.name} adds parameter(s) {', '.join(missing)} without a default: give each with "
                      "--parameter KEY=VALUE")
    dropped = sorted(k for k in current if k not in target_parameters and k not in SAGEMAKER_PARAMETERS)
    return Plan(row, target, values, carried, given, defaulted, dropped)


def stack_parameters(cfn: Any, project: Project) -> dict[str, str]:
    """The parameter values in effect on the project's stack (defaults included)."""
    if not project.provisioned_product_id:
        raise Refused(f"project {project.name} names no provisioned product: it was not created through Service "
                      "Catalog")
    try:
        stack = cfn.describe_stacks(StackName=project.stack_name)["Stacks"][0]
    except (ClientError, BotoCoreError) as error:
        raise aws_error(f"reading stack {project.stack_name} of project {project.name}", error) from None
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


Changelog = Mapping[str, "Section"]


def changelog_notes(changelog: Changelog, template: str, current: Version, target: Version) -> list[str]:
    """What CHANGELOG.md says about the versions after ``current`` up to ``target``: whether the launch role changed
    (then sm-policies of the target version must be deployed first) and the stateful resources of ``template`` a
    stack update replaces or removes."""
    if current.key is None or target.key is None:
        return []
    low, high = current.key, target.key
    sections = sorted(((key, section) for version, section in changelog.items()
                       if (key := semver_key(version)) is not None and low < key <= high), key=lambda pair: pair[0])
    notes = []
    changed = [section.version for _, section in sections if section.launch_role_changed]
    if changed:
        notes.append(f"the launch role changed in {', '.join(changed)} (CHANGELOG.md): deploy sm-policies of "
                     f"{target.name} before this upgrade, or the stack update is denied and rolls back")
    for _, section in sections:
        notes += [f"{section.version}: {d.kind} {d.logical_id}: {d.reason}" for d in section.declarations
                  if d.template == template]
    return notes


def read_changelog() -> Changelog:
    """The checkout's CHANGELOG.md ({} without one: an installed package has none)."""
    from ..upgrade import ChangelogError
    from ..upgrade import read_changelog as read

    try:
        return read()
    except ChangelogError as error:
        raise CliError(f"CHANGELOG.md cannot be read: {error}") from None


def print_plan(plan: Plan, out: Printer, notes: Sequence[str] = ()) -> None:
    row = plan.row
    out(f"{row.project.name}: {row.product.slug} {row.current.name if row.current else '?'} -> {plan.target.name} "
        f"({plan.target.id})")
    for note in notes:
        out(f"  note  {note}")
    for key in plan.carried:
        out(f"  keep  {key}={plan.values[key]}")
    for key in plan.given:
        out(f"  set   {key}={plan.values[key]}")
    for key, default in plan.defaulted.items():
        out(f"  new   {key} (default {default!r})")
    for key in plan.dropped:
        out(f"  drop  {key} (not a parameter of {plan.target.name})")


@dataclass
class Waiter:
    timeout: float
    poll: float = POLL_SECONDS
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def wait_for_update(sm: Any, before: Project, target: Version, waiter: Waiter, out: Printer) -> tuple[bool, str]:
    """Poll DescribeProject until the update ends: (succeeded, what to report). A terminal status counts only once the
    project changed since the request (it was seen in progress, or its LastModifiedTime moved), so the status of an
    earlier update is not taken for this one's."""
    deadline = waiter.clock() + waiter.timeout
    seen_progress = False
    while True:
        project = describe_project(sm, before.name)
        changed = seen_progress or project.last_modified != before.last_modified
        if project.status in IN_PROGRESS:
            seen_progress = True
        elif changed and project.status == "UpdateCompleted":
            if project.artifact_id and project.artifact_id != target.id:
                return True, (f"UpdateCompleted, but the project names version {project.artifact_id}, not "
                              f"{target.id}: check it in Studio")
            return True, f"UpdateCompleted at {target.name}"
        elif changed and project.status == "UpdateFailed":
            return False, f"UpdateFailed: {project.status_message or 'no reason given: see the stack events'}"
        if waiter.clock() >= deadline:
            return False, (f"still {project.status} after {waiter.timeout:.0f} s: the update goes on; follow it with "
                           "`projects list` or in the CloudFormation console")
        out(f"  {before.name}: {project.status}")
        waiter.sleep(waiter.poll)


def parse_overrides(values: Sequence[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key:
            raise CliError(f"--parameter {value!r}: write KEY=VALUE")
        if key in SAGEMAKER_PARAMETERS:
            raise CliError(f"--parameter {key}: SageMaker sets it")
        overrides[key] = setting
    return overrides


def upgrade_one(clients: Clients, catalog: Catalog, row: Row, args: argparse.Namespace, overrides: Mapping[str, str],
                waiter: Waiter, out: Printer, changelog: Changelog) -> str:
    """Upgrade one project: "upgraded", "up to date", "planned" (dry run) or "failed"; Refused when it may not."""
    project = row.project
    if project.status not in UPGRADABLE:
        raise Refused(f"project {project.name} is {project.status}: update it only once it is not being created, "
                      "updated or deleted")
    target = choose_target(row, args.to_version)
    if row.current is not None and target.id == row.current.id:
        out(f"{project.name}: already at {target.name}")
        return "up to date"
    plan = make_plan(row, target, stack_parameters(clients.client("cloudformation"), project),
                     catalog.parameters(row.product, target), overrides)
    notes = changelog_notes(changelog, f"project-{row.product.slug}", row.current, target) if row.current else []
    print_plan(plan, out, notes)
    if args.dry_run:
        out(f"  request: {json.dumps(plan.request)}")
        return "planned"
    try:
        clients.client("sagemaker").update_project(**plan.request)
    except (ClientError, BotoCoreError) as error:
        out(f"  {project.name}: UpdateProject failed: {describe(error)}")
        return "failed"
    succeeded, report = wait_for_update(clients.client("sagemaker"), project, target, waiter, out)
    out(f"  {project.name}: {report}")
    return "upgraded" if succeeded else "failed"


def run_upgrade(args: argparse.Namespace, clients: Clients | None = None, out: Printer = print,
                waiter: Waiter | None = None, changelog: Changelog | None = None) -> int:
    clients = clients or Clients(args.region)
    changelog = read_changelog() if changelog is None else changelog
    waiter = waiter or Waiter(args.wait_timeout)
    overrides = parse_overrides(args.parameter)
    sm, catalog = clients.client("sagemaker"), Catalog(clients.client("servicecatalog"))
    if args.project:
        project = describe_project(sm, check_project_name(args.project))
        if not project.product_id:
            raise CliError(f"project {project.name} was not created through Service Catalog: nothing to upgrade here")
        product = catalog.product(project.product_id)
        if product.slug is None:
            raise CliError(f"project {project.name} comes from Service Catalog product {product.name!r} "
                           f"({product.id}), not one of ours")
        row = Row(project, product, product.version(project.artifact_id), product.newest())
        try:
            outcome = upgrade_one(clients, catalog, row, args, overrides, waiter, out, changelog)
        except Refused as refused:
            raise CliError(str(refused)) from None
        return 1 if outcome == "failed" else 0
    outcomes: Counter[str] = Counter()
    found = survey(sm, catalog, args.portfolio_id)
    for row in found.rows:
        if not args.to_version and not row.behind:
            outcomes["up to date"] += 1
            continue
        try:
            outcomes[upgrade_one(clients, catalog, row, args, overrides, waiter, out, changelog)] += 1
        except Refused as refused:
            out(f"{row.project.name}: refused: {refused}")
            outcomes["refused"] += 1
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())) or "no project"
    out(f"upgrade{' (dry run)' if args.dry_run else ''}: {len(found.rows)} project(s) of our products: {summary}")
    return 1 if outcomes["failed"] or outcomes["refused"] else 0
