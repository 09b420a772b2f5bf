"""What AWS refuses at deploy time although cfn-lint (the registry schemas) and moto accept it.

One test per documented constraint, each naming the AWS document it models. The project template is
resolved offline (``generators.cfn_resolve``) for every combination of its conditions, so conditional
resources are checked too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.session
import pytest

from generators.cfn_resolve import resolve_template
from generators.data_wrangler import DATA_WRANGLER_IMAGE_VERSION, DATA_WRANGLER_REGIONS
from security.scenarios import scenarios

PROJECT = "project-s3-fs-ingestion"
SAMPLE = {
    "SageMakerProjectName": "Churn-Features1",
    "SageMakerProjectId": "p-abcdefghijkl",
    "DataBucketName": "my-data-bucket",
    "FeatureGroupName": "abalone",
}


def _resolved(templates, **parameters) -> dict:
    return resolve_template(templates[PROJECT], {**SAMPLE, **parameters})["Resources"]


def _all_resources(templates):
    for name, template in sorted(templates.items()):
        for scenario in scenarios(name, template):
            for logical_id, resource in scenario.resources.items():
                yield scenario.label, logical_id, resource


# --- S3 lifecycle rules ----------------------------------------------------------------------------

# AWS::S3::Bucket Rule (CloudFormation Template Reference): "You must specify at least one of the
# following properties: AbortIncompleteMultipartUpload, ExpirationDate, ExpirationInDays,
# NoncurrentVersionExpirationInDays, NoncurrentVersionTransition, NoncurrentVersionTransitions,
# Transition, or Transitions." A rule with ExpiredObjectDeleteMarker alone passes cfn-lint and moto and
# fails the stack (aws-cloudformation/cloudformation-coverage-roadmap#1124).
LIFECYCLE_ACTIONS = {
    "AbortIncompleteMultipartUpload",
    "ExpirationDate",
    "ExpirationInDays",
    "NoncurrentVersionExpiration",
    "NoncurrentVersionExpirationInDays",
    "NoncurrentVersionTransition",
    "NoncurrentVersionTransitions",
    "Transition",
    "Transitions",
}


def lifecycle_problems(rule: dict) -> list[str]:
    """What CloudFormation's S3 handler or S3 itself refuses in one lifecycle rule."""
    problems = []
    if not LIFECYCLE_ACTIONS & set(rule):
        problems.append("no expiration, transition or abort action (CloudFormation rejects the rule)")
    # S3 API LifecycleExpiration: ExpiredObjectDeleteMarker "cannot be specified with Days or Date".
    if rule.get("ExpiredObjectDeleteMarker") and {"ExpirationInDays", "ExpirationDate"} & set(rule):
        problems.append("ExpiredObjectDeleteMarker beside ExpirationInDays/ExpirationDate (S3 rejects it)")
    # S3 API LifecycleRule: an AbortIncompleteMultipartUpload action cannot apply to a tag-based filter.
    if "AbortIncompleteMultipartUpload" in rule and ("TagFilters" in rule or "Tags" in rule.get("Filter", {})):
        problems.append("AbortIncompleteMultipartUpload with a tag filter (S3 rejects it)")
    if len(rule.get("Id", "")) > 255:
        problems.append("Id longer than 255 characters")
    return problems


def test_the_lifecycle_model_rejects_what_aws_rejects() -> None:
    """The check itself can fail: the rule the previous version shipped is refused."""
    assert lifecycle_problems({"Id": "RemoveExpiredDeleteMarkers", "Status": "Enabled",
                               "ExpiredObjectDeleteMarker": True})
    assert lifecycle_problems({"Id": "X", "Status": "Enabled", "ExpiredObjectDeleteMarker": True,
                               "ExpirationInDays": 30})
    assert not lifecycle_problems({"Id": "X", "Status": "Enabled", "ExpiredObjectDeleteMarker": True,
                                   "NoncurrentVersionExpiration": {"NoncurrentDays": 30}})


