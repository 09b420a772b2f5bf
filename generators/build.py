"""Render the templates and package the artifacts into an output directory (the only I/O of a build).

The templates are the platform's (``sm-policies``, ``sm-project-sc-portfolio``) and one project template per
registered product; the archives are each product's seed code and Lambdas (a Lambda two products share is
packaged once).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from troposphere import Template

from . import policies, portfolio
from .packaging import Archives, replaced_on_success
from .products import Product, products
from .rendering import to_yaml
from .settings import POLICIES_TEMPLATE, PORTFOLIO_TEMPLATE, Settings

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent


def _project_builder(product: Product) -> Callable[[Settings], Template]:
    return lambda settings: product.build(settings).template


def template_builders() -> dict[str, Callable[[Settings], Template]]:
    """Template name -> builder, for the platform and every registered product."""
    builders: dict[str, Callable[[Settings], Template]] = {
        POLICIES_TEMPLATE: policies.build,
        PORTFOLIO_TEMPLATE: portfolio.build,
    }
    for product in products():
        builders[product.template_name] = _project_builder(product)
    return builders


def template_names() -> tuple[str, ...]:
    return tuple(template_builders())


def template_filename(name: str) -> str:
    return f"{name}.yaml"


def render(template: Template) -> str:
    """Long-form YAML (no short tags), keys sorted: deterministic (:mod:`generators.rendering`)."""
    return to_yaml(template.to_dict())


def template_dicts(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each template as the plain dict CloudFormation receives (for tests and checks)."""
    return {name: json.loads(builder(settings).to_json()) for name, builder in template_builders().items()}


def archive_sources(repo_root: Path = REPO_ROOT) -> dict[str, Path]:
    """Archive file name -> the folder it packages, for every product's seed code and Lambdas."""
    sources: dict[str, Path] = {}
    for product in products():
        sources[product.seed_code_zip] = repo_root / product.seed_code
        for function_dir, zip_name in product.lambda_zips.items():
            sources[zip_name] = repo_root / "lambda_functions" / function_dir
    return sources


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    templates: dict[str, Path]  # template name -> file
    archives: dict[str, Path]  # archive file name -> file

    @property
    def files(self) -> list[Path]:
        return sorted([*self.templates.values(), *self.archives.values()])


def build(settings: Settings, out_dir: Path, repo_root: Path = REPO_ROOT) -> BuildResult:
    """Write every template and the seed-code and Lambda zips into ``out_dir`` (the zips in a second process
    while the templates render, where it can: :class:`generators.packaging.Archives`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    archives = Archives(archive_sources(repo_root), out_dir)
    if archives.in_child:
        log.info("packing the zips in a second process")
    templates = {}
    try:
        for name, builder in template_builders().items():
            path = out_dir / template_filename(name)
            _write_atomically(path, render(builder(settings)))
            templates[name] = path
            log.info("wrote %s", path)
    except BaseException:
        with contextlib.suppress(OSError, ValueError):  # the template's error is the one to report
            archives.wait()
        raise
    written = archives.wait()
    for path in written.values():
        log.info("wrote %s", path)
    return BuildResult(out_dir=out_dir, templates=templates, archives=written)


def _write_atomically(path: Path, text: str) -> None:
    with replaced_on_success(path) as partial:
        partial.write_text(text, encoding="utf-8")
