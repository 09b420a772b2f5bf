"""Upgrading a provisioned project (or the platform stacks) to the current version must not replace or remove a
stateful resource unless CHANGELOG.md declares it, and CHANGELOG.md says when sm-policies must go first.

What AWS does and the tests model:
- CloudFormation User Guide, "Understand update behaviors of stack resources": an update either keeps the
  resource (no or some interruption) or replaces it: CloudFormation creates the new resource, points the
  references at it and deletes the old one.
- CloudFormation CLI User Guide, "Resource type schema": ``createOnlyProperties`` are the properties that can
  only be set at creation; a change to one replaces the resource. The schemas are the registry schemas cfn-lint
  ships (generators.upgrade.registry_type_info).
- CloudFormation Template Reference, "CloudFormation resource custom naming": "You can't perform an update that
  causes a custom-named resource to be replaced. If you must replace the resource, specify a new name"
  (AWS Knowledge Center, "cloudformation-custom-name": "CloudFormation cannot update a stack when a custom-named
  resource requires replacing").
- CloudFormation Template Reference, AWS::S3::Bucket: ``BucketName`` "Update requires: Replacement", ``Tags``
  "Update requires: No interruption"; AWS::IAM::ManagedPolicy: ``Description`` and ``ManagedPolicyName``
  "Update requires: Replacement".
- CloudFormation Template Reference, "DeletionPolicy attribute" / "UpdateReplacePolicy attribute": ``Retain``
  keeps the old resource (and its data) when the stack deletes or replaces it.

Regenerate nothing here: the previous release's templates are data (tests/golden/released/README.md).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from generators import upgrade
from generators.build import template_dicts
from generators.settings import POLICIES_TEMPLATE, Settings, package_version
from generators.upgrade import Change, ChangelogError, parse_changelog, problems

PROJECT = "project-demo"


def _template(resources: dict[str, Any], parameters: dict[str, Any] | None = None,
              conditions: dict[str, Any] | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"Resources": resources}
    if parameters:
        template["Parameters"] = parameters
    if conditions:
        template["Conditions"] = conditions
    return template


def _bucket(name: Any = None, tags: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"BucketName": name or {"Fn::Sub": "demo-${SageMakerProjectId}-data"}}
    if tags:
        properties["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return {"Type": "AWS::S3::Bucket", "Properties": properties, **extra}


PARAMETERS = {"SageMakerProjectId": {"Type": "String"}, "SageMakerProjectName": {"Type": "String"}}
SAMPLES = {"SageMakerProjectId": "p-abcdefghijkl", "SageMakerProjectName": "demo"}


def _compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, upgrade.ResourceChange]:
    for template in (old, new):
        template.setdefault("Parameters", {}).update(PARAMETERS)
    return {c.logical_id: c for c in upgrade.compare(PROJECT, old, new, samples=SAMPLES)}


def _changelog(*lines: str, version: str = "9.9.9") -> upgrade.Section:
    return parse_changelog("\n".join([f"## [{version}] - Unreleased", "### Upgrade", *lines]))[version]


# ---------------------------------------------------------------------------------------------------------
# The guard on synthetic templates
# ---------------------------------------------------------------------------------------------------------


def test_a_bucket_rename_replaces_a_stateful_resource() -> None:
    old = _template({"DataBucket": _bucket()})
    new = _template({"DataBucket": _bucket({"Fn::Sub": "demo-${SageMakerProjectId}-datasets"})})
    change = _compare(old, new)["DataBucket"]
    assert change.change is Change.REPLACED and change.reasons == ("BucketName changed",)
    assert change.stateful and not change.blocked  # a new name: CloudFormation can replace it (and deletes the old)


def test_a_tag_change_is_an_update_in_place() -> None:
    old = _template({"DataBucket": _bucket(tags={"team": "ml"})})
    new = _template({"DataBucket": _bucket(tags={"team": "ml-platform"})})
    changes = _compare(old, new)
    assert changes["DataBucket"].change is Change.UPDATED
    assert problems(list(changes.values()), _changelog("- Replaces: none")) == []


def test_an_undeclared_replacement_fails_and_a_declared_one_passes() -> None:
    old = _template({"DataBucket": _bucket()})
    new = _template({"DataBucket": _bucket({"Fn::Sub": "demo-${SageMakerProjectId}-datasets"})})
    changes = list(_compare(old, new).values())
    (found,) = problems(changes, _changelog("- Launch role changed: no"))
    assert "project-demo/DataBucket" in found and "REPLACED" in found and "- Replaces: `project-demo/DataBucket`" \
        in found
    assert problems(changes, None, "9.9.9") != []  # no section at all: the same failure
    declared = _changelog("- Replaces: `project-demo/DataBucket` — objects stay in the old bucket, copy them")
    assert problems(changes, declared) == []
    wrong_kind = _changelog("- Removes: `project-demo/DataBucket` — gone")
    assert len(problems(changes, wrong_kind)) == 2  # the replacement is undeclared, the removal is stale


def test_a_declaration_that_matches_no_change_fails() -> None:
    old = _template({"DataBucket": _bucket(tags={"a": "1"})})
    new = _template({"DataBucket": _bucket(tags={"a": "2"})})
    (found,) = problems(list(_compare(old, new).values()),
                        _changelog("- Replaces: `project-demo/DataBucket` — stale"))
    assert "does not replace it" in found


def test_renaming_a_logical_id_removes_the_old_resource() -> None:
    old = _template({"DataBucket": _bucket()})
    new = _template({"Datasets": _bucket()})
    changes = _compare(old, new)
    assert changes["DataBucket"].change is Change.REMOVED and changes["Datasets"].change is Change.ADDED
    (found,) = problems(list(changes.values()), _changelog())
    assert "- Removes: `project-demo/DataBucket`" in found


def test_replacing_a_resource_that_keeps_its_custom_name_is_blocked() -> None:
    """A changed Description replaces an AWS::IAM::ManagedPolicy; with its ManagedPolicyName unchanged the
    update fails (why generators/policies.py freezes the published descriptions). Not stateful, still refused."""
    def policy(description: str) -> dict[str, Any]:
        return {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
            "ManagedPolicyName": {"Fn::Sub": "demo-launch-${AWS::Region}"}, "Description": description,
            "PolicyDocument": {"Version": "2012-10-17", "Statement": []}}}

    change = _compare(_template({"Launch": policy("Create projects")}),
                      _template({"Launch": policy("Create and update projects")}))["Launch"]
    assert change.change is Change.REPLACED and change.reasons == ("Description changed",)
    assert "custom-named" in change.blocked and "demo-launch-eu-west-1" in change.blocked
    (found,) = problems([change], _changelog())
    assert "BLOCKED" in found


def test_changing_the_type_of_a_logical_id_is_blocked() -> None:
    old = _template({"Store": _bucket()})
    new = _template({"Store": {"Type": "AWS::SQS::Queue", "Properties": {}}})
    change = _compare(old, new)["Store"]
    assert change.change is Change.REPLACED and "not permitted" in change.blocked
    (found,) = problems([change], _changelog("- Replaces: `project-demo/Store` — declared anyway"))
    assert "BLOCKED" in found, "a declaration cannot make CloudFormation accept it"


def test_a_create_only_value_that_refers_to_a_replaced_resource_is_replaced_too() -> None:
    """The new bucket has a new name, so a queue named after it gets a new name: replaced, a stateful queue."""
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "${DataBucket}-dlq"}}}
    statement = {"Resource": {"Fn::GetAtt": ["DataBucket", "Arn"]}}
    reader = {"Type": "AWS::SQS::QueuePolicy",
              "Properties": {"Queues": [{"Ref": "Dlq"}], "PolicyDocument": {"Statement": [statement]}}}
    old = _template({"DataBucket": _bucket(), "Dlq": queue, "DlqPolicy": reader})
    new = _template({"DataBucket": _bucket({"Fn::Sub": "demo-${SageMakerProjectId}-v2"}),
                     "Dlq": copy.deepcopy(queue), "DlqPolicy": copy.deepcopy(reader)})
    changes = _compare(old, new)
    assert changes["Dlq"].change is Change.REPLACED
    assert changes["Dlq"].reasons == ("QueueName refers to replaced DataBucket",)
    assert changes["DlqPolicy"].change is Change.UPDATED  # AWS::SQS::QueuePolicy Queues: No interruption
    assert changes["DlqPolicy"].reasons == ("refers to replaced DataBucket, Dlq",)
    assert {p.split(" ")[0] for p in problems(list(changes.values()), _changelog())} == {
        "project-demo/DataBucket", "project-demo/Dlq"}


def test_values_that_resolve_alike_are_no_change() -> None:
    """Rewriting an intrinsic (Fn::Join instead of Fn::Sub) with the same result changes nothing."""
    old = _template({"DataBucket": _bucket({"Fn::Sub": "demo-${SageMakerProjectId}-data"})})
    new = _template({"DataBucket": _bucket({"Fn::Join": ["-", ["demo", {"Ref": "SageMakerProjectId"}, "data"]]})})
    assert _compare(old, new)["DataBucket"].change is Change.UNCHANGED


def test_a_difference_that_cannot_be_resolved_offline_counts_as_a_replacement() -> None:
    """An attribute of another resource is unknown offline: a changed one is treated as a new value."""
    def queue(source: str) -> dict[str, Any]:
        return {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::GetAtt": [source, "QueueName"]}}}

    other = {"Type": "AWS::SQS::Queue", "Properties": {}}
    old = _template({"A": other, "B": other, "Dlq": queue("A")})
    new = _template({"A": other, "B": other, "Dlq": queue("B")})
    assert _compare(old, new)["Dlq"].change is Change.REPLACED


def test_a_changed_default_removes_a_conditional_resource_only_where_projects_take_the_defaults() -> None:
    parameters = {"Trigger": {"Type": "String", "Default": "Trail", "AllowedValues": ["Trail", "Events"]}}
    conditions = {"UseTrail": {"Fn::Equals": [{"Ref": "Trigger"}, "Trail"]}}
    old = _template({"TrailBucket": _bucket(Condition="UseTrail", DeletionPolicy="Retain")},
                    copy.deepcopy(parameters), conditions)
    parameters["Trigger"]["Default"] = "Events"
    new = _template({"TrailBucket": _bucket(Condition="UseTrail", DeletionPolicy="Retain")}, parameters, conditions)
    change = _compare(old, new)["TrailBucket"]
    assert change.change is Change.REMOVED and change.where == (upgrade.DEFAULTS_SCENARIO,)
    assert change.retained, "DeletionPolicy Retain keeps the bucket and its objects"


def test_a_replacement_in_one_mode_names_that_mode() -> None:
    parameters = {"Trigger": {"Type": "String", "Default": "Events", "AllowedValues": ["Trail", "Events"]}}
    conditions = {"UseTrail": {"Fn::Equals": [{"Ref": "Trigger"}, "Trail"]}}
    old = _template({"TrailBucket": _bucket(Condition="UseTrail")}, copy.deepcopy(parameters), conditions)
    new = _template({"TrailBucket": _bucket({"Fn::Sub": "demo-${SageMakerProjectId}-trail"}, Condition="UseTrail")},
                    parameters, conditions)
    change = _compare(old, new)["TrailBucket"]
    assert change.change is Change.REPLACED and change.where == ("Trigger=Trail",)


# ---------------------------------------------------------------------------------------------------------
# The current tree against the previous release
# ---------------------------------------------------------------------------------------------------------

VERSION = package_version()


@pytest.fixture(scope="module")
def previous() -> str:
    found = upgrade.previous_release(VERSION)
    assert found, f"no released version older than {VERSION} in {upgrade.RELEASED_DIR}"
    return found


@pytest.fixture(scope="module")
def released(previous: str) -> dict[str, dict[str, Any]]:
    templates = upgrade.released_templates(previous)
    assert POLICIES_TEMPLATE in templates and any(name.startswith("project-") for name in templates)
    return templates


@pytest.fixture(scope="module")
def current() -> dict[str, dict[str, Any]]:
    return upgrade.current_templates()


def test_upgrading_from_the_previous_release_declares_every_stateful_replacement(previous, released, current,
                                                                                  capsys) -> None:
    """Every template of the previous release that still exists: no blocked update, and every stateful resource
    it replaces or removes is declared in this version's CHANGELOG section (and nothing else is declared)."""
    changes = upgrade.compare_all(released, current, upgrade.product_samples())
    assert {c.template for c in changes} == released.keys() & current.keys()
    found = problems(changes, upgrade.read_changelog().get(VERSION), VERSION)
    report = "\n".join(upgrade.report(changes))
    with capsys.disabled():
        print(f"\nupgrade {previous} -> {VERSION}:\n{report}")
    assert not found, "\n".join(found) + f"\n\nall changes:\n{report}"


