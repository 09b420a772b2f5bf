"""The offline pipeline definition resolver (tests/pipeline_resolver.py), on both products' definitions and on
small definitions that exercise each rule it implements.

Both seed codes' definitions are rendered in a separate interpreter from their own directories (the SageMaker
SDK reads its configuration when imported); the ingestion ones exactly as tests/test_pipeline_schema.py
renders them.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from botocore.validate import validate_parameters
from pipeline_resolver import (
    Execution,
    InvalidRequest,
    ResolutionError,
    request_problems,
    resolve_execution,
    resource_name,
    service_model,
)
from pipeline_resolver import render_batch_inference_definition as render_batch
from pipeline_resolver import render_definitions as render
from test_pipeline_schema import RENDER as INGESTION_RENDER
from test_pipeline_schema import SEED_DIR as INGESTION_SEED

BATCH_SEED = Path(__file__).resolve().parent.parent / "seed-code" / "s3-batch-inference"
PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/3"  # BATCH_INFERENCE_RENDER's
MANIFEST_URL = "s3://artifact-bucket/input-manifests/" + "5e" * 32 + ".manifest"  # what the start Lambda passes
OBJECT_URL = "s3://amzn-s3-demo-bucket/incoming/2025/05/scores.csv"


@pytest.fixture(scope="module")
def batch() -> dict:
    return render_batch(BATCH_SEED)


@pytest.fixture(scope="module")
def ingestion() -> dict:
    return render(INGESTION_SEED, INGESTION_RENDER)


def botocore_accepts(call) -> None:
    """botocore's own validation (types, required members, minimums) agrees with the resolver's."""
    validate_parameters(call.request, service_model().operation_model(call.operation).input_shape)


# -- the batch-inference definition --------------------------------------------------------------------------


@pytest.mark.slow
def test_an_upload_through_its_manifest_becomes_a_model_and_a_transform_of_that_manifest(batch: dict) -> None:
    """What the start Lambda's execution asks SageMaker to do: CreateModel from the package, then
    CreateTransformJob reading the manifest (S3DataType ManifestFile, "TransformS3DataSource", SageMaker API
    reference) with that model, writing to the execution's own folder."""
    resolution = resolve_execution(batch, {"InputManifestUrl": MANIFEST_URL}, "k3x9q2w7e5r1")
    assert [(call.name, call.operation) for call in resolution.calls] == [
        ("ApprovedModel", "CreateModel"), ("BatchTransformManifest", "CreateTransformJob")]
    model, job = (call.request for call in resolution.calls)
    assert model["Containers"] == [{"ModelPackageName": PACKAGE}]
    assert job["ModelName"] == model["ModelName"]
    assert job["TransformInput"]["DataSource"]["S3DataSource"] == {"S3DataType": "ManifestFile",
                                                                   "S3Uri": MANIFEST_URL}
    assert job["TransformOutput"]["S3OutputPath"] == "s3://artifact-bucket/predictions/k3x9q2w7e5r1"
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 2}  # the defaults
    assert resolution.conditions == {"IsManifestInput": False, "IsObjectInput": False, "IsInputMissing": False}
    for call in resolution.calls:
        botocore_accepts(call)


@pytest.mark.slow
def test_the_start_request_s_parameter_list_is_accepted_as_is(batch: dict) -> None:
    """The start Lambda's StartPipelineExecution request carries PipelineParameters as a list of Name/Value."""
    listed = [{"Name": "InputManifestUrl", "Value": MANIFEST_URL}]
    assert resolve_execution(batch, listed).request("BatchTransformManifest") == resolve_execution(
        batch, {"InputManifestUrl": MANIFEST_URL}).request("BatchTransformManifest")
    with pytest.raises(ResolutionError, match="a parameter is given twice"):
        resolve_execution(batch, listed + listed)


@pytest.mark.slow
def test_parameters_given_as_text_take_their_type(batch: dict) -> None:
    """StartPipelineExecution passes every value as a string; an Integer parameter is an integer in the job."""
    resolution = resolve_execution(batch, {"InputManifestUrl": MANIFEST_URL, "TransformInstanceCount": "3",
                                           "TransformInstanceType": "ml.c5.xlarge"})
    assert resolution.request("BatchTransformManifest")["TransformResources"] == {
        "InstanceType": "ml.c5.xlarge", "InstanceCount": 3}


