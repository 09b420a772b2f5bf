"""The AWS calls the project's code makes, recorded by running it, and checked against the role policies.

The run-time IAM gate (``security/runtime_iam``, ``tests/test_security_runtime_iam.py``) evaluates the calls
in ``tests/runtime_recorded_calls.json``. This module produces them from the real code, configured as the
built project template configures it (one sample project, the values ``security/scenarios.py`` uses):

* the start-ingestion Lambda handler, for an S3 "Object Created" event, a CloudTrail event and an upload
  whose ``s3://bucket/key`` is longer than a pipeline parameter may be (the manifest path), against moto;
* the data-bucket-events custom resource handler, for Create, Update and Delete in both trigger modes,
  against moto, answering a local ResponseURL;
* the seed code's build entry point ``deploy.py`` (in a new process, under moto): Script mode twice (create,
  then update) and DataWranglerFlow mode with the flow in a ``sagemaker-*`` bucket (README precondition);
* the seed code's processing script, run as each Script-mode processing step of the upserted pipeline
  runs it (its container arguments, its inputs downloaded), against moto S3 and the Feature Store stand-in,
  with both write APIs.

A botocore ``before-parameter-build`` hook records every call (``tests/runtime_recording.py``); every
operation must be in ``security/runtime_iam/operations.py``. The committed file must equal the recording:

    UPDATE_RECORDED_CALLS=1 .tox/tests/bin/pytest tests/test_runtime_calls_recorded.py

regenerates it (review ``git diff tests/runtime_recorded_calls.json``). Requires boto3, moto and the
SageMaker SDK, so it runs in the tests env only (not named ``test_security_*``).
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from e2e_support import (
    LAMBDA_APP,
    SEED_CODE_DIR,
    feature_group_definition,
    feature_store_standin,
    moto_server,
    processing_script,
)
from lambda_support import with_object
from loading import load_event, load_module
from moto import mock_aws
from runtime_recording import activity, moto_eventbridge_notifications, recording

from generators.products.s3_fs_ingestion import PRODUCT as INGESTION
from generators.release.s3 import PROVISIONING_TAG
from security.runtime_iam import operations, pipeline_steps
from security.runtime_iam.gate import simulate, summarize_denials
from security.runtime_iam.model import RECORDED
from security.runtime_iam.recordings import Activity, Recordings
from security.runtime_iam.roles import ROLES, TOLERATED_DENIALS
from security.runtime_iam.service_calls import PUBLISHED_OBJECT_TAGS, Preconditions, pipeline_samples
from security.scenarios import Scenario, scenarios

PROJECT_TEMPLATE = INGESTION.template_name

TESTS_DIR = Path(__file__).resolve().parent
FIXTURE = TESTS_DIR / "runtime_recorded_calls.json"
DEPLOY_RUNNER = TESTS_DIR / "runtime_record_deploy.py"
BUCKET_EVENTS_APP = TESTS_DIR.parent / "lambda_functions" / "data_bucket_events" / "app.py"
FLOW_FILE = SEED_CODE_DIR / "tests" / "data" / "abalone.flow"
ABALONE_CSV = SEED_CODE_DIR / "tests" / "data" / "abalone_sample.csv"
PRE = Preconditions()
REGION = "eu-west-1"
PROCESSING_ROOT = "/opt/ml/processing"
HEX_RUN = re.compile(r"[0-9a-f]{16,}")


# --- the project the recordings run for ----------------------------------------------------------------


def _project(templates: Mapping[str, dict], **conditions: bool) -> Scenario:
    for scenario in scenarios(PROJECT_TEMPLATE, templates[PROJECT_TEMPLATE]):
        if all(scenario.conditions.get(name) == value for name, value in conditions.items()):
            return scenario
    raise AssertionError(f"no project scenario with {conditions}")


def _env_vars(resource: Mapping[str, Any]) -> dict[str, str]:
    props = resource["Properties"]
    if "Environment" in props and "EnvironmentVariables" in props["Environment"]:  # CodeBuild
        return {v["Name"]: str(v["Value"]) for v in props["Environment"]["EnvironmentVariables"]}
    return dict(props.get("Environment", {}).get("Variables", {}))  # Lambda


def _flow_output(flow: Mapping[str, Any]) -> str:
    """``<node id>.default`` of the flow's last transform: the output the build binds to the feature group."""
    node = [n for n in flow["nodes"] if n["type"] != "SOURCE"][-1]
    return f"{node['node_id']}.{node['outputs'][0]['name']}"


