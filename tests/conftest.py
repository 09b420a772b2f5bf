"""Shared fixtures: fake AWS credentials everywhere, and the templates built once per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from generators.build import BuildResult, build, template_filename, template_names
from generators.settings import Settings

if TYPE_CHECKING:
    from e2e_support import FakeClock

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach AWS: fake credentials, a real region, no instance metadata, no profiles."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:  # every service's override
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@pytest.fixture(scope="session")
def built() -> BuildResult:
    """The real build output in build/, regenerated once per session from the current generators."""
    return build(Settings(), BUILD_DIR)


def load_template(path: Path) -> dict:
    """Templates are long-form YAML: plain safe_load must read them (no short tags)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def templates(built: BuildResult) -> dict[str, dict]:
    return {name: load_template(built.out_dir / template_filename(name)) for name in template_names()}


@pytest.fixture
def clock() -> FakeClock:
    """Time for the waiting helpers: ``clock.sleep`` advances ``clock.now`` and is recorded in ``clock.sleeps``.
    (Imported here: e2e_support needs moto, which the security environment does not install.)"""
    from e2e_support import FakeClock

    return FakeClock()
