"""What moving a stack from one published version's template to the next does to each resource, and what
``CHANGELOG.md`` declares about it.

A stack update keeps a resource (updated with no or some interruption) or *replaces* it: CloudFormation
creates a new resource, points the references at it and deletes the old one, its data with it
(CloudFormation User Guide, "Understand update behaviors of stack resources"). A resource is replaced when one
of its ``createOnlyProperties`` changes (CloudFormation CLI User Guide, "Resource type schema"); the schemas
are the registry schemas cfn-lint ships. CloudFormation refuses to change the type of a logical id, and to
replace a resource whose custom name stays the same (CloudFormation Template Reference, "CloudFormation
resource custom naming": "You can't perform an update that causes a custom-named resource to be replaced").

:func:`compare` classifies every logical id of one template pair as added, removed, updated in place or
replaced, for every combination of the templates' choice parameters (the values a project keeps) and for
each version's defaults (a project upgraded without its previous values). Values are compared after
resolving what resolves offline (:mod:`generators.cfn_resolve`); references to other resources resolve to
placeholders, so a changed reference counts as a change, and a resource whose create-only value refers to a
replaced resource is replaced too.

Removing or replacing a *stateful* resource (:data:`STATEFUL`) must be declared in the version's section of
``CHANGELOG.md``::

    - Replaces: `project-s3-fs-ingestion/ArtifactBucket` — the old bucket and its objects are deleted
    - Removes: `project-s3-fs-ingestion/TrailBucket` — kept (DeletionPolicy Retain), no longer written to
    - Launch role changed: yes

``python -m generators.upgrade`` prints the comparison of the current build with the last released version.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from .cfn_resolve import evaluate_conditions, resolve, template_parameters
from .settings import POLICIES_TEMPLATE, SEMVER, semver_key

REPO_ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = REPO_ROOT / "CHANGELOG.md"
# The templates of every released version, built with the golden files' coordinates (version 1.0.0, default
# bucket and prefix), one folder per version: the baseline of the next version's upgrade.
RELEASED_DIR = REPO_ROOT / "tests" / "golden" / "released"
SCHEMA_REGION = "us-east-1"  # createOnlyProperties are the same in every Region's schema of a type
MAX_COMBINATIONS = 512

# Resource types whose replacement or removal loses data or links that a new resource does not bring back.
STATEFUL: dict[str, str] = {
    "AWS::S3::Bucket": "objects: the feature group's offline store (s3://<ArtifactBucket>/feature-store; a feature "
    "group's offline store location never changes), pipeline artifacts, batch manifests, trail logs (a non-empty "
    "bucket is not even deleted: a replacement leaves an orphan and an empty new bucket)",
    "AWS::CodeCommit::Repository": "the project's source and its commit history (a new repository starts again "
    "from the seed code)",
    "AWS::SageMaker::FeatureGroup": "the feature group's online and offline records",
    "AWS::SageMaker::ModelPackageGroup": "registered model versions and their approval history",
    "AWS::SQS::Queue": "messages not yet consumed: dead letters waiting for a redrive, queued uploads",
    "AWS::Logs::LogGroup": "log events within the retention period (malformed-event records, errors)",
    "AWS::KMS::Key": "the key material: data encrypted under the old key is unreadable once it is deleted",
    "AWS::SNS::Topic": "subscriptions made outside the stack and confirmed e-mail subscriptions (a new topic asks "
    "every e-mail subscriber to confirm again)",
    "AWS::ServiceCatalog::Portfolio": "product associations, principals and shares added outside the stack",
    "AWS::ServiceCatalog::CloudFormationProduct": "the versions the release registers and the link of every "
    "provisioned project to its product (UpdateProject keeps to one product)",
    "AWS::DynamoDB::Table": "items",
}


class Change(Enum):
    UNCHANGED = "unchanged"
    ADDED = "added"
    UPDATED = "updated in place"
    REMOVED = "removed"
    REPLACED = "REPLACED"


_SEVERITY = [Change.UNCHANGED, Change.ADDED, Change.UPDATED, Change.REMOVED, Change.REPLACED]


@dataclass(frozen=True)
class ResourceChange:
    """What an upgrade does to one logical id, in its worst case over the parameter scenarios."""

    template: str
    logical_id: str
    type: str
    change: Change
    reasons: tuple[str, ...] = ()
    where: tuple[str, ...] = ()  # the scenarios of the worst case
    blocked: str = ""  # why CloudFormation refuses this update outright
    retained: bool = False  # a DeletionPolicy/UpdateReplacePolicy Retain keeps the old resource

    @property
    def ref(self) -> str:
        return f"{self.template}/{self.logical_id}"

    @property
    def stateful(self) -> str:
        return STATEFUL.get(self.type, "")

    @property
    def destructive(self) -> bool:
        return self.change in (Change.REMOVED, Change.REPLACED)

    def describe(self) -> str:
        text = f"{self.ref} ({self.type}): {self.change.value}"
        if self.reasons:
            text += f" ({'; '.join(self.reasons)})"
        if self.where and self.change is not Change.UNCHANGED:
            text += f" [{'; '.join(self.where)}]"
        if self.retained and self.destructive:
            text += " [old resource retained]"
        if self.blocked:
            text += f" BLOCKED: {self.blocked}"
        return text


# ---------------------------------------------------------------------------------------------------------
# Resource schemas
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeInfo:
    create_only: tuple[str, ...]  # JSON pointers: /properties/BucketName, /properties/OnlineStoreConfig/...
    name_property: str | None  # the property holding the resource's custom name, if it is create-only
    known: bool = True  # False: no schema (only type changes and removals are detected)


@cache
def registry_type_info(resource_type: str) -> TypeInfo:
    """createOnlyProperties of a type from the CloudFormation registry schemas cfn-lint ships (cfn-lint is in the
    ``lint`` and ``test`` extras); ``Custom::`` types use the schema of AWS::CloudFormation::CustomResource."""
    try:
        schema_module = importlib.import_module("cfnlint.schema")
    except ImportError as error:  # pragma: no cover - both extras that run the guard install it
        raise RuntimeError("the upgrade guard reads cfn-lint's resource schemas: pip install -e '.[lint]'") from error
    lookup = "AWS::CloudFormation::CustomResource" if resource_type.startswith("Custom::") else resource_type
    try:
        schema = schema_module.PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, lookup).schema
    except schema_module.ResourceNotFoundError:  # a type cfn-lint has no schema for
        return TypeInfo((), None, known=False)
    create_only = tuple(str(p) for p in schema.get("createOnlyProperties", []))
    return TypeInfo(create_only, name_property(resource_type, create_only))


def name_property(resource_type: str, create_only: Iterable[str]) -> str | None:
    """The top-level create-only property that names the resource: ``Name`` or ``<Type>Name`` (BucketName,
    QueueName, FunctionName, LogGroupName, ManagedPolicyName, TrailName, TopicName, FeatureGroupName, ...)."""
    wanted = {"Name", resource_type.rsplit("::", 1)[-1] + "Name"}
    for pointer in create_only:
        parts = pointer.split("/")
        if len(parts) == 3 and parts[1] == "properties" and parts[2] in wanted:
            return parts[2]
    return None


_MISSING = object()


def _at(properties: Any, pointer: str) -> Any:
    """The value at a schema pointer (``/properties/A/B``, ``*`` for every list item); _MISSING if absent."""
    parts = pointer.split("/")[2:]

    def walk(value: Any, rest: list[str]) -> Any:
        if not rest:
            return value
        head, tail = rest[0], rest[1:]
        if head == "*":
            if not isinstance(value, list):
                return _MISSING
            return [walk(item, tail) for item in value]
        if isinstance(value, dict) and head in value:
            return walk(value[head], tail)
        return _MISSING

    return walk(properties if properties is not None else {}, parts)


# ---------------------------------------------------------------------------------------------------------
# Parameter scenarios
# ---------------------------------------------------------------------------------------------------------


DEFAULTS_SCENARIO = "upgraded to the new defaults"


@dataclass(frozen=True)
class Scenario:
    label: str
    old: dict[str, Any]
    new: dict[str, Any]
    chosen: dict[str, Any] = field(default_factory=dict)  # the choice parameters' values (kept scenarios)


def scenarios(old: Mapping[str, Any], new: Mapping[str, Any],
              samples: Mapping[str, str] | None = None) -> list[Scenario]:
    """Every combination of the choice parameters (those with AllowedValues in either template) with the same
    values on both sides (a project keeps its values), then each template's own defaults (a project upgraded
    without passing its previous values: new parameters and changed defaults take effect)."""
    samples = samples or {}
    old_parameters, new_parameters = old.get("Parameters", {}), new.get("Parameters", {})
    names = sorted(set(old_parameters) | set(new_parameters))

    def value(name: str, *specs: Mapping[str, Any]) -> Any:
        for spec in specs:
            if name in spec and "Default" in spec[name]:
                return spec[name]["Default"]
        return samples.get(name, f"<parameter {name}>")

    kept = {name: value(name, old_parameters, new_parameters) for name in names}
    choices: dict[str, list[Any]] = {}
    for name in names:
        allowed = [*old_parameters.get(name, {}).get("AllowedValues", []),
                   *new_parameters.get(name, {}).get("AllowedValues", [])]
        if allowed:
            choices[name] = list(dict.fromkeys(allowed))
    combinations = list(itertools.product(*choices.values()))
    if len(combinations) > MAX_COMBINATIONS:  # pragma: no cover - a template with that many choices
        combinations = [tuple(values[0] for values in choices.values())]
    result = []
    for combination in combinations:
        chosen = dict(zip(choices, combination, strict=True))
        label = ", ".join(f"{k}={v}" for k, v in chosen.items()) or "parameters kept"
        result.append(Scenario(label, {**kept, **chosen}, {**kept, **chosen}, chosen))
    old_defaults = {name: value(name, old_parameters) for name in old_parameters}
    new_defaults = {name: value(name, new_parameters) for name in new_parameters}
    result.append(Scenario(DEFAULTS_SCENARIO, old_defaults, new_defaults))
    return result


def summarize(chosen: Sequence[Scenario], every: Sequence[Scenario]) -> tuple[str, ...]:
    """The scenarios of a worst case, short: ``TriggerMode=CloudTrail`` rather than each combination that has
    it; empty when it is every scenario."""
    if len(chosen) == len(every):
        return ()
    kept = [s for s in chosen if s.label != DEFAULTS_SCENARIO]
    parts: list[str] = []
    if kept:
        choices: dict[str, set[str]] = {}
        for scenario in every:
            for name, value in scenario.chosen.items():
                choices.setdefault(name, set()).add(str(value))
        for name, values in choices.items():
            seen = {str(s.chosen[name]) for s in kept}
            if seen != values:
                parts.append(f"{name}={'|'.join(sorted(seen))}")
        parts = [", ".join(parts) or "parameters kept"]
    if len(kept) < len(chosen):
        parts.append(DEFAULTS_SCENARIO)
    return tuple(parts)


# ---------------------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------------------


def references(value: Any, resources: Iterable[str]) -> set[str]:
    """Logical ids of resources that ``value`` refers to (Ref, Fn::GetAtt, ${X} and ${X.Attr} in Fn::Sub)."""
    known = set(resources)
    found: set[str] = set()

    def walk(item: Any, local: frozenset[str] = frozenset()) -> None:
        if isinstance(item, list):
            for element in item:
                walk(element, local)
        elif isinstance(item, dict):
            if len(item) == 1:
                ((key, arg),) = item.items()
                if key == "Ref" and isinstance(arg, str):
                    found.add(arg)
                    return
                if key == "Fn::GetAtt":
                    found.add(arg.split(".")[0] if isinstance(arg, str) else str(arg[0]))
                    return
                if key == "Fn::Sub":
                    text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                    walk(variables, local)
                    for name in re.findall(r"\$\{([^}!][^}]*)\}", text):
                        if name.split(".")[0] not in variables:
                            found.add(name.split(".")[0])
                    return
            for element in item.values():
                walk(element, local)

    walk(value)
    return found & known


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class _Outcome:
    change: Change
    reasons: list[str] = field(default_factory=list)
    blocked: str = ""


def _compare_scenario(old: Mapping[str, Any], new: Mapping[str, Any], scenario: Scenario,
                      type_info: Callable[[str], TypeInfo]) -> dict[str, _Outcome]:
    old_parameters = template_parameters(old, scenario.old)
    new_parameters = template_parameters(new, scenario.new)
    old_conditions = evaluate_conditions(old, old_parameters)
    new_conditions = evaluate_conditions(new, new_parameters)
    old_resources = {lid: r for lid, r in old.get("Resources", {}).items()
                     if old_conditions.get(r.get("Condition", ""), True)}
    new_resources = {lid: r for lid, r in new.get("Resources", {}).items()
                     if new_conditions.get(r.get("Condition", ""), True)}

    def resolved(resource: Mapping[str, Any], parameters: Mapping[str, Any], conditions: Mapping[str, bool]) -> Any:
        return resolve(resource.get("Properties", {}), parameters, conditions)

    outcomes: dict[str, _Outcome] = {}
    for lid in old_resources.keys() - new_resources.keys():
        outcomes[lid] = _Outcome(Change.REMOVED)
    for lid in new_resources.keys() - old_resources.keys():
        outcomes[lid] = _Outcome(Change.ADDED)
    both = sorted(old_resources.keys() & new_resources.keys())
    old_values = {lid: resolved(old_resources[lid], old_parameters, old_conditions) for lid in both}
    new_values = {lid: resolved(new_resources[lid], new_parameters, new_conditions) for lid in both}
    for lid in both:
        before, after = old_resources[lid], new_resources[lid]
        if before["Type"] != after["Type"]:
            outcomes[lid] = _Outcome(Change.REPLACED, [f"type {before['Type']} -> {after['Type']}"],
                                     "Update of resource type is not permitted: give the new resource a new "
                                     "logical id")
            continue
        info = type_info(after["Type"])
        changed = [pointer for pointer in info.create_only
                   if _canonical(_at(old_values[lid], pointer)) != _canonical(_at(new_values[lid], pointer))]
        if changed:
            outcomes[lid] = _Outcome(Change.REPLACED, [f"{p.removeprefix('/properties/')} changed" for p in changed])
        elif _canonical(old_values[lid]) != _canonical(new_values[lid]):
            outcomes[lid] = _Outcome(Change.UPDATED)
        else:
            outcomes[lid] = _Outcome(Change.UNCHANGED)
        if not info.known:
            outcomes[lid].reasons.append("no resource schema: replacement not detectable")

    # A create-only value that refers to a replaced resource gets that resource's new name or ARN.
    progress = True
    while progress:
        progress = False
        replaced = {lid for lid, o in outcomes.items() if o.change in (Change.REPLACED, Change.REMOVED)}
        for lid in both:
            outcome = outcomes[lid]
            if outcome.change is Change.REPLACED:
                continue
            properties = new_resources[lid].get("Properties", {})
            for pointer in type_info(new_resources[lid]["Type"]).create_only:
                value = _at(properties, pointer)
                hit = sorted(references(value, replaced)) if value is not _MISSING else []
                if hit:
                    outcome.change = Change.REPLACED
                    where = pointer.removeprefix("/properties/")
                    outcome.reasons.append(f"{where} refers to replaced {', '.join(hit)}")
                    progress = True
                    break
    # Any other value that refers to a replaced resource changes with it: an update in place.
    replaced = {lid for lid, o in outcomes.items() if o.change in (Change.REPLACED, Change.REMOVED)}
    for lid in both:
        outcome = outcomes[lid]
        hit = sorted(references(new_resources[lid].get("Properties", {}), replaced))
        if outcome.change is not Change.REPLACED and hit:
            outcome.change = Change.UPDATED
            outcome.reasons.append(f"refers to replaced {', '.join(hit)}")

    for lid in both:
        outcome = outcomes[lid]
        name_property = type_info(new_resources[lid]["Type"]).name_property
        if outcome.change is Change.REPLACED and not outcome.blocked and name_property:
            before, after = old_values[lid].get(name_property), new_values[lid].get(name_property)
            if after not in (None, "") and _canonical(before) == _canonical(after):
                outcome.blocked = (f"CloudFormation cannot replace a custom-named resource whose name stays "
                                   f"{after!r}: give it a new {name_property}")
    return outcomes


def compare(template: str, old: Mapping[str, Any], new: Mapping[str, Any], *,
            samples: Mapping[str, str] | None = None,
            type_info: Callable[[str], TypeInfo] = registry_type_info) -> list[ResourceChange]:
    """Every logical id of ``old`` and ``new``, each with its worst change over all :func:`scenarios`."""
    worst: dict[str, tuple[_Outcome, list[Scenario]]] = {}
    every = scenarios(old, new, samples)
    for scenario in every:
        for lid, outcome in _compare_scenario(old, new, scenario, type_info).items():
            current = worst.get(lid)
            rank = _SEVERITY.index(outcome.change)
            if current is None or rank > _SEVERITY.index(current[0].change):
                worst[lid] = (outcome, [scenario])
            elif rank == _SEVERITY.index(current[0].change):
                current[1].append(scenario)
                for reason in outcome.reasons:
                    if reason not in current[0].reasons:
                        current[0].reasons.append(reason)
                current[0].blocked = current[0].blocked or outcome.blocked
    everything = {**old.get("Resources", {}), **new.get("Resources", {})}
    changes = []
    for lid in sorted(everything):
        outcome, where = worst.get(lid, (_Outcome(Change.UNCHANGED), []))
        resource = new.get("Resources", {}).get(lid) or old["Resources"][lid]
        before = old.get("Resources", {}).get(lid, {})
        policy = before.get("DeletionPolicy") if outcome.change is Change.REMOVED else before.get("UpdateReplacePolicy")
        changes.append(ResourceChange(
            template, lid, resource["Type"], outcome.change, tuple(outcome.reasons),
            summarize(where, every), outcome.blocked, policy == "Retain",
        ))
    return changes


# ---------------------------------------------------------------------------------------------------------
# Launch role
# ---------------------------------------------------------------------------------------------------------

LAUNCH_ROLE_PARAMETER = "LaunchRoleName"


def launch_role_statements(policies_template: Mapping[str, Any]) -> list[Any]:
    """Every statement of the sm-policies managed policies attached to the launch role (``LaunchRoleName``),
    as one sorted list: IAM unions a role's policies, so moving a statement between parts changes nothing."""
    statements = []
    for resource in policies_template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::IAM::ManagedPolicy":
            continue
        properties = resource.get("Properties", {})
        if {"Ref": LAUNCH_ROLE_PARAMETER} in properties.get("Roles", []):
            statements += properties.get("PolicyDocument", {}).get("Statement", [])
    return sorted(statements, key=_canonical)