@pytest.mark.slow
def test_an_object_started_by_hand_is_scored_on_one_instance(batch: dict) -> None:
    resolution = resolve_execution(batch, {"InputDataUrl": OBJECT_URL, "TransformInstanceCount": "4"})
    assert resolution.names == ["ApprovedModel", "BatchTransform"]
    job = resolution.request("BatchTransform")
    assert job["TransformInput"]["DataSource"]["S3DataSource"] == {"S3DataType": "S3Prefix", "S3Uri": OBJECT_URL}
    assert job["TransformResources"]["InstanceCount"] == 1


@pytest.mark.slow
def test_a_manifest_wins_over_an_object(batch: dict) -> None:
    resolution = resolve_execution(batch, {"InputDataUrl": OBJECT_URL, "InputManifestUrl": MANIFEST_URL})
    assert resolution.names == ["ApprovedModel", "BatchTransformManifest"]


@pytest.mark.slow
def test_no_input_fails_the_execution(batch: dict) -> None:
    resolution = resolve_execution(batch, {})
    assert resolution.names == ["ApprovedModel", "InputMissing"]
    fail = resolution.call("InputMissing")
    assert fail.operation is None and "InputManifestUrl=s3://" in fail.request["ErrorMessage"]


@pytest.mark.slow
def test_each_execution_writes_its_own_folder(batch: dict) -> None:
    paths = {resolve_execution(batch, {"InputManifestUrl": MANIFEST_URL}, execution_id)
             .request("BatchTransformManifest")["TransformOutput"]["S3OutputPath"]
             for execution_id in ("aaaaaaaaaaaa", "bbbbbbbbbbbb")}
    assert paths == {"s3://artifact-bucket/predictions/aaaaaaaaaaaa", "s3://artifact-bucket/predictions/bbbbbbbbbbbb"}


@pytest.mark.slow
def test_a_value_the_api_refuses_is_reported_with_its_place(batch: dict) -> None:
    """CreateTransformJob: TransformS3DataSource.S3Uri must match (https|s3)://([^/]+)/?(.*) (botocore's
    SageMaker model, shape S3Uri): a key without its bucket fails the execution's transform step."""
    with pytest.raises(InvalidRequest, match=r"TransformInput\.DataSource\.S3DataSource\.S3Uri: 'input-manifests/"):
        resolve_execution(batch, {"InputManifestUrl": "input-manifests/x.manifest"})


@pytest.mark.slow
def test_a_parameter_value_longer_than_the_api_allows_is_refused(batch: dict) -> None:
    """StartPipelineExecution: a parameter's Value is at most 1,024 characters (botocore shape String1024)."""
    url = "s3://b/" + "k" * 1018
    assert len(url) == 1025
    with pytest.raises(InvalidRequest, match="PipelineParameters.InputDataUrl: 1025 characters"):
        resolve_execution(batch, {"InputDataUrl": url})
    assert resolve_execution(batch, {"InputDataUrl": url[:-1]}).names[-1] == "BatchTransform"


# -- the ingestion definitions -------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_ingestion_upload_becomes_one_processing_job_of_that_object(ingestion: dict) -> None:
    resolution = resolve_execution(ingestion["Script"], {"InputDataUrl": OBJECT_URL}, "fa1l3dr0ws00")
    (call,) = resolution.calls
    assert (call.name, call.operation) == ("TransformAndIngest", "CreateProcessingJob")
    request = call.request
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert inputs["data"]["S3Uri"] == OBJECT_URL
    (output,) = request["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == "s3://artifact-bucket/failed-rows/fa1l3dr0ws00"  # Std:Join resolved
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--feature-group-name") + 1] == "abalone"  # the parameter's default
    assert request["ProcessingJobName"] == resource_name("fa1l3dr0ws00", "TransformAndIngest")
    botocore_accepts(call)


@pytest.mark.slow
def test_an_ingestion_manifest_uses_the_instance_count_and_feature_group_given(ingestion: dict) -> None:
    resolution = resolve_execution(ingestion["Script"], {"InputManifestUrl": MANIFEST_URL, "FeatureGroupName": "other",
                                                         "ProcessingInstanceCount": "4"})
    request = resolution.request("TransformAndIngestManifest")
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 4
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--feature-group-name") + 1] == "other"


@pytest.mark.slow
def test_a_data_wrangler_manifest_writes_to_the_feature_group_given(ingestion: dict) -> None:
    """CreateProcessingJob accepts an app-managed output with a FeatureStoreOutput ("ProcessingOutput", SageMaker
    API reference); the resolver checks the request against the API model, not against the lagging schema."""
    resolution = resolve_execution(ingestion["DataWranglerFlow"],
                                   {"InputManifestUrl": MANIFEST_URL, "FeatureGroupName": "customers"})
    (call,) = resolution.calls
    assert call.name == "DataWranglerFlowToFeatureStoreManifest"
    (output,) = call.request["ProcessingOutputConfig"]["Outputs"]
    assert output["AppManaged"] is True and output["FeatureStoreOutput"] == {"FeatureGroupName": "customers"}
    data = next(i["S3Input"] for i in call.request["ProcessingInputs"] if i["InputName"] != "flow")
    assert data["S3Uri"] == MANIFEST_URL and data["S3DataType"] == "ManifestFile"
    botocore_accepts(call)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["Script", "DataWranglerFlow"])
