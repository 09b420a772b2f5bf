"""IAM at run time: every AWS call each project role makes, evaluated against what the role is allowed.

Roles, calls and policies are described in ``security/runtime_iam``; the evaluator is
``security/iam_conditions.py``; the AWS-managed policies are vendored in ``security/managed_policies``
(SOURCE.md: source, commit, retrieval date). The calls our code makes were recorded by running it
(``tests/test_runtime_calls_recorded.py`` keeps ``tests/runtime_recorded_calls.json`` equal to what the
code does); the calls AWS services make with the roles are listed with the AWS document that describes
them. Runs in ``tox -e security`` (no boto3, moto or SageMaker SDK needed) and in the tests env.

The first tests pin the evaluator to the IAM User Guide; the last ones show that the gate fails when a
documented precondition is missing, and that the product passes with the documented preconditions.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from generators.products.s3_fs_ingestion import PRODUCT as INGESTION
from security.iam_conditions import Policy, Request, UnsupportedPolicy, evaluate, statement_applies
from security.launch_role import MANAGED_POLICY, MANAGED_POLICY_RELIANCE, requirements
from security.runtime_iam import operations
from security.runtime_iam.gate import Report, evaluate_request, simulate, summarize_denials
from security.runtime_iam.model import ApiCall, Env, IamRequest
from security.runtime_iam.recordings import Activity, Recordings
from security.runtime_iam.roles import MANAGED_POLICY_DIR, ROLES, TOLERATED_DENIALS, managed_policy
from security.runtime_iam.service_calls import Preconditions, code_pipeline_calls, preconditions_from_readme
from security.scenarios import ACCOUNT, scenarios

PROJECT_TEMPLATE = INGESTION.template_name

REPO = Path(__file__).resolve().parent.parent
RECORDED = REPO / "tests" / "runtime_recorded_calls.json"
README = (REPO / "README.md").read_text(encoding="utf-8")
SOURCE = (MANAGED_POLICY_DIR / "SOURCE.md").read_text(encoding="utf-8")
LAUNCH_MANAGED = "AmazonSageMakerAdmin-ServiceCatalogProductsServiceRolePolicy"
CODEPIPELINE_MANAGED = "AmazonSageMakerServiceCatalogProductsCodePipelineServiceRolePolicy"
CODEBUILD_MANAGED = "AmazonSageMakerServiceCatalogProductsCodeBuildServiceRolePolicy"


def doc(statements: list[dict]) -> Policy:
    return Policy("test", {"Version": "2012-10-17", "Statement": statements})


def allow(action: str, resource: str, condition: dict | None = None, effect: str = "Allow") -> dict:
    statement = {"Effect": effect, "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def allowed(policies: list[Policy], action: str, resource: str, **context: object) -> bool:
    return evaluate(Request(action, resource, context), policies).allowed


# --- the evaluator follows the IAM User Guide ------------------------------------------------------------


def test_actions_match_case_insensitively_resources_case_sensitively() -> None:
    """IAM User Guide, "IAM JSON policy elements: Action" (case-insensitive) and "Resource" (ARNs are
    case-sensitive); ``*`` matches any run of characters, ``?`` one character."""
    policy = [doc([allow("S3:getobj*", "arn:aws:s3:::bucket-?/in/*")])]
    assert allowed(policy, "s3:GetObject", "arn:aws:s3:::bucket-a/in/x/y.csv")
    assert not allowed(policy, "s3:GetObject", "arn:aws:s3:::Bucket-a/in/x.csv")
    assert not allowed(policy, "s3:GetObject", "arn:aws:s3:::bucket-ab/in/x.csv")
    assert not allowed(policy, "s3:PutObject", "arn:aws:s3:::bucket-a/in/x.csv")
    # In the Resource element a wildcard spans ':' and '/' (CodeBuild log streams live under the group's ARN).
    logs = [doc([allow("logs:PutLogEvents", "arn:aws:logs:*:*:log-group:/aws/codebuild/*")])]
    assert allowed(logs, "logs:PutLogEvents", "arn:aws:logs:eu-west-1:1:log-group:/aws/codebuild/p:log-stream:s")
    # No character classes: '[' is a literal, unlike fnmatch.
    assert not allowed([doc([allow("s3:GetObject", "arn:aws:s3:::b/[ab]")])], "s3:GetObject", "arn:aws:s3:::b/a")


def test_an_explicit_deny_wins_and_nothing_allowed_is_denied() -> None:
    """IAM User Guide, "Policy evaluation logic": explicit deny > allow > implicit deny."""
    arn = "arn:aws:s3:::b/k"
    assert not allowed([doc([allow("s3:*", "*"), allow("s3:GetObject", arn, effect="Deny")])], "s3:GetObject", arn)
    assert not allowed([doc([allow("s3:PutObject", arn)])], "s3:GetObject", arn)
    decision = evaluate(Request("s3:GetObject", arn), [doc([allow("s3:GetObject", arn, effect="Deny")])])
    assert decision.explicit_deny and "explicitly denied" in decision.explain()


def test_not_action_and_not_resource() -> None:
    """IAM User Guide, "NotAction" / "NotResource": the statement applies to everything not listed."""
    policy = [doc([{"Effect": "Allow", "Action": "sagemaker:*", "NotResource": ["arn:aws:sagemaker:*:*:domain/*"]},
                   {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}])]
    assert allowed(policy, "sagemaker:CreateProcessingJob", "arn:aws:sagemaker:eu-west-1:1:processing-job/j")
    assert not allowed(policy, "sagemaker:CreateDomain", "arn:aws:sagemaker:eu-west-1:1:domain/d")
    assert allowed(policy, "s3:ListBucket", "arn:aws:s3:::b")
    assert not allowed(policy, "iam:PassRole", "arn:aws:s3:::b")


def test_values_are_ored_keys_and_operators_anded() -> None:
    """IAM User Guide, "Condition element": several values of one key are ORed; several keys, and several
    operators, are ANDed."""
    condition = {"StringEquals": {"iam:PassedToService": ["a.amazonaws.com", "b.amazonaws.com"],
                                  "aws:ResourceTag/team": "ml"},
                 "StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x-*"}}
    policy = [doc([allow("iam:PassRole", "*", condition)])]
    ok = {"iam:PassedToService": "b.amazonaws.com", "aws:ResourceTag/team": "ml",
          "aws:PrincipalArn": "arn:aws:iam::1:role/x-1"}
    assert allowed(policy, "iam:PassRole", "r", **ok)
    assert not allowed(policy, "iam:PassRole", "r", **{**ok, "iam:PassedToService": "c.amazonaws.com"})
    assert not allowed(policy, "iam:PassRole", "r", **{**ok, "aws:ResourceTag/team": "data"})
    assert not allowed(policy, "iam:PassRole", "r", **{**ok, "aws:PrincipalArn": "arn:aws:iam::1:role/y"})
    # Condition key names are case-insensitive.
    assert allowed(policy, "iam:PassRole", "r", **{k.upper(): v for k, v in ok.items()})


def test_a_missing_key_fails_a_condition_except_negated_ifexists_and_null() -> None:
    """IAM User Guide, "Condition operators": a key missing from the request context makes the condition
    false; negated operators (StringNotEquals, ArnNotLike, ...) are true then; "...IfExists" is true when
    the key is missing; Null tests presence ("true": absent, "false": present)."""
    def holds(condition: dict, **context: object) -> bool:
        return allowed([doc([allow("s3:GetObject", "*", condition)])], "s3:GetObject", "x", **context)

    assert not holds({"StringEquals": {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}})
    assert holds({"StringEquals": {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}},
                 **{"s3:ExistingObjectTag/servicecatalog:provisioning": "true"})
    assert holds({"StringNotEquals": {"aws:RequestTag/env": "prod"}})
    assert not holds({"StringNotEquals": {"aws:RequestTag/env": ["prod", "test"]}}, **{"aws:RequestTag/env": "test"})
    assert holds({"ArnLikeIfExists": {"cloudformation:RoleArn": "arn:aws:iam::*:role/Ok*"}})
    assert not holds({"ArnLikeIfExists": {"cloudformation:RoleArn": "arn:aws:iam::*:role/Ok*"}},
                     **{"cloudformation:RoleArn": "arn:aws:iam::1:role/Other"})
    assert holds({"Null": {"aws:ResourceTag/sagemaker:project-name": "false"}},
                 **{"aws:ResourceTag/sagemaker:project-name": "p"})
    assert not holds({"Null": {"aws:ResourceTag/sagemaker:project-name": "false"}})
    assert holds({"Null": {"sagemaker:OwnerUserProfileArn": "true"}})


def test_set_operators_on_multivalued_keys() -> None:
    """IAM User Guide, "Set operators for multivalued context keys": ForAnyValue is true when one request
    value matches (false when the key is missing); ForAllValues when every value does (true when the key
    is missing or empty). A plain operator on a multivalued key is refused rather than guessed."""
    def holds(condition: dict, **context: object) -> bool:
        return allowed([doc([allow("lambda:TagResource", "*", condition)])], "lambda:TagResource", "x", **context)

    every = {"ForAllValues:StringLike": {"aws:TagKeys": ["sagemaker:*"]}}
    assert holds(every, **{"aws:TagKeys": ["sagemaker:project-name", "sagemaker:project-id"]})
    assert not holds(every, **{"aws:TagKeys": ["sagemaker:project-name", "owner"]})
    assert holds(every)
    some = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["sagemaker:project-name"]}}
    assert holds(some, **{"aws:TagKeys": ["owner", "sagemaker:project-name"]})
    assert not holds(some, **{"aws:TagKeys": ["owner"]})
    assert not holds(some)
    with pytest.raises(UnsupportedPolicy, match="multivalued"):
        holds({"StringEquals": {"aws:TagKeys": "owner"}}, **{"aws:TagKeys": ["owner"]})


def test_operators_the_policies_use() -> None:
    """IAM User Guide, "Condition operators": StringEqualsIgnoreCase, StringLike, ArnLike (each of the six
    ARN components matched separately), Bool, Numeric*; an operator the evaluator lacks is an error."""
    def holds(condition: dict, **context: object) -> bool:
        return allowed([doc([allow("codeconnections:UseConnection", "*", condition)])],
                       "codeconnections:UseConnection", "x", **context)

    tag = {"StringEqualsIgnoreCase": {"aws:ResourceTag/sagemaker": "true"}}
    assert holds(tag, **{"aws:ResourceTag/sagemaker": "TRUE"})
    assert not holds(tag, **{"aws:ResourceTag/sagemaker": "yes"})
    assert holds({"StringLike": {"aws:ResourceTag/sagemaker:launch-source": "*"}},
                 **{"aws:ResourceTag/sagemaker:launch-source": "studio"})
    arn_like = {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/sagemaker-*"}}
    assert holds(arn_like, **{"aws:SourceArn": "arn:aws:events:eu-west-1:1:rule/sagemaker-x"})
    # In ArnLike a '*' stays inside its component: it cannot swallow the region and account.
    assert not holds({"ArnLike": {"aws:SourceArn": "arn:aws:events:*:rule/*"}},
                     **{"aws:SourceArn": "arn:aws:events:eu-west-1:1:rule/x"})
    assert holds({"Bool": {"aws:SecureTransport": "false"}}, **{"aws:SecureTransport": "false"})
    assert holds({"Bool": {"aws:SecureTransport": False}}, **{"aws:SecureTransport": "false"})
    assert holds({"NumericLessThanEquals": {"s3:max-keys": "10"}}, **{"s3:max-keys": "7"})
    assert not holds({"NumericLessThanEquals": {"s3:max-keys": "10"}}, **{"s3:max-keys": "70"})
    with pytest.raises(UnsupportedPolicy, match="DateGreaterThan"):
        holds({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}, **{"aws:CurrentTime": "x"})


def test_policy_variables_come_from_the_request_context() -> None:
    """IAM User Guide, "IAM policy elements: Variables and tags": ``${key}`` is replaced by the request's
    value; a statement whose variable is missing does not match."""
    same_account = {"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}}
    policy = [doc([allow("s3express:CreateSession", "*", same_account),
                   allow("sagemaker:CreateSpace", "arn:aws:sagemaker:*:*:space/${sagemaker:DomainId}/*")])]
    mine, theirs = {"aws:ResourceAccount": "1"}, {"aws:ResourceAccount": "2"}
    assert allowed(policy, "s3express:CreateSession", "b", **mine, **{"aws:PrincipalAccount": "1"})
    assert not allowed(policy, "s3express:CreateSession", "b", **theirs, **{"aws:PrincipalAccount": "1"})
    space = "arn:aws:sagemaker:eu-west-1:1:space/d-1/s"
    assert allowed(policy, "sagemaker:CreateSpace", space, **{"sagemaker:DomainId": "d-1"})
    assert not allowed(policy, "sagemaker:CreateSpace", space)


def test_resource_policies_deny_insecure_transport_and_never_allow_a_role_through_a_service_principal() -> None:
    """IAM User Guide, "Policy evaluation logic" (same account): a resource policy's Deny applies to the
    principals it names ("*": everyone); an Allow for a service principal grants nothing to a role."""
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    bucket = Policy("bucket", {"Statement": [
        allow("s3:*", "arn:aws:s3:::b/*", {"Bool": {"aws:SecureTransport": "false"}}, effect="Deny")
        | {"Principal": "*"},
        allow("s3:PutObject", "arn:aws:s3:::b/*") | {"Principal": {"Service": "cloudtrail.amazonaws.com"}},
    ]})
    identity = [doc([allow("s3:GetObject", "arn:aws:s3:::b/*")])]
    assert evaluate(Request("s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "true"}), identity, [bucket],
                    principal_arn=role).allowed
    assert not evaluate(Request("s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "false"}), identity,
                        [bucket], principal_arn=role).allowed
    assert not evaluate(Request("s3:PutObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "true"}), [], [bucket],
                        principal_arn=role).allowed


# --- the vendored AWS-managed policies -------------------------------------------------------------------


def _vendored() -> list[Path]:
    return sorted(MANAGED_POLICY_DIR.glob("*.json"))


def test_every_vendored_policy_is_listed_with_its_source_and_digest() -> None:
    assert "2026-12-02" in SOURCE and "zoph-io/MAMIP" in SOURCE
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r"^\| (\S+) \| (policies/\S+) \| ([0-9a-f]{40}) \| (v\d+) \| [\d-]+ \| ([0-9a-f]{64}) \|$", SOURCE, re.M)}
    assert {p.stem for p in _vendored()} == set(rows)
    for path in _vendored():
        path_in_repo, commit, version, digest = rows[path.stem]
        assert path_in_repo == f"policies/{path.stem}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path.name} changed: update SOURCE.md"
    for role in ROLES.values():
        for name in role.managed + role.informational:
            assert name in rows, f"{role.key}: vendor {name} (see SOURCE.md)"


@pytest.mark.parametrize("path", _vendored(), ids=lambda p: p.stem)
def test_the_evaluator_supports_every_element_of_the_vendored_policies(path: Path) -> None:
    """Every statement of every vendored document is evaluated once (no UnsupportedPolicy), and each is a
    plain policy document with the literal arn:aws: partition AWS publishes."""
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["Version"] == "2012-10-17" and document["Statement"]
    probe = Request("sagemaker:DescribeFeatureGroup", "arn:aws:sagemaker:eu-west-1:1:feature-group/x",
                    {"aws:TagKeys": ["sagemaker:project-name"]})
    for statement in document["Statement"]:
        statement_applies(statement, probe)
    evaluate(probe, [Policy(path.stem, document)])


def test_managed_policy_facts_pass_connection_and_use_connection() -> None:
    """What the AWS-managed policies allow for CodeConnections (README "Before you deploy", item 5): the launch policy
    passes connections of either ARN prefix, with either action, only to CodePipeline; the CodePipeline and
    CodeBuild policies use a connection only when it is tagged sagemaker=true (any letter case)."""
    launch = [managed_policy(LAUNCH_MANAGED)]
    for prefix in ("codeconnections", "codestar-connections"):
        connection = f"arn:aws:{prefix}:eu-west-1:{ACCOUNT}:connection/c"
        for action_prefix in ("codeconnections", "codestar-connections"):
            action = f"{action_prefix}:PassConnection"
            key = f"{action_prefix}:PassedToService"
            assert allowed(launch, action, connection, **{key: "codepipeline.amazonaws.com"}), (action, connection)
            assert not allowed(launch, action, connection, **{key: "codebuild.amazonaws.com"})
        for name in (CODEPIPELINE_MANAGED, CODEBUILD_MANAGED):
            for action_prefix in ("codeconnections", "codestar-connections"):
                use = f"{action_prefix}:UseConnection"
                assert allowed([managed_policy(name)], use, connection, **{"aws:ResourceTag/sagemaker": "True"})
                assert not allowed([managed_policy(name)], use, connection)
                assert not allowed([managed_policy(name)], use, connection, **{"aws:ResourceTag/sagemaker": "yes"})


def test_managed_policy_facts_launch_role_s3() -> None:
    """The launch policy reads objects tagged servicecatalog:provisioning=true anywhere (and any object of a
    sagemaker-* bucket); it manages sagemaker-* buckets but grants no s3:TagResource (the tagging API the
    AWS::S3::Bucket handler lists), so the product's LaunchRolePolicy must."""
    launch = [managed_policy(LAUNCH_MANAGED)]
    tag = {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}
    assert allowed(launch, "s3:GetObject", "arn:aws:s3:::releases-bucket/p/t.yaml", **tag)
    assert not allowed(launch, "s3:GetObject", "arn:aws:s3:::releases-bucket/p/t.yaml")
    assert allowed(launch, "s3:GetObject", "arn:aws:s3:::sagemaker-releases/p/t.yaml")
    bucket = f"arn:aws:s3:::sagemaker-p-abcdefghijkl-artifacts-{ACCOUNT}"
    assert allowed(launch, "s3:PutBucketTagging", bucket)
    assert not allowed(launch, "s3:TagResource", bucket)


