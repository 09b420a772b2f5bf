"""The pipeline definition JSON, generated offline for both transform modes and both input paths."""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Iterator

import boto3
import pytest
from conftest import DATA_DIR, REGION, load_json
from moto import mock_aws

import deploy
import transform_and_ingest as tai
from pipelines import pipeline as pl
from pipelines.pipeline import (
    DATA_DIR as CONTAINER_DATA_DIR,
)
from pipelines.pipeline import (
    DATA_WRANGLER_FLOW,
    FAIL_STEP,
    FLOW_MANIFEST_STEP,
    FLOW_STEP,
    MANIFEST_DIR,
    SCRIPT_MANIFEST_STEP,
    SCRIPT_STEP,
    FlowError,
    PipelineSettings,
    bind_feature_store_output,
    build_pipeline,
    definition,
    flow_source_name,
)

ROLE = "arn:aws:iam::123456789012:role/project-execution-role"
CODE_URI = "s3://artifact-bucket/pipeline-code/0123456789abcdef/"  # the uploaded processing/ folder
FLOW_URI = "s3://flows/abalone.flow"
FLOW_OUTPUT = "7e3f1c2d-5b4a-4f6e-8d9c-0a1b2c3d4e5f.default"
GET_INPUT = {"Get": "Parameters.InputDataUrl"}
GET_MANIFEST = {"Get": "Parameters.InputManifestUrl"}
GET_GROUP = {"Get": "Parameters.FeatureGroupName"}
GET_COUNT = {"Get": "Parameters.ProcessingInstanceCount"}
# CreateProcessingJob (botocore's SageMaker model, shapes ContainerArgument and ProcessingEnvironmentValue):
# every container argument and environment value is at most 256 characters.
MAX_ARGUMENT = 256


@pytest.fixture(scope="module")
def session() -> Iterator[object]:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    with mock_aws():  # nothing may reach AWS while the definitions are built
        yield PipelineSession(boto_session=boto3.session.Session(region_name=REGION))


@pytest.fixture
def flow() -> dict:
    return load_json(DATA_DIR / "abalone.flow")


@pytest.fixture(scope="module")
def built(session) -> dict:
    """The definition of each mode, built once (the SDK takes about a second per pipeline)."""
    flow = load_json(DATA_DIR / "abalone.flow")
    return {"Script": definition(build_pipeline(settings(), session)),
            "DataWranglerFlow": definition(build_pipeline(flow_settings(flow), session))}


@pytest.fixture
def documents(built: dict) -> dict:
    return copy.deepcopy(built)


def settings(**overrides: object) -> PipelineSettings:
    values = dict(name="s3-fs-ingest-demo", role_arn=ROLE, region=REGION, feature_group_name="abalone",
                  instance_type="ml.m5.xlarge", instance_count=2, artifact_bucket="artifact-bucket",
                  code_s3_uri=CODE_URI)
    values.update(overrides)
    return PipelineSettings(**values)


def flow_settings(flow: dict, **overrides: object) -> PipelineSettings:
    values = dict(transform_mode=DATA_WRANGLER_FLOW, code_s3_uri=None, flow_s3_uri=FLOW_URI, flow=flow,
                  flow_output_name=FLOW_OUTPUT)
    return settings(**{**values, **overrides})


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


def processing_steps(document: dict) -> dict:
    return {name: step for name, step in steps_by_name(document).items() if step["Type"] == "Processing"}


# -- a tiny evaluator of the definition's routing, as SageMaker Pipelines documents it ------------------------
# ("Condition step", SageMaker developer guide: all conditions of a step must hold for its IfSteps to run,
# otherwise its ElseSteps run; a Not condition negates the one it holds.)


def resolve(value: object, parameters: dict) -> object:
    if isinstance(value, dict) and set(value) == {"Get"}:
        kind, _, name = value["Get"].partition(".")
        assert kind == "Parameters", f"unexpected expression {value}"
        return parameters[name]
    if isinstance(value, dict) and set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(resolve(item, parameters)) for item in join["Values"])
    assert not isinstance(value, dict), f"unexpected expression {value}"
    return value


