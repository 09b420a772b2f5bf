"""Unit tests of the batch-inference walkthrough's helpers (notebooks/fsi_walkthrough/batch_inference.py, the model's
entry point inference.py, sklearn_images.py, and the batch-inference part of cleanup.py).

What moto 5.2.5 serves runs against moto in-process (``mock_aws``): S3, model package groups and packages
(CreateModelPackageGroup, CreateModelPackage, DescribeModelPackage, ListModelPackages, UpdateModelPackage),
pipelines and executions (status Succeeded at once), CreateModel. What it does not serve goes through botocore's
``Stubber``, which checks every request against the real API model: ListPipelineExecutionSteps,
DeleteModelPackage, DeleteModelPackageGroup, Service Catalog, CreateProject, a pending or failed package or
execution. Requests the helpers build are also checked with ``pipeline_resolver.request_problems``, which adds
the API model's patterns (Java regular expressions) to what botocore validates.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import importlib.metadata
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import nbformat
import numpy as np
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber
from e2e_support import (
    ABALONE_LINES,
    ACCOUNT,
    NOTEBOOKS_DIR,
    REGION,
    REPO,
    SEED_CODE_DIR,
    FakeClock,
    feature_group_definition,
    lambda_app,
    processing_script,
    walkthrough_helpers,
    write_abalone_zip,
)
from loading import load_module
from moto import mock_aws
from pipeline_resolver import request_problems

fsi = walkthrough_helpers()
bi = fsi.batch_inference
GROUP = "abalone-rings"
PREFIX = "fsi-walkthrough/batch-inference/incoming/"
DATA_BUCKET = "walkthrough-data"
PIPELINE = "sagemaker-p-batchunit01-batch-inference"
ARTIFACT_BUCKET = f"sagemaker-p-batchunit01-artifacts-{ACCOUNT}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/x"
SEED_DEPLOY = REPO / "seed-code" / "s3-batch-inference" / "deploy.py"
BATCH_TEMPLATE = "project-s3-batch-inference"
PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/1"



@pytest.fixture
def aws():
    with mock_aws():
        yield fsi.connect(REGION)


def offline_aws():
    """An Aws whose calls are all stubbed (identity set: no STS call)."""
    aws = fsi.Aws(region=REGION)
    aws.identity = {"Account": ACCOUNT, "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Studio/alice"}
    return aws


def make_state(tmp_path: Path | None = None, **changes):
    values = dict(region=REGION, account=ACCOUNT, data_bucket=DATA_BUCKET, data_prefix="fsi-walkthrough/incoming/",
                  feature_group_name="abalone-walkthrough", offline_store_uri=f"s3://{DATA_BUCKET}/work/offline-store",
                  work_prefix="fsi-walkthrough/work/")
    if tmp_path is not None:
        frame = fsi.load_abalone(fsi.download_abalone(str(write_abalone_zip(tmp_path / "a.zip")), tmp_path / "raw"))
        values["local_csv"] = str(fsi.write_csv(frame, tmp_path / "abalone.csv"))
    values.update(changes)
    return fsi.State(**values)


def make_batch(**changes):
    values = dict(model_package_group=GROUP, data_prefix=PREFIX, data_suffix=".csv")
    values.update(changes)
    return fsi.BatchState(**values)


def fixture_frame() -> pd.DataFrame:
    """The fixture's Abalone rows as 00-setup loads them."""
    return fsi.load_abalone(io.StringIO(ABALONE_LINES))


def definition_model() -> dict:
    """A model trained on the fixture rows with the seed code's feature group definition."""
    return bi.fit_model(fixture_frame(), feature_group_definition())


def extract(archive: Path, folder: Path) -> list[str]:
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        assert all(member.isfile() for member in tar.getmembers())
        tar.extractall(folder, filter="data")
    return names


def entry_point(folder: Path, name: str):
    return load_module(f"batch_entry_point_{name}", folder / "code" / "inference.py")


# --- the model: features, training ------------------------------------------------------------------------------


def test_the_model_uses_the_feature_groups_features_in_its_order() -> None:
    """The features are the seed code's feature group definition without record id, event time and label."""
    layout = bi.model_layout(feature_group_definition())
    assert layout["features"] == ["sex_m", "sex_f", "sex_i", "length", "diameter", "height", "whole_weight",
                                  "shucked_weight", "viscera_weight", "shell_weight"]
    assert layout["input_columns"] == ["sex", "length", "diameter", "height", "whole_weight", "shucked_weight",
                                       "viscera_weight", "shell_weight"]
    assert layout["categories"] == {"sex": {"m": "sex_m", "f": "sex_f", "i": "sex_i"}}


def test_the_encoding_is_the_one_the_processing_script_plans() -> None:
    """The ingestion's processing script decides from the file's header and rows which columns pass through and
    which are one-hot encoded into which features (transform.plan_columns); the model encodes the raw columns
    the same way, so a model trained on the feature group's features reads rows the way they were ingested."""
    processing_script()
    import transform  # the seed code's module, on sys.path now (as in the container)

    definition = feature_group_definition()
    schema = transform.Schema(name="abalone", record_identifier=definition["RecordIdentifierFeatureName"],
                              event_time=definition["EventTimeFeatureName"],
                              types={f["FeatureName"]: f["FeatureType"] for f in definition["FeatureDefinitions"]})
    raw = fixture_frame().drop(columns=["rings", "record_id"]).astype(str)
    plan = transform.plan_columns(list(raw.columns), raw, schema)
    layout = bi.model_layout(definition)
    assert plan.one_hot == layout["categories"]
    assert sorted(plan.passthrough.values()) == sorted(set(layout["features"]) - {"sex_m", "sex_f", "sex_i"})
    model = {**layout, "coefficients": [0.0] * 10, "intercept": 0.0}
    for cell in ("M", " m ", "F", "i"):  # the processing script normalises values: trimmed, lowercase
        encoded = fsi.inference.features([cell, "0.5", "0.4", "0.1", "0.5", "0.2", "0.1", "0.15"], model)
        hot = plan.one_hot["sex"][transform.normalise(cell)]
        assert encoded[:3] == [1.0 if feature == hot else 0.0 for feature in layout["features"][:3]]


