"""The project's SageMaker pipeline, built with the SageMaker Python SDK v3 (pinned in requirements.txt).

The build (``deploy.py``) resolves the model package group's latest Approved package and builds this
pipeline around that package's ARN: the ARN is fixed in the definition, so every execution of a deployed
version uses the model that was approved when it was deployed, and the build runs again whenever a
package's approval status changes.

The project's Lambda starts the pipeline for every uploaded object with ``InputManifestUrl`` =
``s3://<artifact bucket>/input-manifests/<sha256>.manifest``, a one-object SageMaker ``ManifestFile``
document ``[{"prefix": "s3://<data bucket>/"}, "<the object's full key>"]``. Anyone starting it by hand may
pass ``InputDataUrl=s3://bucket/key`` instead.

Steps:

==========================  =========  ===========================================================
step                        type       what it does
==========================  =========  ===========================================================
``ApprovedModel``           Model      CreateModel from the model package (one container naming it)
``IsManifestInput``         Condition  ``InputManifestUrl`` is "": its *else* branch runs
                                       ``BatchTransformManifest``
``BatchTransformManifest``  Transform  the objects the manifest lists (``S3DataType=ManifestFile``),
                                       on ``TransformInstanceCount`` instances
``IsObjectInput``           Condition  ``InputManifestUrl`` is "" and ``InputDataUrl`` is not: runs
                                       ``BatchTransform``
``BatchTransform``          Transform  the object ``InputDataUrl`` (``S3DataType=S3Prefix``), on ONE
                                       instance (a single object is not split across instances)
``IsInputMissing``          Condition  both are "": runs the fail step ``InputMissing``
==========================  =========  ===========================================================

The three condition steps are top-level and mutually exclusive: SageMaker Pipelines has no ``else if``,
and AWS's pipeline definition schema allows no condition step inside another.

Both transforms read CSV (``ContentType``, ``SplitType=Line``: one record per line), write CSV
(``Accept``, ``AssembleWith=Line``: one prediction per line, in input order) and write to
``s3://<artifact bucket>/<predictions prefix><execution id>``: one folder per execution. For every input
object, batch transform writes ``<that folder>/<the object's path relative to the input>.out``
("TransformOutput", SageMaker API reference); with the manifest, whose prefix is the bucket, that path
is the object's full key, so each prediction names its input.

The model package ARN is recorded in the definition (the model step's container), as the tag
``model-package-arn`` on the model and on the transform job, and in the pipeline's description
(``deploy.py``): an execution's definition, its model and its transform job all say which model scored it.

Step retry policies ("Retry Policy for Pipeline Steps", SageMaker developer guide,
https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-retry-policy.html): the transform steps retry
``SageMaker.RESOURCE_LIMIT``/``SageMaker.CAPACITY_ERROR`` (quota or EC2 capacity: wait, up to 4 hours),
``SageMaker.JOB_INTERNAL_ERROR`` (3 attempts) and ``Step.THROTTLING``/``Step.SERVICE_FAULT`` (up to an
hour), with exponential backoff. The model step starts no job, so only the ``Step.*`` types apply to it
(the SDK refuses a ``SageMakerJobStepRetryPolicy`` on a create-model step).

Import this module only after a region is configured (``AWS_REGION``/``AWS_DEFAULT_REGION``): the SDK
builds a default session when it is imported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sagemaker.core.transformer import Transformer
from sagemaker.core.workflow.conditions import ConditionEquals, ConditionNot
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join
from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.core.workflow.properties import Properties
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.retry import (
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
)
from sagemaker.mlops.workflow.steps import ConfigurableRetryStep, StepTypeEnum, TransformStep

# Step names (notebooks, the README and the platform's end-to-end tests use them; keep them stable).
MODEL_STEP = "ApprovedModel"
OBJECT_STEP = "BatchTransform"
MANIFEST_STEP = "BatchTransformManifest"
MANIFEST_CONDITION = "IsManifestInput"
OBJECT_CONDITION = "IsObjectInput"
MISSING_CONDITION = "IsInputMissing"
FAIL_STEP = "InputMissing"
MISSING_INPUT_MESSAGE = (
    "Nothing to score: start the pipeline with InputManifestUrl=s3://bucket/key.manifest (a SageMaker "
    'ManifestFile document: [{"prefix": "s3://bucket/"}, "key", ...]) or InputDataUrl=s3://bucket/key; '
    "both were empty."
)
MODEL_PACKAGE_TAG = "model-package-arn"  # on the model and the transform job of every execution

DEFAULT_CONTENT_TYPE = "text/csv"
SPLIT_TYPE = "Line"  # one record per line of the input
ASSEMBLE_WITH = "Line"  # one prediction per line of the output, in input order
BATCH_STRATEGY = "MultiRecord"  # as many lines per request as fit in MaxPayloadInMB (default 6 MB)

# botocore's SageMaker model: ModelPackageArn (CreateModel's ContainerDefinition.ModelPackageName takes it),
# TagValue (at most 256 characters).
MODEL_PACKAGE_ARN = re.compile(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]{9,16}:[0-9]{12}:model-package/\S{1,2048}")
MAX_TAG_VALUE = 256
# "Retry Policy for Pipeline Steps" (see the module docstring): what each kind of step retries, and how long.
TRANSFORM_RETRY_POLICIES = (
    {"kind": "SageMakerJob", "types": ("RESOURCE_LIMIT", "CAPACITY_ERROR"),
     "interval_seconds": 60, "backoff_rate": 1.5, "expire_after_mins": 240},
    {"kind": "SageMakerJob", "types": ("INTERNAL_ERROR",),
     "interval_seconds": 60, "backoff_rate": 2.0, "max_attempts": 3},
    {"kind": "Step", "types": ("THROTTLING", "SERVICE_FAULT"),
     "interval_seconds": 10, "backoff_rate": 2.0, "expire_after_mins": 60},
)
MODEL_RETRY_POLICIES = (
    {"kind": "Step", "types": ("THROTTLING", "SERVICE_FAULT"),
     "interval_seconds": 10, "backoff_rate": 2.0, "expire_after_mins": 60},
)


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the pipeline definition depends on (the build fills it from its environment)."""

    name: str
    role_arn: str
    model_package_arn: str  # the group's latest Approved package, resolved by the build
    artifact_bucket: str
    predictions_prefix: str  # key prefix in the artifact bucket, ending with "/"
    instance_type: str
    instance_count: int
    content_type: str = DEFAULT_CONTENT_TYPE  # of the input objects
    accept: str = DEFAULT_CONTENT_TYPE  # of the predictions
    tags: tuple[tuple[str, str], ...] = ()  # (key, value) for the model and the transform job, e.g. project tags

    def check(self) -> None:
        """Refuse settings the APIs would refuse at execution time; the message names each problem."""
        problems = []
        if not MODEL_PACKAGE_ARN.fullmatch(self.model_package_arn):
            problems.append(f"model_package_arn {self.model_package_arn!r} is not a model package ARN")
        elif len(self.model_package_arn) > MAX_TAG_VALUE:
            problems.append(f"model_package_arn has {len(self.model_package_arn)} characters; a tag value "
                            f"(tag {MODEL_PACKAGE_TAG}) has at most {MAX_TAG_VALUE}")
        prefix = self.predictions_prefix
        if not prefix.endswith("/") or prefix.startswith("/") or "//" in prefix:
            problems.append(f"predictions_prefix {prefix!r} must be a key prefix ending with '/' "
                            "(not starting with '/', no empty folder)")
        if self.instance_count < 1:
            problems.append(f"instance_count is {self.instance_count}, expected at least 1")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def output_location(self) -> str:
        """Where every execution writes its folder: ``s3://<artifact bucket>/<predictions prefix>``."""
        return f"s3://{self.artifact_bucket}/{self.predictions_prefix}"

    def resource_tags(self) -> list[dict[str, str]]:
        tags = dict(self.tags)
        tags[MODEL_PACKAGE_TAG] = self.model_package_arn
        return [{"Key": key, "Value": value} for key, value in tags.items()]