def test_every_lifecycle_rule_of_every_bucket_is_deployable(templates) -> None:
    checked = 0
    for label, logical_id, resource in _all_resources(templates):
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        rules = resource["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
        ids = [rule["Id"] for rule in rules]
        assert len(ids) == len(set(ids)), (label, logical_id, ids)
        for rule in rules:
            assert not lifecycle_problems(rule), (label, logical_id, rule, lifecycle_problems(rule))
            checked += 1
    assert checked >= 8, "expected the artifact and trail buckets' rules"


def test_expired_delete_markers_are_still_removed_on_versioned_buckets(templates) -> None:
    """Folding the delete-marker cleanup into the noncurrent-versions rule keeps the behaviour."""
    for logical_id in ("ArtifactBucket", "TrailBucket"):
        bucket = _resolved(templates, TriggerMode="CloudTrail")[logical_id]["Properties"]
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
        rules = bucket["LifecycleConfiguration"]["Rules"]
        [cleanup] = [rule for rule in rules if rule.get("ExpiredObjectDeleteMarker")]
        assert "Prefix" not in cleanup and "NoncurrentVersionExpiration" in cleanup


# --- quotas ---------------------------------------------------------------------------------------

LAMBDA_MIN_UNRESERVED = 100  # Lambda Developer Guide, "Lambda quotas" / "Configuring reserved concurrency"


def reservation_fits(account_concurrency_quota: int, reserved_elsewhere: int, reservation: int | None) -> bool:
    """PutFunctionConcurrency fails when it would leave fewer than 100 unreserved executions."""
    if reservation is None:
        return True
    return account_concurrency_quota - reserved_elsewhere - reservation >= LAMBDA_MIN_UNRESERVED


@pytest.mark.parametrize("quota", [10, 50, 1000])
def test_the_default_project_reserves_no_lambda_concurrency(templates, quota) -> None:
    """New accounts start with a concurrency quota of 10 to 50: any reservation would fail the stack there."""
    for name in ("StartIngestionFunction", "DataBucketEventsFunction"):
        reservation = _resolved(templates)[name]["Properties"].get("ReservedConcurrentExecutions")
        assert reservation is None
        assert reservation_fits(quota, 0, reservation)
    assert not reservation_fits(50, 0, 10), "the previous fixed reservation of 10 fails in such accounts"


def test_a_reservation_is_an_explicit_choice(templates) -> None:
    function = _resolved(templates, StartIngestionReservedConcurrency="25")["StartIngestionFunction"]
    assert function["Properties"]["ReservedConcurrentExecutions"] == "25"
    description = templates[PROJECT]["Parameters"]["StartIngestionReservedConcurrency"]["Description"]
    assert "100" in description


TRAILS_PER_REGION = 5  # CloudTrail User Guide, "Quotas in AWS CloudTrail": trails per Region, not adjustable


def test_the_default_trigger_creates_no_trail_so_projects_do_not_hit_the_trail_quota(templates) -> None:
    parameters = templates[PROJECT]["Parameters"]
    assert parameters["TriggerMode"]["Default"] == "S3EventBridge"
    assert str(TRAILS_PER_REGION) in parameters["TriggerMode"]["Description"]
    trails_per_project = sum(r["Type"] == "AWS::CloudTrail::Trail" for r in _resolved(templates).values())
    existing = TRAILS_PER_REGION  # an account whose Region already holds the maximum
    assert trails_per_project == 0 and existing + trails_per_project <= TRAILS_PER_REGION
    cloudtrail_mode = _resolved(templates, TriggerMode="CloudTrail")
    assert sum(r["Type"] == "AWS::CloudTrail::Trail" for r in cloudtrail_mode.values()) == 1


# --- names ----------------------------------------------------------------------------------------


def _sagemaker_shape(name: str) -> dict:
    return botocore.session.get_session().get_service_model("sagemaker").shape_for(name).metadata


def test_project_name_parameter_is_exactly_sagemakers_pattern(templates) -> None:
    """CreateProject's ProjectName is botocore's ProjectEntityName: the template must accept every such name
    (SageMaker passes it as SageMakerProjectName) and nothing else."""
    shape = _sagemaker_shape("ProjectEntityName")
    spec = templates[PROJECT]["Parameters"]["SageMakerProjectName"]
    assert spec["AllowedPattern"] == shape["pattern"]
    assert (spec["MinLength"], spec["MaxLength"]) == (shape["min"], shape["max"])
    for name in ("2024-ingest", "a--b", "0", "A" * 32, "x-1"):
        assert re.fullmatch(spec["AllowedPattern"], name), name
    for name in ("-a", "a-", "a_b", "A" * 33, ""):
        assert not (re.fullmatch(spec["AllowedPattern"], name) and len(name) <= spec["MaxLength"]), name


def test_project_id_parameter_accepts_what_sagemaker_generates(templates) -> None:
    shape = _sagemaker_shape("ProjectId")
    spec = templates[PROJECT]["Parameters"]["SageMakerProjectId"]
    assert spec["MaxLength"] <= shape["max"]
    assert re.fullmatch(spec["AllowedPattern"], "p-abcdefghijkl")


# --- Region availability --------------------------------------------------------------------------


def test_data_wrangler_regions_are_those_of_the_pinned_sdk() -> None:
    """The Rule refusing DataWranglerFlow outside these Regions must follow the SDK the seed code pins."""
    import sagemaker.core

    config = Path(sagemaker.core.__file__).parent / "image_uri_config" / "data-wrangler.json"
    versions = json.loads(config.read_text(encoding="utf-8"))["processing"]["versions"]
    assert set(DATA_WRANGLER_REGIONS) == set(versions[DATA_WRANGLER_IMAGE_VERSION]["registries"])


def test_data_wrangler_mode_is_refused_where_the_image_does_not_exist(templates) -> None:
    rule = templates[PROJECT]["Rules"]["DataWranglerNeedsFlow"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "TransformMode"}, "DataWranglerFlow"]}
    [contains] = [a["Assert"]["Fn::Contains"] for a in rule["Assertions"] if "Fn::Contains" in a["Assert"]]
    assert contains == [list(DATA_WRANGLER_REGIONS), {"Ref": "AWS::Region"}]
    assert "eu-south-2" not in contains[0] and "eu-west-1" in contains[0]


