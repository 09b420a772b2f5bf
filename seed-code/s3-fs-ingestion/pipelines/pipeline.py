"""The project's SageMaker pipeline, built with the SageMaker Python SDK v3 (pinned in requirements.txt).

The Lambda starts it for every uploaded object, with exactly one of two parameters:

* ``InputDataUrl=s3://bucket/key`` -- the object path, used when the URL fits a pipeline parameter (<= 1,024
  characters) and the key's last component fits a Linux file name (<= 255 bytes): SageMaker downloads the
  object into the container like any processing input;
* ``InputManifestUrl=s3://<artifact bucket>/input-manifests/<sha256>.manifest`` -- the manifest path, for every
  other key: a small JSON document in SageMaker's ``ManifestFile`` format that lists the object(s),
  ``[{"prefix": "s3://bucket/"}, "<key>", ...]`` (prefix + entry = the object's URL).

Three top-level condition steps route an execution to exactly one branch (SageMaker Pipelines has no
``else if`` and AWS's pipeline definition schema allows no condition step inside another):

===================  ===============================================  ========================================
condition step       true when                                        runs
===================  ===============================================  ========================================
``IsManifestInput``  ``InputManifestUrl`` is "" (its *else* branch)   the manifest step
``IsObjectInput``    ``InputManifestUrl`` is "" and ``InputDataUrl``  the object step
                     is not
``IsInputMissing``   both are ""                                      the fail step ``InputMissing``
===================  ===============================================  ========================================

* ``Script`` mode: the scikit-learn image runs ``processing/transform_and_ingest.py``. The build uploads the
  whole ``processing/`` folder under a content-hashed prefix; the steps' ``code`` input is that prefix, so the
  entry point finds its sibling modules beside it. Object path (``TransformAndIngest``): the object is the
  ``data`` input, on ONE instance whatever ``ProcessingInstanceCount`` says (a single CSV object is not split:
  more instances would sit idle). Manifest path (``TransformAndIngestManifest``): the manifest object itself is
  the ``manifest`` input (a short key, so SageMaker can always download it) and the script reads the listed
  objects from S3 itself, each of the ``ProcessingInstanceCount`` instances taking the objects whose URL hashes
  to its index (``/opt/ml/config/resourceconfig.json``). That works for keys of any length.
* ``DataWranglerFlow`` mode: the Data Wrangler image runs a flow. The data input is named after the flow's
  source dataset, which is how the container finds it, and the flow's output goes to the feature group named
  by the ``FeatureGroupName`` parameter. Object path (``DataWranglerFlowToFeatureStore``): ``InputDataUrl`` as
  an ``S3Prefix`` input. Manifest path (``DataWranglerFlowToFeatureStoreManifest``): the same input with
  ``S3DataType=ManifestFile`` -- SageMaker downloads the listed objects, so a key whose last component is
  longer than 255 bytes cannot be processed in this mode. Data Wrangler runs Spark across the instances, so
  both paths use ``ProcessingInstanceCount``.

No URL travels as a container argument or environment variable: CreateProcessingJob limits each of those
to 256 characters, and an S3 URL can have 1,024. The script learns its input's URL from the job's
``/opt/ml/config/processingjobconfig.json``.

Every processing step carries retry policies (``SageMaker.RESOURCE_LIMIT``, ``SageMaker.CAPACITY_ERROR``,
``SageMaker.JOB_INTERNAL_ERROR``, ``Step.THROTTLING``, ``Step.SERVICE_FAULT``; exponential backoff, bounded),
see :data:`RETRY_POLICIES`: a burst of uploads beyond the account's processing quota waits instead of being
dropped. Re-running a step is safe: record identifiers are stable, a re-run overwrites the same records.

SDK v3 cannot express a ``FeatureStoreOutput`` (it drops ``ProcessingOutput.feature_store_output``), so
the flow steps declare a placeholder S3 output and :class:`FeatureStorePipeline` rewrites it in the
definition it emits, through :func:`bind_feature_store_output`. ``definition()`` and ``upsert()``
both go through that rewrite.

Import this module only after a region is configured (``AWS_REGION``/``AWS_DEFAULT_REGION``): the SDK
builds a default session when it is imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sagemaker.core import image_uris
from sagemaker.core.processing import Processor
from sagemaker.core.shapes import (
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)
from sagemaker.core.workflow.conditions import ConditionEquals, ConditionNot
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join
from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.retry import (
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
)
from sagemaker.mlops.workflow.steps import ProcessingStep

SCRIPT = "Script"
DATA_WRANGLER_FLOW = "DataWranglerFlow"
TRANSFORM_MODES = (SCRIPT, DATA_WRANGLER_FLOW)

SKLEARN_VERSION = "1.2-1"  # Python 3.9, pandas and boto3: all the processing script needs
PROCESSING_DIR = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING_DIR}/input/code"  # Script mode: the processing/ folder, the script's directory
ENTRY_POINT = "transform_and_ingest.py"  # Script mode: the file of processing/ the container runs
DATA_DIR = f"{PROCESSING_DIR}/input/data"
MANIFEST_DIR = f"{PROCESSING_DIR}/input/manifest"
DOWNLOAD_DIR = f"{PROCESSING_DIR}/downloads"  # manifest path: one listed object at a time, on the ML volume
FAILED_ROWS_DIR = f"{PROCESSING_DIR}/failed-rows"
FLOW_DIR = f"{PROCESSING_DIR}/flow"
MAX_WORKERS = 16  # concurrent write calls per processing instance

# Step names (notebooks and the walkthrough show them; keep them stable).
SCRIPT_STEP = "TransformAndIngest"
SCRIPT_MANIFEST_STEP = "TransformAndIngestManifest"
FLOW_STEP = "DataWranglerFlowToFeatureStore"
FLOW_MANIFEST_STEP = "DataWranglerFlowToFeatureStoreManifest"
MANIFEST_CONDITION = "IsManifestInput"
OBJECT_CONDITION = "IsObjectInput"
MISSING_CONDITION = "IsInputMissing"
FAIL_STEP = "InputMissing"
MISSING_INPUT_MESSAGE = (
    "Nothing to ingest: start the pipeline with InputDataUrl=s3://bucket/key or "
    "InputManifestUrl=s3://bucket/key.manifest (a SageMaker ManifestFile document: "
    '[{"prefix": "s3://bucket/"}, "key", ...]); both were empty.'
)

# CreateProcessingJob: AppSpecification.ContainerArguments items and Environment values are at most 256
# characters (botocore's SageMaker model: shapes ContainerArgument and ProcessingEnvironmentValue).
MAX_CONTAINER_ARGUMENT = 256
DATA_WRANGLER_CONTENT_TYPE = "CSV"  # what the flow's output hands to Feature Store
# Step retry policies ("Retry Policy for Pipeline Steps", SageMaker developer guide,
# https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-retry-policy.html): the processing job could not
# start for a quota (RESOURCE_LIMIT) or EC2 capacity (CAPACITY_ERROR): wait and try again for up to 4 hours;
# an internal error of the job: run it again, 3 retries at most; throttling or a fault of the pipeline service
# while starting the job: retry for up to an hour. Intervals grow exponentially (BackoffRate > 1).
RETRY_POLICIES = (
    {"kind": "SageMakerJob", "types": ("RESOURCE_LIMIT", "CAPACITY_ERROR"),
     "interval_seconds": 60, "backoff_rate": 1.5, "expire_after_mins": 240},
    {"kind": "SageMakerJob", "types": ("INTERNAL_ERROR",),
     "interval_seconds": 60, "backoff_rate": 2.0, "max_attempts": 3},
    {"kind": "Step", "types": ("THROTTLING", "SERVICE_FAULT"),
     "interval_seconds": 10, "backoff_rate": 2.0, "expire_after_mins": 60},
)


class FlowError(ValueError):
    """The Data Wrangler flow cannot be run by this pipeline; the message says why."""


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the pipeline definition depends on (the build fills it from its environment)."""

    name: str
    role_arn: str
    region: str
    feature_group_name: str
    instance_type: str
    instance_count: int
    artifact_bucket: str
    transform_mode: str = SCRIPT
    code_s3_uri: str | None = None  # Script mode: the uploaded processing/ folder, s3://bucket/prefix/
    flow_s3_uri: str | None = None  # DataWranglerFlow mode: the .flow file
    flow: dict | None = None  # DataWranglerFlow mode: its parsed content
    flow_output_name: str | None = None  # DataWranglerFlow mode: "<node id>.<output>"