@dataclass(frozen=True)
class Parameters:
    input_data_url: ParameterString
    input_manifest_url: ParameterString
    instance_type: ParameterString
    instance_count: ParameterInteger

    def as_list(self) -> list:
        return [self.input_data_url, self.input_manifest_url, self.instance_type, self.instance_count]


def pipeline_parameters(settings: PipelineSettings) -> Parameters:
    return Parameters(
        # Every execution names its input with exactly one of the two; both empty fails the execution.
        input_data_url=ParameterString(name="InputDataUrl", default_value=""),
        input_manifest_url=ParameterString(name="InputManifestUrl", default_value=""),
        instance_type=ParameterString(name="TransformInstanceType", default_value=settings.instance_type),
        instance_count=ParameterInteger(name="TransformInstanceCount", default_value=settings.instance_count),
    )


def retry_policies(specification: tuple) -> list:
    """SDK retry policies from a table such as :data:`TRANSFORM_RETRY_POLICIES`."""
    policies: list = []
    for policy in specification:
        bounds = {key: policy[key] for key in ("interval_seconds", "backoff_rate", "expire_after_mins", "max_attempts")
                  if key in policy}
        if policy["kind"] == "SageMakerJob":
            types = [SageMakerJobExceptionTypeEnum[name] for name in policy["types"]]
            policies.append(SageMakerJobStepRetryPolicy(exception_types=types, **bounds))
        else:
            policies.append(StepRetryPolicy(exception_types=[StepExceptionTypeEnum[name] for name in policy["types"]],
                                            **bounds))
    return policies


