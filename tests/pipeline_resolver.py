"""An offline resolver of SageMaker pipeline definitions: what an execution would ask SageMaker to do.

Given a definition (the JSON document CreatePipeline takes), the parameter values an execution is started
with and an execution id, :func:`resolve_execution` evaluates the condition steps, keeps the steps that would
run and returns, for each, the API request SageMaker Pipelines makes for it:

==============  ===========================  ===================================================
step type       operation                    request
==============  ===========================  ===================================================
``Model``       ``CreateModel``              the step's arguments + ``ModelName``
``Transform``   ``CreateTransformJob``       the step's arguments + ``TransformJobName``
``Processing``  ``CreateProcessingJob``      the step's arguments + ``ProcessingJobName``
``Fail``        none (``operation`` None)    ``{"ErrorMessage": ...}``
==============  ===========================  ===================================================

Other step types raise :class:`ResolutionError` (say so rather than guess).

Expressions are evaluated as the pipeline definition documents them ("Pipeline definition JSON schema",
AWS's published schema; "Pipelines steps", SageMaker developer guide):

* ``{"Get": "Parameters.<name>"}`` -- the value the execution was started with, or the parameter's
  ``DefaultValue``; values arrive as strings (StartPipelineExecution's ``PipelineParameters``) and take the
  parameter's type (``Integer``, ``Float``, ``Boolean``, ``String``); an unknown parameter name is refused;
* ``{"Get": "Execution.<variable>"}`` -- ``PipelineExecutionId`` (the given id), ``PipelineExecutionArn``,
  ``PipelineName``, ``PipelineArn``, ``StartDateTime``, ``CurrentDateTime`` (fixed, deterministic values);
* ``{"Get": "Steps.<step>.<property path>"}`` -- a deterministic placeholder for what the step produces: the
  resource name SageMaker gives the step's model or job (the same name the step's own request carries, so a
  transform's ``ModelName`` equals the model step's ``ModelName``), an ARN built from it for ``...Arn``
  properties, or else the value at that path in the step's own request (``TransformOutput.S3OutputPath``,
  ``ProcessingOutputConfig.Outputs['name'].S3Output.S3Uri``, ...). A reference to a step that does not run
  is refused;
* ``{"Std:Join": {"On": ..., "Values": [...]}}`` -- the values, each resolved and turned into text, joined.

Condition types: ``Equals``, ``GreaterThan``, ``GreaterThanOrEqualTo``, ``LessThan``,
``LessThanOrEqualTo``, ``In``, ``Not``, ``Or``; a condition step runs its ``IfSteps`` when all its
conditions hold, its ``ElseSteps`` otherwise ("Condition step", SageMaker developer guide), at any depth.
Steps are returned in an order in which they can run (``DependsOn`` and ``Steps.*`` references first).

Every request is then checked against botocore's SageMaker service model by :func:`request_problems`:
required members, unknown members, types, string lengths and patterns, enums, numeric ranges, list lengths.
botocore's own validation checks types, required members and minimums only; the patterns are Java regular
expressions (``\\p{L}`` in tag patterns), evaluated here with the ``regex`` module (a dependency of cfn-lint,
which the test extra pins) as the service evaluates them, a Java ``.`` not matching line terminators.
:func:`parameter_problems` checks the StartPipelineExecution side (a value is at most 1,024 characters).

:func:`render_definitions` builds definitions from a seed code directory in a separate interpreter (the
SageMaker SDK reads its region and configuration when imported; the seed code must not be imported into the
test process), under moto so that nothing reaches AWS.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import regex

DEFAULT_REGION = "eu-west-1"
DEFAULT_ACCOUNT = "123456789012"
START_TIME = "2025-01-01T00:00:00.000Z"
OPERATIONS = {"Model": "CreateModel", "Transform": "CreateTransformJob", "Processing": "CreateProcessingJob"}
NAME_MEMBERS = {"Model": "ModelName", "Transform": "TransformJobName", "Processing": "ProcessingJobName"}
ARN_KINDS = {"Model": "model", "Transform": "transform-job", "Processing": "processing-job"}
MAX_RESOURCE_NAME = 63  # ModelName, TransformJobName, ProcessingJobName: at most 63 characters
MAX_PARAMETER_VALUE = 1024  # StartPipelineExecution: Parameter.Value (botocore shape String1024)
JAVA_LINE_TERMINATORS = "\n\r\u0085\u2028\u2029"  # what a Java '.' does not match
COMPARISONS = {
    "Equals": lambda left, right: left == right,
    "GreaterThan": lambda left, right: left > right,
    "GreaterThanOrEqualTo": lambda left, right: left >= right,
    "LessThan": lambda left, right: left < right,
    "LessThanOrEqualTo": lambda left, right: left <= right,
}


class ResolutionError(ValueError):
    """The definition uses something the resolver does not evaluate, or refers to something that is not there."""


class InvalidRequest(AssertionError):
    """A resolved request that the API would refuse; the message lists every problem."""


@dataclass(frozen=True)
class Execution:
    """The execution the definition is resolved for."""

    execution_id: str = "a1b2c3d4e5f6"
    pipeline_name: str = "pipeline"
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT

    @property
    def pipeline_arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{self.pipeline_name.lower()}"

    @property
    def arn(self) -> str:
        return f"{self.pipeline_arn}/execution/{self.execution_id}"


@dataclass(frozen=True)
class StepCall:
    """A step that runs, and the request SageMaker makes for it (``operation`` is None for a fail step)."""

    name: str
    step_type: str
    operation: str | None
    request: dict


@dataclass
class Resolution:
    """The steps an execution runs, in an order they can run in, and every condition step's outcome."""

    calls: list[StepCall]
    conditions: dict[str, bool] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [call.name for call in self.calls]

    def call(self, name: str) -> StepCall:
        matches = [call for call in self.calls if call.name == name]
        if not matches:
            raise KeyError(f"step {name!r} does not run; running: {self.names}")
        return matches[0]

    def request(self, name: str) -> dict:
        return self.call(name).request

    def by_operation(self, operation: str) -> list[StepCall]:
        return [call for call in self.calls if call.operation == operation]


