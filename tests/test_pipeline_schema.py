"""The seed code's SageMaker pipeline definitions against AWS's published pipeline definition JSON schema.

The schema (tests/pipeline_schema/, source and retrieval date in its SOURCE.md) is AWS's description of
the definition document that CreatePipeline/UpdatePipeline accept; it lags the API in places. Both
transform modes are rendered (each definition holds both input paths: the object step and the manifest
step), the null root keys the SDK emits are dropped, the document is validated, and what remains must be
exactly the deviations listed in ACCEPTED, each with the reason the API accepts it. A new deviation fails
this test, and so does an accepted one that no longer occurs (the list must not go stale).

The definitions are rendered in a separate interpreter, from the seed code's directory: the SageMaker SDK
reads its region and configuration when it is imported, and the seed code must not be imported into this
project's test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = REPO_ROOT / "seed-code" / "s3-fs-ingestion"
SCHEMA = Path(__file__).resolve().parent / "pipeline_schema" / "pipeline-definition.schema.json"
MODES = ("Script", "DataWranglerFlow")

RENDER = """
import json, sys
import boto3
from moto import mock_aws

with mock_aws():  # nothing reaches AWS while the definitions are built
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from pipelines.pipeline import DATA_WRANGLER_FLOW, SCRIPT, PipelineSettings, build_pipeline, definition

    session = PipelineSession(boto_session=boto3.session.Session(region_name="eu-west-1"))
    common = dict(name="s3-fs-ingest-demo", role_arn="arn:aws:iam::123456789012:role/project-execution-role",
                  region="eu-west-1", feature_group_name="abalone", instance_type="ml.m5.xlarge",
                  instance_count=2, artifact_bucket="artifact-bucket")
    with open("tests/data/abalone.flow", encoding="utf-8") as handle:
        flow = json.load(handle)
    script = PipelineSettings(**common, code_s3_uri="s3://artifact-bucket/pipeline-code/0123456789abcdef/")
    wrangler = PipelineSettings(**common, transform_mode=DATA_WRANGLER_FLOW,
                                flow_s3_uri="s3://sagemaker-eu-west-1-123456789012/flows/abalone.flow", flow=flow,
                                flow_output_name="7e3f1c2d-5b4a-4f6e-8d9c-0a1b2c3d4e5f.default")
    documents = {SCRIPT: definition(build_pipeline(script, session)),
                 DATA_WRANGLER_FLOW: definition(build_pipeline(wrangler, session))}
json.dump(documents, sys.stdout)
"""

# (step type, where in the step, what failed) -> (the modes it occurs in, why the API accepts it)
ACCEPTED: dict[tuple[str, str, str], tuple[frozenset[str], str]] = {
    ("Processing", "RetryPolicies/*/ExceptionType", "type"): (frozenset(MODES), (
        "the schema wants one string; the API takes a list: 'Retry Policy for Pipeline Steps' (SageMaker "
        "developer guide) gives the JSON schema \"ExceptionType\": [String] and its examples use lists; the "
        "SDK's StepRetryPolicy/SageMakerJobStepRetryPolicy emit lists")),
    ("Processing", "RetryPolicies/*/ExceptionType", "enum"): (frozenset(MODES), (
        "the same list, checked against the enum of single strings; every item is one of the schema's values "
        "(asserted below)")),
    ("Processing", "Arguments/ProcessingOutputConfig/Outputs/*/S3Output/S3Uri", "oneOf Std:Join"): (
        frozenset({"Script"}), (
            "the failed-rows output URI joins the bucket and the execution id with the Std:Join function "
            "(SDK sagemaker.core.workflow.functions.Join, documented with the pipeline functions); the schema's "
            "StringArgumentValue knows only strings and Get")),
    ("Processing", "Arguments/ProcessingOutputConfig/Outputs/*", "additionalProperties AppManaged,FeatureStoreOutput"):
        (frozenset({"DataWranglerFlow"}), (
            "ProcessingOutput.AppManaged and ProcessingOutput.FeatureStoreOutput are fields of the "
            "CreateProcessingJob API (API reference, ProcessingOutput) that AWS's Data Wrangler -> Feature Store "
            "exports use; the schema predates them")),
    ("Condition", "Arguments/Conditions/*", "oneOf Not"): (frozenset(MODES), (
        "{\"Type\": \"Not\", \"Condition\": {...}} is what the SDK's ConditionNot emits (the form the service "
        "accepts since aws/sagemaker-python-sdk#2746 replaced the rejected 'Expression' key); the schema lists "
        "Equals/NotEquals-style binary conditions, In and Or only")),
}


@pytest.fixture(scope="module")
def definitions() -> dict[str, dict]:
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("AWS_", "SAGEMAKER_", "PYTEST_"))}
    environment.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "PYTHONPATH": str(SEED_DIR),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(SEED_DIR / "tests" / "sagemaker-config.yaml"),
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(SEED_DIR / "tests" / "sagemaker-config.yaml"),
    })
    completed = subprocess.run(
        [sys.executable, "-c", RENDER], cwd=SEED_DIR, env=environment, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def without_null_root_keys(document: dict) -> dict:
    """The SDK emits e.g. "PipelineExperimentConfig": null and "MlflowConfig": null; the schema allows no null
    root values (and no unknown root keys), and an absent key means the same to the service."""
    return {key: value for key, value in document.items() if value is not None}


def leaves(error: ValidationError):
    """The errors that explain ``error``. A oneOf/anyOf over alternatives discriminated by a ``Type`` enum
    (steps, conditions, parameters) is explained by the errors of the one alternative whose Type matches;
    any other oneOf/anyOf is itself the explanation."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        by_alternative: dict[object, list[ValidationError]] = {}
        for sub in error.context:
            by_alternative.setdefault(sub.relative_schema_path[0], []).append(sub)
        depth = len(error.absolute_path)

        def type_mismatch(subs: list[ValidationError]) -> bool:
            return any(s.validator == "enum" and list(s.absolute_path)[depth:] == ["Type"] for s in subs)

        matching = [subs for subs in by_alternative.values() if not type_mismatch(subs)]
        if len(matching) == 1:
            for sub in matching[0]:
                yield from leaves(sub)
            return
    yield error


