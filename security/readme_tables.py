"""Print the README "Security" tables: accepted scanner findings with their reasons.

``python -m security.readme_tables [--build build]`` prints the Markdown rows; paste them into the README
after a suppression or an accepted parliament finding changes (the security tests fail until then).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .iam_policies import load_templates
from .parliament_findings import ACCEPTED


def suppression_rows(build_dir: Path) -> list[str]:
    rows = ["| check | resource | template | reason |", "|---|---|---|---|"]
    for name, template in sorted(load_templates(build_dir).items()):
        for logical_id, resource in sorted(template["Resources"].items()):
            for check, reason in resource.get("Metadata", {}).get("SuppressionReasons", {}).items():
                rows.append(f"| `{check}` | `{logical_id}` | `{name}` | {reason} |")
    return rows


def parliament_rows() -> list[str]:
    rows = ["| finding | policy | reason |", "|---|---|---|"]
    for finding in ACCEPTED:
        detail = "".join(f" ({value})" for value in [*finding.location.values(),
                                                     *(f"`{v}`" for v in finding.location_patterns.values())])
        rows.append(f"| `{finding.issue}`{detail} | `{finding.policy}` | {finding.reason} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=Path("build"), help="directory with the built templates")
    args = parser.parse_args(argv)
    print("\n".join(suppression_rows(args.build)))
    print()
    print("\n".join(parliament_rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