class ModelPackageModelStep(ConfigurableRetryStep):
    """A create-model step (type ``Model``: the service calls CreateModel) whose one container is a model package.

    SDK v3 has no public way to express it: its ``ModelStep`` takes the arguments of ``ModelBuilder.build()``,
    and ``ModelBuilder`` treats a model package as a fine-tuned foundation model (model customization, endpoint
    deployment only); v2's ``ModelPackage`` class is gone. The request is the one the SDK's own
    ``Session.create_model`` builds for a container that names a package: ``Containers`` holding
    ``{"ModelPackageName": <arn>}``. The service names the model (``pipelines-<execution id>-...``), so
    ``ModelName`` is left out, as the SDK's steps leave it out.
    """

    def __init__(self, name: str, *, model_package_arn: str, role_arn: str, tags: list[dict[str, str]],
                 retry_policies: list, description: str) -> None:
        super().__init__(name, StepTypeEnum.CREATE_MODEL, description=description, retry_policies=retry_policies)
        self._arguments = {
            "ExecutionRoleArn": role_arn,
            "Containers": [{"ModelPackageName": model_package_arn}],
            "Tags": tags,
        }
        self._properties = Properties(step_name=name, step=self, shape_name="DescribeModelOutput")

    @property
    def arguments(self) -> dict:
        return json.loads(json.dumps(self._arguments))  # a copy: the compiler may change what it gets

    @property
    def properties(self) -> Properties:
        return self._properties


