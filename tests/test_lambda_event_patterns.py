"""The upload rule's event pattern, read from the built project template, against real event shapes.

For both trigger modes, with and without a suffix filter, the pattern is resolved the way
CloudFormation would (generators.cfn_resolve) and evaluated with moto's EventBridge matcher. The same
events go through the handler with the same configuration: what the rule delivers starts exactly one
execution, and what the handler rejects for its bucket, prefix or suffix never matches the rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import yaml
from lambda_support import (
    BUCKET,
    CLOUDTRAIL_STARTS,
    OTHER_BUCKET,
    PREFIX,
    S3_STARTS,
    SageMakerStub,
    load_app,
    set_lambda_env,
    with_object,
)
from loading import load_event
from moto.events.models import EventPattern

from generators.cfn_resolve import evaluate_conditions, resolve, template_parameters
from generators.products.s3_fs_ingestion import PRODUCT as INGESTION

PROJECT_TEMPLATE = INGESTION.template_name

RULE_ID = "UploadRule"
SUFFIX = ".csv"
CLOUDTRAIL, S3 = "CloudTrail", "S3EventBridge"  # the template's TriggerMode values
CONFIGS = [(CLOUDTRAIL, ""), (CLOUDTRAIL, SUFFIX), (S3, ""), (S3, SUFFIX)]
CONFIG_IDS = [f"{trigger}-{'suffix' if suffix else 'no-suffix'}" for trigger, suffix in CONFIGS]
# Reasons the handler shares with the rule: for these the pattern must not match either.
LOCATION_REASONS = ("not the watched bucket", "outside the watched prefix", "does not end with")


@dataclass(frozen=True)
class Case:
    make: Callable[[], dict]
    shape: str  # the trigger mode whose rule may deliver it
    matches: bool  # under the watched location, without a suffix filter
    matches_with_suffix: bool  # ... and with DataSuffix=".csv"
    rule_superset: str = ""  # the rule delivers it, the handler ignores it (the pattern cannot tell)

    def expected(self, trigger: str, suffix: str) -> bool:
        return self.shape == trigger and (self.matches_with_suffix if suffix else self.matches)


def _fixture(name: str, **changes: str) -> Callable[[], dict]:
    return lambda: with_object(load_event(name), **changes)


def _cases() -> dict[str, Case]:
    cases = {name.removesuffix(".json"): Case(_fixture(name), CLOUDTRAIL, True, True)
             for name in CLOUDTRAIL_STARTS}
    cases.update({name.removesuffix(".json"): Case(_fixture(name), S3, True, True) for name in S3_STARTS})
    for shape, base in ((CLOUDTRAIL, "cloudtrail-putobject.json"), (S3, "s3-object-created.json")):
        tag = "cloudtrail" if shape == CLOUDTRAIL else "s3"
        cases.update({
            f"{tag}-nested-folder": Case(_fixture(base, key="incoming/2025/03/part-0001.csv"), shape, True, True),
            f"{tag}-other-extension": Case(_fixture(base, key="incoming/notes.json"), shape, True, False),
            f"{tag}-suffix-other-case": Case(_fixture(base, key="incoming/data.CSV"), shape, True, False),
            f"{tag}-suffix-not-at-end": Case(_fixture(base, key="incoming/data.csv.bak"), shape, True, False),
            f"{tag}-other-bucket": Case(_fixture(base, bucket=OTHER_BUCKET), shape, False, False),
            f"{tag}-sibling-prefix": Case(_fixture(base, key="incoming-old/data.csv"), shape, False, False),
            f"{tag}-prefix-without-slash": Case(_fixture(base, key="incomingdata.csv"), shape, False, False),
            f"{tag}-prefix-other-case": Case(_fixture(base, key="Incoming/data.csv"), shape, False, False),
            f"{tag}-prefix-deeper": Case(_fixture(base, key="archive/incoming/data.csv"), shape, False, False),
        })
    cases.update({
        "cloudtrail-getobject": Case(_fixture("cloudtrail-getobject.json"), CLOUDTRAIL, False, False),
        "cloudtrail-deleteobject": Case(_fixture("cloudtrail-deleteobject.json"), CLOUDTRAIL, False, False),
        "cloudtrail-failed-putobject": Case(_fixture("cloudtrail-putobject-accessdenied.json"), CLOUDTRAIL,
                                            False, False),
        "s3-object-deleted": Case(_fixture("s3-object-deleted.json"), S3, False, False),
        "s3-folder-marker": Case(_fixture("s3-object-created-folder-marker.json"), S3, False, False),
        "s3-empty-object": Case(_fixture("s3-object-created-empty.json"), S3, False, False),
        # CloudTrail events carry no object size, and EventBridge cannot AND a prefix with an
        # "anything-but suffix /" on one field: the rule delivers these, the handler drops them.
        "cloudtrail-folder-marker": Case(_fixture("cloudtrail-putobject-folder-marker.json"), CLOUDTRAIL,
                                         True, False, rule_superset="folder marker"),
        "cloudtrail-empty-object": Case(_fixture("cloudtrail-putobject-empty.json"), CLOUDTRAIL,
                                        True, True, rule_superset="empty object"),
    })
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def project_template(built) -> dict:
    """The template exactly as written to build/ by the session's build (long-form YAML)."""
    path = built.templates[PROJECT_TEMPLATE]
    assert path.name == "project-s3-fs-ingestion.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def upload_pattern(template: dict, trigger: str, suffix: str) -> dict:
    parameters = template_parameters(template, {
        "SageMakerProjectName": "demo", "SageMakerProjectId": "p-abc123def456",
        "FeatureGroupName": "abalone", "DataBucketName": BUCKET, "DataPrefix": PREFIX,
        "DataSuffix": suffix, "TriggerMode": trigger,
    })
    rule = template["Resources"][RULE_ID]
    assert rule["Type"] == "AWS::Events::Rule"
    return resolve(rule["Properties"]["EventPattern"], parameters, evaluate_conditions(template, parameters))