def synthetic_abalone(rows: int, seed: int = 3) -> tuple[pd.DataFrame, dict[str, float]]:
    """Rows whose rings follow a known linear relation, with little noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"record_id": [f"abalone-{i:04d}" for i in range(rows)],
                          "sex": rng.choice(["M", "F", "I"], rows)})
    for column in ("length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
                   "shell_weight"):
        frame[column] = rng.uniform(0.05, 1.0, rows)
    truth = {"length": 4.0, "shell_weight": 9.0, "height": -3.0, "sex_f": 1.5, "sex_i": -2.0}
    rings = 5.0 + sum(weight * frame[name] for name, weight in truth.items() if not name.startswith("sex_"))
    rings = rings + 1.5 * (frame["sex"] == "F") - 2.0 * (frame["sex"] == "I") + rng.normal(0, 0.05, rows)
    return frame.assign(rings=rings), truth


def test_the_fit_recovers_a_linear_relation_and_beats_the_baseline() -> None:
    frame, truth = synthetic_abalone(600)
    model = bi.fit_model(frame, feature_group_definition(), alpha=1e-6)
    weights = dict(zip(model["features"], model["coefficients"], strict=True))
    for name in ("length", "shell_weight", "height"):
        assert weights[name] == pytest.approx(truth[name], abs=0.05)
    # One-hot columns are only defined up to a constant shared with the intercept: compare differences.
    assert weights["sex_f"] - weights["sex_m"] == pytest.approx(1.5, abs=0.05)
    assert weights["sex_i"] - weights["sex_m"] == pytest.approx(-2.0, abs=0.05)
    metrics = model["metrics"]
    assert (metrics["train_rows"], metrics["test_rows"]) == (480, 120)
    assert metrics["rmse"] < 0.1 < metrics["baseline_rmse"] and metrics["r2"] > 0.99


def test_training_is_deterministic_and_holds_out_a_fifth(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    first = fsi.train_rings_model(state, SEED_CODE_DIR)
    second = fsi.train_rings_model(state, SEED_CODE_DIR)
    assert first == second
    assert (first["metrics"]["train_rows"], first["metrics"]["test_rows"]) == (10, 2)  # 12 rows in the fixture
    with pytest.raises(fsi.WalkthroughError, match="run 00-setup.ipynb again"):
        fsi.train_rings_model(make_state(local_csv=str(tmp_path / "gone.csv")), SEED_CODE_DIR)


def test_a_definition_the_data_set_cannot_fill_is_refused() -> None:
    definition = feature_group_definition()
    definition["FeatureDefinitions"].append({"FeatureName": "colour", "FeatureType": "String"})
    with pytest.raises(fsi.WalkthroughError, match="features colour come from no column"):
        bi.model_layout(definition)
    definition = feature_group_definition()
    definition["FeatureDefinitions"] = [f for f in definition["FeatureDefinitions"]
                                        if not f["FeatureName"].startswith("sex_")]
    with pytest.raises(fsi.WalkthroughError, match="no feature for the data set's column 'sex'"):
        bi.model_layout(definition)


# --- the package: model.tar.gz and its entry point --------------------------------------------------------------


def test_the_archive_serves_as_the_scikit_learn_container_calls_it(tmp_path: Path) -> None:
    """The container extracts model.tar.gz to /opt/ml/model and, for SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code
    and SAGEMAKER_PROGRAM=inference.py, imports code/inference.py and calls model_fn(model_dir), then per request
    input_fn(body, content_type) -- the body decoded to str for text/csv -- predict_fn and output_fn, whose
    (body, content type) tuple becomes the response (aws/sagemaker-scikit-learn-container serving.py;
    sagemaker-containers _transformer.Transformer.transform, _worker.Request.content)."""
    model = definition_model()
    archive = fsi.package_model(model, tmp_path / "work")
    assert sorted(extract(archive, tmp_path / "opt-ml-model")) == ["code/inference.py", "model.json"]
    served = entry_point(tmp_path / "opt-ml-model", "served")
    loaded = served.model_fn(str(tmp_path / "opt-ml-model"))
    scoring = fsi.prepare_scoring_file(make_state(tmp_path), 0, tmp_path / "work")
    body = scoring["file"].read_text()
    rows = served.input_fn(body, "text/csv")
    assert len(rows) == 12 and served.input_fn(body.encode(), "text/csv; charset=utf-8") == rows
    answer, content_type = served.output_fn(served.predict_fn(rows, loaded), "text/csv")
    assert content_type == "text/csv" and not answer.endswith("\n")  # AssembleWith=Line adds the newline
    expected = fsi.predict_locally(model, scoring["file"])
    assert [float(line) for line in answer.splitlines()] == pytest.approx(expected, abs=5e-5)
    truth = pd.read_csv(scoring["labels"])["rings"].to_numpy()
    assert np.sqrt(np.mean((np.array(expected) - truth) ** 2)) < np.std(truth)  # better than the mean on its data


def test_the_archive_is_byte_identical_for_the_same_model(tmp_path: Path) -> None:
    model = definition_model()
    first, second = fsi.package_model(model, tmp_path / "a"), fsi.package_model(model, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(("line", "message"), [
    ("sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight", "sex 'sex' is none of f"),
    ("abalone-0001,M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15", "expected 8 values"),
    ("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15", "expected 8 values"),
    ("X,0.455,0.365,0.095,0.514,0.2245,0.101,0.15", "sex 'X' is none of f, i, m"),
    ("M,0.455,nan,0.095,0.514,0.2245,0.101,0.15", "diameter 'nan' is not a finite number"),
    ("M,0.455,,0.095,0.514,0.2245,0.101,0.15", "diameter '' is not a number"),
])
def test_the_entry_point_names_the_line_it_cannot_score(line: str, message: str) -> None:
    """A header, a record id or a label in the uploaded file fails the transform with a message naming the line
    (it reaches the transform job's CloudWatch log)."""
    model = definition_model()
    with pytest.raises(ValueError, match=message):
        fsi.inference.predict_fn(fsi.inference.input_fn(line + "\n", "text/csv"), model)


def test_the_entry_point_speaks_csv_only() -> None:
    model = definition_model()
    with pytest.raises(ValueError, match="reads text/csv, not 'application/json'"):
        fsi.inference.input_fn("[]", "application/json")
    with pytest.raises(ValueError, match="answers text/csv, not 'application/json'"):
        fsi.inference.output_fn([1.0], "application/json")
    assert fsi.inference.output_fn([1.0, 2.5], "*/*") == ("1.0000\n2.5000", "text/csv")
    with pytest.raises(ValueError, match="format 'other'"):
        fsi.inference.check_model({**model, "format": "other"})
    with pytest.raises(ValueError, match="9 coefficients for 10 features"):
        fsi.inference.check_model({**model, "coefficients": model["coefficients"][1:]})


def test_the_entry_point_runs_in_the_containers_python_3_9_with_the_standard_library() -> None:
    """The scikit-learn 1.2-1 image runs Python 3.9 (its Dockerfile installs into /miniconda3/lib/python3.9)
    and the entry point gets no requirements.txt: 3.9 syntax, no annotations (PEP 604 unions fail at run time
    there), standard library imports only."""
    source = Path(fsi.inference.__file__).read_text()
    tree = ast.parse(source, feature_version=(3, 9))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names)
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    assert {"model_fn", "input_fn", "predict_fn", "output_fn"} <= {f.name for f in functions}
    assert not any(f.returns or any(a.annotation for a in f.args.args) for f in functions)


