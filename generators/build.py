"""Render the templates and package the artifacts into an output directory (the only I/O of a build)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from troposphere import Template

from . import policies, portfolio, project
from .packaging import deterministic_zip
from .settings import (
    POLICIES_TEMPLATE,
    PORTFOLIO_TEMPLATE,
    PROJECT_TEMPLATE,
    SEED_CODE_DIR,
    SEED_CODE_ZIP,
    Settings,
)

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent

TEMPLATE_BUILDERS: dict[str, Callable[[Settings], Template]] = {
    POLICIES_TEMPLATE: policies.build,
    PORTFOLIO_TEMPLATE: portfolio.build,
    PROJECT_TEMPLATE: project.build,
}


def template_filename(name: str) -> str:
    return f"{name}.yaml"


def render(template: Template) -> str:
    """Long-form YAML (no short tags), keys sorted by troposphere's JSON rendering: deterministic."""
    return template.to_yaml(long_form=True)


def template_dicts(settings: Settings) -> dict[str, dict]:
    """Each template as the plain dict CloudFormation receives (for tests and checks)."""
    return {name: json.loads(builder(settings).to_json()) for name, builder in TEMPLATE_BUILDERS.items()}


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    templates: dict[str, Path]  # template name -> file
    archives: dict[str, Path]  # archive file name -> file

    @property
    def files(self) -> list[Path]:
        return sorted([*self.templates.values(), *self.archives.values()])


def build(settings: Settings, out_dir: Path, repo_root: Path = REPO_ROOT) -> BuildResult:
    """Write the three templates and the seed-code and Lambda zips into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    templates = {}
    for name, builder in TEMPLATE_BUILDERS.items():
        path = out_dir / template_filename(name)
        _write_atomically(path, render(builder(settings)))
        templates[name] = path
        log.info("wrote %s", path)
    archives = {SEED_CODE_ZIP: deterministic_zip(repo_root / SEED_CODE_DIR, out_dir / SEED_CODE_ZIP)}
    for function_dir, zip_name in settings.lambda_zips.items():
        archives[zip_name] = deterministic_zip(repo_root / "lambda_functions" / function_dir, out_dir / zip_name)
    for path in archives.values():
        log.info("wrote %s", path)
    return BuildResult(out_dir=out_dir, templates=templates, archives=archives)


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