def test_what_the_launch_role_relies_on_the_managed_policy_for_is_granted_by_it(templates) -> None:
    """security/launch_role.py MANAGED_POLICY_RELIANCE (README "What the launch role relies on") holds for
    the vendored document; and the CloudFormation handler calls are listed with how many the managed policy
    alone would allow (the product's LaunchRolePolicy grants them all itself: see the launch role rows)."""
    assert MANAGED_POLICY == LAUNCH_MANAGED
    assert "SC-*" in " ".join(MANAGED_POLICY_RELIANCE)
    launch = [managed_policy(LAUNCH_MANAGED)]
    stack = f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/SC-{ACCOUNT}-pp-abcdefghijklm/1"
    for action in ("CreateStack", "UpdateStack", "DeleteStack", "DescribeStacks", "DescribeStackEvents"):
        assert allowed(launch, f"cloudformation:{action}", stack)
    project = scenarios(PROJECT_TEMPLATE, templates[PROJECT_TEMPLATE])[0]
    needs = list(requirements(project.resources))
    by_managed = [n for n in needs if allowed(launch, n.action, n.arn, **(
        {f"{n.action.split(':')[0]}:PassedToService": n.passed_to} if n.passed_to else {}))]
    print(f"\nlaunch role: {len(by_managed)} of {len(needs)} CloudFormation handler calls of {project.label} are "
          "also granted by the AWS-managed policy")
    assert 0 < len(by_managed) < len(needs)


