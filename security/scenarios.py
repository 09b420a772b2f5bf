"""Every combination of condition values a template can be deployed with, resolved for a sample project.

CloudFormation is not available offline: :mod:`generators.cfn_resolve` evaluates the intrinsic functions,
and this module (1) enumerates the parameter values that flip each condition, so conditional resources and
policies are analysed too, and (2) replaces the ``<Logical>``/``<Logical.Attr>`` placeholders that
``cfn_resolve`` leaves for resource references with the names and ARNs CloudFormation would return, so the
resolved policies name real ARNs (which ``fnmatch`` and parliament can check).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from generators.cfn_resolve import PSEUDO_DEFAULTS, evaluate_conditions, resolve_template, template_parameters
from generators.products import products
from generators.settings import POLICIES_TEMPLATE, PORTFOLIO_TEMPLATE

ACCOUNT = PSEUDO_DEFAULTS["AWS::AccountId"]
REGION = PSEUDO_DEFAULTS["AWS::Region"]
PARTITION = PSEUDO_DEFAULTS["AWS::Partition"]

# Values a platform admin or SageMaker would pass. Optional parameters get a non-empty sample, so that
# the scenario enumeration can try them both empty (their default) and set. Each product declares its own
# (sample_parameters), looked up when a scenario is built so that products registered later count too.
PLATFORM_SAMPLE_PARAMETERS: dict[str, dict[str, str]] = {
    POLICIES_TEMPLATE: {
        "StudioExecutionRoleName": "MyStudioExecutionRole",
        "ReleaseRoleName": "MyReleaseRole",
    },
    PORTFOLIO_TEMPLATE: {
        "PrincipalArn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/service-role/MyStudioExecutionRole",
        "AdditionalPrincipalArn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/MyDataScientist",
    },
}



def sample_parameters(template_name: str) -> dict[str, str]:
    for product in products():
        if product.template_name == template_name:
            return dict(product.sample_parameters)
    return PLATFORM_SAMPLE_PARAMETERS.get(template_name, {})


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?>")


@dataclass(frozen=True)
class Scenario:
    """One deployable combination: parameter values, the conditions they give, the resolved template."""

    template_name: str
    parameters: dict[str, Any]
    conditions: dict[str, bool]
    resolved: dict[str, Any]

    @property
    def label(self) -> str:
        flags = ",".join(f"{name}={'T' if value else 'F'}" for name, value in sorted(self.conditions.items()))
        return f"{self.template_name}[{flags or 'unconditional'}]"

    @property
    def resources(self) -> dict[str, dict]:
        return self.resolved["Resources"]


def condition_parameters(template: Mapping[str, Any]) -> dict[str, set[str]]:
    """Parameters referenced by the Conditions section, with the literals they are compared with."""
    found: dict[str, set[str]] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if "Fn::Equals" in node:
                left, right = node["Fn::Equals"]
                for ref, literal in ((left, right), (right, left)):
                    if isinstance(ref, dict) and set(ref) == {"Ref"} and isinstance(literal, str):
                        found.setdefault(ref["Ref"], set()).add(literal)
            if set(node) == {"Ref"} and isinstance(node["Ref"], str) and not node["Ref"].startswith("AWS::"):
                found.setdefault(node["Ref"], set())
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(template.get("Conditions", {}))
    return found


def scenarios(template_name: str, template: Mapping[str, Any]) -> list[Scenario]:
    """One scenario per distinct combination of condition values (sample values for everything else)."""
    samples = sample_parameters(template_name)
    declared = template.get("Parameters", {})
    base = template_parameters(template, {k: v for k, v in samples.items() if k in declared})
    candidates: dict[str, list[str]] = {}
    for name, literals in sorted(condition_parameters(template).items()):
        spec = declared[name]
        values = set(spec.get("AllowedValues", [])) or {*literals, str(spec.get("Default", "")), samples.get(name, "")}
        candidates[name] = sorted(str(v) for v in values)
    found: dict[tuple, Scenario] = {}
    for combination in itertools.product(*candidates.values()):
        parameters = {**base, **dict(zip(candidates, combination, strict=True))}
        conditions = evaluate_conditions(template, parameters)
        key = tuple(sorted(conditions.items()))
        if key not in found:
            resolved = resolve_template(template, parameters)
            resolved["Resources"] = resolve_references(resolved["Resources"])
            found[key] = Scenario(template_name, parameters, conditions, resolved)
    return [found[key] for key in sorted(found)]


def all_scenarios(templates: Mapping[str, Mapping[str, Any]]) -> Iterator[Scenario]:
    for name in sorted(templates):
        yield from scenarios(name, templates[name])


# --- what Ref and Fn::GetAtt return, per resource type (documented return values) ---------------


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def _attributes(resource_type: str, p: Mapping[str, Any]) -> dict[str, str]:  # noqa: C901 - a lookup table
    """Ref ("") and GetAtt values of a resource, from its resolved properties."""
    if resource_type == "AWS::S3::Bucket":
        name = p["BucketName"]
        return {"": name, "Arn": f"arn:{PARTITION}:s3:::{name}"}
    if resource_type == "AWS::SQS::Queue":
        name = p["QueueName"]
        return {
            "": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
            "Arn": _arn("sqs", name),
            "QueueName": name,
        }
    if resource_type == "AWS::IAM::Role":
        name, path = p["RoleName"], p.get("Path", "/")
        return {"": name, "Arn": _arn("iam", f"role{path}{name}", region="")}
    if resource_type == "AWS::IAM::ManagedPolicy":
        return {"": _arn("iam", f"policy{p.get('Path', '/')}{p['ManagedPolicyName']}", region="")}
    if resource_type == "AWS::Lambda::Function":
        name = p["FunctionName"]
        return {"": name, "Arn": _arn("lambda", f"function:{name}")}
    if resource_type == "AWS::Events::Rule":
        name = p["Name"]
        return {"": name, "Arn": _arn("events", f"rule/{name}")}
    if resource_type == "AWS::CloudTrail::Trail":
        name = p["TrailName"]
        return {"": name, "Arn": _arn("cloudtrail", f"trail/{name}")}
    if resource_type == "AWS::CodeCommit::Repository":
        name = p["RepositoryName"]
        return {
            "": "00000000-0000-0000-0000-000000000000",
            "Arn": _arn("codecommit", name),
            "Name": name,
            "CloneUrlHttp": f"https://git-codecommit.{REGION}.amazonaws.com/v1/repos/{name}",
        }
    if resource_type == "AWS::CodeBuild::Project":
        name = p["Name"]
        return {"": name, "Arn": _arn("codebuild", f"project/{name}")}
    if resource_type == "AWS::CodePipeline::Pipeline":
        return {"": p["Name"]}
    if resource_type == "AWS::Logs::LogGroup":
        name = p["LogGroupName"]
        return {"": name, "Arn": _arn("logs", f"log-group:{name}:*")}
    if resource_type == "AWS::SNS::Topic":
        name = p["TopicName"]
        return {"": _arn("sns", name), "TopicArn": _arn("sns", name), "TopicName": name}
    if resource_type == "AWS::Lambda::EventSourceMapping":  # Ref: the mapping's UUID, which Lambda picks
        uuid = "a1b2c3d4-0000-4000-8000-00000000e5a1"
        mapping_arn = _arn("lambda", f"event-source-mapping:{uuid}")
        return {"": uuid, "Id": uuid, "EventSourceMappingArn": mapping_arn, "Arn": mapping_arn}
    if resource_type == "AWS::CloudWatch::Alarm":
        name = p["AlarmName"]
        return {"": name, "Arn": _arn("cloudwatch", f"alarm:{name}")}
    return {}


def resource_arn(resource_type: str, properties: Mapping[str, Any]) -> str | None:
    """The ARN IAM evaluates for the resource itself (for types without an Arn attribute too)."""
    if resource_type == "AWS::CodePipeline::Pipeline":
        return _arn("codepipeline", properties["Name"])
    if resource_type == "AWS::SNS::Topic":
        return _arn("sns", properties["TopicName"])
    if resource_type in ("AWS::Logs::LogGroup", "AWS::Logs::MetricFilter"):  # a filter: its log group
        return _arn("logs", f"log-group:{properties['LogGroupName']}")
    return _attributes(resource_type, properties).get("Arn")


def resolve_references(resources: Mapping[str, dict]) -> dict[str, dict]:
    """Replace ``<Logical>``/``<Logical.Attr>`` placeholders with what CloudFormation would return."""
    values: dict[str, str] = {}
    for logical_id, resource in resources.items():
        for attribute, value in _attributes(resource["Type"], resource.get("Properties", {})).items():
            values[f"{logical_id}.{attribute}" if attribute else logical_id] = value

    def replace(node: Any) -> Any:
        if isinstance(node, str):
            return _PLACEHOLDER.sub(lambda m: values.get(m.group(0)[1:-1], m.group(0)), node)
        if isinstance(node, list):
            return [replace(item) for item in node]
        if isinstance(node, dict):
            return {key: replace(value) for key, value in node.items()}
        return node

    return {logical_id: replace(resource) for logical_id, resource in resources.items()}