def test_a_version_bump_alone_replaces_nothing() -> None:
    """The version is part of every artifact key: a new version updates the Lambda code and the portfolio's
    template URL in place, and replaces no resource at all."""
    older = template_dicts(Settings(version="1.0.0"))
    newer = template_dicts(Settings(version="1.1.0"))
    changes = upgrade.compare_all(older, newer, upgrade.product_samples())
    assert not [c.describe() for c in changes if c.destructive or c.blocked]
    assert any(c.change is Change.UPDATED for c in changes), "the keys name the version"


# ---------------------------------------------------------------------------------------------------------
# CHANGELOG.md and the launch role
# ---------------------------------------------------------------------------------------------------------


def test_changelog_has_a_section_for_the_package_version() -> None:
    sections = upgrade.read_changelog()
    assert VERSION in sections, f"CHANGELOG.md has no '## [{VERSION}]' section (pyproject.toml's version)"
    assert sections[VERSION].launch_role_changed is not None, f"[{VERSION}]: add '- Launch role changed: yes|no'"
    for version in upgrade.released_versions():
        assert version in sections, f"released version {version} has no CHANGELOG.md section"


def test_released_versions_are_not_newer_than_the_package_version() -> None:
    newer = [v for v in upgrade.released_versions() if upgrade.version_key(v) > upgrade.version_key(VERSION)]
    assert not newer, f"tests/golden/released holds {newer}, newer than pyproject.toml's {VERSION}"


