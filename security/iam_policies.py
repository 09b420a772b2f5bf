"""Extract every IAM policy of the built templates, resolved for every condition scenario.

``python -m security.iam_policies [--build build] --out DIR`` writes one JSON file per distinct policy
document into DIR, for ``parliament --include-community-auditors --directory DIR`` and
``python -m security.parliament_gate DIR``. Identity policies
(managed and inline) and resource policies (bucket and queue policies) are written; trust policies are
not, as parliament needs a ``Resource`` element in every statement (``tests/test_security_iam.py``
checks the trust policies instead).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generators.build import template_names

from .scenarios import Scenario, all_scenarios

IDENTITY = "identity"
RESOURCE = "resource"
TRUST = "trust"


@dataclass(frozen=True)
class ResolvedPolicy:
    template_name: str
    logical_id: str
    resource_type: str
    kind: str  # identity | resource | trust
    name: str  # policy name within the resource
    document: dict
    scenario: str

    @property
    def file_stem(self) -> str:
        return f"{self.template_name}.{self.logical_id}.{self.name}"


def load_templates(build_dir: Path) -> dict[str, dict]:
    """The built templates (long-form YAML: plain ``safe_load`` reads them)."""
    return {name: yaml.safe_load((build_dir / f"{name}.yaml").read_text(encoding="utf-8")) for name in template_names()}


def policies_of(scenario: Scenario) -> Iterator[ResolvedPolicy]:
    for logical_id, resource in sorted(scenario.resources.items()):
        kind_type = resource["Type"]
        props = resource.get("Properties", {})

        def policy(
            kind: str, name: str, document: dict, logical_id: str = logical_id, kind_type: str = kind_type
        ) -> ResolvedPolicy:
            return ResolvedPolicy(scenario.template_name, logical_id, kind_type, kind, name, document, scenario.label)

        if kind_type == "AWS::IAM::ManagedPolicy":
            yield policy(IDENTITY, "PolicyDocument", props["PolicyDocument"])
        elif kind_type in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            if "AssumeRolePolicyDocument" in props:
                yield policy(TRUST, "AssumeRolePolicyDocument", props["AssumeRolePolicyDocument"])
            for inline in props.get("Policies", []):
                yield policy(IDENTITY, inline["PolicyName"], inline["PolicyDocument"])
        elif kind_type == "AWS::IAM::Policy":
            yield policy(IDENTITY, props["PolicyName"], props["PolicyDocument"])
        elif kind_type in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            yield policy(RESOURCE, "PolicyDocument", props["PolicyDocument"])


def resolved_policies(templates: Mapping[str, Mapping[str, Any]]) -> list[ResolvedPolicy]:
    """Every policy of every scenario (the same document may appear once per scenario)."""
    return [p for scenario in all_scenarios(templates) for p in policies_of(scenario)]


def distinct(policies: list[ResolvedPolicy]) -> dict[str, ResolvedPolicy]:
    """File name -> policy, one per distinct document of each resource's policy."""
    by_stem: dict[str, dict[str, ResolvedPolicy]] = {}
    for policy in policies:
        text = json.dumps(policy.document, sort_keys=True)
        by_stem.setdefault(policy.file_stem, {}).setdefault(text, policy)
    files = {}
    for stem, documents in sorted(by_stem.items()):
        for text, policy in sorted(documents.items()):
            suffix = "" if len(documents) == 1 else "." + hashlib.sha256(text.encode()).hexdigest()[:8]
            files[f"{stem}{suffix}.json"] = policy
    return files


def write_for_parliament(build_dir: Path, out_dir: Path) -> dict[str, ResolvedPolicy]:
    templates = load_templates(build_dir)
    files = distinct([p for p in resolved_policies(templates) if p.kind != TRUST])
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.json"):
        stale.unlink()
    for filename, policy in files.items():
        (out_dir / filename).write_text(json.dumps(policy.document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=Path("build"), help="directory with the built templates")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the policy files into")
    args = parser.parse_args(argv)
    files = write_for_parliament(args.build, args.out)
    kinds = {kind: sum(1 for p in files.values() if p.kind == kind) for kind in (IDENTITY, RESOURCE)}
    print(
        f"wrote {len(files)} resolved policies ({kinds[IDENTITY]} identity, {kinds[RESOURCE]} resource) to {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