def test_the_container_is_pointed_at_the_packaged_entry_point() -> None:
    """SAGEMAKER_PROGRAM names the archive's code/inference.py and SAGEMAKER_SUBMIT_DIRECTORY the folder it is
    extracted to: the container extracts model.tar.gz to /opt/ml/model ("How SageMaker AI Loads Your Model
    Artifacts", SageMaker developer guide), and /opt/ml/model/code is what the pinned SDK itself sets for a
    repacked model (sagemaker-serve's model_builder.py, _script_mode_env_vars)."""
    spec = bi.inference_specification("image", "s3://b/k/model.tar.gz", REGION)
    environment = spec["Containers"][0]["Environment"]
    assert f"{bi.CODE_DIR}/{environment['SAGEMAKER_PROGRAM']}" == "code/inference.py"
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == f"/opt/ml/model/{bi.CODE_DIR}"
    builder = [f for f in importlib.metadata.files("sagemaker-serve") if str(f).endswith("serve/model_builder.py")]
    assert len(builder) == 1 and f'dir_name = "{environment["SAGEMAKER_SUBMIT_DIRECTORY"]}"' in builder[0].read_text()


# --- the serving image --------------------------------------------------------------------------------------


SDK_IMAGES = """
import json, sys
from sagemaker.core import image_uris
print(json.dumps({region: image_uris.retrieve("sklearn", region, version="1.2-1", image_scope="inference")
                  for region in json.loads(sys.argv[1])}))
"""


def test_the_image_is_the_one_the_pinned_sdk_retrieves_in_every_region(tmp_path: Path) -> None:
    """The vendored registry accounts and the URI's form (account, Region, partition domain, tag) against the
    SageMaker Python SDK the seed code pins, run in its own interpreter (it reads its configuration when
    imported), with telemetry off; and the Regions vendored are exactly those the SDK's configuration lists."""
    config = [f for f in importlib.metadata.files("sagemaker-core")
              if str(f).endswith("image_uri_config/sklearn.json")]
    registries = json.loads(config[0].read_text())["inference"]["versions"]["1.2-1"]["registries"]
    assert fsi.sklearn_images.REGISTRIES["1.2-1"] == registries
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "HOME": str(tmp_path),
           "SAGEMAKER_USER_CONFIG_OVERRIDE": str(SEED_CODE_DIR / "tests" / "sagemaker-config.yaml"),
           "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(SEED_CODE_DIR / "tests" / "sagemaker-config.yaml")}
    done = subprocess.run([sys.executable, "-c", SDK_IMAGES, json.dumps(sorted(registries))], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    sdk = json.loads(done.stdout.strip().splitlines()[-1])
    assert {region: fsi.sklearn_image_uri(region) for region in registries} == sdk


def test_a_region_or_version_without_an_image_is_refused() -> None:
    with pytest.raises(fsi.WalkthroughError, match="no scikit-learn 1.2-1 image in mars-east-1"):
        fsi.sklearn_image_uri("mars-east-1")
    with pytest.raises(fsi.WalkthroughError, match="no scikit-learn image version '0.1'"):
        fsi.sklearn_image_uri(REGION, "0.1")


# --- registering and approving --------------------------------------------------------------------------------


METRICS = {"train_rows": 3341, "test_rows": 836, "rmse": 2.2123, "mae": 1.5871, "r2": 0.5312, "baseline_rmse": 3.2241}


def test_the_registration_request_is_one_createmodelpackage_accepts() -> None:
    """Every member against the API model, patterns included (CustomerMetadataValue allows letters, digits,
    spaces and _.:/=+-@ only; ClientToken at most 36 of [a-zA-Z0-9-]); the same request gives the same token
    ("A unique token that guarantees that the call to this API is idempotent", CreateModelPackage ClientToken,
    SageMaker API reference), so a re-run cell does not add a version, and another request another token."""
    url = f"s3://sagemaker-{REGION}-{ACCOUNT}/fsi-walkthrough/batch-inference/models/{GROUP}/0123/model.tar.gz"
    request = bi.model_package_request(GROUP, url, REGION, METRICS)
    assert request_problems(request, "CreateModelPackage") == []
    assert request["ModelApprovalStatus"] == "PendingManualApproval"
    assert request["CustomerMetadataProperties"]["rmse"] == "2.2123"
    assert request["ClientToken"] == bi.model_package_request(GROUP, url, REGION, METRICS)["ClientToken"]
    assert request["ClientToken"] != bi.model_package_request(GROUP, url + "2", REGION, METRICS)["ClientToken"]
    other_image = bi.model_package_request(GROUP, url, REGION, METRICS, sklearn_version="1.2-1")
    assert other_image == request  # the default version is 1.2-1: the same request, the same token
    fake_versions = {**fsi.sklearn_images.REGISTRIES, "9.9-9": fsi.sklearn_images.REGISTRIES["1.2-1"]}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fsi.sklearn_images, "REGISTRIES", fake_versions)
        assert bi.model_package_request(GROUP, url, REGION, METRICS, sklearn_version="9.9-9")["ClientToken"] != \
            request["ClientToken"]
    assert "SupportedTransformInstanceTypes" not in request["InferenceSpecification"]
    group = {"ModelPackageGroupName": GROUP, "ModelPackageGroupDescription": "Models of the number of rings of an "
             "abalone (fsi-walkthrough notebooks)"}
    assert request_problems(group, "CreateModelPackageGroup") == []


def test_register_creates_the_group_once_and_versions_pending_approval(aws, tmp_path: Path) -> None:
    batch = make_batch()
    first = fsi.register_model(aws, batch, "s3://bucket/models/1/model.tar.gz", METRICS)
    second = fsi.register_model(aws, batch, "s3://bucket/models/2/model.tar.gz", METRICS)
    assert (first, second) == (PACKAGE_ARN, PACKAGE_ARN[:-1] + "2")
    assert batch.created == {"model_package_group": True} and batch.model_packages == [first, second]
    sm = aws.sagemaker
    assert sm.describe_model_package(ModelPackageName=first)["ModelApprovalStatus"] == "PendingManualApproval"
    assert len(sm.list_model_package_groups()["ModelPackageGroupSummaryList"]) == 1
    again = make_batch()
    fsi.register_model(aws, again, "s3://bucket/models/3/model.tar.gz", METRICS)
    assert again.created == {"model_package_group": False}  # an existing group is not the walkthrough's to delete
    batch.save(tmp_path / "batch.json")
    assert fsi.BatchState.load(tmp_path / "batch.json") == batch


