"""The pipeline definition JSON, generated offline: routing, the model step, both transform paths."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import boto3
import pytest
from conftest import REGION, SEED_DIR
from moto import mock_aws

from pipelines.pipeline import (
    FAIL_STEP,
    MANIFEST_STEP,
    MODEL_STEP,
    OBJECT_STEP,
    PipelineSettings,
    build_pipeline,
    definition,
)

ROLE = "arn:aws:iam::123456789012:role/demo-p-abc123-execution"
PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/7"
BUCKET = "demo-p-abc123-artifacts"
PROJECT_TAGS = (("sagemaker:project-name", "demo"), ("sagemaker:project-id", "p-abc123"))
GET_INPUT = {"Get": "Parameters.InputDataUrl"}
GET_MANIFEST = {"Get": "Parameters.InputManifestUrl"}
GET_TYPE = {"Get": "Parameters.TransformInstanceType"}
GET_COUNT = {"Get": "Parameters.TransformInstanceCount"}
GET_MODEL_NAME = {"Get": f"Steps.{MODEL_STEP}.ModelName"}


def settings(**overrides: object) -> PipelineSettings:
    values = dict(name="demo-p-abc123-batch-inference", role_arn=ROLE, model_package_arn=PACKAGE,
                  artifact_bucket=BUCKET, predictions_prefix="predictions/", instance_type="ml.m5.large",
                  instance_count=2, tags=PROJECT_TAGS)
    values.update(overrides)
    return PipelineSettings(**values)


@pytest.fixture(scope="module")
def session() -> Iterator[object]:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    with mock_aws():  # nothing may reach AWS while the definitions are built
        yield PipelineSession(boto_session=boto3.session.Session(region_name=REGION), default_bucket=BUCKET)


@pytest.fixture(scope="module")
def built(session) -> dict:
    """The definition, built once (the SDK takes seconds per pipeline)."""
    return definition(build_pipeline(settings(), session))


@pytest.fixture
def document(built: dict) -> dict:
    return copy.deepcopy(built)


def all_steps(steps: list) -> list:
    """Every step, the ones inside condition branches included."""
    found = []
    for step in steps:
        found.append(step)
        if step["Type"] == "Condition":
            found += all_steps(step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []))
    return found


def steps_by_name(document: dict) -> dict:
    steps = all_steps(document["Steps"])
    by_name = {step["Name"]: step for step in steps}
    assert len(by_name) == len(steps), "step names must be unique"
    return by_name


# -- a tiny evaluator of the definition's routing, as SageMaker Pipelines documents it ------------------------
# ("Condition step", SageMaker developer guide: all conditions of a step must hold for its IfSteps to run,
# otherwise its ElseSteps run; a Not condition negates the one it holds.)


def resolve(value: object, values: dict) -> object:
    if isinstance(value, dict) and set(value) == {"Get"}:
        kind, _, name = value["Get"].partition(".")
        if kind == "Parameters":
            return values[name]
        assert value["Get"] == "Execution.PipelineExecutionId", f"unexpected expression {value}"
        return values["execution id"]
    if isinstance(value, dict) and set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(resolve(item, values)) for item in join["Values"])
    assert not isinstance(value, dict), f"unexpected expression {value}"
    return value


def holds(condition: dict, values: dict) -> bool:
    if condition["Type"] == "Not":
        return not holds(condition["Condition"], values)
    assert condition["Type"] == "Equals", condition
    return resolve(condition["LeftValue"], values) == resolve(condition["RightValue"], values)


def steps_that_run(document: dict, parameters: dict) -> list[str]:
    """The names of the non-condition steps an execution with ``parameters`` runs."""
    values = {**{p["Name"]: p.get("DefaultValue") for p in document["Parameters"]}, **parameters}
    ran: list[str] = []

    def visit(steps: list) -> None:
        for step in steps:
            if step["Type"] != "Condition":
                ran.append(step["Name"])
                continue
            arguments = step["Arguments"]
            branch = "IfSteps" if all(holds(c, values) for c in arguments["Conditions"]) else "ElseSteps"
            visit(arguments.get(branch, []))

    visit(document["Steps"])
    return ran


MANIFEST_URL = "s3://demo-p-abc123-artifacts/input-manifests/" + "0f" * 32 + ".manifest"
OBJECT_URL = "s3://data-bucket/incoming/2024/scores.csv"


def test_parameters_are_the_ones_the_lambda_and_users_set(document: dict) -> None:
    # The Lambda sets InputManifestUrl; InputDataUrl is for starts by hand; both default to "".
    assert document["Parameters"] == [
        {"Name": "InputDataUrl", "Type": "String", "DefaultValue": ""},
        {"Name": "InputManifestUrl", "Type": "String", "DefaultValue": ""},
        {"Name": "TransformInstanceType", "Type": "String", "DefaultValue": "ml.m5.large"},
        {"Name": "TransformInstanceCount", "Type": "Integer", "DefaultValue": 2},
    ]
    assert document.get("PipelineExperimentConfig") is None


@pytest.mark.parametrize(("parameters", "expected"), [
    ({"InputManifestUrl": MANIFEST_URL}, MANIFEST_STEP),
    ({"InputDataUrl": OBJECT_URL}, OBJECT_STEP),
    ({"InputDataUrl": OBJECT_URL, "InputManifestUrl": MANIFEST_URL}, MANIFEST_STEP),
    ({}, FAIL_STEP),
])
def test_exactly_one_branch_runs_for_every_combination_of_inputs(document: dict, parameters: dict,
                                                                  expected: str) -> None:
    # The model step is top-level: it runs before any transform that names its model.
    assert steps_that_run(document, parameters) == [MODEL_STEP, expected]
    # No condition step sits inside another: AWS's pipeline definition schema allows none there.
    for step in document["Steps"]:
        for branch in ("IfSteps", "ElseSteps"):
            assert all(child["Type"] != "Condition" for child in step["Arguments"].get(branch, []))


def test_no_input_fails_the_execution_with_a_message_saying_how_to_start_it(document: dict) -> None:
    fail = steps_by_name(document)[FAIL_STEP]
    assert fail["Type"] == "Fail"
    message = fail["Arguments"]["ErrorMessage"]
    assert "InputManifestUrl=s3://" in message and "InputDataUrl=s3://bucket/key" in message


def test_the_model_step_creates_a_model_from_the_resolved_package(document: dict) -> None:
    """A ``Model`` step makes the service call CreateModel with its arguments ("Create model step",
    SageMaker developer guide). A container naming ``ModelPackageName`` takes its image and artifacts from
    the package ("ContainerDefinition", SageMaker API reference); the build resolves an Approved package
    (the SDK's ModelBuilder notes that CreateModel with a ModelPackageName requires one)."""
    step = steps_by_name(document)[MODEL_STEP]
    assert step["Type"] == "Model"
    arguments = step["Arguments"]
    assert arguments["ExecutionRoleArn"] == ROLE
    assert arguments["Containers"] == [{"ModelPackageName": PACKAGE}]
    assert "PrimaryContainer" not in arguments and "ModelName" not in arguments  # the service names the model
    assert {"Key": "model-package-arn", "Value": PACKAGE} in arguments["Tags"]
    assert {"Key": "sagemaker:project-name", "Value": "demo"} in arguments["Tags"]


def test_the_model_step_retries_only_what_a_step_without_a_job_can_meet(document: dict) -> None:
    """"Retry Policy for Pipeline Steps" (SageMaker developer guide): the create-model step supports retry
    policies; the SageMaker.* exception types are those of a SageMaker job, which this step does not start
    (the SDK refuses a SageMakerJobStepRetryPolicy on a create-model step). Throttling and service faults
    while calling CreateModel are retried, with exponential backoff, for at most an hour."""
    (policy,) = steps_by_name(document)[MODEL_STEP]["RetryPolicies"]
    assert sorted(policy["ExceptionType"]) == ["Step.SERVICE_FAULT", "Step.THROTTLING"]
    assert policy["BackoffRate"] > 1 and 1 <= policy["IntervalSeconds"] <= 43_200
    assert 1 <= policy["ExpireAfterMin"] <= 14_400


def transform(document: dict, name: str) -> dict:
    step = steps_by_name(document)[name]
    assert step["Type"] == "Transform"
    return step["Arguments"]


def test_the_manifest_step_scores_the_listed_objects_on_the_parameter_instances(document: dict) -> None:
    """"TransformS3DataSource" (SageMaker API reference): with S3DataType ManifestFile, S3Uri names a manifest
    listing the objects; every listed object is an input of the job."""
    arguments = transform(document, MANIFEST_STEP)
    source = arguments["TransformInput"]["DataSource"]["S3DataSource"]
    assert source == {"S3DataType": "ManifestFile", "S3Uri": GET_MANIFEST}
    assert arguments["TransformResources"] == {"InstanceType": GET_TYPE, "InstanceCount": GET_COUNT}


def test_the_object_step_scores_one_object_on_one_instance(document: dict) -> None:
    arguments = transform(document, OBJECT_STEP)
    source = arguments["TransformInput"]["DataSource"]["S3DataSource"]
    assert source == {"S3DataType": "S3Prefix", "S3Uri": GET_INPUT}
    # One object is one input file: batch transform gives each instance whole files, more would sit idle.
    assert arguments["TransformResources"] == {"InstanceType": GET_TYPE, "InstanceCount": 1}


@pytest.mark.parametrize("name", [OBJECT_STEP, MANIFEST_STEP])
def test_both_transforms_read_and_write_csv_lines_with_the_approved_model(document: dict, name: str) -> None:
    """"CreateTransformJob" (SageMaker API reference): SplitType Line splits the input into records at line
    ends; AssembleWith Line writes each record's result followed by a newline, so line n of the output is the
    prediction for line n of the input; ContentType and Accept are the MIME types sent to and asked from the
    model's container."""
    arguments = transform(document, name)
    assert arguments["ModelName"] == GET_MODEL_NAME  # the model the model step created in this execution
    assert arguments["TransformInput"]["ContentType"] == "text/csv"
    assert arguments["TransformInput"]["SplitType"] == "Line"
    assert arguments["TransformOutput"]["Accept"] == "text/csv"
    assert arguments["TransformOutput"]["AssembleWith"] == "Line"
    assert arguments["BatchStrategy"] == "MultiRecord"
    assert "TransformJobName" not in arguments  # the service names each execution's job
    assert {"Key": "model-package-arn", "Value": PACKAGE} in arguments["Tags"]


@pytest.mark.parametrize("name", [OBJECT_STEP, MANIFEST_STEP])
def test_every_execution_writes_its_own_folder_under_the_predictions_prefix(document: dict, name: str) -> None:
    output = transform(document, name)["TransformOutput"]["S3OutputPath"]
    first = resolve(output, {"execution id": "a1b2c3d4e5f6"})
    second = resolve(output, {"execution id": "0f9e8d7c6b5a"})
    assert first == f"s3://{BUCKET}/predictions/a1b2c3d4e5f6"
    assert second == f"s3://{BUCKET}/predictions/0f9e8d7c6b5a"


@pytest.mark.parametrize("name", [OBJECT_STEP, MANIFEST_STEP])
def test_every_transform_retries_quota_capacity_and_throttling_errors(document: dict, name: str) -> None:
    """"Retry Policy for Pipeline Steps" (SageMaker developer guide,
    https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-retry-policy.html): a transform step may carry
    RetryPolicies for Step.SERVICE_FAULT, Step.THROTTLING, SageMaker.JOB_INTERNAL_ERROR,
    SageMaker.CAPACITY_ERROR and SageMaker.RESOURCE_LIMIT; IntervalSeconds at most 43,200, MaxAttempts at
    most 20, ExpireAfterMin at most 14,400. Without them a burst of uploads beyond the transform-job quota
    fails executions instead of waiting."""
    policies = steps_by_name(document)[name]["RetryPolicies"]
    covered = [exception for policy in policies for exception in policy["ExceptionType"]]
    assert sorted(covered) == sorted({"SageMaker.RESOURCE_LIMIT", "SageMaker.CAPACITY_ERROR",
                                      "SageMaker.JOB_INTERNAL_ERROR", "Step.THROTTLING", "Step.SERVICE_FAULT"})
    for policy in policies:
        assert policy["BackoffRate"] > 1, policy
        assert 1 <= policy["IntervalSeconds"] <= 43_200, policy
        assert ("ExpireAfterMin" in policy) != ("MaxAttempts" in policy), policy  # bounded one way
        assert 1 <= policy.get("ExpireAfterMin", 1) <= 14_400 and 1 <= policy.get("MaxAttempts", 1) <= 20
    quota = next(p for p in policies if "SageMaker.RESOURCE_LIMIT" in p["ExceptionType"])
    assert "SageMaker.CAPACITY_ERROR" in quota["ExceptionType"] and quota["ExpireAfterMin"] >= 60


def test_another_content_type_changes_input_and_output(session) -> None:
    document = definition(build_pipeline(settings(content_type="application/jsonlines",
                                                  accept="application/jsonlines"), session))
    for name in (OBJECT_STEP, MANIFEST_STEP):
        arguments = transform(document, name)
        assert arguments["TransformInput"]["ContentType"] == "application/jsonlines"
        assert arguments["TransformOutput"]["Accept"] == "application/jsonlines"


def test_the_definition_is_deterministic(session) -> None:
    first = build_pipeline(settings(), session).definition()
    assert first == build_pipeline(settings(), session).definition()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"model_package_arn": "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/churn-models"},
     "is not a model package ARN"),
    ({"model_package_arn": "churn-models/7"}, "is not a model package ARN"),
    ({"predictions_prefix": "predictions"}, "must be a key prefix ending with '/'"),
    ({"predictions_prefix": "/predictions/"}, "must be a key prefix ending with '/'"),
    ({"instance_count": 0}, "instance_count is 0"),
])
def test_settings_the_apis_would_refuse_are_refused_at_build_time(session, overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_pipeline(settings(**overrides), session)


def test_the_readme_documents_every_step_and_parameter(document: dict) -> None:
    """Users find the steps of an execution in Studio by these names: the README must explain each one."""
    readme = (SEED_DIR / "README.md").read_text(encoding="utf-8")
    names = [step["Name"] for step in all_steps(document["Steps"])] + [p["Name"] for p in document["Parameters"]]
    assert len(names) == 11  # 7 steps, 4 parameters
    for name in names:
        assert f"`{name}`" in readme, name


def test_the_pinned_sdk_cannot_take_an_instance_count_parameter_itself(session) -> None:
    """Why ParameterCountTransformStep exists (a known trap of the pinned SDK): sagemaker-core 2.27's
    TransformResources shape types instance_count as int, so a ParameterInteger given to Transformer fails when
    the step's request is built. When this test fails, the SDK takes the parameter: drop the workaround."""
    from pydantic import ValidationError
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.parameters import ParameterInteger
    from sagemaker.mlops.workflow.steps import TransformStep

    transformer = Transformer(model_name="model", instance_count=ParameterInteger(name="Count", default_value=1),
                              instance_type="ml.m5.large", output_path=f"s3://{BUCKET}/out",
                              base_transform_job_name="t", sagemaker_session=session)
    step = TransformStep(name="T", step_args=transformer.transform(data=f"s3://{BUCKET}/in/x.csv"))
    with pytest.raises(ValidationError, match="instance_count"):
        _ = step.arguments