def launch_role_digest(policies_template: Mapping[str, Any]) -> str:
    """SHA-256 of the launch role's statements (the manifest records it; a release compares it)."""
    return hashlib.sha256(_canonical(launch_role_statements(policies_template)).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# CHANGELOG.md
# ---------------------------------------------------------------------------------------------------------

_SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\](?:\s+-\s+(?P<date>.+?))?\s*$")
_LAUNCH = re.compile(r"^- Launch role changed: (?P<answer>yes|no)\b", re.IGNORECASE)
_DECLARATION = re.compile(r"^- (?P<kind>Replaces|Removes): `(?P<template>[\w.-]+)/(?P<logical>[A-Za-z0-9]+)`"
                          r"\s*(?:[—:-]+\s*)?(?P<reason>.*)$")
_NONE = re.compile(r"^- (Replaces|Removes): none\b", re.IGNORECASE)


class ChangelogError(ValueError):
    """A CHANGELOG.md line that looks like an upgrade declaration but cannot be read."""


@dataclass(frozen=True)
class Declaration:
    kind: str  # "Replaces" or "Removes"
    template: str
    logical_id: str
    reason: str

    @property
    def ref(self) -> str:
        return f"{self.template}/{self.logical_id}"


@dataclass
class Section:
    version: str
    date: str
    launch_role_changed: bool | None = None
    declarations: list[Declaration] = field(default_factory=list)