# --- the start-ingestion Lambda ---------------------------------------------------------------------------


def record_start_ingestion(project: Scenario, monkeypatch: pytest.MonkeyPatch) -> list[Activity]:
    env = _env_vars(project.resources["StartIngestionFunction"])
    app = load_module("runtime_start_ingestion_app", LAMBDA_APP)
    bucket, prefix = env["DATA_BUCKET"], env["DATA_PREFIX"]
    uploads = {
        "start-ingestion: S3 Object Created event": with_object(
            load_event("s3-object-created.json"), bucket=bucket, key=prefix + PRE.sample_file),
        "start-ingestion: CloudTrail PutObject event": with_object(
            load_event("cloudtrail-putobject.json"), bucket=bucket, key=prefix + PRE.sample_file),
        "start-ingestion: upload whose s3:// URL exceeds 1,024 characters (manifest)": with_object(
            load_event("s3-object-created.json"), bucket=bucket, key=prefix + PRE.long_key_file),
    }
    activities = []
    with mock_aws():
        definition = {"Version": "2020-12-01", "Steps": [], "Parameters": [
            {"Name": "InputDataUrl", "Type": "String"}, {"Name": "InputManifestUrl", "Type": "String"}]}
        boto3.client("sagemaker").create_pipeline(
            PipelineName=env["PIPELINE_NAME"], PipelineDefinition=json.dumps(definition),
            RoleArn=_env_vars(project.resources["DeployPipelineBuild"])["SAGEMAKER_PIPELINE_ROLE_ARN"])
        if env.get("MANIFEST_BUCKET"):
            boto3.client("s3").create_bucket(Bucket=env["MANIFEST_BUCKET"],
                                             CreateBucketConfiguration={"LocationConstraint": REGION})
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name, event in uploads.items():
            monkeypatch.setattr(app, "_client", None)  # clients for moto, created by the handler
            if hasattr(app, "_s3"):
                monkeypatch.setattr(app, "_s3", None)
            with recording() as calls:
                result = app.lambda_handler(event, None)
            assert result["status"] == "started", (name, result)
            activities.append(activity(name, "start-ingestion", calls))
        activities += _record_batches(app, project, env, uploads["start-ingestion: S3 Object Created event"],
                                      monkeypatch)
    return activities


