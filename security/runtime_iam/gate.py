"""Evaluate every run-time call of every role, in every condition scenario, against the roles' policies.

``simulate(templates, recordings)`` pairs each scenario of the project template with each scenario of
``sm-policies``, turns the recorded calls (through the operation table) and the listed service calls into
IAM requests, and evaluates each with :func:`security.iam_conditions.evaluate` against the role's policies
from the templates, its AWS-managed policies, the README's documented grants (:class:`Preconditions`)
and the resource's own bucket or queue policy. The report has one verdict per (request, scenario pair) and
a per-role table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generators.products.s3_fs_ingestion import PRODUCT as INGESTION
from generators.settings import POLICIES_TEMPLATE, PORTFOLIO_TEMPLATE

from ..iam_conditions import Policy, Request, evaluate
from ..scenarios import Scenario, scenarios
from . import operations
from .model import LISTED, RECORDED, Env, IamRequest, Verdict
from .recordings import Recordings
from .roles import ROLES, TOLERATED_DENIALS, managed_policy, resource_policies, role_arn, template_policies
from .service_calls import PUBLISHED_OBJECT_TAGS, Preconditions, listed_calls

PROJECT_TEMPLATE = INGESTION.template_name


@dataclass(frozen=True)
class RoleRow:
    role: str
    recorded: int  # distinct calls recorded from running code
    listed: int  # distinct calls listed from AWS documents
    evaluations: int  # calls x scenario pairs
    allowed: int
    denied: int
    tolerated: int
    informational: str  # e.g. "12/12 allowed with AmazonSageMakerFullAccess (undocumented)"


@dataclass(frozen=True)
class Report:
    verdicts: tuple[Verdict, ...]
    rows: tuple[RoleRow, ...]
    scenario_pairs: int

    @property
    def denied(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.allowed and not v.tolerated]

    def denied_for(self, role: str) -> list[Verdict]:
        return [v for v in self.denied if v.request.role == role]

    def table(self) -> str:
        header = ("role", "recorded", "listed", "evaluations", "allowed", "denied", "tolerated", "informational")
        lines = [" | ".join(header), " | ".join("---" for _ in header)]
        for row in self.rows:
            lines.append(" | ".join(str(v) for v in (
                row.role, row.recorded, row.listed, row.evaluations, row.allowed, row.denied, row.tolerated,
                row.informational)))
        return "\n".join(lines)


def _grant(sid: str, actions: Sequence[str], bucket: str, key_pattern: str) -> list[dict[str, Any]]:
    """Object actions on ``bucket/key_pattern``; s3:ListBucket on the bucket for that prefix only."""
    statements: list[dict[str, Any]] = []
    object_actions = [a for a in actions if a != "s3:ListBucket"]
    if object_actions:
        statements.append({"Sid": sid, "Effect": "Allow", "Action": object_actions,
                           "Resource": f"arn:aws:s3:::{bucket}/{key_pattern}"})
    if "s3:ListBucket" in actions:
        statements.append({"Sid": f"{sid}List", "Effect": "Allow", "Action": "s3:ListBucket",
                           "Resource": f"arn:aws:s3:::{bucket}",
                           "Condition": {"StringLike": {"s3:prefix": key_pattern}}})
    return statements


def admin_grants(role: str, project: Scenario, pre: Preconditions) -> list[Policy]:
    """The grants the README tells the platform admin to add to the execution role: read access to the
    watched prefix of the data bucket and, in DataWranglerFlow mode, to the flow file."""
    if role != "execution":
        return []
    parameters = project.parameters
    statements = _grant("ReadmeDataPrefix", pre.execution_role_data_actions, parameters["DataBucketName"],
                        f"{parameters['DataPrefix']}*")
    flow_bucket, _, flow_key = pre.flow_url.removeprefix("s3://").partition("/")
    statements += _grant("ReadmeFlow", pre.execution_role_flow_actions, flow_bucket, flow_key)
    if not statements:
        return []
    return [Policy("README: execution role grants", {"Version": "2012-10-17", "Statement": statements})]


def _environment(project: Scenario, artifacts: Sequence[str]) -> tuple[Env, dict[str, str]]:
    arns = {key: role_arn(role, project) for key, role in ROLES.items()}
    present = {key: arn for key, arn in arns.items() if arn}
    names = {arn.rsplit("/", 1)[-1]: arn for arn in present.values()}
    env = Env(role_arns=names, object_tags={arn: dict(PUBLISHED_OBJECT_TAGS) for arn in artifacts})
    return env, {arn: key for key, arn in present.items()}


def _published_objects(project: Scenario) -> list[str]:
    """Objects the release command published (and tagged): template, Lambda zips, seed-code zip."""
    found = []
    for resource in project.resources.values():
        code = resource.get("Properties", {}).get("Code", {})
        if "S3Bucket" in code:
            found.append(f"arn:aws:s3:::{code['S3Bucket']}/{code['S3Key']}")
        if "S3" in code:
            found.append(f"arn:aws:s3:::{code['S3']['Bucket']}/{code['S3']['Key']}")
    return found


def recorded_requests(recordings: Recordings, env: Env, present_roles: set[str]) -> list[IamRequest]:
    found = []
    for activity, call in recordings.calls:
        if activity.role not in present_roles:
            continue
        for action, resource, context in operations.authorizations(call, env):
            found.append(IamRequest(activity.role, action, resource, context, RECORDED, activity.name,
                                    f"{call.service}:{call.operation} ({operations.REFERENCE})"))
    return found


def _defaults(role_arn_value: str, env: Env) -> dict[str, Any]:
    return {
        "aws:SecureTransport": "true",
        "aws:PrincipalArn": role_arn_value,
        "aws:PrincipalAccount": env.account,
        "aws:RequestedRegion": env.region,
        "aws:ResourceAccount": env.account,
    }


def evaluate_request(request: IamRequest, project: Scenario, policies: Scenario, pre: Preconditions,
                     env: Env, *, with_informational: bool = False) -> tuple[bool, str]:
    role = ROLES[request.role]
    arn = role_arn(role, project) or ""
    identity = [*template_policies(role, project, policies), *(managed_policy(m) for m in role.managed),
                *admin_grants(request.role, project, pre)]
    if with_informational:
        identity += [managed_policy(m) for m in role.informational]
    context = {**_defaults(arn, env), **request.context}
    decision = evaluate(Request(request.action, request.resource, context), identity,
                        resource_policies(request.resource, project), principal_arn=arn)
    return decision.allowed, decision.explain()


def simulate(templates: Mapping[str, Mapping[str, Any]], recordings: Recordings,
             pre: Preconditions | None = None) -> Report:
    pre = pre or Preconditions()
    project_scenarios = scenarios(PROJECT_TEMPLATE, templates[PROJECT_TEMPLATE])
    policy_scenarios = scenarios(POLICIES_TEMPLATE, templates[POLICIES_TEMPLATE])
    portfolio = next(iter(scenarios(PORTFOLIO_TEMPLATE, templates[PORTFOLIO_TEMPLATE])), None)
    verdicts: list[Verdict] = []
    distinct: dict[str, dict[str, set]] = defaultdict(lambda: {RECORDED: set(), LISTED: set()})
    informational: dict[str, list[bool]] = defaultdict(list)
    for project in project_scenarios:
        env, roles_by_arn = _environment(project, _published_objects(project))
        requests = recorded_requests(recordings, env, set(roles_by_arn.values()))
        requests += listed_calls(project, portfolio, recordings, env, roles_by_arn, pre)
        unique: dict[tuple, IamRequest] = {}
        for request in requests:
            distinct[request.role][request.origin].add(request.key)
            unique.setdefault(request.key, request)  # a call both recorded and listed is evaluated once
        for policies in policy_scenarios:
            label = f"{project.label}+{policies.label}"
            for request in unique.values():
                allowed, why = evaluate_request(request, project, policies, pre, env)
                tolerated = "" if allowed else TOLERATED_DENIALS.get((request.role, request.action), "")
                verdicts.append(Verdict(request, label, allowed, why, tolerated))
                if not allowed and ROLES[request.role].informational:
                    informational[request.role].append(
                        evaluate_request(request, project, policies, pre, env, with_informational=True)[0])
    rows = []
    for key, role in ROLES.items():
        mine = [v for v in verdicts if v.request.role == key]
        extra = ""
        if role.informational:
            results = informational[key]
            extra = (f"{sum(results)}/{len(results)} denials allowed with {', '.join(role.informational)} "
                     "(undocumented attachment)")
        rows.append(RoleRow(
            key, len(distinct[key][RECORDED]), len(distinct[key][LISTED]), len(mine),
            sum(v.allowed for v in mine), sum(not v.allowed and not v.tolerated for v in mine),
            sum(bool(v.tolerated) for v in mine), extra,
        ))
    return Report(tuple(verdicts), tuple(rows), len(project_scenarios) * len(policy_scenarios))


def summarize_denials(verdicts: Sequence[Verdict]) -> list[str]:
    """One line per distinct denied request: role, action, resource, context, activity, why, how often."""
    grouped: dict[tuple, list[Verdict]] = defaultdict(list)
    for verdict in verdicts:
        grouped[verdict.request.key + (verdict.explanation,)].append(verdict)
    lines = []
    for group in grouped.values():
        r = group[0].request
        context = ", ".join(f"{k}={v}" for k, v in sorted(r.context.items()))
        lines.append(f"{r.role}: {r.action} on {r.resource}" + (f" [{context}]" if context else "")
                     + f" ({r.origin}: {r.activity}) -> {group[0].explanation}; in {len(group)} scenario pair(s)")
    return sorted(lines)