def parse_changelog(text: str) -> dict[str, Section]:
    """Version -> its section: the ``Launch role changed: yes|no`` marker and the Replaces/Removes lines."""
    sections: dict[str, Section] = {}
    current: Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        heading = _SECTION.match(line)
        if heading:
            version = heading["version"]
            if version in sections:
                raise ChangelogError(f"CHANGELOG.md:{number}: a second section for {version}")
            current = sections[version] = Section(version, (heading["date"] or "").strip())
            continue
        if current is None:
            continue
        if (launch := _LAUNCH.match(line)) is not None:
            if current.launch_role_changed is not None:
                raise ChangelogError(f"CHANGELOG.md:{number}: {current.version} says 'Launch role changed' twice")
            current.launch_role_changed = launch["answer"].lower() == "yes"
        elif line.startswith(("- Replaces:", "- Removes:")) and not _NONE.match(line):
            declared = _DECLARATION.match(line)
            if declared is None:
                raise ChangelogError(f"CHANGELOG.md:{number}: write '- Replaces: `<template>/<LogicalId>` — what "
                                     "happens to the data' (or '- Removes: ...')")
            if not declared["reason"].strip():
                raise ChangelogError(f"CHANGELOG.md:{number}: say what the upgrade does to the data")
            current.declarations.append(Declaration(declared["kind"], declared["template"], declared["logical"],
                                                    declared["reason"].strip()))
    return sections


