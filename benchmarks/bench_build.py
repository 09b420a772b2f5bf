"""Wall time of ``python -m generators build`` against the bare import of troposphere + awacs. Run on demand
(not a test):

    .venv/bin/python benchmarks/bench_build.py [--repeat 5] [--top 15]

(a) ``python -c "import troposphere, awacs"``: the floor, the libraries every build needs;
(b) ``python -m generators build --out TMP``: the whole build (every template, every zip) and the CLI.

Each sample is a fresh process of this interpreter (same venv), timed from the outside; the cases are
interleaved, after one untimed warm-up of each (bytecode caches written). The ratio is median(b) / median(a);
the target is <= 1.5. Then one ``python -X importtime -m generators build`` run shows where the build's
import time goes (the top entries by cumulative time) and whether boto3/botocore were imported (they must not
be: only ``release`` needs them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5
HEAVY = ("boto3", "botocore")
# As a user runs it: bytecode caches written and used (tox and some shells set PYTHONDONTWRITEBYTECODE, which
# would make every sample compile the project's modules from source).
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True)
class Case:
    label: str
    argv: tuple[str, ...]


def cases(out_dir: Path) -> list[Case]:
    return [
        Case("python -c pass (interpreter start)", ("-c", "pass")),
        Case('(a) python -c "import troposphere, awacs"', ("-c", "import troposphere, awacs")),
        Case("(b) python -m generators build --out TMP", ("-m", "generators", "build", "--out", str(out_dir))),
    ]


def run_once(case: Case) -> float:
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, *case.argv], cwd=REPO_ROOT, capture_output=True, text=True, env=ENV,
                               check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{case.label} failed ({completed.returncode}): {completed.stderr.strip()[-500:]}")
    return elapsed


@dataclass(frozen=True)
class Import:
    self_us: int
    cumulative_us: int
    depth: int
    name: str


def import_profile(out_dir: Path) -> list[Import]:
    """One ``-X importtime`` build: lines ``import time: SELF | CUMULATIVE | <indent>NAME`` on stderr."""
    completed = subprocess.run([sys.executable, "-X", "importtime", "-m", "generators", "build", "--out", str(out_dir)],
                               env=ENV,
                               cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"build failed: {completed.stderr.strip().splitlines()[-1]}")
    imports = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        if not self_us.strip().isdigit():  # the header line
            continue
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        imports.append(Import(int(self_us), int(cumulative_us), depth, name.strip()))
    return imports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per case (median reported; default 5)")
    parser.add_argument("--top", type=int, default=15, help="import profile entries to show (default 15)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        out_dir = Path(tmp) / "build"
        timed = cases(out_dir)
        for case in timed:  # warm-up: bytecode caches, file system caches
            run_once(case)
        samples: dict[str, list[float]] = {case.label: [] for case in timed}
        for _ in range(args.repeat):
            for case in timed:
                samples[case.label].append(run_once(case))
        profile = import_profile(Path(tmp) / "profiled")

    medians = {label: statistics.median(values) for label, values in samples.items()}
    floor, whole = medians[timed[1].label], medians[timed[2].label]
    ratio = whole / floor
    print(f"{sys.executable} (Python {sys.version.split()[0]}), median of {args.repeat} fresh processes each\n")
    width = max(len(label) for label in samples)
    print(f"{'case':<{width}}  {'median':>8}  {'min':>8}  {'max':>8}")
    for label, values in samples.items():
        print(f"{label:<{width}}  {medians[label]:>7.3f}s  {min(values):>7.3f}s  {max(values):>7.3f}s")
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"\nratio (b)/(a) = {whole:.3f}s / {floor:.3f}s = {ratio:.2f}  ({verdict} the target <= {TARGET_RATIO})")

    total = sum(i.self_us for i in profile)
    heavy = sorted({i.name for i in profile if i.name.split(".")[0] in HEAVY})
    print(f"\nimport profile of the build (-X importtime): {len(profile)} modules, {total / 1e6:.3f}s in imports; "
          f"boto3/botocore imported: {', '.join(heavy[:5]) if heavy else 'no'}")
    print(f"top {args.top} by cumulative time:")
    print(f"  {'cumulative':>10}  {'self':>8}  module")
    for entry in sorted(profile, key=lambda i: i.cumulative_us, reverse=True)[: args.top]:
        print(f"  {entry.cumulative_us / 1e3:>8.1f}ms  {entry.self_us / 1e3:>6.1f}ms  {'  ' * entry.depth}{entry.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