def test_the_approved_package_is_the_one_the_projects_build_resolves(aws) -> None:
    """The project's build (seed-code/s3-batch-inference/deploy.py) deploys the group's latest Approved package;
    the walkthrough's approval must make its package that one, and the package must pass the build's checks
    (Completed, with an inference specification)."""
    deploy = load_module("seed_batch_inference_deploy", SEED_DEPLOY)
    sm, batch = aws.sagemaker, make_batch()
    older = fsi.register_model(aws, batch, "s3://bucket/models/1/model.tar.gz", METRICS)
    newer = fsi.register_model(aws, batch, "s3://bucket/models/2/model.tar.gz", METRICS)
    with pytest.raises(fsi.WalkthroughError, match=f"group {GROUP} holds no Approved package"):
        fsi.latest_approved_package(sm, GROUP)
    fsi.approve_model(aws, batch, older)
    assert fsi.latest_approved_package(sm, GROUP) == deploy.latest_approved_package(sm, GROUP)["ModelPackageArn"]
    assert fsi.latest_approved_package(sm, GROUP) == older == batch.approved_package
    fsi.approve_model(aws, batch, newer)
    assert deploy.latest_approved_package(sm, GROUP)["ModelPackageArn"] == fsi.latest_approved_package(sm, GROUP)
    assert fsi.latest_approved_package(sm, GROUP) == newer
    deploy.check_package(sm, newer)


def package_answer(status: str, **extra) -> dict:
    return {"ModelPackageName": GROUP, "ModelPackageArn": PACKAGE_ARN, "CreationTime": dt.datetime(2025, 1, 1),
            "ModelPackageStatus": status, "ModelPackageStatusDetails": {"ValidationStatuses": []}, **extra}


def test_registration_waits_for_a_completed_package(clock: FakeClock) -> None:
    """CreateModelPackage answers at once; the package goes Pending -> InProgress -> Completed, and CreateModel
    accepts it only then (ModelPackageStatus, DescribeModelPackage, SageMaker API reference)."""
    sm = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(sm)
    for status in ("Pending", "InProgress", "Completed"):
        stubber.add_response("describe_model_package", package_answer(status), {"ModelPackageName": PACKAGE_ARN})
    stubber.add_response("describe_model_package", package_answer(
        "Failed", ModelPackageStatusDetails={"ValidationStatuses": [
            {"Name": "model", "Status": "Failed", "FailureReason": "image not found"}]}),
        {"ModelPackageName": PACKAGE_ARN})
    stubber.add_response("describe_model_package", package_answer("InProgress"), {"ModelPackageName": PACKAGE_ARN})
    stubber.add_response("describe_model_package", package_answer("InProgress"), {"ModelPackageName": PACKAGE_ARN})
    with stubber:
        assert bi.wait_for_model_package(sm, PACKAGE_ARN, sleep=clock.sleep, clock=clock.clock)[
            "ModelPackageStatus"] == "Completed"
        with pytest.raises(fsi.WalkthroughError, match="is Failed: model: image not found"):
            bi.wait_for_model_package(sm, PACKAGE_ARN, sleep=clock.sleep, clock=clock.clock)
        with pytest.raises(TimeoutError, match="still InProgress after 5 s"):
            bi.wait_for_model_package(sm, PACKAGE_ARN, timeout=5, poll=5, sleep=clock.sleep, clock=clock.clock)


def test_the_model_goes_to_the_sagemaker_default_bucket_under_its_digest(aws, tmp_path: Path) -> None:
    """The project's execution role may read model artifacts only in sagemaker-<region>-<account> (the product's
    ReadModelArtifacts grant); a bucket of another account under that name is refused (ExpectedBucketOwner)."""
    batch, archive = make_batch(), fsi.package_model(definition_model(), tmp_path)
    url = fsi.upload_model(aws, batch, archive, "fsi-walkthrough/batch-inference/models/")
    bucket = f"sagemaker-{REGION}-{ACCOUNT}"
    assert url.startswith(f"s3://{bucket}/fsi-walkthrough/batch-inference/models/{GROUP}/")
    assert (batch.model_bucket, batch.created, batch.model_artifacts) == (bucket, {"model_bucket": True}, [url])
    key = url.removeprefix(f"s3://{bucket}/")
    assert boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read() == \
        archive.read_bytes()
    assert fsi.upload_model(aws, batch, archive, "fsi-walkthrough/batch-inference/models") == url
    assert batch.created == {"model_bucket": True} and batch.model_artifacts == [url]  # still the walkthrough's


# --- the project ------------------------------------------------------------------------------------------------


def notebook_defaults(name: str = "02-batch-inference.ipynb") -> dict:
    cell = next(c for c in nbformat.read(NOTEBOOKS_DIR / name, as_version=4).cells if c.cell_type == "code")
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign)}


def test_the_parameters_are_the_batch_templates_and_the_defaults_fit_it(templates: dict[str, dict]) -> None:
    """Every parameter the notebook passes exists in the built template, and with the notebook's defaults every
    value matches the parameter's AllowedPattern, AllowedValues and length (CloudFormation refuses the stack
    otherwise); the product and template names are those the portfolio registers."""
    import regex

    from generators.products.s3_batch_inference import PRODUCT

    defaults = notebook_defaults()
    state, batch = make_state(), bi.start(make_state(), "/nonexistent/batch.json", defaults["MODEL_PACKAGE_GROUP"],
                                          defaults["DATA_PREFIX"], defaults["DATA_SUFFIX"])
    declared = templates[BATCH_TEMPLATE]["Parameters"]
    for parameter in fsi.batch_template_parameters(state, batch):
        spec, value = declared[parameter["Key"]], parameter["Value"]
        if "AllowedPattern" in spec:
            assert regex.fullmatch(spec["AllowedPattern"], value), parameter
        assert value in spec.get("AllowedValues", [value]), parameter
        assert spec.get("MinLength", 0) <= len(value) <= spec.get("MaxLength", 10**6), parameter
    assert regex.fullmatch(declared["SageMakerProjectName"]["AllowedPattern"], defaults["PROJECT_NAME"])
    assert defaults["PRODUCT_NAME"] == fsi.batch_inference.PRODUCT_NAME == PRODUCT.display_name
    assert PRODUCT.slug == bi.TEMPLATE_NAME


def test_start_refuses_a_prefix_both_projects_would_watch_and_another_group(tmp_path: Path) -> None:
    """A file under both prefixes would start both projects (each upload rule matches its own prefix)."""
    state = make_state(data_prefix="fsi-walkthrough/incoming/")
    for prefix in ("fsi-walkthrough/incoming/batch/", "fsi-walkthrough/", "/fsi-walkthrough/incoming"):
        with pytest.raises(fsi.WalkthroughError, match="overlaps the ingestion project's prefix"):
            fsi.start_batch(state, tmp_path / "b.json", GROUP, prefix)
    batch = fsi.start_batch(state, tmp_path / "b.json", GROUP, "/fsi-walkthrough/batch-inference/incoming", ".csv")
    assert (batch.data_prefix, batch.data_suffix) == (PREFIX, ".csv")
    batch.save(tmp_path / "b.json")
    with pytest.raises(fsi.WalkthroughError, match=f"records model package group {GROUP}, not other"):
        fsi.start_batch(state, tmp_path / "b.json", "other", PREFIX)
    for bad in ("-rings", "rings_1", "a" * 64):
        with pytest.raises(fsi.WalkthroughError, match="not a valid model package group name"):
            fsi.start_batch(state, tmp_path / "c.json", bad, PREFIX)