def holds(condition: dict, parameters: dict) -> bool:
    if condition["Type"] == "Not":
        return not holds(condition["Condition"], parameters)
    assert condition["Type"] == "Equals", condition
    return resolve(condition["LeftValue"], parameters) == resolve(condition["RightValue"], parameters)


def steps_that_run(document: dict, parameters: dict) -> list[str]:
    """The names of the non-condition steps an execution with ``parameters`` runs."""
    defaults = {p["Name"]: p.get("DefaultValue") for p in document["Parameters"]}
    values = {**defaults, **parameters}
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


def test_parameters_are_the_ones_the_lambda_and_users_set(documents: dict) -> None:
    document = documents["Script"]
    # Exactly one of InputDataUrl / InputManifestUrl is set by the Lambda: both default to "".
    assert document["Parameters"] == [
        {"Name": "InputDataUrl", "Type": "String", "DefaultValue": ""},
        {"Name": "InputManifestUrl", "Type": "String", "DefaultValue": ""},
        {"Name": "FeatureGroupName", "Type": "String", "DefaultValue": "abalone"},
        {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
        {"Name": "ProcessingInstanceCount", "Type": "Integer", "DefaultValue": 2},
    ]
    assert document.get("PipelineExperimentConfig") is None


@pytest.mark.parametrize("mode", ["Script", "DataWranglerFlow"])
@pytest.mark.parametrize(("parameters", "expected"), [
    ({"InputDataUrl": "s3://data/in/a.csv"}, "object"),
    ({"InputManifestUrl": "s3://artifacts/input-manifests/0f.manifest"}, "manifest"),
    ({"InputDataUrl": "s3://data/in/a.csv", "InputManifestUrl": "s3://artifacts/input-manifests/0f.manifest"},
     "manifest"),
    ({}, "fail"),
])
def test_exactly_one_branch_runs_for_every_combination_of_inputs(
    documents: dict, mode: str, parameters: dict, expected: str
) -> None:
    document = documents[mode]
    names = {"Script": {"object": SCRIPT_STEP, "manifest": SCRIPT_MANIFEST_STEP},
             "DataWranglerFlow": {"object": FLOW_STEP, "manifest": FLOW_MANIFEST_STEP}}[mode]
    assert steps_that_run(document, parameters) == [names.get(expected, FAIL_STEP)]
    # No condition step sits inside another: AWS's pipeline definition schema allows none there.
    for step in document["Steps"]:
        for branch in ("IfSteps", "ElseSteps"):
            assert all(child["Type"] != "Condition" for child in step["Arguments"].get(branch, []))


def test_no_input_fails_the_execution_with_a_message_saying_how_to_start_it(documents: dict) -> None:
    fail = steps_by_name(documents["Script"])[FAIL_STEP]
    assert fail["Type"] == "Fail"
    message = fail["Arguments"]["ErrorMessage"]
    assert "InputDataUrl=s3://bucket/key" in message and "InputManifestUrl=" in message


def assert_code_input(code: dict, app: dict) -> None:
    """The whole uploaded processing/ folder, as the entry point's directory. With S3DataType S3Prefix,
    SageMaker downloads every object whose key starts with the prefix ("S3DataType", ProcessingS3Input,
    CreateProcessingJob API reference) into LocalPath by its key below the prefix, so the modules sit beside
    the entry point, which ContainerEntrypoint runs from there."""
    assert code["S3Uri"] == CODE_URI and code["S3Uri"].endswith("/")
    assert code["S3DataType"] == "S3Prefix" and code["S3InputMode"] == "File"
    assert code["S3DataDistributionType"] == "FullyReplicated"  # every instance runs the code
    assert app["ContainerEntrypoint"] == ["python3", f"{code['LocalPath']}/{deploy.ENTRY_POINT}"]
    assert pl.ENTRY_POINT == deploy.ENTRY_POINT


def test_script_mode_object_step_runs_the_script_on_one_instance(documents: dict) -> None:
    step = processing_steps(documents["Script"])[SCRIPT_STEP]
    arguments = step["Arguments"]
    app = arguments["AppSpecification"]
    assert app["ImageUri"] == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    assert app["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/transform_and_ingest.py"]
    cluster = arguments["ProcessingResources"]["ClusterConfig"]
    assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
    assert cluster["InstanceCount"] == 1  # one object is not split: more instances would sit idle
    assert arguments["RoleArn"] == ROLE

    inputs = {i["InputName"]: i["S3Input"] for i in arguments["ProcessingInputs"]}
    assert set(inputs) == {"code", "data"}
    assert_code_input(inputs["code"], app)
    assert inputs["data"]["S3Uri"] == GET_INPUT
    assert inputs["data"]["S3DataType"] == "S3Prefix"
    assert inputs["data"]["LocalPath"] == CONTAINER_DATA_DIR

    (failed,) = arguments["ProcessingOutputConfig"]["Outputs"]
    assert failed["OutputName"] == "failed-rows"
    assert failed["S3Output"]["S3UploadMode"] == "Continuous"
    assert failed["S3Output"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        "s3://artifact-bucket/failed-rows", {"Get": "Execution.PipelineExecutionId"}]}}


