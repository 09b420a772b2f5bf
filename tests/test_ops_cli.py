"""The operations commands on the command line: discovered from generators/ops/, documented in ``--help``, and
light: their help never imports boto3 or botocore (only running a command does)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from generators.cli import CliError, ops_commands
from generators.names import ProjectNames
from generators.ops._common import function_name, queue_name
from generators.products import PortfolioEntry, products, registered

REPO_ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"boto3", "botocore"}

OPTIONS = {
    ("redrive",): ["--project NAME", "--dry-run", "--max N", "--region"],
    ("projects", "list"): ["--portfolio-id ID", "--region"],
    ("projects", "upgrade"): ["--project NAME", "--all", "--to-version V", "--parameter KEY=VALUE", "--dry-run",
                              "--wait-timeout SECONDS", "--portfolio-id ID", "--region"],
    ("backfill",): ["--project NAME", "--prefix KEYPREFIX", "--instances N", "--dry-run", "--region"],
}


def test_the_operations_are_commands() -> None:
    assert set(ops_commands()) == {"backfill", "projects", "redrive"}


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_help_explains_every_option_without_importing_boto3(command) -> None:
    """``python -X importtime`` writes one stderr line per imported module, its name last (CPython documentation,
    "-X importtime")."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "generators", *command, "--help"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    text = " ".join(result.stdout.split())
    for option in OPTIONS[command]:
        assert option in text, option
    modules = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in result.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    assert "generators" in modules and not modules & HEAVY


class _OwnNames(ProjectNames):
    """A product whose start function is named differently from every other product's."""

    @property
    def lambda_function(self) -> str:
        return "sagemaker-${SageMakerProjectName}-start"


def test_names_are_computed_from_the_project_name_as_the_template_names_them() -> None:
    assert function_name("Churn-Features1") == "sagemaker-Churn-Features1-start-ingest"
    assert queue_name("Churn-Features1") == "sagemaker-Churn-Features1-ingestion-dlq"
    with pytest.raises(CliError, match="is not a SageMaker project name"):
        function_name("churn_features")


def test_products_that_name_the_start_function_differently_are_not_guessed() -> None:
    """The commands read no product to find a project's start function: every registered product must name it
    alike, or the command says it cannot tell instead of picking one."""
    base = products()[0]
    other = replace(base, slug="own-names", names=_OwnNames(short="own", suffix="own"),
                    portfolio=PortfolioEntry.named("OwnNames"))
    with registered(other), pytest.raises(CliError, match="name the start function differently"):
        function_name("Churn-Features1")
    assert queue_name("Churn-Features1") == "sagemaker-Churn-Features1-ingestion-dlq"
