"""Names stay valid for every project name and id the SageMaker contract allows, in every registered product."""

from __future__ import annotations

import re

import pytest

from generators.cfn_resolve import resolve_template
from generators.names import ProjectNames, check_budgets
from generators.products import products
from generators.settings import PROJECT_ID_MAX, PROJECT_NAME_MAX, SettingsError

BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
NAME_CASES = [
    ("A" * PROJECT_NAME_MAX, "p-" + "a" * (PROJECT_ID_MAX - 2)),  # longest, uppercase
    ("MyProject-X1" + "b" * 20, "p-abcdefghijkl"),  # mixed case, 32 characters
    ("a", "p-1"),  # shortest
    ("2024-ingest", "p-abcdefghijkl"),  # starts with a digit (SageMaker's ProjectEntityName allows it)
    ("0", "p-0"),
    ("a--b---c" + "9" * 24, "p-abcdefghijkl"),  # adjacent hyphens, 32 characters
]
# CloudTrail User Guide, "CloudTrail trail naming requirements": letters, digits, periods, underscores and
# hyphens; starts and ends with a letter or digit; 3-128 characters; no adjacent periods, underscores or
# hyphens ("my--namespace" is not valid).
TRAIL_NAME = re.compile(r"^(?!.*[._-]{2})[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]$")
REGIONS = ["eu-west-1", "ap-southeast-7", "us-gov-west-1", "cn-northwest-1"]
# (resource type, name property) -> (limit, pattern), from each service's API reference.
NAME_RULES = {
    ("AWS::S3::Bucket", "BucketName"): (63, BUCKET.pattern.strip("^$")),
    ("AWS::IAM::Role", "RoleName"): (64, r"[\w+=,.@-]+"),
    ("AWS::Lambda::Function", "FunctionName"): (64, r"[a-zA-Z0-9-_]+"),
    ("AWS::Events::Rule", "Name"): (64, r"[.\-_A-Za-z0-9]+"),
    ("AWS::SQS::Queue", "QueueName"): (80, r"[a-zA-Z0-9_-]+"),
    ("AWS::CodeBuild::Project", "Name"): (150, r"[A-Za-z0-9][A-Za-z0-9\-_]{1,254}"),
    ("AWS::CodePipeline::Pipeline", "Name"): (100, r"[A-Za-z0-9.@\-_]+"),
    ("AWS::CodeCommit::Repository", "RepositoryName"): (100, r"[\w.-]+"),
    ("AWS::CloudTrail::Trail", "TrailName"): (128, TRAIL_NAME.pattern.strip("^$")),
    ("AWS::Logs::LogGroup", "LogGroupName"): (512, r"[.\-_/#A-Za-z0-9]+"),
    # SNS CreateTopic: "uppercase and lowercase ASCII letters, numbers, underscores, and hyphens", 1-256.
    ("AWS::SNS::Topic", "TopicName"): (256, r"[A-Za-z0-9_-]+"),
    # CloudWatch PutMetricAlarm: AlarmName 1-255 characters (no control characters).
    ("AWS::CloudWatch::Alarm", "AlarmName"): (255, r"[^\x00-\x1f\x7f]+"),
    # CloudWatch Logs PutMetricFilter: filterName 1-512, pattern [^:*]*.
    ("AWS::Logs::MetricFilter", "FilterName"): (512, r"[^:*]+"),
}
PRODUCTS = {product.slug: product for product in products()}


def _resources(templates, product, name, project_id, region="eu-west-1"):
    template = templates[product.template_name]
    params = {
        **product.sample_parameters,
        "SageMakerProjectName": name,
        "SageMakerProjectId": project_id,
        "TriggerMode": "CloudTrail",  # every resource, the trail included
        "SourceProvider": "CodeCommit",
    }
    params = {k: v for k, v in params.items() if k in template["Parameters"]}
    from generators import cfn_resolve

    original = dict(cfn_resolve.PSEUDO_DEFAULTS)
    cfn_resolve.PSEUDO_DEFAULTS["AWS::Region"] = region
    try:
        return resolve_template(template, params)["Resources"]
    finally:
        cfn_resolve.PSEUDO_DEFAULTS.clear()
        cfn_resolve.PSEUDO_DEFAULTS.update(original)


@pytest.mark.parametrize("slug", sorted(PRODUCTS))
@pytest.mark.parametrize(("name", "project_id"), NAME_CASES)
@pytest.mark.parametrize("region", REGIONS)
def test_every_name_is_valid(templates, slug, name, project_id, region) -> None:
    product = PRODUCTS[slug]
    parameters = templates[product.template_name]["Parameters"]
    assert re.fullmatch(parameters["SageMakerProjectName"]["AllowedPattern"], name)
    assert len(name) <= parameters["SageMakerProjectName"]["MaxLength"]
    assert re.fullmatch(parameters["SageMakerProjectId"]["AllowedPattern"], project_id)
    checked = 0
    for logical_id, resource in _resources(templates, product, name, project_id, region).items():
        for (resource_type, prop), (limit, pattern) in NAME_RULES.items():
            value = resource.get("Properties", {}).get(prop)
            if resource["Type"] == resource_type and value is not None:
                assert len(value) <= limit and re.fullmatch(pattern, value), (logical_id, value)
                checked += 1
    assert checked >= 10, f"{slug}: expected the project's named resources"


@pytest.mark.parametrize("slug", sorted(PRODUCTS))
def test_the_pipeline_is_named_after_the_lowercase_project_id(templates, slug) -> None:
    product = PRODUCTS[slug]
    resources = _resources(templates, product, "MyProject", "p-abcdefghijkl")
    pipeline = resources["StartIngestionFunction"]["Properties"]["Environment"]["Variables"]["PIPELINE_NAME"]
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}", pipeline)
    assert pipeline == pipeline.lower(), "pipeline ARNs are lowercase: the IAM policy must name it exactly"


def test_the_trail_name_check_rejects_adjacent_hyphens() -> None:
    """The project name "a--b" is valid for SageMaker but would make an invalid trail name."""
    assert not TRAIL_NAME.match("sagemaker-a--b-uploads")
    assert TRAIL_NAME.match("sagemaker-p-abcdefghijkl-uploads")


def test_budget_check_rejects_a_name_that_could_overflow() -> None:
    class TooLong(ProjectNames):
        @property
        def artifact_bucket(self) -> str:
            return "sagemaker-${SageMakerProjectName}-${SageMakerProjectId}-artifacts-${AWS::AccountId}"

    with pytest.raises(SettingsError, match="artifact_bucket can reach"):
        check_budgets(TooLong(short="x", suffix="y"))
    for product in products():
        check_budgets(product.names)


@pytest.mark.parametrize("slug", sorted(PRODUCTS))
def test_bucket_names_do_not_use_the_mixed_case_project_name(slug) -> None:
    names = PRODUCTS[slug].names
    assert "${SageMakerProjectName}" not in names.artifact_bucket + names.trail_bucket