# --- the gate over the built product ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recordings() -> Recordings:
    return Recordings.load(RECORDED)


@pytest.fixture(scope="module")
def preconditions() -> Preconditions:
    return preconditions_from_readme(README)


@pytest.fixture(scope="module")
def report(templates, recordings: Recordings, preconditions: Preconditions) -> Report:
    found = simulate(templates, recordings, preconditions)
    print(f"\nrun-time IAM calls over {found.scenario_pairs} scenario pairs (project x sm-policies):\n{found.table()}")
    return found


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_call_of_the_role_is_allowed(report: Report, role: str) -> None:
    """The role's recorded and listed calls, in every scenario pair, against its policies: ours (from the built
    templates), the AWS-managed ones SageMaker attaches, the README's documented grants and the resource's
    own bucket or queue policy. A denial names the call, the activity and why."""
    denied = report.denied_for(role)
    assert not denied, f"{role}: {len(denied)} denied evaluation(s):\n" + "\n".join(summarize_denials(denied))


def test_every_role_acts_and_every_recorded_activity_is_evaluated(report: Report, recordings: Recordings) -> None:
    rows = {row.role: row for row in report.rows}
    assert set(rows) == set(ROLES)
    for role, row in rows.items():
        assert row.evaluations > 0 and row.recorded + row.listed > 0, role
    assert {a.role for a in recordings.activities} <= set(ROLES)
    assert report.scenario_pairs >= 8
    assert sum(row.recorded for row in report.rows) >= 15


