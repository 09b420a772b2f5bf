"""The walkthrough notebooks: committed clean, and executed end to end against a moto server.

The notebooks run under papermill in a kernel of this interpreter, with boto3 pointed at a moto server
(``AWS_ENDPOINT_URL``) and ``SKIP_AWS_ONLY_STEPS = True``: every step moto can serve runs; the steps
only AWS can serve (Service Catalog, CreateProject, the real pipeline run, the Feature Store runtime,
Athena results, DeleteFeatureGroup; for batch inference also ListPipelineExecutionSteps, DeleteModelPackage
and DeleteModelPackageGroup, which moto 5.2.5 does not implement) report "skipped: needs AWS" and are covered
by the unit tests of the functions they call (tests/test_notebooks_helpers.py, tests/test_notebooks_batch.py).
The tests assert that exact list of skipped steps.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import nbformat
import papermill
import pytest
from e2e_support import (
    ACCOUNT,
    NOTEBOOKS_DIR,
    REGION,
    REPO,
    lambda_app,
    moto_feature_group_fixes,
    moto_server,
    walkthrough_helpers,
    write_abalone_zip,
)
from loading import load_module
from nbclient import NotebookClient

NOTEBOOKS = ("00-setup.ipynb", "01-feature-store-ingest-pipeline.ipynb", "02-batch-inference.ipynb",
             "99-clean-up.ipynb")
MAX_CELL_LINES = 15
SKIPPED_LINE = re.compile(r"^skipped: needs AWS: (.+)$", re.MULTILINE)

# What a run against moto cannot execute, per notebook: asserted, and printed with pytest -s.
AWS_ONLY_STEPS = {
    "00-setup.ipynb": [],
    "01-feature-store-ingest-pipeline.ipynb": [
        "create the project from the published template",  # Service Catalog DescribeProduct, CreateProject
        "wait until the project is created",  # DescribeProject
        "read the project's outputs and resources",  # the project's stack
        # The project's stack turns them on (moto runs no project stack, and its GetBucketNotificationConfiguration
        # omits EventBridgeConfiguration): unit-tested with Stubber.
        "check that the data bucket sends its events to EventBridge",
        "wait until the project's build has deployed the SageMaker pipeline",  # CodePipeline + CodeBuild
        "wait for the pipeline execution the upload started",  # nothing runs the Lambda or the pipeline
        "read the records from the online store (GetRecord)",  # Feature Store runtime
        "read the records from the offline store (Athena)",  # Athena results of a real offline store
    ],
    "02-batch-inference.ipynb": [
        "create the project from the published template",  # Service Catalog DescribeProduct, CreateProject
        "wait until the project is created",  # DescribeProject
        "read the project's outputs and resources",  # the project's stack
        "check that the data bucket sends its events to EventBridge",  # the project's stack turns them on
        "wait until the project's build has deployed the pipeline with the approved model",  # CodePipeline + CodeBuild
        "wait for the pipeline execution the upload started",  # nothing runs the Lambda or the pipeline
        "read the predictions",  # no transform job runs: test_batch_walkthrough_runs_against_moto reads them
    ],
    "99-clean-up.ipynb": [
        "delete the project",  # DeleteProject
        "delete the batch-inference project",  # DeleteProject
        "delete the models the batch-inference pipeline created",  # ListPipelineExecutionSteps (not in moto)
        "delete the model packages and the model package group",  # DeleteModelPackage(Group) (not in moto)
        "delete the feature group",  # DeleteFeatureGroup
    ],
}

PROJECT_ID = "p-walkthrough1"
PIPELINE = f"sagemaker-{PROJECT_ID}-fs-ingestion"
ARTIFACT_BUCKET = f"sagemaker-{PROJECT_ID}-artifacts-{ACCOUNT}"
TRAIL_BUCKET = f"sagemaker-{PROJECT_ID}-trail-{ACCOUNT}"
BUILD_LOG_GROUP = "/aws/codebuild/sagemaker-abalone-ingestion-deploy-pipeline"
DATA_BUCKET = "walkthrough-data"
FEATURE_GROUP = "abalone-walkthrough"


def load(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


# --- the committed notebooks -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_carry_no_outputs(name: str) -> None:
    notebook = load(name)
    nbformat.validate(notebook)
    for cell in code_cells(notebook):
        assert cell.outputs == [], f"{name} cell {cell.id} has outputs: clear them before committing"
        assert cell.execution_count is None, f"{name} cell {cell.id} has an execution count"
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_are_one_tagged_cell_first(name: str) -> None:
    cells = code_cells(load(name))
    tagged = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is cells[0], f"{name}: the first code cell must be the only 'parameters'"
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*) = ", tagged[0].source, re.MULTILINE))
    assert {"STATE_FILE", "ENDPOINT_URL", "SKIP_AWS_ONLY_STEPS"} <= names
    for cell in cells[1:]:  # parameters are set in the parameters cell only
        assert not re.search(r"^[A-Z][A-Z0-9_]* = ", cell.source, re.MULTILINE), f"{name} cell {cell.id}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_cells_call_helpers_instead_of_long_code(name: str) -> None:
    for cell in code_cells(load(name))[1:]:
        lines = [line for line in cell.source.splitlines() if line.strip()]
        assert len(lines) <= MAX_CELL_LINES, f"{name} cell {cell.id}: {len(lines)} lines; move code to fsi_walkthrough"
        for forbidden in ("input(", "%store", "!aws", "!wget", "!pip", "boto3.client(", "while "):
            assert forbidden not in cell.source, f"{name} cell {cell.id} uses {forbidden!r}"


def test_setup_cites_the_data_set_and_downloads_it_at_run_time() -> None:
    notebook = load("00-setup.ipynb")
    text = "\n".join(cell.source for cell in notebook.cells)
    assert "https://archive.ics.uci.edu/dataset/1/abalone" in text
    assert "CC BY 4.0" in text and "Dua, D. and Graff, C." in text
    assert "../dataset" not in text  # nothing is read from a committed copy of the data


def test_clean_up_needs_an_explicit_confirmation() -> None:
    parameters = code_cells(load("99-clean-up.ipynb"))[0].source
    assert re.search(r"^CONFIRM_DELETE = False\b", parameters, re.MULTILINE)


@pytest.fixture
def isolated_jupyter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Kernels see neither the developer's kernelspecs nor their IPython profile and startup files:
    "python3" is then the ipykernel of this environment, which jupyter_client starts with sys.executable."""
    for variable, folder in (("JUPYTER_DATA_DIR", "jupyter-data"), ("JUPYTER_CONFIG_DIR", "jupyter-config"),
                             ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"), ("IPYTHONDIR", "ipython")):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")
    monkeypatch.delenv("JUPYTER_PATH", raising=False)