# --------------------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------------------


def parameter_values(definition: dict, given: Mapping[str, object] | None) -> dict[str, object]:
    """Each parameter's value for an execution started with ``given``, in the parameter's type."""
    declared = {parameter["Name"]: parameter for parameter in definition.get("Parameters", [])}
    unknown = sorted(set(given or {}) - set(declared))
    if unknown:
        raise ResolutionError(f"parameter(s) {', '.join(unknown)} not defined by the pipeline "
                              f"(it defines {', '.join(declared) or 'none'})")
    values: dict[str, object] = {}
    for name, parameter in declared.items():
        if given is not None and name in given:
            value = _typed(parameter, given[name])
        elif "DefaultValue" in parameter:
            value = parameter["DefaultValue"]
        else:
            raise ResolutionError(f"parameter {name} has no default value and was not given")
        allowed = parameter.get("EnumValues")
        if allowed and value not in allowed:
            raise ResolutionError(f"parameter {name}: {value!r} is not one of {allowed}")
        values[name] = value
    return values


def _typed(parameter: dict, value: object) -> object:
    kind, name, text = parameter.get("Type", "String"), parameter["Name"], str(value)
    try:
        if kind == "Integer":
            return int(text)
        if kind == "Float":
            return float(text)
    except ValueError as error:
        raise ResolutionError(f"parameter {name} is {kind}: {value!r} is not one") from error
    if kind == "Boolean":
        if text.lower() not in ("true", "false"):
            raise ResolutionError(f"parameter {name} is Boolean: {value!r} is not true or false")
        return text.lower() == "true"
    return text


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Context:
    def __init__(self, definition: dict, values: dict, execution: Execution, running: dict[str, dict]) -> None:
        self.definition = definition
        self.values = values
        self.execution = execution
        self.running = running  # step name -> step, for the steps that run
        self.requests: dict[str, dict] = {}  # step name -> its resolved request, once resolved

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Get"} and isinstance(value["Get"], str):
                return self.get(value["Get"])
            if len(value) == 1 and next(iter(value)).startswith("Std:"):
                return self.function(*next(iter(value.items())))
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def function(self, name: str, arguments: Any) -> Any:
        if name == "Std:Join":
            return arguments["On"].join(_text(self.resolve(item)) for item in arguments["Values"])
        raise ResolutionError(f"function {name} is not supported by the resolver")

    def get(self, reference: str) -> Any:
        kind, _, rest = reference.partition(".")
        if kind == "Parameters":
            if rest not in self.values:
                raise ResolutionError(f"{reference}: no such parameter")
            return self.values[rest]
        if kind == "Execution":
            execution = self.execution
            variables = {"PipelineExecutionId": execution.execution_id, "PipelineExecutionArn": execution.arn,
                         "PipelineName": execution.pipeline_name, "PipelineArn": execution.pipeline_arn,
                         "StartDateTime": START_TIME, "CurrentDateTime": START_TIME}
            if rest not in variables:
                raise ResolutionError(f"{reference}: unknown execution variable")
            return variables[rest]
        if kind == "Steps":
            step_name, _, path = rest.partition(".")
            return self.step_property(step_name, path, reference)
        raise ResolutionError(f"{reference}: unsupported reference")

    def step_property(self, step_name: str, path: str, reference: str) -> Any:
        if step_name not in self.running:
            raise ResolutionError(f"{reference}: step {step_name} does not run in this execution")
        step = self.running[step_name]
        step_type = step["Type"]
        name_member = NAME_MEMBERS.get(step_type)
        if path == name_member:
            return resource_name(self.execution.execution_id, step_name)
        if name_member and path.endswith("Arn") and "." not in path:
            name = resource_name(self.execution.execution_id, step_name).lower()
            execution = self.execution
            return f"arn:aws:sagemaker:{execution.region}:{execution.account}:{ARN_KINDS[step_type]}/{name}"
        if step_name not in self.requests:
            raise ResolutionError(f"{reference}: step {step_name} has not been resolved yet (a dependency cycle?)")
        found = _walk(self.requests[step_name], path)
        if found is _MISSING:
            raise ResolutionError(f"{reference}: no placeholder for this property")
        return found