def _record_batches(app: Any, project: Scenario, env: Mapping[str, str], upload: dict,
                    monkeypatch: pytest.MonkeyPatch) -> list[Activity]:
    """Batched start mode: the event source mapping hands the function SQS messages whose bodies are upload
    events ("Using Lambda with Amazon SQS", Lambda Developer Guide); the function starts one execution per batch,
    raises the messages' visibility when SageMaker refuses for its quota, and dead-letters with a reason what can
    never start."""
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.models import SageMakerModelBackend

    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName=env["DEAD_LETTER_QUEUE_URL"].rsplit("/", 1)[1])["QueueUrl"]
    assert dlq_url.endswith(env["DEAD_LETTER_QUEUE_URL"].rsplit("/", 1)[1])
    queue_url = sqs.create_queue(QueueName=project.resources["IngestionBatchQueue"]["Properties"]["QueueName"])[
        "QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def sqs_event(*bodies: Any) -> dict:
        for body in bodies:
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body) if isinstance(body, dict) else body)
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       MessageSystemAttributeNames=["All"])["Messages"]
        return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                             "attributes": m["Attributes"], "messageAttributes": {}, "eventSource": "aws:sqs",
                             "eventSourceARN": queue_arn, "awsRegion": REGION} for m in messages]}

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise JsonRESTError("ResourceLimitExceeded", "You have reached the limit of concurrent executions")

    activities = []
    second = with_object(copy.deepcopy(upload), bucket=env["DATA_BUCKET"], key=env["DATA_PREFIX"] + "second.csv")
    batches = {
        "start-ingestion: SQS batch of uploads (batched start mode)": (sqs_event(upload, second), None),
        "start-ingestion: SQS batch SageMaker refuses for its quota (visibility raised)":
            (sqs_event(with_object(copy.deepcopy(upload), bucket=env["DATA_BUCKET"],
                                   key=env["DATA_PREFIX"] + "third.csv")), refuse),
        "start-ingestion: SQS message that can never start (dead-lettered with its reason)":
            (sqs_event("not an event"), None),
    }
    for name, (event, start) in batches.items():
        for client in ("_client", "_s3", "_sqs"):  # clients for moto, created by the handler
            monkeypatch.setattr(app, client, None)
        with pytest.MonkeyPatch.context() as patch:
            if start is not None:
                patch.setattr(SageMakerModelBackend, "start_pipeline_execution", start)
            with recording() as calls:
                result = app.lambda_handler(event, None)
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        assert failed == ({r["messageId"] for r in event["Records"]} if start is not None else set()), (name, result)
        activities.append(activity(name, "start-ingestion", calls))
    return activities


# --- the data-bucket-events custom resource ----------------------------------------------------------------


class _ResponseURL:
    """CloudFormation's pre-signed response URL, served on 127.0.0.1: keeps every PUT body."""

    def __init__(self) -> None:
        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/response"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def record_data_bucket_events(templates: Mapping[str, dict], monkeypatch: pytest.MonkeyPatch) -> list[Activity]:
    app = load_module("runtime_data_bucket_events_app", BUCKET_EVENTS_APP)
    moto_eventbridge_notifications(monkeypatch)
    activities = []
    response = _ResponseURL()
    try:
        for mode, use_cloudtrail in (("S3EventBridge", False), ("CloudTrail", True)):
            properties = _project(templates, UseCloudTrail=use_cloudtrail).resources["DataBucketEvents"]["Properties"]
            with mock_aws():
                s3 = boto3.client("s3")
                s3.create_bucket(Bucket=properties["BucketName"],
                                 CreateBucketConfiguration={"LocationConstraint": REGION})
                created = None  # Update and Delete come with the id Create returned, as CloudFormation sends them
                for request_type in ("Create", "Update", "Delete"):
                    event = copy.deepcopy(load_event(f"custom-resource-{request_type.lower()}.json"))
                    event.update(ResponseURL=response.url, ResourceProperties={**properties, "ServiceTimeout": "300"})
                    if created is not None:
                        event["PhysicalResourceId"] = created
                    monkeypatch.setattr(app, "_clients", {})
                    with recording() as calls:
                        result = app.lambda_handler(event, None)
                    assert result["status"] == "SUCCESS", (mode, request_type, result)
                    created = created or result["physicalResourceId"]
                    activities.append(activity(f"data-bucket-events: {request_type} ({mode} mode)",
                                               "data-bucket-events", calls))
    finally:
        response.close()
    return activities


# --- the seed code's build (deploy.py) ----------------------------------------------------------------------


