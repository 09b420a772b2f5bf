"""Gate on checkov's JSON report: no failed check, no parsing error, and no stale or ignored skip.

``python -m security.checkov_gate REPORT.json [--build build]``: checkov already fails on a failed check;
this also fails when a ``Metadata.checkov.skip`` in a built template did not suppress anything (a stale
skip hides nothing but still reads as an accepted risk) or when checkov skipped something no template
metadata asked for, and it prints the passed/failed/skipped counts. The report may cover the variants of
``security.variants`` too (conditional resources checkov skips with the default parameters): a skip counts
as used when checkov applied it in the template or in one of its variants.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .iam_policies import load_templates
from .variants import template_of


def _reports(path: Path) -> list[dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    reports = data if isinstance(data, list) else [data]
    return [r for r in reports if r.get("check_type") == "cloudformation"]


def declared_skips(build_dir: Path) -> set[tuple[str, str, str]]:
    """(template file, resource, check id) for every skip written by generators.common.suppress."""
    found = set()
    for name, template in load_templates(build_dir).items():
        for logical_id, resource in template["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                found.add((f"{name}.yaml", f"{resource['Type']}.{logical_id}", skip["id"]))
    return found


def check(report_path: Path, build_dir: Path) -> list[str]:
    problems = []
    reports = _reports(report_path)
    if not reports:
        return [f"{report_path}: no cloudformation results (did checkov scan {build_dir}?)"]
    skipped, counts = set(), {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    for report in reports:
        for key in counts:
            counts[key] += report["summary"].get(key, 0)
        for failed in report["results"].get("failed_checks", []):
            problems.append(f"FAILED {failed['check_id']} {failed['resource']} ({failed['file_path']})")
        for skip in report["results"].get("skipped_checks", []):
            skipped.add((template_of(skip["file_path"]), skip["resource"], skip["check_id"]))
            if len(skip.get("check_result", {}).get("suppress_comment", "").split()) < 8:
                problems.append(f"skip without a reason: {skip['check_id']} {skip['resource']}")
    if counts["parsing_errors"]:
        problems.append(f"{counts['parsing_errors']} template(s) could not be parsed")
    declared = declared_skips(build_dir)
    for stale in sorted(declared - skipped):
        problems.append(f"stale skip (checkov does not run {stale[2]} on {stale[1]}): remove it from the generator")
    for unexpected in sorted(skipped - declared):
        problems.append(f"skipped without a Metadata suppression: {unexpected}")
    print(
        f"checkov {reports[0]['summary'].get('checkov_version', '?')}: {counts['passed']} passed, "
        f"{counts['failed']} failed, {counts['skipped']} skipped (each with its reason), "
        f"{counts['resource_count']} resources"
    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="checkov's JSON report (-o json)")
    parser.add_argument("--build", type=Path, default=Path("build"), help="directory checkov scanned")
    args = parser.parse_args(argv)
    problems = check(args.report, args.build)
    for problem in problems:
        print(f"checkov gate: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