@pytest.fixture(scope="module")
def patterns(project_template) -> dict[tuple[str, str], EventPattern]:
    return {
        (trigger, suffix): EventPattern.load(json.dumps(upload_pattern(project_template, trigger, suffix)))
        for trigger, suffix in CONFIGS
    }


@pytest.mark.parametrize(("trigger", "suffix"), CONFIGS, ids=CONFIG_IDS)
def test_resolved_pattern_filters_bucket_and_key(project_template, trigger, suffix):
    pattern = upload_pattern(project_template, trigger, suffix)
    detail = pattern["detail"]
    if trigger == CLOUDTRAIL:
        bucket, key = detail["requestParameters"]["bucketName"], detail["requestParameters"]["key"]
        assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    else:
        bucket, key = detail["bucket"]["name"], detail["object"]["key"]
        assert pattern["detail-type"] == ["Object Created"]
    assert bucket == [BUCKET]
    assert key == ([{"wildcard": f"{PREFIX}*{suffix}"}] if suffix else [{"prefix": PREFIX}])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("trigger", "suffix"), CONFIGS, ids=CONFIG_IDS)
def test_rule_matches_exactly_the_uploads_to_process(patterns, trigger, suffix, case):
    spec = CASES[case]
    assert patterns[trigger, suffix].matches_event(spec.make()) is spec.expected(trigger, suffix)


@pytest.fixture
def handler(monkeypatch):
    """Run the handler with a given configuration; returns (result, SageMaker requests)."""
    app = load_app()
    stubs: list[SageMakerStub] = []

    def run(event: dict, suffix: str) -> tuple[dict, list[dict]]:
        set_lambda_env(monkeypatch, suffix=suffix)
        stub = SageMakerStub()
        stubs.append(stub)
        stub.will_start()
        monkeypatch.setattr(app, "_sagemaker_client", lambda: stub.client)
        return app.lambda_handler(event, None), stub.requests

    yield run
    for stub in stubs:
        stub.close()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("trigger", "suffix"), CONFIGS, ids=CONFIG_IDS)
def test_rule_and_handler_agree(patterns, handler, trigger, suffix, case):
    spec = CASES[case]
    event = spec.make()
    matched = patterns[trigger, suffix].matches_event(event)
    result, requests = handler(event, suffix)

    if matched and not spec.rule_superset:
        assert result["status"] == "started" and len(requests) == 1, result
    elif matched:
        assert result["status"] == "ignored" and spec.rule_superset in result["reason"]
        assert requests == []
    if result["status"] == "ignored" and any(r in result["reason"] for r in LOCATION_REASONS):
        assert not matched, f"the rule delivers what the handler rejects: {result['reason']}"
    if spec.shape == trigger and result["status"] == "started":
        assert matched, "the handler would start it, but the rule never delivers it"

