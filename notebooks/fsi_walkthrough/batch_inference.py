"""The steps of ``02-batch-inference``: train a small model, register and approve it, create the batch-inference
project, upload a file and read its predictions; and the clean-up of what they created.

The project ("S3 batch inference with the latest approved model") watches a prefix of the data bucket. Every
upload starts its SageMaker pipeline with a one-object manifest (``InputManifestUrl``); the pipeline creates a
model from the group's latest Approved model package and runs a batch transform that writes
``s3://<artifact bucket>/<PredictionsPrefix><execution id>/<input key>.out``. The pipeline exists only once a
package of the group is Approved: the project's build resolves it, and approving or rejecting a package
redeploys the pipeline.

The model: a linear regression of ``rings`` on the features of the walkthrough's feature group (the seed code's
definition: ``sex`` one-hot encoded, the measurements as they are), trained with numpy on the CSV ``00-setup``
wrote, kept as plain numbers in ``model.json`` and served by :mod:`fsi_walkthrough.inference` in the SageMaker
scikit-learn container. No pickle: scikit-learn documents that a model pickled with one version may not load
with another ("Model persistence", scikit-learn user guide), and the container's version (1.2.1) is not the
notebook's.

What ``02-batch-inference`` recorded lives in its own state file (:class:`BatchState`, next to 00-setup's):
``99-clean-up`` reads both.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import logging
import re
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError

from . import cleanup, dataset, inference, ingestion, project, resources, walkthrough
from . import feature_group as fg
from .aws import Aws, WalkthroughError, error_code, error_message
from .sklearn_images import SKLEARN_VERSION, sklearn_image_uri
from .steps import State

LOG = logging.getLogger("fsi_walkthrough")

PRODUCT_NAME = "S3 batch inference with the latest approved model"
TEMPLATE_NAME = "s3-batch-inference"  # CfnTemplateProvider.TemplateName (the release's project slug)
TARGET = "rings"
CONTENT_TYPE = "text/csv"
# The layout the SageMaker Python SDK gives a repacked model: the entry point under code/ in model.tar.gz,
# the container told where it is (sagemaker-serve model_builder.py, _script_mode_env_vars).
ENTRY_POINT = "inference.py"
CODE_DIR = "code"
SUBMIT_DIRECTORY = "/opt/ml/model/code"
# botocore's SageMaker model: a group's name (CreateModelPackageGroup: EntityName), ClientToken (1-36 of [a-zA-Z0-9-]).
GROUP_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
GROUP_NAME_MAX = 63
CLIENT_TOKEN_CHARS = 32
PACKAGE_DONE = "Completed"
PACKAGE_FAILED = {"Failed", "Deleting"}
MANIFEST_PARAMETER = "InputManifestUrl"
INPUT_PARAMETER = ingestion.INPUT_PARAMETER
PREDICTIONS_OUTPUT = "PredictionsLocation"
PREDICTION_SUFFIX = ".out"  # batch transform: <output path>/<input object's path relative to the input>.out


# --- the state of 02-batch-inference ----------------------------------------------------------------------------


@dataclass
class BatchState:
    """What ``02-batch-inference`` created or uses, for itself when re-run and for ``99-clean-up``."""

    model_package_group: str = ""
    data_prefix: str = ""  # the prefix the batch-inference project watches (in 00-setup's data bucket)
    data_suffix: str = ""
    # What the walkthrough created (not reused): "model_package_group", "model_bucket".
    created: dict[str, bool] = field(default_factory=dict)
    model_bucket: str = ""  # sagemaker-<region>-<account>: the project's execution role may read models there
    model_artifacts: list[str] = field(default_factory=list)  # s3:// URLs of the uploaded model.tar.gz
    model_packages: list[str] = field(default_factory=list)  # ARNs of the packages the walkthrough registered
    approved_package: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    project: dict[str, Any] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)  # s3:// URLs of files uploaded for scoring

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        LOG.info("batch-inference state saved to %s", path)
        return path

    @classmethod
    def load(cls, path: str | Path, *, missing_ok: bool = False) -> BatchState:
        """The saved state; with ``missing_ok`` an empty one (nothing recorded) when there is no file."""
        path = Path(path)
        if not path.is_file():
            if missing_ok:
                return cls()
            raise WalkthroughError(f"no batch-inference state at {path}: run 02-batch-inference.ipynb first")
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def remember(self, attribute: str, value: str) -> None:
        values = getattr(self, attribute)
        if value not in values:
            values.append(value)


def start(state: State, path: str | Path, group: str, data_prefix: str, data_suffix: str = "") -> BatchState:
    """The batch-inference state (the saved one when the notebook runs again), its settings checked.

    The watched prefix must not overlap the ingestion project's (``00-setup``'s DATA_PREFIX): a file under
    both would start both projects, and the ingestion project would fail on a file without header and label.
    """
    check_group_name(group)
    prefix = resources.watched_prefix(data_prefix)
    other = state.data_prefix
    if other and (prefix.startswith(other) or other.startswith(prefix)):
        raise WalkthroughError(
            f"DATA_PREFIX {prefix!r} overlaps the ingestion project's prefix {other!r} (00-setup): uploads there "
            "would start both projects. Choose a prefix outside it, e.g. 'fsi-walkthrough/batch-inference/incoming/'"
        )
    batch = BatchState.load(path, missing_ok=True)
    if batch.model_package_group and batch.model_package_group != group:
        raise WalkthroughError(
            f"{path} records model package group {batch.model_package_group}, not {group}: run 99-clean-up.ipynb "
            "first, or set BATCH_STATE_FILE to another file"
        )
    batch.model_package_group, batch.data_prefix, batch.data_suffix = group, prefix, data_suffix
    return batch


def check_group_name(name: str) -> str:
    """``name`` if SageMaker accepts it as a model package group name (botocore's ``EntityName``: 1-63 characters)."""
    if len(name) > GROUP_NAME_MAX or not GROUP_NAME_PATTERN.fullmatch(name):
        raise WalkthroughError(
            f"MODEL_PACKAGE_GROUP {name!r} is not a valid model package group name: 1-63 letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    return name


# --- 1. train a small model -------------------------------------------------------------------------------------


def model_layout(definition: Mapping[str, Any], target: str = TARGET) -> dict[str, Any]:
    """Which features the model uses and how the raw Abalone columns become them.

    The features are the feature group's (the seed code's definition) without the record identifier, the event
    time and the target. A raw column that is no feature is categorical when features ``<column>_<value>``
    exist (``sex`` -> ``sex_m``, ``sex_f``, ``sex_i``), as the processing script one-hot encodes it.
    """
    skip = {definition["RecordIdentifierFeatureName"], definition["EventTimeFeatureName"], target}
    features = [f["FeatureName"] for f in definition["FeatureDefinitions"] if f["FeatureName"] not in skip]
    input_columns = [column for column in dataset.COLUMNS if column != target]
    categories: dict[str, dict[str, str]] = {}
    covered: set[str] = set()
    for column in input_columns:
        if column in features:
            covered.add(column)
            continue
        values = {name[len(column) + 1:]: name for name in features if name.startswith(column + "_")}
        if not values:
            raise WalkthroughError(f"the feature group has no feature for the data set's column {column!r}")
        categories[column] = values
        covered.update(values.values())
    unknown = [name for name in features if name not in covered]
    if unknown:
        raise WalkthroughError(f"features {', '.join(unknown)} come from no column of the Abalone data set")
    return {"format": inference.MODEL_FORMAT, "target": target, "features": features,
            "input_columns": input_columns, "categories": categories}


def feature_matrix(frame: pd.DataFrame, layout: Mapping[str, Any]) -> np.ndarray:
    """The rows of ``frame`` encoded by the serving entry point's own :func:`~fsi_walkthrough.inference.features`."""
    rows = frame[layout["input_columns"]].astype(str).to_numpy().tolist()
    return np.array([inference.features(row, layout) for row in rows], dtype=float)


def fit_linear(x: np.ndarray, y: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, float]:
    """Ridge regression (closed form on centred data; the intercept is not penalised).

    The penalty keeps the system solvable although the one-hot columns sum to one.
    """
    x_mean, y_mean = x.mean(axis=0), float(y.mean())
    xc, yc = x - x_mean, y - y_mean
    coefficients = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return coefficients, y_mean - float(x_mean @ coefficients)


def fit_model(frame: pd.DataFrame, definition: Mapping[str, Any], *, test_fraction: float = 0.2, seed: int = 7,
              alpha: float = 0.01) -> dict[str, Any]:
    """Train on a random ``1 - test_fraction`` of the rows; metrics on the rest (RMSE, MAE, R², and the RMSE of
    always predicting the training mean, to compare with)."""
    layout = model_layout(definition)
    test = frame.sample(frac=test_fraction, random_state=seed) if len(frame) > 4 else frame.iloc[0:0]
    train = frame.drop(test.index)
    y_train = train[TARGET].to_numpy(dtype=float)
    coefficients, intercept = fit_linear(feature_matrix(train, layout), y_train, alpha)
    model = {**layout, "coefficients": [float(c) for c in coefficients], "intercept": float(intercept)}
    evaluated = test if len(test) else train
    actual = evaluated[TARGET].to_numpy(dtype=float)
    predicted = feature_matrix(evaluated, layout) @ coefficients + intercept
    errors = predicted - actual
    baseline = float(np.sqrt(np.mean((actual - y_train.mean()) ** 2)))
    spread = float(np.sum((actual - actual.mean()) ** 2))
    model["metrics"] = {
        "train_rows": len(train),
        "test_rows": len(test),
        "rmse": round(float(np.sqrt(np.mean(errors ** 2))), 4),
        "mae": round(float(np.mean(np.abs(errors))), 4),
        "r2": round(1 - float(np.sum(errors ** 2)) / spread, 4) if spread else 0.0,
        "baseline_rmse": round(baseline, 4),
    }
    return model


def train_model(state: State, seed_code_dir: str | Path, *, test_fraction: float = 0.2, seed: int = 7
                ) -> dict[str, Any]:
    """A linear model of ``rings`` on the feature group's features, from the CSV 00-setup wrote."""
    csv = Path(ingestion.require(state.local_csv, "the data set's CSV (00-setup)"))
    if not csv.is_file():
        raise WalkthroughError(f"{csv} is missing: run 00-setup.ipynb again (it downloads the data set)")
    model = fit_model(pd.read_csv(csv), fg.load_definition(seed_code_dir), test_fraction=test_fraction, seed=seed)
    metrics = model["metrics"]
    LOG.info("trained on %d rows: RMSE %.2f rings on %d held-out rows (always predicting the mean: %.2f)",
             metrics["train_rows"], metrics["rmse"], metrics["test_rows"], metrics["baseline_rmse"])
    return model


def predict_locally(model: Mapping[str, Any], path: str | Path) -> list[float]:
    """What the serving entry point answers for a scoring file (no header, no label), computed here."""
    rows = inference.input_fn(Path(path).read_text(encoding="utf-8"), CONTENT_TYPE)
    return inference.predict_fn(rows, model)


# --- 2. package and register ------------------------------------------------------------------------------------


def package_model(model: Mapping[str, Any], work_dir: str | Path) -> Path:
    """``model.tar.gz``: ``model.json`` and ``code/inference.py``; byte-identical for the same model."""
    inference.check_model(dict(model))
    members = {
        inference.MODEL_FILE: (json.dumps(model, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        f"{CODE_DIR}/{ENTRY_POINT}": Path(inference.__file__).read_bytes(),
    }
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(members[name]), 0, 0o644
            archive.addfile(info, io.BytesIO(members[name]))
    path = Path(work_dir) / "model" / "model.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as target, gzip.GzipFile(filename="", mode="wb", fileobj=target, mtime=0) as zipped:
        zipped.write(tar_bytes.getvalue())
    LOG.info("packaged %s (%d bytes): %s", path, path.stat().st_size, ", ".join(sorted(members)))
    return path


def upload_model(aws: Aws, batch: BatchState, archive: str | Path, prefix: str) -> str:
    """Upload ``model.tar.gz`` to the SageMaker default bucket ``sagemaker-<region>-<account>`` (created if missing).

    The batch-inference project's execution role may read model artifacts there and nowhere else
    (its ReadModelArtifacts grant); the key holds the archive's SHA-256, so a new model never replaces an
    object a registered package points to.
    """
    archive = Path(archive)
    bucket = resources.default_bucket_name(aws)
    created = resources.ensure_bucket(aws, bucket)
    batch.model_bucket = bucket
    batch.created["model_bucket"] = batch.created.get("model_bucket", False) or created
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    key = f"{prefix.strip('/')}/{batch.model_package_group}/{digest[:16]}/{archive.name}".lstrip("/")
    with archive.open("rb") as body:
        aws.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/gzip")
    url = f"s3://{bucket}/{key}"
    batch.remember("model_artifacts", url)
    LOG.info("uploaded the model to %s", url)
    return url


def inference_specification(image: str, model_url: str, region: str) -> dict[str, Any]:
    """The package's InferenceSpecification: the image, the model data, the entry point, CSV in and out.

    No ``SupportedTransformInstanceTypes``: optional for versioned packages (CreateModelPackage, SageMaker API
    reference), and a list would bind the project's ``TransformInstanceType`` to it.
    """
    return {
        "Containers": [{
            "Image": image,
            "ModelDataUrl": model_url,
            "Environment": {
                "SAGEMAKER_PROGRAM": ENTRY_POINT,
                "SAGEMAKER_SUBMIT_DIRECTORY": SUBMIT_DIRECTORY,
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_REGION": region,
            },
        }],
        "SupportedContentTypes": [CONTENT_TYPE],
        "SupportedResponseMIMETypes": [CONTENT_TYPE],
    }


def model_package_request(group: str, model_url: str, region: str, metrics: Mapping[str, float], *,
                          sklearn_version: str = SKLEARN_VERSION) -> dict[str, Any]:
    """CreateModelPackage arguments: a version of ``group``, pending approval.

    ``ClientToken`` derives from the request itself: registering the same artifact the same way again (a re-run
    cell) returns the package registered the first time instead of adding a version, and a changed request
    (another image, say) is a new token, not an idempotency conflict.
    """
    description = (f"Linear regression of rings on the Abalone features of the fsi-walkthrough feature group: "
                   f"RMSE {metrics.get('rmse', float('nan')):.2f} rings on held-out rows (predicting the mean: "
                   f"{metrics.get('baseline_rmse', float('nan')):.2f}). Registered by 02-batch-inference.")
    request = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": description,
        "InferenceSpecification": inference_specification(sklearn_image_uri(region, sklearn_version), model_url,
                                                          region),
        "ModelApprovalStatus": "PendingManualApproval",
        "CustomerMetadataProperties": {key: f"{value:g}" for key, value in sorted(metrics.items())},
    }
    material = json.dumps(request, sort_keys=True).encode("utf-8")
    return {**request, "ClientToken": hashlib.sha256(material).hexdigest()[:CLIENT_TOKEN_CHARS]}


def ensure_model_package_group(sm: Any, name: str) -> bool:
    """Create the model package group unless it exists; True when it was created here."""
    try:
        sm.describe_model_package_group(ModelPackageGroupName=name)
        LOG.info("using existing model package group %s", name)
        return False
    except ClientError as error:
        if not cleanup._missing(error):
            raise
    sm.create_model_package_group(
        ModelPackageGroupName=name,
        ModelPackageGroupDescription="Models of the number of rings of an abalone (fsi-walkthrough notebooks)",
    )
    LOG.info("created model package group %s", name)
    return True


def wait_for_model_package(
    sm: Any,
    arn: str,
    *,
    timeout: float = 600,
    poll: float = 5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait until the package is ``Completed`` (CreateModel refuses it before); raise when it failed."""
    deadline = clock() + timeout
    while True:
        package = sm.describe_model_package(ModelPackageName=arn)
        status = package.get("ModelPackageStatus")
        if status == PACKAGE_DONE:
            return package
        if status in PACKAGE_FAILED:
            details = package.get("ModelPackageStatusDetails", {}).get("ValidationStatuses", [])
            reasons = "; ".join(f"{d.get('Name')}: {d.get('FailureReason', d.get('Status'))}" for d in details)
            raise WalkthroughError(f"model package {arn} is {status}" + (f": {reasons}" if reasons else ""))
        if clock() >= deadline:
            raise TimeoutError(f"model package {arn} is still {status} after {timeout:.0f} s: see it in Studio "
                               "(Models > Registered models) and run this cell again")
        sleep(poll)


def register_model(aws: Aws, batch: BatchState, model_url: str, metrics: Mapping[str, float], *,
                   sklearn_version: str = SKLEARN_VERSION, timeout: float = 600) -> str:
    """Create the model package group if missing and register the model as a new version, pending approval."""
    sm = aws.sagemaker
    created = ensure_model_package_group(sm, batch.model_package_group)
    batch.created["model_package_group"] = batch.created.get("model_package_group", False) or created
    request = model_package_request(batch.model_package_group, model_url, aws.region, metrics,
                                    sklearn_version=sklearn_version)
    arn = sm.create_model_package(**request)["ModelPackageArn"]
    batch.remember("model_packages", arn)
    batch.metrics = dict(metrics)
    package = wait_for_model_package(sm, arn, timeout=timeout)
    LOG.info("registered model package %s (version %s, %s)", arn, package.get("ModelPackageVersion", "?"),
             package.get("ModelApprovalStatus"))
    return arn


def approve_model(aws: Aws, batch: BatchState, arn: str, note: str = "") -> str:
    """Approve the package (UpdateModelPackage): the project's next build deploys it."""
    aws.sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved",
        ApprovalDescription=note or "Approved in the fsi-walkthrough notebook 02-batch-inference",
    )
    batch.approved_package = arn
    LOG.info("approved model package %s", arn)
    return arn


def latest_approved_package(sm: Any, group: str) -> str:
    """The ARN of the group's most recently created Approved package, as the project's build resolves it
    (ListModelPackages, Approved, by creation time descending, following pages while they are empty)."""
    pages = sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending")
    for page in pages:
        summaries = page.get("ModelPackageSummaryList", [])
        if summaries:
            return str(summaries[0]["ModelPackageArn"])
    raise WalkthroughError(
        f"model package group {group} holds no Approved package: the project's build would fail and every upload "
        "would end in its dead-letter queue. Run the cells above that register and approve the model."
    )


# --- 3. the project ---------------------------------------------------------------------------------------------


def template_parameters(
    state: State,
    batch: BatchState,
    *,
    source_provider: str = "CodeCommit",
    code_connection_arn: str = "",
    repository_id: str = "",
    extra: dict[str, str] | None = None,
) -> list[dict[str, str]]:
    """The batch-inference project's parameters: 00-setup's data bucket and trigger mode, this notebook's
    watched prefix and model package group (the other parameters keep the template's defaults)."""
    values = {
        "DataBucketName": state.data_bucket,
        "DataPrefix": batch.data_prefix,
        "DataSuffix": batch.data_suffix,
        "ModelPackageGroupName": batch.model_package_group,
        "TriggerMode": state.trigger_mode,
        "SourceProvider": source_provider,
        "CodeConnectionArn": code_connection_arn,
        "RepositoryId": repository_id,
        **(extra or {}),
    }
    return project.project_parameters(values)


def check_before_create(aws: Aws, name: str, parameters: list[dict[str, str]]) -> dict[str, str]:
    """What the ingestion project's checks cover (name, data bucket Region, connection), and a model to deploy:
    without an Approved package in the group the project's build fails and uploads end in the dead-letter queue."""
    checked = walkthrough.check_before_create(aws, name, parameters)
    values = {p["Key"]: str(p["Value"]) for p in parameters}
    group = values.get("ModelPackageGroupName", "")
    if not group:
        raise WalkthroughError("the project's parameters name no ModelPackageGroupName")
    checked["LatestApprovedPackage"] = latest_approved_package(aws.sagemaker, group)
    LOG.info("the project will score uploads with %s", checked["LatestApprovedPackage"])
    return checked


def create_project(
    aws: Aws,
    name: str,
    parameters: list[dict[str, str]],
    *,
    source: str = "ServiceCatalog",
    product_name: str = PRODUCT_NAME,
    version: str = "",
    template_url: str = "",
    description: str = "Score files uploaded to S3 with the latest approved model of a model package group",
) -> dict[str, str]:
    """Create the batch-inference project (Service Catalog product or S3 template) after
    :func:`check_before_create`; an existing project of that name is reused."""
    if source not in project.TEMPLATE_SOURCES:
        raise WalkthroughError(f"TEMPLATE_SOURCE must be one of {', '.join(project.TEMPLATE_SOURCES)}, not {source!r}")
    if source == "S3Template":
        request = project.s3_template_request(name, description, template_url, parameters)
        request["TemplateProviders"][0]["CfnTemplateProvider"]["TemplateName"] = TEMPLATE_NAME
        check_before_create(aws, name, parameters)
    else:
        check_before_create(aws, name, parameters)
        product = project.find_product_version(aws.client("servicecatalog"), product_name, version)
        request = project.service_catalog_request(name, description, product, parameters)
    return project.create_project(aws.sagemaker, request)


def check_notifications(aws: Aws, state: State, batch: BatchState) -> bool:
    """00-setup's data bucket sends its events to EventBridge (S3EventBridge mode; see
    :func:`~fsi_walkthrough.walkthrough.check_eventbridge_notifications`), named after this project's stack."""
    return walkthrough.check_eventbridge_notifications(aws, replace(state, project=batch.project))


def wait_for_deployment(
    aws: Aws,
    batch: BatchState,
    *,
    timeout: float = 1200,
    poll: float = 20,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait until the project's build has deployed the pipeline with the group's latest Approved package.

    The build names the package in the pipeline's definition (the model step's container) and description;
    a pipeline deployed with an older package is redeployed by the approval rule, so the wait goes on.
    """
    sm = aws.sagemaker
    pipeline = ingestion.require(batch.project.get("PipelineName"), "the project's pipeline name")
    expected = latest_approved_package(sm, batch.model_package_group)
    ci_cd = batch.project.get("Outputs", {}).get("SeedCodePipelineName", "the project's CodePipeline")
    deadline = clock() + timeout
    while True:
        try:
            description = sm.describe_pipeline(PipelineName=pipeline)
        except ClientError as error:
            if error_code(error) not in ("ResourceNotFound", "ResourceNotFoundException"):
                raise
            state = "not deployed yet"
        else:
            deployed = description.get("PipelineDefinition", "") + description.get("PipelineDescription", "")
            if expected in deployed:
                LOG.info("pipeline %s scores with %s", pipeline, expected)
                return description
            state = "deployed with another model package"
        if clock() >= deadline:
            raise TimeoutError(
                f"pipeline {pipeline} is {state} after {timeout / 60:.0f} min, expected with {expected}: see the "
                f"latest run of {ci_cd} in the CodePipeline console (its build names the model package it resolved, "
                "or why it failed)"
            )
        LOG.info("pipeline %s is %s: waiting for the project's build", pipeline, state)
        sleep(poll)


# --- 4. upload a file and read its predictions ---------------------------------------------------------------


def prepare_scoring_file(state: State, rows: int, work_dir: str | Path, now: dt.datetime | None = None
                         ) -> dict[str, Path]:
    """A sample of the data set as the model reads it (no header, no record id, no label), named after the
    current time, and next to it the labels (record id, rings) to compare the predictions with."""
    frame = dataset.sample(pd.read_csv(ingestion.require(state.local_csv, "the data set's CSV (00-setup)")), rows)
    now = now or dt.datetime.now(dt.timezone.utc)  # noqa: UP017 - Studio kernels may run Python 3.10
    stem = f"abalone-unlabelled-{now.strftime('%Y%m%dT%H%M%SZ')}"
    folder = Path(work_dir) / "scoring"
    folder.mkdir(parents=True, exist_ok=True)
    columns = [column for column in dataset.COLUMNS if column != TARGET]
    scoring, labels = folder / f"{stem}.csv", folder / f"{stem}.labels.csv"
    frame[columns].to_csv(scoring, index=False, header=False)
    frame[[dataset.RECORD_ID, TARGET]].to_csv(labels, index=False)
    LOG.info("wrote %s: %d rows of %s (no header)", scoring, len(frame), ",".join(columns))
    return {"file": scoring, "labels": labels}


def upload(aws: Aws, state: State, batch: BatchState, path: str | Path) -> dict[str, Any]:
    """Upload ``path`` under the watched prefix (this starts a scoring) and remember it for the clean-up."""
    uploaded = ingestion.upload_file(aws.s3, path, state.data_bucket, batch.data_prefix)
    batch.remember("uploads", uploaded["url"])
    return uploaded


def manifest_objects(s3: Any, manifest_url: str) -> list[str]:
    """The ``s3://`` URLs a SageMaker ManifestFile lists: ``[{"prefix": "s3://b/p"}, "key", ...]`` (prefix + each
    relative key; "S3DataSource", SageMaker API reference)."""
    parsed = urlparse(manifest_url)
    body = s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    document = json.loads(body)
    if not isinstance(document, list) or not document or not isinstance(document[0], dict):
        raise WalkthroughError(f"{manifest_url} is not a SageMaker manifest ([{{\"prefix\": ...}}, keys...])")
    prefix = str(document[0].get("prefix", ""))
    return [prefix + str(key) for key in document[1:]]


def _scoring_input(aws: Aws, arn: str, input_url: str, manifests: dict[str, list[str]]) -> str:
    """The parameter through which the execution ``arn`` reads ``input_url`` ("" when it does not)."""
    parameters = aws.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    values = {p["Name"]: p["Value"] for p in parameters}
    if values.get(INPUT_PARAMETER) == input_url:
        return INPUT_PARAMETER
    manifest = values.get(MANIFEST_PARAMETER, "")
    if manifest:
        if manifest not in manifests:
            manifests[manifest] = manifest_objects(aws.s3, manifest)
        if input_url in manifests[manifest]:
            return MANIFEST_PARAMETER
    return ""


def find_execution(
    aws: Aws,
    pipeline: str,
    uploaded: Mapping[str, Any],
    *,
    timeout: float = 600,
    poll: float = 10,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    diagnostics: str = "",
) -> dict[str, str]:
    """The execution that scores the upload: its ``InputManifestUrl`` lists the object (how the project's Lambda
    starts it) or its ``InputDataUrl`` is the object (a hand-started one). Returns its ARN and that parameter."""
    since = dt.datetime.fromisoformat(uploaded["uploaded_at"]) - dt.timedelta(minutes=1)
    manifests: dict[str, list[str]] = {}
    deadline = clock() + timeout
    while True:
        pages = aws.sagemaker.get_paginator("list_pipeline_executions").paginate(
            PipelineName=pipeline, CreatedAfter=since, SortBy="CreationTime", SortOrder="Descending")
        for page in pages:
            for summary in page.get("PipelineExecutionSummaries", []):
                arn = summary["PipelineExecutionArn"]
                parameter = _scoring_input(aws, arn, uploaded["url"], manifests)
                if parameter:
                    LOG.info("execution %s scores %s", arn, uploaded["url"])
                    return {"PipelineExecutionArn": arn, "InputParameter": parameter}
        if clock() >= deadline:
            raise TimeoutError(
                f"no execution of pipeline {pipeline} started for {uploaded['url']} within {timeout / 60:.0f} min. "
                "Check that the file is under the watched prefix (and suffix), the start Lambda's log group and the "
                f"dead-letter queue: before a model package is Approved there is no pipeline to start. {diagnostics}"
                .strip()
            )
        sleep(poll)


TRANSFORM_LOGS = ("The transform job's logs are in CloudWatch (/aws/sagemaker/TransformJobs, a stream per "
                  "instance): the entry point names the line it could not read.")


def wait_for_execution(sm: Any, arn: str, *, timeout: float = 3600, **waiting: Any) -> dict[str, Any]:
    """:func:`ingestion.wait_for_execution`, naming the transform job's logs when the execution failed."""
    return ingestion.wait_for_execution(sm, arn, timeout=timeout, logs=TRANSFORM_LOGS, **waiting)


def follow_upload(aws: Aws, batch: BatchState, uploaded: Mapping[str, Any], *, find_timeout: float = 600,
                  timeout: float = 3600) -> dict[str, Any]:
    """Find the execution the upload started and wait until it ends (raises unless it succeeded)."""
    pipeline = ingestion.require(batch.project.get("PipelineName"), "the project's pipeline name")
    outputs = batch.project.get("Outputs", {})
    hints = ", ".join(f"{k}: {outputs[k]}" for k in ("StartIngestionFunctionName", "DeadLetterQueueUrl")
                      if k in outputs)
    found = find_execution(aws, pipeline, uploaded, timeout=find_timeout, diagnostics=f"({hints})" if hints else "")
    execution = wait_for_execution(aws.sagemaker, found["PipelineExecutionArn"], timeout=timeout)
    return {**execution, "InputParameter": found["InputParameter"]}


def prediction_url(location: str, execution_arn: str, input_key: str, parameter: str = MANIFEST_PARAMETER) -> str:
    """Where the transform wrote the predictions of ``input_key``: ``<PredictionsLocation><execution id>/`` and the
    object's path relative to the transform's input, plus ``.out``. Read through the manifest, whose prefix is
    the bucket, that path is the full key; read as ``InputDataUrl`` (the object itself), its file name."""
    relative = input_key if parameter == MANIFEST_PARAMETER else input_key.rsplit("/", 1)[-1]
    execution_id = execution_arn.rstrip("/").rsplit("/", 1)[-1]
    return f"{location.rstrip('/')}/{execution_id}/{relative}{PREDICTION_SUFFIX}"


def read_predictions(aws: Aws, batch: BatchState, uploaded: Mapping[str, Any], execution: Mapping[str, Any],
                     scoring: Mapping[str, str | Path]) -> pd.DataFrame:
    """The scored rows, one per line of the uploaded file, with the prediction, and the true number of rings
    and the error when the labels file is there."""
    location = ingestion.require(batch.project.get("Outputs", {}).get(PREDICTIONS_OUTPUT), "the predictions location")
    url = prediction_url(location, execution["PipelineExecutionArn"], uploaded["key"],
                         execution.get("InputParameter", MANIFEST_PARAMETER))
    parsed = urlparse(url)
    try:
        body = aws.s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read().decode("utf-8")
    except ClientError as error:
        raise WalkthroughError(f"cannot read the predictions at {url}: {error_message(error)}") from error
    predictions = [float(line) for line in body.splitlines() if line.strip()]
    columns = [column for column in dataset.COLUMNS if column != TARGET]
    rows = pd.read_csv(scoring["file"], header=None, names=columns)
    if len(predictions) != len(rows):
        raise WalkthroughError(f"{url} holds {len(predictions)} predictions for {len(rows)} input rows")
    frame = rows.assign(predicted_rings=predictions)
    labels = Path(scoring.get("labels", ""))
    if labels.is_file():
        truth = pd.read_csv(labels)
        frame.insert(0, dataset.RECORD_ID, truth[dataset.RECORD_ID])
        frame = frame.assign(rings=truth[TARGET], error=frame["predicted_rings"] - truth[TARGET])
        LOG.info("RMSE of the %d predictions: %.2f rings", len(frame), float(np.sqrt((frame["error"] ** 2).mean())))
    LOG.info("read %d predictions from %s", len(frame), url)
    return frame


# --- 99-clean-up ----------------------------------------------------------------------------------------------


def delete_project(aws: Aws, batch: BatchState, *, timeout: float = 1800) -> bool:
    if not batch.project:
        LOG.info("no batch-inference project recorded: nothing to delete")
        return False
    return project.delete_project(aws.sagemaker, batch.project["ProjectName"], timeout=timeout)


def delete_pipeline_models(aws: Aws, batch: BatchState) -> list[str]:
    """The models the pipeline's executions created (before the pipeline: its executions name them)."""
    name = batch.project.get("PipelineName")
    return cleanup.delete_models(aws.sagemaker, cleanup.pipeline_models(aws.sagemaker, name)) if name else []


def delete_pipeline(aws: Aws, batch: BatchState) -> bool:
    name = batch.project.get("PipelineName")
    return cleanup.delete_pipeline(aws.sagemaker, name) if name else False


def delete_project_buckets(aws: Aws, batch: BatchState) -> list[str]:
    return cleanup.delete_buckets(aws.s3, batch.project.get("Buckets", []))


def delete_project_log_groups(aws: Aws, batch: BatchState) -> list[str]:
    return cleanup.delete_log_groups(aws, batch.project.get("LogGroups", []))


def delete_registered_models(aws: Aws, batch: BatchState) -> dict[str, Any]:
    """The model packages the walkthrough registered, then the group if the walkthrough created it and it holds
    no other package."""
    deleted = cleanup.delete_model_packages(aws.sagemaker, batch.model_packages)
    group = False
    if batch.created.get("model_package_group") and batch.model_package_group:
        group = cleanup.delete_model_package_group(aws.sagemaker, batch.model_package_group)
    return {"model_packages": deleted, "model_package_group": group}


def delete_files(aws: Aws, batch: BatchState) -> int:
    """The files uploaded for scoring and the model artifacts (every version), and the model bucket if the
    walkthrough created it and nothing else is in it."""
    deleted = cleanup.delete_urls(aws.s3, [*batch.uploads, *batch.model_artifacts])
    if batch.created.get("model_bucket") and batch.model_bucket:
        cleanup.delete_if_empty(aws.s3, batch.model_bucket)
    return deleted

