"""The project's SageMaker pipeline, built with the SageMaker Python SDK v3 (pinned in requirements.txt).

One processing step, started by the project's Lambda for every uploaded file (``InputDataUrl``):

* ``Script`` mode: the scikit-learn image runs ``processing/transform_and_ingest.py`` (uploaded by the
  build to an ``s3://`` URI). The input is sharded by S3 key, so with several instances every file goes
  to exactly one of them (with one instance that is the same as fully replicated).
* ``DataWranglerFlow`` mode: the Data Wrangler image runs a flow. The data input is named after the
  flow's source dataset, which is how the container finds it, and the flow's output goes to the feature
  group named by the ``FeatureGroupName`` parameter.

SDK v3 cannot express a ``FeatureStoreOutput`` (it drops ``ProcessingOutput.feature_store_output``), so
the flow step declares a placeholder S3 output and :class:`FeatureStorePipeline` rewrites it in the
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
from sagemaker.core.processing import Processor, ScriptProcessor
from sagemaker.core.shapes import (
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
)
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join
from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.steps import ProcessingStep

SCRIPT = "Script"
DATA_WRANGLER_FLOW = "DataWranglerFlow"
TRANSFORM_MODES = (SCRIPT, DATA_WRANGLER_FLOW)

SKLEARN_VERSION = "1.2-1"  # Python 3.9, pandas and boto3: all the processing script needs
PROCESSING_DIR = "/opt/ml/processing"
DATA_DIR = f"{PROCESSING_DIR}/input/data"
FAILED_ROWS_DIR = f"{PROCESSING_DIR}/failed-rows"
FLOW_DIR = f"{PROCESSING_DIR}/flow"
SCRIPT_STEP = "TransformAndIngest"
FLOW_STEP = "DataWranglerFlowToFeatureStore"
MAX_WORKERS = 16  # concurrent write calls per processing instance


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
    script_s3_uri: str | None = None  # Script mode: the uploaded processing script
    flow_s3_uri: str | None = None  # DataWranglerFlow mode: the .flow file
    flow: dict | None = None  # DataWranglerFlow mode: its parsed content
    flow_output_name: str | None = None  # DataWranglerFlow mode: "<node id>.<output>"


@dataclass(frozen=True)
class Parameters:
    input_data_url: ParameterString
    feature_group_name: ParameterString
    instance_type: ParameterString
    instance_count: ParameterInteger

    def as_list(self) -> list:
        return [self.input_data_url, self.feature_group_name, self.instance_type, self.instance_count]


def pipeline_parameters(settings: PipelineSettings) -> Parameters:
    return Parameters(
        # No default: every execution names the file it ingests (the Lambda passes the uploaded object).
        input_data_url=ParameterString(name="InputDataUrl"),
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


def bind_feature_store_output(definition: dict, step_name: str, output_name: str, feature_group_name: Any) -> dict:
    """Turn the output ``output_name`` of processing step ``step_name`` into a Feature Store output.

    ``feature_group_name`` is a name or a pipeline expression such as ``{"Get": "Parameters.X"}``. The
    output's S3 placeholder is replaced by ``FeatureStoreOutput`` and the output becomes app-managed, as
    the CreateProcessingJob API requires. Exactly one such output must exist. Returns ``definition``,
    changed in place.
    """
    steps = [step for step in definition.get("Steps", []) if step.get("Name") == step_name]
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


def _s3_input(name: str, uri: Any, local_path: str, distribution: str = "FullyReplicated") -> ProcessingInput:
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File",
            s3_data_distribution_type=distribution,
        ),
    )


def script_step(settings: PipelineSettings, params: Parameters, session: PipelineSession) -> ProcessingStep:
    if not settings.script_s3_uri or not settings.script_s3_uri.startswith("s3://"):
        raise ValueError("Script mode needs the processing script as an s3:// URI")
    processor = ScriptProcessor(
        role=settings.role_arn,
        image_uri=image_uris.retrieve("sklearn", settings.region, version=SKLEARN_VERSION),
        command=["python3"],
        instance_type=params.instance_type,
        instance_count=params.instance_count,
        base_job_name="transform-and-ingest",
        sagemaker_session=session,
    )
    failed_rows = ProcessingOutput(
        output_name="failed-rows",
        s3_output=ProcessingS3Output(
            s3_uri=Join(on="/", values=[f"s3://{settings.artifact_bucket}/failed-rows",
                                        ExecutionVariables.PIPELINE_EXECUTION_ID]),
            local_path=FAILED_ROWS_DIR,
            s3_upload_mode="Continuous",  # uploaded as written: kept even when the job fails
        ),
    )
    step_args = processor.run(
        code=settings.script_s3_uri,
        inputs=[_s3_input("data", params.input_data_url, DATA_DIR, distribution="ShardedByS3Key")],
        outputs=[failed_rows],
        arguments=[
            "--input-dir", DATA_DIR,
            "--feature-group-name", params.feature_group_name,
            "--region", settings.region,
            "--max-workers", str(MAX_WORKERS),
            "--failed-rows-dir", FAILED_ROWS_DIR,
            "--source-uri", params.input_data_url,
        ],
    )
    return ProcessingStep(name=SCRIPT_STEP, step_args=step_args,
                          description="Transform the uploaded CSV file(s) and ingest the rows into the feature group")


def flow_step(settings: PipelineSettings, params: Parameters, session: PipelineSession) -> ProcessingStep:
    if not (settings.flow and settings.flow_s3_uri and settings.flow_output_name):
        raise ValueError("DataWranglerFlow mode needs the flow's S3 URI, its content and the output name")
    source = flow_source_name(settings.flow)
    check_flow_output(settings.flow, settings.flow_output_name)
    processor = Processor(
        role=settings.role_arn,
        image_uri=image_uris.retrieve("data-wrangler", settings.region),
        instance_type=params.instance_type,
        instance_count=params.instance_count,
        base_job_name="data-wrangler-flow",
        sagemaker_session=session,
    )
    placeholder = ProcessingOutput(  # replaced by a FeatureStoreOutput in FeatureStorePipeline.definition()
        output_name=settings.flow_output_name,
        app_managed=True,
        s3_output=ProcessingS3Output(
            s3_uri=f"s3://{settings.artifact_bucket}/feature-store-output", local_path=f"{PROCESSING_DIR}/output",
            s3_upload_mode="EndOfJob",
        ),
    )
    step_args = processor.run(
        inputs=[
            _s3_input("flow", settings.flow_s3_uri, FLOW_DIR),
            _s3_input(source, params.input_data_url, f"{PROCESSING_DIR}/{source}"),
        ],
        outputs=[placeholder],
    )
    return ProcessingStep(name=FLOW_STEP, step_args=step_args,
                          description="Run the Data Wrangler flow on the uploaded file into the feature group")


def build_pipeline(settings: PipelineSettings, session: PipelineSession) -> Pipeline:
    """The pipeline for ``settings``; nothing is sent to AWS until ``upsert()``."""
    params = pipeline_parameters(settings)
    if settings.transform_mode == SCRIPT:
        steps, bindings = [script_step(settings, params, session)], ()
    elif settings.transform_mode == DATA_WRANGLER_FLOW:
        steps = [flow_step(settings, params, session)]
        bindings = ((FLOW_STEP, settings.flow_output_name, params.feature_group_name),)
    else:
        raise ValueError(f"transform mode must be one of {', '.join(TRANSFORM_MODES)}, not {settings.transform_mode!r}")
    return FeatureStorePipeline(
        name=settings.name,
        parameters=params.as_list(),
        steps=steps,
        sagemaker_session=session,
        pipeline_experiment_config=None,  # one experiment trial per uploaded file is clutter, not lineage
        feature_store_outputs=bindings,
    )


def definition(pipeline: Pipeline) -> dict:
    return json.loads(pipeline.definition())
