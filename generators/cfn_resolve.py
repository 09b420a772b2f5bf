"""Resolve the CloudFormation intrinsic functions our templates use, for checks and tests.

CloudFormation itself is not available offline; this evaluates ``Ref``, ``Fn::Sub``, ``Fn::If``,
``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``,
``Condition`` and ``AWS::NoValue`` for given parameter values. ``Fn::GetAtt`` and references to
resources resolve to readable placeholders (``<Logical.Attr>``) so policies can still be analysed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

PSEUDO_DEFAULTS = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "eu-west-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "example-stack",
    "AWS::NotificationARNs": "",
}
PSEUDO_DEFAULTS["AWS::StackId"] = "arn:{p}:cloudformation:{r}:{a}:stack/{s}/0".format(
    p=PSEUDO_DEFAULTS["AWS::Partition"],
    r=PSEUDO_DEFAULTS["AWS::Region"],
    a=PSEUDO_DEFAULTS["AWS::AccountId"],
    s=PSEUDO_DEFAULTS["AWS::StackName"],
)
_NO_VALUE = object()
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


class ResolveError(ValueError):
    pass


def template_parameters(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parameter defaults of ``template`` updated with ``overrides``; a missing required one is an error."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if "Default" in spec:
            values[name] = spec["Default"]
    values.update(overrides or {})
    # CloudFormation hands every (non-list) parameter value to the intrinsic functions as a string:
    # Fn::Equals [{"Ref": "SomeNumber"}, "0"] is true for the value 0.
    values = {name: value if isinstance(value, list) else str(value) for name, value in values.items()}
    missing = [name for name in template.get("Parameters", {}) if name not in values]
    if missing:
        raise ResolveError(f"parameters without a value: {', '.join(missing)}")
    return values


def evaluate_conditions(template: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, bool]:
    conditions: dict[str, bool] = {}
    definitions = template.get("Conditions", {})

    def condition(name: str) -> bool:
        if name not in conditions:
            if name not in definitions:
                raise ResolveError(f"unknown condition {name}")
            conditions[name] = bool(_resolve(definitions[name], parameters, condition))
        return conditions[name]

    for name in definitions:
        condition(name)
    return conditions


def resolve(value: Any, parameters: Mapping[str, Any], conditions: Mapping[str, bool]) -> Any:
    """Resolve intrinsics in ``value``; list items and keys that resolve to AWS::NoValue are dropped."""
    result = _resolve(value, parameters, conditions.__getitem__)
    return None if result is _NO_VALUE else result


def resolve_template(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The template's resources and outputs, conditions applied and intrinsics resolved."""
    parameters = template_parameters(template, overrides)
    conditions = evaluate_conditions(template, parameters)
    resources = {
        logical_id: resolve(resource, parameters, conditions)
        for logical_id, resource in template.get("Resources", {}).items()
        if conditions.get(resource.get("Condition", ""), True)
    }
    outputs = {
        name: resolve(output, parameters, conditions)
        for name, output in template.get("Outputs", {}).items()
        if conditions.get(output.get("Condition", ""), True)
    }
    return {"Parameters": parameters, "Conditions": conditions, "Resources": resources, "Outputs": outputs}


def _lookup(name: str, parameters: Mapping[str, Any]) -> Any:
    if name in parameters:
        value = parameters[name]
    elif name in PSEUDO_DEFAULTS:
        value = PSEUDO_DEFAULTS[name]
    elif "." in name:
        return f"<{name}>"
    else:
        return f"<{name}>"  # a resource reference
    return ",".join(value) if isinstance(value, list) else value


def _resolve(value: Any, parameters: Mapping[str, Any], condition: Callable[[str], bool]) -> Any:  # noqa: C901 - a dispatcher
    if isinstance(value, list):
        items = [_resolve(item, parameters, condition) for item in value]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return _NO_VALUE if arg == "AWS::NoValue" else _lookup(arg, parameters)
        if key == "Fn::If":
            name, when_true, when_false = arg
            return _resolve(when_true if condition(name) else when_false, parameters, condition)
        if key == "Condition" and isinstance(arg, str):
            return condition(arg)
        if key == "Fn::Equals":
            left, right = (_resolve(a, parameters, condition) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not _resolve(arg[0], parameters, condition)
        if key == "Fn::And":
            return all(_resolve(a, parameters, condition) for a in arg)
        if key == "Fn::Or":
            return any(_resolve(a, parameters, condition) for a in arg)
        if key == "Fn::Sub":
            return _sub(arg, parameters, condition)
        if key == "Fn::Join":
            separator, items = arg
            return separator.join(str(i) for i in _resolve(items, parameters, condition))
        if key == "Fn::Select":
            index, items = _resolve(arg, parameters, condition)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = _resolve(arg, parameters, condition)
            return text.split(separator)
        if key == "Fn::GetAtt":
            target = arg if isinstance(arg, str) else ".".join(arg)
            return f"<{target}>"
        if key == "Fn::ImportValue":
            return f"<import:{_resolve(arg, parameters, condition)}>"
        if key == "Fn::GetAZs":
            return ["eu-west-1a", "eu-west-1b"]
    result = {}
    for key, item in value.items():
        resolved = _resolve(item, parameters, condition)
        if resolved is not _NO_VALUE:
            result[key] = resolved
    return result


def _sub(arg: Any, parameters: Mapping[str, Any], condition: Callable[[str], bool]) -> str:
    if isinstance(arg, list):
        text, variables = arg
        local = {k: _resolve(v, parameters, condition) for k, v in variables.items()}
    else:
        text, local = arg, {}
    scope = {**parameters, **local}

    def replace(match: re.Match[str]) -> str:
        return str(_lookup(match.group(1), scope))

    return _SUB.sub(replace, text).replace("${!", "${")
