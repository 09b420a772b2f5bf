"""The AWS Control Tower proactive-controls gate (security/guard_gate.py): its logic, and the real cfn-guard.

Accounts under AWS Control Tower can turn proactive controls on as CloudFormation hooks, which refuse a
non-compliant resource at deploy time ("Proactive controls", AWS Control Tower User Guide:
https://docs.aws.amazon.com/controltower/latest/controlreference/proactive-controls.html). The gate runs the
same rule files (shipped with cfn-guard in the PyPI package cdklabs-cdk-validator-cfnguard) on the built
templates. The unit tests below need no binary; the others run the pinned binary, which ``tox -e security``
unpacks into ``$CFN_GUARD_HOME`` before pytest (absent there: the tests fail) and which the fixture fetches
itself (``pip download``, PyPI) in any other environment.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path

import pytest
import yaml
from troposphere.s3 import Bucket

from generators.build import build, template_filename, template_names
from generators.common import Suppression, suppress
from generators.settings import Settings
from security import guard_gate
from security.guard_gate import (
    Finding,
    GuardError,
    GuardRule,
    Kit,
    TemplateResult,
    evaluate,
    failing_resources,
    parse_report,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
REASON = "The control cannot apply to this resource for a reason written out in full right here."

# Control Tower S3 controls: https://docs.aws.amazon.com/controltower/latest/controlreference/s3-rules.html
PUBLIC_ACCESS = "s3_bucket_level_public_access_prohibited_check"  # CT.S3.PR.1: block public access settings
KMS_ENCRYPTION = "s3_bucket_default_encryption_kms_check"  # CT.S3.PR.10: SSE with an AWS KMS key
LOGGING = "s3_bucket_logging_enabled_check"  # CT.S3.PR.2: server access logging
SSL_ONLY = "s3_bucket_policy_ssl_requests_only_check"  # CT.S3.PR.8: bucket policy denies non-TLS requests
# Control Tower SQS controls: https://docs.aws.amazon.com/controltower/latest/controlreference/sqs-rules.html
SQS_DLQ = "sqs_dlq_check"  # CT.SQS.PR.1: a queue has a dead-letter queue (or is one)

# cfn-guard 3.1.1 ``validate --rules ct-s3-pr-1.guard --rules ct-sqs-pr-1.guard --rules ct-s3-pr-8.guard
# --output-format json --show-summary none --structured`` on this template (captured as printed, only the
# data file's name shortened). "Good" blocks all public access, "Bad" sets BlockPublicPolicy false, "Worse"
# has no properties and the queue has no redrive policy; no bucket policy exists (CT.S3.PR.8 skips).
SAMPLE_TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Good": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                }
            },
        },
        "Bad": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": False,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                }
            },
        },
        "Worse": {"Type": "AWS::S3::Bucket"},
        "Queue": {"Type": "AWS::SQS::Queue"},
    },
}
SAMPLE_REPORT = [
    {
        "name": "two-buckets.yaml",
        "metadata": {},
        "status": "FAIL",
        "not_compliant": [
            {
                "Rule": {
                    "name": "s3_bucket_level_public_access_prohibited_check",
                    "metadata": {},
                    "messages": {
                        "custom_message": None,
                        "error_message": None,
                    },
                    "checks": [
                        {
                            "Rule": {
                                "name": "check",
                                "metadata": {},
                                "messages": {
                                    "custom_message": (
                                        "\n        [CT.S3.PR.1]: Require an Amazon S3 bucket to have "
                                        "block public access settings configured\n        [FIX]: The "
                                        "parameters 'BlockPublicAcls', 'BlockPublicPolicy', "
                                        "'IgnorePublicAcls', 'RestrictPublicBuckets' must be set to "
                                        "true under the bucket-level "
                                        "'PublicAccessBlockConfiguration'.\n        "
                                    ),
                                    "error_message": None,
                                },
                                "checks": [
                                    {
                                        "Clause": {
                                            "Binary": {
                                                "context": " BlockPublicPolicy EQUALS  true",
                                                "messages": {
                                                    "custom_message": "",
                                                    "error_message": (
                                                        "Check was not compliant as property value "
                                                        "[Path=/Resources/Bad/Properties/PublicAccessBlockConfiguration/"
                                                        "BlockPublicPolicy[L:9,C:81] "
                                                        "Value=false] not equal to value "
                                                        "[Path=[L:0,C:0] Value=true]."
                                                    ),
                                                },
                                                "check": {
                                                    "Resolved": {
                                                        "from": {
                                                            "path": (
                                                                "/Resources/Bad/Properties/PublicAccessBlockConfiguration/BlockPublicPolicy"
                                                            ),
                                                            "value": False,
                                                        },
                                                        "to": {
                                                            "path": "",
                                                            "value": True,
                                                        },
                                                        "comparison": [
                                                            "Eq",
                                                            False,
                                                        ],
                                                    },
                                                },
                                            },
                                        },
                                    },
                                    {
                                        "Block": {
                                            "context": (
                                                "GuardBlockAccessClause#Location[file:ct-s3-pr-1.guard, "
                                                "line:87, column:5]"
                                            ),
                                            "messages": {
                                                "custom_message": "",
                                                "error_message": (
                                                    "Check was not compliant as property [Properties] "
                                                    "is missing. Value traversed to "
                                                    "[Path=/Resources/Worse[L:11,C:4] "
                                                    'Value={"Type":"AWS::S3::Bucket"}]'
                                                ),
                                            },
                                            "unresolved": {
                                                "traversed_to": {
                                                    "path": "/Resources/Worse",
                                                    "value": {
                                                        "Type": "AWS::S3::Bucket",
                                                    },
                                                },
                                                "remaining_query": "Properties",
                                                "reason": (
                                                    "Could not find key Properties inside struct at "
                                                    "path /Resources/Worse[L:11,C:4]"
                                                ),
                                            },
                                        },
                                    },
                                ],
                            },
                        },
                    ],
                },
            },
            {
                "Rule": {
                    "name": "sqs_dlq_check",
                    "metadata": {},
                    "messages": {
                        "custom_message": None,
                        "error_message": None,
                    },
                    "checks": [
                        {
                            "Rule": {
                                "name": "check",
                                "metadata": {},
                                "messages": {
                                    "custom_message": (
                                        "\n        [CT.SQS.PR.1]: Require any Amazon SQS queue to have "
                                        "a dead-letter queue configured\n        [FIX]: Create a "
                                        "'RedrivePolicy' with a 'deadLetterTargetArn' value that's set "
                                        "to the ARN of an Amazon SQS dead-letter queue. For Amazon SQS "
                                        "dead-letter queues, instead provide a redrive configuration "
                                        "in the 'RedriveAllowPolicy' property.\n        "
                                    ),
                                    "error_message": None,
                                },
                                "checks": [
                                    {
                                        "Block": {
                                            "context": (
                                                "GuardBlockAccessClause#Location[file:ct-sqs-pr-1.guard, "
                                                "line:93, column:5]"
                                            ),
                                            "messages": {
                                                "custom_message": "",
                                                "error_message": (
                                                    "Check was not compliant as property [Properties] "
                                                    "is missing. Value traversed to "
                                                    "[Path=/Resources/Queue[L:13,C:4] "
                                                    'Value={"Type":"AWS::SQS::Queue"}]'
                                                ),
                                            },
                                            "unresolved": {
                                                "traversed_to": {
                                                    "path": "/Resources/Queue",
                                                    "value": {
                                                        "Type": "AWS::SQS::Queue",
                                                    },
                                                },
                                                "remaining_query": "Properties",
                                                "reason": (
                                                    "Could not find key Properties inside struct at "
                                                    "path /Resources/Queue[L:13,C:4]"
                                                ),
                                            },
                                        },
                                    },
                                ],
                            },
                        },
                    ],
                },
            },
        ],
        "not_applicable": [
            "s3_bucket_level_public_access_prohibited_check",
            "s3_bucket_policy_ssl_requests_only_check",
            "sqs_dlq_check",
        ],
        "compliant": [],
    },
]


def _rule(name: str, control_id: str, *types: str) -> GuardRule:
    return GuardRule(name, control_id, "title", "fix", frozenset(types), Path(f"{name}.guard"))


RULES = {
    rule.name: rule
    for rule in (
        _rule(PUBLIC_ACCESS, "CT.S3.PR.1", "AWS::S3::Bucket"),
        _rule(LOGGING, "CT.S3.PR.2", "AWS::S3::Bucket"),
        _rule(SSL_ONLY, "CT.S3.PR.8", "AWS::S3::BucketPolicy"),
        _rule(SQS_DLQ, "CT.SQS.PR.1", "AWS::SQS::Queue"),
    )
}


def _bucket(suppressed: dict[str, str | None] | None = None) -> dict:
    resource: dict = {"Type": "AWS::S3::Bucket", "Properties": {}}
    if suppressed:
        reasons = {rule: reason for rule, reason in suppressed.items() if reason is not None}
        resource["Metadata"] = {"guard": {"SuppressedRules": sorted(suppressed)}, "SuppressionReasons": reasons}
    return resource


def _evaluate(failed: dict[str, tuple[str, ...]], resources: dict, compliant: frozenset = frozenset()):
    result = TemplateResult("t.yaml", failed, compliant, frozenset())
    selected = [RULES[PUBLIC_ACCESS], RULES[LOGGING], RULES[SQS_DLQ]]
    return evaluate([result], {"t.yaml": {"Resources": resources}}, RULES, selected)


# ---------------------------------------------------------------------------------------------------------
# cfn-guard's structured output


def test_the_report_names_each_failed_rule_with_exactly_its_non_compliant_resources() -> None:
    (result,) = parse_report(SAMPLE_REPORT)
    assert result.path == "two-buckets.yaml"
    # CT.S3.PR.1 fails on a bucket without all four block-public-access settings true, not on "Good".
    assert result.failed == {PUBLIC_ACCESS: ("Bad", "Worse"), SQS_DLQ: ("Queue",)}
    # every Control Tower file also holds a hook rule of the same name, reported not applicable on a
    # template: a failed rule must not be counted as skipped as well
    assert result.not_applicable == {SSL_ONLY}
    assert result.compliant == frozenset()


def test_a_rule_that_passed_is_compliant_not_skipped() -> None:
    report = [{"name": "t.yaml", "not_compliant": [], "compliant": [SQS_DLQ], "not_applicable": [SQS_DLQ, LOGGING]}]
    (result,) = parse_report(report)
    assert (result.failed, result.compliant, result.not_applicable) == ({}, {SQS_DLQ}, {LOGGING})


def test_resources_come_from_check_paths_never_from_template_values() -> None:
    # a template value may hold anything, e.g. a buildspec with "path" keys: only the traversed paths count
    failure = {
        "name": PUBLIC_ACCESS,
        "checks": [
            {
                "Block": {
                    "unresolved": {
                        "traversed_to": {
                            "path": "/Resources/Real",
                            "value": {"Other": {"path": "/Resources/NotAResource", "value": 1}},
                        }
                    }
                }
            }
        ],
    }
    assert failing_resources(failure) == ("Real",)


def test_a_failure_outside_resources_is_reported_on_the_template_itself() -> None:
    failure = {
        "name": "x",
        "checks": [{"Clause": {"Unary": {"check": {"Resolved": {"value": {"path": "", "value": 1}}}}}}],
    }
    assert failing_resources(failure) == ("",)


def test_an_unexpected_report_shape_is_an_error_not_a_pass() -> None:
    with pytest.raises(GuardError, match="unexpected not_compliant entry"):
        parse_report([{"name": "t.yaml", "not_compliant": [{"Clause": {}}], "compliant": [], "not_applicable": []}])


# ---------------------------------------------------------------------------------------------------------
# The verdict: failures, suppressions with reasons, stale suppressions


def test_an_unsuppressed_failure_fails_the_gate_with_its_control_and_fix() -> None:
    outcome = _evaluate({PUBLIC_ACCESS: ("Data",)}, {"Data": _bucket()})
    assert outcome.problems == [f"FAILED CT.S3.PR.1 {PUBLIC_ACCESS} on Data in t.yaml -- fix"]
    assert outcome.status[PUBLIC_ACCESS] == "failed"
    assert outcome.findings == [Finding("t.yaml", "Data", PUBLIC_ACCESS, suppressed=False)]


def test_a_suppression_with_a_reason_accepts_the_failure_on_that_resource_only() -> None:
    resources = {"Data": _bucket({PUBLIC_ACCESS.upper(): REASON}), "Logs": _bucket()}
    outcome = _evaluate({PUBLIC_ACCESS: ("Data", "Logs")}, resources)
    assert outcome.problems == [f"FAILED CT.S3.PR.1 {PUBLIC_ACCESS} on Logs in t.yaml -- fix"]
    assert Finding("t.yaml", "Data", PUBLIC_ACCESS, suppressed=True) in outcome.findings

    resources["Logs"] = _bucket({PUBLIC_ACCESS.upper(): REASON})
    outcome = _evaluate({PUBLIC_ACCESS: ("Data", "Logs")}, resources)
    assert outcome.problems == []
    assert outcome.status[PUBLIC_ACCESS] == "suppressed"


@pytest.mark.parametrize("reason", [None, "", "too short a reason"])
def test_a_suppression_without_a_written_reason_fails(reason: str | None) -> None:
    outcome = _evaluate({PUBLIC_ACCESS: ("Data",)}, {"Data": _bucket({PUBLIC_ACCESS.upper(): reason})})
    assert len(outcome.problems) == 1
    assert f"suppresses {PUBLIC_ACCESS.upper()} without a reason" in outcome.problems[0]


def test_a_suppression_of_a_rule_that_no_longer_fails_there_is_stale() -> None:
    # the rule passes (compliant) on the template, or fails on another resource only
    outcome = _evaluate({}, {"Data": _bucket({LOGGING.upper(): REASON})}, compliant=frozenset({LOGGING}))
    assert [p for p in outcome.problems if p.startswith("stale suppression")] == [
        f"stale suppression: t.yaml Data suppresses {LOGGING.upper()} (CT.S3.PR.2), which no longer fails there: "
        "remove it from the generator"
    ]
    assert outcome.status[LOGGING] == "passed"
    outcome = _evaluate({LOGGING: ("Other",)}, {"Data": _bucket({LOGGING.upper(): REASON}), "Other": _bucket()})
    assert len(outcome.problems) == 2
    assert any(p.startswith("stale suppression: t.yaml Data") for p in outcome.problems)
    assert any(p.startswith(f"FAILED CT.S3.PR.2 {LOGGING} on Other") for p in outcome.problems)


def test_a_suppression_must_name_a_control_tower_rule_as_written_by_the_generator() -> None:
    for wrong in ("CT.S3.PR.2", LOGGING, "S3_BUCKET_LOGGING_ENABLED"):
        outcome = _evaluate({LOGGING: ("Data",)}, {"Data": _bucket({wrong: REASON})})
        assert any("which is no Control Tower rule" in p for p in outcome.problems), wrong
        assert any(p.startswith("FAILED CT.S3.PR.2") for p in outcome.problems), wrong


def test_the_counts_cover_every_rule_run_once() -> None:
    resources = {"Data": _bucket({LOGGING.upper(): REASON}), "Queue": {"Type": "AWS::SQS::Queue"}}
    outcome = _evaluate({LOGGING: ("Data",), SQS_DLQ: ("Queue",)}, resources, compliant=frozenset({PUBLIC_ACCESS}))
    assert outcome.status == {PUBLIC_ACCESS: "passed", LOGGING: "suppressed", SQS_DLQ: "failed"}
    assert [outcome.count(s) for s in ("passed", "failed", "not applicable", "suppressed")] == [1, 1, 0, 1]
    outcome = _evaluate({}, {})
    assert outcome.count("not applicable") == 3 and outcome.problems == []


def test_the_generator_suppression_helper_writes_what_the_gate_reads() -> None:
    bucket = suppress(Bucket("Data"), Suppression(reason=REASON, guard=(LOGGING.upper(),)))
    template = {"Resources": {"Data": bucket.to_dict()}}
    assert guard_gate.declared_suppressions(template) == {"Data": {LOGGING.upper(): REASON}}


def test_rules_are_selected_by_the_resource_types_they_evaluate() -> None:
    selected = guard_gate.select_rules(RULES, {"AWS::S3::BucketPolicy", "AWS::IAM::Role"})
    assert [rule.name for rule in selected] == [SSL_ONLY]


# ---------------------------------------------------------------------------------------------------------
# Fetching the binary


@pytest.mark.parametrize(
    ("system", "machine", "member"),
    [
        ("linux", "x86_64", "package/bin/ubuntu/x86_64/cfn-guard"),
        ("linux", "aarch64", "package/bin/ubuntu/aarch64/cfn-guard"),
        ("linux", "AMD64", "package/bin/ubuntu/x86_64/cfn-guard"),
        ("darwin", "arm64", "package/bin/macos/aarch64/cfn-guard"),
    ],
)
def test_the_binary_is_picked_for_the_machine(system: str, machine: str, member: str) -> None:
    assert guard_gate.binary_member(system, machine) == member


@pytest.mark.parametrize(("system", "machine"), [("win32", "AMD64"), ("linux", "s390x"), ("linux", "armv7l")])
def test_an_unsupported_platform_is_refused_clearly(system: str, machine: str) -> None:
    with pytest.raises(GuardError, match=f"not for {system.lower()}/{machine.lower()}"):
        guard_gate.binary_member(system, machine)


def test_a_missing_kit_says_how_to_prepare_it(tmp_path: Path) -> None:
    with pytest.raises(GuardError, match="--prepare-only"):
        guard_gate.locate(tmp_path)


def test_a_wheel_with_another_hash_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / guard_gate.WHEEL
    wheel.write_bytes(b"not the published wheel")
    with pytest.raises(GuardError, match="sha256"):
        guard_gate.unpack(wheel, tmp_path)


def test_a_binary_that_cannot_run_is_a_clear_error(tmp_path: Path) -> None:
    binary = tmp_path / "cfn-guard"
    binary.write_bytes(b"\x7fELF not really")
    binary.chmod(0o755)
    with pytest.raises(GuardError, match="cannot run"):
        guard_gate.check_runs(Kit(root=tmp_path, binary=binary, guard_version="3.1.1"))


def test_the_security_env_prepares_cfn_guard_and_gates_after_the_build() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO_ROOT / "tox.ini", encoding="utf-8")
    env = tox["testenv:security"]
    assert f"{guard_gate.HOME_ENV} = {{envtmpdir}}/cfn-guard" in env["setenv"]
    commands = [line.strip() for line in env["commands"].replace("\\\n", " ").splitlines() if line.strip()]
    (gate,) = [i for i, c in enumerate(commands) if c.startswith("python -m security.guard_gate --build build")]
    assert commands[0] == "python -m generators build" and gate > 0
    assert commands[-1].startswith("pytest"), "pytest runs after the gate prepared the binary"


# ---------------------------------------------------------------------------------------------------------
# The real binary and rule files


@pytest.fixture(scope="session")
def guard_kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """The unpacked kit: the one ``tox -e security`` prepared, else fetched for this session (PyPI)."""
    home = os.environ.get(guard_gate.HOME_ENV)
    if home:
        try:
            kit = guard_gate.locate(Path(home))
        except GuardError as error:
            pytest.fail(f"${guard_gate.HOME_ENV} is set but holds no cfn-guard: {error}")
    else:
        kit = guard_gate.prepare(tmp_path_factory.mktemp("cfn-guard"))
    guard_gate.check_runs(kit)
    return kit


@pytest.fixture(scope="session")
def guard_rules(guard_kit: Kit) -> dict[str, GuardRule]:
    return guard_gate.load_rules(guard_kit)


@pytest.fixture(scope="session")
def guard_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Today's build, written apart from build/ (other sessions may be writing that)."""
    out = tmp_path_factory.mktemp("guard-build")
    build(Settings(), out)
    return out