def run_deploy(project: Scenario, tmp_path: Path, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run deploy.py in a new process under moto, as the project's CodeBuild project configures it."""
    environment = {**_env_vars(project.resources["DeployPipelineBuild"]), "AWS_REGION": REGION}
    flow_bucket = PRE.flow_url.removeprefix("s3://").split("/", 1)[0]
    spec = {
        "environment": environment,
        "buckets": sorted({environment["ARTIFACT_BUCKET"], flow_bucket}),
        "objects": {PRE.flow_url: str(FLOW_FILE)},
        "roles": [environment["SAGEMAKER_PIPELINE_ROLE_ARN"]],
        "runs": runs,
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "PYTEST_"))}
    completed = subprocess.run(
        [sys.executable, str(DEPLOY_RUNNER), str(tmp_path / "spec.json"), str(tmp_path / "out.json")],
        env=child_env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["runs"]


def deploy_runs() -> list[dict[str, Any]]:
    flow_output = _flow_output(json.loads(FLOW_FILE.read_text(encoding="utf-8")))
    data_wrangler = {"TRANSFORM_MODE": "DataWranglerFlow", "DATA_WRANGLER_FLOW_URL": PRE.flow_url,
                     "DATA_WRANGLER_OUTPUT_NAME": flow_output}
    return [
        {"name": "deploy.py: Script mode, first build (creates)", "environment": {"TRANSFORM_MODE": "Script"}},
        {"name": "deploy.py: Script mode, second build (updates)", "environment": {"TRANSFORM_MODE": "Script"}},
        {"name": "deploy.py: DataWranglerFlow mode, flow in a sagemaker-* bucket", "environment": data_wrangler},
    ]


def record_deploy(project: Scenario, tmp_path: Path) -> list[Activity]:
    activities = []
    for run in run_deploy(project, tmp_path, deploy_runs()):
        assert run["status"] == 0, f"{run['name']} failed under moto:\n{run['stderr']}"
        activities.append(activity(run["name"], "codebuild", run["calls"]))
    return activities


# --- the processing script, as the pipeline's processing steps run it ----------------------------------------


def _local(path: str, root: Path) -> str:
    return str(root / path.removeprefix(PROCESSING_ROOT + "/")) if path.startswith(PROCESSING_ROOT) else path


def _runs_our_script(step: Mapping[str, Any]) -> bool:
    return any(i["name"] == "code" for i in step["inputs"]) and "transform_and_ingest.py" in " ".join(
        step["entrypoint"])


def _step_argv(step: Mapping[str, Any], values: Mapping[str, Any], root: Path, job_config: Path) -> list[str]:
    argv = [_local(str(pipeline_steps.evaluate(a, values)), root) for a in step["arguments"]]
    return [*argv, "--job-config", str(job_config), "--resource-config", str(root / "no-resourceconfig.json"),
            "--exit-message-file", str(root / "exit-message")]


def record_processing(project: Scenario, pipelines: list[Mapping[str, Any]], tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> list[Activity]:
    script = processing_script()
    group = project.parameters["FeatureGroupName"]
    activities = []
    data_bucket, prefix = project.parameters["DataBucketName"], project.parameters["DataPrefix"]
    with moto_server() as url, feature_store_standin().FeatureStoreStandIn() as store:
        store.add_group(group, feature_group_definition())
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", store.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME", store.url)
        s3 = boto3.client("s3")
        samples = pipeline_samples(project, PRE)
        for sample in samples:
            for url_value in sample.values():
                if url_value:
                    s3.create_bucket(Bucket=url_value.removeprefix("s3://").split("/", 1)[0],
                                     CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=data_bucket, Key=prefix + PRE.sample_file, Body=ABALONE_CSV.read_bytes())
        s3.put_object(Bucket=data_bucket, Key=prefix + PRE.long_key_file, Body=ABALONE_CSV.read_bytes())
        for sample in samples:
            if sample["InputManifestUrl"]:
                bucket, key = sample["InputManifestUrl"].removeprefix("s3://").split("/", 1)
                manifest = [{"prefix": f"s3://{data_bucket}/"}, prefix + PRE.long_key_file]
                s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
        steps = {json.dumps(s, sort_keys=True): s for p in pipelines for s in p["steps"] if _runs_our_script(s)}
        assert steps, "no processing step runs the seed code's script: check the recorded pipeline definitions"
        for index, step in enumerate(steps.values()):
            for sample in samples:
                values = {**next(p["parameters"] for p in pipelines if step in p["steps"]), **sample}
                data_inputs = [i for i in step["inputs"] if i["name"] != "code"]
                if not all(pipeline_steps.evaluate(i["uri"], values) for i in data_inputs):
                    continue  # this sample takes the other step
                for api in ("BatchWriteRecord", "PutRecord"):
                    root = tmp_path / f"processing-{index}-{api}-{len(sample['InputManifestUrl'])}"
                    inputs = []
                    for step_input in data_inputs:
                        uri = pipeline_steps.evaluate(step_input["uri"], values)
                        bucket, key = uri.removeprefix("s3://").split("/", 1)
                        local = Path(_local(step_input["local_path"], root))
                        local.mkdir(parents=True)
                        s3.download_file(bucket, key, str(local / key.rsplit("/", 1)[-1][:200]))
                        inputs.append({"InputName": step_input["name"],
                                       "S3Input": {"LocalPath": step_input["local_path"], "S3Uri": uri}})
                    config = root / "processingjobconfig.json"
                    config.write_text(json.dumps({"ProcessingInputs": [
                        {**i, "S3Input": {**i["S3Input"], "LocalPath": _local(i["S3Input"]["LocalPath"], root)}}
                        for i in inputs]}), encoding="utf-8")
                    argv = [*_step_argv(step, values, root, config), "--write-api", api]
                    with recording() as calls:
                        status = script.main(argv)
                    assert status == 0, (step["name"], api, argv)
                    path = "manifest" if sample["InputManifestUrl"] else "object"
                    activities.append(activity(f"processing script: step {step['name']} ({path} path, {api})",
                                               "execution", calls))
    return activities


# --- all of it -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(templates: dict[str, dict], tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    patches = pytest.MonkeyPatch()
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")] + ["AWS_PROFILE", "AWS_SESSION_TOKEN"]:
        patches.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
                        "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
                        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}.items():
        patches.setenv(name, value)  # the module-scoped recording runs before conftest's per-test fake_aws
    try:
        project = _project(templates, UseCloudTrail=False)
        activities = [*record_start_ingestion(project, patches)]
        activities += record_data_bucket_events(templates, patches)
        build = record_deploy(project, tmp_path_factory.mktemp("deploy"))
        activities += build
        pipelines = [p for a in build for p in a.pipelines]
        activities += record_processing(project, pipelines, tmp_path_factory.mktemp("processing"), patches)
    finally:
        patches.undo()
    return Recordings(tuple(activities))


