"""The batch-inference pipeline as the project's build deploys it for a model package group, offline.

A moto server holds a model package group whose versions are Approved, Rejected and PendingManualApproval;
the seed code's ``deploy.py`` runs in its own interpreter from the seed directory, exactly as the project's
CodeBuild runs it (the environment variables the template sets, the SDK talking to moto through
``AWS_ENDPOINT_URL``). The definition it stores is then

* validated against AWS's published pipeline definition JSON schema (tests/pipeline_schema/, the same gate
  as tests/test_pipeline_schema.py), the deviations the API accepts listed in ``ACCEPTED`` with their
  reasons: a new deviation fails, and so does an accepted one that no longer occurs;
* resolved with tests/pipeline_resolver.py for an execution as the start Lambda starts it: the requests
  CreateModel and CreateTransformJob, checked against botocore's SageMaker model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from e2e_support import moto_server
from pipeline_resolver import resolve_execution
from test_pipeline_schema import SCHEMA, deviation, schema_deviations, without_null_root_keys

SEED_DIR = Path(__file__).resolve().parent.parent / "seed-code" / "s3-batch-inference"
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
GROUP = "churn-models"
PIPELINE = "sagemaker-demo-p-abc123def456-batch-inference"
ARTIFACT_BUCKET = "sagemaker-p-abc123def456-artifacts-123456789012"
INFERENCE = {
    "Containers": [{"Image": f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                    "ModelDataUrl": f"s3://sagemaker-{REGION}-{ACCOUNT}/models/churn/model.tar.gz"}],
    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
}
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# What the start Lambda passes (lambda_functions/start_ingestion_pipeline, START_WITH_MANIFEST=always).
MANIFEST_URL = f"s3://{ARTIFACT_BUCKET}/input-manifests/" + "3c" * 32 + ".manifest"

# (step type, where in the step, what failed) -> why the API accepts it
ACCEPTED: dict[tuple[str, str, str], str] = {
    ("Transform", "RetryPolicies/*/ExceptionType", "type"): (
        "the schema wants one string; the API takes a list: 'Retry Policy for Pipeline Steps' (SageMaker developer "
        "guide) gives \"ExceptionType\": [String]; the SDK's retry policies emit lists"),
    ("Transform", "RetryPolicies/*/ExceptionType", "enum"): (
        "the same list, checked against the enum of single strings; every item is one of the schema's values "
        "(asserted below)"),
    ("Model", "RetryPolicies/*/ExceptionType", "type"): "as for Transform: the API takes a list",
    ("Model", "RetryPolicies/*/ExceptionType", "enum"): "as for Transform: each item is in the enum",
    ("Transform", "Arguments/TransformOutput/S3OutputPath", "oneOf Std:Join"): (
        "the output path joins the predictions prefix and the execution id with the Std:Join function (SDK "
        "sagemaker.core.workflow.functions.Join, documented with the pipeline functions; the SDK's own default "
        "transform output path is such a Join); the schema's StringArgumentValue knows only strings and Get"),
    ("Condition", "Arguments/Conditions/*", "oneOf Not"): (
        "{\"Type\": \"Not\", \"Condition\": {...}} is what the SDK's ConditionNot emits (the form the service "
        "accepts since aws/sagemaker-python-sdk#2746); the schema lists binary conditions, In and Or only"),
}


def client(url: str, service: str):
    """A client of the moto server (the module's fixture runs before the per-test fake credentials are set)."""
    return boto3.client(service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")  # noqa: S106 - moto's fake credentials


@pytest.fixture(scope="module")
def deployed() -> Iterator[dict]:
    """A model package group in moto, the seed code's build run against it; what the build left behind."""
    with moto_server() as url:
        sagemaker = client(url, "sagemaker")
        role = client(url, "iam").create_role(RoleName="demo-p-abc123def456-execution",
                                              AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        # Created in this order, so in this creation-time order (the service stamps each package when created).
        created = [(status, sagemaker.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
                                                           InferenceSpecification=INFERENCE)["ModelPackageArn"])
                   for status in ("Approved", "Approved", "Rejected", "PendingManualApproval")]
        environment = {name: value for name, value in os.environ.items()
                       if not name.startswith(("AWS_", "SAGEMAKER_", "PYTEST_"))}
        config = str(SEED_DIR / "tests" / "sagemaker-config.yaml")
        environment.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_ENDPOINT_URL": url,
            "SAGEMAKER_USER_CONFIG_OVERRIDE": config, "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": config,
            # What the project's CodeBuild project sets (generators/products/s3_batch_inference.py).
            "SAGEMAKER_PROJECT_NAME": "demo", "SAGEMAKER_PROJECT_ID": "p-abc123def456",
            "SAGEMAKER_PIPELINE_NAME": PIPELINE, "SAGEMAKER_PIPELINE_ROLE_ARN": role,
            "ARTIFACT_BUCKET": ARTIFACT_BUCKET, "MODEL_PACKAGE_GROUP_NAME": GROUP,
            "PREDICTIONS_PREFIX": "predictions/", "TRANSFORM_INSTANCE_TYPE": "ml.m5.large",
            "TRANSFORM_INSTANCE_COUNT": "1", "CONTENT_TYPE": "text/csv",
        })
        completed = subprocess.run([sys.executable, "deploy.py"], cwd=SEED_DIR, env=environment, capture_output=True,
                                   text=True, timeout=300, check=False)
        assert completed.returncode == 0, completed.stderr
        described = sagemaker.describe_pipeline(PipelineName=PIPELINE)
        yield {
            "stdout": completed.stdout,
            "definition": json.loads(described["PipelineDefinition"]),
            "description": described["PipelineDescription"],
            "tags": sagemaker.list_tags(ResourceArn=described["PipelineArn"])["Tags"],
            "arn": described["PipelineArn"],
            "approved": [arn for status, arn in created if status == "Approved"],
        }


