"""The batch-inference project's rules, read from the built template, against real event shapes.

Matched with moto's EventBridge pattern matcher (which evaluates prefix, suffix, wildcard and anything-but as
EventBridge does). The upload rule is the ingestion product's, from the same block; the model-approval rule
redeploys the pipeline when a package of the project's group is approved or rejected -- and for no other
group, status or event.
"""

from __future__ import annotations

import copy
import json

import pytest
from lambda_support import BUCKET, OTHER_BUCKET, PREFIX, with_object
from loading import load_event
from moto.events.models import EventPattern

from generators.cfn_resolve import evaluate_conditions, resolve, template_parameters
from generators.products import get

BATCH = get("s3-batch-inference")
INGESTION = get("s3-fs-ingestion")
GROUP = "churn-models"


def _resolved(template: dict, **overrides: str) -> dict:
    values = {
        "SageMakerProjectName": "demo", "SageMakerProjectId": "p-abc123def456", "DataBucketName": BUCKET,
        "DataPrefix": PREFIX, "FeatureGroupName": "abalone", "ModelPackageGroupName": GROUP, **overrides,
    }
    parameters = template_parameters(template, {k: v for k, v in values.items() if k in template["Parameters"]})
    conditions = evaluate_conditions(template, parameters)
    return {
        logical_id: resolve(resource, parameters, conditions)
        for logical_id, resource in template["Resources"].items()
        if conditions.get(resource.get("Condition", ""), True)
    }


def _matcher(resource: dict) -> EventPattern:
    return EventPattern.load(json.dumps(resource["Properties"]["EventPattern"]))


def _state_change(**detail: object) -> dict:
    event = copy.deepcopy(load_event("sagemaker-model-package-approved.json"))
    event["detail"].update(detail)
    return event


MODEL_EVENTS = {
    "approved": (_state_change(), True),
    "rejected": (_state_change(ModelApprovalStatus="Rejected"), True),
    "registered-pending": (_state_change(ModelApprovalStatus="PendingManualApproval"), False),
    "other-group-approved": (_state_change(ModelPackageGroupName="fraud-models"), False),
    "group-name-prefix": (_state_change(ModelPackageGroupName="churn-models-v2"), False),
    "other-source": ({**_state_change(), "source": "custom.sagemaker"}, False),
    "other-detail-type": ({**_state_change(), "detail-type": "SageMaker Model Package Group State Change"}, False),
}


@pytest.mark.parametrize("case", sorted(MODEL_EVENTS))
def test_the_model_approval_rule_matches_only_its_groups_approvals(templates, case) -> None:
    """EventBridge User Guide, SageMaker events: "SageMaker Model Package State Change" carries the package's
    group and approval status."""
    rule = _resolved(templates[BATCH.template_name])["ModelApprovalRule"]
    event, expected = MODEL_EVENTS[case]
    assert _matcher(rule).matches_event(event) is expected


def test_the_model_approval_rule_restarts_the_seed_code_pipeline(templates) -> None:
    resources = _resolved(templates[BATCH.template_name])
    [target] = resources["ModelApprovalRule"]["Properties"]["Targets"]
    pipeline = resources["SeedCodePipeline"]["Properties"]["Name"]
    assert target["Arn"] == "arn:aws:codepipeline:eu-west-1:123456789012:<SeedCodePipeline>"  # Ref of the pipeline
    assert pipeline == "sagemaker-demo-seed-code"
    assert target["RoleArn"].endswith(":role/service-role/AmazonSageMakerServiceCatalogProductsEventsRole")


@pytest.mark.parametrize("trigger", ["S3EventBridge", "CloudTrail"])
@pytest.mark.parametrize("suffix", ["", ".csv"])
def test_the_upload_rule_is_the_ingestion_products_rule(templates, trigger, suffix) -> None:
    """Same block, same pattern: the batch product watches uploads exactly as ingestion does."""
    batch = _resolved(templates[BATCH.template_name], TriggerMode=trigger, DataSuffix=suffix)["UploadRule"]
    ingestion = _resolved(templates[INGESTION.template_name], TriggerMode=trigger, DataSuffix=suffix)["UploadRule"]
    assert batch["Properties"]["EventPattern"] == ingestion["Properties"]["EventPattern"]
    matcher = _matcher(batch)
    base = "cloudtrail-putobject.json" if trigger == "CloudTrail" else "s3-object-created.json"
    assert matcher.matches_event(with_object(load_event(base), key="incoming/scores.csv"))
    for decoy in (with_object(load_event(base), bucket=OTHER_BUCKET), with_object(load_event(base), key="other/x.csv"),
                  with_object(load_event(base), key="incoming-old/x.csv")):
        assert not matcher.matches_event(decoy)


def test_every_upload_reaches_the_pipeline_through_a_manifest(templates) -> None:
    """The transform's ManifestFile input keeps the input's full key in the prediction's path; until a model is
    approved the pipeline does not exist, and the dead-letter message says so."""
    resources = _resolved(templates[BATCH.template_name])
    variables = resources["StartIngestionFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["START_WITH_MANIFEST"] == "always"
    assert GROUP in variables["MISSING_PIPELINE_HINT"] and "Approved" in variables["MISSING_PIPELINE_HINT"]
    ingestion = _resolved(templates[INGESTION.template_name])["StartIngestionFunction"]
    assert "START_WITH_MANIFEST" not in ingestion["Properties"]["Environment"]["Variables"]
