"""Each registered product's seed code suite, run as its CodeBuild runs it: from the seed directory, in a new
process.

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

from generators.products import products

REPO_ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


@pytest.mark.slow
@pytest.mark.parametrize("seed_code", [product.seed_code for product in products()])
def test_the_seed_code_suite_passes_on_its_own(seed_code: str) -> None:
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("AWS_ENDPOINT_URL", "PYTEST_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT / seed_code, env=environment, capture_output=True, text=True, timeout=600, check=False,
    )
    output = completed.stdout + completed.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    counts = {kind.rstrip("s"): int(number) for number, kind in SUMMARY.findall(summary)}
    assert completed.returncode == 0, f"seed code tests failed (exit {completed.returncode}):\n{output}"
    assert counts.get("passed", 0) > 0, f"seed code tests ran nothing:\n{output}"
    assert not counts.get("failed") and not counts.get("error") and not counts.get("skipped"), output


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file: {normalised name (extras dropped): version}."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, separator, version = requirement.partition("==")
            assert separator and version, f"{path.name}: {line!r} is not pinned exactly"
            found[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version.strip()
    return found


def test_the_seed_code_pins_what_the_ingestion_seed_code_pins() -> None:
    """Both seed codes pin the same SDK v3 release and its companions, and this repository's test environment
    installs the ingestion seed code's requirements (tox.ini, testenv:tests) to run both seed suites: every
    package the batch-inference seed code pins must be pinned there, at the same version."""
    ours = pins(REPO_ROOT / "seed-code" / "s3-batch-inference" / "requirements.txt")
    theirs = pins(REPO_ROOT / "seed-code" / "s3-fs-ingestion" / "requirements.txt")
    assert {"sagemaker", "sagemaker-core", "sagemaker-mlops", "boto3", "botocore", "moto"} <= set(ours)
    assert {name: version for name, version in ours.items() if theirs.get(name) != version} == {}