def test_a_group_without_an_approved_package_is_refused_before_the_project(aws) -> None:
    """Without an Approved package the project's build fails (seed-code/s3-batch-inference/deploy.py: "no Approved
    model package in group ...") and the Lambda has no pipeline to start (StartPipelineExecution answers
    ResourceNotFound), so every upload would end in the dead-letter queue. The check says so before CreateProject."""
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=DATA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    batch = make_batch()
    parameters = fsi.batch_template_parameters(make_state(), batch)
    fsi.register_model(aws, batch, "s3://bucket/models/1/model.tar.gz", METRICS)
    with pytest.raises(fsi.WalkthroughError, match="holds no Approved package: the project's build would fail"):
        fsi.check_batch_before_create(aws, "abalone-batch-inference", parameters)
    fsi.approve_model(aws, batch, batch.model_packages[0])
    checked = fsi.check_batch_before_create(aws, "abalone-batch-inference", parameters)
    assert checked["LatestApprovedPackage"] == PACKAGE_ARN and checked["DataBucketRegion"] == REGION


def add_checks(s3: Stubber, sm: Stubber) -> None:
    s3.add_response("head_bucket", {"BucketRegion": REGION}, {"Bucket": DATA_BUCKET, "ExpectedBucketOwner": ACCOUNT})
    add_latest_approved(sm)


def add_latest_approved(sm: Stubber) -> None:
    sm.add_response("list_model_packages", {"ModelPackageSummaryList": [
        {"ModelPackageArn": PACKAGE_ARN, "CreationTime": dt.datetime(2025, 1, 1), "ModelPackageStatus": "Completed",
         "ModelPackageName": GROUP, "ModelApprovalStatus": "Approved"}]},
        {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime",
         "SortOrder": "Descending"})


CREATED = {"ProjectArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:project/abalone-batch-inference",
           "ProjectId": "p-batchunit01"}


def test_the_project_from_the_s3_template_names_the_batch_template() -> None:
    """CfnTemplateProvider.TemplateName is the template's name (CreateProject, SageMaker API reference): the
    batch template's, not the ingestion's."""
    aws, parameters = offline_aws(), fsi.batch_template_parameters(make_state(), make_batch())
    url = f"https://releases.s3.{REGION}.amazonaws.com/releases/s3-batch-inference/1.0.0/project-s3-batch-inference.yaml"
    s3, sm = Stubber(aws.s3), Stubber(aws.sagemaker)
    add_checks(s3, sm)
    sm.add_response("create_project", CREATED, {
        "ProjectName": "abalone-batch-inference", "ProjectDescription": ANY,
        "TemplateProviders": [{"CfnTemplateProvider": {"TemplateName": "s3-batch-inference", "TemplateURL": url,
                                                       "Parameters": parameters}}]})
    with s3, sm:
        created = fsi.create_batch_project(aws, "abalone-batch-inference", parameters, source="S3Template",
                                           template_url=url)
    assert created["ProjectId"] == "p-batchunit01"
    sm.assert_no_pending_responses()


def test_the_project_through_service_catalog_uses_the_batch_product() -> None:
    aws, parameters = offline_aws(), fsi.batch_template_parameters(make_state(), make_batch())
    s3, sm, sc = Stubber(aws.s3), Stubber(aws.sagemaker), Stubber(aws.client("servicecatalog"))
    add_checks(s3, sm)
    sc.add_response("describe_product", {
        "ProductViewSummary": {"ProductId": "prod-batchinference1", "Name": bi.PRODUCT_NAME},
        "ProvisioningArtifacts": [{"Id": "pa-1", "Name": "1.0.0", "CreatedTime": dt.datetime(2025, 1, 1),
                                   "Guidance": "DEFAULT"}]}, {"Name": bi.PRODUCT_NAME})
    sm.add_response("create_project", CREATED, {
        "ProjectName": "abalone-batch-inference", "ProjectDescription": ANY,
        "ServiceCatalogProvisioningDetails": {"ProductId": "prod-batchinference1", "ProvisioningArtifactId": "pa-1",
                                              "ProvisioningParameters": parameters}})
    with s3, sm, sc:
        assert fsi.create_batch_project(aws, "abalone-batch-inference", parameters)["ProjectId"] == "p-batchunit01"
    sm.assert_no_pending_responses()


def pipeline_answer(package_arn: str) -> dict:
    definition = {"Version": "2020-12-01", "Steps": [{"Name": "ApprovedModel", "Type": "Model", "Arguments": {
        "Containers": [{"ModelPackageName": package_arn}]}}]}
    return {"PipelineArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}", "PipelineName": PIPELINE,
            "PipelineDefinition": json.dumps(definition), "PipelineDescription": f"with model package {package_arn}"}


def test_the_deployment_wait_ends_when_the_pipeline_names_the_latest_approved_package(clock: FakeClock) -> None:
    """Until a package is Approved the pipeline does not exist (DescribePipeline: ResourceNotFound); after an
    approval the approval rule redeploys it, so a pipeline naming an older package is not the one to wait for."""
    aws = offline_aws()
    batch = make_batch(project={"PipelineName": PIPELINE, "Outputs": {"SeedCodePipelineName": "sagemaker-x-seed-code"}})
    sm = Stubber(aws.sagemaker)
    add_latest_approved(sm)
    sm.add_client_error("describe_pipeline", "ResourceNotFound", "Pipeline does not exist",
                        expected_params={"PipelineName": PIPELINE})
    sm.add_response("describe_pipeline", pipeline_answer(PACKAGE_ARN[:-1] + "0"), {"PipelineName": PIPELINE})
    sm.add_response("describe_pipeline", pipeline_answer(PACKAGE_ARN), {"PipelineName": PIPELINE})
    add_latest_approved(sm)
    sm.add_response("describe_pipeline", pipeline_answer(PACKAGE_ARN[:-1] + "0"), {"PipelineName": PIPELINE})
    with sm:
        assert bi.wait_for_deployment(aws, batch, sleep=clock.sleep, clock=clock.clock)["PipelineName"] == PIPELINE
        with pytest.raises(TimeoutError, match=r"deployed with another model package after 0 min, expected with "
                                               r".*: see the latest run of sagemaker-x-seed-code"):
            bi.wait_for_deployment(aws, batch, timeout=0, sleep=clock.sleep, clock=clock.clock)


# --- scoring an upload ------------------------------------------------------------------------------------------


