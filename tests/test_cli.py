"""The command line: defaults need no options, bad options fail with one clear line, and the light commands
(``build``, ``--help``, ``release --help``, ``--version``) never import boto3 or botocore."""

from __future__ import annotations

import configparser
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from generators.cli import lint_templates, main

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
        # Semantic Versioning 2.0.0, item 10: build metadata does not count for precedence (1.2.0+a and 1.2.0+b
        # are the same version), and a '+' in the key of a template URL is read back as a space by S3 in some
        # request styles (S3 User Guide, "Naming Amazon S3 objects": '+' needs special handling).
        ("--version", "1.2.0+build.5", "has build metadata"),
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


@pytest.mark.parametrize(
    ("text", "one_line"),
    [
        ('[project]\nname = "x"\nversion = "1.2.3"\n[tool.x]\nversion = "9.9.9"\n', "1.2.3"),
        ('[tool.x]\nversion = "9.9.9"\n\n[project]\nversion="0.1.0-rc.1"\n', "0.1.0-rc.1"),
        # What the one-line reading does not take goes to tomllib: a version that is not in the [project]
        # table itself, a literal string.
        ('[project]\nname = "x"\ndynamic = ["version"]\n[project.urls]\nversion = "9.9.9"\n', None),
        ("[project]\nversion = '1.0.0'\n", None),
    ],
)
def test_package_version_reads_what_tomllib_reads(text, one_line) -> None:
    from generators.settings import _PROJECT_VERSION

    match = _PROJECT_VERSION.search(text)
    assert (match.group(1) if match else None) == one_line
    if one_line is not None:
        assert one_line == tomllib.loads(text)["project"]["version"]
    repo_text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    repo_match = _PROJECT_VERSION.search(repo_text)
    assert repo_match and repo_match.group(1) == tomllib.loads(repo_text)["project"]["version"]


def test_one_shot_commands_run_without_the_garbage_collector_and_the_others_with_it(monkeypatch, capsys) -> None:
    """``python -m generators`` turns the collector off before loading the modules; ``build`` and ``parameters``
    keep it off, commands that call AWS and wait turn it back on."""
    import gc

    from generators import cli

    seen: dict[str, bool] = {}

    def recording(name: str):
        def handler(args) -> int:
            seen[name] = gc.isenabled()
            return 0
        return handler

    monkeypatch.setattr(cli, "run_build", recording("build"))
    monkeypatch.setattr(cli, "run_release", recording("release"))
    was_enabled = gc.isenabled()
    try:
        for argv in (["build"], ["release", "--bucket", "b-123", "--dry-run"]):
            gc.disable()
            assert main(argv) == 0
    finally:
        if was_enabled:
            gc.enable()
    assert seen == {"build": False, "release": True}
    main_module = (REPO_ROOT / "generators" / "__main__.py").read_text(encoding="utf-8")
    assert main_module.index("gc.disable()") < main_module.index("from .cli import main")


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


# ---------------------------------------------------------------------------------------------------------
# tox -e build -- --out DIR: lint what was built, where it was built
# ---------------------------------------------------------------------------------------------------------


def test_build_lint_checks_the_templates_it_wrote_in_the_chosen_directory(tmp_path) -> None:
    """What `tox -e build -- --out DIR` runs: DIR's templates are linted, not a stale build/."""
    out = tmp_path / "elsewhere"
    result = _run("build", "--lint", "--out", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    templates = sorted(out.glob("*.yaml"))
    assert len(templates) >= 4
    assert f"cfn-lint: {len(templates)} templates in {out}: no error, warning or I3042 finding" in result.stdout


def test_lint_includes_the_hard_coded_partition_check(tmp_path) -> None:
    """cfn-lint's rule I3042 (hard-coded partition in an ARN) is informational and off by default; the build's
    lint turns it on, so an `arn:aws:` written into a template fails (it breaks the China and GovCloud
    partitions, AWS General Reference, "Amazon Resource Names (ARNs)": arn:partition:...)."""
    good = tmp_path / "good.yaml"
    good.write_text('AWSTemplateFormatVersion: "2010-09-09"\nResources:\n  Queue:\n    Type: AWS::SQS::Queue\n'
                    "    Properties:\n      KmsMasterKeyId: !Sub arn:${AWS::Partition}:kms:${AWS::Region}:"
                    "${AWS::AccountId}:key/1234abcd-12ab-34cd-56ef-1234567890ab\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text(encoding="utf-8").replace("${AWS::Partition}", "aws"), encoding="utf-8")
    assert lint_templates([good]) == 0
    assert lint_templates([bad]) != 0


def test_tox_build_env_lints_what_it_builds() -> None:
    """tox passes `-- ARGS` as {posargs}: the build env's one command both builds and lints with them, and no
    command lints a fixed build/ path."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO_ROOT / "tox.ini", encoding="utf-8")
    commands = [line.strip() for line in tox["testenv:build"]["commands"].splitlines() if line.strip()]
    assert commands == ["python -m generators build --lint {posargs}"], commands
    assert not any("build/" in command for command in commands)