def test_the_launch_role_marker_says_whether_the_launch_role_policy_changed(released, current) -> None:
    """Computed from the previous release's sm-policies and the current build, never written by hand: a
    project update runs as the launch role (SageMaker Developer Guide, "AWS managed policies for SageMaker
    projects": AmazonSageMakerServiceCatalogProductsLaunchRole), so its grants must be deployed first."""
    changed = upgrade.launch_role_digest(released[POLICIES_TEMPLATE]) \
        != upgrade.launch_role_digest(current[POLICIES_TEMPLATE])
    declared = upgrade.read_changelog()[VERSION].launch_role_changed
    assert declared is changed, f"CHANGELOG.md [{VERSION}] must say '- Launch role changed: " \
        f"{'yes' if changed else 'no'}'"


def test_the_launch_role_digest_follows_the_grants_not_their_layout(current) -> None:
    """IAM unions the policies attached to a role: moving a statement between parts or reordering changes
    nothing; a changed action, or a policy attached to another role, is judged by the launch role only."""
    policies = copy.deepcopy(current[POLICIES_TEMPLATE])
    digest = upgrade.launch_role_digest(policies)
    parts = [r["Properties"] for r in policies["Resources"].values()
             if {"Ref": upgrade.LAUNCH_ROLE_PARAMETER} in r["Properties"].get("Roles", [])]
    assert len(parts) >= 2, "the launch role's grants span several managed policies"
    moved = parts[0]["PolicyDocument"]["Statement"].pop()
    parts[1]["PolicyDocument"]["Statement"].insert(0, moved)
    parts[0]["PolicyDocument"]["Statement"].reverse()
    assert upgrade.launch_role_digest(policies) == digest

    other = copy.deepcopy(current[POLICIES_TEMPLATE])
    other["Resources"]["ProjectRolesPolicy"]["Properties"]["PolicyDocument"]["Statement"].pop()
    assert upgrade.launch_role_digest(other) == digest

    changed = copy.deepcopy(policies)
    statement = next(r for r in changed["Resources"].values()
                     if {"Ref": upgrade.LAUNCH_ROLE_PARAMETER} in r["Properties"].get("Roles", [])
                     )["Properties"]["PolicyDocument"]["Statement"][0]
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    statement["Action"] = [*actions, "s3:GetObjectAcl"]
    assert upgrade.launch_role_digest(changed) != digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("## [1.0.0]\n- Replaces: ArtifactBucket because", "write '- Replaces: `<template>/<LogicalId>`"),
        ("## [1.0.0]\n- Removes: `project-x/Bucket`", "say what the upgrade does to the data"),
        ("## [1.0.0]\n- Launch role changed: yes\n- Launch role changed: no", "twice"),
        ("## [1.0.0]\n## [1.0.0]", "a second section for 1.0.0"),
    ],
)
def test_changelog_lines_that_cannot_be_read_are_errors(text: str, message: str) -> None:
    with pytest.raises(ChangelogError, match=None) as error:
        parse_changelog(text)
    assert message in str(error.value)