def test_the_notebook_kernel_is_this_interpreter(isolated_jupyter) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    NotebookClient(notebook, kernel_name="python3", timeout=60).execute()
    assert notebook.cells[0].outputs[0]["text"].strip() == sys.executable


# --- the walkthrough against moto ---------------------------------------------------------------------------


# The notebooks that read 02-batch-inference's state file (a relative default would land in notebooks/).
BATCH_STATE_READERS = ("02-batch-inference.ipynb", "99-clean-up.ipynb")


def run(name: str, tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    output = tmp_path / f"executed-{name}"
    defaults = {"SKIP_AWS_ONLY_STEPS": True, "STATE_FILE": str(tmp_path / "state.json")}
    if name in BATCH_STATE_READERS:
        defaults["BATCH_STATE_FILE"] = str(tmp_path / "batch-state.json")
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / name),
        str(output),
        parameters={**defaults, **parameters},
        kernel_name="python3",
        cwd=str(NOTEBOOKS_DIR),
        progress_bar=False,
        execution_timeout=120,
    )
    return nbformat.read(output, as_version=4)


def printed(notebook: nbformat.NotebookNode) -> str:
    streams = [output for cell in code_cells(notebook) for output in cell.outputs if output.output_type == "stream"]
    return "".join(output.get("text", "") for output in streams)


def skipped_steps(notebook: nbformat.NotebookNode) -> list[str]:
    return SKIPPED_LINE.findall(printed(notebook))


def report_skipped(skipped: dict[str, list[str]]) -> None:
    print("\nSteps the notebooks did not execute against moto (they need AWS):")
    for name, steps in skipped.items():
        print(f"  {name}: {steps or 'none'}")
    assert skipped == {name: AWS_ONLY_STEPS[name] for name in skipped}


