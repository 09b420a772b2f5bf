"""The seed code's own test suite, run as its CodeBuild runs it: from the seed directory, in a new process.

The seed code becomes each project's repository and must not import from this project, so its tests run
in a subprocess with the seed directory as the working directory (its pytest.ini applies there).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SEED_DIR = Path(__file__).resolve().parent.parent / "seed-code" / "s3-fs-ingestion"
SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


@pytest.mark.slow
def test_the_seed_code_suite_passes_on_its_own() -> None:
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("AWS_ENDPOINT_URL", "PYTEST_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        cwd=SEED_DIR, env=environment, capture_output=True, text=True, timeout=600, check=False,
    )
    output = completed.stdout + completed.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    counts = {kind.rstrip("s"): int(number) for number, kind in SUMMARY.findall(summary)}
    assert completed.returncode == 0, f"seed code tests failed (exit {completed.returncode}):\n{output}"
    assert counts.get("passed", 0) > 0, f"seed code tests ran nothing:\n{output}"
    assert not counts.get("failed") and not counts.get("error"), output
