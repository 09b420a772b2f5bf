"""``python -m generators projects list|upgrade``: our products' projects, their versions, and UpdateProject.

moto serves neither SageMaker projects nor Service Catalog versions, so every call goes to a real boto3 client
behind botocore's Stubber, which checks each request against the service's API model and fails on a call that was
not expected; the UpdateProject request is asserted exactly.

What the upgrade must send (each fact from its AWS document): SageMaker's ``ProvisioningParameter`` holds only
``Key`` and ``Value`` (SageMaker API Reference, ``UpdateProject``: ``ServiceCatalogProvisioningUpdateDetails``);
keeping a previous value takes Service Catalog's ``UsePreviousValue`` (Service Catalog API Reference,
``UpdateProvisioningParameter``), which SageMaker cannot pass; and "If you don't specify a key and value for a
particular parameter, CloudFormation uses the default value that's specified in your template" (CloudFormation API
Reference, ``Parameter``). A parameter left out of the request would therefore be reset to the new template's
default: the request carries every current value. "You must not update a project that is in use ... being created,
or updated" (``UpdateProject``): such projects are refused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from e2e_support import FakeClock

from generators.cli import CliError, main
from generators.ops import _projects
from generators.ops._common import Clients
from generators.upgrade import parse_changelog

REGION = "eu-west-1"
ACCOUNT = "111122223333"
INGEST = "prod-ingest0000001"
BATCH = "prod-batch00000001"
OTHER = "prod-other00000001"
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

INGEST_VERSIONS = [
    {"Id": "pa-005", "Name": "0.0.5", "Description": "s3-fs-ingestion 0.0.5", "Active": True, "Guidance": "DEPRECATED"},
    {"Id": "pa-010", "Name": "0.1.0", "Description": "s3-fs-ingestion 0.1.0", "Active": True, "Guidance": "DEFAULT"},
    {"Id": "pa-020", "Name": "0.2.0", "Description": "s3-fs-ingestion 0.2.0", "Active": True, "Guidance": "DEFAULT"},
    {"Id": "pa-030", "Name": "0.3.0-rc.1", "Description": "s3-fs-ingestion 0.3.0-rc.1", "Active": True,
     "Guidance": "DEFAULT"},
    {"Id": "pa-040", "Name": "0.4.0", "Description": "s3-fs-ingestion 0.4.0", "Active": False, "Guidance": "DEFAULT"},
]
# A renamed product: still ours, told by its versions' descriptions ("<slug> <version>").
BATCH_VERSIONS = [{"Id": "pa-b20", "Name": "0.2.0", "Description": "s3-batch-inference 0.2.0", "Active": True}]
OTHER_VERSIONS = [{"Id": "pa-o1", "Name": "v1", "Description": "the data team's own template", "Active": True}]

# What the project's stack holds (DescribeStacks: every parameter, defaults included) at 0.1.0.
STACK_PARAMETERS = {
    "DataBucketName": "my-data-bucket", "DataPrefix": "incoming/", "DataSuffix": ".csv",
    "FeatureGroupName": "abalone", "TransformMode": "Script", "DataWranglerFlowUrl": "",
    "DataWranglerOutputName": "", "ProcessingInstanceType": "ml.m5.xlarge", "ProcessingInstanceCount": "2",
    "TriggerMode": "CloudTrail", "SourceProvider": "CodeCommit", "CodeConnectionArn": "", "RepositoryId": "",
    "RepositoryBranch": "main", "ReservedConcurrency": "10",
    "SageMakerProjectName": "churn", "SageMakerProjectId": "p-abcdefghijkl",
}
# The parameters of version 0.2.0's template: ReservedConcurrency gone, two new ones (one without default).
TARGET_PARAMETERS = {
    **{k: "" for k in STACK_PARAMETERS if k != "ReservedConcurrency"},
    "TriggerMode": "S3EventBridge",  # the default changed: carrying the current value keeps CloudTrail
    "StartIngestionReservedConcurrency": "0",
    "AlarmEmail": "",
}


def project(name: str, *, product: str | None = INGEST, artifact: str = "pa-010", status: str = "CreateCompleted",
            modified: dt.datetime = T0, message: str = "", pp: str = "pp-abcdefghijklm") -> dict[str, Any]:
    described: dict[str, Any] = {
        "ProjectArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:project/{name}", "ProjectName": name,
        "ProjectId": "p-abcdefghijkl", "ProjectStatus": status, "CreationTime": T0, "LastModifiedTime": modified,
    }
    if product:
        described["ServiceCatalogProvisioningDetails"] = {"ProductId": product, "ProvisioningArtifactId": artifact,
                                                          "ProvisioningParameters": [{"Key": "DataBucketName",
                                                                                      "Value": "my-data-bucket"}]}
        described["ServiceCatalogProvisionedProductDetails"] = {"ProvisionedProductId": pp,
                                                                "ProvisionedProductStatusMessage": message}
    return described


def summary(described: dict[str, Any]) -> dict[str, Any]:
    return {k: described[k] for k in ("ProjectName", "ProjectArn", "ProjectId", "CreationTime", "ProjectStatus")}


class Aws:
    """SageMaker, Service Catalog and CloudFormation clients behind Stubbers."""

    def __init__(self) -> None:
        self.clients = {name: boto3.client(name, region_name=REGION)
                        for name in ("sagemaker", "servicecatalog", "cloudformation")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}
        for stub in self.stubs.values():
            stub.activate()
        self.lines: list[str] = []
        self.clock = FakeClock()

    # what each command reads
    def lists(self, *described: dict[str, Any]) -> None:
        self.stubs["sagemaker"].add_response("list_projects", {"ProjectSummaryList": [summary(d) for d in described]},
                                             {"SortBy": "Name", "SortOrder": "Ascending"})

    def describes(self, described: dict[str, Any]) -> None:
        self.stubs["sagemaker"].add_response("describe_project", described, {"ProjectName": described["ProjectName"]})

    def product(self, product_id: str, name: str, versions: list[dict[str, Any]]) -> None:
        self.stubs["servicecatalog"].add_response(
            "describe_product_as_admin",
            {"ProductViewDetail": {"ProductViewSummary": {"Id": "prodview-1", "ProductId": product_id, "Name": name}}},
            {"Id": product_id})
        self.stubs["servicecatalog"].add_response("list_provisioning_artifacts",
                                                  {"ProvisioningArtifactDetails": versions}, {"ProductId": product_id})

    def stack(self, parameters: dict[str, str], pp: str = "pp-abcdefghijklm") -> None:
        self.stubs["cloudformation"].add_response(
            "describe_stacks",
            {"Stacks": [{"StackName": f"SC-{ACCOUNT}-{pp}", "CreationTime": T0, "StackStatus": "CREATE_COMPLETE",
                         "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]}]},
            {"StackName": f"SC-{ACCOUNT}-{pp}"})

    def target(self, artifact: str, parameters: dict[str, str | None], product_id: str = INGEST) -> None:
        self.stubs["servicecatalog"].add_response(
            "describe_provisioning_artifact",
            {"ProvisioningArtifactParameters": [
                {"ParameterKey": k, **({"DefaultValue": v} if v is not None else {})} for k, v in parameters.items()]},
            {"ProductId": product_id, "ProvisioningArtifactId": artifact,
             "IncludeProvisioningArtifactParameters": True})

    def updates(self, request: dict[str, Any], name: str = "churn") -> None:
        self.stubs["sagemaker"].add_response("update_project",
                                             {"ProjectArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:project/{name}"},
                                             request)

    def assert_all_called(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()

    # the commands
    def list(self, portfolio_id: str | None = None) -> int:
        args = argparse.Namespace(portfolio_id=portfolio_id, region=REGION)
        return _projects.run_list(args, Clients(REGION, self.clients), self.lines.append)

    def upgrade(self, name: str | None = "churn", *, to_version: str | None = None, dry_run: bool = False,
                parameters: tuple[str, ...] = (), timeout: float = 600, portfolio_id: str | None = None,
                changelog: str = "") -> int:
        args = argparse.Namespace(project=name, all=name is None, to_version=to_version, parameter=list(parameters),
                                  portfolio_id=portfolio_id, dry_run=dry_run, wait_timeout=timeout, region=REGION)
        waiter = _projects.Waiter(timeout, poll=15, sleep=self.clock.sleep, clock=self.clock.clock)
        return _projects.run_upgrade(args, Clients(REGION, self.clients), self.lines.append, waiter,
                                     parse_changelog(changelog))


@pytest.fixture
def aws():
    stubbed = Aws()
    yield stubbed
    stubbed.assert_all_called()


def _update_request(parameters: dict[str, str], artifact: str = "pa-020", name: str = "churn") -> dict[str, Any]:
    return {"ProjectName": name, "ServiceCatalogProvisioningUpdateDetails": {
        "ProvisioningArtifactId": artifact,
        "ProvisioningParameters": [{"Key": k, "Value": v} for k, v in sorted(parameters.items())]}}


CARRIED = {k: v for k, v in STACK_PARAMETERS.items()
           if k not in ("ReservedConcurrency", "SageMakerProjectName", "SageMakerProjectId")}


# --- list -------------------------------------------------------------------------------------------------------


def test_list_shows_our_projects_their_versions_and_which_are_behind(aws) -> None:
    churn, scoring = project("churn"), project("scoring", product=BATCH, artifact="pa-b20")
    other, s3_template = project("other", product=OTHER, artifact="pa-o1"), project("s3tmpl", product=None)
    aws.lists(churn, other, s3_template, scoring)
    aws.describes(churn)
    aws.product(INGEST, "S3 to Feature Store ingestion", INGEST_VERSIONS)
    aws.describes(other)
    aws.product(OTHER, "Their template", OTHER_VERSIONS)
    aws.describes(s3_template)
    aws.describes(scoring)
    aws.product(BATCH, "Scoring (renamed)", BATCH_VERSIONS)

    assert aws.list() == 0

    rows = [line.split() for line in aws.lines[1:-1]]
    assert aws.lines[0].split() == ["PROJECT", "STATUS", "PRODUCT", "VERSION", "NEWEST"]
    # The newest of the ingestion product is 0.2.0: 0.3.0-rc.1 is a pre-release, 0.4.0 inactive, 0.0.5 deprecated.
    assert rows == [["churn", "CreateCompleted", "s3-fs-ingestion", "0.1.0", "0.2.0", "*"],
                    ["scoring", "CreateCompleted", "s3-batch-inference", "0.2.0", "0.2.0"]]
    assert aws.lines[-1] == ("2 project(s) of our products, 1 behind the newest version (*); 1 not created from "
                             "Service Catalog left out; 1 of other products left out")


def test_list_of_one_portfolio(aws) -> None:
    churn, scoring = project("churn"), project("scoring", product=BATCH, artifact="pa-b20")
    aws.stubs["servicecatalog"].add_response(
        "search_products_as_admin",
        {"ProductViewDetails": [{"ProductViewSummary": {"ProductId": INGEST,
                                                        "Name": "S3 to Feature Store ingestion"}}]},
        {"PortfolioId": "port-abc"})
    aws.lists(churn, scoring)
    aws.describes(churn)
    aws.product(INGEST, "S3 to Feature Store ingestion", INGEST_VERSIONS)
    aws.describes(scoring)

    assert aws.list("port-abc") == 0

    assert [line.split()[0] for line in aws.lines[1:-1]] == ["churn"]
    assert aws.lines[-1].endswith("1 of products outside portfolio port-abc left out")


# --- upgrade ----------------------------------------------------------------------------------------------------


def _reads_for_upgrade(aws, before: dict[str, Any], target: str = "pa-020",
                       target_parameters: dict[str, str | None] | None = None) -> None:
    aws.describes(before)
    aws.product(INGEST, "S3 to Feature Store ingestion", INGEST_VERSIONS)
    aws.stack(STACK_PARAMETERS)
    aws.target(target, TARGET_PARAMETERS if target_parameters is None else target_parameters)


def test_upgrade_carries_every_current_value_and_waits_for_the_update(aws) -> None:
    _reads_for_upgrade(aws, project("churn"))
    aws.updates(_update_request(CARRIED))
    aws.describes(project("churn", status="UpdateInProgress", modified=T1))
    aws.describes(project("churn", status="UpdateInProgress", modified=T1))
    aws.describes(project("churn", status="UpdateCompleted", artifact="pa-020", modified=T1))

    assert aws.upgrade() == 0

    assert aws.lines[0] == "churn: s3-fs-ingestion 0.1.0 -> 0.2.0 (pa-020)"
    assert "  keep  TriggerMode=CloudTrail" in aws.lines, "the current value, not the new default S3EventBridge"
    assert "  new   StartIngestionReservedConcurrency (default '0')" in aws.lines
    assert "  drop  ReservedConcurrency (not a parameter of 0.2.0)" in aws.lines
    assert aws.lines[-1] == "  churn: UpdateCompleted at 0.2.0"
    assert aws.clock.now == 30, "polled every 15 s until the update ended"


def test_dry_run_prints_the_plan_and_the_request_and_updates_nothing(aws) -> None:
    _reads_for_upgrade(aws, project("churn"))

    assert aws.upgrade(dry_run=True) == 0

    [request_line] = [line for line in aws.lines if line.startswith("  request: ")]
    assert json.loads(request_line.removeprefix("  request: ")) == _update_request(CARRIED)


def test_a_named_version_and_a_parameter_override(aws) -> None:
    _reads_for_upgrade(aws, project("churn"))
    aws.updates(_update_request({**CARRIED, "TriggerMode": "S3EventBridge", "AlarmEmail": "ml@example.com"}))
    aws.describes(project("churn", status="UpdateCompleted", artifact="pa-020", modified=T1))

    assert aws.upgrade(to_version="0.2.0", parameters=("TriggerMode=S3EventBridge",
                                                       "AlarmEmail=ml@example.com")) == 0

    assert "  set   TriggerMode=S3EventBridge" in aws.lines


def test_a_new_parameter_without_default_needs_a_value(aws) -> None:
    _reads_for_upgrade(aws, project("churn"), target_parameters={**TARGET_PARAMETERS, "NotifyTopicArn": None})
    with pytest.raises(CliError, match=r"adds parameter\(s\) NotifyTopicArn without a default: give each with "
                                       r"--parameter KEY=VALUE"):
        aws.upgrade()


def test_an_older_version_is_refused(aws) -> None:
    aws.describes(project("churn", artifact="pa-020"))
    aws.product(INGEST, "S3 to Feature Store ingestion", INGEST_VERSIONS)
    with pytest.raises(CliError, match="is at 0.2.0; 0.1.0 is older: downgrades are refused"):
        aws.upgrade(to_version="0.1.0")


def test_deprecated_and_unknown_versions_are_refused(aws) -> None:
    aws.describes(project("churn"))
    aws.product(INGEST, "S3 to Feature Store ingestion", INGEST_VERSIONS)
    with pytest.raises(CliError, match="version 0.0.5 of s3-fs-ingestion is deprecated"):
        aws.upgrade(to_version="0.0.5")
    aws.describes(project("churn"))
    aws.product(INGEST, "S3 to Feature Store ingestion", INGEST_VERSIONS)
    with pytest.raises(CliError, match="has no version '9.9.9'"):
        aws.upgrade(to_version="9.9.9")


def test_a_project_at_the_newest_version_is_left_alone(aws) -> None:
    aws.describes(project("churn", artifact="pa-020"))
    aws.product(INGEST, "S3 to Feature Store ingestion", INGEST_VERSIONS)

    assert aws.upgrade() == 0

    assert aws.lines == ["churn: already at 0.2.0"]


@pytest.mark.parametrize("status", ["CreateInProgress", "UpdateInProgress", "DeleteInProgress", "Pending",
                                    "CreateFailed"])
def test_a_project_in_use_is_refused(aws, status) -> None:
    aws.describes(project("churn", status=status))
    aws.product(INGEST, "S3 to Feature Store ingestion", INGEST_VERSIONS)
    with pytest.raises(CliError, match=f"project churn is {status}: update it only once"):
        aws.upgrade()


def test_a_failed_update_is_reported_with_its_reason(aws) -> None:
    _reads_for_upgrade(aws, project("churn"))
    aws.updates(_update_request(CARRIED))
    reason = ("Resource handler returned message: \"Trail quota exceeded\" (RequestToken: 1, HandlerErrorCode: "
              "Throttling)")
    aws.describes(project("churn", status="UpdateFailed", modified=T1, message=reason))

    assert aws.upgrade() == 1

    assert aws.lines[-1] == f"  churn: UpdateFailed: {reason}"


def test_the_status_of_an_earlier_update_is_not_taken_for_this_one(aws) -> None:
    """Retrying after a failed update: until SageMaker reports the new update, DescribeProject still shows the old
    UpdateFailed (same LastModifiedTime); only what follows counts."""
    before = project("churn", status="UpdateFailed", modified=T0, message="the earlier failure")
    _reads_for_upgrade(aws, before)
    aws.updates(_update_request(CARRIED))
    aws.describes(before)
    aws.describes(project("churn", status="UpdateCompleted", artifact="pa-020", modified=T1))

    assert aws.upgrade() == 0

    assert aws.lines[-1] == "  churn: UpdateCompleted at 0.2.0"


def test_an_update_that_outlasts_the_wait_is_reported_as_still_running(aws) -> None:
    _reads_for_upgrade(aws, project("churn"))
    aws.updates(_update_request(CARRIED))
    for _ in range(3):
        aws.describes(project("churn", status="UpdateInProgress", modified=T1))

    assert aws.upgrade(timeout=30) == 1

    assert aws.lines[-1].startswith("  churn: still UpdateInProgress after 30 s: the update goes on")


def test_all_upgrades_the_projects_behind_and_reports_each(aws) -> None:
    churn, fresh = project("churn"), project("fresh", artifact="pa-020", pp="pp-fresh000000001")
    busy = project("busy", status="UpdateInProgress", pp="pp-busy0000000001")
    aws.lists(busy, churn, fresh)
    aws.describes(busy)
    aws.product(INGEST, "S3 to Feature Store ingestion", INGEST_VERSIONS)
    aws.describes(churn)
    aws.describes(fresh)
    aws.stack(STACK_PARAMETERS)
    aws.target("pa-020", TARGET_PARAMETERS)
    aws.updates(_update_request(CARRIED))
    aws.describes(project("churn", status="UpdateCompleted", artifact="pa-020", modified=T1))

    assert aws.upgrade(None) == 1  # one refused

    assert "busy: refused: project busy is UpdateInProgress: update it only once it is not being created, updated " \
           "or deleted" in aws.lines
    assert aws.lines[-1] == "upgrade: 3 project(s) of our products: 1 refused, 1 up to date, 1 upgraded"


def test_a_project_of_another_product_is_not_upgraded(aws) -> None:
    aws.describes(project("other", product=OTHER, artifact="pa-o1"))
    aws.product(OTHER, "Their template", OTHER_VERSIONS)
    with pytest.raises(CliError, match="not one of ours"):
        aws.upgrade("other")


def test_sagemakers_own_parameters_cannot_be_set(capsys) -> None:
    assert main(["projects", "upgrade", "--project", "churn", "--parameter", "SageMakerProjectId=p-x"]) == 2
    assert "SageMaker sets it" in capsys.readouterr().err


def test_project_or_all_is_required(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["projects", "upgrade"])
    assert "one of the arguments --project --all is required" in capsys.readouterr().err


CHANGELOG = """# Changelog