def eventbridge_on(bucket: str) -> bool:
    from moto.s3.models import s3_backends  # the server keeps its state in this process

    config = s3_backends[ACCOUNT]["aws"].get_bucket(bucket).notification_configuration
    return config is not None and config.event_bridge is not None


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch, isolated_jupyter):
    """A moto server the notebook kernels reach through AWS_ENDPOINT_URL (they inherit this environment)."""
    moto_feature_group_fixes().patch(monkeypatch)  # missing groups answer ResourceNotFound, as AWS does
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield url


def play_the_provisioned_project(state_file: Path, uploaded_url: str) -> dict:
    """What CreateProject and the project's first build would have created, which moto cannot do:
    the retained buckets (versioned, with old versions and delete markers), the SageMaker pipeline with
    an execution for the upload, the build's log group, offline store data and its Glue table."""
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    for bucket in (ARTIFACT_BUCKET, TRAIL_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for body in (b"v1", b"v2"):
            s3.put_object(Bucket=bucket, Key="some/object", Body=body)
        s3.delete_object(Bucket=bucket, Key="some/object")
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "InputDataUrl", "Type": "String"}], "Steps": []}
    sm.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition),
                       RoleArn=f"arn:aws:iam::{ACCOUNT}:role/x", ClientRequestToken="t" * 32)
    sm.start_pipeline_execution(PipelineName=PIPELINE, ClientRequestToken="u" * 32,
                                PipelineParameters=[{"Name": "InputDataUrl", "Value": uploaded_url}])
    boto3.client("logs").create_log_group(logGroupName=BUILD_LOG_GROUP)
    description = sm.describe_feature_group(FeatureGroupName=FEATURE_GROUP)
    resolved = description["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    bucket, key = resolved.removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=f"{key}/year=2025/part-0.parquet", Body=b"parquet")
    catalog = description["OfflineStoreConfig"]["DataCatalogConfig"]
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": catalog["Database"]})
    glue.create_table(DatabaseName=catalog["Database"], TableInput={"Name": catalog["TableName"]})
    state = json.loads(state_file.read_text())
    state["project"] = {
        "ProjectName": "abalone-ingestion",
        "ProjectId": PROJECT_ID,
        "StackName": f"SC-{ACCOUNT}-pp-walkthrough1",
        "PipelineName": PIPELINE,
        "Outputs": {"SageMakerPipelineName": PIPELINE, "ArtifactBucketName": ARTIFACT_BUCKET},
        "Buckets": [ARTIFACT_BUCKET, TRAIL_BUCKET],
        "LogGroups": [BUILD_LOG_GROUP],
    }
    state_file.write_text(json.dumps(state))
    return catalog


def as_left_by_an_earlier_setup(state_file: Path) -> None:
    """Earlier versions of 00-setup turned the data bucket's EventBridge notifications on themselves and said so
    in the state file: 99-clean-up must still undo that for walkthroughs started with them."""
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=DATA_BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}})
    state = json.loads(state_file.read_text())
    state["created"]["eventbridge_notifications"] = True
    state_file.write_text(json.dumps(state))
    assert eventbridge_on(DATA_BUCKET)


