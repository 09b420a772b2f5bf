"""The security gates are wired as documented: tox runs them in CI, on a fresh build, with pinned tools."""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path

import yaml

from security.parliament_findings import ACCEPTED, LAUNCH_ROLE_POLICY, is_accepted

REPO_ROOT = Path(__file__).resolve().parent.parent
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _tox() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO_ROOT / "tox.ini", encoding="utf-8")
    return parser


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.replace("\\\n", " ").splitlines() if line.strip()]


def test_plain_tox_runs_the_security_env() -> None:
    envlist = [e.strip() for e in _tox()["tox"]["envlist"].split(",")]
    assert "security" in envlist


def test_security_env_builds_first_then_runs_every_gate() -> None:
    commands = _lines(_tox()["testenv:security"]["commands"])
    assert commands[0] == "python -m generators build"
    joined = "\n".join(commands)
    for expected in (
        "python -m security.variants --build build --out",
        "checkov --directory {envtmpdir}/scanned --framework cloudformation --skip-download",
        "python -m security.checkov_gate",
        "python -m security.iam_policies --build build",
        "python -m security.parliament_gate",
        "python -m security.guard_gate --build build",
        "python -m security.runtime_iam --build build",
        "python_files=test_security_*.py",
    ):
        assert expected in joined, expected


def test_security_env_pins_the_tools_and_the_generator_dependencies() -> None:
    deps = {re.split(r"[=<>]", d)[0].lower(): d for d in _lines(_tox()["testenv:security"]["deps"]) if d[0] != "#"}
    assert deps["checkov"] == "checkov==3.3.30"
    assert deps["parliament"] == "parliament==1.6.4"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[=<>]", requirement)[0].lower()
        if "==" in requirement:  # the env does not install the package: its pins must match
            assert deps.get(name) == requirement, f"tox security env: {deps.get(name)} != pyproject {requirement}"
    cfn_lint = [r for r in project["optional-dependencies"]["lint"] if r.startswith("cfn-lint")]
    assert deps["cfn-lint"] == cfn_lint[0]


def test_every_accepted_parliament_finding_has_a_reason_in_the_readme() -> None:
    assert ACCEPTED
    for finding in ACCEPTED:
        assert len(finding.reason.split()) >= 12, finding.issue
        rows = [line for line in README.splitlines() if f"`{finding.issue}`" in line and f"`{finding.policy}`" in line]
        assert any(finding.reason in row for row in rows), (
            f"README misses the accepted {finding.issue} on {finding.policy}"
        )


def test_accepted_findings_match_only_their_policy_and_detail() -> None:
    (escalation,) = [f for f in ACCEPTED if f.location.get("type") == "EditExistingLambdaFunctionWithRole"]
    launch = f"/tmp/x/{LAUNCH_ROLE_POLICY}.PolicyDocument.json"
    assert is_accepted(
        escalation, "PRIVILEGE_ESCALATION", {"filepath": launch, "type": "EditExistingLambdaFunctionWithRole"}
    )
    assert not is_accepted(escalation, "PRIVILEGE_ESCALATION", {"filepath": launch, "type": "CreateAccessKey"})
    other = "/tmp/x/sm-policies.StudioUserPolicy.PolicyDocument.json"
    assert not is_accepted(
        escalation, "PRIVILEGE_ESCALATION", {"filepath": other, "type": "EditExistingLambdaFunctionWithRole"}
    )


def test_scanners_see_the_resources_of_every_trigger_mode(built, tmp_path) -> None:
    """checkov skips resources whose condition is false with the default parameters: the variants make the
    CloudTrail-mode trail and bucket the default somewhere, so they are scanned too."""
    from security.variants import template_of, write_variants

    written = {path.name: path for path in write_variants(built.out_dir, tmp_path)}
    assert {"sm-policies.yaml", "project-s3-fs-ingestion.yaml"} <= set(written), "the originals are scanned too"
    variant = yaml.safe_load(written["project-s3-fs-ingestion__TriggerMode-CloudTrail.yaml"].read_text())
    assert variant["Parameters"]["TriggerMode"]["Default"] == "CloudTrail"
    assert variant["Resources"]["UploadTrail"]["Condition"] == "UseCloudTrail"
    assert template_of("project-s3-fs-ingestion__TriggerMode-CloudTrail.yaml") == "project-s3-fs-ingestion.yaml"
    assert template_of("/x/sm-policies.yaml") == "sm-policies.yaml"