def test_tolerated_denials_have_a_reason_and_a_test() -> None:
    for (role, action), reason in TOLERATED_DENIALS.items():
        assert role in ROLES and ":" in action
        assert len(reason.split()) >= 15 and "tests/test_runtime_calls_recorded.py" in reason


def test_an_operation_the_table_does_not_know_fails_the_gate(templates) -> None:
    unknown = Recordings((Activity("new code", "start-ingestion", (ApiCall("s3", "DeleteObjects", {"Bucket": "b"}),)),))
    with pytest.raises(operations.UnknownOperation, match="s3:DeleteObjects"):
        simulate(templates, unknown)


def test_the_readme_grant_is_what_the_gate_assumes(preconditions: Preconditions) -> None:
    assert "s3:GetObject" in preconditions.execution_role_data_actions


# --- the gate fails when a documented precondition is missing -----------------------------------------------


def _project(templates, **conditions: bool):
    for scenario in scenarios(PROJECT_TEMPLATE, templates[PROJECT_TEMPLATE]):
        if all(scenario.conditions.get(k) == v for k, v in conditions.items()):
            return scenario
    raise AssertionError(conditions)


def _policies(templates):
    return scenarios("sm-policies", templates["sm-policies"])[0]


def _env() -> Env:
    return Env(role_arns={role.name: f"arn:aws:iam::{ACCOUNT}:role/service-role/{role.name}"
                          for role in ROLES.values() if role.name})