_MISSING = object()
_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")


def _walk(document: Any, path: str) -> Any:
    """The value at a property path such as ``Outputs['train'].S3Output.S3Uri`` or ``Containers[0].Image``.
    A list indexed by a name selects the item whose ``...Name`` member has that value."""
    node = document
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if not match:
            return _MISSING
        position = match.end()
        member, quoted, double_quoted, index = match.groups()
        key = quoted if quoted is not None else double_quoted
        if member is not None:
            if not isinstance(node, dict) or member not in node:
                return _MISSING
            node = node[member]
        elif index is not None:
            if not isinstance(node, list) or int(index) >= len(node):
                return _MISSING
            node = node[int(index)]
        else:
            if not isinstance(node, list):
                return _MISSING
            items = [item for item in node if isinstance(item, dict)
                     and any(k.endswith("Name") and v == key for k, v in item.items())]
            if len(items) != 1:
                return _MISSING
            node = items[0]
    return node


def resource_name(execution_id: str, step_name: str) -> str:
    """The name standing for the resource SageMaker Pipelines creates for a step (it names models and jobs
    ``pipelines-<execution id>-<step>-<suffix>``; the suffix is random, this name is deterministic). Valid for
    ModelName, TransformJobName and ProcessingJobName: ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``."""
    name = re.sub(r"[^a-zA-Z0-9]+", "-", f"pipelines-{execution_id}-{step_name}")[:MAX_RESOURCE_NAME]
    return name.strip("-")


# --------------------------------------------------------------------------------------------------
# Conditions and the steps that run
# --------------------------------------------------------------------------------------------------


def holds(condition: dict, context: _Context) -> bool:
    kind = condition.get("Type")
    if kind in COMPARISONS:
        left, right = context.resolve(condition["LeftValue"]), context.resolve(condition["RightValue"])
        try:
            return bool(COMPARISONS[kind](left, right))
        except TypeError as error:
            raise ResolutionError(f"{kind}: cannot compare {left!r} with {right!r}") from error
    if kind == "In":
        return context.resolve(condition["QueryValue"]) in [context.resolve(v) for v in condition["Values"]]
    if kind == "Not":
        return not holds(condition["Condition"], context)
    if kind == "Or":
        return any(holds(item, context) for item in condition["Conditions"])
    raise ResolutionError(f"condition type {kind!r} is not supported by the resolver")


def _running_steps(steps: list, context: _Context, conditions: dict[str, bool]) -> Iterator[dict]:
    for step in steps:
        if step["Type"] != "Condition":
            yield step
            continue
        arguments = step["Arguments"]
        outcome = all(holds(condition, context) for condition in arguments.get("Conditions", []))
        conditions[step["Name"]] = outcome
        yield from _running_steps(arguments.get("IfSteps" if outcome else "ElseSteps", []), context, conditions)