@dataclass(frozen=True)
class Parameters:
    input_data_url: ParameterString
    input_manifest_url: ParameterString
    feature_group_name: ParameterString
    instance_type: ParameterString
    instance_count: ParameterInteger

    def as_list(self) -> list:
        return [self.input_data_url, self.input_manifest_url, self.feature_group_name, self.instance_type,
                self.instance_count]


def pipeline_parameters(settings: PipelineSettings) -> Parameters:
    return Parameters(
        # Every execution names what it ingests with exactly one of the two; both empty fails the execution.
        input_data_url=ParameterString(name="InputDataUrl", default_value=""),
        input_manifest_url=ParameterString(name="InputManifestUrl", default_value=""),
        feature_group_name=ParameterString(name="FeatureGroupName", default_value=settings.feature_group_name),
        instance_type=ParameterString(name="ProcessingInstanceType", default_value=settings.instance_type),
        instance_count=ParameterInteger(name="ProcessingInstanceCount", default_value=settings.instance_count),
    )


# --------------------------------------------------------------------------------------------------
# Data Wrangler flows
# --------------------------------------------------------------------------------------------------


def flow_source_name(flow: dict) -> str:
    """The name of the flow's one S3 source dataset: the processing input must carry that name."""
    sources = [node for node in flow.get("nodes", []) if node.get("type") == "SOURCE"]
    if len(sources) != 1:
        raise FlowError(f"the flow must have exactly one source dataset (InputDataUrl feeds it), found {len(sources)}")
    definition = sources[0].get("parameters", {}).get("dataset_definition", {})
    if definition.get("datasetSourceType") != "S3" or not definition.get("name"):
        raise FlowError("the flow's source must be an S3 dataset with a name "
                        f"(found type {definition.get('datasetSourceType')!r})")
    return definition["name"]