def _write(directory: Path, name: str, template: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False), encoding="utf-8")
    return path


def _open_bucket(metadata: dict | None = None) -> dict:
    """A bucket as CloudFormation creates it by default: no block-public-access settings, SSE-S3 only."""
    bucket: dict = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "open-bucket-example"}}
    if metadata:
        bucket["Metadata"] = metadata
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"OpenBucket": bucket}}


def test_the_rule_set_maps_each_rule_to_its_control_and_resource_types(guard_rules: dict[str, GuardRule]) -> None:
    # the rule files of the pinned package: one control per file, metadata next to it
    assert len(guard_rules) > 200
    assert guard_rules[PUBLIC_ACCESS].control_id == "CT.S3.PR.1"
    assert guard_rules[SSL_ONLY].resource_types == {"AWS::S3::BucketPolicy"}
    assert guard_rules[SQS_DLQ].resource_types == {"AWS::SQS::Queue"}


def test_the_captured_sample_is_what_the_pinned_binary_reports(
    guard_kit: Kit, guard_rules: dict[str, GuardRule], tmp_path: Path
) -> None:
    path = _write(tmp_path, "two-buckets", SAMPLE_TEMPLATE)
    selected = [guard_rules[PUBLIC_ACCESS], guard_rules[SQS_DLQ], guard_rules[SSL_ONLY]]
    (live,) = parse_report(guard_gate.run_guard(guard_kit, selected, [path]))
    (captured,) = parse_report(SAMPLE_REPORT)
    assert (live.failed, live.compliant, live.not_applicable) == (
        captured.failed,
        captured.compliant,
        captured.not_applicable,
    )