def read_changelog(path: Path = CHANGELOG) -> dict[str, Section]:
    return parse_changelog(path.read_text(encoding="utf-8")) if path.is_file() else {}


def problems(changes: Sequence[ResourceChange], section: Section | None, version: str = "") -> list[str]:
    """What stops an upgrade: blocked updates, stateful resources removed or replaced without a declaration in
    the version's section, and declarations that match no such change (a stale CHANGELOG)."""
    version = section.version if section else version
    declared = {(d.kind, d.ref): d for d in (section.declarations if section else [])}
    found: list[str] = []
    needed: set[tuple[str, str]] = set()
    for change in changes:
        if change.blocked:
            found.append(f"{change.describe()}")
        if change.destructive and change.stateful:
            kind = "Replaces" if change.change is Change.REPLACED else "Removes"
            needed.add((kind, change.ref))
            if (kind, change.ref) not in declared:
                found.append(f"{change.describe()}: stateful ({change.stateful}); declare it in the "
                             f"[{version or 'version'}] section of CHANGELOG.md as "
                             f"`- {kind}: `{change.ref}` — what happens to the data`")
    found += [f"CHANGELOG.md declares `{kind}: {ref}`, but the upgrade does not {kind.lower()[:-1]} it"
              for kind, ref in sorted(declared.keys() - needed)]
    return found


