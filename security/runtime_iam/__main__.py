"""``python -m security.runtime_iam [--build build] [--recorded tests/runtime_recorded_calls.json]``.

Prints the per-role table of simulated run-time calls and every denied one; exit status 1 when a call
would be denied (tolerated denials, with their reason, do not count).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..iam_policies import load_templates
from .gate import simulate, summarize_denials
from .recordings import Recordings
from .service_calls import preconditions_from_readme

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RECORDED = REPO_ROOT / "tests" / "runtime_recorded_calls.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=Path("build"), help="directory with the built templates")
    parser.add_argument("--recorded", type=Path, default=DEFAULT_RECORDED, help="recorded calls (JSON)")
    args = parser.parse_args(argv)
    preconditions = preconditions_from_readme((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    report = simulate(load_templates(args.build), Recordings.load(args.recorded), preconditions)
    print(f"run-time IAM calls, {report.scenario_pairs} scenario pairs (project x sm-policies):")
    print(report.table())
    denied = summarize_denials(report.denied)
    for line in denied:
        print("DENIED", line)
    return 1 if denied else 0


if __name__ == "__main__":
    sys.exit(main())