def test_the_scoring_file_is_what_the_model_reads_and_the_labels_stay_local(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    scoring = fsi.prepare_scoring_file(state, 5, tmp_path / "work", now=dt.datetime(2025, 3, 4, 5, 6, 7))
    assert scoring["file"].name == "abalone-unlabelled-20250304T050607Z.csv"
    lines = scoring["file"].read_text().splitlines()
    assert len(lines) == 5 and all(len(line.split(",")) == 8 and line[0] in "MFI" for line in lines)
    labels = pd.read_csv(scoring["labels"])
    assert list(labels.columns) == ["record_id", "rings"] and len(labels) == 5
    frame = pd.read_csv(state.local_csv).set_index("record_id")
    assert [float(line.split(",")[1]) for line in lines] == frame.loc[labels["record_id"], "length"].tolist()


def project_info() -> dict:
    return {"ProjectName": "abalone-batch-inference", "ProjectId": "p-batchunit01", "StackName": "SC-x",
            "PipelineName": PIPELINE, "Buckets": [ARTIFACT_BUCKET], "LogGroups": ["/aws/codebuild/x"],
            "Outputs": {"PredictionsLocation": f"s3://{ARTIFACT_BUCKET}/predictions/",
                        "DeadLetterQueueUrl": "https://sqs/dlq", "StartIngestionFunctionName": "start-fn"}}


def lambda_start(key: str, size: int = 10) -> dict:
    """The project's start Lambda as the batch product configures it (START_WITH_MANIFEST=always, the artifact
    bucket for the manifests), started for an upload of ``key``."""
    app = lambda_app()
    settings = app.Settings(pipeline_name=PIPELINE, bucket=DATA_BUCKET, prefix=PREFIX, suffix=".csv",
                            manifest_bucket=ARTIFACT_BUCKET, always_manifest=True)
    upload = app.Upload(bucket=DATA_BUCKET, key=key, operation="PutObject", origin="S3",
                        identity=(f"sequencer={hashlib.sha256(key.encode()).hexdigest()[:16].upper()}",), size=size)
    return app.start_execution(boto3.client("sagemaker", region_name=REGION), settings, upload, "event",
                               s3=boto3.client("s3", region_name=REGION))


@pytest.fixture
def played_project(aws, tmp_path: Path) -> dict:
    """moto with the data and artifact buckets and the project's pipeline (as its build would have deployed it)."""
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (DATA_BUCKET, ARTIFACT_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    boto3.client("sagemaker", region_name=REGION).create_pipeline(
        PipelineName=PIPELINE, PipelineDefinition=pipeline_answer(PACKAGE_ARN)["PipelineDefinition"],
        RoleArn=ROLE, ClientRequestToken="c" * 32)
    state = make_state(tmp_path)
    return {"aws": aws, "state": state, "batch": make_batch(project=project_info()),
            "scoring": fsi.prepare_scoring_file(state, 4, tmp_path / "work")}


def test_the_upload_is_found_through_the_manifest_the_lambda_wrote(played_project: dict) -> None:
    """The start Lambda starts each upload with InputManifestUrl, a one-object ManifestFile naming the key under
    the bucket as prefix: the walkthrough finds its execution by reading that manifest, not by the display name;
    the execution of another upload (started by the same Lambda) is not taken for it."""
    aws, state, batch, scoring = (played_project[k] for k in ("aws", "state", "batch", "scoring"))
    uploaded = fsi.upload_for_scoring(aws, state, batch, scoring["file"])
    assert batch.uploads == [uploaded["url"]] and uploaded["key"].startswith(PREFIX)
    other = lambda_start(PREFIX + "someone-else.csv")
    mine = lambda_start(uploaded["key"])
    assert other["executionArn"] != mine["executionArn"] and "inputManifestUrl" in mine
    found = bi.find_execution(aws, PIPELINE, uploaded, timeout=0)
    assert found == {"PipelineExecutionArn": mine["executionArn"], "InputParameter": "InputManifestUrl"}
    execution = fsi.follow_scoring(aws, batch, uploaded, find_timeout=0, timeout=0)  # moto: Succeeded at once
    assert execution["PipelineExecutionArn"] == mine["executionArn"]


def test_a_hand_started_execution_is_found_by_its_input_data_url(played_project: dict) -> None:
    aws, state, batch, scoring = (played_project[k] for k in ("aws", "state", "batch", "scoring"))
    uploaded = fsi.upload_for_scoring(aws, state, batch, scoring["file"])
    arn = aws.sagemaker.start_pipeline_execution(
        PipelineName=PIPELINE, ClientRequestToken="d" * 32,
        PipelineParameters=[{"Name": "InputDataUrl", "Value": uploaded["url"]}])["PipelineExecutionArn"]
    assert bi.find_execution(aws, PIPELINE, uploaded, timeout=0) == {"PipelineExecutionArn": arn,
                                                                     "InputParameter": "InputDataUrl"}


def test_no_execution_for_the_upload_names_the_dead_letter_queue(played_project: dict, clock: FakeClock) -> None:
    aws, state, batch, scoring = (played_project[k] for k in ("aws", "state", "batch", "scoring"))
    uploaded = fsi.upload_for_scoring(aws, state, batch, scoring["file"])
    lambda_start(PREFIX + "someone-else.csv")
    with pytest.raises(TimeoutError, match=r"no execution of pipeline .* before a model package is Approved there is "
                                           r"no pipeline to start. \(StartIngestionFunctionName: start-fn, "
                                           r"DeadLetterQueueUrl: https://sqs/dlq\)"):
        bi.find_execution(aws, PIPELINE, uploaded, timeout=30, poll=10, sleep=clock.sleep, clock=clock.clock,
                          diagnostics="(StartIngestionFunctionName: start-fn, DeadLetterQueueUrl: https://sqs/dlq)")


def test_the_prediction_path_holds_the_input_key() -> None:
    """Batch transform writes, for each input object, <S3OutputPath>/<the object's path relative to the input
    location>.out ("TransformOutput", S3OutputPath, SageMaker API reference); the pipeline's S3OutputPath is
    <PredictionsLocation><execution id>. Through the manifest, whose prefix is the bucket, the relative path is
    the full key; an InputDataUrl is the object itself, so only its name remains."""
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/abc123def456"
    location = f"s3://{ARTIFACT_BUCKET}/predictions/"
    assert bi.prediction_url(location, arn, PREFIX + "a b/c.csv") == \
        f"s3://{ARTIFACT_BUCKET}/predictions/abc123def456/{PREFIX}a b/c.csv.out"
    assert bi.prediction_url(location.rstrip("/"), arn, PREFIX + "c.csv", "InputDataUrl") == \
        f"s3://{ARTIFACT_BUCKET}/predictions/abc123def456/c.csv.out"


def test_the_predictions_are_read_back_line_by_line_next_to_their_rows(played_project: dict) -> None:
    aws, state, batch, scoring = (played_project[k] for k in ("aws", "state", "batch", "scoring"))
    uploaded = fsi.upload_for_scoring(aws, state, batch, scoring["file"])
    arn = lambda_start(uploaded["key"])["executionArn"]
    execution = {"PipelineExecutionArn": arn, "InputParameter": "InputManifestUrl"}
    url = bi.prediction_url(f"s3://{ARTIFACT_BUCKET}/predictions/", arn, uploaded["key"])
    key = url.removeprefix(f"s3://{ARTIFACT_BUCKET}/")
    with pytest.raises(fsi.WalkthroughError, match=f"cannot read the predictions at {url}"):
        fsi.read_predictions(aws, batch, uploaded, execution, scoring)
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=b"9.5\n10.25\n\n7.0\n12.0\n")  # a mini-batch boundary
    frame = fsi.read_predictions(aws, batch, uploaded, execution, scoring)
    labels = pd.read_csv(scoring["labels"])
    assert frame["predicted_rings"].tolist() == [9.5, 10.25, 7.0, 12.0]
    assert frame["record_id"].tolist() == labels["record_id"].tolist()
    assert frame["error"].tolist() == (frame["predicted_rings"] - labels["rings"]).tolist()
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=b"9.5\n10.25\n")
    with pytest.raises(fsi.WalkthroughError, match="holds 2 predictions for 4 input rows"):
        fsi.read_predictions(aws, batch, uploaded, execution, scoring)