class ParameterCountTransformStep(TransformStep):
    """A transform step whose instance count is a pipeline parameter.

    SDK 3.27's ``TransformResources`` shape types ``instance_count`` as ``int`` (not ``IntPipeVar`` as for
    processing), so a ``ParameterInteger`` cannot go through ``Transformer``: the transformer gets the
    parameter's default and this step puts the parameter itself into the request.
    """

    def __init__(self, *args: Any, instance_count: ParameterInteger, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance_count = instance_count

    @property
    def arguments(self) -> dict:
        request = super().arguments
        request["TransformResources"]["InstanceCount"] = self.instance_count
        return request


def model_step(settings: PipelineSettings) -> ModelPackageModelStep:
    return ModelPackageModelStep(
        MODEL_STEP, model_package_arn=settings.model_package_arn, role_arn=settings.role_arn,
        tags=settings.resource_tags(), retry_policies=retry_policies(MODEL_RETRY_POLICIES),
        description="Create a SageMaker model from the latest Approved model package of the group",
    )


def _transformer(settings: PipelineSettings, params: Parameters, model: ModelPackageModelStep,
                 session: PipelineSession, instance_count: int) -> Transformer:
    return Transformer(
        model_name=model.properties.ModelName,
        instance_count=instance_count,
        instance_type=params.instance_type,
        strategy=BATCH_STRATEGY,
        assemble_with=ASSEMBLE_WITH,
        accept=settings.accept,
        # One folder per execution: s3://<artifact bucket>/<predictions prefix><execution id>
        output_path=Join(on="", values=[settings.output_location, ExecutionVariables.PIPELINE_EXECUTION_ID]),
        tags=settings.resource_tags(),
        sagemaker_session=session,
    )


def transform_steps(settings: PipelineSettings, params: Parameters, model: ModelPackageModelStep,
                    session: PipelineSession) -> tuple[TransformStep, TransformStep]:
    """The object step (one object, one instance) and the manifest step (the listed objects)."""
    # A single object is not split across instances: more would sit idle.
    object_args = _transformer(settings, params, model, session, instance_count=1).transform(
        data=params.input_data_url, data_type="S3Prefix", content_type=settings.content_type, split_type=SPLIT_TYPE)
    # The parameter's default here; ParameterCountTransformStep puts the parameter itself into the request.
    manifest_args = _transformer(settings, params, model, session, instance_count=settings.instance_count).transform(
        data=params.input_manifest_url, data_type="ManifestFile", content_type=settings.content_type,
        split_type=SPLIT_TYPE)
    return (
        TransformStep(name=OBJECT_STEP, step_args=object_args,
                      retry_policies=retry_policies(TRANSFORM_RETRY_POLICIES),
                      description="Score the object InputDataUrl with the approved model"),
        ParameterCountTransformStep(name=MANIFEST_STEP, step_args=manifest_args,
                                    instance_count=params.instance_count,
                                    retry_policies=retry_policies(TRANSFORM_RETRY_POLICIES),
                                    description="Score the objects the input manifest lists with the approved model"),
    )


def routing_steps(params: Parameters, object_step: TransformStep, manifest_step: TransformStep) -> list:
    """Three condition steps with mutually exclusive outcomes: exactly one of the manifest step, the object
    step and the fail step runs (see the module docstring)."""
    no_manifest = ConditionEquals(left=params.input_manifest_url, right="")
    no_object = ConditionEquals(left=params.input_data_url, right="")
    return [
        ConditionStep(name=MANIFEST_CONDITION, conditions=[no_manifest], else_steps=[manifest_step],
                      description="InputManifestUrl given: score the objects it lists"),
        ConditionStep(name=OBJECT_CONDITION, conditions=[no_manifest, ConditionNot(no_object)],
                      if_steps=[object_step], description="Only InputDataUrl given: score that object"),
        ConditionStep(name=MISSING_CONDITION, conditions=[no_manifest, no_object],
                      if_steps=[FailStep(name=FAIL_STEP, error_message=MISSING_INPUT_MESSAGE)],
                      description="Neither parameter given: fail with a message saying how to start the pipeline"),
    ]


def build_pipeline(settings: PipelineSettings, session: PipelineSession) -> Pipeline:
    """The pipeline for ``settings``; nothing is sent to AWS until ``upsert()``."""
    settings.check()
    params = pipeline_parameters(settings)
    model = model_step(settings)
    object_step, manifest_step = transform_steps(settings, params, model, session)
    return Pipeline(
        name=settings.name,
        parameters=params.as_list(),
        steps=[model, *routing_steps(params, object_step, manifest_step)],
        sagemaker_session=session,
        pipeline_experiment_config=None,  # one experiment trial per uploaded file is clutter, not lineage
    )


def definition(pipeline: Pipeline) -> dict:
    return json.loads(pipeline.definition())