def test_data_wrangler_flows_must_live_where_the_codebuild_role_can_read_them(templates) -> None:
    """AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy lets the project's CodeBuild role read
    s3://sagemaker-* and s3://aws-glue-* only: any other flow URL would fail the build with AccessDenied."""
    pattern = templates[PROJECT]["Parameters"]["DataWranglerFlowUrl"]["AllowedPattern"]
    for url in ("", "s3://sagemaker-eu-west-1-111122223333/flows/a.flow", "s3://aws-glue-assets/x/y.flow"):
        assert re.fullmatch(pattern, url), url
    for url in ("s3://my-data-bucket/flows/a.flow", "s3://sagemakerdata/a.flow", "https://sagemaker-x/a.flow"):
        assert not re.fullmatch(pattern, url), url


# --- IAM quotas -----------------------------------------------------------------------------------

# IAM User Guide, "IAM and AWS STS quotas": managed policy size 6,144 characters; inline policies of a role
# 10,240 characters in aggregate; 10 managed policies attached to a role (default quota). White space is
# not counted. The previous single LaunchRolePolicy reached 6,936 characters: CreatePolicy would have failed.
MANAGED_POLICY_SIZE = 6144
ROLE_INLINE_POLICIES_SIZE = 10240
MANAGED_POLICIES_PER_ROLE = 10
WORST_CASE_PSEUDO = {"AWS::Partition": "aws-us-gov", "AWS::Region": "ap-southeast-7", "AWS::AccountId": "123456789012"}


def _size(document: dict) -> int:
    return len("".join(json.dumps(document, separators=(",", ":")).split()))


@pytest.fixture
def worst_case_region(monkeypatch):
    from generators import cfn_resolve

    for name, value in WORST_CASE_PSEUDO.items():
        monkeypatch.setitem(cfn_resolve.PSEUDO_DEFAULTS, name, value)


def test_every_managed_policy_fits_the_size_quota(templates, worst_case_region) -> None:
    sizes = {}
    for label, logical_id, resource in _all_resources(templates):
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            sizes[(label, logical_id)] = _size(resource["Properties"]["PolicyDocument"])
    assert sizes and max(sizes.values()) <= MANAGED_POLICY_SIZE, {k: v for k, v in sizes.items() if v > 6000}
    assert _size({"Statement": ["x" * MANAGED_POLICY_SIZE]}) > MANAGED_POLICY_SIZE  # the check can fail


def test_every_role_keeps_its_inline_policies_and_attachments_within_quota(templates, worst_case_region) -> None:
    attached: dict[str, set[str]] = {}
    for label, logical_id, resource in _all_resources(templates):
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            inline = sum(_size(policy["PolicyDocument"]) for policy in props.get("Policies", []))
            assert inline <= ROLE_INLINE_POLICIES_SIZE, (label, logical_id, inline)
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            for role in props.get("Roles", []):
                attached.setdefault(role, set()).add(logical_id)
    # The AWS-managed policies SageMaker attaches to each project role take one place each (launch, CodeBuild).
    for role, policies in attached.items():
        assert len(policies) + 1 <= MANAGED_POLICIES_PER_ROLE, (role, sorted(policies))


def test_templates_deployed_from_a_file_fit_cloudformations_body_limit(built) -> None:
    """CloudFormation API reference, CreateStack TemplateBody: 51,200 bytes. The admin deploys sm-policies and
    the portfolio with `aws cloudformation deploy --template-file`, which sends the body; project templates go
    through Service Catalog from S3 (TemplateURL, 1 MB)."""
    for name in ("sm-policies", "sm-project-sc-portfolio"):
        assert built.templates[name].stat().st_size <= 51_200, name
    for name, path in built.templates.items():
        assert path.stat().st_size <= 1_000_000, name