def _references(value: Any) -> set[str]:
    """The step names ``value`` refers to with ``Steps.<name>...``."""
    found: set[str] = set()
    if isinstance(value, dict):
        if set(value) == {"Get"} and isinstance(value["Get"], str) and value["Get"].startswith("Steps."):
            found.add(value["Get"].split(".")[1])
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _in_order(steps: list[dict]) -> list[dict]:
    """``steps`` in an order they can run in: a step after the steps it depends on or refers to (stable)."""
    names = {step["Name"] for step in steps}
    before = {step["Name"]: ({d for d in step.get("DependsOn", []) if isinstance(d, str)}
                             | _references(step.get("Arguments", {}))) & names for step in steps}
    ordered: list[dict] = []
    done: set[str] = set()
    while len(ordered) < len(steps):
        ready = [step for step in steps if step["Name"] not in done and before[step["Name"]] <= done]
        if not ready:
            raise ResolutionError(f"dependency cycle among {sorted(names - done)}")
        ordered.append(ready[0])
        done.add(ready[0]["Name"])
    return ordered


def resolve_execution(
    definition: dict | str,
    parameters: Mapping[str, object] | Sequence[Mapping[str, object]] | None = None,
    execution: Execution | str | None = None,
    *,
    validate: bool = True,
) -> Resolution:
    """What an execution of ``definition`` started with ``parameters`` asks SageMaker to do (see the module
    docstring). ``parameters`` maps names to values, or is StartPipelineExecution's ``PipelineParameters`` list
    (``[{"Name": ..., "Value": ...}]``, as the start Lambda sends it). ``execution`` is an :class:`Execution`
    or just its id. With ``validate`` (the default) every request and parameter value is checked against
    botocore's SageMaker model: :class:`InvalidRequest`."""
    if parameters is not None and not isinstance(parameters, Mapping):
        names = [str(item["Name"]) for item in parameters]
        if len(set(names)) != len(names):
            raise ResolutionError(f"a parameter is given twice: {names}")
        parameters = {str(item["Name"]): item["Value"] for item in parameters}
    document = json.loads(definition) if isinstance(definition, str) else copy.deepcopy(definition)
    if isinstance(execution, str) or execution is None:
        execution = Execution(execution_id=execution or Execution.execution_id)
    if validate:
        problems = parameter_problems(parameters or {})
        if problems:
            raise InvalidRequest("StartPipelineExecution would refuse the parameters:\n" + "\n".join(problems))
    values = parameter_values(document, parameters)
    context = _Context(document, values, execution, running={})
    conditions: dict[str, bool] = {}
    running = list(_running_steps(document.get("Steps", []), context, conditions))
    context.running = {step["Name"]: step for step in running}
    if len(context.running) != len(running):
        raise ResolutionError("two running steps share a name")

    calls = []
    for step in _in_order(running):
        name, step_type = step["Name"], step["Type"]
        if step_type == "Fail":
            request = {"ErrorMessage": _text(context.resolve(step.get("Arguments", {}).get("ErrorMessage", "")))}
            calls.append(StepCall(name, step_type, None, request))
            continue
        if step_type not in OPERATIONS:
            raise ResolutionError(f"step {name}: type {step_type} is not supported by the resolver")
        request = context.resolve(step["Arguments"])
        request.setdefault(NAME_MEMBERS[step_type], resource_name(execution.execution_id, name))
        context.requests[name] = request
        calls.append(StepCall(name, step_type, OPERATIONS[step_type], request))
    if validate:
        for call in calls:
            if call.operation:
                assert_valid_request(call.request, call.operation, where=call.name)
    return Resolution(calls, conditions)


# --------------------------------------------------------------------------------------------------
# Validation against botocore's SageMaker model
# --------------------------------------------------------------------------------------------------

_MODEL = None
_PATTERNS: dict[str, Any] = {}


def service_model() -> Any:
    global _MODEL
    if _MODEL is None:
        _MODEL = botocore.session.get_session().get_service_model("sagemaker")
    return _MODEL


def parameter_problems(parameters: Mapping[str, object]) -> list[str]:
    """StartPipelineExecution: each parameter value at most 1,024 characters, as text."""
    return [f"PipelineParameters.{name}: {len(_text(value))} characters, allowed at most {MAX_PARAMETER_VALUE}"
            for name, value in parameters.items() if len(_text(value)) > MAX_PARAMETER_VALUE]


def request_problems(params: dict, operation: str) -> list[str]:
    """Everything in ``params`` that the service model of ``operation`` refuses (empty: accepted)."""
    problems: list[str] = []
    _check(service_model().operation_model(operation).input_shape, params, operation, problems)
    return problems


def assert_valid_request(params: dict, operation: str, where: str = "") -> None:
    problems = request_problems(params, operation)
    if problems:
        label = f"{operation} ({where})" if where else operation
        raise InvalidRequest(f"{label} would be refused:\n" + "\n".join(problems))