def test_a_failed_scoring_names_the_failing_step_and_the_transform_logs(clock: FakeClock) -> None:
    sm = boto3.client("sagemaker", region_name=REGION)
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/abc123def456"
    stubber = Stubber(sm)
    stubber.add_response("describe_pipeline_execution", {"PipelineExecutionArn": arn,
                                                         "PipelineExecutionStatus": "Executing"},
                         {"PipelineExecutionArn": arn})
    stubber.add_response("describe_pipeline_execution", {"PipelineExecutionArn": arn,
                                                         "PipelineExecutionStatus": "Failed",
                                                         "FailureReason": "Step failure"},
                         {"PipelineExecutionArn": arn})
    stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [
        {"StepName": "BatchTransformManifest", "StepStatus": "Failed",
         "FailureReason": "ClientError: See job logs for more information"},
        {"StepName": "ApprovedModel", "StepStatus": "Succeeded"}]}, {"PipelineExecutionArn": arn})
    with stubber, pytest.raises(fsi.WalkthroughError) as failed:
        bi.wait_for_execution(sm, arn, sleep=clock.sleep, clock=clock.clock)
    assert str(failed.value) == (
        f"execution {arn} is Failed: Step failure; failed steps: BatchTransformManifest: ClientError: See job logs "
        "for more information. The transform job's logs are in CloudWatch (/aws/sagemaker/TransformJobs, a stream "
        "per instance): the entry point names the line it could not read.")


# --- clean-up -------------------------------------------------------------------------------------------------


def test_the_plan_lists_the_batch_resources_and_nothing_without_a_batch_state() -> None:
    state = make_state()
    assert fsi.cleanup_plan(state, fsi.BatchState()) == fsi.cleanup_plan(state)
    batch = make_batch(project=project_info(), model_packages=[PACKAGE_ARN], created={"model_package_group": True,
                       "model_bucket": True}, model_bucket=f"sagemaker-{REGION}-{ACCOUNT}",
                       model_artifacts=["s3://m/model.tar.gz"], uploads=[f"s3://{DATA_BUCKET}/{PREFIX}x.csv"])
    plan = fsi.cleanup_plan(state, batch)
    assert plan[:8] == [
        "SageMaker project abalone-batch-inference (p-batchunit01) and its stack SC-x",
        f"the models SageMaker pipeline {PIPELINE} created (one per execution), then the pipeline and its execution "
        "history",
        f"bucket {ARTIFACT_BUCKET}, every object version in it (input manifests, predictions)",
        "log group /aws/codebuild/x",
        f"model package {PACKAGE_ARN}",
        f"model package group {GROUP} if it holds no other package (the walkthrough created it)",
        "model artifact s3://m/model.tar.gz",
        f"file uploaded for scoring s3://{DATA_BUCKET}/{PREFIX}x.csv",
    ]
    assert plan[8] == f"bucket sagemaker-{REGION}-{ACCOUNT} if nothing else is left in it (the walkthrough created it)"


EXECUTIONS = [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/{eid}"
              for eid in ("aaaaaaaaaaa1", "aaaaaaaaaaa2")]


def model_step(execution: str, model: str | None) -> dict:
    steps = [{"StepName": "IsManifestInput", "StepStatus": "Succeeded",
              "Metadata": {"Condition": {"Outcome": "False"}}}]
    if model:
        steps.append({"StepName": "ApprovedModel", "StepStatus": "Succeeded",
                      "Metadata": {"Model": {"Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{model.lower()}"}}})
    return {"PipelineExecutionSteps": steps}


def test_the_models_of_the_pipeline_are_found_through_its_executions_and_deleted() -> None:
    """ListPipelineExecutionSteps names each model step's model by ARN (PipelineExecutionStepMetadata.Model.Arn);
    ARNs may carry the name in lowercase (boto/boto3#4606), DeleteModel takes the exact name: ListModels gives it.
    A model gone already is skipped; another model created meanwhile is left alone."""
    aws = offline_aws()
    sm = Stubber(aws.sagemaker)
    started = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    names = ["pipelines-aaaaaaaaaaa1-ApprovedModel-Xy12AbCdEf", "pipelines-aaaaaaaaaaa2-ApprovedModel-Qr34GhIjKl"]
    sm.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
        {"PipelineExecutionArn": EXECUTIONS[1], "StartTime": started + dt.timedelta(hours=1)},
        {"PipelineExecutionArn": EXECUTIONS[0], "StartTime": started}]}, {"PipelineName": PIPELINE})
    sm.add_response("list_pipeline_execution_steps", model_step(EXECUTIONS[1], names[1]),
                    {"PipelineExecutionArn": EXECUTIONS[1]})
    sm.add_response("list_pipeline_execution_steps", model_step(EXECUTIONS[0], names[0]),
                    {"PipelineExecutionArn": EXECUTIONS[0]})
    sm.add_response("list_models", {"Models": [
        {"ModelName": name, "ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{name}",
         "CreationTime": started} for name in [*names, "someone-elses-model"]]},
        {"SortBy": "CreationTime", "SortOrder": "Ascending", "CreationTimeAfter": started - dt.timedelta(minutes=1)})
    sm.add_response("delete_model", {}, {"ModelName": names[0]})
    sm.add_client_error("delete_model", "ValidationException", f"Could not find model \"{names[1]}\".",
                        expected_params={"ModelName": names[1]})
    with sm:
        deleted = fsi.delete_batch_models(aws, make_batch(project=project_info()))
    assert deleted == [names[0]]
    sm.assert_no_pending_responses()


def test_a_pipeline_that_is_gone_has_no_models_to_delete() -> None:
    aws = offline_aws()
    sm = Stubber(aws.sagemaker)
    sm.add_client_error("list_pipeline_executions", "ResourceNotFound", f"Pipeline {PIPELINE} does not exist.",
                        expected_params={"PipelineName": PIPELINE})
    with sm:
        assert fsi.delete_batch_models(aws, make_batch(project=project_info())) == []
        assert fsi.delete_batch_models(aws, fsi.BatchState()) == []  # nothing recorded: no call