def test_script_mode_manifest_step_reads_the_manifest_on_every_instance(documents: dict) -> None:
    step = processing_steps(documents["Script"])[SCRIPT_MANIFEST_STEP]
    arguments = step["Arguments"]
    assert arguments["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == GET_COUNT
    inputs = {i["InputName"]: i["S3Input"] for i in arguments["ProcessingInputs"]}
    assert set(inputs) == {"code", "manifest"}
    assert_code_input(inputs["code"], arguments["AppSpecification"])
    manifest = inputs["manifest"]
    # The small manifest object itself (short key, always downloadable), on every instance: each instance
    # reads the whole list and takes its share of it.
    assert manifest["S3Uri"] == GET_MANIFEST and manifest["S3DataType"] == "S3Prefix"
    assert manifest["S3DataDistributionType"] == "FullyReplicated" and manifest["LocalPath"] == MANIFEST_DIR
    parsed = tai.parse_args(arguments["AppSpecification"]["ContainerArguments"][:4] + [
        "--feature-group-name", "g", "--region", REGION])
    assert str(parsed.manifest_dir) == MANIFEST_DIR and parsed.download_dir is not None


@pytest.mark.parametrize("step_name", [SCRIPT_STEP, SCRIPT_MANIFEST_STEP])
def test_script_mode_passes_arguments_the_script_accepts(documents: dict, step_name: str) -> None:
    arguments = processing_steps(documents["Script"])[step_name]["Arguments"]
    container_args = arguments["AppSpecification"]["ContainerArguments"]
    as_given = dict(zip(container_args[::2], container_args[1::2], strict=True))
    assert as_given["--feature-group-name"] == GET_GROUP
    assert as_given["--region"] == REGION
    assert as_given["--failed-rows-dir"] == arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"]
    assert "--source-uri" not in as_given  # the script reads its input's URL from the job's configuration
    resolved = [json.dumps(value) if isinstance(value, dict) else value for value in container_args]
    parsed = tai.parse_args(resolved)
    assert parsed.max_workers >= 1


@pytest.mark.parametrize("mode", ["Script", "DataWranglerFlow"])
def test_no_container_argument_or_environment_value_can_exceed_256_characters(documents: dict, mode: str) -> None:
    """CreateProcessingJob refuses a container argument or environment value over 256 characters, and an
    S3 URL may have 1,024 (a StartPipelineExecution parameter value may too). Resolved with the longest
    values each parameter can take, every argument of every processing step must still fit."""
    document = documents[mode]
    longest = {
        "InputDataUrl": "s3://" + "b" * 63 + "/" + "k" * (1024 - 69),
        "InputManifestUrl": "s3://" + "b" * 63 + "/" + "m" * (1024 - 69),
        "FeatureGroupName": "f" * 64,  # CreateFeatureGroup: FeatureGroupName is at most 64 characters
        "ProcessingInstanceType": "ml.m5.24xlarge",
        "ProcessingInstanceCount": 100,
    }
    assert len(longest["InputDataUrl"]) == len(longest["InputManifestUrl"]) == 1024
    checked = 0
    for name, step in processing_steps(document).items():
        app = step["Arguments"]["AppSpecification"]
        values = app.get("ContainerArguments", []) + list(step["Arguments"].get("Environment", {}).values())
        for value in values:
            text = json.dumps(value)
            assert "InputDataUrl" not in text and "InputManifestUrl" not in text, (name, value)
            assert len(str(resolve(value, longest))) <= MAX_ARGUMENT, (name, value)
            checked += 1
    assert checked > 0


def test_the_definition_is_deterministic(session) -> None:
    first = build_pipeline(settings(), session).definition()
    assert first == build_pipeline(settings(), session).definition()


@pytest.mark.parametrize("mode", ["Script", "DataWranglerFlow"])
def test_every_processing_step_retries_quota_capacity_and_throttling_errors(documents: dict, mode: str) -> None:
    """"Retry Policy for Pipeline Steps" (SageMaker developer guide,
    https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-retry-policy.html): a processing step may carry
    RetryPolicies for Step.SERVICE_FAULT, Step.THROTTLING, SageMaker.JOB_INTERNAL_ERROR,
    SageMaker.CAPACITY_ERROR and SageMaker.RESOURCE_LIMIT; IntervalSeconds at most 43,200, MaxAttempts at
    most 20, ExpireAfterMin at most 14,400. Without them a burst beyond the processing-job quota drops files."""
    steps = processing_steps(documents[mode])
    assert len(steps) == 2
    for name, step in steps.items():
        policies = step["RetryPolicies"]
        covered = [exception for policy in policies for exception in policy["ExceptionType"]]
        assert sorted(covered) == sorted({
            "SageMaker.RESOURCE_LIMIT", "SageMaker.CAPACITY_ERROR", "SageMaker.JOB_INTERNAL_ERROR",
            "Step.THROTTLING", "Step.SERVICE_FAULT"}), name
        for policy in policies:
            assert policy["BackoffRate"] > 1, (name, policy)  # exponential backoff
            assert 1 <= policy["IntervalSeconds"] <= 43_200, (name, policy)
            # bounded: by time or by attempts (the SDK emits exactly one of them)
            assert ("ExpireAfterMin" in policy) != ("MaxAttempts" in policy), (name, policy)
            assert 1 <= policy.get("ExpireAfterMin", 1) <= 14_400 and 1 <= policy.get("MaxAttempts", 1) <= 20
        quota = next(p for p in policies if "SageMaker.RESOURCE_LIMIT" in p["ExceptionType"])
        assert "SageMaker.CAPACITY_ERROR" in quota["ExceptionType"] and quota["ExpireAfterMin"] >= 60


def test_data_wrangler_mode_names_the_data_input_after_the_flow_source(documents: dict) -> None:
    steps = processing_steps(documents["DataWranglerFlow"])
    paths = ((FLOW_STEP, "S3Prefix", GET_INPUT), (FLOW_MANIFEST_STEP, "ManifestFile", GET_MANIFEST))
    for name, data_type, url in paths:
        arguments = steps[name]["Arguments"]
        assert arguments["AppSpecification"]["ImageUri"].startswith(
            "245179582081.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-data-wrangler-container:")
        assert arguments["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == GET_COUNT  # Spark
        inputs = {i["InputName"]: i["S3Input"] for i in arguments["ProcessingInputs"]}
        assert set(inputs) == {"flow", "abalone.csv"}  # not "data": the container looks for the source's name
        assert inputs["flow"]["S3Uri"] == FLOW_URI and inputs["flow"]["LocalPath"] == "/opt/ml/processing/flow"
        assert inputs["abalone.csv"]["S3Uri"] == url
        # ManifestFile: SageMaker downloads the objects the manifest lists (CreateProcessingJob, S3DataType)
        assert inputs["abalone.csv"]["S3DataType"] == data_type, name
        assert inputs["abalone.csv"]["LocalPath"] == "/opt/ml/processing/abalone.csv"


def test_data_wrangler_mode_passes_the_output_config_as_aws_exports_do(documents: dict) -> None:
    """AWS's Data Wrangler -> Feature Store pipelines pass ONE container argument
    ``--output-config '{"<node id>.<output>": {"content_type": "CSV"}}'`` (SageMaker Python SDK integration
    test test_one_step_ingestion_pipeline, tests/integ/test_workflow.py; the original solution,
    aws-samples/amazon-sagemaker-reusable-components, project-seed-code/s3-fs-ingestion/pipeline/pipeline.py)."""
    steps = processing_steps(documents["DataWranglerFlow"])
    for name in (FLOW_STEP, FLOW_MANIFEST_STEP):
        (argument,) = steps[name]["Arguments"]["AppSpecification"]["ContainerArguments"]
        option, value = shlex.split(argument)  # the exported form: the option, a space, the single-quoted JSON
        assert option == "--output-config"
        assert json.loads(value) == {FLOW_OUTPUT: {"content_type": "CSV"}}
        assert len(argument) <= MAX_ARGUMENT


def test_an_output_config_longer_than_a_container_argument_fails_the_build(session, flow: dict) -> None:
    long_id = "n" * 240
    flow["nodes"][1]["node_id"] = long_id
    with pytest.raises(FlowError, match=r"--output-config .* has 2\d\d characters; CreateProcessingJob allows 256"):
        build_pipeline(flow_settings(flow, flow_output_name=f"{long_id}.default"), session)


def test_data_wrangler_mode_outputs_to_the_feature_group_parameter(session, flow: dict) -> None:
    pipeline = build_pipeline(flow_settings(flow), session)
    document = definition(pipeline)
    for name in (FLOW_STEP, FLOW_MANIFEST_STEP):
        (output,) = processing_steps(document)[name]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
        assert output == {"OutputName": FLOW_OUTPUT, "AppManaged": True,
                          "FeatureStoreOutput": {"FeatureGroupName": GET_GROUP}}
    # upsert() sends what definition() returns: the SDK's create/update requests carry the binding too.
    request = pipeline._create_args(ROLE, "description", None)
    assert json.loads(request["PipelineDefinition"]) == document


def test_the_data_wrangler_regions_are_the_pinned_sdks() -> None:
    regions = pl.data_wrangler_regions()
    assert REGION in regions and "us-east-1" in regions
    assert all(region.count("-") >= 2 for region in regions)


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
    step = {"Name": "S", "Type": "Processing", "Arguments": {"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "o", "S3Output": {"S3Uri": "s3://placeholder", "LocalPath": "/x", "S3UploadMode": "EndOfJob"}},
        {"OutputName": "other", "S3Output": {"S3Uri": "s3://kept"}},
    ]}}}
    # the step sits in a condition step's branch, as the pipeline's steps do
    document = {"Steps": [{"Name": "C", "Type": "Condition", "Arguments": {"Conditions": [], "ElseSteps": [step]}}]}
    bind_feature_store_output(document, "S", "o", "literal-group")
    outputs = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert outputs == [
        {"OutputName": "o", "AppManaged": True, "FeatureStoreOutput": {"FeatureGroupName": "literal-group"}},
        {"OutputName": "other", "S3Output": {"S3Uri": "s3://kept"}},
    ]
    with pytest.raises(ValueError, match="one output named 'missing'"):
        bind_feature_store_output(document, "S", "missing", "g")
    with pytest.raises(ValueError, match="one processing step named 'T'"):
        bind_feature_store_output(document, "T", "o", "g")


@pytest.mark.parametrize("uri", [None, "", "s3://artifact-bucket/pipeline-code/0123/transform_and_ingest.py",
                                 "/local/processing/"])
def test_script_mode_needs_the_uploaded_folder_as_a_prefix(session, uri: str | None) -> None:
    """A file's URI as the code input would bring that file alone (S3Prefix of its key): no sibling module."""
    with pytest.raises(ValueError, match="needs the uploaded processing/ folder as an s3://bucket/prefix/ URI"):
        build_pipeline(settings(code_s3_uri=uri), session)


def test_an_unknown_mode_is_refused(session) -> None:
    with pytest.raises(ValueError, match="transform mode must be one of Script, DataWranglerFlow"):
        build_pipeline(settings(transform_mode="Spark"), session)