def _decide(templates, request: IamRequest, project, pre: Preconditions | None = None) -> tuple[bool, str]:
    return evaluate_request(request, project, _policies(templates), pre or Preconditions(), _env())


def _recorded(recordings: Recordings, operation: str, **params: str) -> ApiCall:
    for _, call in recordings.calls:
        if call.operation == operation and all(call.params.get(k) == v for k, v in params.items()):
            return call
    raise AssertionError(f"no recorded {operation} {params}")


def test_a_connection_without_the_sagemaker_tag_is_denied_to_the_codepipeline_role(templates) -> None:
    """AmazonSageMakerServiceCatalogProductsCodePipelineServiceRolePolicy allows UseConnection only with
    aws:ResourceTag/sagemaker=true (README: tag the connection)."""
    project = _project(templates, UseCodeCommit=False)
    roles_by_arn = {f"arn:aws:iam::{ACCOUNT}:role/service-role/{ROLES['codepipeline'].name}": "codepipeline"}
    untagged = [r for r in code_pipeline_calls(project, _env(), roles_by_arn, Preconditions(connection_tags={}))
                if r.action.endswith(":UseConnection")]
    tagged = [r for r in code_pipeline_calls(project, _env(), roles_by_arn, Preconditions())
              if r.action.endswith(":UseConnection")]
    assert untagged and tagged
    for request in untagged:
        ok, why = _decide(templates, request, project)
        assert not ok and "aws:ResourceTag/sagemaker" in why, why
    for request in tagged:
        assert _decide(templates, request, project)[0]