def _normalised(text: str) -> str:
    """Content hashes (script keys, tokens) change with any edit of the code: compared as <hex>."""
    return HEX_RUN.sub("<hex>", text)


def test_the_committed_recordings_are_what_the_code_does(recorded: Recordings) -> None:
    rendered = recorded.dumps()
    if os.environ.get("UPDATE_RECORDED_CALLS") == "1":
        FIXTURE.write_text(rendered, encoding="utf-8")
    assert FIXTURE.exists(), f"{FIXTURE} is missing: run UPDATE_RECORDED_CALLS=1 pytest {__file__}"
    expected = FIXTURE.read_text(encoding="utf-8")
    if _normalised(rendered) != _normalised(expected):
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), rendered.splitlines(keepends=True),
                                            fromfile="committed", tofile="recorded now", n=2))
        pytest.fail("the code's AWS calls changed; review and accept with UPDATE_RECORDED_CALLS=1:\n" + diff,
                    pytrace=False)


def test_every_role_that_runs_code_was_recorded(recorded: Recordings) -> None:
    assert {a.role for a in recorded.activities} == {"start-ingestion", "data-bucket-events", "codebuild", "execution"}
    calls = {(c.service, c.operation) for _, c in recorded.calls}
    # What each piece of code is for (a recording that lost one of these recorded nothing useful).
    assert {("sagemaker", "StartPipelineExecution"), ("s3", "PutObject")} <= calls
    assert {("sagemaker", "CreateFeatureGroup"), ("sagemaker", "CreatePipeline"),
            ("sagemaker", "UpdatePipeline")} <= calls
    assert {("s3", "GetBucketNotificationConfiguration"), ("s3", "PutBucketNotificationConfiguration")} <= calls
    assert {("sagemaker-featurestore-runtime", "BatchWriteRecord"),
            ("sagemaker-featurestore-runtime", "PutRecord")} <= calls
    assert len(recorded.pipelines) >= 2 and all(p["steps"] for p in recorded.pipelines)


