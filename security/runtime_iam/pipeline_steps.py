"""What a SageMaker pipeline definition makes SageMaker do with its roles: the processing steps.

The build upserts the pipeline (``CreatePipeline``/``UpdatePipeline`` with a ``PipelineDefinition``); the
recorder keeps the definition of every upsert reduced by :func:`processing_steps` to what IAM cares about:
the pipeline's role, and per processing step (at any depth: the branches of condition steps too) the job's
role, image, inputs and outputs. :func:`evaluate` resolves the pipeline expressions those carry
(``{"Get": "Parameters.X"}``, ``{"Get": "Execution.PipelineExecutionId"}``, ``{"Std:Join": ...}``) for
sample parameter values; any other expression raises, so a new kind cannot be skipped silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

SAMPLE_EXECUTION_ID = "a1b2c3d4e5f6"


class UnsupportedExpression(ValueError):
    pass


def _walk_steps(steps: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for step in steps:
        yield step
        arguments = step.get("Arguments", {})
        for branch in ("IfSteps", "ElseSteps"):
            yield from _walk_steps(arguments.get(branch, []))


def processing_steps(definition: str | Mapping[str, Any], pipeline_role_arn: str) -> dict[str, Any]:
    """The IAM-relevant part of a pipeline definition (JSON-serialisable, expressions unresolved)."""
    document = json.loads(definition) if isinstance(definition, str) else definition
    steps = []
    for step in _walk_steps(document.get("Steps", [])):
        if step.get("Type") != "Processing":
            if step.get("Type") not in ("Condition", "Fail"):
                raise UnsupportedExpression(f"step {step.get('Name')} of type {step.get('Type')}: add it to the gate")
            continue
        arguments = step["Arguments"]
        steps.append({
            "name": step["Name"],
            "role_arn": arguments["RoleArn"],
            "image_uri": arguments["AppSpecification"]["ImageUri"],
            "entrypoint": arguments["AppSpecification"].get("ContainerEntrypoint", []),
            "arguments": arguments["AppSpecification"].get("ContainerArguments", []),
            "inputs": [
                {"name": i["InputName"], "uri": i["S3Input"]["S3Uri"], "data_type": i["S3Input"]["S3DataType"],
                 "local_path": i["S3Input"]["LocalPath"]}
                for i in arguments.get("ProcessingInputs", [])
            ],
            "outputs": [
                {"name": o["OutputName"], "uri": o["S3Output"]["S3Uri"], "local_path": o["S3Output"]["LocalPath"]}
                if "S3Output" in o
                else {"name": o["OutputName"], "feature_group": o["FeatureStoreOutput"]["FeatureGroupName"]}
                for o in arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
            ],
        })
    parameters = {p["Name"]: p.get("DefaultValue") for p in document.get("Parameters", [])}
    return {"pipeline_role_arn": pipeline_role_arn, "parameters": parameters, "steps": steps}


def evaluate(expression: Any, parameters: Mapping[str, Any]) -> Any:
    """The value of a pipeline expression for the given parameter values."""
    if not isinstance(expression, Mapping):
        return expression
    if set(expression) == {"Get"}:
        path = expression["Get"]
        if path.startswith("Parameters."):
            name = path.removeprefix("Parameters.")
            if name not in parameters or parameters[name] is None:
                raise UnsupportedExpression(f"no sample value for pipeline parameter {name}")
            return parameters[name]
        if path == "Execution.PipelineExecutionId":
            return SAMPLE_EXECUTION_ID
        raise UnsupportedExpression(f"pipeline expression Get {path} is not supported by the gate")
    if set(expression) == {"Std:Join"}:
        join = expression["Std:Join"]
        return join["On"].join(str(evaluate(v, parameters)) for v in join["Values"])
    raise UnsupportedExpression(f"pipeline expression {json.dumps(expression)} is not supported by the gate")


def parameter_names(expression: Any) -> set[str]:
    """The pipeline parameters an expression reads."""
    if isinstance(expression, Mapping):
        if set(expression) == {"Get"} and str(expression["Get"]).startswith("Parameters."):
            return {expression["Get"].removeprefix("Parameters.")}
        return {name for value in expression.values() for name in parameter_names(value)}
    if isinstance(expression, list):
        return {name for value in expression for name in parameter_names(value)}
    return set()