def deviation(error: ValidationError, document: dict) -> tuple[str, str, str]:
    """(step type, path inside the step with indices as *, what failed) of a leaf error."""
    path = list(error.absolute_path)
    step, start = None, 0
    node: object = document
    for position, part in enumerate(path):
        node = node[part]  # type: ignore[index]
        if position >= 1 and path[position - 1] in ("Steps", "IfSteps", "ElseSteps") and isinstance(part, int):
            step, start = node, position + 1
    inside = "/".join("*" if isinstance(part, int) else str(part) for part in path[start:])
    what = str(error.validator)
    instance = error.instance
    if what == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        what += " " + ",".join(sorted(set(instance) - allowed))
    elif what in ("oneOf", "anyOf") and isinstance(instance, dict):
        what += " " + str(instance.get("Type") or ",".join(sorted(instance)))
    return (step or {}).get("Type", "<root>"), inside, what  # type: ignore[union-attr]


def schema_deviations(document: dict) -> tuple[Counter, list[ValidationError]]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = Draft7Validator(schema)
    errors = [leaf for error in validator.iter_errors(document) for leaf in leaves(error)]
    return Counter(deviation(error, document) for error in errors), errors


@pytest.mark.slow
def test_both_modes_validate_against_the_schema_but_for_the_accepted_deviations(definitions: dict) -> None:
    assert set(definitions) == set(MODES)
    report = []
    for mode in MODES:
        document = without_null_root_keys(definitions[mode])
        step_types = Counter(step["Type"] for step in document["Steps"])
        assert step_types == {"Condition": 3}  # the routing; the processing and fail steps sit in branches
        found, errors = schema_deviations(document)
        expected = {key for key, (modes, _) in ACCEPTED.items() if mode in modes}
        new = sorted(set(found) - expected)
        stale = sorted(expected - set(found))
        assert not new, f"{mode}: deviations from the published schema that are not accepted: {new}\n" + "\n".join(
            f"  {list(e.absolute_path)}: {e.message[:300]}" for e in errors if deviation(e, document) in new)
        assert not stale, f"{mode}: accepted deviations that no longer occur (remove them from ACCEPTED): {stale}"
        report.append(f"{mode}: {len(errors)} schema errors, {len(found)} distinct deviations, all accepted")
    print("; ".join(report) + f"; {len(ACCEPTED)} deviations accepted in total")


@pytest.mark.slow
def test_the_retry_exception_types_are_ones_the_schema_knows(definitions: dict) -> None:
    """The accepted ExceptionType deviation is only about list versus string: each value is in the enum."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    known = set(schema["definitions"]["RetryPolicy"]["properties"]["ExceptionType"]["enum"])
    seen = 0
    for document in definitions.values():
        for step in document["Steps"]:
            for child in step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []):
                for policy in child.get("RetryPolicies", []):
                    assert set(policy["ExceptionType"]) <= known, policy
                    seen += 1
    assert seen == 2 * 2 * 3  # two modes, two processing steps, three policies each


def test_the_deviation_finder_reports_what_the_schema_refuses() -> None:
    """The gate itself: a definition with a step type the schema does not know, and a processing step with
    an unknown argument, are reported at the right place (so an empty report means something)."""
    document = {"Version": "2020-12-01", "Parameters": [], "Steps": [
        {"Name": "P", "Type": "Processing", "Arguments": {"RoleArn": "arn", "Bogus": 1}},
        {"Name": "C", "Type": "Condition", "Arguments": {"Conditions": [], "IfSteps": [
            {"Name": "F", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {"On": "", "Values": []}}}}]}},
    ]}
    found, _ = schema_deviations(document)
    assert found == {("Processing", "Arguments", "additionalProperties Bogus"): 1,
                     ("Fail", "Arguments/ErrorMessage", "oneOf Std:Join"): 1}
    assert without_null_root_keys({"Steps": [], "MlflowConfig": None}) == {"Steps": []}
