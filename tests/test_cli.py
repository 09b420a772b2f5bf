"""The build command: defaults need no options, bad options fail with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generators.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "generators", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--version", "1.2", "is not semantic versioning"),
        ("--version", "v1.2.3", "is not semantic versioning"),
        ("--artifacts-bucket", "My_Bucket", "is not a valid S3 bucket name"),
        ("--artifacts-bucket", "ab", "is not a valid S3 bucket name"),
        ("--artifacts-bucket", "a-very-long-bucket-name-that-overflows-${AWS::AccountId}-${AWS::Region}", "can reach"),
        ("--artifacts-bucket", "releases-${AWS::StackName}", "only ${AWS::AccountId} and ${AWS::Region}"),
        ("--artifacts-prefix", "rel eases", "is not a safe S3 key prefix"),
    ],
)
def test_bad_option_fails_with_one_line_and_writes_nothing(tmp_path, option, value, message) -> None:
    out = tmp_path / "out"
    result = _run("build", "--out", str(out), option, value)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_help_explains_every_option() -> None:
    result = _run("build", "--help")
    assert result.returncode == 0
    for option in ("--out", "--version", "--artifacts-bucket", "--artifacts-prefix"):
        assert option in result.stdout
    assert "${AWS::AccountId}" in result.stdout


def test_build_with_explicit_coordinates_uses_them(tmp_path, capsys) -> None:
    assert (
        main(
            [
                "build",
                "--out",
                str(tmp_path),
                "--version",
                "2.3.4-rc.1",
                "--artifacts-bucket",
                "my-releases",
                "--artifacts-prefix",
                "/team/ml/",
            ]
        )
        == 0
    )
    project = (tmp_path / "project-s3-fs-ingestion.yaml").read_text()
    assert "team/ml/s3-fs-ingestion/2.3.4-rc.1/lambda-start-ingestion-pipeline.zip" in project
    assert "my-releases" in project
    assert "built version 2.3.4-rc.1" in capsys.readouterr().out


def test_build_failure_is_one_line(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = _run("build", "--out", str(blocker / "sub"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: build failed:") and "Traceback" not in result.stderr