# ---------------------------------------------------------------------------------------------------------
# Released versions
# ---------------------------------------------------------------------------------------------------------


def version_key(version: str) -> tuple[Any, ...]:
    key = semver_key(version)
    if key is None:
        raise ValueError(f"{version!r} is not a semantic version")
    return key


def released_versions(root: Path = RELEASED_DIR) -> list[str]:
    """The released versions whose templates are kept, oldest first."""
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if p.is_dir() and SEMVER.match(p.name)), key=version_key)


def previous_release(version: str, root: Path = RELEASED_DIR) -> str | None:
    """The newest released version older than ``version``."""
    older = [v for v in released_versions(root) if version_key(v) < version_key(version)]
    return older[-1] if older else None


def released_templates(version: str, root: Path = RELEASED_DIR) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted((root / version).glob("*.json"))}


def compare_all(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]],
                samples: Mapping[str, Mapping[str, str]] | None = None,
                type_info: Callable[[str], TypeInfo] = registry_type_info) -> list[ResourceChange]:
    """Every template present in both (a product new in ``new`` has nothing to upgrade)."""
    samples = samples or {}
    return [change for name in sorted(old.keys() & new.keys())
            for change in compare(name, old[name], new[name], samples=samples.get(name), type_info=type_info)]


def current_templates() -> dict[str, dict[str, Any]]:
    """The current build with the golden files' coordinates (what tests/golden holds)."""
    from .build import template_dicts
    from .settings import Settings

    return template_dicts(Settings(version="1.0.0"))