def test_walkthrough_runs_against_moto(moto_url: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=DATA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=DATA_BUCKET, Key="keep/me.txt", Body=b"not the walkthrough's")
    state_file = tmp_path / "state.json"
    work_dir = tmp_path / "data"
    skipped: dict[str, list[str]] = {}

    setup = run(
        "00-setup.ipynb", tmp_path,
        REGION=REGION, DATA_BUCKET=DATA_BUCKET, DATA_PREFIX="incoming", DATA_SUFFIX=".csv",
        TRIGGER_MODE="S3EventBridge", FEATURE_GROUP_NAME=FEATURE_GROUP,
        EXECUTION_ROLE_ARN=f"arn:aws:iam::{ACCOUNT}:role/service-role/Studio",
        ABALONE_SOURCE=write_abalone_zip(tmp_path / "abalone.zip").as_uri(), WORK_DIR=str(work_dir),
    )
    skipped["00-setup.ipynb"] = skipped_steps(setup)
    state = json.loads(state_file.read_text())
    assert state["created"] == {"data_bucket": False}
    assert (state["data_prefix"], state["data_suffix"], state["trigger_mode"]) == ("incoming/", ".csv", "S3EventBridge")
    assert not eventbridge_on(DATA_BUCKET)  # the project's stack turns them on, not 00-setup
    group = boto3.client("sagemaker").describe_feature_group(FeatureGroupName=FEATURE_GROUP)
    assert group["FeatureGroupStatus"] == "Created" and group["OnlineStoreConfig"] == {"EnableOnlineStore": True}
    assert (work_dir / "abalone.csv").read_text().splitlines()[0].startswith("record_id,sex,length,")

    ingest = run("01-feature-store-ingest-pipeline.ipynb", tmp_path, SAMPLE_ROWS=5, WORK_DIR=str(work_dir))
    skipped["01-feature-store-ingest-pipeline.ipynb"] = skipped_steps(ingest)
    state = json.loads(state_file.read_text())
    [uploaded_url] = state["uploads"]
    key = uploaded_url.removeprefix(f"s3://{DATA_BUCKET}/")
    assert re.fullmatch(r"incoming/abalone-\d{8}T\d{6}Z\.csv", key)
    lines = s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode().splitlines()
    assert lines[0].startswith("record_id,") and len(lines) == 1 + 5
    assert state["project"] == {}
    assert f"data bucket {DATA_BUCKET} is in {REGION}, the project's region" in printed(ingest)

    catalog = play_the_provisioned_project(state_file, uploaded_url)
    as_left_by_an_earlier_setup(state_file)

    with pytest.raises(papermill.PapermillExecutionError) as refused:
        run("99-clean-up.ipynb", tmp_path)
    assert refused.value.ename == "CleanupNotConfirmed"
    assert "Nothing was deleted" in refused.value.evalue
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {DATA_BUCKET, ARTIFACT_BUCKET, TRAIL_BUCKET}

    cleanup = run("99-clean-up.ipynb", tmp_path, CONFIRM_DELETE=True)
    skipped["99-clean-up.ipynb"] = skipped_steps(cleanup)
    report_skipped(skipped)

    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {DATA_BUCKET}
    remaining = s3.list_object_versions(Bucket=DATA_BUCKET)
    assert [v["Key"] for v in remaining.get("Versions", [])] == ["keep/me.txt"]
    assert not remaining.get("DeleteMarkers")
    assert not eventbridge_on(DATA_BUCKET)
    assert boto3.client("sagemaker").list_pipelines()["PipelineSummaries"] == []
    assert boto3.client("logs").describe_log_groups()["logGroups"] == []
    assert boto3.client("glue").get_tables(DatabaseName=catalog["Database"])["TableList"] == []
    assert not state_file.exists()


# --- the batch-inference walkthrough against moto ------------------------------------------------------------

BATCH_PROJECT_ID = "p-batchwalk01"
BATCH_PIPELINE = f"sagemaker-{BATCH_PROJECT_ID}-batch-inference"
BATCH_ARTIFACT_BUCKET = f"sagemaker-{BATCH_PROJECT_ID}-artifacts-{ACCOUNT}"
BATCH_BUILD_LOG_GROUP = "/aws/codebuild/sagemaker-abalone-batch-inference-deploy-pipeline"
MODEL_GROUP = "abalone-rings"
DEFAULT_BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"
BATCH_PREFIX = "fsi-walkthrough/batch-inference/incoming/"
# What the pinned SageMaker Python SDK answers (sagemaker-core 2.27.0: image_uris.retrieve("sklearn", "eu-west-1",
# version="1.2-1")); tests/test_notebooks_batch.py compares every Region with the SDK itself.
SKLEARN_IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
SEED_DEPLOY = REPO / "seed-code" / "s3-batch-inference" / "deploy.py"