def test_the_packages_go_then_the_group_if_the_walkthrough_made_it_and_it_is_empty() -> None:
    """DeleteModelPackage per package the walkthrough registered (one gone already), then DeleteModelPackageGroup
    only when ListModelPackages finds no other package in the group (a group still holding packages cannot be
    deleted: ConflictException, DeleteModelPackageGroup API reference); a group the walkthrough did not create is
    never deleted."""
    aws = offline_aws()
    second = PACKAGE_ARN[:-1] + "2"
    sm = Stubber(aws.sagemaker)
    sm.add_response("delete_model_package", {}, {"ModelPackageName": PACKAGE_ARN})
    sm.add_client_error("delete_model_package", "ValidationException", f"Model package {second} does not exist.",
                        expected_params={"ModelPackageName": second})
    sm.add_response("list_model_packages", {"ModelPackageSummaryList": []},
                    {"ModelPackageGroupName": GROUP, "MaxResults": 1})
    sm.add_response("delete_model_package_group", {}, {"ModelPackageGroupName": GROUP})
    batch = make_batch(model_packages=[PACKAGE_ARN, second], created={"model_package_group": True})
    with sm:
        assert fsi.delete_registered_models(aws, batch) == {"model_packages": [PACKAGE_ARN],
                                                            "model_package_group": True}
    sm.add_response("delete_model_package", {}, {"ModelPackageName": PACKAGE_ARN})
    sm.add_response("list_model_packages", {"ModelPackageSummaryList": [
        {"ModelPackageArn": second, "CreationTime": started_at(), "ModelPackageStatus": "Completed",
         "ModelPackageName": GROUP}]}, {"ModelPackageGroupName": GROUP, "MaxResults": 1})
    sm.add_response("delete_model_package", {}, {"ModelPackageName": PACKAGE_ARN})
    with sm:
        assert fsi.delete_registered_models(aws, make_batch(model_packages=[PACKAGE_ARN], created={
            "model_package_group": True}))["model_package_group"] is False
        assert fsi.delete_registered_models(aws, make_batch(model_packages=[PACKAGE_ARN]))["model_package_group"] \
            is False
    sm.assert_no_pending_responses()


def started_at() -> dt.datetime:
    return dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def test_the_files_and_the_model_bucket_the_walkthrough_created_are_deleted(aws, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    bucket = f"sagemaker-{REGION}-{ACCOUNT}"
    s3.create_bucket(Bucket=DATA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    state, batch = make_state(tmp_path), make_batch()
    url = fsi.upload_model(aws, batch, fsi.package_model(definition_model(), tmp_path), "models/")
    scoring = fsi.prepare_scoring_file(state, 3, tmp_path / "work")
    for _ in range(2):  # two versions of the same upload
        fsi.upload_for_scoring(aws, state, batch, scoring["file"])
    s3.put_object(Bucket=DATA_BUCKET, Key="keep/me.txt", Body=b"not the walkthrough's")
    assert fsi.delete_batch_files(aws, batch) == 3
    assert [v["Key"] for v in s3.list_object_versions(Bucket=DATA_BUCKET).get("Versions", [])] == ["keep/me.txt"]
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    # A model bucket that holds something else stays.
    url = fsi.upload_model(aws, batch, fsi.package_model(definition_model(), tmp_path), "models/")
    s3.put_object(Bucket=bucket, Key="other/model.tar.gz", Body=b"x")
    fsi.delete_batch_files(aws, batch)
    assert bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["other/model.tar.gz"]
    assert url not in [f"s3://{bucket}/{o['Key']}" for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]


def test_the_pipeline_buckets_and_log_groups_of_the_project_are_deleted(aws) -> None:
    s3, sm = boto3.client("s3", region_name=REGION), boto3.client("sagemaker", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACT_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=ARTIFACT_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key="predictions/x/y.out", Body=b"1")
    s3.delete_object(Bucket=ARTIFACT_BUCKET, Key="predictions/x/y.out")
    sm.create_pipeline(PipelineName=PIPELINE, PipelineDefinition="{}", RoleArn=ROLE, ClientRequestToken="e" * 32)
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/aws/codebuild/x")
    batch = make_batch(project=project_info())
    assert fsi.delete_batch_pipeline(aws, batch) is True
    assert fsi.delete_batch_buckets(aws, batch) == [ARTIFACT_BUCKET]
    assert fsi.delete_batch_log_groups(aws, batch) == ["/aws/codebuild/x"]
    assert (fsi.delete_batch_pipeline(aws, batch), fsi.delete_batch_buckets(aws, batch)) == (False, [])
    empty = fsi.BatchState()
    assert (fsi.delete_batch_project(aws, empty), fsi.delete_batch_pipeline(aws, empty)) == (False, False)
    assert (fsi.delete_batch_buckets(aws, empty), fsi.delete_batch_log_groups(aws, empty)) == ([], [])


def test_a_missing_state_file_is_an_empty_state_only_when_allowed(tmp_path: Path) -> None:
    assert fsi.BatchState.load(tmp_path / "none.json", missing_ok=True) == fsi.BatchState()
    with pytest.raises(fsi.WalkthroughError, match="run 02-batch-inference.ipynb first"):
        fsi.BatchState.load(tmp_path / "none.json")
    (tmp_path / "old.json").write_text(json.dumps({"model_package_group": GROUP, "from_a_later_version": 1}))
    assert fsi.BatchState.load(tmp_path / "old.json").model_package_group == GROUP


def test_the_manifest_reader_refuses_what_is_no_manifest(aws) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACT_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key="m/ok.manifest", Body=json.dumps(
        [{"prefix": f"s3://{DATA_BUCKET}/"}, "a/b.csv", "c.csv"]).encode())
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key="m/bad.manifest", Body=b'["s3://x/y"]')
    assert bi.manifest_objects(s3, f"s3://{ARTIFACT_BUCKET}/m/ok.manifest") == [
        f"s3://{DATA_BUCKET}/a/b.csv", f"s3://{DATA_BUCKET}/c.csv"]
    with pytest.raises(fsi.WalkthroughError, match="is not a SageMaker manifest"):
        bi.manifest_objects(s3, f"s3://{ARTIFACT_BUCKET}/m/bad.manifest")


def test_the_archive_reads_back_as_the_model_it_was_made_from(tmp_path: Path) -> None:
    model = definition_model()
    with tarfile.open(fsi.package_model(model, tmp_path), "r:gz") as tar:
        stored = json.load(io.TextIOWrapper(tar.extractfile("model.json"), encoding="utf-8"))
        assert tar.extractfile("code/inference.py").read() == Path(fsi.inference.__file__).read_bytes()
    assert stored == json.loads(json.dumps(model))