def test_changelog_sections_are_read_per_version() -> None:
    sections = parse_changelog("# Changelog\n- Launch role changed: yes\n"  # before any section: ignored
                               "## [2.0.0] - 2027-01-01\n### Upgrade\n- Launch role changed: NO\n"
                               "- Replaces: none\n- Replaces: `project-x/Bucket` — emptied: copy the objects first\n"
                               "## [1.0.0] - 2026-11-26\n- Launch role changed: yes\n")
    assert sections["2.0.0"].date == "2027-01-01" and sections["2.0.0"].launch_role_changed is False
    (declaration,) = sections["2.0.0"].declarations
    assert (declaration.kind, declaration.ref, declaration.reason) == \
        ("Replaces", "project-x/Bucket", "emptied: copy the objects first")
    assert sections["1.0.0"].launch_role_changed is True and sections["1.0.0"].declarations == []


def test_the_released_templates_are_json_of_templates(released) -> None:
    for name, template in released.items():
        assert template.get("Resources"), name
        json.dumps(template)


def test_a_type_without_a_schema_is_compared_and_says_so() -> None:
    old = _template({"Thing": {"Type": "AWS::Nope::Thing", "Properties": {"Size": 1}}})
    new = _template({"Thing": {"Type": "AWS::Nope::Thing", "Properties": {"Size": 2}}})
    change = _compare(old, new)["Thing"]
    assert change.change is Change.UPDATED and "no resource schema" in change.reasons[0]