def test_a_flow_outside_sagemaker_buckets_is_denied_to_the_codebuild_role(templates, recordings: Recordings) -> None:
    """The build reads the flow with the CodeBuild role, whose managed policy reads only sagemaker-* and
    aws-glue-* buckets: a flow in the data bucket (s3://my-data-bucket/...) is denied, the documented
    location (a sagemaker-* bucket) is allowed."""
    project = _project(templates)
    flow = "s3://my-data-bucket/flows/abalone.flow"
    read = _recorded(recordings, "GetObject", Bucket=Preconditions().flow_url.removeprefix("s3://").split("/", 1)[0])
    bucket, key = flow.removeprefix("s3://").split("/", 1)
    elsewhere = ApiCall("s3", "GetObject", {**read.params, "Bucket": bucket, "Key": key})
    [(action, resource, context)] = operations.authorizations(elsewhere, _env())
    ok, why = _decide(templates, IamRequest("codebuild", action, resource, context), project)
    assert not ok, why
    [(action, resource, context)] = operations.authorizations(read, _env())
    assert _decide(templates, IamRequest("codebuild", action, resource, context), project)[0]


def test_another_projects_pipeline_is_denied_to_the_start_ingestion_role(templates, recordings: Recordings) -> None:
    project = _project(templates)
    call = _recorded(recordings, "StartPipelineExecution")
    other = ApiCall(call.service, call.operation,
                    {**call.params, "PipelineName": "sagemaker-p-otherproject0-fs-ingestion"})
    for api_call, expected in ((call, True), (other, False)):
        [(action, resource, context)] = operations.authorizations(api_call, _env())
        ok, why = _decide(templates, IamRequest("start-ingestion", action, resource, context), project)
        assert ok is expected, why