@pytest.mark.slow
def test_the_build_deploys_the_latest_approved_package(deployed: dict) -> None:
    older, latest = deployed["approved"]
    assert deployed["stdout"].strip() == deployed["arn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}"
    (model,) = [step for step in deployed["definition"]["Steps"] if step["Type"] == "Model"]
    assert model["Arguments"]["Containers"] == [{"ModelPackageName": latest}]
    assert latest in deployed["description"] and older not in deployed["description"]
    assert {"Key": "sagemaker:project-id", "Value": "p-abc123def456"} in deployed["tags"]


@pytest.mark.slow
def test_the_deployed_definition_validates_against_the_schema_but_for_the_accepted_deviations(deployed: dict) -> None:
    document = without_null_root_keys(deployed["definition"])
    found, errors = schema_deviations(document)
    new = sorted(set(found) - set(ACCEPTED))
    stale = sorted(set(ACCEPTED) - set(found))
    assert not new, f"deviations from the published schema that are not accepted: {new}\n" + "\n".join(
        f"  {list(e.absolute_path)}: {e.message[:300]}" for e in errors if deviation(e, document) in new)
    assert not stale, f"accepted deviations that no longer occur (remove them from ACCEPTED): {stale}"
    assert Counter(step["Type"] for step in document["Steps"]) == {"Condition": 3, "Model": 1}


@pytest.mark.slow
def test_the_retry_exception_types_are_ones_the_schema_knows(deployed: dict) -> None:
    """The accepted ExceptionType deviation is only about list versus string: each value is in the enum."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    known = set(schema["definitions"]["RetryPolicy"]["properties"]["ExceptionType"]["enum"])
    steps = deployed["definition"]["Steps"]
    children = [c for s in steps for c in s["Arguments"].get("IfSteps", []) + s["Arguments"].get("ElseSteps", [])]
    policies = [policy for step in steps + children for policy in step.get("RetryPolicies", [])]
    assert len(policies) == 1 + 2 * 3  # the model step's, three per transform step
    for policy in policies:
        assert set(policy["ExceptionType"]) <= known, policy


@pytest.mark.slow
def test_an_upload_resolves_to_a_transform_of_its_manifest_with_the_approved_model(deployed: dict) -> None:
    """From the Lambda's start (InputManifestUrl, nothing else) to the requests SageMaker makes: a model
    from the latest Approved package, and a transform job reading the manifest with that model and writing to
    the execution's folder under the predictions prefix."""
    resolution = resolve_execution(deployed["definition"], {"InputManifestUrl": MANIFEST_URL}, "q8w7e6r5t4y3")
    model = resolution.request("ApprovedModel")
    job = resolution.request("BatchTransformManifest")
    assert model["Containers"] == [{"ModelPackageName": deployed["approved"][1]}]
    assert job["ModelName"] == model["ModelName"]
    assert job["TransformInput"]["DataSource"]["S3DataSource"] == {"S3DataType": "ManifestFile",
                                                                   "S3Uri": MANIFEST_URL}
    assert job["TransformOutput"]["S3OutputPath"] == f"s3://{ARTIFACT_BUCKET}/predictions/q8w7e6r5t4y3"
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1}
    assert {"Key": "model-package-arn", "Value": deployed["approved"][1]} in job["Tags"]


