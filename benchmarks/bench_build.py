"""Wall time of ``python -m generators build`` against the bare import of troposphere + awacs. Run on demand
(not a test):

    .venv/bin/python benchmarks/bench_build.py [--repeat 5] [--top 15]

(a) ``python -c "import troposphere, awacs"``: the floor, the libraries every build needs;
(b) ``python -m generators build --out TMP``: the whole build (every template, every zip) and the CLI.

Each sample is a fresh process of this interpreter (same venv), timed from the outside; the cases are
interleaved, after one untimed warm-up of each (bytecode caches written). The ratio is median(b) / median(a);
the target is <= 1.5. Then one ``python -X importtime -m generators build`` run shows where the build's
import time goes (the top entries by cumulative time) and whether boto3/botocore were imported (they must not
be: only ``release`` needs them). ``--phases`` adds where the build's own time goes, step by step, in a fresh
interpreter that runs what ``python -m generators build`` runs (median of the repeats).
"""

from __future__ import annotations

import argparse
import json
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


# Runs in a fresh interpreter, step by step as generators/__main__.py and cli.run_build do; prints one JSON object
# of milliseconds per step. Frozen-dataclass creation (a fixed cost of our modules' imports) is timed by wrapping
# dataclasses' class processing.
_PHASES_SCRIPT = r"""
import gc
gc.disable()
import json, sys, time
clock = time.perf_counter
report = {}
started = clock()
def step(name):
    global started
    now = clock()
    report[name] = report.get(name, 0.0) + (now - started) * 1e3
    started = now
import troposphere, awacs
step("import troposphere, awacs")
import dataclasses
real = dataclasses._process_class
def timed(*args, **kwargs):
    begin = clock()
    try:
        return real(*args, **kwargs)
    finally:
        report["(of the imports) dataclass creation"] = report.get("(of the imports) dataclass creation", 0.0) \
            + (clock() - begin) * 1e3
dataclasses._process_class = timed
from generators import cli
step("import generators.cli (argparse, settings)")
args = cli.parser().parse_args(["build", "--out", sys.argv[1]])
step("argument parser (argparse, release and ops options)")
from generators import build, policies, portfolio
from generators.products import products
step("import generators.build (products, blocks, troposphere and awacs services)")
from pathlib import Path
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
settings = cli.settings_from(args)
archives = build.Archives(build.archive_sources(), out)
step("fork the zip packer")
for product in products():
    product.build(settings)
step("build the products' troposphere templates")
for name, builder in build.template_builders().items():
    template = builder(settings)
    step("build sm-policies and the portfolio (grants merged)")
    text = build.render(template)
    step("render YAML (to_dict + emitter)")
    build._write_atomically(out / build.template_filename(name), text)
    step("write the templates")
archives.wait()
step("wait for the zip packer")
from generators.packaging import deterministic_zip
begin = clock()
for name, source in build.archive_sources().items():
    deterministic_zip(source, out / ("serial-" + name))
report["(in the child, overlapped) the zips"] = (clock() - begin) * 1e3
print(json.dumps(report))
"""


def phases(out_dir: Path, repeat: int) -> dict[str, float]:
    runs = []
    for index in range(repeat + 1):  # the first run writes the bytecode caches
        completed = subprocess.run([sys.executable, "-c", _PHASES_SCRIPT, str(out_dir / f"phases-{index}")], env=ENV,
                                   cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise SystemExit(f"phases failed: {completed.stderr.strip()[-500:]}")
        runs.append(json.loads(completed.stdout))
    return {name: statistics.median(run[name] for run in runs[1:]) for name in runs[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per case (median reported; default 5)")
    parser.add_argument("--top", type=int, default=15, help="import profile entries to show (default 15)")
    parser.add_argument("--phases", action="store_true", help="also time the build's steps in one process")
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
        steps = phases(Path(tmp), args.repeat) if args.phases else {}

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
    if steps:
        print(f"\nwhere a build's time goes, in one process (median of {args.repeat}; the interpreter's start and "
              "exit are not in it):")
        for name, milliseconds in steps.items():
            print(f"  {milliseconds:>7.1f}ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