def test_another_bucket_is_denied_to_the_data_bucket_events_role(templates, recordings: Recordings) -> None:
    project = _project(templates)
    call = _recorded(recordings, "PutBucketNotificationConfiguration")
    other = ApiCall(call.service, call.operation, {"Bucket": "someone-elses-bucket"})
    for api_call, expected in ((call, True), (other, False)):
        [(action, resource, context)] = operations.authorizations(api_call, _env())
        assert _decide(templates, IamRequest("data-bucket-events", action, resource, context), project)[0] is expected


def test_the_execution_role_without_the_readme_grant_cannot_read_the_upload(templates) -> None:
    """Without the grant the README asks for, the processing job cannot download the uploaded object."""
    project = _project(templates)
    upload = f"arn:aws:s3:::{project.parameters['DataBucketName']}/{project.parameters['DataPrefix']}a.csv"
    request = IamRequest("execution", "s3:GetObject", upload)
    assert _decide(templates, request, project)[0]
    assert not _decide(templates, request, project, Preconditions(execution_role_data_actions=()))[0]


def test_an_s3_prefix_input_needs_list_bucket_on_the_watched_prefix(templates) -> None:
    """SageMaker downloads an S3Prefix processing input by listing the prefix (CreateProcessingJob execution
    role permissions: s3:ListBucket on the input bucket): s3:GetObject alone does not let the job list the
    upload. The grant with s3:ListBucket, limited to the watched prefix by s3:prefix, does."""
    project = _project(templates)
    bucket, prefix = project.parameters["DataBucketName"], project.parameters["DataPrefix"]
    listing = IamRequest("execution", "s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": f"{prefix}a.csv"})
    assert not _decide(templates, listing, project, Preconditions(execution_role_data_actions=("s3:GetObject",)))[0]
    with_list = Preconditions(execution_role_data_actions=("s3:GetObject", "s3:ListBucket"))
    assert _decide(templates, listing, project, with_list)[0]
    elsewhere = IamRequest("execution", "s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": "private/"})
    assert not _decide(templates, elsewhere, project, with_list)[0]