def test_an_ingestion_without_input_only_fails(ingestion: dict, mode: str) -> None:
    assert resolve_execution(ingestion[mode], {}).names == ["InputMissing"]


# -- the rules, on small definitions ---------------------------------------------------------------------------

GET_N = {"Get": "Parameters.N"}
GET_NAME = {"Get": "Parameters.Name"}


def definition(conditions: list, if_steps: list | None = None, else_steps: list | None = None,
               parameters: list | None = None, steps: list | None = None) -> dict:
    return {
        "Version": "2020-12-01",
        "Parameters": parameters or [{"Name": "N", "Type": "Integer", "DefaultValue": 2},
                                     {"Name": "Name", "Type": "String", "DefaultValue": "a"}],
        "Steps": [{"Name": "C", "Type": "Condition", "Arguments": {
            "Conditions": conditions, "IfSteps": if_steps if if_steps is not None else [fail("Yes")],
            "ElseSteps": else_steps if else_steps is not None else [fail("No")]}}, *(steps or [])],
    }


def fail(name: str, message: object = "") -> dict:
    return {"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": message}}


@pytest.mark.parametrize(("condition", "parameters", "expected"), [
    ({"Type": "Equals", "LeftValue": GET_N, "RightValue": 2}, {}, True),
    ({"Type": "Equals", "LeftValue": GET_N, "RightValue": 2}, {"N": "3"}, False),
    ({"Type": "GreaterThan", "LeftValue": GET_N, "RightValue": 2}, {"N": "3"}, True),
    ({"Type": "GreaterThanOrEqualTo", "LeftValue": GET_N, "RightValue": 2}, {}, True),
    ({"Type": "LessThan", "LeftValue": GET_N, "RightValue": 2}, {}, False),
    ({"Type": "LessThanOrEqualTo", "LeftValue": GET_N, "RightValue": 2}, {"N": "1"}, True),
    ({"Type": "In", "QueryValue": GET_NAME, "Values": ["b", "c"]}, {"Name": "c"}, True),
    ({"Type": "In", "QueryValue": GET_NAME, "Values": ["b", "c"]}, {}, False),
    ({"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": GET_NAME, "RightValue": "a"}}, {}, False),
    ({"Type": "Or", "Conditions": [{"Type": "Equals", "LeftValue": GET_NAME, "RightValue": "x"},
                                   {"Type": "Equals", "LeftValue": GET_N, "RightValue": 2}]}, {}, True),
])
def test_conditions_are_evaluated_as_documented(condition: dict, parameters: dict, expected: bool) -> None:
    """"Condition step" (SageMaker developer guide): comparisons, In, Not and Or; a condition step runs its
    IfSteps when its conditions hold, its ElseSteps otherwise."""
    resolution = resolve_execution(definition([condition]), parameters)
    assert resolution.conditions == {"C": expected}
    assert resolution.names == ["Yes" if expected else "No"]


def test_all_conditions_of_a_step_must_hold() -> None:
    conditions = [{"Type": "Equals", "LeftValue": GET_N, "RightValue": 2},
                  {"Type": "Equals", "LeftValue": GET_NAME, "RightValue": "b"}]
    assert resolve_execution(definition(conditions), {}).names == ["No"]
    assert resolve_execution(definition(conditions), {"Name": "b"}).names == ["Yes"]


def test_branches_are_followed_at_any_depth() -> None:
    inner = {"Name": "Inner", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "Equals", "LeftValue": GET_NAME, "RightValue": "a"}],
        "IfSteps": [fail("Deep")], "ElseSteps": []}}
    document = definition([{"Type": "Equals", "LeftValue": GET_N, "RightValue": 2}], if_steps=[inner])
    resolution = resolve_execution(document, {})
    assert resolution.names == ["Deep"] and resolution.conditions == {"C": True, "Inner": True}