## [0.3.0] - 2027-02-01

### Upgrade

- Launch role changed: no
- Replaces: none

## [0.2.0] - 2027-01-01

### Upgrade

- Launch role changed: yes
- Replaces: none
- Removes: `project-s3-fs-ingestion/TrailBucket` — kept (DeletionPolicy Retain), no longer written to
- Removes: `project-s3-batch-inference/TrailBucket` — another product's template

## [0.1.0] - 2026-11-26

### Upgrade

- Launch role changed: yes
- Replaces: none
"""


def test_the_plan_says_when_sm_policies_must_be_deployed_first(aws) -> None:
    """CHANGELOG.md says per version whether the launch role's policies changed; UpdateProject runs as the launch
    role, so the plan names every version on the way that needs sm-policies first, and what the stack update removes
    or replaces in this project's template."""
    _reads_for_upgrade(aws, project("churn"))

    assert aws.upgrade(dry_run=True, changelog=CHANGELOG) == 0

    notes = [line for line in aws.lines if line.startswith("  note  ")]
    assert notes == [
        "  note  the launch role changed in 0.2.0 (CHANGELOG.md): deploy sm-policies of 0.2.0 before this upgrade, "
        "or the stack update is denied and rolls back",
        "  note  0.2.0: Removes TrailBucket: kept (DeletionPolicy Retain), no longer written to",
    ]


def test_versions_already_passed_are_not_noted(aws) -> None:
    _reads_for_upgrade(aws, project("churn", artifact="pa-020"), target="pa-030",
                       target_parameters=TARGET_PARAMETERS)

    assert aws.upgrade(to_version="0.3.0-rc.1", dry_run=True, changelog=CHANGELOG) == 0

    assert not [line for line in aws.lines if line.startswith("  note  ")]