@pytest.mark.slow
@pytest.mark.parametrize(("trigger", "fixture"), [("S3EventBridge", "s3-object-created.json"),
                                                  ("CloudTrail", "cloudtrail-putobject.json")])
def test_an_upload_becomes_a_transform_job_request_in_both_trigger_modes(deployed, templates, monkeypatch,
                                                                         trigger, fixture) -> None:
    """End to end, offline: the upload event matches the built template's rule (moto's EventBridge matcher),
    the real start Lambda writes the one-object manifest and starts the pipeline with it, and the deployed
    definition turns that start into the transform job's request: the manifest naming exactly the uploaded
    object, the latest approved model, the execution's output folder."""
    from lambda_support import BUCKET, S3Stub, SageMakerStub, load_app, with_object
    from loading import load_event
    from moto.events.models import EventPattern

    from generators.cfn_resolve import evaluate_conditions, resolve, template_parameters
    from generators.products import get

    template = templates[get("s3-batch-inference").template_name]
    parameters = template_parameters(template, {
        "SageMakerProjectName": "demo", "SageMakerProjectId": "p-abc123def456", "DataBucketName": BUCKET,
        "ModelPackageGroupName": GROUP, "TriggerMode": trigger,
    })
    conditions = evaluate_conditions(template, parameters)
    rule = resolve(template["Resources"]["UploadRule"], parameters, conditions)
    function = resolve(template["Resources"]["StartIngestionFunction"], parameters, conditions)
    key = "incoming/2026/12/02/abalone-scoring.csv"
    event = with_object(load_event(fixture), key=key)
    assert EventPattern.load(json.dumps(rule["Properties"]["EventPattern"])).matches_event(event)

    app = load_app()
    environment = function["Properties"]["Environment"]["Variables"]
    for name, value in {**environment, "PIPELINE_NAME": PIPELINE, "MANIFEST_BUCKET": ARTIFACT_BUCKET}.items():
        monkeypatch.setenv(name, value)
    sagemaker, s3 = SageMakerStub(), S3Stub()
    monkeypatch.setattr(app, "_sagemaker_client", lambda: sagemaker.client)
    monkeypatch.setattr(app, "_s3_client", lambda: s3.client)
    sagemaker.will_start()
    s3.will_put()
    assert app.lambda_handler(event, None)["status"] == "started"
    [start] = sagemaker.requests
    [put] = s3.puts
    prefix, entry = json.loads(put["Body"])
    assert prefix["prefix"] + entry == f"s3://{BUCKET}/{key}"

    resolution = resolve_execution(deployed["definition"], start["PipelineParameters"], "z1x2c3v4b5n6")
    job = resolution.request("BatchTransformManifest")
    assert job["TransformInput"]["DataSource"]["S3DataSource"] == {
        "S3DataType": "ManifestFile", "S3Uri": f"s3://{put['Bucket']}/{put['Key']}"}
    assert job["ModelName"] == resolution.request("ApprovedModel")["ModelName"]
    assert resolution.request("ApprovedModel")["Containers"] == [{"ModelPackageName": deployed["approved"][1]}]
    assert job["TransformOutput"]["S3OutputPath"] == f"s3://{ARTIFACT_BUCKET}/predictions/z1x2c3v4b5n6"
    assert "BatchTransform" not in resolution.names  # the object path does not run as well
