"""The pipeline definition JSON, generated offline for both transform modes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import boto3
import pytest
from conftest import DATA_DIR, REGION, load_json
from moto import mock_aws

from pipelines.pipeline import (
    DATA_DIR as CONTAINER_DATA_DIR,
)
from pipelines.pipeline import (
    DATA_WRANGLER_FLOW,
    FLOW_STEP,
    SCRIPT_STEP,
    FlowError,
    PipelineSettings,
    bind_feature_store_output,
    build_pipeline,
    definition,
    flow_source_name,
)
from processing import transform_and_ingest as tai

ROLE = "arn:aws:iam::123456789012:role/project-execution-role"
SCRIPT_URI = "s3://artifact-bucket/pipeline-code/0123456789abcdef/transform_and_ingest.py"
FLOW_URI = "s3://flows/abalone.flow"
FLOW_OUTPUT = "7e3f1c2d-5b4a-4f6e-8d9c-0a1b2c3d4e5f.default"
GET_INPUT = {"Get": "Parameters.InputDataUrl"}
GET_GROUP = {"Get": "Parameters.FeatureGroupName"}


@pytest.fixture(scope="module")
def session() -> Iterator[object]:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    with mock_aws():  # nothing may reach AWS while the definitions are built
        yield PipelineSession(boto_session=boto3.session.Session(region_name=REGION))


@pytest.fixture
def flow() -> dict:
    return load_json(DATA_DIR / "abalone.flow")


def settings(**overrides: object) -> PipelineSettings:
    values = dict(name="s3-fs-ingest-demo", role_arn=ROLE, region=REGION, feature_group_name="abalone",
                  instance_type="ml.m5.xlarge", instance_count=2, artifact_bucket="artifact-bucket",
                  script_s3_uri=SCRIPT_URI)
    values.update(overrides)
    return PipelineSettings(**values)


def flow_settings(flow: dict, **overrides: object) -> PipelineSettings:
    values = dict(transform_mode=DATA_WRANGLER_FLOW, script_s3_uri=None, flow_s3_uri=FLOW_URI, flow=flow,
                  flow_output_name=FLOW_OUTPUT)
    return settings(**{**values, **overrides})


def only_step(document: dict) -> dict:
    assert len(document["Steps"]) == 1
    return document["Steps"][0]


def test_parameters_are_the_ones_the_lambda_and_users_set(session) -> None:
    document = definition(build_pipeline(settings(), session))
    assert document["Parameters"] == [
        {"Name": "InputDataUrl", "Type": "String"},
        {"Name": "FeatureGroupName", "Type": "String", "DefaultValue": "abalone"},
        {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
        {"Name": "ProcessingInstanceCount", "Type": "Integer", "DefaultValue": 2},
    ]
    assert document.get("PipelineExperimentConfig") is None


def test_script_mode_runs_the_processing_script_on_the_scikit_learn_image(session) -> None:
    step = only_step(definition(build_pipeline(settings(), session)))
    assert (step["Name"], step["Type"]) == (SCRIPT_STEP, "Processing")
    arguments = step["Arguments"]
    app = arguments["AppSpecification"]
    assert app["ImageUri"] == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    assert app["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/transform_and_ingest.py"]
    cluster = arguments["ProcessingResources"]["ClusterConfig"]
    assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
    assert cluster["InstanceCount"] == {"Get": "Parameters.ProcessingInstanceCount"}
    assert arguments["RoleArn"] == ROLE

    inputs = {i["InputName"]: i["S3Input"] for i in arguments["ProcessingInputs"]}
    assert inputs["code"]["S3Uri"] == SCRIPT_URI
    assert inputs["data"]["S3Uri"] == GET_INPUT
    assert inputs["data"]["LocalPath"] == CONTAINER_DATA_DIR
    # Several instances: every file goes to one of them (one instance: it gets everything).
    assert inputs["data"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert inputs["code"]["S3DataDistributionType"] == "FullyReplicated"

    (failed,) = arguments["ProcessingOutputConfig"]["Outputs"]
    assert failed["OutputName"] == "failed-rows"
    assert failed["S3Output"]["S3UploadMode"] == "Continuous"
    assert failed["S3Output"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        "s3://artifact-bucket/failed-rows", {"Get": "Execution.PipelineExecutionId"}]}}


def test_script_mode_passes_arguments_the_script_accepts(session) -> None:
    arguments = only_step(definition(build_pipeline(settings(), session)))["Arguments"]
    container_args = arguments["AppSpecification"]["ContainerArguments"]
    as_given = dict(zip(container_args[::2], container_args[1::2], strict=True))
    assert as_given["--feature-group-name"] == GET_GROUP
    assert as_given["--source-uri"] == GET_INPUT  # record ids derive from the uploaded object's URI
    assert as_given["--region"] == REGION
    assert as_given["--failed-rows-dir"] == arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"]
    resolved = [json.dumps(value) if isinstance(value, dict) else value for value in container_args]
    parsed = tai.parse_args(resolved)
    assert str(parsed.input_dir) == CONTAINER_DATA_DIR and parsed.max_workers >= 1


def test_the_definition_is_deterministic(session) -> None:
    first = build_pipeline(settings(), session).definition()
    assert first == build_pipeline(settings(), session).definition()


def test_data_wrangler_mode_names_the_data_input_after_the_flow_source(session, flow: dict) -> None:
    step = only_step(definition(build_pipeline(flow_settings(flow), session)))
    assert step["Name"] == FLOW_STEP
    arguments = step["Arguments"]
    assert arguments["AppSpecification"]["ImageUri"].startswith(
        "245179582081.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-data-wrangler-container:")
    inputs = {i["InputName"]: i["S3Input"] for i in arguments["ProcessingInputs"]}
    assert set(inputs) == {"flow", "abalone.csv"}  # not "data": the container looks for the source's name
    assert inputs["flow"]["S3Uri"] == FLOW_URI and inputs["flow"]["LocalPath"] == "/opt/ml/processing/flow"
    assert inputs["abalone.csv"]["S3Uri"] == GET_INPUT
    assert inputs["abalone.csv"]["LocalPath"] == "/opt/ml/processing/abalone.csv"


def test_data_wrangler_mode_outputs_to_the_feature_group_parameter(session, flow: dict) -> None:
    pipeline = build_pipeline(flow_settings(flow), session)
    (output,) = only_step(definition(pipeline))["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output == {"OutputName": FLOW_OUTPUT, "AppManaged": True,
                      "FeatureStoreOutput": {"FeatureGroupName": GET_GROUP}}
    # upsert() sends what definition() returns: the SDK's create/update requests carry the binding too.
    request = pipeline._create_args(ROLE, "description", None)
    assert json.loads(request["PipelineDefinition"]) == definition(pipeline)


def test_a_flow_with_several_sources_is_refused(flow: dict) -> None:
    flow["nodes"].append(copy.deepcopy(flow["nodes"][0]))
    with pytest.raises(FlowError, match="exactly one source dataset .* found 2"):
        flow_source_name(flow)


def test_an_output_that_is_not_in_the_flow_is_refused(session, flow: dict) -> None:
    with pytest.raises(FlowError, match="output 'nope.default' is not in the flow"):
        build_pipeline(flow_settings(flow, flow_output_name="nope.default"), session)


def test_a_source_that_is_not_s3_is_refused(flow: dict) -> None:
    flow["nodes"][0]["parameters"]["dataset_definition"]["datasetSourceType"] = "Athena"
    with pytest.raises(FlowError, match="must be an S3 dataset"):
        flow_source_name(flow)


def test_bind_feature_store_output_replaces_exactly_one_placeholder() -> None:
    document = {"Steps": [{"Name": "S", "Type": "Processing", "Arguments": {"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "o", "S3Output": {"S3Uri": "s3://placeholder", "LocalPath": "/x", "S3UploadMode": "EndOfJob"}},
        {"OutputName": "other", "S3Output": {"S3Uri": "s3://kept"}},
    ]}}}]}
    bind_feature_store_output(document, "S", "o", "literal-group")
    outputs = document["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert outputs == [
        {"OutputName": "o", "AppManaged": True, "FeatureStoreOutput": {"FeatureGroupName": "literal-group"}},
        {"OutputName": "other", "S3Output": {"S3Uri": "s3://kept"}},
    ]
    with pytest.raises(ValueError, match="one output named 'missing'"):
        bind_feature_store_output(document, "S", "missing", "g")
    with pytest.raises(ValueError, match="one processing step named 'T'"):
        bind_feature_store_output(document, "T", "o", "g")


def test_an_unknown_mode_is_refused(session) -> None:
    with pytest.raises(ValueError, match="transform mode must be one of Script, DataWranglerFlow"):
        build_pipeline(settings(transform_mode="Spark"), session)