def test_recorded_calls_are_allowed_by_the_role_policies(templates: dict[str, dict], recorded: Recordings) -> None:
    report = simulate(templates, recorded, PRE)
    denied = [v for v in report.denied if v.request.origin == RECORDED]
    assert not denied, "calls the code makes would be denied:\n" + "\n".join(summarize_denials(denied))


def test_the_recorded_inputs_are_the_same_in_every_scenario(templates: dict[str, dict]) -> None:
    """The code runs once, for one scenario: what it reads from the template must not vary elsewhere
    (only the suffix filter does, which changes no call)."""
    projects = scenarios(PROJECT_TEMPLATE, templates[PROJECT_TEMPLATE])
    for logical_id, ignored in (("DeployPipelineBuild", set()), ("StartIngestionFunction", {"DATA_SUFFIX"})):
        seen = {json.dumps({k: v for k, v in _env_vars(p.resources[logical_id]).items() if k not in ignored},
                           sort_keys=True) for p in projects}
        assert len(seen) == 1, f"{logical_id}: the environment differs between scenarios: record per scenario"
    properties = {json.dumps(p.resources["DataBucketEvents"]["Properties"], sort_keys=True) for p in projects}
    assert len(properties) == 2  # EnableEventBridge true/false: both are recorded


def test_tolerated_denials_break_nothing(templates: dict[str, dict], tmp_path: Path) -> None:
    """Each denial the gate tolerates is denied for real here, and the code still succeeds."""
    project = _project(templates, UseCloudTrail=False)
    mapping = {("codebuild", "iam:GetRole"): ("iam", "GetRole")}
    assert set(TOLERATED_DENIALS) == set(mapping)
    runs = [{**run, "deny": [list(mapping[key])], "name": f"{run['name']} with {key[1]} denied"}
            for key in mapping for run in deploy_runs()[:1]]
    for run in run_deploy(project, tmp_path, runs):
        assert run["status"] == 0, run["stderr"]
        assert ["iam", "GetRole"] in [call[:2] for call in run["calls"]], "the denied call was not even made"


def test_a_denied_call_the_build_needs_fails_it(templates: dict[str, dict], tmp_path: Path) -> None:
    """The denial mechanism bites: without s3:PutObject on the artifact bucket the build fails."""
    project = _project(templates, UseCloudTrail=False)
    [run] = run_deploy(project, tmp_path, [{**deploy_runs()[0], "deny": [["s3", "PutObject"]]}])
    assert run["status"] == 1 and "AccessDenied" in run["stderr"]


def test_the_operation_table_names_real_api_operations_and_parameters() -> None:
    """Every (service, operation) of the table exists in botocore's service model, with the parameters it reads."""
    session = botocore.session.get_session()
    for (service, name), spec in operations.OPERATIONS.items():
        model = session.get_service_model(service)
        assert name in model.operation_names, f"{service}:{name}"
        members = model.operation_model(name).input_shape.members
        for param in spec.keep:
            assert param.split(".", 1)[0] in members, f"{service}:{name} has no parameter {param}"


def test_an_unknown_operation_cannot_be_recorded() -> None:
    with pytest.raises(operations.UnknownOperation, match="s3:DeleteBucket"):
        activity("x", "codebuild", [("s3", "DeleteBucket", {"Bucket": "b"})])


def test_the_published_object_tag_is_the_release_tag() -> None:
    """The gate assumes published objects carry the tag the release command writes."""
    assert dict([PROVISIONING_TAG]) == PUBLISHED_OBJECT_TAGS


def test_every_role_of_the_table_exists_in_the_templates(templates: dict[str, dict]) -> None:
    project = _project(templates, UseCloudTrail=False)
    for role in ROLES.values():
        if role.logical_id:
            assert role.logical_id in project.resources, role