def check_flow_output(flow: dict, output_name: str) -> None:
    """``output_name`` must be ``<node id>.<output name>`` of a node of the flow."""
    node_id, _, output = output_name.rpartition(".")
    for node in flow.get("nodes", []):
        if node.get("node_id") == node_id and output in {o.get("name") for o in node.get("outputs", [])}:
            return
    raise FlowError(f"output {output_name!r} is not in the flow: expected '<node id>.<output name>' "
                    "of one of its nodes, e.g. '<node id>.default'")


# --------------------------------------------------------------------------------------------------
# Feature Store output (not expressible in SDK v3)
# --------------------------------------------------------------------------------------------------


def _processing_steps(steps: list) -> list:
    """Every step of ``steps``, with the steps inside condition branches, depth first."""
    found = []
    for step in steps:
        found.append(step)
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments", {})
            found.extend(_processing_steps(arguments.get("IfSteps", []) + arguments.get("ElseSteps", [])))
    return found


def bind_feature_store_output(definition: dict, step_name: str, output_name: str, feature_group_name: Any) -> dict:
    """Turn the output ``output_name`` of processing step ``step_name`` into a Feature Store output.

    The step may sit in a condition step's branch. ``feature_group_name`` is a name or a pipeline expression
    such as ``{"Get": "Parameters.X"}``. The output's S3 placeholder is replaced by ``FeatureStoreOutput``
    and the output becomes app-managed, as the CreateProcessingJob API requires. Exactly one such output must
    exist. Returns ``definition``, changed in place.
    """
    steps = [step for step in _processing_steps(definition.get("Steps", [])) if step.get("Name") == step_name]
    if len(steps) != 1 or steps[0].get("Type") != "Processing":
        raise ValueError(f"expected one processing step named {step_name!r}, found {len(steps)}")
    outputs = steps[0]["Arguments"].get("ProcessingOutputConfig", {}).get("Outputs", [])
    matches = [output for output in outputs if output.get("OutputName") == output_name]
    if len(matches) != 1:
        raise ValueError(f"expected one output named {output_name!r} in step {step_name!r}, found {len(matches)}")
    output = matches[0]
    output.pop("S3Output", None)
    output["AppManaged"] = True
    output["FeatureStoreOutput"] = {"FeatureGroupName": feature_group_name}
    return definition