def test_joins_and_execution_variables_are_resolved() -> None:
    message = {"Std:Join": {"On": "/", "Values": [{"Get": "Execution.PipelineName"}, GET_N,
                                                  {"Get": "Execution.PipelineExecutionId"}]}}
    document = definition([{"Type": "Equals", "LeftValue": GET_N, "RightValue": 2}], if_steps=[fail("F", message)])
    resolution = resolve_execution(document, {}, Execution(execution_id="x1y2z3", pipeline_name="demo"))
    assert resolution.request("F") == {"ErrorMessage": "demo/2/x1y2z3"}


@pytest.mark.parametrize(("parameters", "message"), [
    ({"Nope": "1"}, "parameter\\(s\\) Nope not defined by the pipeline"),
    ({"N": "two"}, "parameter N is Integer: 'two' is not one"),
])
def test_parameters_the_service_would_refuse_are_refused(parameters: dict, message: str) -> None:
    with pytest.raises(ResolutionError, match=message):
        resolve_execution(definition([{"Type": "Equals", "LeftValue": GET_N, "RightValue": 2}]), parameters)


def model_step(name: str = "M") -> dict:
    return {"Name": name, "Type": "Model", "Arguments": {
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r", "Containers": [{"ModelPackageName": PACKAGE}]}}


def transform_step(name: str = "T", model: str = "M") -> dict:
    return {"Name": name, "Type": "Transform", "Arguments": {
        "ModelName": {"Get": f"Steps.{model}.ModelName"},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://in/x.csv"}}},
        "TransformOutput": {"S3OutputPath": "s3://out/predictions"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}}


def top_level(*steps: dict) -> dict:
    return {"Version": "2020-12-01", "Parameters": [], "Steps": list(steps)}


def test_steps_come_after_the_steps_they_refer_to_or_depend_on() -> None:
    after = fail("After")
    after["DependsOn"] = ["T"]
    resolution = resolve_execution(top_level(after, transform_step(), model_step()))
    assert resolution.names == ["M", "T", "After"]
    assert resolution.request("T")["ModelName"] == resolution.request("M")["ModelName"]


def test_a_dependency_cycle_is_refused() -> None:
    first, second = fail("A"), fail("B")
    first["DependsOn"], second["DependsOn"] = ["B"], ["A"]
    with pytest.raises(ResolutionError, match="dependency cycle"):
        resolve_execution(top_level(first, second))


def test_step_properties_resolve_to_names_arns_or_the_steps_own_request() -> None:
    """"Properties" of a step (SageMaker developer guide, data dependency between steps): the Describe*
    response of its job or model. The model's name and ARN are the service's; the transform's output path is
    what its request set."""
    reader = fail("Reader", {"Std:Join": {"On": " ", "Values": [
        {"Get": "Steps.M.ModelArn"}, {"Get": "Steps.T.TransformOutput.S3OutputPath"},
        {"Get": "Steps.M.Containers[0].ModelPackageName"}]}})
    resolution = resolve_execution(top_level(model_step(), transform_step(), reader), execution="e1")
    arn, path, package = resolution.request("Reader")["ErrorMessage"].split(" ")
    assert arn == "arn:aws:sagemaker:eu-west-1:123456789012:model/" + resource_name("e1", "M").lower()
    assert path == "s3://out/predictions" and package == PACKAGE


@pytest.mark.parametrize(("steps", "message"), [
    ([transform_step(model="Elsewhere")], "step Elsewhere does not run"),
    ([model_step(), fail("F", {"Get": "Steps.M.NoSuchProperty"})], "no placeholder for this property"),
    ([fail("F", {"Std:JsonGet": {"PropertyFile": "x", "Path": "a"}})], "function Std:JsonGet is not supported"),
    ([{"Name": "Train", "Type": "Training", "Arguments": {}}], "type Training is not supported"),
    ([fail("F", {"Get": "Execution.Nope"})], "unknown execution variable"),
])
def test_what_the_resolver_cannot_resolve_is_refused_not_guessed(steps: list, message: str) -> None:
    with pytest.raises(ResolutionError, match=message):
        resolve_execution(top_level(*steps))


@pytest.mark.parametrize("step_name", ["ApprovedModel", "A" * 80, "with spaces.and_dots", "ünïcode-step"])
@pytest.mark.parametrize("operation", ["CreateModel", "CreateTransformJob", "CreateProcessingJob"])
def test_the_names_standing_for_resources_are_valid_for_every_step_name(step_name: str, operation: str) -> None:
    """ModelName, TransformJobName and ProcessingJobName: at most 63 characters of [a-zA-Z0-9-] (botocore's
    SageMaker model); a pipeline step name may hold more (StepName: up to 64 characters, spaces, dots)."""
    member = {"CreateModel": "ModelName", "CreateTransformJob": "TransformJobName",
              "CreateProcessingJob": "ProcessingJobName"}[operation]
    name = resource_name("abcdef123456", step_name)
    shape = service_model().operation_model(operation).input_shape.members[member]
    problems = request_problems({member: name}, operation)
    assert not [p for p in problems if p.startswith(f"{operation}.{member}")], (name, problems)
    assert len(name) <= shape.metadata["max"]


# -- the validation against the API model ---------------------------------------------------------------------

VALID_JOB = transform_step()["Arguments"] | {"ModelName": "m", "TransformJobName": "j"}


def changed(path: list, value: object, request: dict = VALID_JOB) -> dict:
    request = copy.deepcopy(request)
    node = request
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return request


@pytest.mark.parametrize(("request_", "problem"), [
    (changed(["TransformOutput"], KeyError), "CreateTransformJob.TransformOutput: required"),
    (changed(["Bogus"], 1), "CreateTransformJob.Bogus: unknown member"),
    (changed(["TransformInput", "SplitType"], "Lines"), "SplitType: 'Lines' is not one of"),
    (changed(["TransformResources", "InstanceCount"], 0), "InstanceCount: 0, allowed 1.."),
    (changed(["TransformResources", "InstanceCount"], "2"), "InstanceCount: expected an integer, got str"),
    (changed(["TransformOutput", "S3OutputPath"], "https://" + "x" * 1020), "S3OutputPath: 1028 characters"),
    (changed(["TransformOutput", "S3OutputPath"], "predictions/"), "S3OutputPath: 'predictions/' does not match"),
    (changed(["ModelName"], "pipelines_model"), "ModelName: 'pipelines_model' does not match"),
    (changed(["Tags"], [{"Key": "team#1", "Value": "x"}]), "Tags\\[0\\]\\.Key: 'team#1' does not match"),
    (changed(["TransformInput", "ContentType"], "text/csv\n"), "ContentType: .* does not match"),
    (changed(["TransformInput", "ContentType"], "text/csv\u2028"), "ContentType: .* holds a line terminator"),
])
def test_requests_the_api_would_refuse_are_caught(request_: dict, problem: str) -> None:
    """botocore's SageMaker model (the service's own input shapes): required and known members, enums,
    numeric minimums, types, string lengths and patterns, a Java '.' that does not match line terminators."""
    problems = request_problems(request_, "CreateTransformJob")
    assert any(re.search(problem, p) for p in problems), problems


def test_a_valid_request_and_unicode_tags_pass() -> None:
    """Tag keys and values match ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*) ("Tag", SageMaker API reference): any
    Unicode letter, number or space, which Python's re module cannot express and the regex module can."""
    request = changed(["Tags"], [{"Key": "Équipe données", "Value": "Zürich 2"}])
    assert request_problems(request, "CreateTransformJob") == []
    validate_parameters(request, service_model().operation_model("CreateTransformJob").input_shape)


def test_the_validation_gate_rejects_an_invalid_resolved_request() -> None:
    step = transform_step()
    step["Arguments"]["TransformResources"]["InstanceCount"] = {"Get": "Parameters.Count"}
    document = top_level(model_step(), step)
    document["Parameters"] = [{"Name": "Count", "Type": "Integer", "DefaultValue": 1}]
    with pytest.raises(InvalidRequest, match=r"CreateTransformJob \(T\) would be refused:\n.*InstanceCount: 0"):
        resolve_execution(document, {"Count": "0"})
    assert resolve_execution(document, {"Count": "0"}, validate=False).request("T")["TransformResources"][
        "InstanceCount"] == 0


@pytest.mark.slow
def test_the_resolver_accepts_definitions_as_json_text(batch: dict) -> None:
    assert resolve_execution(json.dumps(batch), {"InputManifestUrl": MANIFEST_URL}).names == [
        "ApprovedModel", "BatchTransformManifest"]
