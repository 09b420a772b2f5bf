"""Per-file against batched ingestion of a burst of uploads, side by side (issue 15). Run on demand:

    .tox/tests/bin/python benchmarks/simulate_microbatch.py [--files 1000] [--batch-size 100] [--window 60]
        [--limit 20] [--busy 0] [--busy-minutes 30] [--startup-minutes 4] [--minutes-per-file 0.1]

The simulation of tests/test_microbatch_simulation.py (models and sources: tests/microbatch_support.py): moto SQS
and S3 on a simulated clock, the real start Lambda, a SageMaker stand-in refusing starts beyond ``--limit``
concurrent executions (``--busy`` of them held by other projects for the first ``--busy-minutes``). Prints a
Markdown table: executions started and refused, simulated instance-minutes (start-up + work per file), simulated
wall time, files dead-lettered, host seconds. Nothing reaches AWS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="uploads in the burst (default 1000)")
    parser.add_argument("--burst-seconds", type=float, default=60.0, help="they arrive evenly over this time (60)")
    parser.add_argument("--batch-size", type=int, default=100, help="event source mapping BatchSize (100)")
    parser.add_argument("--window", type=int, default=60, help="MaximumBatchingWindowInSeconds (60)")
    parser.add_argument("--limit", type=int, default=20, help="concurrent pipeline executions of the account (20)")
    parser.add_argument("--busy", type=int, default=0, help="executions other projects hold at the start (0)")
    parser.add_argument("--busy-minutes", type=float, default=30.0, help="for how long they hold them (30)")
    parser.add_argument("--startup-minutes", type=float, default=4.0, help="per job: provisioning + image pull (4)")
    parser.add_argument("--minutes-per-file", type=float, default=0.1, help="per file in a job (0.1)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(TESTS))
    from microbatch_support import JobModel, Scenario, run_batched, run_per_file, table

    scenario = Scenario(
        files=args.files, burst_seconds=args.burst_seconds, limit=args.limit, batch_size=args.batch_size,
        batch_window_seconds=args.window, job=JobModel(args.startup_minutes, args.minutes_per_file),
        background=((0.0, args.busy_minutes * 60.0),) * args.busy,
    )
    per_file, batched = run_per_file(scenario), run_batched(scenario)
    print(f"{scenario.files} uploads over {scenario.burst_seconds:g} s; {scenario.limit} concurrent executions"
          + (f" ({args.busy} held by other projects for {args.busy_minutes:g} min)" if args.busy else "")
          + f"; job = {scenario.job.startup_minutes:g} min start-up + {scenario.job.minutes_per_file:g} min per file; "
          f"BatchSize {scenario.batch_size}, window {scenario.batch_window_seconds} s\n")
    print(table([per_file, batched]))
    print(f"\nexecutions: {per_file.executions_started / max(1, batched.executions_started):.0f}x fewer; "
          f"instance-minutes: {per_file.instance_minutes / max(1e-9, batched.instance_minutes):.1f}x fewer; "
          f"per-file redrive rounds: {per_file.extra['redrive_rounds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