def packaged_entry_point(archive: bytes, folder: Path) -> tuple:
    """``model.tar.gz`` extracted as the serving container extracts it (to /opt/ml/model) and its
    ``code/inference.py`` imported from there, with the model its ``model_fn`` loads."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")
    module = load_module(f"packaged_inference_{folder.name}", folder / "code" / "inference.py")
    return module, module.model_fn(str(folder))


def play_the_batch_project(batch_file: Path, uploaded_url: str, scored: Path, work: Path) -> dict:
    """What moto cannot do for the batch-inference project, played with the real code where there is some:

    * the project's first build: the seed code's own ``deploy.latest_approved_package`` and ``check_package``
      resolve the package the notebook registered and approved, from moto's model registry; the pipeline is
      created naming it (definition and description), as the build's upsert does;
    * the upload's event: the project's start Lambda (``start_execution``, START_WITH_MANIFEST=always) writes
      the one-object manifest to the artifact bucket and starts the execution;
    * the execution: its model step's model, and the transform's output, computed by the entry point packaged
      in the registered ``model.tar.gz`` (read back from S3) at ``<PredictionsPrefix><execution id>/<key>.out``;
    * the retained artifact bucket (versioned) and the build's log group.
    """
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    batch = json.loads(batch_file.read_text())
    deploy = load_module("seed_batch_inference_deploy", SEED_DEPLOY)
    resolved = deploy.latest_approved_package(sm, batch["model_package_group"])["ModelPackageArn"]
    package = deploy.check_package(sm, resolved)
    assert resolved == batch["approved_package"]

    s3.create_bucket(Bucket=BATCH_ARTIFACT_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BATCH_ARTIFACT_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    definition = {"Version": "2020-12-01",
                  "Parameters": [{"Name": name, "Type": "String", "DefaultValue": ""}
                                 for name in ("InputDataUrl", "InputManifestUrl")],
                  "Steps": [{"Name": "ApprovedModel", "Type": "Model",
                             "Arguments": {"Containers": [{"ModelPackageName": resolved}]}}]}
    sm.create_pipeline(PipelineName=BATCH_PIPELINE, PipelineDefinition=json.dumps(definition),
                       PipelineDescription=f"S3 upload -> batch transform with model package {resolved}",
                       RoleArn=f"arn:aws:iam::{ACCOUNT}:role/x", ClientRequestToken="b" * 32)

    app = lambda_app()
    bucket, key = uploaded_url.removeprefix("s3://").split("/", 1)
    settings = app.Settings(pipeline_name=BATCH_PIPELINE, bucket=bucket, prefix=batch["data_prefix"],
                            suffix=batch["data_suffix"], manifest_bucket=BATCH_ARTIFACT_BUCKET, always_manifest=True)
    upload = app.Upload(bucket=bucket, key=key, operation="PutObject", origin="S3",
                        identity=("sequencer=0055AED6DCD90281E5",), size=scored.stat().st_size)
    started = app.start_execution(sm, settings, upload, "event-1", s3=s3)
    execution_id = started["executionArn"].rsplit("/", 1)[-1]

    sm.create_model(ModelName=f"pipelines-{execution_id}-ApprovedModel-a1B2c3D4e5",
                    ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x", Containers=[{"ModelPackageName": resolved}])
    model_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    model_bucket, model_key = model_url.removeprefix("s3://").split("/", 1)
    archive = s3.get_object(Bucket=model_bucket, Key=model_key)["Body"].read()
    entry, model = packaged_entry_point(archive, work / "opt-ml-model")
    body, content_type = entry.output_fn(entry.predict_fn(entry.input_fn(scored.read_text(), "text/csv"), model),
                                         "text/csv")
    assert content_type == "text/csv"
    s3.put_object(Bucket=BATCH_ARTIFACT_BUCKET, Key=f"predictions/{execution_id}/{key}.out",
                  Body=(body + "\n").encode())
    boto3.client("logs").create_log_group(logGroupName=BATCH_BUILD_LOG_GROUP)
    batch["project"] = {
        "ProjectName": "abalone-batch-inference",
        "ProjectId": BATCH_PROJECT_ID,
        "StackName": f"SC-{ACCOUNT}-pp-batchwalk01",
        "PipelineName": BATCH_PIPELINE,
        "Outputs": {"SageMakerPipelineName": BATCH_PIPELINE, "ArtifactBucketName": BATCH_ARTIFACT_BUCKET,
                    "PredictionsLocation": f"s3://{BATCH_ARTIFACT_BUCKET}/predictions/"},
        "Buckets": [BATCH_ARTIFACT_BUCKET],
        "LogGroups": [BATCH_BUILD_LOG_GROUP],
    }
    batch_file.write_text(json.dumps(batch))
    return {"execution_arn": started["executionArn"], "predictions": [float(line) for line in body.splitlines()]}


def test_batch_walkthrough_runs_against_moto(moto_url: str, tmp_path: Path) -> None:
    """00-setup, 02-batch-inference and 99-clean-up against moto: the model is trained, packaged, uploaded to the
    default bucket, registered and approved in moto's model registry, a file is uploaded under the watched
    prefix; the steps moto cannot serve are then played (see play_the_batch_project), the functions behind the
    notebook's skipped steps find the execution and read its predictions against moto, and the clean-up deletes
    what it can reach."""
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=DATA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    state_file, batch_file, work_dir = tmp_path / "state.json", tmp_path / "batch-state.json", tmp_path / "data"
    skipped: dict[str, list[str]] = {}
    setup = run("00-setup.ipynb", tmp_path, REGION=REGION, DATA_BUCKET=DATA_BUCKET, DATA_PREFIX="incoming",
                TRIGGER_MODE="S3EventBridge", FEATURE_GROUP_NAME=FEATURE_GROUP,
                EXECUTION_ROLE_ARN=f"arn:aws:iam::{ACCOUNT}:role/service-role/Studio",
                ABALONE_SOURCE=write_abalone_zip(tmp_path / "abalone.zip").as_uri(), WORK_DIR=str(work_dir))
    skipped["00-setup.ipynb"] = skipped_steps(setup)

    scoring = run("02-batch-inference.ipynb", tmp_path, SAMPLE_ROWS=5, WORK_DIR=str(work_dir))
    skipped["02-batch-inference.ipynb"] = skipped_steps(scoring)
    batch = json.loads(batch_file.read_text())
    assert batch["created"] == {"model_package_group": True, "model_bucket": True}
    assert (batch["model_package_group"], batch["data_prefix"], batch["data_suffix"]) == (MODEL_GROUP, BATCH_PREFIX,
                                                                                          ".csv")
    [package_arn] = batch["model_packages"]
    assert batch["approved_package"] == package_arn and batch["project"] == {}
    package = sm.describe_model_package(ModelPackageName=package_arn)
    assert package["ModelApprovalStatus"] == "Approved" and package["ModelPackageGroupName"] == MODEL_GROUP
    [container] = package["InferenceSpecification"]["Containers"]
    assert container["Image"] == SKLEARN_IMAGE
    [model_url] = batch["model_artifacts"]
    assert container["ModelDataUrl"] == model_url and model_url.startswith(f"s3://{DEFAULT_BUCKET}/")
    assert package["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv"]
    [uploaded_url] = batch["uploads"]
    key = uploaded_url.removeprefix(f"s3://{DATA_BUCKET}/")
    assert re.fullmatch(re.escape(BATCH_PREFIX) + r"abalone-unlabelled-\d{8}T\d{6}Z\.csv", key)
    [scored] = (work_dir / "scoring").glob("abalone-unlabelled-*Z.csv")
    uploaded_lines = s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode().splitlines()
    assert uploaded_lines == scored.read_text().splitlines() and len(uploaded_lines) == 5
    assert all(len(line.split(",")) == 8 and line[0] in "MFI" for line in uploaded_lines)  # no header, no label

    played = play_the_batch_project(batch_file, uploaded_url, scored, tmp_path)
    fsi = walkthrough_helpers()
    aws, batch_state = fsi.connect(REGION), fsi.BatchState.load(batch_file)
    uploaded = {"url": uploaded_url, "key": key, "uploaded_at": "2025-01-01T00:00:00+00:00"}
    execution = fsi.follow_scoring(aws, batch_state, uploaded, find_timeout=0, timeout=0)
    assert (execution["PipelineExecutionArn"], execution["InputParameter"]) == (played["execution_arn"],
                                                                                "InputManifestUrl")
    labels = scored.with_name(scored.name.replace(".csv", ".labels.csv"))
    predictions = fsi.read_predictions(aws, batch_state, uploaded, execution, {"file": scored, "labels": labels})
    assert predictions["predicted_rings"].round(4).tolist() == played["predictions"]
    assert predictions["record_id"].tolist() == [line.split(",")[0] for line in labels.read_text().splitlines()[1:]]

    with pytest.raises(papermill.PapermillExecutionError) as refused:
        run("99-clean-up.ipynb", tmp_path)
    assert refused.value.ename == "CleanupNotConfirmed"
    plan = printed(nbformat.read(tmp_path / "executed-99-clean-up.ipynb", as_version=4))
    for line in (f"the models SageMaker pipeline {BATCH_PIPELINE} created", f"bucket {BATCH_ARTIFACT_BUCKET}",
                 f"model package {package_arn}", f"model package group {MODEL_GROUP} if it holds no other package",
                 f"model artifact {model_url}", f"file uploaded for scoring {uploaded_url}",
                 f"bucket {DEFAULT_BUCKET} if nothing else is left in it"):
        assert line in plan, line
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {DATA_BUCKET, DEFAULT_BUCKET, BATCH_ARTIFACT_BUCKET}

    cleanup = run("99-clean-up.ipynb", tmp_path, CONFIRM_DELETE=True)
    skipped["99-clean-up.ipynb"] = skipped_steps(cleanup)
    report_skipped(skipped)
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {DATA_BUCKET}  # default and artifact buckets gone
    assert not s3.list_object_versions(Bucket=DATA_BUCKET).get("Versions")
    assert sm.list_pipelines()["PipelineSummaries"] == []
    assert boto3.client("logs").describe_log_groups()["logGroups"] == []
    assert not state_file.exists() and not batch_file.exists()


def test_the_helpers_import_without_the_sagemaker_sdk() -> None:
    fsi = walkthrough_helpers()
    assert not any(name == "sagemaker" or name.startswith("sagemaker.") for name in _imported_by(fsi))


def _imported_by(package) -> set[str]:
    names = set()
    for path in Path(package.__file__).parent.glob("*.py"):
        names |= set(re.findall(r"^(?:from|import) ([\w.]+)", path.read_text(), re.MULTILINE))
    return names


def test_setup_refuses_a_data_bucket_in_another_region(moto_url: str, tmp_path: Path) -> None:
    """S3 sends a bucket's events only in the bucket's Region (S3 User Guide, "Amazon S3 Event Notifications",
    "Using EventBridge"): 00-setup stops with one line naming both Regions instead of setting up a project that
    would never see an upload."""
    boto3.client("s3", region_name="us-west-2").create_bucket(
        Bucket="data-in-oregon", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    with pytest.raises(papermill.PapermillExecutionError) as refused:
        run("00-setup.ipynb", tmp_path, REGION=REGION, DATA_BUCKET="data-in-oregon",
            EXECUTION_ROLE_ARN=f"arn:aws:iam::{ACCOUNT}:role/service-role/Studio",
            ABALONE_SOURCE=write_abalone_zip(tmp_path / "abalone.zip").as_uri(), WORK_DIR=str(tmp_path / "data"))
    assert refused.value.ename == "WalkthroughError"
    assert refused.value.evalue.startswith(f"data bucket data-in-oregon is in us-west-2 but the project would be in "
                                           f"{REGION}: S3 sends a bucket's upload events only in its own Region")
    assert not (tmp_path / "state.json").exists()


def test_setup_without_credentials_stops_with_one_line(isolated_jupyter, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """Without credentials botocore fails only at the first call, with NoCredentialsError at the bottom of a
    long traceback (boto3 docs, "Credentials": the provider chain). The notebook stops at connect() and the
    kernel shows one line that says what to do, not a traceback."""
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                     "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                     "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(papermill.PapermillExecutionError) as refused:
        run("00-setup.ipynb", tmp_path, REGION=REGION, WORK_DIR=str(tmp_path / "data"))
    assert refused.value.ename == "WalkthroughError"
    assert refused.value.evalue.startswith("no AWS credentials found")
    # _render_traceback_: the cell's error output is that one line (papermill keeps the kernel's traceback)
    assert [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in refused.value.traceback] == [
        f"WalkthroughError: {refused.value.evalue}"]


def test_the_readme_recipe_runs_the_notebooks_without_aws(tmp_path: Path) -> None:
    """The README's "notebooks without AWS" command, as written (its interpreter is this tox env's): all four
    notebooks run against moto with fake credentials, report exactly the AWS-only steps, write nothing into
    the checkout."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    [command] = [line for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL)
                 for line in block.splitlines() if "run_without_aws.py" in line]
    interpreter, *arguments = command.split()
    assert interpreter == ".tox/tests/bin/python"  # created by the Quick start's `tox`; this test runs in it
    before = sorted(p.name for p in NOTEBOOKS_DIR.iterdir())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TMPDIR"] = str(tmp_path)  # the default --out is a new temporary folder
    done = subprocess.run([sys.executable, *arguments], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "all 4 notebooks ran against moto" in done.stdout
    reported: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("running "):
            current = line.split()[1] + ".ipynb"
            reported[current] = []
        elif line.startswith("  skipped (needs AWS): "):
            reported[current].append(line.removeprefix("  skipped (needs AWS): "))
    assert reported == AWS_ONLY_STEPS
    [out] = tmp_path.glob("notebooks-without-aws-*")
    assert sorted(p.name for p in out.glob("*.ipynb")) == sorted(NOTEBOOKS)
    assert sorted(p.name for p in NOTEBOOKS_DIR.iterdir()) == before