class FeatureStorePipeline(Pipeline):
    """A Pipeline whose definition binds the listed processing outputs to Feature Store."""

    def __init__(self, *args: Any, feature_store_outputs: tuple = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feature_store_outputs = feature_store_outputs  # (step name, output name, feature group name)

    def definition(self) -> str:
        document = json.loads(super().definition())
        for step_name, output_name, feature_group_name in self.feature_store_outputs:
            expression = getattr(feature_group_name, "expr", feature_group_name)
            bind_feature_store_output(document, step_name, output_name, expression)
        return json.dumps(document)


# --------------------------------------------------------------------------------------------------
# The steps and the pipeline
# --------------------------------------------------------------------------------------------------


def _s3_input(name: str, uri: Any, local_path: str, data_type: str = "S3Prefix") -> ProcessingInput:
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=local_path, s3_data_type=data_type, s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def retry_policies() -> list:
    """The retry policies of every processing step, from :data:`RETRY_POLICIES`."""
    policies: list = []
    for policy in RETRY_POLICIES:
        bounds = {key: policy[key] for key in ("interval_seconds", "backoff_rate", "expire_after_mins", "max_attempts")
                  if key in policy}
        if policy["kind"] == "SageMakerJob":
            types = [SageMakerJobExceptionTypeEnum[name] for name in policy["types"]]
            policies.append(SageMakerJobStepRetryPolicy(exception_types=types, **bounds))
        else:
            policies.append(StepRetryPolicy(exception_types=[StepExceptionTypeEnum[name] for name in policy["types"]],
                                            **bounds))
    return policies


def _script_processor(settings: PipelineSettings, params: Parameters, session: PipelineSession,
                      instance_count: Any) -> Processor:
    """The scikit-learn image running the entry point of the ``code`` input (see :func:`_code_input`).

    Not the SDK's ScriptProcessor (its ``code`` is one file: an S3 prefix of that file's key brings no
    sibling module) nor FrameworkProcessor (its ``source_dir`` is a tar.gz uploaded at definition time
    under a job name with a timestamp, unpacked by a bash wrapper: a new code location at every build).
    """
    return Processor(
        role=settings.role_arn,
        image_uri=image_uris.retrieve("sklearn", settings.region, version=SKLEARN_VERSION),
        entrypoint=["python3", f"{CODE_DIR}/{ENTRY_POINT}"],
        instance_type=params.instance_type,
        instance_count=instance_count,
        base_job_name="transform-and-ingest",
        sagemaker_session=session,
    )


def _code_input(settings: PipelineSettings) -> ProcessingInput:
    """The whole processing/ folder, as uploaded by the build: every object under the hashed prefix lands in
    :data:`CODE_DIR` by its key below the prefix (S3Prefix), so the modules sit beside the entry point."""
    return _s3_input("code", settings.code_s3_uri, CODE_DIR)


def _failed_rows_output(settings: PipelineSettings) -> ProcessingOutput:
    return ProcessingOutput(
        output_name="failed-rows",
        s3_output=ProcessingS3Output(
            s3_uri=Join(on="/", values=[f"s3://{settings.artifact_bucket}/failed-rows",
                                        ExecutionVariables.PIPELINE_EXECUTION_ID]),
            local_path=FAILED_ROWS_DIR,
            s3_upload_mode="Continuous",  # uploaded as written: kept even when the job fails
        ),
    )


def _script_arguments(params: Parameters, settings: PipelineSettings) -> list:
    return ["--feature-group-name", params.feature_group_name, "--region", settings.region,
            "--max-workers", str(MAX_WORKERS), "--failed-rows-dir", FAILED_ROWS_DIR]


def script_steps(settings: PipelineSettings, params: Parameters, session: PipelineSession) -> tuple:
    """The object step and the manifest step of Script mode."""
    uri = settings.code_s3_uri
    if not uri or not uri.startswith("s3://") or not uri.endswith("/"):
        raise ValueError(f"Script mode needs the uploaded processing/ folder as an s3://bucket/prefix/ URI: {uri!r}")
    object_args = _script_processor(settings, params, session, instance_count=1).run(
        inputs=[_s3_input("data", params.input_data_url, DATA_DIR), _code_input(settings)],
        outputs=[_failed_rows_output(settings)],
        # The object's URL is read from /opt/ml/config/processingjobconfig.json, not passed here.
        arguments=["--input-dir", DATA_DIR, *_script_arguments(params, settings)],
    )
    manifest_args = _script_processor(settings, params, session, instance_count=params.instance_count).run(
        inputs=[_s3_input("manifest", params.input_manifest_url, MANIFEST_DIR), _code_input(settings)],
        outputs=[_failed_rows_output(settings)],
        arguments=["--manifest-dir", MANIFEST_DIR, "--download-dir", DOWNLOAD_DIR,
                   *_script_arguments(params, settings)],
    )
    return (
        ProcessingStep(name=SCRIPT_STEP, step_args=object_args, retry_policies=retry_policies(),
                       description="Transform the uploaded CSV object and ingest its rows into the feature group"),
        ProcessingStep(name=SCRIPT_MANIFEST_STEP, step_args=manifest_args, retry_policies=retry_policies(),
                       description="Transform the CSV objects the input manifest lists and ingest their rows"),
    )


def output_config_argument(output_name: str) -> str:
    """The Data Wrangler container's ``--output-config`` argument, in the form AWS's own Data Wrangler ->
    Feature Store exports pass it: ONE container argument holding the option, a space and the quoted JSON
    ``{"<node id>.<output>": {"content_type": "CSV"}}`` (SageMaker Python SDK integration test
    ``test_one_step_ingestion_pipeline``, tests/integ/test_workflow.py in aws/sagemaker-python-sdk; the original
    solution, aws-samples/amazon-sagemaker-reusable-components, project-seed-code/s3-fs-ingestion/pipeline/
    pipeline.py)."""
    argument = f"--output-config '{json.dumps({output_name: {'content_type': DATA_WRANGLER_CONTENT_TYPE}})}'"
    if len(argument) > MAX_CONTAINER_ARGUMENT:
        raise FlowError(f"the Data Wrangler --output-config argument for output {output_name!r} has {len(argument)} "
                        f"characters; CreateProcessingJob allows {MAX_CONTAINER_ARGUMENT} per container argument: "
                        "use a flow whose node id and output name are shorter")
    return argument


def flow_steps(settings: PipelineSettings, params: Parameters, session: PipelineSession) -> tuple:
    """The object step and the manifest step of DataWranglerFlow mode."""
    if not (settings.flow and settings.flow_s3_uri and settings.flow_output_name):
        raise ValueError("DataWranglerFlow mode needs the flow's S3 URI, its content and the output name")
    source = flow_source_name(settings.flow)
    check_flow_output(settings.flow, settings.flow_output_name)
    argument = output_config_argument(settings.flow_output_name)

    def step(name: str, data_type: str, data_url: Any, description: str) -> ProcessingStep:
        processor = Processor(
            role=settings.role_arn,
            image_uri=image_uris.retrieve("data-wrangler", settings.region),
            instance_type=params.instance_type,
            instance_count=params.instance_count,  # Spark spreads a flow's work over the instances
            base_job_name="data-wrangler-flow",
            sagemaker_session=session,
        )
        placeholder = ProcessingOutput(  # replaced by a FeatureStoreOutput in FeatureStorePipeline.definition()
            output_name=settings.flow_output_name,
            app_managed=True,
            s3_output=ProcessingS3Output(
                s3_uri=f"s3://{settings.artifact_bucket}/feature-store-output",
                local_path=f"{PROCESSING_DIR}/output", s3_upload_mode="EndOfJob",
            ),
        )
        step_args = processor.run(
            inputs=[_s3_input("flow", settings.flow_s3_uri, FLOW_DIR),
                    _s3_input(source, data_url, f"{PROCESSING_DIR}/{source}", data_type=data_type)],
            outputs=[placeholder],
            arguments=[argument],
        )
        return ProcessingStep(name=name, step_args=step_args, retry_policies=retry_policies(),
                              description=description)

    return (
        step(FLOW_STEP, "S3Prefix", params.input_data_url,
             "Run the Data Wrangler flow on the uploaded object into the feature group"),
        # SageMaker downloads every object the manifest lists (ManifestFile: prefix + each entry).
        step(FLOW_MANIFEST_STEP, "ManifestFile", params.input_manifest_url,
             "Run the Data Wrangler flow on the objects the input manifest lists into the feature group"),
    )


def routing_steps(params: Parameters, object_step: ProcessingStep, manifest_step: ProcessingStep) -> list:
    """Three condition steps with mutually exclusive outcomes: exactly one of the manifest step, the object
    step and the fail step runs (see the module docstring)."""
    no_manifest = ConditionEquals(left=params.input_manifest_url, right="")
    no_object = ConditionEquals(left=params.input_data_url, right="")
    return [
        ConditionStep(name=MANIFEST_CONDITION, conditions=[no_manifest], else_steps=[manifest_step],
                      description="InputManifestUrl given: ingest the objects it lists"),
        ConditionStep(name=OBJECT_CONDITION, conditions=[no_manifest, ConditionNot(no_object)],
                      if_steps=[object_step], description="Only InputDataUrl given: ingest that object"),
        ConditionStep(name=MISSING_CONDITION, conditions=[no_manifest, no_object],
                      if_steps=[FailStep(name=FAIL_STEP, error_message=MISSING_INPUT_MESSAGE)],
                      description="Neither parameter given: fail with a message saying how to start the pipeline"),
    ]


def build_pipeline(settings: PipelineSettings, session: PipelineSession) -> Pipeline:
    """The pipeline for ``settings``; nothing is sent to AWS until ``upsert()``."""
    params = pipeline_parameters(settings)
    if settings.transform_mode == SCRIPT:
        object_step, manifest_step = script_steps(settings, params, session)
        bindings: tuple = ()
    elif settings.transform_mode == DATA_WRANGLER_FLOW:
        object_step, manifest_step = flow_steps(settings, params, session)
        bindings = tuple((name, settings.flow_output_name, params.feature_group_name)
                         for name in (FLOW_STEP, FLOW_MANIFEST_STEP))
    else:
        raise ValueError(f"transform mode must be one of {', '.join(TRANSFORM_MODES)}, not {settings.transform_mode!r}")
    return FeatureStorePipeline(
        name=settings.name,
        parameters=params.as_list(),
        steps=routing_steps(params, object_step, manifest_step),
        sagemaker_session=session,
        pipeline_experiment_config=None,  # one experiment trial per uploaded file is clutter, not lineage
        feature_store_outputs=bindings,
    )


def data_wrangler_regions() -> list[str]:
    """The Regions in which the pinned SDK knows a Data Wrangler image (its image_uri_config/data-wrangler.json,
    newest image version)."""
    config = image_uris.config_for_framework("data-wrangler")
    versions = config.get("processing", config)["versions"]
    return sorted(versions[max(versions, key=_version_key)]["registries"])


def _version_key(version: str) -> tuple:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def definition(pipeline: Pipeline) -> dict:
    return json.loads(pipeline.definition())