def product_samples() -> dict[str, dict[str, str]]:
    from .products import products

    return {product.template_name: dict(product.sample_parameters) for product in products()}


def report(changes: Sequence[ResourceChange]) -> Iterator[str]:
    for change in changes:
        if change.change is not Change.UNCHANGED or change.reasons:
            marker = " [stateful]" if change.stateful and change.destructive else ""
            yield f"{change.describe()}{marker}"


def main(argv: Sequence[str] | None = None) -> int:
    from .settings import package_version

    parser = argparse.ArgumentParser(
        prog="python -m generators.upgrade",
        description="Compare the current build with a released version's templates (tests/golden/released/): "
        "what a stack update does to each resource, and what CHANGELOG.md must declare.",
    )
    parser.add_argument("--previous", help="released version to compare with (default: the newest older than "
                        "the package version)")
    args = parser.parse_args(argv)
    version = package_version()
    previous = args.previous or previous_release(version)
    if previous is None:
        print(f"no released version older than {version} under {RELEASED_DIR}")
        return 0
    new = current_templates()
    old = released_templates(previous)
    changes = compare_all(old, new, product_samples())
    print(f"upgrade {previous} -> {version} (current build):")
    for template in sorted(new.keys() - old.keys()):
        print(f"{template}: new template, nothing to upgrade")
    for line in report(changes):
        print(f"  {line}")
    changed = launch_role_digest(old[POLICIES_TEMPLATE]) != launch_role_digest(new[POLICIES_TEMPLATE])
    print(f"launch role changed: {'yes' if changed else 'no'}")
    found = problems(changes, read_changelog().get(version), version)
    for problem in found:
        print(f"problem: {problem}")
    return 1 if found else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