def test_a_non_compliant_bucket_fails_the_gate(guard_kit: Kit, tmp_path: Path) -> None:
    """CT.S3.PR.1 needs all four block-public-access settings true; CT.S3.PR.10 needs SSE with a KMS key."""
    _write(tmp_path, "open-bucket", _open_bucket())
    outcome, text = guard_gate.gate(guard_kit, tmp_path, required=("open-bucket",))
    failed = {(f.rule, f.resource) for f in outcome.findings if not f.suppressed}
    assert {(PUBLIC_ACCESS, "OpenBucket"), (KMS_ENCRYPTION, "OpenBucket")} <= failed
    assert any(p.startswith(f"FAILED CT.S3.PR.1 {PUBLIC_ACCESS} on OpenBucket") for p in outcome.problems)
    assert outcome.status[PUBLIC_ACCESS] == outcome.status[KMS_ENCRYPTION] == "failed"
    assert "CT.S3.PR.1" in text


def test_a_compliant_bucket_passes_those_controls(guard_kit: Kit, tmp_path: Path) -> None:
    template = _open_bucket()
    template["Resources"]["OpenBucket"]["Properties"].update(
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        BucketEncryption={
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    _write(tmp_path, "closed-bucket", template)
    outcome, _ = guard_gate.gate(guard_kit, tmp_path, required=("closed-bucket",))
    assert outcome.status[PUBLIC_ACCESS] == outcome.status[KMS_ENCRYPTION] == "passed"


def test_cfn_guard_ignores_suppression_metadata_so_the_gate_applies_it(
    guard_kit: Kit, guard_rules: dict[str, GuardRule], tmp_path: Path
) -> None:
    """The Control Tower rule files, unlike aws-guard-rules-registry's, do not filter on
    ``Metadata.guard.SuppressedRules``: the binary still fails the resource, and only the gate accepts it.
    If a later rule set honours it, the gate would call every suppression stale: this test says why."""
    suppression = Suppression(reason=REASON, guard=(PUBLIC_ACCESS.upper(), KMS_ENCRYPTION.upper()))
    metadata = suppress(Bucket("OpenBucket"), suppression).to_dict()["Metadata"]
    path = _write(tmp_path, "suppressed", _open_bucket(metadata))
    selected = [guard_rules[PUBLIC_ACCESS], guard_rules[KMS_ENCRYPTION]]
    (raw,) = parse_report(guard_gate.run_guard(guard_kit, selected, [path]))
    assert raw.failed == {PUBLIC_ACCESS: ("OpenBucket",), KMS_ENCRYPTION: ("OpenBucket",)}
    outcome, _ = guard_gate.gate(guard_kit, tmp_path, required=("suppressed",))
    assert outcome.status[PUBLIC_ACCESS] == outcome.status[KMS_ENCRYPTION] == "suppressed"
    assert not [p for p in outcome.problems if "OpenBucket" in p and ("CT.S3.PR.1 " in p or "CT.S3.PR.10 " in p)]


def test_selecting_rules_by_resource_type_loses_nothing_on_the_current_build(
    guard_kit: Kit, guard_rules: dict[str, GuardRule], guard_build: Path
) -> None:
    paths = [guard_build / template_filename(name) for name in template_names()]
    templates = {str(p): yaml.safe_load(p.read_text(encoding="utf-8")) for p in paths}
    selected = guard_gate.select_rules(guard_rules, guard_gate.resource_types(templates))
    assert 0 < len(selected) < len(guard_rules)
    everything = parse_report(guard_gate.run_guard(guard_kit, list(guard_rules.values()), paths))
    chosen = parse_report(guard_gate.run_guard(guard_kit, selected, paths))
    for full, part in zip(everything, chosen, strict=True):
        assert (full.path, full.failed, full.compliant) == (part.path, part.failed, part.compliant)


def test_every_finding_on_the_current_build_names_a_resource_the_control_evaluates(
    guard_kit: Kit, guard_rules: dict[str, GuardRule], guard_build: Path
) -> None:
    outcome, _ = guard_gate.gate(guard_kit, guard_build)
    assert sorted(outcome.status) == sorted(outcome.rules_run) and outcome.rules_run
    templates = {
        name: yaml.safe_load(Path(name).read_text(encoding="utf-8")) for name in {f.template for f in outcome.findings}
    }
    for finding in outcome.findings:
        resource = templates[finding.template]["Resources"][finding.resource]
        assert resource["Type"] in guard_rules[finding.rule].resource_types, finding


def test_the_command_line_prepares_and_reports(guard_kit: Kit, tmp_path: Path, capsys) -> None:
    work = guard_kit.root.parent
    assert guard_gate.main(["--prepare-only", "--work", str(work)]) == 0
    _write(tmp_path, "open-bucket", _open_bucket())
    summary = tmp_path / "summary.json"
    # main() insists on the generators' templates: a directory with only this one is refused clearly
    assert guard_gate.main(["--work", str(work), "--build", str(tmp_path)]) == 2
    assert "run python -m generators build" in capsys.readouterr().err
    for name in template_names():
        _write(tmp_path, name, {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}})
    assert guard_gate.main(["--work", str(work), "--build", str(tmp_path), "--summary-json", str(summary)]) == 1
    report = json.loads(summary.read_text(encoding="utf-8"))
    assert report["package"] == f"{guard_gate.PACKAGE}=={guard_gate.VERSION}"
    assert report["counts"]["failed"] >= 2
    assert "FAILED CT.S3.PR.1" in capsys.readouterr().err
