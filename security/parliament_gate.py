"""Run parliament (with its community auditors) over the resolved policies and gate on the result.

``python -m security.parliament_gate DIR``: analyses every ``*.json`` policy in DIR exactly as
``parliament --include-community-auditors --minimum_severity INFO --directory DIR`` does, prints every
finding, and fails unless each one is accepted in ``security/parliament_findings.py`` and each acceptance
still matches a finding (no stale acceptances).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from .parliament_findings import ACCEPTED, AcceptedFinding, is_accepted


def findings(policy_dir: Path) -> list:
    """parliament's findings for every policy file, severities and titles filled in (as its CLI does)."""
    import parliament
    from parliament.cli import enhance_finding

    community = Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"
    parliament.override_config(str(community))
    found = []
    for path in sorted(policy_dir.glob("*.json")):
        policy = parliament.analyze_policy_string(
            path.read_text(encoding="utf-8"),
            str(path),
            include_community_auditors=True,
            config=parliament.config,
        )
        found.extend(enhance_finding(finding) for finding in policy.findings)
    return found


def gate(policy_dir: Path, accepted: tuple[AcceptedFinding, ...] = ACCEPTED) -> tuple[list, list[str]]:
    found = findings(policy_dir)
    problems, used = [], set()
    for finding in found:
        matches = [i for i, a in enumerate(accepted) if is_accepted(a, finding.issue, finding.location)]
        used.update(matches)
        status = "accepted" if matches else "NOT ACCEPTED"
        print(f"{status}: {finding.severity} {finding.issue} {finding.detail or ''} {finding.location}")
        if not matches:
            problems.append(f"{finding.severity} {finding.issue} in {finding.location.get('filepath')}")
    for index, stale in enumerate(accepted):
        if index not in used:
            problems.append(f"stale acceptance (no such finding any more): {stale.issue} on {stale.policy}")
    return found, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policy_dir", type=Path, help="directory written by python -m security.iam_policies")
    args = parser.parse_args(argv)
    found, problems = gate(args.policy_dir)
    by_severity = Counter(f.severity for f in found)
    print(
        f"parliament: {len(list(args.policy_dir.glob('*.json')))} policies, {len(found)} findings "
        f"({', '.join(f'{n} {s}' for s, n in sorted(by_severity.items())) or 'none'}), "
        f"{len(found) - len(problems)} accepted with a reason, {len(problems)} problems"
    )
    for problem in problems:
        print(f"parliament gate: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
