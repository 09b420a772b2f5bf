"""The walkthrough notebooks: committed clean, and executed end to end against a moto server.

The notebooks run under papermill in a kernel of this interpreter, with boto3 pointed at a moto server
(``AWS_ENDPOINT_URL``) and ``SKIP_AWS_ONLY_STEPS = True``: every step moto can serve runs; the steps
only AWS can serve (Service Catalog, CreateProject, the real pipeline run, the Feature Store runtime,
Athena results, DeleteFeatureGroup) report "skipped: needs AWS" and are covered by the unit tests of the
functions they call (tests/test_notebooks_helpers.py). The test asserts that exact list of skipped steps.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import boto3
import nbformat
import papermill
import pytest
from e2e_support import (
    ACCOUNT,
    NOTEBOOKS_DIR,
    REGION,
    moto_feature_group_fixes,
    moto_server,
    walkthrough_helpers,
    write_abalone_zip,
)
from nbclient import NotebookClient

NOTEBOOKS = ("00-setup.ipynb", "01-feature-store-ingest-pipeline.ipynb", "99-clean-up.ipynb")
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
    "99-clean-up.ipynb": [
        "delete the project",  # DeleteProject
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


def run(name: str, tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    output = tmp_path / f"executed-{name}"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / name),
        str(output),
        parameters={"SKIP_AWS_ONLY_STEPS": True, "STATE_FILE": str(tmp_path / "state.json"), **parameters},
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
    print("\nSteps the notebooks did not execute against moto (they need AWS):")
    for name, steps in skipped.items():
        print(f"  {name}: {steps or 'none'}")
    assert skipped == AWS_ONLY_STEPS

    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {DATA_BUCKET}
    remaining = s3.list_object_versions(Bucket=DATA_BUCKET)
    assert [v["Key"] for v in remaining.get("Versions", [])] == ["keep/me.txt"]
    assert not remaining.get("DeleteMarkers")
    assert not eventbridge_on(DATA_BUCKET)
    assert boto3.client("sagemaker").list_pipelines()["PipelineSummaries"] == []
    assert boto3.client("logs").describe_log_groups()["logGroups"] == []
    assert boto3.client("glue").get_tables(DatabaseName=catalog["Database"])["TableList"] == []
    assert not state_file.exists()


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