def _pattern(pattern: str) -> Any:
    if pattern not in _PATTERNS:
        _PATTERNS[pattern] = regex.compile(pattern)
    return _PATTERNS[pattern]


def _check(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a structure, got {type(value).__name__}")
            return
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}.{name}: required")
        for name, item in value.items():
            if name not in shape.members:
                problems.append(f"{path}.{name}: unknown member")
            else:
                _check(shape.members[name], item, f"{path}.{name}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        _check_range(len(value), meta, path, "items", problems)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        _check_range(len(value), meta, path, "entries", problems)
        for key, item in value.items():
            _check(shape.key, key, f"{path} key {key!r}", problems)
            _check(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {type(value).__name__} {value!r}")
            return
        _check_range(len(value), meta, path, "characters", problems)
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        pattern = meta.get("pattern")
        if pattern:
            try:
                compiled = _pattern(pattern)
            except regex.error as error:
                problems.append(f"{path}: pattern {pattern} cannot be evaluated here ({error})")
                return
            if not compiled.fullmatch(value):
                problems.append(f"{path}: {value!r} does not match {pattern}")
            elif "." in pattern and any(ch in value for ch in JAVA_LINE_TERMINATORS):
                problems.append(f"{path}: {value!r} holds a line terminator that {pattern} rejects")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {type(value).__name__} {value!r}")
            return
        _check_range(value, meta, path, "", problems)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number, got {type(value).__name__} {value!r}")
            return
        _check_range(value, meta, path, "", problems)
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(f"{path}: expected a boolean, got {type(value).__name__} {value!r}")


def _check_range(measure: float, meta: dict, path: str, unit: str, problems: list[str]) -> None:
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and measure < low) or (high is not None and measure > high):
        what = f"{measure} {unit}".strip()
        problems.append(f"{path}: {what}, allowed {low if low is not None else ''}..{high if high is not None else ''}")


# --------------------------------------------------------------------------------------------------
# Rendering a seed code's definitions
# --------------------------------------------------------------------------------------------------


def render_definitions(seed_dir: Path, script: str, *args: str, timeout: int = 300) -> Any:
    """Run ``script`` (Python that writes JSON to standard output; ``args`` in ``sys.argv[1:]``) in a new
    interpreter from ``seed_dir``, with fake credentials, a real region, the seed code's SDK configuration (no
    telemetry) and nothing of this process's AWS settings; return the parsed output."""
    seed_dir = Path(seed_dir).resolve()
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("AWS_", "SAGEMAKER_", "PYTEST_"))}
    config = seed_dir / "tests" / "sagemaker-config.yaml"
    environment.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": DEFAULT_REGION,
        "AWS_REGION": DEFAULT_REGION, "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "PYTHONPATH": str(seed_dir),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config), "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(config),
    })
    completed = subprocess.run([sys.executable, "-c", script, *args], cwd=seed_dir, env=environment,
                               capture_output=True, text=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"rendering in {seed_dir} failed (exit {completed.returncode}):\n{completed.stderr}")
    return json.loads(completed.stdout)


BATCH_INFERENCE_RENDER = """
import json, sys
import boto3
from moto import mock_aws

settings = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
with mock_aws():  # nothing reaches AWS while the definition is built
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from pipelines.pipeline import PipelineSettings, build_pipeline, definition

    values = dict(name="batch-inference-demo", role_arn="arn:aws:iam::123456789012:role/project-execution-role",
                  model_package_arn="arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/3",
                  artifact_bucket="artifact-bucket", predictions_prefix="predictions/",
                  instance_type="ml.m5.large", instance_count=2,
                  tags=[["sagemaker:project-name", "demo"], ["sagemaker:project-id", "p-abc123def456"]])
    values.update(settings)
    values["tags"] = tuple(tuple(tag) for tag in values["tags"])
    session = PipelineSession(boto_session=boto3.session.Session(region_name="eu-west-1"),
                              default_bucket=values["artifact_bucket"])
    document = definition(build_pipeline(PipelineSettings(**values), session))
json.dump(document, sys.stdout)
"""


def render_batch_inference_definition(seed_dir: Path, **settings: object) -> dict:
    """The batch-inference seed code's definition for ``settings`` (``PipelineSettings`` fields; the rest are
    the defaults of :data:`BATCH_INFERENCE_RENDER`)."""
    return render_definitions(seed_dir, BATCH_INFERENCE_RENDER, json.dumps(settings))
