"""The command line: defaults need no options, bad options fail with one clear line, and the light commands
(``build``, ``--help``, ``release --help``, ``--version``) never import boto3 or botocore."""

from __future__ import annotations

import subprocess
import sys
import tomllib
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


# ---------------------------------------------------------------------------------------------------------
# The light path: boto3/botocore only for the release itself
# ---------------------------------------------------------------------------------------------------------

HEAVY = {"boto3", "botocore"}


def _imports(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -m generators ARGS`` in a fresh process; every module it imported, by name
    (CPython documentation, "-X importtime": one stderr line per import, the module name last)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "generators", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    modules = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return result, modules


def _top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("command", [["build", "--out", "{tmp}"], ["--help"], ["release", "--help"], ["--version"]])
def test_light_commands_never_import_boto3(tmp_path, command) -> None:
    result, modules = _imports(*(part.format(tmp=tmp_path / "out") for part in command))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "generators.cli" in modules, "the import profile was read"
    assert not _top_level(modules) & HEAVY, sorted(m for m in modules if m.split(".")[0] in HEAVY)[:10]
    if command[0] == "build":
        assert (tmp_path / "out" / "project-s3-fs-ingestion.yaml").is_file()


def test_version_prints_the_pyproject_version() -> None:
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    result = _run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"python -m generators {version}"


def test_release_help_explains_the_product_options() -> None:
    result = _run("release", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for option in ("--register", "--product-id [SLUG=]ID", "--product-name [SLUG=]NAME", "--deprecate-previous",
                   "--s3-template-location", "--dry-run"):
        assert option in text, option
    assert "A bare ID means the s3-fs-ingestion product" in text


def test_release_still_imports_boto3_and_works(tmp_path) -> None:
    """The release is the one command that needs boto3: a dry run (no AWS call) imports it and completes."""
    result, modules = _imports("release", "--dry-run", "--version", "1.2.0", "--bucket", "my-release-bucket",
                               "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert _top_level(modules) >= HEAVY
    assert "generators.release.command" in modules
    assert "releases/s3-fs-ingestion/1.2.0/project-s3-fs-ingestion.yaml" in result.stdout
    assert "releases/platform/1.2.0/manifest.json" in result.stdout
    assert "no AWS call made, nothing published" in result.stdout
